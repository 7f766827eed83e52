//! Helpers for the end-to-end tests: a [`Pipeline`] with test settings (short
//! visibility timeout, the local stand-ins, the demo org), a webhook sender,
//! event builders and bounded waits; for approvals from Slack, the settings
//! ([`approval_options`]), summaries with buttons posted as the dispatcher
//! posts them, clicks, and the decision messages the dispatcher received.
//!
//! The function binaries come from `target/<profile>` next to the test
//! executable, or from `LAMBDA_BIN_DIR`; when they are missing the test fails
//! with "run `cargo build --bins` first (make test does)".

use std::time::Duration;

use local_pipeline::event_source::ReceivedMessage;
use local_pipeline::fake_slack::{Click, ClickOutcome, SlackMessage, find_button};
use local_pipeline::pipeline::{OktaAuth, Pipeline, PipelineOptions, Services, lambda_bin_dir};
use serde_json::Value;
use shared::testing::OortBody;
use tokio::time::Instant;

/// The API key the test pipelines accept.
pub const TEST_API_KEY: &str = "e2e-test-api-key";

/// Settings for a test: fakes only (whatever the environment says), the demo
/// org, the dispatcher signed in as an OAuth service app with DPoP (the
/// recommended production setup), a 3 s visibility timeout and a dispatcher timeout no longer than it,
/// so a slow invocation never overlaps its own redelivery.
pub fn test_options() -> PipelineOptions {
    let mut options = PipelineOptions::new(lambda_bin_dir());
    options.services = Services::Fakes;
    options.okta_auth = OktaAuth::OAuth;
    options.api_key = Some(TEST_API_KEY.to_string());
    options.visibility_timeout = Duration::from_secs(3);
    options.dispatcher_timeout = Duration::from_secs(3);
    options.ingest_timeout = Duration::from_secs(5);
    options.max_receive_count = 3;
    options.dispatcher_env = vec![
        ("DRY_RUN".into(), "false".into()),
        ("PROTECT_ADMINS".into(), "true".into()),
        // Failed messages come back after 1 s, 4 s, 16 s (not 30 s, 2 min, 8 min).
        ("RETRY_DELAY_SECONDS".into(), "1".into()),
    ];
    // `E2E_ECHO=1` prints every function log line, to debug a failing test.
    options.echo_logs = std::env::var("E2E_ECHO").is_ok_and(|v| v == "1");
    options
}

/// Starts a pipeline; a test that cannot start one fails with the reason.
pub async fn start(options: PipelineOptions) -> Pipeline {
    match tokio::time::timeout(Duration::from_secs(120), Pipeline::start(options)).await {
        Ok(Ok(pipeline)) => pipeline,
        Ok(Err(e)) => panic!("could not start the pipeline: {e:#}"),
        Err(_) => panic!("the pipeline did not start within 120 s"),
    }
}

/// Posts webhooks to a pipeline's function URL.
#[derive(Clone)]
pub struct Webhook {
    http: reqwest::Client,
    url: String,
    header: String,
    key: String,
}

impl Webhook {
    pub fn new(pipeline: &Pipeline) -> Webhook {
        shared::aws::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(32)
            .build()
            .expect("an HTTP client");
        Webhook {
            http,
            url: pipeline.function_url(),
            header: pipeline.api_key_header().to_string(),
            key: pipeline.api_key().to_string(),
        }
    }

