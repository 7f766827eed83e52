//! A Lambda Runtime API emulator that runs the compiled function binaries.
//!
//! Each function gets `instances` execution environments, like Lambda scaling
//! out. An environment is a child process (the real `target/<profile>/ingest`
//! or `dispatcher` binary) with its own Runtime API endpoint on a loopback
//! port, which it finds in `AWS_LAMBDA_RUNTIME_API` exactly as on Lambda.
//!
//! Invocations go to whichever environment polls first. An environment that
//! exits mid-invocation fails that invocation (`Runtime.ExitError`) and is
//! restarted; one that overruns the function timeout is killed, its
//! invocation fails with `Sandbox.Timedout`, and it is restarted too. Both
//! are what Lambda does, and both matter to the SQS tests (a crash fails the
//! whole batch).
//!
//! Every line a child writes to stdout or stderr is published as a
//! [`LogLine`] (the functions log one JSON object per line), so the demo can
//! print outcomes and tests can assert on them.
//!
//! One job per file:
//!
//! - `emulator`: [`RuntimeEmulator`] and [`Invoker`], the functions and
//!   their queue of invocations;
//! - `endpoint`: the Runtime API each environment polls;
//! - `supervisor`: the child processes (spawn, output, timeout, crash,
//!   restart, and that none outlives the emulator);
//! - `function_url`: [`FunctionUrl`], an HTTP front end that converts
//!   requests to API Gateway payload format 2.0 events and responses back,
//!   as Lambda function URLs do.
//!
//! Why this and not `cargo lambda watch --only-lambda-apis`: see "Design
//! notes: the local pipeline" in the README.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, Semaphore, broadcast, oneshot, watch};
use tokio::time::Instant;

use crate::http_stub::random_hex;
use crate::lock;

mod emulator;
mod endpoint;
mod function_url;
mod supervisor;

pub use emulator::{FunctionStats, Invoker, RuntimeEmulator};
pub use function_url::{
    BadResponse, FunctionUrl, HttpRequestInfo, http_event, http_response_from, is_text_content_type,
};

/// The account id in the ARNs the emulator makes up.
pub const ACCOUNT_ID: &str = "123456789012";

/// Lambda's limit for a synchronous request or response payload (6 MB).
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

/// How many stderr lines of an instance are kept to explain a crash.
const STDERR_TAIL: usize = 8;

/// How a function runs under the emulator.
#[derive(Clone, Debug)]
pub struct FunctionSpec {
    /// The function name (`AWS_LAMBDA_FUNCTION_NAME`, log prefixes, ARN).
    pub name: String,
    /// The compiled bootstrap binary.
    pub binary: PathBuf,
    /// The function's environment (on top of what Lambda itself sets).
    pub env: Vec<(String, String)>,
    /// Execution environments kept running: the function's concurrency.
    pub instances: usize,
    /// The function timeout.
    pub timeout: Duration,
    pub memory_mb: u32,
    pub region: String,
    /// How long an invocation may wait for a free instance before the caller
    /// gets an error (Lambda would throttle; queueing briefly is kinder to
    /// tests and bursts, and still bounded).
    pub max_queue_wait: Duration,
}

impl FunctionSpec {
    pub fn new(name: &str, binary: impl Into<PathBuf>) -> Self {
        FunctionSpec {
            name: name.to_string(),
            binary: binary.into(),
            env: Vec::new(),
            instances: 1,
            timeout: Duration::from_secs(30),
            memory_mb: 128,
            region: "us-east-1".to_string(),
            max_queue_wait: Duration::from_secs(60),
        }
    }

    pub fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{ACCOUNT_ID}:function:{}",
            self.region, self.name
        )
    }
}

/// What an invocation came to.
#[derive(Clone, Debug, PartialEq)]
pub enum InvokeResult {
    /// The function answered (`/response`): its JSON.
    Response(Value),
    /// The function reported an error (`/error`), or its environment failed
    /// to initialise.
    Error {
        error_type: String,
        error_message: String,
    },
    /// The process exited while the invocation was in flight.
    Crashed { error_message: String },
    /// The function overran its timeout; its instance was killed.
    TimedOut { timeout: Duration },
}

impl InvokeResult {
    pub fn is_success(&self) -> bool {
        matches!(self, InvokeResult::Response(_))
    }

    /// The response JSON, when the function answered.
    pub fn response(&self) -> Option<&Value> {
        match self {
            InvokeResult::Response(value) => Some(value),
            _ => None,
        }
    }

    /// The error type as Lambda names it; `None` for a response.
    pub fn error_type(&self) -> Option<&str> {
        match self {
            InvokeResult::Response(_) => None,
            InvokeResult::Error { error_type, .. } => Some(error_type),
            InvokeResult::Crashed { .. } => Some("Runtime.ExitError"),
            InvokeResult::TimedOut { .. } => Some("Sandbox.Timedout"),
        }
    }

    /// `{"errorType": ..., "errorMessage": ...}` as `Invoke` returns it; `None` for a response.
    pub fn error_payload(&self) -> Option<Value> {
        let message = match self {
            InvokeResult::Response(_) => return None,
            InvokeResult::Error { error_message, .. } => error_message.clone(),
            InvokeResult::Crashed { error_message } => error_message.clone(),
            InvokeResult::TimedOut { timeout } => {
                format!("Task timed out after {:.2} seconds", timeout.as_secs_f64())
            }
        };
        Some(json!({ "errorType": self.error_type(), "errorMessage": message }))
    }
}

/// Where a [`LogLine`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSource {
    Stdout,
    Stderr,
    /// The emulator itself: instance started, crashed, timed out, ...
    Emulator,
}

