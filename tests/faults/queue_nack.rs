//! A reject-publish queue that is full: the broker nacks, and every event
//! answered 200 must still reach the queue's (slow) consumer.

use std::time::Duration;

use lapin::types::{AMQPValue, FieldTable, LongString};

use crate::harness::{DRAIN_WITHIN, declare_bound_queue, serial, slow_consumer, temp_spool};
use enate_bridge_test_support::{
    bridge::Bridge,
    checker::{Verdict, wait_spool_drained},
    load::{Load, LoadSpec},
    node::Node,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_reject_publish_queue_nacks_and_every_200_still_reaches_its_consumer() {
    let _serial = serial().await;
    let spool = temp_spool();
    let node = Node::start("queue-nack").await;
    let bridge = Bridge::start(&node.url(), spool.path()).await;
    bridge.wait_broker_connected(Duration::from_secs(30)).await;
    const LIMITED: &str = "faults.limited";
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongInt(200));
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString(LongString::from("reject-publish")),
    );
    declare_bound_queue(&node.url(), LIMITED, arguments).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let consumer = slow_consumer(node.url(), LIMITED, 400, stopped);
    let load = Load::start(bridge.webhook_url(), LoadSpec::default());
    let history = load.finish().await;

    let drain = wait_spool_drained(&bridge, DRAIN_WITHIN).await;
    // The consumer has acked every message of the queue: it has everything.
    node.wait_consumed(LIMITED, Duration::from_secs(30)).await;
    stop.send_replace(true);
    let delivered = consumer.await.unwrap();

    let mut verdict = Verdict::compute("queue-nack", &history, &delivered);
    let nacks = bridge
        .metric(r#"enate_bridge_publish_failures_total{reason="nack"}"#)
        .await;
    verdict.note(format!(
        "drain={:.1}s nacks={nacks} consumer_got={}",
        drain.as_secs_f64(),
        delivered.len()
    ));
    verdict.report_and_assert(&bridge);
    assert!(nacks > 0.0, "the broker never nacked: {}", verdict.line());
}
