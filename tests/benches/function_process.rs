//! Process-level figures for the compiled functions (benchmarks, not tests).
//! Run: `cargo build --release --bins && cargo bench -p integration-tests --bench function_process`
//! (`make bench` does both).
//!
//! - cold start: from spawning the release binary to its first poll of the
//!   Runtime API for an event (configuration read, AWS clients built, secret
//!   not yet fetched), against moto; target under 30 ms for ingest;
//! - the first event after a cold start (the secret is fetched then);
//! - peak memory (VmHWM) of each function after a run of events; target under 32 MB;
//! - the size of the stripped release binaries (x86-64: this machine cannot
//!   build arm64, see benches/README.md).

use std::time::{Duration, Instant};

use integration_tests::{local_aws, unique};
use local_pipeline::aws_setup::{LocalAws, QueueSpec, SecretValues, Stack, create_stack};
use local_pipeline::fake_okta::{FakeOkta, SeedUser};
use local_pipeline::fake_slack::FakeSlack;
use local_pipeline::pipeline::{function_binaries, lambda_bin_dir};
use local_pipeline::runtime_api::{FunctionSpec, Invoker, RuntimeEmulator};
use serde_json::{Value, json};

const KEY: &str = "bench-api-key-0123456789abcdefghijklmnopq";
const COLD_STARTS: usize = 20;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn ingest_spec(binary: &std::path::Path, aws: &LocalAws, stack: &Stack) -> FunctionSpec {
    let mut spec = FunctionSpec::new("ingest", binary);
    spec.env = aws.env();
    spec.env
        .push(("QUEUE_URL".into(), stack.queues.queue_url.clone()));
    spec.env
        .push(("API_KEY_SECRET_ID".into(), stack.api_key_secret_id.clone()));
    spec
}

fn url_event(body: &str) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": {"content-type": "application/json", "x-api-client-token": KEY, "host": "bench.lambda-url.us-east-1.on.aws"},
        "requestContext": {"accountId": "anonymous", "apiId": "bench", "domainName": "bench.lambda-url.us-east-1.on.aws",
            "domainPrefix": "bench", "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": unique("req"), "routeKey": "$default", "stage": "$default", "time": "28/Nov/2026:16:00:00 +0000", "timeEpoch": 1795881600000u64},
        "body": body, "isBase64Encoded": false
    })
}

fn failed_check(id: &str, users: &[String]) -> String {
    json!({"version": "0", "id": id, "detail-type": "FAILED_CHECK", "time": "2026-11-02T08:15:00Z",
           "detail": {"checkId": "no-mfa", "title": "No MFA Configured", "severity": "critical", "usersFailing": users,
                      "loginDetails": users.iter().map(|u| json!({"login": u, "details": [{"key": "providersFailingChecks", "value": "[\"x__OKTA__y\"]"}]})).collect::<Vec<_>>()}})
    .to_string()
}

async fn start_one(emulator: &RuntimeEmulator, spec: FunctionSpec) -> Invoker {
    let invoker = emulator
        .start_function(spec)
        .await
        .expect("function starts");
    invoker
        .wait_ready(Duration::from_secs(30))
        .await
        .expect("function ready");
    invoker
}

