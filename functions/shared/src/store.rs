//! The store: one DynamoDB table of what was held and what people and this
//! product did (feature `store`).
//!
//! The table (`STORE_TABLE`) has string keys `pk` and `sk` and the TTL
//! attribute `ttl` (epoch seconds). It holds:
//!
//! | item | `pk` | `sk` | written |
//! |---|---|---|---|
//! | a held event awaiting a decision | `event#<id>` | `held` | once, by the dispatcher ([`Store::put_held_event`]); expires after `APPROVAL_TTL_HOURS` |
//! | the decision on an event | `event#<id>` | `decision` | once: the first Approve/Dismiss wins ([`Store::record_decision`]) |
//! | a suspension or quarantine this product made (`action`: `suspend` or `quarantine`) | `user#<okta id>` | `action#<event id>` | by the dispatcher ([`Store::record_action`]) |
//! | an undo (Unsuspend or Release) decision | `user#<okta id>` | `undo#<event id>` | once ([`Store::record_undo`]) |
//! | what earlier deliveries of an event settled | `event#<id>` | `progress` | by the dispatcher, on each delivery that leaves users to retry ([`Store::put_progress`]); kept 15 days |
//! | a refused click | `refusal#<slack user id>` | `<RFC 3339 time>#<random>` | each time; kept 30 days ([`Store::record_refusal`]) |
//!
//! A decision or undo has a `state`: `recorded` when written (its queue
//! message is sent right after), `not-queued` when the send failed. A
//! `not-queued` one may be recorded again (the retry), anything else not.
//! (`queued`, which records of earlier versions may carry, counts as sent.)
//! The dispatcher adds the `result` ([`Store::update_decision_result`]) once
//! it has carried the decision out. The click's answer waits for no write
//! after the send: a record left `recorded` without a result is sent again by
//! the next click, under the same de-duplication id.
//!
//! Every failure is a [`StoreError`] that names the table and the operation;
//! nothing here turns a failed or refused write into a success. Reads are
//! strongly consistent. DynamoDB's TTL deletes expired items only within
//! about two days, so [`Store::get_held_event`] checks the expiry itself.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TimeToLiveSpecification,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use time::OffsetDateTime;

use crate::decision::{Action, format_time, parse_time};

/// How long approvals stay possible by default (`APPROVAL_TTL_HOURS`).
pub const DEFAULT_APPROVAL_TTL_HOURS: u64 = 72;
/// Bodies larger than this are stored gzip-compressed and base64-encoded.
pub const COMPRESS_ABOVE_BYTES: usize = 100_000;
/// The largest stored body: a DynamoDB item holds at most 400 KB, and the
/// other attributes need a little room.
pub const MAX_STORED_BODY_BYTES: usize = 390_000;
/// How long a refused click is kept.
pub const REFUSAL_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

const ENCODING_PLAIN: &str = "json";
const ENCODING_GZIP: &str = "gzip+base64";

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// DynamoDB refused or could not be reached (including a missing table).
    #[error("store table {table}: {operation} failed: {reason}")]
    Request {
        table: String,
        operation: &'static str,
        /// DynamoDB's error code, e.g. `ResourceNotFoundException`.
        code: Option<String>,
        reason: String,
    },
    /// An item is not what this code writes.
    #[error("store table {table}: {operation}: item {key} is malformed: {reason}")]
    Malformed {
        table: String,
        operation: &'static str,
        key: String,
        reason: String,
    },
    /// An item the operation needs does not exist.
    #[error("store table {table}: {operation}: {key} does not exist")]
    NotFound {
        table: String,
        operation: &'static str,
        key: String,
    },
    /// The item changed since it was read (another writer took it over).
    #[error("store table {table}: {operation}: {key} was changed by another writer")]
    Conflict {
        table: String,
        operation: &'static str,
        key: String,
    },
    /// The event does not fit an item, even compressed.
    #[error(
        "store table {table}: {operation}: the event is {size} bytes stored (compressed), over the limit of {limit} bytes"
    )]
    TooLarge {
        table: String,
        operation: &'static str,
        size: usize,
        limit: usize,
    },
}

