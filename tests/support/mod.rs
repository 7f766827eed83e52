//! Test support shared by the integration and end-to-end tests.
//!
//! - [`moto_endpoint`]: one moto server per test binary, started on first use
//!   and gone when the test process ends;
//! - [`unique`]: names that never collide between tests sharing that server;
//! - [`events`]: the files in `events/`, read and turned into the functions' real event types;
//! - [`logs`]: captures the JSON log lines a piece of code writes, to assert on them;
//! - [`pipeline`]: the whole pipeline with test settings, for the end-to-end tests.

pub mod events;
pub mod logs;
pub mod pipeline;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use local_pipeline::aws_setup::LocalAws;
use local_pipeline::moto::MotoServer;

/// The endpoint of this test binary's moto server. The server runs on a
/// thread of its own that lives as long as the process, so no test's runtime
/// shutting down can take it away; its launcher exits when the process does.
pub fn moto_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                match MotoServer::start().await {
                    Ok(server) => {
                        tx.send(Ok(server.endpoint().to_string())).ok();
                        // Keep the server (and its stdin pipe) for the life of the process.
                        std::future::pending::<()>().await;
                        drop(server);
                    }
                    Err(e) => {
                        tx.send(Err(e.to_string())).ok();
                    }
                }
            });
        });
        match rx.recv() {
            Ok(Ok(endpoint)) => endpoint,
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("the moto thread ended without an answer"),
        }
    })
}

/// Clients for this binary's moto server.
pub async fn local_aws() -> LocalAws {
    LocalAws::connect(moto_endpoint()).await
}

/// A name no other test in this process uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
