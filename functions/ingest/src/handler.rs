//! From a function URL request to an answer.
//!
//! The order is fixed and cheap-first: the method, then the API key (before
//! the body is even looked at), then the body, then the queue. Every
//! rejection has a status and a message a person can act on; no message ever
//! names the expected key.

use std::future::Future;

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::MessageAttributeValue;
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use shared::event::OortEvent;
use shared::metrics::{Emitter, Metrics};
use shared::secrets::SecretReader;

use crate::api_key::{ApiKeys, KeySet, MIN_EARLY_REFRESH};
use crate::config::{Config, MAX_BODY_BYTES};
use crate::message::{EventSummary, QueueMessage, first_non_sqs_char};

/// Why a request was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("method {0} is not allowed: send the event with POST")]
    MethodNotAllowed(String),
    #[error("missing header {0}")]
    MissingKey(String),
    #[error("invalid API key in header {0}")]
    WrongKey(String),
    #[error("body is {size} bytes, over the limit of {limit} bytes")]
    BodyTooLarge { size: usize, limit: usize },
    #[error("event is {size} bytes as a queue message, over the queue's limit of {limit} bytes")]
    MessageTooLarge { size: usize, limit: usize },
    #[error("event is {size} bytes as a queue message, more than the queue accepts")]
    QueueRefusedSize { size: usize },
    #[error("{0}")]
    Malformed(String),
    #[error("the API key could not be verified right now; retry later")]
    KeyUnavailable,
    #[error("the event could not be queued; retry later")]
    QueueUnavailable,
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::MissingKey(_) | Rejection::WrongKey(_) => StatusCode::UNAUTHORIZED,
            Rejection::BodyTooLarge { .. }
            | Rejection::MessageTooLarge { .. }
            | Rejection::QueueRefusedSize { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::Malformed(_) => StatusCode::BAD_REQUEST,
            Rejection::KeyUnavailable | Rejection::QueueUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// `rejected` for the sender's mistakes, `failed` for ours.
    pub fn outcome(&self) -> &'static str {
        if self.status().is_server_error() {
            "failed"
        } else {
            "rejected"
        }
    }

    /// The class of a 4xx, the `Reason` dimension of the `Requests` metric
    /// (`None` for a 5xx): `auth` 401, `method` 405, `malformed` 400,
    /// `too_large` 413.
    pub fn reason_class(&self) -> Option<&'static str> {
        match self {
            Rejection::MissingKey(_) | Rejection::WrongKey(_) => Some("auth"),
            Rejection::MethodNotAllowed(_) => Some("method"),
            Rejection::Malformed(_) => Some("malformed"),
            Rejection::BodyTooLarge { .. }
            | Rejection::MessageTooLarge { .. }
            | Rejection::QueueRefusedSize { .. } => Some("too_large"),
            Rejection::KeyUnavailable | Rejection::QueueUnavailable => None,
        }
    }
}

/// Counts one answer in the `Requests` metric: `Answer` = `queued`,
/// `rejected` (with `Reason` = [`Rejection::reason_class`]) or `failed` (5xx).
pub fn count_request(metrics: &mut Metrics, rejection: Option<&Rejection>) {
    match rejection.map(|r| (r.outcome(), r.reason_class())) {
        None => metrics.count("Requests", 1, &[("Answer", "queued")]),
        Some((answer, Some(reason))) => {
            metrics.count("Requests", 1, &[("Answer", answer), ("Reason", reason)])
        }
        Some((answer, None)) => metrics.count("Requests", 1, &[("Answer", answer)]),
    }
}

/// An event that passed every check, ready for the queue.
#[derive(Debug)]
pub struct Accepted {
    pub event: EventSummary,
    pub message: QueueMessage,
}

/// The method check.
pub fn check_method(request: &Request) -> Result<(), Rejection> {
    if request.method() == Method::POST {
        Ok(())
    } else {
        Err(Rejection::MethodNotAllowed(request.method().to_string()))
    }
}

/// The key as presented in `header`.
pub fn presented_key<'r>(
    request: &'r Request,
    header: &header::HeaderName,
) -> Result<&'r [u8], Rejection> {
    match request.headers().get(header) {
        Some(value) if !value.as_bytes().trim_ascii().is_empty() => Ok(value.as_bytes()),
        _ => Err(Rejection::MissingKey(header.to_string())),
    }
}

