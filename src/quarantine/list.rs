//! `quarantine list`: what the quarantine queue holds, grouped by webhook and
//! reason, each group's oldest and newest. Acks nothing: when its channel
//! closes, every message is back in its place (see `held`).

use std::{collections::BTreeMap, process::ExitCode};

use jiff::Timestamp;
use serde::Serialize;

use super::{connect, open_quarantine};
use crate::config::Settings;

/// One webhook and reason: how many, how big, since when.
#[derive(Debug, Serialize)]
struct Group {
    webhook: String,
    reason: String,
    messages: u64,
    bytes: u64,
    /// Receive times (the AMQP `timestamp`); `None` when no message had one.
    oldest: Option<Timestamp>,
    newest: Option<Timestamp>,
}

#[derive(Debug, Serialize)]
struct Listing {
    queue: String,
    /// Counted when the listing started.
    messages: u32,
    /// Of those, how many another consumer took while this one read.
    not_read: u32,
    groups: Vec<Group>,
}

pub async fn run(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    let connection = connect(settings, "quarantine list").await?;
    // No prefetch limit: none of them is acked, so a limit would stop the
    // broker sending once it was reached.
    let mut reader = open_quarantine(&connection, settings, 0).await?;
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    while let Some(held) = reader.next().await? {
        let webhook = held
            .webhook_header
            .clone()
            .unwrap_or_else(|| "(no x-enate-webhook)".into());
        let group = groups
            .entry((webhook.clone(), held.reason.clone()))
            .or_insert_with(|| Group {
                webhook,
                reason: held.reason.clone(),
                messages: 0,
                bytes: 0,
                oldest: None,
                newest: None,
            });
        group.messages += 1;
        group.bytes += held.body.len() as u64;
        if let Some(received) = held
            .received
            .and_then(|s| Timestamp::from_second(s as i64).ok())
        {
            group.oldest = Some(group.oldest.map_or(received, |t| t.min(received)));
            group.newest = Some(group.newest.map_or(received, |t| t.max(received)));
        }
    }
    let listing = Listing {
        queue: settings.amqp.quarantine_exchange.clone(),
        messages: reader.present,
        not_read: reader.short_by(),
        groups: groups.into_values().collect(),
    };
    super::close(reader, &connection, "listed").await;
    if json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
    } else {
        print!("{}", table(&listing));
    }
    Ok(ExitCode::SUCCESS)
}

/// The listing for a person: a line per group, oldest first.
fn table(listing: &Listing) -> String {
    let mut out = format!("{}: {} messages\n", listing.queue, listing.messages);
    if listing.not_read > 0 {
        out.push_str(&format!(
            "({} were taken by another consumer while this listed)\n",
            listing.not_read
        ));
    }
    if listing.groups.is_empty() {
        return out;
    }
    let shown = |t: Option<Timestamp>| t.map_or_else(|| "-".to_string(), |t| t.to_string());
    out.push_str(&format!(
        "{:<30} {:>8} {:>10}  {:<20}  {:<20}  REASON\n",
        "WEBHOOK", "MESSAGES", "BYTES", "OLDEST", "NEWEST"
    ));
    let mut groups: Vec<&Group> = listing.groups.iter().collect();
    groups.sort_by_key(|group| group.oldest);
    for group in groups {
        out.push_str(&format!(
            "{:<30} {:>8} {:>10}  {:<20}  {:<20}  {}\n",
            group.webhook,
            group.messages,
            group.bytes,
            shown(group.oldest),
            shown(group.newest),
            group.reason
        ));
    }
    out
}
