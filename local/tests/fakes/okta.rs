//! The fake Okta's Management API: authentication, the headers on every
//! answer, look-ups by id, login and shortname, the exact search, the
//! lifecycle state machine, sessions, roles, and hostile logins.

use std::time::{Duration, Instant};

use local_pipeline::fake_okta::{FakeOkta, SeedUser};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn okta_rejects_missing_or_wrong_token() {
    let o = Okta::start().await;
    let url = o.url("/api/v1/users/ana.lima@example.com");
    for auth in [
        None,
        Some("SSWS nope".to_string()),
        Some(format!("Bearer {TOKEN}")),
        Some(TOKEN.to_string()),
    ] {
        let mut rb = o.http.get(&url);
        if let Some(a) = &auth {
            rb = rb.header("Authorization", a);
        }
        let r = send(rb).await;
        let b = assert_okta_error(&r, 401, "E0000011");
        assert_eq!(b["errorSummary"], "Invalid token provided");
        assert!(r.h("x-okta-request-id").is_some());
        assert!(r.h("x-rate-limit-limit").is_some());
    }
    assert!(o.fake.requests().iter().all(|r| r.status == 401));
}

#[tokio::test]
async fn okta_every_response_carries_request_id_date_and_rate_headers() {
    let o = Okta::start().await;
    let mut ids = std::collections::HashSet::new();
    for path in [
        "/api/v1/users/ana.lima@example.com",
        "/api/v1/users/ghost@example.com",
        "/api/v1/nope",
    ] {
        let r = o.get(path).await;
        let id = r.h("x-okta-request-id").expect("request id").to_string();
        assert!(id.len() >= 20);
        assert!(ids.insert(id), "request ids are unique");
        assert!(httpdate::parse_http_date(r.h("date").unwrap()).is_ok());
        assert_eq!(r.num("x-rate-limit-limit"), 600);
        let wait = r.reset_minus_date();
        assert!(
            (1..=60).contains(&wait),
            "reset is within the minute window: {wait}"
        );
        assert_eq!(
            r.num("x-rate-limit-reset") % 60,
            0,
            "windows are aligned to wall-clock minutes"
        );
        assert_eq!(r.h("content-type"), Some("application/json"));
    }
}

#[tokio::test]
async fn okta_get_user_by_id_login_and_shortname() {
    let o = Okta::start().await;
    let ana = o.id("ana.lima@example.com");
    assert!(ana.starts_with("00u") && ana.len() == 20, "{ana}");

    for key in [
        ana.as_str(),
        "ana.lima@example.com",
        "ANA.Lima@Example.com",
        "ana.lima%40example.com",
        "ana.lima",
        "Ana.Lima",
    ] {
        let r = o.get(&format!("/api/v1/users/{key}")).await;
        assert_eq!(r.status, 200, "{key}: {}", r.text);
        let u = r.json();
        assert_eq!(u["id"], ana.as_str());
        assert_eq!(u["status"], "ACTIVE");
        assert_eq!(u["profile"]["login"], "ana.lima@example.com");
        assert_eq!(u["profile"]["email"], "ana.lima@example.com");
        assert_eq!(u["profile"]["firstName"], "Ana");
        assert!(u["lastLogin"].is_null() && u["passwordChanged"].is_null());
        assert!(u["type"]["id"].as_str().unwrap().starts_with("oty"));
        assert!(
            u["_links"]["self"]["href"]
                .as_str()
                .unwrap()
                .ends_with(&ana)
        );
        assert!(u["_links"]["suspend"].is_object());
    }

    // A login without a domain is found by its login.
    let r = o.get("/api/v1/users/svc.backup").await;
    assert_eq!(r.json()["profile"]["email"], "svc.backup@example.com");

    // Ids are case-sensitive; a lowercased id is not a login either.
    let lower = ana.to_lowercase();
    if lower != ana {
        assert_eq!(o.get(&format!("/api/v1/users/{lower}")).await.status, 404);
    }

    // Shortnames must be unambiguous.
    o.fake
        .add_user(SeedUser::new("dup@a.example", "dup@a.example", "ACTIVE"));
    o.fake
        .add_user(SeedUser::new("dup@b.example", "dup@b.example", "ACTIVE"));
    assert_eq!(o.get("/api/v1/users/dup").await.status, 404);
    assert_eq!(o.get("/api/v1/users/dup@b.example").await.status, 200);
}

