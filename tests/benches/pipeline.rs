//! The whole pipeline's benchmark (figures, not tests: see `benches/README.md`).
//! Run: `cargo build --release --bins && cargo bench -p integration-tests --bench pipeline`
//! (`scripts/bench-pipeline.sh` does both; options after `--`: `--runs N`,
//! `--burst N`, `--in-flight N`, `--instances N`).
//!
//! Through the deployed path (HTTP to the function URL, the compiled binaries
//! under the Runtime API emulator, moto, the SQS event source, the Okta and
//! Slack stand-ins with Okta's rate limit lifted) it measures:
//!
//! 1. the latency from the webhook's 200 to the Slack summary for a 5-user
//!    event, one event at a time;
//! 2. ingest's answer latency under a burst of deliveries with a fixed number
//!    in flight, and how long until every summary is posted.

mod common;

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use local_pipeline::fake_okta::SeedUser;
use local_pipeline::pipeline::{Pipeline, PipelineOptions, Services, lambda_bin_dir};
use serde_json::Value;
use shared::testing::OortBody;

/// What to measure.
#[derive(Clone, Debug)]
struct BenchSettings {
    /// 5-user events to time one by one (`--runs`, 50).
    runs: usize,
    /// Webhook deliveries in the burst (`--burst`, 200).
    burst: usize,
    /// Concurrent deliveries in the burst (`--in-flight`, 16).
    in_flight: usize,
    /// Ingest instances (`--instances`; default as many as in flight, as
    /// Lambda scales a function URL's function).
    instances: Option<usize>,
}

impl BenchSettings {
    /// From the arguments after `--` (cargo adds `--bench`, ignored).
    fn from_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<BenchSettings> {
        let mut settings = BenchSettings {
            runs: 50,
            burst: 200,
            in_flight: 16,
            instances: None,
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "--bench" {
                continue;
            }
            let value: usize = args
                .next()
                .with_context(|| format!("{flag} needs a number"))?
                .parse()
                .with_context(|| format!("{flag} needs a number"))?;
            match flag.as_str() {
                "--runs" => settings.runs = value,
                "--burst" => settings.burst = value,
                "--in-flight" => settings.in_flight = value,
                "--instances" => settings.instances = Some(value),
                other => bail!("unknown option {other}"),
            }
        }
        Ok(settings)
    }
}

/// The pipeline the benchmark runs on: the stand-ins, without approvers,
/// their answers acted on (`DRY_RUN=false`), ingest scaled out to the
/// requests in flight, and four dispatchers.
fn pipeline_options(settings: &BenchSettings) -> PipelineOptions {
    let mut options = PipelineOptions::new(lambda_bin_dir());
    options.services = Services::Fakes;
    options.approvals = false;
    options.dispatcher_env = vec![("DRY_RUN".into(), "false".into())];
    // Lambda scales a function URL's function out to the requests in flight.
    options.ingest_instances = settings.instances.unwrap_or(settings.in_flight).max(1);
    options.dispatcher_instances = 4;
    options.poller_concurrency = 4;
    options.visibility_timeout = Duration::from_secs(30);
    options.dispatcher_timeout = Duration::from_secs(30);
    options
}

/// A note to print when the binaries are not a release build.
fn profile_note(options: &PipelineOptions) -> Option<String> {
    let profile = options
        .bin_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (profile != "release").then(|| {
        format!(
            "NOTE: timing the binaries in {} (not a release build)",
            options.bin_dir.display()
        )
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", common::ms(d))
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

/// Runs both measurements on a started pipeline and prints the results.
async fn run(pipeline: &Pipeline, settings: &BenchSettings) -> anyhow::Result<()> {
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
        &OortBody::failed_check("bench-warmup", &["warmup@example.com"]).into_json(),
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
    println!(
        "\n{} events of 5 users each, one at a time ...",
        settings.runs
    );
    let mut latencies = Vec::with_capacity(settings.runs);
    for run in 0..settings.runs {
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
            &OortBody::failed_check(&format!("bench-latency-{run}"), &refs).into_json(),
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
        settings.burst, settings.in_flight
    );
    for i in 0..settings.burst {
        let user = format!("burst-{i}@example.com");
        okta.add_user(SeedUser::new(user.as_str(), user.as_str(), "ACTIVE"));
    }
    let burst_started = Instant::now();
    let answers: Vec<anyhow::Result<(u16, Duration)>> = futures::stream::iter(0..settings.burst)
        .map(|i| {
            let http = http.clone();
            let body = OortBody::failed_check(
                &format!("bench-burst-{i}"),
                &[&format!("burst-{i}@example.com")],
            )
            .into_json();
            async move {
                let sent = Instant::now();
                let status = post(&http, pipeline, &body).await?;
                Ok((status, sent.elapsed()))
            }
        })
        .buffer_unordered(settings.in_flight.max(1))
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
    expected += settings.burst;
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
        ms(common::percentile(&latencies, 0.5)),
        ms(common::percentile(&latencies, 0.99)),
        ms(common::percentile(&latencies, 0.0)),
        ms(common::percentile(&latencies, 1.0))
    );
    println!(
        "ingest answer latency, {} deliveries with {} in flight: median {}, p99 {}, max {}; all answered in {}, all summaries posted {} after the first delivery",
        answer_latencies.len(),
        settings.in_flight,
        ms(common::percentile(&answer_latencies, 0.5)),
        ms(common::percentile(&answer_latencies, 0.99)),
        ms(common::percentile(&answer_latencies, 1.0)),
        ms(answered_in),
        ms(dispatched_in)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let settings = BenchSettings::from_args(std::env::args().skip(1))?;
    let options = pipeline_options(&settings);
    if let Some(note) = profile_note(&options) {
        println!("{note}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        println!(
            "starting moto, the Okta and Slack stand-ins, and the functions from {} ...",
            options.bin_dir.display()
        );
        let pipeline = Pipeline::start(options).await?;
        let result = run(&pipeline, &settings).await;
        println!("\nstopping everything ...");
        pipeline.shutdown().await;
        result
    })
}
