//! `CHECK_ACTIONS`: what a failed check does to its users, chosen per Oort check.
//!
//! The setting is comma-separated `checkId=action` pairs, `*` for every
//! other check; unset (or empty) means `*=suspend`, today's behaviour. A
//! check the list does not name and no `*` pair also gets `suspend`.
//! Check ids compare case-insensitively. Anything malformed (no `=`, an
//! empty or spaced check id, an unknown action, a check id named twice, a
//! quarantine without `QUARANTINE_GROUP_ID`) stops the start-up with a
//! message naming the setting: a typo never silently changes what happens
//! to people.
//!
//! The policy only chooses the response. The rules before it (the cap,
//! severities, dry run, `ACT_ON_PROVIDERS`, protected users, admins, the
//! user's status) are the same for every action; see [`crate::lockout`].

use std::fmt;

use shared::config::ConfigError;

/// The settings' names, for error messages.
pub const SETTING: &str = "CHECK_ACTIONS";
pub const GROUP_SETTING: &str = "QUARANTINE_GROUP_ID";

/// An Okta write an action (or an approved action) makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Write {
    /// Suspend, then clear sessions and tokens (and Universal Logout when on).
    Suspend,
    /// Clear sessions and tokens only; the user stays as they are.
    Sessions,
    /// Add to `QUARANTINE_GROUP_ID`, then clear sessions and tokens.
    Quarantine,
}

impl Write {
    pub fn name(self) -> &'static str {
        match self {
            Write::Suspend => "suspend",
            Write::Sessions => "sessions",
            Write::Quarantine => "quarantine",
        }
    }

    fn parse(word: &str) -> Option<Write> {
        match word {
            "suspend" => Some(Write::Suspend),
            "sessions" => Some(Write::Sessions),
            "quarantine" => Some(Write::Quarantine),
            _ => None,
        }
    }
}

/// What a check's policy does to each failing user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckAction {
    /// Write to Okta at once.
    Now(Write),
    /// No Okta write; each user is reported `notified`.
    Notify,
    /// No Okta write until a person approves in Slack; then the write.
    Approve(Write),
}

impl CheckAction {
    /// Today's response, and the default.
    pub const DEFAULT: CheckAction = CheckAction::Now(Write::Suspend);

    /// What runs once a person approved the event: `approve:x` becomes `x`.
    pub fn approved(self) -> CheckAction {
        match self {
            CheckAction::Approve(write) => CheckAction::Now(write),
            other => other,
        }
    }

    /// The write this action makes (now or after approval), if any.
    pub fn write(self) -> Option<Write> {
        match self {
            CheckAction::Now(w) | CheckAction::Approve(w) => Some(w),
            CheckAction::Notify => None,
        }
    }

    /// The action as the setting spells it (`approve` spelled out in full).
    pub fn name(self) -> String {
        match self {
            CheckAction::Now(w) => w.name().to_string(),
            CheckAction::Notify => "notify".into(),
            CheckAction::Approve(w) => format!("approve:{}", w.name()),
        }
    }

    /// Parses one action word.
    pub fn parse(word: &str) -> Option<CheckAction> {
        if word == "notify" {
            return Some(CheckAction::Notify);
        }
        if word == "approve" {
            return Some(CheckAction::Approve(Write::Suspend));
        }
        if let Some(then) = word.strip_prefix("approve:") {
            return Write::parse(then).map(CheckAction::Approve);
        }
        Write::parse(word).map(CheckAction::Now)
    }

    /// What approving a held event does to its users, for the Approve
    /// button's dialog ("This suspends 3 users in Okta now ...").
    pub fn approving(self) -> &'static str {
        match self.approved() {
            CheckAction::Now(Write::Suspend) | CheckAction::Approve(_) => "suspends",
            CheckAction::Now(Write::Sessions) => "clears the sessions of",
            CheckAction::Now(Write::Quarantine) => "quarantines",
            CheckAction::Notify => "only reports (no change to)",
        }
    }

    /// What people read in the summary: "suspend", "clear sessions", ...
    pub fn describe(self) -> String {
        let write = |w: Write| match w {
            Write::Suspend => "suspend and clear sessions",
            Write::Sessions => "clear sessions only",
            Write::Quarantine => "add to the quarantine group and clear sessions",
        };
        match self {
            CheckAction::Now(w) => write(w).to_string(),
            CheckAction::Notify => "notify only (no Okta change)".into(),
            CheckAction::Approve(w) => format!("ask for approval, then {}", write(w)),
        }
    }
}

