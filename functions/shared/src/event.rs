//! The Oort (Cisco Identity Intelligence) webhook event.
//!
//! Oort sends an EventBridge-shaped envelope: `id`, `detail-type`, `time` and a
//! `detail` object describing a failed check. [`OortEvent::parse`] is the one
//! place that decides whether a body is an event: ingest uses it to answer
//! 400 before anything is queued, the dispatcher to read what was queued.
//! A value that parses is valid: logins are non-empty, free of control
//! characters and de-duplicated.
//!
//! Unknown fields are ignored and every `detail` field is optional, as the
//! webhook's shape is not a documented closed set. A known field with the
//! wrong type is rejected with a message that names it.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The longest login accepted. Okta's own limit is 100 characters; anything
/// far beyond that is not a login.
pub const MAX_LOGIN_CHARS: usize = 256;

/// What kind of event the envelope's `detail-type` says this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A check has failing users: the only kind that acts.
    FailedCheck,
    /// Oort's "Test Connectivity" message: never acts, whatever users it lists.
    WebhookTest,
    /// Anything else: recorded and reported, never acted on.
    Other(String),
}

impl EventKind {
    pub fn from_detail_type(detail_type: &str) -> Self {
        match detail_type {
            "FAILED_CHECK" => EventKind::FailedCheck,
            "WebhookTest" => EventKind::WebhookTest,
            other => EventKind::Other(other.to_string()),
        }
    }

    /// The `detail-type` as received.
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::FailedCheck => "FAILED_CHECK",
            EventKind::WebhookTest => "WebhookTest",
            EventKind::Other(other) => other,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A login from the webhook, validated: trimmed, non-empty, at most
/// [`MAX_LOGIN_CHARS`] characters, no control characters. It is still
/// untrusted text: escape it wherever it goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Login(String);

impl Login {
    pub fn parse(raw: &str) -> Result<Login, String> {
        let login = raw.trim();
        if login.is_empty() {
            return Err("it is empty".into());
        }
        if login.chars().count() > MAX_LOGIN_CHARS {
            return Err(format!("it is longer than {MAX_LOGIN_CHARS} characters"));
        }
        if login.chars().any(char::is_control) {
            return Err("it contains a control character".into());
        }
        Ok(Login(login.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form logins are compared in: Okta compares them case-insensitively.
    pub fn folded(&self) -> String {
        self.0.to_lowercase()
    }

    /// `local@domain.tld`: worth an email search when the login is not found.
    pub fn looks_like_email(&self) -> bool {
        match self.0.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !self.0.contains(char::is_whitespace)
            }
            None => false,
        }
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A parsed, validated Oort event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OortEvent {
    /// The envelope `id`: the natural key for de-duplicating redeliveries.
    pub id: Option<String>,
    pub kind: EventKind,
    /// The envelope `time` (second precision), as received.
    pub time: Option<String>,
    /// `detail.id`: the finding.
    pub finding_id: Option<String>,
    pub check_id: Option<String>,
    pub title: Option<String>,
    pub severity: Option<String>,
    /// `detail.published` (millisecond precision), as received.
    pub published: Option<String>,
    /// `detail.usersFailing` then `detail.login`, in order, de-duplicated
    /// case-insensitively.
    pub users: Vec<Login>,
}

/// Why a body is not an Oort event. The message is meant for the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EventError(String);

impl OortEvent {
    /// Parses and validates a webhook body.
    ///
    /// A typed parser that borrows from the body handles well-formed events
    /// (the common case, and several times faster); whenever it declines, the
    /// generic parser decides, so the answer and its message are always the
    /// generic parser's.
    pub fn parse(body: &[u8]) -> Result<OortEvent, EventError> {
        match fast_parse(body) {
            Some(event) => Ok(event),
            None => OortEvent::parse_generic(body),
        }
    }

    /// The reference parser: reads the body as a JSON value and names the
    /// first field that is missing or of the wrong type.
    pub fn parse_generic(body: &[u8]) -> Result<OortEvent, EventError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| EventError(format!("body is not valid JSON: {e}")))?;
        let Value::Object(envelope) = value else {
            return Err(EventError(format!(
                "body must be a JSON object, not {}",
                type_name(&value)
            )));
        };
        let detail_type = match envelope.get("detail-type") {
            None => return Err(EventError("missing field `detail-type`".into())),
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(wrong_type("detail-type", "a string", other)),
        };
        let detail = match envelope.get("detail") {
            None => return Err(EventError("missing field `detail`".into())),
            Some(Value::Object(detail)) => detail,
            Some(other) => return Err(wrong_type("detail", "an object", other)),
        };

        Ok(OortEvent {
            id: optional_string(&envelope, "id", "id")?,
            kind: EventKind::from_detail_type(&detail_type),
            time: optional_string(&envelope, "time", "time")?,
            finding_id: optional_string(detail, "id", "detail.id")?,
            check_id: optional_string(detail, "checkId", "detail.checkId")?,
            title: optional_string(detail, "title", "detail.title")?,
            severity: optional_string(detail, "severity", "detail.severity")?,
            published: optional_string(detail, "published", "detail.published")?,
            users: users(detail)?,
        })
    }

    /// Severity folded to lower case, for comparisons.
    pub fn severity_folded(&self) -> Option<String> {
        self.severity.as_deref().map(str::to_lowercase)
    }
}

#[derive(Deserialize)]
struct FastEnvelope<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(rename = "detail-type", borrow)]
    detail_type: Cow<'a, str>,
    #[serde(default, borrow)]
    time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    detail: &'a RawValue,
}

