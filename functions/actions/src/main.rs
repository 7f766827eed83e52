//! The `actions` Lambda: configuration and clients once per cold start, then
//! one [`actions::Actions::handle`] per function URL request.

use std::time::Duration;

use actions::{Actions, Config};
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use lambda_http::{Error, Request, service_fn};

fn main() -> Result<(), Error> {
    shared::startup::runtime()?.block_on(run())
}

async fn run() -> Result<(), Error> {
    shared::telemetry::init();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let aws = shared::aws::sdk_config().await;
    // Slack gives up after 3 s. Each call is bounded well under that, and the
    // handler bounds the whole answer (actions::handler::BUDGET).
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(500))
        .operation_attempt_timeout(Duration::from_millis(800))
        .operation_timeout(Duration::from_millis(1500))
        .build();
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&aws)
            .timeout_config(timeouts.clone())
            .build(),
    );
    let secrets = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&aws)
            .timeout_config(timeouts.clone())
            .build(),
    );
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&aws)
            .timeout_config(timeouts)
            .build(),
    );
    // Only the approver group check uses it (usergroups.users.list).
    shared::aws::install_crypto_provider();
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_millis(1000))
        .build()?;
    let actions = Actions::new(config, sqs, secrets, dynamodb, http);
    let actions = &actions;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(actions.handle(request).await)
    }))
    .await
}
