//! Enate sends duplicates (rapid successive updates; an email fires two
//! webhooks; its own retries). The same event id seen again within
//! `dedup.window_secs` is answered 200 `duplicate` and not published again.
//!
//! Ids are remembered only once their event is safe (confirmed or spooled), so
//! a duplicate is never acknowledged for an event that was lost. Memory is
//! bounded: past `capacity` ids the oldest are forgotten early.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

use uuid::Uuid;

pub struct Dedup {
    window: Duration,
    capacity: usize,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    at: HashMap<Uuid, Instant>,
    /// Ids in the order they were remembered, for expiry.
    order: VecDeque<(Uuid, Instant)>,
}

/// Ids remembered at most: about 100 bytes each, so some 10 MB.
pub const DEFAULT_CAPACITY: usize = 100_000;

impl Dedup {
    /// A window of zero turns deduplication off.
    pub fn new(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity,
            seen: Mutex::new(Seen::default()),
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.window.is_zero()
    }

    /// Whether `id` was remembered within the window.
    pub fn is_duplicate(&self, id: &Uuid) -> bool {
        self.is_duplicate_at(id, Instant::now())
    }

    pub fn remember(&self, ids: impl IntoIterator<Item = Uuid>) {
        self.remember_at(ids, Instant::now());
    }

    fn is_duplicate_at(&self, id: &Uuid, now: Instant) -> bool {
        if !self.is_enabled() {
            return false;
        }
        let seen = self.seen.lock().expect("dedup lock poisoned");
        seen.at
            .get(id)
            .is_some_and(|at| now.duration_since(*at) < self.window)
    }

    fn remember_at(&self, ids: impl IntoIterator<Item = Uuid>, now: Instant) {
        if !self.is_enabled() {
            return;
        }
        let mut seen = self.seen.lock().expect("dedup lock poisoned");
        for id in ids {
            seen.at.insert(id, now);
            seen.order.push_back((id, now));
        }
        // Forget what is past the window, and the oldest beyond capacity.
        while let Some(&(id, at)) = seen.order.front() {
            let expired = now.duration_since(at) >= self.window;
            if !expired && seen.order.len() <= self.capacity {
                break;
            }
            seen.order.pop_front();
            // Only if this entry is the latest sighting of the id.
            if seen.at.get(&id) == Some(&at) {
                seen.at.remove(&id);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.lock().unwrap().at.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn an_id_is_a_duplicate_within_the_window_only() {
        let dedup = Dedup::new(Duration::from_secs(10), 100);
        let start = Instant::now();
        assert!(!dedup.is_duplicate_at(&id(1), start));
        dedup.remember_at([id(1)], start);
        assert!(dedup.is_duplicate_at(&id(1), start + Duration::from_secs(9)));
        assert!(!dedup.is_duplicate_at(&id(1), start + Duration::from_secs(10)));
        assert!(!dedup.is_duplicate_at(&id(2), start));
    }

    #[test]
    fn memory_is_bounded_by_capacity_and_expiry() {
        let dedup = Dedup::new(Duration::from_secs(10), 3);
        let start = Instant::now();
        dedup.remember_at((0..5).map(id), start);
        assert_eq!(dedup.len(), 3);
        assert!(
            !dedup.is_duplicate_at(&id(0), start),
            "the oldest were forgotten"
        );
        assert!(dedup.is_duplicate_at(&id(4), start));
        dedup.remember_at([id(9)], start + Duration::from_secs(11));
        assert_eq!(dedup.len(), 1, "expired ids are dropped");
    }

    #[test]
    fn a_renewed_id_survives_the_expiry_of_its_first_sighting() {
        let dedup = Dedup::new(Duration::from_secs(10), 100);
        let start = Instant::now();
        dedup.remember_at([id(1)], start);
        dedup.remember_at([id(1)], start + Duration::from_secs(8));
        dedup.remember_at([id(2)], start + Duration::from_secs(12));
        assert!(dedup.is_duplicate_at(&id(1), start + Duration::from_secs(12)));
    }

    #[test]
    fn a_zero_window_turns_it_off() {
        let dedup = Dedup::new(Duration::ZERO, 100);
        dedup.remember([id(1)]);
        assert!(!dedup.is_duplicate(&id(1)));
    }
}
