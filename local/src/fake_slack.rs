//! An HTTP stand-in for Slack: an incoming webhook and `chat.postMessage`.
//!
//! [`FakeSlack`] answers like Slack does: the webhook replies with plain text
//! (`ok`, `invalid_payload`, `invalid_blocks`, ...), `chat.postMessage` with
//! HTTP 200 JSON (`{"ok":true,...}` or `{"ok":false,"error":...}`), and both
//! reply 429 with `Retry-After` when rate limited. Block Kit limits are
//! enforced (50 blocks, 3,000-character section text, 10 fields of 2,000,
//! 150-character headers, total block text), so a message that the fake
//! accepts is one that real Slack would accept too.
//!
//! Accepted messages are kept for tests ([`FakeSlack::messages`],
//! [`FakeSlack::wait_for_messages`]) and, for `make local`, can be printed
//! readably ([`FakeSlack::set_printer`], [`render_text`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::fake_okta::{ServerGuard, base_url_for, lock, serve};

/// Path of the one incoming webhook the fake serves.
pub const WEBHOOK_PATH: &str = "/services/T0LOCAL/B0LOCAL/localwebhooksecret00";
/// The bot token `chat.postMessage` accepts.
pub const BOT_TOKEN: &str = "xoxb-local-test";
/// The channel id `chat.postMessage` accepts (also by the name [`CHANNEL_NAME`]).
pub const CHANNEL_ID: &str = "C0LOCAL";
pub const CHANNEL_NAME: &str = "local-alerts";

const MAX_BLOCKS: usize = 50;
const MAX_SECTION_TEXT: usize = 3000;
const MAX_FIELDS: usize = 10;
const MAX_FIELD_TEXT: usize = 2000;
const MAX_HEADER_TEXT: usize = 150;
const MAX_CONTEXT_ELEMENTS: usize = 10;
const MAX_TEXT: usize = 40_000;
/// Slack has answered `msg_blocks_too_long` at about 13k characters of blocks.
pub const DEFAULT_BLOCKS_CHAR_LIMIT: usize = 13_000;

/// Which Slack endpoint a post went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlackEndpoint {
    Webhook,
    PostMessage,
}

/// A canned failure for the next posts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlackFaultKind {
    /// 429 with `Retry-After: secs` (webhook: text `rate_limited`; API: `ratelimited`).
    RateLimited { retry_after_secs: u64 },
    /// Webhook: 500 `rollup_error`; API: 500 `{"ok":false,"error":"fatal_error"}`.
    ServerError,
    /// Webhook: 404 `channel_not_found`; API: 200 `{"ok":false,"error":"channel_not_found"}`.
    ChannelNotFound,
    /// Webhook: 400 `invalid_payload`; API: 200 `{"ok":false,"error":"invalid_arguments"}`.
    InvalidPayload,
    /// Any status and error string (webhook: plain text; API: `{"ok":false,"error":..}`).
    Error { status: u16, error: String },
    /// Answer normally, but this much later.
    Delay(Duration),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlackFault {
    pub kind: SlackFaultKind,
    /// `Some(n)`: the next n posts; `None`: forever.
    pub times: Option<u32>,
    /// Only posts to this endpoint (None: both).
    pub endpoint: Option<SlackEndpoint>,
}

impl SlackFault {
    pub fn new(kind: SlackFaultKind) -> Self {
        SlackFault {
            kind,
            times: Some(1),
            endpoint: None,
        }
    }
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::new(SlackFaultKind::RateLimited { retry_after_secs })
    }
    pub fn server_error() -> Self {
        Self::new(SlackFaultKind::ServerError)
    }
    pub fn channel_not_found() -> Self {
        Self::new(SlackFaultKind::ChannelNotFound)
    }
    pub fn invalid_payload() -> Self {
        Self::new(SlackFaultKind::InvalidPayload)
    }
    pub fn delay(d: Duration) -> Self {
        Self::new(SlackFaultKind::Delay(d))
    }
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
    pub fn forever(mut self) -> Self {
        self.times = None;
        self
    }
    pub fn on(mut self, endpoint: SlackEndpoint) -> Self {
        self.endpoint = Some(endpoint);
        self
    }
}

