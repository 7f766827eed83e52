//! Code both Lambda functions share.
//!
//! - [`event`]: the Oort (Cisco Identity Intelligence) webhook event, parsed and validated;
//! - [`config`]: reading typed settings from the environment, with errors that name the setting;
//! - [`secrets`]: Secrets Manager reads behind a TTL cache, values that never print;
//! - [`aws`]: the AWS SDK configuration (lean rustls TLS, standard environment);
//! - [`telemetry`]: structured JSON logs.

pub mod aws;
pub mod config;
pub mod event;
pub mod secrets;
pub mod telemetry;