impl StoreError {
    /// DynamoDB's error code, when DynamoDB answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            StoreError::Request { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// An event the dispatcher reported with an Approve button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldEvent {
    pub event_id: String,
    /// The event body exactly as it was received.
    pub body: String,
    /// Why it was held, for people ("25 users, over the cap of 20").
    pub reason: String,
    pub user_count: u32,
    pub created_at: OffsetDateTime,
    /// After this, Approve answers that the event expired.
    pub expires_at: OffsetDateTime,
}

impl HeldEvent {
    /// A held event that can be approved for `approval_ttl` after `created_at`.
    pub fn new(
        event_id: &str,
        body: &str,
        reason: &str,
        user_count: u32,
        created_at: OffsetDateTime,
        approval_ttl: Duration,
    ) -> HeldEvent {
        let created_at = whole_seconds(created_at);
        HeldEvent {
            event_id: event_id.to_string(),
            body: body.to_string(),
            reason: reason.to_string(),
            user_count,
            created_at,
            expires_at: created_at + approval_ttl,
        }
    }
}

/// What [`Store::put_held_event`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutHeld {
    Stored,
    /// The event was stored before (a redelivery): the first copy, and its
    /// expiry, are kept.
    AlreadyStored,
}

/// What [`Store::get_held_event`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldLookup {
    Held(HeldEvent),
    /// Past `expires_at`, whether or not DynamoDB deleted it yet.
    Expired(HeldEvent),
    NotFound,
}

/// Where a recorded decision or undo stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// Written; its queue message not (yet) known to be sent.
    Recorded,
    /// Its queue message was sent (written by earlier versions only).
    Queued,
    /// Its queue message could not be sent: it may be recorded again.
    NotQueued,
}

impl RecordState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Recorded => "recorded",
            RecordState::Queued => "queued",
            RecordState::NotQueued => "not-queued",
        }
    }

    fn parse(raw: &str) -> Option<RecordState> {
        match raw {
            "recorded" => Some(RecordState::Recorded),
            "queued" => Some(RecordState::Queued),
            "not-queued" => Some(RecordState::NotQueued),
            _ => None,
        }
    }
}

/// The decision on an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRecord {
    pub event_id: String,
    /// Approve or Dismiss.
    pub action: Action,
    pub by: String,
    pub at: OffsetDateTime,
    pub state: RecordState,
    /// What the dispatcher made of it, once it did.
    pub result: Option<String>,
}

/// What [`Store::record_decision`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordDecision {
    Recorded,
    /// Someone decided first; nothing was written.
    AlreadyDecided {
        action: Action,
        by: String,
        at: OffsetDateTime,
        state: RecordState,
        /// What the dispatcher made of it, once it did.
        result: Option<String>,
    },
}

/// What this product did to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Suspend,
    Quarantine,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Suspend => "suspend",
            ActionKind::Quarantine => "quarantine",
        }
    }

    fn parse(raw: &str) -> Option<ActionKind> {
        match raw {
            "suspend" => Some(ActionKind::Suspend),
            "quarantine" => Some(ActionKind::Quarantine),
            _ => None,
        }
    }
}

/// A suspension or quarantine this product made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRecord {
    pub event_id: String,
    pub okta_user_id: String,
    pub login: String,
    pub action: ActionKind,
    pub at: OffsetDateTime,
}

/// An Unsuspend decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoRecord {
    pub okta_user_id: String,
    pub event_id: String,
    pub login: String,
    pub by: String,
    pub at: OffsetDateTime,
    pub state: RecordState,
    pub result: Option<String>,
}

/// What [`Store::record_undo`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordUndo {
    Recorded,
    /// Requested before; nothing was written.
    AlreadyDone {
        by: String,
        at: OffsetDateTime,
        state: RecordState,
        /// What the dispatcher made of it, once it did.
        result: Option<String>,
    },
}

/// A click by someone not allowed to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub slack_user_id: String,
    /// The button's `action_id`, as sent (untrusted).
    pub action_id: String,
    /// The event the button was about, when its value could be read.
    pub event_id: Option<String>,
    pub team_id: Option<String>,
    pub at: OffsetDateTime,
}

/// The typed client of the store table.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn whole_seconds(at: OffsetDateTime) -> OffsetDateTime {
    at.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond")
}

fn event_pk(event_id: &str) -> String {
    format!("event#{event_id}")
}

