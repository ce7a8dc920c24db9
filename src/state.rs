//! What every request handler shares: built once at start, read-only afterwards
//! (but for the shutdown flag).

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use tokio::sync::Semaphore;

use crate::{
    auth::Authenticator, config::InvalidPayloadPolicy, dedup::Dedup, delivery::Delivery,
    event::EventBuilder, metrics::Metrics,
};

pub struct AppState {
    pub auth: Authenticator,
    pub events: EventBuilder,
    pub delivery: Delivery,
    pub dedup: Dedup,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    pub invalid_payload: InvalidPayloadPolicy,
    /// One permit per request handled at once (`server.max_in_flight`).
    pub admission: Semaphore,
    shutting_down: AtomicBool,
}

/// The parts of [`AppState`] decided by the configuration.
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_in_flight: usize,
    pub invalid_payload: InvalidPayloadPolicy,
}

impl AppState {
    pub fn new(
        auth: Authenticator,
        events: EventBuilder,
        delivery: Delivery,
        dedup: Dedup,
        metrics: Arc<Metrics>,
        limits: Limits,
    ) -> Self {
        Self {
            auth,
            events,
            delivery,
            dedup,
            metrics,
            max_body_bytes: limits.max_body_bytes,
            invalid_payload: limits.invalid_payload,
            admission: Semaphore::new(limits.max_in_flight),
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
