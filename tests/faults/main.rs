//! The fault suite: the real `enate-bridge` binary under a Jepsen-style load
//! (16 clients, 3000 uniquely identifiable events) while a real fault happens
//! to a private RabbitMQ node, the network or the spool's disk; then, once the
//! fault has healed, every event answered 200 must be in the queue.
//!
//! `cargo test --test faults -- --nocapture` prints one `FAULT ...` line per
//! fault (also written to target/faults-report.txt). Each test boots its own
//! RabbitMQ node (about 6 s); the tests hold one lock so that only one node and
//! one bridge run at a time on a small machine. Needs root (mounts) and
//! rabbitmq-server (scripts/test installs it).
//!
//! - shared with tests/cluster, in tests/support (`enate_bridge_test_support`):
//!   `node`, the private RabbitMQ node; `bridge`, the binary as a subprocess;
//!   `load`, the clients and their history; `checker`, the verdict; `proxy`,
//!   the TCP fault proxy (the api tests' too);
//! - `disk`: a tmpfs and an ext4 loop device for the spool;
//! - `raw_confirms`: an ignored reproducer of the queue-nack finding without
//!   the bridge (raw lapin publishes to a reject-publish queue).

mod disk;
mod raw_confirms;

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
    types::{AMQPValue, FieldTable, LongString},
};
use tokio::sync::{Mutex, MutexGuard};

use enate_bridge_test_support::{
    POLL,
    bridge::Bridge,
    checker::{Verdict, drain_queue, reference_of, wait_spool_drained},
    eventually,
    load::{self, Answer, History, Load, LoadSpec},
    node::Node,
    poll_until,
    proxy::FaultProxy,
    suite::{self, Suite},
};

/// Where `checker` writes the `FAULT ...` lines, in target/.
const REPORT_FILE: &str = "faults-report.txt";

/// One fault at a time: each test holds this for its whole run.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// The durable queue bound to `enate` with '#': what the checker reads.
const QUEUE: &str = "faults.all";
const EXCHANGE: &str = "enate";

/// How long the bridge gets to drain its spool once the fault has healed.
const DRAIN_WITHIN: Duration = Duration::from_secs(90);

async fn serial() -> MutexGuard<'static, ()> {
    suite::init(|| {
        Suite::new(
            env!("CARGO_BIN_EXE_enate-bridge"),
            env!("CARGO_TARGET_TMPDIR"),
            REPORT_FILE,
        )
    });
    SERIAL.lock().await
}

/// Declares a durable queue with `arguments`, bound to `enate` with '#'.
async fn declare_bound_queue(amqp_url: &str, name: &str, arguments: FieldTable) {
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
async fn start(name: &str, spool_dir: &Path) -> (Node, Bridge) {
    let node = Node::start(name).await;
    let bridge = Bridge::start(&node.url(), spool_dir).await;
    bridge.wait_broker_connected(Duration::from_secs(30)).await;
    declare_bound_queue(&node.url(), QUEUE, FieldTable::default()).await;
    (node, bridge)
}

fn temp_spool() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("enate-bridge-faults-spool")
        .tempdir()
        .unwrap()
}

/// Waits for the drain, reads the queue, and judges the history.
async fn check(name: &str, node: &Node, bridge: &Bridge, history: &History) -> Verdict {
    let drain = wait_spool_drained(bridge, DRAIN_WITHIN).await;
    let delivered = drain_queue(&node.url(), QUEUE).await;
    let mut verdict = Verdict::compute(name, history, &delivered);
    verdict.note(format!("drain={:.1}s", drain.as_secs_f64()));
    verdict
}

