//! The settings' schema and defaults: one struct per section, each denying
//! unknown fields (a misspelt key stops the start, named, instead of being
//! ignored) and defaulting every key it is not given. `config/example.toml`
//! documents every key; keep it in step with the defaults here.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{
    AmqpTlsSettings, EnateSettings, HeaderSetting, ListenAddress, LogFilter, Secret,
    TimeZoneSetting,
    secrets::{redact_all, redact_url_passwords, secret_list},
    tls_files::ServerCertificate,
};
use crate::{amqp::AmqpUrl, routing::RoutingKeyTemplate};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub admin: AdminSettings,
    pub auth: AuthSettings,
    pub amqp: AmqpSettings,
    pub events: EventSettings,
    pub ingress: IngressSettings,
    pub spool: SpoolSettings,
    pub dedup: DedupSettings,
    pub log: LogSettings,
    pub enate: EnateSettings,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub bind: ListenAddress,
    pub max_body_bytes: usize,
    pub shutdown_timeout_secs: u64,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Requests parsed and published at once (taken once the body is in);
    /// beyond it, 503 at once. 0 means 256 per CPU core.
    pub max_in_flight: usize,
    /// The whole body must arrive within this, else 408.
    pub body_timeout_secs: u64,
    /// Body bytes held at once by all requests (read, parsed or published);
    /// a body that does not fit gets 503.
    pub max_body_buffer_bytes: usize,
    /// Objects one request may carry; more get 413, nothing published.
    pub max_events_per_request: usize,
    pub tls: ServerTlsSettings,
}

/// `[server.tls]`: HTTPS on the ingress listener, when both files are given.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerTlsSettings {
    /// PEM certificate chain, the leaf first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the leaf certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// A TLS handshake must be done within this, else the connection is closed.
    pub handshake_timeout_secs: u64,
    /// The pair, read and checked at load; `None` without TLS.
    #[serde(skip)]
    pub certificate: Option<ServerCertificate>,
}

impl ServerTlsSettings {
    /// Both files, when TLS is on.
    pub fn files(&self) -> Option<(&Path, &Path)> {
        Some((self.cert_file.as_deref()?, self.key_file.as_deref()?))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    pub bind: ListenAddress,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub header: HeaderSetting,
    #[serde(serialize_with = "redact_all", deserialize_with = "secret_list")]
    pub secrets: Vec<Secret>,
    pub allow_unauthenticated: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpSettings {
    #[serde(
        serialize_with = "redact_url_passwords",
        deserialize_with = "secret_list"
    )]
    pub urls: Vec<AmqpUrl>,
    pub exchange: String,
    pub routing_key: RoutingKeyTemplate,
    pub declare_topology: bool,
    pub quarantine_exchange: String,
    pub unrouted_exchange: String,
    pub confirm_timeout_ms: u64,
    /// Confirm-mode channels requests are spread over, each owned by one task
    /// that sends in order.
    pub channels: usize,
    /// Unconfirmed messages in flight per channel at most. Safe at any value.
    pub confirms_per_channel: usize,
    /// Threads that publish (lanes, forwarder, the connection's upkeep); 0
    /// means half the CPU cores, at least one.
    pub threads: usize,
    /// Heartbeat asked of the broker, unless the URL sets `?heartbeat=`.
    pub heartbeat_secs: u16,
    /// Name shown for the connection in the RabbitMQ management UI.
    pub connection_name: String,
    /// `[amqp.tls]`: how `amqps://` URLs are trusted and logged in to.
    pub tls: AmqpTlsSettings,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventSettings {
    pub source: String,
    pub include_raw: bool,
    pub naive_time_zone: TimeZoneSetting,
}

/// `spool.mode`: when events go to the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpoolMode {
    /// Spool what RabbitMQ does not confirm; publish the rest directly.
    OnFailure,
    /// Spool every event before publishing; the forwarder publishes.
    Always,
    /// No spool: what RabbitMQ does not confirm is answered 503.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InvalidPayloadPolicy {
    /// Publish the body as received to the quarantine exchange and answer 200.
    Quarantine,
    /// Answer 422 and publish nothing.
    Reject,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngressSettings {
    pub invalid_payload: InvalidPayloadPolicy,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolSettings {
    pub dir: PathBuf,
    pub max_bytes: u64,
    pub mode: SpoolMode,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupSettings {
    /// An event id seen again within this many seconds is a duplicate; 0 turns it off.
    pub window_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    #[serde(deserialize_with = "super::log_filter::log_level")]
    pub level: LogFilter,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: ListenAddress::parse("0.0.0.0:8080").expect("the default is valid"),
            max_body_bytes: 1024 * 1024,
            shutdown_timeout_secs: 30,
            workers: 0,
            max_in_flight: 0,
            // A full 1 MiB body over a 1 Mbit/s link takes 8.4 s; Enate's few KB
            // arrive in one packet. A stalled sender is let go after this.
            body_timeout_secs: 15,
            max_body_buffer_bytes: 64 * 1024 * 1024,
            // Enate sends one object per request; an array is allowed, within reason.
            max_events_per_request: 100,
            tls: ServerTlsSettings::default(),
        }
    }
}

impl Default for ServerTlsSettings {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            // A client on another continent completes a handshake in well under
            // a second; a connection that sends nothing is let go after this.
            handshake_timeout_secs: 3,
            certificate: None,
        }
    }
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            // Loopback: /metrics, /readyz and /spool describe traffic and the
            // broker to whoever can reach them. The container image sets 0.0.0.0.
            bind: ListenAddress::parse("127.0.0.1:9091").expect("the default is valid"),
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            header: HeaderSetting::parse("X-Enate-Secret").expect("the default is valid"),
            secrets: Vec::new(),
            allow_unauthenticated: false,
        }
    }
}

