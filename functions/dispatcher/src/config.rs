//! The dispatcher's settings, from the environment. Every guard rail has a
//! safe default; the SAM template's defaults are safer still (dry run on).

use std::net::IpAddr;
use std::time::Duration;

use shared::config::{self, ConfigError, Lookup};
use url::Url;

use crate::check_actions::{self, CheckActions};

#[derive(Debug, Clone)]
pub struct Config {
    /// `OKTA_ORG_URL`: `https://<org>.okta.com` (http only for loopback).
    pub okta_org_url: Url,
    /// `OKTA_SECRET_ID`: `{"apiToken": "..."}` or an OAuth service app
    /// `{"clientId": ..., "privateKey": ..., "keyId": ...}` (see [`crate::okta::credential`]).
    pub okta_secret_id: String,
    /// `SLACK_SECRET_ID`: `{"webhookUrl": ...}` or `{"botToken": ..., "channel": ...}`.
    pub slack_secret_id: String,
    /// `SLACK_API_URL`: where `chat.postMessage` lives (default `https://slack.com/api`).
    pub slack_api_url: Url,
    /// `MAX_USERS_PER_EVENT`: an event listing more users is held.
    pub max_users_per_event: usize,
    /// `DRY_RUN`: resolve and report, write nothing.
    pub dry_run: bool,
    /// `ACTION_SEVERITIES`: lower-cased; empty means every severity acts.
    pub action_severities: Vec<String>,
    /// `PROTECTED_USERS`: logins, emails or Okta ids (lower-cased) never written to.
    pub protected_users: Vec<String>,
    /// `PROTECT_ADMINS`: never write to a user holding an Okta admin role.
    pub protect_admins: bool,
    /// `OKTA_MAX_CONCURRENCY`: users processed at once.
    pub okta_max_concurrency: usize,
    /// `MAX_RECEIVE_COUNT`: the queue's `maxReceiveCount`; that delivery is the last.
    pub max_receive_count: u32,
    /// `SECRET_TTL_SECONDS`: how long credentials are cached.
    pub secret_ttl: Duration,
    /// `STORE_TABLE`: the DynamoDB store of held events, suspensions and
    /// decisions; without it there are no buttons.
    pub store_table: Option<String>,
    /// `SLACK_APPROVERS`: Slack user ids allowed to decide (buttons shown
    /// only when these or a group are set).
    pub slack_approvers: Vec<String>,
    /// `SLACK_APPROVER_GROUP`: a Slack user group id allowed to decide.
    pub slack_approver_group: Option<String>,
    /// `APPROVAL_TTL_HOURS`: how long a held event can be approved.
    pub approval_ttl: Duration,
    /// `QUEUE_URL`: the events queue, to return failed messages early.
    pub queue_url: Option<String>,
    /// `RETRY_DELAY_SECONDS`: the first wait before a failed message comes
    /// back; each next one is 4 times longer, at most 15 minutes.
    pub retry_delay: Duration,
    /// `ACT_ON_PROVIDERS`: upper-cased identity providers (`OKTA`); when set,
    /// only users whose check failed on one of them are acted on.
    pub act_on_providers: Vec<String>,
    /// `UNIVERSAL_LOGOUT`: after suspending, revoke the user's tokens in
    /// every app that supports Universal Logout.
    pub universal_logout: bool,
    /// `CHECK_ACTIONS`: what each check does to its users (default `*=suspend`).
    pub check_actions: CheckActions,
    /// `QUARANTINE_GROUP_ID`: the Okta group `quarantine` adds users to.
    pub quarantine_group_id: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(&config::process_env)
    }

    pub fn from_lookup(env: &impl Lookup) -> Result<Config, ConfigError> {
        let quarantine_group_id =
            check_actions::group_id(config::optional(env, check_actions::GROUP_SETTING))?;
        let check_actions = CheckActions::parse(
            config::optional(env, check_actions::SETTING).as_deref(),
            quarantine_group_id.is_some(),
        )?;
        let slack_api = config::optional(env, "SLACK_API_URL")
            .unwrap_or_else(|| "https://slack.com/api".into());
        Ok(Config {
            okta_org_url: secure_url("OKTA_ORG_URL", &config::required(env, "OKTA_ORG_URL")?)?,
            okta_secret_id: config::required(env, "OKTA_SECRET_ID")?,
            slack_secret_id: config::required(env, "SLACK_SECRET_ID")?,
            slack_api_url: secure_url("SLACK_API_URL", &slack_api)?,
            max_users_per_event: config::number_in(env, "MAX_USERS_PER_EVENT", 20, 1..=10_000)?,
            dry_run: config::flag(env, "DRY_RUN", false)?,
            action_severities: lower(config::list(env, "ACTION_SEVERITIES")),
            protected_users: protected_users(env)?,
            protect_admins: config::flag(env, "PROTECT_ADMINS", true)?,
            okta_max_concurrency: config::number_in(env, "OKTA_MAX_CONCURRENCY", 4, 1..=32)?,
            max_receive_count: config::number_in(env, "MAX_RECEIVE_COUNT", 5, 1..=1000)?,
            secret_ttl: config::seconds(env, "SECRET_TTL_SECONDS", Duration::from_secs(300))?,
            universal_logout: config::flag(env, "UNIVERSAL_LOGOUT", false)?,
            store_table: config::optional(env, "STORE_TABLE"),
            slack_approvers: slack_ids(env, "SLACK_APPROVERS", shared::decision::is_slack_user_id)?,
            slack_approver_group: slack_ids(
                env,
                "SLACK_APPROVER_GROUP",
                shared::decision::is_slack_group_id,
            )?
            .into_iter()
            .next(),
            approval_ttl: Duration::from_secs(
                3600 * config::number_in(env, "APPROVAL_TTL_HOURS", 72u64, 1..=720)?,
            ),
            queue_url: config::optional(env, "QUEUE_URL"),
            retry_delay: Duration::from_secs(config::number_in(
                env,
                "RETRY_DELAY_SECONDS",
                30,
                1..=900,
            )?),
            act_on_providers: config::list(env, "ACT_ON_PROVIDERS")
                .into_iter()
                .map(|p| p.to_ascii_uppercase())
                .collect(),
            check_actions,
            quarantine_group_id,
        })
    }
}

