//! The life of the connection to RabbitMQ: connect (trying each of `amqp.urls`
//! in turn), declare the topology, open the confirm channels, notice the loss
//! of the connection or a `connection.blocked`, and reconnect with capped
//! exponential backoff and jitter. Requests never wait for any of this: while
//! there is no usable session, a publish fails at once.

use std::{
    str::FromStr,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use futures::StreamExt;
use lapin::{Connection, ConnectionProperties, Event, uri::AMQPUri};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;

use super::{
    session::Session,
    topology::{Topology, TopologyError},
};
use crate::{config::redact_url, metrics::Metrics};

#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub urls: Vec<SecretString>,
    pub connection_name: String,
    pub heartbeat_secs: u16,
    pub channels: usize,
    pub confirms_per_channel: usize,
    /// Bounds every wait on the broker: connecting, declaring, each confirm.
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
    metrics: Arc<Metrics>,
    /// The session requests publish on. The lock is held only to clone or swap the `Arc`.
    session: RwLock<Option<Arc<Session>>>,
    /// Why there is no session, for /readyz and logs.
    problem: Mutex<String>,
    stop: watch::Sender<bool>,
    /// The supervisor task; `close` waits for it, since it closes the connection.
    supervisor: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unreachable(String),
}

/// Channels opened with the connection, so the first requests do not wait for one.
const WARM_CHANNELS: usize = 8;
const BACKOFF_START: Duration = Duration::from_millis(200);
/// Capped low: the spool waits for the broker, so a quick return matters more than
/// sparing a recovering broker a connection attempt every few seconds.
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// How often the connection's state is looked at, beside its events.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

impl Broker {
    /// Connects once and starts the supervisor that keeps the connection alive.
    ///
    /// A broker that cannot be reached does not stop the start (the bridge answers
    /// 503 and /readyz says why until it is back); a topology conflict does, since
    /// only an operator can resolve it.
    pub async fn start(settings: BrokerSettings, metrics: Arc<Metrics>) -> Result<Self, String> {
        let (stop, _) = watch::channel(false);
        let broker = Broker {
            inner: Arc::new(Inner {
                settings,
                metrics,
                session: RwLock::new(None),
                problem: Mutex::new("not connected to RabbitMQ yet".into()),
                stop,
                supervisor: Mutex::new(None),
            }),
        };
        let first = match broker.connect_any().await {
            Ok(session) => Some(session),
            Err(ConnectError::Conflict(message)) => return Err(message),
            Err(ConnectError::Unreachable(message)) => {
                tracing::warn!(error = %message, "RabbitMQ is not reachable yet; retrying in the background");
                broker.set_problem(message);
                None
            }
        };
        let supervisor = tokio::spawn(broker.clone().supervise(first));
        *broker
            .inner
            .supervisor
            .lock()
            .expect("supervisor lock poisoned") = Some(supervisor);
        Ok(broker)
    }

    /// The current session, if the connection is up and ready for publishing.
    pub(crate) fn session(&self) -> Option<Arc<Session>> {
        self.inner
            .session
            .read()
            .expect("session lock poisoned")
            .clone()
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.inner.settings.timeout
    }

