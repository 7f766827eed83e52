//! People's decisions from Slack, carried out: Approve or Dismiss a held
//! event, Unsuspend a user this product suspended, Release a user it
//! quarantined (out of the quarantine group).
//!
//! The actions function verifies, authorizes and records each click, then
//! queues it; every Okta write still happens here, with the same client,
//! rate budget, deadlines and audit log lines as events. A decision is
//! carried out once: one whose result is already recorded is acknowledged
//! and nothing is done again. Approval never overrides protected users or
//! admins: it only lifts the cap, the severity rule and dry run.

use serde_json::json;
use shared::decision::{Action, Decision, UserRef, format_time};
use shared::event::OortEvent;
use shared::store::{ActionKind, ActionRecord, HeldLookup, Store};

use crate::deadline::Deadline;
use crate::handler::{Dispatcher, Failure};
use crate::okta::{CallContext, CallError, Directory, Membership, Unsuspension};
use crate::outcome::UserReport;
use crate::summary::{self, Context, FollowUp, Mode, escape};

impl Dispatcher {
    /// Carries out one decision message.
    pub(crate) async fn decide(
        &self,
        decision: &Decision,
        delivery: u32,
        last_delivery: bool,
        deadline: Deadline,
    ) -> Result<(), Failure> {
        let Some(store) = &self.store else {
            // A decision without a store cannot be checked against what was held.
            tracing::error!(event_id = %decision.event_id, action = decision.action.as_str(), "a decision arrived but STORE_TABLE is not set");
            return Err(Failure::Store("STORE_TABLE is not set".into()));
        };
        tracing::info!(event_id = %decision.event_id, action = decision.action.as_str(), by = %decision.by, delivery, "decision received");
        match decision.action {
            Action::Approve | Action::Dismiss => {
                self.approve_or_dismiss(store, decision, delivery, last_delivery, deadline)
                    .await
            }
            Action::Unsuspend => self.undo(store, decision, Undo::Unsuspend, deadline).await,
            Action::Release => self.undo(store, decision, Undo::Release, deadline).await,
        }
    }

