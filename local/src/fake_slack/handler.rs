//! How one post to the fake Slack is answered, in Slack's order: the
//! endpoint, injected faults, the one-message-a-second rate limit, then the
//! webhook's plain-text answers or `chat.postMessage`'s JSON ones (auth,
//! channel, Block Kit checks), or a response URL's (the `response_url`
//! module). Every accepted message gets a `ts` and a place in the channel.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};

use super::blocks::check_message;
use super::{
    BOT_TOKEN, CHANNEL_ID, CHANNEL_NAME, RESPONSE_URL_PREFIX, Shared, SlackEndpoint, SlackFault,
    SlackFaultKind, SlackMessage, SlackPost, SlackState, WEBHOOK_PATH, response_url,
};
use crate::http_stub::take_faults;
use crate::lock;

pub(super) enum Reply {
    /// Webhook-style plain text.
    Text(StatusCode, String),
    /// Web-API-style JSON.
    Json(StatusCode, Value),
}

/// What an accepted post did.
pub(super) enum Accepted {
    /// A new message in the channel (webhook, `chat.postMessage`); `ts` is
    /// set when the endpoint already gave it one.
    Posted { message: Value, ts: Option<String> },
    /// A post to a response URL, already applied to the channel: what to announce.
    Responded(SlackMessage),
}

impl Reply {
    fn status(&self) -> StatusCode {
        match self {
            Reply::Text(s, _) | Reply::Json(s, _) => *s,
        }
    }
}

pub(super) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let endpoint = if path == "/api/chat.postMessage" {
        Some(SlackEndpoint::PostMessage)
    } else if path.starts_with("/services/") {
        Some(SlackEndpoint::Webhook)
    } else if path.starts_with(RESPONSE_URL_PREFIX) {
        Some(SlackEndpoint::ResponseUrl)
    } else {
        None
    };

    if parts.method != Method::POST {
        return finish(
            Reply::Text(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".into()),
            None,
        );
    }
    let bytes = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let body = String::from_utf8_lossy(&bytes).into_owned();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    let (reply, retry_after, delay) = {
        let mut st = lock(&shared.state);
        let mut delay = st.latency;
        let (reply, retry_after, accepted) = answer(
            &mut st,
            endpoint,
            &path,
            &body,
            content_type.as_deref(),
            auth.as_deref(),
            &mut delay,
        );
        let error = match (&reply, &accepted) {
            (_, Some(_)) => None,
            (Reply::Text(_, t), None) => Some(t.clone()),
            (Reply::Json(_, v), None) => Some(v["error"].as_str().unwrap_or("error").to_string()),
        };
        let received_at = SystemTime::now();
        if endpoint == Some(SlackEndpoint::ResponseUrl) {
            response_url::record(
                &mut st,
                &path,
                reply.status().as_u16(),
                error.clone(),
                &body,
                received_at,
            );
        }
        st.posts.push(SlackPost {
            endpoint,
            path: path.clone(),
            status: reply.status().as_u16(),
            error,
            body,
            content_type,
            received_at,
        });
        match (accepted, endpoint) {
            (Some(Accepted::Posted { message, ts }), Some(endpoint)) => {
                let ts = ts.unwrap_or_else(|| next_ts(&mut st));
                let announced = SlackMessage {
                    endpoint,
                    message: message.clone(),
                    channel: CHANNEL_ID.to_string(),
                    ts,
                    via_response_url: None,
                };
                // Announced under the lock, so subscribers hear messages in order.
                let _ = shared.announce.send(announced.clone());
                st.channel.push(announced);
                st.messages.push(message);
                st.last_accepted = Some(Instant::now());
            }
            (Some(Accepted::Responded(announced)), _) => {
                let _ = shared.announce.send(announced);
            }
            _ => {}
        }
        (reply, retry_after, delay)
    };
    // Waiters re-check the count, so waking them on every post is fine.
    shared.accepted.notify_waiters();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    finish(reply, retry_after)
}

