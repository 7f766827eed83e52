//! From a Slack click to an answer.
//!
//! The order is fixed and cheap-first: the method, the signature headers and
//! timestamp window (no I/O), the signature itself (the cached signing
//! secret), the payload, the app and workspace, then who clicked, and only
//! then the store and the queue. A request that fails any check before the
//! clicker is known gets a 4xx JSON `{"error": ...}` and leaves no trace but
//! a log line. Every verified click gets 200 with an ephemeral reply.
//!
//! Each decision is done once. Approve and Dismiss write the event's
//! decision with a conditional put (the first click wins); Unsuspend writes
//! the undo of that user and event the same way. Only the click that wrote
//! the record sends the queue message, and the answer waits for nothing
//! after it (one write and one send: Slack's 3 seconds are a user waiting).
//! A double click or a replayed request finds the record and is told who
//! decided and when. If the send fails, the record is marked `not-queued`,
//! so that the retry the reply asks for can take it over. A record still
//! `recorded` with no result from the dispatcher (not carried out yet, or
//! the function stopped between the write and the send) is sent again by the
//! next click of the same action, with the same de-duplication id: the queue
//! drops the copy if the first send did arrive, and the dispatcher does
//! nothing twice.
//!
//! Everything runs within [`BUDGET`], well under Slack's 3 seconds.

use std::time::Duration;

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::MessageAttributeValue;
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use shared::decision::{Action, Button, Decision};
use shared::secrets::SecretReader;
use shared::store::{
    HeldLookup, RecordDecision, RecordState, RecordUndo, Refusal, Store, StoreError,
};
use time::OffsetDateTime;

use crate::authorize::{Authorizer, GroupCheck, Verdict};
use crate::config::Config;
use crate::interaction::{self, Interaction};
use crate::reply;
use crate::signature::{
    self, KeyError, MIN_EARLY_REFRESH, Presented, SIGNATURE_HEADER, SigningSecret, TIMESTAMP_HEADER,
};

/// The whole answer, every call included. Slack gives up after 3 seconds.
pub const BUDGET: Duration = Duration::from_millis(2500);
/// A click's body is a few KB; a function URL buffers at most 6 MB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// An answer before the clicker is known: not Slack's, or not a click.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("method {0} is not allowed: Slack sends clicks with POST")]
    MethodNotAllowed(String),
    #[error("body is {0} bytes, over the limit of {MAX_BODY_BYTES} bytes")]
    TooLarge(usize),
    #[error(transparent)]
    Signature(#[from] signature::SignatureError),
    #[error("{0}")]
    NotAnInteraction(String),
    #[error("request is for another Slack app")]
    WrongApp,
    #[error("request is from another Slack workspace")]
    WrongTeam,
    #[error("the request could not be verified right now; retry later")]
    KeyUnavailable,
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::Signature(_) | Rejection::WrongApp | Rejection::WrongTeam => {
                StatusCode::UNAUTHORIZED
            }
            Rejection::NotAnInteraction(_) => StatusCode::BAD_REQUEST,
            Rejection::KeyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// What became of a verified click, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded and queued.
    Queued,
    /// Recorded before (double click, replay, or someone else first).
    AlreadyDone,
    /// Refused: not an approver.
    Refused,
    /// Approve of an event that expired or is unknown.
    Expired,
    /// A button this function does not know.
    NotUnderstood,
    /// Our failure (store, queue, group check, time): nothing happened.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Queued => "queued",
            Outcome::AlreadyDone => "already done",
            Outcome::Refused => "refused",
            Outcome::Expired => "expired",
            Outcome::NotUnderstood => "not understood",
            Outcome::Failed => "failed",
        }
    }
}

/// The log fields of one click, filled in as they become known.
#[derive(Debug, Default)]
struct ClickLog {
    slack_user: Option<String>,
    action: Option<String>,
    event_id: Option<String>,
    okta_user_id: Option<String>,
    via: Option<&'static str>,
    reason: Option<String>,
}

/// The function: configuration and clients, built once per cold start.
pub struct Actions {
    config: Config,
    sqs: aws_sdk_sqs::Client,
    store: Store,
    signing: SigningSecret,
    authorizer: Authorizer,
}

impl Actions {
    /// `http` makes the client for Slack's `usergroups.users.list` (give it
    /// timeouts well under a second). It is called only when
    /// `SLACK_APPROVER_GROUP` is set: building a client reads the system's
    /// root certificates, which a cold start without a group can skip.
    pub fn new(
        config: Config,
        sqs: aws_sdk_sqs::Client,
        secrets: aws_sdk_secretsmanager::Client,
        dynamodb: aws_sdk_dynamodb::Client,
        http: impl FnOnce() -> reqwest::Client,
    ) -> Actions {
        Actions::with_min_key_refresh(config, sqs, secrets, dynamodb, http, MIN_EARLY_REFRESH)
    }

