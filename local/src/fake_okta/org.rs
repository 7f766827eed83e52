//! The fake org's users and what the dispatcher does to them: look-ups by id,
//! login or shortname, the exact search, admin roles, the lifecycle state
//! machine (suspend only from a suspendable status, `ACTIVE` by default;
//! unsuspend only from `SUSPENDED`), clearing sessions, and Universal Logout.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use serde_json::{Value, json};

use super::limits::{Bucket, DEFAULT_RATE_LIMIT, DEFAULT_RATE_WINDOW, Fault, RateHeaders};
use super::oauth::OAuthState;
use super::render::{
    Answer, error_body, no_content, roles_json, user_json, user_not_found, validation_failed,
};
use super::search::Search;
use super::{Operation, RecordedRequest};
use crate::http_stub::random_string;

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

pub(super) struct User {
    pub(super) state: UserState,
    /// Role assignment ids, parallel to `state.admin_roles`.
    pub(super) role_ids: Vec<String>,
}

/// `suspend` or `unsuspend`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Lifecycle {
    Suspend,
    Unsuspend,
}

/// Everything the fake org knows, behind one lock.
pub(super) struct Org {
    pub(super) users: Vec<User>,
    pub(super) journal: Vec<RecordedRequest>,
    pub(super) faults: Vec<Fault>,
    pub(super) latency: Duration,
    pub(super) suspendable: Vec<String>,
    pub(super) concurrency_limit: Option<usize>,
    pub(super) window_secs: u64,
    pub(super) shared_bucket: Bucket,
    pub(super) op_buckets: HashMap<Operation, Bucket>,
    pub(super) oauth: OAuthState,
    pub(super) groups: Vec<super::groups::GroupState>,
}

impl Org {
    pub(super) fn new() -> Org {
        Org {
            users: Vec::new(),
            journal: Vec::new(),
            faults: Vec::new(),
            latency: Duration::ZERO,
            suspendable: vec!["ACTIVE".to_string()],
            concurrency_limit: None,
            window_secs: DEFAULT_RATE_WINDOW.as_secs(),
            shared_bucket: Bucket::new(DEFAULT_RATE_LIMIT),
            op_buckets: HashMap::from([
                (Operation::Token, Bucket::new(DEFAULT_RATE_LIMIT)),
                // Okta's groups bucket: every group call counts here.
                (Operation::GetGroup, Bucket::new(DEFAULT_RATE_LIMIT)),
            ]),
            oauth: OAuthState::new(),
            groups: Vec::new(),
        }
    }

    /// Adds a user; returns its new Okta id (`00u` + 17 characters).
    pub(super) fn add_user(&mut self, user: SeedUser) -> String {
        let mut id = format!("00u{}", random_string(17));
        while self.users.iter().any(|u| u.state.id == id) {
            id = format!("00u{}", random_string(17));
        }
        let created = SystemTime::now() - Duration::from_secs(86_400 * 400);
        let role_ids = user
            .admin_roles
            .iter()
            .map(|_| format!("ra1{}", random_string(17)))
            .collect();
        self.users.push(User {
            state: UserState {
                id: id.clone(),
                login: user.login,
                email: user.email,
                first_name: user.first_name,
                last_name: user.last_name,
                status: user.status.to_ascii_uppercase(),
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

    pub(super) fn find_by_id(&self, id: &str) -> Option<usize> {
        self.users.iter().position(|u| u.state.id == id)
    }

    pub(super) fn find_by_id_or_login(&self, key: &str) -> Option<usize> {
        self.find_by_id(key).or_else(|| {
            self.users
                .iter()
                .position(|u| u.state.login.eq_ignore_ascii_case(key))
        })
    }

    /// What `{id}` in `/api/v1/users/{id}` accepts: id, login, or unambiguous shortname.
    pub(super) fn resolve_path_user(&self, key: &str) -> Option<usize> {
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

    /// Users matching a search, in the order they were added.
    pub(super) fn search(&self, search: &Search) -> Vec<usize> {
        (0..self.users.len())
            .filter(|&i| search.matches(&self.users[i].state))
            .collect()
    }

    /// A status change made behind the client's back (as another admin would).
    pub(super) fn set_status(&mut self, i: usize, status: &str) {
        let now = SystemTime::now();
        let s = &mut self.users[i].state;
        s.status = status.to_ascii_uppercase();
        s.status_changed = Some(now);
        s.last_updated = now;
    }

    // -- answers ------------------------------------------------------------

    /// `GET /api/v1/users?search=...`: a JSON array of every match.
    pub(super) fn list_answer(&self, base_url: &str, found: &[usize], rate: RateHeaders) -> Answer {
        let body = Value::Array(
            found
                .iter()
                .map(|&i| user_json(base_url, &self.users[i]))
                .collect(),
        );
        Answer::json(StatusCode::OK, body, rate)
    }

    /// `GET /api/v1/users/{id}`.
    pub(super) fn user_answer(
        &self,
        base_url: &str,
        key: &str,
        target: Option<usize>,
        rate: RateHeaders,
    ) -> Answer {
        match target {
            Some(i) => Answer::json(StatusCode::OK, user_json(base_url, &self.users[i]), rate),
            None => user_not_found(key, rate),
        }
    }

    /// `GET /api/v1/users/{userId}/roles`.
    pub(super) fn roles_answer(
        &self,
        base_url: &str,
        key: &str,
        target: Option<usize>,
        rate: RateHeaders,
    ) -> Answer {
        match target {
            Some(i) => Answer::json(StatusCode::OK, roles_json(base_url, &self.users[i]), rate),
            None => user_not_found(key, rate),
        }
    }

    /// `DELETE /api/v1/users/{userId}/sessions[?oauthTokens=true|false]`.
    pub(super) fn clear_sessions(
        &mut self,
        key: &str,
        target: Option<usize>,
        oauth_tokens: Option<&str>,
        rate: RateHeaders,
    ) -> Answer {
        let Some(i) = target else {
            return user_not_found(key, rate);
        };
        let oauth = match oauth_tokens.map(str::to_ascii_lowercase).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return validation_failed("Api validation failed: oauthTokens", &[], rate),
        };
        let s = &mut self.users[i].state;
        s.sessions_cleared += 1;
        s.oauth_tokens_revoked |= oauth;
        no_content(rate)
    }

    /// `POST /api/v1/users/{id}/lifecycle/suspend|unsuspend`.
    pub(super) fn lifecycle(
        &mut self,
        key: &str,
        target: Option<usize>,
        action: Lifecycle,
        now: SystemTime,
        rate: RateHeaders,
    ) -> Answer {
        let Some(i) = target else {
            return user_not_found(key, rate);
        };
        let suspendable = &self.suspendable;
        let s = &mut self.users[i].state;
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
            return validation_failed(&format!("Api validation failed: {op_name}"), &[cause], rate);
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

    /// `POST /oauth2/v1/global-token-revocation` for a user id.
    pub(super) fn universal_logout(
        &mut self,
        id: &str,
        target: Option<usize>,
        rate: RateHeaders,
    ) -> Answer {
        match target {
            None => user_not_found(id, rate),
            Some(i) => {
                self.users[i].state.universal_logouts += 1;
                no_content(rate)
            }
        }
    }
}

/// 400 `E0000031`: a search this stand-in (or Okta) cannot parse.
pub(super) fn invalid_search(rate: RateHeaders) -> Answer {
    Answer::json(
        StatusCode::BAD_REQUEST,
        error_body("E0000031", "Invalid search criteria.", &[]),
        rate,
    )
}
