//! Ingest against a real SQS and Secrets Manager (moto): what each request is
//! answered, and what lands on the queue (nothing, for every rejection).

use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use ingest::{Config, Ingest};
use integration_tests::{events, local_aws, logs, unique};
use lambda_http::Body;
use local_pipeline::aws_setup::{LocalAws, QueueSpec, create_queues, create_secret, rotate_secret};
use serde_json::Value;
use shared::config::Pairs;
use shared::testing::OortBody;

const KEY: &str = "k3y-that-only-the-sender-knows-0123456789";

struct Setup {
    aws: LocalAws,
    ingest: Ingest,
    queue_url: String,
    secret_id: String,
}

async fn setup_with(extra: &[(&str, &str)], min_key_refresh: Duration) -> Setup {
    let aws = local_aws().await;
    let name = unique("ingest");
    let queues = create_queues(&aws, &QueueSpec::new(&name)).await.unwrap();
    let secret_id = create_secret(&aws, &format!("{name}/api-key"), KEY)
        .await
        .unwrap();
    let ingest = ingest_for(&aws, &queues.queue_url, &secret_id, extra, min_key_refresh);
    Setup {
        aws,
        ingest,
        queue_url: queues.queue_url,
        secret_id,
    }
}

/// An ingest function configured as the template does, plus `extra` settings.
fn ingest_for(
    aws: &LocalAws,
    queue_url: &str,
    secret_id: &str,
    extra: &[(&str, &str)],
    min_key_refresh: Duration,
) -> Ingest {
    let mut env: Vec<(&str, &str)> =
        vec![("QUEUE_URL", queue_url), ("API_KEY_SECRET_ID", secret_id)];
    env.extend_from_slice(extra);
    let config = Config::from_lookup(&Pairs(&env)).unwrap();
    Ingest::with_min_key_refresh(
        config,
        aws.sqs.clone(),
        aws.secrets.clone(),
        min_key_refresh,
    )
    .with_metrics(shared::metrics::Emitter::new("ingest", std::io::sink()))
}

/// The status `key` gets for a fresh FAILED_CHECK with envelope id `id`.
async fn status_for(setup: &Setup, key: &str, id: &str) -> u16 {
    answer(setup, post(Some(key), &event(id, "FAILED_CHECK")))
        .await
        .0
}

async fn setup() -> Setup {
    setup_with(&[], Duration::from_secs(30)).await
}

fn event(id: &str, detail_type: &str) -> String {
    OortBody::new(
        detail_type,
        id,
        &["ana.lima@example.com", "li.wei@example.com"],
    )
    .to_string()
}

fn post(key: Option<&str>, body: &str) -> lambda_http::Request {
    request(
        "POST",
        "x-api-client-token",
        key,
        Body::Text(body.to_string()),
    )
}

fn request(method: &str, header: &str, key: Option<&str>, body: Body) -> lambda_http::Request {
    let mut builder = http::Request::builder()
        .method(method)
        .uri("https://abc.lambda-url.us-east-2.on.aws/");
    if let Some(key) = key {
        builder = builder.header(header, key);
    }
    builder
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}

async fn answer(setup: &Setup, request: lambda_http::Request) -> (u16, Value) {
    let response = setup.ingest.handle(request).await;
    let status = response.status().as_u16();
    let Body::Text(text) = response.body() else {
        panic!("ingest answers with text")
    };
    assert!(!text.contains(KEY), "an answer revealed the key: {text}");
    assert_eq!(response.headers()["content-type"], "application/json");
    (
        status,
        serde_json::from_str(text).expect("answers are JSON"),
    )
}