    async fn approve_or_dismiss(
        &self,
        store: &Store,
        decision: &Decision,
        delivery: u32,
        last_delivery: bool,
        deadline: Deadline,
    ) -> Result<(), Failure> {
        let event_id = decision.event_id.as_str();
        let store_failed = |e: shared::store::StoreError| Failure::Store(e.to_string());
        if let Some(record) = store.get_decision(event_id).await.map_err(store_failed)?
            && record.result.is_some()
        {
            tracing::info!(event_id, "decision already carried out; nothing done again");
            return Ok(());
        }
        let held = match store.get_held_event(event_id).await.map_err(store_failed)? {
            HeldLookup::Held(held) => held,
            HeldLookup::Expired(_) | HeldLookup::NotFound => {
                let text = format!(
                    ":hourglass: This event can no longer be {}: it expired. Nothing was changed in Okta.",
                    decision.action.past_tense()
                );
                self.reply(decision, &json!({"response_type": "in_channel", "replace_original": false, "text": text}), deadline).await;
                return store
                    .update_decision_result(event_id, "expired: nothing done")
                    .await
                    .map_err(store_failed);
            }
        };
        let event = OortEvent::parse(held.body.as_bytes())
            .map_err(|e| Failure::Unreadable(e.to_string()))?;
        let ctx = Context {
            event: &event,
            event_id,
            delivery,
            max_deliveries: self.config.max_receive_count,
            follow_up: FollowUp::None,
        };
        let who = format!(
            "<@{}> at {}",
            escape(&decision.by),
            format_time(decision.at)
        );
        let mut unfinished = 0;
        let (message, result) = match decision.action {
            Action::Dismiss => {
                let reports: Vec<UserReport> = event
                    .users
                    .iter()
                    .map(|l| UserReport::new(l.as_str(), crate::outcome::Outcome::Held, None))
                    .collect();
                let message = summary::summary(&ctx, &Mode::Held(held.reason.clone()), &reports)
                    .with_note(&format!(
                        ":no_entry_sign: *Dismissed* by {who}: nobody was changed in Okta."
                    ));
                (message, "dismissed: nothing done".to_string())
            }
            _ => {
                // As if the cap, severity and dry run allowed it; protection
                // stays. A held event has no progress of its own, so the
                // record is the approval's.
                let settled = self.settled_earlier(event_id).await;
                // The check's policy, an approve resolved to what it asks for.
                let action = self
                    .config
                    .check_actions
                    .for_check(event.check_id.as_deref())
                    .approved();
                let results = self
                    .run_users(&event, event_id, false, action, &settled, deadline)
                    .await;
                if results.iter().any(|r| !r.is_final()) {
                    self.keep_progress(&event, event_id, &settled, &results)
                        .await;
                }
                let undoable = self.record_actions(event_id, &results).await;
                let (follow_up, left, _) = self.follow_up(&results, delivery, last_delivery)?;
                unfinished = left;
                let reports: Vec<UserReport> = results.iter().map(|r| r.report().clone()).collect();
                self.metrics.users(&reports);
                let ctx = Context { follow_up, ..ctx };
                let message = summary::summary(&ctx, &Mode::Acted, &reports);
                let message = self
                    .with_check_action(message, action)
                    .with_note(&format!(":white_check_mark: *Approved* by {who}."));
                let message = self.offer_undo(message, event_id, &undoable);
                let tally = crate::outcome::counts(&reports)
                    .iter()
                    .map(|(o, n)| format!("{n} {o}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                (message, format!("approved: {tally}"))
            }
        };
        let mut body = message.to_json();
        body["replace_original"] = json!(true);
        if !self.reply(decision, &body, deadline).await {
            // The click's response_url may have expired: post a new summary.
            self.slack
                .post(&message, deadline)
                .await
                .map_err(|e| Failure::Slack(e.to_string()))?;
        }
        if unfinished > 0 {
            // Reported; the decision stays open so that a redrive carries it out.
            return Err(Failure::RetriesExhausted(unfinished));
        }
        tracing::info!(event_id, action = decision.action.as_str(), by = %decision.by, outcome = %result, "decision carried out");
        store
            .update_decision_result(event_id, &result)
            .await
            .map_err(store_failed)
    }

    /// Unsuspend or Release, once: what this product did to the user in
    /// this event is undone, and only while it still holds.
    async fn undo(
        &self,
        store: &Store,
        decision: &Decision,
        undo: Undo,
        deadline: Deadline,
    ) -> Result<(), Failure> {
        let event_id = decision.event_id.as_str();
        let Some(user) = &decision.user else {
            return Err(Failure::Unreadable(format!(
                "a {} decision names no user",
                undo.name()
            )));
        };
        let store_failed = |e: shared::store::StoreError| Failure::Store(e.to_string());
        if let Some(done) = store
            .get_undo(&user.okta_user_id, event_id)
            .await
            .map_err(store_failed)?
            && done.result.is_some()
        {
            tracing::info!(event_id, user = %user.login, undo = undo.name(), "undo already carried out; nothing done again");
            return Ok(());
        }
        let ctx = CallContext::new(event_id, &user.login, deadline);
        let record = store
            .find_action(&user.okta_user_id, event_id)
            .await
            .map_err(store_failed)?;
        let outcome = match undo {
            Undo::Unsuspend => self.unsuspend(user, record, &ctx).await?,
            Undo::Release => self.release(user, record, &ctx).await?,
        };
        self.report_undo(store, decision, user, &ctx, &outcome, undo)
            .await
    }

    /// Unsuspends a user this product suspended in this event, if they are
    /// still SUSPENDED (read before write).
    async fn unsuspend(
        &self,
        user: &UserRef,
        record: Option<ActionRecord>,
        ctx: &CallContext<'_>,
    ) -> Result<UndoOutcome, Failure> {
        let login = &user.login;
        Ok(match record {
            None => Refused(format!(
                "oort-okta-lockout has no record of suspending `{}` in this event: nothing was changed",
                escape(login)
            )),
            Some(done) if done.action != ActionKind::Suspend => Refused(format!(
                "oort-okta-lockout did not suspend `{}` in this event (it did: {}): nothing was changed",
                escape(login),
                done.action.as_str()
            )),
            Some(_) => match self.okta.get_user(&user.okta_user_id, ctx).await {
                Ok(None) => Refused(format!(
                    "`{}` no longer exists in Okta: nothing was changed",
                    escape(login)
                )),
                Ok(Some(now)) if now.status() != "SUSPENDED" => Refused(format!(
                    "`{}` is {} in Okta now, not SUSPENDED: nothing was changed",
                    escape(login),
                    escape(now.status())
                )),
                Ok(Some(_)) => match self.okta.unsuspend(&user.okta_user_id, ctx).await {
                    Ok(Unsuspension::Done) => Done,
                    Ok(Unsuspension::NotSuspended { refusal }) => Refused(format!(
                        "Okta would not unsuspend `{}`: {}",
                        escape(login),
                        escape(&refusal)
                    )),
                    Ok(Unsuspension::Gone) => {
                        Refused(format!("`{}` no longer exists in Okta", escape(login)))
                    }
                    Err(e) => return Err(undo_failure(e)),
                },
                Err(e) => return Err(undo_failure(e)),
            },
        })
    }

    /// Removes a user this product quarantined in this event from the group.
    async fn release(
        &self,
        user: &UserRef,
        record: Option<ActionRecord>,
        ctx: &CallContext<'_>,
    ) -> Result<UndoOutcome, Failure> {
        let login = &user.login;
        Ok(match (record, self.config.quarantine_group_id.as_deref()) {
            (Some(done), Some(group)) if done.action == ActionKind::Quarantine => {
                match self
                    .okta
                    .remove_from_group(group, &user.okta_user_id, ctx)
                    .await
                {
                    Ok(Membership::Done) => Done,
                    Ok(Membership::NotFound { okta }) => Refused(format!(
                        "Okta no longer has `{}` or the quarantine group: {}",
                        escape(login),
                        escape(&okta)
                    )),
                    Err(e) => return Err(undo_failure(e)),
                }
            }
            (Some(_), None) => {
                Refused("QUARANTINE_GROUP_ID is not set any more: nothing was changed".into())
            }
            _ => Refused(format!(
                "oort-okta-lockout has no record of quarantining `{}` in this event: nothing was changed",
                escape(login)
            )),
        })
    }

    /// Reports an undo: one audit log line, the answer in the click's
    /// channel (a new post if its `response_url` expired), the result in the
    /// store.
    async fn report_undo(
        &self,
        store: &Store,
        decision: &Decision,
        user: &UserRef,
        ctx: &CallContext<'_>,
        outcome: &UndoOutcome,
        undo: Undo,
    ) -> Result<(), Failure> {
        let event_id = decision.event_id.as_str();
        let deadline = ctx.deadline;
        let login = &user.login;
        let (text, result) = match outcome {
            Done => (
                format!(
                    ":leftwards_arrow_with_hook: `{}` was {} by <@{}> at {} (their sessions are not restored; they sign in again).",
                    escape(login),
                    undo.done_phrase(),
                    escape(&decision.by),
                    format_time(decision.at)
                ),
                undo.done().to_string(),
            ),
            Refused(why) => (
                format!(":no_entry_sign: {} refused: {why}.", undo.name()),
                format!("refused: {why}"),
            ),
        };
        tracing::info!(
            event_id,
            user = login.as_str(),
            okta_user_id = user.okta_user_id.as_str(),
            by = %decision.by,
            outcome = if matches!(outcome, Done) { undo.done() } else { undo.refused() },
            okta_request_id = ctx.last_request_id().as_deref().unwrap_or_default(),
            "user outcome"
        );
        let body = json!({"response_type": "in_channel", "replace_original": false, "text": text});
        if !self.reply(decision, &body, deadline).await {
            let message = summary::SlackMessage {
                text: text.clone(),
                blocks: vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})],
            };
            self.slack
                .post(&message, deadline)
                .await
                .map_err(|e| Failure::Slack(e.to_string()))?;
        }
        store
            .update_undo_result(&user.okta_user_id, event_id, &result)
            .await
            .map_err(|e| Failure::Store(e.to_string()))
    }

    /// Posts to the click's `response_url`; whether Slack took it.
    async fn reply(
        &self,
        decision: &Decision,
        body: &serde_json::Value,
        deadline: Deadline,
    ) -> bool {
        match self
            .slack
            .respond(&decision.response_url, body, deadline)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(event_id = %decision.event_id, error = %e, "could not answer through the response_url; posting instead");
                false
            }
        }
    }
}

use UndoOutcome::{Done, Refused};

/// Which undo a decision asks for.
#[derive(Debug, Clone, Copy)]
enum Undo {
    Unsuspend,
    Release,
}

impl Undo {
    fn name(self) -> &'static str {
        match self {
            Undo::Unsuspend => "Unsuspend",
            Undo::Release => "Release",
        }
    }

    /// The result word (store) and the log line's outcome when done.
    fn done(self) -> &'static str {
        match self {
            Undo::Unsuspend => "unsuspended",
            Undo::Release => "released",
        }
    }

    fn done_phrase(self) -> &'static str {
        match self {
            Undo::Unsuspend => "*unsuspended*",
            Undo::Release => "*released* from the quarantine group",
        }
    }

    fn refused(self) -> &'static str {
        match self {
            Undo::Unsuspend => "unsuspend refused",
            Undo::Release => "release refused",
        }
    }
}

enum UndoOutcome {
    Done,
    Refused(String),
}

/// Okta could not be asked: retry the decision (transient) or keep it for a
/// person (refused credentials or permission).
fn undo_failure(e: CallError) -> Failure {
    match e {
        CallError::Transient(reason) => Failure::Okta(reason),
        other => Failure::Okta(other.to_string()),
    }
}
