//! An HTTP stand-in for the part of Okta's Management API the dispatcher uses.
//!
//! [`FakeOkta`] serves `GET /api/v1/users/{id}`, `GET /api/v1/users` (search,
//! filter, q, limit/after), `GET /api/v1/users/{userId}/roles`,
//! `POST /api/v1/users/{id}/lifecycle/suspend|unsuspend`,
//! `DELETE /api/v1/users/{userId}/sessions`, `POST /oauth2/v1/token` and
//! `POST /oauth2/v1/global-token-revocation` on `http://127.0.0.1:<port>`, and
//! answers the way Okta does: SSWS token auth, Okta error bodies and codes,
//! `X-Okta-Request-Id`, `Date` and `X-Rate-Limit-*` headers on every response,
//! a per-minute rate-limit bucket with `E0000047` 429s, and the lifecycle state
//! machine (suspend only from `ACTIVE`, unsuspend only from `SUSPENDED`).
//!
//! OAuth 2.0 service apps ([`FakeOkta::register_app`], [`OAuthApp`]) get
//! tokens with `private_key_jwt` client assertions, with or without DPoP
//! ([`DpopPolicy`]), and call the API with `Bearer` or `DPoP` tokens limited
//! to their scopes (403 `insufficient_scope` otherwise); see the `oauth`
//! submodule for the exact checks. The token endpoint has its own rate-limit
//! bucket ([`Operation::Token`]), like Okta's `/oauth2/v1` endpoints.
//!
//! Tests steer it with [`FakeOkta::inject`] ([`Fault`]: 5xx, both kinds of 429,
//! 403, delays), [`FakeOkta::set_rate_limit`], [`FakeOkta::set_latency`],
//! [`FakeOkta::set_concurrency_limit`] and the OAuth knobs
//! ([`FakeOkta::set_token_lifetime`], [`FakeOkta::expire_all_tokens`],
//! [`FakeOkta::rotate_dpop_nonce`], [`FakeOkta::require_resource_nonce`],
//! [`FakeOkta::set_universal_logout_licensed`]), and check what the client
//! did with [`FakeOkta::requests`], [`FakeOkta::writes`],
//! [`FakeOkta::token_requests`] and [`FakeOkta::user`].
//!
//! Paths are routed from the raw request path, and the user segment is
//! percent-decoded exactly once: `%2F` never becomes a separator and `..` is
//! never normalised, so a hostile login can only ever name itself.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod jws;
mod oauth;

use oauth::OAuthState;
pub use oauth::{
    DEFAULT_TOKEN_LIFETIME, DISPATCHER_SCOPES, DpopPolicy, GLOBAL_TOKEN_REVOCATION_PATH,
    IssuedToken, OAuthApp, TOKEN_PATH, TokenRequest, TokenType,
};

/// Requests per window in the default shared bucket.
pub const DEFAULT_RATE_LIMIT: u32 = 600;
/// Okta's rate-limit windows are one minute long.
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);

const USER_TYPE_ID: &str = "oty1fakelocal0000000";
const REALM_ID: &str = "guo1fakelocal0000000";

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// A user to put into the fake org.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedUser {
    pub login: String,
    pub email: String,
    /// `ACTIVE`, `SUSPENDED`, `DEPROVISIONED`, `STAGED`, `LOCKED_OUT`, ...
    pub status: String,
    pub first_name: String,
    pub last_name: String,
    /// Admin role types, e.g. `SUPER_ADMIN`, `ORG_ADMIN`.
    pub admin_roles: Vec<String>,
}

impl SeedUser {
    /// A user with names derived from the login (`ana.lima@x` → Ana Lima).
    pub fn new(
        login: impl Into<String>,
        email: impl Into<String>,
        status: impl Into<String>,
    ) -> Self {
        let login = login.into();
        let (first_name, last_name) = names_from_login(&login);
        SeedUser {
            login,
            email: email.into(),
            status: status.into(),
            first_name,
            last_name,
            admin_roles: Vec::new(),
        }
    }

    /// Adds an admin role assignment (`SUPER_ADMIN`, `ORG_ADMIN`, ...).
    pub fn with_admin_role(mut self, role: impl Into<String>) -> Self {
        self.admin_roles.push(role.into());
        self
    }

    pub fn with_name(mut self, first: impl Into<String>, last: impl Into<String>) -> Self {
        self.first_name = first.into();
        self.last_name = last.into();
        self
    }
}

fn names_from_login(login: &str) -> (String, String) {
    let local = login.split('@').next().unwrap_or(login);
    let mut parts = local
        .split(['.', '_', '-'])
        .filter(|p| !p.is_empty())
        .map(capitalise);
    let first = parts.next().unwrap_or_else(|| "Test".to_string());
    let rest: Vec<String> = parts.collect();
    let last = if rest.is_empty() {
        "User".to_string()
    } else {
        rest.join(" ")
    };
    (first, last)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A snapshot of one user in the fake org, with counters of what was done to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserState {
    pub id: String,
    pub login: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub status: String,
    pub admin_roles: Vec<String>,
    /// Successful `DELETE .../sessions` calls.
    pub sessions_cleared: u32,
    /// Whether any sessions call had `oauthTokens=true`.
    pub oauth_tokens_revoked: bool,
    /// Successful suspends (a second one would be a 400, so normally 0 or 1).
    pub suspended_count: u32,
    pub unsuspended_count: u32,
    /// Successful `POST /oauth2/v1/global-token-revocation` calls for this user.
    pub universal_logouts: u32,
    pub created: SystemTime,
    pub status_changed: Option<SystemTime>,
    pub last_updated: SystemTime,
}

/// The operations the fake knows; used for faults, per-endpoint buckets and the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `GET /api/v1/users/{id}`
    GetUser,
    /// `GET /api/v1/users` (search, filter, q or plain list)
    Search,
    /// `GET /api/v1/users/{userId}/roles`
    Roles,
    /// `POST /api/v1/users/{id}/lifecycle/suspend`
    Suspend,
    /// `DELETE /api/v1/users/{userId}/sessions`
    ClearSessions,
    /// `POST /api/v1/users/{id}/lifecycle/unsuspend`
    Unsuspend,
    /// `POST /oauth2/v1/token` (its own bucket by default)
    Token,
    /// `POST /oauth2/v1/global-token-revocation` (Universal Logout)
    GlobalTokenRevocation,
}

