//! The Okta Management API client: the typed operations of [`Directory`]
//! over HTTP.
//!
//! Every request goes through [`OktaClient::send`], which owns what every
//! call needs: the `Authorization` (and `DPoP`) headers from [`Authenticator`],
//! a request timeout, no redirects (a redirect is never a success), rate-limit
//! pacing and 429 waits, bounded retries with jittered backoff for 5xx and
//! network errors, one new token (or re-read secret) after a 401, one retry
//! with a new DPoP nonce, the invocation's deadline, and one JSON log line
//! per call with `X-Okta-Request-Id`. The typed operations then say what
//! Okta's answer means (status codes, error codes, JSON types).

use std::time::Duration;

use http::Method;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::event::Login;
use shared::secrets::SecretReader;
use url::Url;

use super::auth::{Authenticator, SecretSource, excerpt};
use super::{
    Attribute, CallContext, CallError, Directory, Membership, OktaGroup, OktaUser, REQUEST_TIMEOUT,
    Revocation, Suspension, Unsuspension,
};
use crate::http::Http;
use crate::metrics::{OktaCounters, OktaCounts};
use crate::rate_limit::{Pacer, RateInfo, wait_after_429};
use crate::retry::OKTA_ERRORS;

/// Attempts for one call answered 429.
pub const MAX_RATE_LIMITED_ATTEMPTS: u32 = 4;
/// Attempts for one call answered 5xx or lost to the network.
pub const MAX_ERROR_ATTEMPTS: u32 = 3;

/// Characters left as they are in a path segment: RFC 3986 unreserved, and
/// `@` (logins are mostly emails). Everything else is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');
/// Characters left as they are in a query value: unreserved only (`+` must
/// travel as `%2B`, spaces as `%20`).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The calls, named for logs and used as rate-limit buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    GetUser,
    SearchUsers,
    ListRoles,
    Suspend,
    Unsuspend,
    ClearSessions,
    GlobalTokenRevocation,
    GetGroup,
    ListUserGroups,
    AddGroupMember,
    RemoveGroupMember,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::GetUser => "get user",
            Operation::SearchUsers => "search users",
            Operation::ListRoles => "list admin roles",
            Operation::Suspend => "suspend",
            Operation::Unsuspend => "unsuspend",
            Operation::ClearSessions => "clear sessions",
            Operation::GlobalTokenRevocation => "global token revocation",
            Operation::GetGroup => "get group",
            Operation::ListUserGroups => "list the user's groups",
            Operation::AddGroupMember => "add group member",
            Operation::RemoveGroupMember => "remove group member",
        }
    }

    /// The rate-limit bucket the pacer keeps for the call: Okta counts
    /// `/api/v1/groups` calls in its groups bucket, not the users one.
    pub fn bucket(self) -> &'static str {
        match self {
            Operation::GetGroup | Operation::AddGroupMember | Operation::RemoveGroupMember => {
                "groups"
            }
            other => other.name(),
        }
    }
}

/// A login or id as one path segment, or `None` when it cannot travel in a
/// path at all (`/` is not decoded by Okta, and `.`/`..` are path steps).
pub fn path_segment(text: &str) -> Option<String> {
    if text.contains('/') || text == "." || text == ".." {
        return None;
    }
    Some(utf8_percent_encode(text, SEGMENT).to_string())
}

/// An Okta search expression `<attribute> eq "<value>"`, with the value's
/// `\` and `"` escaped so it stays one string, URL-encoded whole.
pub fn search_query(attribute: &str, value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    let expression = format!("{attribute} eq \"{escaped}\"");
    format!("search={}", utf8_percent_encode(&expression, QUERY_VALUE))
}

/// One request.
#[derive(Debug, Clone)]
pub struct Call {
    pub operation: Operation,
    pub method: Method,
    /// Path and query, already encoded, e.g. `/api/v1/users/ana%40x`.
    pub path: String,
    pub body: Option<Value>,
}

