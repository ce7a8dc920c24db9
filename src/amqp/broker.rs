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
    str::FromStr,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use lapin::{Connection, ConnectionProperties, ErrorKind, Event, uri::AMQPUri};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;

use super::{
    lane::LaneHandle,
    publish::{ConfirmWatch, PublishError},
    topology::{Topology, TopologyError},
};

#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub urls: Vec<SecretString>,
    pub connection_name: String,
    pub heartbeat_secs: u16,
    /// Lanes (confirm-mode channels) requests are spread over.
    pub channels: usize,
    /// Confirms in flight per lane at most.
    pub confirms_per_channel: usize,
    /// Bounds each publish; connecting and declaring get at least 10 s.
    pub timeout: Duration,
    /// `None` when the topology is managed elsewhere (`amqp.declare_topology = false`).
    pub topology: Option<Topology>,
}

/// A handle to the broker connection; cheap to clone.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    settings: BrokerSettings,
    /// The session requests publish on. The lock is held only to clone or swap the `Arc`.
    session: RwLock<Option<Arc<Session>>>,
    /// Why there is no session, for /readyz and logs.
    problem: Mutex<Unavailable>,
    reconnects: AtomicU64,
    /// Index in `amqp.urls` where the next round of connection attempts starts
    /// (modulo their number).
    next_url: AtomicUsize,
    /// Whether RabbitMQ confirms what it takes (see `ConfirmWatch`).
    confirms: Arc<ConfirmWatch>,
    stop: watch::Sender<bool>,
    /// The supervisor task; `close` waits for it, since it closes the connection.
    supervisor: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// One live connection and its lanes.
struct Session {
    connection: Arc<Connection>,
    /// Requests take these in turn.
    lanes: Vec<LaneHandle>,
    next_lane: AtomicUsize,
    /// A lane of its own for the spool's forwarder, so its window never
    /// competes with requests.
    ordered: LaneHandle,
}

/// Why the broker cannot confirm a publish now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unavailable {
    #[error("not connected to RabbitMQ yet")]
    NotConnectedYet,
    #[error("{0}")]
    Connect(ConnectFailures),
    #[error("lost the connection to RabbitMQ: {0}")]
    Lost(String),
    #[error("RabbitMQ blocks publishing (connection.blocked: a memory or disk alarm)")]
    Blocked,
}

impl Unavailable {
    /// Whether RabbitMQ refused the bridge's credentials or vhost: a
    /// configuration error that waiting will not fix.
    pub fn is_login_refused(&self) -> bool {
        matches!(self, Unavailable::Connect(failures) if failures.login_refused())
    }
}

/// Why each URL of `amqp.urls` could not be used (passwords redacted).
#[derive(Debug, Clone, Default)]
pub struct ConnectFailures(Vec<ConnectFailure>);

#[derive(Debug, Clone)]
pub struct ConnectFailure {
    /// The URL with its password replaced by `***`.
    pub url: String,
    pub kind: FailureKind,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No answer, a refused TCP connection, a broken handshake, a timeout.
    Unreachable,
    /// RabbitMQ refused the login (ACCESS_REFUSED) or the vhost (NOT_ALLOWED).
    LoginRefused,
}

impl ConnectFailures {
    pub fn login_refused(&self) -> bool {
        self.0.iter().any(|f| f.kind == FailureKind::LoginRefused)
    }
}

impl std::fmt::Display for ConnectFailures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, failure) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            match failure.kind {
                FailureKind::LoginRefused => write!(
                    f,
                    "{}: RabbitMQ refused the login: check the user, password and vhost in amqp.urls ({})",
                    failure.url, failure.detail
                )?,
                FailureKind::Unreachable => write!(f, "{}: {}", failure.url, failure.detail)?,
            }
        }
        Ok(())
    }
}

/// Why the bridge cannot start on this broker.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// What exists on the broker differs from what the bridge declares.
    #[error(transparent)]
    Topology(TopologyError),
    /// RabbitMQ refused the login or vhost on one of `amqp.urls` (and no URL
    /// connected): a configuration error, reported at once rather than
    /// spooled around.
    #[error("{0}")]
    LoginRefused(ConnectFailures),
}

/// The connection's state, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerStatus {
    pub connected: bool,
    pub blocked: bool,
    pub login_refused: bool,
    pub reconnects: u64,
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

