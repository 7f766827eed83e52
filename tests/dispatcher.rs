//! The dispatcher against a fake Okta org and a fake Slack that answer like
//! the real services, with its secrets in moto: what happens to each user,
//! what is written (and never written), what Slack receives, and which
//! messages go back to the queue.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use dispatcher::deadline::Deadline;
use dispatcher::{Config, Dispatcher};
use integration_tests::{events, local_aws, logs, unique};
use local_pipeline::aws_setup::{LocalAws, create_secret, rotate_secret};
use local_pipeline::fake_okta::{
    DpopPolicy, FakeOkta, Fault, FaultKind, OAuthApp, Operation, SeedUser, TokenType,
};
use local_pipeline::fake_slack::{FakeSlack, SlackFault};
use local_pipeline::okta_keys;
use local_pipeline::seed::{DEMO_OKTA_TOKEN, seed_demo_org};
use serde_json::{Value, json};
use shared::config::Pairs;
use shared::testing::OortBody;

struct Setup {
    okta: FakeOkta,
    slack: FakeSlack,
    dispatcher: Dispatcher,
    aws: LocalAws,
    okta_secret_id: String,
}

async fn setup_with(env: &[(&str, &str)]) -> Setup {
    setup_okta(|_| json!({"apiToken": DEMO_OKTA_TOKEN}), env).await
}

/// A setup whose Okta secret `secret` makes (it may register an app first).
async fn setup_okta(secret: impl FnOnce(&FakeOkta) -> Value, env: &[(&str, &str)]) -> Setup {
    let aws = local_aws().await;
    let name = unique("dispatcher");
    let okta = FakeOkta::start(DEMO_OKTA_TOKEN).await;
    seed_demo_org(&okta);
    let slack = FakeSlack::start().await;
    let okta_secret_id = create_secret(&aws, &format!("{name}/okta"), &secret(&okta).to_string())
        .await
        .unwrap();
    let slack_secret_id = create_secret(
        &aws,
        &format!("{name}/slack"),
        &json!({"webhookUrl": slack.webhook_url()}).to_string(),
    )
    .await
    .unwrap();
    let mut vars: Vec<(String, String)> = vec![
        ("OKTA_ORG_URL".into(), okta.base_url()),
        ("OKTA_SECRET_ID".into(), okta_secret_id.clone()),
        ("SLACK_SECRET_ID".into(), slack_secret_id),
        ("SLACK_API_URL".into(), slack.api_url()),
    ];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_lookup(&Pairs(&vars)).unwrap();
    // Metrics go nowhere here: the e2e tests read the functions' EMF lines.
    let mut dispatcher = Dispatcher::new(config, aws.secrets.clone())
        .with_metrics(shared::metrics::Emitter::new("dispatcher", std::io::sink()));
    if let Some((_, table)) = vars.iter().rev().find(|(k, _)| k == "STORE_TABLE") {
        // "missing-table" stands for a store that cannot be used.
        if table != "missing-table" {
            shared::store::create_table(&aws.dynamodb, table)
                .await
                .unwrap();
        }
        dispatcher = dispatcher.with_store(shared::store::Store::new(
            aws.dynamodb.clone(),
            table.clone(),
        ));
    }
    Setup {
        okta,
        slack,
        dispatcher,
        aws,
        okta_secret_id,
    }
}

async fn setup() -> Setup {
    setup_with(&[]).await
}

fn failed_check(id: &str, users: &[&str]) -> String {
    OortBody::failed_check(id, users).to_string()
}

/// An SQS record as Lambda's event source mapping delivers it.
fn record(message_id: &str, body: &str, receive_count: u32) -> SqsMessage {
    serde_json::from_value(json!({
        "messageId": message_id,
        "receiptHandle": format!("rh-{message_id}"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": receive_count.to_string(),
            "SentTimestamp": "1793693701228",
            "MessageGroupId": format!("group-{message_id}"),
            "MessageDeduplicationId": format!("group-{message_id}"),
        },
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:events.fifo",
        "awsRegion": "us-east-1"
    }))
    .unwrap()
}

/// Runs one batch; returns the message ids to redeliver.
async fn run(setup: &Setup, records: &[SqsMessage]) -> Vec<String> {
    run_within(setup, records, Duration::from_secs(60)).await
}

