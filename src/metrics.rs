//! Every metric of the bridge, in one registry. Label values come only from
//! fixed sets (webhook names, outcomes, enum names), so no request can create a
//! new series. Handles are created once and cached, so counting an event is an
//! atomic add, not a label lookup.
//!
//! The metric names are a contract: dashboards and alerts use them.

use std::{
    sync::OnceLock,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Registry, TextEncoder,
};

use crate::{
    normalize::enums::{EnumKind, Word},
    outcome::Outcome,
    webhook::Webhook,
};

mod declare;
use declare::{StageHistogramVec, declare_metrics};

/// A step of a request's path through the bridge: the `stage` label of
/// `enate_bridge_request_stage_seconds`. In the order a request meets them;
/// together they are the whole request but for the HTTP answer itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The body arriving, within its deadline and budget.
    BodyRead,
    /// Taking an admission slot (never waits: a full bridge answers 503).
    Admission,
    /// Splitting the body, building each event, dropping duplicates.
    Normalize,
    /// A message queued on its lane until the lane's task takes it.
    LaneWait,
    /// The lane handing it to lapin.
    Send,
    /// From sent to RabbitMQ's confirm.
    Confirm,
    /// From the lane judging the confirm to the request's task running again.
    Reply,
    /// Appending to the spool, fsync included.
    SpoolWrite,
}

impl Stage {
    pub const ALL: [Stage; 8] = [
        Stage::BodyRead,
        Stage::Admission,
        Stage::Normalize,
        Stage::LaneWait,
        Stage::Send,
        Stage::Confirm,
        Stage::Reply,
        Stage::SpoolWrite,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Stage::BodyRead => "body_read",
            Stage::Admission => "admission",
            Stage::Normalize => "normalize",
            Stage::LaneWait => "lane_wait",
            Stage::Send => "send",
            Stage::Confirm => "confirm",
            Stage::Reply => "reply",
            Stage::SpoolWrite => "spool_write",
        }
    }
}

/// Why a publish failed: the `reason` label of `enate_bridge_publish_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    Nack,
    Returned,
    Timeout,
    Disconnected,
    Blocked,
    Channel,
}

impl FailureReason {
    pub const ALL: [FailureReason; 6] = [
        FailureReason::Nack,
        FailureReason::Returned,
        FailureReason::Timeout,
        FailureReason::Disconnected,
        FailureReason::Blocked,
        FailureReason::Channel,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FailureReason::Nack => "nack",
            FailureReason::Returned => "returned",
            FailureReason::Timeout => "timeout",
            FailureReason::Disconnected => "disconnected",
            FailureReason::Blocked => "blocked",
            FailureReason::Channel => "channel",
        }
    }
}

/// The webhook label for a path that names no webhook.
const UNKNOWN_WEBHOOK: &str = "unknown";
/// enate_bridge_events_published_total, by [`Webhook::index`], then the
/// process type's and the status's [`Word::slot`].
type PublishedCells = [[[OnceLock<IntCounter>; Word::count(EnumKind::Status)];
    Word::count(EnumKind::ProcessType)]; Webhook::ALL.len()];

