//! `local-pipeline demo` (`make local`): the README's story, end to end.
//!
//! The samples are the `events/ingest-*.json` function URL requests, sent as
//! HTTP requests to the local function URL. [`MAIN_SAMPLE`] goes first, so
//! that it meets the demo org as the README's outcome table describes it (the
//! base64 sample names one of its users too); the others follow in file-name
//! order. Each sample's steps are printed before the next sample is sent.
//! Then the approval loop (the `approvals` module) shows a held event
//! approved and one suspension undone from Slack, and the `responses` module
//! one check per `CHECK_ACTIONS` action.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use local_pipeline::pipeline::{Pipeline, Services};
use serde_json::Value;

use crate::print::{PrintGate, Printer, print_banner};
use crate::{Cli, Finish, base_options, start, stop, stop_signal};

/// The sample the README's outcome table is about.
const MAIN_SAMPLE: &str = "ingest-failed-check.json";

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

/// The samples in the order they are sent: [`MAIN_SAMPLE`] first, the rest
/// by file name.
fn sample_order(mut names: Vec<String>) -> Vec<String> {
    names.sort_by_key(|name| (name != MAIN_SAMPLE, name.clone()));
    names
}

fn samples(dir: &Path) -> anyhow::Result<Vec<Sample>> {
    let names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the samples in {}", dir.display()))?
        .filter_map(|entry| entry.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with("ingest-") && n.ends_with(".json"))
        .collect();
    if names.is_empty() {
        bail!("no events/ingest-*.json samples in {}", dir.display());
    }
    sample_order(names)
        .iter()
        .map(|n| load_sample(&dir.join(n)))
        .collect()
}

fn events_dir(events: Option<&Path>) -> PathBuf {
    events.map(Path::to_path_buf).unwrap_or_else(|| {
        local_pipeline::moto::workspace_root()
            .map(|root| root.join("events"))
            .unwrap_or_else(|| PathBuf::from("events"))
    })
}

pub async fn run(cli: &Cli, events: Option<&Path>) -> anyhow::Result<Finish> {
    let samples = samples(&events_dir(events))?;
    let mut options = base_options(cli, Services::FromEnvironment)?;
    options.visibility_timeout = Duration::from_secs(5);
    crate::responses::configure(&mut options);
    let Some(pipeline) = start(options).await? else {
        return Ok(Finish::Interrupted);
    };
    print_banner(&pipeline);
    let gate = PrintGate::default();
    let mut printer = Printer::start(&pipeline, false, gate.clone());
    let result = tokio::select! {
        result = run_all(&pipeline, &samples, &gate, &mut printer) => result.map(|()| Finish::Done),
        _ = stop_signal() => Ok(Finish::Interrupted),
    };
    printer.stop();
    stop(pipeline).await;
    if matches!(result, Ok(Finish::Done)) {
        println!("done: everything started was stopped");
    }
    result
}

/// The samples, then the approval loop ([`approvals`](crate::approvals)).
async fn run_all(
    pipeline: &Pipeline,
    samples: &[Sample],
    gate: &PrintGate,
    printer: &mut Printer,
) -> anyhow::Result<()> {
    run_samples(pipeline, samples, gate, printer).await?;
    crate::approvals::run(pipeline, gate, printer).await?;
    crate::responses::run(pipeline, gate, printer).await?;
    let dlq = pipeline.dlq_depth().await?.total();
    if dlq > 0 {
        bail!("{dlq} message(s) ended in the dead-letter queue");
    }
    Ok(())
}

async fn run_samples(
    pipeline: &Pipeline,
    samples: &[Sample],
    gate: &PrintGate,
    printer: &mut Printer,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let base = pipeline.function_url();
    let base = base.trim_end_matches('/');
    let mut queued_events = BTreeSet::new();
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
        // Every batch so far is told before the next sample's header.
        let batches = pipeline.event_source().stats().batches;
        printer.caught_up(batches, Duration::from_secs(5)).await;
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
    let _printing = gate.lock().await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_sample_goes_first_then_file_name_order() {
        let names = [
            "ingest-wrong-key.json",
            "ingest-base64-body.json",
            MAIN_SAMPLE,
            "ingest-get.json",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            sample_order(names),
            [
                MAIN_SAMPLE,
                "ingest-base64-body.json",
                "ingest-get.json",
                "ingest-wrong-key.json"
            ]
        );
    }

    #[test]
    fn every_shipped_sample_loads() {
        let dir = events_dir(None);
        let loaded = samples(&dir).unwrap();
        assert_eq!(loaded[0].name, MAIN_SAMPLE);
        assert!(loaded.len() >= 2, "{}", loaded.len());
        let base64 = loaded
            .iter()
            .find(|s| s.name == "ingest-base64-body.json")
            .expect("the base64 sample");
        assert!(base64.body.starts_with(b"{"), "decoded from base64");
    }
}
