//! The hostile catalogue: what an attacker, a stalled proxy or a buggy sender
//! can do to the bridge, run against a live bridge while legitimate webhooks
//! keep arriving, with the bridge's memory read from /proc all along.
//!
//! Probes (each a row of the table it prints):
//!   slow-bodies    N connections with the secret, each declaring a 100 KB body
//!                  and sending 1 byte/s, held for a while; legitimate webhooks
//!                  arrive meanwhile (20/s, fresh connections): their statuses
//!                  and latency;
//!   short-body     a Content-Length 100 bytes longer than the body sent: the
//!                  answer and how long it took (30 s at most);
//!   array-1mb      one ~1 MB body that is an array of 100k tiny distinct
//!                  objects, then two at once: statuses, durations, RSS after,
//!                  and a legitimate webhook's latency meanwhile;
//!   connect-drop   N connections opened and dropped at once;
//!   idle-keepalive N keep-alive connections, each idle after one request,
//!                  while legitimate webhooks arrive;
//!   refusal-flood  wrong-secret requests at max rate over 64 keep-alive
//!                  connections: requests/s and log bytes per 1,000 refusals;
//!   malformed      a burst of malformed requests: their statuses and the log
//!                  lines they caused at ERROR.
//! With `--tls-ca FILE` (the bridge serves HTTPS with a certificate that CA
//! signed, for localhost), the legitimate webhooks go over TLS and the probes
//! are the TLS ones instead:
//!   tls-silent     N connections that open TCP and send nothing, held while
//!                  legitimate webhooks arrive: how they end (the handshake
//!                  deadline), the legitimate statuses and latency;
//!   tls-partial    the same, each sending the first bytes of a ClientHello;
//!   tls-idle       N full handshakes, then nothing (no request);
//!   plain-to-tls   plain-HTTP webhooks to the TLS port, 64 at a time: what
//!                  they get (never an HTTP answer), nothing published.
//! Then the bridge is left idle (60 s, or 10 s with `--short`) and its RSS read
//! again: idle before, peak during (VmHWM), and after, against the targets.
//!
//! Every legitimate webhook answered 200 must reach `--queue` (bound here to
//! `--exchange` with `packet_updated.#`; the hostile bodies go to other
//! webhooks): a lost one makes the exit code 1. Targets are reported, not
//! asserted. `scripts/hostile` starts the bridge and runs this; `--help` lists
//! the options.

mod bench_support;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use bench_support::status_kib;
use clap::Parser;
use hdrhistogram::Histogram;
use lapin::{
    Connection, ConnectionProperties,
    options::{QueueBindOptions, QueueDeclareOptions, QueuePurgeOptions},
    types::FieldTable,
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
    sync::watch,
    task::JoinSet,
};
use uuid::Uuid;

#[derive(Debug, Parser)]
struct Cli {
    /// The bridge's ingress, host:port.
    #[arg(long)]
    addr: String,
    /// The bridge's admin listener, host:port (for /spool).
    #[arg(long)]
    admin: String,
    /// The bridge's X-Enate-Secret.
    #[arg(long)]
    secret: String,
    /// The bridge's process id, whose memory is read from /proc.
    #[arg(long)]
    pid: u32,
    /// The file the bridge's standard output goes to.
    #[arg(long)]
    log: PathBuf,
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    /// The bridge's events exchange.
    #[arg(long)]
    exchange: String,
    /// A queue for the legitimate events, declared and bound here.
    #[arg(long)]
    queue: String,
    /// A few seconds per probe and fewer connections: a smoke run.
    #[arg(long)]
    short: bool,
    /// Seconds the bridge is left idle after the catalogue before RSS is read.
    #[arg(long)]
    settle: Option<u64>,
    /// Where to write the result as JSON.
    #[arg(long)]
    out: PathBuf,
    /// The bridge serves HTTPS with a certificate signed by this CA (PEM, for
    /// localhost): run the TLS probes, the legitimate webhooks over TLS.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
}

/// What the probes share.
struct Run {
    addr: String,
    secret: String,
    pid: u32,
    log: PathBuf,
    short: bool,
    /// Legitimate webhooks answered 200: what the queue must hold.
    legit_ok: AtomicU64,
    /// With `--tls-ca`: how legitimate webhooks connect.
    tls: Option<tokio_rustls::TlsConnector>,
}

