//! Okta, behind one typed client.
//!
//! [`Directory`] is what the lockout rules need from Okta, in Okta-free
//! words: find a user, list their admin roles, suspend, clear sessions,
//! sign them out everywhere, add them to (or remove them from) a group. [`OktaClient`] is the real one: REST paths,
//! status codes and error codes, authentication (SSWS, or an OAuth service
//! app with DPoP), retries, rate-limit pacing, deadlines and request ids all
//! stay inside it. Tests of the rules use [`memory::MemoryDirectory`].
//!
//! - [`client`]: requests and what Okta's answers mean;
//! - [`auth`]: the `Authorization` (and `DPoP`) headers of each request;
//! - [`credential`]: the Okta secret's shapes;
//! - [`jwt`]: client assertions and DPoP proofs.

pub mod auth;
pub mod client;
pub mod credential;
pub mod jwt;
#[cfg(test)]
pub mod memory;
#[cfg(test)]
mod wire_tests;

use std::future::Future;
use std::sync::Mutex;

use serde::Deserialize;
use shared::event::Login;

use crate::deadline::Deadline;

pub use client::OktaClient;

pub use crate::http::REQUEST_TIMEOUT;

/// An Okta user, as far as the rules care; Okta's JSON is read leniently.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct OktaUser {
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub profile: Profile,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Profile {
    #[serde(default)]
    pub login: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

impl OktaUser {
    pub fn status(&self) -> &str {
        self.status.as_deref().unwrap_or("UNKNOWN")
    }
}

/// An Okta group, as far as quarantine cares (`GET /api/v1/groups/{id}`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct OktaGroup {
    pub id: String,
    /// `OKTA_GROUP`, `APP_GROUP` or `BUILT_IN`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub profile: GroupProfile,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct GroupProfile {
    #[serde(default)]
    pub name: Option<String>,
}

impl OktaGroup {
    /// Only an `OKTA_GROUP` can have members added and removed by the API.
    pub fn is_okta_group(&self) -> bool {
        self.kind.as_deref() == Some("OKTA_GROUP")
    }

    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("UNKNOWN")
    }
}

/// What adding a user to, or removing them from, a group did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// Done (also when nothing changed: Okta's calls are idempotent).
    Done,
    /// The group or the user does not exist (any more); Okta's answer.
    NotFound { okta: String },
}

/// A profile attribute searched for an exact value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    Login,
    Email,
}

impl Attribute {
    pub fn name(self) -> &'static str {
        match self {
            Attribute::Login => "profile.login",
            Attribute::Email => "profile.email",
        }
    }

    pub fn of(self, user: &OktaUser) -> Option<&str> {
        match self {
            Attribute::Login => user.profile.login.as_deref(),
            Attribute::Email => user.profile.email.as_deref(),
        }
    }
}

/// What a suspend did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suspension {
    Done,
    /// Okta refused: the user is not in a status it suspends from.
    NotSuspendable {
        refusal: String,
    },
    /// The user no longer exists.
    Gone,
}

/// What an unsuspend did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsuspension {
    Done,
    /// Okta refused: the user is not SUSPENDED.
    NotSuspended {
        refusal: String,
    },
    Gone,
}

/// What a Universal Logout (global token revocation) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Signed out of every app that supports Universal Logout.
    Done,
    /// The org does not have it (not licensed, or the app lacks the scope).
    NotAvailable { reason: String },
}

/// Why a call has no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// May succeed on a later delivery: rate limit, outage, credentials
    /// refused, time running out.
    #[error("{0}")]
    Transient(String),
    /// Okta answered with a 4xx that retrying will not change.
    #[error("could not {doing}: {okta}")]
    Refused { doing: &'static str, okta: String },
    /// The credentials are unusable or refused (a malformed secret, an app
    /// the token endpoint refuses, a token Okta refuses): a person must fix
    /// them; until then every call would fail the same way.
    #[error("{0}")]
    Credentials(String),
}