impl fmt::Display for CheckAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// The parsed `CHECK_ACTIONS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckActions {
    /// Lower-cased check ids and their actions, in the setting's order.
    checks: Vec<(String, CheckAction)>,
    /// `*`, or [`CheckAction::DEFAULT`].
    others: CheckAction,
}

impl Default for CheckActions {
    fn default() -> Self {
        CheckActions {
            checks: Vec::new(),
            others: CheckAction::DEFAULT,
        }
    }
}

impl CheckActions {
    /// Parses the setting; `quarantine_group` is whether
    /// `QUARANTINE_GROUP_ID` is set.
    pub fn parse(raw: Option<&str>, quarantine_group: bool) -> Result<CheckActions, ConfigError> {
        let mut policy = CheckActions::default();
        let mut star = false;
        let invalid = |reason: String| ConfigError::invalid(SETTING, reason);
        for (i, entry) in raw.unwrap_or_default().split(',').enumerate() {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let n = i + 1;
            let Some((check, action)) = entry.split_once('=') else {
                return Err(invalid(format!(
                    "entry {n} ({entry:?}) is not checkId=action"
                )));
            };
            let (check, action) = (check.trim(), action.trim());
            if check.is_empty() || check.chars().any(|c| c.is_whitespace() || c == '=') {
                return Err(invalid(format!(
                    "entry {n} ({entry:?}) needs one check id (or *) before the ="
                )));
            }
            let Some(parsed) = CheckAction::parse(action) else {
                return Err(invalid(format!(
                    "entry {n} ({entry:?}): unknown action {action:?}; use suspend, sessions, quarantine, notify, approve, approve:suspend, approve:sessions or approve:quarantine"
                )));
            };
            if parsed.write() == Some(Write::Quarantine) && !quarantine_group {
                return Err(invalid(format!(
                    "entry {n} ({entry:?}) quarantines, but {GROUP_SETTING} is not set: set it to the id of the Okta group"
                )));
            }
            let check = check.to_lowercase();
            if check == "*" {
                if star {
                    return Err(invalid(format!("* is named twice (entry {n})")));
                }
                star = true;
                policy.others = parsed;
            } else {
                if policy.checks.iter().any(|(c, _)| *c == check) {
                    return Err(invalid(format!(
                        "check {check:?} is named twice (entry {n})"
                    )));
                }
                policy.checks.push((check, parsed));
            }
        }
        Ok(policy)
    }

    /// The action for an event's check (`None`: an event without a check id).
    pub fn for_check(&self, check_id: Option<&str>) -> CheckAction {
        let Some(check) = check_id.map(str::trim) else {
            return self.others;
        };
        self.checks
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(check))
            .map_or(self.others, |(_, a)| *a)
    }

    /// Whether this is `*=suspend` and nothing else: today's behaviour,
    /// with summaries exactly as before.
    pub fn is_default(&self) -> bool {
        self.checks.is_empty() && self.others == CheckAction::DEFAULT
    }

    /// Whether any check may quarantine (so the group must be usable).
    pub fn quarantines(&self) -> bool {
        self.checks
            .iter()
            .map(|(_, a)| a)
            .chain([&self.others])
            .any(|a| a.write() == Some(Write::Quarantine))
    }
}

