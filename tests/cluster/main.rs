//! The cluster fault suite: a three-node RabbitMQ cluster (private nodes on
//! this machine, the worker queues of deploy/rabbitmq/definitions.json as
//! quorum queues) and two replicas of the real `enate-bridge` binary, each with
//! every node in `amqp.urls` and its own spool, under a load spread over both
//! replicas, while a fault happens to the cluster, the network or a replica.
//! Once it has healed, every event answered 200 must be in the worker queue.
//!
//! `cargo test --test cluster -- --nocapture` prints one `FAULT ...` line per
//! fault (also written to target/cluster-report.txt). Each test boots its own
//! cluster (about 20 s); the tests hold one lock so that one cluster runs at a
//! time. Needs root and rabbitmq-server, like tests/faults, whose node, bridge,
//! load and checker it shares (and the api tests' fault proxy), from
//! tests/support (`enate_bridge_test_support`).
//! `CLUSTER_LOGS=1` prints each bridge's log (without request lines) too.
//! `reproducers`: ignored tests that show, without the bridge's binary, what
//! RabbitMQ does in the cases the suite found.
//!
//! Decisions the issue left open, as an operator would take them:
//! - RabbitMQ's default partition handling (`ignore`): a node left in a
//!   minority stays up and takes connections, the harder case for the bridge
//!   (with `pause_minority` it would close them);
//! - the checker reads `enate.tickets`, a worker queue of definitions.json
//!   (every event of the load is a ticket); definitions are imported once the
//!   cluster has formed, so each quorum queue has a member on every node;
//! - a partition is a black hole (packets vanish, no RST), as a network
//!   partition looks to the bridge;
//! - behind a load balancer: a replica killed is taken out of rotation, and
//!   put back once restarted (`load::Targets`);
//! - the bridges run with the production defaults (a 5 s confirm timeout, so
//!   the quorum queues' confirm latency is judged against what operators
//!   run), but a 2 s heartbeat so that a black hole is noticed in seconds.

mod cluster;
mod reproducers;

use std::time::{Duration, Instant};

use tokio::sync::{Mutex, MutexGuard};

use cluster::{Cluster, Replica};
use enate_bridge_test_support::{
    bridge,
    checker::{Verdict, drain_queue, wait_spool_drained},
    init_suite,
    load::{self, Answer, History, Load, LoadSpec, Targets},
};

/// Where `checker` writes the `FAULT ...` lines, in target/.
const REPORT_FILE: &str = "cluster-report.txt";

/// A worker queue of definitions.json (quorum); every event of the load is a
/// ticket, so the checker finds all of them here.
const QUEUE: &str = "enate.tickets";

/// Events per second over both replicas: well inside what the cluster
/// confirms on a small machine, so the spool can drain while the load goes on.
const RATE: f64 = 150.0;

/// How long each bridge gets to drain its spool once the fault has healed.
const DRAIN_WITHIN: Duration = Duration::from_secs(90);

/// The bridges' `amqp.confirm_timeout_ms` (the default).
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a replica gets to connect to another node after losing its own.
const MOVE_WITHIN: Duration = Duration::from_secs(30);

static SERIAL: Mutex<()> = Mutex::const_new(());

async fn serial() -> MutexGuard<'static, ()> {
    init_suite!(REPORT_FILE);
    SERIAL.lock().await
}

/// The cluster, two replicas, and the load balancer's view of them.
struct Setup {
    name: &'static str,
    cluster: Cluster,
    replicas: Vec<Replica>,
    targets: Targets,
}

impl Setup {
    async fn start(name: &'static str) -> Setup {
        let cluster = Cluster::start(name).await;
        // Heartbeat 2 s (10 s by default): a black hole is noticed in 4-6 s.
        // The confirm timeout is the default (tests/faults' bridges use 2 s).
        let env = [
            ("ENATE_BRIDGE__AMQP__HEARTBEAT_SECS", "2"),
            ("ENATE_BRIDGE__AMQP__CONFIRM_TIMEOUT_MS", "5000"), // CONFIRM_TIMEOUT
        ];
        let mut replicas = Vec::new();
        for replica in ["bridge-1", "bridge-2"] {
            replicas.push(Replica::start(&cluster, replica, &env).await);
        }
        let targets = Targets::new(replicas.iter().map(|r| r.bridge.webhook_url()).collect());
        Setup {
            name,
            cluster,
            replicas,
            targets,
        }
    }

