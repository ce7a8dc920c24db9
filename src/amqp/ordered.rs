//! A lane that keeps the order of what is submitted to it, for a caller that
//! needs its messages enqueued in that order (the spool's forwarder). Unlike
//! `Broker::publish`, submitting and waiting for the verdict are two steps, so
//! the caller can keep many messages in flight and still settle them in order.

use std::{sync::Arc, time::Duration};

use super::{
    confirm_watch::ConfirmWatch,
    lane::{LaneHandle, Ticket},
    message::{Confirmed, Message, PublishError},
};

#[derive(Clone)]
pub struct OrderedLane {
    lane: LaneHandle,
    timeout: Duration,
    confirms: Arc<ConfirmWatch>,
}

impl OrderedLane {
    pub(super) fn new(lane: LaneHandle, timeout: Duration, confirms: Arc<ConfirmWatch>) -> Self {
        Self {
            lane,
            timeout,
            confirms,
        }
    }

    /// Queues `message` behind everything submitted before it; the ticket gives
    /// its verdict. Waits while the lane is full, at most the confirm timeout.
    pub async fn submit(&self, message: Message) -> Result<Ticket, PublishError> {
        let submitted = tokio::time::timeout(self.timeout, self.lane.submit(message))
            .await
            .unwrap_or(Err(PublishError::Timeout));
        if let Err(error) = &submitted {
            self.confirms.record::<()>(&Err(error.clone()));
        }
        submitted
    }

    /// A ticket's verdict, waiting at most the confirm timeout.
    /// The forwarder's confirms count too: its first one ends a stall.
    pub async fn verdict(&self, ticket: Ticket) -> Result<Confirmed, PublishError> {
        let result = tokio::time::timeout(self.timeout, ticket.verdict())
            .await
            .unwrap_or(Err(PublishError::Timeout));
        self.confirms.record(&result);
        result
    }
}
