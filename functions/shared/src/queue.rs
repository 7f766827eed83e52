//! How messages are keyed on the FIFO queue: message groups and
//! de-duplication ids, for Oort events and for people's decisions alike.
//!
//! Each event is its own message group, so each message stands alone, and a
//! decision about an event travels in that event's group. De-duplication
//! ids name their source (`e:` an envelope id, `h:` the hash of an id SQS
//! cannot carry, `b:` the digest of a body without an id), so that ids from
//! different sources can never collide and drop an event as a duplicate.

use sha2::{Digest, Sha256};

/// SQS's limit for group and de-duplication ids.
pub const MAX_SQS_ID_LEN: usize = 128;

/// The event id of a body without an envelope id: `sha256:<hex of the body>`.
pub fn body_event_id(body: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body.as_bytes())))
}

/// The message group of an event, and of every decision about it.
pub fn group_id(event_id: &str) -> String {
    tagged("e:", "h:", event_id)
}

/// The de-duplication id of an event: its envelope id, or, for a body
/// without one, the body's digest.
pub fn event_dedup_id(envelope_id: Option<&str>, body: &str) -> String {
    match envelope_id {
        Some(id) if !id.trim().is_empty() => tagged("e:", "h:", id),
        _ => format!("b:{}", hex::encode(Sha256::digest(body.as_bytes()))),
    }
}

/// The de-duplication id of a decision, e.g. `("approve", [event id])`.
pub fn decision_dedup_id(action: &str, parts: &[&str]) -> String {
    let key = std::iter::once(action)
        .chain(parts.iter().copied())
        .collect::<Vec<_>>()
        .join("\u{1f}");
    format!("d:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// `prefix + id` when SQS accepts that (ASCII letters, digits and
/// punctuation, at most 128 characters); else `hashed + SHA-256(id)`,
/// stable, so redeliveries still de-duplicate.
fn tagged(prefix: &str, hashed: &str, id: &str) -> String {
    if prefix.len() + id.len() <= MAX_SQS_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b.is_ascii_punctuation())
    {
        format!("{prefix}{id}")
    } else {
        format!("{hashed}{}", hex::encode(Sha256::digest(id.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_different_sources_never_collide() {
        let body = r#"{"detail-type": "WebhookTest", "detail": {}}"#;
        let digest = hex::encode(Sha256::digest(body.as_bytes()));
        let long = "x".repeat(200);
        let hashed_long = hex::encode(Sha256::digest(long.as_bytes()));
        // An envelope id that is literally another source's id stays apart.
        let ids = [
            event_dedup_id(None, body),
            event_dedup_id(Some(&digest), body),
            event_dedup_id(Some(&format!("b:{digest}")), body),
            event_dedup_id(Some(&long), body),
            event_dedup_id(Some(&hashed_long), body),
            decision_dedup_id("approve", &[&digest]),
        ];
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
        assert!(ids.iter().all(|id| id.len() <= MAX_SQS_ID_LEN));
    }

    #[test]
    fn ids_are_stable_and_sqs_safe() {
        assert_eq!(event_dedup_id(Some("5d0c-1a2b"), "x"), "e:5d0c-1a2b");
        assert_eq!(group_id("5d0c-1a2b"), "e:5d0c-1a2b");
        assert_eq!(event_dedup_id(Some("  "), "x"), event_dedup_id(None, "x"));
        for id in ["id with spaces", "idé", &"y".repeat(127)] {
            let dedup = event_dedup_id(Some(id), "x");
            assert!(dedup.starts_with("h:") && dedup.len() == 66, "{dedup}");
            assert_eq!(dedup, event_dedup_id(Some(id), "other body"));
            assert_eq!(group_id(id), dedup);
        }
        assert_eq!(
            decision_dedup_id("unsuspend", &["e1", "00u1"]),
            decision_dedup_id("unsuspend", &["e1", "00u1"])
        );
        assert_ne!(
            decision_dedup_id("unsuspend", &["e1", "00u1"]),
            decision_dedup_id("unsuspend", &["e10", "0u1"])
        );
        assert!(body_event_id("x").starts_with("sha256:"));
    }
}
