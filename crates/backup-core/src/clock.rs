//! Time as a parameter: the [`Clock`] the engine reads where a decision depends on the time of
//! day (when a lease expires, when a schedule fires next).
//!
//! The library never reads the wall clock on such a path; it asks the clock its
//! [`Engine`](crate::Engine) was built with ([`EngineBuilder::clock`](crate::EngineBuilder::clock)),
//! [`SystemClock`] by default. Waiting is always done with `tokio::time`, so a test that builds
//! the engine with a [`TokioClock`] and pauses tokio's time (`#[tokio::test(start_paused = true)]`,
//! `tokio::time::advance`) sees leases expire and schedules fire without sleeping.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Tells the time. Implementations must be cheap and never block; they are read often.
///
/// The contract: `now` never goes backwards by more than the system clock itself does, and a
/// clock that follows tokio's time (like [`TokioClock`]) advances exactly as much as
/// `tokio::time::Instant` does, so that `tokio::time::sleep(d)` moves it by `d`.
pub trait Clock: fmt::Debug + Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock ([`Utc::now`]); the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that starts at a chosen moment and then follows tokio's time: while tokio's time
/// is paused (tests), it stands still until the runtime advances it, and sleeping moves it
/// forward by exactly the time slept.
///
/// Create it inside the runtime whose time it follows.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    anchor: DateTime<Utc>,
    started: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `anchor` now and advances with `tokio::time::Instant`.
    pub fn starting_at(anchor: DateTime<Utc>) -> Self {
        Self {
            anchor,
            started: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().duration_since(self.started);
        // An elapsed time too large for chrono (centuries) saturates rather than panics.
        self.anchor + chrono::Duration::from_std(elapsed).unwrap_or(chrono::TimeDelta::MAX)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

/// How long from `now` until `at` (zero when `at` has passed), for `tokio::time::sleep`.
pub(crate) fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> std::time::Duration {
    (at - now).to_std().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_follows_paused_time() {
        let clock = TokioClock::starting_at(at("2026-11-30T03:00:00Z"));
        assert_eq!(clock.now(), at("2026-11-30T03:00:00Z"));
        tokio::time::advance(std::time::Duration::from_secs(90)).await;
        assert_eq!(clock.now(), at("2026-11-30T03:01:30Z"));
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        assert_eq!(clock.now(), at("2026-11-30T03:02:00Z"));
        let shared: Arc<dyn Clock> = Arc::new(clock);
        assert_eq!(shared.now(), at("2026-11-30T03:02:00Z"));
    }

    #[test]
    fn until_is_zero_for_the_past() {
        let now = at("2026-11-30T03:00:00Z");
        assert_eq!(
            until(now, at("2026-11-30T02:00:00Z")),
            std::time::Duration::ZERO
        );
        assert_eq!(
            until(now, at("2026-11-30T03:00:05Z")),
            std::time::Duration::from_secs(5)
        );
    }
}
