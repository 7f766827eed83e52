//! The one backoff rule for everything the dispatcher retries: Okta and
//! Slack calls within an invocation, and failed messages between deliveries.
//!
//! A wait starts at `first`, grows `factor` times with each failure up to
//! `max`, and is spread ±20% so that work that failed together does not come
//! back together. Whether a wait is taken at all is the [`Deadline`]'s call:
//! a wait that would end past it is not, and the work is left for the next
//! delivery. Okta's `X-Rate-Limit-*` pacing is not a backoff and stays in
//! [`crate::rate_limit`]; only a 429 without those headers falls back to
//! [`OKTA_RATE_LIMITED`].

use std::time::Duration;

use crate::deadline::Deadline;

/// A growing, capped, jittered wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    factor: u32,
    max: Duration,
}

/// Okta unavailable (5xx, network, an answer cut off): about 0.25 s, 0.5 s,
/// 1 s, ... at most 8 s.
pub const OKTA_ERRORS: Backoff =
    Backoff::new(Duration::from_millis(250), 2, Duration::from_secs(8));

/// A 429 whose headers do not say when the window resets, or Okta's
/// concurrency limit (whose reset is only an estimate): about 1 s, 2 s, 4 s,
/// at most 5 s.
pub const OKTA_RATE_LIMITED: Backoff =
    Backoff::new(Duration::from_secs(1), 2, Duration::from_secs(5));

/// Slack unavailable (5xx, network, a 429 without `Retry-After`): about
/// 0.3 s, 0.6 s, 1.2 s, at most 5 s.
pub const SLACK_ERRORS: Backoff =
    Backoff::new(Duration::from_millis(300), 2, Duration::from_secs(5));

/// Returned messages wait at most this long (SQS allows 12 hours; a quarter
/// of an hour keeps an outage's events moving).
pub const MAX_DELIVERY_DELAY: Duration = Duration::from_secs(900);

/// A failed message returned to the queue: `first` (`RETRY_DELAY_SECONDS`),
/// then 4 times longer for each delivery: 30 s, 2 min, 8 min, 15 min with
/// the default.
pub const fn deliveries(first: Duration) -> Backoff {
    Backoff::new(first, 4, MAX_DELIVERY_DELAY)
}

impl Backoff {
    pub const fn new(first: Duration, factor: u32, max: Duration) -> Backoff {
        Backoff { first, factor, max }
    }

    /// The wait after `failures` failures (1 for the first), jittered by
    /// `unit` (0 to 1; 0.5 is the middle, no jitter). Never more than `max`.
    pub fn delay_at(&self, failures: u32, unit: f64) -> Duration {
        let steps = failures.saturating_sub(1).min(16);
        let grown = self
            .first
            .saturating_mul(self.factor.saturating_pow(steps))
            .min(self.max);
        grown
            .mul_f64(0.8 + 0.4 * unit.clamp(0.0, 1.0))
            .min(self.max)
    }

    /// The wait after `failures` failures, with random jitter.
    pub fn delay(&self, failures: u32) -> Duration {
        self.delay_at(failures, rand::random())
    }

    /// Waits after `failures` failures if the wait ends before `deadline`;
    /// `false` (at once) when it would not: give up for this invocation.
    pub async fn wait(&self, failures: u32, deadline: Deadline) -> bool {
        deadline.sleep(self.delay(failures)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_its_factor_up_to_its_cap() {
        let b = Backoff::new(Duration::from_millis(100), 2, Duration::from_secs(1));
        let mid: Vec<Duration> = (1..=6).map(|n| b.delay_at(n, 0.5)).collect();
        assert_eq!(
            mid,
            [100, 200, 400, 800, 1000, 1000].map(Duration::from_millis)
        );
        assert_eq!(
            b.delay_at(0, 0.5),
            Duration::from_millis(100),
            "0 counts as the first"
        );
        assert_eq!(
            b.delay_at(u32::MAX, 0.5),
            Duration::from_secs(1),
            "no overflow"
        );
    }

    #[test]
    fn jitter_spreads_twenty_percent_either_way_and_never_past_the_cap() {
        let b = Backoff::new(Duration::from_secs(10), 2, Duration::from_secs(30));
        assert_eq!(b.delay_at(1, 0.0), Duration::from_secs(8));
        assert_eq!(b.delay_at(1, 1.0), Duration::from_secs(12));
        assert_eq!(b.delay_at(9, 1.0), Duration::from_secs(30));
        assert_eq!(b.delay_at(1, 7.0), Duration::from_secs(12), "unit clamped");
        for _ in 0..100 {
            let d = b.delay(1);
            assert!(
                (Duration::from_secs(8)..=Duration::from_secs(12)).contains(&d),
                "{d:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_deadline_is_not_taken() {
        let deadline = Deadline::after(Duration::from_millis(500));
        let start = tokio::time::Instant::now();
        assert!(!OKTA_RATE_LIMITED.wait(1, deadline).await);
        assert_eq!(start.elapsed(), Duration::ZERO, "returns at once");
        assert!(OKTA_ERRORS.wait(1, deadline).await, "0.2 to 0.3 s fits");
    }
}
