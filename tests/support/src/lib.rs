//! What enate-bridge's test binaries share (a dev-dependency of the bridge,
//! never published):
//!
//! - `eventually`: waiting for a condition instead of sleeping (every suite);
//! - `proxy`: a TCP fault proxy between the bridge and RabbitMQ that cuts or
//!   black-holes connections (tests/api, tests/faults, tests/cluster);
//! - the fault suites' harness (tests/faults, tests/cluster): `node`, a
//!   private RabbitMQ node; `bridge`, the binary as a subprocess; `load`, the
//!   clients and their history; `checker`, the verdict; `suite`, what a suite
//!   tells the harness about itself;
//! - `certs`: a private CA and the certificates it signs, made by the test
//!   itself (the TLS tests, on both sides of the bridge).

pub mod bridge;
pub mod certs;
pub mod checker;
pub mod eventually;
pub mod load;
pub mod node;
pub mod proxy;
pub mod suite;

pub use eventually::{POLL, eventually, eventually_every, poll_until};
