//! The fake Okta's rate limits, injected faults, latency and request journal.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use local_pipeline::fake_okta::{Fault, FaultKind, Operation};

use crate::support::*;

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
