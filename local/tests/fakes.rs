//! Tests of the fake Okta and fake Slack themselves: the other tests trust them
//! to answer like the real services, so their answers are pinned here, over
//! real HTTP.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use local_pipeline::fake_okta::{
    DISPATCHER_SCOPES, DpopPolicy, FakeOkta, Fault, FaultKind, OAuthApp, Operation, SeedUser,
    TokenType,
};
use local_pipeline::fake_slack::{FakeSlack, SlackEndpoint, SlackFault, render_text};
use local_pipeline::okta_keys;
use local_pipeline::seed::{
    DEMO_OAUTH_KEY_ID, DEMO_OKTA_TOKEN, demo_users, register_demo_app, seed_demo_org,
};
use reqwest::header::HeaderMap;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "test-okta-token";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }
    fn h(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header"))
    }
    fn num(&self, name: &str) -> u64 {
        self.h(name)
            .unwrap_or_else(|| panic!("missing {name}"))
            .parse()
            .expect("number")
    }
    /// `X-Rate-Limit-Reset` minus `Date`, the wait Okta's SDKs compute.
    fn reset_minus_date(&self) -> i64 {
        let date = httpdate::parse_http_date(self.h("date").expect("Date")).expect("RFC 7231 date");
        let date = date.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        self.num("x-rate-limit-reset") as i64 - date
    }
}

async fn send(rb: reqwest::RequestBuilder) -> Reply {
    let resp = rb.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    Reply {
        status,
        headers,
        text,
    }
}

struct Okta {
    fake: FakeOkta,
    http: reqwest::Client,
}

impl Okta {
    async fn start() -> Okta {
        let fake = FakeOkta::start(TOKEN).await;
        seed_demo_org(&fake);
        Okta {
            fake,
            http: client(),
        }
    }
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.fake.base_url())
    }
    async fn get(&self, path: &str) -> Reply {
        send(
            self.http
                .get(self.url(path))
                .header("Authorization", format!("SSWS {TOKEN}")),
        )
        .await
    }
    async fn post(&self, path: &str) -> Reply {
        send(
            self.http
                .post(self.url(path))
                .header("Authorization", format!("SSWS {TOKEN}")),
        )
        .await
    }
    async fn delete(&self, path: &str) -> Reply {
        send(
            self.http
                .delete(self.url(path))
                .header("Authorization", format!("SSWS {TOKEN}")),
        )
        .await
    }
    async fn search(&self, expr: &str) -> Reply {
        let rb = self
            .http
            .get(self.url(&format!("/api/v1/users?{}", query("search", expr))));
        send(rb.header("Authorization", format!("SSWS {TOKEN}"))).await
    }
    fn id(&self, login: &str) -> String {
        self.fake.user(login).expect("seeded user").id
    }
}

/// `name=value`, form-encoded as clients send it (`+` as `%2B`, space as `+`).
fn query(name: &str, value: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair(name, value)
        .finish()
}

