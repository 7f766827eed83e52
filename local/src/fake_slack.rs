//! An HTTP stand-in for Slack: an incoming webhook, `chat.postMessage`, and a
//! person clicking the buttons of the messages it received.
//!
//! [`FakeSlack`] answers like Slack does: the webhook replies with plain text
//! (`ok`, `invalid_payload`, `invalid_blocks`, ...), `chat.postMessage` with
//! HTTP 200 JSON (`{"ok":true,...}` or `{"ok":false,"error":...}`), and both
//! reply 429 with `Retry-After` when rate limited. Block Kit limits are
//! enforced (the `blocks` submodule), so a message that the fake accepts is
//! one that real Slack would accept too.
//!
//! Accepted messages are kept for tests ([`FakeSlack::messages`],
//! [`FakeSlack::wait_for_messages`]) and announced to subscribers
//! ([`FakeSlack::subscribe`]), which `make local` prints readably with
//! [`render_text`]. Each one gets a channel and a `ts`, as in Slack, and the
//! channel's current state is kept too ([`FakeSlack::channel_messages`]).
//!
//! **Clicks** (the `interactive` submodule): once told about the Slack app
//! ([`FakeSlack::set_app`]: its Request URL and signing secret),
//! [`FakeSlack::click`] finds a button in a message by `action_id` (and, for
//! Unsuspend, by the login in its value), builds the `block_actions` payload
//! Slack sends, form-encodes it, signs it with the signing secret as Slack
//! does and POSTs it to the Request URL. Each click gets its own
//! `response_url` on this server (the `response_url` submodule), which
//! accepts up to 5 posts within 30 minutes, as Slack's does: replace or
//! delete the original message, post in the channel, or answer the clicker
//! ephemerally. [`Tamper`] makes a click that Slack would never send (another
//! secret, a stale timestamp, a body other than the one signed, no
//! signature), and [`FakeSlack::replay`] sends a recorded click again, byte
//! for byte.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, broadcast};

use crate::http_stub::{InjectedFault, ServerGuard, base_url_for, serve};
use crate::lock;

mod blocks;
mod handler;
mod interactive;
mod render;
mod response_url;

pub use interactive::{
    Click, ClickError, ClickOutcome, FoundButton, SignedRequest, SlackApp, Tamper, find_button,
    slack_signature,
};
pub use render::render_text;
pub use response_url::{MAX_RESPONSE_POSTS, RESPONSE_URL_LIFETIME, ResponseAction, ResponsePost};

/// Path of the one incoming webhook the fake serves.
pub const WEBHOOK_PATH: &str = "/services/T0LOCAL/B0LOCAL/localwebhooksecret00";
/// The workspace (`team.id`) of the fake.
pub const TEAM_ID: &str = "T0LOCAL";
/// The Slack app (`api_app_id`) that posts and whose buttons are clicked.
pub const APP_ID: &str = "A0LOCALAPP";
/// Where response URLs live: `{base}/actions/T0LOCAL/<n>/<token>`.
pub const RESPONSE_URL_PREFIX: &str = "/actions/";
/// The bot token `chat.postMessage` accepts.
pub const BOT_TOKEN: &str = "xoxb-local-test";
/// The channel id `chat.postMessage` accepts (also by the name [`CHANNEL_NAME`]).
pub const CHANNEL_ID: &str = "C0LOCAL";
pub const CHANNEL_NAME: &str = "local-alerts";

/// Slack has answered `msg_blocks_too_long` at about 13k characters of blocks.
pub const DEFAULT_BLOCKS_CHAR_LIMIT: usize = 13_000;

/// Which Slack endpoint a post went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlackEndpoint {
    Webhook,
    PostMessage,
    /// A click's `response_url`.
    ResponseUrl,
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