fn user_pk(okta_user_id: &str) -> String {
    format!("user#{okta_user_id}")
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Store {
        Store {
            client,
            table: table.into(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn request_error<E, R>(&self, operation: &'static str, err: &SdkError<E, R>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        StoreError::Request {
            table: self.table.clone(),
            operation,
            code: err.code().map(String::from),
            reason: DisplayErrorContext(err).to_string(),
        }
    }

    fn reader<'a>(&'a self, operation: &'static str, key: String, item: &'a Item) -> Reader<'a> {
        Reader {
            table: &self.table,
            operation,
            key,
            item,
        }
    }

    async fn get(
        &self,
        operation: &'static str,
        pk: &str,
        sk: &str,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.request_error(operation, &e))?;
        Ok(out.item)
    }

    /// Writes `item` unless an item with its key exists (or, with
    /// `retry_not_queued`, exists in any state but `not-queued`). `Ok(None)`:
    /// written; `Ok(Some(existing))`: not written, this was there.
    async fn put_once(
        &self,
        operation: &'static str,
        item: Item,
        retry_not_queued: bool,
    ) -> Result<Option<Item>, StoreError> {
        let pk = item_key(&item, "pk");
        let sk = item_key(&item, "sk");
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        put = if retry_not_queued {
            put.condition_expression("attribute_not_exists(pk) OR #state = :not_queued")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":not_queued", s(RecordState::NotQueued.as_str()))
        } else {
            put.condition_expression("attribute_not_exists(pk)")
        };
        match put.send().await {
            Ok(_) => Ok(None),
            Err(err) => {
                let existing = match err.as_service_error() {
                    Some(e) if e.is_conditional_check_failed_exception() => match e {
                        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                            Some(c.item().cloned())
                        }
                        _ => Some(None),
                    },
                    _ => None,
                };
                match existing {
                    None => Err(self.request_error(operation, &err)),
                    Some(Some(item)) if !item.is_empty() => Ok(Some(item)),
                    // The old item was not returned: read it.
                    Some(_) => match self.get(operation, &pk, &sk).await? {
                        Some(item) => Ok(Some(item)),
                        None => Err(StoreError::Conflict {
                            table: self.table.clone(),
                            operation,
                            key: format!("{pk} {sk}"),
                        }),
                    },
                }
            }
        }
    }

    /// Sets attributes of an existing item; `condition` (with its own names
    /// and values) must hold as well.
    #[allow(clippy::too_many_arguments)]
    async fn update(
        &self,
        operation: &'static str,
        pk: &str,
        sk: &str,
        set: &[(&str, AttributeValue)],
        condition: &str,
        condition_values: &[(&str, AttributeValue)],
        conflict_is_missing: bool,
    ) -> Result<(), StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk));
        let mut expression = Vec::new();
        for (i, (name, value)) in set.iter().enumerate() {
            expression.push(format!("#s{i} = :s{i}"));
            update = update
                .expression_attribute_names(format!("#s{i}"), *name)
                .expression_attribute_values(format!(":s{i}"), value.clone());
        }
        update = update.update_expression(format!("SET {}", expression.join(", ")));
        let mut full_condition = "attribute_exists(pk)".to_string();
        if !condition.is_empty() {
            full_condition = format!("{full_condition} AND ({condition})");
        }
        for (name, value) in condition_values {
            update = update
                .expression_attribute_names(format!("#{name}"), *name)
                .expression_attribute_values(format!(":{name}"), value.clone());
        }
        match update.condition_expression(full_condition).send().await {
            Ok(_) => Ok(()),
            Err(err) => {
                let refused = err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception());
                if !refused {
                    return Err(self.request_error(operation, &err));
                }
                let key = format!("{pk} {sk}");
                let table = self.table.clone();
                if conflict_is_missing || self.get(operation, pk, sk).await?.is_none() {
                    Err(StoreError::NotFound {
                        table,
                        operation,
                        key,
                    })
                } else {
                    Err(StoreError::Conflict {
                        table,
                        operation,
                        key,
                    })
                }
            }
        }
    }

    /// [`pack_text`], refusing what does not fit an item.
    fn pack(
        &self,
        operation: &'static str,
        key: &str,
        text: &str,
    ) -> Result<(String, &'static str), StoreError> {
        let (packed, encoding) = pack_text(text).map_err(|e| StoreError::Malformed {
            table: self.table.clone(),
            operation,
            key: key.to_string(),
            reason: format!("could not compress: {e}"),
        })?;
        if packed.len() > MAX_STORED_BODY_BYTES {
            return Err(StoreError::TooLarge {
                table: self.table.clone(),
                operation,
                size: packed.len(),
                limit: MAX_STORED_BODY_BYTES,
            });
        }
        Ok((packed, encoding))
    }

    // ------------------------------------------------------------ held events

    /// Stores an event reported with an Approve button, once. A body over
    /// [`COMPRESS_ABOVE_BYTES`] is stored gzip-compressed and base64-encoded.
    pub async fn put_held_event(&self, event: &HeldEvent) -> Result<PutHeld, StoreError> {
        const OP: &str = "put_held_event";
        let (body, encoding) = self.pack(OP, &event_pk(&event.event_id), &event.body)?;
        let expires = event.expires_at.unix_timestamp();
        let item: Item = [
            ("pk", s(event_pk(&event.event_id))),
            ("sk", s("held")),
            ("event_id", s(&event.event_id)),
            ("body", s(body)),
            ("body_encoding", s(encoding)),
            ("reason", s(&event.reason)),
            ("user_count", n(event.user_count.into())),
            ("created_at", s(format_time(event.created_at))),
            ("expires_at", n(expires)),
            ("ttl", n(expires)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Ok(match self.put_once(OP, item, false).await? {
            None => PutHeld::Stored,
            Some(_) => PutHeld::AlreadyStored,
        })
    }

    /// The held event, unless it is missing or expired (by its own
    /// `expires_at`, now).
    pub async fn get_held_event(&self, event_id: &str) -> Result<HeldLookup, StoreError> {
        self.get_held_event_at(event_id, OffsetDateTime::now_utc())
            .await
    }

    /// As [`Store::get_held_event`], with the time to judge expiry by.
    pub async fn get_held_event_at(
        &self,
        event_id: &str,
        now: OffsetDateTime,
    ) -> Result<HeldLookup, StoreError> {
        const OP: &str = "get_held_event";
        let pk = event_pk(event_id);
        let Some(item) = self.get(OP, &pk, "held").await? else {
            return Ok(HeldLookup::NotFound);
        };
        let r = self.reader(OP, format!("{pk} held"), &item);
        let body = unpack(&r, "body", "body_encoding")?;
        let event = HeldEvent {
            event_id: r.s("event_id")?.to_string(),
            body,
            reason: r.s("reason")?.to_string(),
            user_count: u32::try_from(r.n("user_count")?)
                .map_err(|_| r.malformed("user_count is out of range"))?,
            created_at: r.time("created_at")?,
            expires_at: OffsetDateTime::from_unix_timestamp(r.n("expires_at")?)
                .map_err(|e| r.malformed(format!("expires_at: {e}")))?,
        };
        Ok(if now >= event.expires_at {
            HeldLookup::Expired(event)
        } else {
            HeldLookup::Held(event)
        })
    }

    // ------------------------------------------------------------ decisions

    /// Records the decision on an event, once: the first writer wins.
    pub async fn record_decision(
        &self,
        event_id: &str,
        action: Action,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<RecordDecision, StoreError> {
        const OP: &str = "record_decision";
        let pk = event_pk(event_id);
        let item: Item = [
            ("pk", s(&pk)),
            ("sk", s("decision")),
            ("event_id", s(event_id)),
            ("action", s(action.as_str())),
            ("by", s(by)),
            ("at", s(format_time(at))),
            ("state", s(RecordState::Recorded.as_str())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        match self.put_once(OP, item, true).await? {
            None => Ok(RecordDecision::Recorded),
            Some(existing) => {
                let d = self.decision_record(OP, format!("{pk} decision"), &existing)?;
                Ok(RecordDecision::AlreadyDecided {
                    action: d.action,
                    by: d.by,
                    at: d.at,
                    state: d.state,
                    result: d.result,
                })
            }
        }
    }

    /// The decision on an event, if any.
    pub async fn get_decision(&self, event_id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        const OP: &str = "get_decision";
        let pk = event_pk(event_id);
        match self.get(OP, &pk, "decision").await? {
            None => Ok(None),
            Some(item) => self
                .decision_record(OP, format!("{pk} decision"), &item)
                .map(Some),
        }
    }

    fn decision_record(
        &self,
        operation: &'static str,
        key: String,
        item: &Item,
    ) -> Result<DecisionRecord, StoreError> {
        let r = self.reader(operation, key, item);
        Ok(DecisionRecord {
            event_id: r.s("event_id")?.to_string(),
            action: match r.s("action")? {
                "approve" => Action::Approve,
                "dismiss" => Action::Dismiss,
                other => return Err(r.malformed(format!("unknown action {other:?}"))),
            },
            by: r.s("by")?.to_string(),
            at: r.time("at")?,
            state: r.state()?,
            result: r.opt_s("result")?.map(String::from),
        })
    }

    /// Marks the decision written by `by` at `at` as queued or not queued.
    /// [`StoreError::Conflict`] when it is no longer theirs.
    pub async fn set_decision_state(
        &self,
        event_id: &str,
        by: &str,
        at: OffsetDateTime,
        state: RecordState,
    ) -> Result<(), StoreError> {
        self.update(
            "set_decision_state",
            &event_pk(event_id),
            "decision",
            &[("state", s(state.as_str()))],
            "#by = :by AND #at = :at",
            &[("by", s(by)), ("at", s(format_time(at)))],
            false,
        )
        .await
    }

    /// Records what the dispatcher made of the decision (`result`, `result_at`).
    /// [`StoreError::NotFound`] when there is no decision on the event.
    pub async fn update_decision_result(
        &self,
        event_id: &str,
        result: &str,
    ) -> Result<(), StoreError> {
        self.update(
            "update_decision_result",
            &event_pk(event_id),
            "decision",
            &[
                ("result", s(result)),
                ("result_at", s(format_time(OffsetDateTime::now_utc()))),
            ],
            "",
            &[],
            true,
        )
        .await
    }

    // ------------------------------------------------------------ suspensions

    /// Records a suspension or quarantine this product made (idempotent: the
    /// same user and event is one record).
    pub async fn record_action(&self, record: &ActionRecord) -> Result<(), StoreError> {
        const OP: &str = "record_action";
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(user_pk(&record.okta_user_id)))
            .item("sk", s(format!("action#{}", record.event_id)))
            .item("event_id", s(&record.event_id))
            .item("okta_user_id", s(&record.okta_user_id))
            .item("login", s(&record.login))
            .item("action", s(record.action.as_str()))
            .item("at", s(format_time(record.at)))
            .send()
            .await
            .map_err(|e| self.request_error(OP, &e))?;
        Ok(())
    }

    /// The record of what this product did to the user for this event.
    pub async fn find_action(
        &self,
        okta_user_id: &str,
        event_id: &str,
    ) -> Result<Option<ActionRecord>, StoreError> {
        const OP: &str = "find_action";
        let pk = user_pk(okta_user_id);
        let sk = format!("action#{event_id}");
        let Some(item) = self.get(OP, &pk, &sk).await? else {
            return Ok(None);
        };
        let r = self.reader(OP, format!("{pk} {sk}"), &item);
        Ok(Some(ActionRecord {
            event_id: r.s("event_id")?.to_string(),
            okta_user_id: r.s("okta_user_id")?.to_string(),
            login: r.s("login")?.to_string(),
            action: ActionKind::parse(r.s("action")?)
                .ok_or_else(|| r.malformed("unknown action"))?,
            at: r.time("at")?,
        }))
    }

    // ------------------------------------------------------------ undo

    /// Records an Unsuspend (or Release) decision, once per user and event.
    pub async fn record_undo(
        &self,
        okta_user_id: &str,
        event_id: &str,
        login: &str,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<RecordUndo, StoreError> {
        const OP: &str = "record_undo";
        let pk = user_pk(okta_user_id);
        let sk = format!("undo#{event_id}");
        let item: Item = [
            ("pk", s(&pk)),
            ("sk", s(&sk)),
            ("okta_user_id", s(okta_user_id)),
            ("event_id", s(event_id)),
            ("login", s(login)),
            ("by", s(by)),
            ("at", s(format_time(at))),
            ("state", s(RecordState::Recorded.as_str())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        match self.put_once(OP, item, true).await? {
            None => Ok(RecordUndo::Recorded),
            Some(existing) => {
                let undo = self.undo_record(OP, format!("{pk} {sk}"), &existing)?;
                Ok(RecordUndo::AlreadyDone {
                    by: undo.by,
                    at: undo.at,
                    state: undo.state,
                    result: undo.result,
                })
            }
        }
    }

    /// The Unsuspend decision for this user and event, if any.
    pub async fn get_undo(
        &self,
        okta_user_id: &str,
        event_id: &str,
    ) -> Result<Option<UndoRecord>, StoreError> {
        const OP: &str = "get_undo";
        let pk = user_pk(okta_user_id);
        let sk = format!("undo#{event_id}");
        match self.get(OP, &pk, &sk).await? {
            None => Ok(None),
            Some(item) => self.undo_record(OP, format!("{pk} {sk}"), &item).map(Some),
        }
    }

    fn undo_record(
        &self,
        operation: &'static str,
        key: String,
        item: &Item,
    ) -> Result<UndoRecord, StoreError> {
        let r = self.reader(operation, key, item);
        Ok(UndoRecord {
            okta_user_id: r.s("okta_user_id")?.to_string(),
            event_id: r.s("event_id")?.to_string(),
            login: r.s("login")?.to_string(),
            by: r.s("by")?.to_string(),
            at: r.time("at")?,
            state: r.state()?,
            result: r.opt_s("result")?.map(String::from),
        })
    }

    /// Marks the undo written by `by` at `at` as queued or not queued.
    pub async fn set_undo_state(
        &self,
        okta_user_id: &str,
        event_id: &str,
        by: &str,
        at: OffsetDateTime,
        state: RecordState,
    ) -> Result<(), StoreError> {
        self.update(
            "set_undo_state",
            &user_pk(okta_user_id),
            &format!("undo#{event_id}"),
            &[("state", s(state.as_str()))],
            "#by = :by AND #at = :at",
            &[("by", s(by)), ("at", s(format_time(at)))],
            false,
        )
        .await
    }

    /// Records what the dispatcher made of the undo.
    pub async fn update_undo_result(
        &self,
        okta_user_id: &str,
        event_id: &str,
        result: &str,
    ) -> Result<(), StoreError> {
        self.update(
            "update_undo_result",
            &user_pk(okta_user_id),
            &format!("undo#{event_id}"),
            &[
                ("result", s(result)),
                ("result_at", s(format_time(OffsetDateTime::now_utc()))),
            ],
            "",
            &[],
            true,
        )
        .await
    }

    // ------------------------------------------------------------ progress

    /// Keeps what earlier deliveries of an event settled (`progress`, the
    /// dispatcher's own text), replacing the previous copy; it expires after
    /// `keep`. Compressed like held events when large.
    pub async fn put_progress(
        &self,
        event_id: &str,
        progress: &str,
        keep: Duration,
    ) -> Result<(), StoreError> {
        const OP: &str = "put_progress";
        let pk = event_pk(event_id);
        let (packed, encoding) = self.pack(OP, &pk, progress)?;
        let ttl = (OffsetDateTime::now_utc() + keep).unix_timestamp();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s("progress"))
            .item("event_id", s(event_id))
            .item("progress", s(packed))
            .item("progress_encoding", s(encoding))
            .item("updated_at", s(format_time(OffsetDateTime::now_utc())))
            .item("ttl", n(ttl))
            .send()
            .await
            .map_err(|e| self.request_error(OP, &e))?;
        Ok(())
    }

    /// What [`Store::put_progress`] kept for the event, if anything.
    pub async fn get_progress(&self, event_id: &str) -> Result<Option<String>, StoreError> {
        const OP: &str = "get_progress";
        let pk = event_pk(event_id);
        let Some(item) = self.get(OP, &pk, "progress").await? else {
            return Ok(None);
        };
        let r = self.reader(OP, format!("{pk} progress"), &item);
        unpack(&r, "progress", "progress_encoding").map(Some)
    }

    // ------------------------------------------------------------ refusals

    /// Records a refused click; kept [`REFUSAL_RETENTION`]. Returns the sort key.
    pub async fn record_refusal(&self, refusal: &Refusal) -> Result<String, StoreError> {
        const OP: &str = "record_refusal";
        let mut random = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).map_err(
            |_| StoreError::Malformed {
                table: self.table.clone(),
                operation: OP,
                key: format!("refusal#{}", refusal.slack_user_id),
                reason: "no random bytes for the sort key".into(),
            },
        )?;
        let sk = format!("{}#{}", format_time(refusal.at), hex::encode(random));
        let ttl = (refusal.at + REFUSAL_RETENTION).unix_timestamp();
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("refusal#{}", refusal.slack_user_id)))
            .item("sk", s(&sk))
            .item("slack_user_id", s(&refusal.slack_user_id))
            .item("action_id", s(&refusal.action_id))
            .item("at", s(format_time(refusal.at)))
            .item("ttl", n(ttl));
        if let Some(event_id) = &refusal.event_id {
            put = put.item("event_id", s(event_id));
        }
        if let Some(team_id) = &refusal.team_id {
            put = put.item("team_id", s(team_id));
        }
        put.send().await.map_err(|e| self.request_error(OP, &e))?;
        Ok(sk)
    }
}

/// Text as stored: as it is, or gzip-compressed and base64-encoded when over
/// [`COMPRESS_ABOVE_BYTES`]; with the encoding's name.
fn pack_text(text: &str) -> std::io::Result<(String, &'static str)> {
    if text.len() <= COMPRESS_ABOVE_BYTES {
        return Ok((text.to_string(), ENCODING_PLAIN));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes())?;
    Ok((BASE64.encode(gz.finish()?), ENCODING_GZIP))
}

/// The text [`pack_text`] stored in attribute `name`, its encoding in `encoding`.
fn unpack(r: &Reader<'_>, name: &str, encoding: &str) -> Result<String, StoreError> {
    match r.s(encoding)? {
        ENCODING_PLAIN => Ok(r.s(name)?.to_string()),
        ENCODING_GZIP => {
            let bytes = BASE64
                .decode(r.s(name)?)
                .map_err(|e| r.malformed(format!("{name} is not base64: {e}")))?;
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::GzDecoder::new(bytes.as_slice()),
                &mut text,
            )
            .map_err(|e| r.malformed(format!("{name} does not decompress: {e}")))?;
            Ok(text)
        }
        other => Err(r.malformed(format!("unknown {encoding} {other:?}"))),
    }
}

fn item_key(item: &Item, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(v)) => v.clone(),
        _ => String::new(),
    }
}

