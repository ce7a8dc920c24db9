//! The bridge itself killed (kill -9) or stopped (SIGTERM) under load while
//! its spool holds events, the broker being down; then both come back.

use std::time::Duration;

use crate::harness::{check, serial, start, temp_spool, time_to_reconnect};
use enate_bridge_test_support::load::{Answer, Load, LoadSpec};

/// The broker stopped under load, then the bridge itself killed (kill -9) or
/// stopped (SIGTERM) while its spool holds events; then both come back.
async fn bridge_dies_under_load(name: &str, sigterm: bool) {
    let _serial = serial().await;
    let spool = temp_spool();
    let (node, mut bridge) = start(name, spool.path()).await;
    let load = Load::start(
        bridge.webhook_url(),
        LoadSpec {
            rate: Some(600.0),
            ..LoadSpec::default()
        },
    );

    load.wait_sent(load.spec.total / 5).await;
    node.stop().await;
    assert!(
        load.wait_answers(300, |a| *a == Answer::Spooled, Duration::from_secs(20))
            .await,
        "the outage was not spooled"
    );
    let killed_at = load.elapsed();
    let spooled_at_kill = bridge.spool().await.map(|s| s["events"].clone());
    let exit = if sigterm {
        let status = bridge.sigterm(Duration::from_secs(40)).await;
        Some(status)
    } else {
        bridge.kill9().await;
        None
    };
    let stopped_in = load.elapsed() - killed_at;
    let history = load.finish().await;
    node.boot().await;
    bridge.restart().await;
    let reconnect = time_to_reconnect(&bridge).await;

    let mut verdict = check(name, &node, &bridge, &history).await;
    let unanswered_before = history
        .records
        .iter()
        .filter(|r| r.sent_at < killed_at && matches!(r.answer, Answer::Transport(_)))
        .count();
    verdict.note(format!(
        "spool_at_{}={} exit={} stopped_in={:.1}s sent_before_without_answer={unanswered_before} \
         reconnect_after_restart={:.1}s",
        if sigterm { "sigterm" } else { "kill" },
        spooled_at_kill.map_or("?".into(), |v| v.to_string()),
        exit.map_or("killed".into(), |s| s.to_string()),
        stopped_in.as_secs_f64(),
        reconnect.as_secs_f64()
    ));
    verdict.report_and_assert(&bridge);
    if let Some(status) = exit {
        assert_eq!(
            status.code(),
            Some(0),
            "SIGTERM must end the bridge with exit 0; its log (without request lines):\n{}",
            bridge.notable_log().join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_killed_with_kill_9_holding_a_spool_recovers_it_and_loses_nothing() {
    bridge_dies_under_load("bridge-kill9", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_0_and_the_next_run_drains_the_spool() {
    bridge_dies_under_load("bridge-sigterm", true).await;
}
