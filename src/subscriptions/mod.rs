//! `enate-bridge subscriptions plan | apply | list | delete | verify`: the
//! bridge's webhook subscriptions in Enate, kept as code in `[enate]`.
//!
//! - `crate::enate_api` (beside it, so the configuration can use its codes):
//!   Enate's paths, field names and codes, all in one place;
//! - `client`: the HTTP client (authentication, retries, errors without secrets);
//! - `plan`: configuration against Enate, line by line; `apply`: carrying it out;
//! - `verify`: Enate's test message for each, watched for in RabbitMQ;
//! - `output`: tables and JSON.
//!
//! Exit codes: 0 done (for `plan`: nothing to do; for `verify`: every
//! subscription delivered), 2 `plan` found changes, 1 an error (for `apply`: a
//! line failed; the others were still applied; for `verify`: one was not delivered).

mod apply;
mod client;
mod output;
mod plan;
mod verify;

pub use apply::{Applied, Outcome};
pub use client::{EnateClient, EnateError, Operation, Unsubscribed};
pub use plan::{Action, Desired, Expected, Plan, Row, points_at_bridge};
pub use verify::{Verdict, Verified, VerifyOptions};

use std::process::ExitCode;

use reqwest::Url;
use uuid::Uuid;

use crate::{config::Settings, enate_api};

#[derive(Debug, clap::Subcommand)]
pub enum SubscriptionsCommand {
    /// Compare [enate] subscriptions with Enate's; exit 0 if nothing to do, 2 if apply would change something.
    Plan {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create the missing subscriptions and replace those whose header or secret differs.
    Apply {
        /// Also delete the bridge's own subscriptions that [enate] no longer lists.
        #[arg(long)]
        prune: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List every subscription Enate has, marking the bridge's own.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete one subscription by its GUID.
    Delete {
        /// The subscription's GUID, as `list` shows it.
        guid: Uuid,
    },
    /// Ask Enate for each subscription's test message and watch RabbitMQ for it; exit 0 only if all arrive.
    Verify {
        /// Seconds each test message has to reach RabbitMQ.
        #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,
        /// The bridge's admin /metrics, to read what it did with a message that did not
        /// arrive. Default: admin.bind (loopback for 0.0.0.0).
        #[arg(long, value_name = "URL")]
        admin_url: Option<Url>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

impl SubscriptionsCommand {
    /// Whether the command compares Enate's subscriptions with `[enate]`, and
    /// so needs a secret to give them and the bridge's public URL.
    pub fn compares_with_config(&self) -> bool {
        matches!(
            self,
            Self::Plan { .. } | Self::Apply { .. } | Self::Verify { .. }
        )
    }
}

/// Exit code of `plan` when changes are pending.
const CHANGES_PENDING: u8 = 2;

/// `api_url` is `enate.api_url`, which `Settings::require_subscriptions` found set.
pub fn run(settings: &Settings, api_url: &Url, command: SubscriptionsCommand) -> ExitCode {
    let name = match &command {
        SubscriptionsCommand::Plan { .. } => "plan",
        SubscriptionsCommand::Apply { .. } => "apply",
        SubscriptionsCommand::List { .. } => "list",
        SubscriptionsCommand::Delete { .. } => "delete",
        SubscriptionsCommand::Verify { .. } => "verify",
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("subscriptions {name}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(settings, api_url, command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("subscriptions {name}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A failure that ends a command: Enate's, or (for `verify`) RabbitMQ's.
#[derive(Debug, thiserror::Error)]
enum CommandError {
    #[error(transparent)]
    Enate(#[from] EnateError),
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
}

async fn execute(
    settings: &Settings,
    api_url: &Url,
    command: SubscriptionsCommand,
) -> Result<ExitCode, CommandError> {
    // What this needs was checked at load (`Settings::require_subscriptions`).
    let enate = &settings.enate;
    let secrets = &settings.auth.secrets;
    let expected = Expected {
        header: settings.auth.header.as_str(),
        secrets,
    };
    let client = EnateClient::connect(enate, api_url, secrets).await?;
    let existing = client.list().await?;
    let desired = Desired::from_settings(enate);
    match command {
        SubscriptionsCommand::Plan { json } => {
            let plan = Plan::new(&desired, &existing, &expected, enate.public_url.as_str());
            print!("{}", output::plan(&plan, json));
            Ok(if plan.has_changes() {
                ExitCode::from(CHANGES_PENDING)
            } else {
                ExitCode::SUCCESS
            })
        }
        SubscriptionsCommand::Apply { prune, json } => {
            let plan = Plan::new(&desired, &existing, &expected, enate.public_url.as_str());
            let applied = apply::apply(&client, plan, &expected, prune).await;
            print!("{}", output::applied(&applied, json));
            Ok(
                if applied.iter().any(|line| line.result == Outcome::Failed) {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                },
            )
        }
        SubscriptionsCommand::List { json } => {
            let ours = |subscription: &enate_api::Subscription| {
                points_at_bridge(
                    &subscription.subscriber_url,
                    enate.public_url.as_str(),
                    &desired,
                )
            };
            print!("{}", output::list(&existing, &expected, &ours, json));
            Ok(ExitCode::SUCCESS)
        }
        SubscriptionsCommand::Delete { guid } => {
            let Some(subscription) = existing.iter().find(|s| s.guid == guid) else {
                return Err(EnateError::UnknownSubscription(guid).into());
            };
            let description = output::describe(subscription);
            let elsewhere = if points_at_bridge(
                &subscription.subscriber_url,
                enate.public_url.as_str(),
                &desired,
            ) {
                ""
            } else {
                " (it did not point at this bridge)"
            };
            match client.unsubscribe(guid).await? {
                Unsubscribed::Deleted => println!("deleted {guid}: {description}{elsewhere}"),
                Unsubscribed::AlreadyGone => {
                    println!("{guid} was already gone (Enate answered 404): {description}")
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        SubscriptionsCommand::Verify {
            timeout,
            admin_url,
            json,
        } => {
            let plan = Plan::new(&desired, &existing, &expected, enate.public_url.as_str());
            let options = VerifyOptions {
                timeout: std::time::Duration::from_secs(timeout),
                admin_url,
            };
            let lines =
                verify::verify(settings, &client, &plan, &existing, &expected, &options).await?;
            print!("{}", output::verified(&lines, json));
            Ok(if lines.iter().all(|line| line.verdict.is_delivered()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
