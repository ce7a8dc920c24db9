//! What the broker needs to know, in amqp's own terms: startup builds it from
//! the configuration, so `amqp` never reads the configuration itself.

use std::time::Duration;

use super::{tls::BrokerTls, topology::Topology, url::AmqpUrl};

#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub urls: Vec<AmqpUrl>,
    pub connection_name: String,
    pub heartbeat_secs: u16,
    /// Lanes (confirm-mode channels) requests are spread over.
    pub channels: usize,
    /// Confirms in flight per lane at most.
    pub confirms_per_channel: usize,
    /// Bounds each publish; connecting and declaring get at least 10 s.
    pub timeout: Duration,
    /// `None` when the topology is managed elsewhere (`amqp.declare_topology = false`).
    pub topology: Option<Topology>,
    /// How `amqps://` URLs are connected; `None` when no URL is `amqps://`.
    pub tls: Option<BrokerTls>,
}
