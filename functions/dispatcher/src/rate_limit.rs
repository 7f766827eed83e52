//! Okta's rate-limit headers, read the way Okta's own SDKs read them.
//!
//! After a 429, wait `X-Rate-Limit-Reset - Date + 1` seconds, using the
//! response's `Date` rather than the local clock. A concurrency 429 (Limit
//! and Remaining both 0) has only an estimated reset, so it gets a short
//! backoff instead. Before a request, [`Pacer`] lets it go only while the
//! bucket's `Remaining` is more than our requests in flight to it, and
//! otherwise pauses until the window resets: a large event uses the whole
//! budget of each window and does not run into 429s.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use tokio::time::Instant;

use crate::retry::OKTA_RATE_LIMITED;

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

/// How long to wait after the `attempt`th 429 in a row: until the window
/// resets, or the backoff when that is unknown.
pub fn wait_after_429(info: &RateInfo, attempt: u32) -> Duration {
    if info.is_concurrency_limit() {
        return OKTA_RATE_LIMITED.delay(attempt);
    }
    info.until_reset()
        .unwrap_or_else(|| OKTA_RATE_LIMITED.delay(attempt))
}

/// A pause while a bucket's budget is spent but its window's end is not
/// known yet (the window rolled over and no answer from the new one has
/// arrived): long enough for an answer in flight to come back.
const UNKNOWN_WINDOW_RECHECK: Duration = Duration::from_millis(100);

/// Spends each rate-limit bucket's whole budget and no more.
///
/// A request may start while `Remaining` (the lowest the bucket's answers
/// reported in its window) minus our requests in flight to that bucket is
/// above zero: such a request cannot be refused by the bucket, whatever
/// order the answers come back in. Otherwise it waits for the window's reset
/// (`Reset - Date + 1` on the server's clock), when the bucket is full again.
/// Other clients of the org can still spend the bucket: their 429 is handled
/// by the caller, and its `Remaining: 0` pauses our other requests too.
///
/// Which bucket a call counts in is not documented for every endpoint, so
/// the pacer reads it from the headers: operations whose answers report the
/// same `Limit` and `Reset` share one budget, and an operation whose answer
/// could not have come from that bucket (its `Remaining` did not go down
/// although the request was sent after the bucket's last answer) gets a
/// budget of its own. Two separate buckets taken for one can only leave part
/// of a budget unused, never cause a 429.
pub struct Pacer {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The bucket each operation's answers last counted in.
    ops: HashMap<&'static str, usize>,
    /// Okta's buckets as the answers describe them: a handful at most, one
    /// per kind of call, never removed (so an index stays valid).
    buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    limit: Option<u64>,
    /// The window's `X-Rate-Limit-Reset` (server epoch seconds): the
    /// window's identity.
    reset: u64,
    /// The lowest `Remaining` an answer in this window reported; after the
    /// window ended, the full `limit`.
    remaining: u64,
    /// When the window is over here; `None` once it is over (the bucket is
    /// full again, and no answer has told the new window's reset yet).
    resets_at: Option<Instant>,
    /// Counts windows, so that a request knows whether its window still lasts.
    generation: u64,
    /// Our requests started and not answered yet.
    in_flight: u64,
    /// Our requests of this window that ended without an answer: they may
    /// have been counted, so they stay spent.
    unanswered: u64,
}

impl Bucket {
    fn new(limit: Option<u64>, reset: u64, remaining: u64, resets_at: Instant) -> Bucket {
        Bucket {
            limit,
            reset,
            remaining,
            resets_at: Some(resets_at),
            generation: 0,
            in_flight: 0,
            unanswered: 0,
        }
    }

    /// Once the window is over, the bucket is full again.
    fn roll(&mut self, now: Instant) {
        if self.resets_at.is_some_and(|at| now >= at) {
            self.resets_at = None;
            self.remaining = self.limit.unwrap_or(u64::MAX);
            self.generation += 1;
            self.unanswered = 0;
        }
    }

