//! Block Kit limits, checked as Slack checks them, so that a message the
//! fake accepts is one that real Slack would accept too: 50 blocks,
//! 3,000-character section text, 10 fields of 2,000, 150-character headers,
//! 10 context elements, 40,000 characters of `text`, unique `block_id`s and a
//! total of block text. The error strings are Slack's.

use serde_json::Value;

const MAX_BLOCKS: usize = 50;
const MAX_SECTION_TEXT: usize = 3000;
const MAX_FIELDS: usize = 10;
const MAX_FIELD_TEXT: usize = 2000;
const MAX_HEADER_TEXT: usize = 150;
const MAX_CONTEXT_ELEMENTS: usize = 10;
const MAX_TEXT: usize = 40_000;

/// Checks a message like Slack does; the error string is Slack's.
pub(super) fn check_message(msg: &Value, blocks_char_limit: usize) -> Result<(), &'static str> {
    let text = match msg.get("text") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err("invalid_payload"),
    };
    let blocks = match msg.get("blocks") {
        None | Some(Value::Null) => None,
        Some(Value::Array(b)) => Some(b),
        Some(_) => return Err("invalid_blocks"),
    };
    let has_attachments = msg
        .get("attachments")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let has_text = text.is_some_and(|t| !t.trim().is_empty());
    let has_blocks = blocks.is_some_and(|b| !b.is_empty());
    if !has_text && !has_blocks && !has_attachments {
        return Err("invalid_payload");
    }
    if text.is_some_and(|t| t.chars().count() > MAX_TEXT) {
        return Err("msg_too_long");
    }
    if let Some(blocks) = blocks {
        if blocks.len() > MAX_BLOCKS {
            return Err("invalid_blocks");
        }
        let mut ids = std::collections::HashSet::new();
        let mut total = 0usize;
        for b in blocks {
            total += check_block(b)?;
            if let Some(id) = b.get("block_id").and_then(Value::as_str)
                && (id.len() > 255 || !ids.insert(id.to_string()))
            {
                return Err("invalid_blocks");
            }
        }
        if total > blocks_char_limit {
            return Err("msg_blocks_too_long");
        }
    }
    Ok(())
}

/// A text object `{"type": "mrkdwn"|"plain_text", "text": ...}`; returns its length.
fn text_object(v: &Value, max: usize, plain_only: bool) -> Result<usize, &'static str> {
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .ok_or("invalid_blocks")?;
    if kind != "plain_text" && (plain_only || kind != "mrkdwn") {
        return Err("invalid_blocks");
    }
    let text = v
        .get("text")
        .and_then(Value::as_str)
        .ok_or("invalid_blocks")?;
    let n = text.chars().count();
    if n == 0 || n > max {
        return Err("invalid_blocks");
    }
    Ok(n)
}

/// Validates one block; returns the characters of text it carries.
fn check_block(b: &Value) -> Result<usize, &'static str> {
    let kind = b
        .get("type")
        .and_then(Value::as_str)
        .ok_or("invalid_blocks")?;
    match kind {
        "section" => {
            let mut n = 0;
            let text = b.get("text");
            let fields = b.get("fields");
            if text.is_none() && fields.is_none() {
                return Err("invalid_blocks");
            }
            if let Some(t) = text {
                n += text_object(t, MAX_SECTION_TEXT, false)?;
            }
            if let Some(f) = fields {
                let f = f.as_array().ok_or("invalid_blocks")?;
                if f.is_empty() || f.len() > MAX_FIELDS {
                    return Err("invalid_blocks");
                }
                for field in f {
                    n += text_object(field, MAX_FIELD_TEXT, false)?;
                }
            }
            Ok(n)
        }
        "header" => text_object(
            b.get("text").ok_or("invalid_blocks")?,
            MAX_HEADER_TEXT,
            true,
        ),
        "divider" => Ok(0),
        "context" => {
            let elements = b
                .get("elements")
                .and_then(Value::as_array)
                .ok_or("invalid_blocks")?;
            if elements.is_empty() || elements.len() > MAX_CONTEXT_ELEMENTS {
                return Err("invalid_blocks");
            }
            let mut n = 0;
            for e in elements {
                match e.get("type").and_then(Value::as_str) {
                    Some("image") => {}
                    Some("mrkdwn" | "plain_text") => n += text_object(e, MAX_SECTION_TEXT, false)?,
                    _ => return Err("invalid_blocks"),
                }
            }
            Ok(n)
        }
        "markdown" => {
            let t = b
                .get("text")
                .and_then(Value::as_str)
                .ok_or("invalid_blocks")?;
            Ok(t.chars().count())
        }
        "image" | "actions" | "rich_text" | "input" | "file" | "video" | "context_actions" => {
            Ok(serde_json::to_string(b).map(|s| s.len()).unwrap_or(0) / 4)
        }
        _ => Err("invalid_blocks"),
    }
}
