//! The benchmark's report: reads the phases' JSON (written by `bench_load` and
//! `bench_ceiling`), prints the table, the targets with PASS/MISS and the
//! bridge/ceiling ratios last, and writes it all as one JSON file.
//!
//! ```text
//! bench_report table --dir target/bench/phases --out target/bench/result.json [--note TEXT ...]
//! bench_report soak --samples target/bench/soak-rss.txt --out target/bench/soak.json
//! ```
//! Targets are reported, never asserted: the exit code is 0 unless a file is missing.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The table of a benchmark run.
    Table {
        /// Folder of the phases' JSON files (`<label>.json`).
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Peak RSS of the bridge (VmHWM, KiB) over the whole run.
        #[arg(long)]
        bridge_peak_rss_kib: Option<u64>,
        /// Events counted in the bridge's queue, and the 200s that promised them.
        #[arg(long)]
        events_queued: Option<u64>,
        #[arg(long)]
        events_promised: Option<u64>,
        /// Events per second answered 200 `spooled` with the broker down.
        #[arg(long)]
        spooled_per_s: Option<f64>,
        /// Events per second the forwarder drained from the spool once the broker was back.
        #[arg(long)]
        drained_per_s: Option<f64>,
        /// Events the drain started with, and how many of them the queue then held.
        #[arg(long)]
        spool_events: Option<u64>,
        #[arg(long)]
        drained_found: Option<u64>,
        /// A line to print under the table (repeatable).
        #[arg(long = "note")]
        notes: Vec<String>,
        /// How the run was invoked, for the record.
        #[arg(long, default_value = "")]
        command: String,
    },
    /// The RSS slope of a soak run from "SECONDS RSS_KIB" lines.
    Soak {
        #[arg(long)]
        samples: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long = "note")]
        notes: Vec<String>,
    },
}

const RSS_LIMIT_MIB: f64 = 64.0;
const THROUGHPUT_TARGET: f64 = 0.9;
const P99_TARGET: f64 = 1.5;
const CPU_TARGET_S_PER_1000: f64 = 0.10;
/// Spooling (broker down) and draining, each against the published rate.
const SPOOL_TARGET: f64 = 1.0;

/// Rows of the table, in order: (file label, what it is).
const PHASES: &[(&str, &str)] = &[
    ("ceiling-closed", "ceiling, closed loop"),
    ("ceiling-open", "ceiling, open @ half its max"),
    ("bridge-closed", "bridge, closed loop"),
    ("bridge-open", "bridge, open @ half its max"),
    ("ceiling-open-at-bridge", "ceiling, open @ bridge's half"),
    ("bridge-legacy-closed", "bridge, 1 confirm/channel, closed"),
    ("bridge-info-closed", "bridge log=info, closed"),
    ("management-closed", "mgmt API, closed loop"),
    ("management-open", "mgmt API, open @ half its max"),
    // The `tls` phase: the bridge against a private node, plain and TLS alternating.
    ("tls-amqp-1", "bridge amqp:// (tls node), 1"),
    ("tls-amqps-1", "bridge amqps:// (tls node), 1"),
    ("tls-amqp-2", "bridge amqp:// (tls node), 2"),
    ("tls-amqps-2", "bridge amqps:// (tls node), 2"),
    // The `https` phase: the bridge's ingress over http:// and https://, alternating.
    ("https-http-1", "bridge ingress http://, 1"),
    ("https-https-1", "bridge ingress https://, 1"),
    ("https-http-2", "bridge ingress http://, 2"),
    ("https-https-2", "bridge ingress https://, 2"),
];

