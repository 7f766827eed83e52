//! The whole pipeline on one machine, wired together.
//!
//! [`Pipeline::start`] starts, in order: moto (SQS, Secrets Manager and
//! DynamoDB), the fake Okta (seeded with the demo org) and fake Slack, or the
//! real ones when the environment names them, the queue, dead-letter queue,
//! secrets and store table that `template.yaml` creates, the three compiled
//! functions under the [`runtime_api`](crate::runtime_api) emulator, a
//! function URL in front of ingest and one in front of actions (the Slack
//! app's Request URL, which the fake Slack's clicks go to), and the SQS event
//! source mapping that feeds the dispatcher. Everything started is owned by
//! the [`Pipeline`]: [`Pipeline::shutdown`] stops it in order, and dropping it
//! (a failed test, an error half-way through `start`) kills every child
//! process too.
//!
//! With the fake Okta, the dispatcher's Okta secret is an API token or an
//! OAuth 2.0 service app ([`OktaAuth`]); a real org always gets the API token
//! from the environment.
//!
//! The actions function is configured as the template configures it
//! (`QUEUE_URL`, `STORE_TABLE`, `SLACK_SIGNING_SECRET_ID`, `SLACK_APPROVERS`,
//! `SLACK_APP_ID` and `SLACK_TEAM_ID` of the fake Slack, `SLACK_API_URL`,
//! `APPROVAL_TTL_HOURS`, `SECRET_TTL_SECONDS`), with a generated signing
//! secret; the dispatcher gets the store and the approvers only with
//! [`PipelineOptions::approvals`].
//!
//! It also records what the functions log and what the event source did, so
//! the demo can print per-user outcomes and tests can wait for them (the
//! `journal` submodule). How to start it is in the `options` submodule.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::aws_setup::{
    LocalAws, QueueSpec, SecretValues, Stack, create_stack, generate_signing_secret,
    okta_api_token_secret_json,
};
use crate::event_source::{BatchReport, EventSourceEvent, EventSourceOptions, SqsEventSource};
use crate::fake_okta::FakeOkta;
use crate::fake_slack::{APP_ID, FakeSlack, SlackApp, TEAM_ID};
use crate::lock;
use crate::moto::MotoServer;
use crate::runtime_api::{FunctionSpec, FunctionUrl, Invoker, LogLine, RuntimeEmulator};
use crate::seed;

mod aws_state;
mod journal;
mod options;

pub use aws_state::QueueDepth;
pub use journal::{LoggedClick, UserOutcome};
pub use options::{
    OktaAuth, PipelineOptions, Services, function_binaries, function_binary, lambda_bin_dir,
};

use journal::{Journal, record};
use options::{RealServices, approvers_setting};

/// The header ingest reads the API key from (its default).
pub const API_KEY_HEADER: &str = "x-api-client-token";

/// Names of the function binaries.
pub const INGEST: &str = "ingest";
pub const DISPATCHER: &str = "dispatcher";
pub const ACTIONS: &str = "actions";

/// The demo approver's Slack user id: the one person `make local` lets approve.
pub const DEMO_APPROVER: &str = "U0APPROVER";
/// A Slack user who is not an approver.
pub const DEMO_NON_APPROVER: &str = "U0VISITOR";

