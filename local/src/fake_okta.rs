//! An HTTP stand-in for the part of Okta that the dispatcher calls, and
//! nothing more.
//!
//! [`FakeOkta`] serves, on `http://127.0.0.1:<port>`, exactly the requests
//! the dispatcher sends:
//!
//! - `GET /api/v1/users/{login-or-id}` (also an unambiguous shortname);
//! - `GET /api/v1/users?search=<attribute> eq "<value>"` with `profile.login`
//!   or `profile.email` (see the `search` submodule; any other list query is
//!   400 `E0000031`);
//! - `GET /api/v1/users/{id}/roles`;
//! - `POST /api/v1/users/{id}/lifecycle/suspend|unsuspend`;
//! - `DELETE /api/v1/users/{id}/sessions?oauthTokens=true`;
//! - `GET /api/v1/groups/{groupId}`, `PUT`/`DELETE
//!   /api/v1/groups/{groupId}/users/{userId}` and `GET
//!   /api/v1/users/{id}/groups` (see the `groups` submodule: Okta groups
//!   only, 403 for an app group, the groups rate-limit bucket);
//! - `POST /oauth2/v1/token` and `POST /oauth2/v1/global-token-revocation`.
//!
//! It answers the way Okta does: SSWS token auth, Okta error bodies and codes,
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
//! Where each part lives: `org` (users, look-ups, lifecycle), `routing` (one
//! request from path to journal entry), `limits` (rate limits and faults),
//! `render` (Okta's JSON and headers), `search`, `oauth` (tokens, DPoP,
//! scopes) and `jws` (signature checks).

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use tokio::net::TcpListener;

use crate::http_stub::{ServerGuard, base_url_for, serve};
use crate::lock;

mod groups;
mod jws;
mod limits;
mod oauth;
mod org;
mod render;
mod routing;
mod search;

pub use groups::{GroupState, GroupType};
pub use limits::{DEFAULT_RATE_LIMIT, DEFAULT_RATE_WINDOW, Fault, FaultKind};
pub use oauth::{
    DEFAULT_TOKEN_LIFETIME, DISPATCHER_SCOPES, DpopPolicy, GLOBAL_TOKEN_REVOCATION_PATH,
    IssuedToken, OAuthApp, TOKEN_PATH, TokenRequest, TokenType,
};
pub use org::{SeedUser, UserState};

use limits::Bucket;
use org::Org;

/// The operations the fake knows; used for faults, per-endpoint buckets and the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `GET /api/v1/users/{id}`
    GetUser,
    /// `GET /api/v1/users?search=...`
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
    /// `GET /api/v1/groups/{groupId}` (the groups bucket, with the two below)
    GetGroup,
    /// `PUT /api/v1/groups/{groupId}/users/{userId}`
    AddGroupMember,
    /// `DELETE /api/v1/groups/{groupId}/users/{userId}`
    RemoveGroupMember,
    /// `GET /api/v1/users/{userId}/groups`
    ListUserGroups,
}

impl Operation {
    /// The key of the operation's own bucket, if it has one: group calls
    /// share Okta's groups bucket (kept under [`Operation::GetGroup`]).
    pub fn bucket_key(self) -> Operation {
        match self {
            Operation::AddGroupMember | Operation::RemoveGroupMember => Operation::GetGroup,
            other => other,
        }
    }
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

/// What the handler shares: the API token, the base URL, the org.
struct Shared {
    token: String,
    base_url: String,
    in_flight: AtomicUsize,
    org: Mutex<Org>,
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
            org: Mutex::new(Org::new()),
        });
        let router = Router::new()
            .fallback(routing::handle)
            .with_state(shared.clone());
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
        lock(&self.shared.org).add_user(user)
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

    /// Adds a group; returns its new id (`00g` + 17 characters).
    pub fn add_group(&self, name: &str, kind: GroupType) -> String {
        lock(&self.shared.org).add_group(name, kind)
    }

    /// Adds a group with a known id (settings name it before it exists),
    /// replacing any group with that id.
    pub fn add_group_with_id(&self, id: &str, name: &str, kind: GroupType) {
        lock(&self.shared.org).add_group_with_id(id, name, kind);
    }

    /// A group by id.
    pub fn group(&self, id: &str) -> Option<GroupState> {
        let org = lock(&self.shared.org);
        org.find_group(id).map(|g| org.groups[g].clone())
    }

    /// Makes a user (by id or login) a member, as another admin would.
    /// Returns false if there is no such group or user.
    pub fn add_group_member(&self, group_id: &str, login_or_id: &str) -> bool {
        let mut org = lock(&self.shared.org);
        let (Some(g), Some(i)) = (
            org.find_group(group_id),
            org.find_by_id_or_login(login_or_id),
        ) else {
            return false;
        };
        let id = org.users[i].state.id.clone();
        let group = &mut org.groups[g];
        if !group.members.contains(&id) {
            group.members.push(id);
        }
        true
    }

    /// Changes a user's status behind the client's back (as another admin would).
    /// Returns false if there is no such user.
    pub fn set_status(&self, login_or_id: &str, status: &str) -> bool {
        let mut org = lock(&self.shared.org);
        match org.find_by_id_or_login(login_or_id) {
            Some(i) => {
                org.set_status(i, status);
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
            .entry(op.bucket_key())
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

    /// The access tokens issued, as sent: for tests that check no token
    /// ever reaches a log.
    pub fn issued_token_values(&self) -> Vec<String> {
        lock(&self.shared.org).oauth.token_values()
    }
}
