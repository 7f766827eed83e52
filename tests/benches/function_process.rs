//! Process-level figures for the compiled functions against their physical
//! limits, side by side in one run (benchmarks, not tests).
//! Run: `cargo build --release --bins && cargo bench -p integration-tests --bench function_process`
//! (`make bench` does both). See benches/README.md for each figure.
//!
//! The limits are measured in the same run, interleaved with the functions:
//!
//! - the empty Lambda (`benches/empty-lambda`, the same release profile,
//!   `lambda_runtime` with a handler that returns at once): its init (spawn
//!   to first `/next`), its cold first answer (spawn to the end of its first
//!   invocation) and its warm answer;
//! - the AWS calls no function can avoid, from warm clients in this process
//!   against the same moto: `GetSecretValue`, `SendMessage` (the message
//!   ingest sends), and a conditional DynamoDB `PutItem` (the decision
//!   record the actions function writes).
//!
//! Cold runs queue the invocation before the process is spawned, so "cold
//! first answer" is spawn to the end of the answer, with nothing cached and
//! no connection made.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Row, Target, median, ms, report, vm_hwm_kb};
use integration_tests::{local_aws, unique};
use local_pipeline::aws_setup::{LocalAws, QueueSpec, SecretValues, Stack, create_stack};
use local_pipeline::fake_okta::{FakeOkta, SeedUser};
use local_pipeline::fake_slack::FakeSlack;
use local_pipeline::pipeline::{function_binaries, lambda_bin_dir};
use local_pipeline::runtime_api::{FunctionSpec, InvokeResult, Invoker, RuntimeEmulator};
use serde_json::{Value, json};
use shared::testing::OortBody;

const KEY: &str = "bench-api-key-0123456789abcdefghijklmnopq";
const APPROVER: &str = "U0BENCHAPPROVER";
const COLD_STARTS: usize = 20;
const WARM_ANSWERS: usize = 200;
/// Calls timed from warm clients for each AWS limit.
const AWS_CALLS: usize = 100;
/// The largest body ingest accepts is 1 MiB less 1 KiB.
const NEAR_MIB: usize = 1_040_000;

struct Binaries {
    ingest: PathBuf,
    dispatcher: PathBuf,
    actions: PathBuf,
    empty: PathBuf,
    empty_http: PathBuf,
}

struct Setup {
    aws: LocalAws,
    stack: Stack,
    signing_secret: String,
}

// ------------------------------------------------------------------ events

fn url_event(headers: Value, body: &str, base64: bool) -> Value {
    let body = if base64 {
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        body.to_string()
    };
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": headers,
        "requestContext": {"accountId": "anonymous", "apiId": "bench", "domainName": "bench.lambda-url.us-east-1.on.aws",
            "domainPrefix": "bench", "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": unique("req"), "routeKey": "$default", "stage": "$default", "time": "28/Nov/2026:16:00:00 +0000", "timeEpoch": 1795881600000u64},
        "body": body, "isBase64Encoded": base64
    })
}

/// An Oort webhook POST to ingest, with the right key.
fn webhook(body: &str) -> Value {
    url_event(
        json!({"content-type": "application/json", "x-api-client-token": KEY, "host": "bench.lambda-url.us-east-1.on.aws"}),
        body,
        false,
    )
}

fn failed_check(id: &str, users: &[String]) -> String {
    OortBody::failed_check(id, users)
        .failing_on("OKTA")
        .to_string()
}

