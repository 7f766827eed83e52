//! An in-memory [`Directory`] for testing the lockout rules without HTTP.
//!
//! It keeps Okta's lifecycle rules (suspend only from ACTIVE, unsuspend only
//! from SUSPENDED) and group rules (only an `OKTA_GROUP`'s members change),
//! records every write, and fails any operation on demand.

use std::collections::HashMap;
use std::sync::Mutex;

use shared::event::Login;

use super::client::names_user;
use super::{
    Attribute, CallContext, CallError, Directory, GroupProfile, Membership, OktaGroup, OktaUser,
    Profile, Revocation, Suspension, Unsuspension,
};

/// The operations, to fail them and to read the writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Find,
    Search,
    Get,
    Roles,
    Suspend,
    Unsuspend,
    ClearSessions,
    Revoke,
    GetGroup,
    UserGroups,
    AddMember,
    RemoveMember,
}

#[derive(Default)]
struct State {
    users: Vec<OktaUser>,
    roles: HashMap<String, Vec<String>>,
    failures: HashMap<Op, CallError>,
    writes: Vec<(Op, String)>,
    universal_logout_unavailable: bool,
    /// Group id -> (type, member ids).
    groups: HashMap<String, (String, Vec<String>)>,
}

#[derive(Default)]
pub struct MemoryDirectory {
    state: Mutex<State>,
}

