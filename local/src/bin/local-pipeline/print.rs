//! What `demo` and `up` print: the banner, and the pipeline's activity in
//! the order it happened.
//!
//! Activity comes from three sources: the event source (a batch handed to
//! the dispatcher, a batch done), the functions' log lines (the per-user
//! outcomes), and the fake Slack (each accepted summary). Each source is in
//! order, but they reach the [`Printer`] on separate channels, so the printer
//! puts each batch's story back together: the queued message, what the
//! dispatcher logged, the Slack summary it posted, then "batch done". Lambda
//! posts the summary before it answers the batch, so everything a batch
//! caused is on its channel by the time the batch is reported done.
//!
//! The [`PrintGate`] keeps a request's answer ahead of what it caused: the
//! demo holds it while it sends a sample and prints the answer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use local_pipeline::event_source::{BatchOutcome, BatchReport, EventSourceEvent, ReceivedMessage};
use local_pipeline::fake_slack::{ResponseAction, SlackEndpoint, SlackMessage, render_text};
use local_pipeline::pipeline::{DISPATCHER, INGEST, OktaAuth, Pipeline, UserOutcome};
use local_pipeline::runtime_api::{LogLine, LogSource};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub fn print_banner(pipeline: &Pipeline) {
    for notice in pipeline.notices() {
        println!("NOTE: {notice}");
    }
    println!(
        "moto                         {} (SQS, Secrets Manager, DynamoDB)",
        pipeline.aws().endpoint
    );
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
        "functions                    ingest ×{}, dispatcher ×{}, actions ×{} (Runtime API emulator); SQS event source: {} pollers, batch {}, visibility {} s, maxReceiveCount {}",
        o.ingest_instances,
        o.dispatcher_instances,
        o.actions_instances,
        o.poller_concurrency,
        o.batch_size,
        o.visibility_timeout.as_secs(),
        o.max_receive_count
    );
    println!(
        "store (DynamoDB)             {}",
        pipeline.stack().store_table
    );
    println!("function URL                 {}", pipeline.function_url());
    println!(
        "actions function URL         {} (the Slack app's Request URL)",
        pipeline.actions_url()
    );
    println!(
        "Slack approvers              {}{}",
        if o.approvers.is_empty() {
            "none (every click is refused)".to_string()
        } else {
            o.approvers.join(", ")
        },
        if o.approvals {
            "; the dispatcher has STORE_TABLE and SLACK_APPROVERS: its summaries carry buttons"
        } else {
            ""
        }
    );
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

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// A log line as the demo shows it (`None`: not worth a line).
fn log_text(line: &LogLine, show_ingest: bool) -> Option<String> {
    if line.source == LogSource::Emulator {
        return Some(format!(
            "  [{}#{}] {}",
            line.function, line.instance, line.line
        ));
    }
    let Some(map) = line.json() else {
        // Not a JSON log line: a panic message or similar, always worth seeing.
        let stream = if line.source == LogSource::Stderr {
            "stderr"
        } else {
            "stdout"
        };
        return (!line.line.trim().is_empty()).then(|| {
            format!(
                "  [{}#{} {stream}] {}",
                line.function, line.instance, line.line
            )
        });
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
        return Some(format!(
            "  dispatcher: {:<30} -> {}{reason}",
            outcome.user, outcome.outcome
        ));
    }
    let level = text("level").unwrap_or_default();
    if &*line.function == INGEST && show_ingest && text("outcome").is_some() {
        return Some(format!(
            "  ingest: {} {} -> {} {}{}",
            text("event_type").unwrap_or_else(|| "-".into()),
            text("event_id").unwrap_or_else(|| "-".into()),
            text("status").unwrap_or_default(),
            text("outcome").unwrap_or_default(),
            text("reason")
                .or_else(|| text("error"))
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
    }
    (level == "ERROR" || level == "WARN").then(|| {
        format!(
            "  [{}] {level}: {}",
            line.function,
            text("message").unwrap_or_else(|| line.line.clone())
        )
    })
}

fn queued_text(messages: &[ReceivedMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            let attrs: Vec<String> = m
                .message_attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!(
                "  queued message {} (group {}, receive #{}{}) -> dispatcher",
                m.message_id,
                m.group_id.as_deref().map(short).unwrap_or("-"),
                m.receive_count,
                if attrs.is_empty() {
                    String::new()
                } else {
                    format!(", {}", attrs.join(", "))
                }
            )
        })
        .collect()
}

fn done_text(report: &BatchReport) -> String {
    match &report.outcome {
        BatchOutcome::Answered { failed } if failed.is_empty() => format!(
            "  batch of {} done in {} ms: deleted from the queue",
            report.messages.len(),
            report.duration.as_millis()
        ),
        BatchOutcome::Answered { failed } => format!(
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
        BatchOutcome::BatchFailed { reason } => format!(
            "  batch of {} failed as a whole, every message will be retried: {reason}",
            report.messages.len()
        ),
    }
}

pub fn slack_text(message: &SlackMessage) -> String {
    let title = match (message.endpoint, message.via_response_url) {
        (SlackEndpoint::PostMessage, _) => "Slack message (via chat.postMessage)".to_string(),
        (SlackEndpoint::Webhook, _) => "Slack message (via webhook)".to_string(),
        (SlackEndpoint::ResponseUrl, Some(ResponseAction::Replaced)) => format!(
            "Slack message {} rewritten (via response_url, replace_original)",
            message.ts
        ),
        (SlackEndpoint::ResponseUrl, Some(ResponseAction::Deleted)) => {
            return format!(
                "\n──────── Slack message {} deleted (via response_url) ────────",
                message.ts
            );
        }
        (SlackEndpoint::ResponseUrl, Some(ResponseAction::InChannel)) => {
            "Slack message (via response_url, in_channel)".to_string()
        }
        (SlackEndpoint::ResponseUrl, _) => {
            "Slack reply only the clicker sees (via response_url, ephemeral)".to_string()
        }
    };
    format!(
        "\n──────── {title} ────────\n{}\n────────────────────────────────────────────",
        render_text(&message.message)
    )
}

/// Held while a request is sent and its answer printed, so activity it
/// causes is printed after the answer.
pub type PrintGate = Arc<tokio::sync::Mutex<()>>;

/// What batches in flight have caused so far, printed when they are done.
#[derive(Default)]
struct InFlight {
    /// The "queued message" lines, by poller.
    queued: BTreeMap<usize, Vec<String>>,
    /// Dispatcher lines, in order.
    dispatcher: Vec<String>,
    /// Slack summaries, in order.
    slack: Vec<String>,
}

impl InFlight {
    fn is_open(&self) -> bool {
        !self.queued.is_empty()
    }

    /// One batch's story, in the order it happened.
    fn finish(&mut self, report: &BatchReport) -> Vec<String> {
        let mut lines = self.queued.remove(&report.poller).unwrap_or_default();
        lines.append(&mut self.dispatcher);
        lines.append(&mut self.slack);
        lines.push(done_text(report));
        lines
    }
}

/// Prints function, event source and Slack activity as it happens.
pub struct Printer {
    task: JoinHandle<()>,
    /// Batches whose story has been printed.
    printed: watch::Receiver<u64>,
}

impl Printer {
    pub fn start(pipeline: &Pipeline, show_ingest: bool, gate: PrintGate) -> Printer {
        let mut logs = pipeline.subscribe_logs();
        let mut batches = pipeline.subscribe_batches();
        let mut slack = pipeline.slack().map(|s| s.subscribe());
        let verbose = pipeline.options().echo_logs;
        let (printed_tx, printed) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            let mut in_flight = InFlight::default();
            let mut printed = 0u64;
            loop {
                // Batches first: a batch handed out opens before its lines arrive.
                let out: Vec<String> = tokio::select! {
                    biased;
                    event = batches.recv() => match event {
                        Ok(EventSourceEvent::Invoking { poller, messages }) => {
                            in_flight.queued.insert(poller, queued_text(&messages));
                            Vec::new()
                        }
                        Ok(EventSourceEvent::Completed(report)) => {
                            // What the batch caused was sent before it was done.
                            while let Some(line) = try_next(&mut logs) {
                                log_into(&line, show_ingest, verbose, &mut in_flight, &gate).await;
                            }
                            while let Some(message) = slack.as_mut().and_then(try_next) {
                                in_flight.slack.push(slack_text(&message));
                            }
                            printed += 1;
                            let lines = in_flight.finish(&report);
                            print(&gate, &lines).await;
                            let _ = printed_tx.send(printed);
                            continue;
                        }
                        Ok(EventSourceEvent::Error { error, .. }) => vec![format!("  event source: {error}")],
                        Err(RecvError::Lagged(_)) => Vec::new(),
                        Err(RecvError::Closed) => return,
                    },
                    line = logs.recv() => match line {
                        Ok(line) => {
                            log_into(&line, show_ingest, verbose, &mut in_flight, &gate).await;
                            Vec::new()
                        }
                        Err(RecvError::Lagged(n)) => vec![format!("  ({n} log lines skipped)")],
                        Err(RecvError::Closed) => return,
                    },
                    message = next_slack(&mut slack) => match message {
                        Ok(message) if in_flight.is_open() => {
                            in_flight.slack.push(slack_text(&message));
                            Vec::new()
                        }
                        Ok(message) => vec![slack_text(&message)],
                        Err(RecvError::Lagged(_)) => Vec::new(),
                        Err(RecvError::Closed) => {
                            slack = None;
                            Vec::new()
                        }
                    },
                };
                print(&gate, &out).await;
            }
        });
        Printer { task, printed }
    }

    /// Waits (up to `timeout`) until the story of `batches` batches has been printed.
    pub async fn caught_up(&mut self, batches: u64, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.printed.wait_for(|n| *n >= batches)).await;
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

/// A dispatcher line while a batch is in flight waits for the batch to be
/// done; anything else is printed now.
async fn log_into(
    line: &LogLine,
    show_ingest: bool,
    verbose: bool,
    in_flight: &mut InFlight,
    gate: &PrintGate,
) {
    // With --verbose the emulator echoes every line itself.
    if verbose {
        return;
    }
    let Some(text) = log_text(line, show_ingest) else {
        return;
    };
    if &*line.function == DISPATCHER && in_flight.is_open() {
        in_flight.dispatcher.push(text);
    } else {
        print(gate, &[text]).await;
    }
}

async fn print(gate: &PrintGate, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let _printing = gate.lock().await;
    for line in lines {
        println!("{line}");
    }
}

/// The next message already received, if any.
fn try_next<T: Clone>(rx: &mut broadcast::Receiver<T>) -> Option<T> {
    loop {
        match rx.try_recv() {
            Ok(value) => return Some(value),
            Err(TryRecvError::Lagged(_)) => continue,
            Err(TryRecvError::Empty | TryRecvError::Closed) => return None,
        }
    }
}

async fn next_slack(
    rx: &mut Option<broadcast::Receiver<SlackMessage>>,
) -> Result<SlackMessage, RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