pub(super) fn finish(reply: Reply, retry_after: Option<u64>) -> Response {
    let (status, ctype, body) = match reply {
        Reply::Text(s, t) => (s, "text/plain; charset=utf-8", t.into_bytes()),
        Reply::Json(s, v) => (
            s,
            "application/json; charset=utf-8",
            serde_json::to_vec(&v).unwrap_or_default(),
        ),
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Decides the answer; returns (reply, Retry-After, what was accepted).
fn answer(
    st: &mut SlackState,
    endpoint: Option<SlackEndpoint>,
    path: &str,
    body: &str,
    content_type: Option<&str>,
    auth: Option<&str>,
    delay: &mut Duration,
) -> (Reply, Option<u64>, Option<Accepted>) {
    let Some(endpoint) = endpoint else {
        if path.starts_with("/api/") {
            return (api_error("unknown_method"), None, None);
        }
        return (
            Reply::Text(StatusCode::NOT_FOUND, "not_found".into()),
            None,
            None,
        );
    };
    let api = endpoint == SlackEndpoint::PostMessage;
    let response = endpoint == SlackEndpoint::ResponseUrl;
    let fail = |status: StatusCode, error: &str| -> Reply {
        if api {
            Reply::Json(status, json!({ "ok": false, "error": error }))
        } else {
            Reply::Text(status, error.to_string())
        }
    };

    let applies = |f: &SlackFault| f.endpoint.is_none_or(|e| e == endpoint);
    if let Some(kind) = take_faults(&mut st.faults, applies, delay) {
        let reply = match kind {
            SlackFaultKind::RateLimited { retry_after_secs } => {
                let r = if api {
                    fail(StatusCode::TOO_MANY_REQUESTS, "ratelimited")
                } else {
                    fail(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
                };
                return (r, Some(retry_after_secs), None);
            }
            SlackFaultKind::ServerError if api => {
                fail(StatusCode::INTERNAL_SERVER_ERROR, "fatal_error")
            }
            SlackFaultKind::ServerError => fail(StatusCode::INTERNAL_SERVER_ERROR, "rollup_error"),
            SlackFaultKind::ChannelNotFound if api => fail(StatusCode::OK, "channel_not_found"),
            SlackFaultKind::ChannelNotFound => fail(StatusCode::NOT_FOUND, "channel_not_found"),
            SlackFaultKind::InvalidPayload if api => fail(StatusCode::OK, "invalid_arguments"),
            SlackFaultKind::InvalidPayload => fail(StatusCode::BAD_REQUEST, "invalid_payload"),
            SlackFaultKind::Error { status, error } => fail(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                &error,
            ),
            SlackFaultKind::Delay(_) => unreachable!("delays are not replacements"),
        };
        return (reply, None, None);
    }

    if response {
        // A response URL has its own limit (5 posts), not the channel's rate.
        let (reply, accepted) = response_url::answer(st, path, body);
        return (reply, None, accepted.map(Accepted::Responded));
    }

    if let (Some(interval), Some(last)) = (st.min_interval, st.last_accepted) {
        let since = last.elapsed();
        if since < interval {
            let wait = (interval - since).as_secs_f64().ceil().max(1.0) as u64;
            let error = if api { "ratelimited" } else { "rate_limited" };
            return (fail(StatusCode::TOO_MANY_REQUESTS, error), Some(wait), None);
        }
    }

    let is_form = content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if api {
        post_message(st, body, is_form, content_type, auth)
    } else {
        if path != WEBHOOK_PATH {
            return (
                Reply::Text(StatusCode::NOT_FOUND, "no_service".into()),
                None,
                None,
            );
        }
        webhook(st, body, is_form)
    }
}

fn api_error(error: &str) -> Reply {
    Reply::Json(StatusCode::OK, json!({ "ok": false, "error": error }))
}

fn webhook(st: &SlackState, body: &str, is_form: bool) -> (Reply, Option<u64>, Option<Accepted>) {
    let bad = |e: &str| {
        (
            Reply::Text(StatusCode::BAD_REQUEST, e.to_string()),
            None,
            None,
        )
    };
    // Slack also accepts the JSON as a form field named `payload`.
    let raw = if is_form {
        match url::form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "payload") {
            Some((_, v)) => v.into_owned(),
            None => return bad("invalid_payload"),
        }
    } else {
        body.to_string()
    };
    let Ok(msg) = serde_json::from_str::<Value>(&raw) else {
        return bad("invalid_payload");
    };
    if !msg.is_object() {
        return bad("invalid_payload");
    }
    if let Err(e) = check_message(&msg, st.blocks_char_limit) {
        return bad(e);
    }
    (
        Reply::Text(StatusCode::OK, "ok".into()),
        None,
        Some(Accepted::Posted {
            message: msg,
            ts: None,
        }),
    )
}

fn post_message(
    st: &mut SlackState,
    body: &str,
    is_form: bool,
    content_type: Option<&str>,
    auth: Option<&str>,
) -> (Reply, Option<u64>, Option<Accepted>) {
    let msg = if is_form {
        // Form posts carry blocks/attachments as JSON strings.
        let mut m = serde_json::Map::new();
        for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
            let v = v.into_owned();
            let value = if k == "blocks" || k == "attachments" {
                match serde_json::from_str(&v) {
                    Ok(parsed) => parsed,
                    Err(_) => return (api_error("invalid_blocks_format"), None, None),
                }
            } else {
                Value::String(v)
            };
            m.insert(k.into_owned(), value);
        }
        Value::Object(m)
    } else {
        match serde_json::from_str::<Value>(body) {
            Ok(v) if v.is_object() => v,
            _ => return (api_error("invalid_json"), None, None),
        }
    };

    let token = match auth {
        Some(a) => a.strip_prefix("Bearer ").map(str::trim).map(str::to_string),
        None if is_form => msg.get("token").and_then(Value::as_str).map(str::to_string),
        None => None,
    };
    match token {
        None if auth.is_none() => return (api_error("not_authed"), None, None),
        Some(t) if t == BOT_TOKEN => {}
        _ => return (api_error("invalid_auth"), None, None),
    }

    let channel = msg.get("channel").and_then(Value::as_str).unwrap_or("");
    let channel_ok = channel == CHANNEL_ID || channel.trim_start_matches('#') == CHANNEL_NAME;
    if !channel_ok {
        return (api_error("channel_not_found"), None, None);
    }
    if let Err(e) = check_message(&msg, st.blocks_char_limit) {
        let e = if e == "invalid_payload" { "no_text" } else { e };
        return (api_error(e), None, None);
    }

    let ts = next_ts(st);
    let mut message = json!({
        "type": "message",
        "subtype": "bot_message",
        "text": msg.get("text").cloned().unwrap_or(json!("")),
        "username": "oort-okta-responder",
        "bot_id": "B0LOCALBOT",
        "app_id": "A0LOCALAPP",
        "ts": ts,
    });
    for key in ["blocks", "attachments"] {
        if let Some(v) = msg.get(key) {
            message[key] = v.clone();
        }
    }
    let mut reply = json!({ "ok": true, "channel": CHANNEL_ID, "ts": ts, "message": message });
    // Real Slack warns when a JSON body is sent without a charset.
    if content_type.is_some_and(|c| c.starts_with("application/json") && !c.contains("charset")) {
        reply["warning"] = json!("missing_charset");
        reply["response_metadata"] = json!({ "warnings": ["missing_charset"] });
    }
    (
        Reply::Json(StatusCode::OK, reply),
        None,
        Some(Accepted::Posted {
            message: msg,
            ts: Some(ts),
        }),
    )
}

/// A new message `ts`: Unix seconds and microseconds, strictly increasing.
pub(super) fn next_ts(st: &mut SlackState) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let micros = now.max(st.last_ts_micros + 1);
    st.last_ts_micros = micros;
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}