/// Who a call is for, for the log lines; collects Okta's request ids.
#[derive(Debug)]
pub struct CallContext<'a> {
    pub event_id: &'a str,
    pub user: &'a str,
    pub deadline: Deadline,
    last_request_id: Mutex<Option<String>>,
}

impl<'a> CallContext<'a> {
    pub fn new(event_id: &'a str, user: &'a str, deadline: Deadline) -> Self {
        CallContext {
            event_id,
            user,
            deadline,
            last_request_id: Mutex::new(None),
        }
    }

    /// `X-Okta-Request-Id` of the last answer, for the outcome's log line.
    pub fn last_request_id(&self) -> Option<String> {
        self.last_request_id
            .lock()
            .expect("request id lock")
            .clone()
    }

    pub(crate) fn saw_request_id(&self, id: Option<&str>) {
        if let Some(id) = id {
            *self.last_request_id.lock().expect("request id lock") = Some(id.to_string());
        }
    }
}

/// What the lockout rules need from Okta.
pub trait Directory: Sync {
    /// The user whose login (or login's shortname) this is, if any.
    fn find_by_login(
        &self,
        login: &Login,
        ctx: &CallContext<'_>,
    ) -> impl Future<Output = Result<Option<OktaUser>, CallError>> + Send;

    /// Users whose `attribute` equals `value` exactly (case-insensitively).
    fn search_exact(
        &self,
        attribute: Attribute,
        value: &str,
        ctx: &CallContext<'_>,
    ) -> impl Future<Output = Result<Vec<OktaUser>, CallError>> + Send;

    /// The user as Okta has them now.
    fn get_user(
        &self,
        user_id: &str,
        ctx: &CallContext<'_>,
    ) -> impl Future<Output = Result<Option<OktaUser>, CallError>> + Send;

    /// The admin role types the user holds (empty: none).
    fn admin_roles(
        &self,
        user_id: &str,
        ctx: &CallContext<'_>,
    ) -> impl Future<Output = Result<Vec<String>, CallError>> + Send;

    fn suspend(
        &self,
        user_id: &str,
        ctx: &CallContext<'_>,
    ) -> impl Future<Output = Result<Suspension, CallError>> + Send;

    fn unsuspend(
        &self,
        user_id: &str,
        ctx: &CallContext<'_>,
    ) -> impl Future<Output = Result<Unsuspension, CallError>> + Send;

    /// Ends the user's Okta sessions and revokes their OAuth tokens.
    fn clear_sessions(
        &self,
        user_id: &str,
        ctx: &CallContext<'_>,
    ) -> impl Future<Output = Result<(), CallError>> + Send;

    /// Universal Logout: signs the user out of every app that supports it.
    fn revoke_globally(
        &self,
        user_id: &str,
        ctx: &CallContext<'_>,
    ) -> impl Future<Output = Result<Revocation, CallError>> + Send;

    /// The group, or `None` when it does not exist.
    fn get_group(
        &self,
        group_id: &str,
        ctx: &CallContext<'_>,
    ) -> impl Future<Output = Result<Option<OktaGroup>, CallError>> + Send;

    /// The ids of the groups the user is a member of.
    fn user_groups(
        &self,
        user_id: &str,
        ctx: &CallContext<'_>,
    ) -> impl Future<Output = Result<Vec<String>, CallError>> + Send;

    /// Adds the user to the group (again is harmless).
    fn add_to_group(
        &self,
        group_id: &str,
        user_id: &str,
        ctx: &CallContext<'_>,
    ) -> impl Future<Output = Result<Membership, CallError>> + Send;

    /// Removes the user from the group.
    fn remove_from_group(
        &self,
        group_id: &str,
        user_id: &str,
        ctx: &CallContext<'_>,
    ) -> impl Future<Output = Result<Membership, CallError>> + Send;
}
