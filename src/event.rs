//! The CloudEvents 1.0 envelope (structured JSON mode) around normalized data,
//! the event id, and the routing values of each event.

use jiff::Timestamp;
use serde::Serialize;
use sha1::{Digest, Sha1};
use uuid::Uuid;

use crate::{
    config::Settings,
    normalize::{
        EventData, NormalizeOptions,
        enums::{EnumKind, Word},
        normalize,
    },
    payload::{InvalidPayload, RawObject},
    routing::{RoutingKeyTemplate, RoutingValues},
    webhook::Webhook,
};

/// Namespace of the v5 UUIDs used as event ids. Never change it: ids would change
/// with it, and consumers that drop duplicates by id would see every event as new.
pub const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_6b2e_4d1a_4c55_9f0e_3c8e_2a7d_51b9);

/// The id of an event: a v5 UUID of the webhook's name and the event's bytes as
/// received, so an Enate retry of the same delivery gets the same id.
///
/// Computed as `Uuid::new_v5(&EVENT_ID_NAMESPACE, name + "\n" + bytes)` is (the
/// SHA-1 of the namespace then the name, RFC 9562), but hashed in place instead
/// of copied into one buffer first, and with a SHA-1 that uses the CPU's SHA
/// instructions where it has them (`uuid`'s own is portable code only): the
/// hash was a tenth of a request's instructions (docs/benchmark.md).
pub fn event_id(webhook: Webhook, bytes: &[u8]) -> Uuid {
    let mut hash = Sha1::new();
    hash.update(EVENT_ID_NAMESPACE.as_bytes());
    hash.update(webhook.enate_name().as_bytes());
    hash.update(b"\n");
    hash.update(bytes);
    let digest: [u8; 20] = hash.finalize().into();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(first).into_uuid()
}

/// The CloudEvents `type` of each webhook.
pub fn cloudevents_type(webhook: Webhook) -> &'static str {
    match webhook {
        Webhook::PacketCreated => "com.enate.webhook.packet_created",
        Webhook::PacketUpdated => "com.enate.webhook.packet_updated",
        Webhook::NewCommunication => "com.enate.webhook.new_communication",
        Webhook::BusinessObjectCreated => "com.enate.webhook.business_object_created",
        Webhook::BusinessObjectUpdated => "com.enate.webhook.business_object_updated",
        Webhook::SpecificBusinessObjectUpdated => {
            "com.enate.webhook.specific_business_object_updated"
        }
    }
}

#[derive(Serialize)]
struct CloudEvent<'a> {
    specversion: &'static str,
    id: Uuid,
    source: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    time: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    datacontenttype: &'static str,
    data: &'a EventData,
}

/// An event ready to publish.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: Uuid,
    pub webhook: Webhook,
    pub routing: RoutingValues,
    pub routing_key: String,
    /// Receive time, seconds since the epoch (the AMQP `timestamp` property).
    pub timestamp: u64,
    /// The CloudEvents JSON document.
    pub body: Vec<u8>,
}

/// Builds events from raw objects; holds what every event of the process shares.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    pub source: String,
    pub normalize: NormalizeOptions,
    pub routing_key: RoutingKeyTemplate,
}

