//! The functions and their invocations: [`RuntimeEmulator`] starts each
//! function's execution environments, [`Invoker`] queues an invocation until
//! an environment polls for it and waits for its result.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::body::Bytes;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, broadcast, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::supervisor::{kill_pid, supervise};
use super::{
    FunctionInner, FunctionSpec, InvokeResult, LogLine, MAX_PAYLOAD_BYTES, Pending, Slot, SlotCtx,
    SlotState, Stats, endpoint, lambda_request_id,
};
use crate::lock;

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
            let app = endpoint::router(ctx);
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
            request_id: lambda_request_id(),
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
