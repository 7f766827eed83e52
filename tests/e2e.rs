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

/// After the queue drained, waits a little so a stray extra summary would show.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(800)).await;
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
    settle().await;

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
    settle().await;

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
    settle().await;

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
    settle().await;

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
    let texts = slack_texts(&pipeline);
    assert_eq!(texts.len(), 1, "the summary is posted once: {texts:#?}");
    assert!(texts[0].contains("li.wei@example.com"), "{}", texts[0]);
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
    settle().await;

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
    settle().await;

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
