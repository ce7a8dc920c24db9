//! The private node killed with kill -9 under load, and booted again.

use std::time::Duration;

use crate::harness::{check, serial, start, temp_spool, time_to_reconnect};
use enate_bridge_test_support::load::{Load, LoadSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_with_kill_9_mid_stream_and_restarted_loses_nothing() {
    let _serial = serial().await;
    let spool = temp_spool();
    let (node, bridge) = start("broker-kill9", spool.path()).await;
    let load = Load::start(bridge.webhook_url(), LoadSpec::default());

    load.wait_sent(load.spec.total / 4).await;
    node.kill9().await;
    let sent_at_kill = load.sent();
    // The outage's length, the subject of the test (not a wait for something).
    tokio::time::sleep(Duration::from_secs(2)).await;
    node.boot().await;
    let reconnect = time_to_reconnect(&bridge).await;
    let history = load.finish().await;

    let mut verdict = check("broker-kill9", &node, &bridge, &history).await;
    verdict.note(format!(
        "killed_after={sent_at_kill} reconnect={:.1}s",
        reconnect.as_secs_f64()
    ));
    verdict.report_and_assert(&bridge);
    assert!(
        verdict.spooled > 0,
        "the crash was not spooled: {}",
        verdict.line()
    );
}
