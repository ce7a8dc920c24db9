//! A three-node RabbitMQ cluster of private nodes, formed as RabbitMQ's
//! clustering guide does it, with deploy/rabbitmq/definitions.json imported
//! once the cluster has formed; and the bridge replicas in front of it, each
//! reaching every node through a fault proxy of its own.

use std::time::{Duration, Instant};

use enate_bridge_test_support::{POLL, eventually_every, poll_until};
use futures::future::join_all;

use enate_bridge_test_support::{
    bridge::Bridge,
    node::{Node, Ports},
    proxy::FaultProxy,
};

/// AMQP 28000-28999, distribution 29000-29999: apart from the single-node
/// fault suite (20000-27999) and scripts/test's node (5699, 25699).
const CLUSTER_PORTS: Ports = Ports {
    first: 28_000,
    span: 1_000,
    dist_offset: 1_000,
};

/// The topology of the compose stack: the worker queues are quorum queues.
const DEFINITIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/rabbitmq/definitions.json"
);

pub struct Cluster {
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Boots three nodes at once, joins the second and third to the first (in turn),
    /// then imports the definitions and checks that every quorum queue has a
    /// member on each node.
    pub async fn start(test: &str) -> Cluster {
        let started = Instant::now();
        let nodes: Vec<Node> = ["a", "b", "c"]
            .iter()
            .map(|letter| Node::prepare(&format!("cluster-{test}-{letter}"), CLUSTER_PORTS))
            .collect();
        join_all(nodes.iter().map(Node::boot)).await;
        // One at a time: two nodes joining the same seed at once can fail to
        // start mnesia on the second (seen in CI: start_app exit 69).
        for node in &nodes[1..] {
            node.join_cluster(&nodes[0]).await;
        }
        let cluster = Cluster { nodes };
        // After the join, not at boot: a quorum queue's members are the nodes
        // running when it is declared, and RabbitMQ 3.10 does not add the nodes
        // that join later. Definitions loaded by the first node at its boot
        // would give every worker queue a single member (no fault tolerance).
        let definitions = cluster.nodes[0].dir().join("definitions.json");
        std::fs::copy(DEFINITIONS, &definitions).expect("definitions.json can be copied");
        cluster.nodes[0]
            .ctl_async(&["import_definitions", definitions.to_str().unwrap()])
            .await
            .expect("the cluster imports deploy/rabbitmq/definitions.json");
        cluster.assert_quorum_queues_on_every_node().await;
        eprintln!(
            "cluster: {} nodes clustered, definitions imported in {:.1} s",
            cluster.nodes.len(),
            started.elapsed().as_secs_f64()
        );
        cluster
    }

    /// The nodes by their letter, for reports.
    pub fn letter(index: usize) -> char {
        (b'a' + index as u8) as char
    }

    /// Fails unless every quorum queue (the worker queues of definitions.json)
    /// has a member on each of the three nodes.
    async fn assert_quorum_queues_on_every_node(&self) {
        let listing = self.nodes[0]
            .ctl_async(&[
                "list_queues",
                "-q",
                "--no-table-headers",
                "name",
                "type",
                "members",
            ])
            .await
            .expect("rabbitmqctl list_queues");
        let quorum: Vec<&str> = listing
            .lines()
            .filter(|line| line.contains("\tquorum\t"))
            .collect();
        assert!(
            quorum.len() >= 4,
            "definitions.json's four worker queues should be quorum queues:\n{listing}"
        );
        for line in quorum {
            assert!(
                self.nodes.iter().all(|node| line.contains(&node.name)),
                "a quorum queue lacks a member on some node: {line}"
            );
        }
    }

