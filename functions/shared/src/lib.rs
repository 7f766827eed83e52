//! Code both Lambda functions share.
//!
//! - [`decision`]: the Slack buttons people click and the queue message a decision becomes;
//! - [`event`]: the Oort (Cisco Identity Intelligence) webhook event, parsed and validated;
//! - [`queue`]: message groups and de-duplication ids on the FIFO queue;
//! - [`config`]: reading typed settings from the environment, with errors that name the setting;
//! - [`secrets`]: Secrets Manager reads behind a TTL cache, values that never print;
//! - [`aws`]: the AWS SDK configuration (lean rustls TLS, standard environment);
//! - [`startup`]: the runtime each function's `main` runs on, and what is set before it starts;
//! - [`store`] (feature `store`): the DynamoDB table of held events, decisions and suspensions;
//! - [`telemetry`]: structured JSON logs;
//! - [`metrics`]: CloudWatch metrics in the embedded metric format (EMF lines on stdout);
//! - [`testing`] (feature `test-util`): Oort webhook bodies for tests, benchmarks and the local pipeline.

pub mod aws;
pub mod config;
pub mod decision;
pub mod event;
pub mod metrics;
pub mod queue;
pub mod secrets;
pub mod startup;
#[cfg(feature = "store")]
pub mod store;
pub mod telemetry;
#[cfg(feature = "test-util")]
pub mod testing;
