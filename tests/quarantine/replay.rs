//! `quarantine replay`: a now-valid body becomes the event the ingress would
//! have published, with the same id; a still-invalid one goes back with its
//! current reason; `--dry-run` changes nothing.

use enate_bridge::{event::event_id, payload::split_body, webhook::Webhook};
use serde_json::Value;

use crate::helpers::{
    INVALID_BODY, OLD_REASON, Scene, amqp_url, header, message_id, run, valid_body,
};

#[tokio::test]
async fn replay_publishes_a_now_valid_body_as_the_ingress_would_with_the_same_event_id() {
    let scene = Scene::new().await;
    let body = valid_body(7);
    let received = 1_767_323_045;
    scene
        .quarantine(Webhook::PacketUpdated, &body, OLD_REASON, received)
        .await;

    let replayed = run(&scene.env(&amqp_url()), &["quarantine", "replay", "--json"]).await;
    assert_eq!(replayed.code, Some(0), "{}", replayed.describe());
    let report = replayed.json();
    assert_eq!(report["replayed"], 1, "{report:#}");
    assert_eq!(report["events"], 1, "{report:#}");
    assert_eq!(
        report["events_by_routing_key"]["packet_updated.ticket.resolved"],
        1
    );

    assert_eq!(
        scene.count(&scene.quarantine).await,
        0,
        "the original was acked"
    );
    let events = scene.peek(&scene.events).await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    let id = event_id(Webhook::PacketUpdated, &body).to_string();
    assert_eq!(message_id(event), id, "the id the ingress gives that body");
    assert_eq!(event.routing_key.as_str(), "packet_updated.ticket.resolved");
    assert_eq!(event.exchange.as_str(), scene.exchange);
    let properties = &event.properties;
    assert_eq!(*properties.delivery_mode(), Some(2));
    assert_eq!(
        *properties.timestamp(),
        Some(received),
        "the receive time, kept"
    );
    assert_eq!(
        properties.content_type().as_ref().map(|c| c.as_str()),
        Some("application/cloudevents+json")
    );
    assert_eq!(
        properties.kind().as_ref().map(|c| c.as_str()),
        Some("com.enate.webhook.packet_updated")
    );
    assert_eq!(
        properties.app_id().as_ref().map(|c| c.as_str()),
        Some("enate-bridge")
    );
    assert_eq!(header(event, "event").as_deref(), Some("packet_updated"));
    assert_eq!(header(event, "process_type").as_deref(), Some("ticket"));
    assert_eq!(header(event, "status").as_deref(), Some("resolved"));
    let json: Value = serde_json::from_slice(&event.data).unwrap();
    assert_eq!(json["id"], id);
    assert_eq!(json["time"], "2026-01-02T03:04:05.000Z");
    assert_eq!(json["data"]["status"], "resolved");
    assert_eq!(
        json["data"]["raw"]["Reference"], "R7",
        "raw is the body as received"
    );
    scene.cleanup().await;
}

#[tokio::test]
async fn a_still_invalid_body_goes_back_with_its_current_reason_and_the_run_ends() {
    let scene = Scene::new().await;
    let id = scene
        .quarantine(
            Webhook::NewCommunication,
            INVALID_BODY,
            "an older release's reason",
            1_767_000_000,
        )
        .await;
    scene
        .quarantine(
            Webhook::PacketUpdated,
            &valid_body(1),
            OLD_REASON,
            1_767_000_001,
        )
        .await;

    let replayed = run(&scene.env(&amqp_url()), &["quarantine", "replay", "--json"]).await;
    assert_eq!(replayed.code, Some(0), "{}", replayed.describe());
    let report = replayed.json();
    assert_eq!(report["messages"], 2, "{report:#}");
    assert_eq!(report["replayed"], 1, "{report:#}");
    assert_eq!(report["still_quarantined"], 1, "{report:#}");

    let current = split_body(INVALID_BODY).unwrap_err().0;
    assert_eq!(
        report["still_invalid"][0]["reason"],
        current.as_str(),
        "{report:#}"
    );
    let held = scene.peek(&scene.quarantine).await;
    assert_eq!(held.len(), 1, "published anew, the original acked");
    let back = &held[0];
    assert_eq!(message_id(back), id.to_string());
    assert_eq!(back.data, INVALID_BODY, "the body exactly as received");
    assert_eq!(header(back, "x-quarantine-reason"), Some(current));
    assert_eq!(
        header(back, "x-enate-webhook").as_deref(),
        Some("NewCommunication")
    );
    assert_eq!(*back.properties.timestamp(), Some(1_767_000_000));
    assert_eq!(scene.count(&scene.events).await, 1);

    // A second run finds it again, and it still cannot become an event.
    let again = run(&scene.env(&amqp_url()), &["quarantine", "replay"]).await;
    assert_eq!(again.code, Some(0), "{}", again.describe());
    assert!(again.stdout.contains("1 still invalid"), "{}", again.stdout);
    assert_eq!(scene.count(&scene.quarantine).await, 1);
    scene.cleanup().await;
}