/// One request as the fake received and answered it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Arrival order, from 0.
    pub seq: u64,
    pub method: String,
    /// Raw path, still percent-encoded.
    pub path: String,
    /// Raw query string (without `?`), if any.
    pub query: Option<String>,
    /// All request headers, names lower-case; the credential in `authorization` is redacted.
    pub headers: Vec<(String, String)>,
    /// The operation the path maps to (None for unknown paths).
    pub operation: Option<Operation>,
    /// The user the path resolved to, if any.
    pub user_id: Option<String>,
    /// HTTP status answered.
    pub status: u16,
    pub x_okta_request_id: String,
    /// Answered by an injected [`Fault`] (no state change).
    pub injected: bool,
    /// Answered 429 (bucket exhausted, concurrency limit or injected).
    pub rate_limited: bool,
    pub received_at: SystemTime,
}

impl RecordedRequest {
    /// A request header by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// POST, PUT, PATCH or DELETE.
    pub fn is_write_method(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }

    /// A query parameter, form-decoded (`+` is a space, as on the server).
    pub fn query_param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// An answer to substitute for the normal one (or an extra delay).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// 500, 503 or 504 (any status works) with an Okta error body.
    ServerError(u16),
    /// Okta's concurrency-limit 429: `X-Rate-Limit-Limit: 0`, `X-Rate-Limit-Remaining: 0`,
    /// `X-Rate-Limit-Reset` an estimate `reset_in_secs` ahead.
    ConcurrencyLimited { reset_in_secs: u64 },
    /// A rate-limit 429 (`E0000047`) with `X-Rate-Limit-Reset` `reset_in_secs` after `Date`.
    RateLimited { reset_in_secs: u64 },
    /// 403 `E0000006` (the token's admin lacks the permission).
    Forbidden,
    /// Any status with any Okta error code and summary.
    Error {
        status: u16,
        error_code: String,
        error_summary: String,
    },
    /// Answer normally, but this much later.
    Delay(Duration),
}

/// Which requests to fault, how, and how many times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Login, id or email (case-insensitive). Matches requests whose path names this
    /// user, and searches whose value equals it or whose results include the user.
    pub user: Option<String>,
    pub operation: Option<Operation>,
    pub kind: FaultKind,
    /// `Some(n)`: the next n matching requests; `None`: forever.
    pub times: Option<u32>,
}

impl Fault {
    /// A fault on the next matching request of any user and operation.
    pub fn new(kind: FaultKind) -> Self {
        Fault {
            user: None,
            operation: None,
            kind,
            times: Some(1),
        }
    }
    pub fn server_error(status: u16) -> Self {
        Self::new(FaultKind::ServerError(status))
    }
    pub fn concurrency_limited() -> Self {
        Self::new(FaultKind::ConcurrencyLimited { reset_in_secs: 1 })
    }
    pub fn rate_limited(reset_in_secs: u64) -> Self {
        Self::new(FaultKind::RateLimited { reset_in_secs })
    }
    pub fn forbidden() -> Self {
        Self::new(FaultKind::Forbidden)
    }
    pub fn delay(d: Duration) -> Self {
        Self::new(FaultKind::Delay(d))
    }
    /// Only requests concerning this user (login, id or email).
    pub fn for_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }
    /// Only this operation.
    pub fn on(mut self, op: Operation) -> Self {
        self.operation = Some(op);
        self
    }
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
    pub fn forever(mut self) -> Self {
        self.times = None;
        self
    }
}

// ---------------------------------------------------------------------------
// Server plumbing shared with fake_slack
// ---------------------------------------------------------------------------

/// Stops the server (gracefully: idle keep-alive connections close) when the last
/// handle goes away.
pub(crate) struct ServerGuard {
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl ServerGuard {
    pub(crate) async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut task) = task
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Serves `router` on a tokio task until the guard says stop.
pub(crate) fn serve(listener: TcpListener, router: Router) -> ServerGuard {
    let (stop, mut rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let signal = async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(signal)
            .await
        {
            tracing::warn!(error = %e, "fake server stopped with an error");
        }
    });
    ServerGuard {
        stop,
        task: Mutex::new(Some(task)),
    }
}

