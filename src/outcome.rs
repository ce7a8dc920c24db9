//! How a webhook request ended. Each outcome has one word, used both as the
//! `status` of the JSON answer and as the `outcome` label of
//! `enate_bridge_webhooks_total` (the answer table in README.md and
//! schemas/openapi.json list the same words), and one HTTP status.

use actix_web::http::StatusCode;
use serde::{Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Published,
    Quarantined,
    Unauthorized,
    TooLarge,
    UnknownWebhook,
    Invalid,
    Unavailable,
    /// The sender went away before the body was read.
    Aborted,
    /// Safe in the spool, not yet in RabbitMQ.
    Spooled,
    /// Seen within the dedup window: answered 200, not published again.
    Duplicate,
    /// Over server.max_in_flight, or the body budget spent: answered 503 at once.
    Overloaded,
    /// The body did not arrive whole within server.body_timeout_secs: 408.
    Timeout,
    /// More objects than server.max_events_per_request: 413, nothing published.
    TooManyEvents,
}

impl Outcome {
    /// In label order: metrics and the refusal log index by position here.
    pub const ALL: [Outcome; 13] = [
        Outcome::Published,
        Outcome::Quarantined,
        Outcome::Unauthorized,
        Outcome::TooLarge,
        Outcome::UnknownWebhook,
        Outcome::Invalid,
        Outcome::Unavailable,
        Outcome::Aborted,
        Outcome::Spooled,
        Outcome::Duplicate,
        Outcome::Overloaded,
        Outcome::Timeout,
        Outcome::TooManyEvents,
    ];

    /// The answer's `status` and the metric's `outcome` label.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Published => "published",
            Outcome::Quarantined => "quarantined",
            Outcome::Unauthorized => "unauthorized",
            Outcome::TooLarge => "too_large",
            Outcome::UnknownWebhook => "unknown_webhook",
            Outcome::Invalid => "invalid",
            Outcome::Unavailable => "unavailable",
            Outcome::Aborted => "aborted",
            Outcome::Spooled => "spooled",
            Outcome::Duplicate => "duplicate",
            Outcome::Overloaded => "overloaded",
            Outcome::Timeout => "timeout",
            Outcome::TooManyEvents => "too_many_events",
        }
    }

    pub fn http_status(self) -> StatusCode {
        match self {
            Outcome::Published | Outcome::Spooled | Outcome::Duplicate | Outcome::Quarantined => {
                StatusCode::OK
            }
            Outcome::UnknownWebhook => StatusCode::NOT_FOUND,
            Outcome::Unauthorized => StatusCode::UNAUTHORIZED,
            Outcome::TooLarge | Outcome::TooManyEvents => StatusCode::PAYLOAD_TOO_LARGE,
            Outcome::Aborted => StatusCode::BAD_REQUEST,
            Outcome::Timeout => StatusCode::REQUEST_TIMEOUT,
            Outcome::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            Outcome::Unavailable | Outcome::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Answered 200: Enate's delivery arrived and was taken.
    pub fn is_accepted(self) -> bool {
        self.http_status() == StatusCode::OK
    }
}

/// As its word: the answer's `status` field.
impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.word())
    }
}
