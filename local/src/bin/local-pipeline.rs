//! `local-pipeline`: the whole pipeline on this machine.
//!
//! - `local-pipeline demo` (`make local`): starts everything with the local
//!   Okta and Slack stand-ins, replays every `events/ingest-*.json` sample
//!   through the function URL, prints each step (the answer, the queued
//!   message, the dispatcher's per-user outcomes, the Slack summary), waits
//!   for the queue to drain, stops everything and exits 0 (1 on failure).
//! - `local-pipeline up` (`make local-up`): starts everything and keeps it
//!   running, printing the function URL, the API key and a `curl` command,
//!   then activity as it happens, until Ctrl-C.
//! - `local-pipeline bench` (`scripts/bench-pipeline.sh`): webhook-to-summary
//!   latency for 5-user events, and ingest's answer latency under a burst.
//!
//! A real Okta org and Slack webhook are used instead of the stand-ins when
//! `OKTA_ORG_URL` + `OKTA_API_TOKEN` and `SLACK_WEBHOOK_URL` are set (demo and
//! up only); against a real org `DRY_RUN` defaults to true.
//!
//! With the Okta stand-in, the dispatcher authenticates as an OAuth 2.0
//! service app (private_key_jwt, DPoP) unless `LOCAL_OKTA_AUTH=ssws` asks for
//! an API token.
//!
//! Ctrl-C (SIGINT) or SIGTERM stops everything cleanly; every child process
//! dies with this one in any case.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use futures::StreamExt as _;
use local_pipeline::event_source::{BatchOutcome, EventSourceEvent};
use local_pipeline::fake_okta::SeedUser;
use local_pipeline::pipeline::{
    DISPATCHER, INGEST, OktaAuth, Pipeline, PipelineOptions, Services, UserOutcome, lambda_bin_dir,
    oort_event,
};
use local_pipeline::runtime_api::{LogLine, LogSource};
use serde_json::Value;
use tokio::sync::broadcast;

/// The key the samples in `events/` carry.
const DEMO_API_KEY: &str = "local-dev-api-key";

const USAGE: &str = "\
usage: local-pipeline <command> [options]

commands:
  demo    run the events/ingest-*.json samples through the whole pipeline, then stop
  up      start the pipeline and keep it running until Ctrl-C
  bench   measure webhook-to-summary and ingest answer latency (use a release build)

options:
  --bin-dir DIR    where the ingest and dispatcher binaries are (default: next to this one, or LAMBDA_BIN_DIR)
  --events DIR     the samples to replay (demo; default: <repo>/events)
  --port N         function URL port (up; default 9000, a free one if taken)
  --verbose        also print every log line of both functions
  --runs N         bench: 5-user events to time one by one (default 50)
  --burst N        bench: webhook deliveries in the burst (default 200)
  --in-flight N    bench: concurrent deliveries in the burst (default 16)
  --instances N    bench: ingest instances (default: as many as --in-flight, as Lambda scales)

environment:
  OKTA_ORG_URL + OKTA_API_TOKEN   use a real Okta org (DRY_RUN then defaults to true)
  LOCAL_OKTA_AUTH                 local Okta: oauth (default: OAuth service app, DPoP) or ssws (API token)
  SLACK_WEBHOOK_URL               post summaries to a real Slack webhook
  DRY_RUN, MAX_USERS_PER_EVENT, ACTION_SEVERITIES, PROTECTED_USERS, PROTECT_ADMINS,
  OKTA_MAX_CONCURRENCY            passed to the dispatcher
  LOCAL_API_KEY                   the webhook API key (default local-dev-api-key)
";

/// Dispatcher settings a user may set in their shell for demo and up.
const DISPATCHER_PASSTHROUGH: &[&str] = &[
    "DRY_RUN",
    "MAX_USERS_PER_EVENT",
    "ACTION_SEVERITIES",
    "PROTECTED_USERS",
    "PROTECT_ADMINS",
    "OKTA_MAX_CONCURRENCY",
    "RUST_LOG",
];