#[tokio::test]
async fn okta_unknown_user_is_a_404_with_an_okta_error_body() {
    let o = Okta::start().await;
    let r = o.get("/api/v1/users/ghost@example.com").await;
    let b = assert_okta_error(&r, 404, "E0000007");
    assert_eq!(
        b["errorSummary"],
        "Not found: Resource not found: ghost@example.com (User)"
    );
    assert_eq!(b["errorCauses"], json!([]));

    let r = o.get("/api/v1/groups").await;
    assert_okta_error(&r, 404, "E0000007");
    let r = o
        .get("/api/v1/users/ana.lima@example.com/lifecycle/suspend")
        .await;
    assert_okta_error(&r, 405, "E0000022");
    assert_eq!(r.h("allow"), Some("POST"));
}

#[tokio::test]
async fn okta_search_semantics() {
    let o = Okta::start().await;

    // Values case-insensitive; email is not the login.
    let r = o
        .search(r#"profile.email eq "JOHN.Smith@example.com""#)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(logins(&r.json()), ["jsmith@corp.example.com"]);
    // Operators case-insensitive too.
    let r = o
        .search(r#"profile.login EQ "jsmith@corp.example.com""#)
        .await;
    assert_eq!(logins(&r.json()), ["jsmith@corp.example.com"]);
    // The login is not the email.
    let r = o
        .search(r#"profile.login eq "john.smith@example.com""#)
        .await;
    assert_eq!(r.json(), json!([]));
    // Several users share an email.
    let r = o
        .search(r#"profile.email eq "shared-ops@example.com""#)
        .await;
    assert_eq!(logins(&r.json()), ["ops1@example.com", "ops2@example.com"]);
    // DEPROVISIONED users are included.
    let r = o
        .search(r#"profile.email eq "former.employee@example.com""#)
        .await;
    assert_eq!(r.json()[0]["status"], "DEPROVISIONED");
    // Not found is an empty array.
    assert_eq!(
        o.search(r#"profile.email eq "ghost@example.com""#)
            .await
            .json(),
        json!([])
    );
    // Escaped quote and backslash inside the value.
    o.fake.add_user(SeedUser::new(
        "quote@example.com",
        r#"a"b@example.com"#,
        "ACTIVE",
    ));
    o.fake.add_user(SeedUser::new(
        "backslash@example.com",
        r"c\d@example.com",
        "ACTIVE",
    ));
    let r = o.search(r#"profile.email eq "A\"b@example.com""#).await;
    assert_eq!(logins(&r.json()), ["quote@example.com"]);
    let r = o.search(r#"profile.email eq "c\\d@example.com""#).await;
    assert_eq!(logins(&r.json()), ["backslash@example.com"]);

    // '+' must travel as %2B: a literal '+' in the query is a space.
    o.fake.add_user(SeedUser::new(
        "plus@example.com",
        "a+tag@example.com",
        "ACTIVE",
    ));
    let r = o.search(r#"profile.email eq "a+tag@example.com""#).await; // reqwest sends %2B
    assert_eq!(logins(&r.json()), ["plus@example.com"]);
    let r = o
        .get("/api/v1/users?search=profile.email%20eq%20%22a+tag@example.com%22")
        .await;
    assert_eq!(r.json(), json!([]));

    // Malformed expressions, and anything but the dispatcher's one
    // expression (other attributes and operators, and/or).
    for bad in [
        r#"profile.email eq "unterminated"#,
        r#"profile.email eq ana@example.com"#,
        r#"profile.email eq "bad\escape""#,
        r#"profile.email "x""#,
        r#"profile.email eq "x" and"#,
        r#"(profile.email eq "x""#,
        r#"profile.email eq "x" extra"#,
        r#"bogus eq "x""#,
        "",
        r#"status eq "SUSPENDED""#,
        r#"profile.email sw "ana""#,
        r#"profile.email eq "ana.lima@example.com" or profile.email eq "li.wei@example.com""#,
    ] {
        let r = o.search(bad).await;
        let b = assert_okta_error(&r, 400, "E0000031");
        assert_eq!(b["errorSummary"], "Invalid search criteria.", "{bad}");
    }
    // The list endpoint serves the search and nothing else: no plain list,
    // filter, q or paging.
    for query in [
        "",
        "?limit=3",
        "?filter=profile.login%20eq%20%22li.wei%40example.com%22",
        "?q=ana",
        "?search=profile.login%20eq%20%22li.wei%40example.com%22&limit=3",
    ] {
        let r = o.get(&format!("/api/v1/users{query}")).await;
        let b = assert_okta_error(&r, 400, "E0000031");
        assert_eq!(b["errorSummary"], "Invalid search criteria.", "{query}");
    }
}

// ---------------------------------------------------------------------------
// Okta: lifecycle, sessions, roles
// ---------------------------------------------------------------------------

#[tokio::test]
async fn okta_suspend_state_machine() {
    let o = Okta::start().await;
    let r = o
        .post("/api/v1/users/ana.lima%40example.com/lifecycle/suspend")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({}));
    let ana = o.fake.user("ana.lima@example.com").unwrap();
    assert_eq!(ana.status, "SUSPENDED");
    assert_eq!(ana.suspended_count, 1);
    assert_eq!(
        o.get("/api/v1/users/ana.lima@example.com").await.json()["status"],
        "SUSPENDED"
    );

    // Not active: suspended already, deprovisioned.
    for who in [
        "ana.lima@example.com",
        "omar.haddad@example.com",
        "former.employee@example.com",
    ] {
        let r = o
            .post(&format!("/api/v1/users/{who}/lifecycle/suspend"))
            .await;
        let b = assert_okta_error(&r, 400, "E0000001");
        assert_eq!(b["errorSummary"], "Api validation failed: suspendUser");
        assert_eq!(
            b["errorCauses"],
            json!([{ "errorSummary": "Cannot suspend a user that is not active" }])
        );
    }
    assert_eq!(
        o.fake.user("ana.lima@example.com").unwrap().suspended_count,
        1
    );
    assert_eq!(
        o.fake.user("former.employee@example.com").unwrap().status,
        "DEPROVISIONED"
    );

    // By id, and unknown.
    let li = o.id("li.wei@example.com");
    assert_eq!(
        o.post(&format!("/api/v1/users/{li}/lifecycle/suspend"))
            .await
            .status,
        200
    );
    let r = o
        .post("/api/v1/users/ghost@example.com/lifecycle/suspend")
        .await;
    assert_okta_error(&r, 404, "E0000007");

    // Unsuspend only from SUSPENDED.
    assert_eq!(
        o.post("/api/v1/users/ana.lima@example.com/lifecycle/unsuspend")
            .await
            .status,
        200
    );
    assert_eq!(
        o.fake.user("ana.lima@example.com").unwrap().status,
        "ACTIVE"
    );
    let r = o
        .post("/api/v1/users/ana.lima@example.com/lifecycle/unsuspend")
        .await;
    let b = assert_okta_error(&r, 400, "E0000001");
    assert_eq!(
        b["errorCauses"][0]["errorSummary"],
        "Cannot unsuspend a user that is not suspended"
    );

    // Suspendable statuses are configurable.
    o.fake.add_user(SeedUser::new(
        "locked@example.com",
        "locked@example.com",
        "LOCKED_OUT",
    ));
    assert_eq!(
        o.post("/api/v1/users/locked@example.com/lifecycle/suspend")
            .await
            .status,
        400
    );
    o.fake.set_suspendable_statuses(&["ACTIVE", "LOCKED_OUT"]);
    assert_eq!(
        o.post("/api/v1/users/locked@example.com/lifecycle/suspend")
            .await
            .status,
        200
    );
    assert_eq!(
        o.fake.user("locked@example.com").unwrap().status,
        "SUSPENDED"
    );
}

#[tokio::test]
async fn okta_sessions_take_the_id_only() {
    let o = Okta::start().await;
    let r = o
        .delete("/api/v1/users/ana.lima@example.com/sessions?oauthTokens=true")
        .await;
    assert_okta_error(&r, 404, "E0000007");
    assert_eq!(
        o.fake
            .user("ana.lima@example.com")
            .unwrap()
            .sessions_cleared,
        0
    );

    let id = o.id("ana.lima@example.com");
    let r = o
        .delete(&format!("/api/v1/users/{id}/sessions?oauthTokens=true"))
        .await;
    assert_eq!(r.status, 204);
    assert!(r.text.is_empty());
    assert!(r.h("content-type").is_none());
    assert!(r.h("x-okta-request-id").is_some());
    let ana = o.fake.user(&id).unwrap();
    assert_eq!(ana.sessions_cleared, 1);
    assert!(ana.oauth_tokens_revoked);

    let li = o.id("li.wei@example.com");
    assert_eq!(
        o.delete(&format!("/api/v1/users/{li}/sessions"))
            .await
            .status,
        204
    );
    let li = o.fake.user(&li).unwrap();
    assert_eq!((li.sessions_cleared, li.oauth_tokens_revoked), (1, false));
    assert_eq!(
        o.delete(&format!("/api/v1/users/{id}/sessions?oauthTokens=maybe"))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn okta_roles() {
    let o = Okta::start().await;
    let root = o.id("root.admin@example.com");
    let r = o.get(&format!("/api/v1/users/{root}/roles")).await;
    assert_eq!(r.status, 200);
    let roles = r.json();
    assert_eq!(roles.as_array().unwrap().len(), 1);
    let role = &roles[0];
    assert_eq!(role["type"], "SUPER_ADMIN");
    assert_eq!(role["status"], "ACTIVE");
    assert_eq!(role["assignmentType"], "USER");
    for k in ["id", "label", "created", "lastUpdated"] {
        assert!(role[k].is_string(), "{k}");
    }
    let ana = o.id("ana.lima@example.com");
    assert_eq!(
        o.get(&format!("/api/v1/users/{ana}/roles")).await.json(),
        json!([])
    );
    assert_okta_error(
        &o.get("/api/v1/users/00uNOPE0000000000000/roles").await,
        404,
        "E0000007",
    );
    assert_eq!(
        o.get("/api/v1/users/root.admin@example.com/roles")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn okta_hostile_logins_never_resolve_to_another_user() {
    let o = Okta::start().await;
    let addr = o.fake.addr();
    for login in ["a", "b", "x", "a?b", "a#b", "a\"b", "..", "a/b", "%61"] {
        o.fake.add_user(SeedUser::new(
            login,
            format!("{}@hostile.example", login.len()),
            "ACTIVE",
        ));
    }
    let ana = o.id("ana.lima@example.com");
    let login_of = |body: &str| -> String {
        let v: Value = serde_json::from_str(body).unwrap();
        v["profile"]["login"]
            .as_str()
            .unwrap_or("<none>")
            .to_string()
    };

    // Encoded specials name exactly themselves.
    for (target, login) in [
        ("a%3Fb", "a?b"),
        ("a%23b", "a#b"),
        ("a%22b", "a\"b"),
        ("%2E%2E", ".."),
        ("%2561", "%61"),
    ] {
        let (status, body) = raw(addr, "GET", &format!("/api/v1/users/{target}")).await;
        assert_eq!(status, 200, "{target}");
        assert_eq!(login_of(&body), login, "{target}");
    }
    // A '/' (encoded or not) never resolves, and '..' is never normalised.
    for target in [
        "/api/v1/users/a%2Fb",
        "/api/v1/users/a%2fb",
        "/api/v1/users/a/b",
        "/api/v1/users/../users/a",
        &format!("/api/v1/users/..%2F{ana}"),
        &format!("/api/v1/users/x/../{ana}"),
        "/api/v1/users/%2E%2E%2Fana.lima@example.com",
        "/api/v1/users/ana.lima@example.com%2F..",
    ] {
        let (status, _) = raw(addr, "GET", target).await;
        assert_eq!(status, 404, "{target}");
    }
    // Nor can a write be steered onto someone else.
    for target in [
        format!("/api/v1/users/x%2F..%2F{ana}/lifecycle/suspend"),
        format!("/api/v1/users/x/../{ana}/lifecycle/suspend"),
        "/api/v1/users/..%2Fana.lima@example.com/lifecycle/suspend".to_string(),
    ] {
        let (status, _) = raw(addr, "POST", &target).await;
        assert_eq!(status, 404, "{target}");
    }
    assert_eq!(
        o.fake.user("ana.lima@example.com").unwrap().status,
        "ACTIVE"
    );
    assert_eq!(o.fake.user("x").unwrap().status, "ACTIVE");
    // A login with '/' is reachable through search, as Okta documents.
    let r = o.search(r#"profile.login eq "a/b""#).await;
    assert_eq!(logins(&r.json()), ["a/b"]);
}

#[tokio::test]
async fn okta_stops_when_the_last_handle_is_dropped() {
    let fake = FakeOkta::start(TOKEN).await;
    let addr = fake.addr();
    let clone = fake.clone();
    drop(fake);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_ok(),
        "a clone keeps it running"
    );
    drop(clone);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "server still accepting after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let fake = FakeOkta::start(TOKEN).await;
    let addr = fake.addr();
    fake.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
