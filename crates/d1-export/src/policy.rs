//! Request budget and retry settings, and the shared limiter that enforces them.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use governor::clock::Clock;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

/// How many requests one client may send to the D1 API.
///
/// Cloudflare allows 1,200 requests per five minutes per token, counted across
/// every call, and answers *every* call with 429 for up to five minutes once
/// that is exceeded. The default, 900 requests per five minutes with a burst
/// of 10, stays a quarter below the limit so other tools using the same token
/// (a dashboard, wrangler) keep some headroom. All clones of one
/// [`D1Client`](crate::D1Client) share one budget: clone one client per token
/// rather than building several.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per `period` on average.
    pub requests: u32,
    /// The window `requests` is measured over.
    pub period: Duration,
    /// Requests that may be sent back to back before pacing starts.
    pub burst: u32,
}

impl RateLimit {
    /// `requests` per five minutes, with a burst of 10.
    pub fn per_five_minutes(requests: u32) -> Self {
        Self::new(requests, Duration::from_mins(5))
    }

    /// `requests` per `period`, with a burst of 10.
    pub fn new(requests: u32, period: Duration) -> Self {
        Self {
            requests,
            period,
            burst: 10,
        }
    }

    /// Sets how many requests may go out back to back.
    #[must_use]
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    fn quota(&self) -> Quota {
        let requests = self.requests.max(1);
        let period = (self.period / requests).max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(period).map_or_else(
            || Quota::per_second(NonZeroU32::MIN),
            |q| q.allow_burst(burst),
        )
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::per_five_minutes(900)
    }
}

/// How failed requests are retried.
///
/// Transient failures (network errors, timeouts, 5xx, HTML edge pages,
/// non-JSON bodies) back off exponentially with jitter, at most
/// `max_retries` times in a row. A 429 waits for `retry-after` (all requests
/// of the client pause, not only the one that got it), up to
/// `max_rate_limit_wait` in total per call. 400, 401, 403 and 404 are never
/// retried.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after transient failures before giving up.
    pub max_retries: u32,
    /// The first backoff delay.
    pub initial_backoff: Duration,
    /// The largest backoff delay.
    pub max_backoff: Duration,
    /// The longest a single call waits out 429 answers in total.
    pub max_rate_limit_wait: Duration,
    /// The wait after a 429 that carries no `retry-after`.
    pub default_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 8,
            initial_backoff: Duration::from_millis(500),
            // Kept short: D1 cancels an export that is not polled continually.
            max_backoff: Duration::from_secs(10),
            // The account-wide lockout lasts up to five minutes.
            max_rate_limit_wait: Duration::from_secs(330),
            default_retry_after: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries; handy in tests and for callers that
    /// retry on their own.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            max_rate_limit_wait: Duration::ZERO,
            ..Self::default()
        }
    }

    /// The backoff delays for one call, jittered.
    pub(crate) fn backoff(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.initial_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.max_retries as usize)
            .build()
    }
}

/// A governor clock driven by `tokio::time`, so paused-time tests see the
/// limiter advance with the runtime's clock.
#[derive(Debug, Clone)]
struct TokioClock {
    start: Instant,
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }
}

/// The request budget shared by all clones of one client.
#[derive(Debug)]
pub(crate) struct Limiter {
    clock: TokioClock,
    /// The GCRA state; `check` consumes one request's worth on success.
    gcra: RateLimiter<
        NotKeyed,
        InMemoryState,
        TokioClock,
        governor::middleware::NoOpMiddleware<Duration>,
    >,
    /// Set after a 429: no request of this client goes out before this
    /// instant, because the server refuses every call during the lockout.
    blocked_until: Mutex<Option<Instant>>,
}

impl Limiter {
    pub(crate) fn new(limit: &RateLimit) -> Self {
        let clock = TokioClock {
            start: Instant::now(),
        };
        Self {
            gcra: RateLimiter::direct_with_clock(limit.quota(), clock.clone()),
            clock,
            blocked_until: Mutex::new(None),
        }
    }

    /// Waits until one more request fits the budget, and takes it.
    pub(crate) async fn acquire(&self) {
        loop {
            if let Some(until) = self.blocked_until().filter(|until| *until > Instant::now()) {
                tokio::time::sleep_until(until).await;
                continue;
            }
            match self.gcra.check() {
                Ok(()) => return,
                Err(not_until) => {
                    tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
                }
            }
        }
    }

    /// Holds back every request of this client until `until`.
    pub(crate) fn block_until(&self, until: Instant) {
        if let Ok(mut guard) = self.blocked_until.lock()
            && guard.is_none_or(|current| current < until)
        {
            *guard = Some(until);
        }
    }

    fn blocked_until(&self) -> Option<Instant> {
        self.blocked_until.lock().ok().and_then(|guard| *guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn limiter_paces_after_burst() {
        let limiter = Limiter::new(&RateLimit::new(10, Duration::from_secs(10)).with_burst(2));
        let start = Instant::now();
        for _ in 0..6 {
            limiter.acquire().await;
        }
        // Two go out at once, the next four one second apart.
        assert_eq!(start.elapsed().as_secs(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn block_until_holds_requests() {
        let limiter = Limiter::new(&RateLimit::default());
        let start = Instant::now();
        limiter.block_until(start + Duration::from_secs(30));
        limiter.acquire().await;
        assert_eq!(start.elapsed().as_secs(), 30);
    }

    #[test]
    fn backoff_is_bounded() {
        let policy = RetryPolicy {
            max_retries: 20,
            ..RetryPolicy::default()
        };
        let delays: Vec<_> = policy.backoff().collect();
        assert_eq!(delays.len(), 20);
        assert!(delays.iter().all(|d| *d <= policy.max_backoff * 2));
        assert_eq!(RetryPolicy::none().backoff().count(), 0);
    }
}
