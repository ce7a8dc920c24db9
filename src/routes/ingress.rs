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
use tokio::sync::SemaphorePermit;
use uuid::Uuid;

use super::{body::read_body, rejection::Rejection, state::AppState};
use crate::{
    config::InvalidPayloadPolicy,
    delivery::{Outgoing, Safe},
    event::event_id,
    metrics::Stage,
    outcome::Outcome,
    payload::{InvalidPayload, SplitError, split_body_at_most},
    webhook::Webhook,
};

/// The 200 answer: the events are safe.
#[derive(Serialize)]
struct Accepted {
    #[serde(rename = "status")]
    outcome: Outcome,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    event_ids: Vec<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// `POST /webhooks/{webhook}`: the name looked up in any case, or unknown.
pub async fn receive_webhook(
    request: HttpRequest,
    name: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    receive(Webhook::from_path_segment(&name), request, payload, state).await
}

/// A request for `webhook` (`None`: a name that is no webhook), from a
/// webhook's own path or from `receive_webhook`.
pub async fn receive(
    webhook: Option<Webhook>,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let in_flight = state.metrics.in_flight();
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
            outcome = outcome.word(),
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

/// The request's steps, in the order the module comment gives.
async fn handle(
    webhook: Webhook,
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Accepted, Rejection> {
    let received = Timestamp::now();
    authenticate(request, state)?;
    // Each step's time, for where a request's time goes (the lane's are
    // timed by the lane).
    let mut stages = state.metrics.stage_clock();
    // Its bytes count against the body budget until the answer.
    let held = read_body(request, payload, state.body_limits, &state.body_budget).await?;
    stages.lap(Stage::BodyRead);
    // Held until the answer: bounds the parsing and publishing done at once.
    let _permit = admit(state)?;
    stages.lap(Stage::Admission);
    let built = build_or_quarantine(webhook, request, &held.bytes, received, state)?;
    let fresh = drop_duplicates(built.messages, state);
    stages.lap(Stage::Normalize);
    if fresh.messages.is_empty() {
        return Ok(already_safe(built.quarantined, fresh.event_ids));
    }
    let safe = deliver(&fresh.messages, state).await?;
    Ok(answer(built.quarantined, safe, fresh.event_ids))
}

fn authenticate(request: &HttpRequest, state: &AppState) -> Result<(), Rejection> {
    if state.auth.is_authentic(request.headers()) {
        Ok(())
    } else {
        Err(Rejection::Unauthorized {
            header: state.auth.header_name().to_string(),
        })
    }
}

/// An admission slot, or 503 at once: waiting for one would hold the body's
/// bytes and the sender's connection while the bridge is already saturated.
fn admit(state: &AppState) -> Result<SemaphorePermit<'_>, Rejection> {
    state
        .admission
        .try_acquire()
        .map_err(|_| Rejection::Overloaded)
}

/// What the body became: its events, or the body itself kept for quarantine.
struct Built {
    messages: Vec<Outgoing>,
    /// Why the body could not become events, when it is quarantined instead.
    quarantined: Option<String>,
}

/// The body split into objects and each made an event; a body that cannot be,
/// quarantined or refused as `server.invalid_payload` says.
fn build_or_quarantine(
    webhook: Webhook,
    request: &HttpRequest,
    body: &[u8],
    received: Timestamp,
    state: &AppState,
) -> Result<Built, Rejection> {
    let events = match split_body_at_most(body, state.max_events_per_request) {
        Err(SplitError::TooManyEvents { max }) => return Err(Rejection::TooManyEvents { max }),
        Err(SplitError::Invalid(invalid)) => Err(invalid),
        Ok(objects) => Outgoing::events(&state.events, webhook, objects, received),
    };
    match (events, state.invalid_payload) {
        (Ok(messages), _) => Ok(Built {
            messages,
            quarantined: None,
        }),
        (Err(InvalidPayload(reason)), InvalidPayloadPolicy::Reject) => {
            Err(Rejection::Invalid(reason))
        }
        (Err(InvalidPayload(reason)), InvalidPayloadPolicy::Quarantine) => {
            Ok(quarantine(reason, webhook, request, body, received))
        }
    }
}

/// The body kept exactly as received, for the quarantine exchange (answered
/// 200 once it is safe, like an event).
fn quarantine(
    reason: String,
    webhook: Webhook,
    request: &HttpRequest,
    body: &[u8],
    received: Timestamp,
) -> Built {
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
    Built {
        messages: vec![message],
        quarantined: Some(reason),
    }
}

/// The messages still to deliver, and the ids the answer names.
struct Fresh {
    messages: Vec<Outgoing>,
    /// Every distinct event of the request, delivered before or not.
    event_ids: Vec<Uuid>,
}

/// Identical objects in one request are one event (the same id, published
/// once), and an event seen within the dedup window is not published again.
fn drop_duplicates(messages: Vec<Outgoing>, state: &AppState) -> Fresh {
    let received_count = messages.len();
    let mut ids = HashSet::with_capacity(received_count);
    let messages: Vec<Outgoing> = messages
        .into_iter()
        .filter(|message| ids.insert(message.id))
        .collect();
    let event_ids = messages.iter().map(|message| message.id).collect();
    let messages: Vec<Outgoing> = messages
        .into_iter()
        .filter(|message| !state.dedup.is_duplicate(&message.id))
        .collect();
    state
        .metrics
        .count_duplicates((received_count - messages.len()) as u64);
    Fresh {
        messages,
        event_ids,
    }
}

/// Confirmed or spooled; only then are the ids remembered as seen, so a
/// request that failed is published when Enate retries it.
async fn deliver(messages: &[Outgoing], state: &AppState) -> Result<Safe, Rejection> {
    let safe = state
        .delivery
        .deliver(messages)
        .await
        .map_err(Rejection::Unavailable)?;
    state
        .dedup
        .remember(messages.iter().map(|message| message.id));
    Ok(safe)
}

/// The 200 for a request whose messages are safe. A quarantined body names no
/// event ids: it became no event.
/// Nothing left to deliver: all of it was made safe within the dedup window.
/// A body that was quarantined gets the answer it got the first time, since
/// the id of its quarantine message names no event.
fn already_safe(quarantined: Option<String>, event_ids: Vec<Uuid>) -> Accepted {
    match quarantined {
        Some(reason) => Accepted {
            outcome: Outcome::Quarantined,
            event_ids: Vec::new(),
            reason: Some(reason),
        },
        None => Accepted {
            outcome: Outcome::Duplicate,
            event_ids,
            reason: None,
        },
    }
}

fn answer(quarantined: Option<String>, safe: Safe, event_ids: Vec<Uuid>) -> Accepted {
    let (outcome, event_ids) = match (&quarantined, safe) {
        (Some(_), _) => (Outcome::Quarantined, Vec::new()),
        (None, Safe::Published) => (Outcome::Published, event_ids),
        (None, Safe::Spooled) => (Outcome::Spooled, event_ids),
    };
    Accepted {
        outcome,
        event_ids,
        reason: quarantined,
    }
}
