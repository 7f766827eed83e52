//! Structured JSON logs.
//!
//! One JSON object per line on stdout, which Lambda's JSON log format keeps
//! as it is. Fields go at the top level of each line (`event_id`, `user`,
//! `outcome`, `okta_request_id`, ...) so CloudWatch Logs Insights can filter
//! on them directly. The level comes from `AWS_LAMBDA_LOG_LEVEL` (set by the
//! template's `LoggingConfig`) or `RUST_LOG`, default `info`.
//!
//! At every level the Lambda runtime's own crates stay at `info`: at
//! `debug`/`trace` they log whole invocation events, which for ingest carry
//! the API key header and full bodies.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Crates that log invocation events (headers, bodies) below `info`.
const QUIET: [&str; 3] = ["lambda_runtime", "lambda_runtime_api_client", "lambda_http"];

/// Installs the JSON subscriber on stdout. Safe to call more than once.
pub fn init() {
    let directives = std::env::var("RUST_LOG").ok().or_else(|| {
        std::env::var("AWS_LAMBDA_LOG_LEVEL")
            .ok()
            .map(|l| l.to_lowercase())
    });
    let _ = tracing::subscriber::set_global_default(subscriber(
        filter(directives.as_deref()),
        std::io::stdout,
    ));
}

/// The level filter for `directives` (`RUST_LOG` syntax), with the runtime's
/// crates held at `info` whatever they say. Invalid directives mean `info`.
pub fn filter(directives: Option<&str>) -> EnvFilter {
    let user: Vec<&str> = directives
        .unwrap_or("info")
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        // A directive of the user's for a quiet crate would win over ours.
        .filter(|d| !QUIET.iter().any(|q| d.starts_with(q)))
        .collect();
    let quiet = QUIET.map(|q| format!("{q}=info")).join(",");
    let joined = format!("{},{quiet}", user.join(","));
    EnvFilter::try_new(joined.trim_start_matches(','))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{quiet}")))
}

/// The production log format, writing to `writer` (stdout in the functions;
/// tests pass a buffer to capture exactly what production prints).
pub fn subscriber<W>(
    filter: EnvFilter,
    writer: W,
) -> tracing_subscriber::FmtSubscriber<
    tracing_subscriber::fmt::format::JsonFields,
    tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Json>,
    EnvFilter,
    W,
>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(directives: Option<&str>) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = subscriber(filter(directives), move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "lambda_runtime", body = "x-api-client-token: SECRET", "event");
            tracing::debug!(target: "lambda_http", "request SECRET");
            tracing::info!(target: "lambda_runtime", "runtime ready");
            tracing::trace!(event_id = "e1", "ours at trace");
            tracing::info!(event_id = "e1", outcome = "queued", "ours at info");
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn the_runtime_never_logs_events_at_any_level() {
        for level in [
            None,
            Some("error"),
            Some("info"),
            Some("debug"),
            Some("trace"),
            Some("trace,lambda_runtime=trace,lambda_http=trace"),
            Some("not a directive =="),
        ] {
            let text = logged(level);
            assert!(!text.contains("SECRET"), "{level:?}: {text}");
        }
        assert!(logged(Some("trace")).contains("ours at trace"));
        assert!(logged(Some("trace")).contains("runtime ready"));
        assert!(!logged(None).contains("ours at trace"));
        assert!(!logged(Some("error")).contains("ours at info"));
    }

    #[test]
    fn lines_are_flat_json() {
        let text = logged(Some("info"));
        let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(line["event_id"], "e1");
        assert_eq!(line["outcome"], "queued");
        assert_eq!(line["message"], "ours at info");
        assert_eq!(line["level"], "INFO");
    }
}
