//! What a hostile, buggy or stalled sender gets, over real HTTP and a real
//! RabbitMQ: a precise answer, nothing published (or one event where one is
//! due), and no lock-out of the senders that behave.

use std::time::{Duration, Instant};

use enate_bridge_test_support::eventually;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{
    FaultProxy, SECRET, TestApp, amqp_url, metric_value, spawn_app_with, webhooks_total,
};

/// Opens a connection and sends a webhook's headers, declaring `length` body
/// bytes, and the first `sent` of them; the rest is up to the test.
async fn start_body(app: &TestApp, length: usize, sent: usize) -> TcpStream {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /webhooks/PacketUpdated HTTP/1.1\r\nHost: {address}\r\nX-Enate-Secret: {SECRET}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{}",
        " ".repeat(sent)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Everything the bridge sends on the connection until it closes it (or
/// `within` passes: then the test fails).
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut answer))
        .await
        .expect("the bridge answers and closes the connection in time")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

fn assert_timeout_answer(answer: &str) {
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["status"], "timeout", "{answer}");
    assert!(
        body["reason"].as_str().unwrap().contains("1 second"),
        "{answer}"
    );
}

async fn readyz_ingress(app: &TestApp) -> Value {
    let readyz: Value = app.get_admin("/readyz").await.json().await.unwrap();
    readyz["ingress"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_in_gets_408_at_the_deadline_and_nothing_is_published() {
    let app = spawn_app_with(|settings| settings.server.body_timeout_secs = 1).await;
    let queue = app.bind_queue("#").await;
    let mut stream = start_body(&app, 1000, 1).await;
    let started = Instant::now();
    let trickle = async {
        // One byte every 100 ms: 1,000 bytes would take 100 s. The sleep is the
        // subject of the test (a sender that must be slow), not a wait.
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if stream.write_all(b" ").await.is_err() {
                return;
            }
        }
    };
    trickle.await;
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_timeout_answer(&answer);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "the connection outlived the deadline by far: {:?}",
        started.elapsed()
    );
    queue.assert_empty().await;
    let metrics = app.metrics().await;
    assert_eq!(webhooks_total(&metrics, "PacketUpdated", "timeout"), 1.0);
    assert_eq!(readyz_ingress(&app).await["bodies_being_read"], 0);
    assert_eq!(readyz_ingress(&app).await["body_buffer_bytes"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_longer_than_the_body_gets_408_not_silence() {
    let app = spawn_app_with(|settings| settings.server.body_timeout_secs = 1).await;
    let queue = app.bind_queue("#").await;
    let body = r#"{"ProcessType": 2, "Status": 1}"#;
    let mut stream = start_body(&app, body.len() + 100, 0).await;
    stream.write_all(body.as_bytes()).await.unwrap();

    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;

    assert_timeout_answer(&answer);
    queue.assert_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_beyond_max_in_flight_do_not_lock_out_a_webhook_that_arrives_whole() {
    let app = spawn_app_with(|settings| {
        settings.server.max_in_flight = 2;
        settings.server.body_timeout_secs = 60;
    })
    .await;
    let queue = app.bind_queue("#").await;
    let mut slow = Vec::new();
    for _ in 0..10 {
        slow.push(start_body(&app, 100_000, 10).await);
    }
    // Each holds the 10 bytes it sent, and no slot.
    let ingress = eventually(
        Duration::from_secs(10),
        "10 bodies being read, holding 100 bytes",
        || async {
            let ingress = readyz_ingress(&app).await;
            if ingress["bodies_being_read"] == 10 && ingress["body_buffer_bytes"] == 100 {
                Ok(ingress)
            } else {
                Err(ingress)
            }
        },
    )
    .await;
    assert_eq!(ingress["slots_in_use"], 0, "{ingress}");

    let response = app
        .post_webhook("PacketUpdated", r#"{"ProcessType": 2, "Status": 1}"#)
        .await;

    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["status"], "published");
    queue.next().await;
    queue.assert_empty().await;
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "enate_bridge_bodies_being_read"),
        10.0
    );
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_without_the_secret_gets_401_while_every_slot_is_taken() {
    let proxy = FaultProxy::start(&amqp_url()).await;
    let app = spawn_app_with(|settings| {
        settings.amqp.urls = vec![proxy.url().parse().unwrap()];
        settings.server.max_in_flight = 1;
    })
    .await;
    // The one slot is held by a request whose confirm is held back.
    let held = app.hold_a_slot(&proxy).await;

    let response = app
        .client
        .post(format!("{}/webhooks/PacketUpdated", app.address))
        .header("X-Enate-Secret", "guess")
        .body("{}")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 401);
    assert!(response.headers().get("retry-after").is_none());
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["status"], "unauthorized");
    let overloaded = app.post_webhook("PacketUpdated", r#"{"a": 1}"#).await;
    assert_eq!(
        overloaded.status(),
        503,
        "with the secret, the load is told"
    );
    proxy.restore();
    assert_eq!(held.await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_objects_than_max_events_per_request_get_413_and_nothing_is_published() {
    let app = spawn_app_with(|settings| settings.server.max_events_per_request = 3).await;
    let queue = app.bind_queue("#").await;
    let quarantine = app.queue(&app.quarantine).await;
    let cases = [
        (
            "one over",
            r#"[{"a":1},{"a":2},{"a":3},{"a":4}]"#.to_string(),
        ),
        (
            "100,000 tiny objects",
            format!("[{}{{}}]", "{},".repeat(99_999)),
        ),
    ];
    for (case, body) in cases {
        let response = app.post_webhook("PacketUpdated", body).await;
        assert_eq!(response.status(), 413, "{case}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["status"], "too_many_events", "{case}");
        assert!(
            answer["reason"].as_str().unwrap().contains('3'),
            "{case}: {answer}"
        );
    }
    let within = app
        .post_webhook("PacketUpdated", r#"[{"a":1},{"a":2},{"a":3}]"#)
        .await;
    assert_eq!(within.status(), 200, "the cap itself is allowed");
    for _ in 0..3 {
        queue.next().await;
    }
    queue.assert_empty().await;
    quarantine.assert_empty().await;
    let metrics = app.metrics().await;
    assert_eq!(
        webhooks_total(&metrics, "PacketUpdated", "too_many_events"),
        2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_objects_in_one_request_are_one_event_published_once() {
    let app = spawn_app_with(|_| {}).await;
    let queue = app.bind_queue("#").await;

    let response = app
        .post_webhook(
            "PacketUpdated",
            r#"[{"Status":1},{"Status":1},{"Status":1}]"#,
        )
        .await;

    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["status"], "published");
    assert_eq!(answer["event_ids"].as_array().unwrap().len(), 1, "{answer}");
    queue.next().await;
    queue.assert_empty().await;
    let metrics = app.metrics().await;
    assert_eq!(metric_value(&metrics, "enate_bridge_duplicates_total"), 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_fit_the_buffer_budget_gets_503_and_the_budget_comes_back() {
    let app = spawn_app_with(|settings| {
        settings.server.max_body_bytes = 1000;
        settings.server.max_body_buffer_bytes = 1000;
        settings.server.body_timeout_secs = 60;
    })
    .await;
    let queue = app.bind_queue("#").await;
    let webhook = r#"{"ProcessType": 2, "Status": 1, "Reference": "fits once the budget is back"}"#;
    let holder = start_body(&app, 1000, 990).await;
    buffer_bytes_become(&app, 990).await;

    let refused = app.post_webhook("PacketUpdated", webhook).await;

    assert_eq!(refused.status(), 503);
    let answer: Value = refused.json().await.unwrap();
    assert_eq!(answer["status"], "overloaded");
    queue.assert_empty().await;
    drop(holder);
    buffer_bytes_become(&app, 0).await;
    let accepted = app.post_webhook("PacketUpdated", webhook).await;
    assert_eq!(accepted.status(), 200);
    queue.next().await;
}

/// Waits until /readyz says the body buffers hold `bytes`.
async fn buffer_bytes_become(app: &TestApp, bytes: u64) {
    eventually(
        Duration::from_secs(10),
        format_args!("the body buffers to hold {bytes} bytes"),
        || async {
            let ingress = readyz_ingress(app).await;
            if ingress["body_buffer_bytes"] == bytes {
                Ok(())
            } else {
                Err(ingress)
            }
        },
    )
    .await
}