/// A FAILED_CHECK of about `bytes` bytes (a list of users only).
fn body_of_about(id: &str, bytes: usize) -> String {
    let users: Vec<String> = (0..bytes / 58)
        .map(|i| format!("user.number{i:06}.of.a.large.org@subsidiary.example.com"))
        .collect();
    let body = json!({"id": id, "detail-type": "FAILED_CHECK",
        "detail": {"checkId": "no-mfa", "severity": "critical", "usersFailing": users}})
    .to_string();
    assert!(body.len() <= 1024 * 1024 - 1024, "{}", body.len());
    body
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A signed Slack click on Dismiss for a new event, as the function URL
/// delivers it (form body, base64): one decision recorded, one message queued.
fn click(signing_secret: &str) -> Value {
    let payload = json!({
        "type": "block_actions",
        "team": {"id": "T0BENCH", "domain": "bench"},
        "user": {"id": APPROVER, "username": "bench", "team_id": "T0BENCH"},
        "channel": {"id": "C0BENCH", "name": "security"},
        "message": {"ts": "1700000000.000100", "text": "summary"},
        "response_url": "https://hooks.slack.com/actions/T0BENCH/1/abc",
        "trigger_id": "1.2.3",
        "actions": [{"type": "button", "action_id": "dismiss", "block_id": "decide",
                     "value": json!({"e": unique("evt")}).to_string(), "action_ts": "1700000001.000200"}]
    });
    let body = format!("payload={}", form_encode(&payload.to_string()));
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let signature = actions::signature::sign(signing_secret.as_bytes(), &ts, body.as_bytes());
    url_event(
        json!({"content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": ts,
               "x-slack-signature": signature, "host": "bench.lambda-url.us-east-1.on.aws"}),
        &body,
        true,
    )
}

// ------------------------------------------------------------------ specs

fn spec(name: &str, binary: &Path, setup: &Setup, env: &[(&str, &str)]) -> FunctionSpec {
    let mut spec = FunctionSpec::new(name, binary);
    spec.env = setup.aws.env();
    spec.env
        .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    spec
}

fn ingest_spec(bins: &Binaries, s: &Setup) -> FunctionSpec {
    spec(
        "ingest",
        &bins.ingest,
        s,
        &[
            ("QUEUE_URL", &s.stack.queues.queue_url),
            ("API_KEY_SECRET_ID", &s.stack.api_key_secret_id),
        ],
    )
}

fn actions_spec(bins: &Binaries, s: &Setup) -> FunctionSpec {
    spec(
        "actions",
        &bins.actions,
        s,
        &[
            ("QUEUE_URL", &s.stack.queues.queue_url),
            ("STORE_TABLE", &s.stack.store_table),
            ("SLACK_SIGNING_SECRET_ID", &s.stack.signing_secret_id),
            ("SLACK_APPROVERS", APPROVER),
        ],
    )
}

fn dispatcher_spec(bins: &Binaries, s: &Setup) -> FunctionSpec {
    spec(
        "dispatcher",
        &bins.dispatcher,
        s,
        &[
            ("OKTA_ORG_URL", "http://127.0.0.1:9"),
            ("OKTA_SECRET_ID", &s.stack.okta_secret_id),
            ("SLACK_SECRET_ID", &s.stack.slack_secret_id),
        ],
    )
}

// ------------------------------------------------------------------ runs

/// One cold start with the first invocation queued before the spawn:
/// (init, spawn to the end of the first answer, the answer).
async fn cold_run(spec: FunctionSpec, payload: &Value) -> (Duration, Duration, InvokeResult) {
    let emulator = RuntimeEmulator::new();
    let started = Instant::now();
    let invoker = emulator
        .start_function(spec)
        .await
        .expect("function starts");
    let result = invoker.invoke(payload).await.expect("invocation runs");
    let first = started.elapsed();
    let init = *invoker
        .init_durations()
        .first()
        .unwrap_or_else(|| panic!("{}: no init: {result:?}", invoker.name()));
    emulator.shutdown().await;
    (init, first, result)
}

/// Spawn to first `/next`, with no invocation.
async fn init_only(spec: FunctionSpec) -> Duration {
    let emulator = RuntimeEmulator::new();
    let invoker = emulator
        .start_function(spec)
        .await
        .expect("function starts");
    invoker
        .wait_ready(Duration::from_secs(30))
        .await
        .expect("function ready");
    let init = invoker.init_durations()[0];
    emulator.shutdown().await;
    init
}

async fn start_warm(emulator: &RuntimeEmulator, spec: FunctionSpec, first: &Value) -> Invoker {
    let invoker = emulator
        .start_function(spec)
        .await
        .expect("function starts");
    invoker
        .wait_ready(Duration::from_secs(30))
        .await
        .expect("function ready");
    let result = invoker.invoke(first).await.unwrap();
    assert!(result.is_success(), "{result:?}");
    invoker
}

async fn timed(invoker: &Invoker, payload: &Value) -> (Duration, InvokeResult) {
    let started = Instant::now();
    let result = invoker.invoke(payload).await.expect("invocation runs");
    (started.elapsed(), result)
}

fn status(result: &InvokeResult) -> Option<u64> {
    result.response()?["statusCode"].as_u64()
}

fn assert_status(result: &InvokeResult, expected: u64, what: &str) {
    assert_eq!(status(result), Some(expected), "{what}: {result:?}");
}

/// Where a cold first answer goes: one cold run with the SDK's and the
/// runtime's debug lines (which cost a little themselves), each line timed
/// from the spawn. Printed, not tabled.
async fn cold_timeline(name: &str, mut spec: FunctionSpec, payload: &Value) {
    spec.env.push(("RUST_LOG".into(), "debug".into()));
    let emulator = RuntimeEmulator::new();
    let mut logs = emulator.subscribe_logs();
    let spawned = std::time::SystemTime::now();
    let invoker = emulator
        .start_function(spec)
        .await
        .expect("function starts");
    let result = invoker.invoke(payload).await.expect("invocation runs");
    let answered = spawned.elapsed().unwrap();
    let init = invoker
        .init_durations()
        .first()
        .copied()
        .unwrap_or_default();
    emulator.shutdown().await;
    println!(
        "\n{name} cold run with debug logs: init {:.1} ms, first answer {:.1} ms ({}); its lines, from the spawn:",
        ms(init),
        ms(answered),
        if result.is_success() {
            "answered"
        } else {
            "failed"
        }
    );
    let spawned_at = time::OffsetDateTime::from(spawned);
    while let Ok(line) = logs.try_recv() {
        let Some(json) = line.json() else { continue };
        let Some(at) = json.get("timestamp").and_then(Value::as_str).and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        }) else {
            continue;
        };
        let message = json.get("message").and_then(Value::as_str).unwrap_or("");
        if message.starts_with("timeout settings") || message.starts_with("retry settings") {
            continue;
        }
        let target = json.get("target").and_then(Value::as_str).unwrap_or("");
        println!(
            "  {:7.2} ms  {:<38} {}",
            (at - spawned_at).as_seconds_f64() * 1000.0,
            target.chars().take(38).collect::<String>(),
            message.chars().take(100).collect::<String>()
        );
    }
}