async fn run_within(setup: &Setup, records: &[SqsMessage], budget: Duration) -> Vec<String> {
    let response = setup
        .dispatcher
        .handle_batch(records, Deadline::after(budget))
        .await
        .expect("a batch response");
    response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

fn status(setup: &Setup, login: &str) -> String {
    setup
        .okta
        .user(login)
        .unwrap_or_else(|| panic!("{login} exists"))
        .status
}

/// The ordered write operations the fake saw for one user.
fn writes_for(setup: &Setup, login: &str) -> Vec<String> {
    let id = setup.okta.user(login).unwrap().id;
    setup
        .okta
        .writes()
        .into_iter()
        .filter(|w| w.user_id.as_deref() == Some(id.as_str()) && !w.injected)
        .map(|w| {
            format!(
                "{} {}{}",
                w.method,
                w.path.split(&id).last().unwrap_or(""),
                w.query.map(|q| format!("?{q}")).unwrap_or_default()
            )
        })
        .collect()
}

/// Slack text of a posted message, with mrkdwn entities as sent.
fn slack_text(message: &Value) -> String {
    message.to_string()
}

/// The outcome Slack lists for `login`, e.g. "suspended".
fn listed_outcome(message: &Value, login: &str) -> Option<String> {
    let text = slack_text(message);
    let marker = format!("`{login}`: *");
    let start = text.find(&marker)? + marker.len();
    Some(text[start..].split('*').next()?.to_string())
}

#[tokio::test]
async fn a_failed_check_gives_every_user_an_honest_outcome() {
    let s = setup().await;
    let body = failed_check(
        "evt-outcomes",
        &[
            "ana.lima@example.com",
            "omar.haddad@example.com",
            "former.employee@example.com",
            "ghost@example.com",
            "shared-ops@example.com",
            "root.admin@example.com",
            "john.smith@example.com",
            "svc.backup",
        ],
    );
    let failures = run(&s, &[record("m-1", &body, 1)]).await;
    assert!(failures.is_empty(), "{failures:?}");

    assert_eq!(status(&s, "ana.lima@example.com"), "SUSPENDED");
    assert_eq!(
        status(&s, "jsmith@corp.example.com"),
        "SUSPENDED",
        "found by email, login differs"
    );
    assert_eq!(status(&s, "svc.backup"), "SUSPENDED");
    assert_eq!(
        status(&s, "root.admin@example.com"),
        "ACTIVE",
        "admins are protected"
    );
    assert_eq!(
        status(&s, "ops1@example.com"),
        "ACTIVE",
        "ambiguous: nobody is picked"
    );
    assert_eq!(status(&s, "ops2@example.com"), "ACTIVE");
    assert_eq!(status(&s, "former.employee@example.com"), "DEPROVISIONED");
    for untouched in [
        "root.admin@example.com",
        "ops1@example.com",
        "ops2@example.com",
        "former.employee@example.com",
    ] {
        assert!(
            writes_for(&s, untouched).is_empty(),
            "{untouched} was written to"
        );
    }
    assert_eq!(
        writes_for(&s, "omar.haddad@example.com"),
        ["DELETE /sessions?oauthTokens=true"],
        "already suspended: sessions cleared again only"
    );

    let messages = s.slack.messages();
    assert_eq!(messages.len(), 1, "exactly one summary");
    let m = &messages[0];
    let expected = [
        ("ana.lima@example.com", "suspended"),
        ("omar.haddad@example.com", "already suspended"),
        ("former.employee@example.com", "not active"),
        ("ghost@example.com", "not found"),
        ("shared-ops@example.com", "ambiguous"),
        ("root.admin@example.com", "protected"),
        ("john.smith@example.com", "suspended"),
        ("svc.backup", "suspended"),
    ];
    for (login, outcome) in expected {
        assert_eq!(
            listed_outcome(m, login).as_deref(),
            Some(outcome),
            "{login} in {}",
            slack_text(m)
        );
    }
    assert!(
        m["text"].as_str().unwrap().contains(
            "3 suspended, 1 already suspended, 1 not active, 1 not found, 1 ambiguous, 1 protected"
        ),
        "{}",
        m["text"]
    );
}

#[tokio::test]
async fn suspend_comes_before_clearing_sessions_and_oauth_tokens() {
    let s = setup().await;
    run(
        &s,
        &[record(
            "m-1",
            &failed_check("evt-order", &["ana.lima@example.com"]),
            1,
        )],
    )
    .await;
    assert_eq!(
        writes_for(&s, "ana.lima@example.com"),
        [
            "POST /lifecycle/suspend",
            "DELETE /sessions?oauthTokens=true"
        ]
    );
    let ana = s.okta.user("ana.lima@example.com").unwrap();
    assert_eq!((ana.sessions_cleared, ana.oauth_tokens_revoked), (1, true));
}

#[tokio::test]
async fn protected_users_and_the_admin_switch() {
    let s = setup_with(&[
        ("PROTECTED_USERS", "ANA.LIMA@example.com,00uNOBODY"),
        ("PROTECT_ADMINS", "false"),
    ])
    .await;
    run(
        &s,
        &[record(
            "m-1",
            &failed_check(
                "evt-protect",
                &["ana.lima@example.com", "root.admin@example.com"],
            ),
            1,
        )],
    )
    .await;
    assert_eq!(status(&s, "ana.lima@example.com"), "ACTIVE");
    assert_eq!(
        status(&s, "root.admin@example.com"),
        "SUSPENDED",
        "admins act when PROTECT_ADMINS=false"
    );
    let m = &s.slack.messages()[0];
    assert_eq!(
        listed_outcome(m, "ana.lima@example.com").as_deref(),
        Some("protected")
    );
}

#[tokio::test]
async fn admin_roles_that_cannot_be_read_mean_no_write() {
    let s = setup().await;
    s.okta
        .inject(Fault::forbidden().on(Operation::Roles).forever());
    run(
        &s,
        &[record(
            "m-1",
            &failed_check("evt-roles", &["ana.lima@example.com"]),
            1,
        )],
    )
    .await;
    assert_eq!(status(&s, "ana.lima@example.com"), "ACTIVE");
    assert!(writes_for(&s, "ana.lima@example.com").is_empty());
    let m = &s.slack.messages()[0];
    assert_eq!(
        listed_outcome(m, "ana.lima@example.com").as_deref(),
        Some("failed")
    );
    assert!(
        slack_text(m).contains("could not check the user"),
        "{}",
        slack_text(m)
    );
}

#[tokio::test]
async fn a_webhook_test_never_calls_okta_whatever_users_it_lists() {
    let s = setup().await;
    let body = json!({"id": "t-1", "detail-type": "WebhookTest",
        "detail": {"checkId": "oort-test-check-id", "title": "OORT Failing Check Event Test", "usersFailing": ["ana.lima@example.com", "li.wei@example.com"]}})
    .to_string();
    assert!(run(&s, &[record("m-1", &body, 1)]).await.is_empty());
    assert!(s.okta.requests().is_empty(), "no Okta call at all");
    let messages = s.slack.messages();
    assert_eq!(messages.len(), 1);
    assert!(slack_text(&messages[0]).contains("Connectivity test received"));
}

#[tokio::test]
async fn unknown_event_types_are_reported_not_acted_on() {
    let s = setup().await;
    let body = json!({"id": "x-1", "detail-type": "CHECK_RESOLVED", "detail": {"usersFailing": ["ana.lima@example.com"]}}).to_string();
    assert!(run(&s, &[record("m-1", &body, 1)]).await.is_empty());
    assert!(s.okta.requests().is_empty());
    assert!(slack_text(&s.slack.messages()[0]).contains("unhandled type `CHECK_RESOLVED`"));
}

#[tokio::test]
async fn an_event_over_the_cap_is_held_with_no_okta_call() {
    let s = setup_with(&[("MAX_USERS_PER_EVENT", "3")]).await;
    let body = failed_check(
        "evt-cap",
        &[
            "ana.lima@example.com",
            "li.wei@example.com",
            "svc.backup",
            "john.smith@example.com",
        ],
    );
    assert!(run(&s, &[record("m-1", &body, 1)]).await.is_empty());
    assert!(s.okta.requests().is_empty());
    let m = &s.slack.messages()[0];
    assert!(m["text"].as_str().unwrap().starts_with("[HELD]"));
    assert!(
        slack_text(m).contains("the event lists 4 users, over the cap of 3 (MAX_USERS_PER_EVENT)")
    );
    assert_eq!(
        listed_outcome(m, "li.wei@example.com").as_deref(),
        Some("held")
    );
}

#[tokio::test]
async fn severities_that_do_not_act_are_held() {
    let s = setup_with(&[("ACTION_SEVERITIES", "high")]).await;
    assert!(
        run(
            &s,
            &[record(
                "m-1",
                &failed_check("evt-sev", &["ana.lima@example.com"]),
                1
            )]
        )
        .await
        .is_empty()
    );
    assert!(s.okta.requests().is_empty());
    assert!(slack_text(&s.slack.messages()[0]).contains("severity critical does not act"));
}

#[tokio::test]
async fn dry_run_resolves_and_reports_but_writes_nothing() {
    let s = setup_with(&[("DRY_RUN", "true")]).await;
    let body = failed_check(
        "evt-dry",
        &[
            "ana.lima@example.com",
            "omar.haddad@example.com",
            "root.admin@example.com",
            "ghost@example.com",
        ],
    );
    assert!(run(&s, &[record("m-1", &body, 1)]).await.is_empty());
    assert!(s.okta.writes().is_empty(), "no write in dry run");
    assert!(!s.okta.requests().is_empty(), "but users were resolved");
    let m = &s.slack.messages()[0];
    assert!(m["text"].as_str().unwrap().starts_with("[DRY RUN]"));
    assert!(slack_text(m).contains("*DRY RUN*"));
    assert_eq!(
        listed_outcome(m, "ana.lima@example.com").as_deref(),
        Some("dry run (would suspend)")
    );
    assert_eq!(
        listed_outcome(m, "root.admin@example.com").as_deref(),
        Some("protected")
    );
    assert_eq!(
        listed_outcome(m, "ghost@example.com").as_deref(),
        Some("not found")
    );
}

#[tokio::test]
async fn a_rate_limit_429_is_waited_out_then_succeeds() {
    let s = setup().await;
    s.okta.inject(
        Fault::rate_limited(1)
            .for_user("ana.lima@example.com")
            .on(Operation::GetUser)
            .times(1),
    );
    s.okta.inject(
        Fault::concurrency_limited()
            .for_user("li.wei@example.com")
            .on(Operation::Suspend)
            .times(1),
    );
    let started = std::time::Instant::now();
    assert!(
        run(
            &s,
            &[record(
                "m-1",
                &failed_check("evt-429", &["ana.lima@example.com", "li.wei@example.com"]),
                1
            )]
        )
        .await
        .is_empty()
    );
    assert_eq!(status(&s, "ana.lima@example.com"), "SUSPENDED");
    assert_eq!(status(&s, "li.wei@example.com"), "SUSPENDED");
    // Waited Reset - Date + 1 (at least a second) before retrying, and said so to Okta.
    assert!(started.elapsed() >= Duration::from_secs(1));
    let requests = s.okta.requests();
    let limited = requests
        .iter()
        .find(|r| r.rate_limited && r.operation == Some(Operation::GetUser))
        .unwrap();
    let retry = requests
        .iter()
        .find(|r| r.header("x-okta-retry-for") == Some(limited.x_okta_request_id.as_str()))
        .expect("a retry naming the 429");
    assert_eq!(retry.header("x-okta-retry-count"), Some("1"));
    assert_eq!(s.slack.messages().len(), 1);
}

#[tokio::test]
async fn an_okta_outage_for_one_user_retries_the_message_and_reports_on_the_last_delivery() {
    let s = setup().await;
    s.okta.inject(
        Fault::server_error(503)
            .for_user("li.wei@example.com")
            .forever(),
    );
    let body = failed_check(
        "evt-outage",
        &["ana.lima@example.com", "li.wei@example.com"],
    );

    for delivery in 1..=4 {
        assert_eq!(
            run(&s, &[record("m-1", &body, delivery)]).await,
            ["m-1"],
            "delivery {delivery} is retried"
        );
        assert!(
            s.slack.messages().is_empty(),
            "no summary on a delivery that will be retried"
        );
    }
    assert_eq!(
        status(&s, "ana.lima@example.com"),
        "SUSPENDED",
        "the others are done on the first delivery"
    );
    let suspends = s
        .okta
        .writes()
        .iter()
        .filter(|w| w.path.ends_with("/lifecycle/suspend") && !w.injected)
        .count();
    assert_eq!(suspends, 1, "redeliveries never suspend twice");

    // The last delivery: the summary reports the failure and the message goes to the DLQ.
    assert_eq!(run(&s, &[record("m-1", &body, 5)]).await, ["m-1"]);
    let messages = s.slack.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        listed_outcome(&messages[0], "li.wei@example.com").as_deref(),
        Some("failed")
    );
    assert!(
        slack_text(&messages[0]).contains("Okta answered 503"),
        "{}",
        slack_text(&messages[0])
    );
    assert_eq!(
        listed_outcome(&messages[0], "ana.lima@example.com").as_deref(),
        Some("already suspended")
    );
    assert_eq!(status(&s, "li.wei@example.com"), "ACTIVE");
}

