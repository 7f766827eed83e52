//! What happened to each user: the words logs, Slack and runbooks use.

use std::fmt;

/// A user's final outcome. The words are part of the product's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Listed first in summaries: these need a person.
    Failed,
    /// An entry of the event that cannot be a login: never sent to Okta.
    Invalid,
    Ambiguous,
    NotFound,
    Protected,
    Held,
    /// Not acted on: `ACT_ON_PROVIDERS` names other identity providers.
    Skipped,
    /// `DRY_RUN`: what the check's action would have done.
    DryRun,
    DryRunSessions,
    DryRunQuarantine,
    DryRunNotify,
    DryRunApprove,
    Suspended,
    AlreadySuspended,
    /// `CHECK_ACTIONS` `quarantine`: added to the group, sessions cleared.
    Quarantined,
    /// Already a member of the quarantine group (not added by this event).
    AlreadyQuarantined,
    /// `CHECK_ACTIONS` `sessions`: sessions and tokens cleared, nothing else.
    SessionsCleared,
    /// `CHECK_ACTIONS` `notify`: reported, nothing written.
    Notified,
    NotActive,
}

impl Outcome {
    pub const ALL: [Outcome; 19] = [
        Outcome::Suspended,
        Outcome::AlreadySuspended,
        Outcome::Quarantined,
        Outcome::AlreadyQuarantined,
        Outcome::SessionsCleared,
        Outcome::Notified,
        Outcome::NotActive,
        Outcome::NotFound,
        Outcome::Ambiguous,
        Outcome::Protected,
        Outcome::Held,
        Outcome::Skipped,
        Outcome::DryRun,
        Outcome::DryRunSessions,
        Outcome::DryRunQuarantine,
        Outcome::DryRunNotify,
        Outcome::DryRunApprove,
        Outcome::Invalid,
        Outcome::Failed,
    ];

    pub fn word(self) -> &'static str {
        match self {
            Outcome::Suspended => "suspended",
            Outcome::AlreadySuspended => "already suspended",
            Outcome::NotActive => "not active",
            Outcome::NotFound => "not found",
            Outcome::Ambiguous => "ambiguous",
            Outcome::Protected => "protected",
            Outcome::Held => "held",
            Outcome::Skipped => "skipped",
            Outcome::DryRun => "dry run (would suspend)",
            Outcome::DryRunSessions => "dry run (would clear sessions)",
            Outcome::DryRunQuarantine => "dry run (would quarantine)",
            Outcome::DryRunNotify => "dry run (would notify)",
            Outcome::DryRunApprove => "dry run (would ask for approval)",
            Outcome::Quarantined => "quarantined",
            Outcome::AlreadyQuarantined => "already quarantined",
            Outcome::SessionsCleared => "sessions cleared",
            Outcome::Notified => "notified",
            Outcome::Invalid => "invalid",
            Outcome::Failed => "failed",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// One user's line in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserReport {
    /// The login as the event listed it.
    pub login: String,
    pub outcome: Outcome,
    /// Why, or what else matters ("status DEPROVISIONED", "2 users share this email").
    pub detail: Option<String>,
    /// The Okta user, when one was resolved.
    pub okta_user_id: Option<String>,
    /// Universal Logout's result, when it was tried.
    pub sign_out: Option<SignOut>,
    /// This run added the user to the quarantine group (even if a later
    /// step failed): what lets Release undo it.
    pub added_to_group: bool,
}

/// What Universal Logout (global token revocation) did for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignOut {
    /// Signed out of every app that supports Universal Logout.
    Everywhere,
    /// The org does not offer it; Okta's answer. Reported once per summary.
    NotAvailable(String),
}

impl UserReport {
    pub fn new(login: &str, outcome: Outcome, detail: Option<String>) -> Self {
        UserReport {
            login: login.to_string(),
            outcome,
            detail,
            okta_user_id: None,
            sign_out: None,
            added_to_group: false,
        }
    }

    pub fn with_user(mut self, okta_user_id: &str) -> Self {
        self.okta_user_id = Some(okta_user_id.to_string());
        self
    }
}

/// Counts per outcome, in [`Outcome::ALL`] order, leaving out zeros.
pub fn counts(reports: &[UserReport]) -> Vec<(Outcome, usize)> {
    Outcome::ALL
        .iter()
        .map(|&o| (o, reports.iter().filter(|r| r.outcome == o).count()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_are_the_documented_ones() {
        let words: Vec<&str> = Outcome::ALL.iter().map(|o| o.word()).collect();
        assert_eq!(
            words,
            [
                "suspended",
                "already suspended",
                "quarantined",
                "already quarantined",
                "sessions cleared",
                "notified",
                "not active",
                "not found",
                "ambiguous",
                "protected",
                "held",
                "skipped",
                "dry run (would suspend)",
                "dry run (would clear sessions)",
                "dry run (would quarantine)",
                "dry run (would notify)",
                "dry run (would ask for approval)",
                "invalid",
                "failed"
            ]
        );
    }

    #[test]
    fn every_word_is_in_the_readme_outcome_table() {
        let readme = include_str!("../../../README.md");
        let table = readme
            .split("### What each outcome means")
            .nth(1)
            .and_then(|rest| rest.split("\n### ").next())
            .expect("the README has the outcome table");
        for outcome in Outcome::ALL {
            assert!(
                table.contains(&format!("\n| `{}` |", outcome.word())),
                "{outcome} is not documented in the README's outcome table"
            );
        }
    }

    #[test]
    fn counts_skip_zeros() {
        let r = |o| UserReport::new("x", o, None);
        let reports = [
            r(Outcome::Failed),
            r(Outcome::Suspended),
            r(Outcome::Suspended),
        ];
        assert_eq!(
            counts(&reports),
            [(Outcome::Suspended, 2), (Outcome::Failed, 1)]
        );
    }
}
