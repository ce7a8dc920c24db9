//! Certificates made by the tests themselves (rcgen): a private CA, server
//! and client certificates it signs, and the bad ones a TLS test needs (from
//! another CA, expired, for another name). Nothing is read from the machine,
//! so a test proves what the bridge trusts, not what the machine happens to.
//!
//! ```ignore
//! let ca = TestCa::new("enate-bridge test CA");
//! let dir = tempfile::tempdir()?;
//! let server = ca.server(&["localhost", "127.0.0.1"]).write(dir.path(), "server")?;
//! let client = ca.client("enate-bridge").write(dir.path(), "client")?;
//! ca.write(dir.path().join("ca.pem"))?;
//! ```

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// A certificate authority of the test's own.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its private key, in PEM.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Where `TestCert::write` put the two files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What a leaf certificate is for, and for how long it is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From an hour ago until a year from now.
    Current,
    /// Expired yesterday.
    Expired,
}

impl TestCa {
    pub fn new(common_name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = name(common_name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, Validity::Current);
        let key = KeyPair::generate().expect("CA key");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    /// The CA's certificate in PEM: what a client or server is told to trust.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// Writes the CA's certificate to `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> io::Result<PathBuf> {
        let path = path.as_ref().to_path_buf();
        fs::write(&path, self.cert_pem())?;
        Ok(path)
    }

    /// A server certificate for `names` (DNS names or IP addresses, as subject
    /// alternative names), valid now.
    pub fn server(&self, names: &[&str]) -> TestCert {
        self.leaf(
            names,
            names.first().copied().unwrap_or("server"),
            ExtendedKeyUsagePurpose::ServerAuth,
            Validity::Current,
        )
    }

    /// A server certificate as `server`, but with the given validity.
    pub fn server_with(&self, names: &[&str], validity: Validity) -> TestCert {
        self.leaf(
            names,
            names.first().copied().unwrap_or("server"),
            ExtendedKeyUsagePurpose::ServerAuth,
            validity,
        )
    }

    /// A client certificate whose subject's common name is `common_name`
    /// (RabbitMQ's EXTERNAL login takes the user name from it).
    pub fn client(&self, common_name: &str) -> TestCert {
        self.leaf(
            &[],
            common_name,
            ExtendedKeyUsagePurpose::ClientAuth,
            Validity::Current,
        )
    }

    fn leaf(
        &self,
        names: &[&str],
        common_name: &str,
        usage: ExtendedKeyUsagePurpose,
        validity: Validity,
    ) -> TestCert {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("certificate parameters");
        params.distinguished_name = name(common_name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, validity);
        let key = KeyPair::generate().expect("certificate key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("certificate signed by the test CA");
        TestCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

impl TestCert {
    /// Writes `<stem>.pem` (the certificate) and `<stem>.key` (its key, PKCS#8)
    /// into `dir`.
    pub fn write(&self, dir: &Path, stem: &str) -> io::Result<CertFiles> {
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        fs::write(&cert, &self.cert_pem)?;
        fs::write(&key, &self.key_pem)?;
        Ok(CertFiles { cert, key })
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

fn set_validity(params: &mut CertificateParams, validity: Validity) {
    const DAY: Duration = Duration::from_secs(24 * 3600);
    let now = SystemTime::now();
    let (from, until) = match validity {
        Validity::Current => (now - Duration::from_secs(3600), now + 365 * DAY),
        Validity::Expired => (now - 30 * DAY, now - DAY),
    };
    params.not_before = from.into();
    params.not_after = until.into();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_pem_files_a_tls_library_can_read() {
        let ca = TestCa::new("test CA");
        let dir = tempfile_dir();
        let files = ca
            .server(&["localhost", "127.0.0.1"])
            .write(&dir, "server")
            .unwrap();
        let cert = fs::read_to_string(&files.cert).unwrap();
        let key = fs::read_to_string(&files.key).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_ne!(
            ca.client("bridge").cert_pem,
            ca.server(&["localhost"]).cert_pem
        );
        fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("enate-bridge-certs-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}
