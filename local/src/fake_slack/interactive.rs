//! A person clicking a button, as Slack delivers the click to the app.
//!
//! [`FakeSlack::click`] takes a message the fake received and a [`Click`]:
//!
//! 1. finds the button ([`find_button`]): an element of type `button` with
//!    the `action_id`, in an `actions` block or as a section's `accessory`;
//!    for Unsuspend also the login (`l`) in its JSON `value`;
//! 2. builds the `block_actions` payload Slack sends: `type`, `user`
//!    (`id` is the clicker), `api_app_id`, `team`, `channel`, `container`,
//!    the `message` (with its `ts`), `response_url` (a fresh one on this
//!    server), `trigger_id` and
//!    `actions: [{type: "button", action_id, block_id, text, value, action_ts}]`;
//! 3. form-encodes it (`payload=<URL-encoded JSON>`) and signs it as Slack
//!    does ([`slack_signature`]: `v0=` + hex HMAC-SHA256 of
//!    `v0:<timestamp>:<body>` with the signing secret), computed here with
//!    ring, independently of the actions function's own code;
//! 4. POSTs it to the app's Request URL with `X-Slack-Request-Timestamp` and
//!    `X-Slack-Signature`, as `application/x-www-form-urlencoded` (a function
//!    URL delivers such a body base64-encoded), and records the answer.
//!
//! A [`Tamper`] makes the request one Slack would never send.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::hmac;
use serde_json::{Value, json};

use super::response_url::{Issued, ResponsePost};
use super::{APP_ID, CHANNEL_NAME, FakeSlack, RESPONSE_URL_PREFIX, SlackMessage, TEAM_ID};
use crate::http_stub::{random_hex, random_string};
use crate::lock;

/// The Slack app whose buttons the fake clicks: where clicks go and what they
/// are signed with.
#[derive(Clone)]
pub struct SlackApp {
    /// The app's Request URL (the actions function URL).
    pub request_url: String,
    /// The app's signing secret.
    pub signing_secret: String,
    /// `api_app_id` in the payloads ([`APP_ID`] by default).
    pub app_id: String,
    /// `team.id` in the payloads ([`TEAM_ID`] by default).
    pub team_id: String,
}

impl SlackApp {
    pub fn new(request_url: &str, signing_secret: &str) -> SlackApp {
        SlackApp {
            request_url: request_url.to_string(),
            signing_secret: signing_secret.to_string(),
            app_id: APP_ID.to_string(),
            team_id: TEAM_ID.to_string(),
        }
    }
}

impl std::fmt::Debug for SlackApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackApp")
            .field("request_url", &self.request_url)
            .field("app_id", &self.app_id)
            .field("team_id", &self.team_id)
            .finish_non_exhaustive()
    }
}

/// How a click is tampered with: requests Slack would never send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// Signed with another secret.
    WrongSecret,
    /// Signed correctly, but with a timestamp 10 minutes old.
    StaleTimestamp,
    /// Signed over the genuine body, but the body sent claims another
    /// clicker (`user.id`): a signature over a different body.
    BodyChanged { user_id: String },
    /// No `X-Slack-Signature` header at all.
    NoSignature,
}

/// Who clicks which button.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Click {
    /// The button's `action_id`: `approve`, `dismiss`, `unsuspend`.
    pub action_id: String,
    /// For Unsuspend and Release: the login the button's value names.
    pub login: Option<String>,
    /// The clicker's Slack user id (`user.id`).
    pub user_id: String,
    /// The clicker's display name (`user.username`; display data only).
    pub username: String,
    pub tamper: Option<Tamper>,
}

impl Click {
    /// A click on the button with `action_id` by `user_id`.
    pub fn new(action_id: &str, user_id: &str) -> Click {
        Click {
            action_id: action_id.to_string(),
            login: None,
            user_id: user_id.to_string(),
            username: user_id.to_ascii_lowercase(),
            tamper: None,
        }
    }

    pub fn approve(user_id: &str) -> Click {
        Click::new("approve", user_id)
    }

    pub fn dismiss(user_id: &str) -> Click {
        Click::new("dismiss", user_id)
    }

    /// The Unsuspend button of `login`.
    pub fn unsuspend(login: &str, user_id: &str) -> Click {
        Click {
            login: Some(login.to_string()),
            ..Click::new("unsuspend", user_id)
        }
    }

    /// The Release button of `login` (out of the quarantine group).
    pub fn release(login: &str, user_id: &str) -> Click {
        Click {
            login: Some(login.to_string()),
            ..Click::new("release", user_id)
        }
    }

