//! A replay interrupted loses nothing: the connection cut through the fault
//! proxy (the broker gone, as far as the replay can tell) and the process
//! killed with SIGKILL, each after some events were confirmed. Every message
//! is then replayed, still in the quarantine, or both; a second run finishes
//! the job.

use std::{collections::BTreeSet, time::Duration};

use enate_bridge::{
    delivery::{Destinations, Outgoing},
    event::event_id,
    webhook::Webhook,
};
use enate_bridge_test_support::{eventually, proxy::FaultProxy};
use lapin::options::BasicPublishOptions;

use crate::helpers::{OLD_REASON, Scene, amqp_url, command, run, valid_body};

/// Enough that a fault after the first confirmed events lands mid-run.
const MESSAGES: usize = 4000;
/// Events confirmed before the fault.
const BEFORE_FAULT: u32 = 200;

/// Quarantines `MESSAGES` now-valid bodies; returns their ids.
async fn quarantine_many(scene: &Scene) -> BTreeSet<String> {
    let destinations = Destinations {
        exchange: scene.exchange.clone(),
        quarantine_exchange: scene.quarantine.clone(),
    };
    let mut confirms = Vec::with_capacity(MESSAGES);
    let mut ids = BTreeSet::new();
    for n in 0..MESSAGES {
        let body = valid_body(n);
        let id = event_id(Webhook::PacketUpdated, &body);
        ids.insert(id.to_string());
        let outgoing = Outgoing::quarantined(
            id,
            Webhook::PacketUpdated,
            OLD_REASON,
            body,
            Some("application/json"),
            1_767_000_000,
        );
        let message = destinations.amqp_message(&outgoing);
        confirms.push(
            scene
                .channel
                .basic_publish(
                    message.exchange,
                    message.routing_key,
                    BasicPublishOptions::default(),
                    &message.body,
                    message.properties,
                )
                .await
                .unwrap(),
        );
    }
    for confirm in confirms {
        assert!(confirm.await.unwrap().is_ack());
    }
    assert_eq!(scene.count(&scene.quarantine).await as usize, MESSAGES);
    ids
}

/// After a fault: waits until every id is an event or back in the quarantine
/// (the broker requeues a dead connection's unacked messages once it notices
/// the connection gone, so for a moment some are in neither), checks that the
/// fault came mid-run, then that a second run completes. A loss is an id in
/// neither queue when the wait runs out.
async fn assert_nothing_lost_and_a_rerun_completes(
    scene: &Scene,
    ids: &BTreeSet<String>,
    fault: &str,
) {
    let (published, held) = eventually(
        Duration::from_secs(30),
        "every message an event or back in the quarantine",
        || async {
            let published = scene.ids(&scene.events).await;
            let held = scene.ids(&scene.quarantine).await;
            let lost: Vec<&String> = ids
                .iter()
                .filter(|id| !published.contains(*id) && !held.contains(*id))
                .collect();
            if lost.is_empty() {
                Ok((published.len(), held.len()))
            } else {
                Err(format!(
                    "{} messages in neither queue, e.g. {:?}",
                    lost.len(),
                    &lost[..lost.len().min(3)]
                ))
            }
        },
    )
    .await;
    assert!(
        held > 0,
        "the {fault} came mid-run ({published} published, {held} held)"
    );
    assert_second_run_completes(scene, ids).await;
}

/// A second, undisturbed run: the quarantine empty, every id an event.
async fn assert_second_run_completes(scene: &Scene, ids: &BTreeSet<String>) {
    let held = scene.count(&scene.quarantine).await;
    let started = std::time::Instant::now();
    let second = run(&scene.env(&amqp_url()), &["quarantine", "replay", "--json"]).await;
    assert_eq!(second.code, Some(0), "{}", second.describe());
    // Reported, never asserted (the suite asserts no speed).
    eprintln!(
        "second run: {held} messages replayed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(scene.count(&scene.quarantine).await, 0, "{}", second.stdout);
    let published = scene.ids(&scene.events).await;
    assert_eq!(&published, ids, "every message became its event");
}

#[tokio::test]
async fn a_replay_whose_broker_connection_is_cut_fails_loses_nothing_and_a_rerun_completes() {
    let scene = Scene::new().await;
    let ids = quarantine_many(&scene).await;
    let proxy = FaultProxy::start(&amqp_url()).await;
    let replay = command(&scene.env(&proxy.url()), &["quarantine", "replay"])
        .spawn()
        .unwrap();
    eventually(
        Duration::from_secs(60),
        "the first events are confirmed",
        || async { scene.count(&scene.events).await >= BEFORE_FAULT },
    )
    .await;
    proxy.cut();
    let output = tokio::time::timeout(Duration::from_secs(60), replay.wait_with_output())
        .await
        .expect("the replay ends once its connection is cut")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a cut replay fails: {stderr}");
    assert!(stderr.contains("quarantine replay:"), "{stderr}");
    assert_nothing_lost_and_a_rerun_completes(&scene, &ids, "cut").await;
    scene.cleanup().await;
}

#[tokio::test]
async fn a_replay_killed_with_sigkill_loses_nothing_and_a_rerun_completes() {
    let scene = Scene::new().await;
    let ids = quarantine_many(&scene).await;
    let mut replay = command(&scene.env(&amqp_url()), &["quarantine", "replay"])
        .spawn()
        .unwrap();
    eventually(
        Duration::from_secs(60),
        "the first events are confirmed",
        || async { scene.count(&scene.events).await >= BEFORE_FAULT },
    )
    .await;
    replay.start_kill().unwrap(); // SIGKILL
    let status = replay.wait().await.unwrap();
    assert!(!status.success());
    assert_nothing_lost_and_a_rerun_completes(&scene, &ids, "kill").await;
    scene.cleanup().await;
}
