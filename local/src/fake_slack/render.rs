//! A readable rendering of a Slack message, for `make local` and test failure
//! messages.

use serde_json::Value;

/// A readable rendering of a message: header, sections with their fields,
/// context lines, dividers, attachments; the fallback `text` only when there are
/// no blocks. Slack's `&amp;`, `&lt;`, `&gt;` escapes are shown as the characters.
pub fn render_text(message: &Value) -> String {
    let mut out = Vec::new();
    let blocks = message.get("blocks").and_then(Value::as_array);
    let attachments = message.get("attachments").and_then(Value::as_array);
    match blocks {
        Some(b) if !b.is_empty() => render_blocks(b, &mut out),
        _ => {
            if let Some(t) = message.get("text").and_then(Value::as_str) {
                out.push(unescape(t));
            }
        }
    }
    for a in attachments.into_iter().flatten() {
        let mut inner = Vec::new();
        for key in ["pretext", "title", "text"] {
            if let Some(t) = a.get(key).and_then(Value::as_str) {
                inner.push(unescape(t));
            }
        }
        for f in a
            .get("fields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let title = f.get("title").and_then(Value::as_str).unwrap_or("");
            let value = f.get("value").and_then(Value::as_str).unwrap_or("");
            inner.push(format!("  {}: {}", unescape(title), unescape(value)));
        }
        if let Some(b) = a.get("blocks").and_then(Value::as_array) {
            render_blocks(b, &mut inner);
        }
        if let Some(t) = a.get("footer").and_then(Value::as_str) {
            inner.push(unescape(t));
        }
        for line in inner.join("\n").lines() {
            out.push(format!("┃ {line}"));
        }
    }
    out.join("\n")
}

fn text_of(v: Option<&Value>) -> Option<String> {
    v?.get("text").and_then(Value::as_str).map(unescape)
}

fn render_blocks(blocks: &[Value], out: &mut Vec<String>) {
    for b in blocks {
        match b.get("type").and_then(Value::as_str).unwrap_or("") {
            "header" => {
                let t = text_of(b.get("text")).unwrap_or_default();
                let n = t.chars().count().max(3);
                out.push(t);
                out.push("═".repeat(n));
            }
            "section" => {
                if let Some(t) = text_of(b.get("text")) {
                    out.push(t);
                }
                for f in b
                    .get("fields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(t) = text_of(Some(f)) {
                        let mut lines = t.lines();
                        if let Some(first) = lines.next() {
                            out.push(format!("  • {first}"));
                        }
                        for l in lines {
                            out.push(format!("    {l}"));
                        }
                    }
                }
                if let Some(t) = text_of(b.get("accessory").and_then(|a| a.get("text"))) {
                    out.push(format!("  [{t}]"));
                }
            }
            "context" => {
                let parts: Vec<String> = b
                    .get("elements")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|e| {
                        text_of(Some(e)).or_else(|| {
                            e.get("alt_text")
                                .and_then(Value::as_str)
                                .map(|a| format!("[{a}]"))
                        })
                    })
                    .collect();
                out.push(format!("  {}", parts.join(" · ")));
            }
            "divider" => out.push("─".repeat(40)),
            "markdown" => {
                if let Some(t) = b.get("text").and_then(Value::as_str) {
                    out.push(unescape(t));
                }
            }
            "actions" => {
                let buttons: Vec<String> = b
                    .get("elements")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|e| text_of(e.get("text")).map(|t| format!("[{t}]")))
                    .collect();
                out.push(buttons.join(" "));
            }
            "image" => {
                let alt = b.get("alt_text").and_then(Value::as_str).unwrap_or("image");
                out.push(format!("[image: {alt}]"));
            }
            "rich_text" => {
                let mut s = String::new();
                collect_rich_text(b, &mut s);
                out.push(unescape(&s));
            }
            other => out.push(format!("[{other} block]")),
        }
    }
}

fn collect_rich_text(v: &Value, out: &mut String) {
    if let Some(t) = v.get("text").and_then(Value::as_str) {
        out.push_str(t);
    }
    for e in v
        .get("elements")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        collect_rich_text(e, out);
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
