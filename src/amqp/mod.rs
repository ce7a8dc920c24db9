//! Everything that talks to RabbitMQ. Knows nothing of Enate, events, the
//! spool or the configuration: it publishes messages and says whether the
//! broker confirmed them. Imports run one way, from the top of this list down:
//!
//! - `broker`: the handle the bridge uses (publish, in order, readiness,
//!   status, close);
//! - `connection`: the connection's life (connect, supervise, reconnect);
//! - `command`: a one-off connection for a command-line tool, connected as
//!   the bridge connects;
//! - `session`: one live connection and its lanes;
//! - `ordered`: a lane that keeps submission order, for the spool's forwarder;
//! - `lane`: one confirm-mode channel owned by one task, which sends in order
//!   and settles many confirms at once (why a task: see its comment);
//! - `confirm_watch`: whether RabbitMQ confirms at all (after a timeout);
//! - `settings`, `unavailable`, `topology`: what the broker is told, why it
//!   cannot be used, the exchanges and queues the bridge declares;
//! - `tls`: the TLS configuration `amqps://` URLs are connected with, and
//!   which certificate a failed handshake was about;
//! - `url`: a broker URL, parsed once and shown without its password;
//! - `message`: the message and the ways a publish fails, which all of them use.

mod broker;
mod command;
mod confirm_watch;
mod connection;
mod lane;
mod message;
mod ordered;
mod session;
mod settings;
mod tls;
mod topology;
mod unavailable;
mod url;

pub use broker::{Broker, BrokerStatus};
pub use command::connect_for_command;
pub use lane::{LaneHandle, Ticket};
pub use message::{Confirmed, Message, PublishError};
pub use ordered::OrderedLane;
pub use settings::BrokerSettings;
pub use tls::{BrokerTls, ClientIdentity, TlsSetupError};
pub use topology::{Topology, TopologyError};
pub use unavailable::{ConnectFailure, ConnectFailures, FailureKind, StartError, Unavailable};
pub use url::{AmqpUrl, NotAnAmqpUrl};
