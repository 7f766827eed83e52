//! The fake's OAuth 2.0 side: service apps authenticating with
//! `private_key_jwt`, DPoP (RFC 9449) at the token endpoint and on API calls,
//! scopes per call, and Universal Logout, as described in
//! `okta-oauth.md` of the shared reference.
//!
//! - `POST /oauth2/v1/token` ([`token`]): `client_credentials` only; the client
//!   assertion is checked (alg RS256/ES256, `kid`, signature against the
//!   registered JWK, `iss` = `sub` = client id, `aud` = the token URL, `exp`
//!   in the future and at most an hour ahead, `iat`, a never-seen `jti`,
//!   consumed on every request that gets as far as parsing it, whatever the
//!   answer); then DPoP per the app's [`DpopPolicy`] (proof, nonce handshake);
//!   then the scopes, all of which must be granted to the app.
//! - API calls ([`authenticate`]): `SSWS <api token>`, `Bearer <token>` for a
//!   Bearer token, `DPoP <token>` plus a proof (bound key, `htm`, `htu`,
//!   `ath`, `jti`, `iat`, optionally the nonce) for a DPoP-bound one.
//!   [`Principal::allows`] is the scope check per operation.
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

use super::jws::{Jws, PublicJwk};
use super::{Answer, Operation, RateHeaders, error_body, random_string};

/// The token endpoint's path.
pub const TOKEN_PATH: &str = "/oauth2/v1/token";
/// Universal Logout's path.
pub const GLOBAL_TOKEN_REVOCATION_PATH: &str = "/oauth2/v1/global-token-revocation";
/// Okta's access token lifetime (fixed at one hour in Okta).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// The scopes the dispatcher needs: look-ups, suspend/unsuspend/sessions,
/// admin roles, Universal Logout. [`OAuthApp::new`] grants these.
pub const DISPATCHER_SCOPES: &[&str] = &[
    "okta.users.read",
    "okta.users.manage",
    "okta.roles.read",
    "okta.universalLogout.manage",
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
// DPoP proofs
// ---------------------------------------------------------------------------

/// What a proof must say.
struct ProofCheck<'a> {
    htm: &'a str,
    htu: &'a str,
    /// The access token's hash (resource requests only).
    ath: Option<&'a str>,
    /// The thumbprint of the key the token is bound to (resource requests only).
    jkt: Option<&'a str>,
}

struct Proof {
    jkt: String,
    nonce: Option<String>,
}

/// Verifies the single `DPoP` header against `want`; consumes its `jti` once
/// the signature is good. The nonce is the caller's business.
fn check_proof(
    oauth: &mut OAuthState,
    headers: &HeaderMap,
    want: &ProofCheck<'_>,
    now: SystemTime,
) -> Result<Proof, &'static str> {
    let mut values = headers.get_all("dpop").iter();
    let raw = match (values.next(), values.next()) {
        (None, _) => return Err("The DPoP proof JWT header is missing."),
        (Some(_), Some(_)) => return Err("Only one DPoP proof JWT header is allowed."),
        (Some(v), None) => v.to_str().map_err(|_| "The DPoP proof JWT is malformed.")?,
    };
    let jws = Jws::parse(raw).ok_or("The DPoP proof JWT is malformed.")?;
    if jws.header_str("typ") != Some("dpop+jwt") {
        return Err("The DPoP proof JWT 'typ' header must be 'dpop+jwt'.");
    }
    let alg = jws
        .alg()
        .ok_or("The DPoP proof JWT 'alg' is not supported: use RS256 or ES256.")?;
    let jwk = jws
        .header
        .get("jwk")
        .ok_or("The DPoP proof JWT 'jwk' header is missing.")?;
    let key = PublicJwk::from_value(jwk).map_err(
        |_| "The DPoP proof JWT 'jwk' header is not a public RSA (2048+) or EC P-256 key.",
    )?;
    if !key.fits(alg) {
        return Err("The DPoP proof JWT 'alg' does not match its 'jwk'.");
    }
    if !jws.verify(alg, &key) {
        return Err("The DPoP proof JWT signature is invalid.");
    }
    let jti = jws
        .claim_str("jti")
        .filter(|j| !j.is_empty())
        .ok_or("The DPoP proof JWT 'jti' claim is missing.")?;
    if !oauth.seen_proof_jtis.insert(jti.to_string()) {
        return Err("The DPoP proof JWT 'jti' has already been used.");
    }
    if jws.claim_str("htm") != Some(want.htm) {
        return Err("The DPoP proof JWT 'htm' claim does not match the request method.");
    }
    if jws.claim_str("htu") != Some(want.htu) {
        return Err("The DPoP proof JWT 'htu' claim does not match the request URL.");
    }
    let iat = jws
        .claim_number("iat")
        .ok_or("The DPoP proof JWT 'iat' claim is missing.")?;
    if (iat - epoch_f64(now)).abs() > PROOF_IAT_LEEWAY_SECS {
        return Err("The DPoP proof JWT 'iat' claim is too far from the current time.");
    }
    if let Some(ath) = want.ath
        && jws.claim_str("ath") != Some(ath)
    {
        return Err("The DPoP proof JWT 'ath' claim does not match the access token.");
    }
    if let Some(jkt) = want.jkt
        && key.thumbprint != jkt
    {
        return Err("The DPoP proof JWT key is not the key the access token is bound to.");
    }
    Ok(Proof {
        jkt: key.thumbprint,
        nonce: jws.claim_str("nonce").map(str::to_string),
    })
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
// POST /oauth2/v1/token
// ---------------------------------------------------------------------------

