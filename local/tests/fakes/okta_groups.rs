//! The fake Okta's group membership, as the reference describes Okta's: only
//! an `OKTA_GROUP`'s members change (403 for an app group), 404 for an
//! unknown group or user, adding again is harmless, `okta.groups.manage`
//! enforced for OAuth tokens, and the calls count in the groups bucket.

use local_pipeline::fake_okta::{DpopPolicy, GroupType, Operation};
use reqwest::Method;

use crate::oauth_support::{Client, TestKey};
use crate::support::*;

impl Okta {
    async fn put(&self, path: &str) -> Reply {
        send(
            self.http
                .put(self.url(path))
                .header("Authorization", format!("SSWS {TOKEN}")),
        )
        .await
    }
}

#[tokio::test]
async fn okta_groups_are_read_and_members_added_and_removed_idempotently() {
    let o = Okta::start().await;
    let group = o.fake.add_group("oort-quarantine", GroupType::OktaGroup);
    let ana = o.id("ana.lima@example.com");

    let r = o.get(&format!("/api/v1/groups/{group}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    assert_eq!(body["id"], group.as_str());
    assert_eq!(body["type"], "OKTA_GROUP");
    assert_eq!(body["profile"]["name"], "oort-quarantine");

    let r = o.get("/api/v1/groups/00gnosuchgroup").await;
    let b = assert_okta_error(&r, 404, "E0000007");
    assert!(
        b["errorSummary"]
            .as_str()
            .unwrap()
            .contains("00gnosuchgroup")
    );

    let member = format!("/api/v1/groups/{group}/users/{ana}");
    for _ in 0..2 {
        let r = o.put(&member).await;
        assert_eq!(
            (r.status, r.text.as_str()),
            (204, ""),
            "adding again is 204 too"
        );
    }
    let state = o.fake.group(&group).unwrap();
    assert_eq!(state.members, std::slice::from_ref(&ana));
    assert_eq!(state.adds, 2);

    let r = o.get(&format!("/api/v1/users/{ana}/groups")).await;
    assert_eq!(r.status, 200);
    let groups = r.json();
    assert_eq!(groups.as_array().unwrap().len(), 1);
    assert_eq!(groups[0]["id"], group.as_str());
    let li = o.id("li.wei@example.com");
    let r = o.get(&format!("/api/v1/users/{li}/groups")).await;
    assert_eq!(r.json(), serde_json::json!([]));

    let r = o.delete(&member).await;
    assert_eq!(r.status, 204);
    assert!(o.fake.group(&group).unwrap().members.is_empty());
    assert_eq!(o.delete(&member).await.status, 204, "removing again is 204");

    // The user id, not the login, goes in the path.
    let r = o
        .put(&format!(
            "/api/v1/groups/{group}/users/ana.lima@example.com"
        ))
        .await;
    assert_okta_error(&r, 404, "E0000007");
    let r = o
        .put(&format!("/api/v1/groups/00gnosuchgroup/users/{ana}"))
        .await;
    assert_okta_error(&r, 404, "E0000007");
    let r = o.post(&member).await;
    assert_eq!(r.status, 405);
    assert!(o.fake.group(&group).unwrap().members.is_empty());
}

#[tokio::test]
async fn okta_app_and_built_in_groups_cannot_be_changed() {
    let o = Okta::start().await;
    let ana = o.id("ana.lima@example.com");
    for kind in [GroupType::AppGroup, GroupType::BuiltIn] {
        let group = o.fake.add_group("imported", kind);
        let r = o.get(&format!("/api/v1/groups/{group}")).await;
        assert_eq!(r.json()["type"], kind.as_str());
        for method in [Method::PUT, Method::DELETE] {
            let r = send(
                o.http
                    .request(
                        method.clone(),
                        o.url(&format!("/api/v1/groups/{group}/users/{ana}")),
                    )
                    .header("Authorization", format!("SSWS {TOKEN}")),
            )
            .await;
            assert_okta_error(&r, 403, "E0000006");
        }
        assert!(o.fake.group(&group).unwrap().members.is_empty());
    }
}

#[tokio::test]
async fn okta_group_calls_need_the_groups_scope() {
    let o = Okta::start().await;
    let group = o.fake.add_group("oort-quarantine", GroupType::OktaGroup);
    let ana = o.id("ana.lima@example.com");
    let member = format!("/api/v1/groups/{group}/users/{ana}");

    let narrow = Client::register(
        &o,
        TestKey::ec(),
        &["okta.users.read", "okta.users.manage"],
        DpopPolicy::Required,
    );
    let token = narrow.dpop_token("okta.users.read okta.users.manage").await;
    let r = narrow.call(Method::PUT, &member, &token).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(
        r.h("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
    let r = narrow
        .call(Method::GET, &format!("/api/v1/groups/{group}"), &token)
        .await;
    assert_eq!(r.status, 403);
    // Listing a user's groups is a users read.
    let r = narrow
        .call(Method::GET, &format!("/api/v1/users/{ana}/groups"), &token)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(o.fake.group(&group).unwrap().members.is_empty());

    let app = Client::register(
        &o,
        TestKey::ec(),
        &["okta.users.read", "okta.groups.manage"],
        DpopPolicy::Required,
    );
    let token = app.dpop_token("okta.users.read okta.groups.manage").await;
    let r = app.call(Method::PUT, &member, &token).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(o.fake.group(&group).unwrap().members, [ana]);
}

#[tokio::test]
async fn okta_group_calls_count_in_the_groups_bucket_not_the_users_one() {
    let o = Okta::start().await;
    let group = o.fake.add_group("oort-quarantine", GroupType::OktaGroup);
    let ana = o.id("ana.lima@example.com");
    o.fake.set_rate_limit_for(Operation::AddGroupMember, 2);
    let member = format!("/api/v1/groups/{group}/users/{ana}");
    let first = o.get(&format!("/api/v1/groups/{group}")).await;
    assert_eq!(first.num("x-rate-limit-limit"), 2);
    assert_eq!(first.num("x-rate-limit-remaining"), 1);
    let second = o.put(&member).await;
    assert_eq!(second.status, 204);
    assert_eq!(second.num("x-rate-limit-remaining"), 0);
    let third = o.delete(&member).await;
    assert_okta_error(&third, 429, "E0000047");
    // The users bucket is untouched.
    let user = o.get(&format!("/api/v1/users/{ana}")).await;
    assert_eq!(user.status, 200);
    assert_eq!(user.num("x-rate-limit-limit"), 600);
    assert_eq!(user.num("x-rate-limit-remaining"), 599);
}