#[tokio::test]
async fn a_dry_run_reports_and_changes_nothing() {
    let scene = Scene::new().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            scene
                .quarantine(
                    Webhook::PacketUpdated,
                    &valid_body(n),
                    OLD_REASON,
                    1_767_000_000,
                )
                .await
                .to_string(),
        );
    }
    ids.push(
        scene
            .quarantine(Webhook::PacketCreated, INVALID_BODY, "old", 1_767_000_000)
            .await
            .to_string(),
    );

    let dry = run(
        &scene.env(&amqp_url()),
        &["quarantine", "replay", "--dry-run", "--json"],
    )
    .await;
    assert_eq!(dry.code, Some(0), "{}", dry.describe());
    let report = dry.json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["replayed"], 5, "{report:#}");
    assert_eq!(report["still_quarantined"], 1, "{report:#}");

    assert_eq!(scene.count(&scene.events).await, 0, "nothing published");
    let held: Vec<String> = scene
        .peek(&scene.quarantine)
        .await
        .iter()
        .map(message_id)
        .collect();
    assert_eq!(held, ids, "every message still there, in its place");
    let text = run(
        &scene.env(&amqp_url()),
        &["quarantine", "replay", "--dry-run"],
    )
    .await;
    assert!(
        text.stdout.contains("dry run, nothing changed"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("5 would be replayed as 5 events"),
        "{}",
        text.stdout
    );
    scene.cleanup().await;
}

#[tokio::test]
async fn what_the_running_ingress_quarantined_is_read_back_and_kept_with_the_same_reason() {
    enate_bridge_test_support::init_suite!("quarantine-report.txt");
    let scene = Scene::new().await;
    let spool = tempfile::tempdir().unwrap();
    let env = scene.env(&amqp_url());
    let env: Vec<(&str, &str)> = env
        .iter()
        .filter(|(key, _)| key != "ENATE_BRIDGE__AMQP__URLS")
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    let mut bridge =
        enate_bridge_test_support::bridge::Bridge::start_with(&amqp_url(), spool.path(), &env)
            .await;
    let answer: Value = reqwest::Client::new()
        .post(bridge.webhook_url())
        .header("X-Enate-Secret", enate_bridge_test_support::bridge::SECRET)
        .header("Content-Type", "application/json")
        .body(INVALID_BODY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"], "quarantined", "{answer}");
    let reason = answer["reason"].as_str().unwrap().to_string();
    bridge.stop_any_way().await;
    let before = scene.peek(&scene.quarantine).await;
    assert_eq!(before.len(), 1);

    let listed = run(&scene.env(&amqp_url()), &["quarantine", "list", "--json"]).await;
    let listing = listed.json();
    assert_eq!(
        listing["groups"][0]["webhook"], "PacketUpdated",
        "{listing:#}"
    );
    assert_eq!(
        listing["groups"][0]["reason"],
        reason.as_str(),
        "{listing:#}"
    );

    let replayed = run(&scene.env(&amqp_url()), &["quarantine", "replay", "--json"]).await;
    assert_eq!(replayed.code, Some(0), "{}", replayed.describe());
    let after = scene.peek(&scene.quarantine).await;
    assert_eq!(after.len(), 1);
    let (before, after) = (&before[0], &after[0]);
    assert_eq!(after.data, before.data);
    assert_eq!(message_id(after), message_id(before));
    assert_eq!(header(after, "x-quarantine-reason"), Some(reason));
    assert_eq!(
        header(after, "x-enate-webhook"),
        header(before, "x-enate-webhook")
    );
    assert_eq!(after.properties.timestamp(), before.properties.timestamp());
    assert_eq!(
        after.properties.content_type(),
        before.properties.content_type()
    );
    assert_eq!(after.properties.kind(), before.properties.kind());
    assert_eq!(
        after.properties.delivery_mode(),
        before.properties.delivery_mode()
    );
    scene.cleanup().await;
}
