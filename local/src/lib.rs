//! The whole pipeline on one machine, without an AWS account.
//!
//! Everything outside the two functions gets a local stand-in here, so that
//! `make local` and the end-to-end tests exercise the deployed path:
//!
//! - [`moto`]: a moto server (SQS and Secrets Manager) on a free port;
//! - [`aws_setup`]: the queue, dead-letter queue and secrets that `template.yaml` creates;
//! - [`runtime_api`]: a Lambda Runtime API emulator that runs the compiled function
//!   binaries, with a function URL in front of ingest;
//! - [`event_source`]: the SQS event source mapping (batches, visibility timeout,
//!   partial batch responses, redelivery, dead-letter queue);
//! - [`fake_okta`] and [`fake_slack`]: HTTP stand-ins that answer like the real services;
//! - [`okta_keys`]: client keys and JWKs for Okta OAuth 2.0 service apps;
//! - [`seed`]: the demo Okta org used by `make local`;
//! - [`pipeline`]: all of the above wired together.

pub mod aws_setup;
pub mod event_source;
pub mod fake_okta;
pub mod fake_slack;
pub mod moto;
pub mod okta_keys;
pub mod pipeline;
pub mod runtime_api;
pub mod seed;
