//! Rate limits and injected faults: what can make the fake Okta answer
//! something other than the normal answer.
//!
//! - Per-minute buckets, aligned to wall-clock windows as Okta's are: one
//!   shared bucket, plus a bucket of its own for any [`Operation`] given one
//!   (the token endpoint has one by default). An exhausted bucket answers 429
//!   `E0000047` with `X-Rate-Limit-Reset` at the end of the window.
//! - A concurrency limit (requests in flight), answered with Okta's
//!   concurrency 429 (`X-Rate-Limit-Limit: 0`).
//! - [`Fault`]s that tests inject: 5xx, both kinds of 429, 403, any Okta
//!   error, or an extra delay, for some users and operations, some times.

use std::time::Duration;

use http::StatusCode;

use super::Operation;
use super::org::Org;
use super::render::{Answer, error_body};
use crate::http_stub::{InjectedFault, take_faults};

/// Requests per window in the default shared bucket.
pub const DEFAULT_RATE_LIMIT: u32 = 600;
/// Okta's rate-limit windows are one minute long.
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);

/// One rate-limit bucket: requests used in the current window.
#[derive(Clone, Copy)]
pub(super) struct Bucket {
    pub(super) limit: u32,
    pub(super) window_start: u64,
    pub(super) used: u32,
}

impl Bucket {
    pub(super) fn new(limit: u32) -> Self {
        Bucket {
            limit,
            window_start: 0,
            used: 0,
        }
    }

    fn roll(&mut self, window_start: u64) {
        if self.window_start != window_start {
            self.window_start = window_start;
            self.used = 0;
        }
    }
}

/// The `X-Rate-Limit-*` headers of an answer.
#[derive(Clone, Copy)]
pub(super) struct RateHeaders {
    pub(super) limit: u32,
    pub(super) remaining: u32,
    pub(super) reset: u64,
}

impl Org {
    pub(super) fn bucket_for(&mut self, op: Option<Operation>) -> &mut Bucket {
        match op.map(Operation::bucket_key) {
            Some(op) if self.op_buckets.contains_key(&op) => {
                self.op_buckets.get_mut(&op).expect("checked")
            }
            _ => &mut self.shared_bucket,
        }
    }

    fn window_start(&self, now_secs: u64) -> u64 {
        now_secs - now_secs % self.window_secs
    }

    /// The bucket's state without using it up (for answers that do not count,
    /// such as a rejected token).
    pub(super) fn peek_rate(&mut self, op: Option<Operation>, now_secs: u64) -> RateHeaders {
        let window_start = self.window_start(now_secs);
        let reset = window_start + self.window_secs;
        let b = *self.bucket_for(op);
        let used = if b.window_start == window_start {
            b.used
        } else {
            0
        };
        RateHeaders {
            limit: b.limit,
            remaining: b.limit.saturating_sub(used),
            reset,
        }
    }

    /// Counts the request in its bucket: `Ok` with the headers to answer with,
    /// or `Err` with the 429 when the bucket is empty or too many requests are
    /// in flight.
    pub(super) fn take_rate(
        &mut self,
        op: Option<Operation>,
        now_secs: u64,
        in_flight: usize,
    ) -> Result<RateHeaders, Answer> {
        if self
            .concurrency_limit
            .is_some_and(|limit| in_flight > limit)
        {
            return Err(concurrency_429(now_secs + 1));
        }
        let window_start = self.window_start(now_secs);
        let reset = window_start + self.window_secs;
        let bucket = self.bucket_for(op);
        bucket.roll(window_start);
        if bucket.used >= bucket.limit {
            return Err(rate_429(RateHeaders {
                limit: bucket.limit,
                remaining: 0,
                reset,
            }));
        }
        bucket.used += 1;
        Ok(RateHeaders {
            limit: bucket.limit,
            remaining: bucket.limit - bucket.used,
            reset,
        })
    }
}

/// An answer to substitute for the normal one (or an extra delay).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// 500, 503 or 504 (any status works) with an Okta error body.
    ServerError(u16),
    /// Okta's concurrency-limit 429: `X-Rate-Limit-Limit: 0`, `X-Rate-Limit-Remaining: 0`,
    /// `X-Rate-Limit-Reset` an estimate `reset_in_secs` ahead.
    ConcurrencyLimited { reset_in_secs: u64 },
    /// A rate-limit 429 (`E0000047`) with `X-Rate-Limit-Reset` `reset_in_secs` after `Date`.
    RateLimited { reset_in_secs: u64 },
    /// 403 `E0000006` (the token's admin lacks the permission).
    Forbidden,
    /// Any status with any Okta error code and summary.
    Error {
        status: u16,
        error_code: String,
        error_summary: String,
    },
    /// Answer normally, but this much later.
    Delay(Duration),
}

