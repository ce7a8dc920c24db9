//! Configuration: built-in defaults, then an optional TOML file, then
//! `ENATE_BRIDGE__<SECTION>__<KEY>` environment variables (lists comma-separated).
//!
//! Every struct denies unknown fields, so a typo in a key stops the start with a
//! message naming it instead of being silently ignored; so does a variable that
//! starts with `ENATE_BRIDGE` but is not spelt `ENATE_BRIDGE__SECTION__KEY`.
//! Values are parsed once, here, into the types the rest of the code uses
//! (`values`): nothing else parses a setting again. `config/example.toml`
//! documents every key; keep it in step with the defaults below.
//!
//! This module depends on no module of the bridge above it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, Serializer};

use crate::{
    amqp::{AmqpUrl, NotAnAmqpUrl},
    routing::RoutingKeyTemplate,
};

mod enate;
mod error;
mod log_filter;
mod secrets;
mod values;
pub use enate::{
    EnateAuthMethod, EnateAuthSettings, EnateSettings, SubscriptionEntry, normalize_url,
};
pub use error::ConfigError;
pub use log_filter::{LogFilter, NotALogFilter};
pub use secrets::{EmptySecret, Secret};
pub use values::{
    HeaderSetting, ListenAddress, NotAHeaderName, NotATimeZone, NotAUrl, NotAnAddress,
    TimeZoneSetting, UrlSetting,
};

use secrets::{ListItem, redact_all, secret_list};

const ENV_PREFIX: &str = "ENATE_BRIDGE";
/// Keys whose environment value is a comma-separated list.
const ENV_LIST_KEYS: &[&str] = &["auth.secrets", "amqp.urls"];

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
    /// Heartbeat asked of the broker, unless the URL sets `?heartbeat=`.
    pub heartbeat_secs: u16,
    /// Name shown for the connection in the RabbitMQ management UI.
    pub connection_name: String,
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
    #[serde(deserialize_with = "log_filter::log_level")]
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
            heartbeat_secs: 10,
            connection_name: "enate-bridge".into(),
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

/// Returns a [`ConfigError::predicate`]: the key, then what is wrong with it.
macro_rules! invalid {
    ($key:expr, $($arg:tt)*) => { return Err(ConfigError::predicate($key, format!($($arg)*))) };
}

/// The sections, in upper case, to recognise a misspelt variable.
const SECTIONS: &[&str] = &[
    "SERVER", "ADMIN", "AUTH", "AMQP", "EVENTS", "INGRESS", "SPOOL", "DEDUP", "LOG", "ENATE",
];

/// Whether `name` looks meant for the configuration but is not spelt as
/// `ENATE_BRIDGE__SECTION__KEY` (one underscore after the prefix, or a section
/// right after it). Other variables of the prefix (the test suite's
/// `ENATE_BRIDGE_TEST_*`) are left alone.
fn is_stray_variable(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
        return false;
    };
    if rest.starts_with("__") {
        return false;
    }
    let rest = rest.trim_start_matches('_');
    let first_word = rest.split('_').next().unwrap_or_default();
    rest.contains("__") || SECTIONS.contains(&first_word)
}

