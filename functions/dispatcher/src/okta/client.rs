//! A small client for the Okta Management API calls the dispatcher makes.
//!
//! It owns what every call needs: the SSWS token (from Secrets Manager,
//! cached, re-read once when Okta refuses it), a request timeout, rate-limit
//! pacing and 429 waits, bounded retries with jittered backoff for 5xx and
//! network errors, the invocation's deadline, and one JSON log line per call
//! with `X-Okta-Request-Id`. What an answer *means* is for the caller
//! ([`crate::lockout`]): this module only returns it.

use std::time::Duration;

use http::Method;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::Rng;
use serde::Deserialize;
use shared::secrets::{Cached, ExposeSecret, SecretReader, SecretString};
use url::Url;

use crate::deadline::Deadline;
use crate::rate_limit::{Pacer, RateInfo, wait_after_429};

/// One request never waits longer than this for Okta.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts for one call answered 429.
pub const MAX_RATE_LIMITED_ATTEMPTS: u32 = 4;
/// Attempts for one call answered 5xx or lost to the network.
pub const MAX_ERROR_ATTEMPTS: u32 = 3;

/// Characters left as they are in a path segment: RFC 3986 unreserved, and
/// `@` (logins are mostly emails). Everything else is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');
/// Characters left as they are in a query value: unreserved only (`+` must
/// travel as `%2B`, spaces as `%20`).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The calls, named for logs and used as rate-limit buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    GetUser,
    SearchUsers,
    ListRoles,
    Suspend,
    ClearSessions,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::GetUser => "get user",
            Operation::SearchUsers => "search users",
            Operation::ListRoles => "list admin roles",
            Operation::Suspend => "suspend",
            Operation::ClearSessions => "clear sessions",
        }
    }
}

/// A login or id as one path segment, or `None` when it cannot travel in a
/// path at all (`/` is not decoded by Okta, and `.`/`..` are path steps).
pub fn path_segment(text: &str) -> Option<String> {
    if text.contains('/') || text == "." || text == ".." {
        return None;
    }
    Some(utf8_percent_encode(text, SEGMENT).to_string())
}

/// An Okta search expression `<attribute> eq "<value>"`, with the value's
/// `\` and `"` escaped so it stays one string, URL-encoded whole.
pub fn search_query(attribute: &str, value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    let expression = format!("{attribute} eq \"{escaped}\"");
    format!("search={}", utf8_percent_encode(&expression, QUERY_VALUE))
}

/// One call, with who it is for (for the log line).
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub operation: Operation,
    pub method: Method,
    /// Path and query, already encoded, e.g. `/api/v1/users/ana%40x`.
    pub path: String,
    pub event_id: &'a str,
    pub user: &'a str,
}

/// Okta's answer (any status but 429, 5xx and a refused token, which are
/// handled here).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub request_id: Option<String>,
}

/// Okta's error body.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OktaError {
    #[serde(rename = "errorCode", default)]
    pub code: Option<String>,
    #[serde(rename = "errorSummary", default)]
    pub summary: Option<String>,
    #[serde(rename = "errorCauses", default)]
    pub causes: Vec<OktaErrorCause>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct OktaErrorCause {
    #[serde(rename = "errorSummary", default)]
    pub summary: Option<String>,
}

impl Answer {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, CallError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| CallError::Transient(format!("Okta's answer could not be read: {e}")))
    }

    pub fn error(&self) -> OktaError {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    /// `403 E0000006: You do not have permission… (cause)` for reports.
    pub fn describe(&self) -> String {
        let error = self.error();
        let mut text = format!("Okta answered {}", self.status);
        if let Some(code) = &error.code {
            text.push_str(&format!(" {code}"));
        }
        if let Some(summary) = &error.summary {
            text.push_str(&format!(": {summary}"));
        }
        let causes: Vec<&str> = error
            .causes
            .iter()
            .filter_map(|c| c.summary.as_deref())
            .collect();
        if !causes.is_empty() {
            text.push_str(&format!(" ({})", causes.join("; ")));
        }
        text
    }
}

