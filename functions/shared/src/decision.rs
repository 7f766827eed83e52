//! People's decisions: the Slack buttons and the queue message they become.
//!
//! This is the one definition the dispatcher (which puts buttons on its
//! summaries and carries decisions out) and the actions function (which
//! receives the clicks) share.
//!
//! - A [`Button`] is what a button carries: its `action_id` (`approve`,
//!   `dismiss`, `unsuspend`, `release`) and its `value`, a small JSON object:
//!   `{"e":"<event id>"}` for Approve and Dismiss,
//!   `{"e":"<event id>","u":"<okta user id>","l":"<login>"}` for Unsuspend
//!   and Release (out of the quarantine group).
//!   The value is visible to anyone who sees the message, so it holds ids
//!   only, never a secret. [`Button::element`] builds the Block Kit button
//!   (with a `confirm` dialog); [`Button::parse`] validates what comes back.
//! - A [`Decision`] is the queue message a click becomes once the clicker
//!   was authorized and the decision recorded:
//!   `{"kind":"decision","action":...,"eventId":...,"by":"U...","at":"<RFC3339>","responseUrl":...}`
//!   (plus `oktaUserId` and `login` for Unsuspend). It travels in the same
//!   message group as the event it concerns ([`Decision::group_id`]), with a
//!   de-duplication id per decision ([`Decision::dedup_id`]) and the message
//!   attribute `kind` = `decision`. Both ids come from [`crate::queue`],
//!   which keys events and decisions alike.
//! - [`Decision::parse`] tells a decision from an Oort event: a decision has
//!   `"kind":"decision"` and no `detail-type`. Ingest queues only bodies that
//!   have a `detail-type` (see [`crate::event::OortEvent::parse`]), so a body
//!   without one, and a message with the `kind` attribute, can only come from
//!   the actions function.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::event::Login;
use crate::queue;

/// The `kind` of a decision message, in its body and in its `kind` message attribute.
pub const DECISION_KIND: &str = "decision";
/// The name of the message attribute that marks a decision.
pub const KIND_ATTRIBUTE: &str = "kind";
/// Slack's limit for a button's `value`.
pub const MAX_VALUE_CHARS: usize = 2000;
/// The longest event id a button carries (Oort's are UUIDs; ingest's
/// fallback is `sha256:<64 hex>`).
pub const MAX_EVENT_ID_CHARS: usize = 256;
/// The longest Okta user id accepted (Okta's are 20 characters).
pub const MAX_OKTA_USER_ID_CHARS: usize = 64;
/// Slack's limits for a button's text and a `confirm` dialog.
const MAX_BUTTON_TEXT: usize = 75;
const MAX_CONFIRM_TITLE: usize = 100;
const MAX_CONFIRM_TEXT: usize = 300;
const MAX_CONFIRM_LABEL: usize = 30;

/// What a person decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Act on a held (or dry-run) event now, for real.
    Approve,
    /// Leave a held event alone; recorded, nothing in Okta.
    Dismiss,
    /// Undo a suspension this product made.
    Unsuspend,
    /// Undo a quarantine this product made: remove the user from the group.
    Release,
}

impl Action {
    /// The button's `action_id`, and the `action` of the queue message.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Dismiss => "dismiss",
            Action::Unsuspend => "unsuspend",
            Action::Release => "release",
        }
    }

    pub fn from_action_id(action_id: &str) -> Option<Action> {
        match action_id {
            "approve" => Some(Action::Approve),
            "dismiss" => Some(Action::Dismiss),
            "unsuspend" => Some(Action::Unsuspend),
            "release" => Some(Action::Release),
            _ => None,
        }
    }

    /// The past tense people read: "approved", "dismissed", "unsuspend requested".
    pub fn past_tense(self) -> &'static str {
        match self {
            Action::Approve => "approved",
            Action::Dismiss => "dismissed",
            Action::Unsuspend => "unsuspend requested",
            Action::Release => "release requested",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Okta user an Unsuspend button is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserRef {
    /// Okta's user id (`00u...`): what the dispatcher looks the user up by.
    pub okta_user_id: String,
    /// The login, for people to read (untrusted text: escape it).
    pub login: String,
}

impl UserRef {
    pub fn new(okta_user_id: &str, login: &str) -> Result<UserRef, String> {
        Ok(UserRef {
            okta_user_id: validate_okta_user_id(okta_user_id)?,
            login: Login::parse(login)
                .map_err(|e| format!("login is invalid: {e}"))?
                .as_str()
                .to_string(),
        })
    }
}

/// What a button carries: which action, on which event (and user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub action: Action,
    pub event_id: String,
    /// Set for [`Action::Unsuspend`] and [`Action::Release`] only.
    pub user: Option<UserRef>,
}

