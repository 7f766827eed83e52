//! How each Okta request is authorised: `SSWS <token>`, or an OAuth access
//! token from the org's token endpoint (`Bearer`, or `DPoP` with a fresh
//! proof on every request).
//!
//! For an OAuth app the first request that needs Okta fetches a token: a
//! new client assertion for every attempt, the DPoP proof sent up front (so
//! Okta's System Log shows no failed grant), the `use_dpop_nonce` handshake,
//! and an app that does not use DPoP recognised from its answer and
//! remembered for the container. The token is cached until shortly before
//! it expires. A refusal by the token endpoint is remembered for a few
//! seconds, so one event's users share one attempt and one plain-words
//! reason instead of each spending an assertion.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex as SyncMutex, OnceLock};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use shared::secrets::{Cached, SecretReader};
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use super::CallError;
use super::credential::{Credential, OAuthApp};
use super::jwt::{SigningKey, client_assertion, dpop_proof};
use crate::deadline::Deadline;
use crate::http::Http;

/// How long a refusal by the token endpoint is answered from memory.
pub const REFUSAL_MEMORY: Duration = Duration::from_secs(10);
/// Token requests per fetch at most: the nonce handshake, one change of
/// mind about DPoP, and one retry of a transient failure.
const MAX_TOKEN_ATTEMPTS: u32 = 4;

const DPOP_UNKNOWN: u8 = 0;
const DPOP_ON: u8 = 1;
const DPOP_OFF: u8 = 2;

/// What to send with one request.
pub struct Authorized {
    /// The `Authorization` header, marked sensitive.
    pub authorization: HeaderValue,
    /// The `DPoP` header, for DPoP-bound tokens.
    pub dpop: Option<HeaderValue>,
    /// The nonce the proof carried, to tell a new one from it.
    pub nonce: Option<String>,
}

struct AccessToken {
    value: SecretString,
    dpop: bool,
    renew_at: Instant,
    /// The credential it was issued to: a rotated secret gets a new token.
    credential: Arc<Credential>,
}

#[derive(Default)]
struct TokenState {
    token: Option<AccessToken>,
    refused: Option<(Instant, String)>,
}

/// Where the Okta secret's text comes from.
pub enum SecretSource {
    SecretsManager(SecretReader),
    /// A fixed text, for tests of the client without AWS.
    #[cfg(test)]
    Text(String),
}

/// The credential and, for an OAuth app, its token and DPoP state.
pub struct Authenticator {
    http: Http,
    token_url: Url,
    source: SecretSource,
    secret_id: String,
    default_scopes: String,
    credential: Cached<Credential>,
    state: Mutex<TokenState>,
    dpop_key: OnceLock<SigningKey>,
    dpop_mode: AtomicU8,
    nonce: SyncMutex<Option<String>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    token_type: String,
    access_token: SecretString,
    expires_in: u64,
}

#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

impl Authenticator {
    pub fn new(
        http: Http,
        base: &Url,
        source: SecretSource,
        secret_id: String,
        ttl: Duration,
        default_scopes: String,
    ) -> Authenticator {
        let token_url = Url::parse(&format!(
            "{}/oauth2/v1/token",
            base.as_str().trim_end_matches('/')
        ))
        .expect("an org URL with a path appended is a URL");
        Authenticator {
            http,
            token_url,
            source,
            secret_id,
            default_scopes,
            credential: Cached::new(ttl, Duration::from_secs(5)),
            state: Mutex::new(TokenState::default()),
            dpop_key: OnceLock::new(),
            dpop_mode: AtomicU8::new(DPOP_UNKNOWN),
            nonce: SyncMutex::new(None),
        }
    }

    async fn credential(&self) -> Result<Arc<Credential>, CallError> {
        self.credential
            .get(|| async {
                let text = match &self.source {
                    SecretSource::SecretsManager(reader) => {
                        reader.read_current(&self.secret_id).await?
                    }
                    #[cfg(test)]
                    SecretSource::Text(text) => SecretString::from(text.clone()),
                };
                Credential::parse(&self.secret_id, text.expose_secret(), &self.default_scopes)
            })
            .await
            .map_err(|e| match e {
                shared::secrets::SecretError::Malformed { .. } => {
                    CallError::Credentials(e.to_string())
                }
                shared::secrets::SecretError::Unavailable { .. } => {
                    CallError::Transient(e.to_string())
                }
            })
    }

