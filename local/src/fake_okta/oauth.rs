//! The fake's OAuth 2.0 side: service apps authenticating with
//! `private_key_jwt`, DPoP (RFC 9449) at the token endpoint and on API calls,
//! scopes per call, and Universal Logout, as described in
//! `okta-oauth.md` of the shared reference.
//!
//! - `POST /oauth2/v1/token` (the `token` submodule): `client_credentials`
//!   only; the client assertion is checked (alg RS256/ES256, `kid`, signature
//!   against the registered JWK, `iss` = `sub` = client id, `aud` = the token
//!   URL, `exp` in the future and at most an hour ahead, `iat`, a never-seen
//!   `jti`, consumed on every request that gets as far as parsing it,
//!   whatever the answer); then DPoP per the app's [`DpopPolicy`] (proof,
//!   nonce handshake); then the scopes, all of which must be granted to the
//!   app.
//! - API calls ([`authenticate`]): `SSWS <api token>`, `Bearer <token>` for a
//!   Bearer token, `DPoP <token>` plus a proof (bound key, `htm`, `htu`,
//!   `ath`, `jti`, `iat`, optionally the nonce) for a DPoP-bound one.
//!   [`Principal::allows`] is the scope check per operation.
//! - DPoP proofs, at the token endpoint and on API calls: the `dpop` submodule.
//! - `POST /oauth2/v1/global-token-revocation` ([`parse_revocation`]).
//!
//! Error descriptions never echo a token, assertion, proof or key.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderName, Method, StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::Operation;
use super::jws::PublicJwk;
use super::limits::RateHeaders;
use super::render::{Answer, error_body};
use crate::http_stub::random_string;

mod dpop;
mod token;

use dpop::{ProofCheck, check_proof};
pub(super) use token::{describe_token_request, token};

/// The token endpoint's path.
pub const TOKEN_PATH: &str = "/oauth2/v1/token";
/// Universal Logout's path.
pub const GLOBAL_TOKEN_REVOCATION_PATH: &str = "/oauth2/v1/global-token-revocation";
/// Okta's access token lifetime (fixed at one hour in Okta).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// The scopes the dispatcher needs: look-ups, suspend/unsuspend/sessions,
/// admin roles, Universal Logout, the quarantine group. [`OAuthApp::new`]
/// grants these.
pub const DISPATCHER_SCOPES: &[&str] = &[
    "okta.users.read",
    "okta.users.manage",
    "okta.roles.read",
    "okta.universalLogout.manage",
    "okta.groups.manage",
];

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How far a client assertion's `exp` may be ahead (one hour, plus a little
/// for whole-second rounding).
const MAX_ASSERTION_LIFETIME_SECS: f64 = 3600.0 + 5.0;
/// How far a DPoP proof's `iat` may be from the fake's clock (Okta: about a
/// minute; the fake is more lenient).
const PROOF_IAT_LEEWAY_SECS: f64 = 300.0;
const DPOP_ALGS: &str = r#"algs="RS256 ES256""#;

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// What an app does about DPoP at the token endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DpopPolicy {
    /// "Require DPoP header in token requests" on (the Admin Console default
    /// for API Services apps): no proof is `400 invalid_dpop_proof`, then the
    /// nonce handshake, then `token_type: DPoP`.
    #[default]
    Required,
    /// DPoP off; a proof, if sent, is ignored and the token is a Bearer token.
    NotUsedIgnoresProof,
    /// DPoP off; a proof is refused with `400 invalid_dpop_proof` "DPoP proof
    /// not expected for this client" (*unverified* which of the two Okta does).
    NotUsedRefusesProof,
}

/// An API Services app (OAuth 2.0 service app) registered in the fake org.
#[derive(Clone, Debug, PartialEq)]
pub struct OAuthApp {
    /// `0oa...`: the assertion's `iss` and `sub`.
    pub client_id: String,
    /// The public key the app authenticates with: RSA (`kty`, `n`, `e`) or
    /// EC P-256 (`kty`, `crv`, `x`, `y`), optionally with a `kid`.
    pub public_jwk: Value,
    /// The Okta API scopes granted to the app.
    pub granted_scopes: Vec<String>,
    pub dpop: DpopPolicy,
}

