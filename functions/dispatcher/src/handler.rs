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
use shared::decision::Decision;
use shared::event::OortEvent;
use shared::metrics::Emitter;
use shared::secrets::SecretReader;

use crate::check_actions::{CheckAction, Write};
use crate::config::Config;
use crate::deadline::Deadline;
use crate::lockout::{Rules, UserResult, lock_out};
use crate::metrics::DispatcherMetrics;
use crate::okta::OktaClient;
use crate::okta::client::OktaSettings;
use crate::okta::credential::{DEFAULT_SCOPES, GROUPS_SCOPE, UNIVERSAL_LOGOUT_SCOPE};
use crate::okta::{CallContext, CallError, Directory};
use crate::outcome::{Outcome, UserReport};
use crate::policy::{Plan, plan, provider_skip};
use crate::progress::{PROGRESS_RETENTION, Settled};
use crate::retry;
use crate::slack::SlackClient;
use crate::summary::{self, Buttons, Context, FollowUp, Mode};
use shared::store::{ActionKind, ActionRecord, HeldEvent, Store};

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
    #[error("{0} users failed for a reason a person must fix; the message is kept for a redrive")]
    UsersBlocked(usize),
    #[error("{0}")]
    Slack(String),
    #[error("an earlier message of the same group failed; processed after it")]
    GroupBlocked,
    #[error("processing panicked: {0}")]
    Panic(String),
    #[error("the store could not be used: {0}")]
    Store(String),
    #[error("Okta could not carry out the decision: {0}")]
    Okta(String),
}

/// The function: configuration and clients, built once per cold start.
pub struct Dispatcher {
    pub(crate) config: Config,
    pub(crate) okta: OktaClient,
    pub(crate) slack: SlackClient,
    /// For `ChangeMessageVisibility` on messages returned to the queue.
    sqs: Option<aws_sdk_sqs::Client>,
    /// Held events, suspensions and decisions (`STORE_TABLE`).
    pub(crate) store: Option<Store>,
    /// One EMF line per processed record (stdout).
    pub(crate) metrics: DispatcherMetrics,
    /// Set once `QUARANTINE_GROUP_ID` was found usable: checked once per
    /// container. An unusable answer is not kept, so a fix is seen by the
    /// next event (or redrive).
    quarantine_group_ok: std::sync::OnceLock<()>,
}

impl Dispatcher {
    pub fn new(config: Config, secrets: aws_sdk_secretsmanager::Client) -> Dispatcher {
        let reader = SecretReader::new(secrets);
        let http = crate::http::Http::new();
        let mut default_scopes = DEFAULT_SCOPES.to_string();
        if config.universal_logout {
            default_scopes = format!("{default_scopes} {UNIVERSAL_LOGOUT_SCOPE}");
        }
        if config.check_actions.quarantines() {
            default_scopes = format!("{default_scopes} {GROUPS_SCOPE}");
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
            http.clone(),
        );
        let slack = SlackClient::new(
            http,
            config.slack_api_url.clone(),
            reader,
            config.slack_secret_id.clone(),
            config.secret_ttl,
        );
        Dispatcher {
            config,
            okta,
            slack,
            sqs: None,
            store: None,
            metrics: DispatcherMetrics::new(Emitter::stdout("dispatcher")),
            quarantine_group_ok: std::sync::OnceLock::new(),
        }
    }

    /// Writes the metrics to `emitter` instead of stdout.
    pub fn with_metrics(mut self, emitter: Emitter) -> Dispatcher {
        self.metrics = DispatcherMetrics::new(emitter);
        self
    }

    /// Keeps held events and suspensions, and carries out decisions.
    pub fn with_store(mut self, store: Store) -> Dispatcher {
        self.store = Some(store);
        self
    }

