//! How one request to the fake Okta is handled, in the order Okta does it:
//! route the raw path, authenticate (SSWS, Bearer or DPoP), count it against
//! the rate limits, check the token's scopes, find the user it concerns, apply
//! any injected fault, answer, and record it in the journal.
//!
//! Paths are routed from the raw request path, and the user segment is
//! percent-decoded exactly once: `%2F` never becomes a separator and `..` is
//! never normalised, so a hostile login can only ever name itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use axum::extract::{Request, State};
use axum::response::Response;
use http::{Method, StatusCode, header};
use serde_json::Value;

use super::limits::{fault_answer, take_fault};
use super::oauth::{self, GLOBAL_TOKEN_REVOCATION_PATH, TOKEN_PATH, TokenType};
use super::org::{Lifecycle, invalid_search};
use super::render::{Answer, epoch_secs, error_body, recorded_headers, render};
use super::search::Search;
use super::{Operation, RecordedRequest, Shared};
use crate::http_stub::random_string;
use crate::lock;

enum Route {
    Search,
    GetUser(String),
    Lifecycle(String, Lifecycle),
    Sessions(String),
    Roles(String),
    Token,
    GlobalTokenRevocation,
    Group(String),
    UserGroups(String),
    /// Group, user, add (PUT) or remove (DELETE).
    GroupMember(String, String, bool),
    WrongMethod(&'static str),
    NotFound,
}

impl Route {
    fn operation(&self) -> Option<Operation> {
        Some(match self {
            Route::Search => Operation::Search,
            Route::GetUser(_) => Operation::GetUser,
            Route::Lifecycle(_, Lifecycle::Suspend) => Operation::Suspend,
            Route::Lifecycle(_, Lifecycle::Unsuspend) => Operation::Unsuspend,
            Route::Sessions(_) => Operation::ClearSessions,
            Route::Roles(_) => Operation::Roles,
            Route::Token => Operation::Token,
            Route::GlobalTokenRevocation => Operation::GlobalTokenRevocation,
            Route::Group(_) => Operation::GetGroup,
            Route::UserGroups(_) => Operation::ListUserGroups,
            Route::GroupMember(_, _, true) => Operation::AddGroupMember,
            Route::GroupMember(_, _, false) => Operation::RemoveGroupMember,
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
    if let Some(rest) = raw_path.strip_prefix("/api/v1/groups/") {
        return group_route(method, rest);
    }
    let Some(rest) = raw_path.strip_prefix("/api/v1/users") else {
        return Route::NotFound;
    };
    if rest.is_empty() || rest == "/" {
        return if method == Method::GET {
            Route::Search
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
        ["groups"] => want(Method::GET, "GET", Route::UserGroups(user)),
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

/// `/api/v1/groups/{groupId}` and `/api/v1/groups/{groupId}/users/{userId}`,
/// each segment percent-decoded once.
fn group_route(method: &Method, rest: &str) -> Route {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|d| d.into_owned())
            .filter(|d| !d.is_empty())
    };
    let segs: Vec<&str> = rest.split('/').collect();
    match segs[..] {
        [group] => match decode(group) {
            Some(g) if *method == Method::GET => Route::Group(g),
            Some(_) => Route::WrongMethod("GET"),
            None => Route::NotFound,
        },
        [group, "users", user] => match (decode(group), decode(user)) {
            (Some(g), Some(u)) if *method == Method::PUT => Route::GroupMember(g, u, true),
            (Some(g), Some(u)) if *method == Method::DELETE => Route::GroupMember(g, u, false),
            (Some(_), Some(_)) => Route::WrongMethod("PUT, DELETE"),
            _ => Route::NotFound,
        },
        _ => Route::NotFound,
    }
}

/// Counts the requests in flight for as long as it lives.
struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The largest request body read (token requests and revocations are small).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The fake's one axum handler.
pub(super) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
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
    let mut delay = org.latency;
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
                // A rejected token does not use up the bucket; show its current state.
                Err(rejection) => break 'answer rejection.answer(org.peek_rate(op, now_secs)),
            }
        };
        let rate = match org.take_rate(op, now_secs, in_flight) {
            Ok(rate) => rate,
            Err(too_many) => break 'answer too_many,
        };

        // Scopes: an OAuth token may only do what it was granted (SSWS: anything).
        if let (Some(p), Some(op)) = (&principal, op)
            && !p.allows(op)
        {
            break 'answer oauth::insufficient_scope(&raw_path).answer(rate);
        }

        // Resolve first (read only): faults match on who the request concerns.
        let query = parse_query(raw_query.as_deref());
        let search = matches!(route, Route::Search).then(|| Search::from_query(&query));
        let revocation =
            matches!(route, Route::GlobalTokenRevocation).then(|| oauth::parse_revocation(body));
        let (target, names, found): (Option<usize>, Vec<String>, Vec<usize>) = match &route {
            Route::GetUser(k) | Route::Lifecycle(k, _) => {
                (org.resolve_path_user(k), vec![k.clone()], Vec::new())
            }
            Route::Sessions(k) | Route::Roles(k) | Route::UserGroups(k) => {
                (org.find_by_id(k), vec![k.clone()], Vec::new())
            }
            Route::GroupMember(_, u, _) => (org.find_by_id(u), vec![u.clone()], Vec::new()),
            Route::Group(_) => (None, Vec::new(), Vec::new()),
            Route::Search => match search.as_ref().and_then(Option::as_ref) {
                Some(s) => (None, vec![s.value.clone()], org.search(s)),
                None => (None, Vec::new(), Vec::new()),
            },
            Route::GlobalTokenRevocation => match &revocation {
                Some(Ok(id)) => (org.find_by_id(id), vec![id.clone()], Vec::new()),
                _ => (None, Vec::new(), Vec::new()),
            },
            Route::Token | Route::WrongMethod(_) | Route::NotFound => {
                (None, Vec::new(), Vec::new())
            }
        };
        user_id = target.map(|i| org.users[i].state.id.clone());
        let concerned: Vec<usize> = target.into_iter().chain(found.iter().copied()).collect();

        if let Some(kind) = take_fault(&mut org, op, &names, &concerned, &mut delay) {
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
                org.universal_logout(&id, target, rate)
            }
            Route::Search => match search.flatten() {
                Some(_) => org.list_answer(&shared.base_url, &found, rate),
                None => invalid_search(rate),
            },
            Route::GetUser(k) => org.user_answer(&shared.base_url, &k, target, rate),
            Route::Roles(k) => org.roles_answer(&shared.base_url, &k, target, rate),
            Route::Sessions(k) => {
                let oauth_tokens = query.get("oauthTokens").map(String::as_str);
                org.clear_sessions(&k, target, oauth_tokens, rate)
            }
            Route::Lifecycle(k, action) => org.lifecycle(&k, target, action, now, rate),
            Route::Group(g) => org.group_answer(&shared.base_url, &g, rate),
            Route::UserGroups(k) => org.user_groups_answer(&shared.base_url, &k, target, rate),
            Route::GroupMember(g, u, add) => org.membership(&g, &u, target, add, now, rate),
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

fn parse_query(raw: Option<&str>) -> HashMap<String, String> {
    // First occurrence wins, as most servers do.
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}
