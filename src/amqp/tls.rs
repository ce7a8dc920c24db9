//! TLS to RabbitMQ: the rustls client configuration `amqps://` URLs are
//! connected with (built once, when the configuration is loaded), the connect
//! function that uses it, and how a failed handshake is told apart from a
//! broker that cannot be reached.
//!
//! Why the bridge builds its own configuration instead of handing lapin an
//! `OwnedTLSConfig` (read in lapin 4.12 -> amq-protocol-tcp 10.6 -> tcp-stream
//! 0.34 -> rustls-connector 0.23): `OwnedTLSConfig::cert_chain` ADDS its
//! certificates to the platform verifier's roots
//! (`rustls_platform_verifier::Verifier::new_with_extra_roots`), so a private
//! CA could never be trusted *instead of* the public ones; and the name
//! checked against the broker's certificate is always the URL's host. lapin's
//! `Connection::connector` takes the function that opens the stream, so the
//! bridge opens the TCP connection with lapin's own code (the URL with its
//! scheme set to `amqp`) and then runs the handshake with its configuration.
//! Its identity (`OwnedIdentity::PKCS8`) would have taken any PEM key
//! (`PrivateKeyDer::from_pem_slice`: PKCS#8, PKCS#1 RSA, SEC1 EC), as this
//! does.

use std::{io, sync::Arc, time::Duration};

use lapin::{
    Connection, ConnectionProperties,
    tcp::{AMQPUriTcpExt, AsyncTcpStream, RustlsConnector, TLSConfig},
    uri::{AMQPScheme, AMQPUri},
};
use rustls::{
    ClientConfig, RootCertStore,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer},
};

/// How the bridge checks the broker and proves itself: the trusted roots,
/// the client certificate (if any) and the name the broker's certificate
/// must carry. Cheap to clone.
#[derive(Clone)]
pub struct BrokerTls {
    connector: RustlsConnector,
    /// Instead of the URL's host, when it is an address or a load balancer's name.
    server_name: Option<String>,
}

impl std::fmt::Debug for BrokerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// A client certificate chain and its private key.
pub struct ClientIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// Why a TLS configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A CA certificate rustls cannot use as a trust anchor.
    #[error("{0}")]
    Roots(rustls::Error),
    /// The platform's trust store cannot be used.
    #[error("the system's trusted certificates cannot be used: {0}")]
    Platform(rustls::Error),
    /// The key does not match the certificate, or is not a usable key.
    #[error("{0}")]
    Identity(rustls::Error),
}

impl BrokerTls {
    /// `roots`: trusted instead of the system's roots when given (as
    /// RabbitMQ's `cacertfile`, `curl --cacert` and a Java truststore are);
    /// without them, the platform verifier (the system's roots, and
    /// `SSL_CERT_FILE` if set). TLS 1.2 and 1.3 only (rustls' safe defaults).
    pub fn new(
        roots: Option<&[CertificateDer<'static>]>,
        identity: Option<ClientIdentity>,
        server_name: Option<String>,
    ) -> Result<Self, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsSetupError::Platform)?;
        let builder = match roots {
            Some(roots) => {
                let mut store = RootCertStore::empty();
                for root in roots {
                    store.add(root.clone()).map_err(TlsSetupError::Roots)?;
                }
                builder.with_root_certificates(store)
            }
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(platform_verifier(provider)?),
        };
        let config = match identity {
            Some(identity) => builder
                .with_client_auth_cert(identity.chain, identity.key)
                .map_err(TlsSetupError::Identity)?,
            None => builder.with_no_client_auth(),
        };
        Ok(Self {
            connector: RustlsConnector::from(config),
            server_name,
        })
    }
}

fn platform_verifier(
    provider: Arc<CryptoProvider>,
) -> Result<Arc<rustls_platform_verifier::Verifier>, TlsSetupError> {
    rustls_platform_verifier::Verifier::new(provider)
        .map(Arc::new)
        .map_err(TlsSetupError::Platform)
}

/// A connection attempt that failed, and what it says about the certificates.
pub(super) struct ConnectFailed {
    pub error: lapin::Error,
    pub refusal: Option<TlsRefusal>,
}

/// Connects to `uri`: over TLS with `tls` for an `amqps` URL, in plain text
/// for an `amqp` one.
pub(super) async fn connect(
    uri: AMQPUri,
    properties: ConnectionProperties,
    tls: Option<&BrokerTls>,
) -> Result<Connection, ConnectFailed> {
    let Some(tls) = tls.filter(|_| uri.scheme == AMQPScheme::AMQPS) else {
        return Connection::connect_uri(uri, properties)
            .await
            .map_err(|error| ConnectFailed {
                refusal: tls_refusal(&error),
                error,
            });
    };
    let connector = tls.connector.clone();
    let name = tls
        .server_name
        .clone()
        .unwrap_or_else(|| uri.authority.host.clone());
    let runtime = lapin::runtime::default_runtime().map_err(|error| ConnectFailed {
        error,
        refusal: None,
    })?;
    let connected = Connection::connector(
        uri,
        runtime,
        async move |uri: AMQPUri, runtime| {
            let mut plain = uri;
            plain.scheme = AMQPScheme::AMQP;
            let stream = plain
                .connect_with_config_async(TLSConfig::default(), &runtime)
                .await?;
            let mut stream = stream.into_rustls(&connector, &name).await?;
            await_certificate_verdict(&mut stream).await?;
            Ok(stream)
        },
        properties,
    )
    .await;
    connected.map_err(|error| ConnectFailed {
        refusal: tls_refusal(&error),
        error,
    })
}