#[derive(Debug)]
struct Args {
    command: String,
    bin_dir: Option<PathBuf>,
    events: Option<PathBuf>,
    port: Option<u16>,
    verbose: bool,
    runs: usize,
    burst: usize,
    in_flight: usize,
    instances: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        command: String::new(),
        bin_dir: None,
        events: None,
        port: None,
        verbose: false,
        runs: 50,
        burst: 200,
        in_flight: 16,
        instances: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" | "help" => return Err(String::new()),
            "--verbose" | "-v" => args.verbose = true,
            "--bin-dir" => args.bin_dir = Some(PathBuf::from(value("--bin-dir")?)),
            "--events" => args.events = Some(PathBuf::from(value("--events")?)),
            "--port" => args.port = Some(number(&value("--port")?, "--port")?),
            "--runs" => args.runs = number(&value("--runs")?, "--runs")?,
            "--burst" => args.burst = number(&value("--burst")?, "--burst")?,
            "--in-flight" => args.in_flight = number(&value("--in-flight")?, "--in-flight")?,
            "--instances" => args.instances = Some(number(&value("--instances")?, "--instances")?),
            "demo" | "up" | "bench" if args.command.is_empty() => args.command = arg,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.command.is_empty() {
        return Err("no command given".into());
    }
    Ok(args)
}

