//! What the fake Okta's answers look like on the wire: Okta's error bodies,
//! the headers every response carries (`X-Okta-Request-Id`, `Date`,
//! `X-Rate-Limit-*`), the user and role-assignment objects, and Okta's
//! timestamp format.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::response::Response;
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use super::limits::RateHeaders;
use super::org::User;
use crate::http_stub::random_string;

const USER_TYPE_ID: &str = "oty1fakelocal0000000";
const REALM_ID: &str = "guo1fakelocal0000000";

/// What to send back, before headers are rendered.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) body: Option<Value>,
    pub(super) rate: RateHeaders,
    pub(super) extra: Vec<(HeaderName, String)>,
}

impl Answer {
    pub(super) fn json(status: StatusCode, body: Value, rate: RateHeaders) -> Self {
        Answer {
            status,
            body: Some(body),
            rate,
            extra: Vec::new(),
        }
    }
}

pub(super) fn no_content(rate: RateHeaders) -> Answer {
    Answer {
        status: StatusCode::NO_CONTENT,
        body: None,
        rate,
        extra: Vec::new(),
    }
}

/// 400 `E0000001`, Okta's validation error.
pub(super) fn validation_failed(summary: &str, causes: &[&str], rate: RateHeaders) -> Answer {
    Answer::json(
        StatusCode::BAD_REQUEST,
        error_body("E0000001", summary, causes),
        rate,
    )
}

pub(super) fn user_not_found(key: &str, rate: RateHeaders) -> Answer {
    Answer::json(
        StatusCode::NOT_FOUND,
        error_body(
            "E0000007",
            &format!("Not found: Resource not found: {key} (User)"),
            &[],
        ),
        rate,
    )
}

/// Okta's error object: `errorCode`, `errorSummary`, `errorLink`, `errorId`, `errorCauses`.
pub(super) fn error_body(code: &str, summary: &str, causes: &[&str]) -> Value {
    json!({
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": format!("oae{}", random_string(22)),
        "errorCauses": causes.iter().map(|c| json!({ "errorSummary": c })).collect::<Vec<_>>(),
    })
}

/// The HTTP response, with the headers every Okta answer carries.
pub(super) fn render(answer: Answer, now: SystemTime, request_id: &str) -> Response {
    let body = match &answer.body {
        Some(v) => Body::from(serde_json::to_vec(v).expect("JSON values serialise")),
        None => Body::empty(),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = answer.status;
    let h = resp.headers_mut();
    let mut put = |name: HeaderName, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.append(name, v);
        }
    };
    put(header::DATE, httpdate::fmt_http_date(now));
    put(
        HeaderName::from_static("x-okta-request-id"),
        request_id.to_string(),
    );
    put(
        HeaderName::from_static("x-rate-limit-limit"),
        answer.rate.limit.to_string(),
    );
    put(
        HeaderName::from_static("x-rate-limit-remaining"),
        answer.rate.remaining.to_string(),
    );
    put(
        HeaderName::from_static("x-rate-limit-reset"),
        answer.rate.reset.to_string(),
    );
    put(header::CACHE_CONTROL, "no-cache, no-store".to_string());
    if answer.body.is_some() {
        put(header::CONTENT_TYPE, "application/json".to_string());
    }
    for (name, value) in answer.extra {
        put(name, value);
    }
    resp
}

/// Request headers as the journal keeps them: credentials redacted.
pub(super) fn recorded_headers(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            let value = if name == header::AUTHORIZATION {
                match value.split_once(' ') {
                    Some((scheme, _)) => format!("{scheme} [redacted]"),
                    None => "[redacted]".to_string(),
                }
            } else if name.as_str() == "dpop" {
                // A proof is a credential too (for a minute or so).
                "[redacted]".to_string()
            } else {
                value
            };
            (name.as_str().to_string(), value)
        })
        .collect()
}

pub(super) fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(super) fn okta_time(t: SystemTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from(t)
        .format(&fmt)
        .unwrap_or_default()
}

