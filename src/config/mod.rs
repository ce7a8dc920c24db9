//! Configuration: built-in defaults, then an optional TOML file, then
//! `ENATE_BRIDGE__<SECTION>__<KEY>` environment variables (lists comma-separated).
//!
//! Every struct denies unknown fields, so a typo in a key stops the start with a
//! message naming it instead of being silently ignored; so does a variable that
//! starts with `ENATE_BRIDGE` but is not spelt `ENATE_BRIDGE__SECTION__KEY`.
//! Values are parsed once, at load, into the types the rest of the code uses:
//! nothing else parses a setting again. Each job has its file: `schema` the
//! sections and their defaults, `load` the sources in order, `environment` the
//! variables, `validate` what the types cannot check, and the value types in
//! `values`, `secrets`, `log_filter` and `enate`; `tls_files` reads the TLS
//! files the settings name, and `tls` makes `[amqp.tls]`'s into the broker's
//! TLS configuration. `config/example.toml`
//! documents every key; keep it in step with the defaults in `schema`.
//!
//! This module depends on no module of the bridge above it.

mod enate;
mod environment;
mod error;
mod load;
mod log_filter;
mod schema;
mod secrets;
mod tls;
mod tls_files;
mod validate;
mod values;

pub use enate::{
    EnateAuthMethod, EnateAuthSettings, EnateSettings, EnateTlsSettings, SubscriptionEntry,
    normalize_url,
};
pub use error::ConfigError;
pub use log_filter::{LogFilter, NotALogFilter};
pub use schema::{
    AdminSettings, AmqpSettings, AuthSettings, DedupSettings, EventSettings, IngressSettings,
    InvalidPayloadPolicy, LogFormat, LogSettings, ServerSettings, ServerTlsSettings, Settings,
    SpoolMode, SpoolSettings,
};
pub use secrets::{EmptySecret, Secret};
pub use tls::AmqpTlsSettings;
pub use tls_files::{
    PairContents, ServerCertificate, TlsFile, TlsFileError, crypto_provider, read_pair,
    read_server_certificate, server_certificate,
};
pub use values::{
    HeaderSetting, ListenAddress, NotAHeaderName, NotATimeZone, NotAUrl, NotAnAddress,
    TimeZoneSetting, UrlSetting,
};

#[cfg(test)]
mod tests;
