//! Dispatcher: acts on queued Oort events.
//!
//! For every failing user of a `FAILED_CHECK` it finds the user in Okta,
//! suspends them and clears their sessions, then posts one Slack summary.
//! Safe by default: protected users and admins are never written to, an
//! event over the cap is held, dry run writes nothing, and each user's
//! outcome is reported as it is.
//!
//! - [`config`]: settings, read once at start-up;
//! - [`policy`]: the guard rails, as pure rules over an event;
//! - [`check_actions`]: `CHECK_ACTIONS`, the response each check chose;
//! - [`lockout`]: one user's way through Okta (resolve, protect, act);
//! - [`okta`] and [`rate_limit`]: Okta behind one typed client (SSWS or an
//!   OAuth service app with DPoP), its retries and pacing;
//! - [`http`]: the one HTTP client Okta and Slack share;
//! - [`slack`] and [`summary`]: the Slack client and the messages it posts;
//! - [`outcome`]: the words every report uses;
//! - [`deadline`]: the time an invocation has left;
//! - [`retry`]: the one backoff rule for Okta, Slack and returned messages;
//! - [`metrics`]: the CloudWatch metrics of each event (EMF);
//! - [`handler`]: an SQS batch in, a partial batch response out;
//! - [`progress`]: what earlier deliveries of an event settled;
//! - [`decisions`]: Approve, Dismiss and Unsuspend from Slack, carried out.

pub mod check_actions;
pub mod config;
pub mod deadline;
pub mod decisions;
pub mod handler;
pub mod http;
pub mod lockout;
pub mod metrics;
pub mod okta;
pub mod outcome;
pub mod policy;
pub mod progress;
pub mod rate_limit;
pub mod retry;
pub mod slack;
pub mod summary;

pub use config::Config;
pub use handler::Dispatcher;