// ------------------------------------------------------------------ AWS limits

/// Medians of the unavoidable calls, from warm clients against the same moto.
struct AwsCalls {
    get_secret: Duration,
    send_message: Duration,
    dynamodb_write: Duration,
}

async fn send_like_ingest(s: &Setup) -> Duration {
    let id = unique("limit");
    let body = failed_check(&id, &["a@example.com".into()]);
    let attribute = |v: &str| {
        aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .unwrap()
    };
    let started = Instant::now();
    s.aws
        .sqs
        .send_message()
        .queue_url(&s.stack.queues.queue_url)
        .message_body(body)
        .message_group_id(&id)
        .message_deduplication_id(&id)
        .message_attributes("eventType", attribute("FAILED_CHECK"))
        .message_attributes("severity", attribute("critical"))
        .message_attributes("eventId", attribute(&id))
        .send()
        .await
        .expect("SendMessage");
    started.elapsed()
}

/// Empties the queue (untimed). moto's FIFO SendMessage looks through every
/// message the queue holds, so a queue that fills up during the run would make
/// each send slower than the last; SQS does not. (moto allows one PurgeQueue a
/// minute, so the messages are received and deleted.)
async fn purge(s: &Setup) {
    let sqs = &s.aws.sqs;
    let queue = &s.stack.queues.queue_url;
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return;
        }
        let mut batch = sqs.delete_message_batch().queue_url(queue);
        for (i, m) in messages.iter().enumerate() {
            batch = batch.entries(
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .build()
                    .unwrap(),
            );
        }
        batch.send().await.expect("DeleteMessageBatch");
    }
}

async fn get_secret(s: &Setup) -> Duration {
    let started = Instant::now();
    s.aws
        .secrets
        .get_secret_value()
        .secret_id(&s.stack.api_key_secret_id)
        .send()
        .await
        .expect("GetSecretValue");
    started.elapsed()
}

async fn dynamodb_write(store: &shared::store::Store) -> Duration {
    let started = Instant::now();
    store
        .record_decision(
            &unique("limit"),
            shared::decision::Action::Dismiss,
            APPROVER,
            time::OffsetDateTime::now_utc(),
        )
        .await
        .expect("PutItem");
    started.elapsed()
}

/// Ingest's AWS calls as a cold process makes them, from new clients (new
/// connections): both secret versions at once, then SendMessage. Not the
/// issue's limit (that is from warm clients); it shows how much of the cold
/// path is the emulator's first request on a new connection.
async fn cold_client_calls(s: &Setup) -> (Duration, Duration) {
    let aws = LocalAws::connect(&s.aws.endpoint).await;
    let stage = |stage: &'static str| {
        aws.secrets
            .get_secret_value()
            .secret_id(&s.stack.api_key_secret_id)
            .version_stage(stage)
            .send()
    };
    let started = Instant::now();
    let (current, _previous) = tokio::join!(stage("AWSCURRENT"), stage("AWSPREVIOUS"));
    current.expect("GetSecretValue");
    let secrets = started.elapsed();
    let fresh = Setup {
        aws,
        stack: s.stack.clone(),
        signing_secret: String::new(),
    };
    (secrets, send_like_ingest(&fresh).await)
}