impl EventBuilder {
    /// What the settings say every event shares: the ingress and
    /// `quarantine replay` build events from this, so both build the same.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            source: settings.events.source.clone(),
            normalize: NormalizeOptions {
                naive_time_zone: settings.events.naive_time_zone.zone().clone(),
                include_raw: settings.events.include_raw,
            },
            routing_key: settings.amqp.routing_key.clone(),
        }
    }

    pub fn build(
        &self,
        webhook: Webhook,
        raw: RawObject<'_>,
        received: Timestamp,
    ) -> Result<Event, InvalidPayload> {
        let id = event_id(webhook, raw.text.as_bytes());
        let data = normalize(raw, &self.normalize)?;
        let subject = data
            .packet_guid
            .as_deref()
            .or(if webhook.is_packet_event() {
                data.guid.as_deref()
            } else {
                None
            });
        let time = format!("{received:.3}");
        let envelope = CloudEvent {
            specversion: "1.0",
            id,
            source: &self.source,
            kind: cloudevents_type(webhook),
            time: &time,
            subject,
            datacontenttype: "application/json",
            data: &data,
        };
        let body = serde_json::to_vec(&envelope).expect("events always serialize");
        let routing = RoutingValues {
            event: webhook.event_name(),
            process_type: Word::of(EnumKind::ProcessType, data.process_type),
            status: Word::of(EnumKind::Status, data.status),
            rag_status: Word::of(EnumKind::RagStatus, data.rag_status),
            communication_type: Word::of(EnumKind::CommunicationType, data.communication_type),
            started_by_method: Word::of(EnumKind::StartedByMethod, data.started_by_method),
        };
        Ok(Event {
            id,
            webhook,
            routing_key: self.routing_key.render(&routing),
            routing,
            timestamp: received.as_second().max(0) as u64,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::enums::{NONE, UNKNOWN};
    use crate::payload::split_body;
    use serde_json::{Value, json};

    fn builder() -> EventBuilder {
        EventBuilder {
            source: "enate-bridge".into(),
            normalize: NormalizeOptions {
                naive_time_zone: jiff::tz::TimeZone::UTC,
                include_raw: true,
            },
            routing_key: RoutingKeyTemplate::parse("{event}.{process_type}.{status}").unwrap(),
        }
    }

    fn build(webhook: Webhook, body: &[u8]) -> Event {
        let raw = split_body(body).unwrap().into_iter().next().unwrap();
        builder()
            .build(webhook, raw, "2026-01-02T03:04:05.678912Z".parse().unwrap())
            .unwrap()
    }

    #[test]
    fn the_envelope_is_cloudevents_structured_json() {
        let body = br#"{"GUID":"AAAAAAAA-0000-4000-8000-000000000001","ProcessType":2,"Status":4}"#;
        let event = build(Webhook::PacketUpdated, body);
        let json: Value = serde_json::from_slice(&event.body).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["id"], event.id.to_string());
        assert_eq!(json["source"], "enate-bridge");
        assert_eq!(json["type"], "com.enate.webhook.packet_updated");
        assert_eq!(json["time"], "2026-01-02T03:04:05.678Z");
        assert_eq!(json["subject"], "aaaaaaaa-0000-4000-8000-000000000001");
        assert_eq!(json["datacontenttype"], "application/json");
        assert_eq!(json["data"]["status"], "resolved");
        assert_eq!(event.routing_key, "packet_updated.ticket.resolved");
        assert_eq!(event.timestamp, 1767323045);
    }

    #[test]
    fn the_id_depends_on_the_webhook_and_the_exact_bytes() {
        let a = build(Webhook::PacketUpdated, br#"{"GUID":"x"}"#).id;
        assert_eq!(a, build(Webhook::PacketUpdated, br#"{"GUID":"x"}"#).id);
        assert_eq!(a, build(Webhook::PacketUpdated, b"  {\"GUID\":\"x\"}\n").id);
        assert_ne!(a, build(Webhook::PacketCreated, br#"{"GUID":"x"}"#).id);
        assert_ne!(a, build(Webhook::PacketUpdated, br#"{"GUID": "x"}"#).id);
        assert_eq!(a.get_version_num(), 5);
        assert_eq!(a, event_id(Webhook::PacketUpdated, br#"{"GUID":"x"}"#));
    }

    #[test]
    fn the_id_is_the_v5_uuid_of_the_webhook_name_and_the_bytes() {
        for (webhook, bytes) in [
            (Webhook::PacketUpdated, &br#"{"GUID":"x"}"#[..]),
            (Webhook::NewCommunication, b""),
            (Webhook::SpecificBusinessObjectUpdated, &[0xab; 1500][..]),
        ] {
            let mut name = format!("{}\n", webhook.enate_name()).into_bytes();
            name.extend_from_slice(bytes);
            assert_eq!(
                event_id(webhook, bytes),
                Uuid::new_v5(&EVENT_ID_NAMESPACE, &name),
                "{webhook} with {} bytes",
                bytes.len()
            );
        }
    }

    #[test]
    fn subject_is_the_packet_guid() {
        let communication = build(
            Webhook::NewCommunication,
            br#"{"GUID":"11111111-0000-4000-8000-000000000000","PacketGUID":"22222222-0000-4000-8000-000000000000"}"#,
        );
        let json: Value = serde_json::from_slice(&communication.body).unwrap();
        assert_eq!(json["subject"], "22222222-0000-4000-8000-000000000000");

        let business_object = build(
            Webhook::BusinessObjectUpdated,
            br#"{"GUID":"11111111-0000-4000-8000-000000000000","Name":"Acme"}"#,
        );
        let json: Value = serde_json::from_slice(&business_object.body).unwrap();
        assert!(json.get("subject").is_none(), "{json}");
    }

    #[test]
    fn no_routing_word_is_longer_than_the_template_check_assumes() {
        let words = Webhook::ALL
            .iter()
            .map(|webhook| webhook.event_name())
            .chain(
                [
                    EnumKind::ProcessType,
                    EnumKind::Status,
                    EnumKind::RagStatus,
                    EnumKind::CommunicationType,
                    EnumKind::StartedByMethod,
                ]
                .iter()
                .flat_map(|kind| kind.table().iter().map(|(_, name)| *name)),
            )
            .chain([NONE, UNKNOWN]);
        for word in words {
            assert!(word.len() <= crate::routing::MAX_WORD_BYTES, "{word}");
        }
    }

    #[test]
    fn routing_values_say_none_and_unknown() {
        let cases = [
            (
                Webhook::NewCommunication,
                json!({"Subject": "hi"}),
                "new_communication.none.none",
            ),
            (
                Webhook::PacketCreated,
                json!({"ProcessType": 1, "Status": "To Do"}),
                "packet_created.case.to_do",
            ),
            (
                Webhook::PacketUpdated,
                json!({"ProcessType": 7, "Status": 2}),
                "packet_updated.unknown.in_progress",
            ),
            (
                Webhook::BusinessObjectCreated,
                json!({"Name": "Acme"}),
                "business_object_created.none.none",
            ),
        ];
        for (webhook, body, expected) in cases {
            let event = build(webhook, body.to_string().as_bytes());
            assert_eq!(event.routing_key, expected, "{body}");
        }
    }
}