    /// A rate-limited load of `seconds` spread over both replicas.
    fn load(&self, seconds: f64) -> Load {
        Load::start_on(
            self.targets.clone(),
            LoadSpec {
                rate: Some(RATE),
                total: (RATE * seconds) as usize,
                ..LoadSpec::default()
            },
        )
    }

    /// Index of the first node that is up (for the checker's connection).
    fn url_of(&self, node: usize) -> String {
        self.cluster.nodes[node].url()
    }

    /// How many connections each replica has made so far.
    fn connections(&self) -> Vec<usize> {
        self.replicas
            .iter()
            .map(|r| r.bridge.connections().len())
            .collect()
    }

    /// After the nodes `faulted` failed at `at`: every replica that was on one must
    /// connect to another node within MOVE_WITHIN. Returns a note
    /// (`bridge-1:a->b@2.4s(outage=0.3s),bridge-2:stayed(c)`: connected again
    /// 2.4 s after the fault began, 0.3 s after the bridge noticed the loss)
    /// and the longest outage, the time to reconnect.
    async fn moves(
        &self,
        faulted: &[usize],
        before: &[(usize, Option<usize>)],
        at: Instant,
    ) -> (String, Duration) {
        let mut notes = Vec::new();
        let mut longest = Duration::ZERO;
        for (replica, (connections, node)) in self.replicas.iter().zip(before) {
            let Some(left) = node.filter(|node| faulted.contains(node)) else {
                notes.push(format!(
                    "{}:stayed({})",
                    replica.name,
                    node.map_or('?', Cluster::letter)
                ));
                continue;
            };
            let moved_to = replica.wait_reconnected(*connections, MOVE_WITHIN).await;
            let took = at.elapsed();
            let Some(moved_to) = moved_to else {
                panic!(
                    "{} did not connect to another node within {MOVE_WITHIN:?} of node {} failing; \
                     its log (without request lines):\n{}",
                    replica.name,
                    Cluster::letter(left),
                    replica.bridge.notable_log().join("\n")
                );
            };
            assert!(
                !faulted.contains(&moved_to),
                "{} reconnected to a node that failed",
                replica.name
            );
            // The bridge's own view: from noticing the loss to connected again.
            let outage = replica.last_outage().unwrap_or(took);
            longest = longest.max(outage);
            notes.push(format!(
                "{}:{}->{}@{:.1}s(outage={:.1}s)",
                replica.name,
                Cluster::letter(left),
                Cluster::letter(moved_to),
                took.as_secs_f64(),
                outage.as_secs_f64()
            ));
        }
        (notes.join(","), longest)
    }

    /// Each replica's connection count and node now.
    fn positions(&self) -> Vec<(usize, Option<usize>)> {
        self.connections()
            .into_iter()
            .zip(self.replicas.iter().map(Replica::node))
            .collect()
    }

    /// The node replica 0 publishes to now.
    fn node_of_first(&self) -> usize {
        self.replicas[0]
            .node()
            .expect("the first replica is connected to a node")
    }

    /// The confirm latency over both replicas, from the bridges' histogram
    /// `enate_bridge_publish_confirm_seconds`: the bucket bounds that hold 99%
    /// and all of the confirms (to set against the 5 s confirm timeout).
    async fn confirm_latency(&self) -> String {
        const SERIES: &str = "enate_bridge_publish_confirm_seconds_bucket{le=\"";
        let mut buckets: Vec<(String, f64)> = Vec::new();
        for replica in &self.replicas {
            let text = replica.bridge.metrics_text().await;
            for line in text.lines() {
                let Some(rest) = line.strip_prefix(SERIES) else {
                    continue;
                };
                let Some((le, count)) = rest.split_once("\"} ") else {
                    continue;
                };
                let count: f64 = count.trim().parse().unwrap_or(0.0);
                match buckets.iter_mut().find(|(bound, _)| bound == le) {
                    Some((_, total)) => *total += count,
                    None => buckets.push((le.to_string(), count)),
                }
            }
        }
        let all = buckets.last().map_or(0.0, |(_, count)| *count);
        let bound_holding = |share: f64| {
            buckets
                .iter()
                .find(|(_, count)| *count >= share * all)
                .map_or("?".to_string(), |(le, _)| format!("{le}s"))
        };
        format!(
            "confirms={all} confirm_p99<={} confirm_max<={}",
            bound_holding(0.99),
            bound_holding(1.0)
        )
    }

