//! Drains the spool into RabbitMQ in arrival order: one message at a time, each
//! confirmed before the next is published (two messages in flight on different
//! channels could be enqueued in either order), deleted in batches once
//! confirmed. At the first failure the batch stops, so order is kept; the failed
//! message is retried first.

use std::time::Duration;

use tokio::sync::watch;

use super::Spool;
use crate::{
    amqp::Broker,
    dispatch::{Destinations, publish},
};

/// Messages read from the spool per round; their deletion is one commit.
const BATCH: usize = 256;
/// Pause after a failed round, so a broker in trouble is not hammered.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// How often an idle forwarder looks, beside being woken by appends.
const IDLE_TICK: Duration = Duration::from_secs(1);

pub async fn run(
    spool: Spool,
    broker: Broker,
    destinations: Destinations,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        if spool.stats().events == 0 {
            tokio::select! {
                () = spool.appended() => {}
                () = tokio::time::sleep(IDLE_TICK) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        if broker.readiness().is_err() {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let confirmed_all = match forward_batch(&spool, &broker, &destinations).await {
            Ok(all) => all,
            Err(error) => {
                tracing::warn!(%error, "forwarding the spool failed");
                false
            }
        };
        if !confirmed_all {
            tokio::select! {
                () = tokio::time::sleep(RETRY_PAUSE) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// Forwards one batch; `Ok(true)` when every message of it was confirmed.
async fn forward_batch(
    spool: &Spool,
    broker: &Broker,
    destinations: &Destinations,
) -> Result<bool, super::SpoolError> {
    let batch = spool.oldest(BATCH).await?;
    let mut confirmed = Vec::with_capacity(batch.len());
    for (key, message) in &batch {
        if publish(broker, destinations, message).await.is_err() {
            break;
        }
        confirmed.push(*key);
    }
    let all = confirmed.len() == batch.len();
    if !confirmed.is_empty() {
        let forwarded = confirmed.len() as u64;
        spool.remove(confirmed).await?;
        broker.metrics().spool_forwarded.inc_by(forwarded);
        tracing::debug!(forwarded, "forwarded spooled events");
    }
    Ok(all)
}
