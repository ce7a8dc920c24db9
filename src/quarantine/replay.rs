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
//! Killed at any moment, a run leaves each message either still in the
//! quarantine (unacked messages go back, see `held`) or replayed, perhaps
//! both: a second run completes the job, duplicates allowed, losses not.
//! The first broker failure ends the run with an error, the message in hand
//! unacked.

use std::{collections::BTreeMap, process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use jiff::Timestamp;
use lapin::{Channel, Confirmation, Connection, PublisherConfirm, options::BasicAckOptions};
use serde::Serialize;

use super::{connect, held::Held, open_quarantine};
use crate::{
    config::Settings,
    delivery::{Destinations, Outgoing},
    event::{EventBuilder, event_id},
    payload::{SplitError, split_body_at_most},
};

/// Unacked messages in hand at once: replay acks each as it goes.
const PREFETCH: u16 = 64;

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
    let connection = connect(settings, "quarantine replay").await?;
    let publisher = if dry_run {
        None
    } else {
        Some(confirm_channel(&connection).await?)
    };
    // A dry run acks nothing, so it cannot have a prefetch limit (see `list`).
    let prefetch = if dry_run { 0 } else { PREFETCH };
    let mut reader = open_quarantine(&connection, settings, prefetch).await?;
    let builder = EventBuilder::from_settings(settings);
    let destinations = Destinations {
        exchange: settings.amqp.exchange.clone(),
        quarantine_exchange: settings.amqp.quarantine_exchange.clone(),
    };
    let mut report = Report {
        dry_run,
        queue: settings.amqp.quarantine_exchange.clone(),
        messages: reader.present,
        ..Report::default()
    };
    let confirm_timeout = Duration::from_millis(settings.amqp.confirm_timeout_ms);
    let mut invalid: BTreeMap<(String, String), u64> = BTreeMap::new();
    while let Some(held) = reader.next().await? {
        let fate = fate(&held, &builder, settings.server.max_events_per_request);
        match &fate {
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
        if let Some(channel) = &publisher {
            // Publishing, confirming and acking, bounded as the ingress's
            // publish is (`amqp.confirm_timeout_ms`).
            tokio::time::timeout(
                confirm_timeout,
                settle(channel, &destinations, &held, &fate),
            )
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "RabbitMQ did not confirm within {} ms (amqp.confirm_timeout_ms); \
                         the message in hand stays in the quarantine",
                    confirm_timeout.as_millis()
                )
            })??;
        }
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
    super::close(reader, connection, "replayed").await;
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

/// Publishes what replaces `held`, waits for every confirm, then acks it.
async fn settle(
    channel: &Channel,
    destinations: &Destinations,
    held: &Held,
    fate: &Fate,
) -> anyhow::Result<()> {
    let mut pending = Vec::new();
    match fate {
        Fate::Events(events) => {
            for event in events {
                let message = destinations.amqp_message(event);
                pending.push(publish(channel, message).await?);
            }
        }
        Fate::StillInvalid(message) => {
            pending.push(publish(channel, destinations.amqp_message(message)).await?);
        }
        Fate::Unknown => {
            let message = crate::amqp::Message {
                exchange: destinations.quarantine_exchange.as_str().into(),
                routing_key: held.routing_key.as_str().into(),
                body: held.body.clone().into(),
                properties: held.properties.clone(),
            };
            pending.push(publish(channel, message).await?);
        }
    }
    for confirm in pending {
        match confirm.await.context("waiting for RabbitMQ's confirm")? {
            Confirmation::Ack(None) => {}
            Confirmation::Ack(Some(_)) => {
                bail!(
                    "RabbitMQ returned a message as unroutable; the original stays in the quarantine"
                )
            }
            Confirmation::Nack(_) => {
                bail!("RabbitMQ refused a message (nack); the original stays in the quarantine")
            }
            Confirmation::NotRequested => bail!("the channel is not in confirm mode"),
        }
    }
    held.acker
        .ack(BasicAckOptions::default())
        .await
        .context("acking the replayed quarantine message")?;
    Ok(())
}

/// Sends one message, `mandatory` as the ingress sends it.
async fn publish(
    channel: &Channel,
    message: crate::amqp::Message,
) -> anyhow::Result<PublisherConfirm> {
    message
        .send(channel)
        .await
        .context("publishing to RabbitMQ")
}

async fn confirm_channel(connection: &Connection) -> anyhow::Result<Channel> {
    crate::amqp::confirm_channel(connection)
        .await
        .context("putting the replay's channel in confirm mode")
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
