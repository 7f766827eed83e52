//! The Oort (Cisco Identity Intelligence) webhook event.
//!
//! Oort sends an EventBridge-shaped envelope: `id`, `detail-type`, `time` and a
//! `detail` object describing a failed check. [`OortEvent::parse`] is the one
//! place that decides what a body means: ingest uses it to answer 400 before
//! anything is queued, the dispatcher to read what was queued. It is one
//! typed pass over the body that borrows from it; a new Oort field is added
//! here, once.
//!
//! It is lenient where leniency loses nothing and strict where it matters:
//! a body that is an envelope (a JSON object with a string `detail-type` and
//! an object `detail`) is always an event. Unknown fields are ignored; a
//! known optional field of the wrong type (`severity: 3`) is ignored and
//! noted; a `usersFailing` entry that cannot be a login (blank, too long,
//! control characters, not a string) is kept aside as an
//! [`InvalidEntry`] with why, so the valid users are still acted on and the
//! odd ones reported. Only a body that is not an envelope is an error.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

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

/// A parsed Oort event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
    /// case-insensitively: every one a valid login.
    pub users: Vec<Login>,
    /// Entries of `usersFailing` / `login` that cannot be a login: reported
    /// as `invalid`, never sent to Okta.
    pub invalid: Vec<InvalidEntry>,
    /// Known fields ignored because of their type, e.g. "`detail.severity`
    /// is a number, not a string".
    pub ignored: Vec<String>,
    /// `detail.loginDetails`: per login (folded), the providers whose checks
    /// failed, as named in `providersFailingChecks`. `None` when the event
    /// has no readable `loginDetails`.
    pub login_details: Option<Vec<(String, Vec<String>)>>,
}

/// A listed user that cannot be acted on, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidEntry {
    /// What the event said, as printable text (cut, control characters
    /// escaped); still untrusted.
    pub entry: String,
    pub reason: String,
}

impl Default for EventKind {
    fn default() -> Self {
        EventKind::Other(String::new())
    }
}

/// Why a body is not an Oort event. The message is meant for the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EventError(String);

/// An entry shown in reports: at most this many characters.
const ENTRY_CHARS: usize = 80;

impl OortEvent {
    /// Parses a webhook body; errs only when it is not an envelope.
    pub fn parse(body: &[u8]) -> Result<OortEvent, EventError> {
        let envelope: Fields<Envelope> = parse_object(body, "body")?;
        let Fields(envelope) = envelope;
        let detail_type = match envelope.detail_type {
            None => return Err(EventError("missing field `detail-type`".into())),
            Some(raw) => match string(raw) {
                Ok(Some(s)) => s,
                Ok(None) => return Err(wrong_type("detail-type", "a string", raw)),
                Err(()) => return Err(wrong_type("detail-type", "a string", raw)),
            },
        };
        let detail = match envelope.detail {
            None => return Err(EventError("missing field `detail`".into())),
            Some(raw) if !starts_with(raw, b'{') => {
                return Err(wrong_type("detail", "an object", raw));
            }
            Some(raw) => match serde_json::from_str::<Fields<Detail>>(raw.get()) {
                Ok(Fields(detail)) => detail,
                Err(e) => return Err(EventError(format!("`detail` could not be read: {e}"))),
            },
        };
        let mut event = OortEvent {
            kind: EventKind::from_detail_type(&detail_type),
            ..OortEvent::default()
        };
        event.id = optional(&mut event.ignored, "id", envelope.id);
        event.time = optional(&mut event.ignored, "time", envelope.time);
        event.finding_id = optional(&mut event.ignored, "detail.id", detail.id);
        event.check_id = optional(&mut event.ignored, "detail.checkId", detail.check_id);
        event.title = optional(&mut event.ignored, "detail.title", detail.title);
        event.severity = optional(&mut event.ignored, "detail.severity", detail.severity);
        event.published = optional(&mut event.ignored, "detail.published", detail.published);
        event.read_users(detail.users_failing, detail.login);
        event.login_details = detail.login_details.and_then(read_login_details);
        Ok(event)
    }

    /// Severity folded to lower case, for comparisons.
    pub fn severity_folded(&self) -> Option<String> {
        self.severity.as_deref().map(str::to_lowercase)
    }

