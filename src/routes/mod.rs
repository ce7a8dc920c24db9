//! HTTP handlers: `ingress` for Enate, `admin` for operators, `contract` for the
//! documents of the contract (on the admin listener), and `rejection`, the one
//! place where a refusal becomes a status code and a JSON body. `body` reads a
//! webhook's body within its size, deadline and the shared byte budget;
//! `refusal_log` keeps refusals from flooding the log; `state` is what every
//! handler shares, built by startup.

pub mod admin;
pub mod body;
pub mod contract;
pub mod ingress;
pub mod refusal_log;
pub mod rejection;
pub mod state;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::webhook::Webhook;

/// The ingress routes. Each webhook's own path comes first: actix matches a
/// static path by comparing it, while the `{webhook}` pattern costs a regex
/// match per request (about 19,000 instructions, near a tenth of a request:
/// docs/benchmark.md). The pattern still takes other spellings of a name
/// (any case) and names that are no webhook.
pub fn ingress(config: &mut web::ServiceConfig) {
    for webhook in Webhook::ALL {
        config.service(
            web::resource(format!("/webhooks/{}", webhook.enate_name()))
                .route(web::post().to(move |request, payload, state| {
                    ingress::receive(Some(webhook), request, payload, state)
                }))
                .default_service(web::to(method_not_allowed)),
        );
    }
    config
        .service(
            web::resource("/webhooks/{webhook}")
                .route(web::post().to(ingress::receive_webhook))
                .default_service(web::to(method_not_allowed)),
        )
        .default_service(web::to(not_found));
}

/// The admin routes.
pub fn admin(config: &mut web::ServiceConfig) {
    config
        .service(admin_resource("/metrics").route(web::get().to(admin::metrics)))
        .service(admin_resource("/healthz").route(web::get().to(admin::healthz)))
        .service(admin_resource("/readyz").route(web::get().to(admin::readyz)))
        .service(admin_resource("/spool").route(web::get().to(admin::spool)))
        .configure(contract::routes)
        .default_service(web::to(admin_not_found));
}

/// A path of the admin listener. It answers GET only; another method gets 405
/// with `Allow: GET`, as the OpenAPI document says (the API tester found a 404
/// that named the webhook path, which is not on this listener).
pub(crate) fn admin_resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|| async {
        HttpResponse::MethodNotAllowed()
            .insert_header(("Allow", "GET"))
            .json(json!({
                "status": "method_not_allowed",
                "reason": "the admin listener answers GET only",
            }))
    }))
}

async fn admin_not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "status": "not_found",
        "reason": "no such route; /openapi.json lists this listener's routes",
    }))
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "status": "not_found",
        "reason": "no such route; webhooks are POSTed to /webhooks/{webhook}",
    }))
}

/// Also how `subscriptions verify` recognises a bridge at a SubscriberURL
/// before asking Enate: a GET answered 405 with `Allow: POST`.
async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header(("Allow", "POST"))
        .json(json!({
            "status": "method_not_allowed",
            "reason": "webhooks are POSTed",
        }))
}
