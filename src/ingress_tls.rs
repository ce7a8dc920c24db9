//! HTTPS at the ingress: the rustls configuration (TLS 1.2 and 1.3 only), and
//! the certificate it serves, held in memory and replaced when its files
//! change on disk or on SIGHUP. A replacement is picked for new handshakes
//! only: a connection keeps what it negotiated, so nothing in flight is
//! dropped. A new pair that cannot be used keeps the old one served, says so
//! once in an ERROR line naming the key, and is counted.
//!
//! The files are polled rather than watched with inotify: certbot renews by
//! swapping symlinks and Kubernetes updates a mounted Secret by renaming a
//! directory, and a watch on the file itself misses both.

use std::{
    path::PathBuf,
    sync::{Arc, RwLock},
    time::Duration,
};

use rustls::{
    ServerConfig,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    config::{PairContents, ServerCertificate, TlsFile, crypto_provider, read_pair},
    metrics::Metrics,
};

/// How often the files are read. A changed pair is loaded once it reads the
/// same twice in a row, so a renewal that writes the certificate and the key
/// one after the other is not taken (and reported) half done: a new
/// certificate is served within about two of these.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The certificate new handshakes get.
#[derive(Debug)]
pub struct CertificateStore {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertificateStore {
    pub fn new(certificate: &ServerCertificate) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(certificate.certified_key.clone()),
        })
    }

    fn replace(&self, certificate: &ServerCertificate) {
        // A poisoned lock only means a writer panicked between two plain
        // assignments; the value inside is whole either way.
        *self.current.write().unwrap_or_else(|e| e.into_inner()) =
            certificate.certified_key.clone();
    }
}

impl ResolvesServerCert for CertificateStore {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// The ingress's rustls configuration: TLS 1.3 and 1.2, no client
/// certificates, the certificate from `store`. actix-web adds the ALPN
/// protocol `http/1.1`.
pub fn server_config(store: Arc<CertificateStore>) -> ServerConfig {
    ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("aws-lc-rs supports TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_cert_resolver(store)
}

/// Asks the watch to read the files now (SIGHUP).
#[derive(Debug, Clone)]
pub struct ReloadRequest(Arc<Notify>);

impl ReloadRequest {
    pub fn request(&self) {
        self.0.notify_one();
    }
}

/// What one reading of the files gave: their contents, or which file could
/// not be read and why.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reading {
    Read(PairContents),
    Unreadable { file: TlsFile, reason: String },
}

/// Reads the pair when it changes or when asked, and puts a usable one in
/// the store.
pub struct CertificateWatch {
    store: Arc<CertificateStore>,
    cert_path: PathBuf,
    key_path: PathBuf,
    metrics: Arc<Metrics>,
    requests: Arc<Notify>,
    served_serial: String,
}

impl CertificateWatch {
    pub fn new(
        store: Arc<CertificateStore>,
        (cert_path, key_path): (PathBuf, PathBuf),
        served: &ServerCertificate,
        metrics: Arc<Metrics>,
    ) -> Self {
        metrics.set_served_certificate(served.not_after_unix);
        Self {
            store,
            cert_path,
            key_path,
            metrics,
            requests: Arc::new(Notify::new()),
            served_serial: served.serial.clone(),
        }
    }

    pub fn reload_request(&self) -> ReloadRequest {
        ReloadRequest(self.requests.clone())
    }

    /// Polls the files until `stop`. What they hold when it starts, a moment
    /// after the load, is the baseline.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut tried = self.read();
        let mut previous = tried.clone();
        let mut ticks = tokio::time::interval(POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    let now = self.read();
                    if now == previous && now != tried {
                        self.load(&now);
                        tried = now.clone();
                    }
                    previous = now;
                }
                () = self.requests.notified() => {
                    tracing::info!("SIGHUP: reading the TLS certificate files again");
                    let now = self.read();
                    self.load(&now);
                    tried = now.clone();
                    previous = now;
                }
                () = stop.cancelled() => return,
            }
        }
    }

    /// Both files, whole. Plain blocking reads: a certificate and a key are a
    /// few kilobytes of a local file, read once a second.
    fn read(&self) -> Reading {
        match read_pair(&self.cert_path, &self.key_path) {
            Ok(contents) => Reading::Read(contents),
            Err(error) => Reading::Unreadable {
                file: error.file(),
                reason: error.to_string(),
            },
        }
    }

    fn load(&mut self, reading: &Reading) {
        let loaded = match reading {
            Reading::Read(contents) => {
                crate::config::server_certificate(contents, &self.cert_path, &self.key_path)
                    .map_err(|error| (error.file(), error.to_string()))
            }
            Reading::Unreadable { file, reason } => Err((*file, reason.clone())),
        };
        match loaded {
            Ok(certificate) => {
                self.store.replace(&certificate);
                self.metrics.count_certificate_reload(true);
                self.metrics
                    .set_served_certificate(certificate.not_after_unix);
                tracing::info!(
                    serial = certificate.serial,
                    previous_serial = self.served_serial,
                    not_after_unix = certificate.not_after_unix,
                    "TLS certificate reloaded: new connections get it"
                );
                self.served_serial = certificate.serial;
            }
            Err((file, reason)) => {
                self.metrics.count_certificate_reload(false);
                tracing::error!(
                    key = format!("server.tls.{}", file.key()),
                    error = reason,
                    serial = self.served_serial,
                    "the new TLS certificate files cannot be used: the previous certificate is still served"
                );
            }
        }
    }
}
