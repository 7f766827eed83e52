//! Posting to Slack: an incoming webhook or `chat.postMessage` with a bot
//! token, whichever the secret holds.
//!
//! A 429 is retried after its `Retry-After`, a 5xx or network error after a
//! short backoff, while the invocation has time; anything else fails at once
//! (a 4xx will not get better). The webhook URL is itself a credential, so
//! no error or log line ever contains it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use shared::secrets::{Cached, ExposeSecret, SecretError, SecretReader, SecretString};
use url::Url;

use crate::config::is_secure;
use crate::deadline::Deadline;
use crate::http::REQUEST_TIMEOUT;
use crate::retry::SLACK_ERRORS;
use crate::summary::SlackMessage;

const MAX_ATTEMPTS: u32 = 4;

/// Where messages go, as the secret says.
pub enum Destination {
    Webhook(SecretString),
    Bot {
        token: SecretString,
        channel: String,
    },
}

#[derive(Deserialize)]
struct SlackSecret {
    #[serde(rename = "webhookUrl", default)]
    webhook_url: Option<SecretString>,
    #[serde(rename = "botToken", default)]
    bot_token: Option<SecretString>,
    #[serde(default)]
    channel: Option<String>,
}

const SECRET_SHAPE: &str = r#"{"webhookUrl": "https://hooks.slack.com/services/..."} or {"botToken": "xoxb-...", "channel": "C..."}"#;

