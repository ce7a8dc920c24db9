//! An example consumer of enate-bridge's events: the starting point for a queue worker.
//!
//! ```sh
//! # consume a queue that exists (docker compose declares enate.tickets.resolved)
//! QUEUE=enate.tickets.resolved cargo run --release -p enate-bridge-worker
//! # or declare the queue and bind it to the `enate` exchange first (a bare RabbitMQ)
//! QUEUE=my.resolved.tickets BIND='*.ticket.resolved' cargo run --release -p enate-bridge-worker
//! ```
//!
//! Environment: `AMQP_URL` (default the local broker as guest), `QUEUE`, `BIND`
//! (routing patterns, comma-separated; unset: the queue must exist), `EXCHANGE`
//! (default `enate`), `PREFETCH` (default 32).
//!
//! It prints one line per event on standard output (its own messages go to standard
//! error, so the output can be piped) and shows what every worker needs:
//!
//! - manual acks, sent only once the work is done, and a prefetch (`PREFETCH`,
//!   default 32) so the broker streams messages instead of waiting for each ack;
//! - duplicates dropped by id: Enate sends duplicates, and a message is delivered
//!   again when the connection breaks before its ack arrives;
//! - a message that is not an event rejected without requeue, so it cannot loop;
//! - reconnecting after a broken connection, with a short backoff;
//! - a clean exit on Ctrl-C or SIGTERM.
//!
//! Replace `handle_event` with your own work; the rest can stay as it is.

use std::{
    collections::{HashSet, VecDeque},
    process::ExitCode,
    time::Duration,
};

use anyhow::Context;
use futures::StreamExt;
use lapin::{
    Connection, ConnectionProperties,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions,
        QueueBindOptions, QueueDeclareOptions,
    },
    types::FieldTable,
};
use serde::Deserialize;
use tokio::sync::watch;

/// How many recent event ids are remembered to drop duplicates.
const RECENT_IDS: usize = 10_000;
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The CloudEvents envelope, with only what this worker uses. Serde ignores every
/// other field, so fields the bridge adds later cannot break the worker. The full
/// contract is `schemas/event.schema.json`; the tests at the end of this file hold
/// these types against it.
#[derive(Debug, Deserialize)]
struct Event {
    id: uuid::Uuid,
    #[serde(rename = "type")]
    kind: String,
    time: jiff::Timestamp,
    /// The packet's GUID; absent for business objects.
    subject: Option<String>,
    data: EventData,
}

/// The fields of `data` this worker prints. Every field of `data` is always present
/// (null when Enate did not send it), hence the `Option`s.
#[derive(Debug, Deserialize)]
struct EventData {
    reference: Option<String>,
    process_type: Option<String>,
    status: Option<String>,
}

struct Config {
    url: String,
    queue: String,
    /// Routing patterns to bind the queue with; empty: consume it as it is.
    bind: Vec<String>,
    exchange: String,
    prefetch: u16,
}