/// The "are you sure?" dialog Slack shows before sending a click.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub title: String,
    pub text: String,
    pub confirm: String,
    pub deny: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireValue<'a> {
    #[serde(borrow)]
    e: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    u: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    l: Option<Cow<'a, str>>,
}

impl Button {
    pub fn approve(event_id: &str) -> Result<Button, String> {
        Ok(Button {
            action: Action::Approve,
            event_id: validate_event_id(event_id)?,
            user: None,
        })
    }

    pub fn dismiss(event_id: &str) -> Result<Button, String> {
        Ok(Button {
            action: Action::Dismiss,
            event_id: validate_event_id(event_id)?,
            user: None,
        })
    }

    pub fn unsuspend(event_id: &str, okta_user_id: &str, login: &str) -> Result<Button, String> {
        Ok(Button {
            action: Action::Unsuspend,
            event_id: validate_event_id(event_id)?,
            user: Some(UserRef::new(okta_user_id, login)?),
        })
    }

    pub fn release(event_id: &str, okta_user_id: &str, login: &str) -> Result<Button, String> {
        Ok(Button {
            action: Action::Release,
            event_id: validate_event_id(event_id)?,
            user: Some(UserRef::new(okta_user_id, login)?),
        })
    }

    /// Undo actions name a user; Approve and Dismiss do not.
    pub fn names_user(action: Action) -> bool {
        matches!(action, Action::Unsuspend | Action::Release)
    }

    /// The button's `action_id`.
    pub fn action_id(&self) -> &'static str {
        self.action.as_str()
    }

    /// The button's `value`: `{"e":...}` or `{"e":...,"u":...,"l":...}`.
    pub fn value(&self) -> String {
        let wire = WireValue {
            e: Cow::Borrowed(&self.event_id),
            u: self
                .user
                .as_ref()
                .map(|u| Cow::Borrowed(u.okta_user_id.as_str())),
            l: self.user.as_ref().map(|u| Cow::Borrowed(u.login.as_str())),
        };
        serde_json::to_string(&wire).expect("strings always serialize")
    }

    /// Parses and validates a click's `action_id` and `value`.
    pub fn parse(action_id: &str, value: &str) -> Result<Button, String> {
        let action = Action::from_action_id(action_id)
            .ok_or_else(|| format!("unknown action_id {:?}", truncate(action_id, 40)))?;
        if value.chars().count() > MAX_VALUE_CHARS {
            return Err(format!("value is longer than {MAX_VALUE_CHARS} characters"));
        }
        let wire: WireValue =
            serde_json::from_str(value).map_err(|e| format!("value is not a button value: {e}"))?;
        match (action, wire.u, wire.l) {
            (Action::Approve | Action::Dismiss, None, None) => Ok(Button {
                action,
                event_id: validate_event_id(&wire.e)?,
                user: None,
            }),
            (Action::Approve | Action::Dismiss, _, _) => Err(format!(
                "value of a {action} button must hold only the event id"
            )),
            (Action::Unsuspend, Some(u), Some(l)) => Button::unsuspend(&wire.e, &u, &l),
            (Action::Release, Some(u), Some(l)) => Button::release(&wire.e, &u, &l),
            (Action::Unsuspend | Action::Release, _, _) => Err(format!(
                "value of an {action} button needs the Okta user id and the login"
            )),
        }
    }

    /// The Block Kit button element, with its `confirm` dialog. `style` is
    /// `primary`, `danger` or none. Texts are cut to Slack's limits.
    pub fn element(&self, text: &str, style: Option<&str>, confirm: &Confirm) -> Value {
        let mut button = json!({
            "type": "button",
            "action_id": self.action_id(),
            "text": {"type": "plain_text", "text": truncate(text, MAX_BUTTON_TEXT), "emoji": false},
            "value": self.value(),
            "confirm": {
                "title": {"type": "plain_text", "text": truncate(&confirm.title, MAX_CONFIRM_TITLE)},
                "text": {"type": "plain_text", "text": truncate(&confirm.text, MAX_CONFIRM_TEXT)},
                "confirm": {"type": "plain_text", "text": truncate(&confirm.confirm, MAX_CONFIRM_LABEL)},
                "deny": {"type": "plain_text", "text": truncate(&confirm.deny, MAX_CONFIRM_LABEL)},
            },
        });
        if let Some(style) = style.filter(|s| matches!(*s, "primary" | "danger")) {
            button["style"] = json!(style);
            button["confirm"]["style"] = json!(style);
        }
        button
    }
}