impl Broker {
    /// Connects once and starts the supervisor that keeps the connection alive.
    ///
    /// A broker that cannot be reached does not stop the start (the bridge
    /// spools, and /readyz says why, until it is back). A topology conflict
    /// does, and so does a login RabbitMQ refuses: only an operator can fix
    /// those, and a bridge that spooled around them would look healthy.
    pub async fn start(settings: BrokerSettings) -> Result<Self, StartError> {
        let (stop, _) = watch::channel(false);
        let first_url = fastrand::usize(..settings.urls.len().max(1));
        let broker = Broker {
            inner: Arc::new(Inner {
                settings,
                session: RwLock::new(None),
                problem: Mutex::new(Unavailable::NotConnectedYet),
                reconnects: AtomicU64::new(0),
                next_url: AtomicUsize::new(first_url),
                confirms: Arc::default(),
                stop,
                supervisor: Mutex::new(None),
            }),
        };
        let first = match broker.connect_any().await {
            Ok(session) => Some(session),
            Err(ConnectError::Topology(error)) => return Err(StartError::Topology(error)),
            Err(ConnectError::Failed(failures)) if failures.login_refused() => {
                return Err(StartError::LoginRefused(failures));
            }
            Err(ConnectError::Failed(failures)) => {
                tracing::warn!(error = %failures, "RabbitMQ is not reachable yet; retrying in the background");
                broker.set_problem(Unavailable::Connect(failures));
                None
            }
        };
        // Installed before returning, so the first request finds it.
        broker.install(first.clone());
        let supervisor = tokio::spawn(broker.clone().supervise(first));
        *broker
            .inner
            .supervisor
            .lock()
            .expect("supervisor lock poisoned") = Some(supervisor);
        Ok(broker)
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.inner.settings.timeout
    }

    pub(crate) fn confirms(&self) -> &Arc<ConfirmWatch> {
        &self.inner.confirms
    }

    /// The session, if the connection is up and not blocked.
    fn usable_session(&self) -> Result<Arc<Session>, PublishError> {
        let session = self
            .inner
            .session
            .read()
            .expect("session lock poisoned")
            .clone()
            .ok_or(PublishError::Disconnected)?;
        if session.is_blocked() {
            // A blocked connection accepts frames but confirms nothing until the
            // alarm clears: fail now rather than hold the request to the timeout.
            return Err(PublishError::Blocked);
        }
        Ok(session)
    }

    /// The next request lane, in turn.
    pub(crate) fn next_lane(&self) -> Result<LaneHandle, PublishError> {
        let session = self.usable_session()?;
        let index = session.next_lane.fetch_add(1, Ordering::Relaxed) % session.lanes.len();
        Ok(session.lanes[index].clone())
    }

    pub(crate) fn ordered_lane(&self) -> Result<LaneHandle, PublishError> {
        Ok(self.usable_session()?.ordered.clone())
    }

    /// `Ok` while a publish can be confirmed; otherwise why not.
    pub fn readiness(&self) -> Result<(), Unavailable> {
        let session = self
            .inner
            .session
            .read()
            .expect("session lock poisoned")
            .clone();
        match session {
            Some(session) if session.is_blocked() => Err(Unavailable::Blocked),
            Some(session) if session.is_connected() => Ok(()),
            _ => Err(self.problem()),
        }
    }

    pub fn status(&self) -> BrokerStatus {
        let readiness = self.readiness();
        BrokerStatus {
            connected: !matches!(
                readiness,
                Err(Unavailable::NotConnectedYet | Unavailable::Connect(_) | Unavailable::Lost(_))
            ),
            blocked: matches!(readiness, Err(Unavailable::Blocked)),
            login_refused: readiness.as_ref().is_err_and(Unavailable::is_login_refused),
            reconnects: self.inner.reconnects.load(Ordering::Relaxed),
        }
    }

    /// Stops reconnecting and closes the connection cleanly. Call it after the
    /// last request has finished, so no confirm is cut off.
    pub async fn close(&self) {
        self.inner.stop.send_replace(true);
        let supervisor = self
            .inner
            .supervisor
            .lock()
            .expect("supervisor lock poisoned")
            .take();
        if let Some(supervisor) = supervisor {
            let _ = supervisor.await;
        }
    }

    fn problem(&self) -> Unavailable {
        self.inner
            .problem
            .lock()
            .expect("problem lock poisoned")
            .clone()
    }

    fn set_problem(&self, problem: Unavailable) {
        *self.inner.problem.lock().expect("problem lock poisoned") = problem;
    }

    fn install(&self, session: Option<Arc<Session>>) {
        *self.inner.session.write().expect("session lock poisoned") = session;
    }

    fn stopping(&self) -> bool {
        *self.inner.stop.borrow()
    }

