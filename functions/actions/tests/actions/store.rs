//! `shared::store` against moto's DynamoDB.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use shared::decision::Action;
use shared::store::{
    ActionKind, ActionRecord, HeldEvent, HeldLookup, PutHeld, RecordDecision, RecordState,
    RecordUndo, Refusal, Store, StoreError,
};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::support::{dynamodb, local_aws, new_table};

const TTL: Duration = Duration::from_secs(72 * 3600);

fn event_body(users: usize) -> String {
    let users: Vec<String> = (0..users)
        .map(|i| format!("user{i:06}@example.com"))
        .collect();
    serde_json::json!({"id": "e", "detail-type": "FAILED_CHECK", "detail": {"usersFailing": users}})
        .to_string()
}

#[tokio::test]
async fn the_table_is_created_with_ttl_on_ttl() {
    let aws = local_aws().await;
    let (table, _) = new_table(&aws).await;
    let ttl = dynamodb(&aws)
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name(), Some("ttl"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}

#[tokio::test]
async fn held_events_round_trip_once_and_expire() {
    let aws = local_aws().await;
    let (table, store) = new_table(&aws).await;
    let created = datetime!(2026-01-05 09:30:00 UTC);
    let held = HeldEvent::new(
        "e-1",
        &event_body(3),
        "25 users, over the cap of 20",
        25,
        created,
        TTL,
    );
    assert_eq!(held.expires_at, datetime!(2026-01-08 09:30:00 UTC));
    assert_eq!(store.put_held_event(&held).await.unwrap(), PutHeld::Stored);
    // A redelivery keeps the first copy and its expiry.
    let later = HeldEvent::new(
        "e-1",
        "{}",
        "other",
        1,
        created + Duration::from_secs(60),
        TTL,
    );
    assert_eq!(
        store.put_held_event(&later).await.unwrap(),
        PutHeld::AlreadyStored
    );
    let before = created + Duration::from_secs(3600);
    assert_eq!(
        store.get_held_event_at("e-1", before).await.unwrap(),
        HeldLookup::Held(held.clone())
    );
    let after = created + TTL;
    assert_eq!(
        store.get_held_event_at("e-1", after).await.unwrap(),
        HeldLookup::Expired(held.clone())
    );
    assert_eq!(
        store.get_held_event("e-1").await.unwrap(),
        HeldLookup::Expired(held)
    );
    assert_eq!(
        store.get_held_event("unknown").await.unwrap(),
        HeldLookup::NotFound
    );
    // The item, as DynamoDB holds it: ttl = expires_at, in epoch seconds.
    let item = dynamodb(&aws)
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("event#e-1".into()))
        .key("sk", AttributeValue::S("held".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let expires = datetime!(2026-01-08 09:30:00 UTC)
        .unix_timestamp()
        .to_string();
    assert_eq!(item["ttl"], AttributeValue::N(expires.clone()));
    assert_eq!(item["expires_at"], AttributeValue::N(expires));
    assert_eq!(item["body_encoding"], AttributeValue::S("json".into()));
    assert_eq!(item["user_count"], AttributeValue::N("25".into()));
}

#[tokio::test]
async fn large_events_are_stored_compressed_and_too_large_ones_refused() {
    let aws = local_aws().await;
    let (table, store) = new_table(&aws).await;
    let body = event_body(12_000);
    assert!(body.len() > 250_000, "{}", body.len());
    let held = HeldEvent::new("big", &body, "cap", 12_000, OffsetDateTime::now_utc(), TTL);
    assert_eq!(store.put_held_event(&held).await.unwrap(), PutHeld::Stored);
    let HeldLookup::Held(read) = store.get_held_event("big").await.unwrap() else {
        panic!("not held")
    };
    assert_eq!(read.body, body);
    let item = dynamodb(&aws)
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("event#big".into()))
        .key("sk", AttributeValue::S("held".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(
        item["body_encoding"],
        AttributeValue::S("gzip+base64".into())
    );
    let AttributeValue::S(stored) = &item["body"] else {
        panic!("body is not a string")
    };
    assert!(
        stored.len() < body.len() / 3,
        "{} of {}",
        stored.len(),
        body.len()
    );

    // Noise does not compress: over the item limit even compressed.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: String = (0..1_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(
                b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    [(x % 62) as usize],
            )
        })
        .collect();
    let huge = HeldEvent::new("huge", &noise, "cap", 1, OffsetDateTime::now_utc(), TTL);
    let err = store.put_held_event(&huge).await.unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains(&table), "{err}");
    assert_eq!(
        store.get_held_event("huge").await.unwrap(),
        HeldLookup::NotFound
    );
}

