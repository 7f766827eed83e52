//! The SQS message built from an accepted event.
//!
//! The body is the event exactly as received, so nothing the sender said is
//! lost. One message group per event (each message stands alone), and the
//! envelope `id` as the de-duplication id, so a redelivery of the same event
//! within SQS's 5-minute window is dropped by the queue itself. The id rules
//! are [`shared::queue`]'s.

use shared::event::{EventKind, OortEvent};
use shared::queue;

/// Attribute values are for filtering and reading, not for carrying data.
const MAX_ATTRIBUTE_CHARS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// The envelope `id`, or `sha256:<hex of the body>` when there is none.
    pub event_id: String,
    pub body: String,
    pub group_id: String,
    pub dedup_id: String,
    /// `(name, value)`, all of SQS type `String`.
    pub attributes: Vec<(&'static str, String)>,
}

/// What the queue message, the answer and the log line need of an accepted
/// event. The parsed users themselves are not kept: a 1 MiB event holds
/// about 18,000 of them, and they are dropped before the message is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSummary {
    pub id: Option<String>,
    pub kind: EventKind,
    pub check_id: Option<String>,
    pub severity: Option<String>,
    pub user_count: usize,
    pub invalid_count: usize,
    /// Known fields ignored because of their type.
    pub ignored: Vec<String>,
}

impl EventSummary {
    pub fn of(event: OortEvent) -> EventSummary {
        EventSummary {
            user_count: event.users.len(),
            invalid_count: event.invalid.len(),
            id: event.id,
            kind: event.kind,
            check_id: event.check_id,
            severity: event.severity,
            ignored: event.ignored,
        }
    }
}

impl QueueMessage {
    pub fn build(body: String, event: &EventSummary) -> QueueMessage {
        let event_id = match &event.id {
            Some(id) if !id.trim().is_empty() => id.clone(),
            _ => queue::body_event_id(&body),
        };
        let dedup_id = queue::event_dedup_id(event.id.as_deref(), &body);
        let group_id = queue::group_id(&event_id);
        let mut attributes = vec![("eventType", attribute_value(event.kind.as_str()))];
        if let Some(severity) = &event.severity {
            attributes.push(("severity", attribute_value(severity)));
        }
        attributes.push(("eventId", attribute_value(&event_id)));
        // SQS refuses empty attribute values.
        attributes.retain(|(_, v)| !v.is_empty());
        QueueMessage {
            event_id,
            body,
            group_id,
            dedup_id,
            attributes,
        }
    }

    /// The size SQS counts against `MaximumMessageSize`: the body plus each
    /// attribute's name, type and value.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(name, value)| name.len() + "String".len() + value.len())
                .sum::<usize>()
    }
}

/// Untrusted text made safe for an SQS attribute: only characters SQS
/// accepts, at most [`MAX_ATTRIBUTE_CHARS`].
fn attribute_value(text: &str) -> String {
    text.chars()
        .filter(|&c| is_sqs_char(c) && !c.is_control())
        .take(MAX_ATTRIBUTE_CHARS)
        .collect()
}

/// The first character of `text` SQS would refuse in a message body, if any.
///
/// Works on bytes: valid UTF-8 cannot hold surrogates or code points past
/// U+10FFFF, so what remains to find is a control character other than tab,
/// newline and carriage return, and U+FFFE or U+FFFF (`EF BF BE`, `EF BF BF`).
pub fn first_non_sqs_char(text: &str) -> Option<char> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\t' | b'\n' | b'\r' => {}
            b if b < 0x20 => return Some(b as char),
            0xEF if bytes.get(i + 1) == Some(&0xBF)
                && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)) =>
            {
                return text[i..].chars().next();
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The characters SQS accepts in a message body or attribute (XML 1.0's).
pub fn is_sqs_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn message(body: &str) -> QueueMessage {
        let event = EventSummary::of(OortEvent::parse(body.as_bytes()).unwrap());
        QueueMessage::build(body.to_string(), &event)
    }

    #[test]
    fn envelope_id_keys_group_dedup_and_attributes() {
        let body = r#"{"id": "5d0c3f4e-1a2b", "detail-type": "FAILED_CHECK", "detail": {"severity": "critical"}}"#;
        let m = message(body);
        assert_eq!(m.event_id, "5d0c3f4e-1a2b");
        assert_eq!(m.group_id, "e:5d0c3f4e-1a2b");
        assert_eq!(m.dedup_id, "e:5d0c3f4e-1a2b");
        assert_eq!(m.body, body, "the body travels as received");
        assert_eq!(
            m.attributes,
            vec![
                ("eventType", "FAILED_CHECK".into()),
                ("severity", "critical".into()),
                ("eventId", "5d0c3f4e-1a2b".into())
            ]
        );
    }

    #[test]
    fn without_an_id_the_body_digest_is_the_key() {
        let body = r#"{"detail-type": "WebhookTest", "detail": {}}"#;
        let m = message(body);
        let digest = hex::encode(Sha256::digest(body.as_bytes()));
        assert_eq!(m.event_id, format!("sha256:{digest}"));
        assert_eq!(m.dedup_id, format!("b:{digest}"));
        assert_eq!(
            message(body).dedup_id,
            m.dedup_id,
            "stable across deliveries"
        );
        assert!(!m.attributes.iter().any(|(k, _)| *k == "severity"));
    }

    #[test]
    fn ids_sqs_cannot_take_are_hashed_stably() {
        let long = "x".repeat(129);
        for id in [long.as_str(), "id with spaces", "idé"] {
            let body = format!(
                r#"{{"id": {}, "detail-type": "FAILED_CHECK", "detail": {{}}}}"#,
                serde_json::json!(id)
            );
            let m = message(&body);
            assert_eq!(m.event_id, id);
            assert_eq!(m.dedup_id.len(), 66);
            assert_eq!(m.dedup_id, message(&body).dedup_id);
        }
    }

    #[test]
    fn untrusted_attribute_text_is_cleaned_and_bounded() {
        let severity = format!("crit\u{7}ical\u{FFFF}{}", "!".repeat(400));
        let body = format!(
            r#"{{"id": "a", "detail-type": "FAILED_CHECK", "detail": {{"severity": {}}}}}"#,
            serde_json::json!(severity)
        );
        let m = message(&body);
        let value = &m
            .attributes
            .iter()
            .find(|(k, _)| *k == "severity")
            .unwrap()
            .1;
        assert!(value.starts_with("critical!"));
        assert_eq!(value.chars().count(), MAX_ATTRIBUTE_CHARS);
    }

    #[test]
    fn the_byte_scan_finds_exactly_what_sqs_refuses() {
        let samples = [
            "plain",
            "tab\tnl\ncr\r",
            "bell\u{7}",
            "nul\u{0}",
            "\u{FFFE}",
            "x\u{FFFF}y",
            "\u{FFFD}ok",
            "é中😀",
            "\u{EFBF}",
        ];
        for text in samples {
            assert_eq!(
                first_non_sqs_char(text),
                text.chars().find(|&c| !is_sqs_char(c)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn size_counts_body_and_attributes() {
        let m = message(r#"{"id": "e1", "detail-type": "WebhookTest", "detail": {}}"#);
        let expected = m.body.len()
            + ("eventType".len() + 6 + "WebhookTest".len())
            + ("eventId".len() + 6 + 2);
        assert_eq!(m.size(), expected);
    }
}