/// Everything on the queue right now (received and left to expire).
async fn queued(setup: &Setup) -> Vec<aws_sdk_sqs::types::Message> {
    let mut all = Vec::new();
    loop {
        let out = setup
            .aws
            .sqs
            .receive_message()
            .queue_url(&setup.queue_url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .visibility_timeout(30)
            .send()
            .await
            .unwrap();
        let batch = out.messages.unwrap_or_default();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

#[tokio::test]
async fn a_failed_check_is_queued_as_received_keyed_by_its_id() {
    let s = setup().await;
    let body = event("5d0c3f4e-1a2b-4c3d-9e8f-0a1b2c3d4e5f", "FAILED_CHECK");
    let (status, json) = answer(&s, post(Some(KEY), &body)).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["status"], "queued");
    assert_eq!(json["eventId"], "5d0c3f4e-1a2b-4c3d-9e8f-0a1b2c3d4e5f");

    let messages = queued(&s).await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.message_id.as_deref(), json["messageId"].as_str());
    assert_eq!(
        m.body.as_deref(),
        Some(body.as_str()),
        "the event travels exactly as received"
    );
    let attrs = m.attributes.as_ref().unwrap();
    assert_eq!(
        attrs[&MessageSystemAttributeName::MessageGroupId],
        "e:5d0c3f4e-1a2b-4c3d-9e8f-0a1b2c3d4e5f"
    );
    assert_eq!(
        attrs[&MessageSystemAttributeName::MessageDeduplicationId],
        "e:5d0c3f4e-1a2b-4c3d-9e8f-0a1b2c3d4e5f",
        "the envelope id, marked as such (shared::queue)"
    );
    let user_attrs = m.message_attributes.as_ref().unwrap();
    assert_eq!(user_attrs["eventType"].string_value(), Some("FAILED_CHECK"));
    assert_eq!(user_attrs["severity"].string_value(), Some("critical"));
    assert_eq!(
        user_attrs["eventId"].string_value(),
        Some("5d0c3f4e-1a2b-4c3d-9e8f-0a1b2c3d4e5f")
    );
}

#[tokio::test]
async fn a_redelivery_of_the_same_event_is_answered_200_and_queued_once() {
    let s = setup().await;
    let body = event("dup-1", "FAILED_CHECK");
    let (first, a) = answer(&s, post(Some(KEY), &body)).await;
    let (second, b) = answer(&s, post(Some(KEY), &body)).await;
    assert_eq!((first, second), (200, 200));
    assert_eq!(a["eventId"], b["eventId"]);
    assert_eq!(queued(&s).await.len(), 1, "FIFO de-duplication keeps one");
}

#[tokio::test]
async fn a_redelivery_after_the_first_copy_was_processed_is_still_dropped() {
    let s = setup().await;
    let body = event("dup-2", "FAILED_CHECK");
    assert_eq!(answer(&s, post(Some(KEY), &body)).await.0, 200);
    for m in queued(&s).await {
        s.aws
            .sqs
            .delete_message()
            .queue_url(&s.queue_url)
            .receipt_handle(m.receipt_handle.unwrap())
            .send()
            .await
            .unwrap();
    }
    // SQS remembers the de-duplication id for 5 minutes, deleted or not.
    assert_eq!(answer(&s, post(Some(KEY), &body)).await.0, 200);
    assert!(
        queued(&s).await.is_empty(),
        "the redelivery was queued again"
    );
}

#[tokio::test]
async fn an_event_without_id_is_keyed_by_its_body_digest() {
    let s = setup().await;
    let body = r#"{"detail-type": "FAILED_CHECK", "detail": {"usersFailing": ["a@example.com"]}}"#;
    let (status, json) = answer(&s, post(Some(KEY), body)).await;
    assert_eq!(status, 200);
    assert!(json["eventId"].as_str().unwrap().starts_with("sha256:"));
    answer(&s, post(Some(KEY), body)).await;
    assert_eq!(queued(&s).await.len(), 1);
}

#[tokio::test]
async fn unknown_event_types_and_webhook_tests_are_queued() {
    let s = setup().await;
    assert_eq!(
        answer(&s, post(Some(KEY), &event("u-1", "CHECK_RESOLVED")))
            .await
            .0,
        200
    );
    assert_eq!(
        answer(&s, post(Some(KEY), &event("u-2", "WebhookTest")))
            .await
            .0,
        200
    );
    let mut types: Vec<String> = queued(&s)
        .await
        .iter()
        .map(|m| {
            m.message_attributes.as_ref().unwrap()["eventType"]
                .string_value()
                .unwrap()
                .to_string()
        })
        .collect();
    types.sort();
    assert_eq!(types, ["CHECK_RESOLVED", "WebhookTest"]);
}

#[tokio::test]
async fn a_base64_body_is_decoded_and_queued_as_text() {
    let s = setup().await;
    let body = event("b64-1", "FAILED_CHECK");
    let request = request(
        "POST",
        "x-api-client-token",
        Some(KEY),
        Body::Binary(body.clone().into_bytes()),
    );
    assert_eq!(answer(&s, request).await.0, 200);
    assert_eq!(queued(&s).await[0].body.as_deref(), Some(body.as_str()));
}

#[tokio::test]
async fn every_rejection_is_answered_clearly_and_queues_nothing() {
    let s = setup().await;
    let good = event("r-1", "FAILED_CHECK");
    let oversized = format!(
        r#"{{"id": "r-2", "detail-type": "FAILED_CHECK", "detail": {{"pad": "{}"}}}}"#,
        "x".repeat(1_100_000)
    );
    let cases: Vec<(lambda_http::Request, u16, &str)> = vec![
        (post(None, &good), 401, "missing header x-api-client-token"),
        (
            post(Some(""), &good),
            401,
            "missing header x-api-client-token",
        ),
        (
            post(Some("wrong-key"), &good),
            401,
            "invalid API key in header x-api-client-token",
        ),
        (
            post(Some(&KEY[..KEY.len() - 1]), &good),
            401,
            "invalid API key in header x-api-client-token",
        ),
        (
            request("GET", "x-api-client-token", Some(KEY), Body::Empty),
            405,
            "method GET is not allowed: send the event with POST",
        ),
        (
            request(
                "PUT",
                "x-api-client-token",
                Some(KEY),
                Body::Text(good.clone()),
            ),
            405,
            "method PUT is not allowed: send the event with POST",
        ),
        (
            post(Some(KEY), "not json"),
            400,
            "body is not valid JSON: expected ident at line 1 column 2",
        ),
        (
            post(Some(KEY), "[]"),
            400,
            "body must be a JSON object, not an array",
        ),
        (
            post(Some(KEY), r#"{"detail": {}}"#),
            400,
            "missing field `detail-type`",
        ),
        (
            post(
                Some(KEY),
                r#"{"detail-type": "FAILED_CHECK", "detail": "x"}"#,
            ),
            400,
            "`detail` must be an object, not a string",
        ),
        (
            post(
                Some(KEY),
                r#"{"detail-type": ["FAILED_CHECK"], "detail": {}}"#,
            ),
            400,
            "`detail-type` must be a string, not an array",
        ),
        (
            post(Some(KEY), &oversized),
            413,
            "over the limit of 1047552 bytes",
        ),
    ];
    for (request, expected_status, expected_error) in cases {
        let (status, json) = answer(&s, request).await;
        assert_eq!(status, expected_status, "{json}");
        let error = json["error"].as_str().expect("an error message");
        assert!(
            error.contains(expected_error),
            "{error:?} should say {expected_error:?}"
        );
    }
    assert!(
        queued(&s).await.is_empty(),
        "nothing rejected reaches the queue"
    );
}

#[tokio::test]
async fn the_405_names_the_allowed_method() {
    let s = setup().await;
    let response = s
        .ingest
        .handle(request("GET", "x-api-client-token", Some(KEY), Body::Empty))
        .await;
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
}

#[tokio::test]
async fn the_header_name_is_configurable() {
    let s = setup_with(&[("API_KEY_HEADER", "X-Oort-Key")], Duration::from_secs(30)).await;
    let body = event("h-1", "FAILED_CHECK");
    assert_eq!(
        answer(
            &s,
            request("POST", "x-oort-key", Some(KEY), Body::Text(body.clone()))
        )
        .await
        .0,
        200
    );
    let (status, json) = answer(&s, post(Some(KEY), &body)).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("missing header x-oort-key"))
    );
}

