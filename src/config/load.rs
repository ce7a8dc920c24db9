//! Loading: built-in defaults, then an optional TOML file, then the
//! environment, deserialized into the schema (each value parsed once, into
//! its type) and validated; and the `config` crate's errors, reworded to name
//! the full key.

use std::path::Path;

use super::{ConfigError, Settings, environment};

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
        let builder = environment::apply(builder, variables)?;
        let mut settings: Settings = builder
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(describe_config_error)?;
        settings.validate()?;
        // The files [amqp.tls] and [server.tls] name are read here, once:
        // into what the broker connects with, and the ingress's certificate.
        settings.amqp.tls.load(&settings.amqp.urls)?;
        settings.read_tls_files()?;
        Ok(settings)
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
