//! Ingest: the Oort webhook's front door.
//!
//! Runs behind a Lambda function URL (payload format 2.0). For each request it
//! checks the method, then the API key, then the body, and only a request that
//! passes all three is put on the SQS FIFO queue. The answer says what
//! happened: 200 once the message is on the queue, a 4xx that says what to fix
//! (nothing queued), or a 5xx when the queue or the key store could not be
//! reached (nothing queued; the sender retries).
//!
//! - [`config`]: settings, read once at start-up;
//! - [`api_key`]: the key check, constant-time, against the current and previous key;
//! - [`message`]: the SQS message built from an accepted event;
//! - [`handler`]: the request → answer pipeline.

pub mod api_key;
pub mod config;
pub mod handler;
pub mod message;

pub use config::Config;
pub use handler::{Ingest, Rejection};
