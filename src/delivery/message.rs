//! The message as RabbitMQ will get it, whether it comes straight from a request
//! or back out of the spool: destination, routing key, body, and the properties
//! and headers the contract promises.

use bytes::Bytes;
use jiff::Timestamp;
use lapin::{
    BasicProperties,
    types::{AMQPValue, FieldTable, LongString},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    amqp::Message,
    event::{Event, EventBuilder, cloudevents_type},
    normalize::enums::{EnumKind, Word},
    payload::{InvalidPayload, RawObject},
    webhook::Webhook,
};

pub const APP_ID: &str = "enate-bridge";
const CLOUDEVENTS_CONTENT_TYPE: &str = "application/cloudevents+json";
/// Persistent: the broker writes the message to disk before confirming it.
const PERSISTENT: u8 = 2;

/// Exchange names, from the configuration in force when the message is published.
#[derive(Debug, Clone)]
pub struct Destinations {
    pub exchange: String,
    pub quarantine_exchange: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    /// The events exchange, routed by the routing key.
    Events,
    /// The quarantine exchange: a payload kept as received.
    Quarantine,
}

/// A message's AMQP properties besides its headers (see
/// [`Outgoing::shown_properties`]).
#[derive(Debug, Serialize)]
pub struct ShownProperties<'a> {
    pub delivery_mode: u8,
    pub message_id: String,
    pub timestamp: u64,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub app_id: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<&'a str>,
}

/// One message for RabbitMQ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    pub destination: Destination,
    pub id: Uuid,
    pub webhook: Webhook,
    pub routing_key: String,
    /// Receive time, seconds since the epoch.
    pub timestamp: u64,
    /// For events `event`, `process_type`, `status`; for quarantined payloads
    /// `x-enate-webhook` and `x-quarantine-reason`.
    pub headers: Vec<(String, String)>,
    pub content_type: Option<String>,
    /// The body as published; kept apart in the spool record (see `record`).
    #[serde(skip)]
    pub body: Bytes,
    /// An event's words, which its metric counts it by; `None` for a
    /// quarantined payload. The spool record keeps them as the headers' text
    /// only (the format the previous release reads), so `record` reads them
    /// back from there.
    #[serde(skip)]
    pub words: Option<EventWords>,
}

/// The routing words of an event that its headers carry and
/// `enate_bridge_events_published_total` is labelled by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventWords {
    pub process_type: Word,
    pub status: Word,
}

impl EventWords {
    /// The words of a message kept as text, e.g. read back from the spool. A
    /// missing header reads as `unknown`.
    pub fn from_headers(headers: &[(String, String)]) -> Self {
        let word = |kind, name| {
            let text = headers
                .iter()
                .find(|(key, _)| key == name)
                .map_or("", |(_, value)| value.as_str());
            Word::parse(kind, text)
        };
        Self {
            process_type: word(EnumKind::ProcessType, "process_type"),
            status: word(EnumKind::Status, "status"),
        }
    }
}

impl Outgoing {
    pub fn event(event: Event) -> Self {
        let words = EventWords {
            process_type: event.routing.process_type,
            status: event.routing.status,
        };
        Self {
            destination: Destination::Events,
            id: event.id,
            webhook: event.webhook,
            timestamp: event.timestamp,
            headers: vec![
                ("event".into(), event.routing.event.into()),
                ("process_type".into(), words.process_type.as_str().into()),
                ("status".into(), words.status.as_str().into()),
            ],
            content_type: Some(CLOUDEVENTS_CONTENT_TYPE.into()),
            routing_key: event.routing_key,
            body: event.body.into(),
            words: Some(words),
        }
    }

    /// The events a body's objects become, as the ingress publishes them (and
    /// `quarantine replay` again): every object becomes an event, or the body
    /// is invalid as a whole, so a body is never half published.
    pub fn events(
        builder: &EventBuilder,
        webhook: Webhook,
        objects: Vec<RawObject<'_>>,
        received: Timestamp,
    ) -> Result<Vec<Self>, InvalidPayload> {
        objects
            .into_iter()
            .map(|raw| builder.build(webhook, raw, received).map(Self::event))
            .collect()
    }

    /// A payload that cannot become an event, kept exactly as received.
    pub fn quarantined(
        id: Uuid,
        webhook: Webhook,
        reason: &str,
        body: Vec<u8>,
        content_type: Option<&str>,
        timestamp: u64,
    ) -> Self {
        Self {
            destination: Destination::Quarantine,
            id,
            webhook,
            routing_key: webhook.event_name().into(),
            timestamp,
            headers: vec![
                ("x-enate-webhook".into(), webhook.enate_name().into()),
                ("x-quarantine-reason".into(), reason.into()),
            ],
            content_type: content_type.filter(|c| c.len() <= 255).map(str::to_string),
            body: body.into(),
            words: None,
        }
    }

    /// The AMQP properties: persistent, `message_id` (the event id: it is also
    /// how a returned message is matched to its publish), and the contract's headers.
    /// The AMQP properties the message is published with, as data: what
    /// `spool export` prints, so that a message can be published again by
    /// hand exactly as the bridge would (`properties` builds them from this).
    pub fn shown_properties(&self) -> ShownProperties<'_> {
        ShownProperties {
            delivery_mode: PERSISTENT,
            message_id: self.id.to_string(),
            timestamp: self.timestamp,
            kind: cloudevents_type(self.webhook),
            app_id: APP_ID,
            content_type: self.content_type.as_deref(),
        }
    }

    fn properties(&self) -> BasicProperties {
        let mut headers = FieldTable::default();
        for (name, value) in &self.headers {
            headers.insert(
                name.as_str().into(),
                AMQPValue::LongString(LongString::from(value.as_str())),
            );
        }
        let shown = self.shown_properties();
        let mut properties = BasicProperties::default()
            .with_delivery_mode(shown.delivery_mode)
            .with_message_id(shown.message_id.into())
            .with_timestamp(shown.timestamp)
            .with_type(shown.kind.into())
            .with_app_id(shown.app_id.into())
            .with_headers(headers);
        if let Some(content_type) = shown.content_type {
            properties = properties.with_content_type(content_type.into());
        }
        properties
    }
}

impl Destinations {
    /// The AMQP message for `message`: its exchange, routing key, body and properties.
    pub fn amqp_message(&self, message: &Outgoing) -> Message {
        let exchange = match message.destination {
            Destination::Events => &self.exchange,
            Destination::Quarantine => &self.quarantine_exchange,
        };
        Message {
            exchange: exchange.as_str().into(),
            routing_key: message.routing_key.as_str().into(),
            body: message.body.clone(),
            properties: message.properties(),
        }
    }
}