impl Call {
    fn new(operation: Operation, method: Method, path: String) -> Call {
        Call {
            operation,
            method,
            path,
            body: None,
        }
    }
}

/// Okta's answer (any status but 429, 5xx and a refused credential, which
/// are handled in [`OktaClient::send`]).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub request_id: Option<String>,
    /// `WWW-Authenticate`, which tells a scope error from a bad token.
    pub www_authenticate: Option<String>,
    /// The `Link` header's `rel="next"` URL: the next page of a list.
    pub next: Option<String>,
}

/// Okta's error body.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OktaError {
    #[serde(rename = "errorCode", default)]
    pub code: Option<String>,
    #[serde(rename = "errorSummary", default)]
    pub summary: Option<String>,
    #[serde(rename = "errorCauses", default)]
    pub causes: Vec<OktaErrorCause>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct OktaErrorCause {
    #[serde(rename = "errorSummary", default)]
    pub summary: Option<String>,
}

impl Answer {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, CallError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            CallError::Transient(format!(
                "Okta's answer could not be read ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })
    }

    pub fn error(&self) -> OktaError {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    /// `403 E0000006: You do not have permission… (cause)` for reports,
    /// each part cut to a short excerpt.
    pub fn describe(&self) -> String {
        let error = self.error();
        let mut text = format!("Okta answered {}", self.status);
        if let Some(code) = &error.code {
            text.push_str(&format!(" {}", excerpt(code)));
        }
        if let Some(summary) = &error.summary {
            text.push_str(&format!(": {}", excerpt(summary)));
        }
        let causes: Vec<String> = error
            .causes
            .iter()
            .filter_map(|c| c.summary.as_deref())
            .take(3)
            .map(excerpt)
            .collect();
        if !causes.is_empty() {
            text.push_str(&format!(" ({})", causes.join("; ")));
        }
        text
    }

    /// A 403 (or 401) that says the token lacks a scope.
    fn is_scope_error(&self) -> bool {
        self.www_authenticate
            .as_deref()
            .is_some_and(|h| h.contains("insufficient_scope"))
    }

    /// The answer as a final refusal, or a transient failure when it is not a 4xx.
    fn unexpected(&self, doing: &'static str) -> CallError {
        if (400..500).contains(&self.status) {
            CallError::Refused {
                doing,
                okta: self.describe(),
            }
        } else {
            CallError::Transient(format!("could not {doing}: {}", self.describe()))
        }
    }
}

pub struct OktaClient {
    http: Http,
    base: Url,
    auth: Authenticator,
    pacer: Pacer,
    /// 429 answers and retried calls, for the metrics.
    counters: OktaCounters,
}

/// How the client is set up.
#[derive(Debug, Clone)]
pub struct OktaSettings {
    pub org_url: Url,
    pub secret_id: String,
    pub secret_ttl: Duration,
    /// `OKTA_MAX_CONCURRENCY` (the pacer counts what is in flight itself).
    pub concurrency: usize,
    /// What an OAuth app asks for unless its secret names scopes.
    pub default_scopes: String,
}

impl OktaClient {
    /// A client over the dispatcher's shared [`Http`] client.
    pub fn new(settings: OktaSettings, reader: SecretReader, http: Http) -> OktaClient {
        OktaClient::with_source(settings, SecretSource::SecretsManager(reader), http)
    }

    pub(crate) fn with_source(
        settings: OktaSettings,
        source: SecretSource,
        http: Http,
    ) -> OktaClient {
        let auth = Authenticator::new(
            http.clone(),
            &settings.org_url,
            source,
            settings.secret_id,
            settings.secret_ttl,
            settings.default_scopes,
        );
        OktaClient {
            http,
            base: settings.org_url,
            auth,
            pacer: Pacer::new(),
            counters: OktaCounters::default(),
        }
    }

    /// The 429 answers and retries since the last call (read and reset; the
    /// dispatcher takes them once per event).
    pub fn take_counts(&self) -> OktaCounts {
        self.counters.take()
    }

    /// Sends `call`, waiting out rate limits and retrying what may pass,
    /// all within the context's deadline.
    pub async fn send(&self, call: &Call, ctx: &CallContext<'_>) -> Result<Answer, CallError> {
        let deadline = ctx.deadline;
        let url = Url::parse(&format!(
            "{}{}",
            self.base.as_str().trim_end_matches('/'),
            call.path
        ))
        .map_err(|_| {
            CallError::Transient(format!(
                "could not build the URL to {}",
                call.operation.name()
            ))
        })?;
        let bucket = call.operation.name();
        let rate_bucket = call.operation.bucket();
        let out_of_time =
            || CallError::Transient(format!("time ran out before Okta could {bucket}"));
        let mut attempt = 0u32;
        let mut rate_limited = 0u32;
        let mut failed = 0u32;
        let mut refreshed_credential = false;
        let mut retried_nonce = false;
        let mut retry_for: Option<String> = None;
        loop {
            attempt += 1;
            // Counted in flight until its answer is observed (or it ends without one).
            let in_flight = loop {
                match self.pacer.before_request(rate_bucket) {
                    Ok(in_flight) => break in_flight,
                    Err(pause) => {
                        tracing::info!(
                            event_id = ctx.event_id,
                            user = ctx.user,
                            operation = bucket,
                            pause_ms = pause.as_millis() as u64,
                            "pausing for Okta's rate limit window"
                        );
                        if !deadline.sleep(pause).await {
                            return Err(out_of_time());
                        }
                    }
                }
            };
            let timeout = REQUEST_TIMEOUT.min(deadline.remaining());
            if timeout < Duration::from_millis(200) {
                return Err(out_of_time());
            }
            let authorized = self.auth.authorize(&call.method, &url, deadline).await?;
            let mut request = self
                .http
                .client()
                .request(call.method.clone(), url.clone())
                .header(http::header::AUTHORIZATION, authorized.authorization)
                .header(http::header::ACCEPT, "application/json")
                .timeout(timeout);
            if let Some(proof) = authorized.dpop {
                request = request.header("DPoP", proof);
            }
            if let Some(body) = &call.body {
                request = request.json(body);
            }
            if let Some(id) = &retry_for {
                request = request
                    .header("X-Okta-Retry-For", id)
                    .header("X-Okta-Retry-Count", (attempt - 1).to_string());
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => {
                    failed += 1;
                    let reason =
                        format!("Okta could not be reached to {bucket}: {}", e.without_url());
                    tracing::warn!(event_id = ctx.event_id, user = ctx.user, operation = bucket, attempt, error = %reason, "okta call failed");
                    if failed >= MAX_ERROR_ATTEMPTS || !OKTA_ERRORS.wait(failed, deadline).await {
                        return Err(CallError::Transient(reason));
                    }
                    self.counters.retried();
                    continue;
                }
            };
            let status = response.status().as_u16();
            let info = RateInfo::from_headers(response.headers());
            in_flight.observe(&info);
            let new_nonce = self
                .auth
                .observe_nonce(response.headers(), authorized.nonce.as_deref());
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(String::from)
            };
            let request_id = header("x-okta-request-id");
            let www_authenticate = header("www-authenticate");
            let next = next_link(response.headers());
            let body = match response.bytes().await {
                Ok(body) => body.to_vec(),
                Err(e) => {
                    failed += 1;
                    let reason =
                        format!("Okta's answer to {bucket} was cut off: {}", e.without_url());
                    if failed >= MAX_ERROR_ATTEMPTS || !OKTA_ERRORS.wait(failed, deadline).await {
                        return Err(CallError::Transient(reason));
                    }
                    self.counters.retried();
                    continue;
                }
            };
            ctx.saw_request_id(request_id.as_deref());
            tracing::info!(
                event_id = ctx.event_id,
                user = ctx.user,
                operation = bucket,
                method = %call.method,
                status,
                okta_request_id = request_id.as_deref().unwrap_or_default(),
                attempt,
                rate_limit_remaining = info.remaining,
                "okta call"
            );
            let answer = Answer {
                status,
                body,
                request_id,
                www_authenticate,
                next,
            };
            match status {
                429 => {
                    rate_limited += 1;
                    self.counters.rate_limited();
                    let wait = wait_after_429(&info, rate_limited);
                    if rate_limited >= MAX_RATE_LIMITED_ATTEMPTS {
                        return Err(CallError::Transient(format!(
                            "Okta's rate limit: still limited after {rate_limited} attempts to {bucket}"
                        )));
                    }
                    if !deadline.sleep(wait).await {
                        return Err(CallError::Transient(format!(
                            "Okta's rate limit: the window resets too late for this invocation ({bucket})"
                        )));
                    }
                    self.counters.retried();
                    retry_for = answer.request_id.clone().or(retry_for);
                }
                500 | 502 | 503 | 504 => {
                    failed += 1;
                    if failed >= MAX_ERROR_ATTEMPTS || !OKTA_ERRORS.wait(failed, deadline).await {
                        return Err(CallError::Transient(format!(
                            "{} (after {failed} attempts to {bucket})",
                            answer.describe()
                        )));
                    }
                    self.counters.retried();
                    retry_for = answer.request_id.clone().or(retry_for);
                }
                // A DPoP server that wants a (new) nonce in the proof.
                400 | 401 if new_nonce && !retried_nonce => retried_nonce = true,
                401 if !refreshed_credential && !answer.is_scope_error() => {
                    // The token may have expired or the secret been rotated.
                    refreshed_credential = true;
                    self.auth.refused().await;
                }
                401 if !answer.is_scope_error() => {
                    return Err(CallError::Credentials(format!(
                        "{}: {} was refused",
                        answer.describe(),
                        self.auth.describe().await
                    )));
                }
                _ => return Ok(answer),
            }
        }
    }

    /// The path and query of `url` if it is on this org (a `Link` Okta
    /// sent); `None` for anywhere else.
    fn path_in_org(&self, url: &str) -> Option<String> {
        let url = Url::parse(url).ok()?;
        if url.origin() != self.base.origin() {
            return None;
        }
        Some(match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        })
    }

