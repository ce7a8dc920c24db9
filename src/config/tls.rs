//! `[amqp.tls]`: the files it names, read and parsed once, when the
//! configuration is loaded, into the TLS configuration `amqps://` URLs are
//! connected with; every problem named by its full key. The decisions:
//!
//! - `ca_file` is trusted INSTEAD of the system's roots, as RabbitMQ's own
//!   `cacertfile`, `curl --cacert` and a Java truststore are: an operator
//!   who pins a private CA does not want every public CA trusted as well.
//!   Without it, the system's roots (a managed broker with a public
//!   certificate needs nothing else).
//! - TLS settings with no `amqps://` URL are an error, not a warning: whoever
//!   set them believes the connection is encrypted, and a plain one would
//!   carry the password in the clear.
//! - `?auth_mechanism=external` needs `amqps://` and a client certificate:
//!   the certificate is the login.

use std::path::{Path, PathBuf};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::amqp::{AmqpUrl, BrokerTls, ClientIdentity, TlsSetupError};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpTlsSettings {
    /// PEM certificates trusted instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The bridge's client certificate (PEM, its chain after it).
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// The name the broker's certificate must carry, instead of the URL's host.
    pub server_name: Option<String>,
    /// Built by `load` from the above; `None` when no URL is `amqps://`.
    #[serde(skip)]
    client: Option<BrokerTls>,
}

impl AmqpTlsSettings {
    /// What `amqps://` URLs are connected with (`None` when there are none).
    pub fn client(&self) -> Option<&BrokerTls> {
        self.client.as_ref()
    }

    fn is_set(&self) -> bool {
        self.ca_file.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
            || self.server_name.is_some()
    }

    /// Checks the settings against `urls`, reads the files and builds the
    /// TLS configuration, once.
    pub(super) fn load(&mut self, urls: &[AmqpUrl]) -> Result<(), ConfigError> {
        let any_tls = urls.iter().any(|url| url.uri().scheme == AMQPS);
        for (index, url) in urls.iter().enumerate() {
            let external = url.uri().query.auth_mechanism == Some(EXTERNAL);
            if external && url.uri().scheme != AMQPS {
                return Err(ConfigError::new(
                    format!("amqp.urls[{index}]"),
                    format!(
                        "{url} asks for EXTERNAL login, which needs amqps:// and a client certificate"
                    ),
                ));
            }
            if external && self.cert_file.is_none() {
                return Err(ConfigError::new(
                    "amqp.tls.cert_file",
                    format!(
                        "is not set, but amqp.urls[{index}] ({url}) asks for EXTERNAL login: the client certificate is the login"
                    ),
                ));
            }
        }
        if !any_tls {
            if self.is_set() {
                return Err(ConfigError::new(
                    "amqp.tls",
                    "is set, but no URL in amqp.urls is amqps://: the connection would not be \
                     encrypted (use amqps:// URLs, usually port 5671, or remove [amqp.tls])",
                ));
            }
            return Ok(());
        }
        let roots = match &self.ca_file {
            Some(path) => Some(read_certificates("amqp.tls.ca_file", path)?),
            None => None,
        };
        let identity = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Some(ClientIdentity {
                chain: read_certificates("amqp.tls.cert_file", cert)?,
                key: read_key(key)?,
            }),
            (Some(_), None) => {
                return Err(ConfigError::predicate(
                    "amqp.tls.key_file",
                    "is not set: amqp.tls.cert_file needs its private key",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::predicate(
                    "amqp.tls.cert_file",
                    "is not set: amqp.tls.key_file is the key of a client certificate, which is missing",
                ));
            }
            (None, None) => None,
        };
        if let Some(name) = &self.server_name
            && ServerName::try_from(name.as_str()).is_err()
        {
            return Err(ConfigError::new(
                "amqp.tls.server_name",
                format!("{name:?} is not a DNS name or an IP address"),
            ));
        }
        let built = BrokerTls::new(roots.as_deref(), identity, self.server_name.clone());
        self.client = Some(built.map_err(|error| self.setup_error(error))?);
        Ok(())
    }

    fn setup_error(&self, error: TlsSetupError) -> ConfigError {
        let shown = |path: &Option<PathBuf>| {
            path.as_deref()
                .map(|path| path.display().to_string())
                .unwrap_or_default()
        };
        match &error {
            TlsSetupError::Roots(_) => ConfigError::new(
                "amqp.tls.ca_file",
                format!(
                    "{} cannot be trusted as a CA: {error}",
                    shown(&self.ca_file)
                ),
            ),
            TlsSetupError::Platform(_) => ConfigError::new(
                "amqp.tls.ca_file",
                format!("is not set, and {error} (set amqp.tls.ca_file)"),
            ),
            TlsSetupError::Identity(rustls::Error::InconsistentKeys(_)) => ConfigError::new(
                "amqp.tls.key_file",
                format!(
                    "{} does not match amqp.tls.cert_file ({}): {error}",
                    shown(&self.key_file),
                    shown(&self.cert_file)
                ),
            ),
            TlsSetupError::Identity(_) => ConfigError::new(
                "amqp.tls.key_file",
                format!(
                    "{} cannot be used with amqp.tls.cert_file ({}): {error}",
                    shown(&self.key_file),
                    shown(&self.cert_file)
                ),
            ),
        }
        .caused_by(error)
    }
}

const AMQPS: lapin::uri::AMQPScheme = lapin::uri::AMQPScheme::AMQPS;
const EXTERNAL: lapin::uri::SASLMechanism = lapin::uri::SASLMechanism::External;

fn read(key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|error| {
        ConfigError::new(key, format!("cannot read {}: {error}", path.display()))
    })?;
    if !bytes.windows(11).any(|window| window == b"-----BEGIN ") {
        return Err(ConfigError::new(
            key,
            format!("{} is not PEM (no -----BEGIN line)", path.display()),
        ));
    }
    Ok(bytes)
}

fn read_certificates(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bytes = read(key, path)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| {
            ConfigError::new(key, format!("{} is not valid PEM: {error}", path.display()))
        })?;
    if certificates.is_empty() {
        return Err(ConfigError::new(
            key,
            format!(
                "{} holds no certificate (no -----BEGIN CERTIFICATE----- block)",
                path.display()
            ),
        ));
    }
    Ok(certificates)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    const KEY: &str = "amqp.tls.key_file";
    let bytes = read(KEY, path)?;
    // rustls reads no encrypted key; say so rather than "no key found".
    const ENCRYPTED: &[u8] = b"-----BEGIN ENCRYPTED PRIVATE KEY-----";
    if bytes
        .windows(ENCRYPTED.len())
        .any(|window| window == ENCRYPTED)
    {
        return Err(ConfigError::new(
            KEY,
            format!(
                "{} is encrypted: give the key unencrypted (readable by the bridge only)",
                path.display()
            ),
        ));
    }
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| {
        ConfigError::new(
            KEY,
            format!("{} holds no usable private key: {error}", path.display()),
        )
    })
}
