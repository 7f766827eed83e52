//! The whole pipeline on one machine, without an AWS account.
//!
//! Everything outside the three functions gets a local stand-in here, so that
//! `make local` and the end-to-end tests exercise the deployed path:
//!
//! - [`moto`]: a moto server (SQS, Secrets Manager and DynamoDB) on a free port;
//! - [`aws_setup`]: the queue, dead-letter queue, secrets and store table that `template.yaml` creates;
//! - [`runtime_api`]: a Lambda Runtime API emulator that runs the compiled function
//!   binaries, with function URLs in front of ingest and actions;
//! - [`event_source`]: the SQS event source mapping (batches, visibility timeout,
//!   partial batch responses, redelivery, dead-letter queue);
//! - [`fake_okta`] and [`fake_slack`]: HTTP stand-ins that answer like the real
//!   services (what they share is in the `http_stub` module); the fake Slack
//!   also clicks buttons, as signed `block_actions` requests to the actions function;
//! - [`okta_keys`]: client keys and JWKs for Okta OAuth 2.0 service apps;
//! - [`seed`]: the demo Okta org used by `make local`;
//! - [`pipeline`]: all of the above wired together (the end-to-end tests,
//!   `make local` and the whole pipeline's benchmark in `tests/benches/` run on it).

use std::sync::{Mutex, MutexGuard};

pub mod aws_setup;
pub mod event_source;
pub mod fake_okta;
pub mod fake_slack;
mod http_stub;
pub mod moto;
pub mod okta_keys;
pub mod pipeline;
pub mod runtime_api;
pub mod seed;

/// Locks a mutex even if a panicking thread poisoned it: a failed test must
/// not wedge the stand-ins or the emulator for everyone else.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