    /// `Ok` while a publish can be confirmed; otherwise why not.
    pub fn readiness(&self) -> Result<(), String> {
        match self.session() {
            Some(session) if session.is_blocked() => Err(
                "RabbitMQ blocks publishing (connection.blocked: a memory or disk alarm)".into(),
            ),
            Some(session) if session.is_connected() => Ok(()),
            _ => Err(self
                .inner
                .problem
                .lock()
                .expect("problem lock poisoned")
                .clone()),
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

    fn set_problem(&self, problem: String) {
        *self.inner.problem.lock().expect("problem lock poisoned") = problem;
    }

    fn install(&self, session: Option<Arc<Session>>) {
        let connected = session.is_some();
        *self.inner.session.write().expect("session lock poisoned") = session;
        self.inner.metrics.amqp_connected.set(i64::from(connected));
        if !connected {
            self.inner.metrics.amqp_blocked.set(0);
        }
    }

    fn stopping(&self) -> bool {
        *self.inner.stop.borrow()
    }

    async fn supervise(self, mut next: Option<Arc<Session>>) {
        let mut stop = self.inner.stop.subscribe();
        let mut backoff = BACKOFF_START;
        loop {
            if let Some(session) = next.take() {
                self.install(Some(session.clone()));
                backoff = BACKOFF_START;
                let lost = self.watch(&session, &mut stop).await;
                self.install(None);
                match lost {
                    None => return self.close_session(&session).await,
                    Some(reason) => {
                        tracing::warn!(%reason, "lost the connection to RabbitMQ; reconnecting");
                        self.set_problem(format!("lost the connection to RabbitMQ: {reason}"));
                    }
                }
            }
            if self.stopping() {
                return;
            }
            match self.connect_any().await {
                Ok(session) => {
                    self.inner.metrics.amqp_reconnects.inc();
                    tracing::info!("reconnected to RabbitMQ");
                    next = Some(session);
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "connecting to RabbitMQ failed");
                    self.set_problem(error.to_string());
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

    /// Waits until the session is lost (returns why) or the bridge stops (`None`),
    /// keeping the blocked gauge in step with the broker's flow control.
    async fn watch(&self, session: &Session, stop: &mut watch::Receiver<bool>) -> Option<String> {
        let mut events = session.connection.events_listener();
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Event::ConnectionBlocked(reason)) => {
                        tracing::warn!(%reason, "RabbitMQ blocked publishing");
                        self.inner.metrics.amqp_blocked.set(1);
                    }
                    Some(Event::ConnectionUnblocked) => {
                        tracing::info!("RabbitMQ unblocked publishing");
                        self.inner.metrics.amqp_blocked.set(0);
                    }
                    Some(Event::Error(error)) => return Some(error.to_string()),
                    Some(_) => {}
                    None => return Some("the connection's event stream ended".into()),
                },
                _ = tick.tick() => {
                    if !session.is_connected() {
                        return Some("the connection is no longer open".into());
                    }
                    self.inner.metrics.amqp_blocked.set(i64::from(session.is_blocked()));
                }
                _ = stop.wait_for(|stop| *stop) => return None,
            }
        }
    }

    /// Tries each URL once, in order, and returns the first ready session.
    async fn connect_any(&self) -> Result<Arc<Session>, ConnectError> {
        let mut failures = Vec::new();
        for url in &self.inner.settings.urls {
            match self.connect(url).await {
                Ok(session) => return Ok(Arc::new(session)),
                Err(ConnectError::Conflict(message)) => {
                    return Err(ConnectError::Conflict(message));
                }
                Err(ConnectError::Unreachable(message)) => failures.push(message),
            }
        }
        Err(ConnectError::Unreachable(failures.join("; ")))
    }

    async fn connect(&self, url: &SecretString) -> Result<Session, ConnectError> {
        let settings = &self.inner.settings;
        let shown = redact_url(url.expose_secret());
        let unreachable = |what: String| ConnectError::Unreachable(format!("{shown}: {what}"));
        let mut uri = AMQPUri::from_str(url.expose_secret())
            .map_err(|_| unreachable("not an AMQP URL".into()))?;
        if uri.query.heartbeat.is_none() {
            uri.query.heartbeat = Some(settings.heartbeat_secs);
        }
        let properties = ConnectionProperties::default()
            .with_connection_name(settings.connection_name.clone().into());
        let prepare = async {
            let connection = Connection::connect_uri(uri, properties)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            if let Some(topology) = &settings.topology {
                topology
                    .declare(&connection)
                    .await
                    .map_err(|error| match error {
                        TopologyError::Conflict(message) => ConnectError::Conflict(message),
                        TopologyError::Connection(error) => unreachable(error.to_string()),
                    })?;
            }
            Session::open(
                connection,
                WARM_CHANNELS,
                settings.channels,
                settings.confirms_per_channel,
            )
            .await
            .map_err(|e| unreachable(format!("opening confirm channels failed: {e}")))
        };
        let session = tokio::time::timeout(settings.timeout, prepare)
            .await
            .map_err(|_| {
                unreachable(format!(
                    "no answer within {} ms",
                    settings.timeout.as_millis()
                ))
            })??;
        tracing::info!(url = %shown, "connected to RabbitMQ");
        Ok(session)
    }
}

/// A pause between half and all of `base`, so many bridges do not reconnect in step.
fn jitter(base: Duration) -> Duration {
    base.mul_f64(0.5 + fastrand::f64() * 0.5)
}