#[tokio::test]
async fn an_outage_that_ends_before_the_last_delivery_is_summarised_once() {
    let s = setup().await;
    s.okta.inject(
        Fault::server_error(503)
            .for_user("li.wei@example.com")
            .forever(),
    );
    let body = failed_check("evt-recover", &["li.wei@example.com"]);
    assert_eq!(run(&s, &[record("m-1", &body, 1)]).await, ["m-1"]);
    s.okta.clear_faults();
    assert!(run(&s, &[record("m-1", &body, 2)]).await.is_empty());
    assert_eq!(status(&s, "li.wei@example.com"), "SUSPENDED");
    assert_eq!(s.slack.messages().len(), 1);
}

/// Okta requests that name or resolved to `login`.
fn requests_about(s: &Setup, login: &str) -> usize {
    let id = s.okta.user(login).unwrap().id;
    let encoded = login.replace('@', "%40");
    s.okta
        .requests()
        .iter()
        .filter(|r| {
            r.user_id.as_deref() == Some(id.as_str())
                || r.path.contains(login)
                || r.path.contains(&encoded)
                || r.query
                    .as_deref()
                    .is_some_and(|q| q.contains(&encoded) || q.contains(login))
        })
        .count()
}

#[tokio::test]
async fn users_settled_on_an_earlier_delivery_are_not_read_or_written_again() {
    let table = unique("store");
    let s = setup_with(&[("STORE_TABLE", table.as_str())]).await;
    s.okta.inject(
        Fault::server_error(503)
            .for_user("li.wei@example.com")
            .forever(),
    );
    let body = failed_check(
        "evt-progress",
        &["ana.lima@example.com", "li.wei@example.com"],
    );
    assert_eq!(run(&s, &[record("m-1", &body, 1)]).await, ["m-1"]);
    assert_eq!(status(&s, "ana.lima@example.com"), "SUSPENDED");

    // The second delivery (still failing) and a redrive from the dead-letter
    // queue (delivered afresh: receive count 1) touch li.wei only.
    for delivery in [2, 1] {
        s.okta.clear_requests();
        assert_eq!(run(&s, &[record("m-1", &body, delivery)]).await, ["m-1"]);
        assert_eq!(
            requests_about(&s, "ana.lima@example.com"),
            0,
            "ana.lima was settled on the first delivery"
        );
        assert!(requests_about(&s, "li.wei@example.com") > 0);
    }

    s.okta.clear_faults();
    assert!(run(&s, &[record("m-1", &body, 3)]).await.is_empty());
    assert_eq!(status(&s, "li.wei@example.com"), "SUSPENDED");
    let messages = s.slack.messages();
    assert_eq!(messages.len(), 1, "one summary, when everyone is final");
    assert_eq!(
        listed_outcome(&messages[0], "ana.lima@example.com").as_deref(),
        Some("suspended"),
        "reported as the first delivery left them, not re-read as already suspended"
    );
    assert_eq!(
        listed_outcome(&messages[0], "li.wei@example.com").as_deref(),
        Some("suspended")
    );
    let suspends = s
        .okta
        .writes()
        .iter()
        .filter(|w| w.path.ends_with("/lifecycle/suspend") && !w.injected)
        .count();
    assert_eq!(
        suspends, 1,
        "li.wei's suspend; ana.lima's was in the first journal"
    );
}

#[tokio::test]
async fn without_a_usable_store_every_delivery_runs_every_user_again_safely() {
    let s = setup_with(&[("STORE_TABLE", "missing-table")]).await;
    s.okta.inject(
        Fault::server_error(503)
            .for_user("li.wei@example.com")
            .times(3),
    );
    let body = failed_check(
        "evt-no-progress",
        &["ana.lima@example.com", "li.wei@example.com"],
    );
    assert_eq!(run(&s, &[record("m-1", &body, 1)]).await, ["m-1"]);
    s.okta.clear_requests();
    assert!(run(&s, &[record("m-1", &body, 2)]).await.is_empty());
    assert!(
        requests_about(&s, "ana.lima@example.com") > 0,
        "re-read, as without a record"
    );
    let messages = s.slack.messages();
    assert_eq!(
        listed_outcome(&messages[0], "ana.lima@example.com").as_deref(),
        Some("already suspended")
    );
    assert_eq!(status(&s, "li.wei@example.com"), "SUSPENDED");
}

#[tokio::test]
async fn a_poison_message_fails_alone() {
    let s = setup().await;
    let good = failed_check("evt-good", &["ana.lima@example.com"]);
    let test = json!({"id": "t-2", "detail-type": "WebhookTest", "detail": {}}).to_string();
    let failures = run(
        &s,
        &[
            record("m-good", &good, 1),
            record("m-poison", "not json {", 1),
            record("m-test", &test, 1),
        ],
    )
    .await;
    assert_eq!(failures, ["m-poison"]);
    assert_eq!(status(&s, "ana.lima@example.com"), "SUSPENDED");
    assert_eq!(
        s.slack.messages().len(),
        2,
        "both good messages were summarised"
    );

    // On its last delivery Slack hears it is going to the dead-letter queue.
    assert_eq!(
        run(&s, &[record("m-poison", "not json {", 5)]).await,
        ["m-poison"]
    );
    assert!(slack_text(s.slack.messages().last().unwrap()).contains("dead-letter queue"));
}

#[tokio::test]
async fn a_failed_message_holds_back_later_messages_of_its_group_only() {
    let s = setup().await;
    let mut first = record("m-1", "not json", 1);
    let mut second = record("m-2", &failed_check("evt-g2", &["ana.lima@example.com"]), 1);
    let third = record("m-3", &failed_check("evt-g3", &["li.wei@example.com"]), 1);
    first
        .attributes
        .insert("MessageGroupId".into(), "same".into());
    second
        .attributes
        .insert("MessageGroupId".into(), "same".into());
    assert_eq!(run(&s, &[first, second, third]).await, ["m-1", "m-2"]);
    assert_eq!(
        status(&s, "ana.lima@example.com"),
        "ACTIVE",
        "held back behind its group"
    );
    assert_eq!(status(&s, "li.wei@example.com"), "SUSPENDED");
}

#[tokio::test]
async fn hostile_logins_never_touch_another_user() {
    let s = setup().await;
    let victim_id = s.okta.add_user(SeedUser::new(
        "victim@example.com",
        "victim@example.com",
        "ACTIVE",
    ));
    let hostile = [
        "victim@example.com?x=1".to_string(),
        "victim@example.com#frag".to_string(),
        "victim@example.com/".to_string(),
        "../victim@example.com".to_string(),
        "..".to_string(),
        "\"victim@example.com\"".to_string(),
        "x\" or profile.email eq \"victim@example.com".to_string(),
        "v\"ictim@example.com".to_string(),
        "victim%40example.com".to_string(),
        victim_id.clone(),
    ];
    let users: Vec<&str> = hostile.iter().map(String::as_str).collect();
    let failures = run(
        &s,
        &[record("m-1", &failed_check("evt-hostile", &users), 1)],
    )
    .await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(status(&s, "victim@example.com"), "ACTIVE");
    assert!(
        s.okta.writes().is_empty(),
        "no write at all: {:?}",
        s.okta.writes().iter().map(|w| &w.path).collect::<Vec<_>>()
    );
    let m = &s.slack.messages()[0];
    assert!(
        m["text"].as_str().unwrap().contains("10 not found"),
        "{}",
        m["text"]
    );
}

#[tokio::test]
async fn slack_mrkdwn_injection_is_escaped() {
    let s = setup().await;
    let body = json!({"id": "evt-<!channel>", "detail-type": "FAILED_CHECK",
        "detail": {"title": "<!channel> <https://evil.example|Reset your password>", "severity": "<!here>",
                   "usersFailing": ["<https://evil.example|ceo>@example.com", "<!everyone>"]}})
    .to_string();
    run(&s, &[record("m-1", &body, 1)]).await;
    let text = slack_text(&s.slack.messages()[0]);
    for raw in ["<!channel>", "<!here>", "<!everyone>", "<https://evil"] {
        assert!(!text.contains(raw), "{raw} reached Slack: {text}");
    }
    assert!(text.contains("&lt;!channel&gt;"));
}

