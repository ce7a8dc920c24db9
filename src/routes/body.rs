//! Reading a webhook's body: within `server.max_body_bytes`, within
//! `server.body_timeout_secs`, and within a byte budget shared by every body
//! held at once (`server.max_body_buffer_bytes`).
//!
//! Bodies are read before an admission slot is taken: a slot held while a body
//! trickles in is what let 512 senders at 1 byte/s lock every fast sender out.
//! A body being read costs only the bytes it has sent, so the budget counts
//! bytes as they arrive (never the declared length, which a slow sender does not
//! deliver), and the deadline frees whatever a stalled sender holds.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use actix_web::{HttpRequest, http::header::CONTENT_LENGTH, web};
use futures::StreamExt;

use super::rejection::Rejection;

/// The first allocation for a body; it grows with what arrives, so a declared
/// length that never comes costs nothing.
const INITIAL_CAPACITY: usize = 8 * 1024;

/// Every body byte held by the ingress at once, and the bodies being read.
#[derive(Debug)]
pub struct BodyBudget {
    max_bytes: usize,
    held: AtomicUsize,
    reading: AtomicUsize,
}

impl BodyBudget {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            held: AtomicUsize::new(0),
            reading: AtomicUsize::new(0),
        }
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Body bytes held now (being read, parsed or published).
    pub fn held_bytes(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Bodies whose bytes are still arriving.
    pub fn bodies_being_read(&self) -> usize {
        self.reading.load(Ordering::Relaxed)
    }

    /// Takes `bytes` from the budget, or nothing when they do not fit.
    fn reserve(&self, bytes: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes)
                    .filter(|total| *total <= self.max_bytes)
            })
            .is_ok()
    }
}

/// A body read whole, and its bytes' share of the budget (given back on drop).
pub struct Body<'a> {
    pub bytes: web::BytesMut,
    reserved: usize,
    budget: &'a BodyBudget,
}

impl Drop for Body<'_> {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.reserved, Ordering::AcqRel);
    }
}

/// Counts a body as being read until dropped, whatever the exit path.
struct Reading<'a>(&'a BodyBudget);

impl<'a> Reading<'a> {
    fn start(budget: &'a BodyBudget) -> Self {
        budget.reading.fetch_add(1, Ordering::AcqRel);
        Self(budget)
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.reading.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a body read is held to.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// Reads the whole body: a declared length over the limit is refused before
/// reading, a chunked body as soon as it passes it; a body not whole within the
/// deadline is refused with what it sent dropped.
pub async fn read_body<'a>(
    request: &HttpRequest,
    payload: web::Payload,
    limits: BodyLimits,
    budget: &'a BodyBudget,
) -> Result<Body<'a>, Rejection> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limits.max_bytes) {
        return Err(Rejection::TooLarge {
            limit: limits.max_bytes,
        });
    }
    let _reading = Reading::start(budget);
    let mut body = Body {
        bytes: web::BytesMut::with_capacity(
            declared
                .unwrap_or(INITIAL_CAPACITY)
                .min(INITIAL_CAPACITY)
                .min(limits.max_bytes),
        ),
        reserved: 0,
        budget,
    };
    match tokio::time::timeout(limits.timeout, read_into(&mut body, payload, limits)).await {
        Ok(result) => result.map(|()| body),
        Err(_elapsed) => Err(Rejection::BodyTimeout {
            timeout: limits.timeout,
        }),
    }
}

async fn read_into(
    body: &mut Body<'_>,
    mut payload: web::Payload,
    limits: BodyLimits,
) -> Result<(), Rejection> {
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Rejection::Aborted)?;
        if body.bytes.len() + chunk.len() > limits.max_bytes {
            return Err(Rejection::TooLarge {
                limit: limits.max_bytes,
            });
        }
        if !body.budget.reserve(chunk.len()) {
            return Err(Rejection::Overloaded);
        }
        body.reserved += chunk.len();
        body.bytes.extend_from_slice(&chunk);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_gives_what_fits_and_takes_back_what_was_given() {
        let budget = BodyBudget::new(10);
        assert!(budget.reserve(6));
        assert!(!budget.reserve(5), "6 + 5 is over 10");
        assert!(budget.reserve(4));
        assert_eq!(budget.held_bytes(), 10);
        drop(Body {
            bytes: web::BytesMut::new(),
            reserved: 10,
            budget: &budget,
        });
        assert_eq!(budget.held_bytes(), 0);
        assert!(!budget.reserve(usize::MAX), "no overflow");
    }

    #[test]
    fn a_body_being_read_is_counted_until_its_guard_goes() {
        let budget = BodyBudget::new(10);
        let reading = Reading::start(&budget);
        assert_eq!(budget.bodies_being_read(), 1);
        drop(reading);
        assert_eq!(budget.bodies_being_read(), 0);
    }
}