/// `http://host:port` for a bound address; an unspecified host becomes 127.0.0.1.
pub(crate) fn base_url_for(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

pub(crate) fn random_string(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not poison the fake for everyone else.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// FakeOkta
// ---------------------------------------------------------------------------

/// A running fake Okta org. Cheap to clone; the server stops when the last clone is
/// dropped or on [`FakeOkta::shutdown`].
#[derive(Clone)]
pub struct FakeOkta {
    shared: Arc<Shared>,
    server: Arc<ServerGuard>,
    addr: SocketAddr,
}

impl std::fmt::Debug for FakeOkta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOkta")
            .field("base_url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}

struct Shared {
    token: String,
    base_url: String,
    in_flight: AtomicUsize,
    org: Mutex<Org>,
}

struct User {
    state: UserState,
    /// Role assignment ids, parallel to `state.admin_roles`.
    role_ids: Vec<String>,
}

struct Org {
    users: Vec<User>,
    journal: Vec<RecordedRequest>,
    faults: Vec<Fault>,
    latency: Duration,
    suspendable: Vec<String>,
    concurrency_limit: Option<usize>,
    window_secs: u64,
    shared_bucket: Bucket,
    op_buckets: HashMap<Operation, Bucket>,
    oauth: OAuthState,
}

#[derive(Clone, Copy)]
struct Bucket {
    limit: u32,
    window_start: u64,
    used: u32,
}

impl Bucket {
    fn new(limit: u32) -> Self {
        Bucket {
            limit,
            window_start: 0,
            used: 0,
        }
    }

    fn roll(&mut self, window_start: u64) {
        if self.window_start != window_start {
            self.window_start = window_start;
            self.used = 0;
        }
    }
}

#[derive(Clone, Copy)]
struct RateHeaders {
    limit: u32,
    remaining: u32,
    reset: u64,
}

impl FakeOkta {
    /// Starts on a random port of 127.0.0.1.
    pub async fn start(api_token: &str) -> FakeOkta {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), api_token)
            .await
            .expect("bind a free port on 127.0.0.1 for the fake Okta")
    }

    /// Starts on a given address (`make local` uses a fixed port).
    pub async fn start_on(addr: SocketAddr, api_token: &str) -> std::io::Result<FakeOkta> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let shared = Arc::new(Shared {
            token: api_token.to_string(),
            base_url: base_url_for(local),
            in_flight: AtomicUsize::new(0),
            org: Mutex::new(Org {
                users: Vec::new(),
                journal: Vec::new(),
                faults: Vec::new(),
                latency: Duration::ZERO,
                suspendable: vec!["ACTIVE".to_string()],
                concurrency_limit: None,
                window_secs: DEFAULT_RATE_WINDOW.as_secs(),
                shared_bucket: Bucket::new(DEFAULT_RATE_LIMIT),
                op_buckets: HashMap::from([(Operation::Token, Bucket::new(DEFAULT_RATE_LIMIT))]),
                oauth: OAuthState::new(),
            }),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let guard = serve(listener, router);
        Ok(FakeOkta {
            shared,
            server: Arc::new(guard),
            addr: local,
        })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API token the fake accepts (`Authorization: SSWS <token>`).
    pub fn api_token(&self) -> String {
        self.shared.token.clone()
    }

    /// Stops accepting connections and waits (up to 5 s) for open ones to finish.
    pub async fn shutdown(&self) {
        self.server.shutdown().await;
    }

    /// Adds a user; returns its new Okta id (`00u` + 17 characters).
    pub fn add_user(&self, user: SeedUser) -> String {
        let mut org = lock(&self.shared.org);
        let mut id = format!("00u{}", random_string(17));
        while org.users.iter().any(|u| u.state.id == id) {
            id = format!("00u{}", random_string(17));
        }
        let now = SystemTime::now();
        let created = now - Duration::from_secs(86_400 * 400);
        let status = user.status.to_ascii_uppercase();
        let role_ids = user
            .admin_roles
            .iter()
            .map(|_| format!("ra1{}", random_string(17)))
            .collect();
        org.users.push(User {
            state: UserState {
                id: id.clone(),
                login: user.login,
                email: user.email,
                first_name: user.first_name,
                last_name: user.last_name,
                status,
                admin_roles: user.admin_roles,
                sessions_cleared: 0,
                oauth_tokens_revoked: false,
                suspended_count: 0,
                unsuspended_count: 0,
                universal_logouts: 0,
                created,
                status_changed: Some(created + Duration::from_secs(60)),
                last_updated: created + Duration::from_secs(60),
            },
            role_ids,
        });
        id
    }

    /// A user by id (exact) or login (case-insensitive).
    pub fn user(&self, login_or_id: &str) -> Option<UserState> {
        let org = lock(&self.shared.org);
        org.find_by_id_or_login(login_or_id)
            .map(|i| org.users[i].state.clone())
    }

    /// Every user, in the order they were added.
    pub fn users(&self) -> Vec<UserState> {
        lock(&self.shared.org)
            .users
            .iter()
            .map(|u| u.state.clone())
            .collect()
    }

    /// Changes a user's status behind the client's back (as another admin would).
    /// Returns false if there is no such user.
    pub fn set_status(&self, login_or_id: &str, status: &str) -> bool {
        let mut org = lock(&self.shared.org);
        match org.find_by_id_or_login(login_or_id) {
            Some(i) => {
                let now = SystemTime::now();
                let s = &mut org.users[i].state;
                s.status = status.to_ascii_uppercase();
                s.status_changed = Some(now);
                s.last_updated = now;
                true
            }
            None => false,
        }
    }

    /// Every request in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.org).journal.clone()
    }

    /// POST/PUT/PATCH/DELETE requests, except those answered 429 (not processed)
    /// and token requests (not a change to the org; see [`FakeOkta::token_requests`]).
    /// A global token revocation is a write (to the user).
    pub fn writes(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.org)
            .journal
            .iter()
            .filter(|r| {
                r.is_write_method() && !r.rate_limited && r.operation != Some(Operation::Token)
            })
            .cloned()
            .collect()
    }

    /// Forgets the request journal, token requests included (users, apps,
    /// tokens, used `jti`s and settings are kept).
    pub fn clear_requests(&self) {
        let mut org = lock(&self.shared.org);
        org.journal.clear();
        org.oauth.token_requests.clear();
    }

    /// Sets the limit of the shared bucket (every endpoint without its own bucket).
    /// The current window's count is kept.
    pub fn set_rate_limit(&self, limit_per_minute: u32) {
        lock(&self.shared.org).shared_bucket.limit = limit_per_minute;
    }

    /// Gives one operation its own bucket, like Okta's per-endpoint limits.
    pub fn set_rate_limit_for(&self, op: Operation, limit_per_minute: u32) {
        let mut org = lock(&self.shared.org);
        org.op_buckets
            .entry(op)
            .or_insert_with(|| Bucket::new(limit_per_minute))
            .limit = limit_per_minute;
    }

    /// Shortens the rate-limit window (default 60 s) so tests need not wait a
    /// minute for a reset. Windows stay aligned to multiples of it since the epoch.
    pub fn set_rate_window(&self, window: Duration) {
        let mut org = lock(&self.shared.org);
        org.window_secs = window.as_secs().max(1);
        org.shared_bucket.window_start = 0;
        for b in org.op_buckets.values_mut() {
            b.window_start = 0;
        }
    }

    /// Answers 429 with the concurrency-limit headers when more than `limit`
    /// requests are in flight (`None`: unlimited, the default).
    pub fn set_concurrency_limit(&self, limit: Option<usize>) {
        lock(&self.shared.org).concurrency_limit = limit;
    }

    /// Delays every answer by `d` (the request is processed first, so a client
    /// that gives up waiting may still have changed state).
    pub fn set_latency(&self, d: Duration) {
        lock(&self.shared.org).latency = d;
    }

    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.org).faults.push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.org).faults.clear();
    }

    /// Statuses from which suspend succeeds (default `["ACTIVE"]`, as documented).
    pub fn set_suspendable_statuses(&self, statuses: &[&str]) {
        lock(&self.shared.org).suspendable =
            statuses.iter().map(|s| s.to_ascii_uppercase()).collect();
    }
}

