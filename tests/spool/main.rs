//! `enate-bridge spool list | export`: the real binary on a real spool
//! directory, with the bridge stopped and with it running on that spool.
//! The 100,000-record spool proves the commands stream: their peak memory
//! (the kernel's high-water mark, from /usr/bin/time) stays far below what
//! holding the records would take. A memory bound, not a speed assertion.

use std::{path::Path, process::Stdio, time::Duration};

use enate_bridge::spool::Spool;
use enate_bridge_test_support::{bridge::Bridge, eventually, init_suite, proxy::FaultProxy};
use futures::StreamExt;
use serde_json::Value;

const RECORDS: usize = 100_000;
/// Each record's body, so the spool holds ~110 MB.
const BODY_BYTES: usize = 1_000;

/// A record as a release before `spooled_because` wrote it: header line, body.
fn earlier_release_record(n: usize) -> Vec<u8> {
    let id = uuid::Uuid::from_u128(n as u128);
    let header = format!(
        r#"{{"spooled_at_ms":1767000000000,"message":{{"destination":"events","id":"{id}","webhook":"PacketUpdated","routing_key":"packet_updated.ticket.resolved","timestamp":1767000000,"headers":[["event","packet_updated"],["process_type","ticket"],["status","resolved"]],"content_type":"application/cloudevents+json"}}}}"#
    );
    let padding = "x".repeat(BODY_BYTES);
    let body = format!(r#"{{"id":"{id}","data":{{"reference":"R{n}","padding":"{padding}"}}}}"#);
    let mut record = header.into_bytes();
    record.push(b'\n');
    record.extend_from_slice(body.as_bytes());
    record
}

/// Runs `enate-bridge spool ARGS` under /usr/bin/time; stdout into `out`.
/// Returns the peak resident memory in KiB.
fn run_measured(dir: &Path, args: &[&str], out: &Path) -> u64 {
    let rss_file = out.with_extension("rss");
    let status = std::process::Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(env!("CARGO_BIN_EXE_enate-bridge"))
        .arg("spool")
        .args(args)
        .env("ENATE_BRIDGE__SPOOL__DIR", dir)
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(Stdio::inherit())
        .status()
        .expect("/usr/bin/time runs the binary");
    assert!(status.success(), "spool {args:?}: {status}");
    std::fs::read_to_string(&rss_file)
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_spool_of_100_000_records_is_listed_and_exported_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), u64::MAX).unwrap();
    for batch in 0..RECORDS / 1000 {
        let records = (batch * 1000..(batch + 1) * 1000)
            .map(earlier_release_record)
            .collect();
        spool.append(records).await.unwrap();
    }
    let spool_bytes = spool.stats().bytes;
    spool.close().await;
    drop(spool);

    let out = dir.path().join("list.jsonl");
    let list_kib = run_measured(dir.path(), &["list", "--json"], &out);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), RECORDS);
    let first: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["id"], uuid::Uuid::from_u128(0).to_string());
    assert_eq!(first["routing_key"], "packet_updated.ticket.resolved");
    assert_eq!(
        first["spooled_because"],
        Value::Null,
        "an earlier release's record"
    );
    assert!(first["age_seconds"].as_f64().unwrap() > 0.0);
    let last: Value = serde_json::from_str(lines[RECORDS - 1]).unwrap();
    assert_eq!(
        last["id"],
        uuid::Uuid::from_u128(RECORDS as u128 - 1).to_string()
    );
    drop(text);

    let out = dir.path().join("export.jsonl");
    let export_kib = run_measured(dir.path(), &["export"], &out);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), RECORDS);
    let line: Value = serde_json::from_str(text.lines().nth(7).unwrap()).unwrap();
    assert_eq!(line["body"]["data"]["reference"], "R7", "{line}");
    assert_eq!(line["message"]["headers"][2][1], "resolved", "{line}");
    // What publishing it by hand needs besides the headers: the bridge's own properties.
    assert_eq!(line["properties"]["delivery_mode"], 2, "{line}");
    assert_eq!(line["properties"]["message_id"], line["id"], "{line}");
    assert_eq!(line["properties"]["app_id"], "enate-bridge", "{line}");
    assert_eq!(
        line["properties"]["type"], "com.enate.webhook.packet_updated",
        "{line}"
    );

    // The binary's own footprint: the same command on an empty spool.
    let empty = tempfile::tempdir().unwrap();
    let baseline_kib = run_measured(empty.path(), &["list", "--json"], &empty.path().join("out"));
    // Holding the records would take at least the spool's bytes: what the
    // commands add to their footprint must stay far below that.
    let bound_kib = spool_bytes / 1024 / 5;
    eprintln!(
        "spool of {RECORDS} records, {} MiB: peak RSS list {} MiB, export {} MiB, \
         the same on an empty spool {} MiB (bound on the difference: {} MiB)",
        spool_bytes >> 20,
        list_kib >> 10,
        export_kib >> 10,
        baseline_kib >> 10,
        bound_kib >> 10
    );
    for (command, kib) in [("list", list_kib), ("export", export_kib)] {
        assert!(
            kib.saturating_sub(baseline_kib) < bound_kib,
            "{command} peaked at {kib} KiB, {baseline_kib} KiB on an empty spool"
        );
    }
}

