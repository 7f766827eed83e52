//! The Runtime API one execution environment polls, at the address in its
//! `AWS_LAMBDA_RUNTIME_API`: what `lambda_runtime` uses, with Lambda's
//! answers.
//!
//! - `GET /2018-06-01/runtime/invocation/next`: a long poll that hands out the
//!   next invocation with the `Lambda-Runtime-*` headers (the first poll of a
//!   process ends its cold start);
//! - `POST /2018-06-01/runtime/invocation/{id}/response` and `.../error`;
//! - `POST /2018-06-01/runtime/init/error` (the supervisor then replaces the
//!   environment, as Lambda discards one whose init failed).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{
    InFlight, InvokeResult, LogSource, MAX_PAYLOAD_BYTES, Slot, SlotCtx, insert_header, stopped,
    trace_id,
};
use crate::lock;

/// The Runtime API of one execution environment.
pub(super) fn router(ctx: SlotCtx) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(invocation_response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(invocation_error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(ctx)
}

async fn next_invocation(State(ctx): State<SlotCtx>) -> Response {
    let SlotCtx { inner, slot } = ctx;
    let my_generation = {
        let mut st = lock(&slot.state);
        // Polling again without answering abandons the previous invocation.
        if let Some(previous) = st.in_flight.take() {
            let _ = previous.reply.send(InvokeResult::Error {
                error_type: "Runtime.NoResponse".into(),
                error_message: format!(
                    "RequestId: {} the runtime asked for the next event without answering",
                    previous.request_id
                ),
            });
        }
        if st.polled_generation != Some(st.generation)
            && let Some(spawned) = st.spawned_at
        {
            st.init_durations.push(spawned.elapsed());
        }
        st.polled_generation = Some(st.generation);
        st.ever_ready = true;
        st.generation
    };
    slot.changed.notify_one();
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        let permit = tokio::select! {
            permit = inner.available.acquire() => match permit {
                Ok(permit) => permit,
                Err(_) => return gone(),
            },
            _ = stopped(&mut shutdown) => return gone(),
        };
        permit.forget();
        let mut st = lock(&slot.state);
        if st.generation != my_generation {
            // This poll outlived its process; the work stays queued.
            inner.available.add_permits(1);
            return gone();
        }
        let Some(pending) = lock(&inner.queue).pop_front() else {
            continue;
        };
        if pending.reply.is_closed() {
            continue; // the caller gave up waiting
        }
        let timeout = inner.spec.timeout;
        let deadline_ms = epoch_millis() + timeout.as_millis();
        st.in_flight = Some(InFlight {
            request_id: pending.request_id.clone(),
            reply: pending.reply,
            deadline: Instant::now() + timeout,
        });
        drop(st);
        slot.changed.notify_one();
        let mut response = Response::new(Body::from(pending.payload));
        let headers = response.headers_mut();
        insert_header(
            headers,
            "lambda-runtime-aws-request-id",
            &pending.request_id,
        );
        insert_header(
            headers,
            "lambda-runtime-deadline-ms",
            &deadline_ms.to_string(),
        );
        insert_header(headers, "lambda-runtime-invoked-function-arn", &inner.arn);
        insert_header(headers, "lambda-runtime-trace-id", &trace_id());
        insert_header(headers, "content-type", "application/json");
        return response;
    }
}

fn gone() -> Response {
    (StatusCode::GONE, axum::Json(json!({"errorType": "Runtime.Shutdown", "errorMessage": "the environment is shutting down"})))
        .into_response()
}

/// Takes the in-flight invocation if `id` names it.
fn take_in_flight(slot: &Slot, id: &str) -> Option<InFlight> {
    let mut st = lock(&slot.state);
    if st.in_flight.as_ref().is_some_and(|f| f.request_id == id) {
        st.in_flight.take()
    } else {
        None
    }
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

fn invalid_request_id() -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"errorType": "InvalidRequestID", "errorMessage": "Invalid request ID"})),
    )
        .into_response()
}

async fn invocation_response(
    State(ctx): State<SlotCtx>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let body = to_bytes(body, MAX_PAYLOAD_BYTES).await;
    let Some(in_flight) = take_in_flight(&ctx.slot, &id) else {
        return invalid_request_id();
    };
    ctx.slot.changed.notify_one();
    let (result, status) = match body {
        Err(_) => (
            InvokeResult::Error {
                error_type: "Function.ResponseSizeTooLarge".into(),
                error_message: format!(
                    "Response payload size exceeded maximum allowed payload size ({MAX_PAYLOAD_BYTES} bytes)."
                ),
            },
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        Ok(bytes) if bytes.is_empty() => {
            (InvokeResult::Response(Value::Null), StatusCode::ACCEPTED)
        }
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(value) => (InvokeResult::Response(value), StatusCode::ACCEPTED),
            Err(e) => (
                InvokeResult::Error {
                    error_type: "Runtime.InvalidResponse".into(),
                    error_message: format!("the function's response is not JSON: {e}"),
                },
                StatusCode::ACCEPTED,
            ),
        },
    };
    let _ = in_flight.reply.send(result);
    if status == StatusCode::ACCEPTED {
        accepted()
    } else {
        (status, "response too large").into_response()
    }
}

/// Reads `{"errorType", "errorMessage"}`, falling back to the error-type header.
fn diagnostic(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error_type = parsed
        .get("errorType")
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| {
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        })
        .unwrap_or_else(|| "Unhandled".to_string());
    let error_message = parsed
        .get("errorMessage")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    (error_type, error_message)
}

async fn invocation_error(
    State(ctx): State<SlotCtx>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = to_bytes(body, MAX_PAYLOAD_BYTES).await.unwrap_or_default();
    let Some(in_flight) = take_in_flight(&ctx.slot, &id) else {
        return invalid_request_id();
    };
    ctx.slot.changed.notify_one();
    let (error_type, error_message) = diagnostic(&headers, &body);
    let _ = in_flight.reply.send(InvokeResult::Error {
        error_type,
        error_message,
    });
    accepted()
}

async fn init_error(State(ctx): State<SlotCtx>, headers: HeaderMap, body: Body) -> Response {
    let body = to_bytes(body, MAX_PAYLOAD_BYTES).await.unwrap_or_default();
    let (error_type, error_message) = diagnostic(&headers, &body);
    let text = format!("{error_type}: {error_message}");
    {
        let mut st = lock(&ctx.slot.state);
        st.init_error = Some(text.clone());
        // Lambda discards an environment whose init failed.
        st.kill_requested = true;
    }
    ctx.inner.emit(
        ctx.slot.index,
        LogSource::Emulator,
        format!("init error: {text}"),
    );
    ctx.slot.changed.notify_one();
    accepted()
}

fn epoch_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}
