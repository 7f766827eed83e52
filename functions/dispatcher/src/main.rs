//! The `dispatcher` Lambda: configuration and clients once per cold start,
//! then one [`dispatcher::Dispatcher::handle`] per SQS batch.

use aws_lambda_events::event::sqs::SqsEvent;
use dispatcher::{Config, Dispatcher};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let aws = shared::aws::sdk_config().await;
    let dispatcher = Dispatcher::new(config, aws_sdk_secretsmanager::Client::new(&aws));
    let dispatcher = &dispatcher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        dispatcher.handle(event).await
    }))
    .await
}
