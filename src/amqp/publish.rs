//! Publishing with publisher confirms. A message is safe only when the broker
//! acks it *without* returning it: a `mandatory` message nobody could route
//! still comes back as an ack, carrying the returned message.
//!
//! `Broker::publish` spreads messages over the session's lanes (one channel
//! each, see `lane`): no publish waits for another's confirm, only for its own.
//! `Broker::in_order` gives one lane for a caller that needs its messages
//! enqueued in the order it submits them (the spool's forwarder).

use std::time::Duration;

use bytes::Bytes;
use lapin::{BasicProperties, types::ShortString};

use super::{broker::Broker, lane::LaneHandle};

pub use super::lane::Ticket;

/// One message to publish, persistent and `mandatory`. `properties` should
/// carry a `message_id`: it is how a returned message is matched to its publish.
#[derive(Debug, Clone)]
pub struct Message {
    pub exchange: ShortString,
    pub routing_key: ShortString,
    pub body: Bytes,
    pub properties: BasicProperties,
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
}

/// A lane that keeps the order of what is submitted to it.
#[derive(Clone)]
pub struct OrderedLane {
    lane: LaneHandle,
    timeout: Duration,
}

impl Broker {
    /// Publishes one message and waits for its confirm, at most
    /// `amqp.confirm_timeout_ms` in all (queueing, sending and confirming).
    /// Returns the time from send to confirm.
    pub async fn publish(&self, message: Message) -> Result<Duration, PublishError> {
        let lane = self.next_lane()?;
        let confirmed = async { lane.submit(message).await?.verdict().await };
        tokio::time::timeout(self.timeout(), confirmed)
            .await
            .map_err(|_| PublishError::Timeout)?
    }

    /// One lane for messages that must be enqueued in submission order.
    pub fn in_order(&self) -> Result<OrderedLane, PublishError> {
        Ok(OrderedLane {
            lane: self.ordered_lane()?,
            timeout: self.timeout(),
        })
    }
}

impl OrderedLane {
    /// Queues `message` behind everything submitted before it; the ticket gives
    /// its verdict. Waits while the lane is full, at most the confirm timeout.
    pub async fn submit(&self, message: Message) -> Result<Ticket, PublishError> {
        tokio::time::timeout(self.timeout, self.lane.submit(message))
            .await
            .map_err(|_| PublishError::Timeout)?
    }

    /// A ticket's verdict, waiting at most the confirm timeout.
    pub async fn verdict(&self, ticket: Ticket) -> Result<Duration, PublishError> {
        tokio::time::timeout(self.timeout, ticket.verdict())
            .await
            .map_err(|_| PublishError::Timeout)?
    }
}
