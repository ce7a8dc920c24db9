//! Everything that talks to RabbitMQ.
//!
//! - `broker`: the connection's life (connect, reconnect, blocked, close) and readiness;
//! - `session`: one connection and its pool of confirm-mode channels, one
//!   unconfirmed message each;
//! - `publish`: publishing with confirms and classifying failures;
//! - `topology`: the exchanges and queues the bridge declares.

mod broker;
mod publish;
mod session;
mod topology;

pub use broker::{Broker, BrokerSettings};
pub use publish::{Message, PublishError};
pub use topology::Topology;