const KNOWN_FIELDS: &[&str] = &[
    "grant_type",
    "scope",
    "client_id",
    "client_assertion_type",
    "client_assertion",
];

/// The form fields, each at most once.
fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if fields.iter().any(|(name, _)| *name == k) {
            // Name only the fields Okta knows: never echo what a client sent.
            return Err(match KNOWN_FIELDS.iter().find(|f| **f == k) {
                Some(f) => format!("The '{f}' parameter is repeated."),
                None => "A parameter is repeated.".to_string(),
            });
        }
        fields.push((k.into_owned(), v.into_owned()));
    }
    Ok(fields)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn requested_scopes(raw: Option<&str>) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for s in raw.unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
        if !scopes.iter().any(|have| have == s) {
            scopes.push(s.to_string());
        }
    }
    scopes
}

/// What a token request says, read without checking anything (for [`TokenRequest`]).
pub(super) fn describe_token_request(
    seq: u64,
    headers: &HeaderMap,
    body: &[u8],
    received_at: SystemTime,
) -> TokenRequest {
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let assertion = field(&fields, "client_assertion").and_then(Jws::parse);
    let proof = headers
        .get("dpop")
        .and_then(|v| v.to_str().ok())
        .and_then(Jws::parse);
    let claim = |name: &str| {
        assertion
            .as_ref()
            .and_then(|a| a.claim_str(name))
            .map(str::to_string)
    };
    TokenRequest {
        seq,
        client_id: claim("sub").or_else(|| field(&fields, "client_id").map(str::to_string)),
        scopes: requested_scopes(field(&fields, "scope")),
        assertion_jti: claim("jti"),
        assertion_alg: assertion
            .as_ref()
            .and_then(|a| a.header_str("alg"))
            .map(str::to_string),
        dpop_proof: headers.contains_key("dpop"),
        dpop_nonce: proof.is_some_and(|p| p.claims.contains_key("nonce")),
        status: 0,
        error: None,
        token_type: None,
        injected: false,
        rate_limited: false,
        received_at,
    }
}

/// Answers `POST /oauth2/v1/token`.
pub(super) fn token(
    oauth: &mut OAuthState,
    base_url: &str,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
    rate: RateHeaders,
) -> Answer {
    if method != Method::POST {
        let mut a = oauth_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "The token endpoint only accepts POST.",
            rate,
        );
        a.extra.push((header::ALLOW, "POST".to_string()));
        return a;
    }
    let form_encoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_encoded {
        return invalid_request(
            "The request must be sent as application/x-www-form-urlencoded.",
            rate,
        );
    }
    let fields = match parse_form(body) {
        Ok(f) => f,
        Err(why) => return invalid_request(&why, rate),
    };
    match field(&fields, "grant_type") {
        None | Some("") => {
            return invalid_request("The 'grant_type' parameter is missing.", rate);
        }
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server. Configured grant types: [client_credentials].",
                rate,
            );
        }
    }
    let Some(assertion) = field(&fields, "client_assertion").filter(|a| !a.is_empty()) else {
        return invalid_client(
            "Client authentication failed. Either the client or the client credentials are invalid.",
            rate,
        );
    };
    if field(&fields, "client_assertion_type") != Some(ASSERTION_TYPE) {
        return invalid_request(
            "The 'client_assertion_type' parameter must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
            rate,
        );
    }
    let token_url = format!("{base_url}{TOKEN_PATH}");
    let app = match authenticate_client(
        oauth,
        assertion,
        field(&fields, "client_id"),
        &token_url,
        now,
    ) {
        Ok(i) => i,
        Err(why) => return invalid_client(why, rate),
    };
    let policy = oauth.apps[app].config.dpop;
    let jkt = match dpop_at_token(oauth, policy, headers, &token_url, now, rate) {
        Ok(jkt) => jkt,
        Err(answer) => return answer,
    };
    let scopes = requested_scopes(field(&fields, "scope"));
    if scopes.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The authorization server resource does not have any configured default scopes, 'scope' must be provided.",
            rate,
        );
    }
    let granted = &oauth.apps[app].config.granted_scopes;
    let refused: Vec<&str> = scopes
        .iter()
        .filter(|s| !granted.contains(s))
        .map(String::as_str)
        .collect();
    if !refused.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!(
                "The following scopes are not allowed: {}",
                refused.join(" ")
            ),
            rate,
        );
    }
    let client_id = oauth.apps[app].config.client_id.clone();
    issue(oauth, client_id, scopes, jkt, now, rate)
}