    fn read_users(&mut self, users_failing: Option<&RawValue>, login: Option<&RawValue>) {
        let mut seen = HashSet::new();
        let mut take = |event: &mut OortEvent, raw: &RawValue| match string(raw) {
            Ok(Some(text)) => match Login::parse(&text) {
                Ok(login) => {
                    if seen.insert(login.folded()) {
                        event.users.push(login);
                    }
                }
                Err(why) => event.invalid.push(InvalidEntry {
                    entry: printable(&text),
                    reason: format!("not a valid login: {why}"),
                }),
            },
            Ok(None) => {}
            Err(()) => event.invalid.push(InvalidEntry {
                entry: printable(raw.get()),
                reason: format!("not a login but {}", type_name(raw)),
            }),
        };
        match users_failing {
            None => {}
            Some(raw) if is_null(raw) => {}
            Some(raw) => match serde_json::from_str::<Vec<&RawValue>>(raw.get()) {
                Ok(items) if starts_with(raw, b'[') => {
                    for item in items {
                        take(self, item);
                    }
                }
                _ => self.invalid.push(InvalidEntry {
                    entry: printable(raw.get()),
                    reason: format!(
                        "`detail.usersFailing` is {}, not an array of logins",
                        type_name(raw)
                    ),
                }),
            },
        }
        if let Some(raw) = login {
            take(self, raw);
        }
    }
}

/// The envelope's known fields, borrowed; everything else is skipped.
#[derive(Default)]
struct Envelope<'a> {
    id: Option<&'a RawValue>,
    detail_type: Option<&'a RawValue>,
    time: Option<&'a RawValue>,
    detail: Option<&'a RawValue>,
}

/// `detail`'s known fields, borrowed.
#[derive(Default)]
struct Detail<'a> {
    id: Option<&'a RawValue>,
    check_id: Option<&'a RawValue>,
    title: Option<&'a RawValue>,
    severity: Option<&'a RawValue>,
    published: Option<&'a RawValue>,
    users_failing: Option<&'a RawValue>,
    login: Option<&'a RawValue>,
    login_details: Option<&'a RawValue>,
}

/// Field names and where each goes: one table per object.
trait Known<'a>: Default {
    fn slot(&mut self, key: &str) -> Option<&mut Option<&'a RawValue>>;
}

impl<'a> Known<'a> for Envelope<'a> {
    fn slot(&mut self, key: &str) -> Option<&mut Option<&'a RawValue>> {
        match key {
            "id" => Some(&mut self.id),
            "detail-type" => Some(&mut self.detail_type),
            "time" => Some(&mut self.time),
            "detail" => Some(&mut self.detail),
            _ => None,
        }
    }
}

impl<'a> Known<'a> for Detail<'a> {
    fn slot(&mut self, key: &str) -> Option<&mut Option<&'a RawValue>> {
        match key {
            "id" => Some(&mut self.id),
            "checkId" => Some(&mut self.check_id),
            "title" => Some(&mut self.title),
            "severity" => Some(&mut self.severity),
            "published" => Some(&mut self.published),
            "usersFailing" => Some(&mut self.users_failing),
            "login" => Some(&mut self.login),
            "loginDetails" => Some(&mut self.login_details),
            _ => None,
        }
    }
}

/// A JSON object read field by field: known fields borrowed (the last of
/// duplicates wins, as in any JSON object reader), the rest skipped unread.
struct Fields<T>(T);

impl<'de: 'a, 'a, T: Known<'a>> serde::Deserialize<'de> for Fields<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);
        impl<'de: 'a, 'a, T: Known<'a>> Visitor<'de> for ObjectVisitor<T> {
            type Value = Fields<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Fields<T>, M::Error> {
                let mut known = T::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match known.slot(&key) {
                        Some(slot) => *slot = Some(map.next_value::<&'de RawValue>()?),
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Fields(known))
            }
        }
        deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData))
    }
}

fn parse_object<'a, T: Known<'a>>(body: &'a [u8], what: &str) -> Result<Fields<T>, EventError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first.is_some() && first != Some(b'{') {
        // Not an object: name what it is (the error path only).
        return match serde_json::from_slice::<Value>(body) {
            Ok(value) => Err(EventError(format!(
                "{what} must be a JSON object, not {}",
                value_type_name(&value)
            ))),
            Err(e) => Err(EventError(format!("{what} is not valid JSON: {e}"))),
        };
    }
    serde_json::from_slice(body).map_err(|e| EventError(format!("{what} is not valid JSON: {e}")))
}

