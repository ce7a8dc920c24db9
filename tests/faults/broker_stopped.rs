//! The private node stopped cleanly (`rabbitmqctl stop`) under load, and
//! booted again 10 s later.

use std::time::{Duration, Instant};

use crate::harness::{check, serial, start, temp_spool, time_to_reconnect};
use enate_bridge_test_support::load::{Load, LoadSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_stopped_cleanly_mid_stream_and_restarted_10_s_later_loses_nothing() {
    let _serial = serial().await;
    let spool = temp_spool();
    let (node, bridge) = start("broker-stop", spool.path()).await;
    let load = Load::start(bridge.webhook_url(), LoadSpec::default());

    load.wait_sent(load.spec.total / 4).await;
    let stopped_at = Instant::now();
    node.stop().await;
    let sent_at_stop = load.sent();
    // The outage's length, the subject of the test (not a wait for something).
    tokio::time::sleep_until((stopped_at + Duration::from_secs(10)).into()).await;
    node.boot().await;
    let reconnect = time_to_reconnect(&bridge).await;
    let history = load.finish().await;

    let mut verdict = check("broker-stop", &node, &bridge, &history).await;
    verdict.note(format!(
        "stopped_after={sent_at_stop} reconnect={:.1}s",
        reconnect.as_secs_f64()
    ));
    verdict.report_and_assert(&bridge);
    assert!(
        verdict.spooled > 0,
        "the outage was not spooled: {}",
        verdict.line()
    );
}