/// OAuth 2.0 service apps, tokens, DPoP and Universal Logout.
impl FakeOkta {
    /// Registers an API Services app (or replaces the one with the same client
    /// id, as a key rotation would). Panics if `public_jwk` is not a public RSA
    /// (2048+) or EC P-256 JWK.
    pub fn register_app(&self, app: OAuthApp) {
        lock(&self.shared.org).oauth.register(app);
    }

    /// The registered apps.
    pub fn apps(&self) -> Vec<OAuthApp> {
        lock(&self.shared.org).oauth.apps()
    }

    /// `<base_url>/oauth2/v1/token`: a client assertion's `aud` and a token
    /// request proof's `htu`.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.shared.base_url)
    }

    /// The lifetime of tokens issued from now on (default one hour, Okta's).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        lock(&self.shared.org).oauth.set_lifetime(lifetime);
    }

    /// Makes every token issued so far expired: the next call with one gets 401.
    pub fn expire_all_tokens(&self) {
        lock(&self.shared.org).oauth.expire_all(SystemTime::now());
    }

    /// The current DPoP nonce (what `DPoP-Nonce` announces).
    pub fn dpop_nonce(&self) -> String {
        lock(&self.shared.org).oauth.nonce()
    }

    /// Makes a new current DPoP nonce and returns it; the previous one is
    /// still accepted (Okta keeps accepting an old nonce for a while), the one
    /// before that no longer.
    pub fn rotate_dpop_nonce(&self) -> String {
        lock(&self.shared.org).oauth.rotate_nonce()
    }

    /// When on, API calls with a DPoP token need the current (or previous)
    /// nonce in their proof, else 401 `use_dpop_nonce` with a `DPoP-Nonce`
    /// header. Off by default, as in Okta today.
    pub fn require_resource_nonce(&self, on: bool) {
        lock(&self.shared.org).oauth.set_resource_nonce(on);
    }

    /// Whether the org has Universal Logout (default true); without it,
    /// global token revocation is answered 403 `E0000006`.
    pub fn set_universal_logout_licensed(&self, licensed: bool) {
        lock(&self.shared.org)
            .oauth
            .set_universal_logout_licensed(licensed);
    }

    /// Every token request in arrival order, whatever the answer (also those
    /// answered by a fault or 429).
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        lock(&self.shared.org).oauth.token_requests.clone()
    }

    /// Every client assertion `jti` consumed so far, in order.
    pub fn used_assertion_jtis(&self) -> Vec<String> {
        lock(&self.shared.org).oauth.used_assertion_jtis()
    }

    /// Every access token issued so far (without the tokens themselves).
    pub fn tokens_issued(&self) -> Vec<IssuedToken> {
        lock(&self.shared.org).oauth.tokens_issued()
    }
}

// ---------------------------------------------------------------------------
// Lookups
// ---------------------------------------------------------------------------

impl Org {
    fn find_by_id(&self, id: &str) -> Option<usize> {
        self.users.iter().position(|u| u.state.id == id)
    }

    fn find_by_id_or_login(&self, key: &str) -> Option<usize> {
        self.find_by_id(key).or_else(|| {
            self.users
                .iter()
                .position(|u| u.state.login.eq_ignore_ascii_case(key))
        })
    }