/// The `https` phase's rounds (`https-http-N`, `https-https-N`, closed loop):
/// bridge over https / bridge over http at the ingress, the throughput and the
/// p99 ratio, each the ratio of the rounds' means, and the rounds for a note.
fn ingress_https(phases: &BTreeMap<String, Value>) -> (Option<f64>, Option<f64>, Option<String>) {
    let get = |label: String, pointer: &str| phases.get(&label).and_then(|p| num(p, pointer));
    let mean = |scheme: &str, pointer: &str| {
        let values: Vec<f64> = (1..=2)
            .filter_map(|round| get(format!("https-{scheme}-{round}"), pointer))
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let throughput = ratio(
        mean("https", "/throughput_per_s"),
        mean("http", "/throughput_per_s"),
    );
    let p99 = ratio(
        mean("https", "/latency/p99_ms"),
        mean("http", "/latency/p99_ms"),
    );
    let rounds: Vec<String> = (1..=2)
        .filter_map(|round| {
            let plain = get(format!("https-http-{round}"), "/throughput_per_s")?;
            let tls = get(format!("https-https-{round}"), "/throughput_per_s")?;
            Some(format!("{plain:.0} vs {tls:.0}/s"))
        })
        .collect();
    let note = throughput.map(|t| {
        format!(
            "HTTPS at the ingress (the same bridge build and broker, http:// then https:// with [server.tls], alternating): throughput {t:.2} x, p99 {} x; rounds http vs https: {}",
            cell(p99, 2),
            rounds.join(", ")
        )
    });
    (throughput, p99, note)
}

/// The `tls` phase's rounds (`tls-amqp-N`, `tls-amqps-N`, closed loop):
/// bridge over amqps / bridge over amqp, the throughput and the p99 ratio,
/// each the ratio of the rounds' means, and the rounds' throughputs for a note.
fn broker_tls(phases: &BTreeMap<String, Value>) -> (Option<f64>, Option<f64>, Option<String>) {
    let get = |label: String, pointer: &str| phases.get(&label).and_then(|p| num(p, pointer));
    let mean = |scheme: &str, pointer: &str| {
        let values: Vec<f64> = (1..=2)
            .filter_map(|round| get(format!("tls-{scheme}-{round}"), pointer))
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let throughput = ratio(
        mean("amqps", "/throughput_per_s"),
        mean("amqp", "/throughput_per_s"),
    );
    let p99 = ratio(
        mean("amqps", "/latency/p99_ms"),
        mean("amqp", "/latency/p99_ms"),
    );
    let rounds: Vec<String> = (1..=2)
        .filter_map(|round| {
            let plain = get(format!("tls-amqp-{round}"), "/throughput_per_s")?;
            let tls = get(format!("tls-amqps-{round}"), "/throughput_per_s")?;
            Some(format!("{plain:.0} vs {tls:.0}/s"))
        })
        .collect();
    let note = throughput.map(|t| {
        format!(
            "TLS to the broker (a private node, amqp:// then amqps:// with amqp.tls.ca_file, alternating): throughput {t:.2} x, p99 {} x; rounds amqp vs amqps: {}",
            cell(p99, 2),
            rounds.join(", ")
        )
    });
    (throughput, p99, note)
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Table {
            dir,
            out,
            bridge_peak_rss_kib,
            events_queued,
            events_promised,
            spooled_per_s,
            drained_per_s,
            spool_events,
            drained_found,
            notes,
            command,
        } => table(
            &dir,
            &out,
            bridge_peak_rss_kib,
            (events_queued, events_promised),
            Spooling {
                spooled_per_s,
                drained_per_s,
                spool_events,
                drained_found,
            },
            notes,
            &command,
        ),
        Command::Soak {
            samples,
            out,
            notes,
        } => soak(&samples, &out, notes),
    }
}

fn load(dir: &std::path::Path) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut phases = BTreeMap::new();
    for (label, _) in PHASES {
        let path = dir.join(format!("{label}.json"));
        if path.exists() {
            let text = std::fs::read_to_string(&path)?;
            let value: Value =
                serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
            phases.insert(label.to_string(), value);
        }
    }
    Ok(phases)
}

fn num(value: &Value, pointer: &str) -> Option<f64> {
    value.pointer(pointer).and_then(Value::as_f64)
}

fn cell(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "-".into(),
    }
}

/// The spool phases' figures, measured by scripts/bench itself.
struct Spooling {
    spooled_per_s: Option<f64>,
    drained_per_s: Option<f64>,
    spool_events: Option<u64>,
    drained_found: Option<u64>,
}