fn users(n: usize) -> String {
    if n == 1 {
        "1 user".into()
    } else {
        format!("{n} users")
    }
}

/// The Approve button of a held or dry-run event; its dialog says how many
/// users will be suspended.
pub fn approve_button(event_id: &str, user_count: usize) -> Result<Value, String> {
    approve_button_doing(event_id, user_count, "suspends")
}

/// The Approve button, its dialog saying what approving does to the users:
/// `doing` is a verb phrase such as `suspends`, `quarantines` or `clears
/// the sessions of` (the check's `CHECK_ACTIONS` response).
pub fn approve_button_doing(
    event_id: &str,
    user_count: usize,
    doing: &str,
) -> Result<Value, String> {
    let confirm = Confirm {
        title: "Approve this event?".into(),
        text: format!(
            "This {doing} {} in Okta now, for real, whatever the cap, severity or dry-run setting said. Protected users and admins stay untouched.",
            users(user_count)
        ),
        confirm: "Approve".into(),
        deny: "Cancel".into(),
    };
    Ok(Button::approve(event_id)?.element("Approve", Some("danger"), &confirm))
}

/// The Dismiss button of a held or dry-run event.
pub fn dismiss_button(event_id: &str) -> Result<Value, String> {
    let confirm = Confirm {
        title: "Dismiss this event?".into(),
        text: "Nobody in this event will be suspended. Your decision is recorded.".into(),
        confirm: "Dismiss".into(),
        deny: "Cancel".into(),
    };
    Ok(Button::dismiss(event_id)?.element("Dismiss", None, &confirm))
}

/// The Unsuspend button of a user reported suspended; its dialog names the user.
pub fn unsuspend_button(event_id: &str, okta_user_id: &str, login: &str) -> Result<Value, String> {
    let button = Button::unsuspend(event_id, okta_user_id, login)?;
    let confirm = Confirm {
        title: "Unsuspend this user?".into(),
        text: format!(
            "Unsuspend {} in Okta? Their cleared sessions are not restored.",
            truncate(login, 200)
        ),
        confirm: "Unsuspend".into(),
        deny: "Cancel".into(),
    };
    Ok(button.element("Unsuspend", None, &confirm))
}

/// The Release button of a user reported quarantined; its dialog names the user.
pub fn release_button(event_id: &str, okta_user_id: &str, login: &str) -> Result<Value, String> {
    let button = Button::release(event_id, okta_user_id, login)?;
    let confirm = Confirm {
        title: "Release this user?".into(),
        text: format!(
            "Remove {} from the quarantine group in Okta? Their cleared sessions are not restored.",
            truncate(login, 200)
        ),
        confirm: "Release".into(),
        deny: "Cancel".into(),
    };
    Ok(button.element("Release", None, &confirm))
}

