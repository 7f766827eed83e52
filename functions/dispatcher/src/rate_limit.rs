//! Okta's rate-limit headers, read the way Okta's own SDKs read them.
//!
//! After a 429, wait `X-Rate-Limit-Reset - Date + 1` seconds, using the
//! response's `Date` rather than the local clock. A concurrency 429 (Limit
//! and Remaining both 0) has only an estimated reset, so it gets a short
//! backoff instead. Before a request, [`Pacer`] pauses until the window
//! resets when the last answers said the bucket is nearly spent, so a large
//! event slows down instead of running into 429s.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use tokio::time::Instant;

/// The longest single wait for a window to reset (Okta's windows are a minute).
pub const MAX_RESET_WAIT: Duration = Duration::from_secs(61);

/// What one response said about its bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateInfo {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// UTC epoch seconds when the window resets.
    pub reset: Option<u64>,
    /// The response's `Date`, epoch seconds.
    pub date: Option<u64>,
}

impl RateInfo {
    pub fn from_headers(headers: &HeaderMap) -> RateInfo {
        let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
        let date = headers
            .get(http::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        RateInfo {
            limit: number("x-rate-limit-limit"),
            remaining: number("x-rate-limit-remaining"),
            reset: number("x-rate-limit-reset"),
            date,
        }
    }

    /// Okta's concurrency limit: both numbers zero, reset only an estimate.
    pub fn is_concurrency_limit(&self) -> bool {
        self.limit == Some(0) && self.remaining == Some(0)
    }

    /// `Reset - Date + 1` seconds, capped; `None` without the headers.
    pub fn until_reset(&self) -> Option<Duration> {
        let reset = self.reset?;
        let now = self.date.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        let secs = reset.saturating_sub(now) + 1;
        Some(Duration::from_secs(secs).min(MAX_RESET_WAIT))
    }
}

/// How long to wait after a 429 before attempt `attempt + 1`.
pub fn wait_after_429(info: &RateInfo, attempt: u32, jitter: Duration) -> Duration {
    let backoff = Duration::from_millis(500 * 2u64.pow(attempt.min(4))) + jitter;
    if info.is_concurrency_limit() {
        return backoff.min(Duration::from_secs(5));
    }
    info.until_reset().unwrap_or(backoff)
}

/// Remembers each bucket's state from the latest answers, and says when to
/// pause before the next request.
pub struct Pacer {
    /// Requests left unused in a window, for other clients of the org and
    /// for our own requests in flight.
    reserve: u64,
    buckets: Mutex<HashMap<&'static str, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    remaining: u64,
    resets_at: Instant,
}

impl Pacer {
    pub fn new(reserve: u64) -> Pacer {
        Pacer {
            reserve,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Records what an answer in `bucket` said.
    pub fn observe(&self, bucket: &'static str, info: &RateInfo) {
        if info.is_concurrency_limit() {
            return;
        }
        let (Some(remaining), Some(wait)) = (info.remaining, info.until_reset()) else {
            return;
        };
        let resets_at = Instant::now() + wait;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let entry = buckets.entry(bucket).or_insert(Bucket {
            remaining,
            resets_at,
        });
        // Answers can arrive out of order: within a window, the lowest count wins.
        if resets_at > entry.resets_at + Duration::from_secs(1) || remaining < entry.remaining {
            *entry = Bucket {
                remaining,
                resets_at: resets_at.max(entry.resets_at),
            };
        }
    }

    /// How long to pause before a request in `bucket`, if at all. A request
    /// allowed to go is counted against the bucket straight away, so
    /// concurrent requests do not all spend the same last few.
    pub fn before_request(&self, bucket: &'static str) -> Option<Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let entry = buckets.get_mut(bucket)?;
        let now = Instant::now();
        if now >= entry.resets_at {
            buckets.remove(bucket);
            return None;
        }
        if entry.remaining <= self.reserve {
            return Some(entry.resets_at - now);
        }
        entry.remaining -= 1;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(limit: &str, remaining: &str, reset: u64, date: u64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-rate-limit-limit", HeaderValue::from_str(limit).unwrap());
        h.insert(
            "x-rate-limit-remaining",
            HeaderValue::from_str(remaining).unwrap(),
        );
        h.insert(
            "x-rate-limit-reset",
            HeaderValue::from_str(&reset.to_string()).unwrap(),
        );
        let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(date));
        h.insert(http::header::DATE, HeaderValue::from_str(&date).unwrap());
        h
    }

    #[test]
    fn wait_is_reset_minus_date_plus_one_from_the_servers_clock() {
        // The local clock plays no part: the Date header is years in the past.
        let info = RateInfo::from_headers(&headers("600", "0", 1_000_042, 1_000_000));
        assert_eq!(info.until_reset(), Some(Duration::from_secs(43)));
        assert_eq!(
            wait_after_429(&info, 1, Duration::ZERO),
            Duration::from_secs(43)
        );
        let past = RateInfo::from_headers(&headers("600", "0", 999_990, 1_000_000));
        assert_eq!(past.until_reset(), Some(Duration::from_secs(1)));
        let far = RateInfo::from_headers(&headers("600", "0", 1_000_500, 1_000_000));
        assert_eq!(far.until_reset(), Some(MAX_RESET_WAIT));
    }

    #[test]
    fn a_concurrency_429_gets_a_short_backoff() {
        let info = RateInfo::from_headers(&headers("0", "0", 1_000_050, 1_000_000));
        assert!(info.is_concurrency_limit());
        let wait = wait_after_429(&info, 1, Duration::from_millis(100));
        assert_eq!(wait, Duration::from_millis(1100));
        assert!(wait_after_429(&info, 9, Duration::ZERO) <= Duration::from_secs(5));
    }

    #[test]
    fn missing_headers_fall_back_to_backoff() {
        let info = RateInfo::from_headers(&HeaderMap::new());
        assert_eq!(info, RateInfo::default());
        assert_eq!(
            wait_after_429(&info, 2, Duration::ZERO),
            Duration::from_secs(2)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_pacer_pauses_when_the_bucket_runs_low_and_not_before() {
        let pacer = Pacer::new(2);
        assert_eq!(pacer.before_request("users"), None, "nothing known yet");
        pacer.observe(
            "users",
            &RateInfo::from_headers(&headers("100", "4", 1_000_030, 1_000_000)),
        );
        assert_eq!(pacer.before_request("users"), None); // 4 -> 3
        assert_eq!(pacer.before_request("users"), None); // 3 -> 2
        assert_eq!(pacer.before_request("users"), Some(Duration::from_secs(31)));
        assert_eq!(pacer.before_request("roles"), None, "buckets are separate");
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(pacer.before_request("users"), None, "a new window");
    }

    #[tokio::test(start_paused = true)]
    async fn out_of_order_answers_keep_the_lowest_remaining() {
        let pacer = Pacer::new(1);
        pacer.observe(
            "users",
            &RateInfo::from_headers(&headers("100", "1", 1_000_030, 1_000_000)),
        );
        pacer.observe(
            "users",
            &RateInfo::from_headers(&headers("100", "50", 1_000_030, 1_000_000)),
        );
        assert!(pacer.before_request("users").is_some());
    }
}