    /// Posts `body` as JSON with the API key; returns the status and the JSON answer.
    pub async fn post(&self, body: &Value) -> (u16, Value) {
        let answer = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header(&self.header, &self.key)
            .body(body.to_string())
            .send()
            .await
            .expect("the function URL answers");
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// A failed check naming `users`.
pub fn failed_check(id: &str, users: &[&str]) -> Value {
    OortBody::failed_check(id, users).into_json()
}

/// Oort's connectivity test (it lists a user, which must never be acted on).
pub fn webhook_test(id: &str) -> Value {
    OortBody::webhook_test(id).into_json()
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout`
/// saying what was awaited.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Slack messages as plain text (for "does the summary mention X").
pub fn slack_texts(pipeline: &Pipeline) -> Vec<String> {
    let slack = pipeline.slack().expect("the fake Slack");
    slack
        .messages()
        .iter()
        .map(local_pipeline::fake_slack::render_text)
        .collect()
}

// ---------------------------------------------------------------- approvals

/// The Slack user who may approve in the test pipelines.
pub use local_pipeline::pipeline::DEMO_APPROVER as APPROVER;
/// A second approver ([`approval_options`]).
pub const SECOND_APPROVER: &str = "U0SECOND";
/// Someone who may not approve.
pub use local_pipeline::pipeline::DEMO_NON_APPROVER as STRANGER;
/// A protected account ([`approval_options`]'s `PROTECTED_USERS`).
pub const BREAK_GLASS: &str = "break-glass@example.com";
/// [`approval_options`]'s `MAX_USERS_PER_EVENT`: an event of 4 or more users is held.
pub const TEST_CAP: usize = 3;

/// [`test_options`] with approvals: two approvers, the dispatcher with the
/// store and the approvers (so its summaries carry buttons), a cap of
/// [`TEST_CAP`] users and [`BREAK_GLASS`] protected.
pub fn approval_options() -> PipelineOptions {
    let mut options = test_options();
    options.approvals = true;
    options.approvers = vec![APPROVER.to_string(), SECOND_APPROVER.to_string()];
    options.dispatcher_env.extend([
        ("MAX_USERS_PER_EVENT".into(), TEST_CAP.to_string()),
        ("PROTECTED_USERS".into(), BREAK_GLASS.into()),
    ]);
    options
}

/// The decision messages the event source handed to the dispatcher, once
/// each (a redelivery is the same message), in the order first delivered.
pub fn decision_deliveries(pipeline: &Pipeline) -> Vec<ReceivedMessage> {
    let mut seen: Vec<ReceivedMessage> = Vec::new();
    for report in pipeline.batch_reports() {
        for message in report.messages {
            let decision =
                message.message_attributes.get("kind").map(String::as_str) == Some("decision");
            if decision && !seen.iter().any(|m| m.message_id == message.message_id) {
                seen.push(message);
            }
        }
    }
    seen
}

/// The receive counts each decision message was delivered with, by message id.
pub fn decision_receive_counts(pipeline: &Pipeline) -> Vec<Vec<u32>> {
    let ids: Vec<String> = decision_deliveries(pipeline)
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    let reports = pipeline.batch_reports();
    ids.iter()
        .map(|id| {
            reports
                .iter()
                .flat_map(|r| r.messages.iter())
                .filter(|m| &m.message_id == id)
                .map(|m| m.receive_count)
                .collect()
        })
        .collect()
}

/// Posts `message` to the fake Slack's webhook, as the dispatcher posts a
/// summary, and returns it as the channel shows it (with its `ts`).
pub async fn post_to_slack(pipeline: &Pipeline, message: &Value) -> SlackMessage {
    shared::aws::install_crypto_provider();
    let slack = pipeline.slack().expect("the fake Slack");
    let before = slack.channel_messages().len();
    let answer = reqwest::Client::new()
        .post(slack.webhook_url())
        .header("content-type", "application/json")
        .body(message.to_string())
        .send()
        .await
        .expect("the fake Slack answers");
    assert_eq!(answer.status().as_u16(), 200, "{:?}", answer.text().await);
    let channel = slack.channel_messages();
    assert_eq!(channel.len(), before + 1, "the message is in the channel");
    channel.last().cloned().expect("a message")
}

/// A held summary as the dispatcher posts it: a section and the Approve and
/// Dismiss buttons of `event_id` (from `shared::decision`).
pub fn held_summary(event_id: &str, users: usize) -> Value {
    let approve = shared::decision::approve_button(event_id, users).expect("a button");
    let dismiss = shared::decision::dismiss_button(event_id).expect("a button");
    serde_json::json!({
        "text": format!("HELD: {event_id}"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("*HELD*: `{event_id}`")}},
            {"type": "actions", "block_id": "decide", "elements": [approve, dismiss]},
        ]
    })
}

/// A summary with one Unsuspend button: `login` (Okta id `okta_user_id`) in `event_id`.
pub fn undo_summary(event_id: &str, okta_user_id: &str, login: &str) -> Value {
    let undo = shared::decision::unsuspend_button(event_id, okta_user_id, login).expect("a button");
    serde_json::json!({
        "text": format!("{login} was suspended"),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": format!("`{login}` was suspended")}, "accessory": undo}]
    })
}

/// The newest message in the channel that mentions `event_id` and has a
/// button `action_id`, waiting up to `timeout` for it.
pub async fn message_with_button(
    pipeline: &Pipeline,
    event_id: &str,
    action_id: &str,
    login: Option<&str>,
    timeout: Duration,
) -> Option<SlackMessage> {
    let slack = pipeline.slack().expect("the fake Slack");
    slack
        .wait_for_channel_message(timeout, |m| {
            m.message.to_string().contains(event_id)
                && find_button(&m.message, action_id, login).is_some()
        })
        .await
}

/// Clicks, panicking when the click cannot be sent at all.
pub async fn click(pipeline: &Pipeline, message: &SlackMessage, click: &Click) -> ClickOutcome {
    pipeline
        .slack()
        .expect("the fake Slack")
        .click(message, click)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}