    async fn supervise(self, mut next: Option<Arc<Session>>) {
        let mut stop = self.inner.stop.subscribe();
        let mut backoff = BACKOFF_START;
        // A login refusal is logged once per change, not once per attempt.
        let mut last_logged: Option<String> = None;
        loop {
            if let Some(session) = next.take() {
                self.inner.confirms.reset();
                self.install(Some(session.clone()));
                backoff = BACKOFF_START;
                last_logged = None;
                let lost = self.watch(&session, &mut stop).await;
                self.install(None);
                match lost {
                    None => return self.close_session(&session).await,
                    Some(reason) => {
                        tracing::warn!(%reason, "lost the connection to RabbitMQ; reconnecting");
                        self.set_problem(Unavailable::Lost(reason));
                    }
                }
            }
            if self.stopping() {
                return;
            }
            // A shutdown does not wait for an attempt in progress (a silent
            // broker could hold it for the whole connect timeout, per URL).
            let attempt = tokio::select! {
                attempt = self.connect_any() => attempt,
                _ = stop.wait_for(|stop| *stop) => return,
            };
            match attempt {
                Ok(session) => {
                    self.inner.reconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("reconnected to RabbitMQ");
                    next = Some(session);
                    continue;
                }
                Err(ConnectError::Topology(error)) => {
                    // Declared fine before; now someone changed it. Keep spooling and say so.
                    let text = error.to_string();
                    if last_logged.as_deref() != Some(text.as_str()) {
                        tracing::error!(error = %text, "RabbitMQ's topology conflicts with the bridge's; events are spooled");
                    }
                    last_logged = Some(text);
                    self.set_problem(Unavailable::Lost(error.to_string()));
                }
                Err(ConnectError::Failed(failures)) => {
                    let text = failures.to_string();
                    if failures.login_refused() {
                        if last_logged.as_deref() != Some(text.as_str()) {
                            tracing::error!(error = %text, "RabbitMQ refuses the bridge's login; events are spooled until amqp.urls is fixed");
                        }
                        last_logged = Some(text);
                    } else {
                        tracing::warn!(error = %text, retry_in_ms = backoff.as_millis() as u64, "connecting to RabbitMQ failed");
                    }
                    self.set_problem(Unavailable::Connect(failures));
                }
            }
            let pause = jitter(backoff);
            backoff = (backoff * 2).min(BACKOFF_CAP);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }

    async fn close_session(&self, session: &Session) {
        let closing = session
            .connection
            .close(200, "enate-bridge shutting down".into());
        match tokio::time::timeout(self.timeout(), closing).await {
            Ok(Ok(())) => tracing::info!("closed the connection to RabbitMQ"),
            Ok(Err(error)) => tracing::warn!(%error, "closing the connection to RabbitMQ failed"),
            Err(_) => tracing::warn!("closing the connection to RabbitMQ timed out"),
        }
    }

    /// Waits until the session is lost (returns why) or the bridge stops (`None`).
    async fn watch(&self, session: &Session, stop: &mut watch::Receiver<bool>) -> Option<String> {
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
                _ = stop.wait_for(|stop| *stop) => return None,
            }
        }
    }

    /// Tries each URL once, in turn from `next_url`, and returns the first
    /// ready session; the next round will start after its URL.
    async fn connect_any(&self) -> Result<Arc<Session>, ConnectError> {
        let mut failures = ConnectFailures::default();
        let urls = &self.inner.settings.urls;
        let start = self.inner.next_url.load(Ordering::Relaxed);
        for offset in 0..urls.len() {
            let index = (start + offset) % urls.len();
            match self.connect(&urls[index]).await {
                Ok(session) => {
                    self.inner.next_url.store(index + 1, Ordering::Relaxed);
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

    async fn connect(&self, url: &SecretString) -> Result<Session, ConnectError> {
        let settings = &self.inner.settings;
        let shown = crate::config::redact_url(url.expose_secret());
        let failed = |kind: FailureKind, detail: String| {
            ConnectError::Failed(ConnectFailures(vec![ConnectFailure {
                url: shown.clone(),
                kind,
                detail,
            }]))
        };
        let lapin_failure = |error: lapin::Error| {
            let kind = if is_login_refusal(&error) {
                FailureKind::LoginRefused
            } else {
                FailureKind::Unreachable
            };
            failed(kind, error.to_string())
        };
        let mut uri = AMQPUri::from_str(url.expose_secret())
            .map_err(|_| failed(FailureKind::Unreachable, "not an AMQP URL".into()))?;
        if uri.query.heartbeat.is_none() {
            uri.query.heartbeat = Some(settings.heartbeat_secs);
        }
        let properties = ConnectionProperties::default()
            .with_connection_name(settings.connection_name.clone().into());
        let prepare = async {
            let connection = Connection::connect_uri(uri, properties)
                .await
                .map_err(lapin_failure)?;
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

impl Session {
    /// Starts the lanes; each opens its channel with its first message.
    fn start(connection: Connection, lanes: usize, window: usize) -> Self {
        let connection = Arc::new(connection);
        Self {
            lanes: (0..lanes)
                .map(|_| LaneHandle::start(connection.clone(), window))
                .collect(),
            next_lane: AtomicUsize::new(0),
            ordered: LaneHandle::start(connection.clone(), window),
            connection,
        }
    }

    fn is_connected(&self) -> bool {
        self.connection.status().connected()
    }

    fn is_blocked(&self) -> bool {
        self.connection.status().blocked()
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
