//! The whole pipeline on one machine, wired together.
//!
//! [`Pipeline::start`] starts, in order: moto (SQS and Secrets Manager), the
//! fake Okta (seeded with the demo org) and fake Slack, or the real ones when
//! the environment names them, the queue, dead-letter queue and secrets that
//! `template.yaml` creates, the two compiled functions under the
//! [`runtime_api`](crate::runtime_api) emulator, ingest's function URL, and
//! the SQS event source mapping that feeds the dispatcher. Everything started
//! is owned by the [`Pipeline`]: [`Pipeline::shutdown`] stops it in order, and
//! dropping it (a failed test, an error half-way through `start`) kills every
//! child process too.
//!
//! With the fake Okta, the dispatcher's Okta secret is an API token or an
//! OAuth 2.0 service app ([`OktaAuth`]); a real org always gets the API token
//! from the environment.
//!
//! It also records what the functions log and what the event source did, so
//! the demo can print per-user outcomes and tests can wait for them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::aws_setup::{
    LocalAws, QueueSpec, SecretValues, Stack, create_stack, okta_api_token_secret_json,
};
use crate::event_source::{BatchReport, EventSourceEvent, EventSourceOptions, SqsEventSource};
use crate::fake_okta::FakeOkta;
use crate::fake_slack::FakeSlack;
use crate::moto::MotoServer;
use crate::runtime_api::{FunctionSpec, FunctionUrl, Invoker, LogLine, LogSource, RuntimeEmulator};
use crate::seed;

/// The header ingest reads the API key from (its default).
pub const API_KEY_HEADER: &str = "x-api-client-token";

/// Names of the function binaries.
pub const INGEST: &str = "ingest";
pub const DISPATCHER: &str = "dispatcher";

/// Where Okta and Slack come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Services {
    /// Local stand-ins, always (tests).
    Fakes,
    /// A real Okta org when `OKTA_ORG_URL` and `OKTA_API_TOKEN` are set, a
    /// real Slack webhook when `SLACK_WEBHOOK_URL` is; stand-ins otherwise.
    FromEnvironment,
}

/// How the dispatcher authenticates to the fake Okta (a real org: always the
/// API token in `OKTA_API_TOKEN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OktaAuth {
    /// An SSWS API token; the secret is `{"apiToken": "..."}`.
    ApiToken,
    /// An OAuth 2.0 service app ([`seed::register_demo_app`]: EC P-256 key,
    /// DPoP required, the dispatcher's scopes); the secret is
    /// `{"clientId": "0oa...", "privateKey": "<PEM>", "keyId": "local-demo"}`.
    OAuth,
}

impl OktaAuth {
    /// The variable `make local` reads: `oauth` (the default) or `ssws`.
    pub const ENV: &'static str = "LOCAL_OKTA_AUTH";

    /// Reads [`OktaAuth::ENV`]: unset or empty is [`OktaAuth::OAuth`].
    pub fn from_env() -> anyhow::Result<OktaAuth> {
        Self::parse(std::env::var(Self::ENV).ok().as_deref())
    }

    /// `oauth` or `ssws` (any case); `None` or blank is `oauth`.
    pub fn parse(value: Option<&str>) -> anyhow::Result<OktaAuth> {
        match value
            .map(str::trim)
            .unwrap_or("")
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "oauth" => Ok(OktaAuth::OAuth),
            "ssws" => Ok(OktaAuth::ApiToken),
            other => bail!("{} must be oauth or ssws, not {other:?}", Self::ENV),
        }
    }
}