async fn ingest_figures(binary: &std::path::Path, aws: &LocalAws, stack: &Stack) {
    let mut cold = Vec::new();
    let mut first_event = Vec::new();
    for i in 0..COLD_STARTS {
        let emulator = RuntimeEmulator::new();
        let invoker = start_one(&emulator, ingest_spec(binary, aws, stack)).await;
        cold.extend(invoker.init_durations());
        let started = Instant::now();
        let result = invoker
            .invoke(&url_event(&failed_check(
                &unique(&format!("cold-{i}")),
                &["a@example.com".into()],
            )))
            .await
            .unwrap();
        first_event.push(started.elapsed());
        assert_eq!(result.response().unwrap()["statusCode"], 200, "{result:?}");
        emulator.shutdown().await;
    }
    cold.sort();
    first_event.sort();
    println!(
        "ingest cold start, spawn to ready for an event ({} starts, release, moto): median {:.1} ms, p95 {:.1} ms, max {:.1} ms (target < 30 ms)",
        cold.len(),
        ms(percentile(&cold, 0.5)),
        ms(percentile(&cold, 0.95)),
        ms(*cold.last().unwrap())
    );
    println!(
        "ingest first event after a cold start (fetches the key, then queues): median {:.1} ms, p95 {:.1} ms",
        ms(percentile(&first_event, 0.5)),
        ms(percentile(&first_event, 0.95))
    );

    // Peak memory after a run of 10 KB-ish events through one warm instance.
    let emulator = RuntimeEmulator::new();
    let invoker = start_one(&emulator, ingest_spec(binary, aws, stack)).await;
    let users: Vec<String> = (0..40)
        .map(|i| format!("user.number{i:03}@example.com"))
        .collect();
    for i in 0..500 {
        let result = invoker
            .invoke(&url_event(&failed_check(
                &unique(&format!("mem-{i}")),
                &users,
            )))
            .await
            .unwrap();
        assert_eq!(result.response().unwrap()["statusCode"], 200);
    }
    let pid = emulator.pids()[0];
    println!(
        "ingest peak memory after 500 events of ~9 KB: {:.1} MB (VmHWM; target < 32 MB)",
        vm_hwm_kb(pid).unwrap() as f64 / 1024.0
    );
    emulator.shutdown().await;
}

async fn dispatcher_figures(binary: &std::path::Path, aws: &LocalAws, stack: &Stack) {
    let okta = FakeOkta::start("bench-okta-token").await;
    okta.set_rate_limit(1_000_000);
    let slack = FakeSlack::start().await;
    let okta_secret = local_pipeline::aws_setup::create_secret(
        aws,
        &unique("okta"),
        &json!({"apiToken": "bench-okta-token"}).to_string(),
    )
    .await
    .unwrap();
    let slack_secret = local_pipeline::aws_setup::create_secret(
        aws,
        &unique("slack"),
        &json!({"webhookUrl": slack.webhook_url()}).to_string(),
    )
    .await
    .unwrap();
    let mut spec = FunctionSpec::new("dispatcher", binary);
    spec.timeout = Duration::from_secs(120);
    spec.env = aws.env();
    spec.env.extend([
        ("OKTA_ORG_URL".to_string(), okta.base_url()),
        ("OKTA_SECRET_ID".to_string(), okta_secret),
        ("SLACK_SECRET_ID".to_string(), slack_secret),
        ("MAX_USERS_PER_EVENT".to_string(), "50".to_string()),
    ]);
    let _ = stack;
    let emulator = RuntimeEmulator::new();
    let invoker = start_one(&emulator, spec).await;
    let cold = invoker.init_durations();
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
    let pid = emulator.pids()[0];
    println!(
        "dispatcher cold start, spawn to ready: {:.1} ms",
        ms(cold[0])
    );
    println!(
        "dispatcher peak memory after 20 batches of 5 events x 20 users (2,000 users suspended): {:.1} MB (VmHWM; target < 32 MB)",
        vm_hwm_kb(pid).unwrap() as f64 / 1024.0
    );
    emulator.shutdown().await;
}

fn main() {
    let dir = lambda_bin_dir();
    let (ingest, dispatcher) =
        function_binaries(&dir).expect("release binaries: cargo build --release --bins");
    for binary in [&ingest, &dispatcher] {
        let size = std::fs::metadata(binary).unwrap().len();
        println!(
            "{}: {:.2} MB stripped release binary (x86-64)",
            binary.display(),
            size as f64 / 1_048_576.0
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let aws = local_aws().await;
        let stack = create_stack(
            &aws,
            &QueueSpec::new(&unique("bench")),
            &SecretValues::new(KEY, "unused", "http://127.0.0.1:9/x"),
        )
        .await
        .unwrap();
        ingest_figures(&ingest, &aws, &stack).await;
        dispatcher_figures(&dispatcher, &aws, &stack).await;
    });
}
