//! The fake Slack: the webhook's plain-text answers, `chat.postMessage`'s
//! JSON ones, Block Kit limits, faults, the rate limit, waiting for messages
//! and the readable rendering.

use std::time::{Duration, Instant};

use local_pipeline::fake_slack::{FakeSlack, SlackEndpoint, SlackFault, render_text};
use serde_json::{Value, json};

use crate::support::*;

fn section(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
}

async fn hook(slack: &FakeSlack, body: &str) -> Reply {
    let http = client();
    send(
        http.post(slack.webhook_url())
            .header("Content-Type", "application/json")
            .body(body.to_string()),
    )
    .await
}

async fn hook_json(slack: &FakeSlack, body: &Value) -> Reply {
    hook(slack, &body.to_string()).await
}

async fn post_message(slack: &FakeSlack, token: Option<&str>, body: &Value) -> Reply {
    let http = client();
    let mut rb = http
        .post(format!("{}/chat.postMessage", slack.api_url()))
        .header("Content-Type", "application/json; charset=utf-8")
        .body(body.to_string());
    if let Some(t) = token {
        rb = rb.header("Authorization", format!("Bearer {t}"));
    }
    send(rb).await
}

#[tokio::test]
async fn slack_webhook_ok() {
    let slack = FakeSlack::start().await;
    assert!(
        slack
            .webhook_url()
            .starts_with(&format!("{}/services/", slack.base_url()))
    );
    // Subscribers hear each accepted message; listening does not change the answer.
    let mut heard = slack.subscribe();
    let msg = json!({ "text": "hello", "blocks": [section("*hi*")] });
    let r = hook_json(&slack, &msg).await;
    assert_eq!((r.status, r.text.as_str()), (200, "ok"));
    assert!(r.h("content-type").unwrap().starts_with("text/plain"));
    assert_eq!(slack.messages(), std::slice::from_ref(&msg));
    assert_eq!(slack.attempts(), 1);
    let announced = heard.try_recv().expect("the accepted message is announced");
    assert_eq!(announced.endpoint, SlackEndpoint::Webhook);
    assert_eq!(announced.message, msg);
    assert_eq!(hook(&slack, "not json").await.status, 400);
    assert!(
        heard.try_recv().is_err(),
        "a rejected post is not announced"
    );
}

#[tokio::test]
async fn slack_webhook_errors_are_plain_text() {
    let slack = FakeSlack::start().await;
    let long = "x".repeat(3001);
    let fields: Vec<Value> = (0..11)
        .map(|i| json!({ "type": "mrkdwn", "text": format!("f{i}") }))
        .collect();
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "invalid_payload"),
        ("{}".into(), "invalid_payload"),
        ("[1,2]".into(), "invalid_payload"),
        (json!({ "text": "" }).to_string(), "invalid_payload"),
        (json!({ "text": "t", "blocks": (0..51).map(|_| json!({"type": "divider"})).collect::<Vec<_>>() }).to_string(), "invalid_blocks"),
        (json!({ "text": "t", "blocks": [section(&long)] }).to_string(), "invalid_blocks"),
        (json!({ "text": "t", "blocks": [{ "type": "section", "fields": fields }] }).to_string(), "invalid_blocks"),
        (json!({ "text": "t", "blocks": [{ "type": "section", "fields": [{ "type": "mrkdwn", "text": "y".repeat(2001) }] }] }).to_string(), "invalid_blocks"),
        (json!({ "text": "t", "blocks": [{ "type": "banner", "text": "x" }] }).to_string(), "invalid_blocks"),
        (json!({ "text": "t", "blocks": [{ "type": "header", "text": { "type": "mrkdwn", "text": "x" } }] }).to_string(), "invalid_blocks"),
    ];
    for (body, expected) in &cases {
        let r = hook(&slack, body).await;
        assert_eq!((r.status, r.text.as_str()), (400, *expected), "{body:.80}");
        assert!(r.h("content-type").unwrap().starts_with("text/plain"));
    }
    // 50 blocks and 3000/10/2000 exactly are fine.
    let ok_fields: Vec<Value> = (0..10)
        .map(|_| json!({ "type": "mrkdwn", "text": "y".repeat(200) }))
        .collect();
    let mut blocks = vec![
        section(&"x".repeat(3000)),
        json!({ "type": "section", "fields": ok_fields }),
    ];
    blocks.extend((0..48).map(|_| json!({ "type": "divider" })));
    assert_eq!(
        hook_json(&slack, &json!({ "text": "t", "blocks": blocks }))
            .await
            .text,
        "ok"
    );

    // Wrong webhook path.
    let http = client();
    let r = send(
        http.post(format!("{}/services/T1/B1/wrong", slack.base_url()))
            .body("{\"text\":\"x\"}"),
    )
    .await;
    assert_eq!((r.status, r.text.as_str()), (404, "no_service"));

    assert_eq!(slack.messages().len(), 1);
    assert_eq!(slack.attempts(), cases.len() + 2);
    assert!(
        slack
            .posts()
            .iter()
            .filter(|p| p.status != 200)
            .all(|p| p.error.is_some())
    );
}

