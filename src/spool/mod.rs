//! The durable spool: messages RabbitMQ cannot take right now (disconnected,
//! blocked, nack, return, confirm timeout, shutting down) are written and
//! fsynced here before the bridge answers 200, then forwarded in arrival order
//! once the broker is back, each deleted only after its confirm.
//!
//! - `writer`: the one thread that writes, with group commit;
//! - `forwarder`: the task that drains the spool into RabbitMQ;
//! - `record`: how one message is stored.
//!
//! The store is redb, an embedded, crash-safe (copy-on-write B-tree,
//! checksummed commits) key-value store: keys are arrival numbers, values the
//! records. A spool left by a crash, a kill -9 or a power loss is opened as it
//! was at its last commit, and drained.

pub mod forwarder;
mod record;
mod writer;

use std::{
    path::Path,
    sync::{Arc, Mutex},
    thread::JoinHandle,
};

use anyhow::Context;
use redb::{Builder, ConcurrencyMode, Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::{dispatch::Outgoing, metrics::Metrics};

const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("messages");
const FILE_NAME: &str = "spool.redb";
/// Requests queued for the writer at most; beyond it appends wait (the ingress's
/// in-flight limit bounds them anyway).
const QUEUE: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpoolMode {
    /// Spool what RabbitMQ does not confirm; publish the rest directly.
    OnFailure,
    /// Spool every event before publishing; the forwarder publishes.
    Always,
    /// No spool: what RabbitMQ does not confirm is answered 503.
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool is full (spool.max_bytes = {max_bytes})")]
    Full { max_bytes: u64 },
    #[error("the spool cannot be written: {0}")]
    Disk(String),
    #[error("the spool is closed")]
    Closed,
}

/// What the spool holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SpoolStats {
    pub events: u64,
    /// Bytes of the records (the file is larger: B-tree pages, free space).
    pub bytes: u64,
    pub oldest_spooled_at_ms: Option<u64>,
}

impl SpoolStats {
    pub fn oldest_age_seconds(&self, now_ms: u64) -> f64 {
        self.oldest_spooled_at_ms
            .map_or(0.0, |at| now_ms.saturating_sub(at) as f64 / 1000.0)
    }
}

