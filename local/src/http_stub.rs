//! What the local HTTP stand-ins have in common: serving an axum router on a
//! loopback port until told to stop, the base URL of a bound address, the
//! random identifiers they hand out, and the rule by which injected faults
//! are used up ([`take_faults`]).
//!
//! [`fake_okta`](crate::fake_okta) and [`fake_slack`](crate::fake_slack) each
//! hold a [`ServerGuard`]: the server stops gracefully on
//! [`ServerGuard::shutdown`], or when the last clone of the stand-in is dropped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use rand::Rng;
use rand::distr::Alphanumeric;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::lock;

/// Stops the server (gracefully: idle keep-alive connections close) when the
/// last handle goes away.
pub(crate) struct ServerGuard {
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl ServerGuard {
    /// Stops accepting connections and waits (up to 5 s) for open ones to finish.
    pub(crate) async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let task = lock(&self.task).take();
        if let Some(mut task) = task
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Serves `router` on a tokio task until the guard says stop.
pub(crate) fn serve(listener: TcpListener, router: Router) -> ServerGuard {
    let (stop, mut rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let signal = async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(signal)
            .await
        {
            tracing::warn!(error = %e, "stand-in server stopped with an error");
        }
    });
    ServerGuard {
        stop,
        task: Mutex::new(Some(task)),
    }
}

/// `http://host:port` for a bound address; an unspecified host becomes 127.0.0.1.
pub(crate) fn base_url_for(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// `len` random ASCII letters and digits (Okta's ids, request ids and nonces).
pub(crate) fn random_string(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// `bytes` random bytes as lower-case hex (X-Ray trace ids, log stream names).
pub(crate) fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// A fault a test injects into a stand-in: a replacement answer or an extra
/// delay, for the next `times` matching requests (`None`: forever).
pub(crate) trait InjectedFault {
    type Kind: Clone;
    fn kind(&self) -> &Self::Kind;
    /// `Some` for a delay: delays add up instead of replacing the answer.
    fn delay(&self) -> Option<Duration>;
    fn times(&mut self) -> &mut Option<u32>;
}

/// Uses up the faults that `applies` to a request: every matching delay adds
/// up into `delay`, the first matching replacement wins, and each fault used
/// counts down its `times` (and goes when it reaches zero).
pub(crate) fn take_faults<F: InjectedFault>(
    faults: &mut Vec<F>,
    applies: impl Fn(&F) -> bool,
    delay: &mut Duration,
) -> Option<F::Kind> {
    let mut replacement = None;
    let mut i = 0;
    while i < faults.len() {
        let f = &faults[i];
        let extra = f.delay();
        if !applies(f) || (extra.is_none() && replacement.is_some()) {
            i += 1;
            continue;
        }
        match extra {
            Some(d) => *delay += d,
            None => replacement = Some(f.kind().clone()),
        }
        match faults[i].times() {
            Some(n) if *n <= 1 => {
                faults.remove(i);
                continue;
            }
            Some(n) => *n -= 1,
            None => {}
        }
        i += 1;
    }
    replacement
}