impl OAuthApp {
    /// An app with [`DISPATCHER_SCOPES`] granted and DPoP required.
    pub fn new(client_id: impl Into<String>, public_jwk: Value) -> Self {
        OAuthApp {
            client_id: client_id.into(),
            public_jwk,
            granted_scopes: DISPATCHER_SCOPES.iter().map(|s| s.to_string()).collect(),
            dpop: DpopPolicy::Required,
        }
    }

    /// A fresh Okta-looking client id (`0oa` + 17 characters).
    pub fn new_client_id() -> String {
        format!("0oa{}", random_string(17))
    }

    /// Replaces the granted scopes.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.granted_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_dpop(mut self, policy: DpopPolicy) -> Self {
        self.dpop = policy;
        self
    }
}

/// The kind of access token issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenType {
    Bearer,
    DPoP,
}

impl TokenType {
    /// `Bearer` or `DPoP`, as in `token_type` and the `Authorization` scheme.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Bearer => "Bearer",
            TokenType::DPoP => "DPoP",
        }
    }
}

/// An access token the fake issued (without the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedToken {
    pub client_id: String,
    pub token_type: TokenType,
    pub scopes: Vec<String>,
    /// The RFC 7638 thumbprint of the DPoP key the token is bound to.
    pub jkt: Option<String>,
    pub issued_at: SystemTime,
    pub expires_at: SystemTime,
}

/// One request to `POST /oauth2/v1/token`, as sent (claims read without
/// verification) and as answered. `seq` matches its [`RecordedRequest`](super::RecordedRequest).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenRequest {
    pub seq: u64,
    /// The assertion's `sub` (else the `client_id` field), as sent.
    pub client_id: Option<String>,
    /// The `scope` field, split on spaces.
    pub scopes: Vec<String>,
    pub assertion_jti: Option<String>,
    pub assertion_alg: Option<String>,
    /// A `DPoP` header was sent.
    pub dpop_proof: bool,
    /// The proof carried a `nonce`.
    pub dpop_nonce: bool,
    pub status: u16,
    /// The OAuth `error` answered, if any (`invalid_client`, `use_dpop_nonce`, ...).
    pub error: Option<String>,
    /// The kind of token issued, on success.
    pub token_type: Option<TokenType>,
    /// Answered by an injected fault (nothing was checked or consumed).
    pub injected: bool,
    pub rate_limited: bool,
    pub received_at: SystemTime,
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

struct App {
    config: OAuthApp,
    key: PublicJwk,
}

struct Token {
    secret: String,
    info: IssuedToken,
}

/// Everything OAuth in the fake org (part of the org, behind its lock).
pub(super) struct OAuthState {
    apps: Vec<App>,
    /// Every assertion `jti` consumed, in order.
    assertion_jtis: Vec<String>,
    seen_assertion_jtis: HashSet<String>,
    seen_proof_jtis: HashSet<String>,
    nonce: String,
    previous_nonce: Option<String>,
    tokens: Vec<Token>,
    pub(super) token_requests: Vec<TokenRequest>,
    lifetime: Duration,
    resource_nonce: bool,
    universal_logout_licensed: bool,
}

impl OAuthState {
    pub(super) fn new() -> Self {
        OAuthState {
            apps: Vec::new(),
            assertion_jtis: Vec::new(),
            seen_assertion_jtis: HashSet::new(),
            seen_proof_jtis: HashSet::new(),
            nonce: new_nonce(),
            previous_nonce: None,
            tokens: Vec::new(),
            token_requests: Vec::new(),
            lifetime: DEFAULT_TOKEN_LIFETIME,
            resource_nonce: false,
            universal_logout_licensed: true,
        }
    }

