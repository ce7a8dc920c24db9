//! The HTTPS ingress (server.tls) over real TLS: webhooks published, what a
//! plain-HTTP or silent client gets, and the certificate replaced on disk
//! while connections are open.

use std::time::{Duration, Instant};

use enate_bridge_test_support::eventually;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{
    SECRET, TestApp, json, metric_value,
    tls::{NAMES, TlsFiles, leaf_of, spawn_tls_app_with},
};

fn ticket(reference: &str) -> Value {
    json!({
        "GUID": "5f0e7d1c-0000-4000-8000-000000000001",
        "Reference": reference,
        "ProcessType": 2,
        "Status": 4,
    })
}

/// `enate_bridge_tls_certificate_reloads_total` of this result.
async fn reloads(app: &TestApp, result: &str) -> f64 {
    metric_value(
        &app.metrics().await,
        &format!(r#"enate_bridge_tls_certificate_reloads_total{{result="{result}"}}"#),
    )
}

/// Writes a webhook's headers, declaring `length` body bytes, and `body`.
async fn write_request(stream: &mut (impl AsyncWrite + Unpin), length: usize, body: &[u8]) {
    let head = format!(
        "POST /webhooks/PacketUpdated HTTP/1.1\r\nHost: localhost\r\nX-Enate-Secret: {SECRET}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    stream.flush().await.unwrap();
}

/// Reads until the peer closes the connection; how long that took.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let _ = tokio::time::timeout(within, stream.read_to_end(&mut received))
        .await
        .expect("the bridge closes the connection in time");
    (received, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_over_https_is_published_and_answered_200() {
    let files = TlsFiles::new();
    let app = spawn_tls_app_with(&files, |_| {}).await;
    assert!(app.address.starts_with("https://"), "{}", app.address);
    let queue = app.bind_queue("#").await;

    let response = app.post_json("PacketUpdated", &ticket("tls-1")).await;

    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["status"], "published", "{answer}");
    let event = json(&queue.next().await);
    assert_eq!(event["data"]["reference"], "tls-1", "{event}");
    let metrics = app.metrics().await;
    let not_after = metric_value(
        &metrics,
        "enate_bridge_tls_certificate_not_after_timestamp_seconds",
    );
    let in_a_month = (jiff::Timestamp::now().as_second() + 30 * 24 * 3600) as f64;
    assert!(not_after > in_a_month, "{metrics}");
    assert!(
        metrics.contains(r#"enate_bridge_tls_certificate_reloads_total{result="failed"} 0"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_certificate_gets_no_answer_and_nothing_is_published() {
    let files = TlsFiles::new();
    let app = spawn_tls_app_with(&files, |_| {}).await;
    let queue = app.bind_queue("#").await;
    let stranger = TlsFiles::new().reqwest_client();

    let error = stranger
        .post(format!("{}/webhooks/PacketUpdated", app.address))
        .header("X-Enate-Secret", SECRET)
        .body(ticket("untrusted").to_string())
        .send()
        .await
        .expect_err("a certificate of another CA is refused by the client");

    assert!(error.is_connect(), "{error:?}");
    queue.assert_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_the_https_port_is_closed_and_webhooks_keep_working() {
    let files = TlsFiles::new();
    let app = spawn_tls_app_with(&files, |_| {}).await;
    let queue = app.bind_queue("#").await;

    let mut plain = TcpStream::connect(("127.0.0.1", app.ingress_port))
        .await
        .unwrap();
    let body = ticket("plain").to_string();
    write_request(&mut plain, body.len(), body.as_bytes()).await;
    let (received, _) = closed_within(&mut plain, Duration::from_secs(10)).await;

    // No HTTP answer comes back in clear (at most a TLS alert record), and nothing is published.
    assert!(
        !received.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&received)
    );
    queue.assert_empty().await;
    let response = app.post_json("PacketUpdated", &ticket("after-plain")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        json(&queue.next().await)["data"]["reference"],
        "after-plain"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_never_completes_is_cut_at_the_handshake_deadline() {
    let files = TlsFiles::new();
    // 4 s: longer than actix-web's own default (3 s), so a close before it
    // would show the setting is not applied; the body deadline is far longer.
    let app = spawn_tls_app_with(&files, |settings| {
        settings.server.tls.handshake_timeout_secs = 4;
        settings.server.body_timeout_secs = 60;
    })
    .await;
    // A record header announcing a ClientHello of 512 bytes, and 5 of them.
    let partial_client_hello: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03];
    let cut = |case: &'static str, bytes: &'static [u8]| async move {
        let mut stream = TcpStream::connect(("127.0.0.1", app.ingress_port))
            .await
            .unwrap();
        stream.write_all(bytes).await.unwrap();
        let (received, took) = closed_within(&mut stream, Duration::from_secs(20)).await;
        assert!(
            took >= Duration::from_millis(3900),
            "{case}: closed after {took:?}, before the 4 s handshake deadline"
        );
        assert!(
            !received.starts_with(b"HTTP/"),
            "{case}: {}",
            String::from_utf8_lossy(&received)
        );
    };
    let waiting = async {
        // Meanwhile, a webhook gets through.
        let response = app
            .post_json("PacketUpdated", &ticket("beside-silent"))
            .await;
        assert_eq!(response.status(), 200);
    };
    tokio::join!(
        cut("silent", &[]),
        cut("partial ClientHello", partial_client_hello),
        waiting
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_certificate_is_served_to_new_connections_while_a_request_in_flight_finishes() {
    let files = TlsFiles::new();
    let app = spawn_tls_app_with(&files, |_| {}).await;
    let queue = app.bind_queue("#").await;
    let (mut old, served) = files.connect(app.ingress_port).await;
    assert_eq!(served, leaf_of(&files.first));
    // A request in flight on the old connection: headers and half its body.
    let body = ticket("in-flight").to_string();
    let half = body.len() / 2;
    write_request(&mut old, body.len(), &body.as_bytes()[..half]).await;

    let renewed = files.ca.server(NAMES);
    files.replace(&renewed);

    eventually(
        Duration::from_secs(10),
        "new handshakes to get the renewed certificate",
        || async {
            let (_, served) = files.connect(app.ingress_port).await;
            (served == leaf_of(&renewed))
                .then_some(())
                .ok_or("the old one")
        },
    )
    .await;
    old.write_all(&body.as_bytes()[half..]).await.unwrap();
    old.flush().await.unwrap();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), old.read(&mut answer))
        .await
        .expect("the request in flight is answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(json(&queue.next().await)["data"]["reference"], "in-flight");
    assert_eq!(reloads(&app, "ok").await, 1.0);
    assert_eq!(reloads(&app, "failed").await, 0.0);
    let response = app.post_json("PacketUpdated", &ticket("renewed")).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_replacement_keeps_the_old_certificate_and_is_counted() {
    let files = TlsFiles::new();
    let app = spawn_tls_app_with(&files, |_| {}).await;
    let other = files.ca.server(NAMES);
    // Cases a renewal gone wrong leaves: a truncated certificate, and a new
    // certificate with the old key.
    let first_cert = files.first.cert_pem.as_bytes();
    let cases: [(&str, &[u8], &[u8]); 2] = [
        (
            "truncated certificate",
            &first_cert[..first_cert.len() / 2],
            files.first.key_pem.as_bytes(),
        ),
        (
            "key of another certificate",
            first_cert,
            other.key_pem.as_bytes(),
        ),
    ];
    for (number, (case, cert, key)) in cases.into_iter().enumerate() {
        files.replace_with(cert, key);
        let wanted = (number + 1) as f64;
        eventually(
            Duration::from_secs(10),
            format_args!("{case}: counted"),
            || async {
                let failed = reloads(&app, "failed").await;
                (failed == wanted).then_some(()).ok_or(failed)
            },
        )
        .await;
        let (_, served) = files.connect(app.ingress_port).await;
        assert_eq!(served, leaf_of(&files.first), "{case}");
        let response = app
            .post_json("PacketUpdated", &ticket(&format!("broken-{number}")))
            .await;
        assert_eq!(response.status(), 200, "{case}");
    }
    assert_eq!(reloads(&app, "ok").await, 0.0);
    // Put right, the pair is served again (and counted ok).
    files.replace(&other);
    eventually(
        Duration::from_secs(10),
        "the repaired pair served",
        || async {
            let (_, served) = files.connect(app.ingress_port).await;
            (served == leaf_of(&other))
                .then_some(())
                .ok_or("still the first")
        },
    )
    .await;
    assert_eq!(reloads(&app, "ok").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_request_reads_the_files_at_once() {
    let files = TlsFiles::new();
    let app = spawn_tls_app_with(&files, |_| {}).await;
    let reload = app.certificate_reload.clone().expect("TLS is on");

    // Unchanged files: the poll would never load them, a request does.
    reload.request();

    eventually(Duration::from_secs(10), "the requested reload", || async {
        let ok = reloads(&app, "ok").await;
        (ok == 1.0).then_some(()).ok_or(ok)
    })
    .await;
    let (_, served) = files.connect(app.ingress_port).await;
    assert_eq!(served, leaf_of(&files.first));
}