    pub fn tampered(mut self, tamper: Tamper) -> Click {
        self.tamper = Some(tamper);
        self
    }
}

/// The request a click sent, byte for byte (for [`FakeSlack::replay`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRequest {
    /// `X-Slack-Request-Timestamp`.
    pub timestamp: String,
    /// `X-Slack-Signature`; `None` when left out.
    pub signature: Option<String>,
    /// The form-encoded body: `payload=<URL-encoded JSON>`.
    pub body: String,
}

/// A click and how the app answered it.
#[derive(Clone, Debug)]
pub struct ClickOutcome {
    pub click: Click,
    /// The `block_actions` payload (as signed: before any [`Tamper::BodyChanged`]).
    pub payload: Value,
    /// The click's response URL on this server.
    pub response_url: String,
    /// The `ts` of the message whose button was clicked.
    pub message_ts: String,
    pub request: SignedRequest,
    /// The HTTP status of the app's answer.
    pub status: u16,
    /// The answer's body: JSON when it is JSON, else a string.
    pub answer: Value,
}

impl ClickOutcome {
    /// The answer's `text`: what the clicker reads (ephemeral) for a 200.
    pub fn text(&self) -> Option<&str> {
        self.answer.get("text").and_then(Value::as_str)
    }

    /// The answer's `error`, for a rejected request.
    pub fn error(&self) -> Option<&str> {
        self.answer.get("error").and_then(Value::as_str)
    }

    /// What the answer shows, in one line: the text, the error, or the body.
    pub fn summary(&self) -> String {
        match (self.text(), self.error()) {
            (Some(text), _) => text.to_string(),
            (None, Some(error)) => format!("error: {error}"),
            (None, None) => match &self.answer {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
        }
    }
}

/// Why a click could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum ClickError {
    #[error("the fake Slack knows no app to send clicks to (FakeSlack::set_app)")]
    NoApp,
    #[error("no {0} button in the message")]
    NoButton(String),
    #[error("the click could not be sent to {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

/// A button found in a message.
#[derive(Clone, Debug, PartialEq)]
pub struct FoundButton {
    /// The block's `block_id` (Slack makes one up when the block has none).
    pub block_id: Option<String>,
    /// The button element as posted.
    pub element: Value,
}

/// The login an Unsuspend button's value names (`{"e":...,"u":...,"l":...}`).
fn value_login(element: &Value) -> Option<String> {
    let value = element.get("value")?.as_str()?;
    let value: Value = serde_json::from_str(value).ok()?;
    value.get("l")?.as_str().map(str::to_string)
}

/// The button with `action_id` in `message` (for `login`: the one whose
/// value names that login): an `actions` block's element or a section's
/// `accessory`, in block order.
pub fn find_button(message: &Value, action_id: &str, login: Option<&str>) -> Option<FoundButton> {
    let blocks = message.get("blocks").and_then(Value::as_array)?;
    for block in blocks {
        let elements: Vec<&Value> = match block.get("type").and_then(Value::as_str) {
            Some("actions") => block
                .get("elements")
                .and_then(Value::as_array)
                .map(|e| e.iter().collect())
                .unwrap_or_default(),
            Some("section") => block.get("accessory").into_iter().collect(),
            _ => Vec::new(),
        };
        for element in elements {
            let is_it = element.get("type").and_then(Value::as_str) == Some("button")
                && element.get("action_id").and_then(Value::as_str) == Some(action_id)
                && login.is_none_or(|l| {
                    value_login(element).is_some_and(|v| v.eq_ignore_ascii_case(l))
                });
            if is_it {
                return Some(FoundButton {
                    block_id: block
                        .get("block_id")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    element: element.clone(),
                });
            }
        }
    }
    None
}

/// `v0=<hex of HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)>`: Slack's
/// `X-Slack-Signature`.
pub fn slack_signature(signing_secret: &str, timestamp: &str, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, signing_secret.as_bytes());
    let base = format!("v0:{timestamp}:{body}");
    let tag = hmac::sign(&key, base.as_bytes());
    format!("v0={}", hex::encode(tag.as_ref()))
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// `payload=<URL-encoded JSON>`, as Slack sends it.
fn form_body(payload: &Value) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

/// Slack's `trigger_id`: `<digits>.<digits>.<32 hex>`.
fn trigger_id() -> String {
    format!(
        "{}.{}.{}",
        rand::random::<u32>() % 9_000_000 + 1_000_000,
        rand::random::<u64>() % 900_000_000_000 + 100_000_000_000,
        random_hex(16)
    )
}

impl FakeSlack {
    /// The app whose buttons are clicked from now on.
    pub fn set_app(&self, app: SlackApp) {
        lock(&self.shared.state).app = Some(app);
    }

