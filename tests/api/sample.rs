//! `enate-bridge send-sample`, the real binary, against a running bridge.

use std::process::Output;

use enate_bridge::webhook::Webhook;

use crate::helpers::{SECRET, json, spawn_app};

/// Runs the binary with only the environment given, so the caller's
/// ENATE_BRIDGE__* variables cannot change what the test means.
async fn send_sample(env: &[(&str, &str)], args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_enate-bridge"))
        .env_clear()
        .envs(env.iter().copied())
        .arg("send-sample")
        .args(args)
        .output()
        .await
        .expect("enate-bridge runs")
}

fn describe(output: &Output) -> String {
    format!(
        "exit {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn send_sample_posts_every_webhook_kind_and_each_becomes_a_clean_event() {
    let app = spawn_app().await;
    let queue = app.bind_queue("#").await;
    for webhook in Webhook::ALL {
        let url = format!("{}/webhooks/{}", app.address, webhook.event_name());
        let output = send_sample(
            &[("ENATE_BRIDGE__AUTH__SECRETS", SECRET)],
            &[
                "--webhook",
                webhook.enate_name(),
                "--count",
                "2",
                "--url",
                &url,
            ],
        )
        .await;
        let row = format!("{webhook}: {}", describe(&output));
        assert!(output.status.success(), "{row}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let answers: Vec<&str> = stdout.lines().collect();
        assert_eq!(answers.len(), 2, "one line per answer; {row}");
        for answer in answers {
            assert!(
                answer.starts_with("200 OK {") && answer.contains(r#""status":"published""#),
                "{row}"
            );
        }

        let events = [json(&queue.next().await), json(&queue.next().await)];
        assert_ne!(events[0]["id"], events[1]["id"], "two packets; {row}");
        for event in &events {
            assert_eq!(
                event["type"],
                format!("com.enate.webhook.{}", webhook.event_name()),
                "{row}"
            );
            let data = &event["data"];
            assert_eq!(data["warnings"], serde_json::json!([]), "{row}\n{event}");
            assert!(data["guid"].is_string(), "{row}\n{event}");
            match webhook {
                Webhook::PacketCreated | Webhook::PacketUpdated => {
                    assert!(data["reference"].is_string(), "{row}\n{event}");
                    assert!(data["process_type"].is_string(), "{row}\n{event}");
                }
                Webhook::NewCommunication => {
                    assert!(data["packet_guid"].is_string(), "{row}\n{event}");
                    assert!(data["communication_type"].is_string(), "{row}\n{event}");
                }
                _ => assert!(data["name"].is_string(), "{row}\n{event}"),
            }
        }
    }
    queue.assert_empty().await;
}

#[tokio::test]
async fn send_sample_derives_its_url_from_server_bind_and_sends_a_resolved_ticket_first() {
    let app = spawn_app().await;
    let queue = app.bind_queue("*.ticket.resolved").await;
    let bind = app.address.trim_start_matches("http://");
    let output = send_sample(
        &[
            ("ENATE_BRIDGE__AUTH__SECRETS", SECRET),
            ("ENATE_BRIDGE__SERVER__BIND", bind),
        ],
        &[],
    )
    .await;
    assert!(output.status.success(), "{}", describe(&output));
    let event = json(&queue.next().await);
    assert_eq!(event["type"], "com.enate.webhook.packet_updated");
    queue.assert_empty().await;
}

#[tokio::test]
async fn send_sample_exits_1_when_an_answer_is_not_2xx_or_nothing_answers() {
    let app = spawn_app().await;
    let url = format!("{}/webhooks/PacketUpdated", app.address);
    let output = send_sample(
        &[("ENATE_BRIDGE__AUTH__SECRETS", "not-the-secret")],
        &["--url", &url],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("401 Unauthorized"),
        "{}",
        describe(&output)
    );

    // A port nothing listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/webhooks/PacketUpdated");
    let output = send_sample(&[("ENATE_BRIDGE__AUTH__SECRETS", SECRET)], &["--url", &url]).await;
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("did not answer"),
        "{}",
        describe(&output)
    );
}
