//! One user's way through Okta: resolve, protect, act by status, with the
//! response the check's policy chose (`CHECK_ACTIONS`).
//!
//! The rules read like the README's outcome table, over a [`Directory`]:
//! the real Okta client in production, an in-memory one in the tests below.
//! Reads come before writes, so running this twice for the same user is
//! safe: a user suspended on an earlier delivery is found SUSPENDED and only
//! has their sessions cleared again. Suspend comes before clearing sessions:
//! suspending stops new sign-ins, and clearing afterwards ends the sessions
//! that exist, including any opened in between. Universal Logout, when on,
//! comes last and never changes the outcome.
//!
//! Every action passes the same rules first: resolve, protected users, the
//! status (a user who cannot sign in is left alone), admins. Then:
//! `suspend` as above; `sessions` clears sessions and tokens only;
//! `quarantine` reads the user's groups, adds them to the quarantine group
//! unless they are a member already, then clears sessions (so the group's
//! policy applies at the next sign-in); `notify` writes nothing. A dry run
//! stops before the action and says which one would have run.

use shared::event::Login;

use crate::check_actions::{CheckAction, Write};
use crate::deadline::Deadline;
use crate::okta::{
    Attribute, CallContext, CallError, Directory, Membership, OktaUser, Revocation, Suspension,
};
use crate::outcome::{Outcome, SignOut, UserReport};

/// The rules a user is checked against.
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    pub dry_run: bool,
    /// Lower-cased logins, emails or ids.
    pub protected_users: &'a [String],
    pub protect_admins: bool,
    /// `UNIVERSAL_LOGOUT`: after suspending, sign the user out of every app.
    pub universal_logout: bool,
    /// What the check's policy does (`CHECK_ACTIONS`); an `approve` is
    /// resolved to its write before it gets here, except in a dry run.
    pub action: CheckAction,
    /// `QUARANTINE_GROUP_ID`, checked usable for this event.
    pub quarantine_group: Option<&'a str>,
}

/// A user's result: final, or worth another delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserResult {
    Done(UserReport),
    /// Not final yet (Okta unavailable, rate limit, time): it may pass by
    /// itself. The report says `failed` with the reason, for when no
    /// delivery is left.
    Retry(UserReport),
    /// Failed for a reason that will not go away by itself (Okta refused the
    /// credentials, a permission, the suspend): a person must fix it, and
    /// the event stays redrivable until then. The report says `failed`.
    Blocked(UserReport),
}

impl UserResult {
    pub fn report(&self) -> &UserReport {
        match self {
            UserResult::Done(r) | UserResult::Retry(r) | UserResult::Blocked(r) => r,
        }
    }

