//! A Lambda Runtime API emulator that runs the compiled function binaries.
//!
//! Each function gets `instances` execution environments, like Lambda scaling
//! out. An environment is a child process (the real `target/<profile>/ingest`
//! or `dispatcher` binary) with its own Runtime API endpoint on a loopback
//! port, which it finds in `AWS_LAMBDA_RUNTIME_API` exactly as on Lambda. The
//! endpoint implements what `lambda_runtime` uses:
//!
//! - `GET /2018-06-01/runtime/invocation/next`: a long poll that hands out the
//!   next invocation with the `Lambda-Runtime-*` headers;
//! - `POST /2018-06-01/runtime/invocation/{id}/response` and `.../error`;
//! - `POST /2018-06-01/runtime/init/error`.
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
//! [`FunctionUrl`] puts an HTTP front end before a function, converting
//! requests to API Gateway payload format 2.0 events and responses back, as
//! Lambda function URLs do.
//!
//! No child outlives the emulator: each is spawned with `kill_on_drop`, in
//! its own process group (a terminal's Ctrl-C reaches only the parent, which
//! then shuts down in order), with `PR_SET_PDEATHSIG` on Linux (killed if the
//! spawning runtime thread dies, e.g. the test process is killed), and
//! [`RuntimeEmulator`]'s `Drop` kills every child it still knows of.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{Notify, Semaphore, broadcast, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

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

/// Runs functions as child processes behind emulated Runtime API endpoints.
pub struct RuntimeEmulator {
    logs: broadcast::Sender<LogLine>,
    echo: Arc<AtomicBool>,
    pids: Arc<Mutex<HashSet<u32>>>,
    functions: Mutex<Vec<RunningFunction>>,
}

struct RunningFunction {
    inner: Arc<FunctionInner>,
    /// Runtime API servers: they never end by themselves.
    servers: Vec<JoinHandle<()>>,
    /// One per instance: ends after killing and reaping its child.
    supervisors: Vec<JoinHandle<()>>,
}

impl Default for RuntimeEmulator {
    fn default() -> Self {
        Self::new()
    }
}

impl RuntimeEmulator {
    pub fn new() -> Self {
        // Large enough that a test reading every line of a 200-event burst does not lag.
        let (logs, _) = broadcast::channel(65_536);
        RuntimeEmulator {
            logs,
            echo: Arc::new(AtomicBool::new(false)),
            pids: Arc::new(Mutex::new(HashSet::new())),
            functions: Mutex::new(Vec::new()),
        }
    }

    /// Every log line of every function from now on.
    pub fn subscribe_logs(&self) -> broadcast::Receiver<LogLine> {
        self.logs.subscribe()
    }

    /// The sender side, to subscribe later or publish lines of one's own.
    pub fn log_sender(&self) -> broadcast::Sender<LogLine> {
        self.logs.clone()
    }

    /// Also print every line on stderr as `[function#instance] line`.
    pub fn set_echo(&self, echo: bool) {
        self.echo.store(echo, Ordering::Relaxed);
    }