impl Settings {
    /// Loads defaults, then `file` (if given), then the process environment, and validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, None)
    }

    /// As [`Settings::load`], with an explicit environment instead of the process's
    /// (tests use this so they do not race on global state).
    pub fn load_from(
        file: Option<&Path>,
        env: Option<std::collections::HashMap<String, String>>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::named(
                    "--config",
                    format!("the configuration file {} does not exist", path.display()),
                ));
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let variables: Vec<(String, String)> = match env {
            Some(map) => map.into_iter().collect(),
            None => std::env::vars().collect(),
        };
        // Read by hand rather than with `config::Environment`: its list parsing first
        // turns a value into a number or a boolean, so a secret such as `12345`
        // could not be given as a list item.
        if let Some((stray, _)) = variables.iter().find(|(name, _)| is_stray_variable(name)) {
            return Err(ConfigError::predicate(
                stray.clone(),
                "is not read: configuration variables are spelt ENATE_BRIDGE__<SECTION>__<KEY>, \
                 with two underscores after ENATE_BRIDGE and between section and key \
                 (e.g. ENATE_BRIDGE__SERVER__BIND)",
            ));
        }
        for (name, value) in variables {
            let Some(rest) = name
                .strip_prefix(ENV_PREFIX)
                .and_then(|rest| rest.strip_prefix("__"))
            else {
                continue;
            };
            let key = rest.to_lowercase().replace("__", ".");
            let overridden = if ENV_LIST_KEYS.contains(&key.as_str()) {
                let items: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_string)
                    .collect();
                builder.set_override(&key, items)
            } else {
                builder.set_override(&key, value)
            };
            builder = overridden.map_err(|error| {
                ConfigError::new(name.clone(), error.to_string()).caused_by(error)
            })?;
        }
        let settings: Settings = builder
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(describe_config_error)?;
        settings.validate()?;
        Ok(settings)
    }

    /// What only `serve` (and `check-config`, which says whether serve would
    /// start) needs: a secret, unless unauthenticated access was asked for.
    /// Commands that do not check webhooks do not ask for one.
    pub fn require_secrets(&self) -> Result<(), ConfigError> {
        if self.auth.secrets.is_empty() && !self.auth.allow_unauthenticated {
            invalid!(
                "auth.secrets",
                "is empty: set at least one secret (the CustomHeaderValue given to Enate), \
                 e.g. ENATE_BRIDGE__AUTH__SECRETS=..., or set auth.allow_unauthenticated = true to accept \
                 every webhook without checking"
            );
        }
        Ok(())
    }

    /// What `subscriptions` needs, checked before Enate is called: the API's
    /// URL; and for the commands that compare with `[enate]` (`plan`,
    /// `apply`), a secret to give subscriptions and the bridge's public URL.
    /// Returns the API's URL.
    pub fn require_subscriptions(
        &self,
        compares_with_config: bool,
    ) -> Result<&reqwest::Url, ConfigError> {
        let Some(api_url) = self.enate.api_url.url() else {
            invalid!(
                "enate.api_url",
                "is not set: configure [enate] with the Enate Web API's base URL and the \
                 bridge's public URL (see config/example.toml)"
            );
        };
        if !compares_with_config {
            return Ok(api_url);
        }
        if self.auth.secrets.is_empty() {
            invalid!(
                "auth.secrets",
                "is empty: subscriptions carry the first of them as CustomHeaderValue \
                 (the bridge requires the header, though Enate does not)"
            );
        }
        if self.enate.public_url.is_empty() {
            invalid!(
                "enate.public_url",
                "is not set: it says which of Enate's subscriptions are this bridge's"
            );
        }
        Ok(api_url)
    }

    /// Checks what the types alone cannot: ranges, names, the URLs.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.server.max_body_bytes == 0 {
            invalid!("server.max_body_bytes", "must be greater than 0");
        }
        if self.server.body_timeout_secs == 0 {
            invalid!("server.body_timeout_secs", "must be greater than 0");
        }
        if self.server.max_body_buffer_bytes < self.server.max_body_bytes {
            invalid!(
                "server.max_body_buffer_bytes",
                "({}) must be at least server.max_body_bytes ({}), \
                 or no body of the largest allowed size could ever be received",
                self.server.max_body_buffer_bytes,
                self.server.max_body_bytes
            );
        }
        if self.server.max_events_per_request == 0 {
            invalid!("server.max_events_per_request", "must be greater than 0");
        }
        if self.amqp.urls.is_empty() {
            invalid!("amqp.urls", "is empty: give at least one broker URL");
        }
        for (key, name) in [
            ("amqp.exchange", &self.amqp.exchange),
            ("amqp.quarantine_exchange", &self.amqp.quarantine_exchange),
            ("amqp.unrouted_exchange", &self.amqp.unrouted_exchange),
        ] {
            if name.is_empty() || name.len() > 255 || name.starts_with("amq.") {
                return Err(ConfigError::new(
                    key,
                    format!("{name:?} is not a usable exchange name (1-255 bytes, not amq.*)"),
                ));
            }
        }
        if self.amqp.confirm_timeout_ms == 0 {
            invalid!("amqp.confirm_timeout_ms", "must be greater than 0");
        }
        if !(1..=1024).contains(&self.amqp.channels) {
            invalid!("amqp.channels", "must be between 1 and 1024");
        }
        if !(1..=65535).contains(&self.amqp.confirms_per_channel) {
            invalid!("amqp.confirms_per_channel", "must be between 1 and 65535");
        }
        if self.events.source.trim().is_empty() {
            invalid!("events.source", "must not be empty");
        }
        if self.spool.mode != SpoolMode::Off {
            if self.spool.dir.as_os_str().is_empty() {
                invalid!(
                    "spool.dir",
                    "must not be empty (or set spool.mode = \"off\")"
                );
            }
            if self.spool.max_bytes == 0 {
                invalid!(
                    "spool.max_bytes",
                    "must be greater than 0 (or set spool.mode = \"off\")"
                );
            }
        }
        self.enate.validate()?;
        Ok(())
    }

    /// `server.max_in_flight`, with 0 resolved to 256 per CPU core.
    pub fn max_in_flight(&self) -> usize {
        match self.server.max_in_flight {
            0 => 256 * std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }

    /// The effective configuration as TOML, secrets and URL passwords redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).expect("settings always serialize")
    }
}