/// The running pipeline.
pub struct Pipeline {
    // Field order is drop order: pollers first, then the functions, the
    // stand-ins, and moto last (the functions still talk to it until killed).
    event_source: SqsEventSource,
    function_url: FunctionUrl,
    actions_url: FunctionUrl,
    recorder: JoinHandle<()>,
    emulator: RuntimeEmulator,
    ingest: Invoker,
    dispatcher: Invoker,
    actions: Invoker,
    okta: Option<FakeOkta>,
    slack: Option<FakeSlack>,
    okta_org_url: String,
    okta_auth: OktaAuth,
    okta_client_id: Option<String>,
    slack_webhook_url: String,
    api_key: String,
    signing_secret: String,
    store: shared::store::Store,
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
        let actions_bin = function_binary(&options.bin_dir, ACTIONS)?;
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
                let url = slack.webhook_url();
                (Some(slack), url)
            }
        };

        let api_key = options
            .api_key
            .clone()
            .unwrap_or_else(|| format!("local-{}", uuid::Uuid::new_v4()));
        let signing_secret = options
            .signing_secret
            .clone()
            .unwrap_or_else(generate_signing_secret);
        let queue_spec = QueueSpec {
            max_receive_count: options.max_receive_count,
            visibility_timeout: options.visibility_timeout,
            ..QueueSpec::new(&options.prefix)
        };
        let stack = create_stack(
            &aws,
            &queue_spec,
            &SecretValues::new(&api_key, "", &slack_webhook_url)
                .with_okta_json(okta_secret)
                .with_signing_secret(&signing_secret),
        )
        .await
        .context("creating the queues, secrets and store table in moto")?;
        let approvers = approvers_setting(&options.approvers);
        let approval_ttl_hours = options.approval_ttl_hours.to_string();

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
                // As the template: failed messages come back early, and each
                // event's progress and this product's suspensions are kept.
                ("QUEUE_URL", stack.queues.queue_url.clone()),
                ("STORE_TABLE", stack.store_table.clone()),
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
        if options.approvals {
            dispatcher_env.extend(
                [
                    ("SLACK_APPROVERS", approvers.clone()),
                    ("APPROVAL_TTL_HOURS", approval_ttl_hours.clone()),
                ]
                .map(|(k, v)| (k.to_string(), v)),
            );
        }
        dispatcher_env.extend(options.dispatcher_env.iter().cloned());

        // As template.yaml configures ActionsFunction.
        let mut actions_env = aws.env();
        actions_env.extend(
            [
                ("QUEUE_URL", stack.queues.queue_url.clone()),
                ("STORE_TABLE", stack.store_table.clone()),
                ("SLACK_SIGNING_SECRET_ID", stack.signing_secret_id.clone()),
                ("SLACK_APPROVERS", approvers),
                ("APPROVAL_TTL_HOURS", approval_ttl_hours),
                ("SECRET_TTL_SECONDS", "300".to_string()),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        if let Some(slack) = &slack {
            // Pinned to the app and workspace the fake Slack's clicks come from.
            actions_env.extend(
                [
                    ("SLACK_API_URL", slack.api_url()),
                    ("SLACK_APP_ID", APP_ID.to_string()),
                    ("SLACK_TEAM_ID", TEAM_ID.to_string()),
                ]
                .map(|(k, v)| (k.to_string(), v)),
            );
        }
        actions_env.extend(options.actions_env.iter().cloned());

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
        let actions_spec = FunctionSpec {
            env: actions_env,
            instances: options.actions_instances.max(1),
            timeout: options.actions_timeout,
            region: region.clone(),
            ..FunctionSpec::new(ACTIONS, actions_bin)
        };
        // Subscribe before the first instance starts, so no line is missed.
        let logs = emulator.subscribe_logs();
        let ingest = emulator.start_function(ingest_spec).await?;
        let dispatcher = emulator.start_function(dispatcher_spec).await?;
        let actions = emulator.start_function(actions_spec).await?;
        let (ready_ingest, ready_dispatcher, ready_actions) = tokio::join!(
            ingest.wait_ready(options.ready_timeout),
            dispatcher.wait_ready(options.ready_timeout),
            actions.wait_ready(options.ready_timeout)
        );
        ready_ingest.context("the ingest function did not start")?;
        ready_dispatcher.context("the dispatcher function did not start")?;
        ready_actions.context("the actions function did not start")?;

        let function_url = FunctionUrl::start(ingest.clone(), options.function_url_addr).await?;
        let actions_url = FunctionUrl::start(actions.clone(), options.actions_url_addr)
            .await
            .context("the actions function URL")?;
        if let Some(slack) = &slack {
            slack.set_app(SlackApp::new(&actions_url.url(), &signing_secret));
        }
        let store = shared::store::Store::new(aws.dynamodb.clone(), stack.store_table.clone());
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
            actions_url,
            recorder,
            emulator,
            ingest,
            dispatcher,
            actions,
            okta,
            slack,
            okta_org_url,
            okta_auth,
            okta_client_id,
            slack_webhook_url,
            api_key,
            signing_secret,
            store,
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

    /// `http://127.0.0.1:<port>/`: the actions function URL, the Slack app's
    /// Request URL (the fake Slack's clicks go here).
    pub fn actions_url(&self) -> String {
        self.actions_url.url()
    }

    /// The Slack app's signing secret (in the signing-secret secret).
    pub fn signing_secret(&self) -> &str {
        &self.signing_secret
    }

    /// The Slack user ids allowed to approve and undo (`SLACK_APPROVERS`).
    pub fn approvers(&self) -> &[String] {
        &self.options.approvers
    }

    /// The store table, as both functions reach it.
    pub fn store(&self) -> &shared::store::Store {
        &self.store
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

    pub fn actions(&self) -> &Invoker {
        &self.actions
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

    /// Every request the actions function logged so far (clicks and rejections).
    pub fn logged_clicks(&self) -> Vec<LoggedClick> {
        lock(&self.journal).clicks.clone()
    }

    /// Waits until the actions function logged at least `n` requests (or the
    /// timeout); returns them either way. It logs each one just before it
    /// answers, and the line reaches the journal a moment later.
    pub async fn wait_for_logged_clicks(&self, n: usize, timeout: Duration) -> Vec<LoggedClick> {
        let deadline = Instant::now() + timeout;
        loop {
            let clicks = self.logged_clicks();
            if clicks.len() >= n || Instant::now() >= deadline {
                return clicks;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
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

    /// Stops everything in order: pollers (letting a batch finish), the
    /// function URLs, the functions, the stand-ins, moto.
    pub async fn shutdown(mut self) {
        self.event_source.shutdown().await;
        self.function_url.shutdown();
        self.actions_url.shutdown();
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
