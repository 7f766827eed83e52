//! The time an invocation has left. Every wait (rate limits, backoff, Slack's
//! `Retry-After`) is checked against it: work that cannot finish in time is
//! left for the next delivery rather than cut off by Lambda mid-write.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(budget: Duration) -> Deadline {
        Deadline(Instant::now() + budget)
    }

    /// From the Lambda context's deadline (epoch milliseconds).
    pub fn from_epoch_millis(deadline_ms: u64) -> Deadline {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Deadline::after(Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
    }

    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// A deadline `margin` earlier (never before now).
    pub fn earlier_by(&self, margin: Duration) -> Deadline {
        Deadline(
            self.0
                .checked_sub(margin)
                .unwrap_or(self.0)
                .max(Instant::now()),
        )
    }

    /// An equal share of the time left, for one of `parts` pieces of work
    /// that run one after the other: a slow one cannot use up the others'.
    pub fn share(&self, parts: u32) -> Deadline {
        Deadline::after(self.remaining() / parts.max(1))
    }

    /// Sleeps for `wait` if that ends before the deadline; otherwise returns
    /// at once with `false`.
    pub async fn sleep(&self, wait: Duration) -> bool {
        if wait >= self.remaining() {
            return false;
        }
        tokio::time::sleep(wait).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sleeps_only_within_the_deadline() {
        let d = Deadline::after(Duration::from_secs(10));
        assert!(d.sleep(Duration::from_secs(4)).await);
        assert!(
            !d.sleep(Duration::from_secs(6)).await,
            "would end past the deadline"
        );
        assert_eq!(d.remaining(), Duration::from_secs(6));
        assert_eq!(
            d.earlier_by(Duration::from_secs(2)).remaining(),
            Duration::from_secs(4)
        );
        assert_eq!(
            d.earlier_by(Duration::from_secs(60)).remaining(),
            Duration::ZERO
        );
    }
}