    /// Waits until stopping `index` would leave every quorum queue a majority
    /// (`rabbitmq-diagnostics check_if_node_is_quorum_critical`), as an operator
    /// does before each step of a rolling restart; returns how long that took.
    pub async fn wait_not_quorum_critical(&self, index: usize, within: Duration) -> Duration {
        let started = Instant::now();
        // Every 500 ms: each probe runs rabbitmq-diagnostics.
        eventually_every(
            within,
            Duration::from_millis(500),
            format_args!("{} not to be quorum critical", self.nodes[index].name),
            || {
                self.nodes[index].tool_async(
                    "rabbitmq-diagnostics",
                    &["check_if_node_is_quorum_critical"],
                )
            },
        )
        .await;
        started.elapsed()
    }
}

/// One bridge replica: the real binary with its own spool, and with every
/// node in `amqp.urls`, each through a fault proxy of its own (so one link,
/// or all of them, can be cut or black-holed for this replica alone).
pub struct Replica {
    pub name: &'static str,
    pub bridge: Bridge,
    /// `links[i]` leads to node i; the bridge's `amqp.urls` in node order.
    pub links: Vec<FaultProxy>,
    _spool: tempfile::TempDir,
}

impl Replica {
    pub async fn start(cluster: &Cluster, name: &'static str, env: &[(&str, &str)]) -> Replica {
        let node_urls: Vec<String> = cluster.nodes.iter().map(Node::url).collect();
        let links = join_all(node_urls.iter().map(|url| FaultProxy::start(url))).await;
        let urls: Vec<String> = links.iter().map(FaultProxy::url).collect();
        let spool = tempfile::Builder::new()
            .prefix("enate-bridge-cluster-spool")
            .tempdir()
            .unwrap();
        let mut all_env = vec![("ENATE_BRIDGE__AMQP__CONNECTION_NAME", name)];
        all_env.extend_from_slice(env);
        let bridge = Bridge::start_with(&urls.join(","), spool.path(), &all_env).await;
        bridge.wait_broker_connected(Duration::from_secs(30)).await;
        Replica {
            name,
            bridge,
            links,
            _spool: spool,
        }
    }

    /// The node of the bridge's latest connection (by the proxy's port).
    pub fn node(&self) -> Option<usize> {
        let url = self.bridge.connections().pop()?;
        let port: u16 = url
            .split("@127.0.0.1:")
            .nth(1)?
            .split('/')
            .next()?
            .parse()
            .ok()?;
        self.links.iter().position(|link| link.port == port)
    }

    /// Waits until the bridge has made a connection after its first
    /// `connections_before` and /readyz says connected; returns the new node.
    pub async fn wait_reconnected(
        &self,
        connections_before: usize,
        within: Duration,
    ) -> Option<usize> {
        poll_until(within, POLL, || async {
            if self.bridge.connections().len() > connections_before
                && let Ok((200, body)) = self.bridge.readyz().await
                && body["broker"]["status"] == "connected"
            {
                return Ok(self.node());
            }
            Err("not reconnected")
        })
        .await
        .ok()
        .flatten()
    }

    /// From the bridge's own log: how long its latest outage lasted, from
    /// "lost the connection to RabbitMQ" to the next "connected to RabbitMQ".
    pub fn last_outage(&self) -> Option<Duration> {
        let mut lost: Option<jiff::Timestamp> = None;
        let mut last = None;
        for line in self.bridge.log.lock().unwrap().iter() {
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let at = entry["timestamp"].as_str().and_then(|t| t.parse().ok());
            match (entry["message"].as_str(), at) {
                (Some("lost the connection to RabbitMQ; reconnecting"), Some(at)) => {
                    lost = Some(at)
                }
                (Some("connected to RabbitMQ"), Some(at)) => {
                    if let Some(lost) = lost.take() {
                        last = Duration::try_from(at.duration_since(lost)).ok();
                    }
                }
                _ => {}
            }
        }
        last
    }

    pub fn cut_all_links(&self) {
        self.links.iter().for_each(FaultProxy::cut);
    }

    pub fn restore_all_links(&self) {
        self.links.iter().for_each(FaultProxy::restore);
    }
}