    /// Adds an app, or replaces the one with the same client id (a key rotation).
    pub(super) fn register(&mut self, app: OAuthApp) {
        let key = PublicJwk::from_value(&app.public_jwk).unwrap_or_else(|why| {
            panic!(
                "register_app({}): the public JWK is not usable: {why}",
                app.client_id
            )
        });
        self.apps.retain(|a| a.config.client_id != app.client_id);
        self.apps.push(App { config: app, key });
    }

    pub(super) fn apps(&self) -> Vec<OAuthApp> {
        self.apps.iter().map(|a| a.config.clone()).collect()
    }

    pub(super) fn set_lifetime(&mut self, lifetime: Duration) {
        self.lifetime = lifetime;
    }

    pub(super) fn expire_all(&mut self, now: SystemTime) {
        for t in &mut self.tokens {
            t.info.expires_at = t.info.expires_at.min(now);
        }
    }

    pub(super) fn nonce(&self) -> String {
        self.nonce.clone()
    }

    /// A new current nonce; the old one stays valid (as Okta keeps accepting
    /// the previous one for a while).
    pub(super) fn rotate_nonce(&mut self) -> String {
        let next = new_nonce();
        self.previous_nonce = Some(std::mem::replace(&mut self.nonce, next));
        self.nonce.clone()
    }

    pub(super) fn set_resource_nonce(&mut self, on: bool) {
        self.resource_nonce = on;
    }

    pub(super) fn set_universal_logout_licensed(&mut self, licensed: bool) {
        self.universal_logout_licensed = licensed;
    }

    pub(super) fn universal_logout_licensed(&self) -> bool {
        self.universal_logout_licensed
    }

    pub(super) fn used_assertion_jtis(&self) -> Vec<String> {
        self.assertion_jtis.clone()
    }

    pub(super) fn tokens_issued(&self) -> Vec<IssuedToken> {
        self.tokens.iter().map(|t| t.info.clone()).collect()
    }

    pub(super) fn token_values(&self) -> Vec<String> {
        self.tokens.iter().map(|t| t.secret.clone()).collect()
    }

    fn nonce_ok(&self, nonce: Option<&str>) -> bool {
        nonce.is_some_and(|n| n == self.nonce || self.previous_nonce.as_deref() == Some(n))
    }

    /// Records the `jti`; false if it was seen before.
    fn consume_assertion_jti(&mut self, jti: &str) -> bool {
        if !self.seen_assertion_jtis.insert(jti.to_string()) {
            return false;
        }
        self.assertion_jtis.push(jti.to_string());
        true
    }
}

fn new_nonce() -> String {
    random_string(43)
}

fn epoch_f64(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// base64url (no padding) of the SHA-256 of the access token: a proof's `ath`.
fn ath_of(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

// ---------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------

/// An OAuth-shaped error: `{"error", "error_description"}`.
fn oauth_error(status: StatusCode, error: &str, description: &str, rate: RateHeaders) -> Answer {
    Answer::json(
        status,
        json!({ "error": error, "error_description": description }),
        rate,
    )
}

fn invalid_client(description: &str, rate: RateHeaders) -> Answer {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        description,
        rate,
    )
}

fn invalid_request(description: &str, rate: RateHeaders) -> Answer {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        description,
        rate,
    )
}

fn dpop_nonce_header(nonce: &str) -> (HeaderName, String) {
    (HeaderName::from_static("dpop-nonce"), nonce.to_string())
}

/// A 401/403 the API answers instead of processing a request.
pub(super) struct Rejection {
    pub(super) status: StatusCode,
    pub(super) body: Value,
    pub(super) extra: Vec<(HeaderName, String)>,
}

impl Rejection {
    /// The answer, with the rate-limit headers of the moment.
    pub(super) fn answer(self, rate: RateHeaders) -> Answer {
        Answer {
            status: self.status,
            body: Some(self.body),
            rate,
            extra: self.extra,
        }
    }