/// `QUARANTINE_GROUP_ID`: an Okta group id (`00g…`), letters and digits only
/// so it always travels as one path segment.
pub fn group_id(raw: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(raw) = raw.map(|r| r.trim().to_string()).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if raw.len() > 64 || !raw.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ConfigError::invalid(
            GROUP_SETTING,
            format!(
                "{:?} is not an Okta group id (letters and digits, like 00g1a2b3c4D5e6F7g8h9)",
                raw.chars().take(80).collect::<String>()
            ),
        ));
    }
    Ok(Some(raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckAction::{Approve, Notify, Now};

    fn parse(raw: &str) -> Result<CheckActions, String> {
        CheckActions::parse(Some(raw), true).map_err(|e| e.to_string())
    }

    #[test]
    fn the_default_is_todays_suspend() {
        for raw in [
            None,
            Some(""),
            Some("  "),
            Some("*=suspend"),
            Some(" * = suspend ,"),
        ] {
            let p = CheckActions::parse(raw, false).unwrap();
            assert!(p.is_default(), "{raw:?}");
            assert_eq!(p.for_check(Some("no-mfa")), Now(Write::Suspend));
            assert_eq!(p.for_check(None), Now(Write::Suspend));
            assert!(!p.quarantines());
        }
    }

    #[test]
    fn each_action_parses() {
        let table = [
            ("suspend", Now(Write::Suspend), "suspend"),
            ("sessions", Now(Write::Sessions), "sessions"),
            ("quarantine", Now(Write::Quarantine), "quarantine"),
            ("notify", Notify, "notify"),
            ("approve", Approve(Write::Suspend), "approve:suspend"),
            (
                "approve:suspend",
                Approve(Write::Suspend),
                "approve:suspend",
            ),
            (
                "approve:sessions",
                Approve(Write::Sessions),
                "approve:sessions",
            ),
            (
                "approve:quarantine",
                Approve(Write::Quarantine),
                "approve:quarantine",
            ),
        ];
        for (word, action, name) in table {
            let p = parse(&format!("c1={word}")).unwrap();
            assert_eq!(p.for_check(Some("c1")), action, "{word}");
            assert_eq!(action.name(), name);
            assert_eq!(p.for_check(Some("other")), Now(Write::Suspend), "{word}");
            assert!(!p.is_default());
        }
        assert_eq!(
            Approve(Write::Quarantine).approved(),
            Now(Write::Quarantine)
        );
        assert_eq!(Notify.approved(), Notify);
    }

    #[test]
    fn checks_get_their_own_and_star_the_rest() {
        let p =
            parse("no-mfa=sessions, Dormant-Admin=suspend,new-check=notify,*=approve:quarantine")
                .unwrap();
        assert_eq!(p.for_check(Some("no-mfa")), Now(Write::Sessions));
        assert_eq!(p.for_check(Some("NO-MFA")), Now(Write::Sessions));
        assert_eq!(p.for_check(Some("dormant-admin")), Now(Write::Suspend));
        assert_eq!(p.for_check(Some("new-check")), Notify);
        assert_eq!(p.for_check(Some("anything")), Approve(Write::Quarantine));
        assert_eq!(p.for_check(None), Approve(Write::Quarantine));
        assert!(p.quarantines());
    }

    #[test]
    fn mistakes_stop_the_start_up_and_name_the_setting() {
        let table = [
            ("no-mfa", "is not checkId=action"),
            ("no-mfa:sessions", "is not checkId=action"),
            ("=suspend", "needs one check id"),
            ("no mfa=suspend", "needs one check id"),
            ("a=b=suspend", "unknown action"),
            ("no-mfa=lock", "unknown action \"lock\""),
            ("no-mfa=Suspend", "unknown action"),
            ("no-mfa=approve:notify", "unknown action"),
            ("no-mfa=approve:", "unknown action"),
            ("no-mfa=", "unknown action"),
            (
                "no-mfa=suspend,NO-MFA=notify",
                "check \"no-mfa\" is named twice",
            ),
            ("*=suspend,*=notify", "* is named twice"),
            ("no-mfa=suspend;x=notify", "unknown action"),
        ];
        for (raw, wanted) in table {
            let err = parse(raw).unwrap_err();
            assert!(
                err.starts_with("CHECK_ACTIONS is invalid: "),
                "{raw}: {err}"
            );
            assert!(err.contains(wanted), "{raw}: {err}");
        }
    }

    #[test]
    fn quarantine_needs_the_group() {
        for raw in ["a=quarantine", "*=approve:quarantine"] {
            let err = CheckActions::parse(Some(raw), false)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("CHECK_ACTIONS is invalid"), "{err}");
            assert!(err.contains("QUARANTINE_GROUP_ID is not set"), "{err}");
            assert!(CheckActions::parse(Some(raw), true).is_ok());
        }
        assert!(CheckActions::parse(Some("a=sessions,b=notify,c=approve"), false).is_ok());
    }

    #[test]
    fn group_ids_are_checked() {
        assert_eq!(group_id(None).unwrap(), None);
        assert_eq!(group_id(Some("  ".into())).unwrap(), None);
        assert_eq!(
            group_id(Some(" 00gQuarantine1 ".into()))
                .unwrap()
                .as_deref(),
            Some("00gQuarantine1")
        );
        for bad in ["00g/../users", "00g 1", "00g?x", &"a".repeat(65)] {
            let err = group_id(Some(bad.to_string())).unwrap_err().to_string();
            assert!(err.starts_with("QUARANTINE_GROUP_ID is invalid"), "{err}");
        }
    }
}