/// Why a call has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// May succeed on a later delivery: rate limit, outage, time running out.
    #[error("{0}")]
    Transient(String),
}

#[derive(Deserialize)]
struct OktaCredential {
    #[serde(rename = "apiToken")]
    api_token: SecretString,
}

pub struct OktaClient {
    http: reqwest::Client,
    base: Url,
    reader: SecretReader,
    secret_id: String,
    token: Cached<SecretString>,
    pacer: Pacer,
}

impl OktaClient {
    /// `concurrency` sizes the reserve kept in each rate-limit window.
    pub fn new(
        base: Url,
        reader: SecretReader,
        secret_id: String,
        ttl: Duration,
        concurrency: usize,
    ) -> OktaClient {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .user_agent(concat!("oort-okta-lockout/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("static client settings are valid");
        OktaClient {
            http,
            base,
            reader,
            secret_id,
            token: Cached::new(ttl, Duration::from_secs(5)),
            pacer: Pacer::new(concurrency as u64 + 1),
        }
    }

    async fn api_token(&self) -> Result<std::sync::Arc<SecretString>, CallError> {
        self.token
            .get(|| async {
                let credential: OktaCredential = self
                    .reader
                    .read_json(&self.secret_id, r#"{"apiToken": "..."}"#)
                    .await?;
                Ok(credential.api_token)
            })
            .await
            .map_err(|e| CallError::Transient(e.to_string()))
    }

    /// Sends `call`, waiting out rate limits and retrying what may pass,
    /// all within `deadline`.
    pub async fn send(&self, call: &Call<'_>, deadline: Deadline) -> Result<Answer, CallError> {
        let url = format!("{}{}", self.base.as_str().trim_end_matches('/'), call.path);
        let bucket = call.operation.name();
        let out_of_time = || {
            CallError::Transient(format!(
                "time ran out before Okta could {}",
                call.operation.name()
            ))
        };
        let mut attempt = 0u32;
        let mut rate_limited = 0u32;
        let mut failed = 0u32;
        let mut refreshed_token = false;
        let mut retry_for: Option<String> = None;
        loop {
            attempt += 1;
            if let Some(pause) = self.pacer.before_request(bucket) {
                tracing::info!(
                    event_id = call.event_id,
                    user = call.user,
                    operation = bucket,
                    pause_ms = pause.as_millis() as u64,
                    "pausing for Okta's rate limit window"
                );
                if !deadline.sleep(pause).await {
                    return Err(out_of_time());
                }
            }
            let timeout = REQUEST_TIMEOUT.min(deadline.remaining());
            if timeout < Duration::from_millis(200) {
                return Err(out_of_time());
            }
            let token = self.api_token().await?;
            let mut request = self
                .http
                .request(call.method.clone(), &url)
                .header(
                    http::header::AUTHORIZATION,
                    format!("SSWS {}", token.expose_secret()),
                )
                .header(http::header::ACCEPT, "application/json")
                .timeout(timeout);
            if let Some(id) = &retry_for {
                request = request
                    .header("X-Okta-Retry-For", id)
                    .header("X-Okta-Retry-Count", (attempt - 1).to_string());
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => {
                    failed += 1;
                    let reason = format!(
                        "Okta could not be reached to {}: {}",
                        bucket,
                        e.without_url()
                    );
                    tracing::warn!(event_id = call.event_id, user = call.user, operation = bucket, attempt, error = %reason, "okta call failed");
                    if failed >= MAX_ERROR_ATTEMPTS || !deadline.sleep(backoff(failed)).await {
                        return Err(CallError::Transient(reason));
                    }
                    continue;
                }
            };
            let status = response.status().as_u16();
            let info = RateInfo::from_headers(response.headers());
            self.pacer.observe(bucket, &info);
            let request_id = response
                .headers()
                .get("x-okta-request-id")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let body = match response.bytes().await {
                Ok(body) => body.to_vec(),
                Err(e) => {
                    failed += 1;
                    let reason = format!(
                        "Okta's answer to {} was cut off: {}",
                        bucket,
                        e.without_url()
                    );
                    if failed >= MAX_ERROR_ATTEMPTS || !deadline.sleep(backoff(failed)).await {
                        return Err(CallError::Transient(reason));
                    }
                    continue;
                }
            };
            tracing::info!(
                event_id = call.event_id,
                user = call.user,
                operation = bucket,
                method = %call.method,
                status,
                okta_request_id = request_id.as_deref().unwrap_or_default(),
                attempt,
                rate_limit_remaining = info.remaining,
                "okta call"
            );
            let answer = Answer {
                status,
                body,
                request_id,
            };
            match status {
                429 => {
                    rate_limited += 1;
                    let wait = wait_after_429(&info, rate_limited, jitter());
                    if rate_limited >= MAX_RATE_LIMITED_ATTEMPTS {
                        return Err(CallError::Transient(format!(
                            "Okta's rate limit: still limited after {rate_limited} attempts to {bucket}"
                        )));
                    }
                    if !deadline.sleep(wait).await {
                        return Err(CallError::Transient(format!(
                            "Okta's rate limit: the window resets too late for this invocation ({bucket})"
                        )));
                    }
                    retry_for = answer.request_id.clone().or(retry_for);
                }
                500 | 502 | 503 | 504 => {
                    failed += 1;
                    if failed >= MAX_ERROR_ATTEMPTS || !deadline.sleep(backoff(failed)).await {
                        return Err(CallError::Transient(format!(
                            "{} (after {failed} attempts to {bucket})",
                            answer.describe()
                        )));
                    }
                    retry_for = answer.request_id.clone().or(retry_for);
                }
                401 if !refreshed_token => {
                    // The token may have been rotated since it was cached.
                    refreshed_token = true;
                    self.token.invalidate().await;
                }
                401 => {
                    return Err(CallError::Transient(format!(
                        "{}: the API token in secret {} was refused",
                        answer.describe(),
                        self.secret_id
                    )));
                }
                _ => return Ok(answer),
            }
        }
    }
}

/// Exponential backoff with jitter: about 0.2 s, 0.4 s, 0.8 s, ...
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(200 * 2u64.pow(failures.saturating_sub(1).min(5))) + jitter()
}

fn jitter() -> Duration {
    Duration::from_millis(rand::rng().random_range(0..=250))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_travel_as_one_path_segment() {
        assert_eq!(
            path_segment("ana.lima@example.com").as_deref(),
            Some("ana.lima@example.com")
        );
        assert_eq!(
            path_segment("a?b#c d%e+f").as_deref(),
            Some("a%3Fb%23c%20d%25e%2Bf")
        );
        assert_eq!(path_segment("quote\"me").as_deref(), Some("quote%22me"));
        assert_eq!(path_segment("..x").as_deref(), Some("..x"));
        for unsafe_login in ["a/b", "..", ".", "../admin"] {
            assert_eq!(path_segment(unsafe_login), None, "{unsafe_login}");
        }
    }

    #[test]
    fn search_values_are_escaped_and_encoded() {
        assert_eq!(
            search_query("profile.email", "ana+x@example.com"),
            "search=profile.email%20eq%20%22ana%2Bx%40example.com%22"
        );
        let q = search_query("profile.login", r#"a" or profile.login sw "\"#);
        let decoded = percent_encoding::percent_decode_str(q.trim_start_matches("search="))
            .decode_utf8()
            .unwrap();
        assert_eq!(
            decoded,
            r#"profile.login eq "a\" or profile.login sw \"\\""#
        );
    }

    #[test]
    fn error_answers_are_described_for_people() {
        let answer = Answer {
            status: 400,
            body: br#"{"errorCode":"E0000001","errorSummary":"Api validation failed: suspendUser","errorCauses":[{"errorSummary":"Cannot suspend a user that is not active"}]}"#.to_vec(),
            request_id: None,
        };
        assert_eq!(
            answer.describe(),
            "Okta answered 400 E0000001: Api validation failed: suspendUser (Cannot suspend a user that is not active)"
        );
        assert_eq!(
            Answer {
                status: 502,
                body: b"<html>".to_vec(),
                request_id: None
            }
            .describe(),
            "Okta answered 502"
        );
    }
}
