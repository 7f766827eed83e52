//! One SQS batch: each message on its own, with a partial batch response.
//!
//! A message that fails (a user not final yet, Slack unavailable, a body that
//! cannot be read, even a panic) is listed in `batchItemFailures` for SQS to
//! redeliver, and never fails the rest of the batch. After a failed message,
//! later messages of the same FIFO group are reported unprocessed, to keep
//! the group's order.
//!
//! The Slack summary is posted once per event: on the delivery where every
//! user reached a final outcome, or on the last delivery (the queue's
//! `maxReceiveCount`), listing what failed. A delivery that will be retried
//! posts nothing.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{FutureExt, StreamExt, stream};
use lambda_runtime::LambdaEvent;
use shared::event::OortEvent;
use shared::secrets::SecretReader;

use crate::config::Config;
use crate::deadline::Deadline;
use crate::lockout::{Rules, UserResult, lock_out};
use crate::okta::OktaClient;
use crate::okta::client::OktaSettings;
use crate::okta::credential::{DEFAULT_SCOPES, UNIVERSAL_LOGOUT_SCOPE};
use crate::outcome::{Outcome, UserReport};
use crate::policy::{Plan, plan};
use crate::slack::SlackClient;
use crate::summary::{self, Context, Mode};

/// Why a message goes back to the queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("the message body is not an Oort event: {0}")]
    Unreadable(String),
    #[error("{0} users have no final outcome yet; the message will be redelivered")]
    UsersPending(usize),
    #[error(
        "{0} users still failed on the last delivery; the message goes to the dead-letter queue"
    )]
    RetriesExhausted(usize),
    #[error("{0}")]
    Slack(String),
    #[error("an earlier message of the same group failed; processed after it")]
    GroupBlocked,
    #[error("processing panicked: {0}")]
    Panic(String),
}

/// The function: configuration and clients, built once per cold start.
pub struct Dispatcher {
    config: Config,
    okta: OktaClient,
    slack: SlackClient,
}

impl Dispatcher {
    pub fn new(config: Config, secrets: aws_sdk_secretsmanager::Client) -> Dispatcher {
        let reader = SecretReader::new(secrets);
        let mut default_scopes = DEFAULT_SCOPES.to_string();
        if config.universal_logout {
            default_scopes = format!("{default_scopes} {UNIVERSAL_LOGOUT_SCOPE}");
        }
        let okta = OktaClient::new(
            OktaSettings {
                org_url: config.okta_org_url.clone(),
                secret_id: config.okta_secret_id.clone(),
                secret_ttl: config.secret_ttl,
                concurrency: config.okta_max_concurrency,
                default_scopes,
            },
            reader.clone(),
        );
        let slack = SlackClient::new(
            config.slack_api_url.clone(),
            reader,
            config.slack_secret_id.clone(),
            config.secret_ttl,
        );
        Dispatcher {
            config,
            okta,
            slack,
        }
    }

    /// The Lambda entry point.
    pub async fn handle(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> Result<SqsBatchResponse, lambda_runtime::Error> {
        let deadline = Deadline::from_epoch_millis(event.context.deadline);
        self.handle_batch(&event.payload.records, deadline).await
    }

    /// Processes the records in order; returns the ones to redeliver. Errs
    /// (failing the whole batch) only when a failed record has no message id
    /// to report it by, so that nothing is lost.
    pub async fn handle_batch(
        &self,
        records: &[SqsMessage],
        deadline: Deadline,
    ) -> Result<SqsBatchResponse, lambda_runtime::Error> {
        let mut failed_groups: HashSet<String> = HashSet::new();
        let mut response = SqsBatchResponse::default();
        for record in records {
            let message_id = record.message_id.clone().unwrap_or_default();
            let group = record.attributes.get("MessageGroupId").cloned();
            let result = if group.as_ref().is_some_and(|g| failed_groups.contains(g)) {
                Err(Failure::GroupBlocked)
            } else {
                AssertUnwindSafe(Box::pin(self.process(record, &message_id, deadline)))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| Err(Failure::Panic(panic_message(&panic))))
            };
            if let Err(failure) = result {
                tracing::warn!(message_id = %message_id, reason = %failure, "message returned to the queue");
                if message_id.is_empty() {
                    return Err("a failed record has no messageId; failing the whole batch so nothing is lost".into());
                }
                if let Some(group) = group {
                    failed_groups.insert(group);
                }
                let mut item = BatchItemFailure::default();
                item.item_identifier = message_id;
                response.batch_item_failures.push(item);
            }
        }
        Ok(response)
    }