/// A string field: `Ok(Some)`, `Ok(None)` for null, `Err` for another type.
fn string(raw: &RawValue) -> Result<Option<String>, ()> {
    if is_null(raw) {
        return Ok(None);
    }
    serde_json::from_str::<Cow<str>>(raw.get())
        .map(|s| Some(s.into_owned()))
        .map_err(|_| ())
}

/// An optional string field; another type is ignored and noted.
fn optional(ignored: &mut Vec<String>, field: &str, raw: Option<&RawValue>) -> Option<String> {
    let raw = raw?;
    match string(raw) {
        Ok(value) => value,
        Err(()) => {
            ignored.push(format!("`{field}` is {}, not a string", type_name(raw)));
            None
        }
    }
}

/// `loginDetails`: `[{"login": ..., "details": [{"key": "providersFailingChecks",
/// "value": "[\"...__OKTA__...\"]"}]}]`. Unreadable parts are skipped.
fn read_login_details(raw: &RawValue) -> Option<Vec<(String, Vec<String>)>> {
    #[derive(serde::Deserialize)]
    struct Entry {
        login: Option<String>,
        #[serde(default)]
        details: Vec<KeyValue>,
    }
    #[derive(serde::Deserialize)]
    struct KeyValue {
        key: Option<String>,
        value: Option<String>,
    }
    let entries: Vec<Value> = serde_json::from_str(raw.get()).ok()?;
    let mut out = Vec::new();
    for entry in entries {
        let Ok(Entry {
            login: Some(login),
            details,
        }) = serde_json::from_value::<Entry>(entry)
        else {
            continue;
        };
        let providers: Vec<String> = details
            .into_iter()
            .filter(|kv| kv.key.as_deref() == Some("providersFailingChecks"))
            .filter_map(|kv| kv.value)
            .flat_map(|v| serde_json::from_str::<Vec<String>>(&v).unwrap_or_default())
            .collect();
        out.push((login.trim().to_lowercase(), providers));
    }
    Some(out)
}

fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

fn starts_with(raw: &RawValue, byte: u8) -> bool {
    raw.get().as_bytes().first() == Some(&byte)
}

/// Untrusted text as one short printable line.
fn printable(text: &str) -> String {
    let escaped: String = text
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    let shown = if escaped.trim().is_empty() {
        format!("{escaped:?}")
    } else {
        escaped
    };
    if shown.chars().count() > ENTRY_CHARS {
        let mut cut: String = shown.chars().take(ENTRY_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        shown
    }
}

fn wrong_type(field: &str, expected: &str, got: &RawValue) -> EventError {
    EventError(format!(
        "`{field}` must be {expected}, not {}",
        type_name(got)
    ))
}

/// What kind of JSON value `raw` is, from its first byte.
fn type_name(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'"') => "a string",
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        _ => "a number",
    }
}

