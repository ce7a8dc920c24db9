//! Drains the spool into RabbitMQ: the oldest messages first, published on one
//! channel so they reach the broker in arrival order, confirms pipelined, and
//! each deleted only after its confirm. When a message of a batch fails, only
//! the confirmed messages before it are deleted, so order is kept; those after
//! it that were confirmed anyway are sent again later (consumers drop them by id).

use std::time::Duration;

use tokio::sync::watch;

use super::Spool;
use crate::{
    amqp::{Broker, ChannelChoice},
    dispatch::{Destinations, publish_all},
};

/// Messages published per round; their confirms are awaited together.
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
    let (keys, messages): (Vec<u64>, Vec<_>) = batch.into_iter().unzip();
    let results = publish_all(broker, destinations, &messages, ChannelChoice::First).await;
    let confirmed: Vec<u64> = keys
        .iter()
        .zip(&results)
        .take_while(|(_, result)| result.is_ok())
        .map(|(key, _)| *key)
        .collect();
    let all = confirmed.len() == keys.len();
    if !confirmed.is_empty() {
        let forwarded = confirmed.len() as u64;
        spool.remove(confirmed).await?;
        broker.metrics().spool_forwarded.inc_by(forwarded);
        tracing::debug!(forwarded, "forwarded spooled events");
    }
    Ok(all)
}