fn number<T: std::str::FromStr>(raw: &str, name: &str) -> Result<T, String> {
    raw.parse()
        .map_err(|_| format!("{name} must be a number, not {raw:?}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(problem) => {
            if problem.is_empty() {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("local-pipeline: {problem}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    shared::aws::install_crypto_provider();
    let outcome = match args.command.as_str() {
        "demo" => demo(&args).await,
        "up" => up(&args).await,
        _ => bench(&args).await,
    };
    match outcome {
        Ok(Finish::Done) => ExitCode::SUCCESS,
        Ok(Finish::Interrupted) => {
            eprintln!("local-pipeline: interrupted; everything was stopped");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("\nlocal-pipeline {} failed: {e:#}", args.command);
            ExitCode::FAILURE
        }
    }
}

enum Finish {
    Done,
    Interrupted,
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn base_options(args: &Args, services: Services) -> anyhow::Result<PipelineOptions> {
    let bin_dir = args.bin_dir.clone().unwrap_or_else(lambda_bin_dir);
    let mut options = PipelineOptions::new(bin_dir);
    options.services = services;
    options.okta_auth = OktaAuth::from_env()?;
    options.echo_logs = args.verbose;
    options.print_slack = true;
    options.api_key = Some(
        std::env::var("LOCAL_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())
            .unwrap_or_else(|| DEMO_API_KEY.into()),
    );
    options.dispatcher_env = vec![
        ("PROTECT_ADMINS".into(), "true".into()),
        ("PROTECTED_USERS".into(), "break-glass@example.com".into()),
    ];
    for name in DISPATCHER_PASSTHROUGH {
        if let Ok(value) = std::env::var(name) {
            options.dispatcher_env.push((name.to_string(), value));
        }
    }
    Ok(options)
}

/// Starts the pipeline unless interrupted first (a half-started pipeline is
/// dropped, which kills whatever it had started).
async fn start(options: PipelineOptions) -> anyhow::Result<Option<Pipeline>> {
    println!(
        "starting moto, the Okta and Slack stand-ins, and the functions from {} ...",
        options.bin_dir.display()
    );
    tokio::select! {
        pipeline = Pipeline::start(options) => Ok(Some(pipeline?)),
        _ = stop_signal() => Ok(None),
    }
}

async fn stop(pipeline: Pipeline) {
    println!("\nstopping everything ...");
    // Bounded: if anything hangs, dropping the pipeline still kills it all.
    let _ = tokio::time::timeout(Duration::from_secs(30), pipeline.shutdown()).await;
}

fn print_banner(pipeline: &Pipeline) {
    for notice in pipeline.notices() {
        println!("NOTE: {notice}");
    }
    println!("moto (SQS, Secrets Manager)  {}", pipeline.aws().endpoint);
    println!(
        "queue                        {}",
        pipeline.stack().queues.queue_url
    );
    println!(
        "dead-letter queue            {}",
        pipeline.stack().queues.dlq_url
    );
    match pipeline.okta() {
        Some(_) => println!("Okta (local stand-in)        {}", pipeline.okta_org_url()),
        None => println!("Okta                         {}", pipeline.okta_org_url()),
    }
    println!("Okta auth                    {}", okta_auth_line(pipeline));
    match pipeline.slack() {
        Some(slack) => println!("Slack (local stand-in)       {}", slack.webhook_url()),
        None => println!("Slack                        real webhook from SLACK_WEBHOOK_URL"),
    }
    let o = pipeline.options();
    println!(
        "functions                    ingest ×{}, dispatcher ×{} (Runtime API emulator); SQS event source: {} pollers, batch {}, visibility {} s, maxReceiveCount {}",
        o.ingest_instances,
        o.dispatcher_instances,
        o.poller_concurrency,
        o.batch_size,
        o.visibility_timeout.as_secs(),
        o.max_receive_count
    );
    println!("function URL                 {}", pipeline.function_url());
}

/// Which credentials the dispatcher uses, in one line.
fn okta_auth_line(pipeline: &Pipeline) -> String {
    match (
        pipeline.okta(),
        pipeline.okta_auth(),
        pipeline.okta_client_id(),
    ) {
        (None, _, _) => "SSWS API token from OKTA_API_TOKEN".to_string(),
        (Some(_), OktaAuth::OAuth, Some(client_id)) => format!(
            "OAuth 2.0 service app {client_id} (private_key_jwt with EC P-256 key \"{}\", DPoP required); LOCAL_OKTA_AUTH=ssws for an API token",
            local_pipeline::seed::DEMO_OAUTH_KEY_ID
        ),
        (Some(_), _, _) => {
            "SSWS API token (LOCAL_OKTA_AUTH=ssws; unset it for an OAuth 2.0 service app)"
                .to_string()
        }
    }
}

// ---------------------------------------------------------------------------
// Printing activity
// ---------------------------------------------------------------------------

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn print_log_line(line: &LogLine, show_ingest: bool) {
    if line.source == LogSource::Emulator {
        println!("  [{}#{}] {}", line.function, line.instance, line.line);
        return;
    }
    let Some(map) = line.json() else {
        // Not a JSON log line: a panic message or similar, always worth seeing.
        if !line.line.trim().is_empty() {
            println!(
                "  [{}#{} {}] {}",
                line.function,
                line.instance,
                if line.source == LogSource::Stderr {
                    "stderr"
                } else {
                    "stdout"
                },
                line.line
            );
        }
        return;
    };
    let text = |name: &str| {
        map.get(name).map(|v| {
            v.as_str()
                .map(String::from)
                .unwrap_or_else(|| v.to_string())
        })
    };
    if &*line.function == DISPATCHER
        && let Some(outcome) = UserOutcome::from_log(line)
    {
        let reason = outcome
            .reason
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        println!(
            "  dispatcher: {:<30} -> {}{reason}",
            outcome.user, outcome.outcome
        );
        return;
    }
    let level = text("level").unwrap_or_default();
    if &*line.function == INGEST && show_ingest && text("outcome").is_some() {
        println!(
            "  ingest: {} {} -> {} {}{}",
            text("event_type").unwrap_or_else(|| "-".into()),
            text("event_id").unwrap_or_else(|| "-".into()),
            text("status").unwrap_or_default(),
            text("outcome").unwrap_or_default(),
            text("reason")
                .or_else(|| text("error"))
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
        return;
    }
    if level == "ERROR" || level == "WARN" {
        println!(
            "  [{}] {level}: {}",
            line.function,
            text("message").unwrap_or_else(|| line.line.clone())
        );
    }
}

fn print_batch_event(event: &EventSourceEvent) {
    match event {
        EventSourceEvent::Invoking { messages, .. } => {
            for m in messages {
                let attrs: Vec<String> = m
                    .message_attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                println!(
                    "  queued message {} (group {}, receive #{}{}) -> dispatcher",
                    m.message_id,
                    m.group_id.as_deref().map(short).unwrap_or("-"),
                    m.receive_count,
                    if attrs.is_empty() {
                        String::new()
                    } else {
                        format!(", {}", attrs.join(", "))
                    }
                );
            }
        }
        EventSourceEvent::Completed(report) => match &report.outcome {
            BatchOutcome::Answered { failed } if failed.is_empty() => {
                println!(
                    "  batch of {} done in {} ms: deleted from the queue",
                    report.messages.len(),
                    report.duration.as_millis()
                );
            }
            BatchOutcome::Answered { failed } => println!(
                "  batch of {} done in {} ms: {} to retry after the visibility timeout ({})",
                report.messages.len(),
                report.duration.as_millis(),
                failed.len(),
                failed
                    .iter()
                    .map(|id| short(id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            BatchOutcome::BatchFailed { reason } => {
                println!(
                    "  batch of {} failed as a whole, every message will be retried: {reason}",
                    report.messages.len()
                )
            }
        },
        EventSourceEvent::Error { error, .. } => println!("  event source: {error}"),
    }
}

/// Held while a request is sent and its answer printed, so activity it
/// causes is printed after the answer.
type PrintGate = Arc<tokio::sync::Mutex<()>>;

/// Prints function and event source activity as it happens.
fn spawn_printer(
    pipeline: &Pipeline,
    show_ingest: bool,
    gate: PrintGate,
) -> tokio::task::JoinHandle<()> {
    let mut logs = pipeline.subscribe_logs();
    let mut batches = pipeline.subscribe_batches();
    let verbose = pipeline.options().echo_logs;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                line = logs.recv() => match line {
                    Ok(line) => if !verbose {
                        let _printing = gate.lock().await;
                        print_log_line(&line, show_ingest)
                    },
                    Err(broadcast::error::RecvError::Lagged(n)) => println!("  ({n} log lines skipped)"),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                event = batches.recv() => match event {
                    Ok(event) => {
                        let _printing = gate.lock().await;
                        print_batch_event(&event)
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    })
}

// ---------------------------------------------------------------------------
// demo
// ---------------------------------------------------------------------------

/// One `events/ingest-*.json` sample, as an HTTP request.
struct Sample {
    name: String,
    method: reqwest::Method,
    path_and_query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Headers the function URL itself adds or that belong to the hop, not the sender.
fn replayable_header(name: &str) -> bool {
    !matches!(
        name,
        "host" | "content-length" | "connection" | "transfer-encoding"
    ) && !name.starts_with("x-forwarded-")
        && !name.starts_with("x-amzn-")
}

fn load_sample(path: &Path) -> anyhow::Result<Sample> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let event: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let method = event["requestContext"]["http"]["method"]
        .as_str()
        .unwrap_or("POST");
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .with_context(|| format!("{}: bad method", path.display()))?;
    let raw_path = event["rawPath"].as_str().unwrap_or("/");
    let query = event["rawQueryString"].as_str().unwrap_or_default();
    let path_and_query = if query.is_empty() {
        raw_path.to_string()
    } else {
        format!("{raw_path}?{query}")
    };
    let headers = event["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .filter(|(k, _)| replayable_header(&k.to_ascii_lowercase()))
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let body = match event["body"].as_str() {
        None => Vec::new(),
        Some(body) if event["isBase64Encoded"].as_bool() == Some(true) => {
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .with_context(|| format!("{}: body is not base64", path.display()))?
        }
        Some(body) => body.as_bytes().to_vec(),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Sample {
        name,
        method,
        path_and_query,
        headers,
        body,
    })
}

fn samples(dir: &Path) -> anyhow::Result<Vec<Sample>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the samples in {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("ingest-") && n.ends_with(".json"))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!("no events/ingest-*.json samples in {}", dir.display());
    }
    paths.iter().map(|p| load_sample(p)).collect()
}

fn events_dir(args: &Args) -> PathBuf {
    args.events.clone().unwrap_or_else(|| {
        local_pipeline::moto::workspace_root()
            .map(|root| root.join("events"))
            .unwrap_or_else(|| PathBuf::from("events"))
    })
}

async fn demo(args: &Args) -> anyhow::Result<Finish> {
    let samples = samples(&events_dir(args))?;
    let mut options = base_options(args, Services::FromEnvironment)?;
    options.visibility_timeout = Duration::from_secs(5);
    let Some(pipeline) = start(options).await? else {
        return Ok(Finish::Interrupted);
    };
    print_banner(&pipeline);
    let gate = PrintGate::default();
    let printer = spawn_printer(&pipeline, false, gate.clone());
    let result = tokio::select! {
        result = run_samples(&pipeline, &samples, &gate) => result.map(|()| Finish::Done),
        _ = stop_signal() => Ok(Finish::Interrupted),
    };
    printer.abort();
    stop(pipeline).await;
    if matches!(result, Ok(Finish::Done)) {
        println!("done: everything started was stopped");
    }
    result
}

async fn run_samples(
    pipeline: &Pipeline,
    samples: &[Sample],
    gate: &PrintGate,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let base = pipeline.function_url();
    let base = base.trim_end_matches('/');
    let mut queued_events = std::collections::BTreeSet::new();
    let mut answers = Vec::new();
    for sample in samples {
        let printing = gate.lock().await;
        println!(
            "\n== {} : {} {} ({} bytes)",
            sample.name,
            sample.method,
            sample.path_and_query,
            sample.body.len()
        );
        let mut request = http.request(
            sample.method.clone(),
            format!("{base}{}", sample.path_and_query),
        );
        for (name, value) in &sample.headers {
            request = request.header(name, value);
        }
        let response = request
            .body(sample.body.clone())
            .send()
            .await
            .with_context(|| format!("sending {}", sample.name))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        println!("  answer: {} {}", status.as_u16(), body.trim());
        drop(printing);
        answers.push((sample.name.clone(), status.as_u16()));
        if status.is_server_error() {
            bail!(
                "{} was answered {status}: the ingest function failed",
                sample.name
            );
        }
        if status.is_success() {
            let answer: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if let Some(id) = answer["eventId"].as_str() {
                queued_events.insert(id.to_string());
            }
            pipeline.wait_until_drained(Duration::from_secs(60)).await?;
        }
        // Let the printer catch up before the next sample's header.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    if let Some(slack) = pipeline.slack() {
        let expected = queued_events.len();
        let messages = slack
            .wait_for_messages(expected, Duration::from_secs(30))
            .await;
        if messages.len() < expected {
            bail!(
                "{expected} events were queued but only {} Slack summaries arrived",
                messages.len()
            );
        }
    }
    let dlq = pipeline.dlq_depth().await?.total();
    let outcomes = pipeline.user_outcomes();
    println!("\n== summary");
    for (name, status) in &answers {
        println!("  {status}  {name}");
    }
    println!("  events queued and dispatched: {}", queued_events.len());
    println!("  per-user outcomes logged:     {}", outcomes.len());
    if let Some(slack) = pipeline.slack() {
        println!("  Slack summaries:              {}", slack.messages().len());
    }
    if let Some(okta) = pipeline.okta() {
        let suspended: Vec<String> = okta
            .users()
            .into_iter()
            .filter(|u| u.suspended_count > 0)
            .map(|u| u.login)
            .collect();
        println!(
            "  Okta users suspended:         {}",
            if suspended.is_empty() {
                "none".into()
            } else {
                suspended.join(", ")
            }
        );
    }
    println!("  dead-letter queue:            {dlq} message(s)");
    if dlq > 0 {
        bail!("{dlq} message(s) ended in the dead-letter queue");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// up
// ---------------------------------------------------------------------------

async fn up(args: &Args) -> anyhow::Result<Finish> {
    let mut options = base_options(args, Services::FromEnvironment)?;
    options.function_url_addr = ([127, 0, 0, 1], args.port.unwrap_or(9000)).into();
    let pipeline = match start(options.clone()).await {
        Err(e) if args.port.is_none() && format!("{e:#}").contains("binding the function URL") => {
            println!("port 9000 is taken; using a free port instead");
            options.function_url_addr = ([127, 0, 0, 1], 0).into();
            start(options).await?
        }
        other => other?,
    };
    let Some(pipeline) = pipeline else {
        return Ok(Finish::Interrupted);
    };
    print_banner(&pipeline);
    let url = pipeline.function_url();
    let body = oort_event(
        "FAILED_CHECK",
        "my-first-event",
        &["ana.lima@example.com", "ghost@example.com"],
    );
    println!(
        "\nAPI key ({}): {}",
        pipeline.api_key_header(),
        pipeline.api_key()
    );
    if pipeline.okta().is_some() {
        println!(
            "demo Okta users: ana.lima, li.wei, omar.haddad (suspended), root.admin (admin), jsmith@corp (email john.smith@), \
             ops1/ops2 (shared-ops@), former.employee (deprovisioned) @example.com, svc.backup; ghost@example.com does not exist"
        );
    }
    println!("\nsend a webhook:\n");
    println!(
        "curl -sS -X POST '{url}' -H 'content-type: application/json' -H '{}: {}' --data '{}'\n",
        pipeline.api_key_header(),
        pipeline.api_key(),
        body
    );
    println!("(a repeated event id is de-duplicated: change \"id\" to send another)");
    println!("running; press Ctrl-C to stop\n");
    let printer = spawn_printer(&pipeline, true, PrintGate::default());
    stop_signal().await;
    printer.abort();
    stop(pipeline).await;
    Ok(Finish::Done)
}

// ---------------------------------------------------------------------------
// bench
// ---------------------------------------------------------------------------

/// The `q` quantile (nearest rank) of sorted samples.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn post(http: &reqwest::Client, pipeline: &Pipeline, body: &Value) -> anyhow::Result<u16> {
    let answer = http
        .post(pipeline.function_url())
        .header("content-type", "application/json")
        .header(pipeline.api_key_header(), pipeline.api_key())
        .body(body.to_string())
        .send()
        .await?;
    Ok(answer.status().as_u16())
}

async fn bench(args: &Args) -> anyhow::Result<Finish> {
    let mut options = base_options(args, Services::Fakes)?;
    options.print_slack = false;
    options.dispatcher_env = vec![("DRY_RUN".into(), "false".into())];
    // Lambda scales a function URL's function out to the requests in flight.
    options.ingest_instances = args.instances.unwrap_or(args.in_flight).max(1);
    options.dispatcher_instances = 4;
    options.poller_concurrency = 4;
    options.visibility_timeout = Duration::from_secs(30);
    options.dispatcher_timeout = Duration::from_secs(30);
    let profile = options
        .bin_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if profile != "release" {
        println!(
            "NOTE: timing the binaries in {} (not a release build)",
            options.bin_dir.display()
        );
    }
    let Some(pipeline) = start(options).await? else {
        return Ok(Finish::Interrupted);
    };
    let result = tokio::select! {
        result = run_bench(&pipeline, args) => result.map(|()| Finish::Done),
        _ = stop_signal() => Ok(Finish::Interrupted),
    };
    stop(pipeline).await;
    result
}

async fn run_bench(pipeline: &Pipeline, args: &Args) -> anyhow::Result<()> {
    let (Some(okta), Some(slack)) = (pipeline.okta(), pipeline.slack()) else {
        bail!("the benchmark needs the local stand-ins");
    };
    // Okta's default 600/min bucket would make this a benchmark of rate limiting.
    okta.set_rate_limit(1_000_000);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()?;

    // Warm up: the first event pays for secret reads and connection set-up.
    okta.add_user(SeedUser::new(
        "warmup@example.com",
        "warmup@example.com",
        "ACTIVE",
    ));
    if post(
        &http,
        pipeline,
        &oort_event("FAILED_CHECK", "bench-warmup", &["warmup@example.com"]),
    )
    .await?
        != 200
    {
        bail!("the warm-up event was not answered 200");
    }
    let mut expected = 1;
    if slack
        .wait_for_messages(expected, Duration::from_secs(30))
        .await
        .len()
        < expected
    {
        bail!("the warm-up event produced no Slack summary");
    }

    // 1. Webhook 200 -> Slack summary, one 5-user event at a time.
    println!("\n{} events of 5 users each, one at a time ...", args.runs);
    let mut latencies = Vec::with_capacity(args.runs);
    for run in 0..args.runs {
        let users: Vec<String> = (0..5)
            .map(|k| format!("bench-{run}-{k}@example.com"))
            .collect();
        for user in &users {
            okta.add_user(SeedUser::new(user.as_str(), user.as_str(), "ACTIVE"));
        }
        let refs: Vec<&str> = users.iter().map(String::as_str).collect();
        let status = post(
            &http,
            pipeline,
            &oort_event("FAILED_CHECK", &format!("bench-latency-{run}"), &refs),
        )
        .await?;
        let answered = Instant::now();
        if status != 200 {
            bail!("event {run} was answered {status}");
        }
        expected += 1;
        if slack
            .wait_for_messages(expected, Duration::from_secs(30))
            .await
            .len()
            < expected
        {
            bail!("no Slack summary for event {run} within 30 s");
        }
        latencies.push(answered.elapsed());
    }
    latencies.sort();

    // 2. A burst of deliveries with a fixed number in flight.
    println!(
        "{} deliveries, {} in flight ...",
        args.burst, args.in_flight
    );
    for i in 0..args.burst {
        let user = format!("burst-{i}@example.com");
        okta.add_user(SeedUser::new(user.as_str(), user.as_str(), "ACTIVE"));
    }
    let burst_started = Instant::now();
    let answers: Vec<anyhow::Result<(u16, Duration)>> = futures::stream::iter(0..args.burst)
        .map(|i| {
            let http = http.clone();
            let body = oort_event(
                "FAILED_CHECK",
                &format!("bench-burst-{i}"),
                &[&format!("burst-{i}@example.com")],
            );
            async move {
                let sent = Instant::now();
                let status = post(&http, pipeline, &body).await?;
                Ok((status, sent.elapsed()))
            }
        })
        .buffer_unordered(args.in_flight.max(1))
        .collect()
        .await;
    let answered_in = burst_started.elapsed();
    let mut answer_latencies = Vec::with_capacity(answers.len());
    for answer in answers {
        let (status, latency) = answer?;
        if status != 200 {
            bail!("a burst delivery was answered {status}");
        }
        answer_latencies.push(latency);
    }
    answer_latencies.sort();
    expected += args.burst;
    if slack
        .wait_for_messages(expected, Duration::from_secs(120))
        .await
        .len()
        < expected
    {
        bail!("not every burst event produced a Slack summary within 120 s");
    }
    let dispatched_in = burst_started.elapsed();

    println!("\n== results ({})", pipeline.options().bin_dir.display());
    println!(
        "webhook 200 -> Slack summary, 5-user event (n={}): median {}, p99 {}, min {}, max {}",
        latencies.len(),
        ms(quantile(&latencies, 0.5)),
        ms(quantile(&latencies, 0.99)),
        ms(quantile(&latencies, 0.0)),
        ms(quantile(&latencies, 1.0))
    );
    println!(
        "ingest answer latency, {} deliveries with {} in flight: median {}, p99 {}, max {}; all answered in {}, all summaries posted {} after the first delivery",
        answer_latencies.len(),
        args.in_flight,
        ms(quantile(&answer_latencies, 0.5)),
        ms(quantile(&answer_latencies, 0.99)),
        ms(quantile(&answer_latencies, 1.0)),
        ms(answered_in),
        ms(dispatched_in)
    );
    Ok(())
}
