//! `subscriptions verify`: proves, per configured subscription, that Enate →
//! the SubscriberURL → the bridge → RabbitMQ carries a message, using Enate's
//! "Webhook Test – Simulate Event" operation.
//!
//! In order, so that each failure is named where it happens:
//! 1. every SubscriberURL is asked `GET`: the bridge's ingress answers 405 with
//!    `Allow: POST`; anything else (no answer, a proxy's page, a 404) means
//!    Enate cannot reach a bridge there, said without involving Enate;
//! 2. per subscription, one after another: an exclusive, auto-delete queue is
//!    declared and bound to `amqp.exchange` (`#`) and to the quarantine
//!    exchange *before* Enate is asked, so nothing the test causes can slip
//!    past; the bridge's counters are read from the admin listener's
//!    `/metrics`; Enate is asked for the test message; the queue is watched
//!    for a message of that webhook until the timeout, or until the counters
//!    show the bridge refused it (the secret) or dropped it as a duplicate.
//!
//! How the test message is recognised: Enate does not document what it
//! contains (whether it carries the subscription's GUID, or a sample packet),
//! so nothing in its body is relied on. A message counts when it is of the
//! subscription's webhook (the AMQP `type` property, which events and
//! quarantined payloads both carry) and arrives after the request, within the
//! timeout. Subscriptions are verified one at a time, so two subscriptions of
//! one webhook cannot take each other's message; a real event of that
//! webhook arriving in those seconds would count too, which still proves the
//! path works end to end.

use std::{collections::HashMap, future::Future, net::SocketAddr, time::Duration};

use futures::StreamExt;
use lapin::{
    Channel, Connection,
    options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions},
    types::{AMQPValue, FieldTable},
};
use reqwest::{StatusCode, Url};
use serde::Serialize;
use tokio::time::Instant;
use uuid::Uuid;

use super::{
    client::{EnateClient, EnateError},
    plan::{Expected, Plan},
};
use crate::{
    config::Settings, enate_api::Subscription, event::cloudevents_type, outcome::Outcome,
    redact::redact_url, webhook::Webhook,
};

/// What `verify` needs besides the settings.
pub struct VerifyOptions {
    /// How long each subscription's test message has to reach RabbitMQ.
    pub timeout: Duration,
    /// The bridge's admin listener, whose counters say what became of a message
    /// that did not arrive. Default: `admin.bind` (loopback for 0.0.0.0).
    pub admin_url: Option<Url>,
}

/// How one subscription's verification ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Verdict {
    /// The test message reached RabbitMQ after this many seconds.
    Delivered {
        seconds: f64,
        /// `events` or `quarantine`: a quarantined test message still crossed the path.
        destination: &'static str,
    },
    /// Enate accepted the request, nothing arrived in time; the likely causes.
    NotDelivered { causes: Vec<String> },
    /// Enate's own error for the test call.
    TestRefused { error: String },
    /// The SubscriberURL does not reach a bridge; Enate was not asked.
    UrlUnreachable { reason: String },
    /// Configured, but Enate has no such subscription (`subscriptions apply` makes it).
    Missing,
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Delivered { .. } => "delivered",
            Verdict::NotDelivered { .. } => "not delivered",
            Verdict::TestRefused { .. } => "test refused",
            Verdict::UrlUnreachable { .. } => "no bridge at URL",
            Verdict::Missing => "missing",
        }
    }

    pub fn is_delivered(&self) -> bool {
        matches!(self, Verdict::Delivered { .. })
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    /// Its position in `enate.subscriptions`.
    pub entry: usize,
    pub webhook: String,
    pub filter: String,
    pub subscriber_url: String,
    pub subscription: Option<Uuid>,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// A subscription to verify, as Enate holds it.
struct Target<'a> {
    entry: usize,
    webhook: Webhook,
    filter: String,
    subscription: &'a Subscription,
}