    /// What an answer of this bucket said.
    fn record(&mut self, reset: u64, remaining: u64, resets_at: Instant) {
        if reset > self.reset {
            if self.resets_at.is_some() {
                // The server's window ended before ours did here.
                self.generation += 1;
                self.unanswered = 0;
            }
            self.reset = reset;
            self.remaining = remaining;
            self.resets_at = Some(resets_at);
        } else if reset == self.reset && self.resets_at.is_some() {
            // Answers can arrive out of order: within a window, the lowest
            // count and the earliest end win (every estimate is at least a
            // second after the reset: `Reset - Date + 1`, Date rounded down).
            self.remaining = self.remaining.min(remaining);
            self.resets_at = self.resets_at.map(|at| at.min(resets_at));
        }
        // Otherwise an answer from a window that is over: nothing to learn.
    }
}

/// A request counted in flight by the [`Pacer`]. Hand its answer to
/// [`InFlight::observe`]; dropped without one (the request failed, timed out,
/// was cancelled or panicked), it stops counting as in flight and stays
/// spent for the rest of its window.
#[must_use = "a request in flight is counted until its answer is observed or it is dropped"]
pub struct InFlight<'a> {
    pacer: &'a Pacer,
    operation: &'static str,
    counted: Option<Counted>,
}

/// Where an [`InFlight`] request is counted.
#[derive(Clone, Copy)]
struct Counted {
    bucket: usize,
    generation: u64,
    /// The window's reset and its `Remaining` when the request started, if
    /// an answer of this window had told them.
    before: Option<(u64, u64)>,
}