/// Checks the client assertion; returns the app's index, or the
/// `invalid_client` description. The `jti` is consumed as soon as the
/// assertion parses, whatever happens next.
fn authenticate_client(
    oauth: &mut OAuthState,
    assertion: &str,
    client_id_field: Option<&str>,
    token_url: &str,
    now: SystemTime,
) -> Result<usize, &'static str> {
    let jws = Jws::parse(assertion).ok_or("The client_assertion token is malformed.")?;
    let jti = jws
        .claim_str("jti")
        .filter(|j| !j.is_empty())
        .ok_or("The client_assertion token is missing the 'jti' claim.")?;
    if !oauth.consume_assertion_jti(jti) {
        return Err("The client_assertion token has already been used.");
    }
    let alg = jws.alg().ok_or(
        "The client_assertion token has an unsupported signature algorithm: use RS256 or ES256.",
    )?;
    let sub = jws.claim_str("sub");
    let app = sub
        .and_then(|sub| oauth.apps.iter().position(|a| a.config.client_id == sub))
        .ok_or("Invalid value for 'client_id' parameter.")?;
    let App { config, key } = &oauth.apps[app];
    if jws.claim_str("iss") != sub {
        return Err(
            "The 'iss' and 'sub' claims of the client_assertion token must both be the client id.",
        );
    }
    if client_id_field.is_some_and(|c| c != config.client_id) {
        return Err("The 'client_id' parameter does not match the client_assertion token.");
    }
    if let (Some(want), Some(got)) = (key.kid.as_deref(), jws.header_str("kid"))
        && want != got
    {
        return Err("The client_assertion token's 'kid' is not a key of this client.");
    }
    if !key.fits(alg) || !jws.verify(alg, key) {
        return Err("The client_assertion token signature is invalid.");
    }
    if jws.claim_str("aud") != Some(token_url) {
        return Err(
            "The audience claim for client_assertion must be the endpoint invoked for the request.",
        );
    }
    let now = epoch_f64(now);
    let exp = jws
        .claim_number("exp")
        .ok_or("The client_assertion token is missing the 'exp' claim.")?;
    if exp <= now {
        return Err("The client_assertion token is expired.");
    }
    if exp - now > MAX_ASSERTION_LIFETIME_SECS {
        return Err("The client_assertion token has an expiration too far in the future.");
    }
    if jws.claim_number("iat").is_none() {
        return Err("The client_assertion token is missing the 'iat' claim.");
    }
    Ok(app)
}

/// The token endpoint's DPoP step: the thumbprint to bind the token to
/// (`None`: a Bearer token), or the answer to send instead.
fn dpop_at_token(
    oauth: &mut OAuthState,
    policy: DpopPolicy,
    headers: &HeaderMap,
    token_url: &str,
    now: SystemTime,
    rate: RateHeaders,
) -> Result<Option<String>, Answer> {
    let sent = headers.contains_key("dpop");
    match policy {
        DpopPolicy::NotUsedIgnoresProof => return Ok(None),
        DpopPolicy::NotUsedRefusesProof if sent => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_dpop_proof",
                "DPoP proof not expected for this client",
                rate,
            ));
        }
        DpopPolicy::NotUsedRefusesProof => return Ok(None),
        DpopPolicy::Required => {}
    }
    let want = ProofCheck {
        htm: "POST",
        htu: token_url,
        ath: None,
        jkt: None,
    };
    let proof = check_proof(oauth, headers, &want, now)
        .map_err(|why| oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof", why, rate))?;
    if !oauth.nonce_ok(proof.nonce.as_deref()) {
        let description = if proof.nonce.is_none() {
            "Authorization server requires nonce in DPoP proof."
        } else {
            "The DPoP proof nonce is invalid or has expired."
        };
        let mut a = oauth_error(StatusCode::BAD_REQUEST, "use_dpop_nonce", description, rate);
        a.extra.push(dpop_nonce_header(&oauth.nonce));
        return Err(a);
    }
    Ok(Some(proof.jkt))
}

fn issue(
    oauth: &mut OAuthState,
    client_id: String,
    scopes: Vec<String>,
    jkt: Option<String>,
    now: SystemTime,
    rate: RateHeaders,
) -> Answer {
    let token_type = if jkt.is_some() {
        TokenType::DPoP
    } else {
        TokenType::Bearer
    };
    let secret = random_string(64);
    let lifetime = oauth.lifetime;
    let body = json!({
        "token_type": token_type.as_str(),
        "expires_in": lifetime.as_secs(),
        "access_token": secret,
        "scope": scopes.join(" "),
    });
    oauth.tokens.push(Token {
        secret,
        info: IssuedToken {
            client_id,
            token_type,
            scopes,
            jkt,
            issued_at: now,
            expires_at: now + lifetime,
        },
    });
    let mut a = Answer::json(StatusCode::OK, body, rate);
    a.extra.push((header::PRAGMA, "no-cache".to_string()));
    a
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