fn table(
    dir: &std::path::Path,
    out: &std::path::Path,
    peak_rss_kib: Option<u64>,
    (queued, promised): (Option<u64>, Option<u64>),
    spooling: Spooling,
    mut notes: Vec<String>,
    command: &str,
) -> anyhow::Result<()> {
    let phases = load(dir)?;
    println!();
    if !command.is_empty() {
        println!("$ {command}");
    }
    println!(
        "{:<31} {:>8} {:>9} {:>8} {:>8} {:>9} {:>7} {:>10} {:>10} {:>10}",
        "phase",
        "rate/s",
        "ok/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "bridge",
        "broker",
        "client",
    );
    println!(
        "{:<31} {:>8} {:>9} {:>8} {:>8} {:>9} {:>7} {:>10} {:>10} {:>10}",
        "", "", "", "", "", "", "", "CPU s/1k", "CPU s/1k", "CPU s/1k",
    );
    for (label, title) in PHASES {
        let Some(phase) = phases.get(*label) else {
            continue;
        };
        let rate = phase["rate"]
            .as_f64()
            .map_or("max".into(), |r| format!("{r:.0}"));
        println!(
            "{:<31} {:>8} {:>9} {:>8} {:>8} {:>9} {:>7} {:>10} {:>10} {:>10}",
            title,
            rate,
            cell(num(phase, "/throughput_per_s"), 0),
            cell(num(phase, "/latency/p50_ms"), 2),
            cell(num(phase, "/latency/p99_ms"), 2),
            cell(num(phase, "/latency/p999_ms"), 2),
            phase["errors_total"].as_u64().unwrap_or(0),
            cell(num(phase, "/cpu/bridge/per_1000_ok"), 3),
            cell(num(phase, "/cpu/broker/per_1000_ok"), 3),
            cell(num(phase, "/cpu/client/per_1000_ok"), 3),
        );
    }
    println!(
        "(open loop: latency from each request's intended send time; concurrency {}; {} s measured per phase)",
        phases
            .values()
            .next()
            .and_then(|p| p["concurrency"].as_u64())
            .unwrap_or(0),
        phases
            .values()
            .next()
            .and_then(|p| p["duration_s"].as_f64())
            .unwrap_or(0.0),
    );

    let get = |label: &str, pointer: &str| phases.get(label).and_then(|p| num(p, pointer));
    let mut targets = Vec::new();
    let throughput_ratio = ratio(
        get("bridge-closed", "/throughput_per_s"),
        get("ceiling-closed", "/throughput_per_s"),
    );
    targets.push(target(
        "bridge throughput >= 0.9 x ceiling",
        throughput_ratio.map(|r| format!("{r:.2} x")),
        throughput_ratio.map(|r| r >= THROUGHPUT_TARGET),
    ));
    let p99_ratio = ratio(
        get("bridge-open", "/latency/p99_ms"),
        get("ceiling-open-at-bridge", "/latency/p99_ms"),
    );
    targets.push(target(
        "bridge p99 @ half its max <= 1.5 x ceiling p99 @ that rate",
        p99_ratio.map(|r| {
            format!(
                "{r:.2} x ({} vs {} ms)",
                cell(get("bridge-open", "/latency/p99_ms"), 2),
                cell(get("ceiling-open-at-bridge", "/latency/p99_ms"), 2)
            )
        }),
        p99_ratio.map(|r| r <= P99_TARGET),
    ));
    let cpu = get("bridge-closed", "/cpu/bridge/per_1000_ok");
    targets.push(target(
        "bridge CPU <= 0.10 s per 1,000 events",
        cpu.map(|c| format!("{c:.3} s")),
        cpu.map(|c| c <= CPU_TARGET_S_PER_1000),
    ));
    let published = get("bridge-closed", "/throughput_per_s");
    let spool_ratio = ratio(spooling.spooled_per_s, published);
    targets.push(target(
        "spooled/s (broker down) >= 1.0 x published/s",
        spool_ratio.map(|r| {
            format!(
                "{r:.2} x ({} vs {}/s)",
                cell(spooling.spooled_per_s, 0),
                cell(published, 0)
            )
        }),
        spool_ratio.map(|r| r >= SPOOL_TARGET),
    ));
    let drain_ratio = ratio(spooling.drained_per_s, published);
    targets.push(target(
        "spool drain/s >= 1.0 x published/s",
        drain_ratio.map(|r| {
            format!(
                "{r:.2} x ({} vs {}/s)",
                cell(spooling.drained_per_s, 0),
                cell(published, 0)
            )
        }),
        drain_ratio.map(|r| r >= SPOOL_TARGET),
    ));
    let drained = match (spooling.drained_found, spooling.spool_events) {
        (Some(found), Some(spooled)) => Some((found, spooled)),
        _ => None,
    };
    targets.push(target(
        "every spooled event reaches the queue",
        drained.map(|(found, spooled)| format!("{found} queued / {spooled} spooled")),
        drained.map(|(found, spooled)| found >= spooled),
    ));
    if let Some(r) = ratio(
        get("bridge-legacy-closed", "/throughput_per_s"),
        get("ceiling-closed", "/throughput_per_s"),
    ) {
        notes.push(format!(
            "old setting (amqp.channels=256, amqp.confirms_per_channel=1): {r:.2} x the ceiling, CPU {} s per 1,000 events in the bridge, {} in the broker",
            cell(get("bridge-legacy-closed", "/cpu/bridge/per_1000_ok"), 3),
            cell(get("bridge-legacy-closed", "/cpu/broker/per_1000_ok"), 3),
        ));
    }
    let peak_mib = peak_rss_kib.map(|kib| kib as f64 / 1024.0);
    targets.push(target(
        "bridge peak RSS (VmHWM) <= 64 MiB",
        peak_mib.map(|mib| format!("{mib:.1} MiB")),
        peak_mib.map(|mib| mib <= RSS_LIMIT_MIB),
    ));
    let delivered = match (queued, promised) {
        (Some(q), Some(p)) => Some((q, p)),
        _ => None,
    };
    targets.push(target(
        "every 200 is an event in the queue",
        delivered.map(|(q, p)| format!("{q} queued / {p} answered 200")),
        delivered.map(|(q, p)| q == p),
    ));
    println!();
    println!("{:<58} {:<34} result", "target", "measured");
    for t in &targets {
        println!(
            "{:<58} {:<34} {}",
            t["target"].as_str().unwrap_or_default(),
            t["measured"].as_str().unwrap_or("-"),
            t["result"].as_str().unwrap_or_default()
        );
    }

    if let (Some(warn), Some(info)) = (
        get("bridge-closed", "/cpu/bridge/per_1000_ok"),
        get("bridge-info-closed", "/cpu/bridge/per_1000_ok"),
    ) {
        let throughput = ratio(
            get("bridge-info-closed", "/throughput_per_s"),
            get("bridge-closed", "/throughput_per_s"),
        );
        notes.push(format!(
            "logging (one JSON info line per request): bridge CPU {:+.1}% per event, throughput {:+.1}% (log.level=info vs warn)",
            (info / warn - 1.0) * 100.0,
            throughput.map_or(f64::NAN, |t| (t - 1.0) * 100.0),
        ));
    }
    if let Some(bytes) = phases
        .get("bridge-closed")
        .and_then(|p| p.pointer("/extra/request_bytes"))
        .and_then(Value::as_u64)
    {
        notes.push(format!(
            "bridge requests: {bytes}-byte PacketUpdated bodies; ceiling messages: {} bytes",
            phases
                .get("ceiling-closed")
                .and_then(|p| p.pointer("/extra/message_bytes"))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        ));
    }
    if let Some(r) = ratio(
        get("management-closed", "/throughput_per_s"),
        get("ceiling-closed", "/throughput_per_s"),
    ) {
        notes.push(format!(
            "management API publish (HTTP, no bridge): {r:.2} x the ceiling's throughput"
        ));
    }
    let (tls_throughput, tls_p99, tls_note) = broker_tls(&phases);
    notes.extend(tls_note);
    let (https_throughput, https_p99, https_note) = ingress_https(&phases);
    notes.extend(https_note);
    println!();
    for note in &notes {
        println!("note: {note}");
    }
    println!();
    println!(
        "ratios bridge/ceiling: throughput {}, p99 at the bridge's half-max rate {}; spool/published: spooling {}, draining {}",
        cell(throughput_ratio, 2),
        cell(p99_ratio, 2),
        cell(spool_ratio, 2),
        cell(drain_ratio, 2)
    );
    if tls_throughput.is_some() {
        println!(
            "ratios bridge over amqps / bridge over amqp (tls phase): throughput {}, p99 {}",
            cell(tls_throughput, 2),
            cell(tls_p99, 2)
        );
    }
    if https_throughput.is_some() {
        println!(
            "ratios bridge over https / bridge over http (https phase, ingress): throughput {}, p99 {}",
            cell(https_throughput, 2),
            cell(https_p99, 2)
        );
    }

    let result = json!({
        "command": command,
        "phases": phases,
        "targets": targets,
        "bridge_peak_rss_kib": peak_rss_kib,
        "events": {"queued": queued, "answered_200": promised},
        "ratios": {
            "throughput": throughput_ratio,
            "p99_at_half_max": p99_ratio,
            "spooled": spool_ratio,
            "drained": drain_ratio,
            "broker_tls_throughput": tls_throughput,
            "broker_tls_p99": tls_p99,
            "ingress_https_throughput": https_throughput,
            "ingress_https_p99": https_p99,
        },
        "notes": notes,
    });
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, serde_json::to_string_pretty(&result)?)?;
    println!("(written to {})", out.display());
    Ok(())
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn target(name: &str, measured: Option<String>, pass: Option<bool>) -> Value {
    json!({
        "target": name,
        "measured": measured,
        "result": match pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "n/a",
        },
    })
}