    async fn process(
        &self,
        record: &SqsMessage,
        message_id: &str,
        deadline: Deadline,
    ) -> Result<(), Failure> {
        let delivery: u32 = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let last_delivery = delivery >= self.config.max_receive_count;

        let event = match record
            .body
            .as_deref()
            .map(|body| OortEvent::parse(body.as_bytes()))
        {
            Some(Ok(event)) => event,
            Some(Err(e)) => {
                return Err(self
                    .unreadable(
                        message_id,
                        &e.to_string(),
                        delivery,
                        last_delivery,
                        deadline,
                    )
                    .await);
            }
            None => {
                return Err(self
                    .unreadable(
                        message_id,
                        "the message has no body",
                        delivery,
                        last_delivery,
                        deadline,
                    )
                    .await);
            }
        };
        let event_id = record
            .message_attributes
            .get("eventId")
            .and_then(|a| a.string_value.clone())
            .or_else(|| event.id.clone())
            .unwrap_or_else(|| message_id.to_string());
        let ctx = Context {
            event: &event,
            event_id: &event_id,
            delivery,
            max_deliveries: self.config.max_receive_count,
        };
        let plan = plan(&event, &self.config);
        tracing::info!(
            event_id = %event_id,
            message_id,
            event_type = %event.kind,
            check_id = event.check_id.as_deref().unwrap_or_default(),
            severity = event.severity.as_deref().unwrap_or_default(),
            user_count = event.users.len(),
            delivery,
            plan = ?plan,
            "event received"
        );

        let (message, pending) = match plan {
            Plan::ConnectivityTest => (summary::connectivity_test(&ctx), 0),
            Plan::Unhandled(kind) => (summary::unhandled(&ctx, &kind), 0),
            Plan::Hold { reason } => {
                let reports: Vec<UserReport> = event
                    .users
                    .iter()
                    .map(|login| {
                        tracing::info!(event_id = %event_id, user = login.as_str(), outcome = Outcome::Held.word(), reason = %reason, "user outcome");
                        UserReport::new(login.as_str(), Outcome::Held, None)
                    })
                    .collect();
                (summary::summary(&ctx, &Mode::Held(reason), &reports), 0)
            }
            Plan::Act { dry_run } => {
                let rules = Rules {
                    dry_run,
                    protected_users: &self.config.protected_users,
                    protect_admins: self.config.protect_admins,
                    universal_logout: self.config.universal_logout,
                };
                // Okta work stops early enough to leave time for the summary.
                let okta_deadline = deadline.earlier_by(slack_reserve(deadline.remaining()));
                let results: Vec<UserResult> = stream::iter(&event.users)
                    .map(|login| lock_out(&self.okta, login, &rules, &event_id, okta_deadline))
                    .buffered(self.config.okta_max_concurrency)
                    .collect()
                    .await;
                let pending = results
                    .iter()
                    .filter(|r| matches!(r, UserResult::Retry(_)))
                    .count();
                if pending > 0 && !last_delivery {
                    return Err(Failure::UsersPending(pending));
                }
                let reports: Vec<UserReport> = results.iter().map(|r| r.report().clone()).collect();
                let mode = if dry_run { Mode::DryRun } else { Mode::Acted };
                (summary::summary(&ctx, &mode, &reports), pending)
            }
        };

        self.slack
            .post(&message, deadline)
            .await
            .map_err(|e| Failure::Slack(e.to_string()))?;
        tracing::info!(event_id = %event_id, message_id, delivery, outcome = "summary posted", "slack summary posted");
        if pending > 0 {
            return Err(Failure::RetriesExhausted(pending));
        }
        Ok(())
    }

    /// Logs an unreadable message; on its last delivery, also tells Slack
    /// (best effort) that it is going to the dead-letter queue.
    async fn unreadable(
        &self,
        message_id: &str,
        reason: &str,
        delivery: u32,
        last: bool,
        deadline: Deadline,
    ) -> Failure {
        tracing::error!(
            message_id,
            delivery,
            reason,
            "message body is not an Oort event"
        );
        if last
            && let Err(e) = self
                .slack
                .post(&summary::unreadable(message_id, reason), deadline)
                .await
        {
            tracing::warn!(message_id, error = %e, "could not tell Slack about the unreadable message");
        }
        Failure::Unreadable(reason.to_string())
    }
}

/// Time kept back from Okta work for posting to Slack: a fifth of what is
/// left, between 2 and 15 seconds.
fn slack_reserve(remaining: Duration) -> Duration {
    (remaining / 5).clamp(Duration::from_secs(2), Duration::from_secs(15))
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_gets_a_bounded_share_of_the_time() {
        assert_eq!(
            slack_reserve(Duration::from_secs(300)),
            Duration::from_secs(15)
        );
        assert_eq!(
            slack_reserve(Duration::from_secs(30)),
            Duration::from_secs(6)
        );
        assert_eq!(
            slack_reserve(Duration::from_secs(3)),
            Duration::from_secs(2)
        );
    }
}