#[tokio::test]
async fn during_a_rotation_the_previous_key_still_works_and_the_new_one_works_at_once() {
    let s = setup_with(&[], Duration::from_millis(200)).await;
    assert_eq!(status_for(&s, KEY, "rot-1").await, 200);

    let new_key = "the-rotated-key-abcdefghijklmnopqrstuvwxyz";
    rotate_secret(&s.aws, &s.secret_id, new_key).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    // The cache still holds the old key; the unknown one triggers one early refresh.
    assert_eq!(status_for(&s, new_key, "rot-2").await, 200);
    // The old key is now AWSPREVIOUS: still accepted.
    assert_eq!(status_for(&s, KEY, "rot-3").await, 200);
    // Two rotations later it is gone.
    rotate_secret(
        &s.aws,
        &s.secret_id,
        "third-key-0123456789012345678901234567",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        answer(
            &s,
            post(
                Some("third-key-0123456789012345678901234567"),
                &event("rot-4", "FAILED_CHECK")
            )
        )
        .await
        .0,
        200
    );
    assert_eq!(status_for(&s, KEY, "rot-5").await, 401);
    assert_eq!(queued(&s).await.len(), 4);
}

/// Records the version stage of every `GetSecretValue` a client sends.
#[derive(Debug, Clone, Default)]
struct SecretReads(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl aws_sdk_secretsmanager::config::Intercept for SecretReads {
    fn name(&self) -> &'static str {
        "SecretReads"
    }

    fn read_before_execution(
        &self,
        context: &aws_sdk_secretsmanager::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
        _: &mut aws_sdk_secretsmanager::config::ConfigBag,
    ) -> Result<(), aws_sdk_secretsmanager::error::BoxError> {
        if let Some(input) = context
            .input()
            .downcast_ref::<aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueInput>()
        {
            let stage = input.version_stage().unwrap_or("AWSCURRENT").to_string();
            self.0.lock().unwrap().push(stage);
        }
        Ok(())
    }
}