#[tokio::test]
async fn slack_rate_limits_are_honoured_and_a_failed_post_retries_without_suspending_twice() {
    let s = setup().await;
    s.slack.inject(SlackFault::rate_limited(1).times(1));
    let body = failed_check("evt-slack", &["ana.lima@example.com"]);
    assert!(run(&s, &[record("m-1", &body, 1)]).await.is_empty());
    assert_eq!(
        (s.slack.attempts(), s.slack.messages().len()),
        (2, 1),
        "retried after Retry-After"
    );

    s.slack.inject(SlackFault::channel_not_found().forever());
    let body = failed_check("evt-slack-2", &["li.wei@example.com"]);
    assert_eq!(
        run(&s, &[record("m-2", &body, 1)]).await,
        ["m-2"],
        "a failed post fails the message"
    );
    s.slack.clear_faults();
    assert!(run(&s, &[record("m-2", &body, 2)]).await.is_empty());
    assert_eq!(
        writes_for(&s, "li.wei@example.com"),
        [
            "POST /lifecycle/suspend",
            "DELETE /sessions?oauthTokens=true",
            "DELETE /sessions?oauthTokens=true"
        ]
    );
    assert_eq!(s.slack.messages().len(), 2);
}

#[tokio::test]
async fn a_bot_token_posts_with_chat_post_message() {
    let s = setup().await;
    let name = unique("bot");
    let secret = json!({"botToken": s.slack.bot_token(), "channel": s.slack.channel()}).to_string();
    let slack_secret_id = create_secret(&s.aws, &format!("{name}/slack"), &secret)
        .await
        .unwrap();
    let vars = [
        ("OKTA_ORG_URL", s.okta.base_url()),
        ("OKTA_SECRET_ID", s.okta_secret_id.clone()),
        ("SLACK_SECRET_ID", slack_secret_id),
        ("SLACK_API_URL", s.slack.api_url()),
    ];
    let config = Config::from_lookup(&Pairs(&vars)).unwrap();
    let bot = Setup {
        dispatcher: Dispatcher::new(config, s.aws.secrets.clone()),
        ..s
    };
    let failures = run(
        &bot,
        &[record(
            "m-1",
            &failed_check("evt-bot", &["ana.lima@example.com"]),
            1,
        )],
    )
    .await;
    assert!(
        failures.is_empty(),
        "{:?}",
        bot.slack
            .posts()
            .iter()
            .map(|p| (p.status, p.error.clone(), p.path.clone()))
            .collect::<Vec<_>>()
    );
    let messages = bot.slack.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["channel"], bot.slack.channel());
}

#[tokio::test]
async fn locked_out_users_when_okta_will_not_suspend_them() {
    // The docs say suspend is only for ACTIVE users; the fake enforces that by default.
    let s = setup().await;
    s.okta.set_status("li.wei@example.com", "LOCKED_OUT");
    run(
        &s,
        &[record(
            "m-1",
            &failed_check("evt-locked", &["li.wei@example.com"]),
            1,
        )],
    )
    .await;
    let m = &s.slack.messages()[0];
    assert_eq!(
        listed_outcome(m, "li.wei@example.com").as_deref(),
        Some("failed"),
        "reported, not hidden"
    );
    assert!(
        slack_text(m).contains("would not suspend a user in status LOCKED_OUT"),
        "{}",
        slack_text(m)
    );
    assert_eq!(
        s.okta.user("li.wei@example.com").unwrap().sessions_cleared,
        1,
        "sessions still ended"
    );

    // Where Okta does suspend them, they are suspended.
    let s = setup().await;
    s.okta
        .set_suspendable_statuses(&["ACTIVE", "LOCKED_OUT", "PASSWORD_EXPIRED", "RECOVERY"]);
    s.okta.set_status("li.wei@example.com", "LOCKED_OUT");
    run(
        &s,
        &[record(
            "m-1",
            &failed_check("evt-locked-2", &["li.wei@example.com"]),
            1,
        )],
    )
    .await;
    assert_eq!(status(&s, "li.wei@example.com"), "SUSPENDED");
}

#[tokio::test]
async fn a_refused_okta_token_is_re_read_and_never_logged() {
    let s = setup().await;
    rotate_secret(
        &s.aws,
        &s.okta_secret_id,
        &json!({"apiToken": "00WRONG-token-value-xyz"}).to_string(),
    )
    .await
    .unwrap();
    let (failures, logs) = logs::capture(run(
        &s,
        &[record(
            "m-1",
            &failed_check("evt-token", &["ana.lima@example.com"]),
            5,
        )],
    ))
    .await;
    assert_eq!(
        failures,
        ["m-1"],
        "the last delivery still fails, to the DLQ"
    );
    let m = &s.slack.messages()[0];
    assert!(slack_text(m).contains("E0000011"), "{}", slack_text(m));
    let text = logs.text();
    for secret in [
        "00WRONG-token-value-xyz",
        DEMO_OKTA_TOKEN,
        "localwebhooksecret",
    ] {
        assert!(!text.contains(secret), "{secret} appeared in the logs");
    }
    assert!(!slack_text(m).contains("00WRONG"));
}

#[tokio::test]
async fn every_okta_call_and_outcome_is_logged_for_audit() {
    let s = setup().await;
    let (_, logs) = logs::capture(run(
        &s,
        &[record(
            "m-1",
            &failed_check("evt-audit", &["ana.lima@example.com"]),
            1,
        )],
    ))
    .await;
    let lines = logs.lines();
    let calls: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "okta call")
        .collect();
    assert_eq!(calls.len(), 4, "get user, roles, suspend, clear sessions");
    let known_ids: Vec<String> = s
        .okta
        .requests()
        .iter()
        .map(|r| r.x_okta_request_id.clone())
        .collect();
    for call in &calls {
        assert_eq!(call["event_id"], "evt-audit");
        assert_eq!(call["user"], "ana.lima@example.com");
        assert!(known_ids.contains(&call["okta_request_id"].as_str().unwrap().to_string()));
    }
    let outcome = lines
        .iter()
        .find(|l| l["message"] == "user outcome")
        .unwrap();
    assert_eq!(outcome["outcome"], "suspended");
    assert_eq!(outcome["event_id"], "evt-audit");
    assert_eq!(
        outcome["okta_request_id"], calls[3]["okta_request_id"],
        "the decisive call"
    );
    let text = logs.text();
    assert!(!text.contains(DEMO_OKTA_TOKEN) && !text.contains("localwebhooksecret"));
}

#[tokio::test]
async fn concurrency_stays_within_okta_max_concurrency() {
    let s = setup_with(&[("OKTA_MAX_CONCURRENCY", "2")]).await;
    s.okta.set_latency(Duration::from_millis(50));
    s.okta.set_concurrency_limit(Some(2));
    let users = [
        "ana.lima@example.com",
        "li.wei@example.com",
        "svc.backup",
        "john.smith@example.com",
        "omar.haddad@example.com",
    ];
    assert!(
        run(&s, &[record("m-1", &failed_check("evt-conc", &users), 1)])
            .await
            .is_empty()
    );
    assert!(
        s.okta.requests().iter().all(|r| !r.rate_limited),
        "never over Okta's concurrency limit"
    );
}

#[tokio::test]
async fn a_small_rate_limit_window_is_paced_and_everyone_is_done() {
    let s = setup_with(&[("OKTA_MAX_CONCURRENCY", "2")]).await;
    s.okta.set_rate_window(Duration::from_secs(2));
    s.okta.set_rate_limit(8);
    let users = [
        "ana.lima@example.com",
        "li.wei@example.com",
        "svc.backup",
        "john.smith@example.com",
    ];
    assert!(
        run_within(
            &s,
            &[record("m-1", &failed_check("evt-pace", &users), 1)],
            Duration::from_secs(60)
        )
        .await
        .is_empty()
    );
    for login in [
        "ana.lima@example.com",
        "li.wei@example.com",
        "svc.backup",
        "jsmith@corp.example.com",
    ] {
        assert_eq!(status(&s, login), "SUSPENDED", "{login}");
    }
}