    /// Waits for both spools to drain, reads the worker queue from `via`,
    /// judges the history and reports.
    async fn check(&self, history: &History, via: usize, mut notes: Vec<String>) -> Verdict {
        let mut drains = Vec::new();
        for replica in &self.replicas {
            let drain = wait_spool_drained(&replica.bridge, DRAIN_WITHIN).await;
            drains.push(format!("{:.1}s", drain.as_secs_f64()));
        }
        let delivered = drain_queue(&self.url_of(via), QUEUE).await;
        let mut verdict = Verdict::compute(self.name, history, &delivered);
        let mut failures = Vec::new();
        for reason in ["timeout", "nack", "disconnected", "returned", "channel"] {
            let mut total = 0.0;
            for replica in &self.replicas {
                total += replica
                    .bridge
                    .metric(&format!(
                        r#"enate_bridge_publish_failures_total{{reason="{reason}"}}"#
                    ))
                    .await;
            }
            if total > 0.0 {
                failures.push(format!("{reason}={total}"));
            }
        }
        // Requests with no HTTP answer at all: which kind (refused, reset, timeout).
        let mut transport: Vec<String> = history
            .records
            .iter()
            .filter_map(|r| match &r.answer {
                Answer::Transport(kind) => Some(format!(
                    "{}@{:.1}s:{kind}",
                    r.reference,
                    r.sent_at.as_secs_f64()
                )),
                _ => None,
            })
            .collect();
        transport.truncate(5);
        if !transport.is_empty() {
            notes.push(format!("no_answer=[{}]", transport.join(",")));
        }
        notes.push(format!("drain={}", drains.join("/")));
        notes.push(format!("publish_failures=[{}]", failures.join(",")));
        notes.push(self.confirm_latency().await);
        for note in notes {
            verdict.note(note);
        }
        let bridges: Vec<&bridge::Bridge> = self.replicas.iter().map(|r| &r.bridge).collect();
        if std::env::var_os("CLUSTER_LOGS").is_some() {
            for replica in &self.replicas {
                eprintln!("---- {} log (without request lines):", replica.name);
                for line in replica.bridge.notable_log() {
                    eprintln!("{line}");
                }
            }
        }
        verdict.report_and_assert_all(&bridges);
        verdict
    }
}

