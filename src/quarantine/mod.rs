//! `enate-bridge quarantine`: what the quarantine queue holds, and driving it
//! again through the current normalizer once the bridge knows better.
//!
//! - `held`: the messages present when a command starts, received without
//!   taking them (what is not acked goes back);
//! - `list`: those messages grouped by webhook and reason (acks nothing);
//! - `replay`: each body made events again and published as the ingress
//!   publishes them, or put back with its current reason; the original is
//!   acked only after the broker confirmed what replaced it.
//!
//! Both open a connection of their own to the first of `amqp.urls` that
//! answers, and end on the first broker failure with a non-zero exit: a
//! command run by a person reports, it does not reconnect behind their back.

mod held;
mod list;
mod replay;

use std::{process::ExitCode, time::Duration};

use anyhow::Context;
use clap::Subcommand;
use lapin::Connection;

use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// What the quarantine queue holds, by webhook and reason, oldest and
    /// newest; takes nothing from it.
    List {
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Each quarantined body through the current normalizer: what now becomes
    /// events is published to amqp.exchange, the rest goes back with its
    /// current reason.
    Replay {
        /// Change nothing; report what a replay would do.
        #[arg(long)]
        dry_run: bool,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Closing gives up after this long.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(settings: &Settings, command: QuarantineCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("quarantine: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (name, result) = match command {
        QuarantineCommand::List { json } => (
            "quarantine list",
            runtime.block_on(list::run(settings, json)),
        ),
        QuarantineCommand::Replay { dry_run, json } => (
            "quarantine replay",
            runtime.block_on(replay::run(settings, dry_run, json)),
        ),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{name}: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A connection to the first of `amqp.urls` that answers; the error names
/// each URL without its password.
async fn connect(settings: &Settings, purpose: &str) -> anyhow::Result<Connection> {
    let amqp = &settings.amqp;
    crate::amqp::connect_for_command(
        &amqp.urls,
        amqp.tls.client(),
        amqp.heartbeat_secs,
        format!("{} ({purpose})", amqp.connection_name),
    )
    .await
    .map_err(|failures| anyhow::anyhow!("cannot connect to RabbitMQ: {failures}"))
}

/// The quarantine queue, read from its start (see `held`).
async fn open_quarantine(
    connection: &Connection,
    settings: &Settings,
    prefetch: u16,
) -> anyhow::Result<held::Reader> {
    let queue = &settings.amqp.quarantine_exchange;
    held::Reader::open(connection, queue, prefetch)
        .await
        .with_context(|| {
            format!(
                "cannot read the quarantine queue {queue:?} (amqp.quarantine_exchange; \
                 the bridge declares it when it connects, unless amqp.declare_topology = false)"
            )
        })
}

/// Closes the reader's channel (handing back what it did not ack) and the
/// connection, giving up after a while: the result is already known, and a
/// connection that died at the last moment must not hold the command.
async fn close(reader: held::Reader, connection: &Connection, why: &str) {
    let closing = async {
        reader.close().await;
        let _ = connection.close(200, why.into()).await;
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing).await;
}
