//! The admin listener: `/metrics`, `/healthz`, `/readyz`, `/spool`. It is
//! separate from the ingress so that scrapes and probes never compete with
//! webhooks, and so the ingress port can be exposed to Enate without these.

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use super::state::AppState;
use crate::{spool::now_ms, telemetry::error_chain};

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // The broker and the spool keep their own state; it is sampled here, so
    // neither of them needs to know about metrics.
    let broker = state.delivery.broker().status();
    state.metrics.set_amqp_state(
        broker.connected,
        broker.blocked,
        broker.login_refused,
        broker.tls_refused,
        broker.reconnects,
    );
    state.metrics.set_ingress_state(
        state.body_budget.bodies_being_read(),
        state.body_budget.held_bytes(),
        state.slots_in_use(),
    );
    if let Some(spool) = state.delivery.policy().spool() {
        let stats = spool.stats();
        state.metrics.set_spool_state(
            stats.events,
            stats.bytes,
            stats.oldest_age_seconds(now_ms()),
        );
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

/// 200 while the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// 200 while the bridge can give Enate a 200: the broker takes events (connected,
/// topology declared, not blocked) or the spool does (writable, with room); the
/// JSON says which. 503 from the start of a shutdown.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let delivery = &state.delivery;
    let mut body = json!({
        "broker": match delivery.broker().readiness() {
            Ok(()) => json!({ "status": "connected" }),
            Err(reason) if reason.is_login_refused() => {
                json!({ "status": "login_refused", "reason": reason.to_string() })
            }
            Err(reason) if reason.is_tls_refused() => {
                json!({ "status": "tls_refused", "reason": reason.to_string() })
            }
            Err(reason) => json!({ "status": "unavailable", "reason": reason.to_string() }),
        },
        "spool": spool_json(&state),
        "ingress": ingress_json(&state),
    });
    let verdict = if state.is_shutting_down() {
        Err("shutting down".to_string())
    } else {
        delivery.readiness().map_err(|reason| reason.to_string())
    };
    match verdict {
        Ok(accepting) => {
            body["status"] = json!("ready");
            body["accepting_into"] = json!(accepting);
            HttpResponse::Ok().json(body)
        }
        Err(reason) => {
            body["status"] = json!("not_ready");
            body["reason"] = json!(reason);
            HttpResponse::ServiceUnavailable().json(body)
        }
    }
}

/// How saturated the ingress is: bodies arriving, body bytes held against
/// their budget, admission slots taken. Saturation alone does not make the
/// bridge unready: a load balancer would then move the same load elsewhere.
fn ingress_json(state: &AppState) -> Value {
    json!({
        "bodies_being_read": state.body_budget.bodies_being_read(),
        "body_buffer_bytes": state.body_budget.held_bytes(),
        "max_body_buffer_bytes": state.body_budget.max_bytes(),
        "slots_in_use": state.slots_in_use(),
        "max_in_flight": state.max_in_flight,
    })
}

/// What the spool holds (what `enate-bridge spool status` shows while the bridge runs).
pub async fn spool(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(spool_json(&state))
}

fn spool_json(state: &AppState) -> Value {
    let mode = state.delivery.policy().mode();
    match state.delivery.policy().spool() {
        None => json!({ "mode": mode }),
        Some(spool) => {
            let stats = spool.stats();
            let mut value = json!({
                "mode": mode,
                "events": stats.events,
                "bytes": stats.bytes,
                "max_bytes": spool.max_bytes(),
                "oldest_age_seconds": stats.oldest_age_seconds(now_ms()),
                "writable": spool.writable().is_ok(),
            });
            if let Err(reason) = spool.writable() {
                value["reason"] = json!(error_chain(&reason));
            }
            value
        }
    }
}