/// One POST as received and answered.
#[derive(Clone, Debug)]
pub struct SlackPost {
    pub endpoint: Option<SlackEndpoint>,
    pub path: String,
    pub status: u16,
    /// `None` when accepted; else the error string answered.
    pub error: Option<String>,
    /// The body as received.
    pub body: String,
    pub content_type: Option<String>,
    pub received_at: SystemTime,
}

/// A running fake Slack. Cheap to clone; stops when the last clone is dropped.
#[derive(Clone)]
pub struct FakeSlack {
    shared: Arc<Shared>,
    server: Arc<ServerGuard>,
    addr: SocketAddr,
}

impl std::fmt::Debug for FakeSlack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSlack")
            .field("base_url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}

struct Shared {
    base_url: String,
    state: Mutex<SlackState>,
    accepted: Notify,
}

struct SlackState {
    messages: Vec<Value>,
    posts: Vec<SlackPost>,
    faults: Vec<SlackFault>,
    printer: bool,
    latency: Duration,
    min_interval: Option<Duration>,
    last_accepted: Option<Instant>,
    blocks_char_limit: usize,
    last_ts_micros: u128,
}

impl FakeSlack {
    /// Starts on a random port of 127.0.0.1.
    pub async fn start() -> FakeSlack {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind a free port on 127.0.0.1 for the fake Slack")
    }

    pub async fn start_on(addr: SocketAddr) -> std::io::Result<FakeSlack> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let shared = Arc::new(Shared {
            base_url: base_url_for(local),
            state: Mutex::new(SlackState {
                messages: Vec::new(),
                posts: Vec::new(),
                faults: Vec::new(),
                printer: false,
                latency: Duration::ZERO,
                min_interval: None,
                last_accepted: None,
                blocks_char_limit: DEFAULT_BLOCKS_CHAR_LIMIT,
                last_ts_micros: 0,
            }),
            accepted: Notify::new(),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let guard = serve(listener, router);
        Ok(FakeSlack {
            shared,
            server: Arc::new(guard),
            addr: local,
        })
    }

    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The incoming-webhook URL (itself the credential, as with real Slack).
    pub fn webhook_url(&self) -> String {
        format!("{}{WEBHOOK_PATH}", self.shared.base_url)
    }

    /// The Web API base: `chat.postMessage` is at `{api_url}/chat.postMessage`.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.shared.base_url)
    }

    pub fn bot_token(&self) -> String {
        BOT_TOKEN.to_string()
    }

    pub fn channel(&self) -> String {
        CHANNEL_ID.to_string()
    }

    pub async fn shutdown(&self) {
        self.server.shutdown().await;
    }

    /// Accepted message bodies, in order (API posts include their `channel`).
    pub fn messages(&self) -> Vec<Value> {
        lock(&self.shared.state).messages.clone()
    }

    /// Waits until at least `n` messages were accepted or `timeout` passed; returns
    /// the messages accepted so far either way.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.accepted.notified();
            tokio::pin!(notified);
            // Register before checking, so an accept in between is not missed.
            notified.as_mut().enable();
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.messages();
            }
        }
    }

    /// Every POST, including rejected ones.
    pub fn attempts(&self) -> usize {
        lock(&self.shared.state).posts.len()
    }

    /// Every POST with how it was answered.
    pub fn posts(&self) -> Vec<SlackPost> {
        lock(&self.shared.state).posts.clone()
    }

    /// Forgets messages and posts.
    pub fn clear(&self) {
        let mut st = lock(&self.shared.state);
        st.messages.clear();
        st.posts.clear();
    }

    pub fn inject(&self, fault: SlackFault) {
        lock(&self.shared.state).faults.push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.state).faults.clear();
    }

    /// Prints each accepted message readably to stdout (for `make local`).
    pub fn set_printer(&self, on: bool) {
        lock(&self.shared.state).printer = on;
    }

    /// Delays every answer.
    pub fn set_latency(&self, d: Duration) {
        lock(&self.shared.state).latency = d;
    }

    /// Slack's ~1 message per second: a post sooner than `interval` after the last
    /// accepted one gets 429 with `Retry-After`. Off (`None`) by default.
    pub fn set_min_interval(&self, interval: Option<Duration>) {
        lock(&self.shared.state).min_interval = interval;
    }

    /// Total characters of block text above which posts fail with `msg_blocks_too_long`.
    pub fn set_blocks_char_limit(&self, chars: usize) {
        lock(&self.shared.state).blocks_char_limit = chars;
    }
}

