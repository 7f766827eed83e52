//! The fake Slack clicking: the `block_actions` payload it builds from a
//! message it received, the form encoding and Slack's signature over it, the
//! tampered variants, replays, and the response URL's answers (5 posts,
//! replace / delete / in channel / ephemeral).
//!
//! The app here is a small recording server; the real actions function is
//! clicked in `tests/it/e2e.rs`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use local_pipeline::fake_slack::{
    APP_ID, CHANNEL_ID, Click, ClickError, FakeSlack, MAX_RESPONSE_POSTS, ResponseAction, SlackApp,
    SlackEndpoint, SlackMessage, TEAM_ID, Tamper, slack_signature,
};
use serde_json::{Value, json};

use crate::support::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const EVENT: &str = "5d0c3f4e-1a2b-4c3d-9e8f-0a1b2c3d4e5f";

/// What the app received.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: String,
}

/// A stand-in for the actions function: records each request, answers 200
/// with an ephemeral reply.
struct App {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

async fn start_app() -> App {
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let router = Router::new()
        .fallback(
            |State(seen): State<Arc<Mutex<Vec<Received>>>>, headers: HeaderMap, body: Bytes| async move {
                seen.lock().unwrap().push(Received {
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                axum::Json(json!({"response_type": "ephemeral", "replace_original": false, "text": "Approved."}))
            },
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    App { url, received }
}

impl App {
    fn last(&self) -> Received {
        self.received
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a request")
    }
}

fn button(action_id: &str, value: &Value) -> Value {
    json!({"type": "button", "action_id": action_id,
           "text": {"type": "plain_text", "text": action_id},
           "value": value.to_string()})
}

/// Posts `message` to the webhook and returns it as the channel shows it.
async fn posted(slack: &FakeSlack, message: &Value) -> SlackMessage {
    let reply = send(
        client()
            .post(slack.webhook_url())
            .header("content-type", "application/json")
            .body(message.to_string()),
    )
    .await;
    assert_eq!((reply.status, reply.text.as_str()), (200, "ok"));
    slack
        .channel_messages()
        .pop()
        .expect("the message is in the channel")
}

async fn started() -> (FakeSlack, App, SlackMessage) {
    let slack = FakeSlack::start().await;
    let app = start_app().await;
    slack.set_app(SlackApp::new(&app.url, SECRET));
    let message = posted(&slack, &summary_value()).await;
    (slack, app, message)
}

/// A summary as the dispatcher posts it: Approve and Dismiss in an actions
/// block, one Unsuspend accessory per suspended user.
fn summary_value() -> Value {
    let mut message = json!({"text": "held", "blocks": []});
    let mut approve = button("approve", &json!({"e": EVENT}));
    approve["style"] = json!("danger");
    let undo = |id: &str, login: &str| {
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("`{login}` was suspended")},
               "accessory": button("unsuspend", &json!({"e": EVENT, "u": id, "l": login}))})
    };
    message["blocks"] = json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": "*HELD*"}},
        {"type": "actions", "block_id": "decide", "elements": [approve, button("dismiss", &json!({"e": EVENT}))]},
        undo("00u1ana", "ana.lima@example.com"),
        undo("00u2li", "li.wei@example.com"),
    ]);
    message
}

fn payload_of(body: &str) -> Value {
    let (name, value) = url::form_urlencoded::parse(body.as_bytes())
        .next()
        .expect("one form field");
    assert_eq!(name, "payload");
    serde_json::from_str(&value).expect("the payload is JSON")
}

fn header<'a>(r: &'a Received, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

