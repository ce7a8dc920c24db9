//! The life of the connection to RabbitMQ: connect (trying each of `amqp.urls`
//! in turn), declare the topology, start the lanes, notice the loss of the
//! connection or a `connection.blocked`, and reconnect with capped exponential
//! backoff and jitter. Requests never wait for any of this: while there is no
//! usable session, a publish fails at once.
//!
//! Where the turn starts: at a random URL at first, so that replicas spread
//! over a cluster's nodes instead of all piling onto the first; after a
//! connection to URL i, at URL i+1, so that the node just lost is tried last.
//! The cluster fault suite found the bridge starting again from the first URL:
//! when that node black-holes its packets (a partition), every reconnect first
//! waited a whole connect timeout (`amqp.confirm_timeout_ms`) for it.

use std::{
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use lapin::{ConnectionProperties, ErrorKind, Event};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    confirm_watch::ConfirmWatch,
    session::Session,
    settings::BrokerSettings,
    tls::{self, ConnectFailed, TlsRefusal},
    topology::TopologyError,
    unavailable::{ConnectFailure, ConnectFailures, FailureKind, StartError, Unavailable},
    url::AmqpUrl,
};

/// The link to RabbitMQ: the session requests publish on (if there is one),
/// why there is none, and what the supervisor needs to keep it up. Shared by
/// the broker, which reads it, and the supervisor task, which changes it.
pub(super) struct Link {
    settings: BrokerSettings,
    /// The lock is held only to clone or swap the `Arc`.
    session: RwLock<Option<Arc<Session>>>,
    /// Why there is no session, for /readyz and logs.
    problem: Mutex<Unavailable>,
    reconnects: AtomicU64,
    /// Index in `amqp.urls` where the next round of connection attempts starts
    /// (modulo their number).
    next_url: AtomicUsize,
    /// Whether RabbitMQ confirms what it takes (see `ConfirmWatch`).
    confirms: Arc<ConfirmWatch>,
    /// Where each session's lanes run.
    tasks: TaskTracker,
}

/// How a connection attempt failed.
enum ConnectError {
    Topology(TopologyError),
    Failed(ConnectFailures),
}

const BACKOFF_START: Duration = Duration::from_millis(200);
/// Capped low: the spool waits for the broker, so a quick return matters more than
/// sparing a recovering broker a connection attempt every few seconds.
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Connecting, declaring the topology and opening channels get at least this
/// long, whatever `amqp.confirm_timeout_ms`: a short confirm timeout must not
/// make a loaded broker (or machine) unreachable, only a broker that does not
/// answer at all.
const CONNECT_TIMEOUT_MIN: Duration = Duration::from_secs(10);
/// How often the connection's state is looked at, beside its events.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

impl Link {
    pub(super) fn new(settings: BrokerSettings, tasks: TaskTracker) -> Self {
        let first_url = fastrand::usize(..settings.urls.len().max(1));
        Self {
            settings,
            session: RwLock::new(None),
            problem: Mutex::new(Unavailable::NotConnectedYet),
            reconnects: AtomicU64::new(0),
            next_url: AtomicUsize::new(first_url),
            confirms: Arc::default(),
            tasks,
        }
    }

    pub(super) fn settings(&self) -> &BrokerSettings {
        &self.settings
    }

    pub(super) fn confirms(&self) -> &Arc<ConfirmWatch> {
        &self.confirms
    }

    pub(super) fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    pub(super) fn session(&self) -> Option<Arc<Session>> {
        self.session.read().expect("session lock poisoned").clone()
    }

    pub(super) fn problem(&self) -> Unavailable {
        self.problem.lock().expect("problem lock poisoned").clone()
    }

    fn set_problem(&self, problem: Unavailable) {
        *self.problem.lock().expect("problem lock poisoned") = problem;
    }

    fn install(&self, session: Option<Arc<Session>>) {
        *self.session.write().expect("session lock poisoned") = session;
    }

    /// The first attempt, at start. A broker that cannot be reached is no
    /// error (the supervisor keeps trying); a topology conflict or a refused
    /// login is. The session, if any, is installed before this returns, so
    /// the first request finds it.
    pub(super) async fn connect_first(&self) -> Result<Option<Arc<Session>>, StartError> {
        let first = match self.connect_any().await {
            Ok(session) => Some(session),
            Err(ConnectError::Topology(error)) => return Err(StartError::Topology(error)),
            Err(ConnectError::Failed(failures)) if failures.login_refused() => {
                return Err(StartError::LoginRefused(failures));
            }
            Err(ConnectError::Failed(failures)) if failures.tls_refused() => {
                return Err(StartError::TlsRefused(failures));
            }
            Err(ConnectError::Failed(failures)) => {
                tracing::warn!(error = %failures, "RabbitMQ is not reachable yet; retrying in the background");
                self.set_problem(Unavailable::Connect(failures));
                None
            }
        };
        self.install(first.clone());
        Ok(first)
    }

