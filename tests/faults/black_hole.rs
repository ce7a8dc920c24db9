//! The bridge's connection black-holed by the fault proxy (no byte moves, no
//! RST) for longer than the heartbeat timeout, then restored.

use std::time::{Duration, Instant};

use lapin::types::FieldTable;

use crate::harness::{QUEUE, check, declare_bound_queue, serial, temp_spool, time_to_reconnect};
use enate_bridge_test_support::{
    bridge::Bridge,
    load::{Load, LoadSpec},
    node::Node,
    poll_until,
    proxy::FaultProxy,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_connection_longer_than_the_heartbeat_timeout_loses_nothing() {
    let _serial = serial().await;
    let spool = temp_spool();
    let node = Node::start("black-hole").await;
    let proxy = FaultProxy::start(&node.url()).await;
    let bridge = Bridge::start(&proxy.url(), spool.path()).await;
    bridge.wait_broker_connected(Duration::from_secs(30)).await;
    declare_bound_queue(&node.url(), QUEUE, FieldTable::default()).await;
    let load = Load::start(bridge.webhook_url(), LoadSpec::default());

    load.wait_sent(load.spec.total / 4).await;
    let holed_at = Instant::now();
    proxy.black_hole();
    // Heartbeat 2 s: the connection is dead for both ends after about 4-6 s.
    // Every 100 ms: the probe times when the bridge noticed, to the poll.
    let noticed = poll_until(
        Duration::from_secs(12),
        Duration::from_millis(100),
        || async {
            match bridge.readyz().await {
                Ok((_, body)) if body["broker"]["status"] != "connected" => Ok(holed_at.elapsed()),
                last => Err(format!("{last:?}")),
            }
        },
    )
    .await
    .ok();
    // The hole's length, the subject of the test (not a wait for something).
    tokio::time::sleep_until((holed_at + Duration::from_secs(12)).into()).await;
    proxy.restore();
    let reconnect = time_to_reconnect(&bridge).await;
    let history = load.finish().await;

    let mut verdict = check("black-hole", &node, &bridge, &history).await;
    verdict.note(format!(
        "hole=12s noticed_after={} reconnect_after_restore={:.1}s",
        noticed.map_or("never".into(), |d| format!("{:.1}s", d.as_secs_f64())),
        reconnect.as_secs_f64()
    ));
    verdict.report_and_assert(&bridge);
    assert!(
        noticed.is_some(),
        "the bridge never noticed the dead connection (heartbeat 2 s): {}",
        verdict.line()
    );
}