    /// Starts the function's instances and returns a handle to invoke it.
    /// Instances start in the background: see [`Invoker::wait_ready`].
    pub async fn start_function(&self, spec: FunctionSpec) -> anyhow::Result<Invoker> {
        if spec.instances == 0 {
            bail!("function {} needs at least one instance", spec.name);
        }
        if !spec.binary.is_file() {
            bail!(
                "function {}: no binary at {}",
                spec.name,
                spec.binary.display()
            );
        }
        let mut slots = Vec::with_capacity(spec.instances);
        let mut listeners = Vec::with_capacity(spec.instances);
        for index in 0..spec.instances {
            // One endpoint per environment, as on Lambda: it tells which
            // instance polled, so a crash fails exactly its invocation.
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .context("binding a Runtime API port")?;
            let addr = listener.local_addr()?;
            slots.push(Arc::new(Slot {
                index,
                addr,
                state: Mutex::new(SlotState::default()),
                changed: Notify::new(),
            }));
            listeners.push(listener);
        }
        let (shutdown, _) = watch::channel(false);
        let inner = Arc::new(FunctionInner {
            name: Arc::from(spec.name.as_str()),
            arn: spec.arn(),
            spec,
            queue: Mutex::new(VecDeque::new()),
            available: Semaphore::new(0),
            slots,
            logs: self.logs.clone(),
            echo: self.echo.clone(),
            pids: self.pids.clone(),
            shutdown,
            stats: Stats::default(),
        });
        let mut servers = Vec::new();
        let mut supervisors = Vec::new();
        for (slot, listener) in inner.slots.iter().zip(listeners) {
            let ctx = SlotCtx {
                inner: inner.clone(),
                slot: slot.clone(),
            };
            let app = Router::new()
                .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
                .route(
                    "/2018-06-01/runtime/invocation/{id}/response",
                    post(invocation_response),
                )
                .route(
                    "/2018-06-01/runtime/invocation/{id}/error",
                    post(invocation_error),
                )
                .route("/2018-06-01/runtime/init/error", post(init_error))
                .with_state(ctx);
            servers.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }));
            supervisors.push(tokio::spawn(supervise(inner.clone(), slot.clone())));
        }
        lock(&self.functions).push(RunningFunction {
            inner: inner.clone(),
            servers,
            supervisors,
        });
        Ok(Invoker { inner })
    }

    /// The handle of a function started earlier.
    pub fn invoker(&self, name: &str) -> Option<Invoker> {
        lock(&self.functions)
            .iter()
            .find(|f| &*f.inner.name == name)
            .map(|f| Invoker {
                inner: f.inner.clone(),
            })
    }

    /// Stops every function: pending and in-flight invocations fail, children
    /// are killed and reaped (bounded wait).
    pub async fn shutdown(&self) {
        let functions: Vec<RunningFunction> = std::mem::take(&mut *lock(&self.functions));
        for f in &functions {
            f.inner.stop();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for f in functions {
            for server in f.servers {
                server.abort();
            }
            // Supervisors kill and reap their child on shutdown (bounded).
            for task in f.supervisors {
                let abort = task.abort_handle();
                if tokio::time::timeout_at(deadline, task).await.is_err() {
                    abort.abort();
                }
            }
        }
        self.kill_all();
    }

    /// Process ids of the running instances (diagnostics, leak checks).
    pub fn pids(&self) -> Vec<u32> {
        lock(&self.pids).iter().copied().collect()
    }

    fn kill_all(&self) {
        for pid in lock(&self.pids).iter() {
            kill_pid(*pid);
        }
    }
}

impl Drop for RuntimeEmulator {
    fn drop(&mut self) {
        let functions = std::mem::take(&mut *lock(&self.functions));
        for f in functions {
            f.inner.stop();
            for task in f.servers.into_iter().chain(f.supervisors) {
                task.abort();
            }
        }
        // Aborted tasks drop their `Child` (kill_on_drop) only when next
        // polled; kill now so nothing survives even if the runtime is gone.
        self.kill_all();
    }
}

fn kill_pid(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: plain syscall; the pid is one of our unreaped children.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// A cheap, cloneable handle that invokes one function.
#[derive(Clone)]
pub struct Invoker {
    inner: Arc<FunctionInner>,
}

/// Counters, for reports and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FunctionStats {
    pub invocations: u64,
    pub errors: u64,
    pub crashes: u64,
    pub timeouts: u64,
    pub restarts: u64,
}

impl Invoker {
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn arn(&self) -> &str {
        &self.inner.arn
    }

    pub fn spec(&self) -> &FunctionSpec {
        &self.inner.spec
    }

    pub fn stats(&self) -> FunctionStats {
        self.inner.stats.snapshot()
    }

    /// Invokes the function synchronously (`RequestResponse`). `Err` means the
    /// emulator could not run it at all (stopped, nobody picked it up in time);
    /// whatever the function did is in the [`InvokeResult`].
    pub async fn invoke(&self, payload: &Value) -> anyhow::Result<InvokeResult> {
        self.invoke_raw(serde_json::to_vec(payload)?).await
    }

    /// As [`invoke`](Self::invoke), with the event already serialised.
    pub async fn invoke_raw(&self, payload: Vec<u8>) -> anyhow::Result<InvokeResult> {
        let inner = &self.inner;
        if *inner.shutdown.borrow() {
            bail!("function {} is stopped", inner.name);
        }
        if payload.len() > MAX_PAYLOAD_BYTES {
            bail!(
                "the request payload ({} bytes) exceeds Lambda's {MAX_PAYLOAD_BYTES} bytes",
                payload.len()
            );
        }
        let (reply, answer) = oneshot::channel();
        lock(&inner.queue).push_back(Pending {
            request_id: new_uuid(),
            payload: Bytes::from(payload),
            reply,
        });
        inner.available.add_permits(1);
        inner.stats.invocations.fetch_add(1, Ordering::Relaxed);
        // Bounded even if every instance is wedged: queueing, the timeout
        // itself, and a restart's worth of slack.
        let limit = inner.spec.max_queue_wait + inner.spec.timeout + Duration::from_secs(5);
        match tokio::time::timeout(limit, answer).await {
            Ok(Ok(result)) => {
                inner.stats.record(&result);
                Ok(result)
            }
            Ok(Err(_)) => bail!("function {} stopped before answering", inner.name),
            Err(_) => bail!(
                "no instance of {} answered within {limit:?}{}",
                inner.name,
                inner
                    .last_problem()
                    .map(|p| format!(" (last problem: {p})"))
                    .unwrap_or_default()
            ),
        }
    }

