//! enate-bridge: verifies Enate webhooks, normalizes them into CloudEvents and
//! publishes them to RabbitMQ, answering Enate only once the broker has confirmed.
//!
//! A request's path through the modules:
//!
//! - `routes`: HTTP handlers; `routes::ingress` receives `POST /webhooks/{webhook}`,
//!   `routes::admin` serves /metrics, /healthz, /readyz, `routes::rejection` turns
//!   refusals into status codes;
//! - `webhook`: the six Enate webhook names; `auth`: the secret header check;
//! - `payload`: the body split into objects; `normalize`: one object into clean data;
//!   `event`: the CloudEvents envelope, event id and routing values; `routing`: the
//!   routing-key template;
//! - `dedup`: duplicates answered without publishing; `delivery`: published with a
//!   confirm or spooled; `dispatch`: the message as RabbitMQ gets it; `amqp`: the
//!   connection, confirm channels, topology and publishing; `spool`: the durable store
//!   for what RabbitMQ cannot take now, and its forwarder;
//! - `config`, `telemetry`, `metrics`, `state`, `startup`, `cli`: running it;
//!   `sample`: `send-sample`, realistic webhooks to try a running bridge with;
//!   `subscriptions`: the bridge's webhook subscriptions in Enate, as code.

pub mod amqp;
pub mod auth;
pub mod cli;
pub mod config;
pub mod dedup;
pub mod delivery;
pub mod dispatch;
pub mod event;
pub mod metrics;
pub mod normalize;
pub mod payload;
pub mod routes;
pub mod routing;
pub mod sample;
pub mod spool;
pub mod startup;
pub mod state;
pub mod subscriptions;
pub mod telemetry;
pub mod webhook;