    /// What `{id}` in `/api/v1/users/{id}` accepts: id, login, or unambiguous shortname.
    fn resolve_path_user(&self, key: &str) -> Option<usize> {
        // Okta cannot fetch a login containing '/' by path (documented), whatever the encoding.
        if key.is_empty() || key.contains('/') {
            return None;
        }
        if let Some(i) = self.find_by_id_or_login(key) {
            return Some(i);
        }
        if key.contains('@') {
            return None;
        }
        let mut hits = self.users.iter().enumerate().filter(|(_, u)| {
            let short = u.state.login.split('@').next().unwrap_or("");
            u.state.login.contains('@') && short.eq_ignore_ascii_case(key)
        });
        match (hits.next(), hits.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    fn bucket_for(&mut self, op: Option<Operation>) -> &mut Bucket {
        match op {
            Some(op) if self.op_buckets.contains_key(&op) => {
                self.op_buckets.get_mut(&op).expect("checked")
            }
            _ => &mut self.shared_bucket,
        }
    }

    fn window_start(&self, now_secs: u64) -> u64 {
        now_secs - now_secs % self.window_secs
    }
}

// ---------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lifecycle {
    Suspend,
    Unsuspend,
}

enum Route {
    List,
    GetUser(String),
    Lifecycle(String, Lifecycle),
    Sessions(String),
    Roles(String),
    Token,
    GlobalTokenRevocation,
    WrongMethod(&'static str),
    NotFound,
}

impl Route {
    fn operation(&self) -> Option<Operation> {
        Some(match self {
            Route::List => Operation::Search,
            Route::GetUser(_) => Operation::GetUser,
            Route::Lifecycle(_, Lifecycle::Suspend) => Operation::Suspend,
            Route::Lifecycle(_, Lifecycle::Unsuspend) => Operation::Unsuspend,
            Route::Sessions(_) => Operation::ClearSessions,
            Route::Roles(_) => Operation::Roles,
            Route::Token => Operation::Token,
            Route::GlobalTokenRevocation => Operation::GlobalTokenRevocation,
            Route::WrongMethod(_) | Route::NotFound => return None,
        })
    }
}

/// Routes on the raw path; the user segment is percent-decoded exactly once.
fn route(method: &Method, raw_path: &str) -> Route {
    if raw_path == TOKEN_PATH {
        // Any method: the token endpoint answers a wrong one itself, OAuth-style.
        return Route::Token;
    }
    if raw_path == GLOBAL_TOKEN_REVOCATION_PATH {
        return if method == Method::POST {
            Route::GlobalTokenRevocation
        } else {
            Route::WrongMethod("POST")
        };
    }
    let Some(rest) = raw_path.strip_prefix("/api/v1/users") else {
        return Route::NotFound;
    };
    if rest.is_empty() || rest == "/" {
        return if method == Method::GET {
            Route::List
        } else {
            Route::WrongMethod("GET")
        };
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Route::NotFound;
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let Ok(user) = percent_encoding::percent_decode_str(segs[0]).decode_utf8() else {
        return Route::NotFound;
    };
    if user.is_empty() {
        return Route::NotFound;
    }
    let user = user.into_owned();
    let want = |m: Method, allow: &'static str, r: Route| {
        if *method == m {
            r
        } else {
            Route::WrongMethod(allow)
        }
    };
    match segs[1..] {
        [] => want(Method::GET, "GET", Route::GetUser(user)),
        ["roles"] => want(Method::GET, "GET", Route::Roles(user)),
        ["sessions"] => want(Method::DELETE, "DELETE", Route::Sessions(user)),
        ["lifecycle", "suspend"] => want(
            Method::POST,
            "POST",
            Route::Lifecycle(user, Lifecycle::Suspend),
        ),
        ["lifecycle", "unsuspend"] => want(
            Method::POST,
            "POST",
            Route::Lifecycle(user, Lifecycle::Unsuspend),
        ),
        _ => Route::NotFound,
    }
}

// ---------------------------------------------------------------------------
// Handling
// ---------------------------------------------------------------------------

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What to send back, before headers are rendered.
struct Answer {
    status: StatusCode,
    body: Option<Value>,
    rate: RateHeaders,
    extra: Vec<(HeaderName, String)>,
}

impl Answer {
    fn json(status: StatusCode, body: Value, rate: RateHeaders) -> Self {
        Answer {
            status,
            body: Some(body),
            rate,
            extra: Vec::new(),
        }
    }
}

/// The largest request body read (token requests and revocations are small).
const MAX_BODY_BYTES: usize = 64 * 1024;

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let in_flight = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlight(&shared.in_flight);
    let now = SystemTime::now();
    let request_id = random_string(24);
    let (parts, body) = req.into_parts();
    // An unreadable or oversized body reads as empty, and is then malformed.
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .unwrap_or_default();
    let (answer, delay) = process(&shared, &parts, &body, now, in_flight, &request_id);
    let response = render(answer, now, &request_id);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}

fn process(
    shared: &Shared,
    req: &http::request::Parts,
    body: &[u8],
    now: SystemTime,
    in_flight: usize,
    request_id: &str,
) -> (Answer, Duration) {
    let now_secs = epoch_secs(now);
    let method = req.method.clone();
    let raw_path = req.uri.path().to_string();
    let raw_query = req.uri.query().map(str::to_string);
    let route = route(&method, &raw_path);
    let op = route.operation();

    let mut org = lock(&shared.org);
    let window_start = org.window_start(now_secs);
    let window_secs = org.window_secs;
    let latency = org.latency;
    let mut delay = latency;

    let mut injected = false;
    let mut user_id = None;

    let answer = 'answer: {
        // The token endpoint authenticates the client itself, from the body.
        let principal = if matches!(route, Route::Token) {
            None
        } else {
            match oauth::authenticate(
                &mut org.oauth,
                &shared.token,
                &shared.base_url,
                &method,
                &raw_path,
                &req.headers,
                now,
            ) {
                Ok(p) => Some(p),
                Err(rejection) => {
                    // A rejected token does not use up the bucket; show its current state.
                    let b = *org.bucket_for(op);
                    let used = if b.window_start == window_start {
                        b.used
                    } else {
                        0
                    };
                    let rate = RateHeaders {
                        limit: b.limit,
                        remaining: b.limit.saturating_sub(used),
                        reset: window_start + window_secs,
                    };
                    break 'answer Answer {
                        status: rejection.status,
                        body: Some(rejection.body),
                        rate,
                        extra: rejection.extra,
                    };
                }
            }
        };
        if org.concurrency_limit.is_some_and(|limit| in_flight > limit) {
            break 'answer concurrency_429(now_secs + 1);
        }
        let bucket = org.bucket_for(op);
        bucket.roll(window_start);
        if bucket.used >= bucket.limit {
            let rate = RateHeaders {
                limit: bucket.limit,
                remaining: 0,
                reset: window_start + window_secs,
            };
            break 'answer rate_429(rate);
        }
        bucket.used += 1;
        let rate = RateHeaders {
            limit: bucket.limit,
            remaining: bucket.limit - bucket.used,
            reset: window_start + window_secs,
        };

