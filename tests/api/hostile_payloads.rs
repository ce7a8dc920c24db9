//! Payloads a careless or hostile sender can send that are valid JSON, or nearly:
//! repeated keys, nesting past the parser's limit, numbers out of range. Each gets
//! its answer, and is published or quarantined byte for byte, never half-read.

use enate_bridge::{event::event_id, webhook::Webhook};
use serde::Deserialize;
use serde_json::{Value, value::RawValue};

use crate::helpers::{header, json, spawn_app, webhooks_total};

/// The parts of a published event these tests look at, `raw` as the bytes it holds.
#[derive(Deserialize)]
struct Published<'a> {
    #[serde(borrow)]
    data: PublishedData<'a>,
}

#[derive(Deserialize)]
struct PublishedData<'a> {
    #[serde(borrow)]
    raw: &'a RawValue,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_keys_are_published_with_a_warning_and_every_byte_in_raw() {
    let app = spawn_app().await;
    let events = app.bind_queue("#").await;
    let quarantine = app.queue(&app.quarantine).await;
    let body = r#"{"GUID": "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "Status": 4, "Region": "EMEA", "Status": 1, "Region": "APAC", "status": 2, "Meta": {"k": 1, "k": 2}}"#;

    let response = app.post_webhook("PacketUpdated", body).await;

    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["status"], "published", "{answer}");
    let expected_id = event_id(Webhook::PacketUpdated, body.as_bytes()).to_string();
    assert_eq!(answer["event_ids"], serde_json::json!([expected_id]));

    let message = events.next().await;
    let published: Published = serde_json::from_slice(&message.data).unwrap();
    assert_eq!(published.data.raw.get(), body, "raw is the bytes received");
    let event = json(&message);
    assert_eq!(event["id"], expected_id);
    assert_eq!(event["data"]["status"], "resolved", "the first value kept");
    assert_eq!(
        event["data"]["extra"],
        serde_json::json!({"Region": "EMEA", "Meta": {"k": 1}})
    );
    assert_eq!(
        event["data"]["warnings"],
        serde_json::json!([
            r#"status: given more than once (key "Status"), the first non-null value kept"#,
            r#"extra: key "Region" given more than once, the first non-null value kept"#,
            r#"status: given more than once (key "status"), the first non-null value kept"#,
            r#"extra: key "k" given more than once inside "Meta", the first non-null value kept"#,
        ])
    );
    let warnings = event["data"]["warnings"].to_string();
    assert!(
        !warnings.contains("APAC") && !warnings.contains("EMEA"),
        "warnings never show values: {warnings}"
    );
    events.assert_empty().await;
    quarantine.assert_empty().await;
}

/// Posts `body` and checks it is quarantined byte for byte with `reason`, nothing
/// published to the main exchange.
async fn assert_quarantined(webhook: &str, body: &str, reason: &str) {
    let app = spawn_app().await;
    let events = app.bind_queue("#").await;
    let quarantine = app.queue(&app.quarantine).await;

    let response = app.post_webhook(webhook, body.to_string()).await;

    assert_eq!(response.status(), 200, "{reason}");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["status"], "quarantined", "{answer}");
    assert_eq!(answer["reason"], reason);
    let kept = quarantine.next().await;
    assert_eq!(kept.data, body.as_bytes(), "kept byte for byte");
    assert_eq!(
        header(&kept.properties, "x-quarantine-reason").as_deref(),
        Some(reason)
    );
    events.assert_empty().await;
    quarantine.assert_empty().await;
    let metrics = app.metrics().await;
    assert_eq!(webhooks_total(&metrics, webhook, "quarantined"), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nesting_200_deep_is_quarantined_as_too_deep_not_as_a_syntax_error() {
    let depth = 200;
    let body = format!(
        r#"{{"GUID": "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "Deep": {}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert_quarantined(
        "PacketCreated",
        &body,
        "the body is nested deeper than 127 levels",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_digit_status_is_quarantined_as_out_of_range() {
    assert_quarantined(
        "PacketUpdated",
        r#"{"Status": 123456789012345678901234567890}"#,
        "status: a number out of range is not a valid status",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_past_any_float_is_quarantined_as_out_of_range_naming_its_key() {
    assert_quarantined(
        "PacketCreated",
        r#"{"GUID": "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "Score": 1e400}"#,
        r#"extra: the value of "Score" has a number out of range"#,
    )
    .await;
}