const PEAK_TARGET_MIB: f64 = 256.0;
const SETTLED_TARGET_RATIO: f64 = 1.5;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let run = Arc::new(Run {
        addr: cli.addr.clone(),
        secret: cli.secret.clone(),
        pid: cli.pid,
        log: cli.log.clone(),
        short: cli.short,
        legit_ok: AtomicU64::new(0),
        tls: cli.tls_ca.as_deref().map(tls_connector).transpose()?,
    });
    let amqp = Connection::connect(&cli.amqp_url, ConnectionProperties::default())
        .await
        .context("connecting to RabbitMQ")?;
    let channel = amqp.create_channel().await?;
    channel
        .queue_declare(
            cli.queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            cli.queue.as_str().into(),
            cli.exchange.as_str().into(),
            "packet_updated.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("binding {} to {}", cli.queue, cli.exchange))?;

    let idle_kib = rss_kib(run.pid);
    eprintln!(
        "hostile: bridge idle at {:.1} MiB",
        idle_kib as f64 / 1024.0
    );
    let mut rows = Vec::new();
    let plain_probes: [(&str, ProbeFn); 7] = [
        ("slow-bodies", |run| Box::pin(slow_bodies(run))),
        ("short-body", |run| Box::pin(short_body(run))),
        ("array-1mb", |run| Box::pin(big_arrays(run))),
        ("connect-drop", |run| Box::pin(connect_drop(run))),
        ("idle-keepalive", |run| Box::pin(idle_keepalive(run))),
        ("refusal-flood", |run| Box::pin(refusal_flood(run))),
        ("malformed", |run| Box::pin(malformed(run))),
    ];
    let tls_probes: [(&str, ProbeFn); 4] = [
        ("tls-silent", |run| Box::pin(tls_held(run, TlsHold::Silent))),
        ("tls-partial", |run| {
            Box::pin(tls_held(run, TlsHold::PartialHello))
        }),
        ("tls-idle", |run| {
            Box::pin(tls_held(run, TlsHold::IdleAfterHandshake))
        }),
        ("plain-to-tls", |run| Box::pin(plain_to_tls(run))),
    ];
    let probes: &[(&str, ProbeFn)] = match run.tls {
        Some(_) => &tls_probes,
        None => &plain_probes,
    };
    for &(name, probe) in probes {
        eprintln!("hostile: {name}");
        let started = Instant::now();
        let mut row = probe(run.clone()).await;
        row["probe"] = json!(name);
        row["seconds"] = json!(round(started.elapsed().as_secs_f64()));
        row["rss_after_mib"] = json!(round(rss_kib(run.pid) as f64 / 1024.0));
        eprintln!("hostile: {name}: {row}");
        rows.push(row);
    }

    let peak_kib = status_kib(run.pid, "VmHWM").unwrap_or(0);
    let settle = cli.settle.unwrap_or(if cli.short { 10 } else { 60 });
    eprintln!("hostile: catalogue done; the bridge is left idle for {settle} s");
    let mut settling = Vec::new();
    for second in 0..=settle {
        if second % 5 == 0 {
            settling.push(json!([second, rss_kib(run.pid)]));
        }
        if second < settle {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    let settled_kib = rss_kib(run.pid);

    // Events spooled during the catalogue are forwarded before the count.
    let spool_left = wait_for_empty_spool(&cli.admin, Duration::from_secs(300)).await;
    let queued = channel
        .queue_purge(cli.queue.as_str().into(), QueuePurgeOptions::default())
        .await?;
    let _ = amqp.close(200, "done".into()).await;
    let answered = run.legit_ok.load(Ordering::Relaxed);
    let lost = answered.saturating_sub(u64::from(queued));

    let idle = idle_kib as f64 / 1024.0;
    let peak = peak_kib as f64 / 1024.0;
    let settled = settled_kib as f64 / 1024.0;
    // The first probe holds connections while legitimate webhooks arrive:
    // slow bodies, or with TLS the silent handshakes.
    let slow = &rows[0];
    let first = if run.tls.is_some() {
        "silent handshakes"
    } else {
        "slow bodies"
    };
    let targets = json!([
        target(
            &format!("{first}: 0 legitimate 503s"),
            slow["legit_statuses"]["503"].as_u64().unwrap_or(0) == 0,
            format!(
                "{} x 503",
                slow["legit_statuses"]["503"].as_u64().unwrap_or(0)
            ),
        ),
        target(
            &format!("{first}: legitimate p99 under 100 ms"),
            slow["legit_p99_ms"].as_f64().is_some_and(|p99| p99 < 100.0),
            format!("p99 {} ms", slow["legit_p99_ms"]),
        ),
        target(
            "RSS never over 256 MiB",
            peak <= PEAK_TARGET_MIB,
            format!("peak {peak:.1} MiB"),
        ),
        target(
            "RSS within 1.5 x idle after the load",
            settled <= idle * SETTLED_TARGET_RATIO,
            format!(
                "{settled:.1} MiB after {settle} s = {:.2} x idle {idle:.1} MiB",
                settled / idle
            ),
        ),
    ]);
    let result = json!({
        "short": cli.short,
        "probes": rows,
        "rss_mib": {"idle": round(idle), "peak": round(peak), "settled": round(settled), "settle_s": settle},
        "settling_kib": settling,
        "targets": targets,
        "legit": {"answered_200": answered, "queued": queued, "lost": lost, "spool_left": spool_left},
    });
    print_table(&result);
    if let Some(dir) = cli.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&cli.out, serde_json::to_string_pretty(&result)?)?;
    if lost > 0 {
        anyhow::bail!(
            "LEGITIMATE EVENTS LOST: {answered} answered 200, {queued} in the queue (spool: {spool_left:?} left)"
        );
    }
    Ok(())
}

type ProbeFn = fn(Arc<Run>) -> std::pin::Pin<Box<dyn Future<Output = Value> + Send>>;

fn target(what: &str, met: bool, measured: String) -> Value {
    json!({"target": what, "pass": met, "measured": measured})
}

fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS").unwrap_or(0)
}