/// Fails the whole run (rather than one line): RabbitMQ cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot connect to RabbitMQ to watch for the test messages: {0}")]
    Broker(String),
    #[error(
        "cannot watch {exchange} on RabbitMQ ({reason}); is it the broker and exchange the bridge \
         publishes to (amqp.urls, amqp.exchange, amqp.quarantine_exchange)?"
    )]
    Watch { exchange: String, reason: String },
    #[error(transparent)]
    Enate(#[from] EnateError),
}

pub async fn verify(
    settings: &Settings,
    client: &EnateClient,
    plan: &Plan,
    existing: &[Subscription],
    expected: &Expected<'_>,
    options: &VerifyOptions,
) -> Result<Vec<Verified>, VerifyError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(settings.enate.request_timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| EnateError::Setup(format!("cannot build an HTTP client: {error}")))?;
    let mut lines = Vec::new();
    let mut targets = Vec::new();
    for row in &plan.rows {
        let (Some(entry), Some(desired)) = (row.entry, &row.desired) else {
            continue; // the bridge's own, no longer configured: nothing to verify
        };
        let filter = format!("{} {}", row.filter_object_type, row.filter_object_guid);
        if row.subscriptions.is_empty() {
            lines.push(Verified {
                entry,
                webhook: row.webhook.clone(),
                filter,
                subscriber_url: row.subscriber_url.clone(),
                subscription: None,
                verdict: Verdict::Missing,
            });
            continue;
        }
        for guid in &row.subscriptions {
            if let Some(subscription) = existing.iter().find(|s| s.guid == *guid) {
                targets.push(Target {
                    entry,
                    webhook: desired.webhook,
                    filter: filter.clone(),
                    subscription,
                });
            }
        }
    }
    let mut reachable = HashMap::new();
    for target in &targets {
        let url = target.subscription.subscriber_url.clone();
        if let std::collections::hash_map::Entry::Vacant(vacant) = reachable.entry(url) {
            let answer = check_url(&http, vacant.key()).await;
            vacant.insert(answer);
        }
    }
    let admin = match &options.admin_url {
        // The listener's base URL is taken for its /metrics.
        Some(url) if url.path() == "/" => url.join("metrics").expect("a relative path joins"),
        Some(url) => url.clone(),
        None => admin_url(settings.admin.bind.socket_address()),
    };
    let mut watch = None;
    for target in targets {
        let subscription = target.subscription;
        let verdict = match &reachable[&subscription.subscriber_url] {
            Err(reason) => Verdict::UrlUnreachable {
                reason: reason.clone(),
            },
            Ok(()) => {
                let channel = match &watch {
                    Some((_, channel)) => channel,
                    None => &watch.insert(connect(settings).await?).1,
                };
                verify_one(
                    settings,
                    client,
                    channel,
                    &http,
                    &admin,
                    &target,
                    expected,
                    options.timeout,
                )
                .await?
            }
        };
        lines.push(Verified {
            entry: target.entry,
            webhook: target.webhook.enate_name().to_string(),
            filter: target.filter,
            subscriber_url: subscription.subscriber_url.clone(),
            subscription: Some(subscription.guid),
            verdict,
        });
    }
    if let Some((connection, _)) = watch {
        let _ = connection.close(200, "verify done".into()).await;
    }
    lines.sort_by_key(|line| line.entry);
    Ok(lines)
}

/// Whether a bridge answers at `url`: its ingress answers `GET` with 405 and
/// `Allow: POST` (see `routes::method_not_allowed`).
async fn check_url(http: &reqwest::Client, url: &str) -> Result<(), String> {
    let shown = redact_url(url);
    let response = http.get(url).send().await.map_err(|error| {
        let reason = crate::telemetry::error_chain(&error).replace(url, &shown);
        format!(
            "GET {shown} failed ({reason}): check enate.public_url, DNS, the proxy or load \
             balancer in front of the bridge, and its TLS certificate"
        )
    })?;
    let status = response.status();
    let allows_post = response
        .headers()
        .get_all(reqwest::header::ALLOW)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|method| method.trim().eq_ignore_ascii_case("POST"));
    if status == StatusCode::METHOD_NOT_ALLOWED && allows_post {
        return Ok(());
    }
    let allow = if allows_post {
        ""
    } else {
        " without Allow: POST"
    };
    Err(format!(
        "GET {shown} answered {status}{allow}, not the bridge's 405 with Allow: POST: something \
         other than the bridge answers there (a wrong enate.public_url or subscriber_url, a proxy \
         routing the path elsewhere, or the bridge's ingress not behind it)"
    ))
}