#[tokio::test]
async fn records_spooled_by_a_running_bridge_are_listed_with_why_beside_it() {
    init_suite!("spool-report.txt");
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: every event is spooled.
    let broker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "amqp://guest:guest@127.0.0.1:{}/%2f",
        broker.local_addr().unwrap().port()
    );
    drop(broker);
    let mut bridge = Bridge::start(&url, dir.path()).await;
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for n in 0..3 {
        let answer: Value = client
            .post(bridge.webhook_url())
            .header("X-Enate-Secret", enate_bridge_test_support::bridge::SECRET)
            .body(format!(
                r#"{{"GUID":"5f0e7d1c-0000-4000-8000-00000000000{n}","ProcessType":2,"Status":4}}"#
            ))
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["status"], "spooled", "{answer}");
        ids.push(answer["event_ids"][0].as_str().unwrap().to_string());
    }

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_enate-bridge"))
        .args(["spool", "list", "--json"])
        .env("ENATE_BRIDGE__SPOOL__DIR", dir.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let listed: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(listed, ids, "{stdout}");
    assert_eq!(
        lines[0]["spooled_because"], "not connected to RabbitMQ",
        "{stdout}"
    );
    assert_eq!(lines[0]["webhook"], "PacketUpdated");

    let table = tokio::process::Command::new(env!("CARGO_BIN_EXE_enate-bridge"))
        .args(["spool", "list"])
        .env("ENATE_BRIDGE__SPOOL__DIR", dir.path())
        .output()
        .await
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains(&ids[2]) && table.contains("not connected to RabbitMQ"),
        "{table}"
    );
    bridge.stop_any_way().await;
}

/// What `spool list --json` prints for `dir` now, parsed; every line must be JSON.
async fn listed_now(dir: &Path) -> Vec<Value> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_enate-bridge"))
        .args(["spool", "list", "--json"])
        .env("ENATE_BRIDGE__SPOOL__DIR", dir)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[tokio::test]
async fn listings_taken_while_the_forwarder_drains_the_spool_are_consistent() {
    init_suite!("spool-report.txt");
    let amqp_url = std::env::var("ENATE_BRIDGE_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let proxy = FaultProxy::start(&amqp_url).await;
    proxy.cut();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("st-{}", uuid::Uuid::new_v4().simple());
    let (exchange, quarantine, unrouted) = (
        format!("{prefix}.enate"),
        format!("{prefix}.quarantine"),
        format!("{prefix}.unrouted"),
    );
    let mut bridge = Bridge::start_with(
        &proxy.url(),
        dir.path(),
        &[
            ("ENATE_BRIDGE__AMQP__EXCHANGE", &exchange),
            ("ENATE_BRIDGE__AMQP__QUARANTINE_EXCHANGE", &quarantine),
            ("ENATE_BRIDGE__AMQP__UNROUTED_EXCHANGE", &unrouted),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    // More than the forwarder removes at once (1,024), so some listings
    // fall between two of its removals.
    let url = bridge.webhook_url();
    let answers: Vec<Value> = futures::stream::iter(0..3000)
        .map(|n| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                client
                    .post(url)
                    .header("X-Enate-Secret", enate_bridge_test_support::bridge::SECRET)
                    .body(format!(
                        r#"{{"GUID":"5f0e7d1c-0000-4000-8000-{n:012}","ProcessType":2,"Status":4}}"#
                    ))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut ids = std::collections::BTreeSet::new();
    for answer in answers {
        assert_eq!(answer["status"], "spooled", "{answer}");
        ids.insert(answer["event_ids"][0].as_str().unwrap().to_string());
    }
    assert_eq!(listed_now(dir.path()).await.len(), ids.len());

    proxy.restore();
    // Listings while the forwarder removes what RabbitMQ confirmed: each one
    // a consistent snapshot, oldest first, of what was spooled.
    let mut listings = 0;
    let mut partial = 0;
    loop {
        let lines = listed_now(dir.path()).await;
        listings += 1;
        let keys: Vec<u64> = lines.iter().map(|l| l["key"].as_u64().unwrap()).collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "oldest first: {keys:?}"
        );
        for line in &lines {
            assert!(ids.contains(line["id"].as_str().unwrap()), "{line}");
        }
        if lines.is_empty() {
            break;
        }
        if lines.len() < ids.len() {
            partial += 1;
        }
        assert!(listings < 2000, "the spool never drained");
    }
    eprintln!("{listings} listings while the spool drained, {partial} of them partial");
    eventually(
        Duration::from_secs(30),
        "the bridge says the spool is empty",
        || async { bridge.spool().await.is_ok_and(|spool| spool["events"] == 0) },
    )
    .await;
    bridge.stop_any_way().await;
    if let Ok(connection) =
        lapin::Connection::connect(&amqp_url, lapin::ConnectionProperties::default()).await
    {
        let channel = connection.create_channel().await.unwrap();
        for name in [&quarantine, &unrouted] {
            let _ = channel
                .queue_delete(name.as_str().into(), Default::default())
                .await;
        }
        for name in [&exchange, &quarantine, &unrouted] {
            let _ = channel
                .exchange_delete(name.as_str().into(), Default::default())
                .await;
        }
        let _ = connection.close(200, "done".into()).await;
    }
}