    /// 401 `E0000011 Invalid token provided` (what a bad SSWS token gets too).
    fn invalid_token(www_authenticate: Option<String>, cause: Option<&str>) -> Self {
        let causes: Vec<&str> = cause.into_iter().collect();
        Rejection {
            status: StatusCode::UNAUTHORIZED,
            body: error_body("E0000011", "Invalid token provided", &causes),
            extra: www_authenticate
                .map(|v| (header::WWW_AUTHENTICATE, v))
                .into_iter()
                .collect(),
        }
    }

    fn bearer_invalid(description: &str) -> Self {
        Self::invalid_token(
            Some(format!(
                r#"Bearer realm="IdpOrg", error="invalid_token", error_description="{description}""#
            )),
            Some(description),
        )
    }

    fn dpop_invalid(error: &str, description: &str) -> Self {
        Self::invalid_token(
            Some(format!(
                r#"DPoP {DPOP_ALGS}, error="{error}", error_description="{description}""#
            )),
            Some(description),
        )
    }
}

// ---------------------------------------------------------------------------
// API authentication and scopes
// ---------------------------------------------------------------------------

/// Who makes an API call.
pub(super) enum Principal {
    /// `SSWS <api token>`: the rights of the admin who made it, every operation.
    ApiToken,
    /// An OAuth access token with these scopes.
    OAuth { scopes: Vec<String> },
}

/// The scopes of which an OAuth token needs one for `op` (`*.manage` includes `*.read`).
pub(super) fn scopes_for(op: Operation) -> &'static [&'static str] {
    match op {
        Operation::GetUser | Operation::Search => &["okta.users.read", "okta.users.manage"],
        Operation::Roles => &["okta.roles.read", "okta.roles.manage"],
        Operation::Suspend | Operation::Unsuspend | Operation::ClearSessions => {
            &["okta.users.manage"]
        }
        Operation::GlobalTokenRevocation => &["okta.universalLogout.manage"],
        Operation::GetGroup => &["okta.groups.read", "okta.groups.manage"],
        Operation::AddGroupMember | Operation::RemoveGroupMember => &["okta.groups.manage"],
        Operation::ListUserGroups => &["okta.users.read", "okta.users.manage"],
        Operation::Token => &[],
    }
}

impl Principal {
    /// Whether this caller's scopes allow `op`.
    pub(super) fn allows(&self, op: Operation) -> bool {
        match self {
            Principal::ApiToken => true,
            Principal::OAuth { scopes } => {
                let need = scopes_for(op);
                need.is_empty() || need.iter().any(|n| scopes.iter().any(|s| s == n))
            }
        }
    }
}

/// 403 `E0000006` with the `insufficient_scope` challenge.
pub(super) fn insufficient_scope(raw_path: &str) -> Rejection {
    // The path is percent-encoded already; keep the quoted-string intact.
    let raw_path = raw_path.replace(['"', '\\'], "");
    Rejection {
        status: StatusCode::FORBIDDEN,
        body: error_body(
            "E0000006",
            "You do not have permission to perform the requested action",
            &[],
        ),
        extra: vec![(
            header::WWW_AUTHENTICATE,
            format!(
                r#"Bearer realm="IdpOrg", error="insufficient_scope", error_description="The access token provided does not contain the required scopes.", resource="{raw_path}""#
            ),
        )],
    }
}

