//! The dispatcher's metrics: one flush per processed SQS record (an event),
//! never one per user. See [`shared::metrics`] for the format.
//!
//! [`DispatcherMetrics`] collects what the handler reports while it works on
//! a record ([`planned`](DispatcherMetrics::planned),
//! [`users`](DispatcherMetrics::users),
//! [`summary_posted`](DispatcherMetrics::summary_posted)) and flushes it when
//! the record is done, with the Okta and Slack counts taken for it.
//!
//! | metric | unit | dimensions (besides `Function`) |
//! |---|---|---|
//! | `Events` | Count | `Kind` (`FAILED_CHECK`, `WebhookTest`, `other`), `Plan` (`acted`, `dry_run`, `held`, `test`, `unhandled`, `unreadable`) |
//! | `Users` | Count | `Outcome`: an [`Outcome`] word (`suspended`, `failed`, ...) |
//! | `OktaRateLimited` | Count | none: Okta's 429 answers |
//! | `OktaRetries` | Count | none: Okta calls sent again after a 429, a 5xx or a network error |
//! | `SlackFailures` | Count | none: Slack posts that failed after their retries |
//! | `EventToSummarySeconds` | Seconds | none: from the event's `time` to the summary post |

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use shared::event::{EventKind, OortEvent};
use shared::metrics::{Emitter, Metrics, Unit, seconds_since};

use crate::outcome::{Outcome, UserReport, counts};
use crate::policy::Plan;

pub const EVENTS: &str = "Events";
pub const USERS: &str = "Users";
pub const OKTA_RATE_LIMITED: &str = "OktaRateLimited";
pub const OKTA_RETRIES: &str = "OktaRetries";
pub const SLACK_FAILURES: &str = "SlackFailures";
pub const EVENT_TO_SUMMARY_SECONDS: &str = "EventToSummarySeconds";

/// Okta's 429 answers and retried calls, counted by the client as they
/// happen (calls run concurrently) and taken once per event.
#[derive(Debug, Default)]
pub struct OktaCounters {
    rate_limited: AtomicU64,
    retries: AtomicU64,
}

/// What [`OktaCounters::take`] read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OktaCounts {
    pub rate_limited: u64,
    pub retries: u64,
}

impl OktaCounters {
    /// Okta answered 429.
    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// A call is sent again (after a 429, a 5xx or a network error).
    pub fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far, reset to zero.
    pub fn take(&self) -> OktaCounts {
        OktaCounts {
            rate_limited: self.rate_limited.swap(0, Ordering::Relaxed),
            retries: self.retries.swap(0, Ordering::Relaxed),
        }
    }
}

/// What one record's processing counts as, filled in as it goes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventMetrics {
    /// `Kind` and `Plan`, once the event was planned (or found unreadable).
    event: Option<(&'static str, &'static str)>,
    users: Vec<(Outcome, usize)>,
    event_to_summary: Option<f64>,
}

impl EventMetrics {
    /// The event was read and planned.
    pub fn planned(&mut self, event: &OortEvent, plan: &Plan) {
        self.event = Some((kind(&event.kind), plan_word(plan)));
    }

    /// The record's body is not an event (or not a decision).
    pub fn unreadable(&mut self) {
        self.event = Some(("other", "unreadable"));
    }

    /// The users' outcomes as the summary reports them.
    pub fn users(&mut self, reports: &[UserReport]) {
        self.users = counts(reports);
    }

    /// The summary was posted now.
    pub fn summary_posted(&mut self, event: &OortEvent) {
        self.summary_posted_at(event, SystemTime::now());
    }

    pub fn summary_posted_at(&mut self, event: &OortEvent, now: SystemTime) {
        self.event_to_summary = event.time.as_deref().and_then(|t| seconds_since(t, now));
    }

    /// Adds this event's metrics, with the Okta and Slack counts taken for
    /// it, to `metrics`.
    pub fn add_to(&self, metrics: &mut Metrics, okta: OktaCounts, slack_failures: u64) {
        if let Some((kind, plan)) = self.event {
            metrics.count(EVENTS, 1, &[("Kind", kind), ("Plan", plan)]);
        }
        for (outcome, n) in &self.users {
            metrics.count(USERS, *n as u64, &[("Outcome", outcome.word())]);
        }
        metrics.count(OKTA_RATE_LIMITED, okta.rate_limited, &[]);
        metrics.count(OKTA_RETRIES, okta.retries, &[]);
        metrics.count(SLACK_FAILURES, slack_failures, &[]);
        if let Some(seconds) = self.event_to_summary {
            metrics.value(EVENT_TO_SUMMARY_SECONDS, Unit::Seconds, seconds, &[]);
        }
    }

