//! What the benchmark's load clients share: the pacing of requests (closed or
//! open loop), latency histograms, CPU and memory readings of the processes
//! under test, and the JSON each phase writes for `bench_report`.
//!
//! Not an example of its own: `examples/bench_*.rs` include it with `mod bench_support;`.

#![allow(dead_code)] // each client uses its own part of it

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// The options every load client takes, so `scripts/bench` drives them alike.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Requests in flight at most (HTTP connections, or confirms pending).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Measured seconds, after the warmup.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring starts (counted for delivery, not for latency).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Open loop at this many requests per second; without it, closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Where to write the phase's JSON.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A name for the phase in the report, e.g. `bridge-closed`.
    #[arg(long, default_value = "phase")]
    pub label: String,
    /// A process to measure during the window: NAME=PID (repeatable).
    #[arg(long = "watch", value_parser = parse_watch)]
    pub watch: Vec<(String, u32)>,
    /// Clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    pub clk_tck: u64,
}

fn parse_watch(text: &str) -> Result<(String, u32), String> {
    let (name, pid) = text.split_once('=').ok_or("expected NAME=PID")?;
    let pid = pid.parse().map_err(|_| format!("{pid:?} is not a pid"))?;
    Ok((name.to_string(), pid))
}

/// Hands out the start times of requests.
///
/// Closed loop: a worker starts its next request as soon as its last one ends.
/// Open loop: request `i` is *intended* to start at `start + i / rate`, whatever
/// happened before; a worker that is late starts it at once, and its latency is
/// counted from the intended time. So a stall shows in the latency of every
/// request it delayed (no coordinated omission), as wrk2 does. wrk itself cannot
/// run open loop, which is why these clients exist.
pub struct Pacer {
    start: Instant,
    measure_from: Instant,
    end: Instant,
    rate: Option<f64>,
    next: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    /// When the request should start (open loop) or starts (closed loop).
    pub intended: Instant,
    /// Whether it falls in the measured window (after the warmup).
    pub measured: bool,
}

impl Pacer {
    pub fn new(args: &LoadArgs) -> Arc<Self> {
        let start = Instant::now() + Duration::from_millis(20);
        let measure_from = start + Duration::from_secs_f64(args.warmup);
        Arc::new(Self {
            start,
            measure_from,
            end: measure_from + Duration::from_secs_f64(args.duration),
            rate: args.rate,
            next: AtomicU64::new(0),
        })
    }

    /// The next request to make, waiting for its time in open loop; `None` once the run is over.
    pub async fn next(&self) -> Option<Ticket> {
        let intended = match self.rate {
            None => {
                tokio::time::sleep_until(self.start.into()).await;
                Instant::now()
            }
            Some(rate) => {
                let i = self.next.fetch_add(1, Ordering::Relaxed);
                let intended = self.start + Duration::from_secs_f64(i as f64 / rate);
                if intended < self.end {
                    // tokio's timer has a 1 ms tick: a request may start up to 1 ms
                    // late, and that counts in its latency, for every target alike.
                    tokio::time::sleep_until(intended.into()).await;
                }
                intended
            }
        };
        (intended < self.end).then_some(Ticket {
            intended,
            measured: intended >= self.measure_from,
        })
    }

    pub fn measure_from(&self) -> Instant {
        self.measure_from
    }

    pub fn end(&self) -> Instant {
        self.end
    }
}

/// One worker's tally; merged into the phase's at the end.
pub struct Tally {
    /// From the intended start to the answer, in microseconds.
    latency: Histogram<u64>,
    /// From the actual start to the answer (equal to `latency` in closed loop).
    service: Histogram<u64>,
    /// Successes in the window.
    pub ok: u64,
    /// Successes over the whole run, warmup included: what the queue must hold.
    pub ok_total: u64,
    /// Failures in the window, by kind.
    pub errors: BTreeMap<String, u64>,
    /// Failures over the whole run.
    pub errors_total: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

impl Tally {
    pub fn new() -> Self {
        // 1 µs to 100 s at 3 significant digits.
        let histogram = || Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid bounds");
        Self {
            latency: histogram(),
            service: histogram(),
            ok: 0,
            ok_total: 0,
            errors: BTreeMap::new(),
            errors_total: 0,
        }
    }