    /// A GET of one thing: `None` when Okta answers 404.
    async fn get_one<T: serde::de::DeserializeOwned>(
        &self,
        operation: Operation,
        path: String,
        doing: &'static str,
        ctx: &CallContext<'_>,
    ) -> Result<Option<T>, CallError> {
        let answer = self.get(operation, path, ctx).await?;
        match answer.status {
            200 => Ok(Some(answer.json()?)),
            404 => Ok(None),
            _ => Err(answer.unexpected(doing)),
        }
    }

    async fn get(
        &self,
        operation: Operation,
        path: String,
        ctx: &CallContext<'_>,
    ) -> Result<Answer, CallError> {
        self.send(&Call::new(operation, Method::GET, path), ctx)
            .await
    }
}

/// At most this many pages of one list are read (Okta's pages hold 200 or
/// more groups).
const MAX_PAGES: usize = 50;

/// The `rel="next"` URL of Okta's `Link` headers, if any.
fn next_link(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|link| link.contains("rel=\"next\""))
        .and_then(|link| {
            let start = link.find('<')? + 1;
            let end = link[start..].find('>')? + start;
            Some(link[start..end].to_string())
        })
}

/// A group id as a path segment (checked at start-up, and again here).
fn group(group_id: &str) -> Result<String, CallError> {
    path_segment(group_id).ok_or_else(|| CallError::Refused {
        doing: "use QUARANTINE_GROUP_ID",
        okta: format!("{:?} cannot be a path segment", excerpt(group_id)),
    })
}