#[derive(Deserialize)]
struct FastDetail<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(rename = "checkId", default, borrow)]
    check_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    title: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    severity: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    published: Option<Cow<'a, str>>,
    #[serde(rename = "usersFailing", default, borrow)]
    users_failing: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    login: Option<Cow<'a, str>>,
}

/// The typed parse, or `None` to let the generic parser decide. It declines
/// whatever the two could read differently: a non-object envelope or detail
/// (serde reads structs from arrays too), duplicate fields (serde refuses
/// them, the generic parser keeps the last), and any invalid login.
fn fast_parse(body: &[u8]) -> Option<OortEvent> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let envelope: FastEnvelope = serde_json::from_slice(body).ok()?;
    if !envelope.detail.get().trim_start().starts_with('{') {
        return None;
    }
    let detail: FastDetail = serde_json::from_str(envelope.detail.get()).ok()?;
    let listed = detail
        .users_failing
        .iter()
        .flatten()
        .chain(detail.login.as_ref());
    let mut seen = HashSet::new();
    let mut users = Vec::new();
    for text in listed {
        let login = Login::parse(text).ok()?;
        if seen.insert(login.folded()) {
            users.push(login);
        }
    }
    let owned = |c: Option<Cow<str>>| c.map(Cow::into_owned);
    Some(OortEvent {
        id: owned(envelope.id),
        kind: EventKind::from_detail_type(&envelope.detail_type),
        time: owned(envelope.time),
        finding_id: owned(detail.id),
        check_id: owned(detail.check_id),
        title: owned(detail.title),
        severity: owned(detail.severity),
        published: owned(detail.published),
        users,
    })
}

fn users(detail: &Map<String, Value>) -> Result<Vec<Login>, EventError> {
    let mut raw: Vec<(String, &str)> = Vec::new();
    match detail.get("usersFailing") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let field = format!("detail.usersFailing[{i}]");
                match item {
                    Value::String(s) => raw.push((field, s)),
                    other => return Err(wrong_type(&field, "a string", other)),
                }
            }
        }
        Some(other) => {
            return Err(wrong_type(
                "detail.usersFailing",
                "an array of logins",
                other,
            ));
        }
    }
    if let Some(login) = optional_str(detail, "login", "detail.login")? {
        raw.push(("detail.login".into(), login));
    }

    let mut seen = HashSet::new();
    let mut users = Vec::with_capacity(raw.len());
    for (field, text) in raw {
        let login = Login::parse(text)
            .map_err(|why| EventError(format!("{field} is not a valid login: {why}")))?;
        if seen.insert(login.folded()) {
            users.push(login);
        }
    }
    Ok(users)
}

