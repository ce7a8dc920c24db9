//! After the fault has healed: wait until the bridge's spool is empty, take
//! everything the queue holds, and compare it with the load's history.
//!
//! - lost: answered 200 but not in the queue. Must be 0: a 200 is a promise.
//! - dup: references that arrived more than once (allowed: a timed-out publish
//!   may still land, and the spool sends it again; consumers drop by id).
//! - answered non-200 but delivered: allowed (a 503 promises nothing).

use std::{
    collections::HashMap,
    io::Write,
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use crate::poll_until;
use futures::StreamExt;
use lapin::{
    Connection, ConnectionProperties,
    options::{BasicConsumeOptions, QueueDeclareOptions},
    types::FieldTable,
};
use serde_json::Value;

use crate::{
    bridge::Bridge,
    load::{Answer, History, Record},
};

/// Waits until GET /spool says `events == 0`; returns how long that took.
pub async fn wait_spool_drained(bridge: &Bridge, within: Duration) -> Duration {
    let started = Instant::now();
    let drained = poll_until(within, Duration::from_millis(100), || async {
        match bridge.spool().await {
            Ok(spool) if spool["events"] == 0 => Ok(()),
            last => Err(format!("{last:?}")),
        }
    })
    .await;
    if let Err(last) = drained {
        panic!(
            "the spool was not drained within {within:?}: last /spool {last}, /readyz {:?}\n\
             bridge log (without request lines):\n{}",
            bridge.readyz().await,
            tail(&bridge.notable_log(), 60)
        );
    }
    started.elapsed()
}

/// Every message of `queue` (consumed without ack), as the references of the
/// events; stops when the queue is empty and nothing arrived for a second.
pub async fn drain_queue(amqp_url: &str, queue: &str) -> Vec<String> {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .expect("the checker connects to the node");
    let channel = connection.create_channel().await.unwrap();
    let expected = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the checker's queue exists")
        .message_count() as usize;
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "checker".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut references = Vec::with_capacity(expected);
    loop {
        let idle = if references.len() >= expected {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(10)
        };
        match tokio::time::timeout(idle, consumer.next()).await {
            Ok(Some(delivery)) => {
                let delivery = delivery.expect("the checker's consumer works");
                references.push(reference_of(&delivery.data));
            }
            Ok(None) | Err(_) => break,
        }
    }
    let _ = connection.close(200, "checked".into()).await;
    references
}

/// The Enate Reference of an event as published by the bridge.
pub fn reference_of(body: &[u8]) -> String {
    let event: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    event["data"]["reference"]
        .as_str()
        .map_or_else(|| format!("<unreadable: {event}>"), String::from)
}

pub struct Verdict {
    pub name: String,
    pub sent: usize,
    pub ok: usize,
    pub published: usize,
    pub spooled: usize,
    pub unavailable: usize,
    pub transport: usize,
    pub other: usize,
    pub lost: Vec<Record>,
    pub dup: usize,
    /// Events answered non-200 that arrived anyway.
    pub delivered_without_200: usize,
    /// Messages in the queue that no event of the load explains.
    pub unknown: usize,
    /// 200 answers whose body promises nothing known (must not exist).
    pub records_with_unknown_200: Vec<Record>,
    pub published_rate: f64,
    pub spooled_rate: f64,
    pub duration: Duration,
    pub notes: Vec<String>,
}

impl Verdict {
    pub fn compute(name: &str, history: &History, delivered: &[String]) -> Verdict {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for reference in delivered {
            *seen.entry(reference.as_str()).or_default() += 1;
        }
        let records = &history.records;
        let count = |f: fn(&Answer) -> bool| records.iter().filter(|r| f(&r.answer)).count();
        let known: std::collections::HashSet<&str> =
            records.iter().map(|r| r.reference.as_str()).collect();
        Verdict {
            name: name.to_string(),
            sent: records.len(),
            ok: count(Answer::is_200),
            published: count(|a| *a == Answer::Published),
            spooled: count(|a| *a == Answer::Spooled),
            unavailable: count(|a| *a == Answer::Unavailable),
            transport: count(|a| matches!(a, Answer::Transport(_))),
            other: count(|a| matches!(a, Answer::Status(_))),
            lost: records
                .iter()
                .filter(|r| r.answer.is_200() && !seen.contains_key(r.reference.as_str()))
                .cloned()
                .collect(),
            dup: seen.values().filter(|n| **n > 1).count(),
            delivered_without_200: records
                .iter()
                .filter(|r| !r.answer.is_200() && seen.contains_key(r.reference.as_str()))
                .count(),
            unknown: seen.keys().filter(|r| !known.contains(*r)).count(),
            records_with_unknown_200: records
                .iter()
                .filter(|r| matches!(r.answer, Answer::Other200(_)))
                .cloned()
                .collect(),
            published_rate: rate(records, Answer::Published),
            spooled_rate: rate(records, Answer::Spooled),
            duration: history.duration,
            notes: Vec::new(),
        }
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn line(&self) -> String {
        let mut line = format!(
            "FAULT {}: sent={} ok={} lost={} dup={} spooled={} (published={} 503s={} errors={} other={} \
             delivered_without_200={}) spooled_rate={:.0}/s published_rate={:.0}/s load={:.1}s",
            self.name,
            self.sent,
            self.ok,
            self.lost.len(),
            self.dup,
            self.spooled,
            self.published,
            self.unavailable,
            self.transport,
            self.other,
            self.delivered_without_200,
            self.spooled_rate,
            self.published_rate,
            self.duration.as_secs_f64(),
        );
        if self.unknown > 0 {
            line.push_str(&format!(" unknown_messages={}", self.unknown));
        }
        for note in &self.notes {
            line.push(' ');
            line.push_str(note);
        }
        line
    }

    /// Prints the summary line, appends it to the suite's report file, and
    /// fails the test when an event answered 200 did not arrive.
    pub fn report_and_assert(&self, bridge: &Bridge) {
        self.report_and_assert_all(&[bridge]);
    }

    /// `report_and_assert` for a load spread over several bridges: a lost
    /// event is looked up in every bridge's log.
    pub fn report_and_assert_all(&self, bridges: &[&Bridge]) {
        let line = self.line();
        println!("{line}");
        report(&line);
        let unknown_promises: Vec<&Record> = self.records_with_unknown_200.iter().collect();
        assert!(
            unknown_promises.is_empty(),
            "200 answers that are neither published, spooled nor duplicate: {unknown_promises:?}"
        );
        if !self.lost.is_empty() {
            let mut details = String::new();
            for record in self.lost.iter().take(10) {
                details.push_str(&format!(
                    "  {} answered {:?} ids={:?} sent_at={:?} answered_at={:?}\n",
                    record.reference,
                    record.answer,
                    record.event_ids,
                    record.sent_at,
                    record.answered_at
                ));
                for (index, bridge) in bridges.iter().enumerate() {
                    for id in &record.event_ids {
                        for line in bridge.log_lines_with(id) {
                            details.push_str(&format!("    log of bridge {index}: {line}\n"));
                        }
                    }
                }
            }
            let logs: Vec<String> = bridges
                .iter()
                .enumerate()
                .map(|(index, bridge)| {
                    format!(
                        "bridge {index} log (without request lines):\n{}",
                        tail(&bridge.notable_log(), 80)
                    )
                })
                .collect();
            panic!(
                "{} event(s) answered 200 never reached the queue (a 200 is a promise):\n{details}{}",
                self.lost.len(),
                logs.join("\n")
            );
        }
        assert_eq!(
            self.unknown, 0,
            "the queue held messages that the load never sent"
        );
    }
}

/// Answers of one kind per second, over the span in which they were answered.
fn rate(records: &[Record], answer: Answer) -> f64 {
    let times: Vec<Duration> = records
        .iter()
        .filter(|r| r.answer == answer)
        .map(|r| r.answered_at)
        .collect();
    let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) else {
        return 0.0;
    };
    let span = (*last - *first).as_secs_f64();
    if times.len() < 2 || span <= 0.0 {
        return 0.0;
    }
    times.len() as f64 / span
}

fn tail(lines: &[String], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The suite's report in target/ (faults-report.txt, cluster-report.txt, see
/// `suite`): emptied by the first line of a run, appended to after.
fn report(line: &str) {
    static FILE: OnceLock<Mutex<std::fs::File>> = OnceLock::new();
    let file = FILE.get_or_init(|| {
        let path = &crate::suite::get().report;
        Mutex::new(std::fs::File::create(path).expect("the report in target/ can be written"))
    });
    let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
    let _ = writeln!(file, "{line}");
}