impl Default for AmqpSettings {
    fn default() -> Self {
        Self {
            urls: vec![
                "amqp://guest:guest@127.0.0.1:5672/%2f"
                    .parse()
                    .expect("the default is valid"),
            ],
            exchange: "enate".into(),
            routing_key: RoutingKeyTemplate::parse("{event}.{process_type}.{status}")
                .expect("the default is valid"),
            declare_topology: true,
            quarantine_exchange: "enate.quarantine".into(),
            unrouted_exchange: "enate.unrouted".into(),
            confirm_timeout_ms: 5000,
            channels: 4,
            confirms_per_channel: 256,
            threads: 0,
            heartbeat_secs: 10,
            connection_name: "enate-bridge".into(),
            tls: AmqpTlsSettings::default(),
        }
    }
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            source: "enate-bridge".into(),
            include_raw: true,
            naive_time_zone: TimeZoneSetting::parse("UTC").expect("the default is valid"),
        }
    }
}

impl Default for IngressSettings {
    fn default() -> Self {
        Self {
            invalid_payload: InvalidPayloadPolicy::Quarantine,
        }
    }
}

impl Default for SpoolSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./spool"),
            max_bytes: 1024 * 1024 * 1024,
            mode: SpoolMode::OnFailure,
        }
    }
}

impl Default for DedupSettings {
    fn default() -> Self {
        Self { window_secs: 600 }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            level: LogFilter::parse("info").expect("the default is valid"),
        }
    }
}

impl Settings {
    /// `server.max_in_flight`, with 0 resolved to 256 per CPU core.
    pub fn max_in_flight(&self) -> usize {
        match self.server.max_in_flight {
            0 => 256 * cpu_cores(),
            n => n,
        }
    }

    /// `amqp.threads`, with 0 resolved to half the CPU cores, at least one:
    /// the HTTP workers already take one per core.
    pub fn amqp_threads(&self) -> usize {
        match self.amqp.threads {
            0 => (cpu_cores() / 2).max(1),
            n => n,
        }
    }

    /// The effective configuration as TOML, secrets and URL passwords redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).expect("settings always serialize")
    }
}

/// The CPU cores this process may run on (1 when that cannot be told): what
/// the settings whose 0 means "per core" are counted in.
fn cpu_cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