async fn aws_limits(s: &Setup, store: &shared::store::Store) -> AwsCalls {
    for _ in 0..5 {
        get_secret(s).await;
        send_like_ingest(s).await;
        dynamodb_write(store).await;
    }
    let (mut g, mut q, mut d) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..AWS_CALLS {
        purge(s).await;
        g.push(get_secret(s).await);
        q.push(send_like_ingest(s).await);
        d.push(dynamodb_write(store).await);
    }
    AwsCalls {
        get_secret: median(&mut g),
        send_message: median(&mut q),
        dynamodb_write: median(&mut d),
    }
}

// ------------------------------------------------------------------ figures

#[derive(Default)]
struct Samples {
    empty_init: Vec<Duration>,
    empty_first: Vec<Duration>,
    http_init: Vec<Duration>,
    http_first: Vec<Duration>,
    ingest_init: Vec<Duration>,
    ingest_first: Vec<Duration>,
    actions_init: Vec<Duration>,
    actions_first: Vec<Duration>,
    dispatcher_init: Vec<Duration>,
}

/// Cold starts of every function and of the empty Lambdas, interleaved.
async fn cold_starts(bins: &Binaries, s: &Setup) -> Samples {
    let mut m = Samples::default();
    for i in 0..COLD_STARTS {
        purge(s).await;
        let empty = FunctionSpec::new("empty", &bins.empty);
        let (init, first, result) = cold_run(empty, &json!({})).await;
        assert!(result.is_success(), "{result:?}");
        m.empty_init.push(init);
        m.empty_first.push(first);

        let body = failed_check(&unique(&format!("cold-{i}")), &["a@example.com".into()]);
        let http = FunctionSpec::new("empty-http", &bins.empty_http);
        let (init, first, result) = cold_run(http, &webhook(&body)).await;
        assert_status(&result, 200, "empty-lambda-http");
        m.http_init.push(init);
        m.http_first.push(first);

        let (init, first, result) = cold_run(ingest_spec(bins, s), &webhook(&body)).await;
        assert_status(&result, 200, "ingest cold");
        m.ingest_init.push(init);
        m.ingest_first.push(first);

        let (init, first, result) =
            cold_run(actions_spec(bins, s), &click(&s.signing_secret)).await;
        assert_status(&result, 200, "actions cold");
        m.actions_init.push(init);
        m.actions_first.push(first);

        m.dispatcher_init
            .push(init_only(dispatcher_spec(bins, s)).await);
    }
    m
}

/// The system's CA bundle file, if it has one of the usual ones.
fn ca_bundle() -> Option<&'static str> {
    [
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/certs/ca-certificates.crt",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file())
}

/// Init with `SSL_CERT_FILE` set to the bundle: every TLS client then reads
/// that one file instead of the bundle and every certificate directory
/// (rustls-native-certs, which both the SDK and reqwest use). A what-if.
async fn init_with_bundle(bins: &Binaries, s: &Setup) {
    let Some(bundle) = ca_bundle() else { return };
    let mut line = format!("what-if SSL_CERT_FILE={bundle} (init p50 of {COLD_STARTS}):");
    for (name, spec) in [
        ("ingest", ingest_spec(bins, s)),
        ("dispatcher", dispatcher_spec(bins, s)),
        ("actions", actions_spec(bins, s)),
    ] {
        let mut inits = Vec::new();
        for _ in 0..COLD_STARTS {
            let mut spec = spec.clone();
            spec.env.push(("SSL_CERT_FILE".into(), bundle.into()));
            inits.push(init_only(spec).await);
        }
        line += &format!(" {name} {:.2} ms;", ms(median(&mut inits)));
    }
    println!("{line}");
}

struct Warm {
    empty: Duration,
    http: Duration,
    ingest: Duration,
    actions: Duration,
    send_message: Duration,
    dynamodb_write: Duration,
    actions_hwm_kb: u64,
}

