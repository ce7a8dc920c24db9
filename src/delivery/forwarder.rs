//! Drains the spool into RabbitMQ, oldest first. A round streams: records are
//! read in chunks and submitted in arrival order to one lane (one channel, so
//! RabbitMQ enqueues them in that order) while earlier ones are still being
//! confirmed, so the channel never waits for a chunk boundary; confirmed
//! records are deleted a batch per commit as they settle.
//!
//! At the first failure (nack, return, timeout, lost connection) nothing more
//! is submitted; the messages already in flight are settled, the confirmed ones
//! deleted, and the next round starts again from the oldest, so the failed
//! message is retried first. Order holds as long as nothing fails; a message
//! that failed can land after ones that were already in flight behind it.

use std::time::Duration;

use futures::{FutureExt, StreamExt, stream::FuturesOrdered};
use tokio_util::sync::CancellationToken;

use super::{Delivery, message::Outgoing, record};
use crate::{
    amqp::{Confirmed, PublishError},
    spool::{Key, Spool, SpoolError},
    webhook::Webhook,
};

/// Records read from the spool at a time.
const CHUNK: usize = 256;
/// Records submitted and not yet settled at most: what a round holds in memory.
const MAX_OUT: usize = 1024;
/// Confirmed records deleted per commit.
const REMOVE_EVERY: usize = 1024;
/// Pause after a round that did not confirm everything, so a broker in
/// trouble is not hammered.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// How often an idle forwarder looks, beside being woken by appends.
const IDLE_TICK: Duration = Duration::from_secs(1);
const BROKER_WAIT: Duration = Duration::from_millis(250);

pub async fn run(delivery: Delivery, spool: Spool, stop: CancellationToken) {
    loop {
        if stop.is_cancelled() {
            return;
        }
        let pause = if spool.stats().events == 0 {
            tokio::select! {
                () = spool.appended() => {}
                () = tokio::time::sleep(IDLE_TICK) => {}
                () = stop.cancelled() => {}
            }
            continue;
        } else if delivery.broker.readiness().is_err() {
            Some(BROKER_WAIT)
        } else {
            match forward_round(&delivery, &spool, &stop).await {
                Ok(Round {
                    all_confirmed: true,
                }) => None,
                Ok(Round {
                    all_confirmed: false,
                }) => Some(RETRY_PAUSE),
                Err(error) => {
                    tracing::warn!(error = %error, "forwarding the spool failed");
                    Some(RETRY_PAUSE)
                }
            }
        };
        if let Some(pause) = pause {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stop.cancelled() => {}
            }
        }
    }
}

struct Round {
    all_confirmed: bool,
}

/// Ends early at a shutdown: nothing more is read, what is in flight is
/// settled and the confirmed records deleted, so a shutdown never waits for
/// the whole spool.
async fn forward_round(
    delivery: &Delivery,
    spool: &Spool,
    stop: &CancellationToken,
) -> Result<Round, SpoolError> {
    let Ok(lane) = delivery.broker.in_order() else {
        return Ok(Round {
            all_confirmed: false,
        });
    };
    let mut verdicts = FuturesOrdered::new();
    let mut confirmed: Vec<Key> = Vec::with_capacity(REMOVE_EVERY);
    let mut forwarded = 0;
    // The last key read: the next chunk starts after it.
    let mut after = None;
    let mut failed = false;
    let mut read_all = false;
    loop {
        if !failed && !read_all && !stop.is_cancelled() && verdicts.len() < MAX_OUT {
            let records = spool.oldest(after, CHUNK).await?;
            read_all = records.is_empty();
            for (key, bytes) in records {
                after = Some(key);
                let message = match record::decode(&bytes) {
                    Ok(message) => message,
                    Err(error) => unreadable_record(bytes, &error),
                };
                match lane
                    .submit(delivery.destinations.amqp_message(&message))
                    .await
                {
                    Ok(ticket) => {
                        let lane = lane.clone();
                        verdicts
                            .push_back(async move { (key, message, lane.verdict(ticket).await) });
                    }
                    Err(error) => {
                        // Not sent: counted, and retried first in the next round.
                        delivery.count(&message, &Err(error));
                        failed = true;
                        break;
                    }
                }
                // Settle what is already settled, to stop at the first failure.
                while let Some(Some((key, message, result))) = verdicts.next().now_or_never() {
                    failed |= !settle(delivery, key, &message, result, &mut confirmed);
                }
                if failed {
                    break;
                }
            }
            continue;
        }
        let Some((key, message, result)) = verdicts.next().await else {
            // Nothing in flight, and nothing more to send.
            break;
        };
        failed |= !settle(delivery, key, &message, result, &mut confirmed);
        if confirmed.len() >= REMOVE_EVERY {
            forwarded += remove(delivery, spool, &mut confirmed).await?;
        }
    }
    forwarded += remove(delivery, spool, &mut confirmed).await?;
    if forwarded > 0 {
        tracing::debug!(forwarded, "forwarded spooled events");
    }
    Ok(Round {
        all_confirmed: !failed,
    })
}

/// Deletes the confirmed records in one commit; how many.
async fn remove(
    delivery: &Delivery,
    spool: &Spool,
    confirmed: &mut Vec<Key>,
) -> Result<u64, SpoolError> {
    if confirmed.is_empty() {
        return Ok(0);
    }
    let keys = std::mem::take(confirmed);
    let count = keys.len() as u64;
    spool.remove(keys).await?;
    delivery.metrics.count_forwarded(count);
    Ok(count)
}

/// Counts one verdict; `true` when confirmed.
fn settle(
    delivery: &Delivery,
    key: Key,
    message: &Outgoing,
    result: Result<Confirmed, PublishError>,
    confirmed: &mut Vec<Key>,
) -> bool {
    delivery.count(message, &result);
    let ok = result.is_ok();
    if ok {
        confirmed.push(key);
    }
    ok
}

/// A record that cannot be decoded is sent, as its bytes, to quarantine: it
/// neither blocks the spool nor is lost.
fn unreadable_record(bytes: Vec<u8>, error: &record::DecodeError) -> Outgoing {
    tracing::error!(%error, "an unreadable spool record is sent to quarantine");
    Outgoing::quarantined(
        crate::event::event_id(Webhook::PacketUpdated, &bytes),
        Webhook::PacketUpdated,
        &format!("unreadable spool record: {error}"),
        bytes,
        None,
        crate::spool::now_ms() / 1000,
    )
}