/// Least-squares slope of RSS over time, in KiB per minute.
fn soak(
    samples: &std::path::Path,
    out: &std::path::Path,
    notes: Vec<String>,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(samples).context("reading the RSS samples")?;
    let points: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
        })
        .collect();
    anyhow::ensure!(points.len() >= 2, "fewer than two RSS samples");
    // Leave out the first minute: allocators and pools grow to their working size there.
    let steady: Vec<(f64, f64)> = points.iter().copied().filter(|(t, _)| *t >= 60.0).collect();
    let (fit, window) = if steady.len() >= 2 {
        (&steady, "after the first minute")
    } else {
        (&points, "over all samples")
    };
    let n = fit.len() as f64;
    let mean_t = fit.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_r = fit.iter().map(|p| p.1).sum::<f64>() / n;
    let covariance: f64 = fit.iter().map(|(t, r)| (t - mean_t) * (r - mean_r)).sum();
    let variance: f64 = fit.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
    let slope_kib_per_min = if variance > 0.0 {
        covariance / variance * 60.0
    } else {
        0.0
    };
    let max = points.iter().map(|p| p.1).fold(0.0, f64::max);
    println!();
    println!("{:>8} {:>10}", "seconds", "RSS MiB");
    for (t, r) in &points {
        println!("{t:>8.0} {:>10.1}", r / 1024.0);
    }
    println!();
    println!(
        "RSS slope {window}: {slope_kib_per_min:+.1} KiB/min; max {:.1} MiB ({})",
        max / 1024.0,
        if max / 1024.0 <= RSS_LIMIT_MIB {
            "PASS <= 64 MiB"
        } else {
            "MISS > 64 MiB"
        }
    );
    for note in &notes {
        println!("note: {note}");
    }
    let result = json!({
        "samples": points.iter().map(|(t, r)| json!({"seconds": t, "rss_kib": r})).collect::<Vec<_>>(),
        "slope_kib_per_min": slope_kib_per_min,
        "max_rss_kib": max,
        "notes": notes,
    });
    std::fs::write(out, serde_json::to_string_pretty(&result)?)?;
    println!("(written to {})", out.display());
    Ok(())
}