    /// As [`Actions::new`], with another floor between early re-reads of the
    /// signing secret (tests use a short one).
    pub fn with_min_key_refresh(
        config: Config,
        sqs: aws_sdk_sqs::Client,
        secrets: aws_sdk_secretsmanager::Client,
        dynamodb: aws_sdk_dynamodb::Client,
        http: impl FnOnce() -> reqwest::Client,
        min_key_refresh: Duration,
    ) -> Actions {
        let reader = SecretReader::new(secrets);
        let signing = SigningSecret::new(
            reader.clone(),
            config.signing_secret_id.clone(),
            config.secret_ttl,
            min_key_refresh,
        );
        let group = match (&config.approver_group, &config.slack_secret_id) {
            (Some(group), Some(secret_id)) => Some(GroupCheck::new(
                group.clone(),
                &config.slack_api_url,
                http(),
                reader,
                secret_id.clone(),
                config.secret_ttl,
            )),
            _ => None,
        };
        let authorizer = Authorizer::new(config.approvers.clone(), group);
        if !authorizer.anyone() {
            tracing::warn!(
                "neither SLACK_APPROVERS nor SLACK_APPROVER_GROUP is set: every click will be refused"
            );
        }
        Actions {
            store: Store::new(dynamodb, config.store_table.clone()),
            config,
            sqs,
            signing,
            authorizer,
        }
    }