#[tokio::test]
async fn slack_total_block_text_limit() {
    let slack = FakeSlack::start().await;
    let blocks: Vec<Value> = (0..5).map(|_| section(&"z".repeat(2900))).collect();
    let r = hook_json(&slack, &json!({ "text": "t", "blocks": blocks })).await;
    assert_eq!((r.status, r.text.as_str()), (400, "msg_blocks_too_long"));
    slack.set_blocks_char_limit(20_000);
    assert_eq!(
        hook_json(&slack, &json!({ "text": "t", "blocks": blocks }))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn slack_injected_faults() {
    let slack = FakeSlack::start().await;
    let msg = json!({ "text": "x" });

    slack.inject(SlackFault::rate_limited(7));
    let r = hook_json(&slack, &msg).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.h("retry-after"), Some("7"));
    assert_eq!(hook_json(&slack, &msg).await.text, "ok");

    slack.inject(SlackFault::server_error());
    let r = hook_json(&slack, &msg).await;
    assert_eq!((r.status, r.text.as_str()), (500, "rollup_error"));
    slack.inject(SlackFault::channel_not_found());
    let r = hook_json(&slack, &msg).await;
    assert_eq!((r.status, r.text.as_str()), (404, "channel_not_found"));
    slack.inject(SlackFault::invalid_payload().times(2));
    for _ in 0..2 {
        let r = hook_json(&slack, &msg).await;
        assert_eq!((r.status, r.text.as_str()), (400, "invalid_payload"));
    }
    slack.inject(SlackFault::server_error().forever());
    for _ in 0..3 {
        assert_eq!(hook_json(&slack, &msg).await.status, 500);
    }
    slack.clear_faults();
    assert_eq!(hook_json(&slack, &msg).await.status, 200);

    // Endpoint-specific faults leave the other endpoint alone.
    slack.inject(SlackFault::rate_limited(3).on(SlackEndpoint::PostMessage));
    assert_eq!(hook_json(&slack, &msg).await.status, 200);
    let body = json!({ "channel": slack.channel(), "text": "x" });
    let r = post_message(&slack, Some(&slack.bot_token()), &body).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.h("retry-after"), Some("3"));
    assert_eq!(r.json()["ok"], false);

    assert_eq!(slack.messages().len(), 3);
    assert_eq!(slack.attempts(), 12);
}

#[tokio::test]
async fn slack_min_interval_rate_limit() {
    let slack = FakeSlack::start().await;
    slack.set_min_interval(Some(Duration::from_secs(1)));
    assert_eq!(hook_json(&slack, &json!({ "text": "1" })).await.status, 200);
    let r = hook_json(&slack, &json!({ "text": "2" })).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.h("retry-after"), Some("1"));
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(hook_json(&slack, &json!({ "text": "3" })).await.status, 200);
}