/// How to start the pipeline. `new` gives settings fit for tests and the demo.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// Where `ingest` and `dispatcher` are (`target/<profile>`).
    pub bin_dir: PathBuf,
    /// Queue and secret names start with this.
    pub prefix: String,
    /// The webhook API key; random when `None`.
    pub api_key: Option<String>,
    pub max_receive_count: u32,
    pub visibility_timeout: Duration,
    pub ingest_instances: usize,
    pub dispatcher_instances: usize,
    pub ingest_timeout: Duration,
    pub dispatcher_timeout: Duration,
    /// Event source pollers (batches in flight at once).
    pub poller_concurrency: usize,
    pub batch_size: i32,
    /// Extra environment for ingest (overrides the defaults).
    pub ingest_env: Vec<(String, String)>,
    /// Extra environment for the dispatcher (overrides the defaults), e.g.
    /// `DRY_RUN`, `MAX_USERS_PER_EVENT`, `PROTECT_ADMINS`.
    pub dispatcher_env: Vec<(String, String)>,
    pub services: Services,
    /// Seed the fake Okta with [`seed::demo_users`].
    pub seed_demo_org: bool,
    /// The dispatcher's credentials for the fake Okta. `new` gives
    /// [`OktaAuth::ApiToken`]; `make local` sets it from `LOCAL_OKTA_AUTH`
    /// (default OAuth).
    pub okta_auth: OktaAuth,
    /// The function URL's address (port 0: a free one).
    pub function_url_addr: SocketAddr,
    /// Print every function log line on stderr.
    pub echo_logs: bool,
    /// Let the fake Slack print each summary on stdout.
    pub print_slack: bool,
    /// How long the functions may take to initialise.
    pub ready_timeout: Duration,
}

impl PipelineOptions {
    pub fn new(bin_dir: impl Into<PathBuf>) -> Self {
        PipelineOptions {
            bin_dir: bin_dir.into(),
            prefix: "oort-local".to_string(),
            api_key: None,
            max_receive_count: 3,
            visibility_timeout: Duration::from_secs(10),
            ingest_instances: 2,
            dispatcher_instances: 2,
            ingest_timeout: Duration::from_secs(10),
            dispatcher_timeout: Duration::from_secs(10),
            poller_concurrency: 2,
            batch_size: 10,
            ingest_env: Vec::new(),
            dispatcher_env: Vec::new(),
            services: Services::Fakes,
            seed_demo_org: true,
            okta_auth: OktaAuth::ApiToken,
            function_url_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            echo_logs: false,
            print_slack: false,
            ready_timeout: Duration::from_secs(60),
        }
    }
}

/// The directory holding the function binaries: `LAMBDA_BIN_DIR`, else the
/// `target/<profile>` this executable runs from (tests run from
/// `target/<profile>/deps`).
pub fn lambda_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LAMBDA_BIN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir
        .file_name()
        .is_some_and(|n| n == "deps" || n == "examples")
    {
        dir.pop();
    }
    dir
}

/// The two binaries in `dir`, or an error that says how to build them.
pub fn function_binaries(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let ingest = dir.join(INGEST);
    let dispatcher = dir.join(DISPATCHER);
    for binary in [&ingest, &dispatcher] {
        if !binary.is_file() {
            bail!(
                "{} is missing: run `cargo build --bins` first (make test does)",
                binary.display()
            );
        }
    }
    Ok((ingest, dispatcher))
}

/// A real Okta or Slack from the environment.
#[derive(Clone, Debug)]
struct RealServices {
    okta: Option<(String, String)>,
    slack_webhook: Option<String>,
}

impl RealServices {
    fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let okta = match (var("OKTA_ORG_URL"), var("OKTA_API_TOKEN")) {
            (Some(url), Some(token)) => Some((url.trim_end_matches('/').to_string(), token)),
            _ => None,
        };
        RealServices {
            okta,
            slack_webhook: var("SLACK_WEBHOOK_URL"),
        }
    }
}

/// An Oort webhook body (EventBridge-shaped envelope), as the samples in
/// `events/` carry: `detail_type` `FAILED_CHECK` or `WebhookTest`, failing `users`.
pub fn oort_event(detail_type: &str, id: &str, users: &[&str]) -> Value {
    serde_json::json!({
        "version": "0",
        "id": id,
        "detail-type": detail_type,
        "source": "local-pipeline",
        "account": "111122223333",
        "time": "2026-11-02T08:15:00Z",
        "region": "us-east-2",
        "resources": [],
        "detail": {
            "id": format!("finding-{id}"),
            "checkId": "no-mfa",
            "title": "No MFA Configured",
            "severity": "critical",
            "published": "2026-11-02T08:15:00.123Z",
            "usersFailing": users,
        }
    })
}

