//! The guard rails: what an event may do before any user is looked at.
//!
//! Pure rules over the event and the configuration, so they are tested
//! without any service: only a `FAILED_CHECK` acts; one listing more users
//! than the cap, or of a severity that does not act, is held (no Okta call
//! at all); dry run resolves and reports but writes nothing; a check whose
//! `CHECK_ACTIONS` policy is `approve` is held for a person's approval (no
//! Okta call until then; a dry run reports instead). Then, per user
//! and still before any Okta call, `ACT_ON_PROVIDERS` skips users whose
//! check did not fail on one of the named identity providers.

use shared::event::{EventKind, Login, OortEvent};

use crate::check_actions::CheckAction;
use crate::config::Config;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Oort's connectivity test: a Slack notice, no Okta call whatever it lists.
    ConnectivityTest,
    /// An event type the dispatcher does not act on: a Slack notice.
    Unhandled(String),
    /// No Okta call for anyone; the summary says why.
    Hold { reason: String },
    /// The user pipeline for every listed user.
    Act { dry_run: bool },
}

pub fn plan(event: &OortEvent, config: &Config) -> Plan {
    match &event.kind {
        EventKind::WebhookTest => return Plan::ConnectivityTest,
        EventKind::Other(kind) => return Plan::Unhandled(kind.clone()),
        EventKind::FailedCheck => {}
    }
    if event.users.len() > config.max_users_per_event {
        return Plan::Hold {
            reason: format!(
                "the event lists {} users, over the cap of {} (MAX_USERS_PER_EVENT); nobody was changed in Okta",
                event.users.len(),
                config.max_users_per_event
            ),
        };
    }
    if !config.action_severities.is_empty() {
        let severity = event.severity_folded();
        if !severity
            .as_ref()
            .is_some_and(|s| config.action_severities.contains(s))
        {
            return Plan::Hold {
                reason: format!(
                    "severity {} does not act (ACTION_SEVERITIES: {}); nobody was changed in Okta",
                    severity.as_deref().unwrap_or("(none)"),
                    config.action_severities.join(", ")
                ),
            };
        }
    }
    let action = config.check_actions.for_check(event.check_id.as_deref());
    if let (CheckAction::Approve(write), false) = (action, config.dry_run) {
        let how = if config.buttons() {
            "until someone approves it in Slack"
        } else {
            "and no approver is configured (SLACK_APPROVERS or SLACK_APPROVER_GROUP): act by hand if needed"
        };
        return Plan::Hold {
            reason: format!(
                "this check's policy is approve:{} (CHECK_ACTIONS): nobody is changed in Okta {how}",
                write.name()
            ),
        };
    }
    Plan::Act {
        dry_run: config.dry_run,
    }
}

/// Why `login` is skipped under `ACT_ON_PROVIDERS`, or `None` to act on
/// them. Oort names the provider in `loginDetails[].details[]`
/// `providersFailingChecks` values, between double underscores
/// (`providerFailingCheck-no-mfa-0f1e__OKTA__77aa`). A user the event has no
/// `loginDetails` for is skipped: nobody is locked out on a guess.
pub fn provider_skip(event: &OortEvent, login: &Login, act_on: &[String]) -> Option<String> {
    if act_on.is_empty() {
        return None;
    }
    let wanted = act_on.join(", ");
    let providers: Option<Vec<String>> = event.login_details.as_ref().and_then(|details| {
        details
            .iter()
            .find(|(l, _)| *l == login.folded())
            .map(|(_, values)| values.iter().flat_map(|v| provider_names(v)).collect())
    });
    match providers {
        None => Some(format!(
            "the event does not say which identity provider the check failed on (no loginDetails); ACT_ON_PROVIDERS is {wanted}"
        )),
        Some(found) if found.iter().any(|p| act_on.contains(p)) => None,
        Some(found) if found.is_empty() => Some(format!(
            "loginDetails name no identity provider; ACT_ON_PROVIDERS is {wanted}"
        )),
        Some(mut found) => {
            found.dedup();
            Some(format!(
                "the check failed on {}, not on {wanted} (ACT_ON_PROVIDERS)",
                found.join(", ")
            ))
        }
    }
}