impl Pacer {
    pub fn new() -> Pacer {
        Pacer {
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Ok` when a request of `operation` may start now (it is counted in
    /// flight until the [`InFlight`] is observed or dropped); `Err` with how
    /// long to pause before asking again.
    pub fn before_request(&self, operation: &'static str) -> Result<InFlight<'_>, Duration> {
        let mut state = self.state();
        let Some(&index) = state.ops.get(operation) else {
            // Nothing known yet: the first answer tells.
            return Ok(InFlight {
                pacer: self,
                operation,
                counted: None,
            });
        };
        let now = Instant::now();
        let bucket = &mut state.buckets[index];
        bucket.roll(now);
        if bucket.remaining > bucket.in_flight + bucket.unanswered {
            bucket.in_flight += 1;
            return Ok(InFlight {
                pacer: self,
                operation,
                counted: Some(Counted {
                    bucket: index,
                    generation: bucket.generation,
                    before: bucket.resets_at.map(|_| (bucket.reset, bucket.remaining)),
                }),
            });
        }
        Err(match bucket.resets_at {
            Some(at) => at - now,
            None => UNKNOWN_WINDOW_RECHECK,
        })
    }
}

impl Default for Pacer {
    fn default() -> Pacer {
        Pacer::new()
    }
}

impl InFlight<'_> {
    /// Records what the answer said about its bucket, and that the request
    /// is no longer in flight (both at once, so that no other request can
    /// start on a count that has the one but not the other).
    pub fn observe(mut self, info: &RateInfo) {
        let mut state = self.pacer.state();
        let counted = self.counted.take();
        if let Some(c) = counted {
            let bucket = &mut state.buckets[c.bucket];
            bucket.in_flight = bucket.in_flight.saturating_sub(1);
        }
        if info.is_concurrency_limit() {
            return;
        }
        let (Some(remaining), Some(reset), Some(wait)) =
            (info.remaining, info.reset, info.until_reset())
        else {
            return;
        };
        let resets_at = Instant::now() + wait;
        let index = match state.ops.get(self.operation).copied() {
            Some(index) => {
                let current = &state.buckets[index];
                // Its Remaining did not go down although it was sent after the
                // bucket's last answer of this window: when others share the
                // bucket, this operation counts elsewhere.
                let elsewhere = counted.is_some_and(|c| {
                    c.bucket == index
                        && c.before
                            .is_some_and(|(r, before)| r == reset && remaining >= before)
                }) && state
                    .ops
                    .iter()
                    .any(|(op, &i)| i == index && *op != self.operation);
                (current.limit == info.limit && !elsewhere).then_some(index)
            }
            // An operation not seen yet joins a bucket that looks the same:
            // in this window, or in an earlier one (now over on the server).
            None => {
                let like = |b: &&Bucket| b.limit == info.limit;
                let buckets = &state.buckets;
                buckets
                    .iter()
                    .position(|b| like(&b) && b.reset == reset)
                    .or_else(|| buckets.iter().position(|b| like(&b) && b.reset < reset))
            }
        };
        let index = index.unwrap_or_else(|| {
            let bucket = Bucket::new(info.limit, reset, remaining, resets_at);
            state.buckets.push(bucket);
            state.buckets.len() - 1
        });
        state.ops.insert(self.operation, index);
        state.buckets[index].record(reset, remaining, resets_at);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let Some(c) = self.counted.take() else {
            return;
        };
        let mut state = self.pacer.state();
        let bucket = &mut state.buckets[c.bucket];
        bucket.in_flight = bucket.in_flight.saturating_sub(1);
        if bucket.generation == c.generation {
            // It may have been counted: it stays spent while its window lasts.
            bucket.unanswered += 1;
        }
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
        assert_eq!(wait_after_429(&info, 1), Duration::from_secs(43));
        let past = RateInfo::from_headers(&headers("600", "0", 999_990, 1_000_000));
        assert_eq!(past.until_reset(), Some(Duration::from_secs(1)));
        let far = RateInfo::from_headers(&headers("600", "0", 1_000_500, 1_000_000));
        assert_eq!(far.until_reset(), Some(MAX_RESET_WAIT));
    }

    #[test]
    fn a_concurrency_429_gets_a_short_backoff() {
        let info = RateInfo::from_headers(&headers("0", "0", 1_000_050, 1_000_000));
        assert!(info.is_concurrency_limit());
        let wait = wait_after_429(&info, 1);
        assert!(
            (Duration::from_millis(800)..=Duration::from_millis(1200)).contains(&wait),
            "about a second, not the estimated 50 s: {wait:?}"
        );
        assert!(wait_after_429(&info, 9) <= Duration::from_secs(5));
    }

    #[test]
    fn missing_headers_fall_back_to_backoff() {
        let info = RateInfo::from_headers(&HeaderMap::new());
        assert_eq!(info, RateInfo::default());
        let wait = wait_after_429(&info, 2);
        assert!(
            (Duration::from_millis(1600)..=Duration::from_millis(2400)).contains(&wait),
            "{wait:?}"
        );
    }

    /// What an answer says: `limit`, `remaining`, and a window that resets
    /// `reset_in` seconds after the answer's `Date`.
    fn rate(limit: u64, remaining: u64, reset_in: u64) -> RateInfo {
        rate_at(limit, remaining, 1_000_000 + reset_in, 1_000_000)
    }

    fn rate_at(limit: u64, remaining: u64, reset: u64, date: u64) -> RateInfo {
        RateInfo::from_headers(&headers(
            &limit.to_string(),
            &remaining.to_string(),
            reset,
            date,
        ))
    }

    /// Tells the pacer about `op`'s bucket: one request, answered with `info`.
    fn learn(pacer: &Pacer, op: &'static str, info: RateInfo) {
        pacer
            .before_request(op)
            .expect("the first request never waits")
            .observe(&info);
    }

    #[tokio::test(start_paused = true)]
    async fn no_pause_while_the_budget_remains() {
        let pacer = Pacer::new();
        // 10 per window, one used by the first answer: 9 more, one at a time.
        learn(&pacer, "suspend", rate(10, 9, 30));
        for left in (0..9).rev() {
            let request = pacer
                .before_request("suspend")
                .unwrap_or_else(|p| panic!("paused {p:?} with {} left", left + 1));
            request.observe(&rate(10, left, 30));
        }
        assert_eq!(
            pacer.before_request("suspend").err(),
            Some(Duration::from_secs(31)),
            "spent: until Reset - Date + 1"
        );
        assert!(
            pacer.before_request("roles").is_ok(),
            "buckets are separate"
        );
    }

    /// A bucket on the server: counts each request when it arrives.
    struct Server {
        limit: u64,
        remaining: u64,
        served: u64,
        refused: u64,
    }

    impl Server {
        fn take(&mut self) -> RateInfo {
            if self.remaining == 0 {
                self.refused += 1;
            } else {
                self.remaining -= 1;
                self.served += 1;
            }
            rate(self.limit, self.remaining, 30)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_start_exactly_as_many_as_remaining_allows() {
        let pacer = Pacer::new();
        let server = Mutex::new(Server {
            limit: 40,
            remaining: 23,
            served: 0,
            refused: 0,
        });
        let first = server.lock().unwrap().take();
        learn(&pacer, "suspend", first);
        // Six workers whose requests take different times to arrive and to be
        // answered, so answers come back out of order.
        let worker = |id: u64| {
            let (pacer, server) = (&pacer, &server);
            async move {
                let mut sent = 0;
                loop {
                    match pacer.before_request("suspend") {
                        Ok(request) => {
                            sent += 1;
                            tokio::time::sleep(Duration::from_millis(3 + id * 7 % 11)).await;
                            let info = server.lock().unwrap().take();
                            tokio::time::sleep(Duration::from_millis(1 + (id + sent) * 13 % 17))
                                .await;
                            request.observe(&info);
                        }
                        Err(pause) => return (sent, pause),
                    }
                }
            }
        };
        let done = futures::future::join_all((0..6).map(worker)).await;
        let server = server.into_inner().unwrap();
        let sent: u64 = done.iter().map(|(sent, _)| sent).sum();
        assert_eq!(server.refused, 0, "no request was refused");
        assert_eq!(sent, 22, "every request Remaining allowed, and no more");
        assert_eq!(server.remaining, 0);
        for (_, pause) in done {
            assert!(
                pause > Duration::from_secs(30) && pause <= Duration::from_secs(31),
                "each waits for the reset: {pause:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_requests_count_against_the_budget() {
        let pacer = Pacer::new();
        learn(&pacer, "suspend", rate(10, 3, 30));
        let a = pacer.before_request("suspend").unwrap();
        let b = pacer.before_request("suspend").unwrap();
        let c = pacer.before_request("suspend").unwrap();
        assert!(
            pacer.before_request("suspend").is_err(),
            "3 left, 3 in flight"
        );
        // Answers out of order: the lowest count wins.
        c.observe(&rate(10, 0, 30));
        b.observe(&rate(10, 1, 30));
        a.observe(&rate(10, 2, 30));
        assert!(
            pacer.before_request("suspend").is_err(),
            "the bucket is spent"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_without_an_answer_stays_spent() {
        let pacer = Pacer::new();
        learn(&pacer, "suspend", rate(10, 2, 30));
        drop(pacer.before_request("suspend").unwrap()); // timed out, cancelled, ...
        let last = pacer.before_request("suspend").unwrap();
        assert!(pacer.before_request("suspend").is_err());
        last.observe(&rate(10, 0, 30));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(pacer.before_request("suspend").is_ok(), "a new window");
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_bucket_pauses_until_the_reset_and_the_new_window_is_full() {
        let pacer = Pacer::new();
        // Another client of the org spent it: a 429 with Remaining 0.
        learn(&pacer, "suspend", rate_at(5, 0, 1_000_020, 1_000_000));
        assert_eq!(
            pacer.before_request("suspend").err(),
            Some(Duration::from_secs(21))
        );
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(
            pacer.before_request("suspend").err(),
            Some(Duration::from_secs(1))
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        // The new window's budget is the whole limit, before any answer from it.
        let new_window: Vec<_> = (0..5)
            .map(|i| {
                pacer
                    .before_request("suspend")
                    .unwrap_or_else(|p| panic!("request {i} paused {p:?}"))
            })
            .collect();
        assert_eq!(
            pacer.before_request("suspend").err(),
            Some(UNKNOWN_WINDOW_RECHECK),
            "5 in flight: spent, and its end not known yet"
        );
        let mut answers = new_window.into_iter();
        answers
            .next()
            .unwrap()
            .observe(&rate_at(5, 4, 1_000_080, 1_000_021));
        assert_eq!(
            pacer.before_request("suspend").err(),
            Some(Duration::from_secs(60)),
            "4 left, 4 in flight: until the new window's reset"
        );
        for (left, request) in (0..4).rev().zip(answers) {
            request.observe(&rate_at(5, left, 1_000_080, 1_000_021));
        }
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(pacer.before_request("suspend").is_ok(), "the next window");
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_answer_from_an_earlier_window_changes_nothing() {
        let pacer = Pacer::new();
        learn(&pacer, "suspend", rate_at(10, 5, 1_000_010, 1_000_000));
        let late = pacer.before_request("suspend").unwrap();
        tokio::time::advance(Duration::from_secs(11)).await;
        learn(&pacer, "suspend", rate_at(10, 9, 1_000_070, 1_000_011));
        late.observe(&rate_at(10, 0, 1_000_010, 1_000_000));
        for _ in 0..9 {
            assert!(pacer.before_request("suspend").is_ok());
        }
        assert!(pacer.before_request("suspend").is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn operations_that_count_in_one_bucket_share_its_budget() {
        let pacer = Pacer::new();
        // Suspend and clear sessions answer with the same bucket: Limit 20, one Reset.
        learn(&pacer, "suspend", rate(20, 3, 30));
        learn(&pacer, "clear sessions", rate(20, 2, 30));
        let suspend = pacer.before_request("suspend").unwrap();
        let clear = pacer.before_request("clear sessions").unwrap();
        assert!(
            pacer.before_request("suspend").is_err(),
            "2 left, 2 in flight"
        );
        assert!(pacer.before_request("clear sessions").is_err());
        suspend.observe(&rate(20, 1, 30));
        clear.observe(&rate(20, 0, 30));
        assert!(pacer.before_request("suspend").is_err());
        assert!(pacer.before_request("get user").is_ok(), "nothing known");
    }

    #[tokio::test(start_paused = true)]
    async fn an_operation_whose_count_does_not_go_down_has_a_bucket_of_its_own() {
        let pacer = Pacer::new();
        learn(&pacer, "get user", rate(100, 2, 30));
        // Same limit and reset: taken for the same bucket at first.
        learn(&pacer, "list admin roles", rate(100, 90, 30));
        let roles = pacer.before_request("list admin roles").unwrap();
        // Sent after the bucket said 2, answered 89: it is another bucket.
        roles.observe(&rate(100, 89, 30));
        let get = [
            pacer.before_request("get user").unwrap(),
            pacer.before_request("get user").unwrap(),
        ];
        assert!(pacer.before_request("get user").is_err());
        for left in (39..89).rev() {
            // Roles have their own budget, not spent by get user's in flight.
            pacer
                .before_request("list admin roles")
                .expect("roles' budget")
                .observe(&rate(100, left, 30));
        }
        drop(get);
    }

    #[tokio::test(start_paused = true)]
    async fn a_concurrency_429_is_not_a_count() {
        let pacer = Pacer::new();
        learn(&pacer, "suspend", rate(10, 1, 30));
        let request = pacer.before_request("suspend").unwrap();
        assert!(pacer.before_request("suspend").is_err());
        request.observe(&rate(0, 0, 1));
        assert!(
            pacer.before_request("suspend").is_ok(),
            "no longer in flight, and the bucket's count stands"
        );
    }
}
