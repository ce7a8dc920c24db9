//! The spool's only writer: a thread that owns the store. It takes every
//! pending append and removal, applies them in one transaction and commits it
//! with one fsync (group commit), then answers each. Under load, a commit
//! serves every request that arrived during the previous one, so a broker
//! outage does not collapse throughput to one fsync per request. Reads are
//! served here too, after the commit, so they see what was just written.
//!
//! After a failed commit (disk full, read-only, failing), redb refuses every
//! further write until the database is opened again (it protects what it
//! holds). So the writer drops the store and reopens it: with the next request,
//! and every second while idle, until the disk is usable again. Appends answer
//! errors meanwhile, and `writable` says why; no restart is needed.

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::Duration,
};

use redb::{Database, ReadableDatabase, ReadableTable};
use tokio::sync::{Notify, oneshot};

use super::{APPENDED_AT, Key, RECORDS, SpoolError, SpoolStats, now_ms, open_database, scan};

type Reply<T> = oneshot::Sender<Result<T, SpoolError>>;

pub enum Request {
    Append {
        records: Vec<Vec<u8>>,
        reply: Reply<()>,
    },
    Remove {
        keys: Vec<Key>,
        reply: Reply<()>,
    },
    Read {
        after: Option<Key>,
        limit: usize,
        reply: Reply<Vec<(Key, Vec<u8>)>>,
    },
    /// Finish what is queued, then stop.
    Close,
}

/// What the writer shares with the spool's handles.
pub struct Shared {
    stats: Mutex<SpoolStats>,
    /// Why the store cannot be written, until a commit succeeds again.
    problem: Mutex<Option<SpoolError>>,
    pub appended: Notify,
    pub max_bytes: u64,
    /// Set when an append did not fit, cleared when removals free room: the
    /// spool is "full" before its bytes reach max_bytes exactly.
    refused_for_room: AtomicBool,
}

impl Shared {
    pub fn new(stats: SpoolStats, max_bytes: u64) -> Self {
        Self {
            stats: Mutex::new(stats),
            problem: Mutex::new(None),
            appended: Notify::new(),
            max_bytes,
            refused_for_room: AtomicBool::new(false),
        }
    }

    pub fn stats(&self) -> SpoolStats {
        *self.stats.lock().expect("spool stats poisoned")
    }

    pub fn writable(&self) -> Result<(), SpoolError> {
        if let Some(problem) = self.problem.lock().expect("spool problem poisoned").clone() {
            return Err(problem);
        }
        if self.refused_for_room.load(Ordering::SeqCst) || self.stats().bytes >= self.max_bytes {
            return Err(SpoolError::Full {
                max_bytes: self.max_bytes,
            });
        }
        Ok(())
    }

    fn set_problem(&self, problem: Option<SpoolError>) {
        *self.problem.lock().expect("spool problem poisoned") = problem;
    }

    fn set_stats(&self, stats: SpoolStats) {
        *self.stats.lock().expect("spool stats poisoned") = stats;
    }
}

/// The open database and what the writer knows of it.
pub struct Store {
    db: Database,
    stats: SpoolStats,
    next_key: Key,
}

impl Store {
    pub fn open(path: &std::path::Path) -> Result<Self, redb::Error> {
        let db = open_database(path)?;
        let (stats, next_key) = scan(&db, now_ms())?;
        Ok(Self {
            db,
            stats,
            next_key,
        })
    }

    pub fn stats(&self) -> SpoolStats {
        self.stats
    }
}

/// Requests taken into one transaction at most, so a reply never waits for an
/// unbounded batch.
const MAX_BATCH: usize = 4096;
/// How often a broken store is reopened while no request comes.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

