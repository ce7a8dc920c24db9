//! `quarantine list`: grouped by webhook and reason, oldest and newest, and
//! nothing taken from the queue.

use enate_bridge::webhook::Webhook;

use crate::helpers::{INVALID_BODY, OLD_REASON, Scene, run, valid_body};

#[tokio::test]
async fn list_groups_by_webhook_and_reason_and_takes_nothing() {
    let scene = Scene::new().await;
    let mut ids = Vec::new();
    for (n, received) in [(1, 1_767_000_000), (2, 1_767_000_100), (3, 1_767_000_050)] {
        ids.push(
            scene
                .quarantine(Webhook::PacketUpdated, &valid_body(n), OLD_REASON, received)
                .await,
        );
    }
    ids.push(
        scene
            .quarantine(
                Webhook::NewCommunication,
                INVALID_BODY,
                "the body is not JSON",
                1_767_000_010,
            )
            .await,
    );
    let env = scene.env(&crate::helpers::amqp_url());

    let listed = run(&env, &["quarantine", "list", "--json"]).await;
    assert_eq!(listed.code, Some(0), "{}", listed.describe());
    let json = listed.json();
    assert_eq!(json["messages"], 4, "{json:#}");
    let groups = json["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{json:#}");
    let updated = groups
        .iter()
        .find(|group| group["webhook"] == "PacketUpdated")
        .unwrap();
    assert_eq!(updated["reason"], OLD_REASON);
    assert_eq!(updated["messages"], 3);
    assert_eq!(updated["oldest"], "2025-12-29T09:20:00Z", "{updated:#}");
    assert_eq!(updated["newest"], "2025-12-29T09:21:40Z", "{updated:#}");

    let table = run(&env, &["quarantine", "list"]).await;
    assert_eq!(table.code, Some(0), "{}", table.describe());
    assert!(table.stdout.contains("4 messages"), "{}", table.stdout);
    assert!(table.stdout.contains(OLD_REASON), "{}", table.stdout);

    // Every message is still there, in the order it was published.
    let held: Vec<String> = scene
        .peek(&scene.quarantine)
        .await
        .iter()
        .map(crate::helpers::message_id)
        .collect();
    let expected: Vec<String> = ids.iter().map(ToString::to_string).collect();
    assert_eq!(held, expected);
    scene.cleanup().await;
}
