//! Captures what the code under test logs, as parsed JSON lines.
//!
//! One global subscriber, `shared::telemetry`'s (the production format),
//! is installed for the whole test binary; its writer appends to the buffer
//! of whichever test is capturing on the current thread. (Per-test scoped
//! subscribers lose events when tests run in parallel: tracing caches each
//! call site's interest globally.) `#[tokio::test]` runs each test on its own
//! current-thread runtime, so everything a test's code logs lands in its buffer.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};

use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Every line, parsed.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"))
            })
            .collect()
    }

    /// Everything logged, as raw text (to check that no secret appears anywhere).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

/// Writes to the current thread's capture, if any.
struct ThreadCapture;

impl Write for ThreadCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CURRENT.with(|current| {
            if let Some(captured) = current.borrow().as_ref() {
                captured.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ThreadCapture {
    type Writer = ThreadCapture;
    fn make_writer(&'a self) -> Self::Writer {
        ThreadCapture
    }
}

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The production subscriber and format, at every level (so tests can
        // show no secret appears at any of them), into the capture.
        let subscriber =
            shared::telemetry::subscriber(shared::telemetry::filter(Some("trace")), ThreadCapture);
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber per binary");
    });
}

/// Runs `f` with what it logs on this thread captured; returns its output and the logs.
pub async fn capture<F: std::future::Future>(f: F) -> (F::Output, Captured) {
    install();
    let captured = Captured::default();
    CURRENT.with(|current| *current.borrow_mut() = Some(captured.clone()));
    let output = f.await;
    CURRENT.with(|current| *current.borrow_mut() = None);
    (output, captured)
}
