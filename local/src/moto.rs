//! A moto server (SQS and Secrets Manager emulator) on a free loopback port.
//!
//! moto runs in a small Python launcher that binds port 0, prints the port it
//! got, and exits as soon as its standard input closes. The pipe is held by
//! [`MotoServer`], so the server goes away when the handle is dropped *or* when
//! this process dies in any way (panic, Ctrl-C, `kill -9`): no test or local
//! run can leave a moto process behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Python that runs moto in a thread and ends when stdin reaches EOF.
///
/// It also closes a gap between moto and SQS: SQS remembers a FIFO
/// message's de-duplication id for 5 minutes after the send, whether or not
/// the message was deleted since, while moto forgets it on delete, so a
/// webhook redelivered after the first copy was processed would be queued
/// twice.
const LAUNCHER: &str = r#"
import sys, os, logging, threading, time
logging.disable(logging.CRITICAL)
from moto.server import ThreadedMotoServer
from moto.sqs import models as sqs_models

_add_message = sqs_models.Queue.add_message
_dedup_lock = threading.Lock()

def add_message(self, message):
    if self.fifo_queue and message.deduplication_id:
        with _dedup_lock:
            sent = self.__dict__.setdefault("_dedup_sent", {})
            now = time.time()
            for key, at in list(sent.items()):
                if now - at >= 300:
                    del sent[key]
            if message.deduplication_id in sent:
                return
            sent[message.deduplication_id] = now
    _add_message(self, message)

sqs_models.Queue.add_message = add_message
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
os._exit(0)
"#;

/// A running moto server; stopped when dropped.
pub struct MotoServer {
    endpoint: String,
    child: Child,
}

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error(
        "could not start moto with {python}: {source}. Install it with `make deps` (or `pip install 'moto[server]'`) or set MOTO_PYTHON to a Python that has it"
    )]
    Spawn {
        python: String,
        source: std::io::Error,
    },
    #[error(
        "moto did not start with {python} (is `moto[server]` installed there? `make deps` installs it into .venv): {detail}"
    )]
    NotReady { python: String, detail: String },
}

impl MotoServer {
    /// Starts moto with the Python named by `MOTO_PYTHON`, else the project's
    /// `.venv`, else `python3` from `PATH`.
    pub async fn start() -> Result<MotoServer, MotoError> {
        let python = python_with_moto();
        let python_name = python.display().to_string();
        let mut child = Command::new(&python)
            .arg("-c")
            .arg(LAUNCHER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| MotoError::Spawn {
                python: python_name.clone(),
                source,
            })?;

        let stdout = child.stdout.take().expect("stdout is piped");
        let mut first_line = String::new();
        let read = tokio::time::timeout(
            Duration::from_secs(60),
            BufReader::new(stdout).read_line(&mut first_line),
        )
        .await;
        let port = match read {
            Ok(Ok(_)) => first_line.trim().parse::<u16>().ok(),
            _ => None,
        };
        let Some(port) = port else {
            let _ = child.start_kill();
            let detail = match child.wait_with_output().await {
                Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
                Err(e) => e.to_string(),
            };
            return Err(MotoError::NotReady {
                python: python_name,
                detail,
            });
        };
        Ok(MotoServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        })
    }

    /// The URL to use as `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Process id, for diagnostics.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// The Python interpreter to run moto with.
pub fn python_with_moto() -> PathBuf {
    if let Some(python) = std::env::var_os("MOTO_PYTHON") {
        return PathBuf::from(python);
    }
    if let Some(venv_python) = workspace_root().map(|root| root.join(".venv/bin/python"))
        && venv_python.exists()
    {
        return venv_python;
    }
    PathBuf::from("python3")
}

/// The repository root: the nearest ancestor of this crate holding `Cargo.lock`.
pub fn workspace_root() -> Option<PathBuf> {
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists())
        .map(Path::to_path_buf)
}
