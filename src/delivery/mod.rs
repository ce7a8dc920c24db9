//! Delivery: an event (or a quarantined payload) made safe, confirmed by
//! RabbitMQ or fsynced in the spool, and the spool drained back into RabbitMQ.
//!
//! - `message`: what RabbitMQ gets (exchange, routing key, properties, headers);
//! - `deliver`: publish with a confirm or spool, as the spool policy says, and
//!   the one place where publish outcomes are counted;
//! - `record`: how a message is kept in the spool;
//! - `forwarder`: the task that drains the spool in arrival order;
//! - `inspect`: the spool's records for a person (`spool list`, `spool export`).
//!
//! Built on `amqp` (publishing) and `spool` (durable bytes), which know nothing
//! of each other or of events.

mod deliver;
mod forwarder;
pub mod inspect;
mod message;
mod record;

pub use deliver::{
    AcceptingInto, Delivery, DeliveryError, NotReady, Safe, SpoolPolicy, failure_reason,
};
pub use message::{APP_ID, Destination, Destinations, Outgoing};

use tokio::task::JoinHandle;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

impl Delivery {
    /// Starts draining the spool on `tasks`, if there is a spool; it stops
    /// once `stop` is cancelled and what it has in flight is settled.
    pub fn start_forwarder(
        &self,
        tasks: &TaskTracker,
        stop: CancellationToken,
    ) -> Option<JoinHandle<()>> {
        let spool = self.policy.spool()?.clone();
        Some(tasks.spawn(forwarder::run(self.clone(), spool, stop)))
    }
}