/// A dispatcher log line that reports one user's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserOutcome {
    pub event_id: Option<String>,
    pub user: String,
    /// suspended, already suspended, not active, not found, ambiguous,
    /// protected, held, dry run (would suspend), failed.
    pub outcome: String,
    pub reason: Option<String>,
}

fn field_text(map: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    match map.get(name)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl UserOutcome {
    /// A line with `user` and `outcome` fields is a per-user outcome.
    pub fn from_log(line: &LogLine) -> Option<UserOutcome> {
        if line.source != LogSource::Stdout {
            return None;
        }
        let map = line.json()?;
        Some(UserOutcome {
            user: field_text(&map, "user")?,
            outcome: field_text(&map, "outcome")?,
            event_id: field_text(&map, "event_id"),
            reason: field_text(&map, "reason"),
        })
    }
}

/// Messages in a queue, by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

impl QueueDepth {
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

/// What the pipeline saw, kept for tests and the demo.
#[derive(Default)]
struct Journal {
    lines: Vec<LogLine>,
    outcomes: Vec<UserOutcome>,
    batches: Vec<BatchReport>,
}

/// Lines kept at most (a long `local-pipeline up` session must not grow forever).
const JOURNAL_LIMIT: usize = 200_000;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The running pipeline.
pub struct Pipeline {
    // Field order is drop order: pollers first, then the functions, the
    // stand-ins, and moto last (the functions still talk to it until killed).
    event_source: SqsEventSource,
    function_url: FunctionUrl,
    recorder: JoinHandle<()>,
    emulator: RuntimeEmulator,
    ingest: Invoker,
    dispatcher: Invoker,
    okta: Option<FakeOkta>,
    slack: Option<FakeSlack>,
    okta_org_url: String,
    okta_auth: OktaAuth,
    okta_client_id: Option<String>,
    slack_webhook_url: String,
    api_key: String,
    stack: Stack,
    aws: LocalAws,
    journal: Arc<Mutex<Journal>>,
    notices: Vec<String>,
    options: PipelineOptions,
    _moto: MotoServer,
}

impl Pipeline {
    /// Starts everything; on error, whatever was started is stopped again.
    pub async fn start(options: PipelineOptions) -> anyhow::Result<Pipeline> {
        shared::aws::install_crypto_provider();
        let (ingest_bin, dispatcher_bin) = function_binaries(&options.bin_dir)?;
        let mut notices = Vec::new();

        let moto = MotoServer::start().await?;
        let aws = LocalAws::connect(moto.endpoint()).await;

        let real = match options.services {
            Services::Fakes => RealServices {
                okta: None,
                slack_webhook: None,
            },
            Services::FromEnvironment => RealServices::from_env(),
        };
        let mut okta_client_id = None;
        let (okta, okta_org_url, okta_secret, okta_auth) = match &real.okta {
            Some((url, token)) => {
                notices.push(format!(
                    "using the real Okta org at {url} (OKTA_ORG_URL); DRY_RUN defaults to true: set DRY_RUN=false to really suspend users"
                ));
                (
                    None,
                    url.clone(),
                    okta_api_token_secret_json(token),
                    OktaAuth::ApiToken,
                )
            }
            None => {
                let okta = FakeOkta::start(seed::DEMO_OKTA_TOKEN).await;
                if options.seed_demo_org {
                    seed::seed_demo_org(&okta);
                }
                let url = okta.base_url();
                let secret = match options.okta_auth {
                    OktaAuth::ApiToken => okta_api_token_secret_json(seed::DEMO_OKTA_TOKEN),
                    OktaAuth::OAuth => {
                        let app = seed::register_demo_app(&okta)
                            .context("registering the demo OAuth app in the fake Okta")?;
                        okta_client_id = Some(app.client_id.clone());
                        app.secret_json()
                    }
                };
                (Some(okta), url, secret, options.okta_auth)
            }
        };
        let (slack, slack_webhook_url) = match &real.slack_webhook {
            Some(url) => {
                notices.push(
                    "posting summaries to the real Slack webhook in SLACK_WEBHOOK_URL".to_string(),
                );
                (None, url.clone())
            }
            None => {
                let slack = FakeSlack::start().await;
                slack.set_printer(options.print_slack);
                let url = slack.webhook_url();
                (Some(slack), url)
            }
        };

        let api_key = options
            .api_key
            .clone()
            .unwrap_or_else(|| format!("local-{}", crate::runtime_api::new_uuid()));
        let queue_spec = QueueSpec {
            max_receive_count: options.max_receive_count,
            visibility_timeout: options.visibility_timeout,
            ..QueueSpec::new(&options.prefix)
        };
        let stack = create_stack(
            &aws,
            &queue_spec,
            &SecretValues::new(&api_key, "", &slack_webhook_url).with_okta_json(okta_secret),
        )
        .await
        .context("creating the queues and secrets in moto")?;

        let emulator = RuntimeEmulator::new();
        emulator.set_echo(options.echo_logs);
        let journal = Arc::new(Mutex::new(Journal::default()));

        let mut ingest_env = aws.env();
        ingest_env.extend(
            [
                ("QUEUE_URL", stack.queues.queue_url.clone()),
                ("API_KEY_SECRET_ID", stack.api_key_secret_id.clone()),
                ("API_KEY_HEADER", API_KEY_HEADER.to_string()),
                (
                    "MAX_MESSAGE_BYTES",
                    queue_spec.max_message_bytes.to_string(),
                ),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        ingest_env.extend(options.ingest_env.iter().cloned());

        let mut dispatcher_env = aws.env();
        dispatcher_env.extend(
            [
                ("OKTA_ORG_URL", okta_org_url.clone()),
                ("OKTA_SECRET_ID", stack.okta_secret_id.clone()),
                ("SLACK_SECRET_ID", stack.slack_secret_id.clone()),
                ("MAX_RECEIVE_COUNT", options.max_receive_count.to_string()),
                // Against a real org, nothing is suspended unless asked for.
                (
                    "DRY_RUN",
                    if real.okta.is_some() { "true" } else { "false" }.to_string(),
                ),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        if let Some(slack) = &slack {
            dispatcher_env.push(("SLACK_API_URL".to_string(), slack.api_url()));
        }
        dispatcher_env.extend(options.dispatcher_env.iter().cloned());

        let region = aws.region.clone();
        let ingest_spec = FunctionSpec {
            env: ingest_env,
            instances: options.ingest_instances.max(1),
            timeout: options.ingest_timeout,
            region: region.clone(),
            ..FunctionSpec::new(INGEST, ingest_bin)
        };
        let dispatcher_spec = FunctionSpec {
            env: dispatcher_env,
            instances: options.dispatcher_instances.max(1),
            timeout: options.dispatcher_timeout,
            region: region.clone(),
            ..FunctionSpec::new(DISPATCHER, dispatcher_bin)
        };
        // Subscribe before the first instance starts, so no line is missed.
        let logs = emulator.subscribe_logs();
        let ingest = emulator.start_function(ingest_spec).await?;
        let dispatcher = emulator.start_function(dispatcher_spec).await?;
        let (ready_ingest, ready_dispatcher) = tokio::join!(
            ingest.wait_ready(options.ready_timeout),
            dispatcher.wait_ready(options.ready_timeout)
        );
        ready_ingest.context("the ingest function did not start")?;
        ready_dispatcher.context("the dispatcher function did not start")?;

        let function_url = FunctionUrl::start(ingest.clone(), options.function_url_addr).await?;
        let event_source = SqsEventSource::start(
            aws.sqs.clone(),
            dispatcher.clone(),
            EventSourceOptions {
                batch_size: options.batch_size,
                // Lambda never hands a batch to an invocation that has to
                // wait for a free environment while the visibility clock runs:
                // at most one batch in flight per dispatcher instance.
                concurrency: options
                    .poller_concurrency
                    .clamp(1, options.dispatcher_instances.max(1)),
                shutdown_grace: options.dispatcher_timeout + Duration::from_secs(2),
                ..EventSourceOptions::new(&stack.queues.queue_url, &stack.queues.queue_arn, &region)
            },
        );
        let recorder = tokio::spawn(record(logs, event_source.subscribe(), journal.clone()));

        Ok(Pipeline {
            event_source,
            function_url,
            recorder,
            emulator,
            ingest,
            dispatcher,
            okta,
            slack,
            okta_org_url,
            okta_auth,
            okta_client_id,
            slack_webhook_url,
            api_key,
            stack,
            aws,
            journal,
            notices,
            options,
            _moto: moto,
        })
    }

    /// `http://127.0.0.1:<port>/`: POST webhooks here.
    pub fn function_url(&self) -> String {
        self.function_url.url()
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    pub fn api_key_header(&self) -> &str {
        API_KEY_HEADER
    }

    /// The fake Okta (`None` when a real org is used).
    pub fn okta(&self) -> Option<&FakeOkta> {
        self.okta.as_ref()
    }

    /// The fake Slack (`None` when a real webhook is used).
    pub fn slack(&self) -> Option<&FakeSlack> {
        self.slack.as_ref()
    }

    pub fn okta_org_url(&self) -> &str {
        &self.okta_org_url
    }

    /// How the dispatcher authenticates to Okta (a real org: the API token).
    pub fn okta_auth(&self) -> OktaAuth {
        self.okta_auth
    }

    /// The demo OAuth app's client id (with [`OktaAuth::OAuth`] and the fake Okta).
    pub fn okta_client_id(&self) -> Option<&str> {
        self.okta_client_id.as_deref()
    }

    pub fn slack_webhook_url(&self) -> &str {
        &self.slack_webhook_url
    }

    pub fn aws(&self) -> &LocalAws {
        &self.aws
    }

    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    pub fn options(&self) -> &PipelineOptions {
        &self.options
    }

    /// Warnings worth printing (real services in use, DRY_RUN default, ...).
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    pub fn ingest(&self) -> &Invoker {
        &self.ingest
    }

    pub fn dispatcher(&self) -> &Invoker {
        &self.dispatcher
    }

    pub fn emulator(&self) -> &RuntimeEmulator {
        &self.emulator
    }

    pub fn event_source(&self) -> &SqsEventSource {
        &self.event_source
    }

    /// Function log lines from now on.
    pub fn subscribe_logs(&self) -> broadcast::Receiver<LogLine> {
        self.emulator.subscribe_logs()
    }

    /// Event source activity from now on.
    pub fn subscribe_batches(&self) -> broadcast::Receiver<EventSourceEvent> {
        self.event_source.subscribe()
    }

    /// Every log line so far.
    pub fn log_lines(&self) -> Vec<LogLine> {
        lock(&self.journal).lines.clone()
    }

    /// Every per-user outcome the dispatcher logged so far.
    pub fn user_outcomes(&self) -> Vec<UserOutcome> {
        lock(&self.journal).outcomes.clone()
    }

    /// Every completed batch so far.
    pub fn batch_reports(&self) -> Vec<BatchReport> {
        lock(&self.journal).batches.clone()
    }

    /// Waits until at least `n` per-user outcomes were logged (or the timeout);
    /// returns them either way.
    pub async fn wait_for_outcomes(&self, n: usize, timeout: Duration) -> Vec<UserOutcome> {
        let deadline = Instant::now() + timeout;
        loop {
            let outcomes = self.user_outcomes();
            if outcomes.len() >= n || Instant::now() >= deadline {
                return outcomes;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn depth(&self, queue_url: &str) -> anyhow::Result<QueueDepth> {
        let out = self
            .aws
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .with_context(|| format!("GetQueueAttributes {queue_url}"))?;
        let attrs = out.attributes.unwrap_or_default();
        let get =
            |name: &QueueAttributeName| attrs.get(name).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(QueueDepth {
            visible: get(&QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: get(&QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }

    /// The event queue's depth.
    pub async fn queue_depth(&self) -> anyhow::Result<QueueDepth> {
        self.depth(&self.stack.queues.queue_url).await
    }

    /// The dead-letter queue's depth.
    pub async fn dlq_depth(&self) -> anyhow::Result<QueueDepth> {
        self.depth(&self.stack.queues.dlq_url).await
    }

    /// Bodies of the messages in the dead-letter queue (read without hiding them).
    pub async fn dlq_bodies(&self) -> anyhow::Result<Vec<String>> {
        let out = self
            .aws
            .sqs
            .receive_message()
            .queue_url(&self.stack.queues.dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .context("ReceiveMessage on the dead-letter queue")?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.body)
            .collect())
    }

    /// Waits until the event queue is empty and no batch is in flight.
    pub async fn wait_until_drained(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = QueueDepth::default();
        loop {
            if self.event_source.batches_in_flight() == 0 {
                last = self.queue_depth().await?;
                if last.total() == 0 && self.event_source.batches_in_flight() == 0 {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "the queue was not drained after {timeout:?}: {} visible, {} in flight, {} batches being processed",
                    last.visible,
                    last.in_flight,
                    self.event_source.batches_in_flight()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops everything in order: pollers (letting a batch finish), the
    /// function URL, the functions, the stand-ins, moto.
    pub async fn shutdown(mut self) {
        self.event_source.shutdown().await;
        self.function_url.shutdown();
        self.emulator.shutdown().await;
        self.recorder.abort();
        if let Some(okta) = &self.okta {
            okta.shutdown().await;
        }
        if let Some(slack) = &self.slack {
            slack.shutdown().await;
        }
        // moto goes with the rest of `self` (kill_on_drop and its stdin pipe).
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.recorder.abort();
    }
}

/// Keeps what the functions logged and what the event source did.
async fn record(
    mut logs: broadcast::Receiver<LogLine>,
    mut batches: broadcast::Receiver<EventSourceEvent>,
    journal: Arc<Mutex<Journal>>,
) {
    let mut logs_open = true;
    let mut batches_open = true;
    while logs_open || batches_open {
        tokio::select! {
            line = logs.recv(), if logs_open => match line {
                Ok(line) => {
                    let mut j = lock(&journal);
                    if &*line.function == DISPATCHER
                        && let Some(outcome) = UserOutcome::from_log(&line)
                    {
                        j.outcomes.push(outcome);
                    }
                    if j.lines.len() < JOURNAL_LIMIT {
                        j.lines.push(line);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => logs_open = false,
            },
            event = batches.recv(), if batches_open => match event {
                Ok(EventSourceEvent::Completed(report)) => {
                    let mut j = lock(&journal);
                    if j.batches.len() < JOURNAL_LIMIT {
                        j.batches.push(report);
                    }
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => batches_open = false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(function: &str, text: &str) -> LogLine {
        LogLine {
            function: Arc::from(function),
            instance: 0,
            source: LogSource::Stdout,
            line: text.to_string(),
        }
    }

    #[test]
    fn per_user_outcomes_are_read_from_json_log_lines() {
        let outcome = UserOutcome::from_log(&line(
            DISPATCHER,
            r#"{"level":"INFO","event_id":"e1","user":"ana.lima@example.com","outcome":"failed","reason":"Okta 503"}"#,
        ))
        .unwrap();
        assert_eq!(outcome.event_id.as_deref(), Some("e1"));
        assert_eq!(outcome.outcome, "failed");
        assert_eq!(outcome.reason.as_deref(), Some("Okta 503"));
        // An Okta call line has no outcome; plain text is not an outcome.
        assert!(
            UserOutcome::from_log(&line(
                DISPATCHER,
                r#"{"user":"a","operation":"suspend","status":200}"#
            ))
            .is_none()
        );
        assert!(UserOutcome::from_log(&line(DISPATCHER, "panicked at ...")).is_none());
    }

    #[test]
    fn local_okta_auth_defaults_to_oauth() {
        assert_eq!(OktaAuth::parse(None).unwrap(), OktaAuth::OAuth);
        assert_eq!(OktaAuth::parse(Some(" ")).unwrap(), OktaAuth::OAuth);
        assert_eq!(OktaAuth::parse(Some("OAuth")).unwrap(), OktaAuth::OAuth);
        assert_eq!(OktaAuth::parse(Some("ssws")).unwrap(), OktaAuth::ApiToken);
        let err = OktaAuth::parse(Some("basic")).unwrap_err().to_string();
        assert!(
            err.contains("LOCAL_OKTA_AUTH must be oauth or ssws"),
            "{err}"
        );
    }

    #[test]
    fn missing_binaries_say_how_to_build_them() {
        let err = function_binaries(Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("run `cargo build --bins` first (make test does)"),
            "{err}"
        );
    }
}
