//! `enate-bridge subscriptions plan | apply | list | delete | verify`: the real
//! binary against a fake Enate Web API (a real HTTP server started by each
//! test, see `fake_enate`). Only `verify` needs RabbitMQ (a real bridge, the
//! library's `Application`, publishes the test messages). Every run of the
//! binary is checked for the secrets and tokens it must never print.

mod failures;
mod fake_enate;
mod helpers;
mod list_delete;
mod login;
mod plan_apply;
mod tls;
mod verify;
