//! The benchmark's ceiling: what RabbitMQ itself allows, with no HTTP and no
//! bridge. Publishes persistent messages with publisher confirms through a
//! durable topic exchange to a durable classic queue (its own unique names,
//! deleted after), keeping `--concurrency` confirms pending, spread over
//! `--channels` confirm channels of one connection, as the bridge does.
//!
//! Checks at the end that the queue holds exactly the messages acked, and fails if not.
//!
//! ```text
//! cargo run --release --example bench_ceiling -- --concurrency 64 --duration 10
//! ```
//! `scripts/bench` runs it; `--help` lists every option.

mod bench_support;

use std::{sync::Arc, time::Instant};

use anyhow::{Context, bail};
use bench_support::{LoadArgs, Pacer, Tally, Watcher};
use clap::Parser;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
    options::{
        BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
        QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable, LongString},
};
use serde_json::json;
use uuid::Uuid;

#[derive(Debug, Parser)]
struct Cli {
    /// The broker.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    /// Confirm channels publishes are spread over (the bridge's amqp.channels).
    #[arg(long, default_value_t = 4)]
    channels: usize,
    /// Size of each message body in bytes.
    #[arg(long, default_value_t = 1024)]
    message_bytes: usize,
    #[command(flatten)]
    load: LoadArgs,
}

/// A routing key like the bridge's, and the headers it sets, so the broker does the same work.
const ROUTING_KEY: &str = "packet_updated.ticket.resolved";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let name = format!(
        "bench-ceiling-{}",
        &Uuid::new_v4().simple().to_string()[..12]
    );
    let connection = Connection::connect(
        &cli.amqp_url,
        ConnectionProperties::default().with_connection_name(name.clone().into()),
    )
    .await
    .context("connecting to RabbitMQ")?;
    let setup = connection.create_channel().await?;
    setup
        .exchange_declare(
            name.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    setup
        .queue_declare(
            name.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    setup
        .queue_bind(
            name.as_str().into(),
            name.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let result = run(&cli, &connection, &name).await;

    // Delete what was made, whatever happened; the count of what the queue held
    // is the proof that every acked message arrived.
    let held = setup
        .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = setup
        .exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default())
        .await;
    let _ = connection.close(200, "benchmark done".into()).await;
    let acked = result?;
    let held = held.context("deleting the benchmark queue")?;
    if u64::from(held) != acked {
        bail!("LOST MESSAGES: {acked} publishes were acked but the queue held {held}");
    }
    Ok(())
}

/// Runs the load; returns how many publishes were acked (warmup included).
async fn run(cli: &Cli, connection: &Connection, exchange: &str) -> anyhow::Result<u64> {
    let mut channels = Vec::with_capacity(cli.channels);
    for _ in 0..cli.channels.max(1) {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        channels.push(channel);
    }
    let channels = Arc::new(channels);
    let exchange: Arc<str> = exchange.into();
    let pacer = Pacer::new(&cli.load);
    let watcher = Watcher::start(&cli.load, &pacer);
    let next_channel = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..cli.load.concurrency)
        .map(|worker| {
            let (pacer, channels, exchange, next_channel) = (
                pacer.clone(),
                channels.clone(),
                exchange.clone(),
                next_channel.clone(),
            );
            let size = cli.message_bytes;
            tokio::spawn(async move {
                let mut tally = Tally::new();
                let mut sequence = 0u64;
                while let Some(ticket) = pacer.next().await {
                    sequence += 1;
                    // Round robin over the channels, as the bridge's session does.
                    let turn = next_channel.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let channel = &channels[turn % channels.len()];
                    let body = message_body(worker, sequence, size);
                    let sent = Instant::now();
                    let outcome = publish(channel, &exchange, &body).await;
                    tally.record(ticket, sent, outcome);
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::new();
    for worker in workers {
        tally.merge(worker.await?);
    }
    let cpu = watcher.finish(&cli.load).await;
    bench_support::report(
        &cli.load,
        "ceiling",
        &tally,
        cpu,
        json!({"message_bytes": cli.message_bytes, "channels": channels.len()}),
    )?;
    Ok(tally.ok_total)
}

async fn publish(channel: &Channel, exchange: &str, body: &[u8]) -> Result<(), String> {
    let confirm = channel
        .basic_publish(
            exchange.into(),
            ROUTING_KEY.into(),
            BasicPublishOptions {
                mandatory: true,
                immediate: false,
            },
            body,
            properties(),
        )
        .await
        .map_err(|e| format!("publish: {e}"))?;
    match confirm.await.map_err(|e| format!("confirm: {e}"))? {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => Err("returned".into()),
        Confirmation::Nack(_) => Err("nack".into()),
        Confirmation::NotRequested => Err("not in confirm mode".into()),
    }
}

/// The properties the bridge sets on an event (see `dispatch::event_properties`).
fn properties() -> BasicProperties {
    let mut headers = FieldTable::default();
    for (name, value) in [
        ("event", "packet_updated"),
        ("process_type", "ticket"),
        ("status", "resolved"),
    ] {
        headers.insert(name.into(), AMQPValue::LongString(LongString::from(value)));
    }
    BasicProperties::default()
        .with_content_type("application/cloudevents+json".into())
        .with_delivery_mode(2)
        .with_message_id(Uuid::new_v4().to_string().into())
        .with_timestamp(1_700_000_000)
        .with_type("com.enate.webhook.packet_updated".into())
        .with_app_id("enate-bridge".into())
        .with_headers(headers)
}

/// `size` bytes, unique per (worker, sequence), so the broker cannot share bodies.
fn message_body(worker: usize, sequence: u64, size: usize) -> Vec<u8> {
    let mut body = format!("{{\"worker\":{worker},\"sequence\":{sequence},\"pad\":\"").into_bytes();
    body.resize(size.saturating_sub(2).max(body.len()), b'x');
    body.extend_from_slice(b"\"}");
    body
}
