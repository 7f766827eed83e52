//! The whole pipeline's benchmark, `local-pipeline bench` (run by
//! `scripts/bench-pipeline.sh`; figures, not tests: see `benches/README.md`).
//!
//! Through the deployed path (HTTP to the function URL, the compiled binaries
//! under the Runtime API emulator, moto, the SQS event source, the Okta and
//! Slack stand-ins with Okta's rate limit lifted) it measures:
//!
//! 1. the latency from the webhook's 200 to the Slack summary for a 5-user
//!    event, one event at a time;
//! 2. ingest's answer latency under a burst of deliveries with a fixed number
//!    in flight, and how long until every summary is posted.

use std::time::{Duration, Instant};

use anyhow::bail;
use futures::StreamExt as _;
use serde_json::Value;

use crate::fake_okta::SeedUser;
use crate::pipeline::{Pipeline, PipelineOptions};
use shared::testing::OortBody;

/// What to measure.
#[derive(Clone, Debug, clap::Args)]
pub struct BenchSettings {
    /// 5-user events to time one by one
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub runs: usize,
    /// webhook deliveries in the burst
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub burst: usize,
    /// concurrent deliveries in the burst
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub in_flight: usize,
    /// ingest instances (default: as many as --in-flight, as Lambda scales)
    #[arg(long, value_name = "N")]
    pub instances: Option<usize>,
}

/// The pipeline the benchmark runs on: `base` with the stand-ins' answers
/// acted on (`DRY_RUN=false`), ingest scaled out to the requests in flight,
/// and four dispatchers.
pub fn pipeline_options(mut options: PipelineOptions, settings: &BenchSettings) -> PipelineOptions {
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
pub fn profile_note(options: &PipelineOptions) -> Option<String> {
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

/// Runs both measurements on a started pipeline and prints the results.
pub async fn run(pipeline: &Pipeline, settings: &BenchSettings) -> anyhow::Result<()> {
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
        ms(quantile(&latencies, 0.5)),
        ms(quantile(&latencies, 0.99)),
        ms(quantile(&latencies, 0.0)),
        ms(quantile(&latencies, 1.0))
    );
    println!(
        "ingest answer latency, {} deliveries with {} in flight: median {}, p99 {}, max {}; all answered in {}, all summaries posted {} after the first delivery",
        answer_latencies.len(),
        settings.in_flight,
        ms(quantile(&answer_latencies, 0.5)),
        ms(quantile(&answer_latencies, 0.99)),
        ms(quantile(&answer_latencies, 1.0)),
        ms(answered_in),
        ms(dispatched_in)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let ms = |n: u64| Duration::from_millis(n);
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(quantile(&sorted, 0.5), ms(50));
        assert_eq!(quantile(&sorted, 0.99), ms(99));
        assert_eq!(quantile(&sorted, 0.0), ms(1));
        assert_eq!(quantile(&sorted, 1.0), ms(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
