//! Every way a webhook request can be refused, and the single place where each
//! becomes an HTTP status and a JSON body. Bodies carry a short reason, never an
//! internal error text and never a secret.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde_json::json;

use crate::{
    delivery::{DeliveryError, failure_reason},
    metrics::Outcome,
    spool::SpoolError,
    webhook::Webhook,
};

/// Seconds Enate is asked to wait before retrying after a 503.
pub const RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("no such webhook")]
    UnknownWebhook,
    #[error("missing or wrong authentication header")]
    Unauthorized { header: String },
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body could not be read")]
    Aborted,
    #[error("invalid payload: {0}")]
    Invalid(String),
    #[error("the event is not safe: {0}")]
    Unavailable(DeliveryError),
    #[error("too many requests in flight")]
    Overloaded,
}

impl Rejection {
    pub fn outcome(&self) -> Outcome {
        match self {
            Rejection::UnknownWebhook => Outcome::UnknownWebhook,
            Rejection::Unauthorized { .. } => Outcome::Unauthorized,
            Rejection::TooLarge { .. } => Outcome::TooLarge,
            Rejection::Aborted => Outcome::Aborted,
            Rejection::Invalid(_) => Outcome::Invalid,
            Rejection::Unavailable(_) => Outcome::Unavailable,
            Rejection::Overloaded => Outcome::Overloaded,
        }
    }
}

impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        match self {
            Rejection::UnknownWebhook => StatusCode::NOT_FOUND,
            Rejection::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Rejection::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::Aborted => StatusCode::BAD_REQUEST,
            Rejection::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Rejection::Unavailable(_) | Rejection::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            Rejection::UnknownWebhook => json!({
                "status": "unknown_webhook",
                "reason": "the path names no Enate webhook; POST to /webhooks/{webhook}",
                "valid_webhooks": Webhook::ALL.map(Webhook::enate_name),
            }),
            Rejection::Unauthorized { header } => json!({
                "status": "unauthorized",
                "reason": format!("missing or wrong {header} header"),
            }),
            Rejection::TooLarge { limit } => json!({
                "status": "too_large",
                "reason": format!("the body is larger than {limit} bytes"),
            }),
            Rejection::Aborted => json!({
                "status": "aborted",
                "reason": "the body could not be read to its end",
            }),
            Rejection::Invalid(reason) => json!({
                "status": "invalid",
                "reason": reason,
            }),
            Rejection::Unavailable(DeliveryError::Unconfirmed(error)) => json!({
                "status": "unavailable",
                "reason": format!("RabbitMQ did not confirm the event ({}); retry later", failure_reason(error).label()),
            }),
            Rejection::Unavailable(DeliveryError::Spool(error)) => json!({
                "status": "unavailable",
                "reason": format!("RabbitMQ did not confirm the event and the spool cannot keep it ({}); retry later", spool_reason(error)),
            }),
            Rejection::Overloaded => json!({
                "status": "overloaded",
                "reason": "too many requests in flight; retry later",
            }),
        };
        let mut response = HttpResponse::build(self.status_code());
        if self.status_code() == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("Retry-After", RETRY_AFTER_SECS.to_string()));
        }
        response.json(body)
    }
}

/// A short, path-free reason: the disk error's text could name the spool's path.
fn spool_reason(error: &SpoolError) -> &'static str {
    match error {
        SpoolError::Full { .. } => "full",
        SpoolError::Disk(_) => "disk error",
        SpoolError::Closed => "closed",
    }
}