    /// Final: nothing more will happen to this user on a later delivery.
    pub fn is_final(&self) -> bool {
        matches!(self, UserResult::Done(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusClass {
    /// Can sign in: suspend.
    Active,
    Suspended,
    /// Cannot sign in (or an unknown status): no write.
    NotActive,
}

fn classify(status: &str) -> StatusClass {
    match status {
        "ACTIVE" | "LOCKED_OUT" | "PASSWORD_EXPIRED" | "RECOVERY" => StatusClass::Active,
        "SUSPENDED" => StatusClass::Suspended,
        _ => StatusClass::NotActive,
    }
}

/// Why the pipeline stopped early.
enum Stop {
    Done(Outcome, String),
    Retry(String),
    /// Failed until a person fixes something.
    Blocked(String),
}

impl From<CallError> for Stop {
    fn from(e: CallError) -> Stop {
        match e {
            CallError::Transient(reason) => Stop::Retry(reason),
            CallError::Credentials(reason) => Stop::Blocked(reason),
            refused @ CallError::Refused { .. } => Stop::Blocked(refused.to_string()),
        }
    }
}

/// Runs one user through Okta and logs the outcome.
pub async fn lock_out(
    okta: &impl Directory,
    login: &Login,
    rules: &Rules<'_>,
    event_id: &str,
    deadline: Deadline,
) -> UserResult {
    let ctx = CallContext::new(event_id, login.as_str(), deadline);
    let mut run = Run {
        okta,
        login,
        ctx: &ctx,
        user_id: None,
        sign_out: None,
        added_to_group: false,
    };
    // Boxed: keeps the per-user future's type (and compile time) small.
    let result = match Box::pin(run.pipeline(rules)).await {
        Ok((outcome, detail)) | Err(Stop::Done(outcome, detail)) => {
            UserResult::Done(run.report(outcome, detail))
        }
        Err(Stop::Retry(reason)) => UserResult::Retry(run.report(Outcome::Failed, reason)),
        Err(Stop::Blocked(reason)) => UserResult::Blocked(run.report(Outcome::Failed, reason)),
    };
    let report = result.report();
    tracing::info!(
        event_id,
        user = login.as_str(),
        outcome = report.outcome.word(),
        reason = report.detail.as_deref().unwrap_or_default(),
        okta_user_id = report.okta_user_id.as_deref().unwrap_or_default(),
        okta_request_id = ctx.last_request_id().as_deref().unwrap_or_default(),
        will_retry = !result.is_final(),
        needs_a_person = matches!(result, UserResult::Blocked(_)),
        "user outcome"
    );
    result
}

struct Run<'a, D> {
    okta: &'a D,
    login: &'a Login,
    ctx: &'a CallContext<'a>,
    user_id: Option<String>,
    sign_out: Option<SignOut>,
    added_to_group: bool,
}

impl<D: Directory> Run<'_, D> {
    fn report(&mut self, outcome: Outcome, detail: String) -> UserReport {
        let mut report = UserReport::new(self.login.as_str(), outcome, Some(detail));
        report.okta_user_id = self.user_id.clone();
        report.sign_out = self.sign_out.take();
        report.added_to_group = self.added_to_group;
        report
    }

    async fn pipeline(&mut self, rules: &Rules<'_>) -> Result<(Outcome, String), Stop> {
        let user = self.resolve().await?;
        self.user_id = Some(user.id.clone());

        if is_listed(rules.protected_users, self.login, &user) {
            return Ok((Outcome::Protected, "listed in PROTECTED_USERS".into()));
        }
        let class = classify(user.status());
        if class == StatusClass::NotActive {
            return Ok((Outcome::NotActive, format!("status {}", user.status())));
        }
        if rules.protect_admins
            && let Some(role) = self.admin_role(&user).await?
        {
            return Ok((
                Outcome::Protected,
                format!("holds the Okta admin role {role}"),
            ));
        }
        if rules.dry_run {
            return Ok(dry_run(rules.action, class, user.status()));
        }
        match (rules.action, class) {
            (CheckAction::Now(Write::Suspend), StatusClass::Suspended) => {
                self.end_sessions(&user.id, rules).await?;
                Ok((
                    Outcome::AlreadySuspended,
                    self.with_sign_out("sessions and tokens cleared again".into()),
                ))
            }
            (CheckAction::Now(Write::Suspend), _) => self.suspend(&user, rules).await,
            (CheckAction::Now(Write::Sessions), StatusClass::Suspended) => {
                self.okta.clear_sessions(&user.id, self.ctx).await?;
                Ok((
                    Outcome::AlreadySuspended,
                    "sessions and tokens cleared again (CHECK_ACTIONS: sessions)".into(),
                ))
            }
            (CheckAction::Now(Write::Sessions), _) => {
                self.okta.clear_sessions(&user.id, self.ctx).await?;
                Ok((
                    Outcome::SessionsCleared,
                    format!(
                        "sessions and tokens cleared; the user stays {}",
                        user.status()
                    ),
                ))
            }
            (CheckAction::Now(Write::Quarantine), _) => self.quarantine(&user, rules).await,
            (CheckAction::Notify, _) => Ok((
                Outcome::Notified,
                format!(
                    "status {}; nothing changed in Okta (CHECK_ACTIONS: notify)",
                    user.status()
                ),
            )),
            (CheckAction::Approve(write), _) => Ok((
                Outcome::Held,
                format!(
                    "waits for approval in Slack (CHECK_ACTIONS: approve:{})",
                    write.name()
                ),
            )),
        }
    }

    /// Adds the user to the quarantine group unless they are a member
    /// already, then clears their sessions so the group's policy applies at
    /// their next sign-in.
    async fn quarantine(
        &mut self,
        user: &OktaUser,
        rules: &Rules<'_>,
    ) -> Result<(Outcome, String), Stop> {
        let Some(group) = rules.quarantine_group else {
            return Err(Stop::Blocked(
                "CHECK_ACTIONS quarantines, but QUARANTINE_GROUP_ID is not set".into(),
            ));
        };
        let already = self
            .okta
            .user_groups(&user.id, self.ctx)
            .await?
            .iter()
            .any(|g| g == group);
        if !already {
            match self.okta.add_to_group(group, &user.id, self.ctx).await? {
                Membership::Done => self.added_to_group = true,
                Membership::NotFound { okta } => {
                    // The group was usable moments ago: the user is gone,
                    // or the group was deleted since. Find out which.
                    return match self.okta.get_user(&user.id, self.ctx).await? {
                        None => Ok((
                            Outcome::NotFound,
                            "the user disappeared before the quarantine".into(),
                        )),
                        Some(_) => Err(Stop::Blocked(format!(
                            "could not add the user to the quarantine group {group}: {okta} (does QUARANTINE_GROUP_ID still exist?); nothing was changed"
                        ))),
                    };
                }
            }
        }
        self.okta.clear_sessions(&user.id, self.ctx).await?;
        Ok(if already {
            (
                Outcome::AlreadyQuarantined,
                format!(
                    "already a member of the quarantine group; status {}; sessions and tokens cleared",
                    user.status()
                ),
            )
        } else {
            (
                Outcome::Quarantined,
                format!(
                    "added to the quarantine group; status {}; sessions and tokens cleared",
                    user.status()
                ),
            )
        })
    }

    /// Finds the one Okta user the login names (by login, then by email),
    /// or says why not.
    async fn resolve(&mut self) -> Result<OktaUser, Stop> {
        let login = self.login;
        if let Some(user) = self.okta.find_by_login(login, self.ctx).await? {
            return Ok(user);
        }
        if !login.looks_like_email() {
            return Err(Stop::Done(
                Outcome::NotFound,
                "no Okta user has this login".into(),
            ));
        }
        let mut users = self
            .okta
            .search_exact(Attribute::Email, login.as_str(), self.ctx)
            .await?;
        match users.len() {
            0 => Err(Stop::Done(
                Outcome::NotFound,
                "no Okta user has this login or email".into(),
            )),
            1 => Ok(users.pop().expect("one user")),
            n => Err(Stop::Done(
                Outcome::Ambiguous,
                format!(
                    "{n} Okta users have {} {}; none was changed",
                    Attribute::Email.name(),
                    login
                ),
            )),
        }
    }

    /// The first admin role the user holds, if any. Unknown means no write.
    async fn admin_role(&mut self, user: &OktaUser) -> Result<Option<String>, Stop> {
        match self.okta.admin_roles(&user.id, self.ctx).await {
            Ok(roles) => Ok(roles.into_iter().next()),
            Err(CallError::Refused { okta, .. }) => Err(Stop::Blocked(format!(
                "could not check the user's admin roles, so nothing was changed: {okta} (the Okta credential must be allowed to read roles: scope okta.roles.read, or set PROTECT_ADMINS=false)"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn suspend(
        &mut self,
        user: &OktaUser,
        rules: &Rules<'_>,
    ) -> Result<(Outcome, String), Stop> {
        match self.okta.suspend(&user.id, self.ctx).await? {
            Suspension::Done => {
                self.end_sessions(&user.id, rules).await?;
                Ok((
                    Outcome::Suspended,
                    self.with_sign_out(format!(
                        "was {}; sessions and tokens cleared",
                        user.status()
                    )),
                ))
            }
            Suspension::NotSuspendable { refusal } => {
                // See what the user really is now.
                let Some(now) = self.okta.get_user(&user.id, self.ctx).await? else {
                    return Ok((
                        Outcome::NotFound,
                        "the user disappeared before the suspend".into(),
                    ));
                };
                match classify(now.status()) {
                    StatusClass::Suspended => {
                        self.end_sessions(&now.id, rules).await?;
                        Ok((
                            Outcome::AlreadySuspended,
                            self.with_sign_out(
                                "suspended meanwhile; sessions and tokens cleared".into(),
                            ),
                        ))
                    }
                    StatusClass::NotActive => {
                        Ok((Outcome::NotActive, format!("status {}", now.status())))
                    }
                    StatusClass::Active => {
                        // Okta will not suspend this status: still end what sessions exist.
                        self.okta.clear_sessions(&now.id, self.ctx).await?;
                        Err(Stop::Blocked(format!(
                            "Okta would not suspend a user in status {}: {refusal}; sessions and tokens were cleared",
                            now.status()
                        )))
                    }
                }
            }
            Suspension::Gone => Ok((
                Outcome::NotFound,
                "the user disappeared before the suspend".into(),
            )),
        }
    }

    /// Clears sessions and tokens, then (when on) Universal Logout.
    async fn end_sessions(&mut self, user_id: &str, rules: &Rules<'_>) -> Result<(), Stop> {
        self.okta.clear_sessions(user_id, self.ctx).await?;
        if rules.universal_logout {
            self.sign_out = Some(match self.okta.revoke_globally(user_id, self.ctx).await? {
                Revocation::Done => SignOut::Everywhere,
                Revocation::NotAvailable { reason } => SignOut::NotAvailable(reason),
            });
        }
        Ok(())
    }

    fn with_sign_out(&self, detail: String) -> String {
        match self.sign_out {
            Some(SignOut::Everywhere) => {
                format!("{detail}; signed out of every app that supports Universal Logout")
            }
            _ => detail,
        }
    }
}

/// What a dry run reports: the action that would have run. `suspend`
/// reads as it always has.
fn dry_run(action: CheckAction, class: StatusClass, status: &str) -> (Outcome, String) {
    match action {
        CheckAction::Now(Write::Suspend) if class == StatusClass::Suspended => (
            Outcome::AlreadySuspended,
            "sessions would be cleared".into(),
        ),
        CheckAction::Now(Write::Suspend) => (Outcome::DryRun, format!("status {status}")),
        CheckAction::Now(Write::Sessions) => (Outcome::DryRunSessions, format!("status {status}")),
        CheckAction::Now(Write::Quarantine) => {
            (Outcome::DryRunQuarantine, format!("status {status}"))
        }
        CheckAction::Notify => (Outcome::DryRunNotify, format!("status {status}")),
        CheckAction::Approve(write) => (
            Outcome::DryRunApprove,
            format!(
                "status {status}; once approved: {}",
                CheckAction::Now(write).describe()
            ),
        ),
    }
}

fn is_listed(protected: &[String], login: &Login, user: &OktaUser) -> bool {
    let names = [
        Some(login.folded()),
        user.profile.login.as_deref().map(str::to_lowercase),
        user.profile.email.as_deref().map(str::to_lowercase),
        Some(user.id.to_lowercase()),
    ];
    names.iter().flatten().any(|name| protected.contains(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okta::Profile;
    use crate::okta::memory::{MemoryDirectory, Op};

    fn user(id: &str, login: &str, email: &str) -> OktaUser {
        OktaUser {
            id: id.into(),
            status: Some("ACTIVE".into()),
            profile: Profile {
                login: Some(login.into()),
                email: Some(email.into()),
            },
        }
    }

    #[test]
    fn statuses_map_to_actions() {
        for s in ["ACTIVE", "LOCKED_OUT", "PASSWORD_EXPIRED", "RECOVERY"] {
            assert_eq!(classify(s), StatusClass::Active, "{s}");
        }
        assert_eq!(classify("SUSPENDED"), StatusClass::Suspended);
        for s in [
            "DEPROVISIONED",
            "STAGED",
            "PROVISIONED",
            "ACTIVATING",
            "SOMETHING_NEW",
        ] {
            assert_eq!(classify(s), StatusClass::NotActive, "{s}");
        }
    }

    #[test]
    fn protection_matches_login_email_or_id() {
        let u = user("00uRoot", "root@corp.example.com", "root@example.com");
        let login = Login::parse("someone@example.com").unwrap();
        for listed in ["root@corp.example.com", "root@example.com", "00uroot"] {
            assert!(is_listed(&[listed.to_string()], &login, &u), "{listed}");
        }
        assert!(is_listed(&["someone@example.com".into()], &login, &u));
        assert!(!is_listed(&["other@example.com".into()], &login, &u));
    }

    /// The demo org of the README's outcome table, in memory.
    fn org() -> MemoryDirectory {
        let org = MemoryDirectory::new();
        org.add(
            "00uana",
            "ana.lima@example.com",
            "ana.lima@example.com",
            "ACTIVE",
        )
        .add(
            "00ulocked",
            "locked@example.com",
            "locked@example.com",
            "LOCKED_OUT",
        )
        .add(
            "00uomar",
            "omar.haddad@example.com",
            "omar.haddad@example.com",
            "SUSPENDED",
        )
        .add(
            "00uroot",
            "root.admin@example.com",
            "root.admin@example.com",
            "ACTIVE",
        )
        .with_role("00uroot", "SUPER_ADMIN")
        .add(
            "00ujohn",
            "jsmith@corp.example.com",
            "john.smith@example.com",
            "ACTIVE",
        )
        .add(
            "00ushared1",
            "ops1@example.com",
            "shared-ops@example.com",
            "ACTIVE",
        )
        .add(
            "00ushared2",
            "ops2@example.com",
            "shared-ops@example.com",
            "ACTIVE",
        )
        .add(
            "00uformer",
            "former.employee@example.com",
            "former.employee@example.com",
            "DEPROVISIONED",
        )
        .add(
            "00ubreak",
            "break.glass@example.com",
            "break.glass@example.com",
            "ACTIVE",
        );
        org
    }

    fn rules(dry_run: bool) -> Rules<'static> {
        static PROTECTED: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["break.glass@example.com".to_string()]);
        Rules {
            dry_run,
            protected_users: &PROTECTED,
            protect_admins: true,
            universal_logout: false,
            action: CheckAction::DEFAULT,
            quarantine_group: None,
        }
    }

    async fn run(dir: &MemoryDirectory, login: &str, rules: &Rules<'_>) -> UserResult {
        let login = Login::parse(login).unwrap();
        lock_out(
            dir,
            &login,
            rules,
            "evt-1",
            Deadline::after(std::time::Duration::from_secs(30)),
        )
        .await
    }

    /// The outcome of a result that will not change by retrying (final, or
    /// waiting for a person).
    fn done(result: &UserResult) -> (Outcome, &str) {
        match result {
            UserResult::Done(r) | UserResult::Blocked(r) => {
                (r.outcome, r.detail.as_deref().unwrap_or_default())
            }
            UserResult::Retry(r) => panic!("may pass by itself: {r:?}"),
        }
    }

    #[tokio::test]
    async fn each_user_of_the_outcome_table_gets_their_outcome() {
        let table = [
            (
                "ana.lima@example.com",
                Outcome::Suspended,
                "was ACTIVE; sessions and tokens cleared",
                vec![(Op::Suspend, "00uana"), (Op::ClearSessions, "00uana")],
            ),
            (
                "locked@example.com",
                Outcome::Failed,
                "Okta would not suspend a user in status LOCKED_OUT",
                vec![(Op::Suspend, "00ulocked"), (Op::ClearSessions, "00ulocked")],
            ),
            (
                "omar.haddad@example.com",
                Outcome::AlreadySuspended,
                "sessions and tokens cleared again",
                vec![(Op::ClearSessions, "00uomar")],
            ),
            (
                "root.admin@example.com",
                Outcome::Protected,
                "holds the Okta admin role SUPER_ADMIN",
                vec![],
            ),
            (
                "break.glass@example.com",
                Outcome::Protected,
                "listed in PROTECTED_USERS",
                vec![],
            ),
            (
                "john.smith@example.com",
                Outcome::Suspended,
                "was ACTIVE",
                vec![(Op::Suspend, "00ujohn"), (Op::ClearSessions, "00ujohn")],
            ),
            (
                "jsmith",
                Outcome::Suspended,
                "was ACTIVE",
                vec![(Op::Suspend, "00ujohn"), (Op::ClearSessions, "00ujohn")],
            ),
            (
                "shared-ops@example.com",
                Outcome::Ambiguous,
                "2 Okta users have profile.email shared-ops@example.com; none was changed",
                vec![],
            ),
            (
                "former.employee@example.com",
                Outcome::NotActive,
                "status DEPROVISIONED",
                vec![],
            ),
            (
                "ghost@example.com",
                Outcome::NotFound,
                "no Okta user has this login or email",
                vec![],
            ),
            (
                "00uana",
                Outcome::NotFound,
                "no Okta user has this login",
                vec![],
            ),
        ];
        for (login, outcome, detail, writes) in table {
            let dir = org();
            let result = run(&dir, login, &rules(false)).await;
            let (got, got_detail) = done(&result);
            assert_eq!(got, outcome, "{login}: {got_detail}");
            assert!(got_detail.contains(detail), "{login}: {got_detail}");
            let writes: Vec<(Op, String)> = writes
                .into_iter()
                .map(|(o, id)| (o, id.to_string()))
                .collect();
            assert_eq!(dir.writes(), writes, "{login}");
        }
    }

    #[tokio::test]
    async fn a_dry_run_writes_nothing_and_says_what_would_happen() {
        let table = [
            ("ana.lima@example.com", Outcome::DryRun, "status ACTIVE"),
            (
                "omar.haddad@example.com",
                Outcome::AlreadySuspended,
                "sessions would be cleared",
            ),
            ("root.admin@example.com", Outcome::Protected, "SUPER_ADMIN"),
            (
                "former.employee@example.com",
                Outcome::NotActive,
                "status DEPROVISIONED",
            ),
        ];
        for (login, outcome, detail) in table {
            let dir = org();
            let result = run(&dir, login, &rules(true)).await;
            let (got, got_detail) = done(&result);
            assert_eq!(
                (got, got_detail.contains(detail)),
                (outcome, true),
                "{login}: {got_detail}"
            );
            assert!(dir.writes().is_empty(), "{login}");
        }
    }

    #[tokio::test]
    async fn a_redelivery_only_clears_sessions_again() {
        let dir = org();
        assert_eq!(
            done(&run(&dir, "ana.lima@example.com", &rules(false)).await).0,
            Outcome::Suspended
        );
        let again = run(&dir, "ana.lima@example.com", &rules(false)).await;
        assert_eq!(done(&again).0, Outcome::AlreadySuspended);
        assert_eq!(
            dir.writes(),
            [
                (Op::Suspend, "00uana".to_string()),
                (Op::ClearSessions, "00uana".into()),
                (Op::ClearSessions, "00uana".into())
            ]
        );
    }

    #[tokio::test]
    async fn unknown_admin_roles_mean_no_write() {
        let dir = org();
        dir.fail(
            Op::Roles,
            CallError::Refused {
                doing: "list the user's admin roles",
                okta: "Okta answered 403 E0000006".into(),
            },
        );
        let result = run(&dir, "ana.lima@example.com", &rules(false)).await;
        let (outcome, detail) = done(&result);
        assert_eq!(outcome, Outcome::Failed);
        assert!(
            detail.starts_with(
                "could not check the user's admin roles, so nothing was changed: Okta answered 403"
            ),
            "{detail}"
        );
        assert!(dir.writes().is_empty());
        let unprotected = Rules {
            protect_admins: false,
            ..rules(false)
        };
        assert_eq!(
            done(&run(&dir, "root.admin@example.com", &unprotected).await).0,
            Outcome::Suspended
        );
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_refusals_wait_for_a_person() {
        for op in [Op::Find, Op::Roles, Op::Suspend, Op::ClearSessions] {
            let dir = org();
            dir.fail(op, CallError::Transient("Okta answered 503".into()));
            match run(&dir, "ana.lima@example.com", &rules(false)).await {
                UserResult::Retry(r) => {
                    assert_eq!(r.outcome, Outcome::Failed);
                    assert_eq!(r.detail.as_deref(), Some("Okta answered 503"), "{op:?}");
                }
                other => panic!("{op:?}: {other:?}"),
            }
        }
        let dir = org();
        dir.fail(
            Op::Suspend,
            CallError::Refused {
                doing: "suspend the user",
                okta: "Okta answered 403 E0000006".into(),
            },
        );
        let result = run(&dir, "ana.lima@example.com", &rules(false)).await;
        assert!(
            matches!(result, UserResult::Blocked(_)),
            "a person must fix it: {result:?}"
        );
        assert_eq!(
            done(&result),
            (
                Outcome::Failed,
                "could not suspend the user: Okta answered 403 E0000006"
            )
        );
    }

    #[tokio::test]
    async fn universal_logout_follows_the_session_clear_and_never_changes_the_outcome() {
        let on = Rules {
            universal_logout: true,
            ..rules(false)
        };
        let dir = org();
        let result = run(&dir, "ana.lima@example.com", &on).await;
        let (outcome, detail) = done(&result);
        assert_eq!(outcome, Outcome::Suspended);
        assert!(
            detail.ends_with("signed out of every app that supports Universal Logout"),
            "{detail}"
        );
        assert_eq!(result.report().sign_out, Some(SignOut::Everywhere));
        assert_eq!(
            dir.writes().last(),
            Some(&(Op::Revoke, "00uana".to_string()))
        );

        let dir = org();
        dir.without_universal_logout();
        let result = run(&dir, "ana.lima@example.com", &on).await;
        assert_eq!(
            done(&result),
            (
                Outcome::Suspended,
                "was ACTIVE; sessions and tokens cleared"
            )
        );
        assert!(matches!(
            result.report().sign_out,
            Some(SignOut::NotAvailable(_))
        ));

        let dir = org();
        dir.fail(Op::Revoke, CallError::Transient("Okta answered 503".into()));
        assert!(matches!(
            run(&dir, "ana.lima@example.com", &on).await,
            UserResult::Retry(_)
        ));
        // The next delivery finds the user suspended and tries again.
        let again = run(&org_with_ana_suspended(), "ana.lima@example.com", &on).await;
        assert_eq!(done(&again).0, Outcome::AlreadySuspended);
        assert_eq!(again.report().sign_out, Some(SignOut::Everywhere));

        let off = org();
        run(&off, "ana.lima@example.com", &rules(false)).await;
        assert!(off.writes().iter().all(|(op, _)| *op != Op::Revoke));
    }

    const GROUP: &str = "00gquarantine";

    fn with_action(action: CheckAction, dry_run: bool) -> Rules<'static> {
        Rules {
            action,
            quarantine_group: Some(GROUP),
            ..rules(dry_run)
        }
    }

    fn org_with_group() -> MemoryDirectory {
        let dir = org();
        dir.with_group(GROUP, "OKTA_GROUP")
            .with_group("00gappgroup", "APP_GROUP");
        dir
    }

    fn ops(dir: &MemoryDirectory) -> Vec<(Op, String)> {
        dir.writes()
    }

    fn expected(ops: &[(Op, &str)]) -> Vec<(Op, String)> {
        ops.iter().map(|(op, id)| (*op, id.to_string())).collect()
    }

    /// Every action against the demo org: the same protection and status
    /// rules first, then each action's own writes.
    #[tokio::test]
    async fn each_action_writes_only_what_it_says() {
        use CheckAction::{Approve, Notify, Now};
        type Row<'a> = (CheckAction, &'a str, Outcome, &'a str, Vec<(Op, &'a str)>);
        let table: Vec<Row> = vec![
            (
                Now(Write::Sessions),
                "ana.lima@example.com",
                Outcome::SessionsCleared,
                "sessions and tokens cleared; the user stays ACTIVE",
                vec![(Op::ClearSessions, "00uana")],
            ),
            (
                Now(Write::Sessions),
                "omar.haddad@example.com",
                Outcome::AlreadySuspended,
                "sessions and tokens cleared again (CHECK_ACTIONS: sessions)",
                vec![(Op::ClearSessions, "00uomar")],
            ),
            (
                Now(Write::Quarantine),
                "ana.lima@example.com",
                Outcome::Quarantined,
                "added to the quarantine group; status ACTIVE; sessions and tokens cleared",
                vec![(Op::AddMember, "00uana"), (Op::ClearSessions, "00uana")],
            ),
            (
                Now(Write::Quarantine),
                "locked@example.com",
                Outcome::Quarantined,
                "added to the quarantine group; status LOCKED_OUT; sessions and tokens cleared",
                vec![
                    (Op::AddMember, "00ulocked"),
                    (Op::ClearSessions, "00ulocked"),
                ],
            ),
            (
                Notify,
                "ana.lima@example.com",
                Outcome::Notified,
                "status ACTIVE; nothing changed in Okta (CHECK_ACTIONS: notify)",
                vec![],
            ),
            (
                Approve(Write::Quarantine),
                "ana.lima@example.com",
                Outcome::Held,
                "waits for approval in Slack (CHECK_ACTIONS: approve:quarantine)",
                vec![],
            ),
        ];
        for (action, login, outcome, detail, writes) in table {
            let dir = org_with_group();
            let result = run(&dir, login, &with_action(action, false)).await;
            assert_eq!(done(&result), (outcome, detail), "{action} {login}");
            assert_eq!(ops(&dir), expected(&writes), "{action} {login}");
            assert_eq!(
                result.report().added_to_group,
                outcome == Outcome::Quarantined,
                "{action} {login}"
            );
            assert_eq!(dir.status("00uana").as_deref(), Some("ACTIVE"), "{action}");
        }
    }

    #[tokio::test]
    async fn protection_and_status_win_over_every_action() {
        use CheckAction::{Approve, Notify, Now};
        for action in [
            Now(Write::Suspend),
            Now(Write::Sessions),
            Now(Write::Quarantine),
            Notify,
            Approve(Write::Sessions),
        ] {
            for dry_run in [false, true] {
                for (login, outcome) in [
                    ("root.admin@example.com", Outcome::Protected),
                    ("break.glass@example.com", Outcome::Protected),
                    ("former.employee@example.com", Outcome::NotActive),
                    ("shared-ops@example.com", Outcome::Ambiguous),
                    ("ghost@example.com", Outcome::NotFound),
                ] {
                    let dir = org_with_group();
                    let result = run(&dir, login, &with_action(action, dry_run)).await;
                    assert_eq!(
                        done(&result).0,
                        outcome,
                        "{action} {login} dry run {dry_run}"
                    );
                    assert!(ops(&dir).is_empty(), "{action} {login}: {:?}", ops(&dir));
                    assert!(dir.members(GROUP).is_empty());
                }
            }
        }
    }

    #[tokio::test]
    async fn a_dry_run_names_the_action_that_would_have_run() {
        use CheckAction::{Approve, Notify, Now};
        for (action, outcome, detail) in [
            (Now(Write::Suspend), Outcome::DryRun, "status ACTIVE"),
            (
                Now(Write::Sessions),
                Outcome::DryRunSessions,
                "status ACTIVE",
            ),
            (
                Now(Write::Quarantine),
                Outcome::DryRunQuarantine,
                "status ACTIVE",
            ),
            (Notify, Outcome::DryRunNotify, "status ACTIVE"),
            (
                Approve(Write::Quarantine),
                Outcome::DryRunApprove,
                "status ACTIVE; once approved: add to the quarantine group and clear sessions",
            ),
        ] {
            let dir = org_with_group();
            let result = run(&dir, "ana.lima@example.com", &with_action(action, true)).await;
            assert_eq!(done(&result), (outcome, detail), "{action}");
            assert!(ops(&dir).is_empty(), "{action}");
        }
        assert_eq!(
            Outcome::DryRun.word(),
            "dry run (would suspend)",
            "suspend's dry run reads as before"
        );
    }

    #[tokio::test]
    async fn quarantine_again_is_reported_as_such_and_adds_nothing() {
        let rules = with_action(CheckAction::Now(Write::Quarantine), false);
        let dir = org_with_group();
        run(&dir, "ana.lima@example.com", &rules).await;
        // A redelivery, or another event of the same check.
        let again = run(&dir, "ana.lima@example.com", &rules).await;
        assert_eq!(done(&again).0, Outcome::AlreadyQuarantined);
        assert!(!again.report().added_to_group, "not ours to release");
        assert_eq!(dir.members(GROUP), ["00uana"]);
        assert_eq!(
            ops(&dir),
            expected(&[
                (Op::AddMember, "00uana"),
                (Op::ClearSessions, "00uana"),
                (Op::ClearSessions, "00uana"),
            ])
        );
        // Put there by someone else: reported, sessions cleared, not added.
        let dir = org_with_group();
        dir.add_member(GROUP, "00uana");
        let result = run(&dir, "ana.lima@example.com", &rules).await;
        assert_eq!(done(&result).0, Outcome::AlreadyQuarantined);
        assert_eq!(ops(&dir), expected(&[(Op::ClearSessions, "00uana")]));
    }

    #[tokio::test]
    async fn a_quarantine_that_fails_says_why_and_keeps_what_it_did() {
        let rules = with_action(CheckAction::Now(Write::Quarantine), false);
        // Sessions fail after the add: retried, and the add is remembered.
        let dir = org_with_group();
        dir.fail(
            Op::ClearSessions,
            CallError::Transient("Okta answered 503".into()),
        );
        let result = run(&dir, "ana.lima@example.com", &rules).await;
        assert!(matches!(result, UserResult::Retry(_)), "{result:?}");
        assert!(result.report().added_to_group);
        assert_eq!(result.report().outcome, Outcome::Failed);

        // An app group: Okta refuses, a person must fix it.
        let app = Rules {
            quarantine_group: Some("00gappgroup"),
            ..rules.clone()
        };
        let dir = org_with_group();
        let result = run(&dir, "ana.lima@example.com", &app).await;
        let UserResult::Blocked(report) = &result else {
            panic!("{result:?}")
        };
        assert!(
            report.detail.as_deref().unwrap().contains("403"),
            "{report:?}"
        );
        assert!(dir.members("00gappgroup").is_empty());
        assert!(ops(&dir).iter().all(|(op, _)| *op != Op::ClearSessions));

        // A group deleted since it was checked.
        let gone = Rules {
            quarantine_group: Some("00gdeleted"),
            ..rules.clone()
        };
        let dir = org_with_group();
        let result = run(&dir, "ana.lima@example.com", &gone).await;
        let UserResult::Blocked(report) = &result else {
            panic!("{result:?}")
        };
        assert!(
            report
                .detail
                .as_deref()
                .unwrap()
                .contains("does QUARANTINE_GROUP_ID still exist"),
            "{report:?}"
        );

        // The groups cannot be read: nothing written.
        let dir = org_with_group();
        dir.fail(
            Op::UserGroups,
            CallError::Transient("Okta answered 503".into()),
        );
        assert!(matches!(
            run(&dir, "ana.lima@example.com", &rules).await,
            UserResult::Retry(_)
        ));
        assert!(ops(&dir).is_empty());
    }

    fn org_with_ana_suspended() -> MemoryDirectory {
        let dir = org();
        dir.set_status("00uana", "SUSPENDED");
        dir
    }
}
