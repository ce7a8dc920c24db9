//! Turns events (and quarantined payloads) into AMQP messages with the
//! properties and headers the contract promises, and publishes them.

use futures::future::join_all;
use lapin::{
    BasicProperties,
    types::{AMQPValue, FieldTable, LongString},
};
use uuid::Uuid;

use crate::{
    amqp::{Broker, Message, PublishError},
    event::{Event, cloudevents_type},
    webhook::Webhook,
};

pub const APP_ID: &str = "enate-bridge";
const CLOUDEVENTS_CONTENT_TYPE: &str = "application/cloudevents+json";
/// Persistent: the broker writes the message to disk before confirming it.
const PERSISTENT: u8 = 2;

/// Where messages go.
#[derive(Debug, Clone)]
pub struct Destinations {
    pub exchange: String,
    pub quarantine_exchange: String,
}

/// Publishes every event at once and waits for all confirms. The first failure
/// is returned; the others were confirmed, and an Enate retry republishes them
/// with the same ids, which consumers drop as duplicates.
pub async fn publish_events(
    broker: &Broker,
    destinations: &Destinations,
    events: &[Event],
) -> Result<(), PublishError> {
    let results = join_all(events.iter().map(|event| async move {
        broker
            .publish(Message {
                exchange: &destinations.exchange,
                routing_key: &event.routing_key,
                body: &event.body,
                properties: event_properties(event),
            })
            .await?;
        broker
            .metrics()
            .count_published(&event.routing, event.webhook);
        Ok(())
    }))
    .await;
    results.into_iter().collect()
}

fn event_properties(event: &Event) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (name, value) in [
        ("event", event.routing.event),
        ("process_type", event.routing.process_type),
        ("status", event.routing.status),
    ] {
        headers.insert(name.into(), AMQPValue::LongString(LongString::from(value)));
    }
    BasicProperties::default()
        .with_content_type(CLOUDEVENTS_CONTENT_TYPE.into())
        .with_delivery_mode(PERSISTENT)
        .with_message_id(event.id.to_string().into())
        .with_timestamp(event.timestamp)
        .with_type(cloudevents_type(event.webhook).into())
        .with_app_id(APP_ID.into())
        .with_headers(headers)
}

/// A payload that cannot become an event, kept exactly as received.
pub struct Quarantined<'a> {
    pub id: Uuid,
    pub webhook: Webhook,
    pub reason: &'a str,
    pub body: &'a [u8],
    /// The Content-Type the sender gave, if any.
    pub content_type: Option<&'a str>,
    pub timestamp: u64,
}

pub async fn publish_quarantined(
    broker: &Broker,
    destinations: &Destinations,
    payload: Quarantined<'_>,
) -> Result<(), PublishError> {
    let mut headers = FieldTable::default();
    headers.insert(
        "x-enate-webhook".into(),
        AMQPValue::LongString(LongString::from(payload.webhook.enate_name())),
    );
    headers.insert(
        "x-quarantine-reason".into(),
        AMQPValue::LongString(LongString::from(payload.reason)),
    );
    let mut properties = BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_message_id(payload.id.to_string().into())
        .with_timestamp(payload.timestamp)
        .with_type(cloudevents_type(payload.webhook).into())
        .with_app_id(APP_ID.into())
        .with_headers(headers);
    if let Some(content_type) = payload.content_type.filter(|c| c.len() <= 255) {
        properties = properties.with_content_type(content_type.into());
    }
    broker
        .publish(Message {
            exchange: &destinations.quarantine_exchange,
            routing_key: payload.webhook.event_name(),
            body: payload.body,
            properties,
        })
        .await
}
