//! Refusals logged at a bounded rate. A flood of wrong secrets or unknown paths
//! once wrote 46 MB of log in 10 s, one line per request. Now each kind of
//! refusal logs its first [`LINES_PER_WINDOW`] lines per minute, then one
//! summary line with how many were left out; the metrics keep every one.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::outcome::Outcome;

/// Lines logged per outcome and window before the rest are only counted.
pub const LINES_PER_WINDOW: u32 = 5;
/// The window, and how often the summaries are written.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Per outcome: the window's start, the lines logged in it, the lines left out.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    logged: u32,
    left_out: u64,
}

#[derive(Debug)]
pub struct RefusalLog {
    windows: Mutex<[Option<Window>; Outcome::ALL.len()]>,
}

impl Default for RefusalLog {
    fn default() -> Self {
        Self::new()
    }
}

impl RefusalLog {
    pub fn new() -> Self {
        Self {
            windows: Mutex::new([None; Outcome::ALL.len()]),
        }
    }

    /// Whether this refusal gets its own line. A window that has ended is
    /// summed up first.
    pub fn admit(&self, outcome: Outcome) -> bool {
        self.admit_at(outcome, Instant::now())
    }

    /// Writes the summary of every window that has ended (called every [`WINDOW`],
    /// so a flood that stops is still summed up).
    pub fn write_summaries(&self) {
        for (outcome, left_out) in self.ended_at(Instant::now()) {
            write_summary(outcome, left_out);
        }
    }

    fn admit_at(&self, outcome: Outcome, now: Instant) -> bool {
        let position = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let window = windows[position].get_or_insert(Window {
            started: now,
            logged: 0,
            left_out: 0,
        });
        if now.duration_since(window.started) >= WINDOW {
            if window.left_out > 0 {
                write_summary(outcome, window.left_out);
            }
            *window = Window {
                started: now,
                logged: 0,
                left_out: 0,
            };
        }
        if window.logged < LINES_PER_WINDOW {
            window.logged += 1;
            true
        } else {
            window.left_out += 1;
            false
        }
    }

    /// The outcomes whose window has ended with lines left out, and how many;
    /// their windows are closed.
    fn ended_at(&self, now: Instant) -> Vec<(Outcome, u64)> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let mut ended = Vec::new();
        for (outcome, slot) in Outcome::ALL.iter().zip(windows.iter_mut()) {
            if let Some(window) = slot
                && now.duration_since(window.started) >= WINDOW
            {
                if window.left_out > 0 {
                    ended.push((*outcome, window.left_out));
                }
                *slot = None;
            }
        }
        ended
    }
}

fn write_summary(outcome: Outcome, left_out: u64) {
    tracing::info!(
        outcome = outcome.word(),
        not_logged = left_out,
        window_secs = WINDOW.as_secs(),
        "refused webhook requests not logged one by one (enate_bridge_webhooks_total counts them all)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_lines_of_a_window_are_logged_and_the_rest_counted() {
        let log = RefusalLog::new();
        let start = Instant::now();
        let admitted = (0..1000)
            .filter(|_| log.admit_at(Outcome::Unauthorized, start))
            .count();
        assert_eq!(admitted, LINES_PER_WINDOW as usize);
        // Another outcome has its own window.
        assert!(log.admit_at(Outcome::UnknownWebhook, start));
        assert_eq!(log.ended_at(start + WINDOW / 2), vec![]);
        assert_eq!(
            log.ended_at(start + WINDOW),
            vec![(Outcome::Unauthorized, 1000 - u64::from(LINES_PER_WINDOW))]
        );
        // A new window logs again.
        assert!(log.admit_at(Outcome::Unauthorized, start + WINDOW));
    }

    #[test]
    fn a_window_that_ends_on_a_new_refusal_starts_over() {
        let log = RefusalLog::new();
        let start = Instant::now();
        for _ in 0..10 {
            log.admit_at(Outcome::Timeout, start);
        }
        assert!(log.admit_at(Outcome::Timeout, start + WINDOW));
        assert_eq!(log.ended_at(start + WINDOW), vec![]);
    }
}
