//! What Enate (or anyone) gets for a request that cannot be published as is:
//! the status code, the JSON reason, and nothing published, or the payload kept
//! in quarantine.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{SECRET, header, metric_value, spawn_app, spawn_app_with, webhooks_total};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_right_secret_get_401_and_publish_nothing() {
    let app = spawn_app().await;
    let queue = app.bind_queue("#").await;
    let quarantine = app.queue(&app.quarantine).await;
    let cases: [(&str, Option<(&str, &str)>); 4] = [
        ("no header", None),
        ("wrong secret", Some(("X-Enate-Secret", "guess"))),
        ("secret in another header", Some(("X-Other", SECRET))),
        ("empty secret", Some(("X-Enate-Secret", ""))),
    ];
    for (case, header) in cases {
        let mut request = app
            .client
            .post(format!("{}/webhooks/PacketUpdated", app.address))
            .body(r#"{"Status": 1}"#);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "unauthorized", "{case}");
        assert!(
            !body.to_string().contains(SECRET),
            "{case}: the answer shows the secret"
        );
    }
    queue.assert_empty().await;
    quarantine.assert_empty().await;
    let metrics = app.metrics().await;
    assert_eq!(
        webhooks_total(&metrics, "PacketUpdated", "unauthorized"),
        4.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_is_trimmed_the_header_name_any_case_and_rotated_secrets_all_work() {
    let app = spawn_app_with(|settings| {
        settings.auth.header = enate_bridge::config::HeaderSetting::parse("X-Custom-Auth").unwrap();
        settings.auth.secrets = vec![" old-one".parse().unwrap(), "new-one".parse().unwrap()];
    })
    .await;
    for (name, value) in [
        ("x-custom-auth", "old-one"),
        ("X-CUSTOM-AUTH", "  new-one "),
        ("X-Custom-Auth", " old-one"),
    ] {
        let response = app
            .client
            .post(format!("{}/webhooks/PacketUpdated", app.address))
            .header(name, value)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}: {value:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_webhook_gets_404_listing_the_valid_names_and_publishes_nothing() {
    let app = spawn_app().await;
    let queue = app.bind_queue("#").await;
    for path in ["PacketDeleted", "packet", "PacketCreated.json"] {
        let response = app.post_webhook(path, "{}").await;
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "unknown_webhook");
        assert_eq!(
            body["valid_webhooks"],
            json!([
                "PacketCreated",
                "PacketUpdated",
                "NewCommunication",
                "BusinessObjectCreated",
                "BusinessObjectUpdated",
                "SpecificBusinessObjectUpdated"
            ])
        );
    }
    queue.assert_empty().await;
    let metrics = app.metrics().await;
    assert_eq!(webhooks_total(&metrics, "unknown", "unknown_webhook"), 3.0);
    assert!(
        !metrics.contains("PacketDeleted"),
        "a random path created a series"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_gets_413_and_publishes_nothing() {
    let app = spawn_app_with(|settings| settings.server.max_body_bytes = 1024).await;
    let queue = app.bind_queue("#").await;
    let quarantine = app.queue(&app.quarantine).await;
    let big = json!({"Title": "x".repeat(2000)}).to_string();

    let response = app.post_webhook("PacketUpdated", big).await;

    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "too_large");
    let exactly_the_limit = format!("{{\"Title\": \"{}\"}}", "x".repeat(1024 - 13));
    assert_eq!(exactly_the_limit.len(), 1024);
    assert_eq!(
        app.post_webhook("PacketUpdated", exactly_the_limit)
            .await
            .status(),
        200
    );
    queue.next().await;
    queue.assert_empty().await;
    quarantine.assert_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_is_refused_once_it_passes_the_limit_not_after_the_sender_finishes() {
    let app = spawn_app_with(|settings| settings.server.max_body_bytes = 4096).await;
    let queue = app.bind_queue("#").await;
    let address = app.address.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /webhooks/PacketUpdated HTTP/1.1\r\nHost: {address}\r\nX-Enate-Secret: {SECRET}\r\n\
                 Transfer-Encoding: chunked\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // Send 8 KiB in 1 KiB chunks and never the final chunk: a server that buffered
    // everything would wait forever; this one answers once the limit is passed.
    let chunk = format!("400\r\n{}\r\n", "x".repeat(1024));
    for _ in 0..8 {
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let mut answer = vec![0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("the bridge answers before the body ends")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    queue.assert_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_payloads_are_quarantined_as_received_with_their_reason() {
    let app = spawn_app().await;
    let events = app.bind_queue("#").await;
    let quarantine = app.queue(&app.quarantine).await;
    let cases: [(&str, &str); 5] = [
        ("not json at all", "not valid JSON"),
        ("[1, 2, 3]", "item 0 of the array is not a JSON object"),
        ("\"a string\"", "neither an object nor an array"),
        (
            r#"{"Status": {"code": 2}, "Reference": "9-T"}"#,
            "status: an object is not a valid status",
        ),
        (r#"{"GUID": 42}"#, "guid: a number is not a valid guid"),
    ];
    for (body, reason) in cases {
        let response = app.post_webhook("NewCommunication", body).await;
        assert_eq!(response.status(), 200, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["status"], "quarantined", "{body}");
        assert!(
            answer["reason"].as_str().unwrap().contains(reason),
            "{body}: {answer}"
        );

        let kept = quarantine.next().await;
        assert_eq!(
            kept.data,
            body.as_bytes(),
            "the payload is kept byte for byte"
        );
        assert_eq!(
            header(&kept.properties, "x-enate-webhook").as_deref(),
            Some("NewCommunication")
        );
        assert!(
            header(&kept.properties, "x-quarantine-reason")
                .unwrap()
                .contains(reason),
            "{body}"
        );
        assert_eq!(*kept.properties.delivery_mode(), Some(2));
        assert!(kept.properties.message_id().is_some());
    }
    events.assert_empty().await;
    let metrics = app.metrics().await;
    assert_eq!(
        webhooks_total(&metrics, "NewCommunication", "quarantined"),
        5.0
    );
}

/// Enate sends duplicates: a quarantined body sent again is answered as the
/// first time (no event ids, which would name no event) and kept once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_body_sent_twice_gets_the_same_answer_and_is_kept_once() {
    let app = spawn_app().await;
    let quarantine = app.queue(&app.quarantine).await;
    let mut answers = Vec::new();
    for _ in 0..2 {
        let response = app.post_webhook("NewCommunication", "not json").await;
        assert_eq!(response.status(), 200);
        answers.push(response.json::<Value>().await.unwrap());
    }
    assert_eq!(answers[0]["status"], "quarantined", "{}", answers[0]);
    assert_eq!(answers[0], answers[1], "the same answer twice");
    assert!(answers[1].get("event_ids").is_none(), "{}", answers[1]);
    assert_eq!(quarantine.next().await.data, b"not json");
    quarantine.assert_empty().await;
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "enate_bridge_duplicates_total"),
        1.0,
        "the second one is counted as a duplicate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_reject_policy_invalid_payloads_get_422_and_publish_nothing() {
    let app = spawn_app_with(|settings| {
        settings.ingress.invalid_payload = enate_bridge::config::InvalidPayloadPolicy::Reject
    })
    .await;
    let events = app.bind_queue("#").await;
    let quarantine = app.queue(&app.quarantine).await;

    let response = app
        .post_webhook("PacketCreated", r#"{"ProcessType": [1]}"#)
        .await;

    assert_eq!(response.status(), 422);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["status"], "invalid");
    assert!(
        answer["reason"].as_str().unwrap().contains("process_type"),
        "{answer}"
    );
    events.assert_empty().await;
    quarantine.assert_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_methods_and_paths_get_json_errors() {
    let app = spawn_app().await;
    let get = app
        .client
        .get(format!("{}/webhooks/PacketUpdated", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    let elsewhere = app
        .client
        .post(format!("{}/hooks", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 404);
    let body: Value = elsewhere.json().await.unwrap();
    assert_eq!(body["status"], "not_found");
}
