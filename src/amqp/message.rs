//! What is published and how a publish can fail: the words every other part of
//! `amqp` speaks, so this file imports none of them.

use std::time::{Duration, Instant};

use bytes::Bytes;
use lapin::{
    BasicProperties, Channel, PublisherConfirm, options::BasicPublishOptions, types::ShortString,
};

/// One message to publish, persistent and `mandatory`. `properties` should
/// carry a `message_id`: it is how a returned message is matched to its publish.
#[derive(Debug, Clone)]
pub struct Message {
    pub exchange: ShortString,
    pub routing_key: ShortString,
    pub body: Bytes,
    pub properties: BasicProperties,
}

impl Message {
    /// Sends it on `channel` as every publisher of the bridge does: `mandatory`,
    /// so that an unroutable message comes back instead of vanishing. The
    /// confirm is the caller's to await.
    pub async fn send(self, channel: &Channel) -> lapin::Result<PublisherConfirm> {
        channel
            .basic_publish(
                self.exchange,
                self.routing_key,
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                &self.body,
                self.properties,
            )
            .await
    }
}

/// A message RabbitMQ confirmed, and where its time went on its lane: the
/// stages a caller can report (this module knows nothing of metrics).
#[derive(Debug, Clone, Copy)]
pub struct Confirmed {
    /// From submitting it to the lane's task taking it: queued behind other
    /// sends or a full window, plus the task's wake-up.
    pub lane_wait: Duration,
    /// Handing it to lapin until its I/O thread has written it, with the rest
    /// of its batch (the messages its lane took at once).
    pub send: Duration,
    /// From sent to RabbitMQ's confirm, as the lane saw it.
    pub confirm: Duration,
    /// When the lane judged it: the requester's own wake-up is counted from here.
    pub settled_at: Instant,
}

/// Why a message is not confirmed. Every variant means "not safe in RabbitMQ".
#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    #[error("not connected to RabbitMQ")]
    Disconnected,
    #[error("RabbitMQ blocks publishing (connection.blocked)")]
    Blocked,
    #[error("RabbitMQ refused the message (nack)")]
    Nack,
    #[error("RabbitMQ returned the message as unroutable")]
    Returned,
    #[error("RabbitMQ did not confirm the message in time")]
    Timeout,
    #[error("the channel failed")]
    Channel(#[source] lapin::Error),
    #[error("the channel is not in confirm mode")]
    NotConfirmMode,
    /// Not sent: a publish timed out and no confirm came since (see `ConfirmWatch`).
    #[error("RabbitMQ has confirmed nothing since a publish timed out; not waiting for it")]
    Stalled,
}
