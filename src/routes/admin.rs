//! The admin listener: `/metrics`, `/healthz`, `/readyz`. It is separate from the
//! ingress so that scrapes and probes never compete with webhooks, and so the
//! ingress port can be exposed to Enate without exposing these.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

/// 200 while the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// 200 while the bridge can give Enate a 200: the broker connection is up, the
/// topology declared, publishing not blocked, and no shutdown under way.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.is_shutting_down() {
        return HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "not_ready", "reason": "shutting down" }));
    }
    match state.broker.readiness() {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready", "broker": "connected" })),
        Err(reason) => HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "not_ready", "broker": "unavailable", "reason": reason })),
    }
}
