//! End-to-end tests through the deployed path: HTTP to the function URL, the
//! compiled `ingest` and `dispatcher` binaries under the Runtime API
//! emulator, SQS and Secrets Manager in moto, the SQS event source mapping,
//! and the local Okta and Slack stand-ins.
//!
//! Each test starts and stops its own pipeline on free ports. The binaries
//! must be built first (`cargo build --bins`; `make test` does).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::StreamExt as _;
use integration_tests::pipeline::{
    Webhook, failed_check, slack_texts, start, test_options, wait_for, webhook_test,
};
use local_pipeline::event_source::BatchOutcome;
use local_pipeline::fake_okta::{Fault, SeedUser};
use local_pipeline::pipeline::Pipeline;

/// Per-user outcomes the dispatcher logged for one event, by user.
fn outcomes_of(pipeline: &Pipeline, event_id: &str) -> BTreeMap<String, String> {
    pipeline
        .user_outcomes()
        .into_iter()
        .filter(|o| o.event_id.as_deref() == Some(event_id))
        .map(|o| (o.user, o.outcome))
        .collect()
}

/// Messages the event source handed to the dispatcher, by message id, with
/// the receive counts they were delivered with.
fn deliveries(pipeline: &Pipeline) -> HashMap<String, Vec<u32>> {
    let mut seen: HashMap<String, Vec<u32>> = HashMap::new();
    for report in pipeline.batch_reports() {
        for message in report.messages {
            seen.entry(message.message_id)
                .or_default()
                .push(message.receive_count);
        }
    }
    seen
}

