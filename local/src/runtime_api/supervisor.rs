//! Supervision of the child processes: one task per execution environment
//! spawns the function binary with Lambda's environment, publishes its output
//! line by line, enforces the function timeout, fails the invocation of a
//! process that dies or overruns, and starts a new process (with backoff
//! when it cannot even initialise).
//!
//! No child outlives the emulator: each is spawned with `kill_on_drop`, in
//! its own process group (a terminal's Ctrl-C reaches only the parent, which
//! then shuts down in order), with `PR_SET_PDEATHSIG` on Linux (killed if the
//! spawning runtime thread dies, e.g. the test process is killed), and the
//! emulator's `Drop` kills every child it still knows of ([`kill_pid`]).

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::{FunctionInner, InvokeResult, LogSource, STDERR_TAIL, Slot, stopped};
use crate::http_stub::random_hex;
use crate::lock;

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

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Keeps one execution environment alive: spawns it, enforces the timeout,
/// fails its invocation if it dies, and restarts it (with backoff when it
/// cannot even initialise).
pub(super) async fn supervise(inner: Arc<FunctionInner>, slot: Arc<Slot>) {
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

pub(super) fn kill_pid(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: plain syscall; the pid is one of our unreaped children.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
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
