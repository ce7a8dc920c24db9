//! One live connection and its lanes: what requests publish on while the
//! connection is up. A reconnect makes a new session; the old one's lanes end
//! once their last confirms are settled.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use lapin::Connection;
use tokio_util::task::TaskTracker;

use super::lane::LaneHandle;

pub(super) struct Session {
    pub(super) connection: Arc<Connection>,
    /// Requests take these in turn.
    lanes: Vec<LaneHandle>,
    next_lane: AtomicUsize,
    /// A lane of its own for the spool's forwarder, so its window never
    /// competes with requests.
    ordered: LaneHandle,
}

impl Session {
    /// Starts the lanes, tracked by `tasks`; each opens its channel with its
    /// first message.
    pub(super) fn start(
        connection: Connection,
        lanes: usize,
        window: usize,
        tasks: &TaskTracker,
    ) -> Self {
        let connection = Arc::new(connection);
        Self {
            lanes: (0..lanes)
                .map(|_| LaneHandle::start(connection.clone(), window, tasks))
                .collect(),
            next_lane: AtomicUsize::new(0),
            ordered: LaneHandle::start(connection.clone(), window, tasks),
            connection,
        }
    }

    /// The next request lane, in turn.
    pub(super) fn next_lane(&self) -> LaneHandle {
        let index = self.next_lane.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        self.lanes[index].clone()
    }

    pub(super) fn ordered_lane(&self) -> LaneHandle {
        self.ordered.clone()
    }

    pub(super) fn is_connected(&self) -> bool {
        self.connection.status().connected()
    }

    pub(super) fn is_blocked(&self) -> bool {
        self.connection.status().blocked()
    }
}