    /// The headers for one request to `url`.
    pub async fn authorize(
        &self,
        method: &Method,
        url: &Url,
        deadline: Deadline,
    ) -> Result<Authorized, CallError> {
        let credential = self.credential().await?;
        let app = match credential.as_ref() {
            Credential::ApiToken(token) => {
                return Ok(Authorized {
                    authorization: sensitive(&format!("SSWS {}", token.expose_secret()))?,
                    dpop: None,
                    nonce: None,
                });
            }
            Credential::OAuthApp(app) => app,
        };
        let (token, dpop) = self.access_token(&credential, app, deadline).await?;
        if !dpop {
            return Ok(Authorized {
                authorization: sensitive(&format!("Bearer {}", token.expose_secret()))?,
                dpop: None,
                nonce: None,
            });
        }
        let nonce = self.nonce();
        let proof = dpop_proof(
            self.dpop_key(),
            method.as_str(),
            &htu(url),
            nonce.as_deref(),
            Some(token.expose_secret()),
        );
        Ok(Authorized {
            authorization: sensitive(&format!("DPoP {}", token.expose_secret()))?,
            dpop: Some(sensitive(proof.expose_secret())?),
            nonce,
        })
    }

    /// Remembers a `DPoP-Nonce` the server sent; whether it is new to
    /// `sent` (a request answered 400/401 with a new nonce is worth one retry).
    pub fn observe_nonce(&self, headers: &HeaderMap, sent: Option<&str>) -> bool {
        let Some(nonce) = headers
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
        else {
            return false;
        };
        *self.nonce.lock().expect("nonce lock") = Some(nonce.to_string());
        sent != Some(nonce)
    }

    /// After a 401: the next request re-reads the credential (SSWS) or gets
    /// a new token (OAuth).
    pub async fn refused(&self) {
        let had_token = self.state.lock().await.token.take().is_some();
        if !had_token {
            self.credential.invalidate().await;
        }
    }

    /// What 401s and token errors name: "the API token in secret x" or "the Okta app 0oa...".
    pub async fn describe(&self) -> String {
        match self.credential().await {
            Ok(c) => match c.as_ref() {
                Credential::ApiToken(_) => format!("the API token in secret {}", self.secret_id),
                other => other.describe(),
            },
            Err(_) => format!("the credential in secret {}", self.secret_id),
        }
    }

    fn nonce(&self) -> Option<String> {
        self.nonce.lock().expect("nonce lock").clone()
    }

    fn dpop_key(&self) -> &SigningKey {
        self.dpop_key.get_or_init(SigningKey::generate_p256)
    }

    /// The cached token, or a new one (one fetch at a time).
    async fn access_token(
        &self,
        credential: &Arc<Credential>,
        app: &OAuthApp,
        deadline: Deadline,
    ) -> Result<(SecretString, bool), CallError> {
        let mut state = self.state.lock().await;
        if let Some(token) = &state.token
            && Arc::ptr_eq(&token.credential, credential)
            && Instant::now() < token.renew_at
        {
            return Ok((token.value.clone(), token.dpop));
        }
        if let Some((at, reason)) = &state.refused
            && at.elapsed() < REFUSAL_MEMORY
        {
            return Err(CallError::Credentials(reason.clone()));
        }
        match self.fetch_token(app, deadline).await {
            Ok((answer, dpop)) => {
                let lifetime = Duration::from_secs(answer.expires_in.max(1));
                // Renew early: 5 minutes before expiry, or a tenth of a short lifetime.
                let early = (lifetime / 10).min(Duration::from_secs(300));
                state.refused = None;
                state.token = Some(AccessToken {
                    value: answer.access_token.clone(),
                    dpop,
                    renew_at: Instant::now() + lifetime - early,
                    credential: credential.clone(),
                });
                Ok((answer.access_token, dpop))
            }
            Err(Fetch::Refused(reason)) => {
                state.refused = Some((Instant::now(), reason.clone()));
                // The secret may have been fixed meanwhile: read it again next time.
                self.credential.invalidate().await;
                Err(CallError::Credentials(reason))
            }
            Err(Fetch::Transient(reason)) => Err(CallError::Transient(reason)),
        }
    }

