//! The response URL of each click, answered as Slack answers it.
//!
//! Every click ([`FakeSlack::click`](super::FakeSlack::click)) gets its own
//! URL, `{base}/actions/T0LOCAL/<n>/<token>`, sent in the payload's
//! `response_url`. A POST of JSON to it, as Slack documents:
//!
//! - `"replace_original": true` (with `text` and/or `blocks`) rewrites the
//!   message the button was in; it keeps its `ts`;
//! - `"delete_original": true` deletes that message;
//! - `"response_type": "in_channel"` posts a new message in the channel;
//! - anything else is an ephemeral reply, seen only by the clicker (it does
//!   not change the channel).
//!
//! It accepts [`MAX_RESPONSE_POSTS`] posts within [`RESPONSE_URL_LIFETIME`]
//! of the click, answering 200 `ok` (plain text, like a webhook); after that
//! 404 `used_url` or `expired_url`. A body that is not a JSON object is 400
//! `invalid_payload`, one without `text` or `blocks` 400 `no_text`, and the
//! Block Kit limits are the webhook's. Every post is kept
//! ([`FakeSlack::response_posts`](super::FakeSlack::response_posts)) with how
//! it was answered.

use std::time::{Duration, Instant, SystemTime};

use http::StatusCode;
use serde_json::Value;

use super::blocks::check_message;
use super::handler::{Reply, next_ts};
use super::{SlackEndpoint, SlackMessage, SlackState};

/// Posts a response URL accepts, as Slack's does.
pub const MAX_RESPONSE_POSTS: usize = 5;
/// How long after the click a response URL works.
pub const RESPONSE_URL_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// What an accepted post to a response URL did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseAction {
    /// `replace_original`: the clicked message now reads as posted.
    Replaced,
    /// `delete_original`: the clicked message is gone.
    Deleted,
    /// `response_type: in_channel`: a new message in the channel.
    InChannel,
    /// The default: a reply only the clicker sees.
    Ephemeral,
}

impl ResponseAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseAction::Replaced => "replace_original",
            ResponseAction::Deleted => "delete_original",
            ResponseAction::InChannel => "in_channel",
            ResponseAction::Ephemeral => "ephemeral",
        }
    }
}

/// One POST to a response URL, as received and answered.
#[derive(Clone, Debug)]
pub struct ResponsePost {
    pub response_url: String,
    pub status: u16,
    /// `None` when accepted; else the error answered (`used_url`, ...).
    pub error: Option<String>,
    /// The body as received, parsed when it is JSON (else a string).
    pub body: Value,
    /// What it did, when accepted.
    pub action: Option<ResponseAction>,
    pub received_at: SystemTime,
}

impl ResponsePost {
    pub fn accepted(&self) -> bool {
        self.error.is_none()
    }
}

/// A response URL handed out with a click.
pub(super) struct Issued {
    pub(super) url: String,
    pub(super) path: String,
    pub(super) issued_at: Instant,
    pub(super) channel: String,
    /// The message whose button was clicked.
    pub(super) message_ts: String,
    pub(super) posts: Vec<ResponsePost>,
    /// What the accepted post being answered did (set by [`answer`], read by [`record`]).
    pending_action: Option<ResponseAction>,
}

impl Issued {
    pub(super) fn new(url: String, path: String, channel: String, message_ts: String) -> Issued {
        Issued {
            url,
            path,
            issued_at: Instant::now(),
            channel,
            message_ts,
            posts: Vec::new(),
            pending_action: None,
        }
    }
}

fn text(status: StatusCode, error: &str) -> Reply {
    Reply::Text(status, error.to_string())
}

/// Whether a flag is set: `true`, or the string `"true"` (form-style clients send it so).
fn flag(message: &Value, name: &str) -> bool {
    match message.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Answers a post to `path` and applies it to the channel; returns the
/// reply and, when accepted, what to announce.
pub(super) fn answer(st: &mut SlackState, path: &str, body: &str) -> (Reply, Option<SlackMessage>) {
    let limit = st.blocks_char_limit;
    let Some(index) = st.responses.iter().position(|r| r.path == path) else {
        return (text(StatusCode::NOT_FOUND, "no_service"), None);
    };
    let issued = &st.responses[index];
    if issued.issued_at.elapsed() > RESPONSE_URL_LIFETIME {
        return (text(StatusCode::NOT_FOUND, "expired_url"), None);
    }
    if issued.posts.iter().filter(|p| p.accepted()).count() >= MAX_RESPONSE_POSTS {
        return (text(StatusCode::NOT_FOUND, "used_url"), None);
    }
    let message = match serde_json::from_str::<Value>(body) {
        Ok(message @ Value::Object(_)) => message,
        _ => return (text(StatusCode::BAD_REQUEST, "invalid_payload"), None),
    };
    let action = if flag(&message, "delete_original") {
        ResponseAction::Deleted
    } else if flag(&message, "replace_original") {
        ResponseAction::Replaced
    } else if message.get("response_type").and_then(Value::as_str) == Some("in_channel") {
        ResponseAction::InChannel
    } else {
        ResponseAction::Ephemeral
    };
    if action != ResponseAction::Deleted
        && let Err(e) = check_message(&message, limit)
    {
        let e = if e == "invalid_payload" { "no_text" } else { e };
        return (text(StatusCode::BAD_REQUEST, e), None);
    }
    let channel = issued.channel.clone();
    let original_ts = issued.message_ts.clone();
    let ts = match action {
        ResponseAction::Replaced => {
            if let Some(m) = st.channel.iter_mut().find(|m| m.ts == original_ts) {
                m.message = message.clone();
            }
            original_ts
        }
        ResponseAction::Deleted => {
            st.channel.retain(|m| m.ts != original_ts);
            original_ts
        }
        ResponseAction::InChannel => next_ts(st),
        ResponseAction::Ephemeral => original_ts,
    };
    let announced = SlackMessage {
        endpoint: SlackEndpoint::ResponseUrl,
        message,
        channel,
        ts,
        via_response_url: Some(action),
    };
    if action == ResponseAction::InChannel {
        st.channel.push(announced.clone());
    }
    st.responses[index].pending_action = Some(action);
    (Reply::Text(StatusCode::OK, "ok".into()), Some(announced))
}

/// Keeps the post with the response URL it was made to.
pub(super) fn record(
    st: &mut SlackState,
    path: &str,
    status: u16,
    error: Option<String>,
    body: &str,
    received_at: SystemTime,
) {
    let Some(issued) = st.responses.iter_mut().find(|r| r.path == path) else {
        return;
    };
    let action = issued.pending_action.take().filter(|_| error.is_none());
    let post = ResponsePost {
        response_url: issued.url.clone(),
        status,
        error,
        body: serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string())),
        action,
        received_at,
    };
    issued.posts.push(post);
}