declare_metrics! {
    /// Every family the bridge exports. The names, HELP texts and labels are
    /// the contract dashboards and alerts are written against.
    struct Families {
        /// Webhook requests received, by webhook and outcome.
        webhooks: IntCounterVec = "enate_bridge_webhooks_total" ["webhook", "outcome"],
        /// Events confirmed by RabbitMQ, by event, process type and status.
        events_published: IntCounterVec =
            "enate_bridge_events_published_total" ["event", "process_type", "status"],
        /// Publishes that RabbitMQ did not confirm, by reason.
        publish_failures: IntCounterVec = "enate_bridge_publish_failures_total" ["reason"],
        /// Time from publishing a message to RabbitMQ's confirm, in seconds.
        publish_confirm_seconds: Histogram = "enate_bridge_publish_confirm_seconds",
        /// Time to answer a webhook request, in seconds, by webhook.
        request_duration: HistogramVec = "enate_bridge_request_duration_seconds" ["webhook"],
        /// Time a webhook request spent in each stage, in seconds: body_read,
        /// admission and normalize once per request that got that far; lane_wait,
        /// send, confirm and reply once per confirmed message; spool_write once per
        /// spool append.
        request_stage: StageHistogramVec = "enate_bridge_request_stage_seconds" ["stage"],
        /// Webhook requests being handled now.
        in_flight_requests: IntGauge = "enate_bridge_in_flight_requests",
        /// Webhook bodies still arriving (each must be whole within
        /// server.body_timeout_secs).
        bodies_being_read: IntGauge = "enate_bridge_bodies_being_read",
        /// Body bytes held now by all webhook requests (at most
        /// server.max_body_buffer_bytes).
        body_buffer_bytes: IntGauge = "enate_bridge_body_buffer_bytes",
        /// Webhook requests being parsed or published now (at most server.max_in_flight).
        admission_slots_in_use: IntGauge = "enate_bridge_admission_slots_in_use",
        /// 1 while the connection to RabbitMQ is up and the topology declared, else 0.
        amqp_connected: IntGauge = "enate_bridge_amqp_connected",
        /// 1 while RabbitMQ blocks publishing (connection.blocked, e.g. a memory or
        /// disk alarm), else 0.
        amqp_blocked: IntGauge = "enate_bridge_amqp_blocked",
        /// 1 while RabbitMQ refuses the bridge's user, password or vhost (a
        /// configuration error: events are spooled), else 0.
        amqp_login_refused: IntGauge = "enate_bridge_amqp_login_refused",
        /// 1 while a TLS handshake with RabbitMQ fails on a certificate (the
        /// broker's is not trusted, expired or for another name, or the broker
        /// refuses the bridge's: events are spooled), else 0.
        amqp_tls_refused: IntGauge = "enate_bridge_amqp_tls_refused",
        /// Events in the spool, waiting for RabbitMQ.
        spool_events: IntGauge = "enate_bridge_spool_events",
        /// Bytes of the events in the spool (the file takes more).
        spool_bytes: IntGauge = "enate_bridge_spool_bytes",
        /// Age of the oldest event in the spool, in seconds; 0 when it is empty.
        spool_oldest_age_seconds: Gauge = "enate_bridge_spool_oldest_age_seconds",
        /// Connections to RabbitMQ made after the first one.
        amqp_reconnects: IntCounter = "enate_bridge_amqp_reconnects_total",
        /// Spooled events RabbitMQ has confirmed since the start.
        spool_forwarded: IntCounter = "enate_bridge_spool_forwarded_total",
        /// Events seen again within the dedup window, answered without publishing.
        duplicates: IntCounter = "enate_bridge_duplicates_total",
        /// Unix time of the last webhook request accepted (200: published, spooled,
        /// duplicate or quarantined), by webhook.
        last_event: GaugeVec = "enate_bridge_last_event_timestamp_seconds" ["webhook"],
        /// Certificates of the HTTPS ingress read anew from their files (on a
        /// change or SIGHUP), by result: ok (served to new connections) or failed
        /// (the previous certificate is still served). Always 0 without server.tls.
        tls_certificate_reloads: IntCounterVec =
            "enate_bridge_tls_certificate_reloads_total" ["result"],
        /// notAfter of the certificate the HTTPS ingress serves, in seconds since
        /// the Unix epoch; 0 without server.tls.
        tls_certificate_not_after: Gauge =
            "enate_bridge_tls_certificate_not_after_timestamp_seconds",
        /// Always 1; the version is in the label.
        build_info: IntGaugeVec = "enate_bridge_build_info" ["version"],
    }
}

pub struct Metrics {
    registry: Registry,
    family: Families,
    /// enate_bridge_webhooks_total, by [`Webhook::index`] then [`Outcome::ALL`] position.
    webhooks: Vec<Vec<IntCounter>>,
    unknown_webhook: IntCounter,
    events_published_cells: Box<PublishedCells>,
    /// By [`FailureReason::ALL`] position.
    publish_failures: Vec<IntCounter>,
    /// By [`Webhook::index`].
    request_duration: Vec<Histogram>,
    /// By [`Stage::ALL`] position, which is the enum's order.
    request_stage: Vec<Histogram>,
    /// A webhook's series is made by its first accepted request: one that never
    /// had traffic has none, so it cannot look silent.
    last_event_cells: [OnceLock<Gauge>; Webhook::ALL.len()],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let family = Families::register(&registry);
        family
            .build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("the process metrics are registered once");