// ---------------------------------------------------------------------------
// Handling
// ---------------------------------------------------------------------------

enum Reply {
    /// Webhook-style plain text.
    Text(StatusCode, String),
    /// Web-API-style JSON.
    Json(StatusCode, Value),
}

impl Reply {
    fn status(&self) -> StatusCode {
        match self {
            Reply::Text(s, _) | Reply::Json(s, _) => *s,
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let endpoint = if path == "/api/chat.postMessage" {
        Some(SlackEndpoint::PostMessage)
    } else if path.starts_with("/services/") {
        Some(SlackEndpoint::Webhook)
    } else {
        None
    };

    if parts.method != Method::POST {
        return finish(
            Reply::Text(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".into()),
            None,
        );
    }
    let bytes = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let body = String::from_utf8_lossy(&bytes).into_owned();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    let (reply, retry_after, delay, printed) = {
        let mut st = lock(&shared.state);
        let mut delay = st.latency;
        let (reply, retry_after, accepted) = answer(
            &mut st,
            endpoint,
            &path,
            &body,
            content_type.as_deref(),
            auth.as_deref(),
            &mut delay,
        );
        let error = match (&reply, &accepted) {
            (_, Some(_)) => None,
            (Reply::Text(_, t), None) => Some(t.clone()),
            (Reply::Json(_, v), None) => Some(v["error"].as_str().unwrap_or("error").to_string()),
        };
        st.posts.push(SlackPost {
            endpoint,
            path: path.clone(),
            status: reply.status().as_u16(),
            error,
            body,
            content_type,
            received_at: SystemTime::now(),
        });
        let mut printed = None;
        if let Some(msg) = accepted {
            if st.printer {
                printed = Some(render_text(&msg));
            }
            st.messages.push(msg);
            st.last_accepted = Some(Instant::now());
        }
        (reply, retry_after, delay, printed)
    };
    // Waiters re-check the count, so waking them on every post is fine.
    shared.accepted.notify_waiters();
    if let Some(text) = printed {
        let via = match endpoint {
            Some(SlackEndpoint::PostMessage) => "chat.postMessage",
            _ => "webhook",
        };
        println!(
            "\n──────── Slack message (via {via}) ────────\n{text}\n────────────────────────────────────────────"
        );
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    finish(reply, retry_after)
}

fn finish(reply: Reply, retry_after: Option<u64>) -> Response {
    let (status, ctype, body) = match reply {
        Reply::Text(s, t) => (s, "text/plain; charset=utf-8", t.into_bytes()),
        Reply::Json(s, v) => (
            s,
            "application/json; charset=utf-8",
            serde_json::to_vec(&v).unwrap_or_default(),
        ),
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Decides the answer; returns (reply, Retry-After, accepted message).
fn answer(
    st: &mut SlackState,
    endpoint: Option<SlackEndpoint>,
    path: &str,
    body: &str,
    content_type: Option<&str>,
    auth: Option<&str>,
    delay: &mut Duration,
) -> (Reply, Option<u64>, Option<Value>) {
    let Some(endpoint) = endpoint else {
        if path.starts_with("/api/") {
            return (api_error("unknown_method"), None, None);
        }
        return (
            Reply::Text(StatusCode::NOT_FOUND, "not_found".into()),
            None,
            None,
        );
    };
    let api = endpoint == SlackEndpoint::PostMessage;
    let fail = |status: StatusCode, error: &str| -> Reply {
        if api {
            Reply::Json(status, json!({ "ok": false, "error": error }))
        } else {
            Reply::Text(status, error.to_string())
        }
    };

    if let Some(kind) = take_fault(st, endpoint, delay) {
        let reply = match kind {
            SlackFaultKind::RateLimited { retry_after_secs } => {
                let r = if api {
                    fail(StatusCode::TOO_MANY_REQUESTS, "ratelimited")
                } else {
                    fail(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
                };
                return (r, Some(retry_after_secs), None);
            }
            SlackFaultKind::ServerError if api => {
                fail(StatusCode::INTERNAL_SERVER_ERROR, "fatal_error")
            }
            SlackFaultKind::ServerError => fail(StatusCode::INTERNAL_SERVER_ERROR, "rollup_error"),
            SlackFaultKind::ChannelNotFound if api => fail(StatusCode::OK, "channel_not_found"),
            SlackFaultKind::ChannelNotFound => fail(StatusCode::NOT_FOUND, "channel_not_found"),
            SlackFaultKind::InvalidPayload if api => fail(StatusCode::OK, "invalid_arguments"),
            SlackFaultKind::InvalidPayload => fail(StatusCode::BAD_REQUEST, "invalid_payload"),
            SlackFaultKind::Error { status, error } => fail(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                &error,
            ),
            SlackFaultKind::Delay(_) => unreachable!("delays are not replacements"),
        };
        return (reply, None, None);
    }

    if let (Some(interval), Some(last)) = (st.min_interval, st.last_accepted) {
        let since = last.elapsed();
        if since < interval {
            let wait = (interval - since).as_secs_f64().ceil().max(1.0) as u64;
            let error = if api { "ratelimited" } else { "rate_limited" };
            return (fail(StatusCode::TOO_MANY_REQUESTS, error), Some(wait), None);
        }
    }

    let is_form = content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if api {
        post_message(st, body, is_form, content_type, auth)
    } else {
        if path != WEBHOOK_PATH {
            return (
                Reply::Text(StatusCode::NOT_FOUND, "no_service".into()),
                None,
                None,
            );
        }
        webhook(st, body, is_form)
    }
}

fn take_fault(
    st: &mut SlackState,
    endpoint: SlackEndpoint,
    delay: &mut Duration,
) -> Option<SlackFaultKind> {
    let mut replacement = None;
    let mut i = 0;
    while i < st.faults.len() {
        let f = &st.faults[i];
        let is_delay = matches!(f.kind, SlackFaultKind::Delay(_));
        if f.endpoint.is_some_and(|e| e != endpoint) || (!is_delay && replacement.is_some()) {
            i += 1;
            continue;
        }
        match &f.kind {
            SlackFaultKind::Delay(d) => *delay += *d,
            other => replacement = Some(other.clone()),
        }
        let f = &mut st.faults[i];
        match &mut f.times {
            Some(n) if *n <= 1 => {
                st.faults.remove(i);
                continue;
            }
            Some(n) => *n -= 1,
            None => {}
        }
        i += 1;
    }
    replacement
}

fn api_error(error: &str) -> Reply {
    Reply::Json(StatusCode::OK, json!({ "ok": false, "error": error }))
}

fn webhook(st: &SlackState, body: &str, is_form: bool) -> (Reply, Option<u64>, Option<Value>) {
    let bad = |e: &str| {
        (
            Reply::Text(StatusCode::BAD_REQUEST, e.to_string()),
            None,
            None,
        )
    };
    // Slack also accepts the JSON as a form field named `payload`.
    let raw = if is_form {
        match url::form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "payload") {
            Some((_, v)) => v.into_owned(),
            None => return bad("invalid_payload"),
        }
    } else {
        body.to_string()
    };
    let Ok(msg) = serde_json::from_str::<Value>(&raw) else {
        return bad("invalid_payload");
    };
    if !msg.is_object() {
        return bad("invalid_payload");
    }
    if let Err(e) = check_message(&msg, st.blocks_char_limit) {
        return bad(e);
    }
    (Reply::Text(StatusCode::OK, "ok".into()), None, Some(msg))
}

fn post_message(
    st: &mut SlackState,
    body: &str,
    is_form: bool,
    content_type: Option<&str>,
    auth: Option<&str>,
) -> (Reply, Option<u64>, Option<Value>) {
    let msg = if is_form {
        // Form posts carry blocks/attachments as JSON strings.
        let mut m = serde_json::Map::new();
        for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
            let v = v.into_owned();
            let value = if k == "blocks" || k == "attachments" {
                match serde_json::from_str(&v) {
                    Ok(parsed) => parsed,
                    Err(_) => return (api_error("invalid_blocks_format"), None, None),
                }
            } else {
                Value::String(v)
            };
            m.insert(k.into_owned(), value);
        }
        Value::Object(m)
    } else {
        match serde_json::from_str::<Value>(body) {
            Ok(v) if v.is_object() => v,
            _ => return (api_error("invalid_json"), None, None),
        }
    };

    let token = match auth {
        Some(a) => a.strip_prefix("Bearer ").map(str::trim).map(str::to_string),
        None if is_form => msg.get("token").and_then(Value::as_str).map(str::to_string),
        None => None,
    };
    match token {
        None if auth.is_none() => return (api_error("not_authed"), None, None),
        Some(t) if t == BOT_TOKEN => {}
        _ => return (api_error("invalid_auth"), None, None),
    }

    let channel = msg.get("channel").and_then(Value::as_str).unwrap_or("");
    let channel_ok = channel == CHANNEL_ID || channel.trim_start_matches('#') == CHANNEL_NAME;
    if !channel_ok {
        return (api_error("channel_not_found"), None, None);
    }
    if let Err(e) = check_message(&msg, st.blocks_char_limit) {
        let e = if e == "invalid_payload" { "no_text" } else { e };
        return (api_error(e), None, None);
    }

    let ts = next_ts(st);
    let mut message = json!({
        "type": "message",
        "subtype": "bot_message",
        "text": msg.get("text").cloned().unwrap_or(json!("")),
        "username": "oort-okta-responder",
        "bot_id": "B0LOCALBOT",
        "app_id": "A0LOCALAPP",
        "ts": ts,
    });
    for key in ["blocks", "attachments"] {
        if let Some(v) = msg.get(key) {
            message[key] = v.clone();
        }
    }
    let mut reply = json!({ "ok": true, "channel": CHANNEL_ID, "ts": ts, "message": message });
    // Real Slack warns when a JSON body is sent without a charset.
    if content_type.is_some_and(|c| c.starts_with("application/json") && !c.contains("charset")) {
        reply["warning"] = json!("missing_charset");
        reply["response_metadata"] = json!({ "warnings": ["missing_charset"] });
    }
    (Reply::Json(StatusCode::OK, reply), None, Some(msg))
}

fn next_ts(st: &mut SlackState) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let micros = now.max(st.last_ts_micros + 1);
    st.last_ts_micros = micros;
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

// ---------------------------------------------------------------------------
// Block Kit validation
// ---------------------------------------------------------------------------

/// Checks a message like Slack does; the error string is Slack's.
fn check_message(msg: &Value, blocks_char_limit: usize) -> Result<(), &'static str> {
    let text = match msg.get("text") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err("invalid_payload"),
    };
    let blocks = match msg.get("blocks") {
        None | Some(Value::Null) => None,
        Some(Value::Array(b)) => Some(b),
        Some(_) => return Err("invalid_blocks"),
    };
    let has_attachments = msg
        .get("attachments")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let has_text = text.is_some_and(|t| !t.trim().is_empty());
    let has_blocks = blocks.is_some_and(|b| !b.is_empty());
    if !has_text && !has_blocks && !has_attachments {
        return Err("invalid_payload");
    }
    if text.is_some_and(|t| t.chars().count() > MAX_TEXT) {
        return Err("msg_too_long");
    }
    if let Some(blocks) = blocks {
        if blocks.len() > MAX_BLOCKS {
            return Err("invalid_blocks");
        }
        let mut ids = std::collections::HashSet::new();
        let mut total = 0usize;
        for b in blocks {
            total += check_block(b)?;
            if let Some(id) = b.get("block_id").and_then(Value::as_str)
                && (id.len() > 255 || !ids.insert(id.to_string()))
            {
                return Err("invalid_blocks");
            }
        }
        if total > blocks_char_limit {
            return Err("msg_blocks_too_long");
        }
    }
    Ok(())
}

/// A text object `{"type": "mrkdwn"|"plain_text", "text": ...}`; returns its length.
fn text_object(v: &Value, max: usize, plain_only: bool) -> Result<usize, &'static str> {
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .ok_or("invalid_blocks")?;
    if kind != "plain_text" && (plain_only || kind != "mrkdwn") {
        return Err("invalid_blocks");
    }
    let text = v
        .get("text")
        .and_then(Value::as_str)
        .ok_or("invalid_blocks")?;
    let n = text.chars().count();
    if n == 0 || n > max {
        return Err("invalid_blocks");
    }
    Ok(n)
}

/// Validates one block; returns the characters of text it carries.
fn check_block(b: &Value) -> Result<usize, &'static str> {
    let kind = b
        .get("type")
        .and_then(Value::as_str)
        .ok_or("invalid_blocks")?;
    match kind {
        "section" => {
            let mut n = 0;
            let text = b.get("text");
            let fields = b.get("fields");
            if text.is_none() && fields.is_none() {
                return Err("invalid_blocks");
            }
            if let Some(t) = text {
                n += text_object(t, MAX_SECTION_TEXT, false)?;
            }
            if let Some(f) = fields {
                let f = f.as_array().ok_or("invalid_blocks")?;
                if f.is_empty() || f.len() > MAX_FIELDS {
                    return Err("invalid_blocks");
                }
                for field in f {
                    n += text_object(field, MAX_FIELD_TEXT, false)?;
                }
            }
            Ok(n)
        }
        "header" => text_object(
            b.get("text").ok_or("invalid_blocks")?,
            MAX_HEADER_TEXT,
            true,
        ),
        "divider" => Ok(0),
        "context" => {
            let elements = b
                .get("elements")
                .and_then(Value::as_array)
                .ok_or("invalid_blocks")?;
            if elements.is_empty() || elements.len() > MAX_CONTEXT_ELEMENTS {
                return Err("invalid_blocks");
            }
            let mut n = 0;
            for e in elements {
                match e.get("type").and_then(Value::as_str) {
                    Some("image") => {}
                    Some("mrkdwn" | "plain_text") => n += text_object(e, MAX_SECTION_TEXT, false)?,
                    _ => return Err("invalid_blocks"),
                }
            }
            Ok(n)
        }
        "markdown" => {
            let t = b
                .get("text")
                .and_then(Value::as_str)
                .ok_or("invalid_blocks")?;
            Ok(t.chars().count())
        }
        "image" | "actions" | "rich_text" | "input" | "file" | "video" | "context_actions" => {
            Ok(serde_json::to_string(b).map(|s| s.len()).unwrap_or(0) / 4)
        }
        _ => Err("invalid_blocks"),
    }
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/// A readable rendering of a message: header, sections with their fields,
/// context lines, dividers, attachments; the fallback `text` only when there are
/// no blocks. Slack's `&amp;`, `&lt;`, `&gt;` escapes are shown as the characters.
pub fn render_text(message: &Value) -> String {
    let mut out = Vec::new();
    let blocks = message.get("blocks").and_then(Value::as_array);
    let attachments = message.get("attachments").and_then(Value::as_array);
    match blocks {
        Some(b) if !b.is_empty() => render_blocks(b, &mut out),
        _ => {
            if let Some(t) = message.get("text").and_then(Value::as_str) {
                out.push(unescape(t));
            }
        }
    }
    for a in attachments.into_iter().flatten() {
        let mut inner = Vec::new();
        for key in ["pretext", "title", "text"] {
            if let Some(t) = a.get(key).and_then(Value::as_str) {
                inner.push(unescape(t));
            }
        }
        for f in a
            .get("fields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let title = f.get("title").and_then(Value::as_str).unwrap_or("");
            let value = f.get("value").and_then(Value::as_str).unwrap_or("");
            inner.push(format!("  {}: {}", unescape(title), unescape(value)));
        }
        if let Some(b) = a.get("blocks").and_then(Value::as_array) {
            render_blocks(b, &mut inner);
        }
        if let Some(t) = a.get("footer").and_then(Value::as_str) {
            inner.push(unescape(t));
        }
        for line in inner.join("\n").lines() {
            out.push(format!("┃ {line}"));
        }
    }
    out.join("\n")
}

fn text_of(v: Option<&Value>) -> Option<String> {
    v?.get("text").and_then(Value::as_str).map(unescape)
}

fn render_blocks(blocks: &[Value], out: &mut Vec<String>) {
    for b in blocks {
        match b.get("type").and_then(Value::as_str).unwrap_or("") {
            "header" => {
                let t = text_of(b.get("text")).unwrap_or_default();
                let n = t.chars().count().max(3);
                out.push(t);
                out.push("═".repeat(n));
            }
            "section" => {
                if let Some(t) = text_of(b.get("text")) {
                    out.push(t);
                }
                for f in b
                    .get("fields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(t) = text_of(Some(f)) {
                        let mut lines = t.lines();
                        if let Some(first) = lines.next() {
                            out.push(format!("  • {first}"));
                        }
                        for l in lines {
                            out.push(format!("    {l}"));
                        }
                    }
                }
                if let Some(t) = text_of(b.get("accessory").and_then(|a| a.get("text"))) {
                    out.push(format!("  [{t}]"));
                }
            }
            "context" => {
                let parts: Vec<String> = b
                    .get("elements")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|e| {
                        text_of(Some(e)).or_else(|| {
                            e.get("alt_text")
                                .and_then(Value::as_str)
                                .map(|a| format!("[{a}]"))
                        })
                    })
                    .collect();
                out.push(format!("  {}", parts.join(" · ")));
            }
            "divider" => out.push("─".repeat(40)),
            "markdown" => {
                if let Some(t) = b.get("text").and_then(Value::as_str) {
                    out.push(unescape(t));
                }
            }
            "actions" => {
                let buttons: Vec<String> = b
                    .get("elements")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|e| text_of(e.get("text")).map(|t| format!("[{t}]")))
                    .collect();
                out.push(buttons.join(" "));
            }
            "image" => {
                let alt = b.get("alt_text").and_then(Value::as_str).unwrap_or("image");
                out.push(format!("[image: {alt}]"));
            }
            "rich_text" => {
                let mut s = String::new();
                collect_rich_text(b, &mut s);
                out.push(unescape(&s));
            }
            other => out.push(format!("[{other} block]")),
        }
    }
}

fn collect_rich_text(v: &Value, out: &mut String) {
    if let Some(t) = v.get("text").and_then(Value::as_str) {
        out.push_str(t);
    }
    for e in v
        .get("elements")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        collect_rich_text(e, out);
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
