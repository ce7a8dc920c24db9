//! The fault suite: the real `enate-bridge` binary under a Jepsen-style load
//! (16 clients, 3000 uniquely identifiable events) while a real fault happens
//! to a private RabbitMQ node, the network or the spool's disk; then, once the
//! fault has healed, every event answered 200 must be in the queue.
//!
//! `cargo test --test faults -- --nocapture` prints one `FAULT ...` line per
//! fault (also written to target/faults-report.txt). Each test boots its own
//! RabbitMQ node (about 6 s); the tests hold one lock so that only one node and
//! one bridge run at a time on a small machine. Needs root (mounts) and
//! rabbitmq-server (scripts/test installs it).
//!
//! One file per fault: `broker_stopped`, `broker_killed`, `black_hole`,
//! `memory_alarm`, `login_refused` (and a vhost at its connection limit),
//! `queue_nack`, `bridge_dies` (kill -9 and SIGTERM), `spool_disk` (read-only
//! and full); `raw_confirms`: an ignored reproducer of the queue-nack finding
//! without the bridge (raw lapin publishes to a reject-publish queue).
//!
//! The harness: `harness`, what the tests of this suite share; `disk`, a tmpfs
//! and an ext4 loop device for the spool; and, shared with tests/cluster in
//! tests/support (`enate_bridge_test_support`), `node` (the private RabbitMQ
//! node), `bridge` (the binary as a subprocess), `load` (the clients and their
//! history), `checker` (the verdict) and `proxy` (the TCP fault proxy).

mod harness;

mod black_hole;
mod bridge_dies;
mod broker_killed;
mod broker_stopped;
mod disk;
mod login_refused;
mod memory_alarm;
mod queue_nack;
mod raw_confirms;
mod spool_disk;