    /// Waits until every instance has polled for work once (initialised),
    /// or fails with what the instances said.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            let ready = self
                .inner
                .slots
                .iter()
                .filter(|s| lock(&s.state).ever_ready)
                .count();
            if ready == self.inner.slots.len() {
                return Ok(());
            }
            // Every instance that is not up has failed to start three times
            // in a row: waiting longer will not help.
            let hopeless = self.inner.slots.iter().all(|s| {
                let st = lock(&s.state);
                st.ever_ready || st.init_failures >= 3
            });
            if hopeless || Instant::now() >= deadline {
                bail!(
                    "{}: {ready} of {} instances ready after {:?}{}",
                    self.inner.name,
                    self.inner.slots.len(),
                    started.elapsed(),
                    self.inner
                        .last_problem()
                        .map(|p| format!("; last problem: {p}"))
                        .unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Each process's cold start so far: from spawn to its first poll for
    /// work (configuration read, clients built, ready for an event).
    pub fn init_durations(&self) -> Vec<Duration> {
        self.inner
            .slots
            .iter()
            .flat_map(|s| lock(&s.state).init_durations.clone())
            .collect()
    }

    /// The Runtime API endpoints (`host:port`), one per instance.
    pub fn runtime_api_addrs(&self) -> Vec<SocketAddr> {
        self.inner.slots.iter().map(|s| s.addr).collect()
    }
}

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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not wedge the emulator: the data stays usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn next_invocation(State(ctx): State<SlotCtx>) -> Response {
    let SlotCtx { inner, slot } = ctx;
    let my_generation = {
        let mut st = lock(&slot.state);
        // Polling again without answering abandons the previous invocation.
        if let Some(previous) = st.in_flight.take() {
            let _ = previous.reply.send(InvokeResult::Error {
                error_type: "Runtime.NoResponse".into(),
                error_message: format!(
                    "RequestId: {} the runtime asked for the next event without answering",
                    previous.request_id
                ),
            });
        }
        if st.polled_generation != Some(st.generation)
            && let Some(spawned) = st.spawned_at
        {
            st.init_durations.push(spawned.elapsed());
        }
        st.polled_generation = Some(st.generation);
        st.ever_ready = true;
        st.generation
    };
    slot.changed.notify_one();
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        let permit = tokio::select! {
            permit = inner.available.acquire() => match permit {
                Ok(permit) => permit,
                Err(_) => return gone(),
            },
            _ = stopped(&mut shutdown) => return gone(),
        };
        permit.forget();
        let mut st = lock(&slot.state);
        if st.generation != my_generation {
            // This poll outlived its process; the work stays queued.
            inner.available.add_permits(1);
            return gone();
        }
        let Some(pending) = lock(&inner.queue).pop_front() else {
            continue;
        };
        if pending.reply.is_closed() {
            continue; // the caller gave up waiting
        }
        let timeout = inner.spec.timeout;
        let deadline_ms = epoch_millis() + timeout.as_millis();
        st.in_flight = Some(InFlight {
            request_id: pending.request_id.clone(),
            reply: pending.reply,
            deadline: Instant::now() + timeout,
        });
        drop(st);
        slot.changed.notify_one();
        let mut response = Response::new(Body::from(pending.payload));
        let headers = response.headers_mut();
        insert_header(
            headers,
            "lambda-runtime-aws-request-id",
            &pending.request_id,
        );
        insert_header(
            headers,
            "lambda-runtime-deadline-ms",
            &deadline_ms.to_string(),
        );
        insert_header(headers, "lambda-runtime-invoked-function-arn", &inner.arn);
        insert_header(headers, "lambda-runtime-trace-id", &trace_id());
        insert_header(headers, "content-type", "application/json");
        return response;
    }
}

fn gone() -> Response {
    (StatusCode::GONE, axum::Json(json!({"errorType": "Runtime.Shutdown", "errorMessage": "the environment is shutting down"})))
        .into_response()
}

fn insert_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// Takes the in-flight invocation if `id` names it.
fn take_in_flight(slot: &Slot, id: &str) -> Option<InFlight> {
    let mut st = lock(&slot.state);
    if st.in_flight.as_ref().is_some_and(|f| f.request_id == id) {
        st.in_flight.take()
    } else {
        None
    }
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

fn invalid_request_id() -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"errorType": "InvalidRequestID", "errorMessage": "Invalid request ID"})),
    )
        .into_response()
}