/// How long the bridge, after a TLS 1.3 handshake, waits for the broker's
/// verdict on its client certificate before it sends the AMQP protocol
/// header. In TLS 1.3 the client's handshake is over before the server has
/// checked the client's certificate (or noticed there is none): a broker
/// that refuses it sends an alert and closes. When the bridge had already
/// written the AMQP header, that close often became a TCP reset, and Linux
/// drops received-but-unread data on a reset: the TLS suite saw either the
/// alert or a reset for the same certificate. Waiting, silent, removes the
/// race: nothing unread is pending on the broker's side when it closes, so
/// its alert arrives. RabbitMQ never speaks first, so on a good connection
/// the whole window elapses: it is added to every TLS 1.3 connect.
///
/// Proven (tests/tls, 3 runs of the suite): against a RabbitMQ node on
/// loopback, which negotiates TLS 1.3, both refusals (no certificate, another
/// CA's) arrive as alerts within the window every time and stop the start;
/// a TLS server that completes the handshake, sends session tickets and
/// closes (with and without close_notify) is unreachable, not refused; a
/// good connection still publishes. A guess: that 250 ms is enough for a
/// loaded or distant broker. A later verdict reads as before the window: the
/// alert (a refusal) or a reset (now retried as unreachable).
const CERTIFICATE_VERDICT_WINDOW: Duration = Duration::from_millis(250);

/// After a TLS 1.3 handshake, reads what the broker sends within
/// `CERTIFICATE_VERDICT_WINDOW` and feeds it to rustls without taking any
/// plaintext out of the session (so lapin reads whatever it holds later):
/// - an alert: the error rustls makes of it (`tls_refusal` says whether it is
///   about a certificate);
/// - the connection closed or reset without an alert: an I/O error, which is
///   no certificate problem (a TLS-terminating proxy whose backend is down
///   does that, with or without a client certificate configured);
/// - nothing, or only post-handshake messages (session tickets), until the
///   window ends, or any application data: the stream, ready for AMQP.
///
/// TLS 1.2 needs no window: the server checks the client's certificate
/// inside the handshake, and `into_rustls` fails with its alert.
async fn await_certificate_verdict<S>(stream: &mut AsyncTcpStream<S>) -> io::Result<()>
where
    S: futures::AsyncRead + futures::AsyncWrite + Send + Unpin + 'static,
{
    use futures::AsyncReadExt;
    let AsyncTcpStream::Rustls(tls) = stream else {
        return Ok(());
    };
    let (socket, session) = tls.get_mut();
    if session.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + CERTIFICATE_VERDICT_WINDOW;
    let mut buffer = [0u8; 4096];
    loop {
        // A read cancelled by the deadline has taken nothing from the socket.
        let Ok(read) = tokio::time::timeout_at(deadline, socket.read(&mut buffer)).await else {
            return Ok(());
        };
        let read = read?;
        if read == 0 {
            return Err(closed_after_handshake("closed"));
        }
        let mut bytes = &buffer[..read];
        let mut spoke = false;
        while !bytes.is_empty() {
            if session.read_tls(&mut bytes)? == 0 {
                return Err(io::Error::other(
                    "rustls took no more of the broker's bytes",
                ));
            }
            let state = session
                .process_new_packets()
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
            if state.peer_has_closed() {
                return Err(closed_after_handshake("sent close_notify"));
            }
            spoke = state.plaintext_bytes_to_read() > 0;
        }
        // Every byte read is in the session now. The broker spoke first
        // (RabbitMQ does not): its plaintext stays there, for lapin to read.
        if spoke {
            return Ok(());
        }
    }
}

fn closed_after_handshake(how: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "the TLS endpoint {how} right after the handshake, without a certificate alert \
             (a TLS proxy or load balancer whose backend is down?)"
        ),
    )
}

/// What a failed handshake says about the certificates, if it failed there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsRefusal {
    /// The broker's certificate is not trusted, expired or for another name.
    BrokerCertificate,
    /// The broker refused the bridge's client certificate (or wanted one).
    ClientCertificate,
}

/// Finds rustls' error under lapin's (an I/O error carries it) and says
/// which side's certificate it is about. Any other TLS failure (a protocol
/// mismatch, a cut connection) is no certificate problem.
fn tls_refusal(error: &lapin::Error) -> Option<TlsRefusal> {
    use rustls::AlertDescription as Alert;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return match tls {
                rustls::Error::InvalidCertificate(_) => Some(TlsRefusal::BrokerCertificate),
                rustls::Error::AlertReceived(
                    Alert::BadCertificate
                    | Alert::UnknownCA
                    | Alert::CertificateRequired
                    | Alert::CertificateExpired
                    | Alert::CertificateRevoked
                    | Alert::CertificateUnknown
                    | Alert::UnsupportedCertificate
                    | Alert::AccessDenied,
                ) => Some(TlsRefusal::ClientCertificate),
                _ => None,
            };
        }
        // An I/O error's `source` skips the error it wraps: look at that one.
        source = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    None
}