fn print_table(result: &Value) {
    println!();
    println!("{:<15} {:<52} key number", "probe", "statuses seen");
    for row in result["probes"].as_array().into_iter().flatten() {
        println!(
            "{:<15} {:<52} {}",
            row["probe"].as_str().unwrap_or(""),
            row["statuses"].as_str().unwrap_or(""),
            row["key"].as_str().unwrap_or(""),
        );
    }
    let rss = &result["rss_mib"];
    println!(
        "{:<15} {:<52} idle {} MiB, peak {} MiB, {} s after {} MiB",
        "rss", "", rss["idle"], rss["peak"], rss["settle_s"], rss["settled"]
    );
    let legit = &result["legit"];
    println!(
        "{:<15} {:<52} {} answered 200, {} queued, {} lost",
        "legit events", "", legit["answered_200"], legit["queued"], legit["lost"]
    );
    println!();
    for target in result["targets"].as_array().into_iter().flatten() {
        println!(
            "{:<4} {:<45} {}",
            if target["pass"] == true {
                "PASS"
            } else {
                "MISS"
            },
            target["target"].as_str().unwrap_or(""),
            target["measured"].as_str().unwrap_or(""),
        );
    }
}

// --- requests -----------------------------------------------------------------

/// Counts of outcomes ("200", "503", "timeout", "closed", ...), printed in a row.
#[derive(Default)]
struct Outcomes(BTreeMap<String, u64>);

impl Outcomes {
    fn add(&mut self, outcome: &str) {
        *self.0.entry(outcome.to_string()).or_default() += 1;
    }

    fn text(&self) -> String {
        self.0
            .iter()
            .map(|(outcome, count)| format!("{count} x {outcome}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn json(&self) -> Value {
        json!(self.0)
    }
}

/// A PacketUpdated webhook as Enate sends it (one object), unique by GUID.
fn legit_body() -> Vec<u8> {
    json!({
        "GUID": Uuid::new_v4().hyphenated().to_string().to_uppercase(),
        "PacketGuid": Uuid::new_v4().to_string(),
        "Reference": format!("300000-{}C", fastrand::u32(..)),
        "Title": "Payroll question: overtime for March not paid",
        "Status": 2,
        "RAGStatus": 1,
        "ProcessType": 1,
        "ProcessTypeName": "General Enquiry",
        "CustomerName": "Acme Holdings Ltd",
        "UpdatedOn": "/Date(1717000000000+0100)/",
    })
    .to_string()
    .into_bytes()
}

/// An HTTP/1.1 POST; `content_length` may differ from the body's length.
fn post(path: &str, secret: &str, body: &[u8], content_length: usize, close: bool) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: enate-bridge\r\nContent-Type: application/json\r\n\
         X-Enate-Secret: {secret}\r\nContent-Length: {content_length}\r\n{}\r\n",
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

fn legit_request(secret: &str) -> Vec<u8> {
    let body = legit_body();
    post("/webhooks/PacketUpdated", secret, &body, body.len(), true)
}

/// Reads one response; its status code, or why there is none.
async fn read_response(
    stream: &mut (impl AsyncRead + Unpin),
    buffer: &mut Vec<u8>,
) -> Result<u16, String> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = find(buffer, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse().ok())
                .ok_or("garbled")?;
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(0);
            while buffer.len() < end + 4 + length {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            }
            buffer.drain(..(end + 4 + length).min(buffer.len()));
            return Ok(status);
        }
        match stream.read(&mut chunk).await {
            Ok(0) => return Err("closed".into()),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(_) => return Err("reset".into()),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection: the outcome ("200", "timeout", ...) and how long it took.
async fn one_shot(addr: &str, request: &[u8], timeout: Duration) -> (String, Duration) {
    let started = Instant::now();
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|_| "connect failed".to_string())?;
        stream.set_nodelay(true).ok();
        // A bridge that answers before reading the whole body may close first.
        let written = stream.write_all(request).await;
        let answer = read_response(&mut stream, &mut Vec::new()).await;
        match (answer, written) {
            (Ok(status), _) => Ok(status),
            (Err(_), Err(_)) => Err("write failed".to_string()),
            (Err(why), Ok(())) => Err(why),
        }
    };
    let outcome = match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(status)) => status.to_string(),
        Ok(Err(why)) => why,
        Err(_) => "timeout".into(),
    };
    (outcome, started.elapsed())
}

/// Legitimate webhooks at `per_second` on fresh connections until `stop`;
/// latency counts from each one's intended start.
struct Legit {
    outcomes: Outcomes,
    latency_us: Histogram<u64>,
}