/// Sends a request exactly as written (no client-side normalisation of `..` or
/// re-encoding), over a fresh connection.
async fn raw(addr: SocketAddr, method: &str, target: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: SSWS {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn logins(users: &Value) -> Vec<String> {
    let mut v: Vec<String> = users
        .as_array()
        .expect("array")
        .iter()
        .map(|u| u["profile"]["login"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn assert_okta_error(r: &Reply, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.h("content-type"), Some("application/json"));
    let b = r.json();
    assert_eq!(b["errorCode"], code, "{b}");
    assert_eq!(b["errorLink"], code);
    assert!(b["errorSummary"].is_string());
    assert!(b["errorId"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(b["errorCauses"].is_array());
    b
}

// ---------------------------------------------------------------------------
// Okta: auth, headers, lookups
// ---------------------------------------------------------------------------

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
    // id, status, and/or, parentheses.
    let ana = o.id("ana.lima@example.com");
    let r = o.search(&format!(r#"id eq "{ana}""#)).await;
    assert_eq!(logins(&r.json()), ["ana.lima@example.com"]);
    let r = o.search(r#"status eq "suspended""#).await;
    assert_eq!(logins(&r.json()), ["omar.haddad@example.com"]);
    let r = o
        .search(r#"(profile.email eq "ana.lima@example.com" or profile.email eq "li.wei@example.com") and status eq "ACTIVE""#)
        .await;
    assert_eq!(
        logins(&r.json()),
        ["ana.lima@example.com", "li.wei@example.com"]
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

    // Malformed expressions.
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
    ] {
        let r = o.search(bad).await;
        let b = assert_okta_error(&r, 400, "E0000031");
        assert_eq!(b["errorSummary"], "Invalid search criteria.", "{bad}");
    }
}

#[tokio::test]
async fn okta_filter_list_and_paging() {
    let o = Okta::start().await;
    let send_filter = |f: &'static str| {
        let rb = o
            .http
            .get(o.url(&format!("/api/v1/users?{}", query("filter", f))));
        send(rb.header("Authorization", format!("SSWS {TOKEN}")))
    };
    // filter= is case-sensitive on values.
    assert_eq!(
        logins(
            &send_filter(r#"profile.login eq "li.wei@example.com""#)
                .await
                .json()
        ),
        ["li.wei@example.com"]
    );
    assert_eq!(
        send_filter(r#"profile.login eq "LI.WEI@example.com""#)
            .await
            .json(),
        json!([])
    );
    assert_eq!(send_filter(r#"profile.email sw "li""#).await.status, 400);

    // A plain list omits DEPROVISIONED users.
    let all = o.get("/api/v1/users").await.json();
    assert_eq!(all.as_array().unwrap().len(), demo_users().len() - 1);

    // limit and the Link header.
    let r = o.get("/api/v1/users?limit=3").await;
    assert_eq!(r.json().as_array().unwrap().len(), 3);
    let next = r
        .headers
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|l| l.contains("next"));
    let next = next.expect("a next link");
    let url = next.trim_start_matches('<').split('>').next().unwrap();
    let path = url
        .strip_prefix(&o.fake.base_url())
        .expect("absolute link to the fake");
    let r2 = o.get(path).await;
    assert_eq!(r2.json().as_array().unwrap().len(), 3);
    assert_ne!(r.json()[0]["id"], r2.json()[0]["id"]);
    assert_eq!(o.get("/api/v1/users?limit=abc").await.status, 400);
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

// ---------------------------------------------------------------------------
// Okta: rate limits and faults
// ---------------------------------------------------------------------------

#[tokio::test]
async fn okta_rate_limit_counts_down_then_429() {
    let o = Okta::start().await;
    // A long window so the test cannot straddle a reset.
    o.fake.set_rate_window(Duration::from_secs(3600));
    o.fake.set_rate_limit(3);
    for left in [2, 1, 0] {
        let r = o.get("/api/v1/users/ana.lima@example.com").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.num("x-rate-limit-limit"), 3);
        assert_eq!(r.num("x-rate-limit-remaining"), left);
    }
    let r = o
        .post("/api/v1/users/ana.lima@example.com/lifecycle/suspend")
        .await;
    let b = assert_okta_error(&r, 429, "E0000047");
    assert_eq!(
        b["errorSummary"],
        "API call exceeded rate limit due to too many requests."
    );
    assert_eq!(r.num("x-rate-limit-limit"), 3);
    assert_eq!(r.num("x-rate-limit-remaining"), 0);
    let wait = r.reset_minus_date();
    assert!((1..=3600).contains(&wait), "{wait}");
    // Not processed: no state change, not a write.
    assert_eq!(
        o.fake.user("ana.lima@example.com").unwrap().status,
        "ACTIVE"
    );
    assert!(o.fake.writes().is_empty());
    assert!(o.fake.requests().last().unwrap().rate_limited);
}

#[tokio::test]
async fn okta_rate_window_resets_at_the_announced_time() {
    let o = Okta::start().await;
    o.fake.set_rate_window(Duration::from_secs(2));
    o.fake.set_rate_limit(1);
    // Retry until two requests land in the same window.
    for _ in 0..50 {
        let r = o.get("/api/v1/users/ana.lima@example.com").await;
        if r.status == 200 && r.num("x-rate-limit-remaining") == 0 {
            let r2 = o.get("/api/v1/users/ana.lima@example.com").await;
            if r2.status == 429 {
                let reset = r2.num("x-rate-limit-reset");
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
                let wait =
                    Duration::from_secs(reset).saturating_sub(now) + Duration::from_millis(50);
                assert!(wait <= Duration::from_secs(3));
                tokio::time::sleep(wait).await;
                let r3 = o.get("/api/v1/users/ana.lima@example.com").await;
                assert_eq!(r3.status, 200);
                assert_eq!(r3.num("x-rate-limit-remaining"), 0);
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("never saw a 200 then a 429 in one window");
}

#[tokio::test]
async fn okta_per_endpoint_bucket() {
    let o = Okta::start().await;
    o.fake.set_rate_window(Duration::from_secs(3600));
    o.fake.set_rate_limit_for(Operation::Suspend, 1);
    assert_eq!(
        o.post("/api/v1/users/ana.lima@example.com/lifecycle/suspend")
            .await
            .status,
        200
    );
    let r = o
        .post("/api/v1/users/li.wei@example.com/lifecycle/suspend")
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.num("x-rate-limit-limit"), 1);
    let r = o.get("/api/v1/users/li.wei@example.com").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.num("x-rate-limit-limit"), 600);
}

#[tokio::test]
async fn okta_concurrency_429() {
    let o = Okta::start().await;
    o.fake.inject(Fault::concurrency_limited());
    let r = o.get("/api/v1/users/ana.lima@example.com").await;
    assert_okta_error(&r, 429, "E0000047");
    assert_eq!(r.num("x-rate-limit-limit"), 0);
    assert_eq!(r.num("x-rate-limit-remaining"), 0);
    assert!(r.reset_minus_date() >= 1);
    assert_eq!(
        o.get("/api/v1/users/ana.lima@example.com").await.status,
        200
    );

    // A real in-flight limit.
    o.fake.set_concurrency_limit(Some(1));
    o.fake.set_latency(Duration::from_millis(400));
    let (a, b) = tokio::join!(o.get("/api/v1/users/ana.lima@example.com"), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        o.get("/api/v1/users/li.wei@example.com").await
    });
    assert_eq!(a.status, 200);
    assert_eq!(b.status, 429);
    assert_eq!(b.num("x-rate-limit-limit"), 0);
}

#[tokio::test]
async fn okta_injected_faults() {
    let o = Okta::start().await;
    o.fake.inject(
        Fault::server_error(503)
            .for_user("ANA.LIMA@example.com")
            .on(Operation::Suspend)
            .times(2),
    );
    // Other users and operations are not affected.
    assert_eq!(
        o.get("/api/v1/users/ana.lima@example.com").await.status,
        200
    );
    assert_eq!(
        o.post("/api/v1/users/li.wei@example.com/lifecycle/suspend")
            .await
            .status,
        200
    );
    for _ in 0..2 {
        let r = o
            .post("/api/v1/users/ana.lima@example.com/lifecycle/suspend")
            .await;
        assert_okta_error(&r, 503, "E0000009");
        assert_eq!(
            o.fake.user("ana.lima@example.com").unwrap().status,
            "ACTIVE"
        );
    }
    assert_eq!(
        o.post("/api/v1/users/ana.lima@example.com/lifecycle/suspend")
            .await
            .status,
        200
    );

    // A fault for a user also hits a search whose value is the user's email, and an
    // id in the path.
    o.fake.inject(
        Fault::server_error(500)
            .for_user("jsmith@corp.example.com")
            .forever(),
    );
    assert_eq!(
        o.search(r#"profile.email eq "john.smith@example.com""#)
            .await
            .status,
        500
    );
    let id = o.id("jsmith@corp.example.com");
    assert_eq!(
        o.delete(&format!("/api/v1/users/{id}/sessions"))
            .await
            .status,
        500
    );
    assert_eq!(o.fake.user(&id).unwrap().sessions_cleared, 0);
    // And a fault keyed on an email nobody has still matches that search.
    o.fake
        .inject(Fault::server_error(504).for_user("ghost@example.com"));
    assert_eq!(
        o.search(r#"profile.email eq "ghost@example.com""#)
            .await
            .status,
        504
    );
    o.fake.clear_faults();
    assert_eq!(
        o.search(r#"profile.email eq "john.smith@example.com""#)
            .await
            .status,
        200
    );

    // A rate 429 with a chosen reset.
    o.fake.inject(Fault::rate_limited(7).on(Operation::GetUser));
    let r = o.get("/api/v1/users/li.wei@example.com").await;
    assert_okta_error(&r, 429, "E0000047");
    assert_eq!(r.reset_minus_date(), 7);
    assert_eq!(r.num("x-rate-limit-remaining"), 0);

    // 403 and a custom error.
    o.fake.inject(Fault::forbidden());
    assert_okta_error(
        &o.get("/api/v1/users/li.wei@example.com").await,
        403,
        "E0000006",
    );
    o.fake.inject(Fault::new(FaultKind::Error {
        status: 400,
        error_code: "E0000001".into(),
        error_summary: "Api validation failed".into(),
    }));
    assert_okta_error(
        &o.get("/api/v1/users/li.wei@example.com").await,
        400,
        "E0000001",
    );

    // A delay answers normally, later.
    o.fake.inject(Fault::delay(Duration::from_millis(300)));
    let t = Instant::now();
    assert_eq!(o.get("/api/v1/users/li.wei@example.com").await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let injected: Vec<_> = o
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.injected)
        .collect();
    assert_eq!(injected.len(), 8);
}

#[tokio::test]
async fn okta_latency_delays_every_answer() {
    let o = Okta::start().await;
    o.fake.set_latency(Duration::from_millis(250));
    let t = Instant::now();
    assert_eq!(
        o.get("/api/v1/users/ana.lima@example.com").await.status,
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn okta_request_journal() {
    let o = Okta::start().await;
    let id = o.id("ana.lima@example.com");
    let r1 = o.get("/api/v1/users/ana.lima%40example.com").await;
    let r2 = send(
        o.http
            .post(o.url("/api/v1/users/ana.lima@example.com/lifecycle/suspend"))
            .header("Authorization", format!("SSWS {TOKEN}"))
            .header("X-Okta-Retry-Count", "1"),
    )
    .await;
    let _ = o
        .delete(&format!("/api/v1/users/{id}/sessions?oauthTokens=true"))
        .await;
    let _ = o.get("/api/v1/users/ghost@example.com").await;

    let reqs = o.fake.requests();
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].path, "/api/v1/users/ana.lima%40example.com");
    assert_eq!(reqs[0].operation, Some(Operation::GetUser));
    assert_eq!(reqs[0].user_id.as_deref(), Some(id.as_str()));
    assert_eq!(reqs[0].status, 200);
    assert_eq!(
        reqs[0].x_okta_request_id,
        r1.h("x-okta-request-id").unwrap()
    );
    assert_eq!(reqs[0].header("authorization"), Some("SSWS [redacted]"));
    assert_eq!(reqs[1].operation, Some(Operation::Suspend));
    assert_eq!(reqs[1].header("x-okta-retry-count"), Some("1"));
    assert_eq!(
        reqs[1].x_okta_request_id,
        r2.h("x-okta-request-id").unwrap()
    );
    assert_eq!(reqs[2].query.as_deref(), Some("oauthTokens=true"));
    assert_eq!(reqs[2].query_param("oauthTokens").as_deref(), Some("true"));
    assert_eq!(reqs[2].status, 204);
    assert_eq!(reqs[3].status, 404);
    assert_eq!(reqs[3].user_id, None);

    let writes = o.fake.writes();
    assert_eq!(
        writes.iter().map(|w| w.method.as_str()).collect::<Vec<_>>(),
        ["POST", "DELETE"]
    );
    o.fake.clear_requests();
    assert!(o.fake.requests().is_empty());
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

#[tokio::test]
async fn seed_matches_the_demo_org() {
    let okta = FakeOkta::start(DEMO_OKTA_TOKEN).await;
    seed_demo_org(&okta);
    let users = okta.users();
    let got: Vec<(&str, &str, &str)> = users
        .iter()
        .map(|u| (u.login.as_str(), u.email.as_str(), u.status.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("ana.lima@example.com", "ana.lima@example.com", "ACTIVE"),
            ("li.wei@example.com", "li.wei@example.com", "ACTIVE"),
            (
                "omar.haddad@example.com",
                "omar.haddad@example.com",
                "SUSPENDED"
            ),
            ("root.admin@example.com", "root.admin@example.com", "ACTIVE"),
            (
                "jsmith@corp.example.com",
                "john.smith@example.com",
                "ACTIVE"
            ),
            ("ops1@example.com", "shared-ops@example.com", "ACTIVE"),
            ("ops2@example.com", "shared-ops@example.com", "ACTIVE"),
            (
                "former.employee@example.com",
                "former.employee@example.com",
                "DEPROVISIONED"
            ),
            ("svc.backup", "svc.backup@example.com", "ACTIVE"),
        ]
    );
    assert_eq!(
        okta.user("root.admin@example.com").unwrap().admin_roles,
        ["SUPER_ADMIN"]
    );
    assert!(
        users
            .iter()
            .filter(|u| u.login != "root.admin@example.com")
            .all(|u| u.admin_roles.is_empty())
    );
    assert!(okta.user("ghost@example.com").is_none());
    let http = client();
    let r = send(
        http.get(format!(
            "{}/api/v1/users/ghost@example.com",
            okta.base_url()
        ))
        .header("Authorization", format!("SSWS {DEMO_OKTA_TOKEN}")),
    )
    .await;
    assert_eq!(r.status, 404);
}

// ---------------------------------------------------------------------------
// Okta OAuth 2.0: private_key_jwt, DPoP, scopes, Universal Logout
// ---------------------------------------------------------------------------

/// A tiny JWS signer for the tests, with ring directly (independent of the
/// fake's verifier and of the dispatcher's code).
enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

struct TestKey {
    signer: Signer,
    jwk: Value,
}

fn fixture_key(name: &str) -> String {
    let path = format!(
        "{}/../tests/fixtures/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn new_jti() -> String {
    format!("jti-{:032x}", rand::random::<u128>())
}

/// base64url(SHA-256(token)), computed with ring (the fake uses sha2).
fn ath(token: &str) -> String {
    b64(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

impl TestKey {
    fn from_pem(pem: &str, kid: Option<&str>) -> TestKey {
        let der = okta_keys::pkcs8_der_from_pem(pem).expect("PKCS#8 PEM");
        let rng = SystemRandom::new();
        let signer = match EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng) {
            Ok(k) => Signer::Ec(k),
            Err(_) => Signer::Rsa(RsaKeyPair::from_pkcs8(&der).expect("RSA PKCS#8")),
        };
        TestKey {
            signer,
            jwk: okta_keys::public_jwk_from_pkcs8_pem(pem, kid).expect("JWK"),
        }
    }

    fn ec() -> TestKey {
        Self::from_pem(&okta_keys::generate_ec_p256_pkcs8_pem(), None)
    }

    fn alg(&self) -> &'static str {
        match self.signer {
            Signer::Ec(_) => "ES256",
            Signer::Rsa(_) => "RS256",
        }
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(serde_json::to_vec(header).unwrap()),
            b64(serde_json::to_vec(claims).unwrap())
        );
        let rng = SystemRandom::new();
        let sig = match &self.signer {
            Signer::Ec(k) => k.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
            Signer::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
        };
        format!("{input}.{}", b64(sig))
    }

    fn proof_header(&self) -> Value {
        json!({ "typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk })
    }

    /// A DPoP proof for `htm` `htu`, with a nonce and an `ath` when given.
    fn proof(&self, htm: &str, htu: &str, nonce: Option<&str>, token: Option<&str>) -> String {
        self.proof_with(htm, htu, nonce, token, |_, _| {})
    }

    fn proof_with(
        &self,
        htm: &str,
        htu: &str,
        nonce: Option<&str>,
        token: Option<&str>,
        edit: impl FnOnce(&mut Value, &mut Value),
    ) -> String {
        let mut header = self.proof_header();
        let mut claims = json!({ "htm": htm, "htu": htu, "iat": now_secs(), "jti": new_jti() });
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        if let Some(t) = token {
            claims["ath"] = json!(ath(t));
        }
        edit(&mut header, &mut claims);
        self.sign(&header, &claims)
    }
}

/// A registered service app and the test's side of it: the client key and a DPoP key.
struct Client<'a> {
    o: &'a Okta,
    client_id: String,
    key: TestKey,
    dpop: TestKey,
}

impl<'a> Client<'a> {
    fn register(o: &'a Okta, key: TestKey, scopes: &[&str], policy: DpopPolicy) -> Client<'a> {
        let client_id = OAuthApp::new_client_id();
        o.fake.register_app(
            OAuthApp::new(client_id.clone(), key.jwk.clone())
                .with_scopes(scopes.iter().copied())
                .with_dpop(policy),
        );
        Client {
            o,
            client_id,
            key,
            dpop: TestKey::ec(),
        }
    }

    fn assertion_with(&self, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
        let mut header = json!({ "alg": self.key.alg() });
        if let Some(kid) = self.key.jwk.get("kid") {
            header["kid"] = kid.clone();
        }
        let now = now_secs();
        let mut claims = json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.o.fake.token_url(),
            "iat": now,
            "exp": now + 300,
            "jti": new_jti(),
        });
        edit(&mut header, &mut claims);
        self.key.sign(&header, &claims)
    }

    fn assertion(&self) -> String {
        self.assertion_with(|_, _| {})
    }

    fn token_proof(&self, nonce: Option<&str>) -> String {
        self.dpop
            .proof("POST", &self.o.fake.token_url(), nonce, None)
    }

    async fn post_form(&self, fields: &[(&str, &str)], proof: Option<&str>) -> Reply {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            form.append_pair(k, v);
        }
        let mut rb = self
            .o
            .http
            .post(self.o.fake.token_url())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(form.finish());
        if let Some(p) = proof {
            rb = rb.header("DPoP", p);
        }
        send(rb).await
    }

    async fn request_token(&self, assertion: &str, scope: &str, proof: Option<&str>) -> Reply {
        self.post_form(
            &[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", assertion),
            ],
            proof,
        )
        .await
    }

    /// The whole DPoP dance: proof without nonce, `use_dpop_nonce`, retry with
    /// it (new assertion, new proof); the access token.
    async fn dpop_token(&self, scope: &str) -> String {
        let r = self
            .request_token(&self.assertion(), scope, Some(&self.token_proof(None)))
            .await;
        assert_oauth_error(&r, 400, "use_dpop_nonce");
        let nonce = r.h("dpop-nonce").expect("DPoP-Nonce").to_string();
        let r = self
            .request_token(
                &self.assertion(),
                scope,
                Some(&self.token_proof(Some(&nonce))),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["token_type"], "DPoP");
        r.json()["access_token"].as_str().unwrap().to_string()
    }

    /// A Bearer token (for an app without DPoP).
    async fn bearer_token(&self, scope: &str) -> String {
        let r = self.request_token(&self.assertion(), scope, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["token_type"], "Bearer");
        r.json()["access_token"].as_str().unwrap().to_string()
    }

    /// An API call with `Authorization: <auth>` and the given proof.
    async fn call_with(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        auth: &str,
        proof: Option<&str>,
    ) -> Reply {
        let mut rb = self
            .o
            .http
            .request(method, self.o.url(path_and_query))
            .header("Authorization", auth);
        if let Some(p) = proof {
            rb = rb.header("DPoP", p);
        }
        send(rb).await
    }

    /// An API call with a DPoP token and a correct fresh proof.
    async fn call(&self, method: reqwest::Method, path_and_query: &str, token: &str) -> Reply {
        let path = path_and_query.split('?').next().unwrap();
        let proof = self
            .dpop
            .proof(method.as_str(), &self.o.url(path), None, Some(token));
        self.call_with(
            method,
            path_and_query,
            &format!("DPoP {token}"),
            Some(&proof),
        )
        .await
    }
}

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const READ_MANAGE: &str = "okta.users.read okta.users.manage";

fn assert_oauth_error(r: &Reply, status: u16, error: &str) -> String {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.h("content-type"), Some("application/json"));
    assert!(r.h("x-okta-request-id").is_some());
    assert!(r.h("x-rate-limit-remaining").is_some());
    let b = r.json();
    assert_eq!(b["error"], error, "{b}");
    b["error_description"]
        .as_str()
        .expect("error_description")
        .to_string()
}

/// 401 E0000011 with a DPoP challenge naming `error`; returns the header.
fn assert_dpop_challenge(r: &Reply, error: &str) -> String {
    let b = assert_okta_error(r, 401, "E0000011");
    assert_eq!(b["errorSummary"], "Invalid token provided");
    let www = r
        .h("www-authenticate")
        .expect("WWW-Authenticate")
        .to_string();
    assert!(www.starts_with(r#"DPoP algs="RS256 ES256""#), "{www}");
    assert!(www.contains(&format!(r#"error="{error}""#)), "{www}");
    assert!(www.contains("error_description=\""), "{www}");
    www
}

#[tokio::test]
async fn okta_oauth_dpop_required_happy_path() {
    let o = Okta::start().await;
    let app = Client::register(
        &o,
        TestKey::from_pem(&fixture_key("ec-p256.pem"), Some("k1")),
        &["okta.users.read", "okta.users.manage", "okta.roles.read"],
        DpopPolicy::Required,
    );

    // No proof at all.
    let r = app.request_token(&app.assertion(), READ_MANAGE, None).await;
    let d = assert_oauth_error(&r, 400, "invalid_dpop_proof");
    assert_eq!(d, "The DPoP proof JWT header is missing.");

    // A proof without the nonce: the handshake.
    let r = app
        .request_token(&app.assertion(), READ_MANAGE, Some(&app.token_proof(None)))
        .await;
    let d = assert_oauth_error(&r, 400, "use_dpop_nonce");
    assert_eq!(d, "Authorization server requires nonce in DPoP proof.");
    let nonce = r.h("dpop-nonce").expect("DPoP-Nonce").to_string();
    assert_eq!(nonce, o.fake.dpop_nonce());

    // With it: a DPoP token.
    let r = app
        .request_token(
            &app.assertion(),
            READ_MANAGE,
            Some(&app.token_proof(Some(&nonce))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.h("cache-control"), Some("no-cache, no-store"));
    assert!(r.h("x-okta-request-id").is_some());
    assert!(r.h("x-rate-limit-limit").is_some());
    let b = r.json();
    assert_eq!(b["token_type"], "DPoP");
    assert_eq!(b["expires_in"], 3600);
    assert_eq!(b["scope"], READ_MANAGE);
    let token = b["access_token"].as_str().unwrap().to_string();
    assert!(token.len() >= 32);

    let issued = o.fake.tokens_issued();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].client_id, app.client_id);
    assert_eq!(issued[0].token_type, TokenType::DPoP);
    assert_eq!(issued[0].scopes, ["okta.users.read", "okta.users.manage"]);
    assert_eq!(
        issued[0].jkt.as_deref(),
        Some(okta_keys::jwk_thumbprint(&app.dpop.jwk).unwrap().as_str())
    );

    // API calls with the token and a proof each.
    let id = o.id("ana.lima@example.com");
    let r = app
        .call(reqwest::Method::GET, &format!("/api/v1/users/{id}"), &token)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["profile"]["login"], "ana.lima@example.com");
    let r = app
        .call(
            reqwest::Method::GET,
            &format!(
                "/api/v1/users?{}",
                query("search", r#"profile.email eq "li.wei@example.com""#)
            ),
            &token,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(logins(&r.json()), ["li.wei@example.com"]);
    let r = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/users/{id}/lifecycle/suspend"),
            &token,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/users/{id}/sessions?oauthTokens=true"),
            &token,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let ana = o.fake.user(&id).unwrap();
    assert_eq!(ana.status, "SUSPENDED");
    assert_eq!(ana.sessions_cleared, 1);

    // What the fake recorded.
    let trs = o.fake.token_requests();
    assert_eq!(trs.len(), 3);
    assert_eq!(
        trs.iter().map(|t| t.error.as_deref()).collect::<Vec<_>>(),
        [Some("invalid_dpop_proof"), Some("use_dpop_nonce"), None]
    );
    assert_eq!(
        trs.iter()
            .map(|t| (t.dpop_proof, t.dpop_nonce))
            .collect::<Vec<_>>(),
        [(false, false), (true, false), (true, true)]
    );
    assert!(
        trs.iter()
            .all(|t| t.client_id.as_deref() == Some(app.client_id.as_str()))
    );
    assert_eq!(trs[2].token_type, Some(TokenType::DPoP));
    assert_eq!(trs[2].scopes, ["okta.users.read", "okta.users.manage"]);
    assert_eq!(trs[2].assertion_alg.as_deref(), Some("ES256"));
    assert_eq!(o.fake.used_assertion_jtis().len(), 3);
    let reqs = o.fake.requests();
    assert_eq!(reqs[trs[2].seq as usize].operation, Some(Operation::Token));
    let call = reqs
        .iter()
        .find(|r| r.operation == Some(Operation::Suspend))
        .unwrap();
    assert_eq!(call.header("authorization"), Some("DPoP [redacted]"));
    assert_eq!(call.header("dpop"), Some("[redacted]"));
    // Token requests are not writes to the org.
    assert_eq!(
        o.fake
            .writes()
            .iter()
            .map(|w| w.operation)
            .collect::<Vec<_>>(),
        [Some(Operation::Suspend), Some(Operation::ClearSessions)]
    );
}

#[tokio::test]
async fn okta_oauth_assertion_jti_is_consumed_on_every_request() {
    let o = Okta::start().await;
    let app = Client::register(
        &o,
        TestKey::from_pem(&fixture_key("rsa-2048.pem"), Some("rsa1")),
        DISPATCHER_SCOPES,
        DpopPolicy::Required,
    );
    let already = "The client_assertion token has already been used.";

    // Used by a request answered use_dpop_nonce: gone.
    let assertion = app.assertion();
    let r = app
        .request_token(&assertion, READ_MANAGE, Some(&app.token_proof(None)))
        .await;
    assert_oauth_error(&r, 400, "use_dpop_nonce");
    let nonce = r.h("dpop-nonce").unwrap().to_string();
    let r = app
        .request_token(
            &assertion,
            READ_MANAGE,
            Some(&app.token_proof(Some(&nonce))),
        )
        .await;
    assert_eq!(assert_oauth_error(&r, 401, "invalid_client"), already);

    // Used by a request refused for its scope, or for a missing proof: gone too.
    let assertion = app.assertion();
    let r = app
        .request_token(
            &assertion,
            "okta.apps.manage",
            Some(&app.token_proof(Some(&nonce))),
        )
        .await;
    assert_oauth_error(&r, 400, "invalid_scope");
    let r = app
        .request_token(
            &assertion,
            READ_MANAGE,
            Some(&app.token_proof(Some(&nonce))),
        )
        .await;
    assert_eq!(assert_oauth_error(&r, 401, "invalid_client"), already);

    // Used by a successful request: gone.
    let assertion = app.assertion();
    let r = app
        .request_token(
            &assertion,
            READ_MANAGE,
            Some(&app.token_proof(Some(&nonce))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .request_token(
            &assertion,
            READ_MANAGE,
            Some(&app.token_proof(Some(&nonce))),
        )
        .await;
    assert_eq!(assert_oauth_error(&r, 401, "invalid_client"), already);

    // A reused proof is refused as well.
    let proof = app.token_proof(Some(&nonce));
    let r = app
        .request_token(&app.assertion(), READ_MANAGE, Some(&proof))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .request_token(&app.assertion(), READ_MANAGE, Some(&proof))
        .await;
    let d = assert_oauth_error(&r, 400, "invalid_dpop_proof");
    assert!(d.contains("'jti' has already been used"), "{d}");
    assert_eq!(o.fake.used_assertion_jtis().len(), 5);
}

#[tokio::test]
async fn okta_oauth_bad_assertions_are_invalid_client() {
    let o = Okta::start().await;
    let app = Client::register(
        &o,
        TestKey::from_pem(&fixture_key("ec-p256.pem"), Some("k1")),
        DISPATCHER_SCOPES,
        DpopPolicy::NotUsedIgnoresProof,
    );
    let other_key = TestKey::ec();
    let token_url = o.fake.token_url();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong aud",
            app.assertion_with(|_, c| {
                c["aud"] = json!(format!("{}/oauth2/default/v1/token", o.fake.base_url()))
            }),
            "The audience claim for client_assertion must be the endpoint invoked for the request.",
        ),
        (
            "aud with a trailing slash",
            app.assertion_with(|_, c| c["aud"] = json!(format!("{token_url}/"))),
            "The audience claim for client_assertion must be the endpoint invoked for the request.",
        ),
        (
            "expired",
            app.assertion_with(|_, c| c["exp"] = json!(now_secs() - 10)),
            "The client_assertion token is expired.",
        ),
        (
            "exp too far ahead",
            app.assertion_with(|_, c| c["exp"] = json!(now_secs() + 3700)),
            "The client_assertion token has an expiration too far in the future.",
        ),
        (
            "no exp",
            app.assertion_with(|_, c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            "The client_assertion token is missing the 'exp' claim.",
        ),
        (
            "no iat",
            app.assertion_with(|_, c| {
                c.as_object_mut().unwrap().remove("iat");
            }),
            "The client_assertion token is missing the 'iat' claim.",
        ),
        (
            "no jti",
            app.assertion_with(|_, c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            "The client_assertion token is missing the 'jti' claim.",
        ),
        (
            "signed by another key",
            other_key.sign(
                &json!({ "alg": "ES256", "kid": "k1" }),
                &json!({ "iss": app.client_id, "sub": app.client_id, "aud": token_url,
                         "iat": now_secs(), "exp": now_secs() + 60, "jti": new_jti() }),
            ),
            "The client_assertion token signature is invalid.",
        ),
        (
            "alg RS256 for an EC key",
            app.assertion_with(|h, _| h["alg"] = json!("RS256")),
            "The client_assertion token signature is invalid.",
        ),
        (
            "alg ES384",
            app.assertion_with(|h, _| h["alg"] = json!("ES384")),
            "The client_assertion token has an unsupported signature algorithm: use RS256 or ES256.",
        ),
        (
            "alg HS256",
            app.assertion_with(|h, _| h["alg"] = json!("HS256")),
            "The client_assertion token has an unsupported signature algorithm: use RS256 or ES256.",
        ),
        (
            "another kid",
            app.assertion_with(|h, _| h["kid"] = json!("k2")),
            "The client_assertion token's 'kid' is not a key of this client.",
        ),
        (
            "iss is not the client",
            app.assertion_with(|_, c| c["iss"] = json!("someone-else")),
            "The 'iss' and 'sub' claims of the client_assertion token must both be the client id.",
        ),
        (
            "unknown client",
            app.assertion_with(|_, c| {
                c["iss"] = json!("0oaunknown");
                c["sub"] = json!("0oaunknown");
            }),
            "Invalid value for 'client_id' parameter.",
        ),
        (
            "not a JWT",
            "not.a.jwt".to_string(),
            "The client_assertion token is malformed.",
        ),
    ];
    for (what, assertion, want) in &cases {
        let r = app.request_token(assertion, READ_MANAGE, None).await;
        let d = assert_oauth_error(&r, 401, "invalid_client");
        assert_eq!(d, *want, "{what}");
    }
    // Without a kid in the header, the single key is used.
    let r = app
        .request_token(
            &app.assertion_with(|h, _| {
                h.as_object_mut().unwrap().remove("kid");
            }),
            READ_MANAGE,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(o.fake.tokens_issued().len() == 1);
}

#[tokio::test]
async fn okta_oauth_token_request_form_errors() {
    let o = Okta::start().await;
    let app = Client::register(
        &o,
        TestKey::ec(),
        DISPATCHER_SCOPES,
        DpopPolicy::NotUsedIgnoresProof,
    );
    let a = app.assertion();
    let r = app
        .post_form(
            &[
                ("scope", READ_MANAGE),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &a),
            ],
            None,
        )
        .await;
    assert_eq!(
        assert_oauth_error(&r, 400, "invalid_request"),
        "The 'grant_type' parameter is missing."
    );
    let r = app
        .post_form(
            &[
                ("grant_type", "password"),
                ("scope", READ_MANAGE),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &a),
            ],
            None,
        )
        .await;
    assert_oauth_error(&r, 400, "unsupported_grant_type");
    let r = app
        .post_form(
            &[("grant_type", "client_credentials"), ("scope", READ_MANAGE)],
            None,
        )
        .await;
    assert_eq!(
        assert_oauth_error(&r, 401, "invalid_client"),
        "Client authentication failed. Either the client or the client credentials are invalid."
    );
    let r = app
        .post_form(
            &[
                ("grant_type", "client_credentials"),
                ("scope", READ_MANAGE),
                ("client_assertion_type", "jwt"),
                ("client_assertion", &a),
            ],
            None,
        )
        .await;
    assert_oauth_error(&r, 400, "invalid_request");
    let r = app
        .post_form(
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
            None,
        )
        .await;
    assert_eq!(
        assert_oauth_error(&r, 400, "invalid_request"),
        "The 'grant_type' parameter is repeated."
    );
    // JSON is not accepted; nor is GET.
    let r = send(
        o.http
            .post(o.fake.token_url())
            .header("Content-Type", "application/json")
            .body(json!({ "grant_type": "client_credentials" }).to_string()),
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_request");
    let r = send(o.http.get(o.fake.token_url())).await;
    assert_oauth_error(&r, 405, "invalid_request");
    assert_eq!(r.h("allow"), Some("POST"));
    // None of these issued anything, and the assertion was never parsed.
    assert!(o.fake.tokens_issued().is_empty());
    assert!(o.fake.used_assertion_jtis().is_empty());
    assert_eq!(o.fake.token_requests().len(), 7);
    assert!(o.fake.writes().is_empty());
}

#[tokio::test]
async fn okta_oauth_invalid_scope() {
    let o = Okta::start().await;
    let app = Client::register(
        &o,
        TestKey::ec(),
        &["okta.users.read"],
        DpopPolicy::NotUsedIgnoresProof,
    );
    let r = app
        .request_token(
            &app.assertion(),
            "okta.users.read okta.users.manage okta.groups.manage",
            None,
        )
        .await;
    assert_eq!(
        assert_oauth_error(&r, 400, "invalid_scope"),
        "The following scopes are not allowed: okta.users.manage okta.groups.manage"
    );
    let r = app.request_token(&app.assertion(), "", None).await;
    assert_oauth_error(&r, 400, "invalid_scope");
    // Exactly the granted ones: fine (and repeated scopes count once).
    let r = app
        .request_token(&app.assertion(), "okta.users.read okta.users.read", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["scope"], "okta.users.read");
}

#[tokio::test]
async fn okta_oauth_apps_without_dpop_get_bearer_tokens() {
    let o = Okta::start().await;
    let id = o.id("ana.lima@example.com");
    let path = format!("/api/v1/users/{id}");

    // Ignores a proof (RSA client key).
    let ignores = Client::register(
        &o,
        TestKey::from_pem(&fixture_key("rsa-2048.pem"), None),
        DISPATCHER_SCOPES,
        DpopPolicy::NotUsedIgnoresProof,
    );
    let r = ignores
        .request_token(
            &ignores.assertion(),
            READ_MANAGE,
            Some(&ignores.token_proof(None)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["token_type"], "Bearer");
    let token = ignores.bearer_token(READ_MANAGE).await;
    let r = ignores
        .call_with(
            reqwest::Method::GET,
            &path,
            &format!("Bearer {token}"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A Bearer token is not a DPoP token.
    let proof = ignores.dpop.proof("GET", &o.url(&path), None, Some(&token));
    let r = ignores
        .call_with(
            reqwest::Method::GET,
            &path,
            &format!("DPoP {token}"),
            Some(&proof),
        )
        .await;
    assert_okta_error(&r, 401, "E0000011");
    assert!(
        o.fake
            .tokens_issued()
            .iter()
            .all(|t| t.token_type == TokenType::Bearer && t.jkt.is_none())
    );

    // Refuses a proof (EC client key).
    let refuses = Client::register(
        &o,
        TestKey::ec(),
        DISPATCHER_SCOPES,
        DpopPolicy::NotUsedRefusesProof,
    );
    let r = refuses
        .request_token(
            &refuses.assertion(),
            READ_MANAGE,
            Some(&refuses.token_proof(None)),
        )
        .await;
    assert_eq!(
        assert_oauth_error(&r, 400, "invalid_dpop_proof"),
        "DPoP proof not expected for this client"
    );
    let token = refuses.bearer_token(READ_MANAGE).await;
    let r = refuses
        .call_with(
            reqwest::Method::GET,
            &path,
            &format!("Bearer {token}"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // SSWS still works next to them.
    assert_eq!(o.get(&path).await.status, 200);
    assert_eq!(o.fake.apps().len(), 2);
}

#[tokio::test]
async fn okta_oauth_scopes_per_call() {
    let o = Okta::start().await;
    let id = o.id("ana.lima@example.com");
    let app = Client::register(&o, TestKey::ec(), DISPATCHER_SCOPES, DpopPolicy::Required);
    let read_only = app.dpop_token("okta.users.read").await;
    use reqwest::Method as M;

    let r = app
        .call(M::GET, &format!("/api/v1/users/{id}"), &read_only)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let denied = [
        (M::GET, format!("/api/v1/users/{id}/roles")),
        (M::POST, format!("/api/v1/users/{id}/lifecycle/suspend")),
        (M::POST, format!("/api/v1/users/{id}/lifecycle/unsuspend")),
        (M::DELETE, format!("/api/v1/users/{id}/sessions")),
    ];
    for (m, path) in &denied {
        let r = app.call(m.clone(), path, &read_only).await;
        let b = assert_okta_error(&r, 403, "E0000006");
        assert_eq!(
            b["errorSummary"],
            "You do not have permission to perform the requested action"
        );
        let www = r.h("www-authenticate").expect("WWW-Authenticate");
        assert!(www.starts_with("Bearer "), "{www}");
        assert!(www.contains(r#"error="insufficient_scope""#), "{www}");
        assert!(
            www.contains(r#"error_description="The access token provided does not contain the required scopes.""#),
            "{www}"
        );
    }
    let r = send(
        o.http
            .post(o.url("/oauth2/v1/global-token-revocation"))
            .header("Authorization", format!("DPoP {read_only}"))
            .header(
                "DPoP",
                app.dpop.proof(
                    "POST",
                    &o.url("/oauth2/v1/global-token-revocation"),
                    None,
                    Some(&read_only),
                ),
            )
            .json(&json!({ "sub_id": { "format": "opaque", "id": id } })),
    )
    .await;
    assert_okta_error(&r, 403, "E0000006");
    assert_eq!(o.fake.user(&id).unwrap().status, "ACTIVE");
    assert_eq!(o.fake.user(&id).unwrap().universal_logouts, 0);

    // manage includes read; roles.read lists roles.
    let manage = app.dpop_token("okta.users.manage okta.roles.read").await;
    let r = app
        .call(M::GET, &format!("/api/v1/users/{id}"), &manage)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .call(M::GET, &format!("/api/v1/users/{id}/roles"), &manage)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .call(
            M::POST,
            &format!("/api/v1/users/{id}/lifecycle/suspend"),
            &manage,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // SSWS is not limited by scopes.
    assert_eq!(
        o.post(&format!("/api/v1/users/{id}/lifecycle/unsuspend"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn okta_oauth_resource_proof_checks() {
    let o = Okta::start().await;
    let id = o.id("ana.lima@example.com");
    let app = Client::register(&o, TestKey::ec(), DISPATCHER_SCOPES, DpopPolicy::Required);
    let token = app.dpop_token(READ_MANAGE).await;
    let path = format!("/api/v1/users/{id}");
    let url = o.url(&path);
    let auth = format!("DPoP {token}");
    let stranger = TestKey::ec();
    let port = o.fake.addr().port();
    use reqwest::Method as M;

    let cases: Vec<(&str, M, Option<String>, &str)> = vec![
        (
            "no proof",
            M::GET,
            None,
            "The DPoP proof JWT header is missing.",
        ),
        (
            "htu with the query",
            M::GET,
            Some(
                app.dpop
                    .proof("GET", &format!("{url}?x=1"), None, Some(&token)),
            ),
            "'htu' claim does not match",
        ),
        (
            "htu with another host name",
            M::GET,
            Some(app.dpop.proof(
                "GET",
                &format!("http://localhost:{port}{path}"),
                None,
                Some(&token),
            )),
            "'htu' claim does not match",
        ),
        (
            "htu of another path",
            M::GET,
            Some(
                app.dpop
                    .proof("GET", &o.url("/api/v1/users"), None, Some(&token)),
            ),
            "'htu' claim does not match",
        ),
        (
            "htm of another method",
            M::GET,
            Some(app.dpop.proof("POST", &url, None, Some(&token))),
            "'htm' claim does not match",
        ),
        (
            "no ath",
            M::GET,
            Some(app.dpop.proof("GET", &url, None, None)),
            "'ath' claim does not match",
        ),
        (
            "ath of another token",
            M::GET,
            Some(app.dpop.proof("GET", &url, None, Some("another-token"))),
            "'ath' claim does not match",
        ),
        (
            "another key than the token's",
            M::GET,
            Some(stranger.proof("GET", &url, None, Some(&token))),
            "not the key the access token is bound to",
        ),
        (
            "stale iat",
            M::GET,
            Some(
                app.dpop
                    .proof_with("GET", &url, None, Some(&token), |_, c| {
                        c["iat"] = json!(now_secs() - 3600)
                    }),
            ),
            "'iat' claim is too far",
        ),
        (
            "typ jwt",
            M::GET,
            Some(
                app.dpop
                    .proof_with("GET", &url, None, Some(&token), |h, _| {
                        h["typ"] = json!("JWT")
                    }),
            ),
            "'typ' header must be 'dpop+jwt'",
        ),
        (
            "a private key in the jwk",
            M::GET,
            Some(
                app.dpop
                    .proof_with("GET", &url, None, Some(&token), |h, _| {
                        h["jwk"]["d"] = json!("AAAA")
                    }),
            ),
            "'jwk' header is not a public",
        ),
        (
            "tampered signature",
            M::GET,
            Some({
                let p = app.dpop.proof("GET", &url, None, Some(&token));
                let (rest, _) = p.rsplit_once('.').unwrap();
                format!("{rest}.{}", b64([7u8; 64]))
            }),
            "signature is invalid",
        ),
    ];
    for (what, m, proof, want) in &cases {
        let r = app
            .call_with(m.clone(), &path, &auth, proof.as_deref())
            .await;
        let www = assert_dpop_challenge(&r, "invalid_dpop_proof");
        assert!(www.contains(want), "{what}: {www}");
    }

    // A proof is good once.
    let proof = app.dpop.proof("GET", &url, None, Some(&token));
    let r = app.call_with(M::GET, &path, &auth, Some(&proof)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.call_with(M::GET, &path, &auth, Some(&proof)).await;
    let www = assert_dpop_challenge(&r, "invalid_dpop_proof");
    assert!(www.contains("'jti' has already been used"), "{www}");

    // The DPoP token as a Bearer token.
    let r = app
        .call_with(M::GET, &path, &format!("Bearer {token}"), None)
        .await;
    assert_dpop_challenge(&r, "invalid_token");

    // The query is not part of htu, and the encoded path is compared as sent.
    let search = format!(
        "/api/v1/users?{}",
        query("search", r#"profile.login eq "ana.lima@example.com""#)
    );
    let r = app.call(M::GET, &search, &token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .call(M::GET, "/api/v1/users/ana.lima%40example.com", &token)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // No state changed by the refused calls, nor counted in the bucket.
    assert!(o.fake.writes().is_empty());
}

#[tokio::test]
async fn okta_oauth_expired_and_unknown_tokens() {
    let o = Okta::start().await;
    let id = o.id("ana.lima@example.com");
    let path = format!("/api/v1/users/{id}");
    let app = Client::register(&o, TestKey::ec(), DISPATCHER_SCOPES, DpopPolicy::Required);
    let bearer_app = Client::register(
        &o,
        TestKey::ec(),
        DISPATCHER_SCOPES,
        DpopPolicy::NotUsedIgnoresProof,
    );
    let token = app.dpop_token(READ_MANAGE).await;
    let bearer = bearer_app.bearer_token(READ_MANAGE).await;
    assert_eq!(
        app.call(reqwest::Method::GET, &path, &token).await.status,
        200
    );

    o.fake.expire_all_tokens();
    let r = app.call(reqwest::Method::GET, &path, &token).await;
    assert_dpop_challenge(&r, "invalid_token");
    let r = bearer_app
        .call_with(
            reqwest::Method::GET,
            &path,
            &format!("Bearer {bearer}"),
            None,
        )
        .await;
    let b = assert_okta_error(&r, 401, "E0000011");
    assert_eq!(b["errorSummary"], "Invalid token provided");
    assert!(
        r.h("www-authenticate")
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    let r = bearer_app
        .call_with(reqwest::Method::GET, &path, "Bearer not-a-token", None)
        .await;
    assert_okta_error(&r, 401, "E0000011");

    // A new token works; a short lifetime shows in expires_in and runs out.
    o.fake.set_token_lifetime(Duration::from_secs(2));
    let issued = Instant::now();
    let r = bearer_app
        .request_token(&bearer_app.assertion(), READ_MANAGE, None)
        .await;
    assert_eq!(r.json()["expires_in"], 2);
    let short = r.json()["access_token"].as_str().unwrap().to_string();
    let auth = format!("Bearer {short}");
    assert_eq!(
        bearer_app
            .call_with(reqwest::Method::GET, &path, &auth, None)
            .await
            .status,
        200
    );
    tokio::time::sleep_until((issued + Duration::from_millis(2100)).into()).await;
    let r = bearer_app
        .call_with(reqwest::Method::GET, &path, &auth, None)
        .await;
    assert_okta_error(&r, 401, "E0000011");
}

#[tokio::test]
async fn okta_oauth_nonce_rotation_and_resource_nonce() {
    let o = Okta::start().await;
    let id = o.id("ana.lima@example.com");
    let path = format!("/api/v1/users/{id}");
    let app = Client::register(&o, TestKey::ec(), DISPATCHER_SCOPES, DpopPolicy::Required);
    let first = o.fake.dpop_nonce();
    let second = o.fake.rotate_dpop_nonce();
    assert_ne!(first, second);
    assert_eq!(o.fake.dpop_nonce(), second);
    // The previous nonce is still good ...
    let r = app
        .request_token(
            &app.assertion(),
            READ_MANAGE,
            Some(&app.token_proof(Some(&first))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // ... the one before it no longer: a new nonce is announced.
    let third = o.fake.rotate_dpop_nonce();
    let r = app
        .request_token(
            &app.assertion(),
            READ_MANAGE,
            Some(&app.token_proof(Some(&first))),
        )
        .await;
    assert_oauth_error(&r, 400, "use_dpop_nonce");
    assert_eq!(r.h("dpop-nonce"), Some(third.as_str()));
    let r = app
        .request_token(
            &app.assertion(),
            READ_MANAGE,
            Some(&app.token_proof(Some("made-up"))),
        )
        .await;
    assert_oauth_error(&r, 400, "use_dpop_nonce");

    // Resource requests need no nonce, unless asked for.
    let token = app.dpop_token(READ_MANAGE).await;
    assert_eq!(
        app.call(reqwest::Method::GET, &path, &token).await.status,
        200
    );
    o.fake.require_resource_nonce(true);
    let r = app.call(reqwest::Method::GET, &path, &token).await;
    let www = assert_dpop_challenge(&r, "use_dpop_nonce");
    assert!(
        www.contains("Resource server requires nonce in DPoP proof."),
        "{www}"
    );
    let nonce = r.h("dpop-nonce").expect("DPoP-Nonce").to_string();
    assert_eq!(nonce, third);
    let proof = app
        .dpop
        .proof("GET", &o.url(&path), Some(&nonce), Some(&token));
    let r = app
        .call_with(
            reqwest::Method::GET,
            &path,
            &format!("DPoP {token}"),
            Some(&proof),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn okta_global_token_revocation() {
    let o = Okta::start().await;
    let id = o.id("ana.lima@example.com");
    let url = o.url("/oauth2/v1/global-token-revocation");
    let body = json!({ "sub_id": { "format": "opaque", "id": id } });
    let revoke = |auth: String, body: Value| {
        send(o.http.post(&url).header("Authorization", auth).json(&body))
    };

    // SSWS works.
    let r = revoke(format!("SSWS {TOKEN}"), body.clone()).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    assert!(r.h("x-okta-request-id").is_some());
    assert!(r.h("x-rate-limit-remaining").is_some());
    assert_eq!(o.fake.user(&id).unwrap().universal_logouts, 1);

    // A Bearer token with okta.universalLogout.manage works.
    let app = Client::register(
        &o,
        TestKey::ec(),
        DISPATCHER_SCOPES,
        DpopPolicy::NotUsedIgnoresProof,
    );
    let token = app.bearer_token("okta.universalLogout.manage").await;
    let r = revoke(format!("Bearer {token}"), body.clone()).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(o.fake.user(&id).unwrap().universal_logouts, 2);

    // A DPoP token too.
    let dpop_app = Client::register(&o, TestKey::ec(), DISPATCHER_SCOPES, DpopPolicy::Required);
    let dpop_token = dpop_app.dpop_token("okta.universalLogout.manage").await;
    let proof = dpop_app.dpop.proof("POST", &url, None, Some(&dpop_token));
    let r = send(
        o.http
            .post(&url)
            .header("Authorization", format!("DPoP {dpop_token}"))
            .header("DPoP", proof)
            .json(&body),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(o.fake.user(&id).unwrap().universal_logouts, 3);

    // Malformed bodies, an unknown user.
    for bad in [
        json!({}),
        json!({ "sub_id": { "format": "email", "email": "ana.lima@example.com" } }),
        json!({ "sub_id": { "format": "opaque" } }),
        json!("nope"),
    ] {
        let r = revoke(format!("SSWS {TOKEN}"), bad.clone()).await;
        assert_okta_error(&r, 400, "E0000001");
    }
    let r = send(
        o.http
            .post(&url)
            .header("Authorization", format!("SSWS {TOKEN}"))
            .body("{not json"),
    )
    .await;
    assert_okta_error(&r, 400, "E0000001");
    let r = revoke(
        format!("SSWS {TOKEN}"),
        json!({ "sub_id": { "format": "opaque", "id": "00unobody" } }),
    )
    .await;
    assert_okta_error(&r, 404, "E0000007");
    let r = send(
        o.http
            .get(&url)
            .header("Authorization", format!("SSWS {TOKEN}")),
    )
    .await;
    assert_okta_error(&r, 405, "E0000022");
    let r = revoke("SSWS wrong".to_string(), body.clone()).await;
    assert_okta_error(&r, 401, "E0000011");

    // Faults apply to it like to any operation.
    o.fake
        .inject(Fault::server_error(503).on(Operation::GlobalTokenRevocation));
    let r = revoke(format!("SSWS {TOKEN}"), body.clone()).await;
    assert_okta_error(&r, 503, "E0000009");
    o.fake.inject(
        Fault::rate_limited(5)
            .on(Operation::GlobalTokenRevocation)
            .for_user(&id),
    );
    let r = revoke(format!("SSWS {TOKEN}"), body.clone()).await;
    assert_okta_error(&r, 429, "E0000047");

    // Not licensed: 403, nothing recorded on the user.
    o.fake.set_universal_logout_licensed(false);
    let r = revoke(format!("SSWS {TOKEN}"), body.clone()).await;
    let b = assert_okta_error(&r, 403, "E0000006");
    assert!(
        b["errorSummary"].as_str().unwrap().contains("not enabled"),
        "{b}"
    );
    assert_eq!(o.fake.user(&id).unwrap().universal_logouts, 3);

    // Revocations are writes; the journal names the user.
    let reqs = o.fake.requests();
    let revocations: Vec<_> = reqs
        .iter()
        .filter(|r| r.operation == Some(Operation::GlobalTokenRevocation))
        .collect();
    assert!(
        revocations
            .iter()
            .filter(|r| r.status == 204)
            .all(|r| r.user_id.as_deref() == Some(id.as_str()))
    );
    assert!(
        o.fake
            .writes()
            .iter()
            .any(|w| w.operation == Some(Operation::GlobalTokenRevocation))
    );
}

#[tokio::test]
async fn okta_token_endpoint_faults_and_its_own_bucket() {
    let o = Okta::start().await;
    let app = Client::register(
        &o,
        TestKey::ec(),
        DISPATCHER_SCOPES,
        DpopPolicy::NotUsedIgnoresProof,
    );
    o.fake.inject(Fault::server_error(503).on(Operation::Token));
    let r = app.request_token(&app.assertion(), READ_MANAGE, None).await;
    assert_okta_error(&r, 503, "E0000009");
    assert!(r.h("x-rate-limit-limit").is_some());
    let trs = o.fake.token_requests();
    assert_eq!(trs.len(), 1);
    assert!(trs[0].injected);
    assert_eq!(trs[0].status, 503);
    // A faulted request was not processed: its jti is still unused.
    assert!(o.fake.used_assertion_jtis().is_empty());

    // The shared bucket does not cover the token endpoint ...
    o.fake.set_rate_limit(1);
    app.bearer_token(READ_MANAGE).await;
    app.bearer_token(READ_MANAGE).await;
    // ... its own does.
    o.fake.set_rate_limit_for(Operation::Token, 3);
    let r = app.request_token(&app.assertion(), READ_MANAGE, None).await;
    assert_okta_error(&r, 429, "E0000047");
    assert_eq!(r.num("x-rate-limit-remaining"), 0);
    let last = o.fake.token_requests().pop().unwrap();
    assert!(last.rate_limited);
    o.fake.clear_requests();
    assert!(o.fake.token_requests().is_empty());
}

#[test]
fn okta_keys_make_jwks_from_the_fixture_keys() {
    let rsa =
        okta_keys::public_jwk_from_pkcs8_pem(&fixture_key("rsa-2048.pem"), Some("r1")).unwrap();
    assert_eq!(rsa["kty"], "RSA");
    assert_eq!(rsa["e"], "AQAB");
    assert_eq!(rsa["kid"], "r1");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(rsa["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );
    assert_eq!(rsa.as_object().unwrap().len(), 4);
    let ec = okta_keys::public_jwk_from_pkcs8_pem(&fixture_key("ec-p256.pem"), None).unwrap();
    assert_eq!(ec["kty"], "EC");
    assert_eq!(ec["crv"], "P-256");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(ec["x"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(ec["y"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert_eq!(ec.as_object().unwrap().len(), 4);
    assert_eq!(okta_keys::jwk_thumbprint(&ec).unwrap().len(), 43);

    for (file, want) in [
        ("rsa-2048-pkcs1.pem", "not a PKCS#8 private key"),
        ("rsa-1024.pem", "RSA shorter than 2048 bits"),
        ("ec-p384.pem", "EC P-384"),
        ("ed25519.pem", "Ed25519"),
    ] {
        let pem = fixture_key(file);
        let err = format!(
            "{:#}",
            okta_keys::public_jwk_from_pkcs8_pem(&pem, None).unwrap_err()
        );
        assert!(err.contains(want), "{file}: {err}");
        // Errors carry no key material.
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!err.contains(line), "{file}: {err}");
        }
    }
}

#[tokio::test]
async fn demo_oauth_app_secret_gets_a_token_from_the_fake() {
    let okta = FakeOkta::start(DEMO_OKTA_TOKEN).await;
    seed_demo_org(&okta);
    let app = register_demo_app(&okta).unwrap();
    assert!(!format!("{app:?}").contains("PRIVATE KEY"));

    // The secret the dispatcher reads.
    let secret: Value = serde_json::from_str(&app.secret_json()).unwrap();
    let mut keys: Vec<&str> = secret
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["clientId", "keyId", "privateKey"]);
    assert_eq!(secret["keyId"], DEMO_OAUTH_KEY_ID);
    assert_eq!(secret["keyId"], "local-demo");
    let client_id = secret["clientId"].as_str().unwrap();
    assert!(
        client_id.starts_with("0oa") && client_id.len() == 20,
        "{client_id}"
    );
    let pem = secret["privateKey"].as_str().unwrap();
    assert!(
        pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "PKCS#8 PEM"
    );
    assert_eq!(
        okta.apps(),
        [OAuthApp::new(
            client_id,
            okta_keys::public_jwk_from_pkcs8_pem(pem, Some("local-demo")).unwrap()
        )
        .with_scopes([
            "okta.users.read",
            "okta.users.manage",
            "okta.roles.read",
            "okta.universalLogout.manage"
        ])
        .with_dpop(DpopPolicy::Required)]
    );

    // Signing with the key from the secret gets a DPoP token the API takes.
    let o = Okta {
        fake: okta.clone(),
        http: client(),
    };
    let c = Client {
        o: &o,
        client_id: client_id.to_string(),
        key: TestKey::from_pem(pem, Some("local-demo")),
        dpop: TestKey::ec(),
    };
    let token = c
        .dpop_token("okta.users.read okta.users.manage okta.roles.read okta.universalLogout.manage")
        .await;
    let root = o.id("root.admin@example.com");
    let r = c
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/users/{root}/roles"),
            &token,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()[0]["type"], "SUPER_ADMIN");
}

// ---------------------------------------------------------------------------
// Slack
// ---------------------------------------------------------------------------

fn section(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
}

async fn hook(slack: &FakeSlack, body: &str) -> Reply {
    let http = client();
    send(
        http.post(slack.webhook_url())
            .header("Content-Type", "application/json")
            .body(body.to_string()),
    )
    .await
}

async fn hook_json(slack: &FakeSlack, body: &Value) -> Reply {
    hook(slack, &body.to_string()).await
}

async fn post_message(slack: &FakeSlack, token: Option<&str>, body: &Value) -> Reply {
    let http = client();
    let mut rb = http
        .post(format!("{}/chat.postMessage", slack.api_url()))
        .header("Content-Type", "application/json; charset=utf-8")
        .body(body.to_string());
    if let Some(t) = token {
        rb = rb.header("Authorization", format!("Bearer {t}"));
    }
    send(rb).await
}

#[tokio::test]
async fn slack_webhook_ok() {
    let slack = FakeSlack::start().await;
    assert!(
        slack
            .webhook_url()
            .starts_with(&format!("{}/services/", slack.base_url()))
    );
    // The printer only writes to stdout; it must not change the answer.
    slack.set_printer(true);
    let msg = json!({ "text": "hello", "blocks": [section("*hi*")] });
    let r = hook_json(&slack, &msg).await;
    assert_eq!((r.status, r.text.as_str()), (200, "ok"));
    assert!(r.h("content-type").unwrap().starts_with("text/plain"));
    assert_eq!(slack.messages(), [msg]);
    assert_eq!(slack.attempts(), 1);
}

#[tokio::test]
async fn slack_webhook_errors_are_plain_text() {
    let slack = FakeSlack::start().await;
    let long = "x".repeat(3001);
    let fields: Vec<Value> = (0..11)
        .map(|i| json!({ "type": "mrkdwn", "text": format!("f{i}") }))
        .collect();
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "invalid_payload"),
        ("{}".into(), "invalid_payload"),
        ("[1,2]".into(), "invalid_payload"),
        (json!({ "text": "" }).to_string(), "invalid_payload"),
        (json!({ "text": "t", "blocks": (0..51).map(|_| json!({"type": "divider"})).collect::<Vec<_>>() }).to_string(), "invalid_blocks"),
        (json!({ "text": "t", "blocks": [section(&long)] }).to_string(), "invalid_blocks"),
        (json!({ "text": "t", "blocks": [{ "type": "section", "fields": fields }] }).to_string(), "invalid_blocks"),
        (json!({ "text": "t", "blocks": [{ "type": "section", "fields": [{ "type": "mrkdwn", "text": "y".repeat(2001) }] }] }).to_string(), "invalid_blocks"),
        (json!({ "text": "t", "blocks": [{ "type": "banner", "text": "x" }] }).to_string(), "invalid_blocks"),
        (json!({ "text": "t", "blocks": [{ "type": "header", "text": { "type": "mrkdwn", "text": "x" } }] }).to_string(), "invalid_blocks"),
    ];
    for (body, expected) in &cases {
        let r = hook(&slack, body).await;
        assert_eq!((r.status, r.text.as_str()), (400, *expected), "{body:.80}");
        assert!(r.h("content-type").unwrap().starts_with("text/plain"));
    }
    // 50 blocks and 3000/10/2000 exactly are fine.
    let ok_fields: Vec<Value> = (0..10)
        .map(|_| json!({ "type": "mrkdwn", "text": "y".repeat(200) }))
        .collect();
    let mut blocks = vec![
        section(&"x".repeat(3000)),
        json!({ "type": "section", "fields": ok_fields }),
    ];
    blocks.extend((0..48).map(|_| json!({ "type": "divider" })));
    assert_eq!(
        hook_json(&slack, &json!({ "text": "t", "blocks": blocks }))
            .await
            .text,
        "ok"
    );

    // Wrong webhook path.
    let http = client();
    let r = send(
        http.post(format!("{}/services/T1/B1/wrong", slack.base_url()))
            .body("{\"text\":\"x\"}"),
    )
    .await;
    assert_eq!((r.status, r.text.as_str()), (404, "no_service"));

    assert_eq!(slack.messages().len(), 1);
    assert_eq!(slack.attempts(), cases.len() + 2);
    assert!(
        slack
            .posts()
            .iter()
            .filter(|p| p.status != 200)
            .all(|p| p.error.is_some())
    );
}

#[tokio::test]
async fn slack_total_block_text_limit() {
    let slack = FakeSlack::start().await;
    let blocks: Vec<Value> = (0..5).map(|_| section(&"z".repeat(2900))).collect();
    let r = hook_json(&slack, &json!({ "text": "t", "blocks": blocks })).await;
    assert_eq!((r.status, r.text.as_str()), (400, "msg_blocks_too_long"));
    slack.set_blocks_char_limit(20_000);
    assert_eq!(
        hook_json(&slack, &json!({ "text": "t", "blocks": blocks }))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn slack_injected_faults() {
    let slack = FakeSlack::start().await;
    let msg = json!({ "text": "x" });

    slack.inject(SlackFault::rate_limited(7));
    let r = hook_json(&slack, &msg).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.h("retry-after"), Some("7"));
    assert_eq!(hook_json(&slack, &msg).await.text, "ok");

    slack.inject(SlackFault::server_error());
    let r = hook_json(&slack, &msg).await;
    assert_eq!((r.status, r.text.as_str()), (500, "rollup_error"));
    slack.inject(SlackFault::channel_not_found());
    let r = hook_json(&slack, &msg).await;
    assert_eq!((r.status, r.text.as_str()), (404, "channel_not_found"));
    slack.inject(SlackFault::invalid_payload().times(2));
    for _ in 0..2 {
        let r = hook_json(&slack, &msg).await;
        assert_eq!((r.status, r.text.as_str()), (400, "invalid_payload"));
    }
    slack.inject(SlackFault::server_error().forever());
    for _ in 0..3 {
        assert_eq!(hook_json(&slack, &msg).await.status, 500);
    }
    slack.clear_faults();
    assert_eq!(hook_json(&slack, &msg).await.status, 200);

    // Endpoint-specific faults leave the other endpoint alone.
    slack.inject(SlackFault::rate_limited(3).on(SlackEndpoint::PostMessage));
    assert_eq!(hook_json(&slack, &msg).await.status, 200);
    let body = json!({ "channel": slack.channel(), "text": "x" });
    let r = post_message(&slack, Some(&slack.bot_token()), &body).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.h("retry-after"), Some("3"));
    assert_eq!(r.json()["ok"], false);

    assert_eq!(slack.messages().len(), 3);
    assert_eq!(slack.attempts(), 12);
}

#[tokio::test]
async fn slack_min_interval_rate_limit() {
    let slack = FakeSlack::start().await;
    slack.set_min_interval(Some(Duration::from_secs(1)));
    assert_eq!(hook_json(&slack, &json!({ "text": "1" })).await.status, 200);
    let r = hook_json(&slack, &json!({ "text": "2" })).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.h("retry-after"), Some("1"));
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(hook_json(&slack, &json!({ "text": "3" })).await.status, 200);
}

#[tokio::test]
async fn slack_post_message() {
    let slack = FakeSlack::start().await;
    let body =
        json!({ "channel": slack.channel(), "text": "summary", "blocks": [section("hello")] });

    let r = post_message(&slack, None, &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({ "ok": false, "error": "not_authed" }));
    let r = post_message(&slack, Some("xoxb-wrong"), &body).await;
    assert_eq!(r.json(), json!({ "ok": false, "error": "invalid_auth" }));
    let r = post_message(
        &slack,
        Some(&slack.bot_token()),
        &json!({ "channel": "C999", "text": "x" }),
    )
    .await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({ "ok": false, "error": "channel_not_found" }))
    );
    let many: Vec<Value> = (0..51).map(|_| json!({ "type": "divider" })).collect();
    let r = post_message(
        &slack,
        Some(&slack.bot_token()),
        &json!({ "channel": "C0LOCAL", "text": "x", "blocks": many }),
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_blocks");
    let r = post_message(
        &slack,
        Some(&slack.bot_token()),
        &json!({ "channel": "C0LOCAL" }),
    )
    .await;
    assert_eq!(r.json()["error"], "no_text");
    assert!(slack.messages().is_empty());

    let r = post_message(&slack, Some(&slack.bot_token()), &body).await;
    assert_eq!(r.status, 200);
    assert!(r.h("content-type").unwrap().starts_with("application/json"));
    let v = r.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["channel"], "C0LOCAL");
    let ts = v["ts"].as_str().unwrap();
    let (secs, frac) = ts.split_once('.').unwrap();
    assert!(
        secs.len() == 10
            && frac.len() == 6
            && ts.replace('.', "").chars().all(|c| c.is_ascii_digit())
    );
    assert_eq!(v["message"]["text"], "summary");
    assert_eq!(v["message"]["ts"], ts);
    // The channel name works too; ts values increase.
    let r2 = post_message(
        &slack,
        Some(&slack.bot_token()),
        &json!({ "channel": "#local-alerts", "text": "again" }),
    )
    .await;
    assert!(r2.json()["ts"].as_str().unwrap() > ts);
    assert_eq!(
        slack.messages(),
        [body, json!({ "channel": "#local-alerts", "text": "again" })]
    );
    assert_eq!(slack.attempts(), 7);
}

#[tokio::test]
async fn slack_wait_for_messages() {
    let slack = FakeSlack::start().await;
    let s2 = slack.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        hook_json(&s2, &json!({ "text": "late" })).await;
    });
    let got = slack.wait_for_messages(1, Duration::from_secs(5)).await;
    assert_eq!(got, [json!({ "text": "late" })]);
    let t = Instant::now();
    let got = slack.wait_for_messages(2, Duration::from_millis(300)).await;
    assert_eq!(got.len(), 1);
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[test]
fn slack_render_text_is_readable() {
    let msg = json!({
        "text": "fallback",
        "blocks": [
            { "type": "header", "text": { "type": "plain_text", "text": "Oort: 2 users suspended" } },
            section(":rotating_light: *Check* &lt;risky&gt; &amp; co"),
            { "type": "section", "fields": [
                { "type": "mrkdwn", "text": "*Suspended*\nana.lima@example.com" },
                { "type": "mrkdwn", "text": "*Not found*\nghost@example.com" }
            ] },
            { "type": "divider" },
            { "type": "context", "elements": [
                { "type": "mrkdwn", "text": "event evt-1" },
                { "type": "plain_text", "text": "dry run: no" }
            ] }
        ]
    });
    let text = render_text(&msg);
    assert!(text.contains("Oort: 2 users suspended"));
    assert!(text.contains("*Check* <risky> & co"));
    assert!(text.contains("• *Suspended*"));
    assert!(text.contains("ana.lima@example.com"));
    assert!(text.contains("ghost@example.com"));
    assert!(text.contains("event evt-1 · dry run: no"));
    assert!(
        !text.contains("fallback"),
        "blocks replace the fallback text"
    );
    assert!(!text.contains('{'), "not raw JSON: {text}");
    assert_eq!(render_text(&json!({ "text": "only text" })), "only text");
}
