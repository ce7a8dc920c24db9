//! What enate-bridge's test binaries share (a dev-dependency of the bridge):
//!
//! - `eventually`: waiting for a condition instead of sleeping;

pub mod eventually;

pub use eventually::{POLL, eventually, eventually_every, poll_until};
