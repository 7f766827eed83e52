//! `local-pipeline`: the whole pipeline on this machine.
//!
//! - `local-pipeline demo` (`make local`, [`demo`]): starts everything with the
//!   local Okta and Slack stand-ins, replays the `events/ingest-*.json`
//!   samples through the function URL (`ingest-failed-check.json` first, the
//!   others in file-name order), prints each step in the order it happened
//!   (the answer, the queued message, the dispatcher's per-user outcomes, the
//!   Slack summary), waits for the queue to drain; then the approval loop
//!   ([`approvals`]): an event over the cap held with Approve and Dismiss, a
//!   click by someone who is not an approver refused, the approver's click
//!   carried out by the dispatcher, one user unsuspended. It stops
//!   everything and exits 0 (1 on failure).
//! - `local-pipeline up` (`make local-up`, [`up`]): starts everything and
//!   keeps it running, printing the function URL, the API key and a `curl`
//!   command, then activity as it happens, until Ctrl-C.
//!
//! The whole pipeline's benchmark is with the other benchmarks
//! (`tests/benches/pipeline.rs`, `scripts/bench-pipeline.sh`).
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

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use local_pipeline::pipeline::{OktaAuth, Pipeline, PipelineOptions, Services, lambda_bin_dir};

mod approvals;
mod demo;
mod print;
mod responses;
mod up;

/// The key the samples in `events/` carry.
const DEMO_API_KEY: &str = "local-dev-api-key";

const ENVIRONMENT: &str = "\
environment:
  OKTA_ORG_URL + OKTA_API_TOKEN   use a real Okta org (DRY_RUN then defaults to true)
  LOCAL_OKTA_AUTH                 local Okta: oauth (default: OAuth service app, DPoP) or ssws (API token)
  SLACK_WEBHOOK_URL               post summaries to a real Slack webhook
  DRY_RUN, MAX_USERS_PER_EVENT, ACTION_SEVERITIES, PROTECTED_USERS, PROTECT_ADMINS,
  OKTA_MAX_CONCURRENCY            passed to the dispatcher
  LOCAL_API_KEY                   the webhook API key (default local-dev-api-key)";

/// Dispatcher settings a user may set in their shell for demo and up.
const DISPATCHER_PASSTHROUGH: &[&str] = &[
    "DRY_RUN",
    "MAX_USERS_PER_EVENT",
    "ACTION_SEVERITIES",
    "PROTECTED_USERS",
    "PROTECT_ADMINS",
    "OKTA_MAX_CONCURRENCY",
    "CHECK_ACTIONS",
    "QUARANTINE_GROUP_ID",
    "RUST_LOG",
];

/// The whole pipeline on this machine: moto, the compiled functions under a
/// Lambda Runtime API emulator, the SQS event source, and Okta and Slack
/// stand-ins.
#[derive(Debug, Parser)]
#[command(name = "local-pipeline", after_help = ENVIRONMENT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// where the ingest and dispatcher binaries are (default: next to this one, or LAMBDA_BIN_DIR)
    #[arg(long, value_name = "DIR", global = true)]
    bin_dir: Option<PathBuf>,
    /// also print every log line of both functions
    #[arg(long, short, global = true)]
    verbose: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// run the events/ingest-*.json samples through the whole pipeline, then stop
    #[command(after_help = ENVIRONMENT)]
    Demo {
        /// the samples to replay (default: <repo>/events)
        #[arg(long, value_name = "DIR")]
        events: Option<PathBuf>,
    },
    /// start the pipeline and keep it running until Ctrl-C
    #[command(after_help = ENVIRONMENT)]
    Up {
        /// function URL port (default 9000, a free one if taken)
        #[arg(long, value_name = "N")]
        port: Option<u16>,
    },
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Demo { .. } => "demo",
            Command::Up { .. } => "up",
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    shared::aws::install_crypto_provider();
    let outcome = match &cli.command {
        Command::Demo { events } => demo::run(&cli, events.as_deref()).await,
        Command::Up { port } => up::run(&cli, *port).await,
    };
    match outcome {
        Ok(Finish::Done) => ExitCode::SUCCESS,
        Ok(Finish::Interrupted) => {
            eprintln!("local-pipeline: interrupted; everything was stopped");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("\nlocal-pipeline {} failed: {e:#}", cli.command.name());
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

/// The settings every command shares: binaries, Okta sign-in, the API key,
/// the dispatcher's guard rails and what the user's shell passes through.
fn base_options(cli: &Cli, services: Services) -> anyhow::Result<PipelineOptions> {
    let bin_dir = cli.bin_dir.clone().unwrap_or_else(lambda_bin_dir);
    let mut options = PipelineOptions::new(bin_dir);
    options.services = services;
    options.okta_auth = OktaAuth::from_env()?;
    options.echo_logs = cli.verbose;
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
    // Approve, Dismiss and Unsuspend buttons on the summaries; the demo approver may click them.
    options.approvals = true;
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn options_go_before_or_after_the_command() {
        let cli = Cli::try_parse_from([
            "local-pipeline",
            "demo",
            "--bin-dir",
            "target/release",
            "--events",
            "events",
        ])
        .unwrap();
        assert_eq!(cli.bin_dir, Some(PathBuf::from("target/release")));
        assert!(
            matches!(cli.command, Command::Demo { events: Some(ref dir) } if dir == &PathBuf::from("events"))
        );
        let cli = Cli::try_parse_from(["local-pipeline", "-v", "demo"]).unwrap();
        assert!(cli.verbose);
        let cli =
            Cli::try_parse_from(["local-pipeline", "up", "--verbose", "--port", "9001"]).unwrap();
        assert!(cli.verbose);
        assert!(matches!(cli.command, Command::Up { port: Some(9001) }));
        assert!(Cli::try_parse_from(["local-pipeline"]).is_err());
        assert!(Cli::try_parse_from(["local-pipeline", "up", "--port", "many"]).is_err());
        assert!(
            Cli::try_parse_from(["local-pipeline", "bench"]).is_err(),
            "the pipeline benchmark is with the other benchmarks"
        );
    }
}