#[tokio::test]
async fn time_running_out_leaves_users_for_the_next_delivery() {
    let s = setup().await;
    s.okta.set_latency(Duration::from_millis(1500));
    let failures = run_within(
        &s,
        &[record(
            "m-1",
            &failed_check("evt-time", &["ana.lima@example.com"]),
            1,
        )],
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(failures, ["m-1"]);
    assert!(s.slack.messages().is_empty());
}

#[tokio::test]
async fn every_dispatcher_sample_in_events_gets_its_documented_result() {
    let samples: Vec<String> = events::all()
        .into_iter()
        .filter(|n| n.starts_with("dispatcher-"))
        .collect();
    let mut documented = vec![
        "dispatcher-failed-check.json",
        "dispatcher-last-attempt.json",
        "dispatcher-odd-entries.json",
        "dispatcher-over-cap.json",
        "dispatcher-poison.json",
        "dispatcher-webhook-test.json",
    ];
    documented.sort();
    assert_eq!(
        samples, documented,
        "every dispatcher sample has a documented result here and in the README"
    );

    let sample = |name: &str| -> SqsEvent {
        serde_json::from_str(&events::read(name)).expect("an SQS event")
    };

    let s = setup().await;
    assert!(
        run(&s, &sample("dispatcher-failed-check.json").records)
            .await
            .is_empty()
    );
    assert_eq!(status(&s, "ana.lima@example.com"), "SUSPENDED");
    assert_eq!(status(&s, "root.admin@example.com"), "ACTIVE");
    assert_eq!(s.slack.messages().len(), 1);

    let s = setup().await;
    assert!(
        run(&s, &sample("dispatcher-odd-entries.json").records)
            .await
            .is_empty()
    );
    assert_eq!(status(&s, "li.wei@example.com"), "SUSPENDED");
    let m = &s.slack.messages()[0];
    assert_eq!(
        slack_text(m).matches("*invalid*").count(),
        4,
        "{}",
        slack_text(m)
    );
    assert!(slack_text(m).contains("Ignored in this event"));
    assert_eq!(
        s.okta
            .requests()
            .iter()
            .filter(|r| r.path.contains("bad"))
            .count(),
        0,
        "no Okta call for an invalid entry"
    );

    let s = setup().await;
    assert!(
        run(&s, &sample("dispatcher-webhook-test.json").records)
            .await
            .is_empty()
    );
    assert!(s.okta.requests().is_empty());
    assert!(slack_text(&s.slack.messages()[0]).contains("Connectivity test received"));

    let s = setup().await;
    assert!(
        run(&s, &sample("dispatcher-over-cap.json").records)
            .await
            .is_empty()
    );
    assert!(s.okta.requests().is_empty());
    assert!(
        s.slack.messages()[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("[HELD]")
    );

    let s = setup().await;
    let poison = sample("dispatcher-poison.json");
    let bad_id = poison
        .records
        .iter()
        .find(|r| r.body.as_deref() == Some("not json {"))
        .unwrap()
        .message_id
        .clone()
        .unwrap();
    assert_eq!(run(&s, &poison.records).await, [bad_id]);

    let s = setup().await;
    s.okta.inject(
        Fault::server_error(503)
            .for_user("li.wei@example.com")
            .forever(),
    );
    let last = sample("dispatcher-last-attempt.json");
    assert_eq!(last.records[0].attributes["ApproximateReceiveCount"], "5");
    assert_eq!(
        run(&s, &last.records).await.len(),
        1,
        "still failing on the last delivery: to the DLQ"
    );
    let m = &s.slack.messages()[0];
    assert_eq!(
        listed_outcome(m, "li.wei@example.com").as_deref(),
        Some("failed"),
        "the summary is posted on the last delivery"
    );
    assert_eq!(
        listed_outcome(m, "ana.lima@example.com").as_deref(),
        Some("suspended")
    );
}

#[tokio::test]
async fn an_injected_kind_of_error_the_dispatcher_does_not_know_is_a_failure_not_a_guess() {
    let s = setup().await;
    s.okta.inject(
        Fault::new(FaultKind::Error {
            status: 400,
            error_code: "E0000999".into(),
            error_summary: "Something new".into(),
        })
        .for_user("ana.lima@example.com")
        .on(Operation::Suspend)
        .forever(),
    );
    assert_eq!(
        run(
            &s,
            &[record(
                "m-1",
                &failed_check("evt-unknown", &["ana.lima@example.com"]),
                1
            )]
        )
        .await,
        ["m-1"],
        "an unknown 4xx waits for a person: the event is kept for a redrive"
    );
    let m = &s.slack.messages()[0];
    assert_eq!(
        listed_outcome(m, "ana.lima@example.com").as_deref(),
        Some("failed")
    );
    assert!(slack_text(m).contains("E0000999"));
    assert_eq!(status(&s, "ana.lima@example.com"), "ACTIVE");
}

// ---------------------------------------------------------------- OAuth service apps

const RSA_2048: &str = include_str!("fixtures/keys/rsa-2048.pem");

/// Registers an app with `key` in the fake org (shaped by `app`) and returns
/// the secret that names it.
fn oauth_secret(
    okta: &FakeOkta,
    key: &str,
    app: impl FnOnce(OAuthApp) -> OAuthApp,
    extra: Value,
) -> Value {
    let client_id = OAuthApp::new_client_id();
    let jwk = okta_keys::public_jwk_from_pkcs8_pem(key, Some("k1")).unwrap();
    okta.register_app(app(OAuthApp::new(client_id.clone(), jwk)));
    let mut secret = json!({"clientId": client_id, "privateKey": key, "keyId": "k1"});
    if let (Some(secret), Some(extra)) = (secret.as_object_mut(), extra.as_object()) {
        secret.extend(extra.clone());
    }
    secret
}

fn two_users(id: &str) -> SqsMessage {
    record(
        id,
        &failed_check(id, &["ana.lima@example.com", "li.wei@example.com"]),
        1,
    )
}

#[tokio::test]
async fn an_oauth_app_with_dpop_suspends_users_with_one_token_handshake() {
    let ec_key = okta_keys::generate_ec_p256_pkcs8_pem();
    for key in [RSA_2048.to_string(), ec_key] {
        let s = setup_okta(|o| oauth_secret(o, &key, |a| a, json!({})), &[]).await;
        assert!(run(&s, &[two_users("m-1")]).await.is_empty());
        assert_eq!(status(&s, "ana.lima@example.com"), "SUSPENDED");
        assert_eq!(status(&s, "li.wei@example.com"), "SUSPENDED");
        let m = &s.slack.messages()[0];
        assert_eq!(
            listed_outcome(m, "li.wei@example.com").as_deref(),
            Some("suspended")
        );
        // A second event reuses the token.
        let third = record("m-2", &failed_check("m-2", &["john.smith@example.com"]), 1);
        assert!(run(&s, &[third]).await.is_empty());
        let tokens = s.okta.token_requests();
        assert_eq!(
            tokens.len(),
            2,
            "the nonce handshake, then one token for both events: {tokens:?}"
        );
        assert!(
            tokens.iter().all(|t| t.dpop_proof),
            "the proof goes up front: no failed grant without one"
        );
        assert_eq!(tokens[0].error.as_deref(), Some("use_dpop_nonce"));
        assert_eq!(tokens[1].status, 200);
        assert_ne!(
            tokens[0].assertion_jti, tokens[1].assertion_jti,
            "a new assertion for the retry"
        );
        assert_eq!(s.okta.tokens_issued()[0].token_type, TokenType::DPoP);
    }
}

#[tokio::test]
async fn apps_without_dpop_work_without_configuration() {
    for policy in [
        DpopPolicy::NotUsedIgnoresProof,
        DpopPolicy::NotUsedRefusesProof,
    ] {
        let s = setup_okta(
            |o| oauth_secret(o, RSA_2048, |a| a.with_dpop(policy), json!({})),
            &[],
        )
        .await;
        assert!(run(&s, &[two_users("m-1")]).await.is_empty(), "{policy:?}");
        assert_eq!(
            status(&s, "ana.lima@example.com"),
            "SUSPENDED",
            "{policy:?}"
        );
        let issued = s.okta.tokens_issued();
        assert_eq!(issued.len(), 1, "{policy:?}");
        assert_eq!(issued[0].token_type, TokenType::Bearer);
        let expected = if policy == DpopPolicy::NotUsedRefusesProof {
            2
        } else {
            1
        };
        assert_eq!(s.okta.token_requests().len(), expected, "{policy:?}");
    }
}

#[tokio::test]
async fn tokens_are_renewed_after_expiry_and_once_after_a_401() {
    let s = setup_okta(|o| oauth_secret(o, RSA_2048, |a| a, json!({})), &[]).await;
    s.okta.set_token_lifetime(Duration::from_secs(2));
    assert!(
        run(
            &s,
            &[record(
                "m-1",
                &failed_check("m-1", &["ana.lima@example.com"]),
                1
            )]
        )
        .await
        .is_empty()
    );
    assert_eq!(s.okta.tokens_issued().len(), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(
        run(
            &s,
            &[record(
                "m-2",
                &failed_check("m-2", &["li.wei@example.com"]),
                1
            )]
        )
        .await
        .is_empty()
    );
    assert_eq!(s.okta.tokens_issued().len(), 2, "renewed before it expired");
    // Okta forgets the token: one 401, one new token, the call retried.
    s.okta.set_token_lifetime(Duration::from_secs(3600));
    s.okta.expire_all_tokens();
    assert!(
        run(
            &s,
            &[record(
                "m-3",
                &failed_check("m-3", &["john.smith@example.com"]),
                1
            )]
        )
        .await
        .is_empty()
    );
    assert_eq!(status(&s, "jsmith@corp.example.com"), "SUSPENDED");
    assert_eq!(s.okta.tokens_issued().len(), 3);
    let jtis: Vec<String> = s
        .okta
        .token_requests()
        .into_iter()
        .filter_map(|t| t.assertion_jti)
        .collect();
    let unique: std::collections::HashSet<&String> = jtis.iter().collect();
    assert_eq!(
        unique.len(),
        jtis.len(),
        "the client never reuses an assertion"
    );
}

#[tokio::test]
async fn a_refused_app_is_reported_at_once_kept_for_a_redrive_and_the_redrive_reported() {
    // The app was not granted okta.roles.read, which the default scopes ask for.
    let s = setup_okta(
        |o| {
            oauth_secret(
                o,
                RSA_2048,
                |a| a.with_scopes(["okta.users.read", "okta.users.manage"]),
                json!({}),
            )
        },
        &[],
    )
    .await;
    let delivery = |n: u32| {
        let mut r = two_users("m-1");
        r.attributes
            .insert("ApproximateReceiveCount".into(), n.to_string());
        r
    };
    // The first delivery tells the team at once, and keeps the event.
    assert_eq!(run(&s, &[delivery(1)]).await, ["m-1"], "kept for a redrive");
    let first = slack_text(&s.slack.messages()[0]);
    assert_eq!(
        first
            .matches(
                "was refused: invalid_scope: The following scopes are not allowed: okta.roles.read"
            )
            .count(),
        1,
        "{first}"
    );
    assert!(first.contains("*2 users failed*"), "{first}");
    assert!(
        first.contains("A person must fix what failed below"),
        "{first}"
    );
    assert!(
        first.contains("retried 4 more times, then kept in the dead-letter queue"),
        "{first}"
    );
    // Later deliveries that change nothing say nothing.
    for n in 2..5 {
        assert_eq!(run(&s, &[delivery(n)]).await, ["m-1"]);
    }
    assert_eq!(s.slack.messages().len(), 1, "no repeat of the same summary");
    // The last one says it goes to the dead-letter queue.
    assert_eq!(
        run(&s, &[delivery(5)]).await,
        ["m-1"],
        "to the dead-letter queue"
    );
    assert_eq!(s.slack.messages().len(), 2);
    assert!(slack_text(&s.slack.messages()[1]).contains("This was the last delivery"));
    assert!(s.okta.writes().is_empty());
    assert_eq!(status(&s, "ana.lima@example.com"), "ACTIVE");

    // A person grants the scope, then redrives: the redriven message is
    // delivered afresh, and succeeds.
    let client_id = s.okta.apps()[0].client_id.clone();
    let jwk = s.okta.apps()[0].public_jwk.clone();
    s.okta.register_app(OAuthApp::new(client_id, jwk));
    tokio::time::sleep(dispatcher::okta::auth::REFUSAL_MEMORY).await;
    assert!(
        run(&s, &[delivery(1)]).await.is_empty(),
        "the redrive succeeds"
    );
    assert_eq!(status(&s, "ana.lima@example.com"), "SUSPENDED");
    let done = slack_text(&s.slack.messages()[2]);
    assert_eq!(
        listed_outcome(&s.slack.messages()[2], "li.wei@example.com").as_deref(),
        Some("suspended"),
        "{done}"
    );
}

#[tokio::test]
async fn a_call_outside_the_granted_scopes_is_a_clear_failure() {
    // The secret narrows the scopes: no okta.roles.read, so the admin check is refused.
    let s = setup_okta(
        |o| {
            oauth_secret(
                o,
                RSA_2048,
                |a| a,
                json!({"scopes": "okta.users.read okta.users.manage"}),
            )
        },
        &[],
    )
    .await;
    assert_eq!(
        run(
            &s,
            &[record(
                "m-1",
                &failed_check("m-1", &["ana.lima@example.com"]),
                1
            )]
        )
        .await,
        ["m-1"],
        "kept until a person grants the scope"
    );
    let m = &s.slack.messages()[0];
    assert_eq!(
        listed_outcome(m, "ana.lima@example.com").as_deref(),
        Some("failed")
    );
    assert!(
        slack_text(m).contains("could not check the user&#39;s admin roles")
            || slack_text(m).contains("could not check the user's admin roles"),
        "{}",
        slack_text(m)
    );
    assert!(slack_text(m).contains("403 E0000006"), "{}", slack_text(m));
    assert!(
        s.okta.writes().is_empty(),
        "nothing written without knowing the roles"
    );
}

#[tokio::test]
async fn universal_logout_signs_users_out_everywhere_or_says_once_it_is_not_available() {
    for auth in ["ssws", "oauth"] {
        let secret = |o: &FakeOkta| match auth {
            "ssws" => json!({"apiToken": DEMO_OKTA_TOKEN}),
            _ => oauth_secret(o, RSA_2048, |a| a, json!({})),
        };
        let s = setup_okta(secret, &[("UNIVERSAL_LOGOUT", "true")]).await;
        assert!(run(&s, &[two_users("m-1")]).await.is_empty(), "{auth}");
        assert_eq!(
            s.okta
                .user("ana.lima@example.com")
                .unwrap()
                .universal_logouts,
            1,
            "{auth}"
        );
        let text = slack_text(&s.slack.messages()[0]);
        assert_eq!(
            text.matches("signed out of every app that supports Universal Logout")
                .count(),
            2,
            "{auth}: {text}"
        );
        if auth == "oauth" {
            assert!(
                s.okta.token_requests()[0]
                    .scopes
                    .iter()
                    .any(|sc| sc == "okta.universalLogout.manage")
            );
        }

        s.okta.set_universal_logout_licensed(false);
        let next = record(
            "m-2",
            &failed_check(
                "m-2",
                &["john.smith@example.com", "omar.haddad@example.com"],
            ),
            1,
        );
        assert!(run(&s, &[next]).await.is_empty(), "{auth}");
        let m = &s.slack.messages()[1];
        assert_eq!(
            listed_outcome(m, "john.smith@example.com").as_deref(),
            Some("suspended")
        );
        let text = slack_text(m);
        assert_eq!(
            text.matches("Universal Logout is not available in this org")
                .count(),
            1,
            "{auth}: {text}"
        );
    }
}

#[tokio::test]
async fn a_malformed_okta_secret_names_the_secret_and_never_its_contents() {
    let s = setup_okta(|_| json!({"clientId": "0oa1", "privateKey": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----"}), &[]).await;
    let mut last = record("m-1", &failed_check("m-1", &["ana.lima@example.com"]), 5);
    last.attributes
        .insert("ApproximateReceiveCount".into(), "5".into());
    let (failures, logs) = logs::capture(run(&s, &[last])).await;
    assert_eq!(failures, ["m-1"]);
    let text = slack_text(&s.slack.messages()[0]);
    assert!(
        text.contains(&format!(
            "secret {} is malformed: the privateKey of the OAuth app 0oa1 is unusable",
            s.okta_secret_id
        )),
        "{text}"
    );
    for leak in ["c2VjcmV0LWtleS1ieXRlcw", "secret-key-bytes"] {
        assert!(
            !text.contains(leak) && !logs.text().contains(leak),
            "{leak}"
        );
    }
}

#[tokio::test]
async fn no_key_assertion_token_or_proof_appears_in_any_log_line() {
    let s = setup_okta(
        |o| oauth_secret(o, RSA_2048, |a| a, json!({})),
        &[("UNIVERSAL_LOGOUT", "true")],
    )
    .await;
    s.okta.set_token_lifetime(Duration::from_secs(3600));
    let (failures, logs) = logs::capture(async {
        let failures = run(&s, &[two_users("m-1")]).await;
        s.okta.expire_all_tokens();
        failures
            .into_iter()
            .chain(
                run(
                    &s,
                    &[record(
                        "m-2",
                        &failed_check("m-2", &["john.smith@example.com"]),
                        1,
                    )],
                )
                .await,
            )
            .collect::<Vec<_>>()
    })
    .await;
    assert!(failures.is_empty());
    let text = logs.text();
    assert!(
        text.contains("okta token request"),
        "the token requests are logged"
    );
    // Every JWT (assertion, proof, Okta's access tokens) starts with a
    // base64url JSON header: `eyJ`.
    assert!(!text.contains("eyJ"), "a JWT appeared in the logs");
    for line in RSA_2048.lines().filter(|l| !l.starts_with("-----")) {
        assert!(
            !text.contains(line),
            "a line of the private key appeared in the logs"
        );
    }
    assert!(!text.contains("access_token") && !text.contains("client_assertion="));
}

#[tokio::test]
async fn a_connectivity_test_or_a_held_event_never_fetches_a_token() {
    let s = setup_okta(
        |o| oauth_secret(o, RSA_2048, |a| a, json!({})),
        &[("MAX_USERS_PER_EVENT", "1")],
    )
    .await;
    let test = json!({"id": "t-1", "detail-type": "WebhookTest", "detail": {"usersFailing": ["ana.lima@example.com"]}});
    let held = record(
        "m-2",
        &failed_check("m-2", &["ana.lima@example.com", "li.wei@example.com"]),
        1,
    );
    assert!(
        run(&s, &[record("m-1", &test.to_string(), 1), held])
            .await
            .is_empty()
    );
    assert_eq!(s.slack.messages().len(), 2);
    assert!(
        s.okta.token_requests().is_empty(),
        "no Okta call, not even for a token"
    );
    assert!(s.okta.requests().is_empty());
}

#[tokio::test]
async fn odd_entries_are_reported_invalid_and_the_valid_users_acted_on() {
    let s = setup().await;
    let body = json!({"id": "odd-1", "detail-type": "FAILED_CHECK", "time": 1730000000,
        "detail": {"checkId": "no-mfa", "severity": 3, "title": "No MFA",
            "usersFailing": ["ana.lima@example.com", "", "  ", 7, "a\u{7}b@example.com", "x".repeat(300)],
            "login": ["li.wei@example.com"]}})
    .to_string();
    let (failures, logs) = logs::capture(run(&s, &[record("m-1", &body, 1)])).await;
    assert!(
        failures.is_empty(),
        "invalid entries are final, not retried"
    );
    assert_eq!(status(&s, "ana.lima@example.com"), "SUSPENDED");
    assert_eq!(
        status(&s, "li.wei@example.com"),
        "ACTIVE",
        "a login of the wrong type is not read"
    );
    let text = slack_text(&s.slack.messages()[0]);
    assert!(text.contains("*7 users*: 1 suspended, 6 invalid"), "{text}");
    for why in [
        "it is empty",
        "not a login but a number",
        "control character",
        "longer than 256",
        "not a login but an array",
    ] {
        assert!(text.contains(why), "{why}: {text}");
    }
    assert!(text.contains("Ignored in this event (wrong type): `time` is a number, not a string; `detail.severity` is a number"), "{text}");
    let invalid_logged = logs
        .lines()
        .into_iter()
        .filter(|l| l["outcome"] == "invalid" && l["event_id"] == "odd-1")
        .count();
    assert_eq!(invalid_logged, 6);
    let okta_users: Vec<String> = s.okta.requests().into_iter().map(|r| r.path).collect();
    assert!(
        okta_users
            .iter()
            .all(|p| !p.contains("%07") && !p.contains("xxxx")),
        "{okta_users:?}"
    );
}

#[tokio::test]
async fn an_event_of_5000_users_is_held_whole() {
    let s = setup().await;
    let users: Vec<String> = (0..5000)
        .map(|i| format!("user{i:05}@example.com"))
        .collect();
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    assert!(
        run(&s, &[record("m-1", &failed_check("big", &users), 1)])
            .await
            .is_empty()
    );
    assert!(s.okta.requests().is_empty());
    let m = &s.slack.messages()[0];
    assert!(m["text"].as_str().unwrap().starts_with("[HELD]"));
    assert!(slack_text(m).contains("5000 users"), "{}", slack_text(m));
}

#[tokio::test]
async fn act_on_providers_skips_users_whose_check_failed_elsewhere() {
    let s = setup_with(&[("ACT_ON_PROVIDERS", "okta")]).await;
    let body = json!({"id": "prov-1", "detail-type": "FAILED_CHECK",
        "detail": {"checkId": "no-mfa", "severity": "critical",
            "usersFailing": ["ana.lima@example.com", "li.wei@example.com", "john.smith@example.com"],
            "loginDetails": [
                {"login": "ana.lima@example.com", "details": [{"key": "providersFailingChecks", "value": "[\"providerFailingCheck-no-mfa-0f1e__OKTA__77aa\"]"}]},
                {"login": "li.wei@example.com", "details": [{"key": "providersFailingChecks", "value": "[\"providerFailingCheck-no-mfa-0f1e__DUO__77aa\"]"}]}
            ]}})
    .to_string();
    assert!(run(&s, &[record("m-1", &body, 1)]).await.is_empty());
    assert_eq!(status(&s, "ana.lima@example.com"), "SUSPENDED");
    assert_eq!(status(&s, "li.wei@example.com"), "ACTIVE");
    assert_eq!(status(&s, "jsmith@corp.example.com"), "ACTIVE");
    let m = &s.slack.messages()[0];
    assert_eq!(
        listed_outcome(m, "li.wei@example.com").as_deref(),
        Some("skipped")
    );
    assert_eq!(
        listed_outcome(m, "john.smith@example.com").as_deref(),
        Some("skipped")
    );
    assert!(
        slack_text(m).contains("the check failed on DUO, not on OKTA"),
        "{}",
        slack_text(m)
    );
    let touched: Vec<String> = s.okta.requests().into_iter().map(|r| r.path).collect();
    assert!(
        touched
            .iter()
            .all(|p| !p.contains("li.wei") && !p.contains("john.smith")),
        "no Okta call for a skipped user: {touched:?}"
    );
}

// ---------------------------------------------------------------- decisions from Slack

const APPROVER: &str = "U0APPROVER";

/// A setup with the store and an approver; events of more than 2 users are held.
async fn setup_decisions() -> (Setup, shared::store::Store, wiremock::MockServer) {
    let table = unique("store");
    let s = setup_with(&[
        ("STORE_TABLE", table.as_str()),
        ("SLACK_APPROVERS", APPROVER),
        ("MAX_USERS_PER_EVENT", "2"),
    ])
    .await;
    let store = shared::store::Store::new(s.aws.dynamodb.clone(), table);
    let response_url = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&response_url)
        .await;
    (s, store, response_url)
}

/// The decision message the actions function queues after recording the click.
async fn decision(
    store: &shared::store::Store,
    response_url: &wiremock::MockServer,
    button: shared::decision::Button,
) -> SqsMessage {
    let at = time::OffsetDateTime::now_utc();
    match &button.user {
        None => {
            store
                .record_decision(&button.event_id, button.action, APPROVER, at)
                .await
                .unwrap();
        }
        Some(user) => {
            store
                .record_undo(
                    &user.okta_user_id,
                    &button.event_id,
                    &user.login,
                    APPROVER,
                    at,
                )
                .await
                .unwrap();
        }
    }
    let d = shared::decision::Decision::new(
        &button,
        APPROVER,
        at,
        &format!("{}/actions/T1/1/x", response_url.uri()),
    )
    .unwrap();
    let m = d.to_message();
    let attributes: serde_json::Map<String, Value> = m
        .attributes
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                json!({"stringValue": v, "dataType": "String"}),
            )
        })
        .collect();
    serde_json::from_value(json!({
        "messageId": unique("decision"), "receiptHandle": "rh", "body": m.body,
        "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": m.group_id, "MessageDeduplicationId": m.dedup_id},
        "messageAttributes": attributes, "eventSource": "aws:sqs", "awsRegion": "us-east-1"
    }))
    .unwrap()
}

async fn replies(server: &wiremock::MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn buttons(message: &Value, action_id: &str) -> usize {
    message
        .to_string()
        .matches(&format!("\"action_id\":\"{action_id}\""))
        .count()
}

#[tokio::test]
async fn without_approvers_summaries_have_no_buttons() {
    let table = unique("store");
    let s = setup_with(&[
        ("STORE_TABLE", table.as_str()),
        ("MAX_USERS_PER_EVENT", "1"),
    ])
    .await;
    assert!(run(&s, &[two_users("m-1")]).await.is_empty());
    let m = &s.slack.messages()[0];
    assert_eq!(
        buttons(m, "approve") + buttons(m, "dismiss") + buttons(m, "unsuspend"),
        0
    );
}

#[tokio::test]
async fn an_approved_held_event_acts_on_what_was_held_and_protection_still_wins() {
    let (s, store, replies_to) = setup_decisions().await;
    let users = [
        "ana.lima@example.com",
        "li.wei@example.com",
        "root.admin@example.com",
    ];
    assert!(
        run(&s, &[record("m-1", &failed_check("held-1", &users), 1)])
            .await
            .is_empty()
    );
    assert!(s.okta.requests().is_empty(), "held: no Okta call");
    let held = &s.slack.messages()[0];
    assert_eq!(
        (buttons(held, "approve"), buttons(held, "dismiss")),
        (1, 1),
        "{held}"
    );
    assert!(
        held.to_string().contains("3 users"),
        "the confirm says how many"
    );

    let approve = decision(
        &store,
        &replies_to,
        shared::decision::Button::approve("held-1").unwrap(),
    )
    .await;
    assert!(run(&s, std::slice::from_ref(&approve)).await.is_empty());
    assert_eq!(status(&s, "ana.lima@example.com"), "SUSPENDED");
    assert_eq!(status(&s, "li.wei@example.com"), "SUSPENDED");
    assert_eq!(
        status(&s, "root.admin@example.com"),
        "ACTIVE",
        "approval never overrides admin protection"
    );
    let rewritten = &replies(&replies_to).await[0];
    assert_eq!(rewritten["replace_original"], true);
    let text = rewritten.to_string();
    assert!(text.contains("Approved* by <@U0APPROVER>"), "{text}");
    assert_eq!(
        buttons(rewritten, "unsuspend"),
        2,
        "an Unsuspend per user we suspended: {text}"
    );
    assert_eq!(
        store
            .get_decision("held-1")
            .await
            .unwrap()
            .unwrap()
            .result
            .as_deref(),
        Some("approved: 2 suspended, 1 protected")
    );

    // A redelivered decision is not carried out twice.
    let writes = s.okta.writes().len();
    assert!(run(&s, &[approve]).await.is_empty());
    assert_eq!(s.okta.writes().len(), writes);
}

#[tokio::test]
async fn unsuspend_undoes_only_what_this_product_did() {
    let (s, store, replies_to) = setup_decisions().await;
    assert!(
        run(
            &s,
            &[record(
                "m-1",
                &failed_check("e-1", &["ana.lima@example.com"]),
                1
            )]
        )
        .await
        .is_empty()
    );
    let summary = &s.slack.messages()[0];
    assert_eq!(buttons(summary, "unsuspend"), 1, "{summary}");
    let ana = s.okta.user("ana.lima@example.com").unwrap().id;
    let undo = decision(
        &store,
        &replies_to,
        shared::decision::Button::unsuspend("e-1", &ana, "ana.lima@example.com").unwrap(),
    )
    .await;
    assert!(run(&s, &[undo]).await.is_empty());
    assert_eq!(status(&s, "ana.lima@example.com"), "ACTIVE");
    assert!(
        replies(&replies_to).await[0]["text"]
            .as_str()
            .unwrap()
            .contains("was *unsuspended* by <@U0APPROVER>")
    );

    // Omar was SUSPENDED before; we never suspended him.
    let omar = s.okta.user("omar.haddad@example.com").unwrap().id;
    let writes = s.okta.writes().len();
    let not_ours = decision(
        &store,
        &replies_to,
        shared::decision::Button::unsuspend("e-1", &omar, "omar.haddad@example.com").unwrap(),
    )
    .await;
    assert!(run(&s, &[not_ours]).await.is_empty());
    assert_eq!(status(&s, "omar.haddad@example.com"), "SUSPENDED");
    assert_eq!(s.okta.writes().len(), writes, "no write");
    let refused = replies(&replies_to).await[1]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        refused.contains("Unsuspend refused: oort-okta-lockout has no record of suspending"),
        "{refused}"
    );

    // Ana again: already active, refused.
    let again = decision(
        &store,
        &replies_to,
        shared::decision::Button::unsuspend("e-1", &ana, "ana.lima@example.com").unwrap(),
    )
    .await;
    assert!(
        run(&s, &[again]).await.is_empty(),
        "done once: the second is acknowledged"
    );
    assert_eq!(s.okta.writes().len(), writes);
}

#[tokio::test]
async fn dismiss_records_and_changes_nothing() {
    let (s, store, replies_to) = setup_decisions().await;
    let users = [
        "ana.lima@example.com",
        "li.wei@example.com",
        "john.smith@example.com",
    ];
    assert!(
        run(&s, &[record("m-1", &failed_check("held-2", &users), 1)])
            .await
            .is_empty()
    );
    let dismiss = decision(
        &store,
        &replies_to,
        shared::decision::Button::dismiss("held-2").unwrap(),
    )
    .await;
    assert!(run(&s, &[dismiss]).await.is_empty());
    assert!(s.okta.requests().is_empty());
    let text = replies(&replies_to).await[0].to_string();
    assert!(text.contains("Dismissed* by <@U0APPROVER>"), "{text}");
    assert_eq!(
        store
            .get_decision("held-2")
            .await
            .unwrap()
            .unwrap()
            .result
            .as_deref(),
        Some("dismissed: nothing done")
    );
}

#[tokio::test]
async fn an_expired_held_event_is_not_approved() {
    let (s, store, replies_to) = setup_decisions().await;
    let body = failed_check(
        "old-1",
        &[
            "ana.lima@example.com",
            "li.wei@example.com",
            "john.smith@example.com",
        ],
    );
    let long_ago = time::OffsetDateTime::now_utc() - time::Duration::hours(100);
    let held = shared::store::HeldEvent::new(
        "old-1",
        &body,
        "over the cap",
        3,
        long_ago,
        Duration::from_secs(72 * 3600),
    );
    store.put_held_event(&held).await.unwrap();
    let approve = decision(
        &store,
        &replies_to,
        shared::decision::Button::approve("old-1").unwrap(),
    )
    .await;
    assert!(run(&s, &[approve]).await.is_empty());
    assert!(s.okta.requests().is_empty());
    assert!(
        replies(&replies_to).await[0]["text"]
            .as_str()
            .unwrap()
            .contains("can no longer be approved: it expired")
    );
}

#[tokio::test]
async fn an_okta_failure_during_an_approved_action_is_retried_and_reported() {
    let (s, store, replies_to) = setup_decisions().await;
    let users = [
        "ana.lima@example.com",
        "li.wei@example.com",
        "john.smith@example.com",
    ];
    assert!(
        run(&s, &[record("m-1", &failed_check("held-3", &users), 1)])
            .await
            .is_empty()
    );
    s.okta.inject(
        Fault::server_error(503)
            .for_user("li.wei@example.com")
            .forever(),
    );
    let mut approve = decision(
        &store,
        &replies_to,
        shared::decision::Button::approve("held-3").unwrap(),
    )
    .await;
    let id = approve.message_id.clone().unwrap();
    assert_eq!(
        run(&s, std::slice::from_ref(&approve)).await,
        std::slice::from_ref(&id),
        "retried"
    );
    assert!(replies(&replies_to).await.is_empty(), "nothing final yet");
    approve
        .attributes
        .insert("ApproximateReceiveCount".into(), "5".into());
    assert_eq!(run(&s, &[approve]).await, [id], "to the dead-letter queue");
    let text = replies(&replies_to).await[0].to_string();
    assert!(text.contains("`li.wei@example.com`: *failed*"), "{text}");
    assert_eq!(status(&s, "ana.lima@example.com"), "SUSPENDED");
}

#[tokio::test]
async fn a_store_that_cannot_be_written_is_never_a_silent_success() {
    let s = setup_with(&[
        ("STORE_TABLE", "missing-table"),
        ("SLACK_APPROVERS", APPROVER),
        ("MAX_USERS_PER_EVENT", "1"),
    ])
    .await;
    assert_eq!(
        run(&s, &[two_users("m-1")]).await,
        ["m-1"],
        "retried, not posted with a button we cannot honour"
    );
    assert!(s.slack.messages().is_empty());
}
