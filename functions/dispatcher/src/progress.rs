//! What earlier deliveries of an event settled, so that a redelivery picks up
//! where the last one stopped.
//!
//! When a delivery leaves some users to retry, the users that reached a
//! final outcome are kept in the store (`event#<id>` / `progress`). The
//! next delivery (a retry, or a redrive from the dead-letter queue) reports
//! them as they were and neither reads nor writes them in Okta again, so a
//! large event makes progress on every delivery instead of starting over.
//! Without the record (no `STORE_TABLE`, or the store unavailable) every
//! user is run again, which is safe: the user pipeline reads before it
//! writes.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::outcome::{Outcome, SignOut, UserReport};

/// How long a progress record is kept: longer than the dead-letter queue
/// keeps a message (14 days), so that a redrive still finds it.
pub const PROGRESS_RETENTION: Duration = Duration::from_secs(15 * 24 * 3600);

/// Users of one event with a final outcome, by folded login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    reports: HashMap<String, UserReport>,
}

/// One settled user as stored.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    /// The folded login the event listed.
    key: String,
    login: String,
    /// The outcome word (`Outcome::word`).
    outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    okta_user_id: Option<String>,
    /// `everywhere`, or Okta's reason that Universal Logout is not available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sign_out: Option<StoredSignOut>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum StoredSignOut {
    Everywhere,
    NotAvailable(String),
}

impl Settled {
    /// The report an earlier delivery settled for this (folded) login.
    pub fn get(&self, folded_login: &str) -> Option<&UserReport> {
        self.reports.get(folded_login)
    }

    pub fn len(&self) -> usize {
        self.reports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }

    /// Adds a final report for the (folded) login.
    pub fn insert(&mut self, folded_login: String, report: UserReport) {
        self.reports.insert(folded_login, report);
    }

    /// The stored form: a JSON array, in login order so that equal records
    /// are equal text.
    pub fn encode(&self) -> String {
        let mut stored: Vec<Stored> = self
            .reports
            .iter()
            .map(|(key, r)| Stored {
                key: key.clone(),
                login: r.login.clone(),
                outcome: r.outcome.word().to_string(),
                detail: r.detail.clone(),
                okta_user_id: r.okta_user_id.clone(),
                sign_out: r.sign_out.as_ref().map(|s| match s {
                    SignOut::Everywhere => StoredSignOut::Everywhere,
                    SignOut::NotAvailable(why) => StoredSignOut::NotAvailable(why.clone()),
                }),
            })
            .collect();
        stored.sort_by(|a, b| a.key.cmp(&b.key));
        serde_json::to_string(&stored).expect("strings and options always serialise")
    }

    /// Reads [`Settled::encode`]'s text. An unknown outcome word (a record
    /// written by a newer version) is an error: the caller then runs every
    /// user again rather than guess.
    pub fn decode(text: &str) -> Result<Settled, String> {
        let stored: Vec<Stored> = serde_json::from_str(text)
            .map_err(|e| format!("the progress record is not readable: {e}"))?;
        let mut settled = Settled::default();
        for s in stored {
            let outcome = Outcome::ALL
                .into_iter()
                .find(|o| o.word() == s.outcome)
                .ok_or_else(|| {
                    format!("the progress record has an unknown outcome {:?}", s.outcome)
                })?;
            if outcome == Outcome::Failed {
                return Err("the progress record lists a failed user as settled".into());
            }
            let mut report = UserReport::new(&s.login, outcome, s.detail);
            report.okta_user_id = s.okta_user_id;
            report.sign_out = s.sign_out.map(|s| match s {
                StoredSignOut::Everywhere => SignOut::Everywhere,
                StoredSignOut::NotAvailable(why) => SignOut::NotAvailable(why),
            });
            settled.reports.insert(s.key, report);
        }
        Ok(settled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(login: &str, outcome: Outcome) -> UserReport {
        UserReport::new(login, outcome, Some(format!("{outcome} because")))
    }

    #[test]
    fn every_final_outcome_survives_the_round_trip() {
        let mut settled = Settled::default();
        for (i, outcome) in Outcome::ALL
            .into_iter()
            .filter(|o| *o != Outcome::Failed)
            .enumerate()
        {
            let mut r = report(&format!("User{i}@Example.com"), outcome);
            r.okta_user_id = (i % 2 == 0).then(|| format!("00u{i}"));
            r.sign_out = match i % 3 {
                0 => Some(SignOut::Everywhere),
                1 => Some(SignOut::NotAvailable("E0000015: not licensed".into())),
                _ => None,
            };
            settled.insert(format!("user{i}@example.com"), r);
        }
        let text = settled.encode();
        assert_eq!(Settled::decode(&text).unwrap(), settled);
        assert_eq!(settled.encode(), text, "the same record is the same text");
    }

    #[test]
    fn a_record_that_cannot_be_trusted_is_refused() {
        assert!(Settled::decode("not json").is_err());
        let unknown = r#"[{"key":"a","login":"a","outcome":"vaporised"}]"#;
        assert!(Settled::decode(unknown).unwrap_err().contains("vaporised"));
        let failed = r#"[{"key":"a","login":"a","outcome":"failed"}]"#;
        assert!(Settled::decode(failed).is_err());
        assert_eq!(Settled::decode("[]").unwrap(), Settled::default());
    }
}
