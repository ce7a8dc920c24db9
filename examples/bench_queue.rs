//! The benchmark's AMQP chores around the bridge: bind a queue that catches
//! every event, take the count of what arrived (purging it, so a long run does
//! not fill the broker's memory), and delete the benchmark's exchanges and queues.
//!
//! ```text
//! bench_queue bind   [--exchange X] --queue Q   # durable Q, bound to X with '#'
//! bench_queue purge  --queue Q                  # prints how many messages Q held
//! bench_queue count  --queue Q [--queue R ...]  # prints "Q N" per queue (passive declare)
//! bench_queue delete --queue Q ... --exchange X ...
//! ```

use anyhow::Context;
use clap::{Parser, Subcommand};
use lapin::{
    Connection, ConnectionProperties,
    options::{
        ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
        QueuePurgeOptions,
    },
    types::FieldTable,
};

#[derive(Debug, Parser)]
struct Cli {
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Declare a durable queue and, with `--exchange`, bind it to the exchange with `#`.
    Bind {
        #[arg(long)]
        exchange: Option<String>,
        #[arg(long)]
        queue: String,
    },
    /// Empty the queue and print how many messages it held.
    Purge {
        #[arg(long)]
        queue: String,
    },
    /// Print "QUEUE COUNT" for each queue.
    Count {
        #[arg(long, required = true)]
        queue: Vec<String>,
    },
    /// Delete queues and exchanges; missing ones are not an error.
    Delete {
        #[arg(long)]
        queue: Vec<String>,
        #[arg(long)]
        exchange: Vec<String>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let connection = Connection::connect(&cli.amqp_url, ConnectionProperties::default())
        .await
        .context("connecting to RabbitMQ")?;
    let channel = connection.create_channel().await?;
    match cli.command {
        Command::Bind { exchange, queue } => {
            channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            if let Some(exchange) = exchange {
                channel
                    .queue_bind(
                        queue.as_str().into(),
                        exchange.as_str().into(),
                        "#".into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .with_context(|| format!("binding {queue} to {exchange}"))?;
            }
        }
        Command::Purge { queue } => {
            let count = channel
                .queue_purge(queue.as_str().into(), QueuePurgeOptions::default())
                .await
                .with_context(|| format!("purging {queue}"))?;
            println!("{count}");
        }
        Command::Count { queue } => {
            for name in queue {
                let declared = channel
                    .queue_declare(
                        name.as_str().into(),
                        QueueDeclareOptions {
                            passive: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await
                    .with_context(|| format!("queue {name}"))?;
                println!("{name} {}", declared.message_count());
            }
        }
        Command::Delete { queue, exchange } => {
            // A failed delete closes its channel, so each gets a fresh one.
            for name in queue {
                let channel = connection.create_channel().await?;
                let _ = channel
                    .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
            for name in exchange {
                let channel = connection.create_channel().await?;
                let _ = channel
                    .exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default())
                    .await;
            }
        }
    }
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}