/// Typed reads of one item's attributes, with errors naming the item.
struct Reader<'a> {
    table: &'a str,
    operation: &'static str,
    key: String,
    item: &'a Item,
}

impl Reader<'_> {
    fn malformed(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Malformed {
            table: self.table.to_string(),
            operation: self.operation,
            key: self.key.clone(),
            reason: reason.into(),
        }
    }

    fn opt_s(&self, name: &str) -> Result<Option<&str>, StoreError> {
        match self.item.get(name) {
            None => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v)),
            Some(_) => Err(self.malformed(format!("{name} is not a string"))),
        }
    }

    fn s(&self, name: &str) -> Result<&str, StoreError> {
        self.opt_s(name)?
            .ok_or_else(|| self.malformed(format!("{name} is missing")))
    }

    fn n(&self, name: &str) -> Result<i64, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::N(v)) => v
                .parse()
                .map_err(|_| self.malformed(format!("{name} is not a whole number"))),
            Some(_) => Err(self.malformed(format!("{name} is not a number"))),
            None => Err(self.malformed(format!("{name} is missing"))),
        }
    }

    fn time(&self, name: &str) -> Result<OffsetDateTime, StoreError> {
        parse_time(self.s(name)?).map_err(|e| self.malformed(format!("{name}: {e}")))
    }

    fn state(&self) -> Result<RecordState, StoreError> {
        let raw = self.s("state")?;
        RecordState::parse(raw).ok_or_else(|| self.malformed(format!("unknown state {raw:?}")))
    }
}

/// Creates a store table as `template.yaml` does (keys `pk`/`sk`, on-demand,
/// TTL on `ttl`): for local runs and tests.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let error = |operation: &'static str, reason: String| StoreError::Request {
        table: table.to_string(),
        operation,
        code: None,
        reason,
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| error("create_table", e.to_string()))
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| error("create_table", e.to_string()))
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(attribute("pk")?)
        .attribute_definitions(attribute("sk")?)
        .send()
        .await
        .map_err(|e| error("create_table", DisplayErrorContext(&e).to_string()))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("ttl")
                .enabled(true)
                .build()
                .map_err(|e| error("update_time_to_live", e.to_string()))?,
        )
        .send()
        .await
        .map_err(|e| error("update_time_to_live", DisplayErrorContext(&e).to_string()))?;
    Ok(())
}