/// A decision, as it travels on the queue from the actions function to the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "WireDecision", try_from = "WireDecision")]
pub struct Decision {
    pub action: Action,
    pub event_id: String,
    /// Set for [`Action::Unsuspend`] and [`Action::Release`] only.
    pub user: Option<UserRef>,
    /// The Slack user id of the person who decided (`U...` or `W...`).
    pub by: String,
    /// When they clicked (UTC, whole seconds).
    pub at: OffsetDateTime,
    /// The click's `response_url`: where the dispatcher rewrites the message.
    pub response_url: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireDecision {
    kind: String,
    action: Action,
    event_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    okta_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    login: Option<String>,
    by: String,
    at: String,
    response_url: String,
}

impl From<Decision> for WireDecision {
    fn from(d: Decision) -> WireDecision {
        WireDecision {
            kind: DECISION_KIND.into(),
            action: d.action,
            event_id: d.event_id,
            okta_user_id: d.user.as_ref().map(|u| u.okta_user_id.clone()),
            login: d.user.map(|u| u.login),
            by: d.by,
            at: format_time(d.at),
            response_url: d.response_url,
        }
    }
}

impl TryFrom<WireDecision> for Decision {
    type Error = String;

    fn try_from(w: WireDecision) -> Result<Decision, String> {
        if w.kind != DECISION_KIND {
            return Err(format!("kind must be {DECISION_KIND:?}"));
        }
        let button = match (w.action, w.okta_user_id, w.login) {
            (Action::Unsuspend, Some(u), Some(l)) => Button::unsuspend(&w.event_id, &u, &l)?,
            (Action::Release, Some(u), Some(l)) => Button::release(&w.event_id, &u, &l)?,
            (Action::Unsuspend | Action::Release, _, _) => {
                return Err(format!(
                    "an {} decision needs oktaUserId and login",
                    w.action
                ));
            }
            (action, None, None) => Button {
                action,
                event_id: validate_event_id(&w.event_id)?,
                user: None,
            },
            (action, _, _) => {
                return Err(format!(
                    "a {action} decision must not name a user (oktaUserId, login)"
                ));
            }
        };
        let at = OffsetDateTime::parse(&w.at, &Rfc3339)
            .map_err(|e| format!("at is not an RFC 3339 time: {e}"))?;
        Decision::new(&button, &w.by, at, &w.response_url)
    }
}

/// The queue message of a decision, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionMessage {
    pub body: String,
    pub group_id: String,
    pub dedup_id: String,
    /// `(name, value)`, all of SQS type `String`; `kind` = `decision` first.
    pub attributes: Vec<(&'static str, String)>,
}

impl Decision {
    /// A validated decision: `by` must be a Slack user id, `response_url`
    /// https (or http to a loopback address, for local runs). `at` is kept
    /// in UTC to the second.
    pub fn new(
        button: &Button,
        by: &str,
        at: OffsetDateTime,
        response_url: &str,
    ) -> Result<Decision, String> {
        if !is_slack_user_id(by) {
            return Err(format!(
                "by must be a Slack user id (U... or W...), not {:?}",
                truncate(by, 40)
            ));
        }
        if !is_response_url(response_url) {
            return Err("responseUrl must be an https URL".into());
        }
        Ok(Decision {
            action: button.action,
            event_id: button.event_id.clone(),
            user: button.user.clone(),
            by: by.to_string(),
            at: whole_seconds_utc(at),
            response_url: response_url.to_string(),
        })
    }

