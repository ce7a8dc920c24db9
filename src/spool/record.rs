//! How a spooled message is stored: one line of JSON (everything but the body),
//! a newline, then the body's bytes as received. Readable with any tool, and the
//! body is never re-encoded (a quarantined payload may not even be UTF-8).

use serde::{Deserialize, Serialize};

use crate::dispatch::Outgoing;

/// The header line as written...
#[derive(Serialize)]
struct HeaderOut<'a> {
    /// When the message entered the spool, milliseconds since the epoch.
    spooled_at_ms: u64,
    message: &'a Outgoing,
}

/// ...and as read back.
#[derive(Deserialize)]
struct HeaderIn {
    spooled_at_ms: u64,
    message: Outgoing,
}

pub fn encode(message: &Outgoing, spooled_at_ms: u64) -> Vec<u8> {
    let header = HeaderOut {
        spooled_at_ms,
        message,
    };
    let mut record = serde_json::to_vec(&header).expect("spool headers always serialize");
    record.push(b'\n');
    record.extend_from_slice(&message.body);
    record
}

/// The message and when it was spooled.
pub fn decode(record: &[u8]) -> Result<(Outgoing, u64), String> {
    let newline = record
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("a spool record without its header line")?;
    let header: HeaderIn = serde_json::from_slice(&record[..newline])
        .map_err(|e| format!("an unreadable spool record header: {e}"))?;
    let mut message = header.message;
    message.body = record[newline + 1..].to_vec();
    Ok((message, header.spooled_at_ms))
}

/// When a record was spooled, without decoding its body.
pub fn spooled_at_ms(record: &[u8]) -> Option<u64> {
    let newline = record.iter().position(|b| *b == b'\n')?;
    #[derive(Deserialize)]
    struct When {
        spooled_at_ms: u64,
    }
    serde_json::from_slice::<When>(&record[..newline])
        .ok()
        .map(|w| w.spooled_at_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{dispatch::Destination, webhook::Webhook};

    #[test]
    fn a_record_round_trips_with_its_exact_body() {
        let message = Outgoing::quarantined(
            uuid::Uuid::from_u128(7),
            Webhook::NewCommunication,
            "not JSON",
            b"\xff\xfe not utf-8\n with a newline".to_vec(),
            Some("text/plain"),
            1_700_000_000,
        );
        let record = encode(&message, 1_700_000_000_123);
        let (decoded, at) = decode(&record).unwrap();
        assert_eq!(decoded, message);
        assert_eq!(decoded.destination, Destination::Quarantine);
        assert_eq!(at, 1_700_000_000_123);
        assert_eq!(spooled_at_ms(&record), Some(1_700_000_000_123));
    }

    #[test]
    fn a_damaged_record_is_an_error() {
        assert!(decode(b"no newline").is_err());
        assert!(decode(b"{not json}\nbody").is_err());
    }
}