        // Scopes: an OAuth token may only do what it was granted (SSWS: anything).
        if let (Some(p), Some(op)) = (&principal, op)
            && !p.allows(op)
        {
            let r = oauth::insufficient_scope(&raw_path);
            break 'answer Answer {
                status: r.status,
                body: Some(r.body),
                rate,
                extra: r.extra,
            };
        }

        // Resolve first (read only): faults match on who the request concerns.
        let query = parse_query(raw_query.as_deref());
        let revocation =
            matches!(route, Route::GlobalTokenRevocation).then(|| oauth::parse_revocation(body));
        let (target_idx, targets, list): (
            Option<usize>,
            Vec<String>,
            Option<Result<ListPage, Answer>>,
        ) = match &route {
            Route::GetUser(k) | Route::Lifecycle(k, _) => {
                (org.resolve_path_user(k), vec![k.clone()], None)
            }
            Route::Sessions(k) | Route::Roles(k) => (org.find_by_id(k), vec![k.clone()], None),
            Route::List => {
                let (values, page) = list_users(&org, &shared.base_url, &query, rate);
                (None, values, Some(page))
            }
            Route::GlobalTokenRevocation => match &revocation {
                Some(Ok(id)) => (org.find_by_id(id), vec![id.clone()], None),
                _ => (None, Vec::new(), None),
            },
            Route::Token | Route::WrongMethod(_) | Route::NotFound => (None, Vec::new(), None),
        };
        user_id = target_idx.map(|i| org.users[i].state.id.clone());
        let mut concerned: Vec<usize> = target_idx.into_iter().collect();
        if let Some(Ok(page)) = &list {
            concerned.extend(page.matched.iter().copied());
        }

        if let Some(kind) = take_fault(&mut org, op, &targets, &concerned, &mut delay) {
            injected = true;
            break 'answer fault_answer(kind, rate, now_secs);
        }

        match route {
            Route::NotFound => Answer::json(
                StatusCode::NOT_FOUND,
                error_body(
                    "E0000007",
                    &format!("Not found: Resource not found: {raw_path} (Endpoint)"),
                    &[],
                ),
                rate,
            ),
            Route::WrongMethod(allow) => {
                let mut a = Answer::json(
                    StatusCode::METHOD_NOT_ALLOWED,
                    error_body(
                        "E0000022",
                        "The endpoint does not support the provided HTTP method",
                        &[],
                    ),
                    rate,
                );
                a.extra.push((header::ALLOW, allow.to_string()));
                a
            }
            Route::Token => oauth::token(
                &mut org.oauth,
                &shared.base_url,
                &method,
                &req.headers,
                body,
                now,
                rate,
            ),
            Route::GlobalTokenRevocation => {
                let id = match revocation.expect("revocation route parses its body") {
                    Ok(id) => id,
                    Err(why) => break 'answer oauth::bad_revocation(why, rate),
                };
                if !org.oauth.universal_logout_licensed() {
                    break 'answer oauth::not_licensed(rate);
                }
                match target_idx {
                    None => user_not_found(&id, rate),
                    Some(i) => {
                        org.users[i].state.universal_logouts += 1;
                        no_content(rate)
                    }
                }
            }
            Route::List => match list.expect("list route computes a page") {
                Ok(page) => {
                    let body = Value::Array(
                        page.shown
                            .iter()
                            .map(|&i| user_json(&shared.base_url, &org.users[i]))
                            .collect(),
                    );
                    let mut a = Answer::json(StatusCode::OK, body, rate);
                    for link in page.links {
                        a.extra.push((header::LINK, link));
                    }
                    a
                }
                Err(a) => a,
            },
            Route::GetUser(k) => match target_idx {
                Some(i) => Answer::json(
                    StatusCode::OK,
                    user_json(&shared.base_url, &org.users[i]),
                    rate,
                ),
                None => user_not_found(&k, rate),
            },
            Route::Roles(k) => match target_idx {
                Some(i) => Answer::json(
                    StatusCode::OK,
                    roles_json(&shared.base_url, &org.users[i]),
                    rate,
                ),
                None => user_not_found(&k, rate),
            },
            Route::Sessions(k) => match target_idx {
                None => user_not_found(&k, rate),
                Some(i) => {
                    let oauth = match query.get("oauthTokens").map(|v| v.to_ascii_lowercase()) {
                        None => false,
                        Some(v) if v == "false" => false,
                        Some(v) if v == "true" => true,
                        Some(_) => {
                            break 'answer Answer::json(
                                StatusCode::BAD_REQUEST,
                                error_body("E0000001", "Api validation failed: oauthTokens", &[]),
                                rate,
                            );
                        }
                    };
                    let s = &mut org.users[i].state;
                    s.sessions_cleared += 1;
                    s.oauth_tokens_revoked |= oauth;
                    no_content(rate)
                }
            },
            Route::Lifecycle(k, action) => match target_idx {
                None => user_not_found(&k, rate),
                Some(i) => {
                    let suspendable = org.suspendable.clone();
                    let s = &mut org.users[i].state;
                    let (allowed, to, op_name, cause) = match action {
                        Lifecycle::Suspend => (
                            suspendable
                                .iter()
                                .any(|st| st.eq_ignore_ascii_case(&s.status)),
                            "SUSPENDED",
                            "suspendUser",
                            "Cannot suspend a user that is not active",
                        ),
                        Lifecycle::Unsuspend => (
                            s.status.eq_ignore_ascii_case("SUSPENDED"),
                            "ACTIVE",
                            "unsuspendUser",
                            "Cannot unsuspend a user that is not suspended",
                        ),
                    };
                    if !allowed {
                        break 'answer Answer::json(
                            StatusCode::BAD_REQUEST,
                            error_body(
                                "E0000001",
                                &format!("Api validation failed: {op_name}"),
                                &[cause],
                            ),
                            rate,
                        );
                    }
                    s.status = to.to_string();
                    s.status_changed = Some(now);
                    s.last_updated = now;
                    match action {
                        Lifecycle::Suspend => s.suspended_count += 1,
                        Lifecycle::Unsuspend => s.unsuspended_count += 1,
                    }
                    Answer::json(StatusCode::OK, json!({}), rate)
                }
            },
        }
    };

    let seq = org.journal.len() as u64;
    let rate_limited = answer.status == StatusCode::TOO_MANY_REQUESTS;
    if op == Some(Operation::Token) {
        let mut t = oauth::describe_token_request(seq, &req.headers, body, now);
        t.status = answer.status.as_u16();
        t.error = answer
            .body
            .as_ref()
            .and_then(|b| b.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string);
        t.token_type = answer
            .body
            .as_ref()
            .filter(|_| answer.status == StatusCode::OK)
            .and_then(|b| b.get("token_type"))
            .and_then(Value::as_str)
            .and_then(|tt| match tt {
                "DPoP" => Some(TokenType::DPoP),
                "Bearer" => Some(TokenType::Bearer),
                _ => None,
            });
        t.injected = injected;
        t.rate_limited = rate_limited;
        org.oauth.token_requests.push(t);
    }
    org.journal.push(RecordedRequest {
        seq,
        method: method.to_string(),
        path: raw_path,
        query: raw_query,
        headers: recorded_headers(&req.headers),
        operation: op,
        user_id,
        status: answer.status.as_u16(),
        x_okta_request_id: request_id.to_string(),
        injected,
        rate_limited,
        received_at: now,
    });
    (answer, delay)
}

/// Consumes matching faults: every matching delay adds up, the first matching
/// replacement wins.
fn take_fault(
    org: &mut Org,
    op: Option<Operation>,
    targets: &[String],
    concerned: &[usize],
    delay: &mut Duration,
) -> Option<FaultKind> {
    let mut replacement = None;
    let mut i = 0;
    while i < org.faults.len() {
        let f = &org.faults[i];
        let op_ok = f.operation.is_none() || f.operation == op;
        let user_ok = match &f.user {
            None => true,
            Some(who) => {
                targets.iter().any(|t| t.eq_ignore_ascii_case(who))
                    || concerned.iter().any(|&u| {
                        let s = &org.users[u].state;
                        s.id == *who
                            || s.login.eq_ignore_ascii_case(who)
                            || s.email.eq_ignore_ascii_case(who)
                    })
            }
        };
        let is_delay = matches!(f.kind, FaultKind::Delay(_));
        if !(op_ok && user_ok) || (!is_delay && replacement.is_some()) {
            i += 1;
            continue;
        }
        match &f.kind {
            FaultKind::Delay(d) => *delay += *d,
            other => replacement = Some(other.clone()),
        }
        let f = &mut org.faults[i];
        match &mut f.times {
            Some(n) if *n <= 1 => {
                org.faults.remove(i);
                continue;
            }
            Some(n) => *n -= 1,
            None => {}
        }
        i += 1;
    }
    replacement
}

