//! Structured JSON logs.
//!
//! One JSON object per line on stdout, which Lambda's JSON log format keeps
//! as it is. Fields go at the top level of each line (`event_id`, `user`,
//! `outcome`, `okta_request_id`, ...) so CloudWatch Logs Insights can filter
//! on them directly. The level comes from `AWS_LAMBDA_LOG_LEVEL` (set by the
//! template's `LoggingConfig`) or `RUST_LOG`, default `info`.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber. Safe to call more than once.
pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| {
            std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .ok()
                .map(|l| l.to_lowercase())
        })
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .try_init();
}
