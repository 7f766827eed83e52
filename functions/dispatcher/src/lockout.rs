//! One user's way through Okta: resolve, protect, act by status.
//!
//! Reads come before writes, so running this twice for the same user is
//! safe: a user suspended on an earlier delivery is found SUSPENDED and only
//! has their sessions cleared again. Suspend comes before clearing sessions:
//! suspending stops new sign-ins, and clearing afterwards ends the sessions
//! that exist, including any opened in between.

use http::Method;
use serde::Deserialize;
use shared::event::Login;

use crate::deadline::Deadline;
use crate::okta::{Answer, Call, CallError, OktaClient, Operation, path_segment, search_query};
use crate::outcome::{Outcome, UserReport};

/// The rules a user is checked against.
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    pub dry_run: bool,
    /// Lower-cased logins, emails or ids.
    pub protected_users: &'a [String],
    pub protect_admins: bool,
}

/// A user's result: final, or worth another delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserResult {
    Done(UserReport),
    /// Not final yet (Okta unavailable, rate limit, time). The report says
    /// `failed` with the reason, for when no delivery is left.
    Retry(UserReport),
}

impl UserResult {
    pub fn report(&self) -> &UserReport {
        match self {
            UserResult::Done(r) | UserResult::Retry(r) => r,
        }
    }
}