    /// Whether `body` is a decision and, if so, the decision or why it is
    /// malformed. `None`: not a decision (an Oort event, or not even JSON):
    /// leave it to the event parser.
    pub fn parse(body: &str) -> Option<Result<Decision, String>> {
        #[derive(Deserialize)]
        struct Probe<'a> {
            #[serde(default, borrow)]
            kind: Option<Cow<'a, str>>,
            #[serde(rename = "detail-type", default, deserialize_with = "present")]
            detail_type: bool,
        }
        fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
            IgnoredAny::deserialize(d).map(|_| true)
        }
        let probe: Probe = serde_json::from_str(body).ok()?;
        if probe.kind.as_deref() != Some(DECISION_KIND) || probe.detail_type {
            return None;
        }
        Some(serde_json::from_str::<Decision>(body).map_err(|e| format!("malformed decision: {e}")))
    }

    /// The JSON body of the queue message.
    pub fn body(&self) -> String {
        serde_json::to_string(self).expect("a decision always serializes")
    }

    /// The same message group as the event the decision concerns
    /// ([`queue::group_id`] of its event id, as ingest sets it).
    pub fn group_id(&self) -> String {
        queue::group_id(&self.event_id)
    }

    /// One id per decision: of (`approve`, event id), (`dismiss`, event id)
    /// or (`unsuspend`, event id, Okta user id), by
    /// [`queue::decision_dedup_id`]. A second Approve and a Dismiss of the
    /// same event have different ids: the store, not the queue, decides
    /// which one counts.
    pub fn dedup_id(&self) -> String {
        match &self.user {
            Some(user) if Button::names_user(self.action) => queue::decision_dedup_id(
                self.action.as_str(),
                &[&self.event_id, &user.okta_user_id],
            ),
            _ => queue::decision_dedup_id(self.action.as_str(), &[&self.event_id]),
        }
    }

    /// Body, group, de-duplication id and attributes (`kind`, `action`, `eventId`).
    pub fn to_message(&self) -> DecisionMessage {
        let mut attributes = vec![
            (KIND_ATTRIBUTE, DECISION_KIND.to_string()),
            ("action", self.action.as_str().to_string()),
        ];
        if self.event_id.chars().all(|c| !c.is_control()) {
            attributes.push(("eventId", self.event_id.clone()));
        }
        DecisionMessage {
            body: self.body(),
            group_id: self.group_id(),
            dedup_id: self.dedup_id(),
            attributes,
        }
    }
}

/// `U...` or `W...` followed by upper-case letters and digits (Slack's user ids).
pub fn is_slack_user_id(id: &str) -> bool {
    slack_id(id, &['U', 'W'])
}

/// `S...` followed by upper-case letters and digits (Slack's user group ids).
pub fn is_slack_group_id(id: &str) -> bool {
    slack_id(id, &['S'])
}

fn slack_id(id: &str, prefixes: &[char]) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if prefixes.contains(&c))
        && (3..=32).contains(&id.len())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// https to any host, or http to a loopback address (local runs and tests).
fn is_response_url(raw: &str) -> bool {
    let Ok(url) = url::Url::parse(raw) else {
        return false;
    };
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => false,
        },
        _ => false,
    }
}

fn validate_event_id(id: &str) -> Result<String, String> {
    if id.trim().is_empty() {
        return Err("event id is empty".into());
    }
    if id.chars().count() > MAX_EVENT_ID_CHARS {
        return Err(format!(
            "event id is longer than {MAX_EVENT_ID_CHARS} characters"
        ));
    }
    if id.chars().any(char::is_control) {
        return Err("event id contains a control character".into());
    }
    Ok(id.to_string())
}

fn validate_okta_user_id(id: &str) -> Result<String, String> {
    if !id.is_empty()
        && id.len() <= MAX_OKTA_USER_ID_CHARS
        && id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        Ok(id.to_string())
    } else {
        Err("Okta user id must be 1 to 64 letters and digits".into())
    }
}

/// RFC 3339 in UTC, to the second: `2026-01-05T09:30:00Z`.
pub fn format_time(at: OffsetDateTime) -> String {
    whole_seconds_utc(at)
        .format(&Rfc3339)
        .expect("a UTC time in whole seconds always formats as RFC 3339")
}

/// Parses an RFC 3339 time.
pub fn parse_time(raw: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(raw, &Rfc3339)
        .map_err(|e| format!("{raw:?} is not an RFC 3339 time: {e}"))
}

fn whole_seconds_utc(at: OffsetDateTime) -> OffsetDateTime {
    at.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond")
}