impl SecretReads {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[tokio::test]
async fn the_current_key_costs_one_secret_read_and_the_previous_one_is_read_only_when_needed() {
    let s = setup().await;
    let new_key = "the-current-key-after-one-rotation-0123456";
    rotate_secret(&s.aws, &s.secret_id, new_key).await.unwrap();
    let reads = SecretReads::default();
    let secrets = aws_sdk_secretsmanager::Client::from_conf(
        s.aws
            .secrets
            .config()
            .to_builder()
            .interceptor(reads.clone())
            .build(),
    );
    let config = Config::from_lookup(&Pairs(&[
        ("QUEUE_URL", s.queue_url.as_str()),
        ("API_KEY_SECRET_ID", s.secret_id.as_str()),
    ]))
    .unwrap();
    let cold = Setup {
        ingest: Ingest::with_min_key_refresh(
            config,
            s.aws.sqs.clone(),
            secrets,
            Duration::from_secs(30),
        )
        .with_metrics(shared::metrics::Emitter::new("ingest", std::io::sink())),
        ..s
    };

    assert_eq!(status_for(&cold, new_key, "reads-1").await, 200);
    assert_eq!(reads.take(), ["AWSCURRENT"], "a cold start reads one version");
    assert_eq!(status_for(&cold, new_key, "reads-2").await, 200);
    assert!(reads.take().is_empty(), "then the cache answers");
    // A sender that has not switched yet: the previous key is read once.
    assert_eq!(status_for(&cold, KEY, "reads-3").await, 200);
    assert_eq!(reads.take(), ["AWSPREVIOUS"]);
    assert_eq!(status_for(&cold, KEY, "reads-4").await, 200);
    assert!(reads.take().is_empty());
    assert_eq!(queued(&cold).await.len(), 4);
}

#[tokio::test]
async fn wrong_keys_cannot_force_a_refresh_more_than_once_per_interval() {
    let s = setup_with(&[], Duration::from_secs(30)).await;
    assert_eq!(status_for(&s, KEY, "w-1").await, 200);
    let new_key = "rotated-but-too-soon-0123456789abcdefghij";
    rotate_secret(&s.aws, &s.secret_id, new_key).await.unwrap();
    // The keys were read less than 30 s ago: no early refresh, so the rotated
    // key is not known yet (it will be within the interval or the TTL).
    for _ in 0..3 {
        assert_eq!(status_for(&s, new_key, "w-2").await, 401);
    }
    assert_eq!(queued(&s).await.len(), 1);
}

#[tokio::test]
async fn an_unreachable_queue_is_a_503_never_a_2xx() {
    let aws = local_aws().await;
    let name = unique("noqueue");
    let secret_id = create_secret(&aws, &format!("{name}/api-key"), KEY)
        .await
        .unwrap();
    let missing_queue = format!("{}/123456789012/{name}-missing.fifo", aws.endpoint);
    let ingest = ingest_for(
        &aws,
        &missing_queue,
        &secret_id,
        &[],
        Duration::from_secs(30),
    );
    let s = Setup {
        aws,
        ingest,
        queue_url: missing_queue,
        secret_id,
    };
    let (status, json) = answer(&s, post(Some(KEY), &event("q-1", "FAILED_CHECK"))).await;
    assert_eq!(status, 503, "{json}");
    assert_eq!(json["error"], "the event could not be queued; retry later");
}

#[tokio::test]
async fn a_queue_smaller_than_configured_gets_413_not_a_truncated_event() {
    let s = setup_with(&[("MAX_MESSAGE_BYTES", "1048576")], Duration::from_secs(30)).await;
    s.aws
        .sqs
        .set_queue_attributes()
        .queue_url(&s.queue_url)
        .attributes(QueueAttributeName::MaximumMessageSize, "1024")
        .send()
        .await
        .unwrap();
    let body = format!(
        r#"{{"id": "big-1", "detail-type": "FAILED_CHECK", "detail": {{"pad": "{}"}}}}"#,
        "x".repeat(2000)
    );
    let (status, json) = answer(&s, post(Some(KEY), &body)).await;
    assert_eq!(status, 413, "{json}");
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .ends_with("more than the queue accepts"),
        "{json}"
    );
    assert!(queued(&s).await.is_empty());
}