/// The admin listener as this machine reaches it: `0.0.0.0` and `::` become loopback.
fn admin_url(address: SocketAddr) -> Url {
    let mut address = address;
    if address.ip().is_unspecified() {
        address.set_ip(if address.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Url::parse(&format!("http://{address}/metrics")).expect("an address makes a URL")
}

/// The first of `amqp.urls` that answers, and a channel on it.
async fn connect(settings: &Settings) -> Result<(Connection, Channel), VerifyError> {
    let amqp = &settings.amqp;
    let connection = crate::amqp::connect_for_command(
        &amqp.urls,
        amqp.tls.client(),
        amqp.heartbeat_secs,
        format!("{} subscriptions verify", amqp.connection_name),
    )
    .await
    .map_err(VerifyError::Broker)?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|error| VerifyError::Broker(error.to_string()))?;
    Ok((connection, channel))
}

/// How often the bridge's counters are read while waiting, for a refusal.
const REFUSAL_POLL: Duration = Duration::from_millis(500);

/// The bridge's `enate_bridge_webhooks_total` for one webhook, by outcome.
type Counters = HashMap<String, f64>;

#[allow(clippy::too_many_arguments)]
async fn verify_one(
    settings: &Settings,
    client: &EnateClient,
    channel: &Channel,
    http: &reqwest::Client,
    admin: &Url,
    target: &Target<'_>,
    expected: &Expected<'_>,
    timeout: Duration,
) -> Result<Verdict, VerifyError> {
    let webhook = target.webhook;
    let queue = watch_queue(channel, settings).await?;
    let before = counters(http, admin, webhook).await;
    // A refusal that settles it (the secret, a duplicate) ends the wait early:
    // Enate's retries would be refused the same way.
    let refusal = || async {
        let (Some(before), Some(now)) = (&before, counters(http, admin, webhook).await) else {
            return false;
        };
        [Outcome::Unauthorized, Outcome::Duplicate]
            .iter()
            .any(|outcome| {
                let word = outcome.word();
                now.get(word).copied().unwrap_or(0.0) > before.get(word).copied().unwrap_or(0.0)
            })
    };
    let asked = Instant::now();
    let verdict = match client
        .send_test_message(&settings.enate.test_path, target.subscription.guid)
        .await
    {
        Err(error) => {
            let hint = if matches!(error, EnateError::NotFound { .. }) {
                " (for the test call, a 404 on every subscription means enate.test_path is not \
                 this instance's: check it on its Swagger page)"
            } else {
                ""
            };
            Verdict::TestRefused {
                error: format!("{error}{hint}"),
            }
        }
        Ok(()) => match wait_for(channel, &queue, webhook, timeout, &refusal).await? {
            Some(destination) => Verdict::Delivered {
                seconds: (asked.elapsed().as_secs_f64() * 100.0).round() / 100.0,
                destination,
            },
            None => {
                let after = counters(http, admin, webhook).await;
                Verdict::NotDelivered {
                    causes: causes(target, expected, admin, before, after),
                }
            }
        },
    };
    let _ = channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    Ok(verdict)
}

/// A server-named exclusive queue bound to both exchanges the bridge publishes to.
async fn watch_queue(channel: &Channel, settings: &Settings) -> Result<String, VerifyError> {
    let options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..Default::default()
    };
    let queue = channel
        .queue_declare("".into(), options, FieldTable::default())
        .await
        .map_err(|error| VerifyError::Watch {
            exchange: "a queue".into(),
            reason: error.to_string(),
        })?;
    let name = queue.name().to_string();
    // `#` on the topic exchange: whatever amqp.routing_key makes of the test
    // message, it is seen; the type property then picks the webhook.
    for (exchange, pattern) in [
        (&settings.amqp.exchange, "#"),
        (&settings.amqp.quarantine_exchange, ""),
    ] {
        channel
            .queue_bind(
                name.as_str().into(),
                exchange.as_str().into(),
                pattern.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|error| VerifyError::Watch {
                exchange: exchange.clone(),
                reason: error.to_string(),
            })?;
    }
    Ok(name)
}