/// At most `max` characters of `text`.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const EVENT: &str = "5d0c3f4e-1a2b-4c3d-9e8f-0a1b2c3d4e5f";
    const URL: &str = "https://hooks.slack.com/actions/T1/123/abc";

    #[test]
    fn button_values_are_the_documented_json() {
        let approve = Button::approve(EVENT).unwrap();
        assert_eq!(approve.action_id(), "approve");
        assert_eq!(approve.value(), format!(r#"{{"e":"{EVENT}"}}"#));
        assert_eq!(Button::dismiss(EVENT).unwrap().action_id(), "dismiss");
        let undo = Button::unsuspend(EVENT, "00u1abcd", "ana.lima@example.com").unwrap();
        assert_eq!(undo.action_id(), "unsuspend");
        assert_eq!(
            undo.value(),
            format!(r#"{{"e":"{EVENT}","u":"00u1abcd","l":"ana.lima@example.com"}}"#)
        );
    }

    #[test]
    fn parse_round_trips_and_validates() {
        for button in [
            Button::approve(EVENT).unwrap(),
            Button::dismiss(EVENT).unwrap(),
            Button::unsuspend(EVENT, "00u1abcd", "o'brien+\"x\"@example.com").unwrap(),
        ] {
            assert_eq!(
                Button::parse(button.action_id(), &button.value()),
                Ok(button)
            );
        }
        let bad = [
            ("delete", r#"{"e":"x"}"#, "unknown action_id"),
            ("approve", "not json", "not a button value"),
            ("approve", r#"{"e":""}"#, "event id is empty"),
            ("approve", r#"{"e":"x","u":"00u1"}"#, "only the event id"),
            ("approve", r#"{"e":"x","z":1}"#, "unknown field"),
            ("unsuspend", r#"{"e":"x"}"#, "needs the Okta user id"),
            (
                "unsuspend",
                r#"{"e":"x","u":"00u/../1","l":"a@b.co"}"#,
                "letters and digits",
            ),
            (
                "unsuspend",
                r#"{"e":"x","u":"00u1","l":"a\u0007@b.co"}"#,
                "login is invalid",
            ),
            ("dismiss", r#"{"e":"a\nb"}"#, "control character"),
        ];
        for (action_id, value, expected) in bad {
            let err = Button::parse(action_id, value).unwrap_err();
            assert!(err.contains(expected), "{action_id} {value}: {err}");
        }
        let long = format!(r#"{{"e":"{}"}}"#, "x".repeat(MAX_VALUE_CHARS));
        assert!(
            Button::parse("approve", &long)
                .unwrap_err()
                .contains("longer than 2000")
        );
        let long_id = format!(r#"{{"e":"{}"}}"#, "x".repeat(MAX_EVENT_ID_CHARS + 1));
        assert!(Button::parse("approve", &long_id).is_err());
    }

    #[test]
    fn the_longest_valid_value_fits_slack() {
        let button = Button::unsuspend(
            &"\"".repeat(MAX_EVENT_ID_CHARS),
            &"9".repeat(MAX_OKTA_USER_ID_CHARS),
            &"\\".repeat(256),
        )
        .unwrap();
        assert!(button.value().chars().count() <= MAX_VALUE_CHARS);
        assert_eq!(Button::parse("unsuspend", &button.value()), Ok(button));
    }

    #[test]
    fn elements_are_block_kit_buttons_with_a_confirm_dialog() {
        let approve = approve_button(EVENT, 25).unwrap();
        assert_eq!(approve["type"], "button");
        assert_eq!(approve["action_id"], "approve");
        assert_eq!(approve["style"], "danger");
        assert_eq!(approve["value"], format!(r#"{{"e":"{EVENT}"}}"#));
        let text = approve["confirm"]["text"]["text"].as_str().unwrap();
        assert!(text.contains("suspends 25 users"), "{text}");
        assert!(
            approve_button(EVENT, 1).unwrap()["confirm"]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("suspends 1 user ")
        );
        let dismiss = dismiss_button(EVENT).unwrap();
        assert_eq!(dismiss["action_id"], "dismiss");
        assert!(dismiss.get("style").is_none());
        let login = format!("{}@example.com", "l".repeat(240));
        let undo = unsuspend_button(EVENT, "00u1abcd", &login).unwrap();
        assert_eq!(undo["action_id"], "unsuspend");
        let confirm = undo["confirm"]["text"]["text"].as_str().unwrap();
        assert!(confirm.starts_with("Unsuspend llll"), "{confirm}");
        assert!(confirm.chars().count() <= MAX_CONFIRM_TEXT);
        let parsed = Button::parse(
            undo["action_id"].as_str().unwrap(),
            undo["value"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(parsed.user.unwrap().login, login);
        assert!(unsuspend_button(EVENT, "", "a@b.co").is_err());
    }

    fn decision(button: &Button) -> Decision {
        Decision::new(
            button,
            "U024BE7LH",
            datetime!(2026-01-05 09:30:00.75 UTC),
            URL,
        )
        .unwrap()
    }

    #[test]
    fn decision_body_is_the_documented_json() {
        let d = decision(&Button::approve(EVENT).unwrap());
        let body: Value = serde_json::from_str(&d.body()).unwrap();
        assert_eq!(
            body,
            json!({"kind": "decision", "action": "approve", "eventId": EVENT, "by": "U024BE7LH",
                   "at": "2026-01-05T09:30:00Z", "responseUrl": URL})
        );
        let d = decision(&Button::unsuspend(EVENT, "00u1abcd", "ana@example.com").unwrap());
        let body: Value = serde_json::from_str(&d.body()).unwrap();
        assert_eq!(body["action"], "unsuspend");
        assert_eq!(body["oktaUserId"], "00u1abcd");
        assert_eq!(body["login"], "ana@example.com");
    }

    #[test]
    fn decisions_round_trip_and_are_told_from_events() {
        for button in [
            Button::approve(EVENT).unwrap(),
            Button::dismiss(EVENT).unwrap(),
            Button::unsuspend(EVENT, "00u1abcd", "ana@example.com").unwrap(),
        ] {
            let d = decision(&button);
            assert_eq!(Decision::parse(&d.body()), Some(Ok(d)));
        }
        for not_a_decision in [
            r#"{"id": "e", "detail-type": "FAILED_CHECK", "detail": {}}"#,
            r#"{"kind": "decision", "detail-type": "FAILED_CHECK", "detail": {}}"#,
            r#"{"kind": "decision", "detail-type": null}"#,
            r#"{"kind": "other"}"#,
            r#"{"kind": 3}"#,
            "not json {",
            "[]",
        ] {
            assert_eq!(Decision::parse(not_a_decision), None, "{not_a_decision}");
        }
    }

    #[test]
    fn malformed_decisions_say_what_is_wrong() {
        let cases = [
            (r#"{"kind":"decision"}"#, "missing field"),
            (
                r#"{"kind":"decision","action":"delete","eventId":"e","by":"U1AB","at":"2026-01-05T09:30:00Z","responseUrl":"https://h.example/x"}"#,
                "unknown variant",
            ),
            (
                r#"{"kind":"decision","action":"approve","eventId":"e","by":"someone","at":"2026-01-05T09:30:00Z","responseUrl":"https://h.example/x"}"#,
                "Slack user id",
            ),
            (
                r#"{"kind":"decision","action":"approve","eventId":"e","by":"U1AB","at":"yesterday","responseUrl":"https://h.example/x"}"#,
                "RFC 3339",
            ),
            (
                r#"{"kind":"decision","action":"approve","eventId":"e","by":"U1AB","at":"2026-01-05T09:30:00Z","responseUrl":"http://evil.example/x"}"#,
                "https",
            ),
            (
                r#"{"kind":"decision","action":"unsuspend","eventId":"e","by":"U1AB","at":"2026-01-05T09:30:00Z","responseUrl":"https://h.example/x"}"#,
                "needs oktaUserId and login",
            ),
            (
                r#"{"kind":"decision","action":"approve","eventId":"e","login":"a@b.co","by":"U1AB","at":"2026-01-05T09:30:00Z","responseUrl":"https://h.example/x"}"#,
                "must not name a user",
            ),
        ];
        for (body, expected) in cases {
            let err = Decision::parse(body).expect("a decision").unwrap_err();
            assert!(err.contains(expected), "{body}: {err}");
        }
    }

    #[test]
    fn group_and_dedup_ids() {
        let approve = decision(&Button::approve(EVENT).unwrap());
        assert_eq!(approve.group_id(), queue::group_id(EVENT));
        assert_eq!(
            approve.dedup_id(),
            queue::decision_dedup_id("approve", &[EVENT])
        );
        let dismiss = decision(&Button::dismiss(EVENT).unwrap());
        assert_eq!(
            dismiss.dedup_id(),
            queue::decision_dedup_id("dismiss", &[EVENT])
        );
        let undo = decision(&Button::unsuspend(EVENT, "00u1abcd", "a@b.co").unwrap());
        assert_eq!(
            undo.dedup_id(),
            queue::decision_dedup_id("unsuspend", &[EVENT, "00u1abcd"])
        );
        assert_eq!(undo.group_id(), approve.group_id());
        let ids = [approve.dedup_id(), dismiss.dedup_id(), undo.dedup_id()];
        assert_eq!(
            ids.iter().collect::<std::collections::HashSet<_>>().len(),
            3
        );
        // Long ids and characters SQS refuses still give ids SQS takes.
        let long = "e".repeat(MAX_EVENT_ID_CHARS);
        for id in [long.as_str(), "id with spaces", "idé"] {
            let d = decision(&Button::approve(id).unwrap());
            for sqs_id in [d.group_id(), d.dedup_id()] {
                assert!(sqs_id.len() <= 128, "{sqs_id}");
                assert!(sqs_id.bytes().all(|b| b.is_ascii_graphic()), "{sqs_id}");
            }
        }
        let message = approve.to_message();
        assert_eq!(
            message.attributes,
            vec![
                ("kind", "decision".to_string()),
                ("action", "approve".to_string()),
                ("eventId", EVENT.to_string())
            ]
        );
        assert_eq!(message.group_id, approve.group_id());
        assert_eq!(message.dedup_id, approve.dedup_id());
        assert_eq!(message.body, approve.body());
    }

    #[test]
    fn slack_ids_are_validated() {
        for ok in ["U024BE7LH", "W012A3CDE", "UABC"] {
            assert!(is_slack_user_id(ok), "{ok}");
        }
        for bad in ["", "U", "u024be7lh", "S0614TZR7", "U02 4BE", "U<!channel>"] {
            assert!(!is_slack_user_id(bad), "{bad}");
        }
        assert!(is_slack_group_id("S0614TZR7"));
        assert!(!is_slack_group_id("U0614TZR7"));
        assert!(is_response_url("http://127.0.0.1:9/x"));
        assert!(is_response_url("http://localhost:9/x"));
        assert!(!is_response_url("http://hooks.slack.com/x"));
        assert!(!is_response_url("javascript:alert(1)"));
    }

    #[test]
    fn times_are_utc_whole_seconds() {
        let at = datetime!(2026-01-05 10:30:00.5 +01:00);
        assert_eq!(format_time(at), "2026-01-05T09:30:00Z");
        assert_eq!(
            parse_time("2026-01-05T09:30:00Z").unwrap(),
            datetime!(2026-01-05 09:30:00 UTC)
        );
        assert!(parse_time("soon").is_err());
    }

    #[test]
    fn release_travels_like_unsuspend_with_its_own_action() {
        let button = Button::release(EVENT, "00u1abcd", "ana@example.com").unwrap();
        assert_eq!(button.action_id(), "release");
        assert_eq!(
            Button::parse("release", &button.value()),
            Ok(button.clone())
        );
        assert!(
            Button::parse("release", r#"{"e":"x"}"#)
                .unwrap_err()
                .contains("needs the Okta user id")
        );
        let element = release_button(EVENT, "00u1abcd", "ana@example.com").unwrap();
        assert_eq!(element["action_id"], "release");
        assert_eq!(element["text"]["text"], "Release");
        let d = decision(&button);
        let body: Value = serde_json::from_str(&d.body()).unwrap();
        assert_eq!(body["action"], "release");
        assert_eq!(body["oktaUserId"], "00u1abcd");
        assert_eq!(Decision::parse(&d.body()), Some(Ok(d.clone())));
        assert_eq!(
            d.dedup_id(),
            queue::decision_dedup_id("release", &[EVENT, "00u1abcd"])
        );
        let undo = decision(&Button::unsuspend(EVENT, "00u1abcd", "ana@example.com").unwrap());
        assert_ne!(
            d.dedup_id(),
            undo.dedup_id(),
            "a release is not an unsuspend"
        );
    }
}