fn value_type_name(value: &Value) -> &'static str {
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
    fn bodies_that_are_not_envelopes_get_messages_a_sender_can_act_on() {
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
            ("\"x\"", "body must be a JSON object, not a string"),
            (r#"{"detail": {}}"#, "missing field `detail-type`"),
            (
                r#"{"detail-type": 3, "detail": {}}"#,
                "`detail-type` must be a string, not a number",
            ),
            (
                r#"{"detail-type": null, "detail": {}}"#,
                "`detail-type` must be a string, not null",
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
                r#"{"detail-type": "FAILED_CHECK", "detail": "x"}"#,
                "`detail` must be an object, not a string",
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(body).unwrap_err(), expected, "body: {body}");
        }
        assert!(
            parse("{")
                .unwrap_err()
                .starts_with("body is not valid JSON: EOF")
        );
    }

    #[test]
    fn an_envelope_is_always_an_event_and_odd_entries_are_kept_aside() {
        let event = parse(
            r#"{"id": 12, "time": 1730000000, "detail-type": "FAILED_CHECK", "detail": {
                "severity": 3, "title": {"x": 1}, "checkId": "no-mfa",
                "usersFailing": ["ok@example.com", "  ", 7, "a\nb", "", {"login": "x"}, "OK@example.com"],
                "login": ["also-wrong"]}}"#,
        )
        .unwrap();
        let users: Vec<&str> = event.users.iter().map(Login::as_str).collect();
        assert_eq!(users, ["ok@example.com"]);
        let invalid: Vec<(&str, &str)> = event
            .invalid
            .iter()
            .map(|i| (i.entry.as_str(), i.reason.as_str()))
            .collect();
        assert_eq!(
            invalid,
            [
                ("\"  \"", "not a valid login: it is empty"),
                ("7", "not a login but a number"),
                (
                    "a\\nb",
                    "not a valid login: it contains a control character"
                ),
                ("\"\"", "not a valid login: it is empty"),
                (r#"{"login": "x"}"#, "not a login but an object"),
                (r#"["also-wrong"]"#, "not a login but an array"),
            ]
        );
        assert_eq!(
            event.ignored,
            [
                "`id` is a number, not a string",
                "`time` is a number, not a string",
                "`detail.title` is an object, not a string",
                "`detail.severity` is a number, not a string",
            ]
        );
        assert_eq!((event.id, event.severity, event.title), (None, None, None));
        assert_eq!(event.check_id.as_deref(), Some("no-mfa"));
    }

    #[test]
    fn users_failing_of_the_wrong_type_is_one_invalid_entry() {
        let event =
            parse(r#"{"detail-type": "FAILED_CHECK", "detail": {"usersFailing": "a@b.co", "login": "c@d.co"}}"#)
                .unwrap();
        assert_eq!(event.users, [Login::parse("c@d.co").unwrap()]);
        assert_eq!(event.invalid.len(), 1);
        assert_eq!(
            event.invalid[0].reason,
            "`detail.usersFailing` is a string, not an array of logins"
        );
    }

    #[test]
    fn duplicate_fields_keep_the_last_and_unknown_ones_are_skipped() {
        let event = parse(
            r#"{"id": "a", "id": "b", "detail-type": "FAILED_CHECK", "extra": [1, {"deep": true}],
                "detail": {"title": "one", "title": "two", "frameworks": {"x": null}}}"#,
        )
        .unwrap();
        assert_eq!(event.id.as_deref(), Some("b"));
        assert_eq!(event.title.as_deref(), Some("two"));
        assert!(event.ignored.is_empty() && event.invalid.is_empty());
    }

    #[test]
    fn login_details_name_the_providers_that_failed() {
        let event = parse(
            r#"{"detail-type": "FAILED_CHECK", "detail": {"loginDetails": [
                {"login": "Ana.Lima@example.com", "details": [
                    {"key": "other", "value": "[\"ignored\"]"},
                    {"key": "providersFailingChecks", "value": "[\"providerFailingCheck-no-mfa-0f1e__OKTA__77aa\"]"}]},
                {"login": "li.wei@example.com", "details": [{"key": "providersFailingChecks", "value": "not json"}]},
                {"details": []}, 7]}}"#,
        )
        .unwrap();
        assert_eq!(
            event.login_details,
            Some(vec![
                (
                    "ana.lima@example.com".to_string(),
                    vec!["providerFailingCheck-no-mfa-0f1e__OKTA__77aa".to_string()]
                ),
                ("li.wei@example.com".to_string(), vec![]),
            ])
        );
        let none = parse(r#"{"detail-type": "FAILED_CHECK", "detail": {}}"#).unwrap();
        assert_eq!(none.login_details, None);
    }

    #[test]
    fn long_entries_are_cut_for_reports() {
        let long = "a".repeat(300);
        let body = format!(
            r#"{{"detail-type": "FAILED_CHECK", "detail": {{"usersFailing": ["{long}"]}}}}"#
        );
        let event = parse(&body).unwrap();
        assert!(event.users.is_empty());
        assert_eq!(event.invalid[0].entry.chars().count(), 80);
        assert!(event.invalid[0].reason.contains("longer than 256"));
    }

    #[test]
    fn overlong_logins_are_rejected() {
        assert!(
            Login::parse(&"a".repeat(MAX_LOGIN_CHARS + 1))
                .unwrap_err()
                .contains("longer than 256")
        );
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
