//! Making messages safe: published with a confirm, or spooled, as the spool
//! policy says. A 200 is answered only on `Ok`. Every publish outcome, from a
//! request or from the forwarder, is counted and logged here and nowhere else.

use std::{sync::Arc, time::Instant};

use futures::{StreamExt, stream};
use serde::Serialize;

use super::{
    message::{Destinations, Outgoing},
    record,
};
use crate::{
    amqp::{Broker, Confirmed, PublishError, Unavailable},
    config::SpoolMode,
    metrics::{FailureReason, Metrics, Stage},
    spool::{Spool, SpoolError},
    telemetry::error_chain,
};

/// What happens to a message RabbitMQ does not confirm: the only states there
/// are, so a spool mode without a spool cannot be built.
#[derive(Clone)]
pub enum SpoolPolicy {
    /// No spool: what RabbitMQ does not confirm is answered 503.
    Off,
    /// Spool what RabbitMQ does not confirm; publish the rest directly.
    OnFailure(Spool),
    /// Spool every message first; the forwarder publishes.
    Always(Spool),
}

impl SpoolPolicy {
    pub fn spool(&self) -> Option<&Spool> {
        match self {
            SpoolPolicy::Off => None,
            SpoolPolicy::OnFailure(spool) | SpoolPolicy::Always(spool) => Some(spool),
        }
    }

    pub fn mode(&self) -> SpoolMode {
        match self {
            SpoolPolicy::Off => SpoolMode::Off,
            SpoolPolicy::OnFailure(_) => SpoolMode::OnFailure,
            SpoolPolicy::Always(_) => SpoolMode::Always,
        }
    }
}

/// Publishes or spools; cheap to clone (the forwarder holds one).
#[derive(Clone)]
pub struct Delivery {
    pub(super) broker: Broker,
    pub(super) destinations: Destinations,
    pub(super) policy: SpoolPolicy,
    pub(super) metrics: Arc<Metrics>,
}

/// Where the messages are safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safe {
    /// Every message confirmed by RabbitMQ.
    Published,
    /// Some or all fsynced in the spool, the rest confirmed.
    Spooled,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// RabbitMQ did not confirm, and there is no spool.
    #[error("RabbitMQ did not confirm a message")]
    Unconfirmed(#[source] PublishError),
    #[error("the spool cannot keep the messages")]
    Spool(#[source] SpoolError),
}

/// What takes events now, when the bridge is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AcceptingInto {
    Broker,
    Spool,
}

/// Why the bridge cannot answer 200 now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NotReady {
    #[error("{0}")]
    Broker(Unavailable),
    #[error("the spool cannot take events: {}", error_chain(.0))]
    Spool(SpoolError),
    #[error("{broker}; and the spool cannot take events: {}", error_chain(spool))]
    Neither {
        broker: Unavailable,
        spool: SpoolError,
    },
}

/// Messages of one request published at once at most: enough to fill the
/// lanes, bounded so one large request cannot flood them.
const PUBLISH_CONCURRENCY: usize = 64;

/// Why a record was spooled under `spool.mode = "always"`; otherwise its
/// publish error says why.
const SPOOLED_ALWAYS: &str = "spool.mode = always";

