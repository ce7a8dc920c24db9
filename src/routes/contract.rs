//! The contract as files, served by the admin listener: the JSON Schema of the
//! events, the AsyncAPI document of the exchange and the OpenAPI document of the
//! HTTP API (`schemas/` in the source tree). They are compiled into the binary, so
//! a container serves the documents of exactly the version it runs, with no file
//! to mount.
//!
//! `/schemas/{document}` serves each under its own name, so the relative
//! references between them (`asyncapi.json` → `event.schema.json`) resolve for a
//! tool that reads them from the bridge as well as from the source tree.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::admin_resource;

/// One document of the contract.
#[derive(Debug, Clone, Copy)]
pub struct Document {
    /// Its file name in `schemas/` and under `/schemas/`.
    pub name: &'static str,
    pub media_type: &'static str,
    pub description: &'static str,
    pub text: &'static str,
}

pub const EVENT_SCHEMA: Document = Document {
    name: "event.schema.json",
    media_type: "application/schema+json",
    description: "JSON Schema (draft 2020-12) of the CloudEvents event the bridge publishes",
    text: include_str!("../../schemas/event.schema.json"),
};

pub const ASYNCAPI: Document = Document {
    name: "asyncapi.json",
    media_type: "application/json",
    description: "AsyncAPI 3.0: the RabbitMQ exchanges, routing keys, queues and messages",
    text: include_str!("../../schemas/asyncapi.json"),
};

pub const OPENAPI: Document = Document {
    name: "openapi.json",
    media_type: "application/json",
    description: "OpenAPI 3.1: the ingress and admin HTTP listeners",
    text: include_str!("../../schemas/openapi.json"),
};

pub const DOCUMENTS: [Document; 3] = [EVENT_SCHEMA, ASYNCAPI, OPENAPI];

/// The contract's routes on the admin listener.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(admin_resource("/schemas").route(web::get().to(index)))
        .service(admin_resource("/schemas/{document}").route(web::get().to(document)))
        .service(admin_resource("/asyncapi.json").route(web::get().to(|| serve(ASYNCAPI))))
        .service(admin_resource("/openapi.json").route(web::get().to(|| serve(OPENAPI))));
}

/// The documents, their media types and where they are.
async fn index() -> HttpResponse {
    let documents: Vec<_> = DOCUMENTS
        .iter()
        .map(|document| {
            json!({
                "name": document.name,
                "url": format!("/schemas/{}", document.name),
                "media_type": document.media_type,
                "description": document.description,
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "documents": documents,
    }))
}

async fn document(name: web::Path<String>) -> HttpResponse {
    match DOCUMENTS
        .iter()
        .find(|document| document.name == name.as_str())
    {
        Some(document) => serve(*document).await,
        None => HttpResponse::NotFound().json(json!({
            "status": "not_found",
            "reason": "no such document; /schemas lists them",
        })),
    }
}

async fn serve(document: Document) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(document.media_type)
        .body(document.text)
}
