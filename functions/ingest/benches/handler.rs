//! What ingest does per request besides its two network calls: the method and
//! API key checks, parsing and validating a 10 KB event, and building the
//! SQS message. Target: under 100 µs. Run: `cargo bench -p ingest`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ingest::Config;
use ingest::api_key::KeySet;
use ingest::handler::accept;
use lambda_http::Body;
use shared::config::Pairs;

/// A realistic FAILED_CHECK of about 10 KB: many users with login details.
fn ten_kb_event() -> String {
    let users: Vec<String> = (0..40)
        .map(|i| format!("user.number{i:03}@example.com"))
        .collect();
    let details: Vec<serde_json::Value> = users
        .iter()
        .map(|u| serde_json::json!({"login": u, "details": [{"key": "providersFailingChecks", "value": "[\"providerFailingCheck-no-mfa-0f1e2d3c__OKTA__77aa88bb\"]"}]}))
        .collect();
    let event = serde_json::json!({
        "version": "0", "id": "5d0c3f4e-1a2b-4c3d-9e8f-0a1b2c3d4e5f", "detail-type": "FAILED_CHECK",
        "source": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0__1a2b3c4d", "account": "111122223333",
        "time": "2026-11-02T08:15:00Z", "region": "us-east-2", "resources": [],
        "detail": {"id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "checkId": "no-mfa", "title": "No MFA Configured",
                   "severity": "critical", "published": "2026-11-02T08:15:00.123Z",
                   "description": ["Detects users with no multi-factor authentication enrolled."],
                   "recommendedActions": ["Review service accounts before enforcing MFA."],
                   "usersFailing": users, "loginDetails": details}
    });
    let mut text = event.to_string();
    // Pad to exactly 10 KB with an extra field, as unknown fields are allowed.
    let pad = (10 * 1024usize)
        .checked_sub(text.len() + r#","pad":"""#.len())
        .expect("the event without padding is under 10 KB");
    text.truncate(text.len() - 1);
    text.push_str(&format!(r#","pad":"{}"}}"#, "x".repeat(pad)));
    assert_eq!(text.len(), 10 * 1024);
    text
}

fn bench(c: &mut Criterion) {
    let config = Config::from_lookup(&Pairs(&[
        (
            "QUEUE_URL",
            "https://sqs.us-east-2.amazonaws.com/111122223333/events.fifo",
        ),
        ("API_KEY_SECRET_ID", "api-key"),
    ]))
    .unwrap();
    let keys = KeySet::new([
        "Xb3kPq9ZrT5wLm2Nc8Vd4Hs7Jf6Gy1Ae0Ui3Ko5E",
        "previous-key-value-0123456789abcdefghijk",
    ]);
    let body = ten_kb_event();
    let request = || {
        lambda_http::http::Request::builder()
            .method("POST")
            .uri("https://abc.lambda-url.us-east-2.on.aws/")
            .header("content-type", "application/json")
            .header(
                "x-api-client-token",
                "Xb3kPq9ZrT5wLm2Nc8Vd4Hs7Jf6Gy1Ae0Ui3Ko5E",
            )
            .body(Body::Text(body.clone()))
            .unwrap()
    };
    let accept = |request| futures::executor::block_on(accept(request, &config, &keys));
    assert!(accept(request()).is_ok());
    // The request is built outside the timing: in the function, lambda_http
    // hands it over (and the body then moves, uncopied, into the message).
    c.bench_function("ingest: auth + parse + build message (10 KB event)", |b| {
        b.iter_batched(
            request,
            |r| black_box(accept(black_box(r))).is_ok(),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
