//! Validation: what the types alone cannot say (ranges, names, sizes that
//! must agree), checked once after loading; and what some commands only need
//! (a secret to serve, Enate's URLs to manage subscriptions), checked before
//! they run.

use super::{ConfigError, Settings, SpoolMode, tls_files};

/// Returns a [`ConfigError::predicate`]: the key, then what is wrong with it.
macro_rules! invalid {
    ($key:expr, $($arg:tt)*) => { return Err(ConfigError::predicate($key, format!($($arg)*))) };
}

impl Settings {
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
    /// Section by section in the schema's order: which of two wrong keys is
    /// reported does not depend on how the checks are grouped.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.validate_server()?;
        self.validate_amqp()?;
        if self.events.source.trim().is_empty() {
            invalid!("events.source", "must not be empty");
        }
        self.validate_spool()?;
        self.enate.validate()?;
        Ok(())
    }

    fn validate_server(&self) -> Result<(), ConfigError> {
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
        let tls = &self.server.tls;
        match (&tls.cert_file, &tls.key_file) {
            (Some(_), None) => invalid!(
                "server.tls.key_file",
                "is not set: server.tls.cert_file needs the private key of its certificate"
            ),
            (None, Some(_)) => invalid!(
                "server.tls.cert_file",
                "is not set: server.tls.key_file needs the certificate it belongs to"
            ),
            _ => {}
        }
        if tls.handshake_timeout_secs == 0 {
            invalid!(
                "server.tls.handshake_timeout_secs",
                "must be greater than 0"
            );
        }
        Ok(())
    }

    /// Reads the TLS files the settings name, once, into what rustls and
    /// reqwest take: a file that cannot be used stops the start here, named
    /// by its key, rather than at the first handshake. `load` calls it; code
    /// that sets the file keys itself (the tests) calls it again.
    pub fn read_tls_files(&mut self) -> Result<(), ConfigError> {
        if let Some((cert, key)) = self.server.tls.files() {
            let certificate = tls_files::read_server_certificate(cert, key).map_err(|error| {
                ConfigError::new(
                    format!("server.tls.{}", error.file().key()),
                    error.to_string(),
                )
            })?;
            self.server.tls.certificate = Some(certificate);
        }
        if let Some(path) = &self.enate.tls.ca_file {
            let roots = tls_files::read_ca_bundle(path)
                .map_err(|error| ConfigError::new("enate.tls.ca_file", error.to_string()))?;
            self.enate.tls.ca_certificates = roots;
        }
        Ok(())
    }

    fn validate_amqp(&self) -> Result<(), ConfigError> {
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
        if self.amqp.threads > 1024 {
            invalid!("amqp.threads", "must be between 0 and 1024");
        }
        Ok(())
    }

    /// The spool's place and size matter only when there is a spool.
    fn validate_spool(&self) -> Result<(), ConfigError> {
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
        Ok(())
    }
}
