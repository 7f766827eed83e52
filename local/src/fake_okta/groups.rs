//! Groups and group membership, for a quarantine group: `GET
//! /api/v1/groups/{groupId}`, `PUT` and `DELETE
//! /api/v1/groups/{groupId}/users/{userId}`, and `GET
//! /api/v1/users/{userId}/groups`.
//!
//! As in Okta: only an `OKTA_GROUP`'s members can be changed through the
//! API (an `APP_GROUP` or `BUILT_IN` group answers 403 `E0000006`); an
//! unknown group or user answers 404 `E0000007`; adding a member again, or
//! removing one who is not a member, is 204 and changes nothing. These calls
//! count in the groups rate-limit bucket (see `limits`), and an OAuth token
//! needs `okta.groups.manage` (reading a group also takes
//! `okta.groups.read`).

use std::time::{Duration, SystemTime};

use http::StatusCode;
use serde_json::{Value, json};

use super::limits::RateHeaders;
use super::org::Org;
use super::render::{Answer, error_body, no_content, okta_time, user_not_found};
use crate::http_stub::random_string;

/// A group's type, as Okta names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupType {
    /// Created in Okta: the API may change its members.
    OktaGroup,
    /// Imported from an app or directory (Active Directory, ...).
    AppGroup,
    /// `Everyone`.
    BuiltIn,
}

impl GroupType {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupType::OktaGroup => "OKTA_GROUP",
            GroupType::AppGroup => "APP_GROUP",
            GroupType::BuiltIn => "BUILT_IN",
        }
    }
}

/// A snapshot of one group, with counters of what was done to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupState {
    pub id: String,
    pub name: String,
    pub kind: GroupType,
    /// Member user ids, in the order they were added.
    pub members: Vec<String>,
    /// Successful `PUT` calls (a repeated one counts too).
    pub adds: u32,
    /// Successful `DELETE` calls.
    pub removes: u32,
    pub created: SystemTime,
    pub last_membership_updated: SystemTime,
}

impl Org {
    /// Adds a group; returns its new id (`00g` + 17 characters).
    pub(super) fn add_group(&mut self, name: &str, kind: GroupType) -> String {
        let mut id = format!("00g{}", random_string(17));
        while self.groups.iter().any(|g| g.id == id) {
            id = format!("00g{}", random_string(17));
        }
        self.add_group_with_id(&id, name, kind);
        id
    }

    /// Adds a group with a known id (replacing one with the same id).
    pub(super) fn add_group_with_id(&mut self, id: &str, name: &str, kind: GroupType) {
        self.groups.retain(|g| g.id != id);
        let id = id.to_string();
        let created = SystemTime::now() - Duration::from_secs(86_400 * 30);
        self.groups.push(GroupState {
            id: id.clone(),
            name: name.to_string(),
            kind,
            members: Vec::new(),
            adds: 0,
            removes: 0,
            created,
            last_membership_updated: created,
        });
    }

    pub(super) fn find_group(&self, id: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.id == id)
    }

    /// `GET /api/v1/groups/{groupId}`.
    pub(super) fn group_answer(&self, base_url: &str, key: &str, rate: RateHeaders) -> Answer {
        match self.find_group(key) {
            Some(g) => Answer::json(StatusCode::OK, group_json(base_url, &self.groups[g]), rate),
            None => group_not_found(key, rate),
        }
    }

    /// `GET /api/v1/users/{userId}/groups`.
    pub(super) fn user_groups_answer(
        &self,
        base_url: &str,
        key: &str,
        target: Option<usize>,
        rate: RateHeaders,
    ) -> Answer {
        let Some(i) = target else {
            return user_not_found(key, rate);
        };
        let id = &self.users[i].state.id;
        let groups = self
            .groups
            .iter()
            .filter(|g| g.members.contains(id))
            .map(|g| group_json(base_url, g))
            .collect();
        Answer::json(StatusCode::OK, Value::Array(groups), rate)
    }

    /// `PUT` (add) or `DELETE` (remove) `/api/v1/groups/{groupId}/users/{userId}`.
    pub(super) fn membership(
        &mut self,
        group: &str,
        user: &str,
        target: Option<usize>,
        add: bool,
        now: SystemTime,
        rate: RateHeaders,
    ) -> Answer {
        let Some(g) = self.find_group(group) else {
            return group_not_found(group, rate);
        };
        if self.groups[g].kind != GroupType::OktaGroup {
            return Answer::json(
                StatusCode::FORBIDDEN,
                error_body(
                    "E0000006",
                    "You do not have permission to perform the requested action",
                    &[&format!(
                        "Group memberships of {} groups cannot be changed through the API",
                        self.groups[g].kind.as_str()
                    )],
                ),
                rate,
            );
        }
        let Some(i) = target else {
            return user_not_found(user, rate);
        };
        let id = self.users[i].state.id.clone();
        let state = &mut self.groups[g];
        if add {
            if !state.members.contains(&id) {
                state.members.push(id);
                state.last_membership_updated = now;
            }
            state.adds += 1;
        } else {
            if state.members.contains(&id) {
                state.members.retain(|m| *m != id);
                state.last_membership_updated = now;
            }
            state.removes += 1;
        }
        no_content(rate)
    }
}

fn group_not_found(key: &str, rate: RateHeaders) -> Answer {
    Answer::json(
        StatusCode::NOT_FOUND,
        error_body(
            "E0000007",
            &format!("Not found: Resource not found: {key} (UserGroup)"),
            &[],
        ),
        rate,
    )
}

fn group_json(base: &str, g: &GroupState) -> Value {
    let time = okta_time;
    json!({
        "id": g.id,
        "created": time(g.created),
        "lastUpdated": time(g.created),
        "lastMembershipUpdated": time(g.last_membership_updated),
        "objectClass": ["okta:user_group"],
        "type": g.kind.as_str(),
        "profile": {"name": g.name, "description": null},
        "_links": {
            "users": {"href": format!("{base}/api/v1/groups/{}/users", g.id)},
            "apps": {"href": format!("{base}/api/v1/groups/{}/apps", g.id)}
        }
    })
}