        // The series of fixed label sets are made now, so counting is an atomic add.
        let webhooks = Webhook::ALL
            .iter()
            .map(|webhook| {
                Outcome::ALL
                    .iter()
                    .map(|outcome| {
                        family
                            .webhooks
                            .with_label_values(&[webhook.enate_name(), outcome.word()])
                    })
                    .collect()
            })
            .collect();
        let unknown_webhook = family
            .webhooks
            .with_label_values(&[UNKNOWN_WEBHOOK, Outcome::UnknownWebhook.word()]);
        let publish_failures = FailureReason::ALL
            .iter()
            .map(|reason| family.publish_failures.with_label_values(&[reason.label()]))
            .collect();
        // Both results exist from the start, so an alert sees the first failure.
        for result in ["ok", "failed"] {
            family.tls_certificate_reloads.with_label_values(&[result]);
        }
        let request_duration = Webhook::ALL
            .iter()
            .map(|webhook| {
                family
                    .request_duration
                    .with_label_values(&[webhook.enate_name()])
            })
            .collect();
        // Made now, so every stage has a series before its first request.
        let request_stage = Stage::ALL
            .iter()
            .map(|stage| family.request_stage.0.with_label_values(&[stage.label()]))
            .collect();
        Self {
            registry,
            family,
            request_stage,
            webhooks,
            unknown_webhook,
            events_published_cells: Box::default(),
            publish_failures,
            request_duration,
            last_event_cells: Default::default(),
        }
    }

    /// The broker connection's state, sampled before each scrape (the `amqp`
    /// module keeps it; metrics only report it).
    pub fn set_amqp_state(
        &self,
        connected: bool,
        blocked: bool,
        login_refused: bool,
        tls_refused: bool,
        reconnects: u64,
    ) {
        self.family.amqp_connected.set(i64::from(connected));
        self.family.amqp_blocked.set(i64::from(blocked));
        self.family.amqp_login_refused.set(i64::from(login_refused));
        self.family.amqp_tls_refused.set(i64::from(tls_refused));
        // Only this method moves the counter, so it follows the broker's count.
        self.family
            .amqp_reconnects
            .inc_by(reconnects.saturating_sub(self.family.amqp_reconnects.get()));
    }

    /// The ingress's saturation, sampled before each scrape.
    pub fn set_ingress_state(
        &self,
        bodies_being_read: usize,
        body_bytes: usize,
        slots_in_use: usize,
    ) {
        self.family.bodies_being_read.set(bodies_being_read as i64);
        self.family.body_buffer_bytes.set(body_bytes as i64);
        self.family.admission_slots_in_use.set(slots_in_use as i64);
    }

    /// What the spool holds, sampled before each scrape.
    pub fn set_spool_state(&self, events: u64, bytes: u64, oldest_age_seconds: f64) {
        self.family.spool_events.set(events as i64);
        self.family.spool_bytes.set(bytes as i64);
        self.family.spool_oldest_age_seconds.set(oldest_age_seconds);
    }

    /// Counts one request; `None` is a path that names no webhook. An accepted
    /// one also sets the webhook's last-event time.
    pub fn count_webhook(&self, webhook: Option<Webhook>, outcome: Outcome) {
        match webhook {
            Some(webhook) => {
                let position = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
                self.webhooks[webhook.index()][position].inc();
                if outcome.is_accepted() {
                    self.mark_event(webhook);
                }
            }
            None => self.unknown_webhook.inc(),
        }
    }

    pub fn observe_request(&self, webhook: Webhook, elapsed: Duration) {
        self.request_duration[webhook.index()].observe(elapsed.as_secs_f64());
    }

    pub fn observe_stage(&self, stage: Stage, elapsed: Duration) {
        self.request_stage[stage as usize].observe(elapsed.as_secs_f64());
    }

    /// A clock for a request's stages, started now.
    pub fn stage_clock(&self) -> StageClock<'_> {
        StageClock {
            metrics: self,
            since: Instant::now(),
        }
    }

    /// Sets the webhook's last-event time to now: what shows a subscription gone silent.
    fn mark_event(&self, webhook: Webhook) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        self.last_event_cells[webhook.index()]
            .get_or_init(|| {
                self.family
                    .last_event
                    .with_label_values(&[webhook.enate_name()])
            })
            .set(now);
    }

    /// Counts one confirmed event by its routing words.
    pub fn count_published(&self, webhook: Webhook, process_type: Word, status: Word) {
        debug_assert_eq!(process_type.kind(), EnumKind::ProcessType);
        debug_assert_eq!(status.kind(), EnumKind::Status);
        self.events_published_cells[webhook.index()][process_type.slot()][status.slot()]
            .get_or_init(|| {
                self.family.events_published.with_label_values(&[
                    webhook.event_name(),
                    process_type.as_str(),
                    status.as_str(),
                ])
            })
            .inc();
    }

    /// Times one RabbitMQ confirm.
    pub fn observe_confirm(&self, confirm_time: Duration) {
        self.family
            .publish_confirm_seconds
            .observe(confirm_time.as_secs_f64());
    }

    /// Counts events RabbitMQ confirmed out of the spool.
    pub fn count_forwarded(&self, events: u64) {
        self.family.spool_forwarded.inc_by(events);
    }

    /// Counts events answered as duplicates, without publishing.
    pub fn count_duplicates(&self, events: u64) {
        self.family.duplicates.inc_by(events);
    }

    pub fn count_failure(&self, reason: FailureReason) {
        let position = FailureReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.publish_failures[position].inc();
    }

    /// The HTTPS ingress serves a certificate valid until `not_after_unix`.
    pub fn set_served_certificate(&self, not_after_unix: i64) {
        self.family
            .tls_certificate_not_after
            .set(not_after_unix as f64);
    }

    /// Counts one reading of the ingress's certificate files.
    pub fn count_certificate_reload(&self, ok: bool) {
        self.family
            .tls_certificate_reloads
            .with_label_values(&[if ok { "ok" } else { "failed" }])
            .inc();
    }

    /// Counts a request as in flight until the guard is dropped, whatever the exit path.
    pub fn in_flight(&self) -> InFlightGuard<'_> {
        self.family.in_flight_requests.inc();
        InFlightGuard {
            gauge: &self.family.in_flight_requests,
            started: Instant::now(),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding of gathered metrics cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Times consecutive stages of one request: each `lap` observes the time
/// since the last one (or the start). A monotonic clock read, no allocation.
pub struct StageClock<'a> {
    metrics: &'a Metrics,
    since: Instant,
}