/// A user object as `GET /api/v1/users/{id}` returns it.
pub(super) fn user_json(base: &str, u: &User) -> Value {
    let s = &u.state;
    let me = format!("{base}/api/v1/users/{}", s.id);
    let link =
        |action: &str| json!({ "href": format!("{me}/lifecycle/{action}"), "method": "POST" });
    let mut links = serde_json::Map::new();
    links.insert("self".into(), json!({ "href": me }));
    links.insert(
        "schema".into(),
        json!({ "href": format!("{base}/api/v1/meta/schemas/user/osc1fakelocal") }),
    );
    links.insert(
        "type".into(),
        json!({ "href": format!("{base}/api/v1/meta/types/user/{USER_TYPE_ID}") }),
    );
    match s.status.as_str() {
        "ACTIVE" => {
            links.insert("suspend".into(), link("suspend"));
            links.insert("resetPassword".into(), link("reset_password"));
            links.insert("expirePassword".into(), link("expire_password"));
            links.insert("deactivate".into(), link("deactivate"));
        }
        "SUSPENDED" => {
            links.insert("unsuspend".into(), link("unsuspend"));
            links.insert("deactivate".into(), link("deactivate"));
        }
        "DEPROVISIONED" | "STAGED" => {
            links.insert("activate".into(), link("activate"));
        }
        "LOCKED_OUT" => {
            links.insert("unlock".into(), link("unlock"));
            links.insert("deactivate".into(), link("deactivate"));
        }
        _ => {
            links.insert("deactivate".into(), link("deactivate"));
        }
    }
    let activated = match s.status.as_str() {
        "STAGED" | "PROVISIONED" => Value::Null,
        _ => json!(okta_time(s.created + Duration::from_secs(1))),
    };
    json!({
        "id": s.id,
        "status": s.status,
        "created": okta_time(s.created),
        "activated": activated,
        "statusChanged": s.status_changed.map(okta_time),
        "lastLogin": null,
        "lastUpdated": okta_time(s.last_updated),
        "passwordChanged": null,
        "realmId": REALM_ID,
        "type": { "id": USER_TYPE_ID },
        "profile": {
            "firstName": s.first_name,
            "lastName": s.last_name,
            "mobilePhone": null,
            "secondEmail": null,
            "login": s.login,
            "email": s.email,
        },
        "credentials": {
            "password": {},
            "emails": [{ "value": s.email, "status": "VERIFIED", "type": "PRIMARY" }],
            "provider": { "type": "OKTA", "name": "OKTA" },
        },
        "_links": links,
    })
}

fn role_label(role: &str) -> String {
    match role {
        "SUPER_ADMIN" => "Super Administrator",
        "ORG_ADMIN" => "Organizational Administrator",
        "APP_ADMIN" => "Application Administrator",
        "USER_ADMIN" => "Group Administrator",
        "HELP_DESK_ADMIN" => "Help Desk Administrator",
        "READ_ONLY_ADMIN" => "Read Only Administrator",
        "MOBILE_ADMIN" => "Mobile Administrator",
        "API_ACCESS_MANAGEMENT_ADMIN" => "API Access Management Administrator",
        "REPORT_ADMIN" => "Report Administrator",
        "GROUP_MEMBERSHIP_ADMIN" => "Group Membership Administrator",
        other => other,
    }
    .to_string()
}

/// The role assignments `GET /api/v1/users/{userId}/roles` returns.
pub(super) fn roles_json(base: &str, u: &User) -> Value {
    let s = &u.state;
    let created = okta_time(s.created);
    Value::Array(
        s.admin_roles
            .iter()
            .zip(&u.role_ids)
            .map(|(role, id)| {
                json!({
                    "id": id,
                    "label": role_label(role),
                    "type": role,
                    "status": "ACTIVE",
                    "created": created,
                    "lastUpdated": created,
                    "assignmentType": "USER",
                    "_links": { "assignee": { "href": format!("{base}/api/v1/users/{}", s.id) } },
                })
            })
            .collect(),
    )
}