/// Checks the `Authorization` header (and the `DPoP` proof for a DPoP token)
/// of an API call.
pub(super) fn authenticate(
    oauth: &mut OAuthState,
    api_token: &str,
    base_url: &str,
    method: &Method,
    raw_path: &str,
    headers: &HeaderMap,
    now: SystemTime,
) -> Result<Principal, Rejection> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(t) = auth.strip_prefix("SSWS ") {
        return if t.trim() == api_token {
            Ok(Principal::ApiToken)
        } else {
            Err(Rejection::invalid_token(None, None))
        };
    }
    let (scheme, presented) = if let Some(t) = auth.strip_prefix("Bearer ") {
        (TokenType::Bearer, t.trim())
    } else if let Some(t) = auth.strip_prefix("DPoP ") {
        (TokenType::DPoP, t.trim())
    } else {
        return Err(Rejection::invalid_token(None, None));
    };
    let invalid = |description: &str| match scheme {
        TokenType::Bearer => Rejection::bearer_invalid(description),
        TokenType::DPoP => Rejection::dpop_invalid("invalid_token", description),
    };
    let Some(token) = oauth.tokens.iter().find(|t| t.secret == presented) else {
        return Err(invalid("The access token is invalid."));
    };
    if now >= token.info.expires_at {
        return Err(invalid("The access token is expired."));
    }
    let info = token.info.clone();
    match (scheme, info.token_type) {
        (TokenType::Bearer, TokenType::Bearer) => {
            return Ok(Principal::OAuth {
                scopes: info.scopes,
            });
        }
        (TokenType::Bearer, TokenType::DPoP) => {
            return Err(Rejection::dpop_invalid(
                "invalid_token",
                "The access token is DPoP-bound: use the DPoP authorization scheme with a DPoP proof.",
            ));
        }
        (TokenType::DPoP, TokenType::Bearer) => {
            return Err(Rejection::bearer_invalid(
                "The access token is not DPoP-bound: use the Bearer authorization scheme.",
            ));
        }
        (TokenType::DPoP, TokenType::DPoP) => {}
    }
    let htu = format!("{base_url}{raw_path}");
    let ath = ath_of(presented);
    let want = ProofCheck {
        htm: method.as_str(),
        htu: &htu,
        ath: Some(&ath),
        jkt: info.jkt.as_deref(),
    };
    let proof = check_proof(oauth, headers, &want, now)
        .map_err(|why| Rejection::dpop_invalid("invalid_dpop_proof", why))?;
    if oauth.resource_nonce && !oauth.nonce_ok(proof.nonce.as_deref()) {
        let mut r = Rejection::dpop_invalid(
            "use_dpop_nonce",
            "Resource server requires nonce in DPoP proof.",
        );
        r.extra.push(dpop_nonce_header(&oauth.nonce));
        return Err(r);
    }
    Ok(Principal::OAuth {
        scopes: info.scopes,
    })
}

// ---------------------------------------------------------------------------
// POST /oauth2/v1/global-token-revocation
// ---------------------------------------------------------------------------

/// The Okta user id in `{"sub_id": {"format": "opaque", "id": "00u..."}}`, or
/// why the body is not acceptable.
pub(super) fn parse_revocation(body: &[u8]) -> Result<String, &'static str> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| "The request body is not valid JSON.")?;
    let sub_id = v
        .get("sub_id")
        .and_then(Value::as_object)
        .ok_or("The 'sub_id' object is missing.")?;
    if sub_id.get("format").and_then(Value::as_str) != Some("opaque") {
        return Err("Only the 'opaque' sub_id format (an Okta user id) is supported.");
    }
    sub_id
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or("The 'sub_id.id' value is missing.")
}

/// 400 `E0000001` for a malformed revocation body.
pub(super) fn bad_revocation(why: &str, rate: RateHeaders) -> Answer {
    Answer::json(
        StatusCode::BAD_REQUEST,
        error_body("E0000001", "Api validation failed: sub_id", &[why]),
        rate,
    )
}

/// 403 `E0000006` when the org has no Universal Logout.
pub(super) fn not_licensed(rate: RateHeaders) -> Answer {
    Answer::json(
        StatusCode::FORBIDDEN,
        error_body(
            "E0000006",
            "You do not have permission to perform the requested action: Universal Logout (global token revocation) is not enabled for this org",
            &["The feature requires Identity Threat Protection."],
        ),
        rate,
    )
}