async fn invocation_response(
    State(ctx): State<SlotCtx>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let body = to_bytes(body, MAX_PAYLOAD_BYTES).await;
    let Some(in_flight) = take_in_flight(&ctx.slot, &id) else {
        return invalid_request_id();
    };
    ctx.slot.changed.notify_one();
    let (result, status) = match body {
        Err(_) => (
            InvokeResult::Error {
                error_type: "Function.ResponseSizeTooLarge".into(),
                error_message: format!(
                    "Response payload size exceeded maximum allowed payload size ({MAX_PAYLOAD_BYTES} bytes)."
                ),
            },
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        Ok(bytes) if bytes.is_empty() => {
            (InvokeResult::Response(Value::Null), StatusCode::ACCEPTED)
        }
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(value) => (InvokeResult::Response(value), StatusCode::ACCEPTED),
            Err(e) => (
                InvokeResult::Error {
                    error_type: "Runtime.InvalidResponse".into(),
                    error_message: format!("the function's response is not JSON: {e}"),
                },
                StatusCode::ACCEPTED,
            ),
        },
    };
    let _ = in_flight.reply.send(result);
    if status == StatusCode::ACCEPTED {
        accepted()
    } else {
        (status, "response too large").into_response()
    }
}

/// Reads `{"errorType", "errorMessage"}`, falling back to the error-type header.
fn diagnostic(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error_type = parsed
        .get("errorType")
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| {
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        })
        .unwrap_or_else(|| "Unhandled".to_string());
    let error_message = parsed
        .get("errorMessage")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    (error_type, error_message)
}

async fn invocation_error(
    State(ctx): State<SlotCtx>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = to_bytes(body, MAX_PAYLOAD_BYTES).await.unwrap_or_default();
    let Some(in_flight) = take_in_flight(&ctx.slot, &id) else {
        return invalid_request_id();
    };
    ctx.slot.changed.notify_one();
    let (error_type, error_message) = diagnostic(&headers, &body);
    let _ = in_flight.reply.send(InvokeResult::Error {
        error_type,
        error_message,
    });
    accepted()
}

async fn init_error(State(ctx): State<SlotCtx>, headers: HeaderMap, body: Body) -> Response {
    let body = to_bytes(body, MAX_PAYLOAD_BYTES).await.unwrap_or_default();
    let (error_type, error_message) = diagnostic(&headers, &body);
    let text = format!("{error_type}: {error_message}");
    {
        let mut st = lock(&ctx.slot.state);
        st.init_error = Some(text.clone());
        // Lambda discards an environment whose init failed.
        st.kill_requested = true;
    }
    ctx.inner.emit(
        ctx.slot.index,
        LogSource::Emulator,
        format!("init error: {text}"),
    );
    ctx.slot.changed.notify_one();
    accepted()
}

/// A child process, registered for the emulator's last-resort kill while alive.
struct Instance {
    child: Child,
    pid: Option<u32>,
    pids: Arc<Mutex<HashSet<u32>>>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        // Unregister before `child` drops (kill_on_drop) and can be reaped,
        // so the emulator never signals a recycled pid.
        if let Some(pid) = self.pid {
            lock(&self.pids).remove(&pid);
        }
    }
}

impl Instance {
    async fn kill_and_reap(&mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

fn spawn_instance(inner: &Arc<FunctionInner>, slot: &Slot) -> std::io::Result<Instance> {
    let spec = &inner.spec;
    let mut cmd = Command::new(&spec.binary);
    // A clean environment, as on Lambda: nothing from the caller's shell
    // (profiles, tokens, RUST_LOG) leaks into the function.
    cmd.env_clear();
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let lambda_env = [
        ("PATH", path),
        ("LANG", "en_US.UTF-8".into()),
        ("TZ", ":UTC".into()),
        ("AWS_LAMBDA_RUNTIME_API", slot.addr.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", spec.name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", spec.name),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", log_stream_name()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".into()),
        ("AWS_REGION", spec.region.clone()),
        ("AWS_DEFAULT_REGION", spec.region.clone()),
        ("_HANDLER", "bootstrap".into()),
    ];
    for (key, value) in lambda_env {
        cmd.env(key, value);
    }
    for (key, value) in &spec.env {
        cmd.env(key, value);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Own process group: Ctrl-C in a terminal reaches only us, and we stop
    // the children in order instead of watching them "crash".
    cmd.process_group(0);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let pid = child.id();
    if let Some(pid) = pid {
        lock(&inner.pids).insert(pid);
    }
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(pump(stdout, inner.clone(), slot.index, LogSource::Stdout));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(pump(stderr, inner.clone(), slot.index, LogSource::Stderr));
    }
    Ok(Instance {
        child,
        pid,
        pids: inner.pids.clone(),
    })
}

/// Publishes a child's output line by line until it closes.
async fn pump(
    stream: impl AsyncRead + Unpin,
    inner: Arc<FunctionInner>,
    index: usize,
    source: LogSource,
) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf)
            .trim_end_matches(['\n', '\r'])
            .to_string();
        if let Some(slot) = inner.slots.get(index) {
            let mut st = lock(&slot.state);
            if source == LogSource::Stderr {
                if st.stderr_tail.len() == STDERR_TAIL {
                    st.stderr_tail.pop_front();
                }
                st.stderr_tail.push_back(line.clone());
            }
            if st.output_tail.len() == STDERR_TAIL {
                st.output_tail.pop_front();
            }
            st.output_tail.push_back(line.clone());
        }
        inner.emit(index, source, line);
    }
}

