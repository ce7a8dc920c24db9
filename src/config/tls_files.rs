//! TLS files, read into the types rustls and reqwest use: the ingress's
//! certificate chain with its private key (`server.tls`), and a bundle of CA
//! certificates to trust (`enate.tls.ca_file`). Read when the configuration is
//! loaded, so a file that is unreadable, not PEM, or a key that does not match
//! its certificate stops the start naming the key; the ingress reads its pair
//! again, with the same function, when the files change on disk.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use rustls::{
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    sign::CertifiedKey,
};

/// The one crypto provider of the bridge's TLS: aws-lc-rs, which reqwest and
/// lapin already build rustls with. Named explicitly rather than taken from a
/// process default, so a second provider in the dependency tree cannot make
/// the choice ambiguous.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Which of the pair a problem is in: the messages and the configuration
/// error name the file's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    Certificate,
    Key,
}

impl TlsFile {
    /// The key's name under its section (`cert_file`, `key_file`).
    pub fn key(self) -> &'static str {
        match self {
            TlsFile::Certificate => "cert_file",
            TlsFile::Key => "key_file",
        }
    }
}

/// A certificate chain with its private key, as the ingress serves it.
#[derive(Debug, Clone)]
pub struct ServerCertificate {
    pub certified_key: Arc<CertifiedKey>,
    /// The leaf certificate's notAfter, in seconds since the Unix epoch.
    pub not_after_unix: i64,
    /// The leaf certificate's serial number, in hex (for the log line that
    /// says which certificate is served).
    pub serial: String,
}

/// Why a TLS file cannot be used. Says which file and why, never its content.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("cannot read {path}: {source}")]
    Unreadable {
        file: TlsFile,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate { file: TlsFile, path: PathBuf },
    #[error("{path} is not a PEM certificate chain: {reason}")]
    NotPem {
        file: TlsFile,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "{path} holds no PEM private key (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY): {reason}"
    )]
    NoKey {
        file: TlsFile,
        path: PathBuf,
        reason: String,
    },
    #[error("{path} is not a private key the bridge can use: {reason}")]
    UnusableKey {
        file: TlsFile,
        path: PathBuf,
        reason: String,
    },
    #[error("the key in {path} does not belong to the certificate in {certificate}")]
    KeyMismatch {
        file: TlsFile,
        path: PathBuf,
        certificate: PathBuf,
    },
    #[error("{path}: the first certificate cannot be parsed: {reason}")]
    BadCertificate {
        file: TlsFile,
        path: PathBuf,
        reason: String,
    },
}

impl TlsFileError {
    /// The file the problem is in.
    pub fn file(&self) -> TlsFile {
        match self {
            TlsFileError::Unreadable { file, .. }
            | TlsFileError::NoCertificate { file, .. }
            | TlsFileError::NotPem { file, .. }
            | TlsFileError::NoKey { file, .. }
            | TlsFileError::UnusableKey { file, .. }
            | TlsFileError::KeyMismatch { file, .. }
            | TlsFileError::BadCertificate { file, .. } => *file,
        }
    }
}

/// The bytes of a certificate file and a key file, as read at one moment.
#[derive(Clone, PartialEq, Eq)]
pub struct PairContents {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

impl fmt::Debug for PairContents {
    /// Never the key's bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PairContents {{ cert: {} bytes, key: {} bytes }}",
            self.cert.len(),
            self.key.len()
        )
    }
}

/// Reads both files.
pub fn read_pair(cert_path: &Path, key_path: &Path) -> Result<PairContents, TlsFileError> {
    let read = |file: TlsFile, path: &Path| {
        std::fs::read(path).map_err(|source| TlsFileError::Unreadable {
            file,
            path: path.to_path_buf(),
            source,
        })
    };
    Ok(PairContents {
        cert: read(TlsFile::Certificate, cert_path)?,
        key: read(TlsFile::Key, key_path)?,
    })
}

/// Reads both files and checks that they make a usable pair.
pub fn read_server_certificate(
    cert_path: &Path,
    key_path: &Path,
) -> Result<ServerCertificate, TlsFileError> {
    let contents = read_pair(cert_path, key_path)?;
    server_certificate(&contents, cert_path, key_path)
}

/// The pair in `contents` (read from these paths): a chain of one or more
/// PEM certificates, the leaf first, and the leaf's private key (PKCS#8,
/// PKCS#1 or SEC1).
pub fn server_certificate(
    contents: &PairContents,
    cert_path: &Path,
    key_path: &Path,
) -> Result<ServerCertificate, TlsFileError> {
    let chain = certificates(&contents.cert, TlsFile::Certificate, cert_path)?;
    let key =
        PrivateKeyDer::from_pem_slice(&contents.key).map_err(|error| TlsFileError::NoKey {
            file: TlsFile::Key,
            path: key_path.to_path_buf(),
            reason: error.to_string(),
        })?;
    let leaf = parse_leaf(&chain[0], cert_path)?;
    let provider = crypto_provider();
    let certified_key =
        CertifiedKey::from_der(chain, key, &provider).map_err(|error| match error {
            rustls::Error::InconsistentKeys(_) => TlsFileError::KeyMismatch {
                file: TlsFile::Key,
                path: key_path.to_path_buf(),
                certificate: cert_path.to_path_buf(),
            },
            other => TlsFileError::UnusableKey {
                file: TlsFile::Key,
                path: key_path.to_path_buf(),
                reason: other.to_string(),
            },
        })?;
    Ok(ServerCertificate {
        certified_key: Arc::new(certified_key),
        not_after_unix: leaf.0,
        serial: leaf.1,
    })
}

/// The CA certificates of a PEM bundle (one or more).
pub fn read_ca_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let bytes = std::fs::read(path).map_err(|source| TlsFileError::Unreadable {
        file: TlsFile::Certificate,
        path: path.to_path_buf(),
        source,
    })?;
    let certificates = certificates(&bytes, TlsFile::Certificate, path)?;
    for certificate in &certificates {
        parse_leaf(certificate, path)?;
    }
    Ok(certificates)
}

fn certificates(
    pem: &[u8],
    file: TlsFile,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsFileError::NotPem {
            file,
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsFileError::NoCertificate {
            file,
            path: path.to_path_buf(),
        });
    }
    Ok(chain)
}

/// The certificate's notAfter (Unix seconds) and serial number (hex): a PEM
/// block whose content is not a certificate is refused here, at load, rather
/// than at the first handshake.
fn parse_leaf(
    certificate: &CertificateDer<'_>,
    path: &Path,
) -> Result<(i64, String), TlsFileError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(certificate.as_ref()).map_err(|error| {
            TlsFileError::BadCertificate {
                file: TlsFile::Certificate,
                path: path.to_path_buf(),
                reason: error.to_string(),
            }
        })?;
    Ok((
        parsed.validity().not_after.timestamp(),
        parsed.raw_serial_as_string(),
    ))
}