    /// Flushes this event's metrics to `emitter`.
    pub fn emit(&self, emitter: &Emitter, okta: OktaCounts, slack_failures: u64) {
        let mut metrics = emitter.metrics();
        self.add_to(&mut metrics, okta, slack_failures);
        emitter.emit(metrics);
    }
}

/// The handler's metrics: where they go, and the record being processed
/// (the dispatcher works on one record at a time).
#[derive(Debug)]
pub struct DispatcherMetrics {
    emitter: Emitter,
    current: Mutex<EventMetrics>,
}

impl DispatcherMetrics {
    pub fn new(emitter: Emitter) -> DispatcherMetrics {
        DispatcherMetrics {
            emitter,
            current: Mutex::new(EventMetrics::default()),
        }
    }

    fn with(&self, f: impl FnOnce(&mut EventMetrics)) {
        f(&mut self.current.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// A new record: forgets what an earlier one left.
    pub fn start(&self) {
        self.with(|m| *m = EventMetrics::default());
    }

    /// See [`EventMetrics::planned`].
    pub fn planned(&self, event: &OortEvent, plan: &Plan) {
        self.with(|m| m.planned(event, plan));
    }

    /// See [`EventMetrics::users`].
    pub fn users(&self, reports: &[UserReport]) {
        self.with(|m| m.users(reports));
    }

    /// See [`EventMetrics::summary_posted`].
    pub fn summary_posted(&self, event: &OortEvent) {
        self.with(|m| m.summary_posted(event));
    }

    /// The record is done: one flush, with the counts taken for it.
    /// `unreadable`: its body was not an event.
    pub fn finish(&self, unreadable: bool, okta: OktaCounts, slack_failures: u64) {
        let mut current =
            std::mem::take(&mut *self.current.lock().unwrap_or_else(|e| e.into_inner()));
        if unreadable {
            current.unreadable();
        }
        current.emit(&self.emitter, okta, slack_failures);
    }
}

/// The `Kind` dimension: the two kinds the dispatcher knows, `other` for
/// the rest (never the received text: a closed set).
pub fn kind(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::FailedCheck => "FAILED_CHECK",
        EventKind::WebhookTest => "WebhookTest",
        EventKind::Other(_) => "other",
    }
}

/// The `Plan` dimension.
pub fn plan_word(plan: &Plan) -> &'static str {
    match plan {
        Plan::Act { dry_run: false } => "acted",
        Plan::Act { dry_run: true } => "dry_run",
        Plan::Hold { .. } => "held",
        Plan::ConnectivityTest => "test",
        Plan::Unhandled(_) => "unhandled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use shared::metrics::{dimension_set, find, validate};
    use std::time::{Duration, UNIX_EPOCH};

    fn lines(metrics: &Metrics) -> Vec<Value> {
        let lines: Vec<Value> = metrics
            .lines(1)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for line in &lines {
            validate(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        }
        lines
    }

    fn event(json: &str) -> OortEvent {
        OortEvent::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn an_acted_event_is_counted_once_with_its_users_by_outcome() {
        let event = event(
            r#"{"detail-type": "FAILED_CHECK", "time": "2025-12-01T22:54:00Z", "detail": {"usersFailing": ["a@x.co"]}}"#,
        );
        let mut tally = EventMetrics::default();
        tally.planned(&event, &Plan::Act { dry_run: false });
        let r = |o| UserReport::new("x", o, None);
        tally.users(&[
            r(Outcome::Suspended),
            r(Outcome::Suspended),
            r(Outcome::Failed),
            r(Outcome::AlreadySuspended),
        ]);
        tally.summary_posted_at(&event, UNIX_EPOCH + Duration::from_secs(1_764_629_700));
        let mut metrics = Metrics::new("dispatcher");
        tally.add_to(
            &mut metrics,
            OktaCounts {
                rate_limited: 1,
                retries: 3,
            },
            0,
        );
        let lines = lines(&metrics);
        assert_eq!(lines.len(), 3, "one line per outcome value: {lines:#?}");
        let events = find(
            &lines,
            EVENTS,
            &[("Kind", "FAILED_CHECK"), ("Plan", "acted")],
        );
        assert_eq!(events, Some(&json!(1)));
        assert_eq!(
            dimension_set(&lines[0], EVENTS).unwrap(),
            ["Function", "Kind", "Plan"]
        );
        for (outcome, n) in [("suspended", 2), ("failed", 1), ("already suspended", 1)] {
            assert_eq!(
                find(&lines, USERS, &[("Outcome", outcome)]),
                Some(&json!(n)),
                "{outcome}"
            );
        }
        let failed = lines.iter().find(|l| l["Outcome"] == "failed").unwrap();
        assert_eq!(
            dimension_set(failed, USERS).unwrap(),
            ["Function", "Outcome"],
            "the UserFailedAlarm's dimensions"
        );
        assert_eq!(lines[0][OKTA_RATE_LIMITED], 1);
        assert_eq!(lines[0][OKTA_RETRIES], 3);
        assert_eq!(lines[0][SLACK_FAILURES], 0);
        assert_eq!(lines[0][EVENT_TO_SUMMARY_SECONDS], 60);
        assert_eq!(
            dimension_set(&lines[0], OKTA_RETRIES).unwrap(),
            ["Function"]
        );
    }

    #[test]
    fn kinds_and_plans_are_closed_sets() {
        let mut tally = EventMetrics::default();
        let mut metrics = Metrics::new("dispatcher");
        tally.add_to(&mut metrics, OktaCounts::default(), 0);
        assert!(
            lines(&metrics)[0].get(EVENTS).is_none(),
            "not an event (a decision): no Events"
        );
        let mut metrics = Metrics::new("dispatcher");
        tally.unreadable();
        tally.add_to(&mut metrics, OktaCounts::default(), 1);
        let unreadable = lines(&metrics);
        assert_eq!(unreadable.len(), 1);
        assert_eq!(
            (
                &unreadable[0]["Kind"],
                &unreadable[0]["Plan"],
                &unreadable[0][SLACK_FAILURES]
            ),
            (&json!("other"), &json!("unreadable"), &json!(1))
        );
        assert!(unreadable[0].get(EVENT_TO_SUMMARY_SECONDS).is_none());

        let other = event(r#"{"detail-type": "Some New Thing 1234", "detail": {}}"#);
        tally.planned(&other, &Plan::Unhandled("Some New Thing 1234".into()));
        assert_eq!(tally.event, Some(("other", "unhandled")));
        tally.summary_posted(&other);
        assert_eq!(tally.event_to_summary, None, "no time, no value");
        let test = event(r#"{"detail-type": "WebhookTest", "detail": {}}"#);
        tally.planned(&test, &Plan::ConnectivityTest);
        assert_eq!(tally.event, Some(("WebhookTest", "test")));
        assert_eq!(plan_word(&Plan::Act { dry_run: true }), "dry_run");
        assert_eq!(
            plan_word(&Plan::Hold {
                reason: "cap".into()
            }),
            "held"
        );
    }

    #[test]
    fn one_flush_per_record_and_nothing_carried_over() {
        let captured = shared::metrics::Captured::default();
        let metrics = DispatcherMetrics::new(Emitter::new("dispatcher", captured.clone()));
        let test = event(r#"{"detail-type": "WebhookTest", "detail": {}}"#);
        metrics.start();
        metrics.planned(&test, &Plan::ConnectivityTest);
        metrics.users(&[UserReport::new("x", Outcome::Held, None)]);
        metrics.finish(false, OktaCounts::default(), 0);
        metrics.start();
        metrics.finish(true, OktaCounts::default(), 0);
        let lines = captured.lines();
        assert_eq!(lines.len(), 2, "one line per record: {lines:#?}");
        lines.iter().for_each(|l| validate(l).unwrap());
        assert_eq!(
            (&lines[0]["Plan"], &lines[0]["Outcome"]),
            (&json!("test"), &json!("held"))
        );
        assert_eq!(lines[1]["Plan"], "unreadable");
        assert!(lines[1].get(USERS).is_none(), "nothing carried over");
    }

    #[test]
    fn okta_counts_are_read_and_reset() {
        let counters = OktaCounters::default();
        counters.rate_limited();
        counters.retried();
        counters.retried();
        assert_eq!(
            counters.take(),
            OktaCounts {
                rate_limited: 1,
                retries: 2
            }
        );
        assert_eq!(counters.take(), OktaCounts::default());
    }
}