/// Waits for a message of `webhook`; answers where it arrived, or `None` at the timeout.
async fn wait_for<Refused: Future<Output = bool>>(
    channel: &Channel,
    queue: &str,
    webhook: Webhook,
    timeout: Duration,
    refused: &impl Fn() -> Refused,
) -> Result<Option<&'static str>, VerifyError> {
    let watch_error = |error: lapin::Error| VerifyError::Watch {
        exchange: queue.to_string(),
        reason: error.to_string(),
    };
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            format!("verify-{:016x}", fastrand::u64(..)).as_str().into(),
            BasicConsumeOptions {
                no_ack: true,
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(watch_error)?;
    let deadline = Instant::now() + timeout;
    let wanted = cloudevents_type(webhook);
    let mut looked = Instant::now();
    loop {
        let next = tokio::time::timeout_at(deadline.min(looked + REFUSAL_POLL), consumer.next());
        let delivery = match next.await {
            Err(_) if Instant::now() >= deadline => return Ok(None),
            Err(_) => {
                if refused().await {
                    return Ok(None);
                }
                looked = Instant::now();
                continue;
            }
            // The consumer ended: the connection or the queue is gone, which
            // says nothing about Enate, so it is not "not delivered".
            Ok(None) => {
                return Err(VerifyError::Watch {
                    exchange: queue.to_string(),
                    reason: "RabbitMQ ended the watch (the connection or its queue is gone)".into(),
                });
            }
            Ok(Some(delivery)) => delivery.map_err(watch_error)?,
        };
        let properties = &delivery.properties;
        if properties.kind().as_ref().map(|kind| kind.as_str()) != Some(wanted) {
            continue; // another webhook's traffic
        }
        let quarantined = properties.headers().as_ref().is_some_and(|headers| {
            matches!(
                headers.inner().get("x-quarantine-reason"),
                Some(AMQPValue::LongString(_))
            )
        });
        return Ok(Some(if quarantined { "quarantine" } else { "events" }));
    }
}

/// The bridge's counters for `webhook`, or `None` when the admin listener cannot be read.
async fn counters(http: &reqwest::Client, admin: &Url, webhook: Webhook) -> Option<Counters> {
    let response = http.get(admin.clone()).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    Some(parse_counters(&response.text().await.ok()?, webhook))
}

/// `enate_bridge_webhooks_total{webhook="W",outcome="O"} N` lines of a
/// Prometheus text page, for one webhook.
fn parse_counters(page: &str, webhook: Webhook) -> Counters {
    let label = |labels: &str, name: &str| {
        labels.split(',').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| value.trim().trim_matches('"').to_string())
        })
    };
    page.lines()
        .filter_map(|line| line.strip_prefix("enate_bridge_webhooks_total{"))
        .filter_map(|rest| {
            let (labels, value) = rest.split_once('}')?;
            if label(labels, "webhook")? != webhook.enate_name() {
                return None;
            }
            Some((label(labels, "outcome")?, value.trim().parse().ok()?))
        })
        .collect()
}

