//! The actions function's settings, from the environment.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use shared::config::{self, ConfigError, Lookup};
use shared::decision::{is_slack_group_id, is_slack_user_id};
use shared::store::DEFAULT_APPROVAL_TTL_HOURS;
use url::Url;

/// Slack's Web API.
pub const DEFAULT_SLACK_API_URL: &str = "https://slack.com/api";
/// The longest approval window accepted (30 days).
pub const MAX_APPROVAL_TTL_HOURS: u64 = 720;

#[derive(Debug, Clone)]
pub struct Config {
    /// `QUEUE_URL`: the FIFO queue decisions go to (the events queue).
    pub queue_url: String,
    /// `STORE_TABLE`: the DynamoDB table of held events and decisions.
    pub store_table: String,
    /// `SLACK_SIGNING_SECRET_ID`: the secret whose SecretString is the Slack app's signing secret.
    pub signing_secret_id: String,
    /// `SLACK_APPROVERS`: Slack user ids allowed to decide.
    pub approvers: BTreeSet<String>,
    /// `SLACK_APPROVER_GROUP`: a Slack user group whose members may decide.
    pub approver_group: Option<String>,
    /// `SLACK_SECRET_ID`: the dispatcher's Slack secret, for its `botToken`
    /// (the group check); required when `SLACK_APPROVER_GROUP` is set.
    pub slack_secret_id: Option<String>,
    /// `SLACK_APP_ID`: when set, only clicks for this app (`api_app_id`).
    pub app_id: Option<String>,
    /// `SLACK_TEAM_ID`: when set, only clicks from this workspace (`team.id`).
    pub team_id: Option<String>,
    /// `SLACK_API_URL`: where `usergroups.users.list` lives.
    pub slack_api_url: Url,
    /// `SECRET_TTL_SECONDS`: how long secrets are cached.
    pub secret_ttl: Duration,
    /// `APPROVAL_TTL_HOURS`: how long after it was reported a held event may
    /// be approved (the dispatcher stores the expiry with the event; a
    /// shorter setting here also applies to events already stored).
    pub approval_ttl: Duration,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(&config::process_env)
    }

    pub fn from_lookup(env: &impl Lookup) -> Result<Config, ConfigError> {
        let mut approvers = BTreeSet::new();
        for id in config::list(env, "SLACK_APPROVERS") {
            if !is_slack_user_id(&id) {
                return Err(ConfigError::invalid(
                    "SLACK_APPROVERS",
                    format!(
                        "{id:?} is not a Slack user id (U... or W..., upper-case letters and digits)"
                    ),
                ));
            }
            approvers.insert(id);
        }
        let approver_group = config::optional(env, "SLACK_APPROVER_GROUP");
        if let Some(group) = &approver_group
            && !is_slack_group_id(group)
        {
            return Err(ConfigError::invalid(
                "SLACK_APPROVER_GROUP",
                format!(
                    "{group:?} is not a Slack user group id (S..., upper-case letters and digits)"
                ),
            ));
        }
        let slack_secret_id = config::optional(env, "SLACK_SECRET_ID");
        if approver_group.is_some() && slack_secret_id.is_none() {
            return Err(ConfigError::invalid(
                "SLACK_SECRET_ID",
                "it is required when SLACK_APPROVER_GROUP is set: the group check reads the bot token from it",
            ));
        }
        let slack_api =
            config::optional(env, "SLACK_API_URL").unwrap_or_else(|| DEFAULT_SLACK_API_URL.into());
        let hours = config::number_in(
            env,
            "APPROVAL_TTL_HOURS",
            DEFAULT_APPROVAL_TTL_HOURS,
            1..=MAX_APPROVAL_TTL_HOURS,
        )?;
        Ok(Config {
            queue_url: config::required(env, "QUEUE_URL")?,
            store_table: config::required(env, "STORE_TABLE")?,
            signing_secret_id: config::required(env, "SLACK_SIGNING_SECRET_ID")?,
            approvers,
            approver_group,
            slack_secret_id,
            app_id: slack_id(env, "SLACK_APP_ID")?,
            team_id: slack_id(env, "SLACK_TEAM_ID")?,
            slack_api_url: secure_url("SLACK_API_URL", &slack_api)?,
            secret_ttl: config::seconds(env, "SECRET_TTL_SECONDS", Duration::from_secs(300))?,
            approval_ttl: Duration::from_secs(hours * 3600),
        })
    }

    /// Whether anyone at all may decide. With no one configured, every click
    /// is refused.
    pub fn has_approvers(&self) -> bool {
        !self.approvers.is_empty() || self.approver_group.is_some()
    }
}

/// An optional Slack id (`A...`, `T...`, `E...`): upper-case letters and digits.
fn slack_id(env: &impl Lookup, name: &'static str) -> Result<Option<String>, ConfigError> {
    match config::optional(env, name) {
        None => Ok(None),
        Some(id)
            if id.len() <= 32
                && id
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) =>
        {
            Ok(Some(id))
        }
        Some(id) => Err(ConfigError::invalid(
            name,
            format!("{id:?} is not a Slack id (upper-case letters and digits)"),
        )),
    }
}