    /// Returns failed messages sooner than the queue's visibility timeout,
    /// with growing delays (needs `QUEUE_URL`).
    pub fn with_sqs(mut self, sqs: aws_sdk_sqs::Client) -> Dispatcher {
        self.sqs = Some(sqs);
        self
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
        let mut returned: Vec<&SqsMessage> = Vec::new();
        // Time for returning failed messages early, after the work.
        let work_deadline = deadline.earlier_by(VISIBILITY_RESERVE.min(deadline.remaining() / 10));
        for (i, record) in records.iter().enumerate() {
            let message_id = record.message_id.clone().unwrap_or_default();
            let group = record.attributes.get("MessageGroupId").cloned();
            // Each message gets an equal share of what is left, so one slow
            // event cannot use up the deliveries of the others.
            let budget = work_deadline.share((records.len() - i) as u32);
            let result = if group.as_ref().is_some_and(|g| failed_groups.contains(g)) {
                Err(Failure::GroupBlocked)
            } else {
                self.metrics.start();
                let result = AssertUnwindSafe(Box::pin(self.process(record, &message_id, budget)))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| Err(Failure::Panic(panic_message(&panic))));
                // One metrics flush per processed record, never per user.
                let unreadable = matches!(result, Err(Failure::Unreadable(_)));
                let okta = self.okta.take_counts();
                self.metrics
                    .finish(unreadable, okta, self.slack.take_failures());
                result
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
                returned.push(record);
            }
        }
        for record in returned {
            self.return_early(record, deadline).await;
        }
        Ok(response)
    }

    /// Makes a returned message visible again after a delay that grows with
    /// each delivery, instead of the queue's whole visibility timeout (the
    /// template's 30 minutes stay the upper bound if this fails).
    async fn return_early(&self, record: &SqsMessage, deadline: Deadline) {
        let (Some(sqs), Some(queue_url), Some(receipt)) = (
            &self.sqs,
            &self.config.queue_url,
            record.receipt_handle.as_deref(),
        ) else {
            return;
        };
        let delay = retry_delay(self.config.retry_delay, delivery(record), rand::random());
        let call = sqs
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(delay.as_secs() as i32)
            .send();
        let message_id = record.message_id.as_deref().unwrap_or_default();
        match tokio::time::timeout(deadline.remaining().min(Duration::from_secs(2)), call).await {
            Ok(Ok(_)) => tracing::info!(
                message_id,
                retry_in_s = delay.as_secs(),
                "message returned early"
            ),
            Ok(Err(e)) => {
                tracing::warn!(message_id, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "could not return the message early; the queue's visibility timeout applies")
            }
            Err(_) => tracing::warn!(
                message_id,
                "returning the message early timed out; the queue's visibility timeout applies"
            ),
        }
    }

    async fn process(
        &self,
        record: &SqsMessage,
        message_id: &str,
        deadline: Deadline,
    ) -> Result<(), Failure> {
        let delivery = delivery(record);
        let last_delivery = delivery >= self.config.max_receive_count;

        let is_decision = record
            .message_attributes
            .get(shared::decision::KIND_ATTRIBUTE)
            .and_then(|a| a.string_value.as_deref())
            == Some(shared::decision::DECISION_KIND);
        if is_decision {
            return match record.body.as_deref().and_then(Decision::parse) {
                Some(Ok(decision)) => {
                    self.decide(&decision, delivery, last_delivery, deadline)
                        .await
                }
                Some(Err(e)) => Err(self
                    .unreadable(message_id, &e, delivery, last_delivery, deadline)
                    .await),
                None => Err(self
                    .unreadable(
                        message_id,
                        "a decision message that is not a decision",
                        delivery,
                        last_delivery,
                        deadline,
                    )
                    .await),
            };
        }
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
            follow_up: FollowUp::None,
        };
        let plan = plan(&event, &self.config);
        let action = self
            .config
            .check_actions
            .for_check(event.check_id.as_deref());
        self.metrics.planned(&event, &plan);
        tracing::info!(
            event_id = %event_id,
            message_id,
            event_type = %event.kind,
            check_id = event.check_id.as_deref().unwrap_or_default(),
            severity = event.severity.as_deref().unwrap_or_default(),
            user_count = event.users.len(),
            delivery,
            plan = ?plan,
            check_action = %action,
            "event received"
        );

        let (message, unfinished, blocked) = match plan {
            Plan::ConnectivityTest => (summary::connectivity_test(&ctx), 0, 0),
            Plan::Unhandled(kind) => (summary::unhandled(&ctx, &kind), 0, 0),
            Plan::Hold { reason } => {
                let reports: Vec<UserReport> = event
                    .users
                    .iter()
                    .map(|login| {
                        tracing::info!(event_id = %event_id, user = login.as_str(), outcome = Outcome::Held.word(), reason = %reason, "user outcome");
                        UserReport::new(login.as_str(), Outcome::Held, None)
                    })
                    .collect();
                let reports = with_invalid(&event, &event_id, reports);
                self.metrics.users(&reports);
                let message = summary::summary(&ctx, &Mode::Held(reason.clone()), &reports);
                let message = self.with_check_action(message, action);
                let message = self
                    .offer_approval(message, record, &event, &event_id, &reason)
                    .await?;
                (message, 0, 0)
            }
            Plan::Act { dry_run } => {
                // A dry run writes nothing, so it has nothing to pick up.
                let settled = match dry_run {
                    true => Settled::default(),
                    false => self.settled_earlier(&event_id).await,
                };
                let results = self
                    .run_users(&event, &event_id, dry_run, action, &settled, deadline)
                    .await;
                if !dry_run && results.iter().any(|r| !r.is_final()) {
                    self.keep_progress(&event, &event_id, &settled, &results)
                        .await;
                }
                // Recorded before anything can return the message: a
                // quarantine whose next step failed is still ours to release.
                let undoable = match dry_run {
                    true => Undoable::default(),
                    false => self.record_actions(&event_id, &results).await,
                };
                let (follow_up, unfinished, blocked) =
                    self.follow_up(&results, delivery, last_delivery)?;
                let reports: Vec<UserReport> = results.iter().map(|r| r.report().clone()).collect();
                let reports = with_invalid(&event, &event_id, reports);
                self.metrics.users(&reports);
                let mode = if dry_run { Mode::DryRun } else { Mode::Acted };
                let ctx = Context { follow_up, ..ctx };
                let mut message = summary::summary(&ctx, &mode, &reports);
                message = self.with_check_action(message, action);
                if dry_run {
                    let reason = "a dry run (DRY_RUN)".to_string();
                    message = self
                        .offer_approval(message, record, &event, &event_id, &reason)
                        .await?;
                } else {
                    message = self.offer_undo(message, &event_id, &undoable);
                }
                (message, unfinished, blocked)
            }
        };

        self.slack
            .post(&message, deadline)
            .await
            .map_err(|e| Failure::Slack(e.to_string()))?;
        tracing::info!(event_id = %event_id, message_id, delivery, outcome = "summary posted", "slack summary posted");
        self.metrics.summary_posted(&event);
        match (unfinished, blocked, last_delivery) {
            (0, _, _) => Ok(()),
            (n, _, true) => Err(Failure::RetriesExhausted(n)),
            (_, b, false) => Err(Failure::UsersBlocked(b)),
        }
    }

    /// Every listed user through Okta (or skipped by `ACT_ON_PROVIDERS`),
    /// `OKTA_MAX_CONCURRENCY` at a time.
    /// Users in `settled` keep the outcome an earlier delivery gave them,
    /// with no Okta call.
    /// `action` is the check's policy (an approved one already resolved to
    /// its write). A quarantine first checks the group: when it is not
    /// usable, every user who would be quarantined fails with why, and
    /// nothing is written.
    pub(crate) async fn run_users(
        &self,
        event: &OortEvent,
        event_id: &str,
        dry_run: bool,
        action: CheckAction,
        settled: &Settled,
        deadline: Deadline,
    ) -> Vec<UserResult> {
        let rules = Rules {
            dry_run,
            protected_users: &self.config.protected_users,
            protect_admins: self.config.protect_admins,
            universal_logout: self.config.universal_logout,
            action,
            quarantine_group: self.config.quarantine_group_id.as_deref(),
        };
        // Okta work stops early enough to leave time for the summary.
        let okta_deadline = deadline.earlier_by(slack_reserve(deadline.remaining()));
        let act_on = &self.config.act_on_providers;
        // A quarantine checks its group first; a dry run checks it too, and
        // says so instead of failing anyone.
        let group_problem = match action.write() {
            Some(Write::Quarantine)
                if (dry_run || action == CheckAction::Now(Write::Quarantine))
                    && event
                        .users
                        .iter()
                        .any(|l| settled.get(&l.folded()).is_none()) =>
            {
                self.check_quarantine_group(event_id, okta_deadline)
                    .await
                    .err()
            }
            _ => None,
        };
        let acting_problem = group_problem.as_ref().filter(|_| !dry_run);
        let mut results: Vec<UserResult> = stream::iter(&event.users)
            .map(|login| async {
                if let Some(report) = settled.get(&login.folded()) {
                    tracing::info!(
                        event_id,
                        user = login.as_str(),
                        outcome = report.outcome.word(),
                        "user settled on an earlier delivery; not read again"
                    );
                    return UserResult::Done(report.clone());
                }
                match (provider_skip(event, login, act_on), acting_problem) {
                    (Some(reason), _) => skipped(login, event_id, reason),
                    (None, Some(problem)) => problem.for_user(login, event_id),
                    (None, None) => {
                        lock_out(&self.okta, login, &rules, event_id, okta_deadline).await
                    }
                }
            })
            .buffered(self.config.okta_max_concurrency)
            .collect()
            .await;
        if let (true, Some(problem)) = (dry_run, &group_problem) {
            for result in &mut results {
                if let UserResult::Done(report) = result
                    && matches!(
                        report.outcome,
                        Outcome::DryRunQuarantine | Outcome::DryRunApprove
                    )
                {
                    let detail = report.detail.take().unwrap_or_default();
                    report.detail = Some(format!(
                        "{detail}; but it would fail now: {}",
                        problem.reason()
                    ));
                }
            }
        }
        results
    }

    /// Whether `QUARANTINE_GROUP_ID` exists and is an Okta group, asked
    /// once per container (a usable answer is kept).
    async fn check_quarantine_group(
        &self,
        event_id: &str,
        deadline: Deadline,
    ) -> Result<(), GroupProblem> {
        if self.quarantine_group_ok.get().is_some() {
            return Ok(());
        }
        let Some(group) = self.config.quarantine_group_id.as_deref() else {
            return Err(GroupProblem::Blocked(
                "CHECK_ACTIONS quarantines, but QUARANTINE_GROUP_ID is not set".into(),
            ));
        };
        let ctx = CallContext::new(event_id, "(quarantine group)", deadline);
        let problem = match self.okta.get_group(group, &ctx).await {
            Ok(Some(found)) if found.is_okta_group() => {
                let _ = self.quarantine_group_ok.set(());
                tracing::info!(
                    event_id,
                    quarantine_group = group,
                    okta_request_id = ctx.last_request_id().as_deref().unwrap_or_default(),
                    "quarantine group checked: an Okta group"
                );
                return Ok(());
            }
            Ok(Some(found)) => GroupProblem::Blocked(format!(
                "the quarantine group QUARANTINE_GROUP_ID={group} is a {} group, not an OKTA_GROUP: Okta lets the API change members of groups created in Okta only; nothing was changed",
                found.kind()
            )),
            Ok(None) => GroupProblem::Blocked(format!(
                "the quarantine group QUARANTINE_GROUP_ID={group} does not exist in Okta (404): create it or fix the setting (README: Responses per check); nothing was changed"
            )),
            Err(CallError::Transient(reason)) => GroupProblem::Retry(format!(
                "could not check the quarantine group {group}: {reason}; nothing was changed"
            )),
            Err(e) => GroupProblem::Blocked(format!(
                "could not check the quarantine group {group}: {e} (the Okta credential needs okta.groups.manage); nothing was changed"
            )),
        };
        tracing::error!(
            event_id,
            quarantine_group = group,
            reason = problem.reason(),
            okta_request_id = ctx.last_request_id().as_deref().unwrap_or_default(),
            "quarantine group not usable"
        );
        Err(problem)
    }

    /// Adds the check's action to a summary when `CHECK_ACTIONS` is set
    /// (with the default, summaries read exactly as before).
    pub(crate) fn with_check_action(
        &self,
        message: summary::SlackMessage,
        action: CheckAction,
    ) -> summary::SlackMessage {
        if self.config.check_actions.is_default() {
            return message;
        }
        message.with_check_action(&action.name(), &action.describe())
    }

    /// What the summary says happens next, or the failure that returns the
    /// message without a summary. The team hears at once when a person must
    /// fix something (and once more when it goes to the dead-letter queue);
    /// failures that may pass by themselves are reported on the last
    /// delivery only. A later delivery that changes nothing posts nothing.
    pub(crate) fn follow_up(
        &self,
        results: &[UserResult],
        delivery: u32,
        last_delivery: bool,
    ) -> Result<(FollowUp, usize, usize), Failure> {
        let pending = results
            .iter()
            .filter(|r| matches!(r, UserResult::Retry(_)))
            .count();
        let blocked = results
            .iter()
            .filter(|r| matches!(r, UserResult::Blocked(_)))
            .count();
        let follow_up = match (pending, blocked, last_delivery) {
            (0, 0, _) if delivery > 1 => FollowUp::DoneAfterRetries,
            (0, 0, _) => FollowUp::None,
            (_, _, true) => FollowUp::DeadLetterQueue,
            (_, b, false) if b > 0 && delivery == 1 => FollowUp::WillRetry {
                deliveries_left: self.config.max_receive_count.saturating_sub(delivery),
            },
            (_, b, false) if b > 0 => return Err(Failure::UsersBlocked(b)),
            (p, _, false) => return Err(Failure::UsersPending(p)),
        };
        Ok((follow_up, pending + blocked, blocked))
    }

    /// What earlier deliveries of the event settled. Without a store, or
    /// when the record cannot be read, nothing: every user is run again,
    /// which is safe (reads come before writes).
    pub(crate) async fn settled_earlier(&self, event_id: &str) -> Settled {
        let Some(store) = &self.store else {
            return Settled::default();
        };
        let found = match store.get_progress(event_id).await {
            Ok(Some(text)) => Settled::decode(&text),
            Ok(None) => return Settled::default(),
            Err(e) => Err(e.to_string()),
        };
        match found {
            Ok(settled) => {
                tracing::info!(
                    event_id,
                    settled = settled.len(),
                    "users settled on earlier deliveries are not read again"
                );
                settled
            }
            Err(reason) => {
                tracing::warn!(event_id, reason = %reason, "could not read what earlier deliveries settled; every user is run again");
                Settled::default()
            }
        }
    }

    /// Before the message goes back to the queue, keeps every user that is
    /// final so far, so that the next delivery starts from there. Best
    /// effort: without the record the next delivery runs them again.
    pub(crate) async fn keep_progress(
        &self,
        event: &OortEvent,
        event_id: &str,
        settled: &Settled,
        results: &[UserResult],
    ) {
        let Some(store) = &self.store else {
            return;
        };
        let mut now = settled.clone();
        for (login, result) in event.users.iter().zip(results) {
            if let UserResult::Done(report) = result {
                now.insert(login.folded(), report.clone());
            }
        }
        if now.is_empty() || &now == settled {
            return;
        }
        match store
            .put_progress(event_id, &now.encode(), PROGRESS_RETENTION)
            .await
        {
            Ok(()) => tracing::info!(
                event_id,
                settled = now.len(),
                pending = results.len() - now.len(),
                "progress kept for the next delivery"
            ),
            Err(e) => {
                tracing::warn!(event_id, error = %e, "could not keep the progress; the next delivery runs every user again")
            }
        }
    }

    /// With approvers configured, keeps the event in the store and adds
    /// Approve / Dismiss. A failed store write fails the message (retried):
    /// never a button that cannot be honoured.
    async fn offer_approval(
        &self,
        message: summary::SlackMessage,
        record: &SqsMessage,
        event: &OortEvent,
        event_id: &str,
        reason: &str,
    ) -> Result<summary::SlackMessage, Failure> {
        let Some(store) = self.store.as_ref().filter(|_| self.config.buttons()) else {
            return Ok(message);
        };
        let held = HeldEvent::new(
            event_id,
            record.body.as_deref().unwrap_or_default(),
            reason,
            event.users.len() as u32,
            time::OffsetDateTime::now_utc(),
            self.config.approval_ttl,
        );
        store
            .put_held_event(&held)
            .await
            .map_err(|e| Failure::Store(e.to_string()))?;
        let action = self
            .config
            .check_actions
            .for_check(event.check_id.as_deref());
        Ok(message.with_buttons(Buttons::Decide {
            event_id,
            users: event.users.len(),
            doing: action.approving(),
        }))
    }

    /// With a store, records each suspension and quarantine this product
    /// made (so that Unsuspend and Release act only on those), and returns
    /// the users a summary may offer to undo. A user found already in the
    /// quarantine group is offered Release only if an earlier delivery of
    /// this event added them. Best effort: a failed write loses the button,
    /// never the action.
    pub(crate) async fn record_actions(&self, event_id: &str, results: &[UserResult]) -> Undoable {
        let mut undoable = Undoable::default();
        let Some(store) = &self.store else {
            return undoable;
        };
        for report in results.iter().map(UserResult::report) {
            let Some(id) = &report.okta_user_id else {
                continue;
            };
            let user = (id.clone(), report.login.clone());
            let (kind, list) = match report.outcome {
                Outcome::Suspended => (ActionKind::Suspend, Some(&mut undoable.suspended)),
                Outcome::Quarantined => (ActionKind::Quarantine, Some(&mut undoable.quarantined)),
                // Added, then a later step failed: recorded, no button yet.
                _ if report.added_to_group => (ActionKind::Quarantine, None),
                Outcome::AlreadyQuarantined => {
                    match store.find_action(id, event_id).await {
                        Ok(Some(done)) if done.action == ActionKind::Quarantine => {
                            undoable.quarantined.push(user)
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(event_id, user = report.login.as_str(), error = %e, "could not read whether this event quarantined the user: no Release button")
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            let action = ActionRecord {
                event_id: event_id.to_string(),
                okta_user_id: id.clone(),
                login: report.login.clone(),
                action: kind,
                at: time::OffsetDateTime::now_utc(),
            };
            match store.record_action(&action).await {
                Ok(()) => {
                    if let Some(list) = list {
                        list.push(user)
                    }
                }
                // The user stays suspended or quarantined; only the Slack undo is lost.
                Err(e) => {
                    tracing::error!(event_id, user = report.login.as_str(), action = kind.as_str(), error = %e, "could not record the action: no undo button for this user")
                }
            }
        }
        undoable
    }

    /// With approvers, adds Unsuspend and Release for what was recorded.
    pub(crate) fn offer_undo(
        &self,
        message: summary::SlackMessage,
        event_id: &str,
        undoable: &Undoable,
    ) -> summary::SlackMessage {
        if !self.config.buttons()
            || (undoable.suspended.is_empty() && undoable.quarantined.is_empty())
        {
            return message;
        }
        message.with_buttons(Buttons::Undo {
            event_id,
            suspended: &undoable.suspended,
            quarantined: &undoable.quarantined,
        })
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

/// Users whose suspension or quarantine this product recorded for an
/// event: `(okta user id, login)`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Undoable {
    pub(crate) suspended: Vec<(String, String)>,
    pub(crate) quarantined: Vec<(String, String)>,
}

/// Why the quarantine group cannot be used for this event.
#[derive(Debug, Clone)]
enum GroupProblem {
    /// May pass by itself (Okta unavailable, rate limit, time).
    Retry(String),
    /// A person must fix the group or the setting.
    Blocked(String),
}

impl GroupProblem {
    fn reason(&self) -> &str {
        match self {
            GroupProblem::Retry(r) | GroupProblem::Blocked(r) => r,
        }
    }

    /// The user's result: failed with why, no Okta call for them.
    fn for_user(&self, login: &shared::event::Login, event_id: &str) -> UserResult {
        let report = UserReport::new(
            login.as_str(),
            Outcome::Failed,
            Some(self.reason().to_string()),
        );
        let retry = matches!(self, GroupProblem::Retry(_));
        tracing::info!(
            event_id,
            user = login.as_str(),
            outcome = Outcome::Failed.word(),
            reason = self.reason(),
            will_retry = true,
            needs_a_person = !retry,
            "user outcome"
        );
        if retry {
            UserResult::Retry(report)
        } else {
            UserResult::Blocked(report)
        }
    }
}

/// A user `ACT_ON_PROVIDERS` leaves alone: no Okta call.
fn skipped(login: &shared::event::Login, event_id: &str, reason: String) -> UserResult {
    tracing::info!(
        event_id,
        user = login.as_str(),
        outcome = Outcome::Skipped.word(),
        reason = reason.as_str(),
        "user outcome"
    );
    UserResult::Done(UserReport::new(
        login.as_str(),
        Outcome::Skipped,
        Some(reason),
    ))
}

/// The event's unusable entries as `invalid` reports after the users' own,
/// each logged like any outcome (no Okta call is ever made for them).
fn with_invalid(
    event: &OortEvent,
    event_id: &str,
    mut reports: Vec<UserReport>,
) -> Vec<UserReport> {
    for entry in &event.invalid {
        tracing::info!(
            event_id,
            user = entry.entry.as_str(),
            outcome = Outcome::Invalid.word(),
            reason = entry.reason.as_str(),
            "user outcome"
        );
        reports.push(UserReport::new(
            &entry.entry,
            Outcome::Invalid,
            Some(entry.reason.clone()),
        ));
    }
    reports
}

/// Time kept at the end of a batch for returning failed messages early.
const VISIBILITY_RESERVE: Duration = Duration::from_secs(2);

/// Which delivery of its message a record is (1 for the first).
fn delivery(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

/// The wait before delivery `n + 1` ([`retry::deliveries`]), at least the
/// second that `ChangeMessageVisibility` counts in.
pub fn retry_delay(base: Duration, delivery: u32, unit: f64) -> Duration {
    retry::deliveries(base)
        .delay_at(delivery, unit)
        .max(Duration::from_secs(1))
}

/// Time kept back from Okta work for posting to Slack: a fifth of what is
/// left, between 2 and 15 seconds (at most a third of a very short budget).
fn slack_reserve(remaining: Duration) -> Duration {
    let floor = Duration::from_secs(2).min(remaining / 3);
    (remaining / 5).clamp(floor, Duration::from_secs(15))
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
            slack_reserve(Duration::from_secs(9)),
            Duration::from_secs(2)
        );
        assert_eq!(
            slack_reserve(Duration::from_secs(3)),
            Duration::from_secs(1),
            "a short share still leaves Okta most of it"
        );
    }

    #[test]
    fn retries_come_back_sooner_and_later_each_time() {
        let base = Duration::from_secs(30);
        let mid = |n| retry_delay(base, n, 0.5);
        assert_eq!(mid(1), Duration::from_secs(30));
        assert_eq!(mid(2), Duration::from_secs(120));
        assert_eq!(mid(3), Duration::from_secs(480));
        assert_eq!(mid(4), Duration::from_secs(900), "capped at 15 minutes");
        assert_eq!(mid(40), Duration::from_secs(900));
        assert_eq!(retry_delay(base, 1, 0.0), Duration::from_secs(24));
        assert_eq!(retry_delay(base, 1, 1.0), Duration::from_secs(36));
        assert!(retry_delay(base, 4, 1.0) <= Duration::from_secs(900));
        assert_eq!(
            retry_delay(Duration::from_secs(1), 1, 0.0),
            Duration::from_secs(1)
        );
    }
}