/// Which requests to fault, how, and how many times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Login, id or email (case-insensitive). Matches requests whose path names this
    /// user, and searches whose value equals it or whose results include the user.
    pub user: Option<String>,
    pub operation: Option<Operation>,
    pub kind: FaultKind,
    /// `Some(n)`: the next n matching requests; `None`: forever.
    pub times: Option<u32>,
}

impl Fault {
    /// A fault on the next matching request of any user and operation.
    pub fn new(kind: FaultKind) -> Self {
        Fault {
            user: None,
            operation: None,
            kind,
            times: Some(1),
        }
    }
    pub fn server_error(status: u16) -> Self {
        Self::new(FaultKind::ServerError(status))
    }
    pub fn concurrency_limited() -> Self {
        Self::new(FaultKind::ConcurrencyLimited { reset_in_secs: 1 })
    }
    pub fn rate_limited(reset_in_secs: u64) -> Self {
        Self::new(FaultKind::RateLimited { reset_in_secs })
    }
    pub fn forbidden() -> Self {
        Self::new(FaultKind::Forbidden)
    }
    pub fn delay(d: Duration) -> Self {
        Self::new(FaultKind::Delay(d))
    }
    /// Only requests concerning this user (login, id or email).
    pub fn for_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }
    /// Only this operation.
    pub fn on(mut self, op: Operation) -> Self {
        self.operation = Some(op);
        self
    }
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
    pub fn forever(mut self) -> Self {
        self.times = None;
        self
    }
}

impl InjectedFault for Fault {
    type Kind = FaultKind;
    fn kind(&self) -> &FaultKind {
        &self.kind
    }
    fn delay(&self) -> Option<Duration> {
        match self.kind {
            FaultKind::Delay(d) => Some(d),
            _ => None,
        }
    }
    fn times(&mut self) -> &mut Option<u32> {
        &mut self.times
    }
}

/// Uses up the faults for a request ([`take_faults`]'s rule). `names` are
/// the names the request gives (path segment, search value); `concerned`
/// the users it resolved to.
pub(super) fn take_fault(
    org: &mut Org,
    op: Option<Operation>,
    names: &[String],
    concerned: &[usize],
    delay: &mut Duration,
) -> Option<FaultKind> {
    let users = &org.users;
    let applies = |f: &Fault| {
        let op_ok = f.operation.is_none() || f.operation == op;
        op_ok
            && f.user.as_ref().is_none_or(|who| {
                names.iter().any(|t| t.eq_ignore_ascii_case(who))
                    || concerned.iter().any(|&u| {
                        let s = &users[u].state;
                        s.id == *who
                            || s.login.eq_ignore_ascii_case(who)
                            || s.email.eq_ignore_ascii_case(who)
                    })
            })
    };
    take_faults(&mut org.faults, applies, delay)
}

/// The answer a replacement fault gives.
pub(super) fn fault_answer(kind: FaultKind, rate: RateHeaders, now_secs: u64) -> Answer {
    match kind {
        FaultKind::ServerError(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let summary = match status.as_u16() {
                503 => "Service Unavailable",
                504 => "Gateway Timeout",
                502 => "Bad Gateway",
                _ => "Internal Server Error",
            };
            Answer::json(status, error_body("E0000009", summary, &[]), rate)
        }
        FaultKind::ConcurrencyLimited { reset_in_secs } => {
            concurrency_429(now_secs + reset_in_secs)
        }
        FaultKind::RateLimited { reset_in_secs } => rate_429(RateHeaders {
            limit: rate.limit,
            remaining: 0,
            reset: now_secs + reset_in_secs,
        }),
        FaultKind::Forbidden => Answer::json(
            StatusCode::FORBIDDEN,
            error_body(
                "E0000006",
                "You do not have permission to perform the requested action",
                &[],
            ),
            rate,
        ),
        FaultKind::Error {
            status,
            error_code,
            error_summary,
        } => Answer::json(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            error_body(&error_code, &error_summary, &[]),
            rate,
        ),
        FaultKind::Delay(_) => unreachable!("delays are not replacements"),
    }
}

fn rate_429(rate: RateHeaders) -> Answer {
    Answer::json(
        StatusCode::TOO_MANY_REQUESTS,
        error_body(
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
            &[],
        ),
        rate,
    )
}

fn concurrency_429(reset: u64) -> Answer {
    rate_429(RateHeaders {
        limit: 0,
        remaining: 0,
        reset,
    })
}