/// Time from now until /readyz says the broker is connected.
async fn time_to_reconnect(bridge: &Bridge) -> Duration {
    let started = Instant::now();
    bridge.wait_broker_connected(Duration::from_secs(60)).await;
    started.elapsed()
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_refused_while_running_is_a_distinct_state_that_spools_and_drains_once_fixed() {
    let _serial = serial().await;
    let spool = temp_spool();
    let (node, bridge) = start("login-refused", spool.path()).await;

    // A password rotated on the broker and not in the bridge's amqp.urls.
    let refused_before = node.log_lines_with(REFUSED_LOGIN);
    node.set_guest_password("rotated-elsewhere").await;
    node.close_all_connections().await;
    let refused_at = Instant::now();
    let readyz = eventually(
        Duration::from_secs(30),
        "the refused login to show on /readyz",
        || async {
            match bridge.readyz().await {
                Ok((_, body)) if body["broker"]["status"] == "login_refused" => Ok(body),
                last => Err(format!("{last:?}")),
            }
        },
    )
    .await;
    let noticed = refused_at.elapsed();
    assert_eq!(bridge.metric("enate_bridge_amqp_login_refused").await, 1.0);
    assert!(
        readyz["broker"]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("amqp.urls") && !reason.contains("rotated")),
        "{readyz}"
    );
    let load = Load::start(
        bridge.webhook_url(),
        LoadSpec {
            total: 300,
            ..LoadSpec::default()
        },
    );
    let history = load.finish().await;
    let spooled = history
        .records
        .iter()
        .filter(|r| r.answer == Answer::Spooled)
        .count();
    // Several reconnect attempts (the broker refused them, says its log), and
    // the refusal is logged once.
    eventually(
        Duration::from_secs(30),
        "the broker to have refused 3 of the bridge's logins",
        || async {
            match node.log_lines_with(REFUSED_LOGIN) - refused_before {
                refused if refused >= 3 => Ok(()),
                refused => Err(format!("{refused} refused")),
            }
        },
    )
    .await;
    let refusal_lines = bridge.log_lines_with("refuses the bridge's login").len();

    node.set_guest_password("guest").await;
    let reconnect = time_to_reconnect(&bridge).await;
    assert_eq!(bridge.metric("enate_bridge_amqp_login_refused").await, 0.0);
    let mut verdict = check("login-refused", &node, &bridge, &history).await;
    verdict.note(format!(
        "noticed_after={:.1}s refusal_log_lines={refusal_lines} reconnect_after_fix={:.1}s",
        noticed.as_secs_f64(),
        reconnect.as_secs_f64()
    ));
    verdict.report_and_assert(&bridge);
    assert_eq!(
        spooled, 300,
        "every event was spooled while the login was refused"
    );
    assert_eq!(
        refusal_lines, 1,
        "one ERROR line for the refusal, not one per attempt"
    );
}

/// What RabbitMQ logs for each login it refuses.
const REFUSED_LOGIN: &str = "PLAIN login refused: user 'guest'";

/// RabbitMQ says NOT_ALLOWED (530) for a vhost at its connection limit too:
/// that passes (another replica closes), so it must not stop the start as a
/// refused login would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vhost_at_its_connection_limit_is_waited_for_not_taken_for_a_refused_login() {
    let _serial = serial().await;
    let node = Node::start("connection-limit").await;
    node.add_vhost_with_connection_limit("limited", 1).await;
    let url = node.url().replace("/%2f", "/limited");
    let other = Connection::connect(&url, ConnectionProperties::default())
        .await
        .expect("the first connection fits the limit");
    let broker = enate_bridge::amqp::Broker::start(enate_bridge::amqp::BrokerSettings {
        urls: vec![url.into()],
        connection_name: "enate-bridge connection limit".into(),
        heartbeat_secs: 10,
        channels: 1,
        confirms_per_channel: 8,
        timeout: Duration::from_secs(2),
        topology: None,
    })
    .await
    .expect("a vhost at its connection limit is not a refused login");
    let waiting = broker.readiness().unwrap_err();
    assert!(!waiting.is_login_refused(), "{waiting}");
    let _ = other.close(200, "room for the bridge".into()).await;
    eventually(
        Duration::from_secs(30),
        "the bridge to connect once there was room",
        || async { broker.readiness() },
    )
    .await;
    broker.close().await;
}