    /// The app clicks go to, if set.
    pub fn app(&self) -> Option<SlackApp> {
        lock(&self.shared.state).app.clone()
    }

    /// A new response URL for a click on the message `ts` in `channel`.
    fn issue_response_url(&self, channel: &str, ts: &str) -> String {
        let mut st = lock(&self.shared.state);
        let n = st.responses.len() + 1;
        let path = format!(
            "{RESPONSE_URL_PREFIX}{TEAM_ID}/{}{n:03}/{}",
            rand::random::<u32>() % 9_000_000 + 1_000_000,
            random_string(24)
        );
        let url = format!("{}{path}", self.shared.base_url);
        st.responses
            .push(Issued::new(url.clone(), path, channel.into(), ts.into()));
        url
    }

    /// Clicks a button of `message` (one this fake received: it carries its
    /// channel and `ts`) and returns the app's answer. The button is looked
    /// up in `message.message` as given: pass [`FakeSlack::message`] to click
    /// what the channel shows now.
    pub async fn click(
        &self,
        message: &SlackMessage,
        click: &Click,
    ) -> Result<ClickOutcome, ClickError> {
        let app = self.app().ok_or(ClickError::NoApp)?;
        let label = match &click.login {
            Some(login) => format!("{} ({login})", click.action_id),
            None => click.action_id.clone(),
        };
        let button = find_button(&message.message, &click.action_id, click.login.as_deref())
            .ok_or(ClickError::NoButton(label))?;
        let response_url = self.issue_response_url(&message.channel, &message.ts);
        let now = unix_now();
        let action_ts = format!("{}.{:06}", now.as_secs(), now.subsec_micros());
        let mut action = json!({
            "type": "button",
            "action_id": click.action_id,
            "block_id": button.block_id.clone().unwrap_or_else(|| random_string(5)),
            "text": button.element.get("text").cloned().unwrap_or(Value::Null),
            "value": button.element.get("value").cloned().unwrap_or(Value::Null),
            "action_ts": action_ts,
        });
        if let Some(style) = button.element.get("style") {
            action["style"] = style.clone();
        }
        let mut shown = json!({
            "type": "message",
            "subtype": "bot_message",
            "text": message.message.get("text").cloned().unwrap_or(json!("")),
            "ts": message.ts,
            "bot_id": "B0LOCALBOT",
            "app_id": app.app_id,
        });
        if let Some(blocks) = message.message.get("blocks") {
            shown["blocks"] = blocks.clone();
        }
        let user = |id: &str| {
            json!({
                "id": id,
                "username": click.username,
                "name": click.username,
                "team_id": app.team_id,
            })
        };
        let payload = json!({
            "type": "block_actions",
            "user": user(&click.user_id),
            "api_app_id": app.app_id,
            "token": "localverificationtoken00",
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": false,
            },
            "trigger_id": trigger_id(),
            "team": {"id": app.team_id, "domain": "local"},
            "enterprise": null,
            "is_enterprise_install": false,
            "channel": {"id": message.channel, "name": CHANNEL_NAME},
            "message": shown,
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [action],
        });
        let genuine = form_body(&payload);
        let (timestamp, secret, body) = match &click.tamper {
            Some(Tamper::StaleTimestamp) => (
                (now.as_secs() - 600).to_string(),
                app.signing_secret.clone(),
                genuine.clone(),
            ),
            Some(Tamper::WrongSecret) => (
                now.as_secs().to_string(),
                format!("not-{}", app.signing_secret),
                genuine.clone(),
            ),
            Some(Tamper::BodyChanged { user_id }) => {
                let mut forged = payload.clone();
                forged["user"] = user(user_id);
                (
                    now.as_secs().to_string(),
                    app.signing_secret.clone(),
                    form_body(&forged),
                )
            }
            Some(Tamper::NoSignature) | None => (
                now.as_secs().to_string(),
                app.signing_secret.clone(),
                genuine.clone(),
            ),
        };
        // The signature is always over the genuine body.
        let signature = (click.tamper != Some(Tamper::NoSignature))
            .then(|| slack_signature(&secret, &timestamp, &genuine));
        let request = SignedRequest {
            timestamp,
            signature,
            body,
        };
        let (status, answer) = self.send(&app, &request).await?;
        let outcome = ClickOutcome {
            click: click.clone(),
            payload,
            response_url,
            message_ts: message.ts.clone(),
            request,
            status,
            answer,
        };
        lock(&self.shared.state).clicks.push(outcome.clone());
        Ok(outcome)
    }

