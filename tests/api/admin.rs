//! The admin listener: /metrics, /healthz, /readyz, and the healthcheck command.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::helpers::{metric_value, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_ok_and_readyz_is_ready_once_connected() {
    let app = spawn_app().await;
    let health = app.get_admin("/healthz").await;
    assert_eq!(health.status(), 200);
    let ready = app.get_admin("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["accepting_into"], "broker");
    assert_eq!(body["broker"], json!({"status": "connected"}));
    assert_eq!(body["spool"]["mode"], "on_failure");
    assert_eq!(body["spool"]["events"], 0);
    assert_eq!(body["spool"]["writable"], true);
    assert_eq!(app.get_admin("/nothing-here").await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_count_what_happened() {
    let app = spawn_app().await;
    for reference in ["1-T", "2-T"] {
        let body = json!({"ProcessType": 2, "Status": 4, "Reference": reference});
        app.post_json("PacketUpdated", &body).await;
    }
    app.post_webhook("NewCommunication", "not json").await;
    app.client
        .post(format!("{}/webhooks/PacketCreated", app.address))
        .body("{}")
        .send()
        .await
        .unwrap();

    let response = app.get_admin("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let metrics = response.text().await.unwrap();

    let expected = [
        (
            r#"enate_bridge_webhooks_total{outcome="published",webhook="PacketUpdated"}"#,
            2.0,
        ),
        (
            r#"enate_bridge_webhooks_total{outcome="quarantined",webhook="NewCommunication"}"#,
            1.0,
        ),
        (
            r#"enate_bridge_webhooks_total{outcome="unauthorized",webhook="PacketCreated"}"#,
            1.0,
        ),
        (
            r#"enate_bridge_events_published_total{event="packet_updated",process_type="ticket",status="resolved"}"#,
            2.0,
        ),
        ("enate_bridge_publish_confirm_seconds_count", 3.0),
        (
            r#"enate_bridge_request_duration_seconds_count{webhook="PacketUpdated"}"#,
            2.0,
        ),
        ("enate_bridge_amqp_connected", 1.0),
        ("enate_bridge_amqp_blocked", 0.0),
        ("enate_bridge_in_flight_requests", 0.0),
        (r#"enate_bridge_publish_failures_total{reason="nack"}"#, 0.0),
        (r#"enate_bridge_build_info{version="0.1.0"}"#, 1.0),
    ];
    for (series, value) in expected {
        assert_eq!(metric_value(&metrics, series), value, "{series}");
    }
    // The stages of the three requests that got past authentication, each
    // with one message; nothing was spooled.
    let stage = |stage: &str, part: &str| {
        metric_value(
            &metrics,
            &format!(r#"enate_bridge_request_stage_seconds_{part}{{stage="{stage}"}}"#),
        )
    };
    let stages = [
        "body_read",
        "admission",
        "normalize",
        "lane_wait",
        "send",
        "confirm",
        "reply",
    ];
    for name in stages {
        assert_eq!(stage(name, "count"), 3.0, "stage {name}");
    }
    assert_eq!(stage("spool_write", "count"), 0.0);
    let confirms = metric_value(&metrics, "enate_bridge_publish_confirm_seconds_sum");
    assert!(
        (stage("confirm", "sum") - confirms).abs() < 1e-9,
        "the confirm stage is the confirm histogram: {} vs {confirms}",
        stage("confirm", "sum")
    );
    // Every stage lies within its request, so together they cannot take longer.
    let stages_sum: f64 = stages.iter().map(|name| stage(name, "sum")).sum();
    let requests_sum: f64 = ["PacketUpdated", "NewCommunication", "PacketCreated"]
        .iter()
        .map(|webhook| {
            metric_value(
                &metrics,
                &format!(r#"enate_bridge_request_duration_seconds_sum{{webhook="{webhook}"}}"#),
            )
        })
        .sum();
    assert!(
        stages_sum > 0.0 && stages_sum <= requests_sum,
        "stages {stages_sum} s, requests {requests_sum} s"
    );
    for family in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }

    let mut promtool = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/test installs it with Debian's prometheus package)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .await
        .unwrap();
    let output = promtool.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_healthcheck_command_follows_readyz() {
    let mut app = spawn_app().await;
    let healthcheck = |url: String| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_enate-bridge"))
            .args(["healthcheck", "--url", &url])
            .env("ENATE_BRIDGE__AUTH__ALLOW_UNAUTHENTICATED", "true")
            .output()
            .await
            .unwrap()
            .status
            .code()
    };
    let readyz = format!("{}/readyz", app.admin_address);
    assert_eq!(healthcheck(readyz.clone()).await, Some(0));
    app.stop().await.unwrap();
    assert_eq!(healthcheck(readyz).await, Some(1));
}

/// The image's HEALTHCHECK runs where there may be no CA certificates at all,
/// and a probe of a dead port must say why it failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_healthcheck_needs_no_trust_store_and_names_the_cause() {
    let app = spawn_app().await;
    let healthcheck = |url: String| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_enate-bridge"))
            .args(["healthcheck", "--url", &url])
            .env("ENATE_BRIDGE__AUTH__ALLOW_UNAUTHENTICATED", "true")
            // What a distroless image without ca-certificates looks like to
            // the platform verifier: no system trust store anywhere.
            .env("SSL_CERT_FILE", "/nonexistent/ca-certificates.crt")
            .env("SSL_CERT_DIR", "/nonexistent")
            .output()
            .await
            .unwrap()
    };
    let ready = healthcheck(format!("{}/readyz", app.admin_address)).await;
    assert_eq!(
        ready.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ready.stderr)
    );
    // A port nothing listens on: bound, then dropped.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let dead = healthcheck(format!("http://127.0.0.1:{port}/readyz")).await;
    assert_eq!(dead.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&dead.stderr);
    assert!(
        stderr.to_lowercase().contains("connection refused"),
        "the cause is named: {stderr}"
    );
}
