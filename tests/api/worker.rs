//! The example consumer (worker/, a package of its own) against the bridge: it prints each
//! event once, drops a duplicate, rejects a poison message and stops on SIGTERM.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use lapin::{
    BasicProperties, Channel,
    options::{BasicPublishOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, ChildStdout, Command},
};

use crate::helpers::{FaultProxy, TestApp, amqp_url, delete_exchanges_and_queues, spawn_app};

/// The example worker's binary (target/<profile>/worker, beside this test's deps/
/// folder). `cargo test` at the root builds it with the workspace; when the tests
/// were built without it (`cargo test --test api`), or the binary is older than
/// its source, it is built here.
fn worker_binary() -> PathBuf {
    let test_exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = test_exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps/");
    let binary = profile_dir.join(format!("worker{}", std::env::consts::EXE_SUFFIX));
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("worker/src/main.rs");
    let modified = |path: &Path| path.metadata().and_then(|m| m.modified()).ok();
    if modified(&binary).is_none() || modified(&binary) < modified(&source) {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "enate-bridge-worker"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "`cargo build -p enate-bridge-worker` failed"
        );
    }
    binary
}

/// Deletes the test's queue when the test ends, even in a panic.
struct DeleteQueue(String);

impl Drop for DeleteQueue {
    fn drop(&mut self) {
        delete_exchanges_and_queues(vec![self.0.clone()]);
    }
}

/// The next line of the worker's standard output, waiting up to 10 s for it;
/// without one, the test fails with the worker's standard error.
async fn next_line(worker: &mut Child, lines: &mut Lines) -> String {
    match tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await {
        Ok(Ok(Some(line))) => line,
        outcome => {
            let _ = worker.start_kill();
            panic!(
                "no line from the worker ({outcome:?}); its stderr:\n{}",
                stderr_of(worker).await
            );
        }
    }
}

async fn stderr_of(worker: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = worker.stderr.take() {
        let _ = stderr.read_to_string(&mut text).await;
    }
    text
}

/// A quorum queue, as in docker-compose (and so durable and non-exclusive: the
/// worker consumes it from its own connection), bound to the app's exchange with
/// `#`. Its arguments are its own: the worker must consume it without declaring it.
async fn worker_queue(app: &TestApp) -> (Channel, String, DeleteQueue) {
    let queue = format!("{}.worker", app.exchange);
    let cleanup = DeleteQueue(queue.clone());
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    // Gone two minutes after its last use, should the cleanup not run.
    arguments.insert("x-expires".into(), AMQPValue::LongUInt(120_000));
    let options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let declared = app
        .declare_bound_queue(&queue, options, arguments, "#")
        .await;
    (declared.channel, queue, cleanup)
}

type Lines = tokio::io::Lines<BufReader<ChildStdout>>;

fn start_worker(amqp_url: &str, queue: &str) -> (Child, Lines) {
    let mut worker = Command::new(worker_binary())
        .env("AMQP_URL", amqp_url)
        .env("QUEUE", queue)
        .env("PREFETCH", "8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the worker starts");
    let lines = BufReader::new(worker.stdout.take().unwrap()).lines();
    (worker, lines)
}

/// POSTs a PacketUpdated and returns its event id.
async fn post_event(app: &TestApp, body: &Value) -> String {
    let response = app.post_json("PacketUpdated", body).await;
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    answer["event_ids"][0].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_worker_prints_each_event_once_rejects_a_poison_message_and_stops_on_sigterm() {
    let app = spawn_app().await;
    let (channel, queue, _cleanup) = worker_queue(&app).await;

    // A message that is not an event, first in the queue.
    channel
        .basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            b"not an event",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    let first = json!({
        "GUID": "11111111-1111-4111-8111-111111111111",
        "Reference": "100001-T",
        "ProcessType": 2,
        "Status": 4
    });
    let second = json!({
        "GUID": "22222222-2222-4222-8222-222222222222",
        "Reference": "100002-C",
        "ProcessType": 1,
        "Status": 1
    });
    let tap = app.bind_queue("#").await;
    let first_id = post_event(&app, &first).await;
    // Enate sending the same body again: the same event id. The bridge may drop
    // it itself or publish it again; either way the worker prints it once.
    let again = app.post_json("PacketUpdated", &first).await;
    assert!(again.status().is_success(), "{}", again.status());
    // A duplicate the bridge cannot catch (a redelivery, another bridge replica):
    // the same message again, straight into the queue.
    let original = tap.next().await;
    channel
        .basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            &original.data,
            original.properties.clone(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let second_id = post_event(&app, &second).await;
    let ids = [first_id, second_id];

    let (mut worker, mut lines) = start_worker(&amqp_url(), &queue);

    // One queue, one consumer: the messages come in order, so when the second
    // event is printed the duplicates before it have been handled.
    let line = next_line(&mut worker, &mut lines).await;
    assert!(
        line.contains(" com.enate.webhook.packet_updated ")
            && line.contains("subject=11111111-1111-4111-8111-111111111111")
            && line.contains("reference=100001-T")
            && line.contains(" ticket/resolved ")
            && line.ends_with(&format!("id={}", ids[0])),
        "first event line: {line}"
    );
    let line = next_line(&mut worker, &mut lines).await;
    assert!(
        line.contains("reference=100002-C")
            && line.contains(" case/to_do ")
            && line.ends_with(&format!("id={}", ids[1])),
        "second event line: {line}"
    );

    // SIGTERM: a clean exit, nothing more printed.
    let pid = worker.id().expect("the worker runs").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), worker.wait())
        .await
        .expect("the worker exits within 10 s of SIGTERM")
        .unwrap();
    let stderr = stderr_of(&mut worker).await;
    assert!(status.success(), "worker exit {status}; stderr:\n{stderr}");
    let mut rest = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        rest.push(line);
    }
    assert!(
        rest.is_empty(),
        "exactly two event lines, but also: {rest:?}\nstderr:\n{stderr}"
    );
    assert_eq!(
        stderr.matches("rejected message").count(),
        1,
        "the poison message is rejected once, not requeued: {stderr}"
    );
    assert!(
        stderr.contains(&format!("duplicate {} skipped", ids[0])),
        "the duplicate is dropped: {stderr}"
    );

    // Everything was acked or rejected: nothing is left, nothing came back.
    let left = channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(left.message_count(), 0, "messages left in the queue");
}

#[tokio::test]
async fn the_worker_reconnects_after_its_connection_is_cut() {
    let app = spawn_app().await;
    let (_channel, queue, _cleanup) = worker_queue(&app).await;
    let proxy = FaultProxy::start(&amqp_url()).await;
    let (mut worker, mut lines) = start_worker(&proxy.url(), &queue);

    let before = post_event(
        &app,
        &json!({"GUID": "33333333-3333-4333-8333-333333333333", "Status": 2}),
    )
    .await;
    assert!(
        next_line(&mut worker, &mut lines)
            .await
            .ends_with(&format!("id={before}"))
    );

    // The broker gone for a second; the event published meanwhile waits in the queue.
    proxy.cut();
    let during = post_event(
        &app,
        &json!({"GUID": "44444444-4444-4444-8444-444444444444", "Status": 3}),
    )
    .await;
    // The outage's length, the subject here (the worker must meet it and
    // reconnect), not a wait for something.
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.restore();
    let line = next_line(&mut worker, &mut lines).await;
    assert!(line.ends_with(&format!("id={during}")), "{line}");
    let _ = worker.start_kill();
    let stderr = stderr_of(&mut worker).await;
    assert!(stderr.contains("reconnecting in"), "{stderr}");
}
