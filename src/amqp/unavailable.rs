//! Why the broker cannot be used: not now (`Unavailable`, for /readyz and the
//! logs) or not at all (`StartError`, which stops the start). Every URL shown
//! here has its password redacted.

use super::topology::TopologyError;

/// Why the broker cannot confirm a publish now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unavailable {
    #[error("not connected to RabbitMQ yet")]
    NotConnectedYet,
    #[error("{0}")]
    Connect(ConnectFailures),
    #[error("lost the connection to RabbitMQ: {0}")]
    Lost(String),
    #[error("RabbitMQ blocks publishing (connection.blocked: a memory or disk alarm)")]
    Blocked,
}

impl Unavailable {
    /// Whether RabbitMQ refused the bridge's credentials or vhost: a
    /// configuration error that waiting will not fix.
    pub fn is_login_refused(&self) -> bool {
        matches!(self, Unavailable::Connect(failures) if failures.login_refused())
    }

    /// Whether a TLS handshake failed on a certificate (the broker's is not
    /// trusted, or it refused the bridge's): a configuration error too.
    pub fn is_tls_refused(&self) -> bool {
        matches!(self, Unavailable::Connect(failures) if failures.tls_refused())
    }
}

/// Why each URL of `amqp.urls` could not be used (passwords redacted).
#[derive(Debug, Clone, Default)]
pub struct ConnectFailures(pub(super) Vec<ConnectFailure>);

#[derive(Debug, Clone)]
pub struct ConnectFailure {
    /// The URL with its password replaced by `***`.
    pub url: String,
    pub kind: FailureKind,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No answer, a refused TCP connection, a broken handshake, a timeout.
    Unreachable,
    /// RabbitMQ refused the login (ACCESS_REFUSED) or the vhost (NOT_ALLOWED).
    LoginRefused,
    /// The broker's certificate is not trusted, has expired or is for another name.
    BrokerCertificateRefused,
    /// The broker refused the bridge's client certificate, or wanted one.
    ClientCertificateRefused,
}

impl ConnectFailures {
    pub fn login_refused(&self) -> bool {
        self.0.iter().any(|f| f.kind == FailureKind::LoginRefused)
    }

    /// Each URL and how it failed, without the details: what stays the
    /// same from one attempt to the next while nothing changes.
    pub fn kinds(&self) -> String {
        let kinds: Vec<String> = self
            .0
            .iter()
            .map(|f| format!("{} {:?}", f.url, f.kind))
            .collect();
        kinds.join("; ")
    }

    pub fn tls_refused(&self) -> bool {
        self.0.iter().any(|f| {
            matches!(
                f.kind,
                FailureKind::BrokerCertificateRefused | FailureKind::ClientCertificateRefused
            )
        })
    }
}

impl std::fmt::Display for ConnectFailures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, failure) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            match failure.kind {
                FailureKind::LoginRefused => write!(
                    f,
                    "{}: RabbitMQ refused the login: check the user, password and vhost in amqp.urls ({})",
                    failure.url, failure.detail
                )?,
                FailureKind::BrokerCertificateRefused => write!(
                    f,
                    "{}: the broker's TLS certificate is not trusted: check amqp.tls.ca_file \
                     (trusted instead of the system's roots when set), the certificate's dates, \
                     and its names against the host in amqp.urls or amqp.tls.server_name ({})",
                    failure.url, failure.detail
                )?,
                FailureKind::ClientCertificateRefused => write!(
                    f,
                    "{}: the broker refused the bridge's TLS client certificate, or wanted one \
                     (its TLS alert): check amqp.tls.cert_file and amqp.tls.key_file, and that \
                     the broker trusts the CA that signed them ({})",
                    failure.url, failure.detail
                )?,
                FailureKind::Unreachable => write!(f, "{}: {}", failure.url, failure.detail)?,
            }
        }
        Ok(())
    }
}

/// Why the bridge cannot start on this broker.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// What exists on the broker differs from what the bridge declares.
    #[error(transparent)]
    Topology(TopologyError),
    /// RabbitMQ refused the login or vhost on one of `amqp.urls` (and no URL
    /// connected): a configuration error, reported at once rather than
    /// spooled around.
    #[error("{0}")]
    LoginRefused(ConnectFailures),
    /// A TLS handshake failed on a certificate on one of `amqp.urls` (and no
    /// URL connected): the broker's is not trusted, or it refused the
    /// bridge's. Waiting will not fix it either.
    #[error("{0}")]
    TlsRefused(ConnectFailures),
}
