//! Everything that talks to RabbitMQ. Knows nothing of Enate, events or the
//! spool: it publishes messages and says whether the broker confirmed them.
//!
//! - `broker`: the connection's life (connect, reconnect, blocked, close),
//!   readiness and status;
//! - `lane`: one confirm-mode channel owned by one task, which sends in order
//!   and settles many confirms at once (why a task: see its comment);
//! - `publish`: the message, the failures, and publishing over the lanes;
//! - `topology`: the exchanges and queues the bridge declares.

mod broker;
mod lane;
mod publish;
mod topology;

pub use broker::{
    Broker, BrokerSettings, BrokerStatus, ConnectFailure, ConnectFailures, FailureKind, StartError,
    Unavailable,
};
pub use publish::{Message, OrderedLane, PublishError, Ticket};
pub use topology::{Topology, TopologyError};
