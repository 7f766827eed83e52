//! Oort webhook bodies for tests, benchmarks and the local pipeline (feature
//! `test-util`): one builder, shaped like the samples in `events/`, so that a
//! new Oort field is added in one place.
//!
//! ```
//! use shared::testing::OortBody;
//! let body = OortBody::failed_check("evt-1", &["ana.lima@example.com"])
//!     .severity("high")
//!     .check("dormant-admin", "Dormant admin")
//!     .to_string();
//! assert!(body.contains(r#""checkId":"dormant-admin""#));
//! ```

use serde_json::{Value, json};

use crate::event::OortEvent;

/// An Oort webhook body (the EventBridge-shaped envelope Oort posts).
#[derive(Debug, Clone, PartialEq)]
pub struct OortBody(Value);

impl OortBody {
    /// An envelope of kind `detail_type` (`FAILED_CHECK`, `WebhookTest`, ...)
    /// whose check `no-mfa` ("No MFA Configured", critical) fails for `users`.
    pub fn new<S: AsRef<str>>(detail_type: &str, id: &str, users: &[S]) -> OortBody {
        let users: Vec<&str> = users.iter().map(AsRef::as_ref).collect();
        OortBody(json!({
            "version": "0",
            "id": id,
            "detail-type": detail_type,
            "source": "oort",
            "account": "111122223333",
            "time": "2026-11-02T08:15:00Z",
            "region": "us-east-2",
            "resources": [],
            "detail": {
                "id": format!("finding-{id}"),
                "checkId": "no-mfa",
                "title": "No MFA Configured",
                "severity": "critical",
                "published": "2026-11-02T08:15:00.123Z",
                "usersFailing": users,
            }
        }))
    }

    /// A `FAILED_CHECK` naming `users`.
    pub fn failed_check<S: AsRef<str>>(id: &str, users: &[S]) -> OortBody {
        OortBody::new("FAILED_CHECK", id, users)
    }

    /// Oort's connectivity test (it lists a user, who must never be acted on).
    pub fn webhook_test(id: &str) -> OortBody {
        OortBody::new("WebhookTest", id, &["ana.lima@example.com"])
    }

    /// `count` users `user000@example.com`, `user001@...`, ...
    pub fn numbered_users(count: usize) -> Vec<String> {
        (0..count)
            .map(|i| format!("user{i:03}@example.com"))
            .collect()
    }

    /// The check that failed.
    pub fn check(mut self, check_id: &str, title: &str) -> OortBody {
        self.0["detail"]["checkId"] = json!(check_id);
        self.0["detail"]["title"] = json!(title);
        self
    }

    pub fn severity(mut self, severity: &str) -> OortBody {
        self.0["detail"]["severity"] = json!(severity);
        self
    }

    /// The envelope's `source` (the Oort tenant).
    pub fn source(mut self, source: &str) -> OortBody {
        self.0["source"] = json!(source);
        self
    }

    /// `loginDetails` saying each failing user failed the check on
    /// `provider` (for example `OKTA`), as Oort writes it.
    pub fn failing_on(mut self, provider: &str) -> OortBody {
        let details: Vec<Value> = self.0["detail"]["usersFailing"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|login| {
                let value = json!([format!("providerFailingCheck-x__{provider}__y")]).to_string();
                json!({"login": login, "details": [{"key": "providersFailingChecks", "value": value}]})
            })
            .collect();
        self.0["detail"]["loginDetails"] = Value::Array(details);
        self
    }

    /// Sets a field of `detail` to any JSON value (also a wrongly typed one).
    pub fn detail_field(mut self, name: &str, value: Value) -> OortBody {
        self.0["detail"][name] = value;
        self
    }

    /// Sets a field of the envelope to any JSON value.
    pub fn field(mut self, name: &str, value: Value) -> OortBody {
        self.0[name] = value;
        self
    }

    pub fn json(&self) -> &Value {
        &self.0
    }

    pub fn into_json(self) -> Value {
        self.0
    }

    /// The event as the dispatcher parses it.
    pub fn parse(&self) -> OortEvent {
        OortEvent::parse(self.to_string().as_bytes()).expect("a test body is a valid event")
    }
}

impl std::fmt::Display for OortBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<OortBody> for Value {
    fn from(body: OortBody) -> Value {
        body.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_body_parses_as_the_event_it_describes() {
        let body = OortBody::failed_check("e-1", &["a@example.com", "b@example.com"])
            .severity("high")
            .check("dormant-admin", "Dormant <admin>")
            .failing_on("OKTA");
        let event = body.parse();
        assert_eq!(event.id.as_deref(), Some("e-1"));
        assert_eq!(event.severity.as_deref(), Some("high"));
        assert_eq!(event.check_id.as_deref(), Some("dormant-admin"));
        assert_eq!(event.title.as_deref(), Some("Dormant <admin>"));
        assert_eq!(event.users.len(), 2);
        let details = event.login_details.expect("loginDetails");
        assert!(
            details[1].1.iter().any(|p| p.contains("__OKTA__")),
            "{details:?}"
        );
        assert_eq!(
            body.json()["detail"]["loginDetails"][1]["login"],
            "b@example.com"
        );
    }
}
