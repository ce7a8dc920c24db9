//! What the spool holds, record by record, for `spool list` and `spool
//! export`: read straight from `spool.dir`, read-only and one record at a
//! time (`Spool::for_each`), so a spool of any size is listed in the memory
//! of one record, beside a running bridge or not.
//!
//! - `list`: a line per record: key, age, size, webhook, routing key, event
//!   id, why it was spooled (`--json`: the same as JSON lines);
//! - `export`: JSON lines with the message itself too: everything needed to
//!   read it or publish it again by hand (exchange kind, routing key,
//!   headers, properties; the body as JSON when it is, else base64).

use std::io::Write;

use base64::Engine;
use serde::Serialize;
use serde_json::value::RawValue;

use super::{
    message::{Outgoing, ShownProperties},
    record,
};
use crate::spool::{Key, ReadError, Spool};

/// How the records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Table,
    JsonLines,
    Export,
}

/// One record as `list --json` and `export` show it.
#[derive(Serialize)]
struct Line<'a> {
    key: Key,
    /// ms since the epoch; `null` for records of releases that did not keep it.
    spooled_at_ms: Option<u64>,
    age_seconds: Option<f64>,
    bytes: usize,
    #[serde(flatten)]
    what: What<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum What<'a> {
    Message {
        id: String,
        webhook: &'a str,
        destination: &'static str,
        routing_key: &'a str,
        /// `null` for records of releases that did not keep it.
        spooled_because: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<&'a Outgoing>,
        /// The AMQP properties it is published with (export only).
        #[serde(skip_serializing_if = "Option::is_none")]
        properties: Option<ShownProperties<'a>>,
        /// The body, when it is JSON (an event always is).
        #[serde(skip_serializing_if = "Option::is_none")]
        body: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        body_base64: Option<String>,
    },
    /// A record that cannot be read back (the forwarder quarantines it).
    Damaged {
        error: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        record_base64: Option<String>,
    },
}

/// Writes every record of the spool in `dir` to `out` in `form`, oldest
/// first; returns how many.
pub fn write_records(
    dir: &std::path::Path,
    form: Form,
    now_ms: u64,
    out: &mut impl Write,
) -> Result<u64, ReadError> {
    let mut count = 0;
    if form == Form::Table {
        writeln!(
            out,
            "{:>10} {:>10} {:>8}  {:<22} {:<40} {:<36}  WHY",
            "KEY", "AGE_S", "BYTES", "WEBHOOK", "ROUTING_KEY", "EVENT_ID"
        )
        .map_err(ReadError::Write)?;
    }
    Spool::for_each(dir, |key, spooled_at_ms, bytes| {
        count += 1;
        let age_seconds = spooled_at_ms.map(|at| now_ms.saturating_sub(at) as f64 / 1000.0);
        let decoded = record::decode_all(bytes);
        if form == Form::Table {
            return match &decoded {
                Ok(decoded) => writeln!(
                    out,
                    "{key:>10} {:>10} {:>8}  {:<22} {:<40} {:<36}  {}",
                    age_seconds.map_or("-".into(), |age| format!("{age:.0}")),
                    bytes.len(),
                    decoded.message.webhook.enate_name(),
                    decoded.message.routing_key,
                    decoded.message.id,
                    decoded.spooled_because.as_deref().unwrap_or("-"),
                ),
                Err(error) => writeln!(out, "{key:>10} damaged record: {error}"),
            };
        }
        let export = form == Form::Export;
        let what = match &decoded {
            Ok(decoded) => {
                let message = &decoded.message;
                let body: Option<&RawValue> = if export {
                    std::str::from_utf8(&message.body)
                        .ok()
                        .and_then(|text| serde_json::from_str(text).ok())
                } else {
                    None
                };
                What::Message {
                    id: message.id.to_string(),
                    webhook: message.webhook.enate_name(),
                    destination: match message.destination {
                        super::Destination::Events => "events",
                        super::Destination::Quarantine => "quarantine",
                    },
                    routing_key: &message.routing_key,
                    spooled_because: decoded.spooled_because.as_deref(),
                    message: export.then_some(message),
                    properties: export.then(|| message.shown_properties()),
                    body_base64: (export && body.is_none())
                        .then(|| base64::engine::general_purpose::STANDARD.encode(&message.body)),
                    body,
                }
            }
            Err(error) => What::Damaged {
                error: error.to_string(),
                record_base64: export
                    .then(|| base64::engine::general_purpose::STANDARD.encode(bytes)),
            },
        };
        let line = Line {
            key,
            spooled_at_ms,
            age_seconds,
            bytes: bytes.len(),
            what,
        };
        serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::other)?;
        out.write_all(b"\n")
    })?;
    out.flush().map_err(ReadError::Write)?;
    Ok(count)
}
