//! The messages the quarantine queue holds when a command starts, received
//! without taking them.
//!
//! The queue is counted first (a passive declare); then a consumer with manual
//! acks receives exactly that many. Nothing here acks: what a command does
//! not ack goes back to the queue when its channel closes, in its place and
//! marked redelivered, and a process killed at any moment leaves the queue as
//! it was (the broker requeues a dead connection's unacked messages). So
//! `list` is read-only, and `replay` loses nothing whenever it stops.
//!
//! Why not `basic.get` and a nack with requeue: every nack puts the message
//! back at once, where the next get finds it again, so a read of the whole
//! queue would loop over its head. Why count first: the messages published
//! while a command runs (`replay`'s own, put back with their current reason)
//! are not its to read, so every run ends.

use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::{
    Acker, BasicProperties, Channel, Connection, Consumer,
    message::Delivery,
    options::{BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};

use crate::webhook::Webhook;

/// How long the consumer may stay silent before the read stops short: the
/// broker sends what the queue holds at once, so silence means another
/// consumer took the rest.
const SILENCE: Duration = Duration::from_secs(10);
/// How often a silent consumer's connection is looked at.
const LOOK: Duration = Duration::from_secs(1);

/// One quarantined payload as the ingress published it.
pub struct Held {
    /// `x-enate-webhook` as given (a message published by hand may lack it).
    pub webhook_header: Option<String>,
    /// That header as a webhook the bridge knows.
    pub webhook: Option<Webhook>,
    /// `x-quarantine-reason`.
    pub reason: String,
    /// The AMQP `timestamp`: when the ingress received it, seconds since the epoch.
    pub received: Option<u64>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// As published, for a message put back unchanged.
    pub routing_key: String,
    pub properties: BasicProperties,
    pub(super) acker: Acker,
}

/// Reads the messages present at the start, once each.
pub struct Reader {
    channel: Channel,
    consumer: Consumer,
    /// Counted at the start.
    pub present: u32,
    received: u32,
    /// Whether the warning about a quorum queue was given.
    warned_quorum: bool,
}

/// The header a quorum queue adds to a message it delivers again. Each read
/// by these commands is such a delivery: with a `delivery-limit` (20 by
/// default since RabbitMQ 4.0), a message read that often is dropped or
/// dead-lettered. The bridge declares the quarantine without a queue type, a
/// classic queue unless the vhost's default type is quorum; a quorum one (that
/// default, or a queue declared by the operator) gets a warning.
const QUORUM_DELIVERY_COUNT: &str = "x-delivery-count";

impl Reader {
    /// Counts `queue` and starts consuming it with manual acks, at most
    /// `prefetch` unacked at once (0: no limit, for a read that acks nothing).
    pub async fn open(
        connection: &Connection,
        queue: &str,
        prefetch: u16,
    ) -> Result<Self, lapin::Error> {
        let channel = connection.create_channel().await?;
        let present = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?
            .message_count();
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        let consumer = channel
            .basic_consume(
                queue.into(),
                "enate-bridge-quarantine".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Self {
            channel,
            consumer,
            present,
            received: 0,
            warned_quorum: false,
        })
    }

    /// The next message of those present at the start; `None` once all were
    /// received, or when the broker stops sending (see [`Reader::short_by`]).
    pub async fn next(&mut self) -> anyhow::Result<Option<Held>> {
        if self.received >= self.present {
            return Ok(None);
        }
        let silent_since = Instant::now();
        loop {
            match tokio::time::timeout(LOOK, self.consumer.next()).await {
                Ok(Some(delivery)) => {
                    self.received += 1;
                    let delivery = delivery?;
                    self.warn_if_quorum(&delivery);
                    return Ok(Some(Held::from(delivery)));
                }
                Ok(None) => {
                    anyhow::bail!("RabbitMQ ended the consumer of the quarantine queue")
                }
                // A lost connection need not end the consumer's stream: look.
                Err(_) if !self.channel.status().connected() => {
                    anyhow::bail!("the connection to RabbitMQ was lost")
                }
                Err(_) if silent_since.elapsed() >= SILENCE => return Ok(None),
                Err(_) => {}
            }
        }
    }

    fn warn_if_quorum(&mut self, delivery: &Delivery) {
        let counted = delivery
            .properties
            .headers()
            .as_ref()
            .is_some_and(|headers| headers.inner().contains_key(QUORUM_DELIVERY_COUNT));
        if counted && !self.warned_quorum {
            self.warned_quorum = true;
            eprintln!(
                "warning: the quarantine queue is a quorum queue: RabbitMQ counts every read \
                 of a message against its delivery-limit (20 by default since RabbitMQ 4.0) \
                 and drops or dead-letters it past that; make the quarantine a classic queue \
                 (docs/runbook.md)"
            );
        }
    }

    /// How many of those present at the start were not received (another
    /// consumer took them).
    pub fn short_by(&self) -> u32 {
        self.present - self.received
    }

    /// Closes the channel: every message not acked goes back to the queue.
    pub async fn close(self) {
        let _ = self.channel.close(200, "done".into()).await;
    }
}

impl From<Delivery> for Held {
    fn from(delivery: Delivery) -> Self {
        let properties = delivery.properties.clone();
        let header = |name: &str| {
            properties
                .headers()
                .as_ref()
                .and_then(|headers| headers.inner().get(name))
                .and_then(text)
        };
        let webhook_header = header("x-enate-webhook");
        Self {
            webhook: webhook_header
                .as_deref()
                .and_then(Webhook::from_path_segment),
            webhook_header,
            reason: header("x-quarantine-reason").unwrap_or_default(),
            received: *properties.timestamp(),
            content_type: properties.content_type().as_ref().map(|c| c.to_string()),
            routing_key: delivery.routing_key.to_string(),
            body: delivery.data,
            properties: delivery.properties,
            acker: delivery.acker,
        }
    }
}

/// A header's value as text, whichever string type it was published with.
fn text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(text) => Some(String::from_utf8_lossy(text.as_bytes()).into_owned()),
        AMQPValue::ShortString(text) => Some(text.to_string()),
        _ => None,
    }
}