async fn legit_traffic(run: Arc<Run>, per_second: f64, stop: Instant) -> Legit {
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    for i in 0u64.. {
        let intended = start + Duration::from_secs_f64(i as f64 / per_second);
        if intended >= stop {
            break;
        }
        tokio::time::sleep_until(intended.into()).await;
        let run = run.clone();
        tasks.spawn(async move {
            let request = legit_request(&run.secret);
            let (outcome, _) = match &run.tls {
                Some(tls) => tls_one_shot(tls, &run.addr, &request, Duration::from_secs(30)).await,
                None => one_shot(&run.addr, &request, Duration::from_secs(30)).await,
            };
            if outcome == "200" {
                run.legit_ok.fetch_add(1, Ordering::Relaxed);
            }
            (outcome, intended.elapsed())
        });
    }
    let mut legit = Legit {
        outcomes: Outcomes::default(),
        latency_us: Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid bounds"),
    };
    while let Some(Ok((outcome, took))) = tasks.join_next().await {
        legit.outcomes.add(&outcome);
        legit
            .latency_us
            .saturating_record(took.as_micros().max(1) as u64);
    }
    legit
}

impl Legit {
    fn ms(&self, quantile: f64) -> f64 {
        (self.latency_us.value_at_quantile(quantile) as f64 / 100.0).round() / 10.0
    }

    fn summary(&self) -> String {
        format!(
            "legit {} (p50 {} ms, p99 {} ms, max {} ms)",
            self.outcomes.text(),
            self.ms(0.5),
            self.ms(0.99),
            self.ms(1.0)
        )
    }
}

// --- the probes -----------------------------------------------------------------

/// Connections that declare a 100 KB body and send it at 1 byte/s.
async fn slow_bodies(run: Arc<Run>) -> Value {
    let (connections, hold) = if run.short { (300, 5) } else { (3000, 30) };
    const DECLARED: usize = 100 * 1024;
    let (stop_tx, stop_rx) = watch::channel(false);
    let opened = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut slow = JoinSet::new();
    for _ in 0..connections {
        let (run, opened, mut stop) = (run.clone(), opened.clone(), stop_rx.clone());
        slow.spawn(async move {
            let Ok(mut stream) = TcpStream::connect(&run.addr).await else {
                return ("connect failed".to_string(), None);
            };
            let head = post("/webhooks/PacketUpdated", &run.secret, b"", DECLARED, false);
            if stream.write_all(&head).await.is_err() {
                return ("write failed".to_string(), None);
            }
            opened.fetch_add(1, Ordering::Relaxed);
            let begun = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut buffer = Vec::new();
            let (mut reader, mut writer) = stream.split();
            let mut chunk = [0u8; 4096];
            loop {
                tokio::select! {
                    _ = stop.changed() => return ("held to the end".to_string(), None),
                    _ = tick.tick() => {
                        if writer.write_all(b" ").await.is_err() {
                            return ("closed by the bridge".to_string(), Some(begun.elapsed()));
                        }
                    }
                    read = reader.read(&mut chunk) => match read {
                        Ok(0) | Err(_) => return ("closed by the bridge".to_string(), Some(begun.elapsed())),
                        Ok(n) => {
                            buffer.extend_from_slice(&chunk[..n]);
                            if let Some(status) = String::from_utf8_lossy(&buffer)
                                .split_whitespace()
                                .nth(1)
                                .filter(|_| find(&buffer, b"\r\n").is_some())
                            {
                                return (status.to_string(), Some(begun.elapsed()));
                            }
                        }
                    },
                }
            }
        });
    }
    let Held {
        open_at_start: in_at_start,
        legit,
        outcomes,
        median_end_s: median_end,
    } = hold_while_legit(&run, slow, &opened, connections, started, hold, stop_tx).await;
    json!({
        "statuses": format!("slow: {}; {}", outcomes.text(), legit.outcomes.text()),
        "key": format!("legit 503: {}, p50 {} ms, p99 {} ms", legit.outcomes.0.get("503").copied().unwrap_or(0), legit.ms(0.5), legit.ms(0.99)),
        "slow_connections": connections,
        "slow_open_when_legit_started": in_at_start,
        "held_s": hold,
        "slow_outcomes": outcomes.json(),
        "slow_median_end_s": median_end,
        "legit_statuses": legit.outcomes.json(),
        "legit_p50_ms": legit.ms(0.5),
        "legit_p99_ms": legit.ms(0.99),
        "legit_max_ms": legit.ms(1.0),
    })
}

/// A Content-Length 100 bytes longer than the body sent.
async fn short_body(run: Arc<Run>) -> Value {
    let body = legit_body();
    let request = post(
        "/webhooks/PacketUpdated",
        &run.secret,
        &body,
        body.len() + 100,
        false,
    );
    let (outcome, took) = one_shot(&run.addr, &request, Duration::from_secs(30)).await;
    if outcome == "200" {
        run.legit_ok.fetch_add(1, Ordering::Relaxed);
    }
    json!({
        "statuses": outcome,
        "key": format!("answer after {:.1} s (30 s at most)", took.as_secs_f64()),
        "outcome": outcome,
        "seconds": round(took.as_secs_f64()),
    })
}

/// A body of ~1 MB (under the default 1 MiB limit): an array of 100,000 tiny
/// objects, each distinct (three-letter keys, `salt` as the value), so that no
/// rule about identical objects makes the probe smaller than it is.
fn big_array(salt: u8) -> Vec<u8> {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut body = Vec::with_capacity(1_000_002);
    body.push(b'[');
    for i in 0..100_000usize {
        if i > 0 {
            body.push(b',');
        }
        let n = LETTERS.len();
        let key = [
            LETTERS[i % n],
            LETTERS[(i / n) % n],
            LETTERS[(i / n / n) % n],
        ];
        body.extend_from_slice(b"{\"");
        body.extend_from_slice(&key);
        body.extend_from_slice(b"\":");
        body.push(b'0' + salt % 10);
        body.push(b'}');
    }
    body.push(b']');
    body
}

