//! The `dispatcher` Lambda: configuration and clients once per cold start,
//! then one [`dispatcher::Dispatcher::handle`] per SQS batch.

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use dispatcher::{Config, Dispatcher};
use lambda_runtime::{Error, LambdaEvent, service_fn};

fn main() -> Result<(), Error> {
    shared::startup::runtime()?.block_on(run())
}

async fn run() -> Result<(), Error> {
    shared::telemetry::init();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    tracing::info!(
        protected_users = config.protected_users.len(),
        protect_admins = config.protect_admins,
        dry_run = config.dry_run,
        universal_logout = config.universal_logout,
        check_actions_default = config.check_actions.is_default(),
        quarantine_group = config.quarantine_group_id.as_deref().unwrap_or_default(),
        "configuration read"
    );
    let aws = shared::aws::sdk_config().await;
    // A secret read that hangs must not use up the invocation: fail it and
    // let SQS redeliver.
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(8))
        .build();
    let secrets = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&aws)
            .timeout_config(timeouts.clone())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&aws)
            .timeout_config(timeouts.clone())
            .build(),
    );
    let store = config.store_table.clone().map(|table| {
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&aws)
                .timeout_config(timeouts.clone())
                .build(),
        );
        shared::store::Store::new(dynamodb, table)
    });
    let mut dispatcher = Dispatcher::new(config, secrets).with_sqs(sqs);
    if let Some(store) = store {
        dispatcher = dispatcher.with_store(store);
    }
    let dispatcher = &dispatcher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        dispatcher.handle(event).await
    }))
    .await
}