/// The `config` crate's error, with the key it names. It reports unknown
/// fields without their section: name the full key instead. A message of
/// ours that already starts with its key loses the crate's "for key" suffix.
fn describe_config_error(error: config::ConfigError) -> ConfigError {
    let text = error.to_string();
    let key = text
        .rsplit_once("for key `")
        .map(|(_, key)| dot_after_index(key.trim_end_matches(['`', ' '])))
        .unwrap_or_default();
    let message = match text.split_once("unknown field `") {
        Some((_, rest)) => {
            let field = rest.split('`').next().unwrap_or_default();
            let key = if key.is_empty() {
                field.to_string()
            } else {
                format!("{key}.{field}")
            };
            return ConfigError::named(
                key.clone(),
                format!("unknown configuration key `{key}` ({text})"),
            )
            .caused_by(error);
        }
        None => dot_after_index(&text),
    };
    let message = match message.strip_suffix(&format!(" for key `{key}`")) {
        Some(ours) if !key.is_empty() && ours.starts_with(key.as_str()) => ours.to_string(),
        _ => message,
    };
    ConfigError::named(key, message).caused_by(error)
}

/// `config` names a field of a list entry without its dot
/// (`enate.subscriptions[1]webhook`): put the dot back.
fn dot_after_index(text: &str) -> String {
    let mut fixed = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut previous_digit = false;
    while let Some(c) = chars.next() {
        fixed.push(c);
        if c == ']'
            && previous_digit
            && chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_')
        {
            fixed.push('.');
        }
        previous_digit = c.is_ascii_digit();
    }
    fixed
}

impl ListItem for AmqpUrl {
    const KEY: &'static str = "amqp.urls";
    type Error = NotAnAmqpUrl;
    fn from_text(text: &str) -> Result<Self, NotAnAmqpUrl> {
        text.parse()
    }
}