    /// Records one request that started at `sent` and ended now.
    pub fn record(&mut self, ticket: Ticket, sent: Instant, outcome: Result<(), String>) {
        let done = Instant::now();
        match outcome {
            Ok(()) => {
                self.ok_total += 1;
                if ticket.measured {
                    self.ok += 1;
                    let micros = |from: Instant| (done - from).as_micros().max(1) as u64;
                    self.latency.saturating_record(micros(ticket.intended));
                    self.service.saturating_record(micros(sent));
                }
            }
            Err(kind) => {
                self.errors_total += 1;
                if ticket.measured {
                    *self.errors.entry(kind).or_default() += 1;
                }
            }
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.latency.add(&other.latency).expect("same bounds");
        self.service.add(&other.service).expect("same bounds");
        self.ok += other.ok;
        self.ok_total += other.ok_total;
        self.errors_total += other.errors_total;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
    }
}

fn summary(histogram: &Histogram<u64>) -> Value {
    let ms = |micros: u64| micros as f64 / 1000.0;
    json!({
        "p50_ms": ms(histogram.value_at_quantile(0.50)),
        "p90_ms": ms(histogram.value_at_quantile(0.90)),
        "p99_ms": ms(histogram.value_at_quantile(0.99)),
        "p999_ms": ms(histogram.value_at_quantile(0.999)),
        "max_ms": ms(histogram.max()),
        "mean_ms": histogram.mean() / 1000.0,
    })
}

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: u32, clk_tck: u64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces:
    // state is field 3, utime 14 and stime 15, so 11 and 12 here.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clk_tck as f64)
}

/// A `Vm*:` line of /proc/<pid>/status, in KiB (VmHWM is the peak resident set).
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
}

/// Reads the CPU time of the watched processes (and of this client) at the
/// start and at the end of the measured window.
pub struct Watcher {
    readings: Arc<Mutex<Vec<Vec<Option<f64>>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    pub fn start(args: &LoadArgs, pacer: &Pacer) -> Self {
        let readings = Arc::new(Mutex::new(Vec::new()));
        let mut pids: Vec<u32> = args.watch.iter().map(|(_, pid)| *pid).collect();
        pids.push(std::process::id());
        let (from, end, clk_tck) = (pacer.measure_from(), pacer.end(), args.clk_tck);
        let sink = readings.clone();
        let task = tokio::spawn(async move {
            for at in [from, end] {
                tokio::time::sleep_until(at.into()).await;
                let reading = pids.iter().map(|pid| cpu_seconds(*pid, clk_tck)).collect();
                sink.lock().unwrap().push(reading);
            }
        });
        Self { readings, task }
    }

    /// CPU seconds used in the window, by name (`client` is this process).
    pub async fn finish(self, args: &LoadArgs) -> BTreeMap<String, f64> {
        let _ = self.task.await;
        let readings = self.readings.lock().unwrap();
        let mut names: Vec<String> = args.watch.iter().map(|(name, _)| name.clone()).collect();
        names.push("client".into());
        let mut used = BTreeMap::new();
        if let [before, after] = readings.as_slice() {
            for (i, name) in names.into_iter().enumerate() {
                if let (Some(b), Some(a)) = (before[i], after[i]) {
                    used.insert(name, a - b);
                }
            }
        }
        used
    }
}

/// The phase's result: printed as one line, written as JSON for `bench_report`.
pub fn report(
    args: &LoadArgs,
    target: &str,
    tally: &Tally,
    cpu: BTreeMap<String, f64>,
    extra: Value,
) -> anyhow::Result<Value> {
    let throughput = tally.ok as f64 / args.duration;
    let cpu_json: serde_json::Map<String, Value> = cpu
        .iter()
        .map(|(name, seconds)| {
            let per_1000 = if tally.ok > 0 {
                seconds / tally.ok as f64 * 1000.0
            } else {
                f64::NAN
            };
            (
                name.clone(),
                json!({"seconds": seconds, "per_1000_ok": per_1000, "cores": seconds / args.duration}),
            )
        })
        .collect();
    let rss: serde_json::Map<String, Value> = args
        .watch
        .iter()
        .map(|(name, pid)| {
            (
                name.clone(),
                json!({"hwm_kib": status_kib(*pid, "VmHWM"), "rss_kib": status_kib(*pid, "VmRSS")}),
            )
        })
        .collect();
    let result = json!({
        "label": args.label,
        "target": target,
        "mode": if args.rate.is_some() { "open" } else { "closed" },
        "rate": args.rate,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "ok": tally.ok,
        "ok_total": tally.ok_total,
        "errors": tally.errors,
        "errors_total": tally.errors_total,
        "throughput_per_s": throughput,
        "latency": summary(&tally.latency),
        "service": summary(&tally.service),
        "cpu": cpu_json,
        "memory": rss,
        "extra": extra,
    });
    let latency = &result["latency"];
    eprintln!(
        "{:<22} {:>9.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  errors {}",
        args.label,
        throughput,
        latency["p50_ms"].as_f64().unwrap_or(f64::NAN),
        latency["p99_ms"].as_f64().unwrap_or(f64::NAN),
        latency["p999_ms"].as_f64().unwrap_or(f64::NAN),
        tally.errors_total,
    );
    // The one line on standard output, for scripts/bench: successes over the
    // whole run (what the queue must hold) and the measured throughput.
    println!("{} {throughput:.1}", tally.ok_total);
    if let Some(path) = &args.out {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&result)?)?;
    }
    Ok(result)
}
