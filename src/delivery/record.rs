//! How a message is kept in the spool: one line of JSON (everything but the
//! body), a newline, then the body's bytes as received. Readable with any tool,
//! and the body is never re-encoded (a quarantined payload may not even be UTF-8).

use serde::{Deserialize, Serialize};

use super::message::{Destination, EventWords, Outgoing};

/// The header line as written. `spooled_at_ms` is for people reading the spool
/// with other tools, and for the previous release, which requires it (a
/// rollback with events in the spool must still forward them); the spool keeps
/// its own times.
/// `spooled_because` says why it was spooled, for `spool list`; records of
/// earlier releases have none, and the previous release ignores it.
#[derive(Serialize)]
struct HeaderOut<'a> {
    spooled_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    spooled_because: Option<&'a str>,
    message: &'a Outgoing,
}

/// ...and as read back (`spooled_at_ms` is ignored).
#[derive(Deserialize)]
struct HeaderIn {
    #[serde(default)]
    spooled_because: Option<String>,
    message: Outgoing,
}

/// A record read back with what it says of itself.
#[derive(Debug)]
pub struct Decoded {
    pub message: Outgoing,
    /// Why it was spooled; `None` in records of earlier releases.
    pub spooled_because: Option<String>,
}

/// Why a record cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("a spool record without its header line")]
    NoHeader,
    #[error("an unreadable spool record header")]
    Header(#[source] serde_json::Error),
}

/// The record of `message`, spooled `because` (said in words a person reads:
/// the publish error, or the spool policy).
pub fn encode(message: &Outgoing, because: &str) -> Vec<u8> {
    let header = HeaderOut {
        spooled_at_ms: crate::spool::now_ms(),
        spooled_because: Some(because),
        message,
    };
    let mut record = serde_json::to_vec(&header).expect("a message header always serializes");
    record.push(b'\n');
    record.extend_from_slice(&message.body);
    record
}

pub fn decode(record: &[u8]) -> Result<Outgoing, DecodeError> {
    decode_all(record).map(|decoded| decoded.message)
}

pub fn decode_all(record: &[u8]) -> Result<Decoded, DecodeError> {
    let newline = record
        .iter()
        .position(|b| *b == b'\n')
        .ok_or(DecodeError::NoHeader)?;
    let header: HeaderIn =
        serde_json::from_slice(&record[..newline]).map_err(DecodeError::Header)?;
    let mut message = header.message;
    message.body = bytes::Bytes::copy_from_slice(&record[newline + 1..]);
    if message.destination == Destination::Events {
        message.words = Some(EventWords::from_headers(&message.headers));
    }
    Ok(Decoded {
        message,
        spooled_because: header.spooled_because,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::Webhook;

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
        let decoded = decode(&encode(&message, "not connected to RabbitMQ")).unwrap();
        assert_eq!(decoded, message);
        assert_eq!(decoded.destination, Destination::Quarantine);
    }

    #[test]
    fn an_event_reads_back_with_the_words_it_is_counted_by() {
        use crate::{
            event::Event,
            normalize::enums::{EnumKind, Word},
            routing::RoutingValues,
        };
        let word = Word::parse;
        let message = Outgoing::event(Event {
            id: uuid::Uuid::from_u128(8),
            webhook: Webhook::PacketUpdated,
            routing: RoutingValues {
                event: "packet_updated",
                process_type: word(EnumKind::ProcessType, "ticket"),
                status: word(EnumKind::Status, "resolved"),
                rag_status: Word::none(EnumKind::RagStatus),
                communication_type: Word::none(EnumKind::CommunicationType),
                started_by_method: Word::none(EnumKind::StartedByMethod),
            },
            routing_key: "packet_updated.ticket.resolved".into(),
            timestamp: 1_700_000_000,
            body: b"{}".to_vec(),
        });
        let decoded = decode(&encode(&message, "not connected to RabbitMQ")).unwrap();
        assert_eq!(decoded, message);
        assert_eq!(
            decoded
                .words
                .map(|words| (words.process_type.as_str(), words.status.as_str())),
            Some(("ticket", "resolved"))
        );
    }

    #[test]
    fn a_record_of_an_earlier_version_is_read() {
        let old = b"{\"spooled_at_ms\":1700000000123,\"message\":{\"destination\":\"events\",\
            \"id\":\"00000000-0000-0000-0000-000000000007\",\"webhook\":\"PacketUpdated\",\
            \"routing_key\":\"packet_updated.ticket.resolved\",\"timestamp\":1700000000,\
            \"headers\":[[\"event\",\"packet_updated\"]],\"content_type\":\"application/cloudevents+json\"}}\n{\"a\":1}";
        let message = decode(old).unwrap();
        assert_eq!(message.routing_key, "packet_updated.ticket.resolved");
        assert_eq!(&message.body[..], b"{\"a\":1}");
    }

    #[test]
    fn the_previous_release_can_read_a_new_record() {
        /// The header as the release before this format change reads it.
        #[derive(Deserialize)]
        struct PreviousHeaderIn {
            #[allow(dead_code)]
            spooled_at_ms: u64,
            message: Outgoing,
        }
        let message = Outgoing::quarantined(
            uuid::Uuid::from_u128(7),
            Webhook::PacketUpdated,
            "x",
            b"{}".to_vec(),
            None,
            1,
        );
        let record = encode(&message, "spool.mode = always");
        let newline = record.iter().position(|b| *b == b'\n').unwrap();
        let previous: PreviousHeaderIn = serde_json::from_slice(&record[..newline]).unwrap();
        assert_eq!(previous.message.id, message.id);
    }

    #[test]
    fn why_it_was_spooled_reads_back_and_an_earlier_release_s_record_has_none() {
        let message = Outgoing::quarantined(
            uuid::Uuid::from_u128(8),
            Webhook::PacketUpdated,
            "x",
            b"{}".to_vec(),
            None,
            1,
        );
        let decoded = decode_all(&encode(&message, "RabbitMQ refused the message (nack)")).unwrap();
        assert_eq!(
            decoded.spooled_because.as_deref(),
            Some("RabbitMQ refused the message (nack)")
        );
        let earlier = format!(
            "{{\"spooled_at_ms\":1,\"message\":{}}}\n{{}}",
            serde_json::to_string(&message).unwrap()
        );
        let decoded = decode_all(earlier.as_bytes()).unwrap();
        assert_eq!(decoded.message, message);
        assert_eq!(decoded.spooled_because, None);
    }

    #[test]
    fn a_damaged_record_is_an_error() {
        assert!(matches!(decode(b"no newline"), Err(DecodeError::NoHeader)));
        assert!(matches!(
            decode(b"{not json}\nbody"),
            Err(DecodeError::Header(_))
        ));
    }
}