fn redact_url_passwords<S: Serializer>(urls: &[AmqpUrl], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(urls.iter().map(AmqpUrl::shown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn serving_needs_a_secret_and_other_commands_do_not() {
        let settings = Settings::load_from(None, env(&[])).unwrap();
        let error = settings.require_secrets().unwrap_err().to_string();
        assert!(error.contains("auth.secrets"), "{error}");
    }

    #[test]
    fn misspelt_variables_are_reported_and_other_prefixed_ones_are_not() {
        for name in [
            "ENATE_BRIDGE_SERVER__BIND",
            "ENATE_BRIDGE_SERVER_BIND",
            "ENATE_BRIDGE_AMQP__URLS",
        ] {
            let error = Settings::load_from(None, env(&[(name, "x")]))
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(name) && error.contains("ENATE_BRIDGE__SERVER__BIND"),
                "{name}: {error}"
            );
        }
        for name in [
            "ENATE_BRIDGE_TEST_AMQP_URL",
            "ENATE_BRIDGEX",
            "OTHER__SERVER__BIND",
        ] {
            assert!(
                Settings::load_from(None, env(&[(name, "x")])).is_ok(),
                "{name} is not the bridge's"
            );
        }
    }

    #[test]
    fn a_host_name_is_accepted_where_an_address_is_expected() {
        let settings = Settings::load_from(
            None,
            env(&[("ENATE_BRIDGE__SERVER__BIND", "localhost:8080")]),
        )
        .unwrap();
        assert_eq!(
            settings.server.bind.socket_address().to_string(),
            "127.0.0.1:8080"
        );
        assert!(
            settings
                .to_redacted_toml()
                .contains("bind = \"localhost:8080\"")
        );
    }

    #[test]
    fn errors_name_the_key_once_without_doubled_words() {
        let cases = [
            ("ENATE_BRIDGE__SERVER__MAX_BODY_BYTES", "lots"),
            ("ENATE_BRIDGE__SERVER__BIND", "nonsense"),
            ("ENATE_BRIDGE__AMQP__HEARTBEAT_SECS", "-1"),
        ];
        for (key, value) in cases {
            let error = Settings::load_from(None, env(&[(key, value)]))
                .unwrap_err()
                .to_string();
            let words: Vec<&str> = error.split_whitespace().collect();
            assert!(
                !words.windows(2).any(|pair| pair[0] == pair[1]),
                "{key}={value}: {error}"
            );
            assert!(!error.starts_with("configuration"), "{error}");
        }
    }

    #[test]
    fn allow_unauthenticated_starts_without_secrets() {
        let settings = Settings::load_from(
            None,
            env(&[("ENATE_BRIDGE__AUTH__ALLOW_UNAUTHENTICATED", "true")]),
        )
        .unwrap();
        assert!(settings.auth.secrets.is_empty());
        assert_eq!(settings.server.bind.to_string(), "0.0.0.0:8080");
        assert_eq!(settings.amqp.exchange, "enate");
    }

    #[test]
    fn environment_lists_are_comma_separated() {
        let settings = Settings::load_from(
            None,
            env(&[
                ("ENATE_BRIDGE__AUTH__SECRETS", "one, two"),
                (
                    "ENATE_BRIDGE__AMQP__URLS",
                    "amqp://a:pw@h1:5672/%2f,amqp://a:pw@h2:5672/%2f",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(settings.auth.secrets.len(), 2);
        assert_eq!(settings.amqp.urls.len(), 2);
    }

    #[test]
    fn a_numeric_secret_stays_a_string() {
        let settings =
            Settings::load_from(None, env(&[("ENATE_BRIDGE__AUTH__SECRETS", "12345")])).unwrap();
        assert_eq!(settings.auth.secrets[0].expose_secret(), "12345");
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = Settings::load_from(
            None,
            env(&[
                ("ENATE_BRIDGE__AUTH__SECRETS", "s"),
                ("ENATE_BRIDGE__SERVER__BINDD", "x"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("server.bindd"), "{error}");

        let error = Settings::load_from(
            None,
            env(&[
                ("ENATE_BRIDGE__AUTH__SECRETS", "s"),
                ("ENATE_BRIDGE__SERVR__BIND", "x"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("servr"), "{error}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("ENATE_BRIDGE__SERVER__BIND", "nonsense", "server.bind"),
            ("ENATE_BRIDGE__ADMIN__BIND", "nonsense", "admin.bind"),
            (
                "ENATE_BRIDGE__AMQP__ROUTING_KEY",
                "{event}.{colour}",
                "amqp.routing_key",
            ),
            (
                "ENATE_BRIDGE__EVENTS__NAIVE_TIME_ZONE",
                "Mars/Olympus",
                "events.naive_time_zone",
            ),
            (
                "ENATE_BRIDGE__AMQP__URLS",
                "http://x:secretpw@h/",
                "amqp.urls[0]",
            ),
            (
                "ENATE_BRIDGE__INGRESS__INVALID_PAYLOAD",
                "drop",
                "invalid_payload",
            ),
            ("ENATE_BRIDGE__AUTH__HEADER", "bad header", "auth.header"),
            (
                "ENATE_BRIDGE__AMQP__CONFIRM_TIMEOUT_MS",
                "0",
                "amqp.confirm_timeout_ms",
            ),
            ("ENATE_BRIDGE__LOG__FORMAT", "xml", "format"),
            ("ENATE_BRIDGE__SPOOL__MODE", "sometimes", "mode"),
            (
                "ENATE_BRIDGE__AMQP__CONFIRMS_PER_CHANNEL",
                "0",
                "amqp.confirms_per_channel",
            ),
            ("ENATE_BRIDGE__SPOOL__MAX_BYTES", "0", "spool.max_bytes"),
            (
                "ENATE_BRIDGE__SERVER__BODY_TIMEOUT_SECS",
                "0",
                "server.body_timeout_secs",
            ),
            (
                "ENATE_BRIDGE__SERVER__MAX_BODY_BUFFER_BYTES",
                "1000",
                "server.max_body_buffer_bytes",
            ),
            (
                "ENATE_BRIDGE__SERVER__MAX_EVENTS_PER_REQUEST",
                "0",
                "server.max_events_per_request",
            ),
        ];
        for (key, value, expected) in cases {
            let error = Settings::load_from(
                None,
                env(&[("ENATE_BRIDGE__AUTH__SECRETS", "s"), (key, value)]),
            )
            .unwrap_err()
            .to_string();
            assert!(error.contains(expected), "{key}={value}: {error}");
            assert!(
                !error.contains("secretpw"),
                "{key}={value} leaked a password: {error}"
            );
        }
    }

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.toml");
        std::fs::write(
            &path,
            "[amqp]\nexchange = \"from-file\"\nrouting_key = \"{status}\"\n[auth]\nsecrets = [\"s\"]\n",
        )
        .unwrap();
        let settings = Settings::load_from(
            Some(&path),
            env(&[("ENATE_BRIDGE__AMQP__EXCHANGE", "from-env")]),
        )
        .unwrap();
        assert_eq!(settings.amqp.exchange, "from-env");
        assert_eq!(settings.amqp.routing_key.to_string(), "{status}");

        std::fs::write(&path, "[amqp]\nexchang = \"typo\"\n").unwrap();
        let error = Settings::load_from(Some(&path), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("exchang"), "{error}");
    }

    #[test]
    fn redacted_toml_hides_secrets_and_passwords() {
        let settings = Settings::load_from(
            None,
            env(&[
                ("ENATE_BRIDGE__AUTH__SECRETS", "topsecret"),
                (
                    "ENATE_BRIDGE__AMQP__URLS",
                    "amqps://user:hunter2@broker:5671/prod",
                ),
            ]),
        )
        .unwrap();
        let text = settings.to_redacted_toml();
        assert!(
            !text.contains("topsecret") && !text.contains("hunter2"),
            "{text}"
        );
        assert!(text.contains("amqps://user:***@broker:5671/prod"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }

    #[test]
    fn no_secret_reaches_an_error_or_check_config_whatever_its_form() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.toml");
        let cases = [
            "[auth]\nsecrets = \"topsecret\"\n",
            "[auth]\nsecrets = 12345678\n",
            "[auth]\nsecrets = [\"s\"]\n[amqp]\nurls = \"amqp://u:topsecret@h:5672/%2f\"\n",
            "[auth]\nsecrets = [\"s\"]\n[amqp]\nurls = [\"amqp://u:top/secret@h:5672/%2f\"]\n",
            "[auth]\nsecrets = [\"s\"]\n[amqp]\nurls = [\"amqp://u:top#secret@h:5672/%2f\"]\n",
            "[auth]\nsecrets = [\"s\"]\n[amqp]\nurls = [\"amqp://u:top?secret@h:5672/%2f\"]\n",
            "[auth]\nsecrets = [\"s\"]\n[enate.auth]\ntoken_url = \"http://id:topsecret@idp.example/token\"\n",
            "[auth]\nsecrets = [\"s\"]\n[enate]\napi_url = \"https://u:topsecret@enate.example/\"\n",
        ];
        for text in cases {
            std::fs::write(&path, text).unwrap();
            let shown = match Settings::load_from(Some(&path), env(&[])) {
                Ok(settings) => settings.to_redacted_toml(),
                Err(error) => error.to_string(),
            };
            for secret in [
                "topsecret",
                "top/secret",
                "top#secret",
                "top?secret",
                "12345678",
            ] {
                assert!(!shown.contains(secret), "{text}: {shown}");
            }
        }
    }

    #[test]
    fn a_secret_list_is_a_list_or_one_comma_separated_string() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.toml");
        std::fs::write(&path, "[auth]\nsecrets = \"one, two\"\n").unwrap();
        let settings = Settings::load_from(Some(&path), env(&[])).unwrap();
        assert_eq!(settings.auth.secrets.len(), 2);
        std::fs::write(&path, "[auth]\nsecrets = [12345]\n").unwrap();
        let settings = Settings::load_from(Some(&path), env(&[])).unwrap();
        assert_eq!(settings.auth.secrets[0].expose_secret(), "12345");
    }

    #[test]
    fn example_file_loads_and_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
        let from_file =
            Settings::load_from(Some(&path), env(&[("ENATE_BRIDGE__AUTH__SECRETS", "s")])).unwrap();
        let defaults =
            Settings::load_from(None, env(&[("ENATE_BRIDGE__AUTH__SECRETS", "s")])).unwrap();
        assert_eq!(from_file.to_redacted_toml(), defaults.to_redacted_toml());
    }
}
