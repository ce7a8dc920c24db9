//! The spool's only writer: a thread that takes every pending append and
//! removal, applies them in one transaction and commits it with one fsync
//! (group commit), then answers each. Under load, a commit serves every request
//! that arrived during the previous one, so a broker outage does not collapse
//! throughput to one fsync per request.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use redb::{Database, ReadableTable};
use tokio::sync::{Notify, mpsc, oneshot};

use super::{SpoolError, SpoolStats, TABLE, record};
use crate::metrics::Metrics;

pub enum Request {
    Append {
        records: Vec<Vec<u8>>,
        reply: oneshot::Sender<Result<(), SpoolError>>,
    },
    Remove {
        keys: Vec<u64>,
        reply: oneshot::Sender<Result<(), SpoolError>>,
    },
    /// Finish what is queued, then stop.
    Close,
}

/// What the writer shares with the spool's handles.
pub struct Shared {
    pub stats: Mutex<SpoolStats>,
    /// The last commit's error, cleared by the next commit that succeeds.
    pub problem: Mutex<Option<String>>,
    pub appended: Notify,
    pub max_bytes: u64,
    /// Set when an append did not fit, cleared when forwarding frees room: the
    /// spool is "full" before its bytes reach max_bytes exactly.
    pub refused_for_room: AtomicBool,
    pub metrics: Arc<Metrics>,
}

/// Requests taken into one transaction at most, so a reply never waits for an
/// unbounded batch.
const MAX_BATCH: usize = 4096;

pub fn run(
    db: Arc<Database>,
    mut requests: mpsc::Receiver<Request>,
    shared: Arc<Shared>,
    mut next_key: u64,
) {
    while let Some(first) = requests.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let closing = batch.iter().any(|r| matches!(r, Request::Close));
        let current = *shared.stats.lock().expect("spool stats poisoned");
        match commit(&db, &batch, current, shared.max_bytes, next_key) {
            Ok(Committed {
                stats,
                next_key: next,
                outcomes,
                appended,
                removed,
            }) => {
                if outcomes
                    .iter()
                    .any(|o| matches!(o, Err(SpoolError::Full { .. })))
                {
                    shared.refused_for_room.store(true, Ordering::SeqCst);
                } else if removed {
                    shared.refused_for_room.store(false, Ordering::SeqCst);
                }
                next_key = next;
                *shared.stats.lock().expect("spool stats poisoned") = stats;
                *shared.problem.lock().expect("spool problem poisoned") = None;
                shared.metrics.spool_events.set(stats.events as i64);
                shared.metrics.spool_bytes.set(stats.bytes as i64);
                if appended {
                    shared.appended.notify_waiters();
                }
                reply(batch, outcomes);
            }
            Err(error) => {
                let problem = format!("{error}");
                tracing::error!(error = %problem, "writing the spool failed");
                *shared.problem.lock().expect("spool problem poisoned") = Some(problem.clone());
                let outcomes = batch
                    .iter()
                    .map(|_| Err(SpoolError::Disk(problem.clone())))
                    .collect();
                reply(batch, outcomes);
            }
        }
        if closing {
            break;
        }
    }
}

struct Committed {
    stats: SpoolStats,
    next_key: u64,
    outcomes: Vec<Result<(), SpoolError>>,
    appended: bool,
    removed: bool,
}

fn commit(
    db: &Database,
    batch: &[Request],
    mut stats: SpoolStats,
    max_bytes: u64,
    mut next_key: u64,
) -> Result<Committed, redb::Error> {
    let transaction = db.begin_write()?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut appended = false;
    let mut removed = false;
    {
        let mut table = transaction.open_table(TABLE)?;
        for request in batch {
            match request {
                Request::Append { records, .. } => {
                    let size: u64 = records.iter().map(|r| r.len() as u64).sum();
                    if stats.bytes + size > max_bytes {
                        outcomes.push(Err(SpoolError::Full { max_bytes }));
                        continue;
                    }
                    for record in records {
                        table.insert(next_key, record.as_slice())?;
                        next_key += 1;
                        if stats.events == 0 {
                            stats.oldest_spooled_at_ms = record::spooled_at_ms(record);
                        }
                        stats.events += 1;
                        stats.bytes += record.len() as u64;
                    }
                    appended = true;
                    outcomes.push(Ok(()));
                }
                Request::Remove { keys, .. } => {
                    for key in keys {
                        if let Some(value) = table.remove(*key)? {
                            stats.events -= 1;
                            stats.bytes -= value.value().len() as u64;
                        }
                    }
                    removed = true;
                    outcomes.push(Ok(()));
                }
                Request::Close => outcomes.push(Ok(())),
            }
        }
        if removed {
            stats.oldest_spooled_at_ms = table
                .first()?
                .and_then(|(_, value)| record::spooled_at_ms(value.value()));
        }
    }
    // The default durability: the commit returns once the data is fsynced.
    transaction.commit()?;
    Ok(Committed {
        stats,
        next_key,
        outcomes,
        appended,
        removed,
    })
}

fn reply(batch: Vec<Request>, outcomes: Vec<Result<(), SpoolError>>) {
    for (request, outcome) in batch.into_iter().zip(outcomes) {
        match request {
            Request::Append { reply, .. } | Request::Remove { reply, .. } => {
                // The requester may have given up (its HTTP client went away); nothing to do.
                let _ = reply.send(outcome);
            }
            Request::Close => {}
        }
    }
}