/// Body checks and parsing, then the queue message: everything after the key
/// check that needs no I/O. The body moves into the message, uncopied.
pub fn accept_body(body: Body, max_message_bytes: usize) -> Result<Accepted, Rejection> {
    let text = match body {
        Body::Empty => String::new(),
        Body::Text(text) => text,
        Body::Binary(bytes) => String::from_utf8(bytes).map_err(|e| {
            Rejection::Malformed(format!("body is not valid UTF-8: {}", e.utf8_error()))
        })?,
        _ => return Err(Rejection::Malformed("body could not be read".into())),
    };
    let bytes = text.as_bytes();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Rejection::BodyTooLarge {
            size: bytes.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    if bytes.is_empty() {
        return Err(Rejection::Malformed(
            "body is empty: send the event as JSON".into(),
        ));
    }
    let event = OortEvent::parse(bytes).map_err(|e| Rejection::Malformed(e.to_string()))?;
    if let Some(c) = first_non_sqs_char(&text) {
        return Err(Rejection::Malformed(format!(
            "body contains the character U+{:04X}, which the queue cannot carry: send it escaped in JSON",
            c as u32
        )));
    }
    // The parsed users are not kept: a near-1 MiB event holds ~18,000.
    let event = EventSummary::of(event);
    let message = QueueMessage::build(text, &event);
    if message.size() > max_message_bytes {
        return Err(Rejection::MessageTooLarge {
            size: message.size(),
            limit: max_message_bytes,
        });
    }
    Ok(Accepted { event, message })
}

/// Whether a presented API key is right: the cached secret in production
/// ([`ApiKeys`]), a fixed [`KeySet`] in tests and benchmarks.
pub trait KeyCheck: Sync {
    fn check(&self, presented: &[u8]) -> impl Future<Output = Result<bool, Rejection>> + Send;
}

impl KeyCheck for KeySet {
    async fn check(&self, presented: &[u8]) -> Result<bool, Rejection> {
        Ok(self.matches(presented))
    }
}

impl KeyCheck for ApiKeys {
    async fn check(&self, presented: &[u8]) -> Result<bool, Rejection> {
        self.verify(presented).await.map_err(|e| {
            tracing::error!(error = %e, "could not read the API key");
            Rejection::KeyUnavailable
        })
    }
}

/// Everything before the queue, in its one order: the method, the key (the
/// body is not looked at before it passes), the body. Production, tests and
/// the benchmark (`benches/handler.rs`) all run this.
pub async fn accept(
    request: Request,
    config: &Config,
    keys: &impl KeyCheck,
) -> Result<Accepted, Rejection> {
    check_method(&request)?;
    let key = presented_key(&request, &config.api_key_header)?;
    if !keys.check(key).await? {
        return Err(Rejection::WrongKey(config.api_key_header.to_string()));
    }
    accept_body(request.into_body(), config.max_message_bytes)
}

/// The function: configuration and clients, built once per cold start.
pub struct Ingest {
    config: Config,
    sqs: aws_sdk_sqs::Client,
    keys: ApiKeys,
    metrics: Emitter,
}

impl Ingest {
    pub fn new(
        config: Config,
        sqs: aws_sdk_sqs::Client,
        secrets: aws_sdk_secretsmanager::Client,
    ) -> Ingest {
        Ingest::with_min_key_refresh(config, sqs, secrets, MIN_EARLY_REFRESH)
    }

    /// As [`Ingest::new`], with another floor between early key refreshes
    /// (tests use a short one rather than wait 30 s).
    pub fn with_min_key_refresh(
        config: Config,
        sqs: aws_sdk_sqs::Client,
        secrets: aws_sdk_secretsmanager::Client,
        min_early_refresh: std::time::Duration,
    ) -> Ingest {
        let reader = SecretReader::new(secrets);
        let keys = ApiKeys::new(
            reader,
            config.api_key_secret_id.clone(),
            config.secret_ttl,
            min_early_refresh,
        );
        Ingest {
            config,
            sqs,
            keys,
            metrics: Emitter::stdout("ingest"),
        }
    }

    /// Writes the metrics (one EMF line per request) to `emitter` instead
    /// of stdout.
    pub fn with_metrics(mut self, emitter: Emitter) -> Ingest {
        self.metrics = emitter;
        self
    }

    /// Answers one request. Never fails: every outcome is an HTTP answer.
    /// Each answer is counted in one metrics line.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let method = request.method().clone();
        let result = self.process(request).await;
        let mut metrics = self.metrics.metrics();
        count_request(&mut metrics, result.as_ref().err());
        self.metrics.emit(metrics);
        match result {
            Ok((accepted, message_id)) => {
                let event = &accepted.event;
                tracing::info!(
                    event_id = %accepted.message.event_id,
                    event_type = %event.kind,
                    check_id = event.check_id.as_deref().unwrap_or_default(),
                    severity = event.severity.as_deref().unwrap_or_default(),
                    user_count = event.user_count,
                    invalid_count = event.invalid_count,
                    message_id = %message_id,
                    outcome = "queued",
                    status = 200,
                    "webhook queued"
                );
                let mut answer = json!({"status": "queued", "eventId": accepted.message.event_id, "messageId": message_id});
                // Queued all the same; the sender learns what will not be acted on.
                if event.invalid_count > 0 {
                    answer["invalidUsers"] = json!(event.invalid_count);
                }
                if !event.ignored.is_empty() {
                    answer["ignoredFields"] = json!(event.ignored);
                }
                respond(StatusCode::OK, answer)
            }
            Err(rejection) => {
                let status = rejection.status();
                tracing::info!(
                    method = %method,
                    outcome = rejection.outcome(),
                    status = status.as_u16(),
                    reason = %rejection,
                    "webhook {}", rejection.outcome()
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

    async fn process(&self, request: Request) -> Result<(Accepted, String), Rejection> {
        // The body moves from the request into the message and then into
        // SendMessage: a near-1 MiB event is never copied whole.
        let mut accepted = accept(request, &self.config, &self.keys).await?;
        let message_id = self.send(&mut accepted.message).await?;
        Ok((accepted, message_id))
    }

    /// Sends `message`, whose body moves into the request (it is not needed
    /// after the send).
    async fn send(&self, message: &mut QueueMessage) -> Result<String, Rejection> {
        let size = message.size();
        let mut send = self
            .sqs
            .send_message()
            .queue_url(&self.config.queue_url)
            .message_body(std::mem::take(&mut message.body))
            .message_group_id(&message.group_id)
            .message_deduplication_id(&message.dedup_id);
        for (name, value) in &message.attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|_| Rejection::QueueUnavailable)?;
            send = send.message_attributes(*name, attribute);
        }
        match send.send().await {
            Ok(output) => Ok(output.message_id.unwrap_or_default()),
            Err(err) => {
                let too_large = err
                    .message()
                    .is_some_and(|m| m.contains("must be shorter than"));
                tracing::error!(
                    event_id = %message.event_id,
                    error_code = err.code().unwrap_or("none"),
                    error = %DisplayErrorContext(&err),
                    "could not queue the event"
                );
                if too_large {
                    // The queue's own limit is lower than MAX_MESSAGE_BYTES says.
                    Err(Rejection::QueueRefusedSize { size })
                } else {
                    Err(Rejection::QueueUnavailable)
                }
            }
        }
    }
}

fn respond(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(body.to_string()))
        .expect("static status and header are valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::config::Pairs;

    const SETTINGS: [(&str, &str); 2] = [("QUEUE_URL", "q"), ("API_KEY_SECRET_ID", "s")];

    fn config() -> Config {
        Config::from_lookup(&Pairs(&SETTINGS)).unwrap()
    }

    fn request(method: &str, key: Option<&str>, body: Body) -> Request {
        let mut builder = lambda_http::http::Request::builder()
            .method(method)
            .uri("https://x.lambda-url.us-east-2.on.aws/");
        if let Some(key) = key {
            builder = builder.header("x-api-client-token", key);
        }
        builder.body(body).unwrap()
    }

    const EVENT: &str =
        r#"{"id": "e-1", "detail-type": "FAILED_CHECK", "detail": {"usersFailing": ["a@b.co"]}}"#;

    fn status(request: Request) -> Result<String, (u16, String)> {
        let keys = KeySet::new(["right"]);
        futures::executor::block_on(accept(request, &config(), &keys))
            .map(|a| a.message.event_id)
            .map_err(|r| (r.status().as_u16(), r.to_string()))
    }

    #[test]
    fn the_answer_table() {
        assert_eq!(
            status(request("POST", Some("right"), Body::Text(EVENT.into()))),
            Ok("e-1".into())
        );
        assert_eq!(
            status(request(
                "POST",
                Some("right"),
                Body::Binary(EVENT.as_bytes().to_vec())
            )),
            Ok("e-1".into())
        );
        assert_eq!(
            status(request("GET", Some("right"), Body::Empty)),
            Err((
                405,
                "method GET is not allowed: send the event with POST".into()
            ))
        );
        assert_eq!(
            status(request("POST", None, Body::Text(EVENT.into()))),
            Err((401, "missing header x-api-client-token".into()))
        );
        assert_eq!(
            status(request("POST", Some("wrong"), Body::Text(EVENT.into()))),
            Err((401, "invalid API key in header x-api-client-token".into()))
        );
        assert_eq!(
            status(request("POST", Some("right"), Body::Text("{".into()))),
            Err((
                400,
                "body is not valid JSON: EOF while parsing an object at line 1 column 1".into()
            ))
        );
        assert_eq!(
            status(request("POST", Some("right"), Body::Empty)),
            Err((400, "body is empty: send the event as JSON".into()))
        );
        assert_eq!(
            status(request(
                "POST",
                Some("right"),
                Body::Binary(vec![b'"', 0xff, b'"'])
            ))
            .unwrap_err()
            .0,
            400
        );
    }

    #[test]
    fn the_key_is_checked_before_the_body() {
        assert_eq!(
            status(request(
                "POST",
                Some("wrong"),
                Body::Text("not json".into())
            ))
            .unwrap_err()
            .0,
            401
        );
        assert_eq!(
            status(request(
                "POST",
                None,
                Body::Text("x".repeat(MAX_BODY_BYTES + 1))
            ))
            .unwrap_err()
            .0,
            401
        );
    }

    #[test]
    fn oversized_bodies_and_messages_get_413() {
        let huge = format!(
            r#"{{"id": "e", "detail-type": "FAILED_CHECK", "detail": {{"pad": "{}"}}}}"#,
            "x".repeat(MAX_BODY_BYTES)
        );
        assert_eq!(
            status(request("POST", Some("right"), Body::Text(huge)))
                .unwrap_err()
                .0,
            413
        );
        let big = format!(
            r#"{{"id": "e", "detail-type": "FAILED_CHECK", "detail": {{"pad": "{}"}}}}"#,
            "x".repeat(300_000)
        );
        assert!(
            status(request("POST", Some("right"), Body::Text(big.clone()))).is_ok(),
            "fits the default 1 MiB queue"
        );
        let mut settings = SETTINGS.to_vec();
        settings.push(("MAX_MESSAGE_BYTES", "262144"));
        let small_queue = Config::from_lookup(&Pairs(&settings)).unwrap();
        let keys = KeySet::new(["right"]);
        let request = request("POST", Some("right"), Body::Text(big));
        let rejection =
            futures::executor::block_on(accept(request, &small_queue, &keys)).unwrap_err();
        assert_eq!(rejection.status(), 413);
        assert!(
            rejection
                .to_string()
                .contains("over the queue's limit of 262144 bytes"),
            "{rejection}"
        );
    }

    #[test]
    fn each_answer_is_counted_by_answer_and_reason_class() {
        let line = |rejection: Option<Rejection>| {
            let mut metrics = Metrics::new("ingest");
            count_request(&mut metrics, rejection.as_ref());
            let lines = metrics.lines(1);
            assert_eq!(lines.len(), 1, "one line per request");
            let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
            shared::metrics::validate(&line).unwrap();
            assert_eq!(line["Requests"], 1);
            (
                shared::metrics::dimension_set(&line, "Requests").unwrap(),
                line["Answer"].as_str().unwrap().to_string(),
                line["Reason"].as_str().map(String::from),
            )
        };
        let dims = |d: &[&str]| d.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            line(None),
            (dims(&["Function", "Answer"]), "queued".into(), None)
        );
        let rejected = |r: Rejection, reason: &str| {
            assert_eq!(
                line(Some(r)),
                (
                    dims(&["Function", "Answer", "Reason"]),
                    "rejected".into(),
                    Some(reason.into())
                )
            );
        };
        rejected(Rejection::MissingKey("h".into()), "auth");
        rejected(Rejection::WrongKey("h".into()), "auth");
        rejected(Rejection::MethodNotAllowed("GET".into()), "method");
        rejected(Rejection::Malformed("x".into()), "malformed");
        rejected(Rejection::BodyTooLarge { size: 2, limit: 1 }, "too_large");
        rejected(
            Rejection::MessageTooLarge { size: 2, limit: 1 },
            "too_large",
        );
        rejected(Rejection::QueueRefusedSize { size: 2 }, "too_large");
        for failed in [Rejection::KeyUnavailable, Rejection::QueueUnavailable] {
            assert_eq!(
                line(Some(failed)),
                (dims(&["Function", "Answer"]), "failed".into(), None)
            );
        }
    }

    #[test]
    fn characters_sqs_cannot_carry_are_a_clear_400() {
        let body = "{\"detail-type\": \"FAILED_CHECK\", \"detail\": {\"title\": \"\u{FFFF}\"}}";
        let (code, message) =
            status(request("POST", Some("right"), Body::Text(body.into()))).unwrap_err();
        assert_eq!(code, 400);
        assert!(message.contains("U+FFFF"), "{message}");
    }
}