impl Config {
    fn from_env() -> anyhow::Result<Config> {
        let var = |name: &str, default: &str| std::env::var(name).unwrap_or(default.into());
        Ok(Config {
            // A broken connection is noticed at once when the socket closes; add
            // `?heartbeat=10` to the URL to also notice a silent network failure quickly.
            url: var("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
            queue: var("QUEUE", "enate.tickets.resolved"),
            bind: var("BIND", "")
                .split(',')
                .map(str::trim)
                .filter(|pattern| !pattern.is_empty())
                .map(String::from)
                .collect(),
            exchange: var("EXCHANGE", "enate"),
            prefetch: var("PREFETCH", "32")
                .parse()
                .context("PREFETCH must be a number from 0 to 65535")?,
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("worker: {error:#}");
            return ExitCode::from(2);
        }
    };
    let mut stop = match stop_on_signal() {
        Ok(stop) => stop,
        Err(error) => {
            eprintln!("worker: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut recent = RecentIds::new(RECENT_IDS);
    let mut backoff = BACKOFF_MIN;
    loop {
        match consume(&config, &mut recent, &mut stop, &mut backoff).await {
            Ok(()) => return ExitCode::SUCCESS,
            // Retrying cannot make a missing queue appear: say what to do and stop.
            Err(Stop::Setup(error)) => {
                eprintln!("worker: {error}");
                return ExitCode::from(2);
            }
            Err(Stop::Connection(error)) => {
                eprintln!("worker: {error:#}; reconnecting in {backoff:?}")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|stopping| *stopping) => return ExitCode::SUCCESS,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Why `consume` returned before a signal.
enum Stop {
    /// The connection broke or could not be made: worth retrying.
    Connection(anyhow::Error),
    /// The queue is missing or cannot be declared as asked: retrying cannot help.
    Setup(String),
}

impl<E: Into<anyhow::Error>> From<E> for Stop {
    fn from(error: E) -> Self {
        Stop::Connection(error.into())
    }
}

/// Connects, consumes until a signal (`Ok`) or until the connection breaks (`Err`).
async fn consume(
    config: &Config,
    recent: &mut RecentIds,
    stop: &mut watch::Receiver<bool>,
    backoff: &mut Duration,
) -> Result<(), Stop> {
    let properties = ConnectionProperties::default().with_connection_name("enate-worker".into());
    let connection = tokio::select! {
        connected = tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(&config.url, properties)) =>
            connected.context("connecting timed out")?.context("cannot connect")?,
        _ = stop.wait_for(|stopping| *stopping) => return Ok(()),
    };
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await?;
    let queue = declare(&connection, config).await?;
    let mut deliveries = channel
        .basic_consume(
            queue.name().clone(),
            "".into(), // the broker names the consumer
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    eprintln!(
        "worker: consuming {} ({} messages ready, prefetch {})",
        config.queue,
        queue.message_count(),
        config.prefetch
    );
    *backoff = BACKOFF_MIN;

    loop {
        let delivery = tokio::select! {
            next = deliveries.next() => match next {
                Some(delivery) => delivery.context("connection lost")?,
                None => return Err(anyhow::anyhow!("the broker cancelled the consumer (queue deleted?)").into()),
            },
            _ = stop.wait_for(|stopping| *stopping) => {
                // Closing hands the prefetched, unacked messages back to the queue
                // at once, for the next worker.
                let _ = connection.close(200, "worker stopping".into()).await;
                eprintln!("worker: stopped");
                return Ok(());
            }
        };
        handle_delivery(&delivery, recent).await?;
    }
}

/// Without `BIND`, only checks that the queue exists (passive): whoever owns the
/// topology declares it (docker compose: RabbitMQ's definitions.json, as a
/// quorum queue). With `BIND`, declares it durable and binds it to the exchange
/// with each pattern; both are idempotent, so every start can do it.
async fn declare(connection: &Connection, config: &Config) -> Result<lapin::Queue, Stop> {
    // A refused declare closes its channel: each step gets its own.
    let channel = connection.create_channel().await?;
    let passive = config.bind.is_empty();
    let declared = channel
        .queue_declare(
            config.queue.as_str().into(),
            QueueDeclareOptions {
                passive,
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    let queue = match declared {
        Ok(queue) => queue,
        Err(error) if is_soft_error(&error, 404) => {
            return Err(Stop::Setup(format!(
                "queue {:?} does not exist. Declare it where your topology lives (docker compose: \
                 deploy/rabbitmq/definitions.json), or let the worker declare it and bind it to the \
                 {:?} exchange: BIND='*.ticket.resolved' (routing patterns, comma-separated)",
                config.queue, config.exchange
            )));
        }
        Err(error) if is_soft_error(&error, 406) => {
            return Err(Stop::Setup(format!(
                "queue {:?} exists with other arguments (e.g. a quorum queue); run without BIND to \
                 consume it as it is, or pick another QUEUE",
                config.queue
            )));
        }
        Err(error) => return Err(error.into()),
    };
    for pattern in &config.bind {
        let channel = connection.create_channel().await?;
        let bound = channel
            .queue_bind(
                config.queue.as_str().into(),
                config.exchange.as_str().into(),
                pattern.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await;
        match bound {
            Ok(()) => eprintln!(
                "worker: {:?} bound to exchange {:?} with {pattern:?}",
                config.queue, config.exchange
            ),
            Err(error) if is_soft_error(&error, 404) => {
                return Err(Stop::Setup(format!(
                    "exchange {:?} does not exist: start the bridge once (it declares it), or set EXCHANGE",
                    config.exchange
                )));
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(queue)
}

/// Whether RabbitMQ refused an operation with this channel-level code
/// (404 NOT_FOUND, 406 PRECONDITION_FAILED).
fn is_soft_error(error: &lapin::Error, code: u16) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(amqp) if amqp.get_id() == code)
}

/// Parses, deduplicates, handles and acks one message. An `Err` is a broken
/// connection: the message was not acked, so the broker delivers it again.
async fn handle_delivery(delivery: &Delivery, recent: &mut RecentIds) -> lapin::Result<()> {
    let event: Event = match serde_json::from_slice(&delivery.data) {
        Ok(event) => event,
        Err(error) => {
            // Requeued, a message that can never parse would come straight back,
            // forever. Rejected without requeue it is dropped, or dead-lettered if
            // the queue has a dead-letter exchange (give it one to keep such messages).
            eprintln!(
                "worker: rejected message {}: not an enate-bridge event: {error}",
                message_id(delivery).unwrap_or_else(|| "(no message_id)".into())
            );
            delivery
                .reject(BasicRejectOptions { requeue: false })
                .await?;
            return Ok(());
        }
    };
    // The bridge sets message_id to the event id, and gives a retried Enate delivery
    // the same id.
    let id = message_id(delivery).unwrap_or_else(|| event.id.to_string());
    if recent.insert(id.clone()) {
        handle_event(&event);
    } else {
        eprintln!("worker: duplicate {id} skipped");
    }
    delivery.ack(BasicAckOptions::default()).await?;
    Ok(())
}

/// The work. Here: one line per event.
fn handle_event(event: &Event) {
    let text = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".into());
    println!(
        "{} {} subject={} reference={} {}/{} id={}",
        event.time,
        event.kind,
        text(&event.subject),
        text(&event.data.reference),
        text(&event.data.process_type),
        text(&event.data.status),
        event.id,
    );
}

fn message_id(delivery: &Delivery) -> Option<String> {
    delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.to_string())
}

/// The last `capacity` ids seen: memory stays bounded, and a duplicate is caught when
/// it arrives within that many events, as Enate's (seconds apart) and redeliveries
/// after a reconnect do. It is this process's memory only: with several workers or
/// across restarts, make the work itself idempotent too (e.g. a unique key on the id).
struct RecentIds {
    capacity: usize,
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl RecentIds {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            order: VecDeque::with_capacity(capacity),
            ids: HashSet::with_capacity(capacity),
        }
    }

    /// False when `id` was seen recently.
    fn insert(&mut self, id: String) -> bool {
        if self.ids.contains(&id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        self.order.push_back(id.clone());
        self.ids.insert(id);
        true
    }
}

/// A flag that turns true on SIGTERM (what `docker stop` sends) or Ctrl-C.
fn stop_on_signal() -> anyhow::Result<watch::Receiver<bool>> {
    let (set, stop) = watch::channel(false);
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot handle SIGTERM")?;
    tokio::spawn(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        let _ = set.send(true);
    });
    Ok(stop)
}

/// The worker's types against the published contract (`schemas/`): they read
/// every example event of the AsyncAPI document (real bridge output), each field
/// from the schema property of the same name, and a field that can be absent or
/// null in the schema is an `Option` here, so no valid event fails to parse.
#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    const SCHEMA: &str = include_str!("../../schemas/event.schema.json");
    const ASYNCAPI: &str = include_str!("../../schemas/asyncapi.json");

    /// Every event example of the AsyncAPI document.
    fn examples() -> Vec<Value> {
        let asyncapi: Value = serde_json::from_str(ASYNCAPI).unwrap();
        asyncapi["components"]["messages"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(name, _)| *name != "quarantined")
            .flat_map(|(_, message)| message["examples"].as_array().unwrap().clone())
            .map(|example| example["payload"].clone())
            .collect()
    }

    #[test]
    fn the_worker_reads_every_example_event_field_by_field() {
        let examples = examples();
        assert!(examples.len() >= 6, "an example per event type");
        for payload in examples {
            let event: Event = serde_json::from_value(payload.clone())
                .unwrap_or_else(|error| panic!("{error}: {payload}"));
            assert_eq!(payload["id"], event.id.to_string());
            assert_eq!(payload["type"], event.kind);
            assert_eq!(
                payload["time"]
                    .as_str()
                    .unwrap()
                    .parse::<jiff::Timestamp>()
                    .unwrap(),
                event.time
            );
            assert_eq!(payload["subject"].as_str(), event.subject.as_deref());
            let data = &payload["data"];
            assert_eq!(data["reference"].as_str(), event.data.reference.as_deref());
            assert_eq!(
                data["process_type"].as_str(),
                event.data.process_type.as_deref()
            );
            assert_eq!(data["status"].as_str(), event.data.status.as_deref());
        }
    }

    /// Each field the worker reads: where it is in the schema, and whether the
    /// worker requires it (not an `Option`).
    const FIELDS: [(&str, &str, bool); 8] = [
        ("/properties/id", "/required", true),
        ("/properties/type", "/required", true),
        ("/properties/time", "/required", true),
        ("/properties/subject", "/required", false),
        ("/properties/data", "/required", true),
        (
            "/$defs/data/properties/reference",
            "/$defs/data/required",
            false,
        ),
        (
            "/$defs/data/properties/process_type",
            "/$defs/data/required",
            false,
        ),
        (
            "/$defs/data/properties/status",
            "/$defs/data/required",
            false,
        ),
    ];

    #[test]
    fn what_the_worker_requires_the_schema_promises() {
        let schema: Value = serde_json::from_str(SCHEMA).unwrap();
        for (property, required, worker_requires) in FIELDS {
            let declared = schema
                .pointer(property)
                .unwrap_or_else(|| panic!("the schema has no {property}"));
            let name = property.rsplit('/').next().unwrap();
            let always_there = schema
                .pointer(required)
                .and_then(Value::as_array)
                .is_some_and(|names| names.iter().any(|n| n == name));
            let nullable = declared["type"]
                .as_array()
                .is_some_and(|types| types.iter().any(|t| t == "null"));
            assert_eq!(
                worker_requires,
                always_there && !nullable,
                "{property}: the worker {} it, the schema says required {always_there}, nullable {nullable}",
                if worker_requires {
                    "requires"
                } else {
                    "does not require"
                }
            );
        }
    }
}
