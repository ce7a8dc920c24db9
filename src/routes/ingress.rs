//! `POST /webhooks/{webhook}`: the URL given to Enate as SubscriberURL.
//!
//! Order matters: the webhook name, then authenticity (before reading a byte of
//! the body), then the body within its limit, then parsing, then publishing.
//! A 200 is sent only once every event of the request is safe: confirmed by
//! RabbitMQ, or fsynced in the spool.

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    http::header::{CONTENT_LENGTH, CONTENT_TYPE},
    web,
};
use futures::StreamExt;
use jiff::Timestamp;
use serde::Serialize;
use uuid::Uuid;

use super::rejection::Rejection;
use crate::{
    config::InvalidPayloadPolicy,
    delivery::{Outgoing, Safe},
    event::event_id,
    metrics::Outcome,
    payload::{InvalidPayload, split_body},
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
    tracing::info!(
        webhook = webhook.map_or("unknown", Webhook::enate_name),
        event_ids = ?event_ids,
        outcome = outcome.label(),
        status = response.status().as_u16(),
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "webhook handled"
    );
    response
}

async fn handle(
    webhook: Webhook,
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Accepted, Rejection> {
    let received = Timestamp::now();
    // Held until the answer: bounds memory whatever the load or outage length.
    let Ok(_permit) = state.admission.try_acquire() else {
        return Err(Rejection::Overloaded);
    };
    if !state.auth.is_authentic(request.headers()) {
        return Err(Rejection::Unauthorized {
            header: state.auth.header_name().to_string(),
        });
    }
    let body = read_body(request, payload, state.max_body_bytes).await?;
    let events = split_body(&body).and_then(|objects| {
        objects
            .into_iter()
            .map(|raw| {
                state
                    .events
                    .build(webhook, raw, received)
                    .map(Outgoing::event)
            })
            .collect::<Result<Vec<_>, _>>()
    });
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
                    event_id(webhook, &body),
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
    let event_ids: Vec<Uuid> = messages.iter().map(|message| message.id).collect();

    let fresh: Vec<Outgoing> = messages
        .into_iter()
        .filter(|message| !state.dedup.is_duplicate(&message.id))
        .collect();
    let duplicates = event_ids.len() - fresh.len();
    state.metrics.duplicates.inc_by(duplicates as u64);
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

/// Reads the body, never holding more than `limit` bytes: a declared length over
/// the limit is refused before reading, a chunked body as soon as it passes it.
async fn read_body(
    request: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, Rejection> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(Rejection::TooLarge { limit });
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Rejection::Aborted)?;
        if body.len() + chunk.len() > limit {
            return Err(Rejection::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
