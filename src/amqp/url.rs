//! A broker URL (one of `amqp.urls`), parsed once, when the configuration is
//! loaded, and carrying the form that may be shown: logs, errors and
//! `check-config` print the URL with its password replaced by `***`.

use std::{fmt, str::FromStr};

use lapin::uri::AMQPUri;

use crate::redact::redact_url;

/// Debug and Display show the redacted form only: the parsed URI holds the password.
#[derive(Clone)]
pub struct AmqpUrl {
    uri: AMQPUri,
    shown: String,
}

/// Text that is not an AMQP URL. Shows the URL without its password.
#[derive(Debug, Clone, thiserror::Error)]
#[error("({shown}) is not an AMQP URL: {reason}")]
pub struct NotAnAmqpUrl {
    shown: String,
    reason: String,
}

impl FromStr for AmqpUrl {
    type Err = NotAnAmqpUrl;

    fn from_str(text: &str) -> Result<Self, NotAnAmqpUrl> {
        let shown = redact_url(text);
        match AMQPUri::from_str(text) {
            Ok(uri) => Ok(Self { uri, shown }),
            Err(reason) => Err(NotAnAmqpUrl { shown, reason }),
        }
    }
}

impl AmqpUrl {
    /// What lapin connects to (its heartbeat and other options may still be set).
    pub fn uri(&self) -> &AMQPUri {
        &self.uri
    }

    /// The URL with its password replaced by `***`.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

impl fmt::Display for AmqpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for AmqpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AmqpUrl({})", self.shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_no_password_whatever_happens() {
        let url: AmqpUrl = "amqps://user:hunter2@broker:5671/prod".parse().unwrap();
        assert_eq!(url.to_string(), "amqps://user:***@broker:5671/prod");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(url.uri().authority.userinfo.password, "hunter2");
        let error = "http://x:secretpw@h/".parse::<AmqpUrl>().unwrap_err();
        assert!(!error.to_string().contains("secretpw"), "{error}");
    }
}
