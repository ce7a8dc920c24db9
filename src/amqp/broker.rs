//! The broker as the rest of the bridge sees it: publish with a confirm, a
//! lane that keeps order, readiness and status, and a clean close. The
//! connection's life behind it (connecting, reconnecting) is `connection`'s.
//!
//! A message is safe only when the broker acks it *without* returning it: a
//! `mandatory` message nobody could route still comes back as an ack,
//! carrying the returned message (the lane judges that, see `lane`).
//! `publish` spreads messages over the session's lanes (one channel each): no
//! publish waits for another's confirm, only for its own. `in_order` gives one
//! lane for a caller that needs its messages enqueued in the order it submits
//! them (the spool's forwarder).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    connection::Link,
    message::{Confirmed, Message, PublishError},
    ordered::OrderedLane,
    session::Session,
    settings::BrokerSettings,
    unavailable::{StartError, Unavailable},
};

/// A handle to the broker connection; cheap to clone.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    link: Arc<Link>,
    /// Stops the supervisor, which then closes the connection.
    stop: CancellationToken,
    /// The supervisor task; `close` waits for it, since it closes the connection.
    supervisor: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The connection's state, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerStatus {
    pub connected: bool,
    pub blocked: bool,
    pub login_refused: bool,
    pub tls_refused: bool,
    pub reconnects: u64,
}

impl Broker {
    /// Connects once and starts the supervisor that keeps the connection alive.
    ///
    /// A broker that cannot be reached does not stop the start (the bridge
    /// spools, and /readyz says why, until it is back). A topology conflict
    /// does, and so does a login RabbitMQ refuses: only an operator can fix
    /// those, and a bridge that spooled around them would look healthy.
    ///
    /// This broker stops only when closed; its tasks are tracked on their own
    /// (for a broker used alone, as the tests do).
    pub async fn start(settings: BrokerSettings) -> Result<Self, StartError> {
        Self::start_tracked(settings, &TaskTracker::new(), CancellationToken::new()).await
    }

    /// `start`, with its supervisor and lanes on the application's `tasks`,
    /// and stopped (the connection closed) when `stop` is cancelled or the
    /// broker closed.
    pub async fn start_tracked(
        settings: BrokerSettings,
        tasks: &TaskTracker,
        stop: CancellationToken,
    ) -> Result<Self, StartError> {
        let link = Arc::new(Link::new(settings, tasks.clone()));
        let first = link.connect_first().await?;
        let supervisor = tasks.spawn(link.clone().supervise(first, stop.clone()));
        Ok(Broker {
            inner: Arc::new(Inner {
                link,
                stop,
                supervisor: Mutex::new(Some(supervisor)),
            }),
        })
    }

    /// Publishes one message and waits for its confirm, at most
    /// `amqp.confirm_timeout_ms` in all (queueing, sending and confirming).
    /// Returns where its time went on the lane.
    /// Fails at once with `Stalled` while RabbitMQ confirms nothing (see
    /// `ConfirmWatch`), unless this publish is the one that probes.
    pub async fn publish(&self, message: Message) -> Result<Confirmed, PublishError> {
        let confirms = self.inner.link.confirms();
        let _probe = confirms.admit()?;
        let lane = self.usable_session()?.next_lane();
        let confirmed = async { lane.submit(message).await?.verdict().await };
        let result = tokio::time::timeout(self.timeout(), confirmed)
            .await
            .unwrap_or(Err(PublishError::Timeout));
        confirms.record(&result);
        result
    }

    /// One lane for messages that must be enqueued in submission order.
    pub fn in_order(&self) -> Result<OrderedLane, PublishError> {
        Ok(OrderedLane::new(
            self.usable_session()?.ordered_lane(),
            self.timeout(),
            self.inner.link.confirms().clone(),
        ))
    }

    /// `Ok` while a publish can be confirmed; otherwise why not.
    pub fn readiness(&self) -> Result<(), Unavailable> {
        match self.inner.link.session() {
            Some(session) if session.is_blocked() => Err(Unavailable::Blocked),
            Some(session) if session.is_connected() => Ok(()),
            _ => Err(self.inner.link.problem()),
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
            tls_refused: readiness.as_ref().is_err_and(Unavailable::is_tls_refused),
            reconnects: self.inner.link.reconnects(),
        }
    }

    /// Stops reconnecting and closes the connection cleanly. Call it after the
    /// last request has finished, so no confirm is cut off.
    pub async fn close(&self) {
        self.inner.stop.cancel();
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

    fn timeout(&self) -> Duration {
        self.inner.link.settings().timeout
    }

    /// The session, if the connection is up and not blocked.
    fn usable_session(&self) -> Result<Arc<Session>, PublishError> {
        let session = self
            .inner
            .link
            .session()
            .ok_or(PublishError::Disconnected)?;
        if session.is_blocked() {
            // A blocked connection accepts frames but confirms nothing until the
            // alarm clears: fail now rather than hold the request to the timeout.
            return Err(PublishError::Blocked);
        }
        Ok(session)
    }
}