#[tokio::test]
async fn an_unreadable_key_secret_is_a_503() {
    let aws = local_aws().await;
    let name = unique("nosecret");
    let queues = create_queues(&aws, &QueueSpec::new(&name)).await.unwrap();
    let ingest = ingest_for(
        &aws,
        &queues.queue_url,
        "does-not-exist",
        &[],
        Duration::from_secs(30),
    );
    let s = Setup {
        aws,
        ingest,
        queue_url: queues.queue_url,
        secret_id: "does-not-exist".into(),
    };
    let (status, json) = answer(&s, post(Some(KEY), &event("s-1", "FAILED_CHECK"))).await;
    assert_eq!(status, 503, "{json}");
    assert!(queued(&s).await.is_empty());
}

#[tokio::test]
async fn each_request_logs_one_json_line_without_secrets_or_body() {
    let s = setup().await;
    let body = event("log-1", "FAILED_CHECK");
    let ((), logs) = logs::capture(async {
        answer(&s, post(Some(KEY), &body)).await;
        answer(&s, post(Some("wrong"), &body)).await;
    })
    .await;
    let lines = logs.lines();
    let queued_line = lines
        .iter()
        .find(|l| l["outcome"] == "queued")
        .unwrap_or_else(|| panic!("a queued line in {lines:?}"));
    assert_eq!(queued_line["event_id"], "log-1");
    assert_eq!(queued_line["event_type"], "FAILED_CHECK");
    assert_eq!(queued_line["check_id"], "no-mfa");
    assert_eq!(queued_line["severity"], "critical");
    assert_eq!(queued_line["user_count"], 2);
    assert_eq!(queued_line["status"], 200);
    let rejected = lines
        .iter()
        .find(|l| l["outcome"] == "rejected")
        .expect("a rejected line");
    assert_eq!(rejected["status"], 401);
    let text = logs.text();
    assert!(!text.contains(KEY), "the key was logged");
    assert!(
        !text.contains("ana.lima@example.com"),
        "the body was logged"
    );
}

