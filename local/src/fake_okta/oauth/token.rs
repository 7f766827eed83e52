//! `POST /oauth2/v1/token`: `client_credentials` with a `private_key_jwt`
//! client assertion, DPoP per the app's [`DpopPolicy`], and the scopes.

use std::time::SystemTime;

use http::{HeaderMap, Method, StatusCode, header};
use serde_json::json;

use super::super::jws::Jws;
use super::super::limits::RateHeaders;
use super::super::render::Answer;
use super::dpop::{ProofCheck, check_proof};
use super::{
    ASSERTION_TYPE, App, DpopPolicy, IssuedToken, MAX_ASSERTION_LIFETIME_SECS, OAuthState,
    TOKEN_PATH, Token, TokenRequest, TokenType, dpop_nonce_header, epoch_f64, invalid_client,
    invalid_request, oauth_error,
};
use crate::http_stub::random_string;

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
pub(in crate::fake_okta) fn describe_token_request(
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
pub(in crate::fake_okta) fn token(
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
