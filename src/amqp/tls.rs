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

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use lapin::{
    Connection, ConnectionProperties,
    tcp::{AMQPUriTcpExt, RustlsConnector, TLSConfig},
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
    let handshaken = Arc::new(AtomicBool::new(false));
    let runtime = lapin::runtime::default_runtime().map_err(|error| ConnectFailed {
        error,
        refusal: None,
    })?;
    let connected = Connection::connector(
        uri,
        runtime,
        {
            let handshaken = handshaken.clone();
            async move |uri: AMQPUri, runtime| {
                let mut plain = uri;
                plain.scheme = AMQPScheme::AMQP;
                let stream = plain
                    .connect_with_config_async(TLSConfig::default(), &runtime)
                    .await?;
                let stream = stream.into_rustls(&connector, &name).await?;
                handshaken.store(true, Ordering::Relaxed);
                Ok(stream)
            }
        },
        properties,
    )
    .await;
    connected.map_err(|error| {
        let after_handshake = handshaken.load(Ordering::Relaxed);
        ConnectFailed {
            refusal: tls_refusal(&error).or_else(|| {
                (after_handshake && is_cut(&error)).then_some(TlsRefusal::ClientCertificate)
            }),
            error,
        }
    })
}

/// In TLS 1.3 the client's handshake is over before the broker has checked
/// the client's certificate: a broker that refuses it sends an alert and
/// closes, and the bridge, which has sent the AMQP header meanwhile, reads
/// either the alert or a reset connection, whichever comes first (the TLS
/// suite saw both, on the same broker, for the same certificate). A
/// connection cut after the handshake and before RabbitMQ's first AMQP
/// frame is therefore taken for a refused certificate, as the alert is.
fn is_cut(error: &lapin::Error) -> bool {
    use std::io::ErrorKind as Io;
    matches!(
        error.kind(),
        lapin::ErrorKind::IOError(io) if matches!(
            io.kind(),
            Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe | Io::UnexpectedEof
        )
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
