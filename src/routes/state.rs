//! What every request handler shares: built once at start, read-only afterwards.

use std::{sync::Arc, time::Duration};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{
    body::{BodyBudget, BodyLimits},
    refusal_log::RefusalLog,
};
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
    pub body_limits: BodyLimits,
    /// Every body byte held at once (`server.max_body_buffer_bytes`).
    pub body_budget: BodyBudget,
    pub max_events_per_request: usize,
    pub invalid_payload: InvalidPayloadPolicy,
    /// One permit per request parsed and published at once
    /// (`server.max_in_flight`), taken once its body is in.
    pub admission: Semaphore,
    pub max_in_flight: usize,
    pub refusal_log: RefusalLog,
    /// Cancelled when the shutdown begins (the `intake` of `Shutdown`).
    shutting_down: CancellationToken,
}

/// The parts of [`AppState`] decided by the configuration.
pub struct Limits {
    pub max_body_bytes: usize,
    pub body_timeout: Duration,
    pub max_body_buffer_bytes: usize,
    pub max_events_per_request: usize,
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
        shutting_down: CancellationToken,
    ) -> Self {
        Self {
            auth,
            events,
            delivery,
            dedup,
            metrics,
            body_limits: BodyLimits {
                max_bytes: limits.max_body_bytes,
                timeout: limits.body_timeout,
            },
            body_budget: BodyBudget::new(limits.max_body_buffer_bytes),
            max_events_per_request: limits.max_events_per_request,
            invalid_payload: limits.invalid_payload,
            admission: Semaphore::new(limits.max_in_flight),
            max_in_flight: limits.max_in_flight,
            refusal_log: RefusalLog::new(),
            shutting_down,
        }
    }

    /// Once true, /readyz answers 503, so load balancers stop sending traffic.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.is_cancelled()
    }

    /// Admission slots taken now (requests being parsed or published).
    pub fn slots_in_use(&self) -> usize {
        self.max_in_flight
            .saturating_sub(self.admission.available_permits())
    }
}