impl InjectedFault for SlackFault {
    type Kind = SlackFaultKind;
    fn kind(&self) -> &SlackFaultKind {
        &self.kind
    }
    fn delay(&self) -> Option<Duration> {
        match self.kind {
            SlackFaultKind::Delay(d) => Some(d),
            _ => None,
        }
    }
    fn times(&mut self) -> &mut Option<u32> {
        &mut self.times
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

/// A message the fake accepted, as [`FakeSlack::subscribe`] announces it and
/// [`FakeSlack::channel_messages`] shows it.
#[derive(Clone, Debug)]
pub struct SlackMessage {
    pub endpoint: SlackEndpoint,
    /// The body as posted (API posts include their `channel`).
    pub message: Value,
    /// The channel it is in ([`CHANNEL_ID`]).
    pub channel: String,
    /// Its `ts`: the message's id in the channel. A message rewritten through
    /// a response URL keeps the `ts` of the original.
    pub ts: String,
    /// For a post to a response URL: what it did.
    pub via_response_url: Option<ResponseAction>,
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
    announce: broadcast::Sender<SlackMessage>,
    /// Sends the clicks.
    http: reqwest::Client,
}

struct SlackState {
    messages: Vec<Value>,
    /// What the channel shows now, in `ts` order.
    channel: Vec<SlackMessage>,
    posts: Vec<SlackPost>,
    faults: Vec<SlackFault>,
    latency: Duration,
    min_interval: Option<Duration>,
    last_accepted: Option<Instant>,
    blocks_char_limit: usize,
    last_ts_micros: u128,
    /// The app whose buttons are clicked.
    app: Option<SlackApp>,
    /// Every click sent, with its answer.
    clicks: Vec<ClickOutcome>,
    /// The response URLs handed out, by path.
    responses: Vec<response_url::Issued>,
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
        shared::aws::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            base_url: base_url_for(local),
            state: Mutex::new(SlackState {
                messages: Vec::new(),
                channel: Vec::new(),
                posts: Vec::new(),
                faults: Vec::new(),
                latency: Duration::ZERO,
                min_interval: None,
                last_accepted: None,
                blocks_char_limit: DEFAULT_BLOCKS_CHAR_LIMIT,
                last_ts_micros: 0,
                app: None,
                clicks: Vec::new(),
                responses: Vec::new(),
            }),
            accepted: Notify::new(),
            announce: broadcast::channel(1024).0,
            http,
        });
        let router = Router::new()
            .fallback(handler::handle)
            .with_state(shared.clone());
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

    /// Forgets messages, posts, clicks and response URLs.
    pub fn clear(&self) {
        let mut st = lock(&self.shared.state);
        st.messages.clear();
        st.channel.clear();
        st.posts.clear();
        st.clicks.clear();
        st.responses.clear();
    }

    /// What the channel shows now, oldest first: each accepted message with
    /// its `ts`, as rewritten or deleted through response URLs since, and
    /// the messages posted in the channel through them.
    pub fn channel_messages(&self) -> Vec<SlackMessage> {
        lock(&self.shared.state).channel.clone()
    }

    /// The message with this `ts`, as the channel shows it now.
    pub fn message(&self, ts: &str) -> Option<SlackMessage> {
        lock(&self.shared.state)
            .channel
            .iter()
            .find(|m| m.ts == ts)
            .cloned()
    }

    /// Waits until the channel shows a message for which `matches` is true
    /// (the newest such one), or `timeout` passed.
    pub async fn wait_for_channel_message(
        &self,
        timeout: Duration,
        matches: impl Fn(&SlackMessage) -> bool,
    ) -> Option<SlackMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        let find = || {
            lock(&self.shared.state)
                .channel
                .iter()
                .rev()
                .find(|m| matches(m))
                .cloned()
        };
        loop {
            let notified = self.shared.accepted.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(found) = find() {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return find();
            }
        }
    }

    pub fn inject(&self, fault: SlackFault) {
        lock(&self.shared.state).faults.push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.state).faults.clear();
    }

    /// Every message accepted from now on, in the order accepted.
    pub fn subscribe(&self) -> broadcast::Receiver<SlackMessage> {
        self.shared.announce.subscribe()
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