    /// Sends a click's request again, byte for byte (a replay: same body,
    /// timestamp and signature), and returns the new answer.
    pub async fn replay(&self, click: &ClickOutcome) -> Result<ClickOutcome, ClickError> {
        let app = self.app().ok_or(ClickError::NoApp)?;
        let (status, answer) = self.send(&app, &click.request).await?;
        let outcome = ClickOutcome {
            status,
            answer,
            ..click.clone()
        };
        lock(&self.shared.state).clicks.push(outcome.clone());
        Ok(outcome)
    }

    async fn send(
        &self,
        app: &SlackApp,
        request: &SignedRequest,
    ) -> Result<(u16, Value), ClickError> {
        let mut post = self
            .shared
            .http
            .post(&app.request_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("user-agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
            .header("x-slack-request-timestamp", &request.timestamp)
            .body(request.body.clone());
        if let Some(signature) = &request.signature {
            post = post.header("x-slack-signature", signature);
        }
        let unreachable = |e: reqwest::Error| ClickError::Unreachable {
            url: app.request_url.clone(),
            reason: e.to_string(),
        };
        let response = post.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(unreachable)?;
        let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, answer))
    }

    /// Every click sent (and replayed), with its answer, in order.
    pub fn clicks(&self) -> Vec<ClickOutcome> {
        lock(&self.shared.state).clicks.clone()
    }

    /// Every post to `response_url` (accepted or not), in order.
    pub fn response_posts(&self, response_url: &str) -> Vec<ResponsePost> {
        lock(&self.shared.state)
            .responses
            .iter()
            .find(|r| r.url == response_url)
            .map(|r| r.posts.clone())
            .unwrap_or_default()
    }

    /// Every post to any response URL, in the order of the clicks.
    pub fn all_response_posts(&self) -> Vec<ResponsePost> {
        lock(&self.shared.state)
            .responses
            .iter()
            .flat_map(|r| r.posts.clone())
            .collect()
    }

    /// Waits until `response_url` accepted at least `n` posts or `timeout`
    /// passed; returns its posts either way.
    pub async fn wait_for_response_posts(
        &self,
        response_url: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<ResponsePost> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.accepted.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let posts = self.response_posts(response_url);
            if posts.iter().filter(|p| p.accepted()).count() >= n {
                return posts;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.response_posts(response_url);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slacks_documented_signature_example() {
        // https://api.slack.com/authentication/verifying-requests-from-slack
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        assert_eq!(
            slack_signature("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body),
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
    }

    #[test]
    fn buttons_are_found_by_action_id_and_login() {
        let undo = |login: &str| {
            json!({"type": "section", "text": {"type": "mrkdwn", "text": login},
                   "accessory": {"type": "button", "action_id": "unsuspend",
                                 "text": {"type": "plain_text", "text": "Unsuspend"},
                                 "value": json!({"e": "ev", "u": "00u1", "l": login}).to_string()}})
        };
        let message = json!({"blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "held"}},
            {"type": "actions", "block_id": "decide", "elements": [
                {"type": "button", "action_id": "approve", "value": "{\"e\":\"ev\"}",
                 "text": {"type": "plain_text", "text": "Approve"}},
                {"type": "button", "action_id": "dismiss", "value": "{\"e\":\"ev\"}",
                 "text": {"type": "plain_text", "text": "Dismiss"}}]},
            undo("ana.lima@example.com"),
            undo("li.wei@example.com"),
        ]});
        let approve = find_button(&message, "approve", None).unwrap();
        assert_eq!(approve.block_id.as_deref(), Some("decide"));
        assert_eq!(approve.element["value"], "{\"e\":\"ev\"}");
        assert!(find_button(&message, "dismiss", None).is_some());
        let li = find_button(&message, "unsuspend", Some("LI.WEI@example.com")).unwrap();
        assert_eq!(
            value_login(&li.element).as_deref(),
            Some("li.wei@example.com")
        );
        assert_eq!(li.block_id, None);
        assert!(find_button(&message, "unsuspend", Some("ghost@example.com")).is_none());
        assert!(find_button(&message, "delete", None).is_none());
        assert!(find_button(&json!({"text": "no blocks"}), "approve", None).is_none());
    }
}
