//! An empty Lambda: `lambda_runtime` with a handler that returns at once.
//! The benchmarks time it beside the functions (spawn to first poll, spawn to
//! first answer, warm answer) so that each ratio is against the same machine
//! and run. See benches/README.md.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<_, Error>(Value::Null)
    }))
    .await
}
