//! Publishing with publisher confirms. A message is safe only when the broker
//! acks it *without* returning it: a `mandatory` message nobody could route
//! still comes back as an ack, carrying the returned message.
//!
//! `Broker::publish` spreads messages over the session's lanes (one channel
//! each, see `lane`): no publish waits for another's confirm, only for its own.
//! `Broker::in_order` gives one lane for a caller that needs its messages
//! enqueued in the order it submits them (the spool's forwarder).
//!
//! `ConfirmWatch`: after a confirm times out, requests stop waiting for
//! confirms that do not come (one at a time still tries) until one comes back.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

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
    /// Not sent: a publish timed out and no confirm came since (see `ConfirmWatch`).
    #[error("RabbitMQ has confirmed nothing since a publish timed out; not waiting for it")]
    Stalled,
}

/// Whether RabbitMQ confirms what it takes.
///
/// A node can take publishes it cannot confirm: a quorum queue without a
/// majority (two of three nodes down) neither acks nor nacks a message sent on
/// a channel opened before, until the majority is back
/// (`tests/cluster/reproducers.rs`). Every request then waited the whole
/// `amqp.confirm_timeout_ms` before being spooled, so the bridge answered in
/// 5 s and took at most `server.max_in_flight` requests per timeout (the
/// cluster suite's "two of three nodes down" fault).
///
/// So once a publish times out, requests are failed at once (and spooled)
/// instead, except one at a time, the probe, which still waits for its
/// confirm. The first confirm (the probe's, the spool forwarder's) or a new
/// connection ends it; a nack or a return does not (they are answers, but not
/// confirms).
#[derive(Debug, Default)]
pub(crate) struct ConfirmWatch {
    stalled: AtomicBool,
    probing: AtomicBool,
}

/// Held by the request that probes a stalled broker; ends its turn on drop.
pub(crate) struct Probe<'a>(Option<&'a AtomicBool>);

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        if let Some(probing) = self.0 {
            probing.store(false, Ordering::Release);
        }
    }
}

impl ConfirmWatch {
    /// Whether a request may publish now: always while confirms come; while
    /// they do not, only as the probe, one request at a time.
    fn admit(&self) -> Result<Probe<'_>, PublishError> {
        if !self.stalled.load(Ordering::Acquire) {
            return Ok(Probe(None));
        }
        if self.probing.swap(true, Ordering::AcqRel) {
            return Err(PublishError::Stalled);
        }
        Ok(Probe(Some(&self.probing)))
    }

    /// Learns from a publish's outcome.
    fn record(&self, result: &Result<Duration, PublishError>) {
        match result {
            Ok(_) => {
                if self.stalled.swap(false, Ordering::AcqRel) {
                    tracing::info!("RabbitMQ confirms again; publishing without the spool");
                }
            }
            Err(PublishError::Timeout) => {
                if !self.stalled.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        "RabbitMQ did not confirm a publish in time; events are spooled at once \
                         (one request at a time still waits for a confirm) until a confirm comes back"
                    );
                }
            }
            Err(_) => {}
        }
    }

    /// A new connection: its node may well confirm.
    pub(crate) fn reset(&self) {
        self.stalled.store(false, Ordering::Release);
    }
}

/// A lane that keeps the order of what is submitted to it.
#[derive(Clone)]
pub struct OrderedLane {
    lane: LaneHandle,
    timeout: Duration,
    confirms: Arc<ConfirmWatch>,
}

impl Broker {
    /// Publishes one message and waits for its confirm, at most
    /// `amqp.confirm_timeout_ms` in all (queueing, sending and confirming).
    /// Returns the time from send to confirm.
    /// Fails at once with `Stalled` while RabbitMQ confirms nothing (see
    /// `ConfirmWatch`), unless this publish is the one that probes.
    pub async fn publish(&self, message: Message) -> Result<Duration, PublishError> {
        let confirms = self.confirms();
        let _probe = confirms.admit()?;
        let lane = self.next_lane()?;
        let confirmed = async { lane.submit(message).await?.verdict().await };
        let result = tokio::time::timeout(self.timeout(), confirmed)
            .await
            .unwrap_or(Err(PublishError::Timeout));
        confirms.record(&result);
        result
    }

    /// One lane for messages that must be enqueued in submission order.
    pub fn in_order(&self) -> Result<OrderedLane, PublishError> {
        Ok(OrderedLane {
            lane: self.ordered_lane()?,
            timeout: self.timeout(),
            confirms: self.confirms().clone(),
        })
    }
}

impl OrderedLane {
    /// Queues `message` behind everything submitted before it; the ticket gives
    /// its verdict. Waits while the lane is full, at most the confirm timeout.
    pub async fn submit(&self, message: Message) -> Result<Ticket, PublishError> {
        let submitted = tokio::time::timeout(self.timeout, self.lane.submit(message))
            .await
            .unwrap_or(Err(PublishError::Timeout));
        if let Err(error) = &submitted {
            self.confirms.record(&Err(error.clone()));
        }
        submitted
    }

    /// A ticket's verdict, waiting at most the confirm timeout.
    /// The forwarder's confirms count too: its first one ends a stall.
    pub async fn verdict(&self, ticket: Ticket) -> Result<Duration, PublishError> {
        let result = tokio::time::timeout(self.timeout, ticket.verdict())
            .await
            .unwrap_or(Err(PublishError::Timeout));
        self.confirms.record(&result);
        result
    }
}