/// What an Okta user record is to us; Okta's JSON is read leniently.
#[derive(Debug, Clone, Deserialize)]
pub struct OktaUser {
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub profile: Profile,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Profile {
    #[serde(default)]
    pub login: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

impl OktaUser {
    fn status(&self) -> &str {
        self.status.as_deref().unwrap_or("UNKNOWN")
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
}

impl From<CallError> for Stop {
    fn from(e: CallError) -> Stop {
        match e {
            CallError::Transient(reason) => Stop::Retry(reason),
        }
    }
}

/// Runs one user through Okta and logs the outcome.
pub async fn lock_out(
    okta: &OktaClient,
    login: &Login,
    rules: &Rules<'_>,
    event_id: &str,
    deadline: Deadline,
) -> UserResult {
    let mut run = Run {
        okta,
        login,
        event_id,
        deadline,
        last_request_id: None,
        user_id: None,
    };
    // Boxed: keeps the per-user future's type (and compile time) small.
    let result = match Box::pin(run.pipeline(rules)).await {
        Ok((outcome, detail)) => UserResult::Done(run.report(outcome, Some(detail))),
        Err(Stop::Done(outcome, detail)) => UserResult::Done(run.report(outcome, Some(detail))),
        Err(Stop::Retry(reason)) => UserResult::Retry(run.report(Outcome::Failed, Some(reason))),
    };
    let report = result.report();
    tracing::info!(
        event_id,
        user = login.as_str(),
        outcome = report.outcome.word(),
        reason = report.detail.as_deref().unwrap_or_default(),
        okta_user_id = report.okta_user_id.as_deref().unwrap_or_default(),
        okta_request_id = run.last_request_id.as_deref().unwrap_or_default(),
        will_retry = matches!(result, UserResult::Retry(_)),
        "user outcome"
    );
    result
}

struct Run<'a> {
    okta: &'a OktaClient,
    login: &'a Login,
    event_id: &'a str,
    deadline: Deadline,
    last_request_id: Option<String>,
    user_id: Option<String>,
}

impl Run<'_> {
    fn report(&self, outcome: Outcome, detail: Option<String>) -> UserReport {
        let mut report = UserReport::new(self.login.as_str(), outcome, detail);
        report.okta_user_id = self.user_id.clone();
        report
    }

    async fn call(
        &mut self,
        operation: Operation,
        method: Method,
        path: String,
    ) -> Result<Answer, Stop> {
        let call = Call {
            operation,
            method,
            path,
            event_id: self.event_id,
            user: self.login.as_str(),
        };
        let answer = self.okta.send(&call, self.deadline).await?;
        if answer.request_id.is_some() {
            self.last_request_id = answer.request_id.clone();
        }
        Ok(answer)
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
        match (class, rules.dry_run) {
            (StatusClass::Suspended, true) => Ok((
                Outcome::AlreadySuspended,
                "sessions would be cleared".into(),
            )),
            (StatusClass::Suspended, false) => {
                self.clear_sessions(&user).await?;
                Ok((
                    Outcome::AlreadySuspended,
                    "sessions and tokens cleared again".into(),
                ))
            }
            (_, true) => Ok((Outcome::DryRun, format!("status {}", user.status()))),
            (_, false) => self.suspend(&user).await,
        }
    }

    /// Finds the one Okta user the login names, or says why not.
    async fn resolve(&mut self) -> Result<OktaUser, Stop> {
        let login = self.login;
        match path_segment(login.as_str()) {
            Some(segment) => {
                let answer = self
                    .call(
                        Operation::GetUser,
                        Method::GET,
                        format!("/api/v1/users/{segment}"),
                    )
                    .await?;
                match answer.status {
                    200 => {
                        let user: OktaUser = answer.json()?;
                        // The path also takes ids and shortnames: accept only the
                        // user this login names, never one whose id it happens to be.
                        if names_user(login, &user) {
                            return Ok(user);
                        }
                    }
                    404 => {}
                    _ => return Err(unexpected(&answer, "look the user up")),
                }
            }
            None => {
                if let Some(user) = self
                    .search_one("profile.login", |u| same(u.profile.login.as_deref(), login))
                    .await?
                {
                    return Ok(user);
                }
            }
        }
        if !login.looks_like_email() {
            return Err(Stop::Done(
                Outcome::NotFound,
                "no Okta user has this login".into(),
            ));
        }
        match self
            .search_one("profile.email", |u| same(u.profile.email.as_deref(), login))
            .await?
        {
            Some(user) => Ok(user),
            None => Err(Stop::Done(
                Outcome::NotFound,
                "no Okta user has this login or email".into(),
            )),
        }
    }

    /// Searches `attribute eq login`; keeps the exact matches; more than one is ambiguous.
    async fn search_one(
        &mut self,
        attribute: &str,
        exact: impl Fn(&OktaUser) -> bool,
    ) -> Result<Option<OktaUser>, Stop> {
        let query = search_query(attribute, self.login.as_str());
        let answer = self
            .call(
                Operation::SearchUsers,
                Method::GET,
                format!("/api/v1/users?{query}"),
            )
            .await?;
        if answer.status != 200 {
            return Err(unexpected(&answer, "search for the user"));
        }
        let mut users: Vec<OktaUser> = answer.json()?;
        users.retain(exact);
        match users.len() {
            0 => Ok(None),
            1 => Ok(users.pop()),
            n => Err(Stop::Done(
                Outcome::Ambiguous,
                format!(
                    "{n} Okta users have {attribute} {}; none was changed",
                    self.login
                ),
            )),
        }
    }

    /// The first admin role the user holds, if any. Unknown means no write.
    async fn admin_role(&mut self, user: &OktaUser) -> Result<Option<String>, Stop> {
        let id = id_segment(user)?;
        let answer = self
            .call(
                Operation::ListRoles,
                Method::GET,
                format!("/api/v1/users/{id}/roles"),
            )
            .await?;
        if answer.status != 200 {
            return Err(Stop::Done(
                Outcome::Failed,
                format!(
                    "could not check the user's admin roles, so nothing was changed: {} (the token's admin must be allowed to read roles, or set PROTECT_ADMINS=false)",
                    answer.describe()
                ),
            ));
        }
        #[derive(Deserialize)]
        struct Role {
            #[serde(rename = "type", default)]
            kind: Option<String>,
        }
        let roles: Vec<Role> = answer.json()?;
        Ok(roles
            .into_iter()
            .next()
            .map(|r| r.kind.unwrap_or_else(|| "(unnamed)".into())))
    }

    async fn suspend(&mut self, user: &OktaUser) -> Result<(Outcome, String), Stop> {
        let id = id_segment(user)?;
        let answer = self
            .call(
                Operation::Suspend,
                Method::POST,
                format!("/api/v1/users/{id}/lifecycle/suspend"),
            )
            .await?;
        match answer.status {
            200 | 204 => {
                self.clear_sessions(user).await?;
                Ok((
                    Outcome::Suspended,
                    format!("was {}; sessions and tokens cleared", user.status()),
                ))
            }
            400 if answer.error().code.as_deref() == Some("E0000001") => {
                // "Cannot suspend a user that is not active": see what it really is.
                let refused = answer.describe();
                let now = self.reread(user).await?;
                match classify(now.status()) {
                    StatusClass::Suspended => {
                        self.clear_sessions(&now).await?;
                        Ok((
                            Outcome::AlreadySuspended,
                            "suspended meanwhile; sessions and tokens cleared".into(),
                        ))
                    }
                    StatusClass::NotActive => {
                        Ok((Outcome::NotActive, format!("status {}", now.status())))
                    }
                    StatusClass::Active => {
                        // Okta will not suspend this status: still end what sessions exist.
                        self.clear_sessions(&now).await?;
                        Ok((
                            Outcome::Failed,
                            format!(
                                "Okta would not suspend a user in status {}: {refused}; sessions and tokens were cleared",
                                now.status()
                            ),
                        ))
                    }
                }
            }
            404 => Ok((
                Outcome::NotFound,
                "the user disappeared before the suspend".into(),
            )),
            _ => Err(unexpected(&answer, "suspend the user")),
        }
    }

    async fn reread(&mut self, user: &OktaUser) -> Result<OktaUser, Stop> {
        let id = id_segment(user)?;
        let answer = self
            .call(
                Operation::GetUser,
                Method::GET,
                format!("/api/v1/users/{id}"),
            )
            .await?;
        match answer.status {
            200 => Ok(answer.json()?),
            _ => Err(unexpected(&answer, "re-read the user")),
        }
    }

    async fn clear_sessions(&mut self, user: &OktaUser) -> Result<(), Stop> {
        let id = id_segment(user)?;
        let answer = self
            .call(
                Operation::ClearSessions,
                Method::DELETE,
                format!("/api/v1/users/{id}/sessions?oauthTokens=true"),
            )
            .await?;
        match answer.status {
            200 | 204 => Ok(()),
            _ => Err(unexpected(&answer, "clear the user's sessions")),
        }
    }
}

/// An answer that is neither success nor a known case: a 4xx will not get
/// better by retrying (final), anything else might.
fn unexpected(answer: &Answer, doing: &str) -> Stop {
    let reason = format!("could not {doing}: {}", answer.describe());
    if (400..500).contains(&answer.status) {
        Stop::Done(Outcome::Failed, reason)
    } else {
        Stop::Retry(reason)
    }
}

fn id_segment(user: &OktaUser) -> Result<String, Stop> {
    path_segment(&user.id).ok_or_else(|| {
        Stop::Done(
            Outcome::Failed,
            format!("Okta returned an unusable user id {:?}", user.id),
        )
    })
}

fn same(value: Option<&str>, login: &Login) -> bool {
    value.is_some_and(|v| v.to_lowercase() == login.folded())
}

/// Whether `user` is the one `login` names: its login, or its login's
/// shortname (the part before `@`).
fn names_user(login: &Login, user: &OktaUser) -> bool {
    let Some(okta_login) = user.profile.login.as_deref() else {
        return false;
    };
    let okta_login = okta_login.to_lowercase();
    let wanted = login.folded();
    okta_login == wanted
        || okta_login
            .split_once('@')
            .is_some_and(|(short, _)| short == wanted)
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
    fn a_path_lookup_is_accepted_only_for_the_named_user() {
        let ana = user("00uana", "Ana.Lima@example.com", "ana@example.com");
        assert!(names_user(
            &Login::parse("ana.lima@example.com").unwrap(),
            &ana
        ));
        assert!(
            names_user(&Login::parse("ana.lima").unwrap(), &ana),
            "shortname"
        );
        assert!(
            !names_user(&Login::parse("00uana").unwrap(), &ana),
            "an id is not a login"
        );
        assert!(
            !names_user(&Login::parse("ana@example.com").unwrap(), &ana),
            "an email is not a login"
        );
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
}
