//! What every request handler shares: built once at start, read-only afterwards
//! (but for the shutdown flag).

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use crate::{
    amqp::Broker, auth::Authenticator, config::InvalidPayloadPolicy, dispatch::Destinations,
    event::EventBuilder, metrics::Metrics,
};

pub struct AppState {
    pub auth: Authenticator,
    pub events: EventBuilder,
    pub broker: Broker,
    pub destinations: Destinations,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    pub invalid_payload: InvalidPayloadPolicy,
    shutting_down: AtomicBool,
}

impl AppState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        auth: Authenticator,
        events: EventBuilder,
        broker: Broker,
        destinations: Destinations,
        metrics: Arc<Metrics>,
        max_body_bytes: usize,
        invalid_payload: InvalidPayloadPolicy,
    ) -> Self {
        Self {
            auth,
            events,
            broker,
            destinations,
            metrics,
            max_body_bytes,
            invalid_payload,
            shutting_down: AtomicBool::new(false),
        }
    }

    /// From now on /readyz answers 503, so load balancers stop sending traffic.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}