pub fn run(path: PathBuf, store: Store, requests: mpsc::Receiver<Request>, shared: Arc<Shared>) {
    let mut store = Some(store);
    loop {
        let first = if store.is_some() {
            match requests.recv() {
                Ok(request) => request,
                Err(_) => return,
            }
        } else {
            match requests.recv_timeout(REOPEN_EVERY) {
                Ok(request) => request,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    store = reopen(&path, &shared);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let closing = batch.iter().any(|r| matches!(r, Request::Close));
        if store.is_none() {
            store = reopen(&path, &shared);
        }
        match store.as_mut() {
            Some(open) => {
                if let Err(error) = handle(open, batch, &shared) {
                    tracing::error!(%error, "writing the spool failed; it is reopened once the disk is usable");
                    // Dropping the database lets the next open start afresh.
                    store = None;
                }
            }
            None => fail_all(batch, &shared),
        }
        if closing {
            return;
        }
    }
}

fn reopen(path: &std::path::Path, shared: &Shared) -> Option<Store> {
    match Store::open(path) {
        Ok(store) => {
            tracing::info!(
                events = store.stats.events,
                "the spool's store is usable again"
            );
            shared.set_stats(store.stats);
            shared.set_problem(None);
            Some(store)
        }
        Err(error) => {
            shared.set_problem(Some(SpoolError::Disk(Arc::new(error))));
            None
        }
    }
}

/// Answers every request of a batch with the store's problem.
fn fail_all(batch: Vec<Request>, shared: &Shared) {
    let problem = shared
        .problem
        .lock()
        .expect("spool problem poisoned")
        .clone()
        .unwrap_or(SpoolError::Closed);
    for request in batch {
        match request {
            Request::Append { reply, .. } | Request::Remove { reply, .. } => {
                let _ = reply.send(Err(problem.clone()));
            }
            Request::Read { reply, .. } => {
                let _ = reply.send(Err(problem.clone()));
            }
            Request::Close => {}
        }
    }
}

/// Commits the batch's writes, then serves its reads. On a failed commit every
/// write is answered with the error, and the error is returned.
fn handle(store: &mut Store, batch: Vec<Request>, shared: &Shared) -> Result<(), SpoolError> {
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    for request in batch {
        match request {
            Request::Read { .. } => reads.push(request),
            Request::Close => {}
            write => writes.push(write),
        }
    }
    if !writes.is_empty() {
        match commit(store, &writes, shared.max_bytes) {
            Ok(Committed {
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
                shared.set_stats(store.stats);
                shared.set_problem(None);
                if appended {
                    shared.appended.notify_waiters();
                }
                reply(writes, outcomes);
            }
            Err(error) => {
                let error = SpoolError::Disk(Arc::new(error));
                shared.set_problem(Some(error.clone()));
                let outcomes = writes.iter().map(|_| Err(error.clone())).collect();
                reply(writes, outcomes);
                fail_all(reads, shared);
                return Err(error);
            }
        }
    }
    for request in reads {
        if let Request::Read {
            after,
            limit,
            reply,
        } = request
        {
            let _ = reply
                .send(read(&store.db, after, limit).map_err(|e| SpoolError::Disk(Arc::new(e))));
        }
    }
    Ok(())
}

struct Committed {
    outcomes: Vec<Result<(), SpoolError>>,
    appended: bool,
    removed: bool,
}

fn commit(store: &mut Store, batch: &[Request], max_bytes: u64) -> Result<Committed, redb::Error> {
    let mut stats = store.stats;
    let mut next_key = store.next_key;
    let now = now_ms();
    let transaction = store.db.begin_write()?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut appended = false;
    let mut removed = false;
    {
        let mut records = transaction.open_table(RECORDS)?;
        let mut times = transaction.open_table(APPENDED_AT)?;
        for request in batch {
            match request {
                Request::Append { records: new, .. } => {
                    let size: u64 = new.iter().map(|r| r.len() as u64).sum();
                    if stats.bytes + size > max_bytes {
                        outcomes.push(Err(SpoolError::Full { max_bytes }));
                        continue;
                    }
                    for record in new {
                        records.insert(next_key, record.as_slice())?;
                        times.insert(next_key, now)?;
                        next_key += 1;
                        if stats.events == 0 {
                            stats.oldest_spooled_at_ms = Some(now);
                        }
                        stats.events += 1;
                        stats.bytes += record.len() as u64;
                    }
                    appended = true;
                    outcomes.push(Ok(()));
                }
                Request::Remove { keys, .. } => {
                    for key in keys {
                        if let Some(value) = records.remove(*key)? {
                            stats.events -= 1;
                            stats.bytes -= value.value().len() as u64;
                        }
                        times.remove(*key)?;
                    }
                    removed = true;
                    outcomes.push(Ok(()));
                }
                Request::Read { .. } | Request::Close => outcomes.push(Ok(())),
            }
        }
        if removed {
            stats.oldest_spooled_at_ms = match records.first()? {
                None => None,
                Some((key, _)) => Some(times.get(key.value())?.map_or(now, |t| t.value())),
            };
        }
    }
    // The default durability: the commit returns once the data is fsynced.
    transaction.commit()?;
    store.stats = stats;
    store.next_key = next_key;
    Ok(Committed {
        outcomes,
        appended,
        removed,
    })
}

fn read(
    db: &Database,
    after: Option<Key>,
    limit: usize,
) -> Result<Vec<(Key, Vec<u8>)>, redb::Error> {
    let transaction = db.begin_read()?;
    let table = transaction.open_table(RECORDS)?;
    let start = after.map_or(0, |key| key + 1);
    let mut batch = Vec::with_capacity(limit.min(4096));
    for entry in table.range(start..)?.take(limit) {
        let (key, value) = entry?;
        batch.push((key.value(), value.value().to_vec()));
    }
    Ok(batch)
}

fn reply(batch: Vec<Request>, outcomes: Vec<Result<(), SpoolError>>) {
    for (request, outcome) in batch.into_iter().zip(outcomes) {
        if let Request::Append { reply, .. } | Request::Remove { reply, .. } = request {
            // The requester may have given up (its HTTP client went away); nothing to do.
            let _ = reply.send(outcome);
        }
    }
}