/// One line written by a function instance (or said by the emulator about it).
#[derive(Clone, Debug)]
pub struct LogLine {
    pub function: Arc<str>,
    pub instance: usize,
    pub source: LogSource,
    pub line: String,
}

impl LogLine {
    /// The line as a JSON object, when it is one (the functions' structured logs).
    pub fn json(&self) -> Option<Map<String, Value>> {
        match serde_json::from_str(&self.line) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// State shared by the emulator, the endpoints and the supervisors
// ---------------------------------------------------------------------------

/// One function: its spec, its queue of invocations, its environments.
struct FunctionInner {
    name: Arc<str>,
    arn: String,
    spec: FunctionSpec,
    /// Invocations not yet picked up; `available` counts them.
    queue: Mutex<VecDeque<Pending>>,
    available: Semaphore,
    slots: Vec<Arc<Slot>>,
    logs: broadcast::Sender<LogLine>,
    echo: Arc<AtomicBool>,
    pids: Arc<Mutex<HashSet<u32>>>,
    shutdown: watch::Sender<bool>,
    stats: Stats,
}

impl FunctionInner {
    fn emit(&self, instance: usize, source: LogSource, line: String) {
        if self.echo.load(Ordering::Relaxed) {
            let tag = if source == LogSource::Emulator {
                "emulator: "
            } else {
                ""
            };
            eprintln!("[{}#{instance}] {tag}{line}", self.name);
        }
        let _ = self.logs.send(LogLine {
            function: self.name.clone(),
            instance,
            source,
            line,
        });
    }

    fn stop(&self) {
        self.shutdown.send_replace(true);
        self.available.close();
        // Dropping the senders fails the waiting callers at once.
        lock(&self.queue).clear();
    }

    /// The most recent init error or stderr line, to explain a failure.
    fn last_problem(&self) -> Option<String> {
        self.slots.iter().find_map(|s| {
            let st = lock(&s.state);
            st.init_error.clone().or_else(|| st.recent_output())
        })
    }

    /// Fails the oldest waiting invocation: its cold start failed.
    fn fail_one_pending(&self, result: InvokeResult) {
        if let Ok(permit) = self.available.try_acquire() {
            permit.forget();
            if let Some(pending) = lock(&self.queue).pop_front() {
                let _ = pending.reply.send(result);
            }
        }
    }
}

#[derive(Default)]
struct Stats {
    invocations: AtomicU64,
    errors: AtomicU64,
    crashes: AtomicU64,
    timeouts: AtomicU64,
    restarts: AtomicU64,
}

impl Stats {
    fn record(&self, result: &InvokeResult) {
        let counter = match result {
            InvokeResult::Response(_) => return,
            InvokeResult::Error { .. } => &self.errors,
            InvokeResult::Crashed { .. } => &self.crashes,
            InvokeResult::TimedOut { .. } => &self.timeouts,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> FunctionStats {
        FunctionStats {
            invocations: self.invocations.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            crashes: self.crashes.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
        }
    }
}

struct Pending {
    request_id: String,
    payload: Bytes,
    reply: oneshot::Sender<InvokeResult>,
}

/// One execution environment.
struct Slot {
    index: usize,
    addr: SocketAddr,
    state: Mutex<SlotState>,
    /// Wakes the supervisor when an invocation starts or ends.
    changed: Notify,
}

#[derive(Default)]
struct SlotState {
    /// Bumped each time the instance's process ends, so a poll left over
    /// from a dead process cannot take work.
    generation: u64,
    /// The generation that has polled `/next` at least once (finished init).
    polled_generation: Option<u64>,
    ever_ready: bool,
    /// When the current process was spawned.
    spawned_at: Option<Instant>,
    /// Spawn to first `/next`, for every process that got that far: the
    /// function's cold start (benchmarks read it).
    init_durations: Vec<Duration>,
    in_flight: Option<InFlight>,
    /// Set by `/init/error`: the supervisor kills and restarts the instance.
    kill_requested: bool,
    init_error: Option<String>,
    /// Consecutive starts that ended before the instance polled for work.
    init_failures: u32,
    stderr_tail: VecDeque<String>,
    /// The last lines on either stream (functions log config errors on stdout).
    output_tail: VecDeque<String>,
}

impl SlotState {
    /// The last few output lines, to explain a failed start.
    fn recent_output(&self) -> Option<String> {
        let skip = self.output_tail.len().saturating_sub(3);
        let lines: Vec<&str> = self
            .output_tail
            .iter()
            .skip(skip)
            .map(String::as_str)
            .collect();
        (!lines.is_empty()).then(|| lines.join(" | "))
    }
}

struct InFlight {
    request_id: String,
    reply: oneshot::Sender<InvokeResult>,
    deadline: Instant,
}

#[derive(Clone)]
struct SlotCtx {
    inner: Arc<FunctionInner>,
    slot: Arc<Slot>,
}

/// Resolves once the function is stopping (holding no borrow of the flag,
/// so it can sit in `select!` next to `.await`s).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopped| *stopped).await;
}

/// A Lambda request id: a random (version 4) UUID.
fn lambda_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn insert_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// An X-Ray trace header: `Root=1-<epoch hex>-<96 bits>;Parent=...;Sampled=0`.
fn trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0;Lineage=1:00000000:0",
        random_hex(12),
        random_hex(8)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_results_report_lambda_error_types() {
        assert_eq!(
            InvokeResult::TimedOut {
                timeout: Duration::from_secs(3)
            }
            .error_payload()
            .unwrap()["errorMessage"],
            "Task timed out after 3.00 seconds"
        );
        assert_eq!(
            InvokeResult::Crashed {
                error_message: "x".into()
            }
            .error_type(),
            Some("Runtime.ExitError")
        );
        assert!(
            InvokeResult::Response(Value::Null)
                .error_payload()
                .is_none()
        );
        let id = lambda_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
