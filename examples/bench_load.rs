//! The benchmark's HTTP load client: POSTs Enate-shaped webhooks to the bridge
//! (or messages to RabbitMQ's management API, the reference without a bridge)
//! over a fixed number of keep-alive connections, closed or open loop.
//!
//! Written here rather than using wrk because wrk cannot run open loop: at a
//! fixed rate each request's latency must be counted from when it *should*
//! have been sent, or a stall hides the requests it delayed (coordinated
//! omission). See `bench_support::Pacer`.
//!
//! ```text
//! cargo run --release --example bench_load -- \
//!     --url http://127.0.0.1:8080/webhooks/PacketUpdated --secret s --concurrency 64 --duration 10
//! ```
//! With an `https://` URL each connection is TLS (rustls, ALPN http/1.1),
//! trusting only `--ca-file`; the handshakes, like the TCP connects, happen
//! before the clock starts.
//!
//! `scripts/bench` runs it; `--help` lists every option.

mod bench_support;

use std::{sync::Arc, time::Instant};

use anyhow::Context;
use bench_support::{LoadArgs, Pacer, Tally, Watcher};
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::{Request, body::Bytes, client::conn::http1::SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use serde_json::json;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_rustls::TlsConnector;
use uuid::Uuid;

#[derive(Debug, Parser)]
struct Cli {
    /// Where to POST, e.g. http://127.0.0.1:8080/webhooks/PacketUpdated
    /// (https:// with `--ca-file`).
    #[arg(long)]
    url: String,
    /// With an https:// URL: the PEM CA the server's certificate must chain to
    /// (the only root trusted).
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
    /// What to send.
    #[arg(long, value_enum, default_value_t = Body::Enate)]
    body: Body,
    /// The bridge's X-Enate-Secret (with `--body enate`).
    #[arg(long, default_value = "")]
    secret: String,
    /// The queue to publish to (with `--body management`).
    #[arg(long, default_value = "")]
    queue: String,
    /// user:password for the management API (with `--body management`).
    #[arg(long, default_value = "guest:guest")]
    credentials: String,
    /// Size of each request body in bytes (the Enate body is padded to it).
    #[arg(long, default_value_t = 1024)]
    body_bytes: usize,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Body {
    /// A PacketUpdated webhook as Enate sends it, with unique GUIDs and Reference.
    Enate,
    /// POST /api/exchanges/%2f/amq.default/publish: a persistent message to `--queue`.
    Management,
}

/// Everything a worker needs to make requests; shared read-only.
struct Target {
    authority: String,
    path: String,
    body: Body,
    header: (&'static str, String),
    queue: String,
    body_bytes: usize,
    /// With an https:// URL: the connector and the name the certificate must carry.
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

/// A connection's byte stream, plain TCP or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let url: hyper::Uri = cli.url.parse().context("--url")?;
    let authority = url
        .authority()
        .context("--url has no host:port")?
        .to_string();
    let header = match cli.body {
        Body::Enate => ("x-enate-secret", cli.secret.clone()),
        Body::Management => (
            "authorization",
            format!("Basic {}", base64(&cli.credentials)),
        ),
    };
    let tls = match (url.scheme_str(), &cli.ca_file) {
        (Some("https"), Some(ca_file)) => Some((
            tls_connector(ca_file)?,
            ServerName::try_from(url.host().context("--url has no host")?.to_string())
                .context("--url's host as a TLS server name")?,
        )),
        (Some("https"), None) => anyhow::bail!("an https:// --url needs --ca-file"),
        (_, Some(_)) => anyhow::bail!("--ca-file needs an https:// --url"),
        _ => None,
    };
    let target = Arc::new(Target {
        authority,
        path: url.path().to_string(),
        body: cli.body,
        header,
        queue: cli.queue.clone(),
        body_bytes: cli.body_bytes,
        tls,
    });

    // Connect every connection before the clock starts.
    let mut senders = Vec::with_capacity(cli.load.concurrency);
    for _ in 0..cli.load.concurrency {
        senders.push(connect(&target).await?);
    }
    let pacer = Pacer::new(&cli.load);
    let watcher = Watcher::start(&cli.load, &pacer);
    let workers: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(worker, sender)| {
            let (pacer, target) = (pacer.clone(), target.clone());
            tokio::spawn(async move { run_worker(worker, sender, &pacer, &target).await })
        })
        .collect();
    let mut tally = Tally::new();
    for worker in workers {
        tally.merge(worker.await?);
    }
    let cpu = watcher.finish(&cli.load).await;
    let sample = request_body(&target, 0, 0);
    bench_support::report(
        &cli.load,
        match cli.body {
            Body::Enate => "bridge",
            Body::Management => "management",
        },
        &tally,
        cpu,
        json!({"request_bytes": sample.len(), "url": cli.url}),
    )?;
    Ok(())
}

/// A client configuration trusting only the CA in `ca_file`, offering http/1.1.
fn tls_connector(ca_file: &std::path::Path) -> anyhow::Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file)
        .with_context(|| format!("reading --ca-file {}", ca_file.display()))?
    {
        roots.add(cert.context("--ca-file")?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn connect(target: &Target) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let authority = target.authority.as_str();
    let stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    stream.set_nodelay(true)?;
    let stream: Box<dyn Io> = match &target.tls {
        Some((connector, name)) => Box::new(
            connector
                .connect(name.clone(), stream)
                .await
                .with_context(|| format!("the TLS handshake with {authority}"))?,
        ),
        None => Box::new(stream),
    };
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn run_worker(
    worker: usize,
    mut sender: SendRequest<Full<Bytes>>,
    pacer: &Pacer,
    target: &Target,
) -> Tally {
    let mut tally = Tally::new();
    let mut sequence = 0u64;
    while let Some(ticket) = pacer.next().await {
        sequence += 1;
        let body = request_body(target, worker, sequence);
        let sent = Instant::now();
        let outcome = send(&mut sender, target, body).await;
        let broken = matches!(&outcome, Err(kind) if kind.starts_with("connection"));
        tally.record(ticket, sent, outcome);
        if broken {
            match connect(target).await {
                Ok(fresh) => sender = fresh,
                Err(error) => {
                    eprintln!("worker {worker}: cannot reconnect: {error:#}");
                    break;
                }
            }
        }
    }
    tally
}

/// One request; `Err` names the kind of failure (a status code, `unrouted`, `connection ...`).
async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    body: Vec<u8>,
) -> Result<(), String> {
    let request = Request::post(target.path.as_str())
        .header("host", target.authority.as_str())
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .header(target.header.0, target.header.1.as_str())
        .body(Full::new(Bytes::from(body)))
        .expect("a valid request");
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let status = response.status();
    let answer = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("connection: {e}"))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("http {}", status.as_u16()));
    }
    // The management API answers 200 {"routed":false} for a message no queue took.
    if target.body == Body::Management && !contains(&answer, b"\"routed\":true") {
        return Err("unrouted".into());
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A body of about `body_bytes`, unique per (worker, sequence).
fn request_body(target: &Target, worker: usize, sequence: u64) -> Vec<u8> {
    match target.body {
        Body::Enate => enate_packet_updated(worker, sequence, target.body_bytes),
        Body::Management => {
            let head = format!("{} {worker} {sequence} ", Uuid::new_v4());
            let payload = pad(head, target.body_bytes);
            serde_json::to_vec(&json!({
                "properties": {"delivery_mode": 2, "content_type": "application/cloudevents+json"},
                "routing_key": target.queue,
                "payload": payload,
                "payload_encoding": "string",
            }))
            .expect("serializes")
        }
    }
}

/// A PacketUpdated body as Enate sends it: PascalCase keys, enum codes, .NET
/// dates, a few keys the bridge does not know (kept under `extra`), and a
/// Description padded so the whole body is `size` bytes.
fn enate_packet_updated(worker: usize, sequence: u64, size: usize) -> Vec<u8> {
    let guid = Uuid::new_v4().hyphenated().to_string().to_uppercase();
    let packet = Uuid::new_v4();
    let n = sequence as usize + worker * 7;
    let status = [2, 3, 4, 5][n % 4];
    let process_type = [1, 2, 3][n % 3];
    let rag_status = [1, 2, 3][n % 3];
    let reference = format!(
        "{}-{}{}",
        200_000 + worker,
        sequence,
        ["C", "T", "A"][process_type - 1]
    );
    let object = json!({
        "GUID": guid,
        "PacketGuid": packet.to_string(),
        "Reference": reference,
        "Title": "Payroll question: overtime for March not paid",
        "Status": status,
        "DueDate": "2024-06-01T17:00:00+01:00",
        "RAGStatus": rag_status,
        "ProcessType": process_type,
        "ProcessTypeName": "General Enquiry",
        "CustomerName": "Acme Holdings Ltd",
        "SupplierName": "Northwind Payroll Services",
        "ContractName": "Payroll UK 2024",
        "ServiceName": "HR",
        "ServiceLineName": "Payroll Queries",
        "StartedByMethod": 4,
        "ResolvedOn": if status == 4 { json!("/Date(1700000000000)/") } else { json!(null) },
        "TenantCode": "ACME-UK",
        "AssignedTo": "jane.doe@acme.example",
        "UpdatedOn": "/Date(1717000000000+0100)/",
        "Description": "",
    });
    let text = object.to_string();
    // Fill the Description so the body reaches `size` bytes.
    let filler = size.saturating_sub(text.len());
    let description = pad(String::new(), filler);
    text.replacen(
        "\"Description\":\"\"",
        &format!("\"Description\":\"{description}\""),
        1,
    )
    .into_bytes()
}

/// `head` followed by words up to `size` bytes.
fn pad(mut head: String, size: usize) -> String {
    const WORDS: &str = "Employee reports that overtime worked in March was not included in the April payslip; please check the timesheet approvals and correct the next pay run. ";
    while head.len() < size {
        let take = (size - head.len()).min(WORDS.len());
        head.push_str(&WORDS[..take]);
    }
    head
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
