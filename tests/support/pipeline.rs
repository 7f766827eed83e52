//! Helpers for the end-to-end tests: a [`Pipeline`] with test settings (short
//! visibility timeout, the local stand-ins, the demo org), a webhook sender,
//! event builders and bounded waits.
//!
//! The function binaries come from `target/<profile>` next to the test
//! executable, or from `LAMBDA_BIN_DIR`; when they are missing the test fails
//! with "run `cargo build --bins` first (make test does)".

use std::time::Duration;

use local_pipeline::pipeline::{
    OktaAuth, Pipeline, PipelineOptions, Services, lambda_bin_dir, oort_event,
};
use serde_json::Value;
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
    oort_event("FAILED_CHECK", id, users)
}

/// Oort's connectivity test (it lists a user, which must never be acted on).
pub fn webhook_test(id: &str) -> Value {
    oort_event("WebhookTest", id, &["ana.lima@example.com"])
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
