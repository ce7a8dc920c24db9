//! `POST /webhooks/{webhook}`: the URL given to Enate as SubscriberURL.
//!
//! Order matters: the webhook name, then authenticity (before reading a byte of
//! the body, and before anything about load is said), then the body within its
//! size, deadline and budget (`body`), then an admission slot
//! (`server.max_in_flight`) for parsing and publishing only. A slow sender thus
//! holds no slot, and a sender without the secret learns nothing but 401.
//! A 200 is sent only once every event of the request is safe: confirmed by
//! RabbitMQ, or fsynced in the spool.

use std::collections::HashSet;

use actix_web::{HttpRequest, HttpResponse, ResponseError, http::header::CONTENT_TYPE, web};
use jiff::Timestamp;
use serde::Serialize;
use uuid::Uuid;

use super::{body::read_body, rejection::Rejection};
use crate::{
    config::InvalidPayloadPolicy,
    delivery::{Outgoing, Safe},
    event::event_id,
    metrics::Outcome,
    payload::{InvalidPayload, SplitError, split_body_at_most},
    state::AppState,
    webhook::Webhook,
};

/// The 200 answer: the events are safe.
#[derive(Serialize)]
struct Accepted {
    status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    event_ids: Vec<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip)]
    outcome: Outcome,
}

impl Accepted {
    fn new(
        status: &'static str,
        outcome: Outcome,
        event_ids: Vec<Uuid>,
        reason: Option<String>,
    ) -> Self {
        Self {
            status,
            event_ids,
            reason,
            outcome,
        }
    }
}

pub async fn receive_webhook(
    request: HttpRequest,
    name: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let in_flight = state.metrics.in_flight();
    let webhook = Webhook::from_path_segment(&name);
    let result = match webhook {
        Some(webhook) => handle(webhook, &request, payload, &state).await,
        None => Err(Rejection::UnknownWebhook),
    };
    let elapsed = in_flight.elapsed();
    let (response, outcome, event_ids) = match result {
        Ok(accepted) => (
            HttpResponse::Ok().json(&accepted),
            accepted.outcome,
            accepted.event_ids,
        ),
        Err(rejection) => (rejection.error_response(), rejection.outcome(), Vec::new()),
    };
    state.metrics.count_webhook(webhook, outcome);
    if let Some(webhook) = webhook {
        state.metrics.observe_request(webhook, elapsed);
    }
    if !is_refusal(outcome) || state.refusal_log.admit(outcome) {
        tracing::info!(
            webhook = webhook.map_or("unknown", Webhook::enate_name),
            events = event_ids.len(),
            event_ids = ?&event_ids[..event_ids.len().min(LOGGED_EVENT_IDS)],
            outcome = outcome.label(),
            status = response.status().as_u16(),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "webhook handled"
        );
    }
    response
}

/// Event ids a log line names; `events` gives the count (a request may carry
/// up to server.max_events_per_request).
const LOGGED_EVENT_IDS: usize = 3;

/// Refused before anything was accepted: what a flood is made of, logged at a
/// bounded rate (`refusal_log`). Invalid payloads (422) and unavailability are
/// about genuine deliveries and keep a line each.
fn is_refusal(outcome: Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Unauthorized
            | Outcome::UnknownWebhook
            | Outcome::TooLarge
            | Outcome::TooManyEvents
            | Outcome::Aborted
            | Outcome::Timeout
            | Outcome::Overloaded
    )
}

async fn handle(
    webhook: Webhook,
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Accepted, Rejection> {
    let received = Timestamp::now();
    if !state.auth.is_authentic(request.headers()) {
        return Err(Rejection::Unauthorized {
            header: state.auth.header_name().to_string(),
        });
    }
    // Its bytes count against the body budget until the answer.
    let held = read_body(request, payload, state.body_limits, &state.body_budget).await?;
    // Held until the answer: bounds the parsing and publishing done at once.
    let Ok(_permit) = state.admission.try_acquire() else {
        return Err(Rejection::Overloaded);
    };
    let body = &held.bytes;
    let events = match split_body_at_most(body, state.max_events_per_request) {
        Err(SplitError::TooManyEvents { max }) => return Err(Rejection::TooManyEvents { max }),
        Err(SplitError::Invalid(invalid)) => Err(invalid),
        Ok(objects) => objects
            .into_iter()
            .map(|raw| {
                state
                    .events
                    .build(webhook, raw, received)
                    .map(Outgoing::event)
            })
            .collect::<Result<Vec<_>, _>>(),
    };
    let (messages, quarantine_reason) = match events {
        Ok(messages) => (messages, None),
        Err(InvalidPayload(reason)) => match state.invalid_payload {
            InvalidPayloadPolicy::Reject => return Err(Rejection::Invalid(reason)),
            InvalidPayloadPolicy::Quarantine => {
                let content_type = request
                    .headers()
                    .get(CONTENT_TYPE)
                    .and_then(|value| value.to_str().ok());
                let message = Outgoing::quarantined(
                    event_id(webhook, body),
                    webhook,
                    &reason,
                    body.to_vec(),
                    content_type,
                    received.as_second().max(0) as u64,
                );
                (vec![message], Some(reason))
            }
        },
    };
    // Identical objects in one request are one event: the same id, published once.
    let received_count = messages.len();
    let mut ids = HashSet::with_capacity(received_count);
    let messages: Vec<Outgoing> = messages
        .into_iter()
        .filter(|message| ids.insert(message.id))
        .collect();
    let event_ids: Vec<Uuid> = messages.iter().map(|message| message.id).collect();

    let fresh: Vec<Outgoing> = messages
        .into_iter()
        .filter(|message| !state.dedup.is_duplicate(&message.id))
        .collect();
    let duplicates = received_count - fresh.len();
    state.metrics.count_duplicates(duplicates as u64);
    if fresh.is_empty() {
        return Ok(Accepted::new(
            "duplicate",
            Outcome::Duplicate,
            event_ids,
            None,
        ));
    }

    let safe = state
        .delivery
        .deliver(&fresh)
        .await
        .map_err(Rejection::Unavailable)?;
    state.dedup.remember(fresh.iter().map(|message| message.id));
    Ok(match (quarantine_reason, safe) {
        (Some(reason), _) => Accepted::new(
            "quarantined",
            Outcome::Quarantined,
            Vec::new(),
            Some(reason),
        ),
        (None, Safe::Published) => Accepted::new("published", Outcome::Published, event_ids, None),
        (None, Safe::Spooled) => Accepted::new("spooled", Outcome::Spooled, event_ids, None),
    })
}
