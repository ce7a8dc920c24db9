//! `enate-bridge subscriptions plan | apply | list | delete`: the real binary
//! against a fake Enate Web API (a real HTTP server started by each test, see
//! `fake_enate`). No RabbitMQ needed. Every run of the binary is checked for
//! the secrets and tokens it must never print.

mod failures;
mod fake_enate;
mod helpers;
mod list_delete;
mod plan_apply;
mod tls;
