//! One way to stop: every background task is spawned on one `TaskTracker`,
//! and every part is told to stop by one tree of `CancellationToken`s, so a
//! shutdown can wait for all of them and none outlives the application.
//!
//! No accepted event may be lost, so the parts stop in a fixed order: /readyz
//! turns 503 and the ingress drains its requests (each confirmed or spooled),
//! then the spool's forwarder settles what it has in flight, then the broker
//! connection closes, then the rest (the refusal summaries) stops. A part that
//! must stop first is a child of the part that stops after it: cancelling a
//! part then also stops every part that should already have stopped, and
//! cancelling the root stops everything.
//!
//! ```text
//! everything          the refusal summaries; the root
//! └── broker          the connection's supervisor, which closes the connection
//!     └── forwarder   the spool's forwarder
//!         └── intake  /readyz answers 503
//! ```

use std::time::Duration;

use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub struct Shutdown {
    /// Every background task: the listeners, the forwarder, the broker's
    /// supervisor and lanes, the refusal summaries.
    pub tasks: TaskTracker,
    pub everything: CancellationToken,
    pub broker: CancellationToken,
    pub forwarder: CancellationToken,
    pub intake: CancellationToken,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let everything = CancellationToken::new();
        let broker = everything.child_token();
        let forwarder = broker.child_token();
        let intake = forwarder.child_token();
        Self {
            tasks: TaskTracker::new(),
            everything,
            broker,
            forwarder,
            intake,
        }
    }

    /// The last step: stops whatever is left and waits, at most `within`, for
    /// every tracked task to end. Whether they all did; a task still running
    /// is logged, not waited for beyond `within`.
    pub async fn finish(&self, within: Duration) -> bool {
        self.everything.cancel();
        self.tasks.close();
        if tokio::time::timeout(within, self.tasks.wait())
            .await
            .is_ok()
        {
            return true;
        }
        tracing::warn!(
            still_running = self.tasks.len(),
            within_secs = within.as_secs(),
            "background tasks did not stop in time"
        );
        false
    }
}
