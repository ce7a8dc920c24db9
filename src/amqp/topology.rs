//! The exchanges and queues the bridge relies on:
//!
//! - `amqp.exchange` (topic): every event, routed by its routing key; its
//!   alternate exchange is `amqp.unrouted_exchange`, so an event no worker has
//!   bound yet is kept instead of vanishing;
//! - `amqp.unrouted_exchange` (fanout) and its queue of the same name;
//! - `amqp.quarantine_exchange` (fanout) and its queue of the same name:
//!   payloads that cannot become events, kept as received.
//!
//! In a RabbitMQ cluster those two queues are classic queues: each lives on
//! one node, its home node. While that node is down, declaring the queue from
//! any other node fails with 404 NOT_FOUND ("home node ... is down or
//! inaccessible"). That is not a conflict: the queue exists as declared, it
//! just cannot take messages now (those routed to it come back as returns,
//! and the bridge spools them until the node is back). The cluster fault suite
//! found that treating it as a conflict kept every bridge from reconnecting to
//! the surviving nodes, and from starting, for as long as that one node was
//! down (`cargo test --test cluster classic_queue -- --ignored` reproduces the
//! broker's answer).

use lapin::{
    Connection, ErrorKind, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString},
};

/// Names of the exchanges (and queues) the bridge publishes to.
#[derive(Debug, Clone)]
pub struct Topology {
    pub exchange: String,
    pub quarantine_exchange: String,
    pub unrouted_exchange: String,
}

/// Why the topology could not be declared.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// What exists on the broker differs from what the bridge declares. Retrying
    /// cannot help: an operator has to act, so this stops the start.
    #[error("{0}")]
    Conflict(String),
    /// The connection failed while declaring; the next connection retries.
    #[error("declaring the topology failed: {0}")]
    Connection(#[source] lapin::Error),
}

impl Topology {
    pub async fn declare(&self, connection: &Connection) -> Result<(), TopologyError> {
        self.declare_fanout_with_queue(
            connection,
            &self.unrouted_exchange,
            "amqp.unrouted_exchange",
        )
        .await?;
        self.declare_fanout_with_queue(
            connection,
            &self.quarantine_exchange,
            "amqp.quarantine_exchange",
        )
        .await?;
        let mut arguments = FieldTable::default();
        arguments.insert(
            "alternate-exchange".into(),
            AMQPValue::LongString(LongString::from(self.unrouted_exchange.as_str())),
        );
        // A failed declaration closes its channel, so each step gets a fresh one
        // and the error can say exactly which step failed.
        let channel = connection
            .create_channel()
            .await
            .map_err(TopologyError::Connection)?;
        channel
            .exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Topic,
                durable_exchange(),
                arguments,
            )
            .await
            .map_err(|error| {
                conflict(
                    error,
                    format!(
                        "exchange {:?} exists with another type or arguments than the bridge declares \
                         (topic, durable, alternate-exchange={:?})",
                        self.exchange, self.unrouted_exchange
                    ),
                    "amqp.exchange",
                )
            })?;
        let _ = channel.close(200, "topology declared".into()).await;
        Ok(())
    }

    async fn declare_fanout_with_queue(
        &self,
        connection: &Connection,
        name: &str,
        key: &str,
    ) -> Result<(), TopologyError> {
        let channel = connection
            .create_channel()
            .await
            .map_err(TopologyError::Connection)?;
        channel
            .exchange_declare(name.into(), ExchangeKind::Fanout, durable_exchange(), FieldTable::default())
            .await
            .map_err(|error| {
                conflict(
                    error,
                    format!("exchange {name:?} exists with another type or arguments than the bridge declares (fanout, durable)"),
                    key,
                )
            })?;
        let channel = connection
            .create_channel()
            .await
            .map_err(TopologyError::Connection)?;
        let declared = channel
            .queue_declare(
                name.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await;
        match declared {
            Ok(_) => {}
            Err(error) if is_home_node_down(&error) => {
                // It exists (a queue that does not exist is created, never
                // NOT_FOUND), and so does its binding, durable with it.
                tracing::warn!(
                    queue = name,
                    error = %error,
                    "a classic queue of the bridge's topology is on a RabbitMQ node that is down; \
                     messages routed to it are spooled until that node is back"
                );
                return Ok(());
            }
            Err(error) => {
                return Err(conflict(
                    error,
                    format!(
                        "queue {name:?} exists with other arguments than the bridge declares (durable, no arguments)"
                    ),
                    key,
                ));
            }
        }
        channel
            .queue_bind(
                name.into(),
                name.into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(TopologyError::Connection)?;
        let _ = channel.close(200, "topology declared".into()).await;
        Ok(())
    }
}

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

/// 404 NOT_FOUND to a (non-passive) queue.declare: RabbitMQ's answer for a
/// durable classic queue whose home node is down or unreachable.
fn is_home_node_down(error: &lapin::Error) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(amqp) if amqp.get_id() == 404)
}

/// A channel-level refusal (406 PRECONDITION_FAILED and the like) is a conflict an
/// operator must fix; anything else is the connection failing.
fn conflict(error: lapin::Error, what: String, key: &str) -> TopologyError {
    if error.is_amqp_soft_error() {
        TopologyError::Conflict(format!(
            "{what}; the broker said: {error}. Delete it so the bridge can declare it, \
             set {key} to another name, or set amqp.declare_topology = false if the \
             topology is managed elsewhere"
        ))
    } else {
        TopologyError::Connection(error)
    }
}
