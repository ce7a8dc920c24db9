//! `quarantine replay`: every message the quarantine queue holds at the start,
//! its body run through the current normalizer with its `x-enate-webhook`.
//!
//! - It becomes events: they are published to `amqp.exchange` exactly as the
//!   ingress publishes them (`Outgoing::events`, the same routing key,
//!   headers, properties, and the same event id, which comes from the
//!   webhook and the exact bytes), so consumers that drop duplicates by id
//!   see a replay as the event they missed.
//! - It still cannot: it is published anew to the quarantine with its current
//!   reason (at the queue's tail, past what this run reads, so the run ends).
//! - It names no webhook the bridge knows: it is put back unchanged, the same way.
//!
//! The original is acked only once the broker has confirmed what replaced it.
//! Confirms are pipelined, as the ingress's are: up to `IN_FLIGHT` originals
//! have their replacements on the wire at once, sent in order by one lane
//! (`amqp::LaneHandle`, which also matches a returned message to its own
//! publish), each original acked as its own confirms arrive.
//!
//! Killed at any moment, a run leaves each message either still in the
//! quarantine (unacked messages go back, see `held`) or replayed, perhaps
//! both: a second run completes the job, duplicates allowed, losses not.
//! The first broker failure ends the run with an error: what is already in
//! flight is settled first (acked where confirmed), the rest stays unacked.

