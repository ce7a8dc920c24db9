//! The command line: `serve` (the default), `check-config`, `healthcheck`,
//! `spool status | list | export`, `send-sample`, `quarantine`, `subscriptions`.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

use crate::{
    config::{LogFormat, Settings},
    delivery::inspect::{self, Form},
    spool::{ReadError, Spool, now_ms},
    startup::Application,
    telemetry,
};

#[derive(Debug, Parser)]
#[command(
    name = "enate-bridge",
    version,
    about = "Enate webhooks in, confirmed CloudEvents in RabbitMQ out"
)]
struct Cli {
    /// TOML configuration file; ENATE_BRIDGE__<SECTION>__<KEY> variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the bridge (the default).
    Serve,
    /// Load and validate the configuration, print it with secrets redacted.
    CheckConfig,
    /// Exit 0 if the running bridge's /readyz says ready, 1 otherwise.
    Healthcheck {
        /// The /readyz URL; by default derived from admin.bind.
        #[arg(long)]
        url: Option<String>,
    },
    /// Look into the spool.
    Spool {
        #[command(subcommand)]
        command: SpoolCommand,
    },
    /// POST realistic sample webhooks to a running bridge, with the configured secret.
    SendSample {
        /// Which webhook's payloads (any casing, or snake_case).
        #[arg(long, default_value = "PacketUpdated", value_parser = crate::sample::parse_webhook)]
        webhook: crate::webhook::Webhook,
        /// Where to POST; by default http://<server.bind>/webhooks/<webhook> (a wildcard address as loopback).
        #[arg(long)]
        url: Option<String>,
        /// How many webhooks to send, each a different packet.
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
    /// The quarantine queue: list what it holds, replay it through the current normalizer.
    Quarantine {
        #[command(subcommand)]
        command: crate::quarantine::QuarantineCommand,
    },
    /// The bridge's webhook subscriptions in Enate, from [enate]: plan, apply, list, delete.
    Subscriptions {
        #[command(subcommand)]
        command: crate::subscriptions::SubscriptionsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SpoolCommand {
    /// Events, bytes and the oldest event's age, whether or not the bridge runs.
    Status,
    /// A line per spooled message, oldest first: key, age, size, webhook,
    /// routing key, event id, why it was spooled.
    List {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// JSON lines with each message itself (properties, headers, body), to
    /// read or publish again by hand.
    Export,
}

pub fn run() -> ExitCode {
    // A usage error exits 1, not clap's 2: `subscriptions plan` exits 2 for
    // "changes pending", and a typo in a CI job must not read as that.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("enate-bridge: invalid configuration: {error}");
            return ExitCode::FAILURE;
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    // Only what checks webhooks needs a secret; the other commands run without one.
    if matches!(command, Command::Serve | Command::CheckConfig)
        && let Err(error) = settings.require_secrets()
    {
        eprintln!("enate-bridge: invalid configuration: {error}");
        return ExitCode::FAILURE;
    }
    match command {
        Command::Serve => serve(settings),
        Command::CheckConfig => {
            print!("{}", settings.to_redacted_toml());
            ExitCode::SUCCESS
        }
        Command::Healthcheck { url } => healthcheck(url.unwrap_or_else(|| readyz_url(&settings))),
        Command::Spool {
            command: SpoolCommand::Status,
        } => spool_status(&settings),
        Command::Spool {
            command: SpoolCommand::List { json },
        } => spool_records(&settings, if json { Form::JsonLines } else { Form::Table }),
        Command::Spool {
            command: SpoolCommand::Export,
        } => spool_records(&settings, Form::Export),
        Command::SendSample {
            webhook,
            url,
            count,
        } => crate::sample::run(&settings, webhook, url, count),
        Command::Quarantine { command } => crate::quarantine::run(&settings, command),
        Command::Subscriptions { command } => {
            match settings.require_subscriptions(command.compares_with_config()) {
                Ok(api_url) => crate::subscriptions::run(&settings, api_url, command),
                Err(error) => {
                    eprintln!("enate-bridge: invalid configuration: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn serve(settings: Settings) -> ExitCode {
    telemetry::init(&settings.log);
    let log_format = settings.log.format;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.amqp_threads())
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("enate-bridge: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let application = Application::build(settings).await?;
        tracing::info!(
            ingress_port = application.ingress_port(),
            admin_port = application.admin_port(),
            version = env!("CARGO_PKG_VERSION"),
            "enate-bridge listening"
        );
        if let Some(reload) = application.certificate_reload() {
            tokio::spawn(reload_on_hangup(reload));
        }
        application.run_until_stopped(shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                "enate-bridge stopped on an error"
            );
            // JSON lines are for log pipelines; a person starting it gets the
            // reason once more, plainly, on standard error. Text logs already are plain.
            if log_format == LogFormat::Json {
                eprintln!("enate-bridge: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Reads the spool file directly (read-only, beside a running bridge if any).
fn spool_status(settings: &Settings) -> ExitCode {
    let dir = &settings.spool.dir;
    match Spool::status(dir) {
        Ok(stats) => {
            let status = serde_json::json!({
                "dir": dir,
                "events": stats.events,
                "bytes": stats.bytes,
                "oldest_age_seconds": stats.oldest_age_seconds(now_ms()),
            });
            println!("{status:#}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("spool status: {}", telemetry::error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

/// Writes the spool's records straight from the directory, read-only and one
/// at a time (see `delivery::inspect`).
fn spool_records(settings: &Settings, form: Form) -> ExitCode {
    let file = Spool::file_in(&settings.spool.dir);
    if !file.exists() {
        // Nothing to list; said on stderr, since a mistyped spool.dir looks
        // exactly like an empty spool otherwise.
        eprintln!(
            "spool: no spool at {} (spool.dir): nothing was ever spooled there",
            file.display()
        );
        return ExitCode::SUCCESS;
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match inspect::write_records(&settings.spool.dir, form, now_ms(), &mut out) {
        Ok(_) => ExitCode::SUCCESS,
        // `spool list | head`: the reader had enough.
        Err(ReadError::Write(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(error) => {
            drop(out);
            eprintln!("spool: {}", telemetry::error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM (what container runtimes send) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler cannot fail on unix");
        tokio::select! {
            _ = interrupt => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// On each SIGHUP, asks the HTTPS ingress to read its certificate files
/// again (they are also polled; the signal makes it immediate). Ends with the
/// runtime.
async fn reload_on_hangup(reload: crate::ingress_tls::ReloadRequest) {
    #[cfg(unix)]
    {
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .expect("installing a SIGHUP handler cannot fail on unix");
        while hangup.recv().await.is_some() {
            reload.request();
        }
    }
    #[cfg(not(unix))]
    let _ = reload;
}

/// admin.bind as a URL to reach from the same host.
fn readyz_url(settings: &Settings) -> String {
    format!(
        "http://{}/readyz",
        settings.admin.bind.reachable_from_here()
    )
}

fn healthcheck(url: String) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("healthcheck: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let answer = runtime.block_on(async {
        // Plain HTTP to this host only: an empty trust store, so the probe
        // works in an image without CA certificates (the platform verifier
        // refuses to build without any).
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .tls_certs_only(std::iter::empty())
            .build()?;
        let response = client.get(&url).send().await?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Ok::<_, reqwest::Error>((status, body))
    });
    match answer {
        Ok((status, body)) if status.is_success() => {
            println!("{body}");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("healthcheck: {url} answered {status}: {body}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!(
                "healthcheck: {url} did not answer: {}",
                telemetry::error_chain(&error)
            );
            ExitCode::FAILURE
        }
    }
}