impl Destination {
    fn from_secret(secret_id: &str, secret: SlackSecret) -> Result<Destination, SecretError> {
        let malformed = |reason: &str| SecretError::Malformed {
            secret_id: secret_id.into(),
            reason: reason.into(),
        };
        match secret {
            SlackSecret {
                webhook_url: Some(url),
                ..
            } => {
                let parsed = Url::parse(url.expose_secret())
                    .map_err(|_| malformed("webhookUrl is not a URL"))?;
                if !is_secure(&parsed) {
                    return Err(malformed(
                        "webhookUrl must use https (http only for localhost)",
                    ));
                }
                Ok(Destination::Webhook(url))
            }
            SlackSecret {
                bot_token: Some(token),
                channel: Some(channel),
                ..
            } if !channel.trim().is_empty() => Ok(Destination::Bot {
                token,
                channel: channel.trim().to_string(),
            }),
            _ => Err(malformed(&format!(
                "expected JSON of the form {SECRET_SHAPE}"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Slack post failed: {0}")]
pub struct SlackError(pub String);

pub struct SlackClient {
    http: reqwest::Client,
    api_url: Url,
    reader: SecretReader,
    secret_id: String,
    destination: Cached<Destination>,
    /// Posts that failed (after their retries), for the metrics.
    failures: AtomicU64,
}

enum Attempt {
    Posted,
    RetryAfter(Duration, String),
    Retry(String),
    Fail(String),
}

impl SlackClient {
    /// A client over `http` ([`crate::http::client`]: it follows no
    /// redirect, since a redirect is never a post).
    pub fn new(
        http: reqwest::Client,
        api_url: Url,
        reader: SecretReader,
        secret_id: String,
        ttl: Duration,
    ) -> SlackClient {
        SlackClient {
            http,
            api_url,
            reader,
            secret_id,
            destination: Cached::new(ttl, Duration::from_secs(5)),
            failures: AtomicU64::new(0),
        }
    }

    /// Posts that failed since the last call (read and reset).
    pub fn take_failures(&self) -> u64 {
        self.failures.swap(0, Ordering::Relaxed)
    }

    async fn destination(&self) -> Result<Arc<Destination>, SlackError> {
        self.destination
            .get(|| async {
                let secret: SlackSecret =
                    self.reader.read_json(&self.secret_id, SECRET_SHAPE).await?;
                Destination::from_secret(&self.secret_id, secret)
            })
            .await
            .map_err(|e| SlackError(e.to_string()))
    }

    /// Posts `message`, retrying what may pass while `deadline` allows.
    pub async fn post(&self, message: &SlackMessage, deadline: Deadline) -> Result<(), SlackError> {
        let result = self.try_post(message, deadline).await;
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn try_post(&self, message: &SlackMessage, deadline: Deadline) -> Result<(), SlackError> {
        let destination = self.destination().await?;
        let mut last = String::new();
        for attempt in 1..=MAX_ATTEMPTS {
            let wait = match self.attempt(&destination, message, deadline).await {
                Attempt::Posted => return Ok(()),
                Attempt::Fail(reason) => return Err(SlackError(reason)),
                Attempt::RetryAfter(wait, reason) => {
                    last = reason;
                    wait
                }
                Attempt::Retry(reason) => {
                    last = reason;
                    SLACK_ERRORS.delay(attempt)
                }
            };
            tracing::warn!(attempt, retry_in_ms = wait.as_millis() as u64, reason = %last, "slack post will be retried");
            if attempt == MAX_ATTEMPTS || !deadline.sleep(wait).await {
                break;
            }
        }
        Err(SlackError(format!(
            "{last} (gave up: no attempts or time left)"
        )))
    }

    /// Posts `body` to a click's `response_url` (to rewrite the message that
    /// held the button, or to reply in its channel). Only Slack's own hosts
    /// (or a loopback stand-in) are posted to: the URL came through the queue.
    pub async fn respond(
        &self,
        response_url: &str,
        body: &serde_json::Value,
        deadline: Deadline,
    ) -> Result<(), SlackError> {
        let url = Url::parse(response_url)
            .ok()
            .filter(is_slack_url)
            .ok_or_else(|| SlackError("the response_url is not a Slack URL".into()))?;
        let mut last = String::new();
        for attempt in 1..=MAX_ATTEMPTS {
            let timeout = REQUEST_TIMEOUT.min(deadline.remaining());
            if timeout < Duration::from_millis(200) {
                break;
            }
            match self
                .http
                .post(url.clone())
                .json(body)
                .timeout(timeout)
                .send()
                .await
            {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let text: String = response
                        .text()
                        .await
                        .unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect();
                    let ok = text.trim() == "ok" || text.contains("\"ok\":true");
                    match status {
                        200 if ok || text.trim().is_empty() => return Ok(()),
                        429 | 500..=599 => last = format!("Slack's response_url answered {status}"),
                        _ => {
                            return Err(SlackError(format!(
                                "Slack's response_url answered {status} {}",
                                text.trim()
                            )));
                        }
                    }
                }
                Err(e) => last = format!("Slack could not be reached: {}", e.without_url()),
            }
            if !SLACK_ERRORS.wait(attempt, deadline).await {
                break;
            }
        }
        Err(SlackError(format!(
            "{last} (gave up: no attempts or time left)"
        )))
    }

    async fn attempt(
        &self,
        destination: &Destination,
        message: &SlackMessage,
        deadline: Deadline,
    ) -> Attempt {
        let timeout = REQUEST_TIMEOUT.min(deadline.remaining());
        if timeout < Duration::from_millis(200) {
            return Attempt::Fail("time ran out".into());
        }
        let request = match destination {
            Destination::Webhook(url) => {
                self.http.post(url.expose_secret()).json(&message.to_json())
            }
            Destination::Bot { token, channel } => {
                let mut body = message.to_json();
                body["channel"] = serde_json::Value::String(channel.clone());
                let url = format!(
                    "{}/chat.postMessage",
                    self.api_url.as_str().trim_end_matches('/')
                );
                self.http
                    .post(url)
                    .bearer_auth(token.expose_secret())
                    .json(&body)
            }
        };
        let response = match request.timeout(timeout).send().await {
            Ok(response) => response,
            // without_url: the webhook URL is a credential.
            Err(e) => {
                return Attempt::Retry(format!("Slack could not be reached: {}", e.without_url()));
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.text().await.unwrap_or_default();
        // Only error text is shortened; a success answer is parsed whole.
        let short: String = body.chars().take(200).collect();
        match (status, destination) {
            (429, _) => Attempt::RetryAfter(
                retry_after.unwrap_or(Duration::from_secs(1)),
                "Slack answered 429 (rate limited)".into(),
            ),
            (500..=599, _) => Attempt::Retry(format!("Slack answered {status} {short}")),
            (200, Destination::Webhook(_)) if body.trim() == "ok" => Attempt::Posted,
            (200, Destination::Bot { .. }) => {
                #[derive(Deserialize)]
                struct ApiAnswer {
                    ok: bool,
                    #[serde(default)]
                    error: Option<String>,
                }
                match serde_json::from_str::<ApiAnswer>(&body) {
                    Ok(ApiAnswer { ok: true, .. }) => Attempt::Posted,
                    Ok(ApiAnswer { error: Some(e), .. }) if e == "ratelimited" => {
                        Attempt::RetryAfter(
                            retry_after.unwrap_or(Duration::from_secs(1)),
                            "Slack answered ratelimited".into(),
                        )
                    }
                    Ok(ApiAnswer { error, .. }) => Attempt::Fail(format!(
                        "chat.postMessage answered {}",
                        error.unwrap_or_else(|| "ok: false".into())
                    )),
                    Err(_) => Attempt::Fail(format!(
                        "chat.postMessage answered something unreadable: {short}"
                    )),
                }
            }
            _ => Attempt::Fail(format!("Slack answered {status} {}", short.trim())),
        }
    }
}

/// `https://hooks.slack.com/...` or another `*.slack.com` host, or http to a
/// loopback address (the local stand-in).
fn is_slack_url(url: &Url) -> bool {
    match (url.scheme(), url.host_str()) {
        ("https", Some(host)) => host == "slack.com" || host.ends_with(".slack.com"),
        ("http", _) => crate::config::is_secure(url),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Destination, SecretError> {
        let secret: SlackSecret = shared::secrets::parse_secret_json("slack", json, SECRET_SHAPE)?;
        Destination::from_secret("slack", secret)
    }

    #[test]
    fn response_urls_must_be_slack_s() {
        for good in [
            "https://hooks.slack.com/actions/T1/1/x",
            "http://127.0.0.1:9/response/1",
        ] {
            assert!(is_slack_url(&Url::parse(good).unwrap()), "{good}");
        }
        for bad in [
            "https://evil.example.com/x",
            "https://slack.com.evil.io/x",
            "http://hooks.slack.com/x",
            "ftp://hooks.slack.com/x",
        ] {
            assert!(!is_slack_url(&Url::parse(bad).unwrap()), "{bad}");
        }
    }

    #[test]
    fn the_secret_holds_a_webhook_or_a_bot_token_and_channel() {
        assert!(matches!(
            parse(r#"{"webhookUrl": "https://hooks.slack.com/services/T/B/X"}"#),
            Ok(Destination::Webhook(_))
        ));
        assert!(matches!(
            parse(r#"{"webhookUrl": "http://127.0.0.1:9/services/x"}"#),
            Ok(Destination::Webhook(_))
        ));
        assert!(matches!(
            parse(r#"{"botToken": "xoxb-1", "channel": "C1"}"#),
            Ok(Destination::Bot { .. })
        ));
        for bad in [
            r#"{"botToken": "xoxb-1"}"#,
            r#"{}"#,
            r#"{"webhookUrl": "http://hooks.slack.com/services/T/B/SECRETX"}"#,
            r#"{"webhookUrl": "SECRETX"}"#,
        ] {
            let err = parse(bad).err().expect("rejected").to_string();
            assert!(!err.contains("SECRETX"), "the URL leaked: {err}");
            assert!(err.starts_with("secret slack is malformed"), "{err}");
        }
    }
}
