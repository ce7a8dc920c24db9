//! Waiting for what a test means: `eventually(within, what, probe)` probes
//! until the probe says done or `within` runs out, and then fails saying what
//! was awaited and what the probe last saw. A test waits for a condition this
//! way, never for a fixed time.
//!
//! A probe is an async closure whose answer is a [`Probe`]: `true`, `Some(v)`
//! or `Ok(v)` is done (`eventually` returns `()` or `v`); `false`, `None` or
//! `Err(seen)` is not yet, and `seen` (anything `Display`: a /readyz body, a
//! count, an error) is what the failure message shows as last observed.

use std::{fmt::Display, future::Future, time::Duration};

use tokio::time::Instant;

/// How often `eventually` probes; `eventually_every` for another interval (a
/// probe with a side effect, or a time measured to the poll).
pub const POLL: Duration = Duration::from_millis(50);

/// A probe's answer: done with a value, or not yet with what it saw.
pub trait Probe {
    type Done;
    fn settle(self) -> Result<Self::Done, String>;
}

impl Probe for bool {
    type Done = ();
    fn settle(self) -> Result<(), String> {
        if self { Ok(()) } else { Err("false".into()) }
    }
}

impl<T> Probe for Option<T> {
    type Done = T;
    fn settle(self) -> Result<T, String> {
        self.ok_or_else(|| "None".into())
    }
}

impl<T, E: Display> Probe for Result<T, E> {
    type Done = T;
    fn settle(self) -> Result<T, String> {
        self.map_err(|seen| seen.to_string())
    }
}

/// Probes every [`POLL`] until `probe` is done, and returns its value; panics
/// once `within` has run out, with `what` and the last observation.
pub async fn eventually<F, Fut, P>(within: Duration, what: impl Display, probe: F) -> P::Done
where
    F: FnMut() -> Fut,
    Fut: Future<Output = P>,
    P: Probe,
{
    eventually_every(within, POLL, what, probe).await
}

/// `eventually`, probing every `every`.
pub async fn eventually_every<F, Fut, P>(
    within: Duration,
    every: Duration,
    what: impl Display,
    probe: F,
) -> P::Done
where
    F: FnMut() -> Fut,
    Fut: Future<Output = P>,
    P: Probe,
{
    match poll_until(within, every, probe).await {
        Ok(done) => done,
        Err(last) => panic!("waited {within:?} for {what}, in vain; last observed: {last}"),
    }
}

/// The one polling loop: probes every `every` until `probe` is done (`Ok`
/// with its value) or `within` has run out (`Err` with the last observation).
/// For a test to which time running out is a finding to report, not a failure
/// (or whose failure message needs more than the last observation).
pub async fn poll_until<F, Fut, P>(
    within: Duration,
    every: Duration,
    mut probe: F,
) -> Result<P::Done, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = P>,
    P: Probe,
{
    let started = Instant::now();
    loop {
        match probe().await.settle() {
            Ok(done) => return Ok(done),
            Err(last) if started.elapsed() >= within => return Err(last),
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn returns_the_value_once_the_probe_is_done() {
        let calls = AtomicU32::new(0);
        let value = eventually(Duration::from_secs(5), "the third call", || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 3 { Ok(n) } else { Err(n) }
        })
        .await;
        assert_eq!(value, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "for a probe that never holds, in vain; last observed: 7")]
    async fn fails_with_what_was_awaited_and_the_last_observation() {
        eventually(
            Duration::from_millis(120),
            "a probe that never holds",
            || async { Err::<(), _>(7) },
        )
        .await;
    }

    #[tokio::test]
    async fn poll_until_reports_time_running_out() {
        let outcome = poll_until(Duration::from_millis(60), POLL, || async { false }).await;
        assert_eq!(outcome, Err("false".to_string()));
    }
}
