//! Who may decide.
//!
//! Slack has no per-button access control: anyone who sees a message can
//! click its buttons. A click counts only when its `user.id` is listed in
//! `SLACK_APPROVERS`, or is a member of the user group `SLACK_APPROVER_GROUP`
//! (`usergroups.users.list`, with the bot token of the dispatcher's Slack
//! secret). The group's members are cached for [`GROUP_CACHE_TTL`]; someone
//! not found is looked up again once the list is [`MIN_GROUP_REFRESH`] old,
//! so a person just added is not refused for long, and a stream of refused
//! clicks cannot turn into a Slack call each. With no one configured, every
//! click is refused.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use shared::secrets::{Cached, SecretError, SecretReader};
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

/// How long a group's member list is used.
pub const GROUP_CACHE_TTL: Duration = Duration::from_secs(300);
/// A miss re-reads the member list when it is at least this old.
pub const MIN_GROUP_REFRESH: Duration = Duration::from_secs(30);

/// How the clicker was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Listed in `SLACK_APPROVERS`.
    Listed,
    /// A member of `SLACK_APPROVER_GROUP`.
    GroupMember,
}

impl Allowed {
    pub fn as_str(self) -> &'static str {
        match self {
            Allowed::Listed => "approver",
            Allowed::GroupMember => "group member",
        }
    }
}

/// The verdict on a clicker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed(Allowed),
    Refused,
}

/// The group check could not be made (our side: the clicker is neither
/// allowed nor refused).
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(
        "secret {0} has no botToken: the approver group check needs a bot token with the usergroups:read scope"
    )]
    NoBotToken(String),
    #[error("Slack usergroups.users.list failed: {0}")]
    Slack(String),
}

/// The approvers, by list and by group.
pub struct Authorizer {
    approvers: BTreeSet<String>,
    group: Option<GroupCheck>,
}

impl Authorizer {
    pub fn new(approvers: BTreeSet<String>, group: Option<GroupCheck>) -> Authorizer {
        Authorizer { approvers, group }
    }

    /// Whether anyone at all may decide.
    pub fn anyone(&self) -> bool {
        !self.approvers.is_empty() || self.group.is_some()
    }

    /// Whether `user_id` may decide: the list first (no call), then the group.
    pub async fn authorize(&self, user_id: &str) -> Result<Verdict, AuthorizeError> {
        if self.approvers.contains(user_id) {
            return Ok(Verdict::Allowed(Allowed::Listed));
        }
        match &self.group {
            Some(group) if group.is_member(user_id).await? => {
                Ok(Verdict::Allowed(Allowed::GroupMember))
            }
            _ => Ok(Verdict::Refused),
        }
    }
}

#[derive(Deserialize)]
struct SlackSecret {
    #[serde(rename = "botToken", default)]
    bot_token: Option<SecretString>,
}

const SLACK_SECRET_SHAPE: &str = r#"{"botToken": "xoxb-...", "channel": "C..."}"#;

#[derive(Deserialize)]
struct UsersList {
    ok: bool,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Membership of one Slack user group.
pub struct GroupCheck {
    group_id: String,
    endpoint: Url,
    http: reqwest::Client,
    reader: SecretReader,
    secret_id: String,
    token: Cached<SecretString>,
    members: Mutex<Option<(Arc<HashSet<String>>, Instant)>>,
}

impl GroupCheck {
    /// `api_url` is Slack's Web API base (`https://slack.com/api`); `http`
    /// should carry timeouts well under Slack's 3 seconds.
    pub fn new(
        group_id: String,
        api_url: &Url,
        http: reqwest::Client,
        reader: SecretReader,
        secret_id: String,
        secret_ttl: Duration,
    ) -> GroupCheck {
        let mut endpoint = Url::parse(&format!(
            "{}/usergroups.users.list",
            api_url.as_str().trim_end_matches('/')
        ))
        .expect("a valid base URL plus a path is valid");
        endpoint
            .query_pairs_mut()
            .append_pair("usergroup", &group_id);
        GroupCheck {
            group_id,
            endpoint,
            http,
            reader,
            secret_id,
            token: Cached::new(secret_ttl, MIN_GROUP_REFRESH),
            members: Mutex::new(None),
        }
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    async fn is_member(&self, user_id: &str) -> Result<bool, AuthorizeError> {
        let mut members = self.members.lock().await;
        if let Some((list, fetched)) = members.as_ref() {
            let age = fetched.elapsed();
            if list.contains(user_id) && age < GROUP_CACHE_TTL {
                return Ok(true);
            }
            if age < MIN_GROUP_REFRESH {
                return Ok(false);
            }
        }
        let list = Arc::new(self.fetch().await?);
        *members = Some((list.clone(), Instant::now()));
        Ok(list.contains(user_id))
    }

    async fn fetch(&self) -> Result<HashSet<String>, AuthorizeError> {
        let token = self
            .token
            .get(|| async {
                let secret: SlackSecret = self
                    .reader
                    .read_json(&self.secret_id, SLACK_SECRET_SHAPE)
                    .await?;
                secret
                    .bot_token
                    .filter(|t| !t.expose_secret().trim().is_empty())
                    .ok_or_else(|| SecretError::Malformed {
                        secret_id: self.secret_id.clone(),
                        reason: "it has no botToken".into(),
                    })
            })
            .await
            .map_err(|e| match e {
                SecretError::Malformed { reason, .. } if reason == "it has no botToken" => {
                    AuthorizeError::NoBotToken(self.secret_id.clone())
                }
                other => AuthorizeError::Secret(other),
            })?;
        let response = self
            .http
            .get(self.endpoint.clone())
            .bearer_auth(token.expose_secret().trim())
            .send()
            .await
            .map_err(|e| AuthorizeError::Slack(without_url(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(AuthorizeError::Slack(format!("HTTP {}", status.as_u16())));
        }
        let list: UsersList = response.json().await.map_err(|e| {
            AuthorizeError::Slack(format!("unreadable answer: {}", without_url(&e)))
        })?;
        if !list.ok {
            return Err(AuthorizeError::Slack(
                list.error.unwrap_or_else(|| "ok: false".into()),
            ));
        }
        Ok(list.users.into_iter().collect())
    }
}

/// A reqwest error, its URL replaced by the method's name.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_decode() {
        "could not decode the answer"
    } else {
        "request failed"
    };
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "usergroups.users.list");
    }
    format!("{kind}: {text}")
}
