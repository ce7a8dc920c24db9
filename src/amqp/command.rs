//! A connection for a command-line tool (`subscriptions verify`,
//! `quarantine list`/`replay`): the first of `amqp.urls` that answers,
//! connected as the bridge connects (TLS for `amqps://` with `amqp.tls`, a
//! heartbeat, so that a connection cut without a close is noticed), without
//! the bridge's supervisor: a tool that loses its broker says so and exits.

use std::time::Duration;

use lapin::{Connection, ConnectionProperties};

use super::{tls, tls::BrokerTls, url::AmqpUrl};

/// How long one URL gets to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the first of `urls` that answers. The error lists each URL
/// (without its password) and why it failed.
pub async fn connect_for_command(
    urls: &[AmqpUrl],
    tls: Option<&BrokerTls>,
    heartbeat_secs: u16,
    connection_name: String,
) -> Result<Connection, String> {
    let mut failures = Vec::new();
    for url in urls {
        let mut uri = url.uri().clone();
        if uri.query.heartbeat.is_none() {
            uri.query.heartbeat = Some(heartbeat_secs);
        }
        let properties =
            ConnectionProperties::default().with_connection_name(connection_name.clone().into());
        match tokio::time::timeout(CONNECT_TIMEOUT, tls::connect(uri, properties, tls)).await {
            Ok(Ok(connection)) => return Ok(connection),
            Ok(Err(failed)) => failures.push(format!("{}: {}", url.shown(), failed.error)),
            Err(_) => failures.push(format!(
                "{}: no answer within {} s",
                url.shown(),
                CONNECT_TIMEOUT.as_secs()
            )),
        }
    }
    Err(failures.join("; "))
}
