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
    #[error("the body was not received within {timeout:?}")]
    BodyTimeout { timeout: std::time::Duration },
    #[error("more than {max} events in one request")]
    TooManyEvents { max: usize },
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
            Rejection::BodyTimeout { .. } => Outcome::Timeout,
            Rejection::TooManyEvents { .. } => Outcome::TooManyEvents,
            Rejection::Invalid(_) => Outcome::Invalid,
            Rejection::Unavailable(_) => Outcome::Unavailable,
            Rejection::Overloaded => Outcome::Overloaded,
        }
    }
}

impl Rejection {
    /// Answered before the body was read to its end.
    fn leaves_body_unread(&self) -> bool {
        matches!(
            self,
            Rejection::TooLarge { .. }
                | Rejection::BodyTimeout { .. }
                | Rejection::Aborted
                | Rejection::Overloaded
        )
    }
}

impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        match self {
            Rejection::UnknownWebhook => StatusCode::NOT_FOUND,
            Rejection::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Rejection::TooLarge { .. } | Rejection::TooManyEvents { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Rejection::Aborted => StatusCode::BAD_REQUEST,
            Rejection::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
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
            Rejection::BodyTimeout { timeout } => json!({
                "status": "timeout",
                "reason": format!("the body did not arrive whole within {} seconds", timeout.as_secs()),
            }),
            Rejection::TooManyEvents { max } => json!({
                "status": "too_many_events",
                "reason": format!("the body holds more than {max} objects; send at most {max} per request"),
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
        if self.leaves_body_unread() {
            // The rest of the body may still be coming (or never come): the
            // connection is closed after the answer rather than kept waiting on it.
            response.force_close();
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