    /// Answers one request. Never fails: every outcome is an HTTP answer.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let mut log = ClickLog::default();
        let answer = tokio::time::timeout(BUDGET, self.process(&request, &mut log)).await;
        let answer = answer.unwrap_or_else(|_| {
            log.reason = Some(format!("not done within {} ms", BUDGET.as_millis()));
            Ok((Outcome::Failed, reply::timed_out()))
        });
        let ClickLog {
            slack_user,
            action,
            event_id,
            okta_user_id,
            via,
            reason,
        } = log;
        match answer {
            Ok((outcome, text)) => {
                let fields = (
                    slack_user.unwrap_or_default(),
                    action.unwrap_or_default(),
                    event_id.unwrap_or_default(),
                    okta_user_id.unwrap_or_default(),
                    reason.unwrap_or_default(),
                );
                if outcome == Outcome::Failed {
                    tracing::error!(
                        slack_user = %fields.0, action = %fields.1, event_id = %fields.2,
                        okta_user_id = %fields.3, via = via.unwrap_or_default(),
                        outcome = outcome.as_str(), status = 200, reason = %fields.4,
                        "click failed"
                    );
                } else {
                    tracing::info!(
                        slack_user = %fields.0, action = %fields.1, event_id = %fields.2,
                        okta_user_id = %fields.3, via = via.unwrap_or_default(),
                        outcome = outcome.as_str(), status = 200, reason = %fields.4,
                        "click {}", outcome.as_str()
                    );
                }
                respond(StatusCode::OK, reply::ephemeral(&text))
            }
            Err(rejection) => {
                let status = rejection.status();
                tracing::info!(
                    method = %request.method(),
                    slack_user = slack_user.unwrap_or_default(),
                    outcome = "rejected",
                    status = status.as_u16(),
                    reason = %reason.unwrap_or_else(|| rejection.to_string()),
                    "request rejected"
                );
                let mut response = respond(status, json!({"error": rejection.to_string()}));
                if status == StatusCode::METHOD_NOT_ALLOWED {
                    response
                        .headers_mut()
                        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
                }
                response
            }
        }
    }

    async fn process(
        &self,
        request: &Request,
        log: &mut ClickLog,
    ) -> Result<(Outcome, String), Rejection> {
        if request.method() != Method::POST {
            return Err(Rejection::MethodNotAllowed(request.method().to_string()));
        }
        let body: &[u8] = match request.body() {
            Body::Empty => &[],
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => return Err(Rejection::NotAnInteraction("body could not be read".into())),
        };
        if body.len() > MAX_BODY_BYTES {
            return Err(Rejection::TooLarge(body.len()));
        }
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        let now = OffsetDateTime::now_utc();
        let presented = Presented::check(
            header(TIMESTAMP_HEADER),
            header(SIGNATURE_HEADER),
            now.unix_timestamp(),
        )?;
        match self.signing.verify(&presented, body).await {
            Ok(true) => {}
            Ok(false) => return Err(signature::SignatureError::Mismatch.into()),
            Err(e) => {
                match &e {
                    KeyError::Unset(_) => {
                        tracing::error!(error = %e, "the signing secret is not set")
                    }
                    KeyError::Unavailable(_) => {
                        tracing::error!(error = %e, "could not read the signing secret")
                    }
                }
                log.reason = Some(e.to_string());
                return Err(Rejection::KeyUnavailable);
            }
        }
        let click = interaction::parse(body).map_err(Rejection::NotAnInteraction)?;
        log.slack_user = Some(click.user_id.clone());
        log.action = Some(truncated(&click.action_id));
        if let Some(app) = &self.config.app_id
            && click.api_app_id.as_deref() != Some(app.as_str())
        {
            return Err(Rejection::WrongApp);
        }
        if let Some(team) = &self.config.team_id
            && click.team_id.as_deref() != Some(team.as_str())
        {
            return Err(Rejection::WrongTeam);
        }
        let button = Button::parse(&click.action_id, &click.value);
        if let Ok(button) = &button {
            log.event_id = Some(button.event_id.clone());
            log.okta_user_id = button.user.as_ref().map(|u| u.okta_user_id.clone());
        }
        match self.authorizer.authorize(&click.user_id).await {
            Ok(Verdict::Allowed(via)) => log.via = Some(via.as_str()),
            Ok(Verdict::Refused) => return Ok(self.refuse(&click, button.ok(), now, log).await),
            Err(e) => {
                log.reason = Some(e.to_string());
                return Ok((Outcome::Failed, reply::check_failed()));
            }
        }
        let button = match button {
            Ok(button) => button,
            Err(reason) => {
                log.reason = Some(reason);
                return Ok((Outcome::NotUnderstood, reply::not_understood()));
            }
        };
        Ok(match button.action {
            Action::Approve => self.approve(&button, &click, now, log).await,
            Action::Dismiss => self.decide(&button, &click, now, None, log).await,
            Action::Unsuspend | Action::Release => self.undo(&button, &click, now, log).await,
        })
    }

    async fn refuse(
        &self,
        click: &Interaction,
        button: Option<Button>,
        now: OffsetDateTime,
        log: &mut ClickLog,
    ) -> (Outcome, String) {
        let refusal = Refusal {
            slack_user_id: click.user_id.clone(),
            action_id: truncated(&click.action_id),
            event_id: button.map(|b| b.event_id),
            team_id: click.team_id.clone(),
            at: now,
        };
        if let Err(e) = self.store.record_refusal(&refusal).await {
            // Still refused; the log line is the record.
            tracing::error!(slack_user = %click.user_id, error = %e, "could not record a refusal");
            log.reason = Some(format!(
                "not an approver; the refusal was not recorded: {e}"
            ));
        } else {
            log.reason = Some("not an approver".into());
        }
        (Outcome::Refused, reply::not_allowed())
    }

    async fn approve(
        &self,
        button: &Button,
        click: &Interaction,
        now: OffsetDateTime,
        log: &mut ClickLog,
    ) -> (Outcome, String) {
        let hours = self.config.approval_ttl.as_secs() / 3600;
        let held = match self.store.get_held_event_at(&button.event_id, now).await {
            Ok(HeldLookup::Held(held)) if held.created_at + self.config.approval_ttl > now => held,
            Ok(HeldLookup::Held(_)) | Ok(HeldLookup::Expired(_)) => {
                log.reason = Some("the held event expired".into());
                return (Outcome::Expired, reply::expired(hours));
            }
            Ok(HeldLookup::NotFound) => {
                log.reason = Some("no held event with this id".into());
                return (Outcome::Expired, reply::expired(hours));
            }
            Err(e) => return store_failed(e, log),
        };
        self.decide(button, click, now, Some(held.user_count), log)
            .await
    }

    /// Approve or Dismiss: record once, then queue.
    async fn decide(
        &self,
        button: &Button,
        click: &Interaction,
        now: OffsetDateTime,
        user_count: Option<u32>,
        log: &mut ClickLog,
    ) -> (Outcome, String) {
        let by = click.user_id.as_str();
        let success = || match button.action {
            Action::Approve => reply::approved(user_count.unwrap_or_default()),
            _ => reply::dismissed(),
        };
        let recorded = self
            .store
            .record_decision(&button.event_id, button.action, by, now)
            .await;
        // `again`: an earlier click recorded it; this one only sends it again.
        let (first_by, first_at, again) = match recorded {
            Err(e) => return store_failed(e, log),
            Ok(RecordDecision::Recorded) => (by.to_string(), now, false),
            Ok(RecordDecision::AlreadyDecided {
                action,
                by: first,
                at,
                state,
                result,
            }) => {
                if state != RecordState::Recorded || action != button.action || result.is_some() {
                    log.reason = Some(format!("already {} by {first}", action.past_tense()));
                    return (
                        Outcome::AlreadyDone,
                        reply::already_decided(action, &first, at),
                    );
                }
                // Recorded, not carried out yet: send it again, in case the
                // first send never happened; the queue drops a second copy.
                log.reason = Some(format!(
                    "sent again: recorded by {first}, not carried out yet"
                ));
                (first, at, true)
            }
        };
        let decision = match Decision::new(button, &first_by, first_at, &click.response_url) {
            Ok(decision) => decision,
            Err(reason) => {
                log.reason = Some(format!("could not build the decision: {reason}"));
                return (Outcome::Failed, reply::not_queued());
            }
        };
        let event_id = &button.event_id;
        if let Err(reason) = self.send(&decision).await {
            log.reason = Some(reason);
            if let Err(e) = self
                .store
                .set_decision_state(event_id, &first_by, first_at, RecordState::NotQueued)
                .await
            {
                tracing::error!(event_id = %event_id, error = %e, "could not mark a decision not queued; the next click sends it again");
            }
            return (Outcome::Failed, reply::not_queued());
        }
        if !again {
            (Outcome::Queued, success())
        } else {
            (
                Outcome::AlreadyDone,
                reply::already_decided(button.action, &first_by, first_at),
            )
        }
    }

    /// Unsuspend or Release: record once per user and event, then queue.
    async fn undo(
        &self,
        button: &Button,
        click: &Interaction,
        now: OffsetDateTime,
        log: &mut ClickLog,
    ) -> (Outcome, String) {
        let Some(user) = &button.user else {
            return (Outcome::NotUnderstood, reply::not_understood());
        };
        let by = click.user_id.as_str();
        let recorded = self
            .store
            .record_undo(&user.okta_user_id, &button.event_id, &user.login, by, now)
            .await;
        let (first_by, first_at, again) = match recorded {
            Err(e) => return store_failed(e, log),
            Ok(RecordUndo::Recorded) => (by.to_string(), now, false),
            Ok(RecordUndo::AlreadyDone {
                by: first,
                at,
                state,
                result,
            }) => {
                if state != RecordState::Recorded || result.is_some() {
                    log.reason = Some(format!("already requested by {first}"));
                    return (
                        Outcome::AlreadyDone,
                        reply::already_undone(button.action, &user.login, &first, at),
                    );
                }
                log.reason = Some(format!(
                    "sent again: recorded by {first}, not carried out yet"
                ));
                (first, at, true)
            }
        };
        let decision = match Decision::new(button, &first_by, first_at, &click.response_url) {
            Ok(decision) => decision,
            Err(reason) => {
                log.reason = Some(format!("could not build the decision: {reason}"));
                return (Outcome::Failed, reply::not_queued());
            }
        };
        if let Err(reason) = self.send(&decision).await {
            log.reason = Some(reason);
            let marked = self
                .store
                .set_undo_state(
                    &user.okta_user_id,
                    &button.event_id,
                    &first_by,
                    first_at,
                    RecordState::NotQueued,
                )
                .await;
            if let Err(e) = marked {
                tracing::error!(event_id = %button.event_id, action = button.action.as_str(), error = %e, "could not mark an undo not queued; the next click sends it again");
            }
            return (Outcome::Failed, reply::not_queued());
        }
        if !again {
            (
                Outcome::Queued,
                reply::undo_requested(button.action, &user.login),
            )
        } else {
            (
                Outcome::AlreadyDone,
                reply::already_undone(button.action, &user.login, &first_by, first_at),
            )
        }
    }

    /// One decision message on the FIFO queue.
    async fn send(&self, decision: &Decision) -> Result<String, String> {
        let message = decision.to_message();
        let mut send = self
            .sqs
            .send_message()
            .queue_url(&self.config.queue_url)
            .message_body(&message.body)
            .message_group_id(&message.group_id)
            .message_deduplication_id(&message.dedup_id);
        for (name, value) in &message.attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| format!("could not build the message attribute {name}: {e}"))?;
            send = send.message_attributes(*name, attribute);
        }
        match send.send().await {
            Ok(output) => Ok(output.message_id.unwrap_or_default()),
            Err(err) => {
                tracing::error!(
                    event_id = %decision.event_id,
                    error_code = err.code().unwrap_or("none"),
                    error = %DisplayErrorContext(&err),
                    "could not queue the decision"
                );
                Err(format!(
                    "could not queue the decision: {}",
                    err.code().unwrap_or("no answer")
                ))
            }
        }
    }
}

fn store_failed(e: StoreError, log: &mut ClickLog) -> (Outcome, String) {
    log.reason = Some(e.to_string());
    (Outcome::Failed, reply::not_recorded())
}

/// Untrusted ids from the payload, bounded for logs and records.
fn truncated(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

fn respond(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(body.to_string()))
        .expect("static status and header are valid")
}
