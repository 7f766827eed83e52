//! The integration and end-to-end tests, in one test binary: one link of the
//! AWS SDK and one moto server for all of them (it matters on 2 cores).
//!
//! - [`ingest`] and [`dispatcher`]: each function's handler against moto, a
//!   fake Okta and a fake Slack;
//! - [`e2e`]: the compiled binaries, through the whole local pipeline;
//! - [`runtime_emulator`]: the Lambda Runtime API emulator the pipeline runs on.
//!
//! Helpers live in `tests/support/` (the `integration_tests` library).

mod dispatcher;
mod e2e;
mod ingest;
mod runtime_emulator;