fn fault_answer(kind: FaultKind, rate: RateHeaders, now_secs: u64) -> Answer {
    match kind {
        FaultKind::ServerError(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let summary = match status.as_u16() {
                503 => "Service Unavailable",
                504 => "Gateway Timeout",
                502 => "Bad Gateway",
                _ => "Internal Server Error",
            };
            Answer::json(status, error_body("E0000009", summary, &[]), rate)
        }
        FaultKind::ConcurrencyLimited { reset_in_secs } => {
            concurrency_429(now_secs + reset_in_secs)
        }
        FaultKind::RateLimited { reset_in_secs } => rate_429(RateHeaders {
            limit: rate.limit,
            remaining: 0,
            reset: now_secs + reset_in_secs,
        }),
        FaultKind::Forbidden => Answer::json(
            StatusCode::FORBIDDEN,
            error_body(
                "E0000006",
                "You do not have permission to perform the requested action",
                &[],
            ),
            rate,
        ),
        FaultKind::Error {
            status,
            error_code,
            error_summary,
        } => Answer::json(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            error_body(&error_code, &error_summary, &[]),
            rate,
        ),
        FaultKind::Delay(_) => unreachable!("delays are not replacements"),
    }
}

fn rate_429(rate: RateHeaders) -> Answer {
    Answer::json(
        StatusCode::TOO_MANY_REQUESTS,
        error_body(
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
            &[],
        ),
        rate,
    )
}

fn concurrency_429(reset: u64) -> Answer {
    rate_429(RateHeaders {
        limit: 0,
        remaining: 0,
        reset,
    })
}

fn no_content(rate: RateHeaders) -> Answer {
    Answer {
        status: StatusCode::NO_CONTENT,
        body: None,
        rate,
        extra: Vec::new(),
    }
}

