//! Stopping: requests in flight finish with their confirms, /readyz turns 503
//! first, the process exits 0 on SIGTERM.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use enate_bridge_test_support::eventually;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{
    FaultProxy, SECRET, amqp_url, delete_exchanges_and_queues, json, spawn_app_with, test_settings,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_at_shutdown_gets_its_confirm_and_its_200() {
    let proxy = FaultProxy::start(&amqp_url()).await;
    let mut app =
        spawn_app_with(|settings| settings.amqp.urls = vec![proxy.url().parse().unwrap()]).await;
    let queue = app.bind_queue("#").await;

    // Hold the broker's confirm back so the request is still in flight at shutdown.
    let in_flight = app
        .hold_a_slot_with(&proxy, r#"{"Reference": "in flight"}"#)
        .await;
    let stopping = app.begin_stop();

    let readyz = eventually(Duration::from_secs(5), "/readyz to turn 503", || async {
        let readyz = app.get_admin("/readyz").await;
        if readyz.status() == 503 {
            Ok(readyz)
        } else {
            Err(readyz.status())
        }
    })
    .await;
    assert_eq!(
        readyz.json::<Value>().await.unwrap()["reason"],
        "shutting down"
    );
    assert!(
        !stopping.is_finished(),
        "shutdown must wait for the request in flight"
    );

    proxy.restore();
    let response = in_flight.await.unwrap();
    assert_eq!(response.status(), 200);
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("shutdown finishes once the request has")
        .unwrap()
        .unwrap();
    assert_eq!(json(&queue.next().await)["data"]["reference"], "in flight");
}

/// Every background task (the listeners, the spool's forwarder, the broker's
/// supervisor and lanes, the refusal summaries) has ended when the shutdown
/// returns. A task that is never told to stop, as the refusal summaries once
/// were, keeps the tracker from emptying, and this fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_background_task_outlives_the_shutdown() {
    let mut app = spawn_app_with(|settings| settings.server.shutdown_timeout_secs = 2).await;
    // A delivery, so a lane has confirms to settle.
    assert_eq!(app.post_webhook("PacketUpdated", "{}").await.status(), 200);
    // At least the supervisor, its 4 + 1 lanes, the forwarder and the summaries.
    assert!(
        app.tasks.len() >= 8,
        "the background tasks run on the tracker: {}",
        app.tasks.len()
    );

    app.stop().await.unwrap();
    assert!(app.tasks.is_closed(), "the shutdown closes the tracker");
    assert_eq!(app.tasks.len(), 0, "tasks still running after the shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_binary_cleanly_with_exit_0() {
    let settings = test_settings();
    let mut bridge = tokio::process::Command::new(env!("CARGO_BIN_EXE_enate-bridge"))
        .arg("serve")
        .env("ENATE_BRIDGE__AUTH__SECRETS", SECRET)
        .env("ENATE_BRIDGE__SERVER__BIND", "127.0.0.1:0")
        .env("ENATE_BRIDGE__ADMIN__BIND", "127.0.0.1:0")
        .env("ENATE_BRIDGE__AMQP__URLS", amqp_url())
        .env("ENATE_BRIDGE__AMQP__EXCHANGE", &settings.amqp.exchange)
        .env(
            "ENATE_BRIDGE__AMQP__QUARANTINE_EXCHANGE",
            &settings.amqp.quarantine_exchange,
        )
        .env(
            "ENATE_BRIDGE__AMQP__UNROUTED_EXCHANGE",
            &settings.amqp.unrouted_exchange,
        )
        .env("ENATE_BRIDGE__SPOOL__DIR", &settings.spool.dir)
        .env("ENATE_BRIDGE__LOG__FORMAT", "json")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(bridge.stdout.take().unwrap()).lines();
    let mut log = Vec::new();
    let ingress_port = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let entry: Value = serde_json::from_str(&line).expect("log lines are JSON");
            log.push(entry.clone());
            if entry["message"] == "enate-bridge listening" {
                return entry["ingress_port"].as_u64().unwrap();
            }
        }
        panic!("the bridge exited before listening: {log:?}");
    })
    .await
    .expect("the bridge starts listening");

    let response = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{ingress_port}/webhooks/PacketCreated"
        ))
        .header("X-Enate-Secret", SECRET)
        .body(json!({"ProcessType": 1}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let stopped_at = Instant::now();
    let pid = bridge.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(10), bridge.wait())
        .await
        .expect("the bridge exits after SIGTERM")
        .unwrap();
    while let Ok(Some(line)) = lines.next_line().await {
        log.push(serde_json::from_str(&line).unwrap_or(Value::String(line)));
    }
    delete_exchanges_and_queues(vec![
        settings.amqp.exchange.clone(),
        settings.amqp.quarantine_exchange.clone(),
        settings.amqp.unrouted_exchange.clone(),
    ]);
    let _ = std::fs::remove_dir_all(&settings.spool.dir);

    assert_eq!(status.code(), Some(0), "log: {log:#?}");
    assert!(stopped_at.elapsed() < Duration::from_secs(5));
    let messages: Vec<&str> = log.iter().filter_map(|e| e["message"].as_str()).collect();
    assert!(messages.contains(&"SIGTERM received"), "{messages:?}");
    assert!(
        messages.contains(&"closed the connection to RabbitMQ"),
        "{messages:?}"
    );
    let handled = log
        .iter()
        .find(|e| e["message"] == "webhook handled")
        .expect("one log line per request");
    assert_eq!(handled["webhook"], "PacketCreated");
    assert_eq!(handled["outcome"], "published");
    assert!(handled["duration_ms"].is_number());
    assert!(
        !log.iter().any(|e| e.to_string().contains(SECRET)),
        "the secret reached the log"
    );
}