/// A handle to the open spool; cheap to clone.
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    requests: mpsc::Sender<writer::Request>,
    shared: Arc<writer::Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, recovering what an earlier run left.
    pub fn open(dir: &Path, max_bytes: u64, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("spool.dir: cannot create {}", dir.display()))?;
        let path = dir.join(FILE_NAME);
        let db = Builder::new()
            // One writer (this process); `enate-bridge spool status` may read beside it.
            .set_concurrency_mode(ConcurrencyMode::SingleWriter)
            .create(&path)
            .with_context(|| {
                format!(
                    "spool.dir: cannot open {} (is another bridge using it?)",
                    path.display()
                )
            })?;
        let transaction = db
            .begin_write()
            .context("spool: cannot begin a transaction")?;
        transaction
            .open_table(TABLE)
            .context("spool: cannot open its table")?;
        transaction.commit().context("spool: cannot commit")?;
        let (stats, next_key) = scan(&db).context("spool: cannot read what it holds")?;
        metrics.spool_events.set(stats.events as i64);
        metrics.spool_bytes.set(stats.bytes as i64);
        if stats.events > 0 {
            tracing::info!(
                events = stats.events,
                bytes = stats.bytes,
                "the spool holds events from an earlier run; they will be forwarded"
            );
        }
        let db = Arc::new(db);
        let shared = Arc::new(writer::Shared {
            stats: Mutex::new(stats),
            problem: Mutex::new(None),
            appended: tokio::sync::Notify::new(),
            max_bytes,
            refused_for_room: std::sync::atomic::AtomicBool::new(false),
            metrics,
        });
        let (requests, receiver) = mpsc::channel(QUEUE);
        let writer = {
            let db = db.clone();
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("spool-writer".into())
                .spawn(move || writer::run(db, receiver, shared, next_key))
                .context("spool: cannot start its writer thread")?
        };
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                requests,
                shared,
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    /// Writes the messages durably: when this returns `Ok`, they are fsynced.
    pub async fn append(&self, messages: &[Outgoing]) -> Result<(), SpoolError> {
        let now = now_ms();
        let records = messages.iter().map(|m| record::encode(m, now)).collect();
        let (reply, answer) = oneshot::channel();
        self.send(writer::Request::Append { records, reply })
            .await?;
        answer.await.map_err(|_| SpoolError::Closed)?
    }

    /// Deletes forwarded messages.
    pub(crate) async fn remove(&self, keys: Vec<u64>) -> Result<(), SpoolError> {
        let (reply, answer) = oneshot::channel();
        self.send(writer::Request::Remove { keys, reply }).await?;
        answer.await.map_err(|_| SpoolError::Closed)?
    }

    async fn send(&self, request: writer::Request) -> Result<(), SpoolError> {
        self.inner
            .requests
            .send(request)
            .await
            .map_err(|_| SpoolError::Closed)
    }

    /// The oldest messages, in arrival order, with their keys. A record that
    /// cannot be read is returned as a quarantined message holding its bytes,
    /// so it neither blocks the spool nor is lost.
    pub(crate) async fn oldest(&self, limit: usize) -> Result<Vec<(u64, Outgoing)>, SpoolError> {
        let db = self.inner.db.clone();
        tokio::task::spawn_blocking(move || -> Result<_, redb::Error> {
            let transaction = db.begin_read()?;
            let table = transaction.open_table(TABLE)?;
            let mut batch = Vec::with_capacity(limit);
            for entry in table.range(0..)?.take(limit) {
                let (key, value) = entry?;
                let message = match record::decode(value.value()) {
                    Ok((message, _)) => message,
                    Err(reason) => unreadable_record(value.value(), &reason),
                };
                batch.push((key.value(), message));
            }
            Ok(batch)
        })
        .await
        .map_err(|e| SpoolError::Disk(e.to_string()))?
        .map_err(|e| SpoolError::Disk(e.to_string()))
    }

    pub fn stats(&self) -> SpoolStats {
        *self
            .inner
            .shared
            .stats
            .lock()
            .expect("spool stats poisoned")
    }

    pub fn max_bytes(&self) -> u64 {
        self.inner.shared.max_bytes
    }

    /// `Ok` while an append can succeed: the last commit worked and there is room.
    pub fn writable(&self) -> Result<(), String> {
        if let Some(problem) = self
            .inner
            .shared
            .problem
            .lock()
            .expect("spool problem poisoned")
            .clone()
        {
            return Err(problem);
        }
        let refused = self
            .inner
            .shared
            .refused_for_room
            .load(std::sync::atomic::Ordering::SeqCst);
        if refused || self.stats().bytes >= self.inner.shared.max_bytes {
            return Err(SpoolError::Full {
                max_bytes: self.inner.shared.max_bytes,
            }
            .to_string());
        }
        Ok(())
    }

    pub(crate) async fn appended(&self) {
        self.inner.shared.appended.notified().await;
    }

    /// Finishes queued writes and stops the writer. Call it after the last request.
    pub async fn close(&self) {
        let _ = self.inner.requests.send(writer::Request::Close).await;
        let writer = self
            .inner
            .writer
            .lock()
            .expect("spool writer poisoned")
            .take();
        if let Some(writer) = writer {
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
        tracing::info!(events = self.stats().events, "spool closed");
    }

    /// What a spool directory holds, whether or not a bridge is running on it.
    pub fn status(dir: &Path) -> anyhow::Result<SpoolStats> {
        let path = dir.join(FILE_NAME);
        if !path.exists() {
            return Ok(SpoolStats::default());
        }
        let db = Builder::new()
            .set_concurrency_mode(ConcurrencyMode::SingleWriter)
            .open_read_only(&path)
            .with_context(|| format!("cannot open {} to read it", path.display()))?;
        Ok(scan(&db)?.0)
    }
}

/// Counts what the spool holds and finds the next free key.
fn scan(db: &impl ReadableDatabase) -> Result<(SpoolStats, u64), redb::Error> {
    let transaction = db.begin_read()?;
    let table = match transaction.open_table(TABLE) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok((SpoolStats::default(), 0)),
        Err(error) => return Err(error.into()),
    };
    let mut stats = SpoolStats::default();
    let mut next_key = 0;
    for entry in table.range(0..)? {
        let (key, value) = entry?;
        if stats.events == 0 {
            stats.oldest_spooled_at_ms = record::spooled_at_ms(value.value());
        }
        stats.events += 1;
        stats.bytes += value.value().len() as u64;
        next_key = key.value() + 1;
    }
    Ok((stats, next_key))
}

fn unreadable_record(bytes: &[u8], reason: &str) -> Outgoing {
    tracing::error!(%reason, "an unreadable spool record is sent to quarantine");
    Outgoing::quarantined(
        crate::event::event_id(crate::webhook::Webhook::PacketUpdated, bytes),
        crate::webhook::Webhook::PacketUpdated,
        &format!("unreadable spool record: {reason}"),
        bytes.to_vec(),
        None,
        now_ms() / 1000,
    )
}

pub fn now_ms() -> u64 {
    jiff::Timestamp::now().as_millisecond().max(0) as u64
}
