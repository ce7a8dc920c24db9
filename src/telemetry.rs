//! Logging: JSON lines (or plain text) to standard output, filtered by
//! `log.level`, or by RUST_LOG when it is set.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFilter, LogFormat, LogSettings};

pub fn init(settings: &LogSettings) {
    // RUST_LOG is for a person debugging: it wins when set, unless tracing
    // cannot read it, and then the configured filter (checked at load) holds.
    let chosen = std::env::var("RUST_LOG")
        .ok()
        .and_then(|value| LogFilter::parse(&value).ok())
        .unwrap_or_else(|| settings.level.clone());
    let filter = with_quiet_dependencies(&chosen);
    // Colour only for a person at a terminal: escape codes in a file or a
    // pipe (a container's log, `| grep`) are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .with_writer(std::io::stdout);
    // A second init (tests build several applications) keeps the first subscriber.
    let _ = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Dependencies that log at ERROR what is not the bridge's error, each off
/// unless the directives name it (`log.level = "info,lapin=debug"`):
/// - lapin logs what the bridge handles and reports itself, once and in its own
///   words (a refused login, a lost connection, its own retries: "Exponential
///   backoff attempts exhausted, aborting recovery" after a refused login);
/// - actix-http's connection dispatcher logs "stream error" for every malformed
///   or timed-out request from a client (a bad request line, headers too large,
///   a header timeout): the sender's fault, already answered 400/408/431, and a
///   flood of them is a flood of ERROR lines;
/// - actix-server announces its workers and services at INFO (six lines at
///   every start), which the bridge's own "enate-bridge listening" line says.
const QUIET_DEPENDENCIES: [(&str, &str); 3] = [
    ("lapin", "lapin=off"),
    ("actix_http", "actix_http::h1::dispatcher=off"),
    ("actix_server", "actix_server=warn"),
];

fn with_quiet_dependencies(chosen: &LogFilter) -> EnvFilter {
    let mut filter = chosen
        .directives()
        .iter()
        .cloned()
        .fold(EnvFilter::default(), EnvFilter::add_directive);
    for (name, directive) in QUIET_DEPENDENCIES {
        if !chosen.as_str().contains(name) {
            filter = filter.add_directive(directive.parse().expect("a valid constant directive"));
        }
    }
    filter
}

/// An error and its causes, joined by ": ", for a log line or a JSON reason.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_are_quiet_unless_named() {
        let quiet = with_quiet_dependencies(&LogFilter::parse("info").unwrap()).to_string();
        for (_, directive) in QUIET_DEPENDENCIES {
            assert!(quiet.contains(directive), "{directive} in {quiet}");
        }
        let named = with_quiet_dependencies(&LogFilter::parse("info,lapin=debug").unwrap());
        assert!(!named.to_string().contains("lapin=off"), "{named}");
    }
}