use std::{collections::BTreeMap, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use futures::{StreamExt, stream::FuturesOrdered};
use jiff::Timestamp;
use lapin::options::BasicAckOptions;
use serde::Serialize;
use tokio_util::task::TaskTracker;

use super::{connect, held::Held, open_quarantine};
use crate::{
    amqp::{LaneHandle, Ticket},
    config::Settings,
    delivery::{Destinations, Outgoing},
    event::{EventBuilder, event_id},
    payload::{SplitError, split_body_at_most},
};

/// Originals whose replacements are in flight at once.
const IN_FLIGHT: usize = 32;
/// Unacked messages the broker sends ahead: more than are in flight, so the
/// next one is always there to read.
const PREFETCH: u16 = 2 * IN_FLIGHT as u16;
/// Confirms the lane keeps in flight (an original can have several events).
const LANE_WINDOW: usize = 256;

/// What one quarantined message becomes now.
enum Fate {
    /// Its events, to `amqp.exchange`.
    Events(Vec<Outgoing>),
    /// Still invalid: back to the quarantine with this reason.
    StillInvalid(Outgoing),
    /// No webhook the bridge knows: back to the quarantine unchanged.
    Unknown,
}

/// What a run did (or, with `--dry-run`, would do).
#[derive(Debug, Default, Serialize)]
struct Report {
    dry_run: bool,
    queue: String,
    /// Counted at the start: what this run reads.
    messages: u32,
    /// Messages whose events were published (and the originals acked).
    replayed: u64,
    /// Events published for them, by routing key.
    events: u64,
    events_by_routing_key: BTreeMap<String, u64>,
    /// Put back with their current reason, by webhook and reason.
    still_quarantined: u64,
    still_invalid: Vec<StillInvalid>,
    /// Put back unchanged: their `x-enate-webhook` names no webhook.
    unknown_webhook: u64,
    /// Taken by another consumer while this one ran.
    not_read: u32,
}

#[derive(Debug, Serialize)]
struct StillInvalid {
    webhook: String,
    reason: String,
    messages: u64,
}

pub async fn run(settings: &Settings, dry_run: bool, json: bool) -> anyhow::Result<ExitCode> {
    let connection = Arc::new(connect(settings, "quarantine replay").await?);
    let lane_tasks = TaskTracker::new();
    let publisher = (!dry_run).then(|| Publisher {
        lane: LaneHandle::start(connection.clone(), LANE_WINDOW, &lane_tasks),
        destinations: Destinations {
            exchange: settings.amqp.exchange.clone(),
            quarantine_exchange: settings.amqp.quarantine_exchange.clone(),
        },
        confirm_timeout: Duration::from_millis(settings.amqp.confirm_timeout_ms),
    });
    // A dry run acks nothing, so it cannot have a prefetch limit (see `list`).
    let prefetch = if dry_run { 0 } else { PREFETCH };
    let mut reader = open_quarantine(&connection, settings, prefetch).await?;
    let builder = EventBuilder::from_settings(settings);
    let mut report = Report {
        dry_run,
        queue: settings.amqp.quarantine_exchange.clone(),
        messages: reader.present,
        ..Report::default()
    };
    let mut invalid: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut in_flight = FuturesOrdered::new();
    let mut failure = None;
    loop {
        if in_flight.len() >= IN_FLIGHT {
            if let Some(Err(error)) = in_flight.next().await {
                failure = Some(error);
                break;
            }
            continue;
        }
        let held = match reader.next().await {
            Ok(Some(held)) => held,
            Ok(None) => break,
            Err(error) => {
                failure = Some(error);
                break;
            }
        };
        let fate = fate(&held, &builder, settings.server.max_events_per_request);
        count(&mut report, &mut invalid, &fate);
        if let Some(publisher) = &publisher {
            match publisher.send(&held, &fate).await {
                Ok(tickets) => in_flight.push_back(publisher.settle(held, tickets)),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
    }
    // What is in flight is settled either way: each confirmed original acked,
    // so that a failed run leaves as few duplicates as it can.
    while let Some(settled) = in_flight.next().await {
        if let Err(error) = settled {
            failure.get_or_insert(error);
        }
    }
    // Everything in flight is settled: dropping the handle ends the lane.
    drop(publisher);
    if let Some(error) = failure {
        return Err(error);
    }
    report.not_read = reader.short_by();
    report.still_invalid = invalid
        .into_iter()
        .map(|((webhook, reason), messages)| StillInvalid {
            webhook,
            reason,
            messages,
        })
        .collect();
    super::close(reader, &connection, "replayed").await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// The body through the current normalizer, as the ingress would take it now.
fn fate(held: &Held, builder: &EventBuilder, max_events: usize) -> Fate {
    let Some(webhook) = held.webhook else {
        return Fate::Unknown;
    };
    // The time the ingress received it, which the event's `time` says.
    let received = held
        .received
        .and_then(|second| Timestamp::from_second(second as i64).ok())
        .unwrap_or_else(Timestamp::now);
    let events = match split_body_at_most(&held.body, max_events) {
        Ok(objects) => Outgoing::events(builder, webhook, objects, received).map_err(|e| e.0),
        Err(SplitError::Invalid(invalid)) => Err(invalid.0),
        Err(SplitError::TooManyEvents { max }) => Err(format!(
            "more than {max} objects in one body (server.max_events_per_request)"
        )),
    };
    match events {
        Ok(events) => Fate::Events(events),
        Err(reason) => Fate::StillInvalid(Outgoing::quarantined(
            event_id(webhook, &held.body),
            webhook,
            &reason,
            held.body.clone(),
            held.content_type.as_deref(),
            held.received
                .unwrap_or_else(|| received.as_second().max(0) as u64),
        )),
    }
}

fn held_reason(message: &Outgoing) -> String {
    message
        .headers
        .iter()
        .find(|(name, _)| name == "x-quarantine-reason")
        .map(|(_, reason)| reason.clone())
        .unwrap_or_default()
}

/// Counts what `fate` makes of one message in the report.
fn count(report: &mut Report, invalid: &mut BTreeMap<(String, String), u64>, fate: &Fate) {
    match fate {
        Fate::Events(events) => {
            report.replayed += 1;
            report.events += events.len() as u64;
            for event in events {
                *report
                    .events_by_routing_key
                    .entry(event.routing_key.clone())
                    .or_default() += 1;
            }
        }
        Fate::StillInvalid(message) => {
            report.still_quarantined += 1;
            let reason = held_reason(message);
            *invalid
                .entry((message.webhook.enate_name().to_string(), reason))
                .or_default() += 1;
        }
        Fate::Unknown => report.unknown_webhook += 1,
    }
}

/// Where a run publishes: one lane, so its messages go out in read order.
struct Publisher {
    lane: LaneHandle,
    destinations: Destinations,
    confirm_timeout: Duration,
}

impl Publisher {
    /// Queues on the lane what replaces `held`: its tickets, in order.
    async fn send(&self, held: &Held, fate: &Fate) -> anyhow::Result<Vec<Ticket>> {
        let messages = match fate {
            Fate::Events(events) => events
                .iter()
                .map(|event| self.destinations.amqp_message(event))
                .collect(),
            Fate::StillInvalid(message) => vec![self.destinations.amqp_message(message)],
            Fate::Unknown => vec![crate::amqp::Message {
                exchange: self.destinations.quarantine_exchange.as_str().into(),
                routing_key: held.routing_key.as_str().into(),
                body: held.body.clone().into(),
                properties: held.properties.clone(),
            }],
        };
        let mut tickets = Vec::with_capacity(messages.len());
        for message in messages {
            // The lane waits for room while the broker confirms nothing (a
            // memory alarm): bounded like a confirm.
            let submitted = tokio::time::timeout(self.confirm_timeout, self.lane.submit(message))
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "RabbitMQ took no message within {} ms (amqp.confirm_timeout_ms)",
                        self.confirm_timeout.as_millis()
                    )
                })?;
            tickets.push(submitted.context("publishing to RabbitMQ")?);
        }
        Ok(tickets)
    }

    /// Waits for every confirm of `held`'s replacements, then acks it; bounded
    /// as the ingress's publish is (`amqp.confirm_timeout_ms`), counted from
    /// when they were queued (not from when this future is first polled).
    fn settle(
        &self,
        held: Held,
        tickets: Vec<Ticket>,
    ) -> impl Future<Output = anyhow::Result<()>> + use<> {
        let timeout = self.confirm_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        async move {
            let confirms = async {
                for ticket in tickets {
                    ticket.verdict().await.map_err(|error| {
                        anyhow::anyhow!("{error}; the original stays in the quarantine")
                    })?;
                }
                anyhow::Ok(())
            };
            tokio::time::timeout_at(deadline, confirms)
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "RabbitMQ did not confirm within {} ms (amqp.confirm_timeout_ms); \
                     the original stays in the quarantine",
                        timeout.as_millis()
                    )
                })??;
            held.acker
                .ack(BasicAckOptions::default())
                .await
                .context("acking the replayed quarantine message")?;
            Ok(())
        }
    }
}