    /// Keeps the connection up until `stop` is cancelled, starting from the
    /// session `connect_first` made (if any); then closes it cleanly.
    pub(super) async fn supervise(
        self: Arc<Self>,
        mut next: Option<Arc<Session>>,
        stop: CancellationToken,
    ) {
        let mut backoff = BACKOFF_START;
        // A login refusal is logged once per change, not once per attempt.
        let mut last_logged: Option<String> = None;
        loop {
            if let Some(session) = next.take() {
                self.confirms.reset();
                self.install(Some(session.clone()));
                backoff = BACKOFF_START;
                last_logged = None;
                let lost = self.watch(&session, &stop).await;
                self.install(None);
                match lost {
                    None => return self.close_session(&session).await,
                    Some(reason) => {
                        tracing::warn!(%reason, "lost the connection to RabbitMQ; reconnecting");
                        self.set_problem(Unavailable::Lost(reason));
                    }
                }
            }
            if stop.is_cancelled() {
                return;
            }
            // A shutdown does not wait for an attempt in progress (a silent
            // broker could hold it for the whole connect timeout, per URL).
            let attempt = tokio::select! {
                attempt = self.connect_any() => attempt,
                () = stop.cancelled() => return,
            };
            match attempt {
                Ok(session) => {
                    self.reconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("reconnected to RabbitMQ");
                    next = Some(session);
                    continue;
                }
                Err(error) => self.note_failure(error, &mut last_logged, backoff),
            }
            let pause = jitter(backoff);
            backoff = (backoff * 2).min(BACKOFF_CAP);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Logs a failed reconnect (a conflict, a refused login or certificate
    /// once per change, not once per attempt) and keeps it as the reason there is no session.
    fn note_failure(
        &self,
        error: ConnectError,
        last_logged: &mut Option<String>,
        backoff: Duration,
    ) {
        match error {
            ConnectError::Topology(error) => {
                // Declared fine before; now someone changed it. Keep spooling and say so.
                let text = error.to_string();
                if last_logged.as_deref() != Some(text.as_str()) {
                    tracing::error!(error = %text, "RabbitMQ's topology conflicts with the bridge's; events are spooled");
                }
                *last_logged = Some(text);
                self.set_problem(Unavailable::Lost(error.to_string()));
            }
            ConnectError::Failed(failures) => {
                let text = failures.to_string();
                if failures.login_refused() {
                    if last_logged.as_deref() != Some(text.as_str()) {
                        tracing::error!(error = %text, "RabbitMQ refuses the bridge's login; events are spooled until amqp.urls is fixed");
                    }
                    *last_logged = Some(text);
                } else if failures.tls_refused() {
                    // A change is a change of URLs and kinds, not of wording
                    // (the details can differ from attempt to attempt).
                    let state = failures.kinds();
                    if last_logged.as_deref() != Some(state.as_str()) {
                        tracing::error!(error = %text, "the TLS handshake with RabbitMQ failed on a certificate; events are spooled until amqp.tls or the broker's certificate is fixed");
                    }
                    *last_logged = Some(state);
                } else {
                    tracing::warn!(error = %text, retry_in_ms = backoff.as_millis() as u64, "connecting to RabbitMQ failed");
                }
                self.set_problem(Unavailable::Connect(failures));
            }
        }
    }

    async fn close_session(&self, session: &Session) {
        let closing = session
            .connection
            .close(200, "enate-bridge shutting down".into());
        match tokio::time::timeout(self.settings.timeout, closing).await {
            Ok(Ok(())) => tracing::info!("closed the connection to RabbitMQ"),
            Ok(Err(error)) => tracing::warn!(%error, "closing the connection to RabbitMQ failed"),
            Err(_) => tracing::warn!("closing the connection to RabbitMQ timed out"),
        }
    }

    /// Waits until the session is lost (returns why) or the bridge stops (`None`).
    async fn watch(&self, session: &Session, stop: &CancellationToken) -> Option<String> {
        let mut events = session.connection.events_listener();
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Event::ConnectionBlocked(reason)) => {
                        tracing::warn!(%reason, "RabbitMQ blocked publishing");
                    }
                    Some(Event::ConnectionUnblocked) => {
                        tracing::info!("RabbitMQ unblocked publishing");
                    }
                    // lapin reports a channel the broker closed (a publish to a
                    // missing exchange, say) as an error event too: the lane
                    // reopens its channel; only a connection that is gone counts.
                    Some(Event::Error(error)) if !session.is_connected() => {
                        return Some(error.to_string());
                    }
                    Some(Event::Error(error)) => {
                        tracing::debug!(%error, "RabbitMQ closed a channel; the connection stays");
                    }
                    Some(_) => {}
                    None => return Some("the connection's event stream ended".into()),
                },
                _ = tick.tick() => {
                    if !session.is_connected() {
                        return Some("the connection is no longer open".into());
                    }
                }
                () = stop.cancelled() => return None,
            }
        }
    }

    /// Tries each URL once, in turn from `next_url`, and returns the first
    /// ready session; the next round will start after its URL.
    async fn connect_any(&self) -> Result<Arc<Session>, ConnectError> {
        let mut failures = ConnectFailures::default();
        let urls = &self.settings.urls;
        let start = self.next_url.load(Ordering::Relaxed);
        for offset in 0..urls.len() {
            let index = (start + offset) % urls.len();
            match self.connect(&urls[index]).await {
                Ok(session) => {
                    self.next_url.store(index + 1, Ordering::Relaxed);
                    return Ok(Arc::new(session));
                }
                Err(ConnectError::Topology(error)) => return Err(ConnectError::Topology(error)),
                Err(ConnectError::Failed(ConnectFailures(mut these))) => {
                    failures.0.append(&mut these);
                }
            }
        }
        Err(ConnectError::Failed(failures))
    }

    async fn connect(&self, url: &AmqpUrl) -> Result<Session, ConnectError> {
        let settings = &self.settings;
        let shown = url.shown().to_string();
        let failed = |kind: FailureKind, detail: String| {
            ConnectError::Failed(ConnectFailures(vec![ConnectFailure {
                url: shown.clone(),
                kind,
                detail,
            }]))
        };
        let connect_failure = |failed_with: ConnectFailed| {
            let kind = if is_login_refusal(&failed_with.error) {
                FailureKind::LoginRefused
            } else {
                match failed_with.refusal {
                    Some(TlsRefusal::BrokerCertificate) => FailureKind::BrokerCertificateRefused,
                    Some(TlsRefusal::ClientCertificate) => FailureKind::ClientCertificateRefused,
                    None => FailureKind::Unreachable,
                }
            };
            failed(kind, failed_with.error.to_string())
        };
        let lapin_failure = |error: lapin::Error| {
            let kind = if is_login_refusal(&error) {
                FailureKind::LoginRefused
            } else {
                FailureKind::Unreachable
            };
            failed(kind, error.to_string())
        };
        let mut uri = url.uri().clone();
        if uri.query.heartbeat.is_none() {
            uri.query.heartbeat = Some(settings.heartbeat_secs);
        }
        let properties = ConnectionProperties::default()
            .with_connection_name(settings.connection_name.clone().into());
        let prepare = async {
            let connection = tls::connect(uri, properties, settings.tls.as_ref())
                .await
                .map_err(connect_failure)?;
            if let Some(topology) = &settings.topology {
                topology
                    .declare(&connection)
                    .await
                    .map_err(|error| match error {
                        TopologyError::Connection(error) => lapin_failure(error),
                        conflict => ConnectError::Topology(conflict),
                    })?;
            }
            Ok(Session::start(
                connection,
                settings.channels,
                settings.confirms_per_channel,
                &self.tasks,
            ))
        };
        let connect_timeout = settings.timeout.max(CONNECT_TIMEOUT_MIN);
        let session = tokio::time::timeout(connect_timeout, prepare)
            .await
            .map_err(|_| {
                failed(
                    FailureKind::Unreachable,
                    format!("no answer within {} ms", connect_timeout.as_millis()),
                )
            })??;
        tracing::info!(url = %shown, "connected to RabbitMQ");
        Ok(session)
    }
}

/// RabbitMQ closes the connection with ACCESS_REFUSED (403) for a wrong user or
/// password, and NOT_ALLOWED (530) for a vhost that does not exist or the user
/// may not open. 530 also says "connection limit (N) is reached" and "vhost ...
/// is down": those pass, so they are not a refusal.
fn is_login_refusal(error: &lapin::Error) -> bool {
    let ErrorKind::ProtocolError(amqp) = error.kind() else {
        return false;
    };
    let text = amqp.get_message().as_str();
    match amqp.get_id() {
        403 => true,
        530 => !(text.contains("limit") || text.contains("is down")),
        _ => false,
    }
}

/// A pause between half and all of `base`, so many bridges do not reconnect in step.
fn jitter(base: Duration) -> Duration {
    base.mul_f64(0.5 + fastrand::f64() * 0.5)
}
