//! What the binary writes to standard output, as a container runtime or a pipe
//! receives it.

use std::{process::Stdio, time::Duration};

use tokio::io::{AsyncBufReadExt, BufReader};

/// Text logs colour only at a terminal: a pipe (this test's, a container's log,
/// `| grep`) gets no escape codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_into_a_pipe_carry_no_colour_codes() {
    // A port nothing listens on: the bridge starts and spools, logging a
    // warning about the broker and the line that says it listens.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = free.local_addr().unwrap().port();
    drop(free);
    let spool = tempfile::tempdir().unwrap();
    let mut bridge = tokio::process::Command::new(env!("CARGO_BIN_EXE_enate-bridge"))
        .arg("serve")
        .env("ENATE_BRIDGE__AUTH__SECRETS", "log-test-secret")
        .env("ENATE_BRIDGE__SERVER__BIND", "127.0.0.1:0")
        .env("ENATE_BRIDGE__ADMIN__BIND", "127.0.0.1:0")
        .env(
            "ENATE_BRIDGE__AMQP__URLS",
            format!("amqp://guest:guest@127.0.0.1:{dead_port}/%2f"),
        )
        .env("ENATE_BRIDGE__SPOOL__DIR", spool.path())
        .env("ENATE_BRIDGE__LOG__FORMAT", "text")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(bridge.stdout.take().unwrap()).lines();
    let log = tokio::time::timeout(Duration::from_secs(15), async {
        let mut log = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            let listening = line.contains("enate-bridge listening");
            log.push(line);
            if listening {
                return log;
            }
        }
        panic!("the bridge exited before listening: {log:?}");
    })
    .await
    .expect("the bridge starts listening");
    assert!(
        log.iter().any(|line| line.contains("WARN")),
        "the broker's warning is logged: {log:?}"
    );
    assert!(
        log.iter().all(|line| !line.contains('\u{1b}')),
        "no escape codes: {log:?}"
    );
    assert!(
        log.iter().all(|line| !line.contains("actix_server")),
        "the web server's own start-up lines are left out: {log:?}"
    );
    bridge.kill().await.unwrap();
}