    async fn fetch_token(
        &self,
        app: &OAuthApp,
        deadline: Deadline,
    ) -> Result<(TokenAnswer, bool), Fetch> {
        let refused = |error: &OAuthError| {
            Fetch::Refused(format!(
                "the Okta app {} was refused: {}: {}",
                app.client_id,
                excerpt(&error.error),
                excerpt(&error.error_description)
            ))
        };
        let mut last = OAuthError::default();
        let mut transient = 0;
        for attempt in 1..=MAX_TOKEN_ATTEMPTS {
            let timeout = super::REQUEST_TIMEOUT.min(deadline.remaining());
            if timeout < Duration::from_millis(200) {
                return Err(Fetch::Transient(format!(
                    "time ran out before an Okta token could be fetched for the app {}",
                    app.client_id
                )));
            }
            let mode = self.dpop_mode.load(Ordering::SeqCst);
            let sent_nonce = self.nonce();
            let assertion = client_assertion(
                &app.key,
                &app.client_id,
                app.key_id.as_deref(),
                self.token_url.as_str(),
            );
            let form = [
                ("grant_type", "client_credentials"),
                ("scope", app.scopes.as_str()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.expose_secret()),
            ];
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish();
            let mut request = self
                .http
                .client()
                .post(self.token_url.clone())
                .header(http::header::ACCEPT, "application/json")
                .header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body)
                .timeout(timeout);
            let with_proof = mode != DPOP_OFF;
            if with_proof {
                let proof = dpop_proof(
                    self.dpop_key(),
                    "POST",
                    self.token_url.as_str(),
                    sent_nonce.as_deref(),
                    None,
                );
                request = request.header(
                    "DPoP",
                    sensitive(proof.expose_secret())
                        .map_err(|e| Fetch::Transient(e.to_string()))?,
                );
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    transient += 1;
                    let reason = format!(
                        "Okta's token endpoint could not be reached: {}",
                        e.without_url()
                    );
                    if transient >= 2 || !deadline.sleep(Duration::from_millis(300)).await {
                        return Err(Fetch::Transient(reason));
                    }
                    continue;
                }
            };
            let status = response.status().as_u16();
            let new_nonce = self.observe_nonce(response.headers(), sent_nonce.as_deref());
            let request_id = response
                .headers()
                .get("x-okta-request-id")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let reset = crate::rate_limit::RateInfo::from_headers(response.headers()).until_reset();
            let body = response.bytes().await.unwrap_or_default();
            tracing::info!(
                operation = "token",
                client_id = app.client_id.as_str(),
                status,
                attempt,
                dpop_proof = with_proof,
                okta_request_id = request_id.as_deref().unwrap_or_default(),
                "okta token request"
            );
            if status == 200 {
                let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
                    Fetch::Transient(format!(
                        "Okta's token answer could not be read ({:?} error)",
                        e.classify()
                    ))
                })?;
                let dpop = answer.token_type.eq_ignore_ascii_case("DPoP");
                if !dpop && !answer.token_type.eq_ignore_ascii_case("Bearer") {
                    return Err(Fetch::Refused(format!(
                        "the Okta app {} got a token of an unknown type {:?}",
                        app.client_id,
                        excerpt(&answer.token_type)
                    )));
                }
                self.remember_mode(if dpop { DPOP_ON } else { DPOP_OFF }, app);
                return Ok((answer, dpop));
            }
            let error: OAuthError = serde_json::from_slice(&body).unwrap_or_default();
            match (status, error.error.as_str()) {
                (400, "use_dpop_nonce") if with_proof && new_nonce => {}
                // An app that does not use DPoP and refuses proofs: drop them.
                (400, "invalid_dpop_proof") if with_proof && mode == DPOP_UNKNOWN && !new_nonce => {
                    self.remember_mode(DPOP_OFF, app);
                }
                // An app that now requires DPoP: send proofs again.
                (400, "invalid_dpop_proof") if !with_proof => self.remember_mode(DPOP_ON, app),
                (429 | 500..=599, _) => {
                    transient += 1;
                    let reason = format!("Okta's token endpoint answered {status}");
                    let wait = reset.unwrap_or(Duration::from_millis(500));
                    if transient >= 2 || !deadline.sleep(wait).await {
                        return Err(Fetch::Transient(reason));
                    }
                }
                _ => return Err(refused(&error)),
            }
            last = error;
        }
        Err(refused(&last))
    }

    fn remember_mode(&self, mode: u8, app: &OAuthApp) {
        let before = self.dpop_mode.swap(mode, Ordering::SeqCst);
        if before != mode {
            tracing::info!(
                client_id = app.client_id.as_str(),
                dpop = mode == DPOP_ON,
                "okta app DPoP mode learned"
            );
        }
    }
}

enum Fetch {
    Refused(String),
    Transient(String),
}

/// The URL a DPoP proof names: scheme, host and path, no query or fragment.
pub fn htu(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// A header value that hyper and reqwest never print.
fn sensitive(text: &str) -> Result<HeaderValue, CallError> {
    let mut value = HeaderValue::from_str(text).map_err(|_| {
        CallError::Transient("an Okta credential has characters a header cannot carry".into())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Untrusted text from Okta, cut to a short excerpt for logs and reports.
pub fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= MAX {
        clean
    } else {
        let mut cut: String = clean.chars().take(MAX - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_drops_query_and_fragment() {
        let url =
            Url::parse("https://acme.okta.com:8443/api/v1/users/00u1/sessions?oauthTokens=true#x")
                .unwrap();
        assert_eq!(
            htu(&url),
            "https://acme.okta.com:8443/api/v1/users/00u1/sessions"
        );
    }

    #[test]
    fn credentials_in_headers_are_sensitive() {
        assert!(sensitive("SSWS abc").unwrap().is_sensitive());
        assert!(sensitive("bad\nvalue").is_err());
    }

    #[test]
    fn excerpts_are_short_and_single_line() {
        assert_eq!(excerpt("a\nb"), "a b");
        assert_eq!(excerpt(&"x".repeat(500)).chars().count(), 200);
    }
}