/// Resolves once the function is stopping (holding no borrow of the flag,
/// so it can sit in `select!` next to `.await`s).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopped| *stopped).await;
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Keeps one execution environment alive: spawns it, enforces the timeout,
/// fails its invocation if it dies, and restarts it (with backoff when it
/// cannot even initialise).
async fn supervise(inner: Arc<FunctionInner>, slot: Arc<Slot>) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if !first {
            inner.stats.restarts.fetch_add(1, Ordering::Relaxed);
        }
        first = false;
        let generation = lock(&slot.state).generation;
        let spawned_at = Instant::now();
        let mut instance = match spawn_instance(&inner, &slot) {
            Ok(instance) => {
                lock(&slot.state).spawned_at = Some(spawned_at);
                instance
            }
            Err(e) => {
                let text = format!("could not start {}: {e}", inner.spec.binary.display());
                {
                    let mut st = lock(&slot.state);
                    st.init_error = Some(text.clone());
                    st.init_failures += 1;
                }
                inner.emit(slot.index, LogSource::Emulator, text.clone());
                inner.fail_one_pending(InvokeResult::Error {
                    error_type: "Runtime.InvalidEntrypoint".into(),
                    error_message: text,
                });
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped(&mut shutdown) => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let exit = loop {
            let (deadline, kill_requested) = {
                let st = lock(&slot.state);
                (st.in_flight.as_ref().map(|f| f.deadline), st.kill_requested)
            };
            if kill_requested {
                lock(&slot.state).kill_requested = false;
                instance.kill_and_reap().await;
                break "killed after an init error".to_string();
            }
            tokio::select! {
                status = instance.child.wait() => {
                    break match status {
                        Ok(status) => status.to_string(),
                        Err(e) => format!("wait failed: {e}"),
                    };
                }
                _ = sleep_until_opt(deadline) => {
                    let timed_out = {
                        let mut st = lock(&slot.state);
                        if st.in_flight.as_ref().is_some_and(|f| f.deadline <= Instant::now()) { st.in_flight.take() } else { None }
                    };
                    if let Some(in_flight) = timed_out {
                        let timeout = inner.spec.timeout;
                        let _ = in_flight.reply.send(InvokeResult::TimedOut { timeout });
                        inner.emit(slot.index, LogSource::Emulator, format!(
                            "RequestId: {} Task timed out after {:.2} seconds; restarting the instance",
                            in_flight.request_id, timeout.as_secs_f64()
                        ));
                        instance.kill_and_reap().await;
                        break "killed after a timeout".to_string();
                    }
                }
                _ = slot.changed.notified() => {}
                _ = stopped(&mut shutdown) => {
                    instance.kill_and_reap().await;
                    let in_flight = lock(&slot.state).in_flight.take();
                    drop(in_flight); // its caller sees "stopped"
                    return;
                }
            }
        };
        // The process is gone: whatever it held fails, as on Lambda.
        let (crashed, initialised, stderr_tail) = {
            let mut st = lock(&slot.state);
            st.generation += 1;
            let initialised = st.polled_generation == Some(generation);
            st.init_failures = if initialised { 0 } else { st.init_failures + 1 };
            (
                st.in_flight.take(),
                initialised,
                st.stderr_tail.iter().cloned().collect::<Vec<_>>(),
            )
        };
        drop(instance);
        if let Some(in_flight) = crashed {
            let mut message = format!(
                "RequestId: {} Error: Runtime exited with error: {exit}",
                in_flight.request_id
            );
            if !stderr_tail.is_empty() {
                message.push('\n');
                message.push_str(&stderr_tail.join("\n"));
            }
            let _ = in_flight.reply.send(InvokeResult::Crashed {
                error_message: message,
            });
        }
        if *shutdown.borrow() {
            return;
        }
        inner.emit(
            slot.index,
            LogSource::Emulator,
            format!("instance exited ({exit}); restarting"),
        );
        if initialised {
            backoff = Duration::from_millis(100);
        } else {
            // Init failed: the invocation that would have waited for this cold start fails.
            let problem = {
                let st = lock(&slot.state);
                st.init_error.clone().or_else(|| st.recent_output())
            };
            inner.fail_one_pending(InvokeResult::Error {
                error_type: "Runtime.InitError".into(),
                error_message: match problem {
                    Some(p) => format!("init failed ({exit}): {p}"),
                    None => format!(
                        "init failed: the runtime exited ({exit}) before polling for an event"
                    ),
                },
            });
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stopped(&mut shutdown) => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

fn epoch_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// A random (version 4) UUID, as Lambda request ids are.
pub fn new_uuid() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
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

fn log_stream_name() -> String {
    let date = time::OffsetDateTime::now_utc().date();
    format!(
        "{:04}/{:02}/{:02}/[$LATEST]{}",
        date.year(),
        u8::from(date.month()),
        date.day(),
        random_hex(16)
    )
}

// ---------------------------------------------------------------------------
// Function URL front end
// ---------------------------------------------------------------------------

/// An HTTP endpoint in front of a function, behaving like a Lambda function
/// URL (auth type NONE, buffered invoke mode, payload format 2.0).
pub struct FunctionUrl {
    addr: SocketAddr,
    url_id: String,
    task: JoinHandle<()>,
}

#[derive(Clone)]
struct UrlCtx {
    invoker: Invoker,
    url_id: Arc<str>,
    region: Arc<str>,
}

impl FunctionUrl {
    /// Serves on `bind` (port 0 for a free one).
    pub async fn start(invoker: Invoker, bind: SocketAddr) -> anyhow::Result<FunctionUrl> {
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("binding the function URL to {bind}"))?;
        let addr = listener.local_addr()?;
        // Real url ids are 32 lower-case alphanumerics.
        let url_id = random_hex(16);
        let ctx = UrlCtx {
            region: Arc::from(invoker.spec().region.as_str()),
            invoker,
            url_id: Arc::from(url_id.as_str()),
        };
        let app = Router::new().fallback(function_url_request).with_state(ctx);
        let task = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        Ok(FunctionUrl { addr, url_id, task })
    }

    /// `http://127.0.0.1:<port>/`
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The made-up url id (the `<url-id>` in `https://<url-id>.lambda-url.<region>.on.aws`).
    pub fn url_id(&self) -> &str {
        &self.url_id
    }

    /// Stops accepting requests.
    pub fn shutdown(&self) {
        self.task.abort();
    }
}

impl Drop for FunctionUrl {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn json_response(status: StatusCode, body: Value, request_id: &str) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    insert_header(response.headers_mut(), "x-amzn-requestid", request_id);
    response
}

async fn function_url_request(
    State(ctx): State<UrlCtx>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let request_id = new_uuid();
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"Message": "Request Entity Too Large"}),
            &request_id,
        )
    };
    if declared.is_some_and(|n| n > MAX_PAYLOAD_BYTES) {
        return too_large();
    }
    let Ok(body) = to_bytes(body, MAX_PAYLOAD_BYTES).await else {
        return too_large();
    };
    let now = time::OffsetDateTime::now_utc();
    let request_info = HttpRequestInfo {
        method: parts.method.as_str(),
        uri: &parts.uri,
        version: parts.version,
        headers: &parts.headers,
        body: &body,
        source_ip: peer.ip().to_string(),
        source_port: peer.port(),
        url_id: &ctx.url_id,
        region: &ctx.region,
        request_id: &request_id,
        now,
    };
    let event = http_event(&request_info);
    match ctx.invoker.invoke(&event).await {
        Ok(InvokeResult::Response(value)) => {
            let mut response = http_response_from(value).unwrap_or_else(|_| {
                json_response(
                    StatusCode::BAD_GATEWAY,
                    json!({"Message": null}),
                    &request_id,
                )
            });
            insert_header(response.headers_mut(), "x-amzn-requestid", &request_id);
            response
        }
        // Function URLs answer 502 for a function error, crash or timeout.
        Ok(_) => json_response(
            StatusCode::BAD_GATEWAY,
            json!({"Message": "Internal Server Error"}),
            &request_id,
        ),
        Err(e) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"Message": e.to_string()}),
            &request_id,
        ),
    }
}

