//! What every fault test of this suite shares: one fault at a time, a node
//! and the bridge on it with the checker's queue bound, the check once the
//! fault has healed, and a slow consumer.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use futures::StreamExt;
use lapin::{
    Connection, ConnectionProperties,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions,
        QueueDeclareOptions,
    },
    types::FieldTable,
};
use tokio::sync::{Mutex, MutexGuard};

use enate_bridge_test_support::{
    bridge::Bridge,
    checker::{Verdict, drain_queue, reference_of, wait_spool_drained},
    init_suite,
    load::History,
    node::Node,
};

/// Where `checker` writes the `FAULT ...` lines, in target/.
const REPORT_FILE: &str = "faults-report.txt";

/// One fault at a time: each test holds this for its whole run.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// The durable queue bound to `enate` with '#': what the checker reads.
pub(crate) const QUEUE: &str = "faults.all";
const EXCHANGE: &str = "enate";
/// The queue of the bridge's default `amqp.unrouted_exchange`.
const UNROUTED_QUEUE: &str = "enate.unrouted";

/// How long the bridge gets to drain its spool once the fault has healed.
pub(crate) const DRAIN_WITHIN: Duration = Duration::from_secs(90);

pub(crate) async fn serial() -> MutexGuard<'static, ()> {
    init_suite!(REPORT_FILE);
    SERIAL.lock().await
}

/// Declares a durable queue with `arguments`, bound to `enate` with '#'.
pub(crate) async fn declare_bound_queue(amqp_url: &str, name: &str, arguments: FieldTable) {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .expect("the test connects to its node");
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            arguments,
        )
        .await
        .expect("the test declares its queue");
    channel
        .queue_bind(
            name.into(),
            EXCHANGE.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("the test binds its queue to the bridge's exchange");
    let _ = connection.close(200, "declared".into()).await;
}

/// A node, a spool folder and the bridge on them, with the checker's queue bound.
pub(crate) async fn start(name: &str, spool_dir: &Path) -> (Node, Bridge) {
    let node = Node::start(name).await;
    let bridge = Bridge::start(&node.url(), spool_dir).await;
    bridge.wait_broker_connected(Duration::from_secs(30)).await;
    declare_bound_queue(&node.url(), QUEUE, FieldTable::default()).await;
    (node, bridge)
}

pub(crate) fn temp_spool() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("enate-bridge-faults-spool")
        .tempdir()
        .unwrap()
}

/// Waits for the drain, reads the queue, and judges the history.
pub(crate) async fn check(name: &str, node: &Node, bridge: &Bridge, history: &History) -> Verdict {
    let drain = wait_spool_drained(bridge, DRAIN_WITHIN).await;
    let delivered = drain_queue(&node.url(), QUEUE).await;
    let mut verdict = Verdict::compute(name, history, &delivered);
    verdict.note(format!("drain={:.1}s", drain.as_secs_f64()));
    if !verdict.lost.is_empty() {
        account_for_a_lost_binding(node, &mut verdict).await;
    }
    verdict
}

/// Looks for the events the checker's queue lacks in the unrouted queue.
///
/// Once (in CI; never in 14 runs here, 8 of them under CPU and disk load) a
/// node killed with kill -9 came back without 2,223 events of the load in
/// `faults.all` while the bridge held a confirm for every one: the signature
/// of the queue's binding missing from the node's routing table after the
/// restart, so that `enate`'s alternate exchange took what it could not route
/// (recreated by unbinding the queue after the boot). RabbitMQ has had such
/// bugs (rabbitmq-server #1873: a queue restarted after a failed recovery
/// without its routes); that this was one is a guess. Such an event is not
/// lost: it is in RabbitMQ, in the queue kept for it. It is accepted only if
/// the binding really is gone; with the binding in place an event in the
/// unrouted queue is the bridge's bug and stays lost. Either way the node's
/// queues, bindings and log warnings are printed.
async fn account_for_a_lost_binding(node: &Node, verdict: &mut Verdict) {
    let unrouted = drain_queue(&node.url(), UNROUTED_QUEUE).await;
    let unrouted: std::collections::HashSet<&str> = unrouted.iter().map(String::as_str).collect();
    let bindings = node
        .ctl_async(&[
            "list_bindings",
            "-q",
            "--no-table-headers",
            "source_name",
            "destination_name",
        ])
        .await
        .unwrap_or_else(|error| panic!("listing the node's bindings: {error}"));
    let bound = bindings
        .lines()
        .any(|line| line.split('\t').collect::<Vec<_>>() == [EXCHANGE, QUEUE]);
    let found = verdict
        .lost
        .iter()
        .filter(|record| unrouted.contains(record.reference.as_str()))
        .count();
    eprintln!(
        "{}: {} event(s) not in {QUEUE}, {found} of them in {UNROUTED_QUEUE}; \
         {QUEUE} {} bound to {EXCHANGE}; the node holds:\n{}",
        verdict.name,
        verdict.lost.len(),
        if bound { "is" } else { "is no longer" },
        node.diagnosis().await
    );
    verdict.note(format!(
        "not_in_{QUEUE}={} in_{UNROUTED_QUEUE}={found} bound={bound}",
        verdict.lost.len()
    ));
    if !bound {
        verdict
            .lost
            .retain(|record| !unrouted.contains(record.reference.as_str()));
    }
}

/// Time from now until /readyz says the broker is connected.
pub(crate) async fn time_to_reconnect(bridge: &Bridge) -> Duration {
    let started = Instant::now();
    bridge.wait_broker_connected(Duration::from_secs(60)).await;
    started.elapsed()
}

/// Consumes `queue` slowly (about `per_second`) until stopped; returns the references.
pub(crate) fn slow_consumer(
    amqp_url: String,
    queue: &'static str,
    per_second: u64,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Vec<String>> {
    slow_consumer_with(amqp_url, queue, per_second, stop, reference_of)
}

pub(crate) fn slow_consumer_raw(
    amqp_url: String,
    queue: &'static str,
    per_second: u64,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Vec<String>> {
    slow_consumer_with(amqp_url, queue, per_second, stop, |b| {
        String::from_utf8_lossy(b).into_owned()
    })
}

fn slow_consumer_with(
    amqp_url: String,
    queue: &'static str,
    per_second: u64,
    stop: tokio::sync::watch::Receiver<bool>,
    decode: fn(&[u8]) -> String,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let connection = Connection::connect(&amqp_url, ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .basic_qos(10, BasicQosOptions::default())
            .await
            .unwrap();
        let mut consumer = channel
            .basic_consume(
                queue.into(),
                "slow".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let pause = Duration::from_micros(1_000_000 / per_second);
        let mut references = Vec::new();
        let mut stop = stop;
        loop {
            let next = tokio::select! {
                next = consumer.next() => next,
                _ = stop.wait_for(|s| *s) => break,
            };
            let Some(Ok(delivery)) = next else { break };
            references.push(decode(&delivery.data));
            delivery.ack(BasicAckOptions::default()).await.unwrap();
            // The consumer's slowness, the subject of the test (not a wait).
            tokio::time::sleep(pause).await;
        }
        let _ = connection.close(200, "done".into()).await;
        references
    })
}