impl MemoryDirectory {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&self, id: &str, login: &str, email: &str, status: &str) -> &Self {
        self.lock().users.push(OktaUser {
            id: id.into(),
            status: Some(status.into()),
            profile: Profile {
                login: Some(login.into()),
                email: Some(email.into()),
            },
        });
        self
    }

    pub fn with_role(&self, id: &str, role: &str) -> &Self {
        self.lock()
            .roles
            .entry(id.into())
            .or_default()
            .push(role.into());
        self
    }

    /// Every call of `op` fails with `error` from now on.
    pub fn fail(&self, op: Op, error: CallError) -> &Self {
        self.lock().failures.insert(op, error);
        self
    }

    /// Adds a group of `kind` (`OKTA_GROUP`, `APP_GROUP`, ...).
    pub fn with_group(&self, id: &str, kind: &str) -> &Self {
        self.lock()
            .groups
            .insert(id.into(), (kind.into(), Vec::new()));
        self
    }

    /// Makes the user a member, as another admin would.
    pub fn add_member(&self, group: &str, user: &str) -> &Self {
        if let Some((_, members)) = self.lock().groups.get_mut(group) {
            members.push(user.into());
        }
        self
    }

    pub fn members(&self, group: &str) -> Vec<String> {
        self.lock()
            .groups
            .get(group)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub fn without_universal_logout(&self) -> &Self {
        self.lock().universal_logout_unavailable = true;
        self
    }

    pub fn set_status(&self, id: &str, status: &str) {
        if let Some(u) = self.lock().users.iter_mut().find(|u| u.id == id) {
            u.status = Some(status.into());
        }
    }

    pub fn status(&self, id: &str) -> Option<String> {
        self.lock()
            .users
            .iter()
            .find(|u| u.id == id)
            .and_then(|u| u.status.clone())
    }

    /// The writes, in order: `(operation, user id)`.
    pub fn writes(&self) -> Vec<(Op, String)> {
        self.lock().writes.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("memory directory lock")
    }

    fn check(&self, op: Op) -> Result<(), CallError> {
        match self.lock().failures.get(&op) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn write(&self, op: Op, id: &str) -> Result<Option<String>, CallError> {
        self.check(op)?;
        let mut state = self.lock();
        state.writes.push((op, id.into()));
        Ok(state
            .users
            .iter()
            .find(|u| u.id == id)
            .map(|u| u.status().to_string()))
    }
}

impl Directory for MemoryDirectory {
    async fn find_by_login(
        &self,
        login: &Login,
        _: &CallContext<'_>,
    ) -> Result<Option<OktaUser>, CallError> {
        self.check(Op::Find)?;
        Ok(self
            .lock()
            .users
            .iter()
            .find(|u| names_user(login, u))
            .cloned())
    }

    async fn search_exact(
        &self,
        attribute: Attribute,
        value: &str,
        _: &CallContext<'_>,
    ) -> Result<Vec<OktaUser>, CallError> {
        self.check(Op::Search)?;
        let wanted = value.to_lowercase();
        Ok(self
            .lock()
            .users
            .iter()
            .filter(|u| attribute.of(u).is_some_and(|v| v.to_lowercase() == wanted))
            .cloned()
            .collect())
    }

    async fn get_user(
        &self,
        user_id: &str,
        _: &CallContext<'_>,
    ) -> Result<Option<OktaUser>, CallError> {
        self.check(Op::Get)?;
        Ok(self.lock().users.iter().find(|u| u.id == user_id).cloned())
    }

    async fn admin_roles(
        &self,
        user_id: &str,
        _: &CallContext<'_>,
    ) -> Result<Vec<String>, CallError> {
        self.check(Op::Roles)?;
        Ok(self.lock().roles.get(user_id).cloned().unwrap_or_default())
    }

    async fn suspend(&self, user_id: &str, _: &CallContext<'_>) -> Result<Suspension, CallError> {
        match self.write(Op::Suspend, user_id)?.as_deref() {
            None => Ok(Suspension::Gone),
            Some("ACTIVE") => {
                self.set_status(user_id, "SUSPENDED");
                Ok(Suspension::Done)
            }
            Some(_) => Ok(Suspension::NotSuspendable {
                refusal: "Okta answered 400 E0000001: Cannot suspend a user that is not active"
                    .into(),
            }),
        }
    }

    async fn unsuspend(
        &self,
        user_id: &str,
        _: &CallContext<'_>,
    ) -> Result<Unsuspension, CallError> {
        match self.write(Op::Unsuspend, user_id)?.as_deref() {
            None => Ok(Unsuspension::Gone),
            Some("SUSPENDED") => {
                self.set_status(user_id, "ACTIVE");
                Ok(Unsuspension::Done)
            }
            Some(_) => Ok(Unsuspension::NotSuspended {
                refusal:
                    "Okta answered 400 E0000001: Cannot unsuspend a user that is not suspended"
                        .into(),
            }),
        }
    }

    async fn clear_sessions(&self, user_id: &str, _: &CallContext<'_>) -> Result<(), CallError> {
        self.write(Op::ClearSessions, user_id).map(|_| ())
    }

    async fn revoke_globally(
        &self,
        user_id: &str,
        _: &CallContext<'_>,
    ) -> Result<Revocation, CallError> {
        if self.lock().universal_logout_unavailable {
            self.check(Op::Revoke)?;
            return Ok(Revocation::NotAvailable {
                reason: "Okta answered 403 E0000006: You do not have permission".into(),
            });
        }
        self.write(Op::Revoke, user_id).map(|_| Revocation::Done)
    }

    async fn get_group(
        &self,
        group_id: &str,
        _: &CallContext<'_>,
    ) -> Result<Option<OktaGroup>, CallError> {
        self.check(Op::GetGroup)?;
        Ok(self.lock().groups.get(group_id).map(|(kind, _)| OktaGroup {
            id: group_id.into(),
            kind: Some(kind.clone()),
            profile: GroupProfile::default(),
        }))
    }

    async fn user_groups(
        &self,
        user_id: &str,
        _: &CallContext<'_>,
    ) -> Result<Vec<String>, CallError> {
        self.check(Op::UserGroups)?;
        Ok(self
            .lock()
            .groups
            .iter()
            .filter(|(_, (_, members))| members.iter().any(|m| m == user_id))
            .map(|(id, _)| id.clone())
            .collect())
    }

    async fn add_to_group(
        &self,
        group_id: &str,
        user_id: &str,
        _: &CallContext<'_>,
    ) -> Result<Membership, CallError> {
        self.membership(Op::AddMember, group_id, user_id, true)
    }

    async fn remove_from_group(
        &self,
        group_id: &str,
        user_id: &str,
        _: &CallContext<'_>,
    ) -> Result<Membership, CallError> {
        self.membership(Op::RemoveMember, group_id, user_id, false)
    }
}

impl MemoryDirectory {
    /// Okta's rules: only an `OKTA_GROUP` is changed (403 otherwise); an
    /// unknown group or user is 404; adding again changes nothing.
    fn membership(
        &self,
        op: Op,
        group_id: &str,
        user_id: &str,
        add: bool,
    ) -> Result<Membership, CallError> {
        let exists = self.write(op, user_id)?.is_some();
        let mut state = self.lock();
        let Some((kind, members)) = state.groups.get_mut(group_id) else {
            return Ok(Membership::NotFound {
                okta: "Okta answered 404 E0000007: Not found: Resource not found".into(),
            });
        };
        if kind != "OKTA_GROUP" {
            return Err(CallError::Refused {
                doing: "add the user to the quarantine group",
                okta: "Okta answered 403 E0000006: You do not have permission to perform the requested action".into(),
            });
        }
        if !exists {
            return Ok(Membership::NotFound {
                okta: "Okta answered 404 E0000007: Not found: Resource not found".into(),
            });
        }
        members.retain(|m| m != user_id);
        if add {
            members.push(user_id.into());
        }
        Ok(Membership::Done)
    }
}