/// Slack ids (`U…`, `S…`), each checked with `valid`.
fn slack_ids(
    env: &impl Lookup,
    name: &'static str,
    valid: fn(&str) -> bool,
) -> Result<Vec<String>, ConfigError> {
    let ids = config::list(env, name);
    if let Some(bad) = ids.iter().find(|id| !valid(id)) {
        return Err(ConfigError::invalid(
            name,
            format!("{bad:?} is not a Slack id of the right kind"),
        ));
    }
    Ok(ids)
}

impl Config {
    /// Whether summaries carry Approve/Dismiss/Unsuspend buttons: a store to
    /// remember what was held and done, and someone allowed to click.
    pub fn buttons(&self) -> bool {
        self.store_table.is_some()
            && (!self.slack_approvers.is_empty() || self.slack_approver_group.is_some())
    }
}

/// `PROTECTED_USERS`, lower-cased. An entry with a space or a semicolon in
/// it is a typo (a missing comma) that would silently unprotect both
/// accounts, so it stops the start-up.
fn protected_users(env: &impl Lookup) -> Result<Vec<String>, ConfigError> {
    let entries = lower(config::list(env, "PROTECTED_USERS"));
    for (i, entry) in entries.iter().enumerate() {
        if let Some(c) = entry.chars().find(|c| c.is_whitespace() || *c == ';') {
            let what = if c == ';' { "a semicolon" } else { "a space" };
            return Err(ConfigError::invalid(
                "PROTECTED_USERS",
                format!(
                    "entry {} ({entry:?}) contains {what}: separate logins, emails and ids with commas",
                    i + 1
                ),
            ));
        }
    }
    Ok(entries)
}

fn lower(items: Vec<String>) -> Vec<String> {
    items.into_iter().map(|s| s.to_lowercase()).collect()
}

/// A URL that is https, or http to a loopback address (local runs and tests).
/// The trailing slash is normalised away so paths can be appended.
pub fn secure_url(name: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim_end_matches('/'))
        .map_err(|e| ConfigError::invalid(name, format!("{raw:?}: {e}")))?;
    if is_secure(&url) {
        Ok(url)
    } else {
        Err(ConfigError::invalid(
            name,
            format!("{raw:?} must use https (http is allowed only for localhost)"),
        ))
    }
}

