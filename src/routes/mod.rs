//! HTTP handlers: `ingress` for Enate, `admin` for operators, and `rejection`,
//! the one place where a refusal becomes a status code and a JSON body.

pub mod admin;
pub mod ingress;
pub mod rejection;

use actix_web::{HttpResponse, web};
use serde_json::json;

/// The ingress routes.
pub fn ingress(config: &mut web::ServiceConfig) {
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
        .route("/metrics", web::get().to(admin::metrics))
        .route("/healthz", web::get().to(admin::healthz))
        .route("/readyz", web::get().to(admin::readyz))
        .route("/spool", web::get().to(admin::spool))
        .default_service(web::to(not_found));
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "status": "not_found",
        "reason": "no such route; webhooks are POSTed to /webhooks/{webhook}",
    }))
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header(("Allow", "POST"))
        .json(json!({
            "status": "method_not_allowed",
            "reason": "webhooks are POSTed",
        }))
}