/// A user id as a path segment (ids come from Okta, but are still checked).
fn id(user_id: &str) -> Result<String, CallError> {
    path_segment(user_id).ok_or_else(|| CallError::Refused {
        doing: "use the user id Okta returned",
        okta: format!("{:?} cannot be a path segment", excerpt(user_id)),
    })
}

/// Whether `user` is the one `login` names: its login, or its login's
/// shortname (the part before `@`). The users path also takes ids and
/// shortnames: accept only the user this login names, never one whose id
/// it happens to be.
pub fn names_user(login: &Login, user: &OktaUser) -> bool {
    let Some(okta_login) = user.profile.login.as_deref() else {
        return false;
    };
    let okta_login = okta_login.to_lowercase();
    let wanted = login.folded();
    okta_login == wanted
        || okta_login
            .split_once('@')
            .is_some_and(|(short, _)| short == wanted)
}

impl Directory for OktaClient {
    async fn find_by_login(
        &self,
        login: &Login,
        ctx: &CallContext<'_>,
    ) -> Result<Option<OktaUser>, CallError> {
        let Some(segment) = path_segment(login.as_str()) else {
            // Not a path segment: an exact search finds it all the same.
            let mut users = self
                .search_exact(Attribute::Login, login.as_str(), ctx)
                .await?;
            return Ok(users.pop());
        };
        let answer = self
            .get(Operation::GetUser, format!("/api/v1/users/{segment}"), ctx)
            .await?;
        match answer.status {
            200 => {
                let user: OktaUser = answer.json()?;
                Ok(names_user(login, &user).then_some(user))
            }
            404 => Ok(None),
            _ => Err(answer.unexpected("look the user up")),
        }
    }