#[tokio::test]
async fn slack_post_message() {
    let slack = FakeSlack::start().await;
    let body =
        json!({ "channel": slack.channel(), "text": "summary", "blocks": [section("hello")] });

    let r = post_message(&slack, None, &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({ "ok": false, "error": "not_authed" }));
    let r = post_message(&slack, Some("xoxb-wrong"), &body).await;
    assert_eq!(r.json(), json!({ "ok": false, "error": "invalid_auth" }));
    let r = post_message(
        &slack,
        Some(&slack.bot_token()),
        &json!({ "channel": "C999", "text": "x" }),
    )
    .await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({ "ok": false, "error": "channel_not_found" }))
    );
    let many: Vec<Value> = (0..51).map(|_| json!({ "type": "divider" })).collect();
    let r = post_message(
        &slack,
        Some(&slack.bot_token()),
        &json!({ "channel": "C0LOCAL", "text": "x", "blocks": many }),
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_blocks");
    let r = post_message(
        &slack,
        Some(&slack.bot_token()),
        &json!({ "channel": "C0LOCAL" }),
    )
    .await;
    assert_eq!(r.json()["error"], "no_text");
    assert!(slack.messages().is_empty());

    let r = post_message(&slack, Some(&slack.bot_token()), &body).await;
    assert_eq!(r.status, 200);
    assert!(r.h("content-type").unwrap().starts_with("application/json"));
    let v = r.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["channel"], "C0LOCAL");
    let ts = v["ts"].as_str().unwrap();
    let (secs, frac) = ts.split_once('.').unwrap();
    assert!(
        secs.len() == 10
            && frac.len() == 6
            && ts.replace('.', "").chars().all(|c| c.is_ascii_digit())
    );
    assert_eq!(v["message"]["text"], "summary");
    assert_eq!(v["message"]["ts"], ts);
    // The channel name works too; ts values increase.
    let r2 = post_message(
        &slack,
        Some(&slack.bot_token()),
        &json!({ "channel": "#local-alerts", "text": "again" }),
    )
    .await;
    assert!(r2.json()["ts"].as_str().unwrap() > ts);
    assert_eq!(
        slack.messages(),
        [body, json!({ "channel": "#local-alerts", "text": "again" })]
    );
    assert_eq!(slack.attempts(), 7);
}

#[tokio::test]
async fn slack_wait_for_messages() {
    let slack = FakeSlack::start().await;
    let s2 = slack.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        hook_json(&s2, &json!({ "text": "late" })).await;
    });
    let got = slack.wait_for_messages(1, Duration::from_secs(5)).await;
    assert_eq!(got, [json!({ "text": "late" })]);
    let t = Instant::now();
    let got = slack.wait_for_messages(2, Duration::from_millis(300)).await;
    assert_eq!(got.len(), 1);
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[test]
fn slack_render_text_is_readable() {
    let msg = json!({
        "text": "fallback",
        "blocks": [
            { "type": "header", "text": { "type": "plain_text", "text": "Oort: 2 users suspended" } },
            section(":rotating_light: *Check* &lt;risky&gt; &amp; co"),
            { "type": "section", "fields": [
                { "type": "mrkdwn", "text": "*Suspended*\nana.lima@example.com" },
                { "type": "mrkdwn", "text": "*Not found*\nghost@example.com" }
            ] },
            { "type": "divider" },
            { "type": "context", "elements": [
                { "type": "mrkdwn", "text": "event evt-1" },
                { "type": "plain_text", "text": "dry run: no" }
            ] }
        ]
    });
    let text = render_text(&msg);
    assert!(text.contains("Oort: 2 users suspended"));
    assert!(text.contains("*Check* <risky> & co"));
    assert!(text.contains("• *Suspended*"));
    assert!(text.contains("ana.lima@example.com"));
    assert!(text.contains("ghost@example.com"));
    assert!(text.contains("event evt-1 · dry run: no"));
    assert!(
        !text.contains("fallback"),
        "blocks replace the fallback text"
    );
    assert!(!text.contains('{'), "not raw JSON: {text}");
    assert_eq!(render_text(&json!({ "text": "only text" })), "only text");
}