#[tokio::test]
async fn a_decision_is_recorded_once_and_the_first_wins() {
    let aws = local_aws().await;
    let (_, store) = new_table(&aws).await;
    let at = datetime!(2026-01-05 09:30:00 UTC);
    assert_eq!(
        store
            .record_decision("e-1", Action::Approve, "U0FIRST", at)
            .await
            .unwrap(),
        RecordDecision::Recorded
    );
    let later = at + Duration::from_secs(5);
    assert_eq!(
        store
            .record_decision("e-1", Action::Dismiss, "U0SECOND", later)
            .await
            .unwrap(),
        RecordDecision::AlreadyDecided {
            action: Action::Approve,
            by: "U0FIRST".into(),
            at,
            state: RecordState::Recorded,
            result: None,
        }
    );
    store
        .set_decision_state("e-1", "U0FIRST", at, RecordState::Queued)
        .await
        .unwrap();
    // Only the writer of the record may change its state.
    let err = store
        .set_decision_state("e-1", "U0SECOND", later, RecordState::NotQueued)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    store
        .update_decision_result("e-1", "3 suspended")
        .await
        .unwrap();
    let record = store.get_decision("e-1").await.unwrap().unwrap();
    assert_eq!(record.action, Action::Approve);
    assert_eq!(record.by, "U0FIRST");
    assert_eq!(record.at, at);
    assert_eq!(record.state, RecordState::Queued);
    assert_eq!(record.result.as_deref(), Some("3 suspended"));
    // Queued: nobody takes it over.
    assert!(matches!(
        store
            .record_decision("e-1", Action::Approve, "U0FIRST", later)
            .await
            .unwrap(),
        RecordDecision::AlreadyDecided {
            state: RecordState::Queued,
            result: Some(_),
            ..
        }
    ));
    // No decision: the result has nowhere to go.
    let err = store.update_decision_result("e-2", "x").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert_eq!(store.get_decision("e-2").await.unwrap(), None);
    let err = store
        .set_decision_state("e-2", "U0FIRST", at, RecordState::Queued)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn a_decision_that_was_not_queued_can_be_taken_over() {
    let aws = local_aws().await;
    let (_, store) = new_table(&aws).await;
    let at = datetime!(2026-01-05 09:30:00 UTC);
    store
        .record_decision("e", Action::Approve, "U0FIRST", at)
        .await
        .unwrap();
    store
        .set_decision_state("e", "U0FIRST", at, RecordState::NotQueued)
        .await
        .unwrap();
    let later = at + Duration::from_secs(30);
    assert_eq!(
        store
            .record_decision("e", Action::Dismiss, "U0SECOND", later)
            .await
            .unwrap(),
        RecordDecision::Recorded
    );
    let record = store.get_decision("e").await.unwrap().unwrap();
    assert_eq!(
        (record.action, record.by.as_str(), record.state),
        (Action::Dismiss, "U0SECOND", RecordState::Recorded)
    );
}

#[tokio::test]
async fn suspensions_and_undos_are_per_user_and_event() {
    let aws = local_aws().await;
    let (_, store) = new_table(&aws).await;
    let at = datetime!(2026-01-05 09:30:00 UTC);
    let record = ActionRecord {
        event_id: "e-1".into(),
        okta_user_id: "00u1".into(),
        login: "ana@example.com".into(),
        action: ActionKind::Suspend,
        at,
    };
    store.record_action(&record).await.unwrap();
    store.record_action(&record).await.unwrap(); // idempotent
    assert_eq!(
        store.find_action("00u1", "e-1").await.unwrap(),
        Some(record)
    );
    assert_eq!(store.find_action("00u1", "e-2").await.unwrap(), None);
    assert_eq!(store.find_action("00u2", "e-1").await.unwrap(), None);

    assert_eq!(
        store
            .record_undo("00u1", "e-1", "ana@example.com", "U0FIRST", at)
            .await
            .unwrap(),
        RecordUndo::Recorded
    );
    assert_eq!(
        store
            .record_undo(
                "00u1",
                "e-1",
                "ana@example.com",
                "U0SECOND",
                at + Duration::from_secs(1)
            )
            .await
            .unwrap(),
        RecordUndo::AlreadyDone {
            by: "U0FIRST".into(),
            at,
            state: RecordState::Recorded,
            result: None,
        }
    );
    store
        .set_undo_state("00u1", "e-1", "U0FIRST", at, RecordState::Queued)
        .await
        .unwrap();
    store
        .update_undo_result("00u1", "e-1", "unsuspended")
        .await
        .unwrap();
    let undo = store.get_undo("00u1", "e-1").await.unwrap().unwrap();
    assert_eq!(undo.login, "ana@example.com");
    assert_eq!(undo.state, RecordState::Queued);
    assert_eq!(undo.result.as_deref(), Some("unsuspended"));
    // Another event of the same user is another undo.
    assert_eq!(
        store
            .record_undo("00u1", "e-2", "ana@example.com", "U0FIRST", at)
            .await
            .unwrap(),
        RecordUndo::Recorded
    );
    let err = store
        .update_undo_result("00u9", "e-1", "x")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn refusals_are_kept_30_days() {
    let aws = local_aws().await;
    let (table, store) = new_table(&aws).await;
    let at = datetime!(2026-01-05 09:30:00 UTC);
    let refusal = Refusal {
        slack_user_id: "U0STRANGER".into(),
        action_id: "approve".into(),
        event_id: Some("e-1".into()),
        team_id: Some("T1".into()),
        at,
    };
    let first = store.record_refusal(&refusal).await.unwrap();
    let second = store.record_refusal(&refusal).await.unwrap();
    assert_ne!(first, second, "each refusal is its own item");
    assert!(first.starts_with("2026-01-05T09:30:00Z#"), "{first}");
    let items = dynamodb(&aws)
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("refusal#U0STRANGER".into()))
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    assert_eq!(items.len(), 2);
    let ttl = (at + Duration::from_secs(30 * 24 * 3600))
        .unix_timestamp()
        .to_string();
    assert_eq!(items[0]["ttl"], AttributeValue::N(ttl));
    assert_eq!(items[0]["event_id"], AttributeValue::S("e-1".into()));
    assert_eq!(items[0]["action_id"], AttributeValue::S("approve".into()));
}

#[tokio::test]
async fn a_missing_table_is_an_error_naming_table_and_operation() {
    let aws = local_aws().await;
    let store = Store::new(dynamodb(&aws), "no-such-table");
    let at = datetime!(2026-01-05 09:30:00 UTC);
    let errors = [
        store
            .record_decision("e", Action::Approve, "U0A1", at)
            .await
            .unwrap_err(),
        store.get_held_event("e").await.map(|_| ()).unwrap_err(),
        store
            .record_undo("00u1", "e", "a@b.co", "U0A1", at)
            .await
            .map(|_| ())
            .unwrap_err(),
        store
            .record_refusal(&Refusal {
                slack_user_id: "U0A1".into(),
                action_id: "approve".into(),
                event_id: None,
                team_id: None,
                at,
            })
            .await
            .map(|_| ())
            .unwrap_err(),
        store
            .find_action("00u1", "e")
            .await
            .map(|_| ())
            .unwrap_err(),
        store.update_decision_result("e", "x").await.unwrap_err(),
    ];
    for (err, operation) in errors.iter().zip([
        "record_decision",
        "get_held_event",
        "record_undo",
        "record_refusal",
        "find_action",
        "update_decision_result",
    ]) {
        assert_eq!(err.code(), Some("ResourceNotFoundException"), "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("store table no-such-table: {operation} failed")),
            "{text}"
        );
    }
}

#[tokio::test]
async fn progress_is_replaced_on_each_write_compressed_when_large_and_expires() {
    let aws = local_aws().await;
    let (table, store) = new_table(&aws).await;
    const KEEP: Duration = Duration::from_secs(15 * 24 * 3600);
    assert_eq!(store.get_progress("p").await.unwrap(), None);
    store.put_progress("p", "[1]", KEEP).await.unwrap();
    store.put_progress("p", "[1,2]", KEEP).await.unwrap();
    assert_eq!(
        store.get_progress("p").await.unwrap().as_deref(),
        Some("[1,2]")
    );

    let large = event_body(12_000);
    store.put_progress("p", &large, KEEP).await.unwrap();
    assert_eq!(store.get_progress("p").await.unwrap(), Some(large));
    let item = dynamodb(&aws)
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("event#p".into()))
        .key("sk", AttributeValue::S("progress".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(
        item["progress_encoding"],
        AttributeValue::S("gzip+base64".into())
    );
    let AttributeValue::N(ttl) = &item["ttl"] else {
        panic!("no ttl")
    };
    let left = ttl.parse::<i64>().unwrap() - OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (KEEP.as_secs() as i64 - 60..=KEEP.as_secs() as i64).contains(&left),
        "{left}"
    );
}