/// What [`http_event`] needs to know about an HTTP request.
pub struct HttpRequestInfo<'a> {
    pub method: &'a str,
    pub uri: &'a http::Uri,
    pub version: http::Version,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: String,
    pub source_port: u16,
    pub url_id: &'a str,
    pub region: &'a str,
    pub request_id: &'a str,
    pub now: time::OffsetDateTime,
}

/// Whether function URLs pass a body of this content type as text; anything
/// else (or no content type at all) arrives base64-encoded.
pub fn is_text_content_type(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime.starts_with("text/")
        || mime.ends_with("+json")
        || mime.ends_with("+xml")
        || matches!(
            mime.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-javascript"
                | "application/yaml"
        )
}

/// Converts an HTTP request to the payload format 2.0 event a function URL sends.
pub fn http_event(req: &HttpRequestInfo<'_>) -> Value {
    // Header names are already lower case in `http`; repeated headers join with ",".
    let mut headers: Map<String, Value> = Map::new();
    let mut cookies: Vec<Value> = Vec::new();
    for name in req.headers.keys() {
        let values: Vec<String> = req
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        if name == header::COOKIE {
            // Cookies travel in their own array, not as a header.
            for value in &values {
                cookies.extend(
                    value
                        .split(';')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(|c| Value::from(c.to_string())),
                );
            }
            continue;
        }
        headers.insert(name.as_str().to_string(), Value::from(values.join(",")));
    }
    let trace = trace_id();
    for (name, value) in [
        ("x-forwarded-for", req.source_ip.clone()),
        ("x-forwarded-proto", "http".to_string()),
        (
            "x-forwarded-port",
            req.uri.port_u16().unwrap_or(req.source_port).to_string(),
        ),
        (
            "x-amzn-trace-id",
            trace.split(';').next().unwrap_or_default().to_string(),
        ),
    ] {
        headers
            .entry(name.to_string())
            .or_insert(Value::from(value));
    }

    let raw_query = req.uri.query().unwrap_or_default();
    let mut query: Vec<(String, Vec<String>)> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        match query.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value.into_owned()),
            None => query.push((key.into_owned(), vec![value.into_owned()])),
        }
    }

    let content_type = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let is_text = is_text_content_type(content_type) && std::str::from_utf8(req.body).is_ok();
    let user_agent = req
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let domain = format!("{}.lambda-url.{}.on.aws", req.url_id, req.region);
    let time_format = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    let protocol = match req.version {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    };

    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": req.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": req.url_id,
            "domainName": domain,
            "domainPrefix": req.url_id,
            "http": {
                "method": req.method,
                "path": req.uri.path(),
                "protocol": protocol,
                "sourceIp": req.source_ip,
                "userAgent": user_agent,
            },
            "requestId": req.request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": req.now.format(&time_format).unwrap_or_default(),
            "timeEpoch": req.now.unix_timestamp_nanos() / 1_000_000,
        },
        "isBase64Encoded": false,
    });
    if let Some(object) = event.as_object_mut() {
        if !cookies.is_empty() {
            object.insert("cookies".into(), Value::Array(cookies));
        }
        if !query.is_empty() {
            let params: Map<String, Value> = query
                .into_iter()
                .map(|(k, values)| (k, Value::from(values.join(","))))
                .collect();
            object.insert("queryStringParameters".into(), Value::Object(params));
        }
        if !req.body.is_empty() {
            if is_text {
                object.insert(
                    "body".into(),
                    Value::from(String::from_utf8_lossy(req.body).into_owned()),
                );
            } else {
                object.insert("body".into(), Value::from(BASE64.encode(req.body)));
                object.insert("isBase64Encoded".into(), Value::Bool(true));
            }
        }
    }
    event
}

