//! `enate-bridge quarantine list | replay`: the real binary against a real
//! RabbitMQ (`ENATE_BRIDGE_TEST_AMQP_URL`, else the broker on 127.0.0.1:5672),
//! each test with exchanges and queues of its own. Quarantined messages are
//! published exactly as the ingress publishes them (`Outgoing::quarantined`,
//! `Destinations::amqp_message`), as if a previous release had refused bodies
//! the current normalizer accepts; faults are real (a cut connection through
//! the fault proxy, kill -9 of the process).

mod helpers;
mod list;
mod replay;
mod replay_faults;
