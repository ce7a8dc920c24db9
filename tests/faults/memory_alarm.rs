//! A memory alarm on the node, blocking publishers for 5 s under load.

use std::time::{Duration, Instant};

use crate::harness::{check, serial, start, temp_spool, time_to_reconnect};
use enate_bridge_test_support::{
    POLL,
    load::{Load, LoadSpec},
    poll_until,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_alarm_blocking_publishers_for_5_s_loses_nothing() {
    let _serial = serial().await;
    let spool = temp_spool();
    let (node, bridge) = start("memory-alarm", spool.path()).await;
    let load = Load::start(bridge.webhook_url(), LoadSpec::default());

    load.wait_sent(load.spec.total / 4).await;
    let alarmed_at = Instant::now();
    node.set_memory_alarm().await;
    // The probe times when the bridge saw the block, to the poll.
    let blocked = poll_until(Duration::from_secs(5), POLL, || async {
        match bridge.metric("enate_bridge_amqp_blocked").await {
            1.0 => Ok(alarmed_at.elapsed()),
            blocked => Err(blocked),
        }
    })
    .await
    .ok();
    // The alarm's length, the subject of the test (not a wait for something).
    tokio::time::sleep_until((alarmed_at + Duration::from_secs(5)).into()).await;
    node.lift_memory_alarm().await;
    let unblocked = time_to_reconnect(&bridge).await;
    let history = load.finish().await;

    let mut verdict = check("memory-alarm", &node, &bridge, &history).await;
    verdict.note(format!(
        "blocked_seen_after={} ready_after_lift={:.1}s blocked_failures={} timeouts={}",
        blocked.map_or("never".into(), |d| format!("{:.1}s", d.as_secs_f64())),
        unblocked.as_secs_f64(),
        bridge
            .metric(r#"enate_bridge_publish_failures_total{reason="blocked"}"#)
            .await,
        bridge
            .metric(r#"enate_bridge_publish_failures_total{reason="timeout"}"#)
            .await,
    ));
    verdict.report_and_assert(&bridge);
}