fn optional_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'a str>, EventError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(field, "a string", other)),
    }
}

fn optional_string(
    object: &Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<String>, EventError> {
    Ok(optional_str(object, key, field)?.map(String::from))
}

fn wrong_type(field: &str, expected: &str, got: &Value) -> EventError {
    EventError(format!(
        "`{field}` must be {expected}, not {}",
        type_name(got)
    ))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "version": "0", "id": "5d0c3f4e-1a2b-4c3d-9e8f-0a1b2c3d4e5f", "detail-type": "FAILED_CHECK",
      "source": "x", "account": "111122223333", "time": "2026-11-02T08:15:00Z", "region": "us-east-2",
      "resources": [],
      "detail": {
        "id": "9a8b", "checkId": "no-mfa", "title": "No MFA Configured", "severity": "critical",
        "published": "2026-11-02T08:15:00.123Z", "description": ["d"], "recommendedActions": [],
        "usersFailing": ["ana.lima@example.com", "svc.backup", "ANA.LIMA@example.com", " li.wei@example.com "],
        "loginDetails": [{"login": "ana.lima@example.com", "details": [{"key": "k", "value": "[\"x\"]"}]}],
        "frameworks": {"anything": true}
      }
    }"#;

    fn parse(body: &str) -> Result<OortEvent, String> {
        OortEvent::parse(body.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_a_failed_check_and_dedups_logins_case_insensitively() {
        let event = parse(SAMPLE).unwrap();
        assert_eq!(
            event.id.as_deref(),
            Some("5d0c3f4e-1a2b-4c3d-9e8f-0a1b2c3d4e5f")
        );
        assert_eq!(event.kind, EventKind::FailedCheck);
        assert_eq!(event.check_id.as_deref(), Some("no-mfa"));
        assert_eq!(event.severity_folded().as_deref(), Some("critical"));
        let users: Vec<&str> = event.users.iter().map(Login::as_str).collect();
        assert_eq!(
            users,
            ["ana.lima@example.com", "svc.backup", "li.wei@example.com"]
        );
    }

    #[test]
    fn single_user_form_and_unknown_types_are_accepted() {
        let event = parse(
            r#"{"detail-type": "SOMETHING_NEW", "detail": {"login": "a@b.co", "usersFailing": ["A@B.co"]}}"#,
        )
        .unwrap();
        assert_eq!(event.kind, EventKind::Other("SOMETHING_NEW".into()));
        assert_eq!(event.users.len(), 1);
        assert_eq!(event.id, None);
        let test = parse(r#"{"detail-type": "WebhookTest", "detail": {}}"#).unwrap();
        assert_eq!(test.kind, EventKind::WebhookTest);
        assert!(test.users.is_empty());
    }

    #[test]
    fn nulls_count_as_absent() {
        let event = parse(r#"{"id": null, "detail-type": "FAILED_CHECK", "detail": {"title": null, "usersFailing": null}}"#).unwrap();
        assert_eq!(event.title, None);
        assert!(event.users.is_empty());
    }

    #[test]
    fn malformed_bodies_get_messages_a_sender_can_act_on() {
        let cases = [
            (
                "",
                "body is not valid JSON: EOF while parsing a value at line 1 column 0",
            ),
            (
                "nope",
                "body is not valid JSON: expected ident at line 1 column 2",
            ),
            ("[1]", "body must be a JSON object, not an array"),
            (r#"{"detail": {}}"#, "missing field `detail-type`"),
            (
                r#"{"detail-type": 3, "detail": {}}"#,
                "`detail-type` must be a string, not a number",
            ),
            (
                r#"{"detail-type": "FAILED_CHECK"}"#,
                "missing field `detail`",
            ),
            (
                r#"{"detail-type": "FAILED_CHECK", "detail": []}"#,
                "`detail` must be an object, not an array",
            ),
            (
                r#"{"detail-type": "FAILED_CHECK", "detail": {"usersFailing": "a@b.co"}}"#,
                "`detail.usersFailing` must be an array of logins, not a string",
            ),
            (
                r#"{"detail-type": "FAILED_CHECK", "detail": {"usersFailing": ["a@b.co", 7]}}"#,
                "`detail.usersFailing[1]` must be a string, not a number",
            ),
            (
                r#"{"detail-type": "FAILED_CHECK", "detail": {"usersFailing": ["  "]}}"#,
                "detail.usersFailing[0] is not a valid login: it is empty",
            ),
            (
                r#"{"detail-type": "FAILED_CHECK", "detail": {"login": "a\nb"}}"#,
                "detail.login is not a valid login: it contains a control character",
            ),
            (
                r#"{"detail-type": "FAILED_CHECK", "detail": {"title": {"x": 1}}}"#,
                "`detail.title` must be a string, not an object",
            ),
            (
                r#"{"id": 12, "detail-type": "FAILED_CHECK", "detail": {}}"#,
                "`id` must be a string, not a number",
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(body).unwrap_err(), expected, "body: {body}");
        }
    }

    #[test]
    fn the_fast_and_generic_parsers_agree() {
        let long = format!(
            r#"{{"detail-type": "FAILED_CHECK", "detail": {{"usersFailing": ["{}"]}}}}"#,
            "a".repeat(300)
        );
        let bodies = [
            SAMPLE,
            r#"{"detail-type": "FAILED_CHECK", "detail": {"login": "a@b.co", "usersFailing": ["A@B.co", "c\u0040d.co"]}}"#,
            r#"{"id": null, "detail-type": "X", "detail": {"title": null, "usersFailing": null}}"#,
            r#"{"id": "a", "id": "b", "detail-type": "FAILED_CHECK", "detail": {}}"#,
            r#"{"detail-type": "FAILED_CHECK", "detail": {"title": "a", "title": "b"}}"#,
            r#"{"detail-type": "FAILED_CHECK", "detail": []}"#,
            r#"{"detail-type": "FAILED_CHECK", "detail": ["x", "y"]}"#,
            r#"["FAILED_CHECK", {}]"#,
            r#"{"detail-type": "FAILED_CHECK", "detail": {"usersFailing": ["ok@x.co", " "]}}"#,
            r#"{"detail-type": "FAILED_CHECK", "detail": {"usersFailing": [1]}}"#,
            r#"{"detail-type": "FAILED_CHECK", "detail": {"severity": 5}}"#,
            r#"  {"detail-type": "FAILED_CHECK", "detail": {"checkId": "caf\u00e9"}}  "#,
            long.as_str(),
            "{",
            "",
        ];
        for body in bodies {
            let generic = OortEvent::parse_generic(body.as_bytes());
            if let Some(fast) = fast_parse(body.as_bytes()) {
                assert_eq!(Ok(fast), generic, "{body}");
            }
            assert_eq!(OortEvent::parse(body.as_bytes()), generic, "{body}");
        }
        assert!(
            fast_parse(SAMPLE.as_bytes()).is_some(),
            "the fast path takes well-formed events"
        );
    }

    #[test]
    fn overlong_logins_are_rejected() {
        let long = "a".repeat(MAX_LOGIN_CHARS + 1);
        let body = format!(
            r#"{{"detail-type": "FAILED_CHECK", "detail": {{"usersFailing": ["{long}"]}}}}"#
        );
        assert!(parse(&body).unwrap_err().contains("longer than 256"));
        assert!(Login::parse(&"a".repeat(MAX_LOGIN_CHARS)).is_ok());
    }

    #[test]
    fn email_shape_detection() {
        for yes in ["ana@example.com", "a.b+c@sub.example.co"] {
            assert!(Login::parse(yes).unwrap().looks_like_email(), "{yes}");
        }
        for no in [
            "svc.backup",
            "a@b",
            "@example.com",
            "a@@b.com",
            "a@.com",
            "a b@c.com",
            "a@b.com.",
        ] {
            assert!(!Login::parse(no).unwrap().looks_like_email(), "{no}");
        }
    }
}
