//! What the pipeline saw, kept for the demo and the tests: every function
//! log line, the per-user outcomes the dispatcher logged ([`UserOutcome`]),
//! the clicks the actions function logged ([`LoggedClick`]), and every
//! completed batch.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::broadcast;

use super::{ACTIONS, DISPATCHER};
use crate::event_source::{BatchReport, EventSourceEvent};
use crate::lock;
use crate::runtime_api::{LogLine, LogSource};

/// A dispatcher log line that reports one user's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserOutcome {
    pub event_id: Option<String>,
    pub user: String,
    /// An outcome word of the README's table: suspended, quarantined,
    /// sessions cleared, notified, not found, protected, held, dry run
    /// (would suspend), failed, ...
    pub outcome: String,
    pub reason: Option<String>,
}

fn field_text(map: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    match map.get(name)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl UserOutcome {
    /// A line with `user` and `outcome` fields is a per-user outcome.
    pub fn from_log(line: &LogLine) -> Option<UserOutcome> {
        if line.source != LogSource::Stdout {
            return None;
        }
        let map = line.json()?;
        Some(UserOutcome {
            user: field_text(&map, "user")?,
            outcome: field_text(&map, "outcome")?,
            event_id: field_text(&map, "event_id"),
            reason: field_text(&map, "reason"),
        })
    }
}

/// The line the actions function logs for each request: a verified click
/// (`outcome` `queued`, `already done`, `refused`, `expired`, `not
/// understood`, `failed`) or a rejected request (`rejected`, with the status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedClick {
    /// The clicker's Slack user id (empty when the request was rejected before it was read).
    pub slack_user: String,
    /// The button's `action_id`.
    pub action: String,
    pub event_id: Option<String>,
    pub okta_user_id: Option<String>,
    pub outcome: String,
    /// The HTTP status answered.
    pub status: Option<u16>,
    pub reason: Option<String>,
}

impl LoggedClick {
    /// An actions function line with an `outcome` field is a click's line.
    pub fn from_log(line: &LogLine) -> Option<LoggedClick> {
        if line.source != LogSource::Stdout || &*line.function != ACTIONS {
            return None;
        }
        let map = line.json()?;
        let text = |name: &str| field_text(&map, name).filter(|v| !v.is_empty());
        Some(LoggedClick {
            outcome: text("outcome")?,
            slack_user: text("slack_user").unwrap_or_default(),
            action: text("action").unwrap_or_default(),
            event_id: text("event_id"),
            okta_user_id: text("okta_user_id"),
            status: map
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok()),
            reason: text("reason"),
        })
    }
}

/// What the pipeline saw, kept for tests and the demo.
#[derive(Default)]
pub(super) struct Journal {
    pub(super) lines: Vec<LogLine>,
    pub(super) outcomes: Vec<UserOutcome>,
    pub(super) clicks: Vec<LoggedClick>,
    pub(super) batches: Vec<BatchReport>,
}

/// Lines kept at most (a long `local-pipeline up` session must not grow forever).
const JOURNAL_LIMIT: usize = 200_000;

/// Keeps what the functions logged and what the event source did.
pub(super) async fn record(
    mut logs: broadcast::Receiver<LogLine>,
    mut batches: broadcast::Receiver<EventSourceEvent>,
    journal: Arc<Mutex<Journal>>,
) {
    let mut logs_open = true;
    let mut batches_open = true;
    while logs_open || batches_open {
        tokio::select! {
            line = logs.recv(), if logs_open => match line {
                Ok(line) => {
                    let mut j = lock(&journal);
                    if &*line.function == DISPATCHER
                        && let Some(outcome) = UserOutcome::from_log(&line)
                    {
                        j.outcomes.push(outcome);
                    }
                    if let Some(click) = LoggedClick::from_log(&line)
                        && j.clicks.len() < JOURNAL_LIMIT
                    {
                        j.clicks.push(click);
                    }
                    if j.lines.len() < JOURNAL_LIMIT {
                        j.lines.push(line);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => logs_open = false,
            },
            event = batches.recv(), if batches_open => match event {
                Ok(EventSourceEvent::Completed(report)) => {
                    let mut j = lock(&journal);
                    if j.batches.len() < JOURNAL_LIMIT {
                        j.batches.push(report);
                    }
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => batches_open = false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(function: &str, text: &str) -> LogLine {
        LogLine {
            function: Arc::from(function),
            instance: 0,
            source: LogSource::Stdout,
            line: text.to_string(),
        }
    }

    #[test]
    fn per_user_outcomes_are_read_from_json_log_lines() {
        let outcome = UserOutcome::from_log(&line(
            DISPATCHER,
            r#"{"level":"INFO","event_id":"e1","user":"ana.lima@example.com","outcome":"failed","reason":"Okta 503"}"#,
        ))
        .unwrap();
        assert_eq!(outcome.event_id.as_deref(), Some("e1"));
        assert_eq!(outcome.outcome, "failed");
        assert_eq!(outcome.reason.as_deref(), Some("Okta 503"));
        // An Okta call line has no outcome; plain text is not an outcome.
        assert!(
            UserOutcome::from_log(&line(
                DISPATCHER,
                r#"{"user":"a","operation":"suspend","status":200}"#
            ))
            .is_none()
        );
        assert!(UserOutcome::from_log(&line(DISPATCHER, "panicked at ...")).is_none());
    }

    #[test]
    fn clicks_are_read_from_the_actions_functions_lines() {
        let click = LoggedClick::from_log(&line(
            ACTIONS,
            r#"{"level":"INFO","slack_user":"U0APPROVER","action":"approve","event_id":"e1","okta_user_id":"","outcome":"queued","status":200,"reason":"","message":"click queued"}"#,
        ))
        .unwrap();
        assert_eq!(click.slack_user, "U0APPROVER");
        assert_eq!(click.action, "approve");
        assert_eq!(click.event_id.as_deref(), Some("e1"));
        assert_eq!(click.okta_user_id, None);
        assert_eq!(click.outcome, "queued");
        assert_eq!(click.status, Some(200));
        assert_eq!(click.reason, None);
        let rejected = LoggedClick::from_log(&line(
            ACTIONS,
            r#"{"method":"POST","slack_user":"","outcome":"rejected","status":401,"reason":"invalid Slack signature"}"#,
        ))
        .unwrap();
        assert_eq!(
            (rejected.outcome.as_str(), rejected.status),
            ("rejected", Some(401))
        );
        // Another function's outcome lines are not clicks.
        assert!(
            LoggedClick::from_log(&line(DISPATCHER, r#"{"user":"a","outcome":"suspended"}"#))
                .is_none()
        );
    }
}
