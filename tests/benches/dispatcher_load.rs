//! Dispatcher load figures (benchmarks, not tests): run with
//! `cargo bench -p integration-tests --bench dispatcher_load`.
//!
//! 1. A 20-user event against a fake Okta answering each call in 50 ms:
//!    elapsed time against the bound OKTA_MAX_CONCURRENCY sets
//!    (users / concurrency x calls per user x 50 ms). Target: within 1.3x.
//! 2. A 40-user event under a bucket of 100 requests per minute with a
//!    5-minute invocation deadline: every user done, and the share of the
//!    allowed rate used. Target: no user failed, at least 80% of the rate.
//!    (Takes one to two minutes: the bucket is real time.)

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsMessage;
use dispatcher::deadline::Deadline;
use dispatcher::{Config, Dispatcher};
use integration_tests::{local_aws, unique};
use local_pipeline::aws_setup::create_secret;
use local_pipeline::fake_okta::{FakeOkta, SeedUser};
use local_pipeline::fake_slack::FakeSlack;
use serde_json::json;

/// Calls per user that gets suspended: get user, admin roles, suspend, clear sessions.
const CALLS_PER_USER: u32 = 4;

async fn dispatcher_for(okta: &FakeOkta, slack: &FakeSlack, concurrency: usize) -> Dispatcher {
    let aws = local_aws().await;
    let name = unique("bench");
    let okta_secret = create_secret(
        &aws,
        &format!("{name}/okta"),
        &json!({"apiToken": "bench-token"}).to_string(),
    )
    .await
    .unwrap();
    let slack_secret = create_secret(
        &aws,
        &format!("{name}/slack"),
        &json!({"webhookUrl": slack.webhook_url()}).to_string(),
    )
    .await
    .unwrap();
    let vars = [
        ("OKTA_ORG_URL", okta.base_url()),
        ("OKTA_SECRET_ID", okta_secret),
        ("SLACK_SECRET_ID", slack_secret),
        ("MAX_USERS_PER_EVENT", "100".to_string()),
        ("OKTA_MAX_CONCURRENCY", concurrency.to_string()),
    ];
    let config =
        Config::from_lookup(&|k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
            .unwrap();
    Dispatcher::new(config, aws.secrets.clone())
}

fn event_for(okta: &FakeOkta, users: usize) -> SqsMessage {
    let run = unique("run");
    let logins: Vec<String> = (0..users)
        .map(|i| format!("{run}.user{i:03}@example.com"))
        .collect();
    for login in &logins {
        okta.add_user(SeedUser::new(login.as_str(), login.as_str(), "ACTIVE"));
    }
    let body = json!({"id": unique("evt"), "detail-type": "FAILED_CHECK", "detail": {"severity": "critical", "usersFailing": logins}});
    serde_json::from_value(json!({
        "messageId": unique("m"), "body": body.to_string(),
        "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": "g"}, "messageAttributes": {}
    }))
    .unwrap()
}

async fn concurrency_bound() {
    let okta = FakeOkta::start("bench-token").await;
    let slack = FakeSlack::start().await;
    okta.set_latency(Duration::from_millis(50));
    for concurrency in [1usize, 4, 8] {
        let dispatcher = dispatcher_for(&okta, &slack, concurrency).await;
        let record = event_for(&okta, 20);
        let started = Instant::now();
        let response = dispatcher
            .handle_batch(&[record], Deadline::after(Duration::from_secs(300)))
            .await
            .unwrap();
        let elapsed = started.elapsed();
        assert!(response.batch_item_failures.is_empty());
        let rounds = 20u32.div_ceil(concurrency as u32);
        let bound = Duration::from_millis(50) * CALLS_PER_USER * rounds;
        println!(
            "20 users, 50 ms per Okta call, OKTA_MAX_CONCURRENCY={concurrency}: {:.0} ms; bound {} ms; ratio {:.2} (target <= 1.30)",
            elapsed.as_secs_f64() * 1000.0,
            bound.as_millis(),
            elapsed.as_secs_f64() / bound.as_secs_f64()
        );
    }
}

async fn rate_limited_bucket() {
    let okta = FakeOkta::start("bench-token").await;
    let slack = FakeSlack::start().await;
    okta.set_rate_limit(100);
    let dispatcher = dispatcher_for(&okta, &slack, 4).await;
    let record = event_for(&okta, 40);
    // Start at the top of a minute, when the fake's window resets, so the
    // figure does not depend on when the bench was started.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    tokio::time::sleep(
        Duration::from_secs(60) - Duration::from_millis((now.as_millis() % 60_000) as u64),
    )
    .await;
    let started = Instant::now();
    let response = dispatcher
        .handle_batch(&[record], Deadline::after(Duration::from_secs(300)))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let requests = okta.requests();
    let served = requests.iter().filter(|r| !r.rate_limited).count();
    let limited = requests.len() - served;
    let suspended = okta
        .users()
        .iter()
        .filter(|u| u.status == "SUSPENDED")
        .count();
    // The rate actually allowed over the run: a full bucket for each window the
    // run touched. The first and last windows are partial, so this is the
    // strict reading (a run that starts mid-window gets less than it counts).
    let first = requests.first().map(|r| r.received_at).unwrap();
    let last = requests.last().map(|r| r.received_at).unwrap();
    let window =
        |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 60;
    let windows = window(last) - window(first) + 1;
    println!(
        "40 users, bucket 100/min, 5-min deadline: {} in {:.1} s, message {}; {suspended}/40 suspended; {served} requests served, {limited} answered 429; \
         {windows} one-minute windows touched -> {:.0}% of the {} requests they allow; {:.0} requests/min over the run",
        if response.batch_item_failures.is_empty() {
            "done"
        } else {
            "NOT done"
        },
        elapsed.as_secs_f64(),
        if response.batch_item_failures.is_empty() {
            "deleted"
        } else {
            "retried"
        },
        100.0 * served as f64 / (100 * windows) as f64,
        100 * windows,
        served as f64 / elapsed.as_secs_f64() * 60.0,
    );
    // Windows fully inside the run show the steady-state rate.
    for w in window(first)..=window(last) {
        let in_window = requests
            .iter()
            .filter(|r| !r.rate_limited && window(r.received_at) == w)
            .count();
        println!("  window {w}: {in_window} of 100");
    }
}

fn main() {
    // `cargo bench` passes --bench; this is a plain program.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        concurrency_bound().await;
        if std::env::args().any(|a| a == "--quick") {
            return;
        }
        rate_limited_bucket().await;
    });
}
