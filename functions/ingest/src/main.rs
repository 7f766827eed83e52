//! The `ingest` Lambda: configuration and clients once per cold start, then
//! one [`ingest::Ingest::handle`] per function URL request.

use std::time::Duration;

use aws_sdk_sqs::config::timeout::TimeoutConfig;
use ingest::{Config, Ingest};
use lambda_http::{Error, Request, service_fn};

fn main() -> Result<(), Error> {
    shared::startup::runtime()?.block_on(run())
}

async fn run() -> Result<(), Error> {
    shared::telemetry::init();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let aws = shared::aws::sdk_config().await;
    // Oort's sender gives up after about 5 s: answer well before that, with a
    // 503 it will retry, rather than let it time out.
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_millis(1500))
        .operation_timeout(Duration::from_millis(3500))
        .build();
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&aws)
            .timeout_config(timeouts.clone())
            .build(),
    );
    let secrets = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&aws)
            .timeout_config(timeouts)
            .build(),
    );
    let ingest = Ingest::new(config, sqs, secrets);
    let ingest = &ingest;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(ingest.handle(request).await)
    }))
    .await
}
