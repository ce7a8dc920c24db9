//! The spool: durable storage of opaque records, in arrival order. A record is
//! fsynced before `append` returns, read back oldest first, and deleted by key.
//! What a record means (a message for RabbitMQ) is the caller's business: this
//! module knows nothing of AMQP, events or metrics.
//!
//! - `writer`: the one thread that owns the store: group commit of appends and
//!   removals, reads, and reopening the store after a disk error.
//!
//! The store is redb, an embedded, crash-safe (copy-on-write B-tree,
//! checksummed commits) key-value store: keys are arrival numbers. A spool left
//! by a crash, a kill -9 or a power loss is opened as it was at its last commit.

mod writer;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, mpsc},
    thread::JoinHandle,
};

use redb::{Builder, ConcurrencyMode, Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use tokio::sync::oneshot;

/// Records by arrival number.
const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("messages");
/// When each record was appended, milliseconds since the epoch. Records written
/// by versions without this table count as appended when the spool was opened.
const APPENDED_AT: TableDefinition<u64, u64> = TableDefinition::new("appended_at");
const FILE_NAME: &str = "spool.redb";

/// A record's place in the spool: its arrival number.
pub type Key = u64;

/// Why a spool operation failed. Cloned to every request of a failed commit.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool is full (spool.max_bytes = {max_bytes})")]
    Full { max_bytes: u64 },
    #[error("the spool cannot be written")]
    Disk(#[source] Arc<redb::Error>),
    #[error("the spool is closed")]
    Closed,
}

/// Why the spool could not be opened at start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("spool.dir: cannot create {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// redb's own reason follows: another process holding the file, a file
    /// that needs the repair a read-write open does, a disk error.
    #[error("spool.dir: cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: redb::Error,
    },
    #[error("spool: cannot start its writer thread")]
    Thread(#[source] std::io::Error),
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
    requests: mpsc::Sender<writer::Request>,
    shared: Arc<writer::Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, with what an earlier run left in it.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, OpenError> {
        std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let store = writer::Store::open(&path).map_err(|source| OpenError::Open {
            path: path.clone(),
            source,
        })?;
        let stats = store.stats();
        if stats.events > 0 {
            tracing::info!(
                events = stats.events,
                bytes = stats.bytes,
                "the spool holds events from an earlier run; they will be forwarded"
            );
        }
        let shared = Arc::new(writer::Shared::new(stats, max_bytes));
        let (requests, receiver) = mpsc::channel();
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("spool-writer".into())
                .spawn(move || writer::run(path, store, receiver, shared))
                .map_err(OpenError::Thread)?
        };
        Ok(Self {
            inner: Arc::new(Inner {
                requests,
                shared,
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    /// Writes the records durably, in order: when this returns `Ok`, they are
    /// fsynced. All or none of them are kept.
    pub async fn append(&self, records: Vec<Vec<u8>>) -> Result<(), SpoolError> {
        self.ask(|reply| writer::Request::Append { records, reply })
            .await
    }

    /// Deletes records by key.
    pub async fn remove(&self, keys: Vec<Key>) -> Result<(), SpoolError> {
        self.ask(|reply| writer::Request::Remove { keys, reply })
            .await
    }

    /// Up to `limit` records after `after` (from the first when `None`), oldest first.
    pub async fn oldest(
        &self,
        after: Option<Key>,
        limit: usize,
    ) -> Result<Vec<(Key, Vec<u8>)>, SpoolError> {
        self.ask(|reply| writer::Request::Read {
            after,
            limit,
            reply,
        })
        .await
    }

    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T, SpoolError>>) -> writer::Request,
    ) -> Result<T, SpoolError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .requests
            .send(request(reply))
            .map_err(|_| SpoolError::Closed)?;
        answer.await.map_err(|_| SpoolError::Closed)?
    }

    pub fn stats(&self) -> SpoolStats {
        self.inner.shared.stats()
    }

    pub fn max_bytes(&self) -> u64 {
        self.inner.shared.max_bytes
    }

    /// `Ok` while an append can succeed: the store is usable and has room.
    pub fn writable(&self) -> Result<(), SpoolError> {
        self.inner.shared.writable()
    }

    /// Resolves at the next append. An append while nobody waits is not
    /// remembered: look at `stats` before waiting.
    pub async fn appended(&self) {
        self.inner.shared.appended.notified().await;
    }

    /// Finishes queued writes and stops the writer. Call it after the last request.
    pub async fn close(&self) {
        let _ = self.inner.requests.send(writer::Request::Close);
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

    /// The spool's file in `dir`; a directory without it holds no spool.
    pub fn file_in(dir: &Path) -> PathBuf {
        dir.join(FILE_NAME)
    }

    /// What a spool directory holds, whether or not a bridge is running on it
    /// (read-only: it never writes).
    pub fn status(dir: &Path) -> Result<SpoolStats, OpenError> {
        let path = dir.join(FILE_NAME);
        if !path.exists() {
            return Ok(SpoolStats::default());
        }
        let opened = Builder::new()
            .set_concurrency_mode(ConcurrencyMode::SingleWriter)
            .open_read_only(&path)
            .map_err(redb::Error::from)
            .and_then(|db| scan(&db, now_ms()));
        opened
            .map(|(stats, _)| stats)
            .map_err(|source| OpenError::Open { path, source })
    }
}

/// Cache for a read-only look at a spool: enough for redb's tree pages; the
/// records are read once each, so caching them would only grow the process.
const READ_CACHE_BYTES: usize = 8 << 20;

impl Spool {
    /// Calls `each` with every record of the spool in `dir`, oldest first:
    /// its key, when it was appended (ms since the epoch, if known) and its
    /// bytes. One record is in memory at a time, whatever the spool holds.
    /// Read-only, like [`Spool::status`], beside a running bridge or not.
    pub fn for_each(
        dir: &Path,
        mut each: impl FnMut(Key, Option<u64>, &[u8]) -> std::io::Result<()>,
    ) -> Result<(), ReadError> {
        let path = dir.join(FILE_NAME);
        if !path.exists() {
            return Ok(());
        }
        let failed = |source: redb::Error| {
            ReadError::Open(OpenError::Open {
                path: path.clone(),
                source,
            })
        };
        // The writer's mode (`SingleWriter`): redb's locks let a read-only
        // handle follow a running bridge's commits and keep its snapshot from
        // being reused under it, so one read covers both cases and no
        // request has to go through the bridge.
        let db = builder()
            .set_cache_size(READ_CACHE_BYTES)
            .open_read_only(&path)
            .map_err(|e| failed(e.into()))?;
        let transaction = db.begin_read().map_err(|e| failed(e.into()))?;
        let records = match transaction.open_table(RECORDS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(error) => return Err(failed(error.into())),
        };
        let times = match transaction.open_table(APPENDED_AT) {
            Ok(times) => Some(times),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(error) => return Err(failed(error.into())),
        };
        for entry in records.range(0..).map_err(|e| failed(e.into()))? {
            let (key, value) = entry.map_err(|e| failed(e.into()))?;
            let key = key.value();
            let at = match &times {
                Some(times) => times
                    .get(key)
                    .map_err(|e| failed(e.into()))?
                    .map(|t| t.value()),
                None => None,
            };
            each(key, at, value.value()).map_err(ReadError::Write)?;
        }
        Ok(())
    }
}

/// Why reading every record stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Open(#[from] OpenError),
    /// What the records were given to could not take them (a closed pipe).
    #[error("writing the records failed")]
    Write(#[source] std::io::Error),
}

/// Counts what the spool holds and finds the next free key. Records without a
/// time count as appended at `opened_at_ms`.
fn scan(db: &impl ReadableDatabase, opened_at_ms: u64) -> Result<(SpoolStats, Key), redb::Error> {
    let transaction = db.begin_read()?;
    let records = match transaction.open_table(RECORDS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok((SpoolStats::default(), 0)),
        Err(error) => return Err(error.into()),
    };
    let mut stats = SpoolStats::default();
    let mut next_key = 0;
    for entry in records.range(0..)? {
        let (key, value) = entry?;
        stats.events += 1;
        stats.bytes += value.value().len() as u64;
        next_key = key.value() + 1;
    }
    if let Some((first, _)) = records.first()? {
        let at = match transaction.open_table(APPENDED_AT) {
            Ok(times) => times.get(first.value())?.map(|t| t.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(error) => return Err(error.into()),
        };
        stats.oldest_spooled_at_ms = Some(at.unwrap_or(opened_at_ms));
    }
    Ok((stats, next_key))
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    jiff::Timestamp::now().as_millisecond().max(0) as u64
}

fn builder() -> Builder {
    let mut builder = Builder::new();
    // One writer (this process); `enate-bridge spool status` may read beside it.
    builder.set_concurrency_mode(ConcurrencyMode::SingleWriter);
    builder
}

fn open_database(path: &Path) -> Result<Database, redb::Error> {
    let db = builder().create(path)?;
    let transaction = db.begin_write()?;
    transaction.open_table(RECORDS)?;
    transaction.open_table(APPENDED_AT)?;
    transaction.commit()?;
    Ok(db)
}

#[cfg(test)]
mod tests;