/// Waits until the queue is empty and no batch is in flight: whatever the
/// pipeline would still do (a stray extra summary, a second decision) has
/// happened by then, so what a test then finds missing will not come.
async fn settle(pipeline: &Pipeline) {
    pipeline
        .wait_until_drained(Duration::from_secs(60))
        .await
        .expect("the queue drains");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_check_suspends_the_right_users_clears_their_sessions_and_posts_one_summary() {
    let pipeline = start(test_options()).await;
    let webhook = Webhook::new(&pipeline);
    let users = [
        "ana.lima@example.com",
        "li.wei@example.com",
        "omar.haddad@example.com",
        "root.admin@example.com",
        "john.smith@example.com",
        "ghost@example.com",
    ];
    let (status, answer) = webhook
        .post(&failed_check("e2e-failed-check", &users))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "queued");
    assert_eq!(answer["eventId"], "e2e-failed-check");

    pipeline
        .wait_until_drained(Duration::from_secs(30))
        .await
        .unwrap();
    let slack = pipeline.slack().unwrap();
    slack.wait_for_messages(1, Duration::from_secs(10)).await;
    settle(&pipeline).await;

    let okta = pipeline.okta().unwrap();
    for login in [
        "ana.lima@example.com",
        "li.wei@example.com",
        "jsmith@corp.example.com",
    ] {
        let user = okta.user(login).unwrap();
        assert_eq!(user.status, "SUSPENDED", "{login}");
        assert_eq!(user.suspended_count, 1, "{login}");
        assert!(
            user.sessions_cleared >= 1 && user.oauth_tokens_revoked,
            "{login}: sessions and tokens cleared"
        );
    }
    let admin = okta.user("root.admin@example.com").unwrap();
    assert_eq!(
        (
            admin.status.as_str(),
            admin.suspended_count,
            admin.sessions_cleared
        ),
        ("ACTIVE", 0, 0),
        "the admin is protected"
    );
    let omar = okta.user("omar.haddad@example.com").unwrap();
    assert_eq!(
        (omar.status.as_str(), omar.suspended_count),
        ("SUSPENDED", 0),
        "already suspended: not suspended again"
    );
    let untouched = [
        "ops1@example.com",
        "ops2@example.com",
        "former.employee@example.com",
        "svc.backup",
    ];
    for login in untouched {
        let user = okta.user(login).unwrap();
        assert_eq!(
            (user.suspended_count, user.sessions_cleared),
            (0, 0),
            "{login} was not named"
        );
    }

    let outcomes = outcomes_of(&pipeline, "e2e-failed-check");
    let expected: BTreeMap<String, String> = [
        ("ana.lima@example.com", "suspended"),
        ("li.wei@example.com", "suspended"),
        ("omar.haddad@example.com", "already suspended"),
        ("root.admin@example.com", "protected"),
        ("john.smith@example.com", "suspended"),
        ("ghost@example.com", "not found"),
    ]
    .into_iter()
    .map(|(u, o)| (u.to_string(), o.to_string()))
    .collect();
    assert_eq!(outcomes, expected);

    let texts = slack_texts(&pipeline);
    assert_eq!(texts.len(), 1, "exactly one summary: {texts:#?}");
    assert!(
        texts[0].contains("e2e-failed-check") && texts[0].contains("ghost@example.com"),
        "{}",
        texts[0]
    );
    let delivered = deliveries(&pipeline);
    assert_eq!(delivered.len(), 1);
    assert!(
        delivered.values().all(|counts| counts == &[1]),
        "delivered once: {delivered:?}"
    );
    pipeline.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_test_posts_a_notice_and_never_writes_to_okta() {
    let pipeline = start(test_options()).await;
    let webhook = Webhook::new(&pipeline);
    let (status, answer) = webhook.post(&webhook_test("e2e-webhook-test")).await;
    assert_eq!(status, 200, "{answer}");

    pipeline
        .wait_until_drained(Duration::from_secs(30))
        .await
        .unwrap();
    pipeline
        .slack()
        .unwrap()
        .wait_for_messages(1, Duration::from_secs(10))
        .await;
    settle(&pipeline).await;

    let okta = pipeline.okta().unwrap();
    assert!(
        okta.writes().is_empty(),
        "no Okta write: {:?}",
        okta.writes()
    );
    assert_eq!(okta.user("ana.lima@example.com").unwrap().status, "ACTIVE");
    let texts = slack_texts(&pipeline);
    assert_eq!(texts.len(), 1, "{texts:#?}");
    assert!(texts[0].contains("e2e-webhook-test"), "{}", texts[0]);
    pipeline.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_webhook_delivered_twice_is_dispatched_once() {
    let pipeline = start(test_options()).await;
    let webhook = Webhook::new(&pipeline);
    let event = failed_check("e2e-duplicate", &["li.wei@example.com"]);

    let (first, answer) = webhook.post(&event).await;
    assert_eq!(first, 200, "{answer}");
    pipeline
        .wait_until_drained(Duration::from_secs(30))
        .await
        .unwrap();
    // The sender retries after the first delivery was fully processed: SQS
    // still knows the de-duplication id (5 minutes), so nothing is queued.
    let (second, answer) = webhook.post(&event).await;
    assert_eq!(second, 200, "a duplicate is still acknowledged: {answer}");
    pipeline
        .wait_until_drained(Duration::from_secs(30))
        .await
        .unwrap();
    settle(&pipeline).await;

    let delivered = deliveries(&pipeline);
    assert_eq!(delivered.len(), 1, "one message dispatched: {delivered:?}");
    assert_eq!(pipeline.slack().unwrap().messages().len(), 1, "one summary");
    assert_eq!(
        pipeline
            .okta()
            .unwrap()
            .user("li.wei@example.com")
            .unwrap()
            .suspended_count,
        1
    );
    pipeline.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_okta_outage_for_one_user_is_redelivered_and_resolved_with_one_summary() {
    let pipeline = start(test_options()).await;
    let webhook = Webhook::new(&pipeline);
    let okta = pipeline.okta().unwrap();
    okta.inject(
        Fault::server_error(503)
            .for_user("li.wei@example.com")
            .forever(),
    );

    let (status, answer) = webhook
        .post(&failed_check(
            "e2e-outage",
            &["ana.lima@example.com", "li.wei@example.com"],
        ))
        .await;
    assert_eq!(status, 200, "{answer}");
    let message_id = answer["messageId"].as_str().unwrap().to_string();

    // The first delivery reports li.wei's message as failed: it stays queued.
    wait_for("the first delivery to fail", Duration::from_secs(20), || {
        let reports = pipeline.batch_reports();
        async move {
            reports.iter().find(|r| matches!(&r.outcome, BatchOutcome::Answered { failed } if !failed.is_empty())).map(|_| ())
        }
    })
    .await;
    assert!(
        pipeline.slack().unwrap().messages().is_empty(),
        "no summary while a user can still be retried"
    );
    let ana = okta.user("ana.lima@example.com").unwrap();
    assert_eq!(ana.status, "SUSPENDED", "done on the first delivery");
    okta.clear_requests();
    okta.clear_faults();

    pipeline
        .wait_until_drained(Duration::from_secs(30))
        .await
        .unwrap();
    pipeline
        .slack()
        .unwrap()
        .wait_for_messages(1, Duration::from_secs(10))
        .await;
    settle(&pipeline).await;

    assert_eq!(
        deliveries(&pipeline).get(&message_id),
        Some(&vec![1, 2]),
        "redelivered once"
    );
    let li = okta.user("li.wei@example.com").unwrap();
    assert_eq!((li.status.as_str(), li.suspended_count), ("SUSPENDED", 1));
    assert!(li.oauth_tokens_revoked);
    assert_eq!(
        okta.user("ana.lima@example.com").unwrap().suspended_count,
        1,
        "suspended once across deliveries"
    );
    let about_ana: Vec<String> = okta
        .requests()
        .iter()
        .filter(|r| r.user_id.as_deref() == Some(ana.id.as_str()) || r.path.contains("ana.lima"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        about_ana.is_empty(),
        "the redelivery does not read ana.lima again: {about_ana:?}"
    );
    let texts = slack_texts(&pipeline);
    assert_eq!(texts.len(), 1, "the summary is posted once: {texts:#?}");
    assert!(texts[0].contains("li.wei@example.com"), "{}", texts[0]);
    assert_eq!(
        outcomes_of(&pipeline, "e2e-outage")
            .get("ana.lima@example.com")
            .map(String::as_str),
        Some("suspended"),
        "reported as the first delivery left her"
    );
    assert_eq!(pipeline.dlq_depth().await.unwrap().total(), 0);
    pipeline.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_outlasting_max_receive_count_lands_in_the_dlq_and_the_last_summary_reports_it() {
    let mut options = test_options();
    options.max_receive_count = 2;
    let pipeline = start(options).await;
    let webhook = Webhook::new(&pipeline);
    let okta = pipeline.okta().unwrap();
    okta.inject(
        Fault::server_error(503)
            .for_user("li.wei@example.com")
            .forever(),
    );

    let (status, answer) = webhook
        .post(&failed_check(
            "e2e-dlq",
            &["ana.lima@example.com", "li.wei@example.com"],
        ))
        .await;
    assert_eq!(status, 200, "{answer}");
    let message_id = answer["messageId"].as_str().unwrap().to_string();

    wait_for(
        "the message in the dead-letter queue",
        Duration::from_secs(30),
        || async { (pipeline.dlq_depth().await.unwrap().total() >= 1).then_some(()) },
    )
    .await;
    pipeline
        .wait_until_drained(Duration::from_secs(15))
        .await
        .unwrap();
    settle(&pipeline).await;

    let dlq = pipeline.dlq_bodies().await.unwrap();
    assert_eq!(dlq.len(), 1);
    assert!(dlq[0].contains("e2e-dlq"), "{}", dlq[0]);
    assert_eq!(
        deliveries(&pipeline).get(&message_id),
        Some(&vec![1, 2]),
        "delivered maxReceiveCount times"
    );
    let texts = slack_texts(&pipeline);
    assert_eq!(
        texts.len(),
        1,
        "one summary, on the last delivery: {texts:#?}"
    );
    assert!(
        texts[0].contains("li.wei@example.com") && texts[0].contains("failed"),
        "{}",
        texts[0]
    );
    assert_eq!(
        outcomes_of(&pipeline, "e2e-dlq")
            .get("li.wei@example.com")
            .map(String::as_str),
        Some("failed")
    );
    assert_eq!(okta.user("li.wei@example.com").unwrap().status, "ACTIVE");
    assert_eq!(
        okta.user("ana.lima@example.com").unwrap().suspended_count,
        1
    );
    pipeline.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_200_deliveries_16_in_flight_is_all_answered_and_dispatched_once_each() {
    const DELIVERIES: usize = 200;
    let mut options = test_options();
    options.ingest_instances = 4;
    options.dispatcher_instances = 2;
    options.poller_concurrency = 4;
    // Generous here: on two busy cores, a batch of 10 events may take a while.
    options.visibility_timeout = Duration::from_secs(20);
    options.dispatcher_timeout = Duration::from_secs(20);
    let pipeline = start(options).await;
    let okta = pipeline.okta().unwrap();
    // Okta's default 600/min bucket is not what this test is about.
    okta.set_rate_limit(1_000_000);
    let ids: Vec<String> = (0..DELIVERIES)
        .map(|i| format!("e2e-burst-{i:03}"))
        .collect();
    for id in &ids {
        okta.add_user(SeedUser::new(
            format!("{id}@example.com"),
            format!("{id}@example.com"),
            "ACTIVE",
        ));
    }

    let webhook = Webhook::new(&pipeline);
    let statuses: Vec<(String, u16)> = futures::stream::iter(ids.clone())
        .map(|id| {
            let webhook = webhook.clone();
            async move {
                let (status, _) = webhook
                    .post(&failed_check(&id, &[&format!("{id}@example.com")]))
                    .await;
                (id, status)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let not_ok: Vec<&(String, u16)> = statuses.iter().filter(|(_, s)| *s != 200).collect();
    assert!(not_ok.is_empty(), "every delivery answered 200: {not_ok:?}");

    let slack = pipeline.slack().unwrap();
    slack
        .wait_for_messages(DELIVERIES, Duration::from_secs(120))
        .await;
    pipeline
        .wait_until_drained(Duration::from_secs(60))
        .await
        .unwrap();
    settle(&pipeline).await;

    let texts = slack_texts(&pipeline);
    let delivered = deliveries(&pipeline);
    let repeated: Vec<(&String, &Vec<u32>)> = delivered
        .iter()
        .filter(|(_, counts)| counts != &&vec![1])
        .collect();
    assert_eq!(
        texts.len(),
        DELIVERIES,
        "one summary per event; messages delivered more than once: {repeated:?}; event source {:?}; dispatcher {:?}",
        pipeline.event_source().stats(),
        pipeline.dispatcher().stats()
    );
    for id in &ids {
        let mentions = texts
            .iter()
            .filter(|t| t.contains(&format!("`{id}`")))
            .count();
        assert_eq!(mentions, 1, "{id} summarised once");
        let user = okta.user(&format!("{id}@example.com")).unwrap();
        assert_eq!(
            (user.status.as_str(), user.suspended_count),
            ("SUSPENDED", 1),
            "{id}"
        );
    }
    assert_eq!(delivered.len(), DELIVERIES, "every message dispatched");
    assert!(
        delivered.values().all(|counts| counts == &[1]),
        "each exactly once"
    );
    assert_eq!(pipeline.event_source().stats().failed_batches, 0);
    assert_eq!(
        pipeline.dlq_depth().await.unwrap().total(),
        0,
        "nothing lost to the dead-letter queue"
    );
    pipeline.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_cannot_start_fails_the_start_with_its_own_error() {
    let mut options = test_options();
    // Plain http is refused for anything but loopback: the dispatcher's init fails.
    options
        .dispatcher_env
        .push(("OKTA_ORG_URL".into(), "http://okta.example.com".into()));
    let started = std::time::Instant::now();
    let error = match Pipeline::start(options).await {
        Ok(_) => panic!("the pipeline started with a broken dispatcher configuration"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        error.contains("dispatcher") && error.contains("OKTA_ORG_URL"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "reported in {:?}",
        started.elapsed()
    );
}

#[test]
fn each_function_names_a_missing_setting_and_exits_at_start_up() {
    let (ingest, dispatcher) =
        local_pipeline::pipeline::function_binaries(&local_pipeline::pipeline::lambda_bin_dir())
            .unwrap();
    for (binary, setting) in [(ingest, "QUEUE_URL"), (dispatcher, "OKTA_ORG_URL")] {
        let output = std::process::Command::new(&binary)
            .env_clear()
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !output.status.success(),
            "{} started without {setting}",
            binary.display()
        );
        assert!(
            text.contains(&format!("{setting} is required but not set")),
            "{}: {text}",
            binary.display()
        );
    }
}

#[test]
fn a_typo_in_protected_users_stops_the_dispatcher_at_start_up() {
    let (_, dispatcher) =
        local_pipeline::pipeline::function_binaries(&local_pipeline::pipeline::lambda_bin_dir())
            .unwrap();
    // A semicolon for a comma would otherwise protect nobody of the two.
    let output = std::process::Command::new(&dispatcher)
        .env_clear()
        .env("OKTA_ORG_URL", "https://acme.okta.com")
        .env("OKTA_SECRET_ID", "okta")
        .env("SLACK_SECRET_ID", "slack")
        .env("PROTECTED_USERS", "break.glass@acme.com;root@acme.com")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started with a typo: {text}");
    assert!(text.contains("PROTECTED_USERS is invalid"), "{text}");
}

/// The CloudWatch EMF lines `function` printed on stdout so far, each
/// checked as valid EMF (the same check as `shared::metrics`' unit tests).
fn emf_lines(pipeline: &Pipeline, function: &str) -> Vec<serde_json::Value> {
    pipeline
        .log_lines()
        .iter()
        .filter(|l| &*l.function == function)
        .filter(|l| l.source == local_pipeline::runtime_api::LogSource::Stdout)
        .filter_map(|l| l.json().map(serde_json::Value::Object))
        .filter(|line| line.get("_aws").is_some())
        .inspect(|line| {
            shared::metrics::validate(line)
                .unwrap_or_else(|e| panic!("not valid EMF ({e}): {line}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_functions_print_valid_emf_metrics_for_a_queued_event_a_401_and_a_failing_user() {
    let mut options = test_options();
    // The first delivery is the last: its summary reports the failing user at once.
    options.max_receive_count = 1;
    // Room for the Okta retries and 429 waits below within one invocation.
    options.visibility_timeout = Duration::from_secs(10);
    options.dispatcher_timeout = Duration::from_secs(10);
    let pipeline = start(options).await;
    let webhook = Webhook::new(&pipeline);
    let okta = pipeline.okta().unwrap();
    okta.inject(
        Fault::server_error(503)
            .for_user("li.wei@example.com")
            .forever(),
    );
    okta.inject(Fault::concurrency_limited().for_user("ana.lima@example.com"));
    let event = failed_check(
        "e2e-metrics",
        &["ana.lima@example.com", "li.wei@example.com"],
    );

    // A wrong key: 401, nothing queued.
    let denied = reqwest::Client::new()
        .post(pipeline.function_url())
        .header("content-type", "application/json")
        .header(pipeline.api_key_header(), "not-the-key")
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status().as_u16(), 401);
    let before = std::time::SystemTime::now();
    let (status, answer) = webhook.post(&event).await;
    assert_eq!(status, 200, "{answer}");

    wait_for(
        "the dispatcher's metrics line",
        Duration::from_secs(30),
        || {
            let found = emf_lines(&pipeline, "dispatcher")
                .iter()
                .any(|l| l.get("Events").is_some());
            async move { found.then_some(()) }
        },
    )
    .await;
    let after = std::time::SystemTime::now();
    let texts = slack_texts(&pipeline);
    assert_eq!(texts.len(), 1, "{texts:#?}");
    assert!(texts[0].contains("li.wei@example.com"), "{}", texts[0]);

    use shared::metrics::{dimension_set, find};
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let ingest = emf_lines(&pipeline, "ingest");
    assert_eq!(ingest.len(), 2, "one line per request: {ingest:#?}");
    let queued = find(
        &ingest,
        "Requests",
        &[("Function", "ingest"), ("Answer", "queued")],
    );
    assert_eq!(queued, Some(&serde_json::json!(1)), "{ingest:#?}");
    let auth = find(
        &ingest,
        "Requests",
        &[("Answer", "rejected"), ("Reason", "auth")],
    );
    assert_eq!(auth, Some(&serde_json::json!(1)), "{ingest:#?}");
    let rejected = ingest.iter().find(|l| l["Answer"] == "rejected").unwrap();
    assert_eq!(
        dimension_set(rejected, "Requests").unwrap(),
        strings(&["Function", "Answer", "Reason"]),
        "the dimensions IngestAuthFailuresAlarm names"
    );
    let queued = ingest.iter().find(|l| l["Answer"] == "queued").unwrap();
    assert_eq!(
        dimension_set(queued, "Requests").unwrap(),
        strings(&["Function", "Answer"])
    );

    // One flush for the event: a line per value of Outcome, never one per user.
    let dispatcher = emf_lines(&pipeline, "dispatcher");
    assert_eq!(dispatcher.len(), 2, "{dispatcher:#?}");
    let json = |n: u64| serde_json::json!(n);
    assert_eq!(
        find(
            &dispatcher,
            "Events",
            &[("Kind", "FAILED_CHECK"), ("Plan", "acted")]
        ),
        Some(&json(1))
    );
    assert_eq!(
        find(&dispatcher, "Users", &[("Outcome", "suspended")]),
        Some(&json(1))
    );
    assert_eq!(
        find(&dispatcher, "Users", &[("Outcome", "failed")]),
        Some(&json(1))
    );
    let failed = dispatcher
        .iter()
        .find(|l| l["Outcome"] == "failed")
        .unwrap();
    assert_eq!(
        dimension_set(failed, "Users").unwrap(),
        strings(&["Function", "Outcome"]),
        "the dimensions UserFailedAlarm names"
    );
    let first = &dispatcher[0];
    assert_eq!(first["Function"], "dispatcher");
    assert_eq!(first["OktaRateLimited"], 1, "{first}");
    // ana.lima's 429, and li.wei's 503s retried (3 attempts per call).
    assert!(first["OktaRetries"].as_u64().unwrap() >= 3, "{first}");
    assert_eq!(first["SlackFailures"], 0);
    // The sample's `time` is 2026-11-02T08:15:00Z.
    let since = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
            - 1_793_607_300.0
    };
    let seconds = first["EventToSummarySeconds"].as_f64().unwrap();
    assert!(
        since(before) <= seconds && seconds <= since(after),
        "{seconds} s from the event's time to the summary"
    );
    for line in ingest.iter().chain(&dispatcher) {
        let text = line.to_string();
        assert!(
            !text.contains("e2e-metrics") && !text.contains("@example.com"),
            "no id as a dimension or value: {text}"
        );
    }
    pipeline.shutdown().await;
}

// ------------------------------------------------ approve and undo from Slack
//
// The fake Slack clicks as Slack does: a signed, form-encoded `block_actions`
// request to the actions function URL (which hands the compiled `actions`
// binary a base64 body, as function URLs do), with a response URL of its own
// that the dispatcher answers through.

/// The time a function log line was written (its `timestamp` field).
fn logged_at(map: &serde_json::Map<String, serde_json::Value>) -> time::OffsetDateTime {
    let text = map["timestamp"].as_str().expect("a timestamp");
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("timestamp {text}: {e}"))
}

/// The dispatcher's JSON log lines whose `message` is `message`.
fn dispatcher_lines(
    pipeline: &Pipeline,
    message: &str,
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    pipeline
        .log_lines()
        .iter()
        .filter(|l| &*l.function == "dispatcher")
        .filter_map(|l| l.json())
        .filter(|m| m.get("message").and_then(|v| v.as_str()) == Some(message))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_message_comes_back_after_growing_delays_not_the_visibility_timeout() {
    let mut options = test_options();
    // Without the early return every redelivery would wait 30 s.
    options.visibility_timeout = Duration::from_secs(30);
    let pipeline = start(options).await;
    let okta = pipeline.okta().unwrap();
    okta.inject(
        Fault::server_error(503)
            .for_user("li.wei@example.com")
            .forever(),
    );
    let (status, answer) = Webhook::new(&pipeline)
        .post(&failed_check("e2e-delays", &["li.wei@example.com"]))
        .await;
    assert_eq!(status, 200, "{answer}");
    let message_id = answer["messageId"].as_str().unwrap().to_string();

    // RETRY_DELAY_SECONDS=1: back after about 1 s, then 4 s (each ±20%).
    wait_for("the third delivery", Duration::from_secs(20), || {
        let n = deliveries(&pipeline).get(&message_id).map_or(0, Vec::len);
        async move { (n >= 3).then_some(()) }
    })
    .await;
    let received: Vec<time::OffsetDateTime> = dispatcher_lines(&pipeline, "event received")
        .iter()
        .filter(|m| m["message_id"] == message_id.as_str())
        .map(logged_at)
        .collect();
    assert_eq!(received.len(), 3, "{received:?}");
    let (first_gap, second_gap) = (received[1] - received[0], received[2] - received[1]);
    assert!(
        first_gap < time::Duration::seconds(3),
        "the first retry comes early: {first_gap}"
    );
    assert!(
        second_gap > first_gap + time::Duration::seconds(1),
        "each wait is longer than the last: {first_gap} then {second_gap}"
    );
    let delays: Vec<u64> = dispatcher_lines(&pipeline, "message returned early")
        .iter()
        .filter(|m| m["message_id"] == message_id.as_str())
        .map(|m| m["retry_in_s"].as_u64().expect("retry_in_s"))
        .take(2)
        .collect();
    assert_eq!(
        delays.len(),
        2,
        "moto accepted each ChangeMessageVisibility"
    );
    assert_eq!(delays[0], 1);
    assert!((3..=4).contains(&delays[1]), "{delays:?}");
    pipeline.shutdown().await;
}

/// An SQS event of `records` (id, group, body), as the event source mapping
/// delivers a batch, for invoking the dispatcher binary directly.
fn sqs_batch(records: &[(&str, &str, String)]) -> serde_json::Value {
    let records: Vec<serde_json::Value> = records
        .iter()
        .map(|(id, group, body)| {
            serde_json::json!({
                "messageId": id,
                "receiptHandle": format!("rh-{id}"),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1793693701228",
                    "MessageGroupId": group,
                    "MessageDeduplicationId": id,
                },
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:events.fifo",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_event_does_not_use_up_the_invocation_of_its_batch_mates() {
    let mut options = test_options();
    options.dispatcher_timeout = Duration::from_secs(6);
    options.visibility_timeout = Duration::from_secs(10);
    let pipeline = start(options).await;
    let okta = pipeline.okta().unwrap();
    // Every Okta answer about ana.lima takes longer than the whole invocation.
    okta.inject(
        Fault::delay(Duration::from_secs(30))
            .for_user("ana.lima@example.com")
            .forever(),
    );
    let batch = sqs_batch(&[
        (
            "m-slow",
            "group-slow",
            failed_check("e2e-slow", &["ana.lima@example.com"]).to_string(),
        ),
        (
            "m-quick",
            "group-quick",
            failed_check("e2e-quick", &["li.wei@example.com"]).to_string(),
        ),
    ]);
    let result = pipeline.dispatcher().invoke(&batch).await.unwrap();
    let response = result
        .response()
        .unwrap_or_else(|| panic!("the dispatcher answered: {result:?}"));
    assert_eq!(
        response["batchItemFailures"],
        serde_json::json!([{"itemIdentifier": "m-slow"}]),
        "only the slow event is returned"
    );
    let li = okta.user("li.wei@example.com").unwrap();
    assert_eq!(
        li.status, "SUSPENDED",
        "its batch-mate was done in the same invocation"
    );
    let texts = slack_texts(&pipeline);
    assert_eq!(texts.len(), 1, "{texts:#?}");
    assert!(
        texts[0].contains("e2e-quick") || texts[0].contains("li.wei"),
        "{}",
        texts[0]
    );
    assert_eq!(okta.user("ana.lima@example.com").unwrap().status, "ACTIVE");
    pipeline.shutdown().await;
}

mod approvals {
    use std::time::Duration;

    use super::settle;

    use integration_tests::pipeline::{
        APPROVER, BREAK_GLASS, SECOND_APPROVER, STRANGER, TEST_CAP, Webhook, approval_options,
        click, decision_deliveries, decision_receive_counts, failed_check, held_summary,
        message_with_button, post_to_slack, start, undo_summary, wait_for,
    };
    use local_pipeline::event_source::BatchOutcome;
    use local_pipeline::fake_okta::{Fault, SeedUser};
    use local_pipeline::fake_slack::{Click, ResponseAction, SlackMessage, Tamper, find_button};
    use local_pipeline::pipeline::{LoggedClick, Pipeline};

    const NOT_ALLOWED: &str = "You are not allowed to approve or undo actions of oort-okta-lockout";

    /// The actions function's log lines with this outcome.
    fn logged(pipeline: &Pipeline, outcome: &str) -> Vec<LoggedClick> {
        pipeline
            .logged_clicks()
            .into_iter()
            .filter(|c| c.outcome == outcome)
            .collect()
    }

    /// A summary of `event_id` with Approve and Dismiss posted to Slack, and
    /// the event stored as held `reported_ago`: what the dispatcher does for
    /// a held event, without it.
    async fn held(pipeline: &Pipeline, event_id: &str, reported_ago: Duration) -> SlackMessage {
        let body = failed_check(event_id, &["ghost@example.com"]).to_string();
        pipeline
            .store_held_event(event_id, &body, "a test hold", 1, reported_ago)
            .await
            .unwrap();
        post_to_slack(pipeline, &held_summary(event_id, 1)).await
    }

    /// An event over the cap through the webhook, and the dispatcher's held
    /// summary with Approve.
    async fn held_by_the_dispatcher(
        pipeline: &Pipeline,
        event_id: &str,
        users: &[&str],
    ) -> SlackMessage {
        assert!(users.len() > TEST_CAP);
        let (status, answer) = Webhook::new(pipeline)
            .post(&failed_check(event_id, users))
            .await;
        assert_eq!(status, 200, "{answer}");
        message_with_button(pipeline, event_id, "approve", None, Duration::from_secs(20))
            .await
            .unwrap_or_else(|| {
                panic!(
                    "no held summary of {event_id} with Approve: {:#?}",
                    pipeline.slack().unwrap().channel_messages()
                )
            })
    }

    /// Waits for the first accepted post to a click's response URL.
    async fn response_text(pipeline: &Pipeline, response_url: &str) -> (ResponseAction, String) {
        let posts = pipeline
            .slack()
            .unwrap()
            .wait_for_response_posts(response_url, 1, Duration::from_secs(30))
            .await;
        let post = posts
            .iter()
            .find(|p| p.accepted())
            .unwrap_or_else(|| panic!("nothing accepted at the response URL: {posts:#?}"));
        let text = format!(
            "{} {}",
            post.body["text"].as_str().unwrap_or_default(),
            post.body["blocks"]
        );
        (post.action.expect("accepted"), text)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_not_signed_by_slack_are_401_and_leave_nothing_behind() {
        let pipeline = start(approval_options()).await;
        let summary = held(&pipeline, "e2e-tampered", Duration::ZERO).await;
        let cases = [
            (Tamper::WrongSecret, "invalid Slack signature"),
            (Tamper::StaleTimestamp, "stale request"),
            // A stranger's genuine click, the body changed to claim an approver.
            (
                Tamper::BodyChanged {
                    user_id: APPROVER.into(),
                },
                "invalid Slack signature",
            ),
            (Tamper::NoSignature, "missing header x-slack-signature"),
        ];
        for (tamper, error) in &cases {
            let by = if matches!(tamper, Tamper::BodyChanged { .. }) {
                STRANGER
            } else {
                APPROVER
            };
            let outcome = click(
                &pipeline,
                &summary,
                &Click::approve(by).tampered(tamper.clone()),
            )
            .await;
            assert_eq!(outcome.status, 401, "{tamper:?}: {}", outcome.answer);
            assert!(
                outcome.error().is_some_and(|e| e.contains(error)),
                "{tamper:?}: {}",
                outcome.answer
            );
        }
        let rejected = pipeline
            .wait_for_logged_clicks(cases.len(), Duration::from_secs(5))
            .await;
        assert_eq!(rejected.len(), cases.len(), "{rejected:#?}");
        assert!(
            rejected
                .iter()
                .all(|c| c.outcome == "rejected" && c.status == Some(401)),
            "{rejected:#?}"
        );
        settle(&pipeline).await;
        assert!(decision_deliveries(&pipeline).is_empty(), "nothing queued");
        assert_eq!(pipeline.queue_depth().await.unwrap().total(), 0);
        assert_eq!(
            pipeline.store().get_decision("e2e-tampered").await.unwrap(),
            None
        );
        for who in [APPROVER, STRANGER] {
            assert!(
                pipeline.refusals(who).await.unwrap().is_empty(),
                "no refusal for {who}"
            );
        }
        assert!(
            pipeline.slack().unwrap().all_response_posts().is_empty(),
            "nobody answered through a response URL"
        );

        // The same click, signed as Slack signs it, goes through.
        let genuine = click(&pipeline, &summary, &Click::approve(APPROVER)).await;
        assert_eq!(genuine.status, 200, "{}", genuine.answer);
        assert!(
            genuine.summary().starts_with("Approved:"),
            "{}",
            genuine.summary()
        );
        pipeline.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_click_by_someone_not_an_approver_is_refused_recorded_and_queues_nothing() {
        let pipeline = start(approval_options()).await;
        let summary = held(&pipeline, "e2e-stranger", Duration::ZERO).await;
        for action in [Click::approve(STRANGER), Click::dismiss(STRANGER)] {
            let outcome = click(&pipeline, &summary, &action).await;
            assert_eq!(outcome.status, 200, "{}", outcome.answer);
            assert_eq!(outcome.answer["response_type"], "ephemeral");
            assert!(
                outcome.summary().starts_with(NOT_ALLOWED),
                "{}",
                outcome.summary()
            );
        }
        pipeline
            .wait_for_logged_clicks(2, Duration::from_secs(5))
            .await;
        let refused = logged(&pipeline, "refused");
        assert_eq!(refused.len(), 2, "{:#?}", pipeline.logged_clicks());
        assert!(refused.iter().all(|c| c.slack_user == STRANGER));
        let records = pipeline.refusals(STRANGER).await.unwrap();
        assert_eq!(records.len(), 2, "{records:#?}");
        assert_eq!(
            records[0].get("event_id").map(String::as_str),
            Some("e2e-stranger")
        );
        assert!(records[0].contains_key("ttl"), "kept 30 days, then expired");
        settle(&pipeline).await;
        assert!(decision_deliveries(&pipeline).is_empty(), "nothing queued");
        assert_eq!(
            pipeline.store().get_decision("e2e-stranger").await.unwrap(),
            None
        );
        pipeline.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_double_click_queues_one_decision() {
        let pipeline = start(approval_options()).await;
        let summary = held(&pipeline, "e2e-double-click", Duration::ZERO).await;
        let slack = pipeline.slack().unwrap();
        let approve = Click::approve(APPROVER);
        let (first, second) = tokio::join!(
            slack.click(&summary, &approve),
            slack.click(&summary, &approve)
        );
        let (first, second) = (first.unwrap(), second.unwrap());
        for outcome in [&first, &second] {
            assert_eq!(outcome.status, 200, "{}", outcome.answer);
            let text = outcome.summary();
            assert!(
                text.starts_with("Approved:") || text.contains("already approved by <@U0APPROVER>"),
                "{text}"
            );
        }
        wait_for("the decision delivered", Duration::from_secs(10), || {
            let n = decision_deliveries(&pipeline).len();
            async move { (n >= 1).then_some(()) }
        })
        .await;
        // Another approver, later: told who decided first.
        let late = click(&pipeline, &summary, &Click::dismiss(SECOND_APPROVER)).await;
        assert!(
            late.summary()
                .starts_with("This event was already approved by <@U0APPROVER> at "),
            "{}",
            late.summary()
        );
        settle(&pipeline).await;
        let decisions = decision_deliveries(&pipeline);
        assert_eq!(decisions.len(), 1, "one decision queued: {decisions:#?}");
        assert!(
            decisions[0].body.contains(r#""action":"approve""#),
            "{}",
            decisions[0].body
        );
        let record = pipeline
            .store()
            .get_decision("e2e-double-click")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (record.by.as_str(), record.action.as_str()),
            (APPROVER, "approve")
        );
        pipeline.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replayed_request_decides_nothing_more() {
        let pipeline = start(approval_options()).await;
        let summary = held(&pipeline, "e2e-replay", Duration::ZERO).await;
        let slack = pipeline.slack().unwrap();
        let first = click(&pipeline, &summary, &Click::approve(APPROVER)).await;
        assert!(
            first.summary().starts_with("Approved:"),
            "{}",
            first.summary()
        );
        wait_for("the decision delivered", Duration::from_secs(10), || {
            let n = decision_deliveries(&pipeline).len();
            async move { (n >= 1).then_some(()) }
        })
        .await;

        let replay = slack.replay(&first).await.unwrap();
        assert_eq!(replay.request, first.request, "the same bytes");
        assert_eq!(replay.status, 200, "{}", replay.answer);
        assert!(
            replay
                .summary()
                .starts_with("This event was already approved by <@U0APPROVER> at "),
            "{}",
            replay.summary()
        );
        pipeline
            .wait_for_logged_clicks(2, Duration::from_secs(5))
            .await;
        assert_eq!(
            logged(&pipeline, "queued").len(),
            1,
            "{:#?}",
            pipeline.logged_clicks()
        );
        assert_eq!(logged(&pipeline, "already done").len(), 1);
        settle(&pipeline).await;
        assert_eq!(
            decision_deliveries(&pipeline).len(),
            1,
            "no second decision"
        );
        pipeline.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn approve_after_expiry_or_of_an_event_never_held_is_refused() {
        let mut options = approval_options();
        options.approval_ttl_hours = 1;
        let pipeline = start(options).await;
        let expired = held(&pipeline, "e2e-expired", Duration::from_secs(2 * 3600)).await;
        let outcome = click(&pipeline, &expired, &Click::approve(APPROVER)).await;
        assert_eq!(outcome.status, 200);
        assert!(
            outcome.summary().starts_with("This event can no longer be approved: it expired (events can be approved for 1 hours"),
            "{}",
            outcome.summary()
        );
        // A button whose event was never stored as held.
        let never = post_to_slack(&pipeline, &held_summary("e2e-never-held", 1)).await;
        let outcome = click(&pipeline, &never, &Click::approve(APPROVER)).await;
        assert!(
            outcome.summary().contains("can no longer be approved"),
            "{}",
            outcome.summary()
        );

        pipeline
            .wait_for_logged_clicks(2, Duration::from_secs(5))
            .await;
        assert_eq!(
            logged(&pipeline, "expired").len(),
            2,
            "{:#?}",
            pipeline.logged_clicks()
        );
        settle(&pipeline).await;
        assert!(decision_deliveries(&pipeline).is_empty(), "nothing queued");
        for id in ["e2e-expired", "e2e-never-held"] {
            assert_eq!(
                pipeline.store().get_decision(id).await.unwrap(),
                None,
                "{id}"
            );
        }
        pipeline.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_the_store_unavailable_a_click_is_told_nothing_happened_and_a_retry_goes_through()
    {
        let pipeline = start(approval_options()).await;
        let summary = held(&pipeline, "e2e-store-down", Duration::ZERO).await;
        pipeline.delete_store_table().await.unwrap();
        let outcome = click(&pipeline, &summary, &Click::approve(APPROVER)).await;
        assert_eq!(outcome.status, 200, "{}", outcome.answer);
        assert!(
            outcome
                .summary()
                .starts_with("This did not happen: your decision could not be recorded"),
            "never a false success: {}",
            outcome.summary()
        );
        pipeline
            .wait_for_logged_clicks(1, Duration::from_secs(5))
            .await;
        let failed = logged(&pipeline, "failed");
        assert_eq!(failed.len(), 1, "{:#?}", pipeline.logged_clicks());
        assert!(
            failed[0]
                .reason
                .as_deref()
                .unwrap_or_default()
                .contains("store table"),
            "{failed:?}"
        );
        settle(&pipeline).await;
        assert!(decision_deliveries(&pipeline).is_empty(), "nothing queued");

        // Back again: the retry the answer asks for is carried out.
        pipeline.recreate_store_table().await.unwrap();
        held(&pipeline, "e2e-store-down", Duration::ZERO).await;
        let retry = click(&pipeline, &summary, &Click::approve(APPROVER)).await;
        assert!(
            retry.summary().starts_with("Approved:"),
            "{}",
            retry.summary()
        );
        wait_for("the decision delivered", Duration::from_secs(10), || {
            let n = decision_deliveries(&pipeline).len();
            async move { (n == 1).then_some(()) }
        })
        .await;
        pipeline.shutdown().await;
    }

    // ---- through the dispatcher: it carries the decisions out

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_approved_held_event_suspends_its_users_and_protected_users_stay_untouched() {
        let pipeline = start(approval_options()).await;
        let okta = pipeline.okta().unwrap();
        okta.add_user(SeedUser::new(BREAK_GLASS, BREAK_GLASS, "ACTIVE"));
        let users = [
            "ana.lima@example.com",
            "li.wei@example.com",
            "root.admin@example.com",
            BREAK_GLASS,
            "ghost@example.com",
        ];
        let summary = held_by_the_dispatcher(&pipeline, "e2e-approve", &users).await;
        pipeline
            .wait_until_drained(Duration::from_secs(30))
            .await
            .unwrap();
        assert!(
            okta.writes().is_empty(),
            "held: nobody touched: {:?}",
            okta.writes()
        );
        assert!(find_button(&summary.message, "dismiss", None).is_some());

        let approved = click(&pipeline, &summary, &Click::approve(APPROVER)).await;
        assert_eq!(approved.status, 200, "{}", approved.answer);
        assert!(
            approved
                .summary()
                .starts_with("Approved: the dispatcher is acting on 5 users."),
            "{}",
            approved.summary()
        );
        let (action, text) = response_text(&pipeline, &approved.response_url).await;
        assert_eq!(action, ResponseAction::Replaced, "{text}");
        assert!(text.contains("Approved by <@U0APPROVER>"), "{text}");
        pipeline
            .wait_until_drained(Duration::from_secs(30))
            .await
            .unwrap();

        for login in ["ana.lima@example.com", "li.wei@example.com"] {
            let user = okta.user(login).unwrap();
            assert_eq!(
                (user.status.as_str(), user.suspended_count),
                ("SUSPENDED", 1),
                "{login}"
            );
        }
        for login in ["root.admin@example.com", BREAK_GLASS] {
            let user = okta.user(login).unwrap();
            assert_eq!(
                (
                    user.status.as_str(),
                    user.suspended_count,
                    user.sessions_cleared
                ),
                ("ACTIVE", 0, 0),
                "{login}: approval never overrides protection"
            );
        }
        // The summary itself now reads as done, with Unsuspend for each user suspended.
        let rewritten = pipeline.slack().unwrap().message(&summary.ts).unwrap();
        assert!(
            find_button(&rewritten.message, "approve", None).is_none(),
            "no second Approve"
        );
        for login in ["ana.lima@example.com", "li.wei@example.com"] {
            assert!(
                find_button(&rewritten.message, "unsuspend", Some(login)).is_some(),
                "{login}"
            );
        }
        assert!(
            find_button(
                &rewritten.message,
                "unsuspend",
                Some("root.admin@example.com")
            )
            .is_none()
        );
        let record = pipeline
            .store()
            .get_decision("e2e-approve")
            .await
            .unwrap()
            .unwrap();
        assert!(
            record
                .result
                .as_deref()
                .unwrap_or_default()
                .starts_with("approved"),
            "{record:?}"
        );
        assert_eq!(decision_receive_counts(&pipeline), vec![vec![1]]);
        pipeline.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dismissed_event_is_recorded_and_changes_nothing_in_okta() {
        let pipeline = start(approval_options()).await;
        let users = [
            "ana.lima@example.com",
            "li.wei@example.com",
            "svc.backup",
            "ghost@example.com",
        ];
        let summary = held_by_the_dispatcher(&pipeline, "e2e-dismiss", &users).await;
        let dismissed = click(&pipeline, &summary, &Click::dismiss(APPROVER)).await;
        assert_eq!(
            dismissed.summary(),
            "Dismissed: nobody in this event will be suspended."
        );
        let (action, text) = response_text(&pipeline, &dismissed.response_url).await;
        assert_eq!(action, ResponseAction::Replaced, "{text}");
        assert!(text.contains("Dismissed by <@U0APPROVER>"), "{text}");
        pipeline
            .wait_until_drained(Duration::from_secs(30))
            .await
            .unwrap();
        let okta = pipeline.okta().unwrap();
        assert!(
            okta.writes().is_empty(),
            "no Okta write: {:?}",
            okta.writes()
        );
        let record = pipeline
            .store()
            .get_decision("e2e-dismiss")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.action.as_str(), "dismiss");
        assert!(record.result.is_some(), "{record:?}");
        // An Approve after the Dismiss does nothing.
        let late = click(&pipeline, &summary, &Click::approve(APPROVER)).await;
        assert!(
            late.summary()
                .starts_with("This event was already dismissed by <@U0APPROVER>"),
            "{}",
            late.summary()
        );
        pipeline.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unsuspend_of_a_user_we_suspended_makes_them_active_again() {
        let pipeline = start(approval_options()).await;
        let (status, answer) = Webhook::new(&pipeline)
            .post(&failed_check(
                "e2e-undo",
                &["ana.lima@example.com", "li.wei@example.com"],
            ))
            .await;
        assert_eq!(status, 200, "{answer}");
        let summary = message_with_button(
            &pipeline,
            "e2e-undo",
            "unsuspend",
            Some("ana.lima@example.com"),
            Duration::from_secs(20),
        )
        .await
        .expect("a summary with Unsuspend for ana.lima");
        let okta = pipeline.okta().unwrap();
        assert_eq!(
            okta.user("ana.lima@example.com").unwrap().status,
            "SUSPENDED"
        );

        let undo = click(
            &pipeline,
            &summary,
            &Click::unsuspend("ana.lima@example.com", APPROVER),
        )
        .await;
        assert_eq!(undo.status, 200, "{}", undo.answer);
        assert!(
            undo.summary()
                .starts_with("Unsuspend of ana.lima@example.com requested"),
            "{}",
            undo.summary()
        );
        let (_, text) = response_text(&pipeline, &undo.response_url).await;
        assert!(
            text.contains("unsuspended") && text.contains("<@U0APPROVER>"),
            "{text}"
        );
        pipeline
            .wait_until_drained(Duration::from_secs(30))
            .await
            .unwrap();

        let ana = okta.user("ana.lima@example.com").unwrap();
        assert_eq!((ana.status.as_str(), ana.unsuspended_count), ("ACTIVE", 1));
        let li = okta.user("li.wei@example.com").unwrap();
        assert_eq!(
            (li.status.as_str(), li.unsuspended_count),
            ("SUSPENDED", 0),
            "only the one clicked"
        );
        let record = pipeline
            .store()
            .get_undo(&ana.id, "e2e-undo")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.result.as_deref(), Some("unsuspended"));
        // Once: a second click is told, and nothing more happens.
        let again = click(
            &pipeline,
            &summary,
            &Click::unsuspend("ana.lima@example.com", SECOND_APPROVER),
        )
        .await;
        assert!(
            again
                .summary()
                .contains("was already requested by <@U0APPROVER>"),
            "{}",
            again.summary()
        );
        pipeline.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unsuspend_of_a_user_we_did_not_suspend_is_refused() {
        let pipeline = start(approval_options()).await;
        let okta = pipeline.okta().unwrap();
        // Suspended in the demo org, but not by this product.
        let omar = okta.user("omar.haddad@example.com").unwrap();
        assert_eq!(omar.status, "SUSPENDED");
        let summary = post_to_slack(
            &pipeline,
            &undo_summary("e2e-not-ours", &omar.id, &omar.login),
        )
        .await;
        let undo = click(
            &pipeline,
            &summary,
            &Click::unsuspend(&omar.login, APPROVER),
        )
        .await;
        assert_eq!(undo.status, 200, "{}", undo.answer);
        let (_, text) = response_text(&pipeline, &undo.response_url).await;
        assert!(
            text.contains("Unsuspend refused") && text.contains("no record of suspending"),
            "{text}"
        );
        pipeline
            .wait_until_drained(Duration::from_secs(30))
            .await
            .unwrap();
        let omar = okta.user("omar.haddad@example.com").unwrap();
        assert_eq!(
            (omar.status.as_str(), omar.unsuspended_count),
            ("SUSPENDED", 0)
        );
        assert!(
            okta.writes().is_empty(),
            "no Okta write: {:?}",
            okta.writes()
        );
        let record = pipeline
            .store()
            .get_undo(&omar.id, "e2e-not-ours")
            .await
            .unwrap()
            .unwrap();
        assert!(
            record
                .result
                .as_deref()
                .unwrap_or_default()
                .starts_with("refused"),
            "{record:?}"
        );
        pipeline.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_okta_failure_during_an_approved_action_is_retried_and_then_reported() {
        let pipeline = start(approval_options()).await;
        let okta = pipeline.okta().unwrap();
        let users = [
            "ana.lima@example.com",
            "li.wei@example.com",
            "svc.backup",
            "ghost@example.com",
        ];
        let summary = held_by_the_dispatcher(&pipeline, "e2e-approve-outage", &users).await;
        pipeline
            .wait_until_drained(Duration::from_secs(30))
            .await
            .unwrap();
        okta.inject(
            Fault::server_error(503)
                .for_user("li.wei@example.com")
                .forever(),
        );

        let approved = click(&pipeline, &summary, &Click::approve(APPROVER)).await;
        assert!(
            approved.summary().starts_with("Approved:"),
            "{}",
            approved.summary()
        );
        wait_for(
            "the decision's first delivery to fail",
            Duration::from_secs(20),
            || {
                let failed = pipeline.batch_reports().iter().any(|r| {
                    matches!(&r.outcome, BatchOutcome::Answered { failed } if !failed.is_empty())
                        && r.messages.iter().any(|m| {
                            m.message_attributes.get("kind").map(String::as_str) == Some("decision")
                        })
                });
                async move { failed.then_some(()) }
            },
        )
        .await;
        assert!(
            pipeline
                .slack()
                .unwrap()
                .response_posts(&approved.response_url)
                .is_empty(),
            "no final word while li.wei can still be retried"
        );
        okta.clear_faults();

        let (action, text) = response_text(&pipeline, &approved.response_url).await;
        pipeline
            .wait_until_drained(Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(action, ResponseAction::Replaced);
        assert!(
            text.contains("Approved by <@U0APPROVER>") && text.contains("li.wei@example.com"),
            "{text}"
        );
        assert_eq!(
            decision_receive_counts(&pipeline),
            vec![vec![1, 2]],
            "redelivered once"
        );
        for login in ["ana.lima@example.com", "li.wei@example.com", "svc.backup"] {
            let user = okta.user(login).unwrap();
            assert_eq!(
                (user.status.as_str(), user.suspended_count),
                ("SUSPENDED", 1),
                "{login}: once across deliveries"
            );
        }
        let record = pipeline
            .store()
            .get_decision("e2e-approve-outage")
            .await
            .unwrap()
            .unwrap();
        assert!(record.result.is_some(), "{record:?}");
        assert_eq!(pipeline.dlq_depth().await.unwrap().total(), 0);
        pipeline.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_the_store_unavailable_the_dispatcher_offers_no_button_it_cannot_honour_and_retries()
     {
        let pipeline = start(approval_options()).await;
        pipeline.delete_store_table().await.unwrap();
        let users = [
            "ana.lima@example.com",
            "li.wei@example.com",
            "svc.backup",
            "ghost@example.com",
        ];
        let (status, answer) = Webhook::new(&pipeline)
            .post(&failed_check("e2e-store-gone", &users))
            .await;
        assert_eq!(status, 200, "{answer}");
        wait_for("the first delivery to fail", Duration::from_secs(20), || {
            let failed = pipeline
                .batch_reports()
                .iter()
                .any(|r| matches!(&r.outcome, BatchOutcome::Answered { failed } if !failed.is_empty()));
            async move { failed.then_some(()) }
        })
        .await;
        let slack = pipeline.slack().unwrap();
        assert!(
            slack
                .channel_messages()
                .iter()
                .all(|m| find_button(&m.message, "approve", None).is_none()),
            "no Approve that could not be honoured: {:#?}",
            slack.channel_messages()
        );
        pipeline.recreate_store_table().await.unwrap();
        let summary = message_with_button(
            &pipeline,
            "e2e-store-gone",
            "approve",
            None,
            Duration::from_secs(20),
        )
        .await
        .expect("the held summary, once the store is back");
        assert!(matches!(
            pipeline
                .store()
                .get_held_event("e2e-store-gone")
                .await
                .unwrap(),
            shared::store::HeldLookup::Held(_)
        ));
        let approved = click(&pipeline, &summary, &Click::approve(APPROVER)).await;
        assert!(
            approved.summary().starts_with("Approved:"),
            "{}",
            approved.summary()
        );
        response_text(&pipeline, &approved.response_url).await;
        assert!(
            pipeline
                .okta()
                .unwrap()
                .writes()
                .iter()
                .any(|w| w.is_write_method())
        );
        pipeline.shutdown().await;
    }

    #[test]
    fn the_actions_binary_names_a_missing_setting_and_exits_at_start_up() {
        let binary = local_pipeline::pipeline::function_binary(
            &local_pipeline::pipeline::lambda_bin_dir(),
            local_pipeline::pipeline::ACTIONS,
        )
        .unwrap();
        let output = std::process::Command::new(&binary)
            .env_clear()
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !output.status.success(),
            "actions started without QUEUE_URL"
        );
        assert!(text.contains("QUEUE_URL is required but not set"), "{text}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_secret_reaches_the_logs_at_trace() {
        let mut options = approval_options();
        for env in [
            &mut options.ingest_env,
            &mut options.dispatcher_env,
            &mut options.actions_env,
        ] {
            env.push(("RUST_LOG".into(), "trace".into()));
        }
        let pipeline = start(options).await;
        let users = [
            "ana.lima@example.com",
            "li.wei@example.com",
            "john.smith@example.com",
            "omar.haddad@example.com",
        ];
        let summary = held_by_the_dispatcher(&pipeline, "e2e-trace", &users).await;
        let approved = click(&pipeline, &summary, &Click::approve(APPROVER)).await;
        assert_eq!(approved.status, 200, "{}", approved.answer);
        let okta = pipeline.okta().unwrap();
        wait_for(
            "the approved users suspended",
            Duration::from_secs(30),
            || {
                let done = okta.user("ana.lima@example.com").unwrap().status == "SUSPENDED";
                async move { done.then_some(()) }
            },
        )
        .await;

        let secrets = pipeline.aws().secrets.clone();
        let okta_secret = secrets
            .get_secret_value()
            .secret_id(&pipeline.stack().okta_secret_id)
            .send()
            .await
            .unwrap();
        let okta_secret: serde_json::Value =
            serde_json::from_str(okta_secret.secret_string().unwrap()).unwrap();
        let private_key = okta_secret["privateKey"].as_str().expect("an OAuth app");
        let key_body: Vec<&str> = private_key
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 16)
            .collect();
        let tokens = okta.issued_token_values();
        assert!(!tokens.is_empty(), "the dispatcher signed in to Okta");

        let lines = pipeline.log_lines();
        let text: String = lines.iter().map(|l| format!("{}\n", l.line)).collect();
        let below_debug = lines
            .iter()
            .filter_map(|l| l.json())
            .filter(|m| m.get("level").and_then(|v| v.as_str()) == Some("TRACE"))
            .count();
        assert!(below_debug > 0, "the functions did log at TRACE");
        let mut named: Vec<(&str, String)> = vec![
            ("the webhook API key", pipeline.api_key().to_string()),
            (
                "the Slack webhook URL",
                pipeline.slack_webhook_url().to_string(),
            ),
            (
                "the Slack signing secret",
                pipeline.signing_secret().to_string(),
            ),
        ];
        named.extend(
            key_body
                .iter()
                .map(|l| ("a line of the Okta private key", l.to_string())),
        );
        named.extend(tokens.into_iter().map(|t| ("an Okta access token", t)));
        for (what, secret) in named {
            assert!(!text.contains(&secret), "{what} is in the logs");
        }
        pipeline.shutdown().await;
    }
}

// ------------------------------------------------ responses per check (CHECK_ACTIONS)
//
// The compiled dispatcher with `CHECK_ACTIONS` against the local Okta, whose
// demo org has the Okta group `DEMO_QUARANTINE_GROUP_ID` and the app group
// `DEMO_APP_GROUP_ID`.

mod check_actions {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use integration_tests::pipeline::{
        APPROVER, SECOND_APPROVER, Webhook, approval_options, click, failed_check,
        message_with_button, slack_texts, start, test_options, wait_for,
    };
    use local_pipeline::fake_okta::{Fault, GroupType, Operation};
    use local_pipeline::fake_slack::Click;
    use local_pipeline::pipeline::{Pipeline, PipelineOptions};
    use local_pipeline::seed::{DEMO_APP_GROUP_ID, DEMO_QUARANTINE_GROUP_ID};
    use serde_json::{Value, json};

    use super::{outcomes_of, settle};

    const POLICY: &str = "e2e-sessions=sessions,e2e-quarantine=quarantine,e2e-notify=notify,e2e-approve=approve:quarantine,*=suspend";

    fn with_policy(mut options: PipelineOptions, policy: &str, group: &str) -> PipelineOptions {
        options.dispatcher_env.extend([
            ("CHECK_ACTIONS".into(), policy.into()),
            ("QUARANTINE_GROUP_ID".into(), group.into()),
        ]);
        options
    }

    /// A failed check of `check_id` naming `users`.
    fn check(event_id: &str, check_id: &str, users: &[&str]) -> Value {
        let mut event = failed_check(event_id, users);
        event["detail"]["checkId"] = json!(check_id);
        event
    }

    async fn send(pipeline: &Pipeline, event: &Value) {
        let (status, answer) = Webhook::new(pipeline).post(event).await;
        assert_eq!(status, 200, "{answer}");
    }

    fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(u, o)| (u.to_string(), o.to_string()))
            .collect()
    }

    fn members(pipeline: &Pipeline) -> Vec<String> {
        let okta = pipeline.okta().unwrap();
        okta.group(DEMO_QUARANTINE_GROUP_ID)
            .unwrap()
            .members
            .iter()
            .map(|id| okta.user(id).unwrap().login)
            .collect()
    }

    /// Writes to Okta for `login`, as `METHOD path-shape` lines.
    fn writes_for(pipeline: &Pipeline, login: &str) -> Vec<String> {
        let okta = pipeline.okta().unwrap();
        let id = okta.user(login).unwrap().id;
        okta.writes()
            .iter()
            .filter(|w| w.user_id.as_deref() == Some(id.as_str()))
            .map(|w| format!("{} {:?}", w.method, w.operation.unwrap()))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_check_gets_its_action_and_protection_still_wins() {
        let mut options = with_policy(test_options(), POLICY, DEMO_QUARANTINE_GROUP_ID);
        options
            .dispatcher_env
            .push(("PROTECTED_USERS".into(), "svc.backup".into()));
        let pipeline = start(options).await;
        send(
            &pipeline,
            &check(
                "e2e-a-sessions",
                "e2e-sessions",
                &["ana.lima@example.com", "omar.haddad@example.com"],
            ),
        )
        .await;
        send(
            &pipeline,
            &check(
                "e2e-a-quarantine",
                "e2e-quarantine",
                &["li.wei@example.com", "root.admin@example.com", "svc.backup"],
            ),
        )
        .await;
        send(
            &pipeline,
            &check(
                "e2e-a-notify",
                "E2E-NOTIFY",
                &["john.smith@example.com", "ghost@example.com"],
            ),
        )
        .await;
        send(
            &pipeline,
            &check("e2e-a-other", "dormant-admin", &["ops1@example.com"]),
        )
        .await;
        pipeline
            .wait_until_drained(Duration::from_secs(40))
            .await
            .unwrap();
        pipeline
            .slack()
            .unwrap()
            .wait_for_messages(4, Duration::from_secs(10))
            .await;
        settle(&pipeline).await;
        let okta = pipeline.okta().unwrap();

        assert_eq!(
            outcomes_of(&pipeline, "e2e-a-sessions"),
            expect(&[
                ("ana.lima@example.com", "sessions cleared"),
                ("omar.haddad@example.com", "already suspended"),
            ])
        );
        let ana = okta.user("ana.lima@example.com").unwrap();
        assert_eq!(
            (
                ana.status.as_str(),
                ana.suspended_count,
                ana.sessions_cleared
            ),
            ("ACTIVE", 0, 1)
        );
        assert!(ana.oauth_tokens_revoked);

        assert_eq!(
            outcomes_of(&pipeline, "e2e-a-quarantine"),
            expect(&[
                ("li.wei@example.com", "quarantined"),
                ("root.admin@example.com", "protected"),
                ("svc.backup", "protected"),
            ])
        );
        assert_eq!(members(&pipeline), ["li.wei@example.com"]);
        assert_eq!(
            writes_for(&pipeline, "li.wei@example.com"),
            ["PUT AddGroupMember", "DELETE ClearSessions"],
            "added first, then sessions cleared"
        );
        assert_eq!(okta.user("li.wei@example.com").unwrap().status, "ACTIVE");
        for protected in ["root.admin@example.com", "svc.backup"] {
            assert!(writes_for(&pipeline, protected).is_empty(), "{protected}");
        }

        assert_eq!(
            outcomes_of(&pipeline, "e2e-a-notify"),
            expect(&[
                ("john.smith@example.com", "notified"),
                ("ghost@example.com", "not found"),
            ])
        );
        assert!(writes_for(&pipeline, "jsmith@corp.example.com").is_empty());

        assert_eq!(
            outcomes_of(&pipeline, "e2e-a-other"),
            expect(&[("ops1@example.com", "suspended")]),
            "* is suspend"
        );

        let texts = slack_texts(&pipeline);
        assert_eq!(texts.len(), 4, "{texts:#?}");
        for (event, action) in [
            ("e2e-a-sessions", "sessions"),
            ("e2e-a-quarantine", "quarantine"),
            ("e2e-a-notify", "notify"),
            ("e2e-a-other", "suspend"),
        ] {
            let text = texts.iter().find(|t| t.contains(event)).unwrap();
            assert_eq!(
                text.matches("Response (CHECK_ACTIONS)").count(),
                1,
                "the action is stated once: {text}"
            );
            assert!(text.contains(&format!("`{action}`")), "{event}: {text}");
        }
        let okta_group = okta.group(DEMO_QUARANTINE_GROUP_ID).unwrap();
        assert_eq!(okta_group.adds, 1);
        assert_eq!(
            okta.requests()
                .iter()
                .filter(|r| r.operation == Some(Operation::GetGroup))
                .count(),
            1,
            "the group is checked once per container"
        );
        pipeline.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dry_run_names_each_action_and_writes_nothing() {
        let mut options = with_policy(test_options(), POLICY, DEMO_QUARANTINE_GROUP_ID);
        options
            .dispatcher_env
            .push(("DRY_RUN".into(), "true".into()));
        let pipeline = start(options).await;
        let cases = [
            ("e2e-d-suspend", "other", "dry run (would suspend)"),
            (
                "e2e-d-sessions",
                "e2e-sessions",
                "dry run (would clear sessions)",
            ),
            (
                "e2e-d-quarantine",
                "e2e-quarantine",
                "dry run (would quarantine)",
            ),
            ("e2e-d-notify", "e2e-notify", "dry run (would notify)"),
            (
                "e2e-d-approve",
                "e2e-approve",
                "dry run (would ask for approval)",
            ),
        ];
        for (event, check_id, _) in cases {
            send(
                &pipeline,
                &check(
                    event,
                    check_id,
                    &["ana.lima@example.com", "root.admin@example.com"],
                ),
            )
            .await;
        }
        pipeline
            .wait_until_drained(Duration::from_secs(40))
            .await
            .unwrap();
        pipeline
            .slack()
            .unwrap()
            .wait_for_messages(cases.len(), Duration::from_secs(10))
            .await;
        for (event, _, word) in cases {
            assert_eq!(
                outcomes_of(&pipeline, event),
                expect(&[
                    ("ana.lima@example.com", word),
                    ("root.admin@example.com", "protected"),
                ]),
                "{event}"
            );
        }
        let okta = pipeline.okta().unwrap();
        assert!(okta.writes().is_empty(), "{:?}", okta.writes());
        assert!(members(&pipeline).is_empty());
        pipeline.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dry_run_of_a_quarantine_says_when_the_group_is_not_usable() {
        let mut options = with_policy(test_options(), POLICY, DEMO_APP_GROUP_ID);
        options
            .dispatcher_env
            .push(("DRY_RUN".into(), "true".into()));
        let pipeline = start(options).await;
        send(
            &pipeline,
            &check(
                "e2e-dry-app-group",
                "e2e-quarantine",
                &["ana.lima@example.com"],
            ),
        )
        .await;
        pipeline
            .wait_until_drained(Duration::from_secs(30))
            .await
            .unwrap();
        pipeline
            .slack()
            .unwrap()
            .wait_for_messages(1, Duration::from_secs(10))
            .await;
        assert_eq!(
            outcomes_of(&pipeline, "e2e-dry-app-group"),
            expect(&[("ana.lima@example.com", "dry run (would quarantine)")])
        );
        let texts = slack_texts(&pipeline);
        assert!(
            texts[0].contains("but it would fail now")
                && texts[0].contains("is a APP_GROUP group, not an OKTA_GROUP"),
            "{}",
            texts[0]
        );
        let okta = pipeline.okta().unwrap();
        assert!(okta.writes().is_empty(), "{:?}", okta.writes());
        assert_eq!(pipeline.dlq_depth().await.unwrap().total(), 0);
        assert_eq!(
            pipeline.queue_depth().await.unwrap().total(),
            0,
            "a dry run is not kept for a redrive"
        );
        pipeline.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_quarantine_interrupted_after_the_add_is_finished_on_redelivery_and_released() {
        let pipeline = start(with_policy(
            approval_options(),
            POLICY,
            DEMO_QUARANTINE_GROUP_ID,
        ))
        .await;
        let okta = pipeline.okta().unwrap();
        // Clearing sessions fails on the first delivery (all its attempts).
        okta.inject(
            Fault::server_error(503)
                .on(Operation::ClearSessions)
                .times(3),
        );
        send(
            &pipeline,
            &check("e2e-redeliver", "e2e-quarantine", &["ana.lima@example.com"]),
        )
        .await;
        let summary = message_with_button(
            &pipeline,
            "e2e-redeliver",
            "release",
            Some("ana.lima@example.com"),
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|| panic!("a summary with Release: {:#?}", slack_texts(&pipeline)));
        pipeline
            .wait_until_drained(Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(
            outcomes_of(&pipeline, "e2e-redeliver"),
            expect(&[("ana.lima@example.com", "already quarantined")]),
            "the redelivery finds the member this event added"
        );
        let group = okta.group(DEMO_QUARANTINE_GROUP_ID).unwrap();
        assert_eq!(group.adds, 1, "added once across deliveries");
        assert_eq!(members(&pipeline), ["ana.lima@example.com"]);
        let ana = okta.user("ana.lima@example.com").unwrap();
        assert!(ana.sessions_cleared >= 1 && ana.oauth_tokens_revoked);
        assert_eq!(slack_texts(&pipeline).len(), 1, "one summary");

        let release = click(
            &pipeline,
            &summary,
            &Click::release("ana.lima@example.com", APPROVER),
        )
        .await;
        assert_eq!(release.status, 200, "{}", release.answer);
        assert!(
            release
                .summary()
                .starts_with("Release of ana.lima@example.com requested"),
            "{}",
            release.summary()
        );
        wait_for("the release", Duration::from_secs(20), || {
            let left = members(&pipeline);
            async move { left.is_empty().then_some(()) }
        })
        .await;
        pipeline
            .wait_until_drained(Duration::from_secs(30))
            .await
            .unwrap();
        let record = pipeline
            .store()
            .get_undo(&ana.id, "e2e-redeliver")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.result.as_deref(), Some("released"));
        assert_eq!(okta.group(DEMO_QUARANTINE_GROUP_ID).unwrap().removes, 1);
        assert_eq!(
            okta.user("ana.lima@example.com").unwrap().status,
            "ACTIVE",
            "release does not touch the status"
        );
        let again = click(
            &pipeline,
            &summary,
            &Click::release("ana.lima@example.com", SECOND_APPROVER),
        )
        .await;
        assert!(
            again
                .summary()
                .contains("Release of ana.lima@example.com was already requested by <@U0APPROVER>"),
            "{}",
            again.summary()
        );
        pipeline.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn approve_holds_until_approved_then_quarantines_and_only_our_members_are_released() {
        let pipeline = start(with_policy(
            approval_options(),
            POLICY,
            DEMO_QUARANTINE_GROUP_ID,
        ))
        .await;
        let okta = pipeline.okta().unwrap();
        // li.wei is in the group already, put there by someone else.
        assert!(okta.add_group_member(DEMO_QUARANTINE_GROUP_ID, "li.wei@example.com"));
        let users = [
            "ana.lima@example.com",
            "li.wei@example.com",
            "root.admin@example.com",
        ];
        send(&pipeline, &check("e2e-approve", "e2e-approve", &users)).await;
        let held = message_with_button(
            &pipeline,
            "e2e-approve",
            "approve",
            None,
            Duration::from_secs(20),
        )
        .await
        .expect("a held summary with Approve");
        assert_eq!(
            outcomes_of(&pipeline, "e2e-approve"),
            expect(&[
                ("ana.lima@example.com", "held"),
                ("li.wei@example.com", "held"),
                ("root.admin@example.com", "held"),
            ])
        );
        let held_text = held.message.to_string();
        assert!(held_text.contains("approve:quarantine"), "{held_text}");
        assert!(
            held_text.contains("This quarantines 3 users in Okta now"),
            "the Approve dialog says what approving does: {held_text}"
        );
        assert!(okta.writes().is_empty(), "nothing before approval");

        let approved = click(&pipeline, &held, &Click::approve(APPROVER)).await;
        assert_eq!(approved.status, 200, "{}", approved.answer);
        wait_for("the approval carried out", Duration::from_secs(30), || {
            let m = members(&pipeline);
            async move {
                m.contains(&"ana.lima@example.com".to_string())
                    .then_some(())
            }
        })
        .await;
        pipeline
            .wait_until_drained(Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(
            outcomes_of(&pipeline, "e2e-approve"),
            expect(&[
                ("ana.lima@example.com", "quarantined"),
                ("li.wei@example.com", "already quarantined"),
                ("root.admin@example.com", "protected"),
            ])
        );
        assert_eq!(okta.user("ana.lima@example.com").unwrap().status, "ACTIVE");
        let posts = pipeline
            .slack()
            .unwrap()
            .wait_for_response_posts(&approved.response_url, 1, Duration::from_secs(10))
            .await;
        let rewritten = posts
            .iter()
            .find(|p| p.accepted())
            .expect("the summary rewritten")
            .body
            .to_string();
        assert!(
            rewritten.contains(r#"\"action_id\":\"release\""#)
                || rewritten.contains(r#""action_id":"release""#),
            "{rewritten}"
        );
        assert!(rewritten.contains("ana.lima@example.com"), "{rewritten}");

        // li.wei was not added by this product: Release is refused.
        let li = okta.user("li.wei@example.com").unwrap();
        let not_ours = integration_tests::pipeline::post_to_slack(
            &pipeline,
            &json!({"text": "x", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "li"},
                "accessory": shared::decision::release_button("e2e-approve", &li.id, &li.login).unwrap()}]}),
        )
        .await;
        let refused = click(
            &pipeline,
            &not_ours,
            &Click::release("li.wei@example.com", APPROVER),
        )
        .await;
        assert_eq!(refused.status, 200);
        pipeline
            .wait_until_drained(Duration::from_secs(30))
            .await
            .unwrap();
        let record = wait_for("the refused release", Duration::from_secs(20), || {
            let store = pipeline.store();
            let id = li.id.clone();
            async move {
                store
                    .get_undo(&id, "e2e-approve")
                    .await
                    .ok()
                    .flatten()
                    .filter(|r| r.result.is_some())
            }
        })
        .await;
        assert!(
            record
                .result
                .as_deref()
                .unwrap()
                .starts_with("refused: oort-okta-lockout has no record of quarantining"),
            "{record:?}"
        );
        assert!(members(&pipeline).contains(&"li.wei@example.com".to_string()));
        assert_eq!(okta.group(DEMO_QUARANTINE_GROUP_ID).unwrap().removes, 0);
        pipeline.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unusable_group_fails_quarantine_users_writes_nothing_and_the_event_is_kept() {
        // An app group: Okta would refuse to change its members.
        let pipeline = start(with_policy(test_options(), POLICY, DEMO_APP_GROUP_ID)).await;
        send(
            &pipeline,
            &check(
                "e2e-app-group",
                "e2e-quarantine",
                &["ana.lima@example.com", "li.wei@example.com"],
            ),
        )
        .await;
        pipeline
            .slack()
            .unwrap()
            .wait_for_messages(1, Duration::from_secs(30))
            .await;
        let texts = slack_texts(&pipeline);
        assert!(
            texts[0].contains("is a APP_GROUP group, not an OKTA_GROUP"),
            "{}",
            texts[0]
        );
        assert_eq!(
            outcomes_of(&pipeline, "e2e-app-group"),
            expect(&[
                ("ana.lima@example.com", "failed"),
                ("li.wei@example.com", "failed"),
            ])
        );
        let okta = pipeline.okta().unwrap();
        assert!(okta.writes().is_empty(), "{:?}", okta.writes());
        // Kept until a person fixes it: every delivery, then the dead-letter queue.
        wait_for("the dead-letter queue", Duration::from_secs(40), || {
            let p = &pipeline;
            async move { (p.dlq_depth().await.ok()?.total() == 1).then_some(()) }
        })
        .await;
        assert!(okta.writes().is_empty());
        pipeline.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_group_is_reported_and_a_fix_is_picked_up_on_the_next_delivery() {
        const LATER: &str = "00gcreatedlater00001";
        let pipeline = start(with_policy(test_options(), POLICY, LATER)).await;
        send(
            &pipeline,
            &check("e2e-no-group", "e2e-quarantine", &["ana.lima@example.com"]),
        )
        .await;
        pipeline
            .slack()
            .unwrap()
            .wait_for_messages(1, Duration::from_secs(30))
            .await;
        let texts = slack_texts(&pipeline);
        assert!(
            texts[0].contains("does not exist in Okta (404)") && texts[0].contains(LATER),
            "{}",
            texts[0]
        );
        let okta = pipeline.okta().unwrap();
        assert!(okta.writes().is_empty(), "{:?}", okta.writes());
        // Someone creates the group: the next delivery quarantines.
        okta.add_group_with_id(LATER, "oort-quarantine", GroupType::OktaGroup);
        pipeline
            .slack()
            .unwrap()
            .wait_for_messages(2, Duration::from_secs(30))
            .await;
        pipeline
            .wait_until_drained(Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(
            outcomes_of(&pipeline, "e2e-no-group"),
            expect(&[("ana.lima@example.com", "quarantined")])
        );
        let ana = okta.user("ana.lima@example.com").unwrap();
        assert_eq!(okta.group(LATER).unwrap().members, [ana.id]);
        assert_eq!(pipeline.dlq_depth().await.unwrap().total(), 0);
        pipeline.shutdown().await;
    }

    #[test]
    fn a_bad_policy_stops_the_dispatcher_at_start_up_naming_the_setting() {
        let (_, dispatcher) = local_pipeline::pipeline::function_binaries(
            &local_pipeline::pipeline::lambda_bin_dir(),
        )
        .unwrap();
        // The log line is JSON: quotes inside the message are escaped there.
        let cases: [(&str, Option<&str>, &[&str]); 5] = [
            (
                "no-mfa",
                None,
                &["CHECK_ACTIONS is invalid: entry 1", "is not checkId=action"],
            ),
            (
                "no-mfa=lock",
                None,
                &[
                    "CHECK_ACTIONS is invalid: entry 1",
                    "unknown action",
                    "lock",
                ],
            ),
            (
                "a=suspend,A=notify",
                None,
                &["CHECK_ACTIONS is invalid: check", "is named twice"],
            ),
            (
                "a=quarantine",
                None,
                &["CHECK_ACTIONS is invalid", "QUARANTINE_GROUP_ID is not set"],
            ),
            (
                "a=quarantine",
                Some("00g/../x"),
                &["QUARANTINE_GROUP_ID is invalid"],
            ),
        ];
        for (policy, group, wanted) in cases {
            let mut command = std::process::Command::new(&dispatcher);
            command
                .env_clear()
                .env("OKTA_ORG_URL", "https://acme.okta.com")
                .env("OKTA_SECRET_ID", "okta")
                .env("SLACK_SECRET_ID", "slack")
                .env("CHECK_ACTIONS", policy);
            if let Some(group) = group {
                command.env("QUARANTINE_GROUP_ID", group);
            }
            let output = command.output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(!output.status.success(), "{policy}: started");
            for part in wanted {
                assert!(text.contains(part), "{policy}: {part}: {text}");
            }
        }
    }
}
