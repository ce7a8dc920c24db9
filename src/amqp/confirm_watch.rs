//! Whether RabbitMQ confirms what it takes.
//!
//! A node can take publishes it cannot confirm: a quorum queue without a
//! majority (two of three nodes down) neither acks nor nacks a message sent on
//! a channel opened before, until the majority is back
//! (`tests/cluster/reproducers.rs`). Every request then waited the whole
//! `amqp.confirm_timeout_ms` before being spooled, so the bridge answered in
//! 5 s and took at most `server.max_in_flight` requests per timeout (the
//! cluster suite's "two of three nodes down" fault).
//!
//! So once a publish times out, requests are failed at once (and spooled)
//! instead, except one at a time, the probe, which still waits for its
//! confirm. The first confirm (the probe's, the spool forwarder's) or a new
//! connection ends it; a nack or a return does not (they are answers, but not
//! confirms).

use std::sync::atomic::{AtomicBool, Ordering};

use super::message::PublishError;

#[derive(Debug, Default)]
pub(crate) struct ConfirmWatch {
    stalled: AtomicBool,
    probing: AtomicBool,
}

/// Held by the request that probes a stalled broker; ends its turn on drop.
pub(crate) struct Probe<'a>(Option<&'a AtomicBool>);

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        if let Some(probing) = self.0 {
            probing.store(false, Ordering::Release);
        }
    }
}

impl ConfirmWatch {
    /// Whether a request may publish now: always while confirms come; while
    /// they do not, only as the probe, one request at a time.
    pub(super) fn admit(&self) -> Result<Probe<'_>, PublishError> {
        if !self.stalled.load(Ordering::Acquire) {
            return Ok(Probe(None));
        }
        if self.probing.swap(true, Ordering::AcqRel) {
            return Err(PublishError::Stalled);
        }
        Ok(Probe(Some(&self.probing)))
    }

    /// Learns from a publish's outcome.
    pub(super) fn record<T>(&self, result: &Result<T, PublishError>) {
        match result {
            Ok(_) => {
                if self.stalled.swap(false, Ordering::AcqRel) {
                    tracing::info!("RabbitMQ confirms again; publishing without the spool");
                }
            }
            Err(PublishError::Timeout) => {
                if !self.stalled.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        "RabbitMQ did not confirm a publish in time; events are spooled at once \
                         (one request at a time still waits for a confirm) until a confirm comes back"
                    );
                }
            }
            Err(_) => {}
        }
    }

    /// A new connection: its node may well confirm.
    pub(super) fn reset(&self) {
        self.stalled.store(false, Ordering::Release);
    }
}