impl StageClock<'_> {
    pub fn lap(&mut self, stage: Stage) {
        let now = Instant::now();
        self.metrics.observe_stage(stage, now - self.since);
        self.since = now;
    }
}

pub struct InFlightGuard<'a> {
    gauge: &'a IntGauge,
    started: Instant,
}

impl InFlightGuard<'_> {
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process_type(text: &str) -> Word {
        Word::parse(EnumKind::ProcessType, text)
    }

    fn status(text: &str) -> Word {
        Word::parse(EnumKind::Status, text)
    }

    #[test]
    fn every_contract_metric_is_exported() {
        let metrics = Metrics::new();
        // A labelled family shows only once it has a series; events_published_total
        // gets its first when an event is published.
        metrics.count_published(
            Webhook::PacketCreated,
            process_type("case"),
            status("to_do"),
        );
        metrics.count_webhook(Some(Webhook::PacketCreated), Outcome::Published);
        let text = metrics.render();
        for name in [
            "enate_bridge_webhooks_total",
            "enate_bridge_events_published_total",
            "enate_bridge_publish_failures_total",
            "enate_bridge_publish_confirm_seconds",
            "enate_bridge_request_duration_seconds",
            "enate_bridge_request_stage_seconds",
            "enate_bridge_in_flight_requests",
            "enate_bridge_amqp_connected",
            "enate_bridge_amqp_blocked",
            "enate_bridge_amqp_login_refused",
            "enate_bridge_amqp_tls_refused",
            "enate_bridge_amqp_reconnects_total",
            "enate_bridge_build_info",
            "enate_bridge_spool_events",
            "enate_bridge_spool_bytes",
            "enate_bridge_spool_oldest_age_seconds",
            "enate_bridge_spool_forwarded_total",
            "enate_bridge_duplicates_total",
            "enate_bridge_last_event_timestamp_seconds",
        ] {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing");
        }
    }

    #[test]
    fn unknown_routing_words_fall_into_unknown() {
        let metrics = Metrics::new();
        metrics.count_published(
            Webhook::PacketUpdated,
            process_type("ticket"),
            status("resolved"),
        );
        metrics.count_published(
            Webhook::PacketUpdated,
            process_type("ticket"),
            status("resolved"),
        );
        metrics.count_published(
            Webhook::PacketUpdated,
            process_type("ticket"),
            status("escalated"),
        );
        let text = metrics.render();
        assert!(
            text.contains(
                "enate_bridge_events_published_total{event=\"packet_updated\",process_type=\"ticket\",status=\"resolved\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "enate_bridge_events_published_total{event=\"packet_updated\",process_type=\"ticket\",status=\"unknown\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn only_accepted_requests_set_the_last_event_time_of_their_webhook() {
        let metrics = Metrics::new();
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        for outcome in Outcome::ALL.into_iter().filter(|o| !o.is_accepted()) {
            metrics.count_webhook(Some(Webhook::PacketCreated), outcome);
        }
        metrics.count_webhook(None, Outcome::UnknownWebhook);
        assert!(
            !metrics
                .render()
                .contains("enate_bridge_last_event_timestamp_seconds{")
        );
        for outcome in [
            Outcome::Published,
            Outcome::Spooled,
            Outcome::Duplicate,
            Outcome::Quarantined,
        ] {
            metrics.count_webhook(Some(Webhook::NewCommunication), outcome);
        }
        let text = metrics.render();
        let value: f64 = text
            .lines()
            .find_map(|line| {
                line.strip_prefix(
                    r#"enate_bridge_last_event_timestamp_seconds{webhook="NewCommunication"} "#,
                )
            })
            .unwrap_or_else(|| panic!("no NewCommunication series:\n{text}"))
            .parse()
            .unwrap();
        assert!(value >= before && value < before + 60.0, "{value}");
        assert_eq!(
            text.matches("enate_bridge_last_event_timestamp_seconds{")
                .count(),
            1
        );
    }

    #[test]
    fn every_stage_has_a_series_with_sub_millisecond_buckets_before_any_request() {
        let metrics = Metrics::new();
        let text = metrics.render();
        for stage in Stage::ALL {
            let bucket = format!(
                r#"enate_bridge_request_stage_seconds_bucket{{stage="{}",le="0.00001"}} 0"#,
                stage.label()
            );
            assert!(text.contains(&bucket), "{bucket} missing:\n{text}");
        }
    }

    #[test]
    fn a_stage_clock_observes_each_lap_under_its_own_stage() {
        let metrics = Metrics::new();
        let mut clock = metrics.stage_clock();
        clock.lap(Stage::BodyRead);
        clock.lap(Stage::Normalize);
        metrics.observe_stage(Stage::Confirm, Duration::from_millis(3));
        let count = |stage: Stage| metrics.request_stage[stage as usize].get_sample_count();
        assert_eq!(count(Stage::BodyRead), 1);
        assert_eq!(count(Stage::Normalize), 1);
        assert_eq!(count(Stage::Admission), 0);
        assert_eq!(count(Stage::Confirm), 1);
        let confirm = metrics.request_stage[Stage::Confirm as usize].get_sample_sum();
        assert!((confirm - 0.003).abs() < 1e-9, "{confirm}");
    }

    #[test]
    fn the_in_flight_guard_counts_down_on_drop() {
        let metrics = Metrics::new();
        {
            let _a = metrics.in_flight();
            let _b = metrics.in_flight();
            assert_eq!(metrics.family.in_flight_requests.get(), 2);
        }
        assert_eq!(metrics.family.in_flight_requests.get(), 0);
    }
}
