//! The one error of a configuration that cannot be used: which key, why, and
//! the error underneath if there is one. Every message names the key (or the
//! variable, or the file), never a secret.

use std::fmt;

type Source = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug)]
pub struct ConfigError {
    /// `server.bind`, `amqp.urls[0]`, a variable's name or `--config`.
    key: String,
    reason: String,
    wording: Wording,
    source: Option<Source>,
}

/// How key and reason make one message. Some messages are asserted word for
/// word by tests and read by people as sentences, so each keeps its wording.
#[derive(Debug, Clone, Copy)]
enum Wording {
    /// `key: reason`.
    Colon,
    /// `key reason`: the reason reads on from the key ("must be greater than 0").
    Predicate,
    /// `reason` alone: it names the key itself (the `config` crate's messages).
    Named,
}

impl ConfigError {
    /// `key: reason`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::worded(key, reason, Wording::Colon)
    }

    /// `key predicate`, e.g. `server.max_body_bytes must be greater than 0`.
    pub fn predicate(key: impl Into<String>, predicate: impl Into<String>) -> Self {
        Self::worded(key, predicate, Wording::Predicate)
    }

    /// A message that names `key` itself.
    pub(super) fn named(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::worded(key, message, Wording::Named)
    }

    fn worded(key: impl Into<String>, reason: impl Into<String>, wording: Wording) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
            wording,
            source: None,
        }
    }

    pub(super) fn caused_by(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The key that is wrong (or the variable, or `--config`).
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (key, reason) = (&self.key, &self.reason);
        match self.wording {
            Wording::Colon => write!(f, "{key}: {reason}"),
            Wording::Predicate => write!(f, "{key} {reason}"),
            Wording::Named => f.write_str(reason),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}