    async fn search_exact(
        &self,
        attribute: Attribute,
        value: &str,
        ctx: &CallContext<'_>,
    ) -> Result<Vec<OktaUser>, CallError> {
        let query = search_query(attribute.name(), value);
        let answer = self
            .get(
                Operation::SearchUsers,
                format!("/api/v1/users?{query}"),
                ctx,
            )
            .await?;
        if answer.status != 200 {
            return Err(answer.unexpected("search for the user"));
        }
        let mut users: Vec<OktaUser> = answer.json()?;
        let wanted = value.to_lowercase();
        users.retain(|u| attribute.of(u).is_some_and(|v| v.to_lowercase() == wanted));
        Ok(users)
    }

    async fn get_user(
        &self,
        user_id: &str,
        ctx: &CallContext<'_>,
    ) -> Result<Option<OktaUser>, CallError> {
        let path = format!("/api/v1/users/{}", id(user_id)?);
        self.get_one(Operation::GetUser, path, "re-read the user", ctx)
            .await
    }

    async fn admin_roles(
        &self,
        user_id: &str,
        ctx: &CallContext<'_>,
    ) -> Result<Vec<String>, CallError> {
        let answer = self
            .get(
                Operation::ListRoles,
                format!("/api/v1/users/{}/roles", id(user_id)?),
                ctx,
            )
            .await?;
        if answer.status != 200 {
            return Err(answer.unexpected("list the user's admin roles"));
        }
        #[derive(Deserialize)]
        struct Role {
            #[serde(rename = "type", default)]
            kind: Option<String>,
        }
        let roles: Vec<Role> = answer.json()?;
        Ok(roles
            .into_iter()
            .map(|r| r.kind.unwrap_or_else(|| "(unnamed)".into()))
            .collect())
    }

    async fn suspend(&self, user_id: &str, ctx: &CallContext<'_>) -> Result<Suspension, CallError> {
        let call = Call::new(
            Operation::Suspend,
            Method::POST,
            format!("/api/v1/users/{}/lifecycle/suspend", id(user_id)?),
        );
        let answer = self.send(&call, ctx).await?;
        match answer.status {
            200 | 204 => Ok(Suspension::Done),
            // "Cannot suspend a user that is not active".
            400 if answer.error().code.as_deref() == Some("E0000001") => {
                Ok(Suspension::NotSuspendable {
                    refusal: answer.describe(),
                })
            }
            404 => Ok(Suspension::Gone),
            _ => Err(answer.unexpected("suspend the user")),
        }
    }