/// Fails when the load ended before a fault began: the fault would not be
/// under load.
fn assert_under_load(load: &Load, what: &str) {
    assert!(
        !load.finished(),
        "the load ended before {what}: make it longer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_a_bridge_is_on_stopped_then_killed_the_bridge_moves_and_nothing_is_lost() {
    let _serial = serial().await;
    let setup = Setup::start("stop-kill").await;
    let load = setup.load(50.0);

    load.wait_sent(load.spec.total / 8).await;
    assert_under_load(&load, "the clean stop");
    let stopped = setup.node_of_first();
    let before = setup.positions();
    let at = Instant::now();
    setup.cluster.nodes[stopped].stop().await;
    let (stop_moves, stop_reconnect) = setup.moves(&[stopped], &before, at).await;
    setup.cluster.nodes[stopped].boot().await;

    assert_under_load(&load, "the kill -9");
    let killed = setup.node_of_first();
    let before = setup.positions();
    let at = Instant::now();
    setup.cluster.nodes[killed].kill9().await;
    let (kill_moves, kill_reconnect) = setup.moves(&[killed], &before, at).await;
    setup.cluster.nodes[killed].boot().await;
    let history = load.finish().await;

    let via = (killed + 1) % 3;
    setup
        .check(
            &history,
            via,
            vec![
                format!(
                    "stop={} reconnect={:.1}s [{stop_moves}]",
                    Cluster::letter(stopped),
                    stop_reconnect.as_secs_f64()
                ),
                format!(
                    "kill9={} reconnect={:.1}s [{kill_moves}]",
                    Cluster::letter(killed),
                    kill_reconnect.as_secs_f64()
                ),
            ],
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_black_holed_from_both_bridges_the_bridges_move_and_nothing_is_lost() {
    let _serial = serial().await;
    let setup = Setup::start("partition").await;
    let load = setup.load(30.0);

    load.wait_sent(load.spec.total / 6).await;
    assert_under_load(&load, "the partition");
    let holed = setup.node_of_first();
    let before = setup.positions();
    let at = Instant::now();
    for replica in &setup.replicas {
        replica.links[holed].black_hole();
    }
    let (moves, reconnect) = setup.moves(&[holed], &before, at).await;
    // The partition's length, the subject of the test (not a wait for something).
    tokio::time::sleep_until((at + Duration::from_secs(15)).into()).await;
    for replica in &setup.replicas {
        replica.links[holed].restore();
    }
    let history = load.finish().await;

    setup
        .check(
            &history,
            holed,
            vec![format!(
                "partition={} for 15s reconnect={:.1}s [{moves}]",
                Cluster::letter(holed),
                reconnect.as_secs_f64()
            )],
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_all_three_nodes_loses_nothing() {
    let _serial = serial().await;
    let setup = Setup::start("rolling").await;
    let load = setup.load(70.0);

    load.wait_sent(load.spec.total / 10).await;
    let mut steps = Vec::new();
    let mut longest = Duration::ZERO;
    for node in 0..3 {
        assert_under_load(&load, "a restart");
        let waited = setup
            .cluster
            .wait_not_quorum_critical(node, Duration::from_secs(60))
            .await;
        let before = setup.positions();
        let at = Instant::now();
        setup.cluster.nodes[node].stop().await;
        let (moves, reconnect) = setup.moves(&[node], &before, at).await;
        setup.cluster.nodes[node].boot().await;
        longest = longest.max(reconnect);
        steps.push(format!(
            "{}:quorum_wait={:.1}s,down={:.1}s[{moves}]",
            Cluster::letter(node),
            waited.as_secs_f64(),
            at.elapsed().as_secs_f64()
        ));
    }
    let history = load.finish().await;

    setup
        .check(
            &history,
            0,
            vec![format!(
                "reconnect={:.1}s restarts=[{}]",
                longest.as_secs_f64(),
                steps.join(" ")
            )],
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_killed_with_kill_9_holding_a_spool_restarts_and_drains_it_while_the_other_takes_traffic()
 {
    let _serial = serial().await;
    let mut setup = Setup::start("bridge-kill9").await;
    let load = setup.load(30.0);

    load.wait_sent(load.spec.total / 8).await;
    // The first replica loses every node (its links cut: a partition of that
    // replica alone), so it spools; the other one still publishes.
    let cut_at = Instant::now();
    setup.replicas[0].cut_all_links();
    assert!(
        load.wait_answers(200, |a| *a == Answer::Spooled, Duration::from_secs(20))
            .await,
        "the cut-off replica did not spool"
    );
    assert_under_load(&load, "the kill -9");
    let spooled_at_kill = setup.replicas[0]
        .bridge
        .spool()
        .await
        .map_or("?".into(), |s| s["events"].to_string());
    setup.replicas[0].bridge.kill9().await;
    // The load balancer notices: the other replica takes all traffic.
    setup.targets.set(0, None);
    let killed_at = Instant::now();
    let sent_at_kill = load.sent();
    load.wait_sent(sent_at_kill + (RATE * 5.0) as usize).await;
    let alone = load.sent() - sent_at_kill;

    setup.replicas[0].restore_all_links();
    let restart_at = Instant::now();
    setup.replicas[0].bridge.restart().await;
    setup.replicas[0]
        .bridge
        .wait_broker_connected(Duration::from_secs(30))
        .await;
    let reconnect = restart_at.elapsed();
    setup
        .targets
        .set(0, Some(setup.replicas[0].bridge.webhook_url()));
    let down_for = killed_at.elapsed();
    let spool_drained_in =
        wait_spool_drained(&setup.replicas[0].bridge, DRAIN_WITHIN).await + reconnect;
    assert_under_load(&load, "the restarted replica drained its spool");
    let history = load.finish().await;

    let verdict = setup
        .check(
            &history,
            0,
            vec![format!(
                "cut_for={:.1}s spool_at_kill={spooled_at_kill} down_for={:.1}s \
                 sent_to_the_other_alone={alone} reconnect_after_restart={:.1}s \
                 spool_drained_after_restart={:.1}s",
                (killed_at - cut_at).as_secs_f64(),
                down_for.as_secs_f64(),
                reconnect.as_secs_f64(),
                spool_drained_in.as_secs_f64()
            )],
        )
        .await;
    assert!(
        verdict.spooled > 0,
        "nothing was spooled: {}",
        verdict.line()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_nodes_down_the_bridges_spool_and_forward_once_quorum_is_back() {
    let _serial = serial().await;
    let setup = Setup::start("no-quorum").await;
    // Long enough to outlast the outage (15 s), two node boots (10-20 s on a
    // loaded machine) and the spools' drain, so the drain happens under load.
    let load = setup.load(60.0);

    load.wait_sent(load.spec.total / 6).await;
    assert_under_load(&load, "the loss of quorum");
    // The node of the second replica is left alone; the two others go. So at
    // least one replica keeps the channels it opened while the cluster was
    // whole: through those, RabbitMQ neither acks nor nacks without a majority
    // (a channel opened on the lone node afterwards gets nacks at once).
    let survivor = setup.replicas[1]
        .node()
        .expect("the second replica is connected to a node");
    let down = [(survivor + 1) % 3, (survivor + 2) % 3];
    let before = setup.positions();
    let at = Instant::now();
    // At once, so that no replica moves to the second node while it stops.
    futures::future::join_all(down.iter().map(|&node| setup.cluster.nodes[node].stop())).await;
    let quorum_lost_at = Instant::now();
    let quorum_lost = load.elapsed();
    let (moves, reconnect) = setup.moves(&down, &before, at).await;
    // How long quorum stays lost, the subject of the test (not a wait).
    tokio::time::sleep_until((quorum_lost_at + Duration::from_secs(15)).into()).await;
    assert_under_load(&load, "quorum came back");
    let quorum_back_from = load.elapsed();
    let back_at = Instant::now();
    futures::future::join_all(down.iter().map(|&node| setup.cluster.nodes[node].boot())).await;
    let booted_in = back_at.elapsed();
    // Quorum is back: what the outage spooled is forwarded (the load goes on).
    let mut forwarded_in = Duration::ZERO;
    for replica in &setup.replicas {
        forwarded_in = forwarded_in.max(wait_spool_drained(&replica.bridge, DRAIN_WITHIN).await);
    }
    // How long the drain takes is a measurement, reported, not asserted: the
    // load usually outlasts it (2-4 s here), and when it does not (seen in CI
    // under load), the drain finishes without traffic and the logs say why.
    let drained_under_load = !load.finished();
    if !drained_under_load {
        eprintln!(
            "cluster: the load ended before the spools were drained (in {:.1} s)",
            forwarded_in.as_secs_f64()
        );
        for replica in &setup.replicas {
            for line in replica.bridge.notable_log().iter().rev().take(40).rev() {
                eprintln!("---- {}: {line}", replica.name);
            }
        }
    }
    let history = load.finish().await;

    // While two nodes were down nothing can have been confirmed (a quorum
    // queue needs a majority): every 200 answered then must say `spooled`.
    let during: Vec<&load::Record> = history
        .records
        .iter()
        .filter(|r| r.sent_at > quorum_lost && r.answered_at < quorum_back_from)
        .collect();
    let count = |answer: Answer| during.iter().filter(|r| r.answer == answer).count();
    let (published, spooled, unavailable) = (
        count(Answer::Published),
        count(Answer::Spooled),
        count(Answer::Unavailable),
    );
    // Once a first publish has timed out (the confirm timeout after the loss),
    // the bridge must not make each request wait for confirms that cannot
    // come: answers are the spool's, in milliseconds, but for the one probe.
    let settled: Vec<Duration> = during
        .iter()
        .filter(|r| r.sent_at > quorum_lost + CONFIRM_TIMEOUT)
        .map(|r| r.answered_at - r.sent_at)
        .collect();
    let fast = settled
        .iter()
        .filter(|d| **d < Duration::from_secs(1))
        .count();
    let slowest = settled.iter().max().copied().unwrap_or_default();
    let verdict = setup
        .check(
            &history,
            survivor,
            vec![format!(
                "down={}{} survivor={} reconnect={:.1}s [{moves}] during_outage: sent={} \
                 spooled={spooled} published={published} 503s={unavailable} \
                 after_first_timeout: answered={} under_1s={fast} slowest={:.1}s \
                 nodes_back_in={:.1}s spools_forwarded_after={:.1}s \
                 drained_under_load={drained_under_load}",
                Cluster::letter(down[0]),
                Cluster::letter(down[1]),
                Cluster::letter(survivor),
                reconnect.as_secs_f64(),
                during.len(),
                settled.len(),
                slowest.as_secs_f64(),
                booted_in.as_secs_f64(),
                forwarded_in.as_secs_f64()
            )],
        )
        .await;
    assert!(
        fast * 10 >= settled.len() * 9 && !settled.is_empty(),
        "after the first confirm timeout, 90% of the answers must take under 1 s \
         (the spool's), not the confirm timeout: {}",
        verdict.line()
    );
    assert!(!during.is_empty(), "nothing was sent during the outage");
    assert_eq!(
        published,
        0,
        "a 200 `published` while two of three nodes were down: {}",
        verdict.line()
    );
    let not_spooled: Vec<&&load::Record> = during
        .iter()
        .filter(|r| r.answer != Answer::Spooled)
        .take(10)
        .collect();
    assert!(
        not_spooled.is_empty(),
        "every event sent while quorum was lost must be answered 200 spooled: {}\n{not_spooled:#?}",
        verdict.line()
    );
}