/// A URL that is https, or http to a loopback address (local runs and tests).
/// The trailing slash is normalised away so paths can be appended.
fn secure_url(name: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim_end_matches('/'))
        .map_err(|e| ConfigError::invalid(name, format!("{raw:?}: {e}")))?;
    let secure = match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => false,
        },
        _ => false,
    };
    if secure {
        Ok(url)
    } else {
        Err(ConfigError::invalid(
            name,
            format!("{raw:?} must use https (http is allowed only for localhost)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::config::Pairs;

    const BASE: &[(&str, &str)] = &[
        ("QUEUE_URL", "q"),
        ("STORE_TABLE", "t"),
        ("SLACK_SIGNING_SECRET_ID", "s"),
    ];

    fn from(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let pairs: Vec<(&str, &str)> = BASE.iter().chain(extra).copied().collect();
        Config::from_lookup(&Pairs(&pairs))
    }

    fn error(extra: &[(&str, &str)]) -> String {
        from(extra).unwrap_err().to_string()
    }

    #[test]
    fn defaults_apply() {
        let c = from(&[]).unwrap();
        assert!(c.approvers.is_empty());
        assert!(!c.has_approvers());
        assert_eq!(c.approver_group, None);
        assert_eq!(c.slack_api_url.as_str(), "https://slack.com/api");
        assert_eq!(c.secret_ttl, Duration::from_secs(300));
        assert_eq!(c.approval_ttl, Duration::from_secs(72 * 3600));
        assert_eq!((c.app_id, c.team_id), (None, None));
    }

    #[test]
    fn approvers_and_group_are_validated() {
        let c = from(&[
            ("SLACK_APPROVERS", " U024BE7LH, W012A3CDE ,"),
            ("SLACK_APPROVER_GROUP", "S0614TZR7"),
            ("SLACK_SECRET_ID", "slack"),
            ("SLACK_APP_ID", "A0123ABC"),
            ("SLACK_TEAM_ID", "T0123ABC"),
            ("APPROVAL_TTL_HOURS", "24"),
            ("SLACK_API_URL", "http://127.0.0.1:9999/api/"),
        ])
        .unwrap();
        assert!(c.has_approvers());
        assert_eq!(
            c.approvers.iter().map(String::as_str).collect::<Vec<_>>(),
            ["U024BE7LH", "W012A3CDE"]
        );
        assert_eq!(c.approver_group.as_deref(), Some("S0614TZR7"));
        assert_eq!(c.approval_ttl, Duration::from_secs(24 * 3600));
        assert_eq!(c.slack_api_url.as_str(), "http://127.0.0.1:9999/api");
        assert!(
            from(&[
                ("SLACK_APPROVER_GROUP", "S0614TZR7"),
                ("SLACK_SECRET_ID", "x")
            ])
            .unwrap()
            .has_approvers()
        );
    }

    #[test]
    fn missing_or_malformed_settings_name_the_setting() {
        for (name, _) in BASE {
            let pairs: Vec<(&str, &str)> =
                BASE.iter().filter(|(k, _)| k != name).copied().collect();
            let err = Config::from_lookup(&Pairs(&pairs)).unwrap_err().to_string();
            assert_eq!(err, format!("{name} is required but not set"));
        }
        for (extra, name) in [
            (
                vec![("SLACK_APPROVERS", "U024BE7LH,alice")],
                "SLACK_APPROVERS",
            ),
            (vec![("SLACK_APPROVERS", "S0614TZR7")], "SLACK_APPROVERS"),
            (
                vec![
                    ("SLACK_APPROVER_GROUP", "U024BE7LH"),
                    ("SLACK_SECRET_ID", "x"),
                ],
                "SLACK_APPROVER_GROUP",
            ),
            (
                vec![("SLACK_APPROVER_GROUP", "S0614TZR7")],
                "SLACK_SECRET_ID",
            ),
            (vec![("SLACK_APP_ID", "my app")], "SLACK_APP_ID"),
            (vec![("SLACK_TEAM_ID", "t-1")], "SLACK_TEAM_ID"),
            (
                vec![("SLACK_API_URL", "http://slack.example.com/api")],
                "SLACK_API_URL",
            ),
            (vec![("APPROVAL_TTL_HOURS", "0")], "APPROVAL_TTL_HOURS"),
            (vec![("APPROVAL_TTL_HOURS", "1000")], "APPROVAL_TTL_HOURS"),
            (vec![("SECRET_TTL_SECONDS", "never")], "SECRET_TTL_SECONDS"),
        ] {
            let err = error(&extra);
            assert!(
                err.starts_with(&format!("{name} is invalid")),
                "{extra:?}: {err}"
            );
        }
    }
}
