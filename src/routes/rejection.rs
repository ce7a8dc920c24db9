//! Every way a webhook request can be refused, and the single place where each
//! becomes an outcome (its status word and HTTP status) and a JSON body. Bodies carry a short reason, never an
//! internal error text and never a secret.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde_json::json;

use crate::{
    delivery::{DeliveryError, failure_reason},
    outcome::Outcome,
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

impl Rejection {
    /// The answer's `reason`: what was wrong, in words a sender can act on.
    fn reason(&self) -> String {
        match self {
            Rejection::UnknownWebhook => {
                "the path names no Enate webhook; POST to /webhooks/{webhook}".into()
            }
            Rejection::Unauthorized { header } => format!("missing or wrong {header} header"),
            Rejection::TooLarge { limit } => format!("the body is larger than {limit} bytes"),
            Rejection::Aborted => "the body could not be read to its end".into(),
            Rejection::BodyTimeout { timeout } => format!(
                "the body did not arrive whole within {} seconds",
                timeout.as_secs()
            ),
            Rejection::TooManyEvents { max } => {
                format!("the body holds more than {max} objects; send at most {max} per request")
            }
            Rejection::Invalid(reason) => reason.clone(),
            Rejection::Unavailable(DeliveryError::Unconfirmed(error)) => format!(
                "RabbitMQ did not confirm the event ({}); retry later",
                failure_reason(error).label()
            ),
            Rejection::Unavailable(DeliveryError::Spool(error)) => format!(
                "RabbitMQ did not confirm the event and the spool cannot keep it ({}); retry later",
                spool_reason(error)
            ),
            Rejection::Overloaded => "too many requests in flight; retry later".into(),
        }
    }
}

impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        self.outcome().http_status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({
            "status": self.outcome(),
            "reason": self.reason(),
        });
        if let Rejection::UnknownWebhook = self {
            body["valid_webhooks"] = json!(Webhook::ALL.map(Webhook::enate_name));
        }
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