impl Delivery {
    pub fn new(
        broker: Broker,
        destinations: Destinations,
        policy: SpoolPolicy,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            broker,
            destinations,
            policy,
            metrics,
        }
    }

    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    pub fn policy(&self) -> &SpoolPolicy {
        &self.policy
    }

    pub async fn deliver(&self, messages: &[Outgoing]) -> Result<Safe, DeliveryError> {
        let spool = match &self.policy {
            SpoolPolicy::Always(spool) => {
                self.spool(
                    spool,
                    messages
                        .iter()
                        .map(|message| record::encode(message, SPOOLED_ALWAYS))
                        .collect(),
                )
                .await?;
                return Ok(Safe::Spooled);
            }
            SpoolPolicy::OnFailure(spool) => Some(spool),
            SpoolPolicy::Off => None,
        };
        let results: Vec<Result<(), PublishError>> = stream::iter(messages)
            .map(|message| self.publish(message))
            .buffered(PUBLISH_CONCURRENCY)
            .collect()
            .await;
        let mut first_error = None;
        let unconfirmed: Vec<Vec<u8>> = messages
            .iter()
            .zip(results)
            .filter_map(|(message, result)| {
                let error = result.err()?;
                let record = record::encode(message, &error.to_string());
                first_error.get_or_insert(error);
                Some(record)
            })
            .collect();
        let Some(error) = first_error else {
            return Ok(Safe::Published);
        };
        match spool {
            Some(spool) => {
                // A timed-out publish may still reach the broker: then the spool
                // sends it again, with the same id, and consumers drop the copy.
                self.spool(spool, unconfirmed).await?;
                Ok(Safe::Spooled)
            }
            None => Err(DeliveryError::Unconfirmed(error)),
        }
    }

    /// Appends records to the spool, timed (fsync included).
    async fn spool(&self, spool: &Spool, records: Vec<Vec<u8>>) -> Result<(), DeliveryError> {
        let started = Instant::now();
        spool.append(records).await.map_err(DeliveryError::Spool)?;
        self.metrics
            .observe_stage(Stage::SpoolWrite, started.elapsed());
        Ok(())
    }

    /// Publishes one message for a request and waits for its confirm; counts
    /// the outcome, and times the stages of a confirmed one.
    async fn publish(&self, message: &Outgoing) -> Result<(), PublishError> {
        let result = self
            .broker
            .publish(self.destinations.amqp_message(message))
            .await;
        if let Ok(confirmed) = &result {
            self.observe_stages(confirmed);
        }
        self.count(message, &result);
        result.map(|_| ())
    }

    /// A request's message, on its lane and back (the forwarder's are not
    /// requests: its lane wait is its own window's).
    fn observe_stages(&self, confirmed: &Confirmed) {
        let metrics = &self.metrics;
        metrics.observe_stage(Stage::LaneWait, confirmed.lane_wait);
        metrics.observe_stage(Stage::Send, confirmed.send);
        metrics.observe_stage(Stage::Confirm, confirmed.confirm);
        metrics.observe_stage(Stage::Reply, confirmed.settled_at.elapsed());
    }

    /// The one place where publish outcomes become metrics.
    pub(super) fn count(&self, message: &Outgoing, result: &Result<Confirmed, PublishError>) {
        match result {
            Ok(confirmed) => {
                self.metrics.observe_confirm(confirmed.confirm);
                if let Some(words) = message.words {
                    self.metrics
                        .count_published(message.webhook, words.process_type, words.status);
                }
            }
            Err(error) => {
                let reason = failure_reason(error);
                self.metrics.count_failure(reason);
                // Debug, not warn: in an outage every request fails; the connection
                // supervisor reports the outage once, the request log each outcome.
                tracing::debug!(reason = reason.label(), error = %error, id = %message.id, "publish failed");
            }
        }
    }

    /// `Ok(what takes events now)` while a request can be answered 200.
    pub fn readiness(&self) -> Result<AcceptingInto, NotReady> {
        let broker = self.broker.readiness();
        match &self.policy {
            SpoolPolicy::Always(spool) => spool
                .writable()
                .map(|()| AcceptingInto::Spool)
                .map_err(NotReady::Spool),
            SpoolPolicy::Off => broker
                .map(|()| AcceptingInto::Broker)
                .map_err(NotReady::Broker),
            SpoolPolicy::OnFailure(spool) => match (broker, spool.writable()) {
                (Ok(()), _) => Ok(AcceptingInto::Broker),
                (Err(_), Ok(())) => Ok(AcceptingInto::Spool),
                (Err(broker), Err(spool)) => Err(NotReady::Neither { broker, spool }),
            },
        }
    }
}

/// The `reason` label of a failed publish.
pub fn failure_reason(error: &PublishError) -> FailureReason {
    match error {
        PublishError::Disconnected => FailureReason::Disconnected,
        PublishError::Blocked => FailureReason::Blocked,
        PublishError::Nack => FailureReason::Nack,
        PublishError::Returned => FailureReason::Returned,
        // Not waited for because the last publish timed out: counted with it.
        PublishError::Timeout | PublishError::Stalled => FailureReason::Timeout,
        PublishError::Channel(_) | PublishError::NotConfirmMode => FailureReason::Channel,
    }
}
