//! enate-bridge: verifies Enate webhooks, normalizes them into CloudEvents and
//! publishes them to RabbitMQ, answering Enate only once the broker has confirmed.
//!
//! A request's path through the modules:
//!
//! - `routes`: HTTP handlers; `routes::ingress` receives `POST /webhooks/{webhook}`,
//!   `routes::admin` serves /metrics, /healthz, /readyz, `routes::contract` the
//!   contract's documents (`schemas/`), `routes::rejection` turns refusals into
//!   status codes; `ingress_tls`: HTTPS at the ingress, its certificate
//!   reloaded when the files change;
//! - `webhook`: the six Enate webhook names; `auth`: the secret header check;
//!   `outcome`: how a request ended, its answer's status word and HTTP status;
//! - `payload`: the body split into objects; `normalize`: one object into clean data;
//!   `enate_fields`: the documented fields' keys and names, which both use;
//!   `event`: the CloudEvents envelope, event id and routing values; `routing`: the
//!   routing-key template;
//! - `dedup`: duplicates answered without publishing; `delivery`: the message as
//!   RabbitMQ gets it, published with a confirm or spooled, and the spool's
//!   forwarder; `amqp`: the connection, its lanes (channels that send in order
//!   with many confirms in flight), topology and publishing; `spool`: durable
//!   storage of opaque records, for what RabbitMQ cannot take now;
//! - `config`, `telemetry`, `metrics`, `startup`, `cli`: running it (`redact`:
//!   URLs without their passwords, for the configuration and `amqp`;
//!   `shutdown`: the one way every background task is stopped and awaited);
//!   `sample`: `send-sample`, realistic webhooks to try a running bridge with;
//!   `quarantine`: `quarantine list` and `replay`, the quarantine queue read and
//!   driven again through the current normalizer;
//!   `subscriptions`: the bridge's webhook subscriptions in Enate, as code, over
//!   `enate_api` (Enate's subscription paths, field names and codes, in one file
//!   that the configuration can use too).

pub mod amqp;
pub mod auth;
pub mod cli;
pub mod config;
pub mod dedup;
pub mod delivery;
pub mod enate_api;
pub mod enate_fields;
pub mod event;
pub mod ingress_tls;
pub mod metrics;
pub mod normalize;
pub mod outcome;
pub mod payload;
pub mod quarantine;
pub mod redact;
pub mod routes;
pub mod routing;
pub mod sample;
pub mod shutdown;
pub mod spool;
pub mod startup;
pub mod subscriptions;
pub mod telemetry;
pub mod webhook;