    async fn unsuspend(
        &self,
        user_id: &str,
        ctx: &CallContext<'_>,
    ) -> Result<Unsuspension, CallError> {
        let call = Call::new(
            Operation::Unsuspend,
            Method::POST,
            format!("/api/v1/users/{}/lifecycle/unsuspend", id(user_id)?),
        );
        let answer = self.send(&call, ctx).await?;
        match answer.status {
            200 | 204 => Ok(Unsuspension::Done),
            400 if answer.error().code.as_deref() == Some("E0000001") => {
                Ok(Unsuspension::NotSuspended {
                    refusal: answer.describe(),
                })
            }
            404 => Ok(Unsuspension::Gone),
            _ => Err(answer.unexpected("unsuspend the user")),
        }
    }

    async fn clear_sessions(&self, user_id: &str, ctx: &CallContext<'_>) -> Result<(), CallError> {
        let call = Call::new(
            Operation::ClearSessions,
            Method::DELETE,
            format!("/api/v1/users/{}/sessions?oauthTokens=true", id(user_id)?),
        );
        let answer = self.send(&call, ctx).await?;
        match answer.status {
            200 | 204 => Ok(()),
            _ => Err(answer.unexpected("clear the user's sessions")),
        }
    }

    async fn revoke_globally(
        &self,
        user_id: &str,
        ctx: &CallContext<'_>,
    ) -> Result<Revocation, CallError> {
        let mut call = Call::new(
            Operation::GlobalTokenRevocation,
            Method::POST,
            "/oauth2/v1/global-token-revocation".into(),
        );
        call.body = Some(json!({"sub_id": {"format": "opaque", "id": user_id}}));
        let answer = self.send(&call, ctx).await?;
        match answer.status {
            200 | 204 => Ok(Revocation::Done),
            403 => Ok(Revocation::NotAvailable {
                reason: answer.describe(),
            }),
            401 if answer.is_scope_error() => Ok(Revocation::NotAvailable {
                reason: answer.describe(),
            }),
            _ => Err(answer.unexpected("sign the user out everywhere (Universal Logout)")),
        }
    }

    async fn get_group(
        &self,
        group_id: &str,
        ctx: &CallContext<'_>,
    ) -> Result<Option<OktaGroup>, CallError> {
        let path = format!("/api/v1/groups/{}", group(group_id)?);
        self.get_one(Operation::GetGroup, path, "read the quarantine group", ctx)
            .await
    }

    /// Every page of the user's groups: whether a user is already in the
    /// quarantine group decides what a Release may undo, so a member on a
    /// later page must not be missed.
    async fn user_groups(
        &self,
        user_id: &str,
        ctx: &CallContext<'_>,
    ) -> Result<Vec<String>, CallError> {
        #[derive(Deserialize)]
        struct Group {
            id: String,
        }
        let mut path = format!("/api/v1/users/{}/groups", id(user_id)?);
        let mut ids = Vec::new();
        for _ in 0..MAX_PAGES {
            let answer = self.get(Operation::ListUserGroups, path, ctx).await?;
            if answer.status != 200 {
                return Err(answer.unexpected("list the user's groups"));
            }
            let groups: Vec<Group> = answer.json()?;
            ids.extend(groups.into_iter().map(|g| g.id));
            match answer.next.as_deref().map(|next| self.path_in_org(next)) {
                None => return Ok(ids),
                Some(Some(next)) => path = next,
                Some(None) => {
                    return Err(CallError::Transient(
                        "Okta's next page of the user's groups is not in the org".into(),
                    ));
                }
            }
        }
        Err(CallError::Transient(format!(
            "the user is in more than {MAX_PAGES} pages of groups; not read to the end"
        )))
    }

    async fn add_to_group(
        &self,
        group_id: &str,
        user_id: &str,
        ctx: &CallContext<'_>,
    ) -> Result<Membership, CallError> {
        self.membership(
            Operation::AddGroupMember,
            Method::PUT,
            group_id,
            user_id,
            "add the user to the quarantine group",
            ctx,
        )
        .await
    }