#[tokio::test]
async fn every_ingest_sample_in_events_gets_its_documented_answer() {
    let s = setup().await;
    // The samples carry the local demo key; register it as this secret's current value.
    let sample_key =
        events::api_key_in(&events::read("ingest-failed-check.json")).expect("sample key");
    rotate_secret(&s.aws, &s.secret_id, &sample_key)
        .await
        .unwrap();
    let expected = [
        ("ingest-failed-check.json", 200),
        ("ingest-webhook-test.json", 200),
        ("ingest-base64-body.json", 200),
        ("ingest-odd-entries.json", 200),
        ("ingest-wrong-key.json", 401),
        ("ingest-missing-key.json", 401),
        ("ingest-malformed-json.json", 400),
        ("ingest-get.json", 405),
    ];
    let samples: Vec<String> = events::all()
        .into_iter()
        .filter(|n| n.starts_with("ingest-"))
        .collect();
    let mut documented: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    documented.sort();
    assert_eq!(
        samples, documented,
        "every ingest sample has a documented answer here and in the README"
    );
    for (name, status) in expected {
        let request = events::function_url_request(&events::read(name));
        let (got, json) = answer(&s, request).await;
        assert_eq!(got, status, "{name}: {json}");
    }
    assert_eq!(
        queued(&s).await.len(),
        4,
        "the four accepted samples, nothing else"
    );
}

#[tokio::test]
async fn a_queue_with_a_lower_limit_gets_413_before_any_send() {
    // A queue created before SQS's 1 MiB limit keeps 256 KiB until changed.
    let s = setup_with(&[("MAX_MESSAGE_BYTES", "262144")], Duration::from_secs(30)).await;
    let big = format!(
        r#"{{"id": "r-3", "detail-type": "FAILED_CHECK", "detail": {{"pad": "{}"}}}}"#,
        "x".repeat(270_000)
    );
    let (status, json) = answer(&s, post(Some(KEY), &big)).await;
    assert_eq!(status, 413, "{json}");
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("over the queue's limit of 262144 bytes")
    );
    assert!(queued(&s).await.is_empty());
}

#[tokio::test]
async fn an_event_of_5000_users_is_queued_whole() {
    let s = setup().await;
    let users: Vec<String> = (0..5000)
        .map(|i| format!("user.number{i:05}.of.a.large.org@subsidiary.example.com"))
        .collect();
    let body = serde_json::json!({"id": "big-1", "detail-type": "FAILED_CHECK",
        "detail": {"checkId": "no-mfa", "severity": "critical", "usersFailing": users}})
    .to_string();
    assert!(
        body.len() > 262_144,
        "bigger than SQS's old limit: {}",
        body.len()
    );
    let (status, json) = answer(&s, post(Some(KEY), &body)).await;
    assert_eq!(status, 200, "{json}");
    let queued = queued(&s).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(
        queued[0].body.as_deref(),
        Some(body.as_str()),
        "queued as received"
    );
}

#[tokio::test]
async fn an_envelope_with_odd_entries_is_queued_and_says_what_it_ignored() {
    let s = setup().await;
    let body = r#"{"id": 12, "detail-type": "FAILED_CHECK", "time": 1730000000,
        "detail": {"severity": 3, "usersFailing": ["ana.lima@example.com", "  ", 7, "a\u0007b"]}}"#;
    let (status, json) = answer(&s, post(Some(KEY), body)).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["status"], "queued");
    assert_eq!(json["invalidUsers"], 3, "{json}");
    assert_eq!(
        json["ignoredFields"].as_array().map(Vec::len),
        Some(3),
        "{json}"
    );
    let queued = queued(&s).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(
        queued[0].body.as_deref(),
        Some(body),
        "the body travels as received"
    );
}