/// Warm answers, round robin: each function, the empty Lambdas, the bare calls.
async fn warm_answers(bins: &Binaries, s: &Setup, store: &shared::store::Store) -> Warm {
    let emulator = RuntimeEmulator::new();
    let first_body = failed_check(&unique("warm"), &["a@example.com".into()]);
    let empty = start_warm(
        &emulator,
        FunctionSpec::new("empty", &bins.empty),
        &json!({}),
    )
    .await;
    let http = start_warm(
        &emulator,
        FunctionSpec::new("empty-http", &bins.empty_http),
        &webhook(&first_body),
    )
    .await;
    let ingest = start_warm(&emulator, ingest_spec(bins, s), &webhook(&first_body)).await;
    let actions = start_warm(&emulator, actions_spec(bins, s), &click(&s.signing_secret)).await;
    let mut samples: [Vec<Duration>; 6] = Default::default();
    for i in 0..WARM_ANSWERS {
        purge(s).await;
        let body = failed_check(&unique(&format!("warm-{i}")), &["a@example.com".into()]);
        let event = webhook(&body);
        let clicked = click(&s.signing_secret);
        samples[0].push(timed(&empty, &json!({})).await.0);
        samples[1].push(timed(&http, &event).await.0);
        let (took, result) = timed(&ingest, &event).await;
        assert_status(&result, 200, "ingest warm");
        samples[2].push(took);
        let (took, result) = timed(&actions, &clicked).await;
        assert_status(&result, 200, "actions warm");
        samples[3].push(took);
        samples[4].push(send_like_ingest(s).await);
        samples[5].push(dynamodb_write(store).await);
    }
    let actions_pid = pid_of(&emulator, &actions);
    let warm = Warm {
        empty: median(&mut samples[0]),
        http: median(&mut samples[1]),
        ingest: median(&mut samples[2]),
        actions: median(&mut samples[3]),
        send_message: median(&mut samples[4]),
        dynamodb_write: median(&mut samples[5]),
        actions_hwm_kb: vm_hwm_kb(actions_pid).unwrap(),
    };
    emulator.shutdown().await;
    warm
}

/// The process id of the one instance of `invoker` (the emulator lists every pid).
fn pid_of(emulator: &RuntimeEmulator, invoker: &Invoker) -> u32 {
    let cmdline = |pid: u32| std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let binary = invoker.spec().binary.to_string_lossy().into_owned();
    emulator
        .pids()
        .into_iter()
        .find(|&pid| {
            let cmd = cmdline(pid);
            cmd.split(|b| *b == 0).next() == Some(binary.as_bytes())
        })
        .expect("the instance's process")
}

/// Ingest's peak memory after each of 5 bodies of nearly 1 MiB, with `env`
/// added (allocator settings): a what-if, printed.
async fn ingest_memory_with(bins: &Binaries, s: &Setup, env: &[(&str, &str)]) {
    let emulator = RuntimeEmulator::new();
    let mut spec = ingest_spec(bins, s);
    spec.env
        .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let ingest = start_warm(
        &emulator,
        spec,
        &webhook(&failed_check(&unique("mem"), &["a@example.com".into()])),
    )
    .await;
    let pid = emulator.pids()[0];
    let mut line = format!(
        "ingest VmHWM with {env:?}: {:.1} MB;",
        vm_hwm_kb(pid).unwrap() as f64 / 1024.0
    );
    for i in 0..5 {
        purge(s).await;
        let body = body_of_about(&unique(&format!("big-{i}")), NEAR_MIB);
        let result = ingest.invoke(&webhook(&body)).await.unwrap();
        assert_status(&result, 200, "ingest near 1 MiB");
        line += &format!(" {:.1}", vm_hwm_kb(pid).unwrap() as f64 / 1024.0);
    }
    println!("{line} MB after each ~1 MiB body");
    emulator.shutdown().await;
}

/// Ingest's peak memory: 500 events of ~9 KB, then 10 bodies of nearly 1 MiB.
async fn ingest_memory(bins: &Binaries, s: &Setup) -> (f64, f64, f64) {
    let emulator = RuntimeEmulator::new();
    let ingest = start_warm(
        &emulator,
        ingest_spec(bins, s),
        &webhook(&failed_check(&unique("mem"), &["a@example.com".into()])),
    )
    .await;
    let pid = emulator.pids()[0];
    let ready = vm_hwm_kb(pid).unwrap();
    let users: Vec<String> = (0..40)
        .map(|i| format!("user.number{i:03}@example.com"))
        .collect();
    for i in 0..500 {
        if i % 50 == 0 {
            purge(s).await;
        }
        let result = ingest
            .invoke(&webhook(&failed_check(
                &unique(&format!("mem-{i}")),
                &users,
            )))
            .await
            .unwrap();
        assert_status(&result, 200, "ingest 9 KB");
    }
    let small = vm_hwm_kb(pid).unwrap();
    for i in 0..10 {
        purge(s).await;
        let body = body_of_about(&unique(&format!("big-{i}")), NEAR_MIB);
        let result = ingest.invoke(&webhook(&body)).await.unwrap();
        assert_status(&result, 200, "ingest near 1 MiB");
    }
    let big = vm_hwm_kb(pid).unwrap();
    emulator.shutdown().await;
    (
        ready as f64 / 1024.0,
        small as f64 / 1024.0,
        big as f64 / 1024.0,
    )
}

