//! The HTTPS ingress in tests: certificate files made by a CA of the test's
//! own, replaced on disk as certbot or Kubernetes would (a new file renamed
//! over the old), and a rustls client that reports which certificate a
//! handshake got.

use std::{fs, path::PathBuf, sync::Arc};

use enate_bridge::config::Settings;
use enate_bridge_test_support::certs::{TestCa, TestCert};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};

use super::{TestApp, spawn_app_with};

/// The names the test certificates are for.
pub const NAMES: &[&str] = &["localhost", "127.0.0.1"];

pub struct TlsFiles {
    pub ca: TestCa,
    /// The first certificate, written at `new`.
    pub first: TestCert,
    pub cert: PathBuf,
    pub key: PathBuf,
    dir: tempfile::TempDir,
}

impl TlsFiles {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("enate-bridge ingress test CA");
        let first = ca.server(NAMES);
        let files = first.write(dir.path(), "server").unwrap();
        Self {
            ca,
            first,
            cert: files.cert,
            key: files.key,
            dir,
        }
    }

    /// Puts `certificate` in place of the served files: each written beside
    /// and renamed over the old one, so a reader never sees half a file.
    pub fn replace(&self, certificate: &TestCert) {
        self.replace_with(
            certificate.cert_pem.as_bytes(),
            certificate.key_pem.as_bytes(),
        );
    }

    pub fn replace_with(&self, cert: &[u8], key: &[u8]) {
        for (path, bytes) in [(&self.cert, cert), (&self.key, key)] {
            let next = self.dir.path().join("next");
            fs::write(&next, bytes).unwrap();
            fs::rename(&next, path).unwrap();
        }
    }

    /// A client that trusts only the test CA.
    pub fn reqwest_client(&self) -> reqwest::Client {
        let root = reqwest::Certificate::from_pem(self.ca.cert_pem().as_bytes()).unwrap();
        reqwest::Client::builder()
            .tls_certs_only([root])
            .build()
            .unwrap()
    }

    /// A TLS connection to the ingress at `port`, trusting the test CA, and
    /// the leaf certificate the handshake got.
    pub async fn connect(&self, port: u16) -> (TlsStream<TcpStream>, CertificateDer<'static>) {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca.cert_pem().as_bytes()).unwrap())
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let stream = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("the TLS handshake completes");
        let leaf = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
        (stream, leaf)
    }
}

/// The leaf certificate of a test certificate, as a handshake shows it.
pub fn leaf_of(certificate: &TestCert) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(certificate.cert_pem.as_bytes()).unwrap()
}

/// A bridge whose ingress is HTTPS with `files`; `app.client` trusts their CA.
pub async fn spawn_tls_app_with(
    files: &TlsFiles,
    customize: impl FnOnce(&mut Settings),
) -> TestApp {
    let (cert, key) = (files.cert.clone(), files.key.clone());
    let mut app = spawn_app_with(|settings| {
        settings.server.tls.cert_file = Some(cert);
        settings.server.tls.key_file = Some(key);
        customize(settings);
        settings
            .read_tls_files()
            .expect("the test's TLS files are usable");
    })
    .await;
    app.client = files.reqwest_client();
    app
}