/// https anywhere, http only to a loopback host.
pub fn is_secure(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::config::Pairs;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut all = vec![
            ("OKTA_ORG_URL", "https://acme.okta.com/"),
            ("OKTA_SECRET_ID", "o"),
            ("SLACK_SECRET_ID", "s"),
        ];
        all.extend_from_slice(pairs);
        Config::from_lookup(&Pairs(&all))
    }

    #[test]
    fn safe_defaults() {
        let c = from(&[]).unwrap();
        assert_eq!(c.okta_org_url.as_str(), "https://acme.okta.com/");
        assert_eq!(c.slack_api_url.as_str(), "https://slack.com/api");
        assert_eq!(c.max_users_per_event, 20);
        assert!(!c.dry_run);
        assert!(c.action_severities.is_empty());
        assert!(c.protect_admins);
        assert_eq!(c.okta_max_concurrency, 4);
        assert_eq!(c.max_receive_count, 5);
        assert!(!c.universal_logout);
        assert!(c.check_actions.is_default());
        assert_eq!(c.quarantine_group_id, None);
        assert!(
            from(&[("UNIVERSAL_LOGOUT", "true")])
                .unwrap()
                .universal_logout
        );
    }

    #[test]
    fn lists_are_lower_cased() {
        let c = from(&[
            ("PROTECTED_USERS", "Root@Acme.com, 00uABC"),
            ("ACTION_SEVERITIES", "Critical,HIGH"),
        ])
        .unwrap();
        assert_eq!(c.protected_users, ["root@acme.com", "00uabc"]);
        assert_eq!(c.action_severities, ["critical", "high"]);
    }

    #[test]
    fn buttons_need_a_store_and_an_approver() {
        assert!(!from(&[]).unwrap().buttons());
        assert!(!from(&[("STORE_TABLE", "t")]).unwrap().buttons());
        assert!(
            !from(&[("SLACK_APPROVERS", "U0APPROVER")])
                .unwrap()
                .buttons()
        );
        assert!(
            from(&[("STORE_TABLE", "t"), ("SLACK_APPROVERS", "U0APPROVER")])
                .unwrap()
                .buttons()
        );
        assert!(
            from(&[("STORE_TABLE", "t"), ("SLACK_APPROVER_GROUP", "S0TEAM")])
                .unwrap()
                .buttons()
        );
        let err = from(&[("SLACK_APPROVERS", "U0APPROVER,ana@example.com")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("SLACK_APPROVERS is invalid"), "{err}");
        assert_eq!(
            from(&[]).unwrap().approval_ttl,
            Duration::from_secs(72 * 3600)
        );
    }

    #[test]
    fn a_protected_list_typo_stops_the_start_up() {
        for (raw, what) in [
            ("root@acme.com; breakglass@acme.com", "a semicolon"),
            ("root@acme.com breakglass@acme.com", "a space"),
            ("ok@acme.com,tab\there@acme.com", "a space"),
        ] {
            let err = from(&[("PROTECTED_USERS", raw)]).unwrap_err().to_string();
            assert!(
                err.starts_with("PROTECTED_USERS is invalid: entry"),
                "{err}"
            );
            assert!(err.contains(what), "{raw}: {err}");
        }
        let c = from(&[("PROTECTED_USERS", " root@acme.com , ,00uX ")]).unwrap();
        assert_eq!(c.protected_users, ["root@acme.com", "00ux"]);
    }

    #[test]
    fn plain_http_is_refused_except_for_loopback() {
        for bad in [
            "http://acme.okta.com",
            "ftp://acme.okta.com",
            "http://10.0.0.1:8080",
            "not a url",
        ] {
            let err = from(&[("OKTA_ORG_URL", bad)]).unwrap_err().to_string();
            assert!(err.starts_with("OKTA_ORG_URL is invalid"), "{bad}: {err}");
        }
        for good in [
            "http://127.0.0.1:8080",
            "http://localhost:9",
            "http://[::1]:80",
            "https://acme.oktapreview.com",
        ] {
            assert!(from(&[("OKTA_ORG_URL", good)]).is_ok(), "{good}");
        }
        assert!(from(&[("SLACK_API_URL", "http://slack.example.com/api")]).is_err());
    }

    #[test]
    fn check_actions_and_the_group_are_read_together() {
        let c = from(&[
            ("CHECK_ACTIONS", "no-mfa=quarantine,*=notify"),
            ("QUARANTINE_GROUP_ID", "00gQuarantine"),
        ])
        .unwrap();
        assert!(c.check_actions.quarantines());
        assert_eq!(c.quarantine_group_id.as_deref(), Some("00gQuarantine"));
        let err = from(&[("CHECK_ACTIONS", "no-mfa=quarantine")])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("CHECK_ACTIONS is invalid") && err.contains("QUARANTINE_GROUP_ID"),
            "{err}"
        );
        let err = from(&[("QUARANTINE_GROUP_ID", "00g/x")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("QUARANTINE_GROUP_ID is invalid"), "{err}");
    }

    #[test]
    fn missing_settings_are_named() {
        let err = Config::from_lookup(&Pairs::<&str, &str>(&[]))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "OKTA_ORG_URL is required but not set");
        assert!(
            from(&[("OKTA_MAX_CONCURRENCY", "0")])
                .unwrap_err()
                .to_string()
                .starts_with("OKTA_MAX_CONCURRENCY")
        );
        assert!(
            from(&[("DRY_RUN", "perhaps")])
                .unwrap_err()
                .to_string()
                .starts_with("DRY_RUN")
        );
    }
}
