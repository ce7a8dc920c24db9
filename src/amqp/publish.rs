//! Publishing with publisher confirms. A message is safe only when the broker
//! acks it *without* returning it: a `mandatory` message nobody could route
//! still comes back as an ack, carrying the returned message.
//!
//! Failures are classified here, counted here, and nowhere else.

use std::time::Instant;

use lapin::{BasicProperties, Confirmation, options::BasicPublishOptions};

use super::broker::Broker;
use crate::metrics::FailureReason;

/// One message to publish.
pub struct Message<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub body: &'a [u8],
    pub properties: BasicProperties,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("not connected to RabbitMQ")]
    Disconnected,
    #[error("RabbitMQ blocks publishing (connection.blocked)")]
    Blocked,
    #[error("RabbitMQ refused the message (nack)")]
    Nack,
    #[error("RabbitMQ returned the message as unroutable")]
    Returned,
    #[error("RabbitMQ did not confirm the message in time")]
    Timeout,
    #[error("the channel failed: {0}")]
    Channel(String),
}

impl PublishError {
    pub fn reason(&self) -> FailureReason {
        match self {
            PublishError::Disconnected => FailureReason::Disconnected,
            PublishError::Blocked => FailureReason::Blocked,
            PublishError::Nack => FailureReason::Nack,
            PublishError::Returned => FailureReason::Returned,
            PublishError::Timeout => FailureReason::Timeout,
            PublishError::Channel(_) => FailureReason::Channel,
        }
    }
}

impl Broker {
    /// Publishes one persistent, mandatory message and waits for its confirm,
    /// at most `amqp.confirm_timeout_ms`. Holds no lock while waiting, so any
    /// number of publishes can be pending at once.
    pub async fn publish(&self, message: Message<'_>) -> Result<(), PublishError> {
        let result = self.publish_and_confirm(message).await;
        if let Err(error) = &result {
            self.metrics().count_failure(error.reason());
            // Debug, not warn: in an outage every request fails; the connection
            // supervisor reports the outage once, the request log each outcome.
            tracing::debug!(reason = error.reason().label(), %error, "publish failed");
        }
        result
    }

    async fn publish_and_confirm(&self, message: Message<'_>) -> Result<(), PublishError> {
        let session = self.session().ok_or(PublishError::Disconnected)?;
        if session.is_blocked() {
            // A blocked connection accepts frames but confirms nothing until the
            // alarm clears: fail now rather than hold the request to the timeout.
            return Err(PublishError::Blocked);
        }
        let channel_error = |error: lapin::Error| {
            if session.is_connected() {
                PublishError::Channel(error.to_string())
            } else {
                PublishError::Disconnected
            }
        };
        let started = Instant::now();
        // On a timeout this future, and the lease in it, is dropped: the channel,
        // its confirm still pending, is closed rather than reused.
        let confirmed = tokio::time::timeout(self.timeout(), async {
            let lease = session.lease().await.map_err(channel_error)?;
            let confirm = lease
                .channel()
                .basic_publish(
                    message.exchange.into(),
                    message.routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        immediate: false,
                    },
                    message.body,
                    message.properties,
                )
                .await
                .map_err(channel_error)?;
            let confirmation = confirm.await.map_err(channel_error)?;
            lease.give_back();
            Ok(confirmation)
        })
        .await
        .map_err(|_| PublishError::Timeout)??;
        self.metrics()
            .publish_confirm_seconds
            .observe(started.elapsed().as_secs_f64());
        match confirmed {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => Err(PublishError::Returned),
            Confirmation::Nack(_) => Err(PublishError::Nack),
            Confirmation::NotRequested => Err(PublishError::Channel(
                "the channel is not in confirm mode".into(),
            )),
        }
    }
}