    async fn remove_from_group(
        &self,
        group_id: &str,
        user_id: &str,
        ctx: &CallContext<'_>,
    ) -> Result<Membership, CallError> {
        self.membership(
            Operation::RemoveGroupMember,
            Method::DELETE,
            group_id,
            user_id,
            "remove the user from the quarantine group",
            ctx,
        )
        .await
    }
}

impl OktaClient {
    async fn membership(
        &self,
        operation: Operation,
        method: Method,
        group_id: &str,
        user_id: &str,
        doing: &'static str,
        ctx: &CallContext<'_>,
    ) -> Result<Membership, CallError> {
        let call = Call::new(
            operation,
            method,
            format!("/api/v1/groups/{}/users/{}", group(group_id)?, id(user_id)?),
        );
        let answer = self.send(&call, ctx).await?;
        match answer.status {
            200 | 204 => Ok(Membership::Done),
            404 => Ok(Membership::NotFound {
                okta: answer.describe(),
            }),
            _ => Err(answer.unexpected(doing)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okta::Profile;

    fn user(id: &str, login: &str, email: &str) -> OktaUser {
        OktaUser {
            id: id.into(),
            status: Some("ACTIVE".into()),
            profile: Profile {
                login: Some(login.into()),
                email: Some(email.into()),
            },
        }
    }

    #[test]
    fn logins_travel_as_one_path_segment() {
        assert_eq!(
            path_segment("ana.lima@example.com").as_deref(),
            Some("ana.lima@example.com")
        );
        assert_eq!(
            path_segment("a?b#c d%e+f").as_deref(),
            Some("a%3Fb%23c%20d%25e%2Bf")
        );
        assert_eq!(path_segment("quote\"me").as_deref(), Some("quote%22me"));
        assert_eq!(path_segment("..x").as_deref(), Some("..x"));
        for unsafe_login in ["a/b", "..", ".", "../admin"] {
            assert_eq!(path_segment(unsafe_login), None, "{unsafe_login}");
        }
    }

    #[test]
    fn search_values_are_escaped_and_encoded() {
        assert_eq!(
            search_query("profile.email", "ana+x@example.com"),
            "search=profile.email%20eq%20%22ana%2Bx%40example.com%22"
        );
        let q = search_query("profile.login", r#"a" or profile.login sw "\"#);
        let decoded = percent_encoding::percent_decode_str(q.trim_start_matches("search="))
            .decode_utf8()
            .unwrap();
        assert_eq!(
            decoded,
            r#"profile.login eq "a\" or profile.login sw \"\\""#
        );
    }

    #[test]
    fn a_path_lookup_is_accepted_only_for_the_named_user() {
        let ana = user("00uana", "Ana.Lima@example.com", "ana@example.com");
        assert!(names_user(
            &Login::parse("ana.lima@example.com").unwrap(),
            &ana
        ));
        assert!(
            names_user(&Login::parse("ana.lima").unwrap(), &ana),
            "shortname"
        );
        assert!(
            !names_user(&Login::parse("00uana").unwrap(), &ana),
            "an id is not a login"
        );
        assert!(
            !names_user(&Login::parse("ana@example.com").unwrap(), &ana),
            "an email is not a login"
        );
    }

    #[test]
    fn error_answers_are_described_for_people() {
        let answer = Answer {
            status: 400,
            body: br#"{"errorCode":"E0000001","errorSummary":"Api validation failed: suspendUser","errorCauses":[{"errorSummary":"Cannot suspend a user that is not active"}]}"#.to_vec(),
            request_id: None,
            www_authenticate: None,
            next: None,
        };
        assert_eq!(
            answer.describe(),
            "Okta answered 400 E0000001: Api validation failed: suspendUser (Cannot suspend a user that is not active)"
        );
        assert_eq!(
            Answer {
                status: 502,
                body: b"<html>".to_vec(),
                request_id: None,
                www_authenticate: None,
                next: None,
            }
            .describe(),
            "Okta answered 502"
        );
    }
}
