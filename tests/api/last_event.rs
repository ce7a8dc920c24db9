//! `enate_bridge_last_event_timestamp_seconds{webhook}`: set by an accepted
//! webhook, never by a refused one, so a subscription gone silent shows.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::helpers::{metric_value, spawn_app};

fn last_event(metrics: &str, webhook: &str) -> Option<f64> {
    let series = format!(r#"enate_bridge_last_event_timestamp_seconds{{webhook="{webhook}"}}"#);
    metrics
        .lines()
        .any(|line| line.starts_with(&format!("{series} ")))
        .then(|| metric_value(metrics, &series))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_event_time_is_set_by_accepted_webhooks_only() {
    let app = spawn_app().await;
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();

    let published = app
        .post_json(
            "PacketUpdated",
            &json!({"ProcessType": 2, "Status": 4, "Reference": "1-T"}),
        )
        .await;
    assert_eq!(published.status(), 200);
    let quarantined = app.post_webhook("NewCommunication", "not json").await;
    assert_eq!(quarantined.status(), 200);
    // Refused: a wrong secret, and a path that names no webhook.
    let refused = app
        .client
        .post(format!("{}/webhooks/PacketCreated", app.address))
        .header("X-Enate-Secret", "not-the-secret")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(app.post_webhook("PacketDeleted", "{}").await.status(), 404);

    let metrics = app.metrics().await;
    for webhook in ["PacketUpdated", "NewCommunication"] {
        let at = last_event(&metrics, webhook)
            .unwrap_or_else(|| panic!("no last-event time for {webhook}:\n{metrics}"));
        assert!(at >= before - 1.0 && at < before + 60.0, "{webhook}: {at}");
    }
    assert_eq!(last_event(&metrics, "PacketCreated"), None, "{metrics}");
    assert_eq!(
        metrics
            .matches("enate_bridge_last_event_timestamp_seconds{")
            .count(),
        2,
        "one series per webhook that had traffic:\n{metrics}"
    );
}