/// Why a test message Enate accepted to send did not arrive, most telling first.
fn causes(
    target: &Target<'_>,
    expected: &Expected<'_>,
    admin: &Url,
    before: Option<Counters>,
    after: Option<Counters>,
) -> Vec<String> {
    let subscription = target.subscription;
    let mut causes = Vec::new();
    let header_differs = subscription
        .custom_header
        .as_deref()
        .is_none_or(|header| !header.trim().eq_ignore_ascii_case(expected.header));
    if header_differs || expected.secret_index(subscription).is_none() {
        causes.push(format!(
            "Enate's subscription does not carry {} with one of auth.secrets: the bridge refuses \
             its messages with 401 (`subscriptions apply` replaces it)",
            expected.header
        ));
    }
    let (Some(before), Some(after)) = (before, after) else {
        causes.push(format!(
            "the bridge's counters could not be read ({} did not answer: pass --admin-url)",
            admin_shown(admin)
        ));
        causes.extend(unreached(target));
        return causes;
    };
    let moved = |outcome: Outcome| {
        let word = outcome.word();
        after.get(word).copied().unwrap_or(0.0) - before.get(word).copied().unwrap_or(0.0)
    };
    let webhook = target.webhook.enate_name();
    let mut any = false;
    for outcome in Outcome::ALL {
        let delta = moved(outcome);
        if delta <= 0.0 {
            continue;
        }
        any = true;
        let counter = format!(
            "enate_bridge_webhooks_total{{webhook=\"{webhook}\",outcome=\"{}\"}} rose by {delta}",
            outcome.word()
        );
        causes.push(match outcome {
            Outcome::Unauthorized => format!(
                "the bridge refused the secret ({counter}): the subscription's CustomHeaderValue is \
                 not one of auth.secrets of the bridge at that URL"
            ),
            Outcome::Duplicate => format!(
                "the bridge took it for a duplicate ({counter}): Enate sent the same test message \
                 within dedup.window_secs, and a duplicate is not published again"
            ),
            Outcome::Spooled => format!(
                "the bridge spooled it ({counter}): RabbitMQ could not take it; it is forwarded \
                 once the broker is back"
            ),
            Outcome::Published | Outcome::Quarantined => format!(
                "the bridge published it ({counter}) but not to the exchanges watched: does this \
                 configuration name the bridge's broker, amqp.exchange and amqp.quarantine_exchange?"
            ),
            other => format!(
                "the bridge answered {} ({counter})",
                other.http_status().as_u16()
            ),
        });
    }
    if !any {
        causes.push(format!(
            "no request reached the bridge whose admin listener is {} (its counters did not move)",
            admin_shown(admin)
        ));
        causes.extend(unreached(target));
    }
    causes
}

/// What keeps a message from reaching the bridge at all.
fn unreached(target: &Target<'_>) -> Vec<String> {
    vec![
        format!(
            "Enate could not reach {} (from Enate's network: firewall, DNS, the TLS certificate)",
            redact_url(&target.subscription.subscriber_url)
        ),
        "the account of enate.auth lacks Enate's Process Builder role or its rights on the \
         filter object: Enate checks them for every message and sends nothing without them"
            .into(),
        "another bridge instance behind that URL took it (its own counters moved, not these)"
            .into(),
    ]
}

fn admin_shown(admin: &Url) -> String {
    redact_url(admin.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_for_one_webhook_in_any_label_order() {
        let page = "# HELP enate_bridge_webhooks_total x\n\
            enate_bridge_webhooks_total{webhook=\"PacketCreated\",outcome=\"unauthorized\"} 3\n\
            enate_bridge_webhooks_total{outcome=\"published\",webhook=\"PacketCreated\"} 7\n\
            enate_bridge_webhooks_total{webhook=\"PacketUpdated\",outcome=\"unauthorized\"} 9\n\
            enate_bridge_webhooks_total_other{webhook=\"PacketCreated\",outcome=\"x\"} 1\n";
        let counters = parse_counters(page, Webhook::PacketCreated);
        assert_eq!(counters.len(), 2, "{counters:?}");
        assert_eq!(counters["unauthorized"], 3.0);
        assert_eq!(counters["published"], 7.0);
    }

    #[test]
    fn an_unspecified_admin_address_is_reached_on_loopback() {
        assert_eq!(
            admin_url("0.0.0.0:9091".parse().unwrap()).as_str(),
            "http://127.0.0.1:9091/metrics"
        );
        assert_eq!(
            admin_url("[::]:9091".parse().unwrap()).as_str(),
            "http://[::1]:9091/metrics"
        );
        assert_eq!(
            admin_url("10.0.0.5:9091".parse().unwrap()).as_str(),
            "http://10.0.0.5:9091/metrics"
        );
    }
}