fn user_not_found(key: &str, rate: RateHeaders) -> Answer {
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

fn error_body(code: &str, summary: &str, causes: &[&str]) -> Value {
    json!({
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": format!("oae{}", random_string(22)),
        "errorCauses": causes.iter().map(|c| json!({ "errorSummary": c })).collect::<Vec<_>>(),
    })
}

fn render(answer: Answer, now: SystemTime, request_id: &str) -> Response {
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

fn recorded_headers(headers: &http::HeaderMap) -> Vec<(String, String)> {
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

fn parse_query(raw: Option<&str>) -> HashMap<String, String> {
    // First occurrence wins, as most servers do.
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn okta_time(t: SystemTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from(t)
        .format(&fmt)
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// JSON shapes
// ---------------------------------------------------------------------------

fn user_json(base: &str, u: &User) -> Value {
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

fn roles_json(base: &str, u: &User) -> Value {
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

// ---------------------------------------------------------------------------
// GET /api/v1/users: search, filter, q, limit, after
// ---------------------------------------------------------------------------

struct ListPage {
    /// Every user the query matched (before paging); faults match on these.
    matched: Vec<usize>,
    /// This page.
    shown: Vec<usize>,
    links: Vec<String>,
}

/// Returns the literal values in the expression (for fault matching) and the page.
fn list_users(
    org: &Org,
    base_url: &str,
    query: &HashMap<String, String>,
    rate: RateHeaders,
) -> (Vec<String>, Result<ListPage, Answer>) {
    let bad = |code: &str, summary: &str| {
        Answer::json(
            StatusCode::BAD_REQUEST,
            error_body(code, summary, &[]),
            rate,
        )
    };
    let users = &org.users;
    let (values, matched, default_limit): (Vec<String>, Vec<usize>, usize) =
        if let Some(expr) = query.get("search") {
            match parse_expression(expr, Mode::Search) {
                Ok(e) => (
                    e.values(),
                    (0..users.len())
                        .filter(|&i| e.eval(&users[i].state, Mode::Search))
                        .collect(),
                    200,
                ),
                Err(()) => return (Vec::new(), Err(bad("E0000031", "Invalid search criteria."))),
            }
        } else if let Some(expr) = query.get("filter") {
            match parse_expression(expr, Mode::Filter) {
                Ok(e) => (
                    e.values(),
                    (0..users.len())
                        .filter(|&i| e.eval(&users[i].state, Mode::Filter))
                        .collect(),
                    200,
                ),
                Err(()) => return (Vec::new(), Err(bad("E0000031", "Invalid search criteria."))),
            }
        } else if let Some(q) = query.get("q") {
            let q = q.to_lowercase();
            let hits = (0..users.len())
                .filter(|&i| {
                    let s = &users[i].state;
                    s.status != "DEPROVISIONED"
                        && [&s.first_name, &s.last_name, &s.email]
                            .iter()
                            .any(|v| v.to_lowercase().starts_with(&q))
                })
                .collect();
            (vec![query["q"].clone()], hits, 10)
        } else {
            // A plain list omits DEPROVISIONED users (documented).
            (
                Vec::new(),
                (0..users.len())
                    .filter(|&i| users[i].state.status != "DEPROVISIONED")
                    .collect(),
                200,
            )
        };

    let limit = match query.get("limit") {
        None => default_limit,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n >= 1 => (n as usize).min(200),
            _ => return (values, Err(bad("E0000001", "Api validation failed: limit"))),
        },
    };
    let start = match query.get("after") {
        None => 0,
        Some(after) => match users.iter().position(|u| &u.state.id == after) {
            Some(pos) => matched
                .iter()
                .position(|&i| i > pos)
                .unwrap_or(matched.len()),
            None => matched.len(),
        },
    };
    let shown: Vec<usize> = matched[start..].iter().take(limit).copied().collect();
    let mut links = Vec::new();
    let mut params = url::form_urlencoded::Serializer::new(String::new());
    for key in ["search", "filter", "q"] {
        if let Some(v) = query.get(key) {
            params.append_pair(key, v);
        }
    }
    params.append_pair("limit", &limit.to_string());
    let params = params.finish();
    let base = format!("{base_url}/api/v1/users");
    links.push(format!("<{base}?{params}>; rel=\"self\""));
    if start + shown.len() < matched.len()
        && let Some(&last) = shown.last()
    {
        links.push(format!(
            "<{base}?{params}&after={}>; rel=\"next\"",
            users[last].state.id
        ));
    }
    (
        values,
        Ok(ListPage {
            matched,
            shown,
            links,
        }),
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `search=`: operators and values case-insensitive, many properties.
    Search,
    /// `filter=`: values case-sensitive, few properties, `eq` only (and date ranges).
    Filter,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Eq,
    Sw,
    Co,
    Pr,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp {
        attr: String,
        op: Op,
        value: Option<String>,
    },
}

impl Expr {
    fn values(&self) -> Vec<String> {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => {
                let mut v = a.values();
                v.extend(b.values());
                v
            }
            Expr::Cmp { value, .. } => value.iter().cloned().collect(),
        }
    }

    fn eval(&self, u: &UserState, mode: Mode) -> bool {
        match self {
            Expr::And(a, b) => a.eval(u, mode) && b.eval(u, mode),
            Expr::Or(a, b) => a.eval(u, mode) || b.eval(u, mode),
            Expr::Cmp { attr, op, value } => {
                let actual = attr_value(u, attr);
                let Some(actual) = actual else {
                    return false;
                };
                if *op == Op::Pr {
                    return true;
                }
                let want = value.clone().unwrap_or_default();
                let (a, w) = if mode == Mode::Search {
                    (actual.to_lowercase(), want.to_lowercase())
                } else {
                    (actual, want)
                };
                match op {
                    Op::Eq => a == w,
                    Op::Sw => a.starts_with(&w),
                    Op::Co => a.contains(&w),
                    Op::Gt => a > w,
                    Op::Ge => a >= w,
                    Op::Lt => a < w,
                    Op::Le => a <= w,
                    Op::Pr => true,
                }
            }
        }
    }
}

/// A property's value (None: null). Property names are case-sensitive, as in Okta.
fn attr_value(u: &UserState, attr: &str) -> Option<String> {
    match attr {
        "id" => Some(u.id.clone()),
        "status" => Some(u.status.clone()),
        "created" => Some(okta_time(u.created)),
        "activated" => Some(okta_time(u.created + Duration::from_secs(1))),
        "statusChanged" => u.status_changed.map(okta_time),
        "lastUpdated" => Some(okta_time(u.last_updated)),
        "type.id" => Some(USER_TYPE_ID.to_string()),
        "profile.login" => Some(u.login.clone()),
        "profile.email" => Some(u.email.clone()),
        "profile.firstName" => Some(u.first_name.clone()),
        "profile.lastName" => Some(u.last_name.clone()),
        _ => None,
    }
}

fn attr_allowed(attr: &str, op: Op, mode: Mode) -> bool {
    match mode {
        Mode::Search => {
            let known = matches!(
                attr,
                "id" | "status"
                    | "created"
                    | "activated"
                    | "statusChanged"
                    | "lastUpdated"
                    | "type.id"
            ) || attr.strip_prefix("profile.").is_some_and(|p| {
                !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            let co_ok = matches!(
                attr,
                "profile.firstName" | "profile.lastName" | "profile.email" | "profile.login"
            );
            known && (op != Op::Co || co_ok)
        }
        Mode::Filter => match attr {
            "lastUpdated" => matches!(op, Op::Eq | Op::Gt | Op::Ge | Op::Lt | Op::Le),
            "status" | "id" | "profile.login" | "profile.email" | "profile.firstName"
            | "profile.lastName" => op == Op::Eq,
            _ => false,
        },
    }
}

fn parse_expression(s: &str, mode: Mode) -> Result<Expr, ()> {
    let mut p = Parser {
        s: s.chars().collect(),
        pos: 0,
        mode,
    };
    let e = p.or()?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(());
    }
    Ok(e)
}

struct Parser {
    s: Vec<char>,
    pos: usize,
    mode: Mode,
}

impl Parser {
    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.s.get(self.pos).copied()
    }

    /// A keyword (case-insensitive) followed by whitespace or '('.
    fn keyword(&mut self, word: &str) -> bool {
        let save = self.pos;
        self.ws();
        let n = word.chars().count();
        let here: String = self.s.iter().skip(self.pos).take(n).collect();
        let next = self.s.get(self.pos + n).copied();
        if here.eq_ignore_ascii_case(word) && next.is_some_and(|c| c.is_whitespace() || c == '(') {
            self.pos += n;
            true
        } else {
            self.pos = save;
            false
        }
    }

    fn or(&mut self) -> Result<Expr, ()> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ()> {
        let mut left = self.primary()?;
        while self.keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.primary()?));
        }
        Ok(left)
    }

    fn word(&mut self) -> String {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
        {
            self.pos += 1;
        }
        self.s[start..self.pos].iter().collect()
    }

    fn primary(&mut self) -> Result<Expr, ()> {
        self.ws();
        if self.peek() == Some('(') {
            self.pos += 1;
            let e = self.or()?;
            self.ws();
            if self.peek() != Some(')') {
                return Err(());
            }
            self.pos += 1;
            return Ok(e);
        }
        let attr = self.word();
        if attr.is_empty() {
            return Err(());
        }
        self.ws();
        let op = match self.word().to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "sw" => Op::Sw,
            "co" => Op::Co,
            "pr" => Op::Pr,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            _ => return Err(()),
        };
        if !attr_allowed(&attr, op, self.mode) || (self.mode == Mode::Filter && op == Op::Pr) {
            return Err(());
        }
        let value = if op == Op::Pr {
            None
        } else {
            self.ws();
            Some(self.value()?)
        };
        Ok(Expr::Cmp { attr, op, value })
    }

    /// A double-quoted string (`\"` and `\\` escapes), or a bare true/false/number.
    fn value(&mut self) -> Result<String, ()> {
        if self.peek() != Some('"') {
            let w = self.word();
            let bare_ok = w == "true"
                || w == "false"
                || (!w.is_empty() && w.chars().all(|c| c.is_ascii_digit() || c == '.'));
            return if bare_ok { Ok(w) } else { Err(()) };
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(()),
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    match self.s.get(self.pos + 1) {
                        Some(&c @ ('"' | '\\' | '/')) => out.push(c),
                        _ => return Err(()),
                    }
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}