/// The dispatcher's peak memory after 20 batches of 5 events x 20 users.
async fn dispatcher_memory(bins: &Binaries, s: &Setup) -> f64 {
    let okta = FakeOkta::start("bench-okta-token").await;
    okta.set_rate_limit(1_000_000);
    let slack = FakeSlack::start().await;
    let okta_secret = local_pipeline::aws_setup::create_secret(
        &s.aws,
        &unique("okta"),
        &json!({"apiToken": "bench-okta-token"}).to_string(),
    )
    .await
    .unwrap();
    let slack_secret = local_pipeline::aws_setup::create_secret(
        &s.aws,
        &unique("slack"),
        &json!({"webhookUrl": slack.webhook_url()}).to_string(),
    )
    .await
    .unwrap();
    let mut spec = spec(
        "dispatcher",
        &bins.dispatcher,
        s,
        &[
            ("OKTA_ORG_URL", &okta.base_url()),
            ("OKTA_SECRET_ID", &okta_secret),
            ("SLACK_SECRET_ID", &slack_secret),
            ("MAX_USERS_PER_EVENT", "50"),
        ],
    );
    spec.timeout = Duration::from_secs(120);
    let emulator = RuntimeEmulator::new();
    let invoker = emulator.start_function(spec).await.unwrap();
    invoker.wait_ready(Duration::from_secs(30)).await.unwrap();
    // 20 batches of 5 events of 20 users each: 2,000 users, 8,000 Okta calls.
    for batch in 0..20 {
        let records: Vec<Value> = (0..5)
            .map(|e| {
                let users: Vec<String> = (0..20).map(|u| format!("b{batch}e{e}u{u}@example.com")).collect();
                for u in &users {
                    okta.add_user(SeedUser::new(u.as_str(), u.as_str(), "ACTIVE"));
                }
                json!({"messageId": unique("m"), "receiptHandle": "rh", "body": failed_check(&unique("evt"), &users),
                       "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": unique("g")}, "messageAttributes": {},
                       "eventSource": "aws:sqs", "awsRegion": "us-east-1"})
            })
            .collect();
        let result = invoker.invoke(&json!({"Records": records})).await.unwrap();
        assert_eq!(
            result.response().unwrap()["batchItemFailures"],
            json!([]),
            "{result:?}"
        );
    }
    let hwm = vm_hwm_kb(emulator.pids()[0]).unwrap();
    emulator.shutdown().await;
    hwm as f64 / 1024.0
}

/// A cold dispatcher's first event (one user: look-up, roles, suspend, clear
/// sessions), with an SSWS token and with an OAuth app that requires DPoP:
/// the OAuth run adds the token request and its nonce handshake, once.
async fn dispatcher_first_okta_call(binary: &Path, aws: &LocalAws) {
    const RUNS: usize = 7;
    let okta = FakeOkta::start("bench-okta-token").await;
    okta.set_rate_limit(1_000_000);
    let slack = FakeSlack::start().await;
    let slack_secret = local_pipeline::aws_setup::create_secret(
        aws,
        &unique("slack"),
        &json!({"webhookUrl": slack.webhook_url()}).to_string(),
    )
    .await
    .unwrap();
    let app = local_pipeline::seed::register_demo_app(&okta).unwrap();
    let mut medians = Vec::new();
    for (auth, secret) in [
        ("SSWS", json!({"apiToken": "bench-okta-token"})),
        (
            "OAuth + DPoP",
            serde_json::from_str::<Value>(&app.secret_json()).unwrap(),
        ),
    ] {
        let secret_id =
            local_pipeline::aws_setup::create_secret(aws, &unique("okta"), &secret.to_string())
                .await
                .unwrap();
        let mut firsts = Vec::new();
        let mut inits = Vec::new();
        let tokens_before = okta.token_requests().len();
        for run in 0..RUNS {
            let login = unique("first");
            okta.add_user(SeedUser::new(login.as_str(), login.as_str(), "ACTIVE"));
            let mut spec = FunctionSpec::new("dispatcher", binary);
            spec.env = aws.env();
            spec.env.extend([
                ("OKTA_ORG_URL".to_string(), okta.base_url()),
                ("OKTA_SECRET_ID".to_string(), secret_id.clone()),
                ("SLACK_SECRET_ID".to_string(), slack_secret.clone()),
            ]);
            let record = json!({"messageId": unique("m"), "receiptHandle": "rh", "body": failed_check(&unique("evt"), &[login]),
                "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": unique("g")}, "messageAttributes": {},
                "eventSource": "aws:sqs", "awsRegion": "us-east-1"});
            let emulator = RuntimeEmulator::new();
            let invoker = emulator.start_function(spec).await.unwrap();
            invoker.wait_ready(Duration::from_secs(30)).await.unwrap();
            inits.push(invoker.init_durations()[0]);
            let (took, result) = timed(&invoker, &json!({"Records": [record]})).await;
            assert_eq!(
                result.response().unwrap()["batchItemFailures"],
                json!([]),
                "{auth} run {run}"
            );
            firsts.push(took);
            emulator.shutdown().await;
        }
        firsts.sort();
        let tokens = okta.token_requests().len() - tokens_before;
        println!(
            "dispatcher cold, {auth}: spawn to ready median {:.1} ms; first event (1 user, 4 Okta calls + Slack) median {:.1} ms, p95 {:.1} ms; token requests per cold start: {}",
            ms(median(&mut inits)),
            ms(common::percentile(&firsts, 0.5)),
            ms(common::percentile(&firsts, 0.95)),
            tokens as f64 / RUNS as f64
        );
        medians.push(common::percentile(&firsts, 0.5));
    }
    println!(
        "dispatcher cold first event, OAuth + DPoP minus SSWS: {:+.1} ms (the token request, its nonce handshake and the signing)",
        ms(medians[1]) - ms(medians[0])
    );
}