/// Consumes `queue` slowly (about `per_second`) until stopped; returns the references.
fn slow_consumer(
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

/// Which disk fault the spool meets.
enum DiskFault {
    ReadOnly(disk::Ext4),
    Full(disk::Tmpfs),
}

impl DiskFault {
    fn path(&self) -> &Path {
        match self {
            DiskFault::ReadOnly(disk) => disk.path(),
            DiskFault::Full(disk) => disk.path(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            DiskFault::ReadOnly(_) => "spool-read-only",
            DiskFault::Full(_) => "spool-full",
        }
    }

    fn apply(&self) -> String {
        match self {
            DiskFault::ReadOnly(disk) => {
                disk.break_read_only();
                "ext4 error, remounted read-only".into()
            }
            DiskFault::Full(disk) => format!("filled with {} bytes", disk.fill()),
        }
    }
}

/// The broker down so events go to the spool, then the spool's disk fails
/// (read-only or full) under load: every answer from then on must be a 503.
/// Then the disk is fixed, the broker comes back, and every 200 is delivered.
async fn spool_disk_fails_under_load(mount: impl FnOnce() -> DiskFault) {
    let _serial = serial().await;
    let fault = mount();
    let name = fault.name();
    let (node, mut bridge) = start(name, fault.path()).await;
    let load = Load::start(
        bridge.webhook_url(),
        LoadSpec {
            rate: Some(250.0),
            ..LoadSpec::default()
        },
    );

    load.wait_sent(load.spec.total / 6).await;
    node.stop().await;
    assert!(
        load.wait_answers(200, |a| *a == Answer::Spooled, Duration::from_secs(20))
            .await,
        "the outage was not spooled"
    );
    let what = fault.apply();
    let broken_at = load.elapsed();
    // Where in the fault /readyz is sampled for the report (asserted on by
    // nothing), not a wait for something: the load goes on meanwhile.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let readyz = bridge.readyz().await;
    let mut history = load.finish().await;

    // Repair the disk, bring the broker back; the bridge should drain on its own.
    let restarted = match &fault {
        DiskFault::ReadOnly(disk) => {
            // A file system that remounted itself read-only needs an unmount:
            // the bridge has to let go of its spool file first.
            bridge.stop_any_way().await;
            disk.repair();
            node.boot().await;
            bridge.restart().await;
            "restart (unmount + fsck needed)".to_string()
        }
        DiskFault::Full(disk) => {
            // Room again, the broker still down: the spool must take events
            // again by itself (its writer reopens the store), with no restart.
            disk.unfill();
            let freed_at = Instant::now();
            eventually(
                Duration::from_secs(15),
                "the spool to become writable once the disk had room",
                || async {
                    match bridge.spool().await {
                        Ok(spool) if spool["writable"] == true => Ok(()),
                        last => Err(format!("/spool {last:?}")),
                    }
                },
            )
            .await;
            let writable_after = freed_at.elapsed();
            let again = Load::start(
                bridge.webhook_url(),
                LoadSpec {
                    total: 300,
                    prefix: "after-room-",
                    ..LoadSpec::default()
                },
            )
            .finish()
            .await;
            let spooled_again = again
                .records
                .iter()
                .filter(|r| r.answer == Answer::Spooled)
                .count();
            assert_eq!(
                spooled_again,
                again.records.len(),
                "with room again, every event must be spooled (no restart)"
            );
            history.extend(again);
            node.boot().await;
            bridge.wait_broker_connected(Duration::from_secs(60)).await;
            format!(
                "none: writable {:.1}s after room was freed, then {spooled_again} more events spooled",
                writable_after.as_secs_f64()
            )
        }
    };
    let mut verdict = check(name, &node, &bridge, &history).await;
    // The first load's events sent after the fault (not the events sent once
    // the disk had room again).
    let after: Vec<&load::Record> = history
        .records
        .iter()
        .filter(|r| r.reference.starts_with("c") && r.sent_at > broken_at)
        .collect();
    let after_count = |answer: Answer| after.iter().filter(|r| r.answer == answer).count();
    let (after_published, after_spooled, after_503) = (
        after_count(Answer::Published),
        after_count(Answer::Spooled),
        after_count(Answer::Unavailable),
    );
    verdict.note(format!(
        "fault=\"{what}\" sent_after_fault={} 503_after_fault={after_503} \
         spooled_after_fault={after_spooled} published_after_fault={after_published} \
         readyz_during={} recovery={restarted:?}",
        after.len(),
        readyz.map_or_else(|e| e, |(code, _)| code.to_string()),
    ));
    verdict.report_and_assert(&bridge);
    assert!(!after.is_empty(), "the load ended before the disk fault");
    assert_eq!(
        after_published, 0,
        "the broker was down: nothing could be published"
    );
    match fault {
        // Nothing can be written to a read-only file system: every answer is a 503.
        DiskFault::ReadOnly(_) => assert_eq!(
            after_503,
            after.len(),
            "every answer after the spool's disk turned read-only must be a 503"
        ),
        // A "full" tmpfs can still take a commit that fits in pages the spool
        // file already has: such a 200 is true (report_and_assert checked that
        // it was delivered), so only the 503s are required here.
        DiskFault::Full(_) => assert!(after_503 > 0, "a full spool disk never gave a 503"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_spool_disk_answers_503_never_200_and_loses_nothing() {
    spool_disk_fails_under_load(|| DiskFault::ReadOnly(disk::Ext4::mount(64))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_disk_answers_503_never_200_and_loses_nothing() {
    spool_disk_fails_under_load(|| DiskFault::Full(disk::Tmpfs::mount("16m"))).await;
}
