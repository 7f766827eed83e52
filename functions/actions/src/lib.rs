//! Actions: the Slack app's Request URL, where people's clicks arrive.
//!
//! Runs behind its own Lambda function URL (payload format 2.0, `AuthType`
//! NONE: Slack cannot sign with AWS credentials, so every request is
//! verified by Slack's own signature instead). For each click it
//!
//! 1. verifies the signature over the raw body with the app's signing secret
//!    (constant time, 5-minute timestamp window) and, when configured, the
//!    app and workspace: anything else is answered 401/400 and leaves nothing
//!    behind;
//! 2. authorizes the clicker by Slack user id (`SLACK_APPROVERS`) or user
//!    group (`SLACK_APPROVER_GROUP`), refusing by default, and records every
//!    refusal;
//! 3. records the decision once in the store (a conditional write: the first
//!    click wins, replays and double clicks are told who decided), and sends
//!    one decision message on the events queue, in the event's message
//!    group, for the dispatcher to carry out;
//! 4. answers 200 with an ephemeral reply, within 3 seconds.
//!
//! It never calls Okta: every Okta write goes through the dispatcher.
//!
//! - [`config`]: settings, read once at start-up;
//! - [`signature`]: Slack's request signature, and the cached signing secret;
//! - [`interaction`]: the `block_actions` payload;
//! - [`authorize`]: who may decide;
//! - [`reply`]: what the clicker reads;
//! - [`handler`]: the request → answer pipeline.

pub mod authorize;
pub mod config;
pub mod handler;
pub mod interaction;
pub mod reply;
pub mod signature;

pub use config::Config;
pub use handler::{Actions, Outcome, Rejection};