/// Slack's signature, computed here once more from ring directly.
fn expected_signature(secret: &str, timestamp: &str, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(tag.as_ref()))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn a_click_is_a_signed_form_encoded_block_actions_payload() {
    let (slack, app, message) = started().await;
    assert_eq!(message.channel, CHANNEL_ID);
    assert!(message.ts.contains('.'), "{}", message.ts);
    let outcome = slack
        .click(&message, &Click::approve("U0APPROVER"))
        .await
        .unwrap();
    assert_eq!(outcome.status, 200);
    assert_eq!(outcome.text(), Some("Approved."));

    let got = app.last();
    assert_eq!(
        header(&got, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let ts = header(&got, "x-slack-request-timestamp").unwrap();
    assert!((ts.parse::<i64>().unwrap() - now()).abs() <= 5, "{ts}");
    assert_eq!(
        header(&got, "x-slack-signature"),
        Some(expected_signature(SECRET, ts, &got.body).as_str())
    );
    assert_eq!(
        slack_signature(SECRET, ts, &got.body),
        expected_signature(SECRET, ts, &got.body)
    );
    assert!(got.body.starts_with("payload=%7B"), "{}", got.body);
    assert_eq!(outcome.request.body, got.body);

    let p = payload_of(&got.body);
    assert_eq!(p, outcome.payload);
    assert_eq!(p["type"], "block_actions");
    assert_eq!(p["user"]["id"], "U0APPROVER");
    assert_eq!(p["team"]["id"], TEAM_ID);
    assert_eq!(p["api_app_id"], APP_ID);
    assert_eq!(p["channel"]["id"], CHANNEL_ID);
    assert_eq!(p["container"]["message_ts"], message.ts);
    assert_eq!(p["message"]["ts"], message.ts);
    assert_eq!(p["message"]["blocks"], message.message["blocks"]);
    assert!(p["trigger_id"].as_str().unwrap().split('.').count() == 3);
    let response_url = p["response_url"].as_str().unwrap();
    assert_eq!(response_url, outcome.response_url);
    assert!(
        response_url.starts_with(&format!("{}/actions/{TEAM_ID}/", slack.base_url())),
        "{response_url}"
    );
    let action = &p["actions"][0];
    assert_eq!(p["actions"].as_array().unwrap().len(), 1);
    assert_eq!(action["type"], "button");
    assert_eq!(action["action_id"], "approve");
    assert_eq!(action["block_id"], "decide");
    assert_eq!(action["value"], json!({"e": EVENT}).to_string());
    assert_eq!(action["style"], "danger");
    assert!(action["action_ts"].as_str().unwrap().contains('.'));
    assert_eq!(slack.clicks().len(), 1);

    // Each click has its own response URL.
    let again = slack
        .click(&message, &Click::dismiss("U0APPROVER"))
        .await
        .unwrap();
    assert_ne!(again.response_url, outcome.response_url);
    assert_eq!(
        payload_of(&app.last().body)["actions"][0]["action_id"],
        "dismiss"
    );
}

#[tokio::test]
async fn unsuspend_is_found_by_the_login_in_its_value() {
    let (slack, app, message) = started().await;
    slack
        .click(
            &message,
            &Click::unsuspend("li.wei@example.com", "U0APPROVER"),
        )
        .await
        .unwrap();
    let action = &payload_of(&app.last().body)["actions"][0];
    assert_eq!(action["action_id"], "unsuspend");
    let value: Value = serde_json::from_str(action["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        value,
        json!({"e": EVENT, "u": "00u2li", "l": "li.wei@example.com"})
    );
    // Slack makes up a block_id for a block that has none.
    assert!(!action["block_id"].as_str().unwrap().is_empty());

    let missing = slack
        .click(
            &message,
            &Click::unsuspend("ghost@example.com", "U0APPROVER"),
        )
        .await
        .unwrap_err();
    assert!(matches!(missing, ClickError::NoButton(_)), "{missing}");
    assert_eq!(
        missing.to_string(),
        "no unsuspend (ghost@example.com) button in the message"
    );
    let plain = posted(&slack, &json!({"text": "no buttons"})).await;
    let err = slack
        .click(&plain, &Click::approve("U0APPROVER"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "no approve button in the message");
    assert_eq!(
        app.received.lock().unwrap().len(),
        1,
        "nothing sent without a button"
    );

    let no_app = FakeSlack::start().await;
    let m = posted(&no_app, &summary_value()).await;
    assert!(matches!(
        no_app.click(&m, &Click::approve("U0APPROVER")).await,
        Err(ClickError::NoApp)
    ));
}

#[tokio::test]
async fn tampered_clicks_are_what_slack_would_never_send() {
    let (slack, app, message) = started().await;
    let click = |t: Tamper| Click::approve("U0VISITOR").tampered(t);

    slack
        .click(&message, &click(Tamper::WrongSecret))
        .await
        .unwrap();
    let r = app.last();
    let ts = header(&r, "x-slack-request-timestamp").unwrap().to_string();
    let sig = header(&r, "x-slack-signature").unwrap();
    assert!(sig.starts_with("v0="));
    assert_ne!(sig, expected_signature(SECRET, &ts, &r.body));

    slack
        .click(&message, &click(Tamper::StaleTimestamp))
        .await
        .unwrap();
    let r = app.last();
    let ts = header(&r, "x-slack-request-timestamp").unwrap().to_string();
    assert!(now() - ts.parse::<i64>().unwrap() >= 599, "{ts}");
    assert_eq!(
        header(&r, "x-slack-signature"),
        Some(expected_signature(SECRET, &ts, &r.body).as_str()),
        "correctly signed, only old"
    );

    let outcome = slack
        .click(
            &message,
            &click(Tamper::BodyChanged {
                user_id: "U0APPROVER".into(),
            }),
        )
        .await
        .unwrap();
    let r = app.last();
    let ts = header(&r, "x-slack-request-timestamp").unwrap().to_string();
    assert_eq!(
        payload_of(&r.body)["user"]["id"],
        "U0APPROVER",
        "the body claims the approver"
    );
    assert_eq!(
        outcome.payload["user"]["id"], "U0VISITOR",
        "the signed payload"
    );
    assert_ne!(
        header(&r, "x-slack-signature"),
        Some(expected_signature(SECRET, &ts, &r.body).as_str())
    );
    let genuine = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &outcome.payload.to_string())
        .finish();
    assert_eq!(
        header(&r, "x-slack-signature"),
        Some(expected_signature(SECRET, &ts, &genuine).as_str()),
        "a signature over a different body"
    );

    slack
        .click(&message, &click(Tamper::NoSignature))
        .await
        .unwrap();
    let r = app.last();
    assert!(header(&r, "x-slack-signature").is_none());
    assert!(header(&r, "x-slack-request-timestamp").is_some());
}

#[tokio::test]
async fn a_replay_sends_the_same_bytes_again() {
    let (slack, app, message) = started().await;
    let first = slack
        .click(&message, &Click::approve("U0APPROVER"))
        .await
        .unwrap();
    let original = app.last();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let replay = slack.replay(&first).await.unwrap();
    let again = app.last();
    assert_eq!(again.body, original.body);
    for name in ["x-slack-request-timestamp", "x-slack-signature"] {
        assert_eq!(header(&again, name), header(&original, name), "{name}");
    }
    assert_eq!(replay.response_url, first.response_url);
    assert_eq!(replay.status, 200);
    assert_eq!(slack.clicks().len(), 2);
}

async fn respond(url: &str, body: &str) -> Reply {
    send(
        client()
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

#[tokio::test]
async fn a_response_url_rewrites_posts_or_answers_and_takes_five_posts() {
    let (slack, _app, message) = started().await;
    let mut heard = slack.subscribe();
    let click = slack
        .click(&message, &Click::approve("U0APPROVER"))
        .await
        .unwrap();
    let url = &click.response_url;

    // Ephemeral by default: the channel does not change.
    let r = respond(url, &json!({"text": "only you"}).to_string()).await;
    assert_eq!((r.status, r.text.as_str()), (200, "ok"));
    assert_eq!(slack.channel_messages().len(), 1);
    let announced = heard.try_recv().unwrap();
    assert_eq!(announced.endpoint, SlackEndpoint::ResponseUrl);
    assert_eq!(announced.via_response_url, Some(ResponseAction::Ephemeral));

    // replace_original: the same message (same ts) now reads as posted.
    let rewritten = json!({"replace_original": true, "text": "Approved by <@U0APPROVER>",
                           "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Approved*"}}]});
    let r = respond(url, &rewritten.to_string()).await;
    assert_eq!(r.status, 200);
    let now_shown = slack.message(&message.ts).unwrap();
    assert_eq!(now_shown.message, rewritten);
    assert_eq!(slack.channel_messages().len(), 1);
    let announced = heard.try_recv().unwrap();
    assert_eq!(
        (announced.ts.as_str(), announced.via_response_url),
        (message.ts.as_str(), Some(ResponseAction::Replaced))
    );
    assert_eq!(
        slack.messages().len(),
        1,
        "messages() stays the posted summaries"
    );

    // in_channel: a new message with a new ts.
    let r = respond(
        url,
        &json!({"response_type": "in_channel", "text": "done"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200);
    let channel = slack.channel_messages();
    assert_eq!(channel.len(), 2);
    assert_ne!(channel[1].ts, message.ts);
    assert_eq!(channel[1].via_response_url, Some(ResponseAction::InChannel));

    // Not counted: refused posts.
    assert_eq!(respond(url, "not json").await.text, "invalid_payload");
    assert_eq!(
        respond(url, &json!({"replace_original": true}).to_string())
            .await
            .text,
        "no_text"
    );

    // delete_original, then the fifth accepted post, then no more.
    assert_eq!(
        respond(url, &json!({"delete_original": true}).to_string())
            .await
            .status,
        200
    );
    assert!(slack.message(&message.ts).is_none());
    assert_eq!(
        respond(url, &json!({"text": "five"}).to_string())
            .await
            .status,
        200
    );
    let r = respond(url, &json!({"text": "six"}).to_string()).await;
    assert_eq!((r.status, r.text.as_str()), (404, "used_url"));

    let posts = slack.response_posts(url);
    assert_eq!(posts.len(), 8);
    assert_eq!(
        posts.iter().filter(|p| p.accepted()).count(),
        MAX_RESPONSE_POSTS
    );
    assert_eq!(posts[1].action, Some(ResponseAction::Replaced));
    assert_eq!(posts[1].body, rewritten);
    assert_eq!(posts[3].error.as_deref(), Some("invalid_payload"));
    assert_eq!(posts[7].status, 404);
    assert_eq!(
        slack
            .wait_for_response_posts(url, 5, Duration::from_millis(10))
            .await
            .len(),
        8
    );
    let unknown = format!("{}/actions/{TEAM_ID}/1/nope", slack.base_url());
    assert_eq!(respond(&unknown, "{}").await.status, 404);
}
