//! `log.level`: tracing directives (`info,lapin=warn`), checked when the
//! configuration is loaded so a typo stops the start with the key named,
//! and kept parsed so logging does not parse them again.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};
use tracing_subscriber::filter::Directive;

/// A log filter: the text as written (for `check-config`, and to see which
/// targets it names) and its directives.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFilter {
    text: String,
    directives: Vec<Directive>,
}

/// Text with a directive tracing cannot read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{text:?} is not a valid filter")]
pub struct NotALogFilter {
    text: String,
}

impl LogFilter {
    /// Accepts exactly what `EnvFilter::try_new` accepts: comma-separated
    /// directives, empty ones skipped, regular expressions allowed in field
    /// values (tracing's default), so RUST_LOG and `log.level` agree.
    pub fn parse(text: &str) -> Result<Self, NotALogFilter> {
        let directives = text
            .split(',')
            .filter(|directive| !directive.is_empty())
            .map(Directive::from_str)
            .collect::<Result<_, _>>()
            .map_err(|_| NotALogFilter {
                text: text.to_string(),
            })?;
        Ok(Self {
            text: text.to_string(),
            directives,
        })
    }

    pub fn directives(&self) -> &[Directive] {
        &self.directives
    }

    /// As written in the configuration (or in RUST_LOG).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for LogFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for LogFilter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `log.level`'s message has always named its key first (`log.level: "x" is
/// not a valid filter`); written so, the `config` crate's "for key" suffix is
/// dropped and the message stays the same.
pub(super) fn log_level<'de, D: Deserializer<'de>>(deserializer: D) -> Result<LogFilter, D::Error> {
    let text = String::deserialize(deserializer)?;
    LogFilter::parse(&text).map_err(|error| D::Error::custom(format!("log.level: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_env_filter_accepts() {
        for text in [
            "info",
            "info,lapin=warn",
            "",
            "warn,,enate_bridge=debug",
            "info,[",
            "lapin=loud",
            "[span{a=1}]=debug",
        ] {
            let env_filter = tracing_subscriber::EnvFilter::try_new(text);
            assert_eq!(LogFilter::parse(text).is_ok(), env_filter.is_ok(), "{text}");
        }
    }

    #[test]
    fn keeps_its_text_and_says_what_is_wrong() {
        assert_eq!(
            LogFilter::parse("info,lapin=warn").unwrap().to_string(),
            "info,lapin=warn"
        );
        assert_eq!(
            LogFilter::parse("info,[").unwrap_err().to_string(),
            "\"info,[\" is not a valid filter"
        );
    }
}
