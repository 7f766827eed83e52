//! What Lambda and the function exchange for a batch: the SQS event Lambda
//! builds from the received messages ([`sqs_event`]), the partial batch
//! response it reads back ([`batch_item_failures`]), and the summary of each
//! message kept for observers.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_sqs::types::Message;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use super::ReceivedMessage;

/// Reads a partial batch response. `Ok` lists the failed message ids (none
/// for `null`, `{}` or an empty list); `Err` means Lambda would fail the
/// whole batch.
pub fn batch_item_failures(response: &Value, batch: &HashSet<&str>) -> Result<Vec<String>, String> {
    let failures = match response {
        Value::Object(map) => match map.get("batchItemFailures") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err("batchItemFailures is not a list".into()),
        },
        _ => return Ok(Vec::new()),
    };
    let mut failed = Vec::with_capacity(failures.len());
    for item in failures {
        match item.get("itemIdentifier") {
            Some(Value::String(id)) if !id.is_empty() && batch.contains(id.as_str()) => {
                if !failed.contains(id) {
                    failed.push(id.clone());
                }
            }
            Some(Value::String(id)) if !id.is_empty() => {
                return Err(format!(
                    "itemIdentifier {id:?} is not a message of this batch"
                ));
            }
            _ => return Err(format!("invalid batch item failure {item}")),
        }
    }
    Ok(failed)
}

fn system_attributes(message: &Message) -> BTreeMap<String, String> {
    message
        .attributes()
        .map(|attrs| {
            attrs
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn received_message(message: &Message) -> ReceivedMessage {
    let attributes = system_attributes(message);
    let message_attributes = message
        .message_attributes()
        .map(|attrs| {
            attrs
                .iter()
                .filter_map(|(k, v)| v.string_value().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default();
    ReceivedMessage {
        message_id: message.message_id().unwrap_or_default().to_string(),
        receive_count: attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        group_id: attributes.get("MessageGroupId").cloned(),
        deduplication_id: attributes.get("MessageDeduplicationId").cloned(),
        sequence_number: attributes.get("SequenceNumber").cloned(),
        attributes,
        message_attributes,
        body: message.body().unwrap_or_default().to_string(),
    }
}

/// The system attributes Lambda passes in `attributes`.
const LAMBDA_ATTRIBUTES: &[&str] = &[
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
];

/// The event Lambda sends for a batch of SQS messages.
pub fn sqs_event(messages: &[Message], queue_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| sqs_record(m, queue_arn, region))
        .collect();
    json!({ "Records": records })
}

fn sqs_record(message: &Message, queue_arn: &str, region: &str) -> Value {
    let all = system_attributes(message);
    let attributes: Map<String, Value> = LAMBDA_ATTRIBUTES
        .iter()
        .filter_map(|name| {
            all.get(*name)
                .map(|v| (name.to_string(), Value::from(v.clone())))
        })
        .collect();
    let mut message_attributes = Map::new();
    if let Some(attrs) = message.message_attributes() {
        for (name, value) in attrs {
            let mut entry = Map::new();
            if let Some(s) = value.string_value() {
                entry.insert("stringValue".into(), Value::from(s));
            }
            if let Some(b) = value.binary_value() {
                entry.insert("binaryValue".into(), Value::from(BASE64.encode(b.as_ref())));
            }
            entry.insert("stringListValues".into(), json!(value.string_list_values()));
            let binaries: Vec<String> = value
                .binary_list_values()
                .iter()
                .map(|b| BASE64.encode(b.as_ref()))
                .collect();
            entry.insert("binaryListValues".into(), json!(binaries));
            entry.insert("dataType".into(), Value::from(value.data_type()));
            message_attributes.insert(name.clone(), Value::Object(entry));
        }
    }
    let mut record = json!({
        "messageId": message.message_id().unwrap_or_default(),
        "receiptHandle": message.receipt_handle().unwrap_or_default(),
        "body": message.body().unwrap_or_default(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.md5_of_body().unwrap_or_default(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    });
    if let (Some(md5), Some(object)) = (message.md5_of_message_attributes(), record.as_object_mut())
    {
        object.insert("md5OfMessageAttributes".into(), Value::from(md5));
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};

    #[test]
    fn partial_batch_responses_follow_lambda_rules() {
        let batch: HashSet<&str> = ["a", "b"].into_iter().collect();
        assert_eq!(batch_item_failures(&Value::Null, &batch), Ok(vec![]));
        assert_eq!(batch_item_failures(&json!({}), &batch), Ok(vec![]));
        assert_eq!(
            batch_item_failures(&json!({"batchItemFailures": []}), &batch),
            Ok(vec![])
        );
        assert_eq!(
            batch_item_failures(
                &json!({"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "b"}]}),
                &batch
            ),
            Ok(vec!["b".to_string()])
        );
        assert!(
            batch_item_failures(
                &json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
                &batch
            )
            .is_err()
        );
        assert!(
            batch_item_failures(
                &json!({"batchItemFailures": [{"itemIdentifier": "zzz"}]}),
                &batch
            )
            .is_err()
        );
        assert!(batch_item_failures(&json!({"batchItemFailures": [{"id": "a"}]}), &batch).is_err());
        assert!(batch_item_failures(&json!({"batchItemFailures": "a"}), &batch).is_err());
    }

    #[test]
    fn records_have_the_lambda_shape() {
        let message = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh")
            .body("{}")
            .md5_of_body("99914b932bd37a50b983c5e7c90ae93b")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .attributes(MessageSystemAttributeName::MessageGroupId, "g")
            .attributes(MessageSystemAttributeName::SentTimestamp, "1")
            .message_attributes(
                "eventType",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("FAILED_CHECK")
                    .build()
                    .unwrap(),
            )
            .build();
        let event = sqs_event(
            &[message],
            "arn:aws:sqs:us-east-1:123456789012:q.fifo",
            "us-east-1",
        );
        let record = &event["Records"][0];
        assert_eq!(record["messageId"], "m-1");
        assert_eq!(record["eventSource"], "aws:sqs");
        assert_eq!(record["awsRegion"], "us-east-1");
        assert_eq!(record["attributes"]["ApproximateReceiveCount"], "2");
        assert_eq!(record["attributes"]["MessageGroupId"], "g");
        assert_eq!(
            record["messageAttributes"]["eventType"],
            json!({"stringValue": "FAILED_CHECK", "stringListValues": [], "binaryListValues": [], "dataType": "String"})
        );
    }
}