fn row(
    figure: &str,
    measured: f64,
    limit: Option<f64>,
    unit: &'static str,
    target: Target,
    note: String,
) -> Row {
    Row {
        figure: figure.to_string(),
        measured,
        limit,
        unit,
        note,
        target,
    }
}

fn main() {
    let dir = lambda_bin_dir();
    let (ingest, dispatcher) =
        function_binaries(&dir).expect("release binaries: cargo build --release --bins");
    let bins = Binaries {
        ingest,
        dispatcher,
        actions: dir.join("actions"),
        empty: dir.join("empty-lambda"),
        empty_http: dir.join("empty-lambda-http"),
    };
    for binary in [
        &bins.ingest,
        &bins.dispatcher,
        &bins.actions,
        &bins.empty,
        &bins.empty_http,
    ] {
        let size = std::fs::metadata(binary)
            .unwrap_or_else(|e| panic!("{}: {e} (cargo build --release --bins)", binary.display()))
            .len();
        println!(
            "{}: {:.2} MB stripped release binary (x86-64)",
            binary.display(),
            size as f64 / 1_048_576.0
        );
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let aws = local_aws().await;
        let secrets = SecretValues::new(KEY, "unused", "http://127.0.0.1:9/x");
        let signing_secret = secrets.signing_secret.clone();
        let stack = create_stack(&aws, &QueueSpec::new(&unique("bench")), &secrets)
            .await
            .unwrap();
        let store = shared::store::Store::new(aws.dynamodb.clone(), stack.store_table.clone());
        let s = Setup {
            aws,
            stack,
            signing_secret,
        };

        if std::env::args().any(|a| a == "--memory") {
            for env in [
                &[][..],
                &[("MALLOC_ARENA_MAX", "1")][..],
                &[("MALLOC_MMAP_THRESHOLD_", "131072")][..],
                &[("MALLOC_ARENA_MAX", "1"), ("MALLOC_MMAP_THRESHOLD_", "131072")][..],
            ] {
                ingest_memory_with(&bins, &s, env).await;
            }
            return;
        }
        if std::env::args().any(|a| a == "--timeline") {
            purge(&s).await;
            let body = failed_check(&unique("timeline"), &["a@example.com".into()]);
            cold_timeline("ingest", ingest_spec(&bins, &s), &webhook(&body)).await;
            cold_timeline("actions", actions_spec(&bins, &s), &click(&s.signing_secret)).await;
            return;
        }
        println!("AWS calls from warm clients ...");
        let calls = aws_limits(&s, &store).await;
        let (mut cold_secrets, mut cold_send) = (Vec::new(), Vec::new());
        for _ in 0..COLD_STARTS {
            purge(&s).await;
            let (secrets, send) = cold_client_calls(&s).await;
            cold_secrets.push(secrets);
            cold_send.push(send);
        }
        println!("{COLD_STARTS} cold starts of each, interleaved ...");
        let mut cold = cold_starts(&bins, &s).await;
        init_with_bundle(&bins, &s).await;
        println!("{WARM_ANSWERS} warm answers of each, round robin ...");
        let warm = warm_answers(&bins, &s, &store).await;
        println!("peak memory ...");
        let (ingest_ready, ingest_small, ingest_big) = ingest_memory(&bins, &s).await;
        let dispatcher_mb = dispatcher_memory(&bins, &s).await;

        let empty_first = median(&mut cold.empty_first);
        let empty_init = median(&mut cold.empty_init);
        let (g, q, d) = (calls.get_secret, calls.send_message, calls.dynamodb_write);
        println!(
            "limits: empty Lambda init {:.2} ms, cold first answer {:.2} ms, warm answer {:.3} ms; \
             lambda_http flavour init {:.2} ms, cold first answer {:.2} ms, warm answer {:.3} ms; \
             warm GetSecretValue {:.2} ms, SendMessage {:.2} ms (in the warm loop {:.2} ms), DynamoDB PutItem {:.2} ms (in the warm loop {:.2} ms)",
            ms(empty_init),
            ms(empty_first),
            ms(warm.empty),
            ms(median(&mut cold.http_init)),
            ms(median(&mut cold.http_first)),
            ms(warm.http),
            ms(g),
            ms(q),
            ms(warm.send_message),
            ms(d),
            ms(warm.dynamodb_write),
        );
        let (cold_g, cold_q) = (median(&mut cold_secrets), median(&mut cold_send));
        println!(
            "the same calls from new clients (new connections), as a cold ingest makes them: both secret versions at once {:.2} ms, then SendMessage {:.2} ms; \
             empty Lambda cold first answer + these: {:.2} ms",
            ms(cold_g),
            ms(cold_q),
            ms(empty_first + cold_g + cold_q)
        );
        let cold_limit = empty_first + g + q;
        let mut rows = vec![
            row(
                "ingest cold first answer (p50)",
                ms(median(&mut cold.ingest_first)),
                Some(ms(cold_limit)),
                "ms",
                Target::Ratio(1.25),
                format!(
                    "empty Lambda cold first answer {:.2} + GetSecretValue {:.2} + SendMessage {:.2}",
                    ms(empty_first),
                    ms(g),
                    ms(q)
                ),
            ),
            row(
                "ingest warm answer (p50 of 200)",
                ms(warm.ingest),
                Some(ms(warm.empty + warm.send_message)),
                "ms",
                Target::Ratio(1.15),
                format!(
                    "empty Lambda warm answer {:.3} + SendMessage {:.2}",
                    ms(warm.empty),
                    ms(warm.send_message)
                ),
            ),
        ];
        for (name, samples) in [
            ("ingest", &mut cold.ingest_init),
            ("dispatcher", &mut cold.dispatcher_init),
            ("actions", &mut cold.actions_init),
        ] {
            rows.push(row(
                &format!("{name} init, spawn to first /next (p50)"),
                ms(median(samples)),
                Some(ms(empty_init)),
                "ms",
                Target::Ratio(2.0),
                "empty Lambda init".into(),
            ));
        }
        rows.extend([
            row(
                "actions cold first answer (p50)",
                ms(median(&mut cold.actions_first)),
                Some(ms(empty_first + g + d + q)),
                "ms",
                Target::AtMost(3000.0),
                "empty cold first answer + GetSecretValue + PutItem + SendMessage; Slack waits 3 s (the answer also marks the decision queued: a second write)".into(),
            ),
            row(
                "actions warm answer (p50 of 200)",
                ms(warm.actions),
                Some(ms(warm.empty + warm.dynamodb_write + warm.send_message)),
                "ms",
                Target::Ratio(1.2),
                format!(
                    "empty Lambda warm answer {:.3} + PutItem {:.2} + SendMessage {:.2}",
                    ms(warm.empty),
                    ms(warm.dynamodb_write),
                    ms(warm.send_message)
                ),
            ),
            row(
                "ingest peak memory (VmHWM)",
                ingest_big,
                None,
                "MB",
                Target::AtMost(16.0),
                format!(
                    "after 10 bodies of ~1 MiB; {ingest_small:.1} MB after 500 of ~9 KB, {ingest_ready:.1} MB after the first"
                ),
            ),
            row(
                "dispatcher peak memory (VmHWM)",
                dispatcher_mb,
                None,
                "MB",
                Target::AtMost(16.0),
                "after 20 batches of 5 events x 20 users".into(),
            ),
            row(
                "actions peak memory (VmHWM)",
                warm.actions_hwm_kb as f64 / 1024.0,
                None,
                "MB",
                Target::AtMost(16.0),
                format!("after {} clicks", WARM_ANSWERS + 1),
            ),
        ]);
        report("function processes against their limits", &rows);
        if !quick {
            dispatcher_first_okta_call(&bins.dispatcher, &s.aws).await;
        }
    });
}
