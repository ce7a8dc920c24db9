//! Integration tests: the real `Application` on port 0, real HTTP, a real
//! RabbitMQ (ENATE_BRIDGE_TEST_AMQP_URL, default the local broker). Every test
//! uses its own exchange and queue names, so tests run in parallel on one broker.

mod admin;
mod broker_faults;
mod confirms;
mod contract;
mod helpers;
mod hostile;
mod hostile_payloads;
mod ingress;
mod last_event;
mod logs;
mod publishing;
mod sample;
mod shutdown;
mod spool;
mod tls;
mod worker;