/// Why a function's answer could not be turned into an HTTP response.
#[derive(Debug, thiserror::Error)]
#[error("invalid function URL response: {0}")]
pub struct BadResponse(String);

/// Converts a function's answer to the HTTP response a function URL sends.
/// An object with `statusCode` is a structured response; anything else is
/// returned as a 200 JSON body.
pub fn http_response_from(value: Value) -> Result<Response, BadResponse> {
    let object = match value {
        Value::Object(map) if map.contains_key("statusCode") => map,
        Value::String(text) => {
            return Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response());
        }
        other => {
            return Ok((
                [(header::CONTENT_TYPE, "application/json")],
                other.to_string(),
            )
                .into_response());
        }
    };
    let status = object
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|code| u16::try_from(code).ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| BadResponse("statusCode is not an HTTP status".into()))?;
    let body_text = match object.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let body = if object
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        BASE64
            .decode(body_text.as_bytes())
            .map_err(|e| BadResponse(format!("body is not base64: {e}")))?
    } else {
        body_text.into_bytes()
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let mut set: HashMap<String, ()> = HashMap::new();
    if let Some(Value::Object(map)) = object.get("headers") {
        for (name, value) in map {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::from_str(&text),
            ) {
                set.insert(name.as_str().to_string(), ());
                headers.append(name, value);
            }
        }
    }
    if let Some(Value::Object(map)) = object.get("multiValueHeaders") {
        for (name, values) in map {
            let Ok(name) = HeaderName::try_from(name.as_str()) else {
                continue;
            };
            if set.contains_key(name.as_str()) {
                continue; // already given in `headers`
            }
            for value in values.as_array().into_iter().flatten() {
                if let Some(Ok(value)) = value.as_str().map(HeaderValue::from_str) {
                    headers.append(name.clone(), value);
                }
            }
        }
    }
    if let Some(Value::Array(cookies)) = object.get("cookies") {
        for cookie in cookies.iter().filter_map(Value::as_str) {
            if let Ok(value) = HeaderValue::from_str(cookie) {
                headers.append(header::SET_COOKIE, value);
            }
        }
    }
    if !headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info<'a>(uri: &'a http::Uri, headers: &'a HeaderMap, body: &'a [u8]) -> HttpRequestInfo<'a> {
        HttpRequestInfo {
            method: "POST",
            uri,
            version: http::Version::HTTP_11,
            headers,
            body,
            source_ip: "127.0.0.1".into(),
            source_port: 40000,
            url_id: "abc",
            region: "us-east-1",
            request_id: "req-1",
            now: time::OffsetDateTime::from_unix_timestamp(1_583_348_638).unwrap(),
        }
    }

    #[test]
    fn http_event_has_the_function_url_shape() {
        let uri: http::Uri = "/hook/x?a=1&a=2&b=%20c".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.append("x-multi", HeaderValue::from_static("one"));
        headers.append("x-multi", HeaderValue::from_static("two"));
        headers.insert("cookie", HeaderValue::from_static("a=1; b=2"));
        headers.insert("user-agent", HeaderValue::from_static("curl/8"));
        let event = http_event(&info(&uri, &headers, br#"{"k":1}"#));
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["rawPath"], "/hook/x");
        assert_eq!(event["rawQueryString"], "a=1&a=2&b=%20c");
        assert_eq!(
            event["queryStringParameters"],
            json!({"a": "1,2", "b": " c"})
        );
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(event["headers"]["x-multi"], "one,two");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["body"], r#"{"k":1}"#);
        assert_eq!(event["isBase64Encoded"], false);
        let ctx = &event["requestContext"];
        assert_eq!(ctx["accountId"], "anonymous");
        assert_eq!(ctx["http"]["method"], "POST");
        assert_eq!(ctx["http"]["userAgent"], "curl/8");
        assert_eq!(ctx["time"], "04/Mar/2020:19:03:58 +0000");
        assert_eq!(ctx["timeEpoch"], 1_583_348_638_000i64);
        assert_eq!(ctx["stage"], "$default");
    }

    #[test]
    fn binary_or_untyped_bodies_are_base64() {
        let uri: http::Uri = "/".parse().unwrap();
        let headers = HeaderMap::new();
        let event = http_event(&info(&uri, &headers, b"\x00\x01"));
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], "AAE=");
        assert!(event.get("queryStringParameters").is_none());
        let event = http_event(&info(&uri, &headers, b""));
        assert!(event.get("body").is_none());
        assert!(is_text_content_type(Some("text/plain; charset=utf-8")));
        assert!(is_text_content_type(Some("application/vnd.api+json")));
        assert!(!is_text_content_type(Some("application/octet-stream")));
    }

    #[test]
    fn responses_convert_back_to_http() {
        let response = http_response_from(json!({
            "statusCode": 401,
            "headers": {"content-type": "application/json", "x-a": "1"},
            "multiValueHeaders": {"x-b": ["1", "2"], "x-a": ["ignored"]},
            "cookies": ["s=1"],
            "body": "eyJlcnJvciI6Im5vIn0=",
            "isBase64Encoded": true
        }))
        .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers().get_all("x-a").iter().count(), 1);
        assert_eq!(response.headers().get_all("x-b").iter().count(), 2);
        assert_eq!(response.headers()["set-cookie"], "s=1");
        assert!(http_response_from(json!({"statusCode": "nope"})).is_err());
        assert_eq!(
            http_response_from(json!({"plain": true})).unwrap().status(),
            StatusCode::OK
        );
    }

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
        let id = new_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