async fn big_arrays(run: Arc<Run>) -> Value {
    let send = |salt: u8| {
        let run = run.clone();
        async move {
            let body = big_array(salt);
            let request = post(
                "/webhooks/PacketCreated",
                &run.secret,
                &body,
                body.len(),
                true,
            );
            one_shot(&run.addr, &request, Duration::from_secs(300)).await
        }
    };
    // A legitimate webhook every 200 ms meanwhile.
    let legit_during = |stop: Arc<AtomicUsize>| {
        let run = run.clone();
        async move {
            let mut legit = Vec::new();
            while stop.load(Ordering::Relaxed) == 0 {
                let stop_in = Instant::now() + Duration::from_millis(200);
                legit.push(legit_traffic(run.clone(), 5.0, stop_in).await);
            }
            legit
        }
    };
    let mut rounds = Vec::new();
    let mut statuses = Vec::new();
    for (label, salts) in [("one", vec![1u8]), ("two at once", vec![2, 3])] {
        let stop = Arc::new(AtomicUsize::new(0));
        let watcher = tokio::spawn(legit_during(stop.clone()));
        let answers = futures::future::join_all(salts.into_iter().map(send)).await;
        stop.store(1, Ordering::Relaxed);
        let legit = watcher.await.unwrap_or_default();
        let mut merged = Legit {
            outcomes: Outcomes::default(),
            latency_us: Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid bounds"),
        };
        for part in legit {
            for (outcome, count) in part.outcomes.0 {
                *merged.outcomes.0.entry(outcome).or_default() += count;
            }
            merged
                .latency_us
                .add(&part.latency_us)
                .expect("same bounds");
        }
        let rss = rss_kib(run.pid) as f64 / 1024.0;
        let durations: Vec<f64> = answers
            .iter()
            .map(|(_, took)| round(took.as_secs_f64()))
            .collect();
        statuses.push(format!(
            "{label}: {}",
            answers
                .iter()
                .map(|(o, _)| o.as_str())
                .collect::<Vec<_>>()
                .join("+")
        ));
        rounds.push(json!({
            "round": label,
            "outcomes": answers.iter().map(|(o, _)| o.clone()).collect::<Vec<_>>(),
            "seconds": durations,
            "rss_after_mib": round(rss),
            "legit": merged.summary(),
            "legit_max_ms": merged.ms(1.0),
        }));
    }
    let key = rounds
        .iter()
        .map(|r| {
            format!(
                "{}: {} s, RSS {} MiB, legit max {} ms",
                r["round"].as_str().unwrap_or(""),
                r["seconds"]
                    .as_array()
                    .map(|s| s
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join("/"))
                    .unwrap_or_default(),
                r["rss_after_mib"],
                r["legit_max_ms"]
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    json!({"statuses": statuses.join("; "), "key": key, "rounds": rounds, "body_bytes": big_array(0).len()})
}

/// Connections opened and dropped at once, without a request.
async fn connect_drop(run: Arc<Run>) -> Value {
    let connections = if run.short { 300 } else { 3000 };
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..connections {
        let addr = run.addr.clone();
        tasks.spawn(async move { TcpStream::connect(addr).await.is_ok() });
    }
    let mut outcomes = Outcomes::default();
    while let Some(Ok(connected)) = tasks.join_next().await {
        outcomes.add(if connected {
            "dropped"
        } else {
            "connect failed"
        });
    }
    let took = started.elapsed();
    // A legitimate webhook right after.
    let request = legit_request(&run.secret);
    let (legit, legit_took) = one_shot(&run.addr, &request, Duration::from_secs(30)).await;
    if legit == "200" {
        run.legit_ok.fetch_add(1, Ordering::Relaxed);
    }
    json!({
        "statuses": format!("{}; legit after: {legit}", outcomes.text()),
        "key": format!("{connections} in {:.1} s; legit after {:.1} ms", took.as_secs_f64(), legit_took.as_secs_f64() * 1000.0),
        "outcomes": outcomes.json(),
    })
}

/// Keep-alive connections left idle after one request (a 404), while
/// legitimate webhooks arrive.
async fn idle_keepalive(run: Arc<Run>) -> Value {
    let (connections, hold) = if run.short { (300, 5) } else { (3000, 15) };
    let (stop_tx, stop_rx) = watch::channel(false);
    let opened = Arc::new(AtomicUsize::new(0));
    let first = Arc::new(Mutex::new(Outcomes::default()));
    let started = Instant::now();
    let mut idle = JoinSet::new();
    for _ in 0..connections {
        let (run, opened, first, mut stop) =
            (run.clone(), opened.clone(), first.clone(), stop_rx.clone());
        idle.spawn(async move {
            let Ok(mut stream) = TcpStream::connect(&run.addr).await else {
                return ("connect failed".to_string(), None);
            };
            // Without a body, so that the answer leaves the connection open.
            let request = b"GET / HTTP/1.1\r\nHost: enate-bridge\r\n\r\n";
            let mut buffer = Vec::new();
            let status = match stream.write_all(request).await {
                Ok(()) => read_response(&mut stream, &mut buffer).await,
                Err(_) => Err("write failed".into()),
            };
            first
                .lock()
                .unwrap()
                .add(&status.map_or_else(|e| e, |s| s.to_string()));
            opened.fetch_add(1, Ordering::Relaxed);
            let begun = Instant::now();
            let mut chunk = [0u8; 1024];
            tokio::select! {
                _ = stop.changed() => ("idle to the end".to_string(), None),
                _ = stream.read(&mut chunk) => ("closed by the bridge".to_string(), Some(begun.elapsed())),
            }
        });
    }
    let Held {
        legit,
        outcomes,
        median_end_s: median,
        ..
    } = hold_while_legit(&run, idle, &opened, connections, started, hold, stop_tx).await;
    let first = first.lock().unwrap();
    json!({
        "statuses": format!("first {}; then {}; {}", first.text(), outcomes.text(), legit.outcomes.text()),
        "key": format!("idle closed after {} s (median); legit p50 {} ms, p99 {} ms", median.map_or("-".into(), |m| format!("{m:.1}")), legit.ms(0.5), legit.ms(0.99)),
        "first": first.json(),
        "idle_outcomes": outcomes.json(),
        "idle_closed_median_s": median,
        "legit_statuses": legit.outcomes.json(),
        "legit_p99_ms": legit.ms(0.99),
    })
}

/// How held connections ended, and the legitimate traffic sent while they were held.
struct Held {
    open_at_start: usize,
    legit: Legit,
    outcomes: Outcomes,
    /// The median time from a connection's start to its end, of those that ended.
    median_end_s: Option<f64>,
}

/// Waits until the `connections` held by `tasks` are open (20 s after `started`
/// at most), sends legitimate webhooks for `hold` seconds, then stops the held
/// connections and gathers how each ended.
async fn hold_while_legit(
    run: &Arc<Run>,
    mut tasks: JoinSet<(String, Option<Duration>)>,
    opened: &AtomicUsize,
    connections: usize,
    started: Instant,
    hold: u64,
    stop: watch::Sender<bool>,
) -> Held {
    while opened.load(Ordering::Relaxed) < connections && started.elapsed().as_secs() < 20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let open_at_start = opened.load(Ordering::Relaxed);
    let legit = legit_traffic(
        run.clone(),
        20.0,
        Instant::now() + Duration::from_secs(hold),
    )
    .await;
    let _ = stop.send(true);
    let mut outcomes = Outcomes::default();
    let mut ended_after = Vec::new();
    while let Some(Ok((outcome, after))) = tasks.join_next().await {
        outcomes.add(&outcome);
        ended_after.extend(after.map(|d| d.as_secs_f64()));
    }
    ended_after.sort_by(f64::total_cmp);
    Held {
        open_at_start,
        legit,
        outcomes,
        median_end_s: ended_after.get(ended_after.len() / 2).copied(),
    }
}

fn log_size(run: &Run) -> u64 {
    std::fs::metadata(&run.log).map_or(0, |m| m.len())
}

/// Wrong-secret requests at max rate over 64 keep-alive connections.
async fn refusal_flood(run: Arc<Run>) -> Value {
    let seconds = if run.short { 3 } else { 10 };
    let stop = Instant::now() + Duration::from_secs(seconds);
    let log_before = log_size(&run);
    let mut tasks = JoinSet::new();
    for _ in 0..64 {
        let run = run.clone();
        tasks.spawn(async move {
            let request = post("/webhooks/PacketUpdated", "not-the-secret", b"{}", 2, false);
            let mut outcomes = Outcomes::default();
            let mut stream = None;
            let mut buffer = Vec::new();
            while Instant::now() < stop {
                if stream.is_none() {
                    stream = TcpStream::connect(&run.addr).await.ok();
                    buffer.clear();
                }
                let Some(open) = stream.as_mut() else {
                    outcomes.add("connect failed");
                    continue;
                };
                let answer = match open.write_all(&request).await {
                    Ok(()) => read_response(open, &mut buffer).await,
                    Err(_) => Err("write failed".into()),
                };
                match answer {
                    Ok(status) => outcomes.add(&status.to_string()),
                    Err(why) => {
                        outcomes.add(&why);
                        stream = None;
                    }
                }
            }
            outcomes
        });
    }
    let mut outcomes = Outcomes::default();
    while let Some(Ok(part)) = tasks.join_next().await {
        for (outcome, count) in part.0 {
            *outcomes.0.entry(outcome).or_default() += count;
        }
    }
    // The log is written as the requests are answered; a moment for the last lines.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let logged = log_size(&run).saturating_sub(log_before);
    let refused = outcomes.0.get("401").copied().unwrap_or(0);
    // Answers, not the closed connections after them.
    let total: u64 = outcomes
        .0
        .iter()
        .filter(|(outcome, _)| outcome.parse::<u16>().is_ok())
        .map(|(_, count)| count)
        .sum();
    let per_thousand = if refused > 0 {
        logged as f64 * 1000.0 / refused as f64
    } else {
        0.0
    };
    json!({
        "statuses": outcomes.text(),
        "key": format!("{:.0} req/s; {:.1} MB logged, {:.0} bytes per 1,000 refusals", total as f64 / seconds as f64, logged as f64 / 1e6, per_thousand),
        "requests_per_s": round(total as f64 / seconds as f64),
        "log_bytes": logged,
        "log_bytes_per_1000_refusals": per_thousand.round(),
    })
}

/// A burst of malformed requests: which statuses, and what the log says at ERROR.
async fn malformed(run: Arc<Run>) -> Value {
    let count = if run.short { 200 } else { 1000 };
    let secret = run.secret.as_str();
    let kinds: Vec<(&str, Vec<u8>)> =
        vec![
        ("garbage request line", b"\x16\x03\x01 NOT HTTP AT ALL\r\n\r\n".to_vec()),
        (
            "invalid JSON",
            post("/webhooks/PacketCreated", secret, b"{\"GUID\": ", 9, true),
        ),
        (
            "bad chunk size",
            format!(
                "POST /webhooks/PacketCreated HTTP/1.1\r\nHost: b\r\nX-Enate-Secret: {secret}\r\n\
                 Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"
            )
            .into_bytes(),
        ),
        (
            "bad Content-Length",
            format!(
                "POST /webhooks/PacketCreated HTTP/1.1\r\nHost: b\r\nX-Enate-Secret: {secret}\r\n\
                 Content-Length: 1x\r\nConnection: close\r\n\r\n{{}}"
            )
            .into_bytes(),
        ),
        (
            "two Content-Lengths",
            format!(
                "POST /webhooks/PacketCreated HTTP/1.1\r\nHost: b\r\nX-Enate-Secret: {secret}\r\n\
                 Content-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{{}}"
            )
            .into_bytes(),
        ),
    ];
    let log_before = log_size(&run);
    let mut outcomes = Outcomes::default();
    for chunk_start in (0..count).step_by(50) {
        let mut tasks = JoinSet::new();
        for i in chunk_start..(chunk_start + 50).min(count) {
            let (kind, request) = kinds[i % kinds.len()].clone();
            let addr = run.addr.clone();
            tasks.spawn(async move {
                let (outcome, _) = one_shot(&addr, &request, Duration::from_secs(10)).await;
                format!("{kind} {outcome}")
            });
        }
        while let Some(Ok(outcome)) = tasks.join_next().await {
            outcomes.add(&outcome);
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let text = std::fs::read(&run.log).unwrap_or_default();
    let added =
        String::from_utf8_lossy(&text[(log_before as usize).min(text.len())..]).into_owned();
    let lines = added.lines().count();
    let errors = added
        .lines()
        .filter(|line| line.contains("\"level\":\"ERROR\"") || line.contains(" ERROR "))
        .count();
    json!({
        "statuses": outcomes.text(),
        "key": format!("{count} requests: {lines} log lines, {errors} at ERROR"),
        "outcomes": outcomes.json(),
        "log_lines": lines,
        "error_lines": errors,
    })
}

// --- TLS ---------------------------------------------------------------------

/// A TLS client trusting only `ca` (PEM).
fn tls_connector(ca: &std::path::Path) -> anyhow::Result<tokio_rustls::TlsConnector> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca).context("reading --tls-ca")? {
        roots.add(certificate?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// A TLS connection to `addr` (its certificate is for localhost).
async fn tls_connect(
    tls: &tokio_rustls::TlsConnector,
    addr: &str,
) -> Result<impl AsyncRead + AsyncWrite + Unpin, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|_| "connect failed".to_string())?;
    tcp.set_nodelay(true).ok();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a valid name");
    tls.connect(name, tcp)
        .await
        .map_err(|_| "handshake failed".to_string())
}

/// `one_shot` over TLS: the handshake is part of the time taken.
async fn tls_one_shot(
    tls: &tokio_rustls::TlsConnector,
    addr: &str,
    request: &[u8],
    timeout: Duration,
) -> (String, Duration) {
    let started = Instant::now();
    let exchange = async {
        let mut stream = tls_connect(tls, addr).await?;
        stream
            .write_all(request)
            .await
            .map_err(|_| "write failed".to_string())?;
        read_response(&mut stream, &mut Vec::new()).await
    };
    let outcome = match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(status)) => status.to_string(),
        Ok(Err(why)) => why,
        Err(_) => "timeout".into(),
    };
    (outcome, started.elapsed())
}

/// What a held TLS connection does.
#[derive(Debug, Clone, Copy)]
enum TlsHold {
    /// Opens TCP and sends nothing.
    Silent,
    /// Sends a record header announcing a 512-byte ClientHello, and 5 bytes of it.
    PartialHello,
    /// Completes the handshake, then sends nothing.
    IdleAfterHandshake,
}

/// N connections held as `hold` says while legitimate webhooks arrive over TLS.
async fn tls_held(run: Arc<Run>, hold: TlsHold) -> Value {
    let (connections, seconds) = if run.short { (300, 5) } else { (3000, 15) };
    let (stop_tx, stop_rx) = watch::channel(false);
    let opened = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut held = JoinSet::new();
    for _ in 0..connections {
        let (run, opened, mut stop) = (run.clone(), opened.clone(), stop_rx.clone());
        held.spawn(async move {
            let mut chunk = [0u8; 1024];
            let begun;
            let ended = match hold {
                TlsHold::Silent | TlsHold::PartialHello => {
                    let Ok(mut stream) = TcpStream::connect(&run.addr).await else {
                        return ("connect failed".to_string(), None);
                    };
                    if let TlsHold::PartialHello = hold {
                        let partial = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03];
                        if stream.write_all(&partial).await.is_err() {
                            return ("write failed".to_string(), None);
                        }
                    }
                    opened.fetch_add(1, Ordering::Relaxed);
                    begun = Instant::now();
                    tokio::select! {
                        _ = stop.changed() => None,
                        _ = stream.read(&mut chunk) => Some(()),
                    }
                }
                TlsHold::IdleAfterHandshake => {
                    let tls = run.tls.as_ref().expect("TLS probes run with --tls-ca");
                    let mut stream = match tls_connect(tls, &run.addr).await {
                        Ok(stream) => stream,
                        Err(why) => return (why, None),
                    };
                    opened.fetch_add(1, Ordering::Relaxed);
                    begun = Instant::now();
                    tokio::select! {
                        _ = stop.changed() => None,
                        _ = stream.read(&mut chunk) => Some(()),
                    }
                }
            };
            match ended {
                None => ("held to the end".to_string(), None),
                Some(()) => ("closed by the bridge".to_string(), Some(begun.elapsed())),
            }
        });
    }
    let Held {
        open_at_start,
        legit,
        outcomes,
        median_end_s: median,
    } = hold_while_legit(&run, held, &opened, connections, started, seconds, stop_tx).await;
    json!({
        "statuses": format!("held: {}; {}", outcomes.text(), legit.outcomes.text()),
        "key": format!("closed after {} s (median); legit p50 {} ms, p99 {} ms", median.map_or("-".into(), |m| format!("{m:.1}")), legit.ms(0.5), legit.ms(0.99)),
        "connections": connections,
        "open_when_legit_started": open_at_start,
        "held_outcomes": outcomes.json(),
        "closed_median_s": median,
        "legit_statuses": legit.outcomes.json(),
        "legit_p50_ms": legit.ms(0.5),
        "legit_p99_ms": legit.ms(0.99),
        "legit_max_ms": legit.ms(1.0),
    })
}

/// Plain-HTTP webhooks (with the right secret) to the TLS port, 64 at a
/// time, while legitimate webhooks arrive over TLS. None may get an HTTP
/// answer, and none is published (they are PacketCreated, which the
/// legitimate queue does not bind).
async fn plain_to_tls(run: Arc<Run>) -> Value {
    let (requests, seconds) = if run.short { (640, 5) } else { (6400, 15) };
    let stop = Instant::now() + Duration::from_secs(seconds);
    let legit = tokio::spawn(legit_traffic(run.clone(), 20.0, stop));
    let started = Instant::now();
    let mut outcomes = Outcomes::default();
    let mut tasks = JoinSet::new();
    let mut sent = 0;
    while sent < requests || !tasks.is_empty() {
        while sent < requests && tasks.len() < 64 {
            sent += 1;
            let addr = run.addr.clone();
            let body = legit_body();
            let request = post(
                "/webhooks/PacketCreated",
                &run.secret,
                &body,
                body.len(),
                true,
            );
            tasks.spawn(async move { one_shot(&addr, &request, Duration::from_secs(10)).await.0 });
        }
        if let Some(Ok(outcome)) = tasks.join_next().await {
            outcomes.add(&outcome);
        }
    }
    let took = started.elapsed();
    let legit = legit.await.expect("the legitimate traffic task ends");
    let answered_http = outcomes
        .0
        .keys()
        .filter(|outcome| outcome.parse::<u16>().is_ok())
        .count();
    json!({
        "statuses": format!("plain: {}; {}", outcomes.text(), legit.outcomes.text()),
        "key": format!("{requests} in {:.1} s, {answered_http} kinds of HTTP answer; legit p99 {} ms", took.as_secs_f64(), legit.ms(0.99)),
        "outcomes": outcomes.json(),
        "legit_statuses": legit.outcomes.json(),
        "legit_p99_ms": legit.ms(0.99),
    })
}

/// Waits for the bridge's /spool to say it holds no events; what is left, if anything.
async fn wait_for_empty_spool(admin: &str, limit: Duration) -> Option<u64> {
    let started = Instant::now();
    loop {
        let left = spool_events(admin).await;
        if left == Some(0) || started.elapsed() > limit {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn spool_events(admin: &str) -> Option<u64> {
    let mut stream = TcpStream::connect(admin).await.ok()?;
    stream
        .write_all(b"GET /spool HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    let body = &answer[find(&answer, b"\r\n\r\n")? + 4..];
    serde_json::from_slice::<Value>(body).ok()?["events"].as_u64()
}