/// The report for a person.
fn text(report: &Report) -> String {
    let verb = |done: &'static str, would: &'static str| if report.dry_run { would } else { done };
    let mut out = format!(
        "{}{}: {} messages read\n",
        if report.dry_run {
            "dry run, nothing changed. "
        } else {
            ""
        },
        report.queue,
        report.messages - report.not_read
    );
    out.push_str(&format!(
        "{} {} as {} events\n",
        report.replayed,
        verb("replayed", "would be replayed"),
        report.events
    ));
    for (routing_key, count) in &report.events_by_routing_key {
        out.push_str(&format!("  {count:>8}  {routing_key}\n"));
    }
    out.push_str(&format!(
        "{} still invalid, {} to the quarantine with their current reason\n",
        report.still_quarantined,
        verb("put back", "would go back")
    ));
    for group in &report.still_invalid {
        out.push_str(&format!(
            "  {:>8}  {}  {}\n",
            group.messages, group.webhook, group.reason
        ));
    }
    if report.unknown_webhook > 0 {
        out.push_str(&format!(
            "{} name no webhook the bridge knows (x-enate-webhook), {} unchanged\n",
            report.unknown_webhook,
            verb("put back", "would go back")
        ));
    }
    if report.not_read > 0 {
        out.push_str(&format!(
            "{} were taken by another consumer while this ran\n",
            report.not_read
        ));
    }
    out
}
