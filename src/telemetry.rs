//! Logging: JSON lines (or plain text) to standard output, filtered by
//! `log.level`, or by RUST_LOG when it is set.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

pub fn init(settings: &LogSettings) {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| EnvFilter::try_new(value).is_ok())
        .unwrap_or_else(|| settings.level.clone());
    let filter = EnvFilter::try_new(with_quiet_dependencies(&directives))
        .unwrap_or_else(|_| EnvFilter::new("info"));
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

fn with_quiet_dependencies(directives: &str) -> String {
    let mut directives = directives.to_string();
    for (name, directive) in QUIET_DEPENDENCIES {
        if !directives.contains(name) {
            directives.push(',');
            directives.push_str(directive);
        }
    }
    directives
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