/// `OKTA` from `providerFailingCheck-no-mfa-0f1e__OKTA__77aa`, upper-cased.
fn provider_names(value: &str) -> Vec<String> {
    let parts: Vec<&str> = value.split("__").collect();
    if parts.len() < 3 {
        return Vec::new();
    }
    parts[1..parts.len() - 1]
        .iter()
        .filter(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .map(|p| p.to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::config::Pairs;
    use shared::testing::OortBody;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let mut all = vec![
            ("OKTA_ORG_URL", "https://acme.okta.com"),
            ("OKTA_SECRET_ID", "o"),
            ("SLACK_SECRET_ID", "s"),
        ];
        all.extend_from_slice(pairs);
        Config::from_lookup(&Pairs(&all)).unwrap()
    }

    fn event(kind: &str, severity: &str, users: usize) -> OortEvent {
        OortBody::new(kind, "e-1", &OortBody::numbered_users(users))
            .severity(severity)
            .parse()
    }

    #[test]
    fn only_failed_checks_act() {
        assert_eq!(
            plan(&event("WebhookTest", "critical", 3), &config(&[])),
            Plan::ConnectivityTest
        );
        assert_eq!(
            plan(&event("RESOLVED", "critical", 3), &config(&[])),
            Plan::Unhandled("RESOLVED".into())
        );
        assert_eq!(
            plan(&event("FAILED_CHECK", "critical", 3), &config(&[])),
            Plan::Act { dry_run: false }
        );
        assert_eq!(
            plan(
                &event("FAILED_CHECK", "critical", 3),
                &config(&[("DRY_RUN", "true")])
            ),
            Plan::Act { dry_run: true }
        );
    }

    #[test]
    fn the_cap_holds_an_event_and_says_why() {
        assert_eq!(
            plan(&event("FAILED_CHECK", "critical", 20), &config(&[])),
            Plan::Act { dry_run: false }
        );
        let Plan::Hold { reason } = plan(&event("FAILED_CHECK", "critical", 21), &config(&[]))
        else {
            panic!()
        };
        assert!(
            reason.starts_with("the event lists 21 users, over the cap of 20"),
            "{reason}"
        );
        let Plan::Hold { .. } = plan(
            &event("FAILED_CHECK", "critical", 3),
            &config(&[("MAX_USERS_PER_EVENT", "2")]),
        ) else {
            panic!()
        };
    }

    #[test]
    fn severities_outside_the_list_are_held() {
        let c = config(&[("ACTION_SEVERITIES", "critical,high")]);
        assert_eq!(
            plan(&event("FAILED_CHECK", "CRITICAL", 1), &c),
            Plan::Act { dry_run: false }
        );
        let Plan::Hold { reason } = plan(&event("FAILED_CHECK", "low", 1), &c) else {
            panic!()
        };
        assert!(
            reason.starts_with("severity low does not act (ACTION_SEVERITIES: critical, high)"),
            "{reason}"
        );
        let no_severity = OortEvent::parse(
            br#"{"detail-type": "FAILED_CHECK", "detail": {"usersFailing": ["a@b.co"]}}"#,
        )
        .unwrap();
        assert!(matches!(plan(&no_severity, &c), Plan::Hold { .. }));
    }

    fn check(id: &str) -> OortEvent {
        let body = serde_json::json!({"detail-type": "FAILED_CHECK", "detail": {"checkId": id, "severity": "high", "usersFailing": ["a@x.co"]}});
        OortEvent::parse(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn an_approve_check_is_held_and_a_dry_run_still_reports() {
        let policy = ("CHECK_ACTIONS", "slow=approve:sessions,fast=sessions");
        let c = config(&[policy]);
        let Plan::Hold { reason } = plan(&check("slow"), &c) else {
            panic!()
        };
        assert!(
            reason.starts_with("this check's policy is approve:sessions (CHECK_ACTIONS): nobody is changed in Okta and no approver"),
            "{reason}"
        );
        let with_buttons = config(&[
            policy,
            ("STORE_TABLE", "t"),
            ("SLACK_APPROVERS", "U0APPROVER"),
        ]);
        let Plan::Hold { reason } = plan(&check("slow"), &with_buttons) else {
            panic!()
        };
        assert!(
            reason.ends_with("until someone approves it in Slack"),
            "{reason}"
        );
        assert_eq!(plan(&check("fast"), &c), Plan::Act { dry_run: false });
        assert_eq!(
            plan(&check("slow"), &config(&[policy, ("DRY_RUN", "true")])),
            Plan::Act { dry_run: true }
        );
        // The cap comes first.
        let c = config(&[policy, ("MAX_USERS_PER_EVENT", "1")]);
        let mut big = check("slow");
        big.users
            .push(shared::event::Login::parse("b@x.co").unwrap());
        let Plan::Hold { reason } = plan(&big, &c) else {
            panic!()
        };
        assert!(reason.contains("MAX_USERS_PER_EVENT"), "{reason}");
    }

    #[test]
    fn providers_decide_who_is_acted_on_when_set() {
        let body = serde_json::json!({"detail-type": "FAILED_CHECK", "detail": {
        "usersFailing": ["okta@x.co", "duo@x.co", "none@x.co", "missing@x.co"],
        "loginDetails": [
            {"login": "OKTA@x.co", "details": [{"key": "providersFailingChecks", "value": "[\"providerFailingCheck-no-mfa-0f1e__OKTA__77aa\",\"p-1__DUO__2\"]"}]},
            {"login": "duo@x.co", "details": [{"key": "providersFailingChecks", "value": "[\"providerFailingCheck-no-mfa-0f1e__DUO__77aa\"]"}]},
            {"login": "none@x.co", "details": []}
        ]}});
        let event = OortEvent::parse(body.to_string().as_bytes()).unwrap();
        let login = |l: &str| Login::parse(l).unwrap();
        let okta = ["OKTA".to_string()];
        assert_eq!(provider_skip(&event, &login("okta@x.co"), &okta), None);
        assert_eq!(
            provider_skip(&event, &login("duo@x.co"), &okta).as_deref(),
            Some("the check failed on DUO, not on OKTA (ACT_ON_PROVIDERS)")
        );
        assert!(
            provider_skip(&event, &login("none@x.co"), &okta)
                .unwrap()
                .contains("name no identity provider")
        );
        assert!(
            provider_skip(&event, &login("missing@x.co"), &okta)
                .unwrap()
                .contains("no loginDetails")
        );
        for user in ["okta@x.co", "duo@x.co", "none@x.co", "missing@x.co"] {
            assert_eq!(
                provider_skip(&event, &login(user), &[]),
                None,
                "unset: everyone"
            );
        }
        let both = ["OKTA".to_string(), "DUO".to_string()];
        assert_eq!(provider_skip(&event, &login("duo@x.co"), &both), None);
    }
}
