//! Carrying out a plan, one line at a time, each line's result reported.
//!
//! - A change is a replacement, made before it breaks: the current
//!   subscription is created first, the stale ones unsubscribed after. Enate's
//!   public text has no path for its update operation, and deleting first
//!   would lose every event of the gap for good; creating first at worst
//!   delivers an event twice for a moment, which consumers handle anyway
//!   (Enate sends duplicates). If the unsubscribe fails, the line says so and
//!   the next `apply` finishes it (the stale one is then a second subscription
//!   of the entry, a change).
//! - Subscribing is not repeated blindly: a timeout or a 5xx may hide a
//!   subscription Enate made, so before each retry the list is read, and a
//!   subscription that is already there is taken.
//! - One line failing does not stop the others; nothing is left half-done
//!   without its line saying what is done and what is not.

use serde::Serialize;
use uuid::Uuid;

use super::{
    client::{EnateClient, EnateError, Unsubscribed},
    enate_api::{NewSubscription, Subscription},
    plan::{Action, Desired, Expected, Plan, Row},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Replaced,
    Unchanged,
    Deleted,
    /// Not configured, but kept: `--prune` was not given.
    Kept,
    Failed,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Replaced => "replaced",
            Outcome::Unchanged => "unchanged",
            Outcome::Deleted => "deleted",
            Outcome::Kept => "kept",
            Outcome::Failed => "FAILED",
        }
    }
}

/// What became of one line of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    #[serde(flatten)]
    pub row: Row,
    pub result: Outcome,
    /// The subscription that now serves the line, when one was created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<Uuid>,
    /// What was done and what was not, in words.
    pub notes: Vec<String>,
}

/// Applies every line of `plan`; `prune` allows deletions.
pub async fn apply(
    client: &EnateClient,
    plan: Plan,
    expected: &Expected<'_>,
    prune: bool,
) -> Vec<Applied> {
    let mut applied = Vec::with_capacity(plan.rows.len());
    for row in plan.rows {
        let done = match row.action {
            Action::Unchanged => done(row, Outcome::Unchanged, None, Vec::new()),
            Action::Create => {
                let desired = row.desired.clone().expect("a creation has its entry");
                match create(client, &desired, expected).await {
                    Ok(guid) => done(row, Outcome::Created, Some(guid), Vec::new()),
                    Err(error) => failed(row, vec![error.to_string()]),
                }
            }
            Action::Change => replace(client, row, expected).await,
            Action::Delete if !prune => done(
                row,
                Outcome::Kept,
                None,
                vec!["not in enate.subscriptions; `apply --prune` deletes it".into()],
            ),
            Action::Delete => {
                let guid = row.subscriptions[0];
                match client.unsubscribe(guid).await {
                    Ok(Unsubscribed::Deleted) => done(row, Outcome::Deleted, None, Vec::new()),
                    Ok(Unsubscribed::AlreadyGone) => done(
                        row,
                        Outcome::Deleted,
                        None,
                        vec!["Enate no longer had it (404)".into()],
                    ),
                    Err(error) => failed(row, vec![error.to_string()]),
                }
            }
        };
        applied.push(done);
    }
    applied
}

/// A change: the current subscription first (unless one exists), then the stale ones go.
async fn replace(client: &EnateClient, row: Row, expected: &Expected<'_>) -> Applied {
    let (created, kept) = match row.keep {
        Some(guid) => (None, guid),
        None => {
            let desired = row.desired.clone().expect("a change has its entry");
            match create(client, &desired, expected).await {
                Ok(guid) => (Some(guid), guid),
                Err(error) => {
                    let note =
                        format!("{error}; the existing subscription(s) were left as they are");
                    return failed(row, vec![note]);
                }
            }
        }
    };
    let mut notes = Vec::new();
    if let Some(guid) = created {
        notes.push(format!("subscribed {guid}"));
    }
    let mut all_gone = true;
    for &stale in row.subscriptions.iter().filter(|&&guid| guid != kept) {
        match client.unsubscribe(stale).await {
            Ok(_) => notes.push(format!("unsubscribed {stale}")),
            Err(error) => {
                all_gone = false;
                notes.push(format!(
                    "could not unsubscribe {stale}: {error}; Enate delivers twice until it goes \
                     (run apply again)"
                ));
            }
        }
    }
    if all_gone {
        done(row, Outcome::Replaced, created, notes)
    } else {
        Applied {
            created,
            ..failed(row, notes)
        }
    }
}

/// Subscribes `desired` with the expected header and secret, retrying a
/// transient failure only once the list shows Enate did not make it after all.
async fn create(
    client: &EnateClient,
    desired: &Desired,
    expected: &Expected<'_>,
) -> Result<Uuid, EnateError> {
    let secret = expected.secret();
    let subscription = NewSubscription {
        webhook: desired.webhook,
        filter_object_type: desired.filter_object_type,
        filter_object_guid: desired.filter_object_guid,
        subscriber_url: &desired.subscriber_url,
        custom_header: expected.header,
        custom_header_value: secret.as_secret_string(),
    };
    let mut retry = 0;
    loop {
        let error = match client.subscribe_once(&subscription).await {
            Ok(Some(guid)) => return Ok(guid),
            // A success without a readable GUID: the list tells which it is.
            Ok(None) => {
                return find_current(client, desired, expected)
                    .await?
                    .ok_or_else(|| EnateError::Unexpected {
                        operation: super::client::Operation::Subscribe,
                        reason:
                            "a success without a GUID, and the list does not show the subscription"
                                .into(),
                    });
            }
            Err(error) if error.is_transient() => error,
            Err(error) => return Err(error),
        };
        if retry == client.retries() {
            return Err(error.after_attempts(retry + 1));
        }
        tokio::time::sleep(EnateClient::backoff(retry)).await;
        retry += 1;
        // Enate may have made it before its answer was lost: look before subscribing again.
        if let Ok(Some(guid)) = find_current(client, desired, expected).await {
            return Ok(guid);
        }
    }
}

/// A subscription in Enate for `desired` that carries the expected header and secret.
async fn find_current(
    client: &EnateClient,
    desired: &Desired,
    expected: &Expected<'_>,
) -> Result<Option<Uuid>, EnateError> {
    let existing: Vec<Subscription> = client.list().await?;
    let plan = Plan::new(
        std::slice::from_ref(desired),
        &existing,
        expected,
        // Deletions do not matter here: only the line for `desired` is read.
        "",
    );
    Ok(plan.rows.first().and_then(|row| match row.action {
        Action::Unchanged => row.subscriptions.first().copied(),
        Action::Change => row.keep,
        _ => None,
    }))
}

fn done(row: Row, result: Outcome, created: Option<Uuid>, notes: Vec<String>) -> Applied {
    Applied {
        row,
        result,
        created,
        notes,
    }
}

fn failed(row: Row, notes: Vec<String>) -> Applied {
    done(row, Outcome::Failed, None, notes)
}
