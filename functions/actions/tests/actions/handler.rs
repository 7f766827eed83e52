//! The actions handler: signed clicks in, answers, records and queue messages out.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use base64::Engine as _;
use serde_json::json;
use shared::decision::{Action, Decision};
use shared::store::{HeldLookup, RecordState};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

const EVENT: &str = "3f6c2a9e-8b1d-4c57-a0e4-6d2f9b71c835";

fn event_value(event_id: &str) -> String {
    json!({"e": event_id}).to_string()
}

fn undo_value(event_id: &str) -> String {
    json!({"e": event_id, "u": "00u1ana", "l": "ana.lima@example.com"}).to_string()
}

/// Nothing recorded about `event_id`, nothing queued.
async fn nothing_happened(f: &Fixture, event_id: &str) {
    assert_eq!(f.store.get_decision(event_id).await.unwrap(), None);
    assert_eq!(f.store.get_undo("00u1ana", event_id).await.unwrap(), None);
    assert!(f.drain().await.is_empty(), "something was queued");
}

#[tokio::test]
async fn requests_not_signed_by_slack_get_401_and_leave_nothing() {
    let f = Fixture::new().await;
    f.hold(EVENT, 25, Duration::ZERO).await;
    let actions = f.actions(&[]);
    let body = form(&payload(APPROVER, "approve", &event_value(EVENT)));
    let ts = now().to_string();
    let cases = [
        (
            signed_with(&body, "not-the-signing-secret", now()),
            "invalid Slack signature",
        ),
        (
            request(&body, Some(&ts), None),
            "missing header x-slack-signature",
        ),
        (
            request(&body, None, Some("v0=00")),
            "missing header x-slack-request-timestamp",
        ),
        (
            request(&body, Some(&ts), Some("v0=nothex")),
            "invalid Slack signature",
        ),
        (
            signed_with(&body, SIGNING_SECRET, now() - 6 * 60),
            "stale request: its timestamp is -360 seconds from now, more than 300",
        ),
        (
            signed_with(&body, SIGNING_SECRET, now() + 3600),
            "stale request",
        ),
        (
            request(&body, Some("yesterday"), Some("v0=00")),
            "is not a Unix time",
        ),
    ];
    for (request, expected) in cases {
        let (status, answer) = answer(&actions, request).await;
        assert_eq!(status, 401, "{answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(expected), "{expected}: {error}");
    }
    // A signature over another body.
    let other = form(&payload(APPROVER, "dismiss", &event_value(EVENT)));
    let ts = now().to_string();
    let signature = actions::signature::sign(SIGNING_SECRET.as_bytes(), &ts, other.as_bytes());
    let (status, body_of) = answer(&actions, request(&body, Some(&ts), Some(&signature))).await;
    assert_eq!(
        (status, body_of["error"].as_str()),
        (401, Some("invalid Slack signature"))
    );
    // The same signature with a changed timestamp.
    let signature = actions::signature::sign(SIGNING_SECRET.as_bytes(), &ts, body.as_bytes());
    let shifted = (now() - 1).to_string();
    let (status, _) = answer(&actions, request(&body, Some(&shifted), Some(&signature))).await;
    assert_eq!(status, 401);
    nothing_happened(&f, EVENT).await;
}

#[tokio::test]
async fn a_base64_body_from_the_function_url_is_decoded_before_the_check() {
    let f = Fixture::new().await;
    f.hold(EVENT, 3, Duration::ZERO).await;
    let actions = f.actions(&[]);
    let body = form(&payload(APPROVER, "approve", &event_value(EVENT)));
    let ts = now().to_string();
    let signature = actions::signature::sign(SIGNING_SECRET.as_bytes(), &ts, body.as_bytes());
    // A function URL request (payload format 2.0), as Lambda delivers it.
    let event = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": {"content-type": "application/x-www-form-urlencoded",
                    "x-slack-request-timestamp": ts, "x-slack-signature": signature,
                    "host": "abc.lambda-url.us-east-1.on.aws"},
        "requestContext": {"accountId": "anonymous", "apiId": "abc", "domainName": "abc.lambda-url.us-east-1.on.aws",
                           "domainPrefix": "abc", "requestId": "r-1", "routeKey": "$default", "stage": "$default",
                           "time": "05/Jan/2026:09:30:00 +0000", "timeEpoch": 1767605400000u64,
                           "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                                    "sourceIp": "198.51.100.1", "userAgent": "Slackbot 1.0"}},
        "body": base64::engine::general_purpose::STANDARD.encode(&body),
        "isBase64Encoded": true
    });
    let request = lambda_http::request::from_str(&event.to_string()).expect("a function URL event");
    let text = reply(&actions, request).await;
    assert!(
        text.starts_with("Approved: the dispatcher is acting on 3 users."),
        "{text}"
    );
    assert_eq!(f.drain().await.len(), 1);
}

#[tokio::test]
async fn bodies_that_are_not_slack_interactions_get_400() {
    let f = Fixture::new().await;
    let actions = f.actions(&[]);
    let mut view = payload(APPROVER, "approve", &event_value(EVENT));
    view["type"] = json!("view_submission");
    let cases = [
        (
            "hello=world".to_string(),
            "body is not a Slack interaction: no payload field",
        ),
        (
            "payload=%7Bnot%20json".to_string(),
            "payload is not valid JSON",
        ),
        (form(&view), "payload type is \"view_submission\""),
        (String::new(), "no payload field"),
    ];
    for (body, expected) in cases {
        let (status, answer) = answer(&actions, signed(&body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(expected),
            "{answer}"
        );
    }
    let mut get = request("", None, None);
    *get.method_mut() = lambda_http::http::Method::GET;
    let (status, _) = answer(&actions, get).await;
    assert_eq!(status, 405);
    nothing_happened(&f, EVENT).await;
}

#[tokio::test]
async fn clicks_for_another_app_or_workspace_get_401() {
    let f = Fixture::new().await;
    f.hold(EVENT, 3, Duration::ZERO).await;
    let actions = f.actions(&[("SLACK_APP_ID", APP_ID), ("SLACK_TEAM_ID", TEAM_ID)]);
    let mut other_app = payload(APPROVER, "approve", &event_value(EVENT));
    other_app["api_app_id"] = json!("A0OTHER");
    let mut other_team = payload(APPROVER, "approve", &event_value(EVENT));
    other_team["team"]["id"] = json!("T0OTHER");
    for (p, expected) in [
        (other_app, "request is for another Slack app"),
        (other_team, "request is from another Slack workspace"),
    ] {
        let (status, answer) = answer(&actions, signed(&form(&p))).await;
        assert_eq!((status, answer["error"].as_str()), (401, Some(expected)));
    }
    nothing_happened(&f, EVENT).await;
    // The right app and workspace pass.
    let text = reply(&actions, click(APPROVER, "approve", &event_value(EVENT))).await;
    assert!(text.starts_with("Approved"), "{text}");
}

#[tokio::test]
async fn a_non_approver_is_refused_and_the_refusal_recorded() {
    let f = Fixture::new().await;
    f.hold(EVENT, 3, Duration::ZERO).await;
    let actions = f.actions(&[]);
    for (action_id, value) in [
        ("approve", event_value(EVENT)),
        ("dismiss", event_value(EVENT)),
        ("unsuspend", undo_value(EVENT)),
    ] {
        let text = reply(&actions, click(STRANGER, action_id, &value)).await;
        assert!(text.contains("not allowed to approve or undo"), "{text}");
    }
    nothing_happened(&f, EVENT).await;
    let refusals = dynamodb(&f.aws)
        .query()
        .table_name(&f.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("refusal#{STRANGER}")))
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    assert_eq!(refusals.len(), 3);
    assert!(
        refusals
            .iter()
            .all(|r| r["event_id"] == AttributeValue::S(EVENT.into()))
    );
    assert!(
        refusals
            .iter()
            .any(|r| r["action_id"] == AttributeValue::S("unsuspend".into()))
    );
}

#[tokio::test]
async fn with_no_approver_configured_every_click_is_refused() {
    let f = Fixture::new().await;
    f.hold(EVENT, 3, Duration::ZERO).await;
    let actions = f.actions(&[("SLACK_APPROVERS", "")]);
    let text = reply(&actions, click(APPROVER, "approve", &event_value(EVENT))).await;
    assert!(text.contains("not allowed to approve or undo"), "{text}");
    nothing_happened(&f, EVENT).await;
}

#[tokio::test]
async fn an_approver_approves_once_and_the_decision_is_queued() {
    let f = Fixture::new().await;
    f.hold(EVENT, 25, Duration::from_secs(3600)).await;
    let actions = f.actions(&[]);
    let logs = capture_logs();
    let text = reply(&actions, click(APPROVER, "approve", &event_value(EVENT))).await;
    assert_eq!(
        text,
        "Approved: the dispatcher is acting on 25 users. This message is updated when it is done."
    );
    let messages = f.drain().await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    let decision = Decision::parse(m.body().unwrap())
        .expect("a decision")
        .unwrap();
    assert_eq!(decision.action, Action::Approve);
    assert_eq!(decision.event_id, EVENT);
    assert_eq!(decision.by, APPROVER);
    assert_eq!(decision.response_url, RESPONSE_URL);
    assert!(decision.user.is_none());
    assert_eq!(attribute(m, "kind").as_deref(), Some("decision"));
    assert_eq!(attribute(m, "action").as_deref(), Some("approve"));
    assert_eq!(
        system_attribute(m, MessageSystemAttributeName::MessageGroupId),
        Some(shared::queue::group_id(EVENT))
    );
    assert_eq!(
        system_attribute(m, MessageSystemAttributeName::MessageDeduplicationId),
        Some(shared::queue::decision_dedup_id("approve", &[EVENT]))
    );
    let record = f.store.get_decision(EVENT).await.unwrap().unwrap();
    assert_eq!(
        (record.action, record.by.as_str(), record.state),
        (Action::Approve, APPROVER, RecordState::Recorded)
    );
    assert_eq!(record.at, decision.at);

    // One JSON line for the click, with who, what, which event and the outcome.
    let lines = logs.lines();
    let line = lines
        .iter()
        .find(|l| l["outcome"] == "queued")
        .unwrap_or_else(|| panic!("no click line in {lines:?}"));
    assert_eq!(line["slack_user"], APPROVER);
    assert_eq!(line["action"], "approve");
    assert_eq!(line["event_id"], EVENT);
    assert_eq!(line["via"], "approver");
    assert_eq!(line["status"], 200);
    // Nothing secret anywhere (the SDK's own trace lines included); and this
    // function's lines never carry the body or the response URL.
    assert!(!logs.text().contains(SIGNING_SECRET));
    let ours: Vec<_> = lines
        .iter()
        .filter(|l| {
            l["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("actions"))
        })
        .collect();
    assert_eq!(ours.len(), 1, "one line per click: {ours:?}");
    for line in ours {
        let text = line.to_string();
        assert!(
            !text.contains("hooks.slack.com") && !text.contains("payload"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn double_clicks_and_replays_queue_nothing_twice() {
    let f = Fixture::new().await;
    f.hold(EVENT, 2, Duration::ZERO).await;
    let actions = f.actions(&[("SLACK_APPROVERS", &format!("{APPROVER},{OTHER_APPROVER}"))]);
    let first = click(APPROVER, "approve", &event_value(EVENT));
    let replay = {
        let (parts, body) = first.into_parts();
        let body = match body {
            lambda_http::Body::Text(t) => t,
            _ => unreachable!(),
        };
        (parts.headers, body)
    };
    let rebuild = || {
        let mut r = request(&replay.1, None, None);
        *r.headers_mut() = replay.0.clone();
        r
    };
    let text = reply(&actions, rebuild()).await;
    assert!(text.starts_with("Approved"), "{text}");
    let at = f.store.get_decision(EVENT).await.unwrap().unwrap().at;
    let at = shared::decision::format_time(at);
    // The same request again (a replay), a double click, a second approver, a Dismiss.
    for request in [
        rebuild(),
        click(APPROVER, "approve", &event_value(EVENT)),
        click(OTHER_APPROVER, "approve", &event_value(EVENT)),
        click(OTHER_APPROVER, "dismiss", &event_value(EVENT)),
    ] {
        let text = reply(&actions, request).await;
        assert_eq!(
            text,
            format!(
                "This event was already approved by <@{APPROVER}> at {at}: nothing more was done."
            )
        );
    }
    assert_eq!(f.drain().await.len(), 1);
}

#[tokio::test]
async fn approve_after_expiry_or_of_an_unknown_event_does_nothing() {
    let f = Fixture::new().await;
    f.hold(EVENT, 2, Duration::from_secs(73 * 3600)).await;
    let actions = f.actions(&[]);
    for event_id in [EVENT, "never-held"] {
        let text = reply(&actions, click(APPROVER, "approve", &event_value(event_id))).await;
        assert!(
            text.starts_with("This event can no longer be approved: it expired"),
            "{text}"
        );
        nothing_happened(&f, event_id).await;
    }
    // A shorter APPROVAL_TTL_HOURS applies to events already stored.
    let young = "held-2-hours-ago";
    f.hold(young, 2, Duration::from_secs(2 * 3600)).await;
    assert!(matches!(
        f.store.get_held_event(young).await.unwrap(),
        HeldLookup::Held(_)
    ));
    let strict = f.actions(&[("APPROVAL_TTL_HOURS", "1")]);
    let text = reply(&strict, click(APPROVER, "approve", &event_value(young))).await;
    assert!(
        text.contains("can no longer be approved: it expired (events can be approved for 1 hours"),
        "{text}"
    );
    nothing_happened(&f, young).await;
}

#[tokio::test]
async fn dismiss_is_recorded_and_queued() {
    let f = Fixture::new().await;
    f.hold(EVENT, 2, Duration::ZERO).await;
    let actions = f.actions(&[]);
    let text = reply(&actions, click(APPROVER, "dismiss", &event_value(EVENT))).await;
    assert_eq!(text, "Dismissed: nobody in this event will be suspended.");
    let messages = f.drain().await;
    assert_eq!(messages.len(), 1);
    let decision = Decision::parse(messages[0].body().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(decision.action, Action::Dismiss);
    assert_eq!(
        system_attribute(
            &messages[0],
            MessageSystemAttributeName::MessageDeduplicationId
        ),
        Some(shared::queue::decision_dedup_id("dismiss", &[EVENT]))
    );
    let text = reply(&actions, click(APPROVER, "approve", &event_value(EVENT))).await;
    assert!(
        text.starts_with(&format!(
            "This event was already dismissed by <@{APPROVER}> at "
        )),
        "{text}"
    );
    assert!(f.drain().await.is_empty());
}

#[tokio::test]
async fn unsuspend_is_recorded_and_queued_once() {
    let f = Fixture::new().await;
    let actions = f.actions(&[("SLACK_APPROVERS", &format!("{APPROVER},{OTHER_APPROVER}"))]);
    let text = reply(&actions, click(APPROVER, "unsuspend", &undo_value(EVENT))).await;
    assert!(
        text.starts_with("Unsuspend of ana.lima@example.com requested"),
        "{text}"
    );
    let undo = f.store.get_undo("00u1ana", EVENT).await.unwrap().unwrap();
    assert_eq!(
        (undo.by.as_str(), undo.state),
        (APPROVER, RecordState::Recorded)
    );
    let at = shared::decision::format_time(undo.at);
    for user in [APPROVER, OTHER_APPROVER] {
        let text = reply(&actions, click(user, "unsuspend", &undo_value(EVENT))).await;
        assert_eq!(
            text,
            format!(
                "Unsuspend of ana.lima@example.com was already requested by <@{APPROVER}> at {at}: nothing more was done."
            )
        );
    }
    let messages = f.drain().await;
    assert_eq!(messages.len(), 1);
    let decision = Decision::parse(messages[0].body().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(decision.action, Action::Unsuspend);
    let user = decision.user.unwrap();
    assert_eq!(
        (user.okta_user_id.as_str(), user.login.as_str()),
        ("00u1ana", "ana.lima@example.com")
    );
    assert_eq!(
        system_attribute(
            &messages[0],
            MessageSystemAttributeName::MessageDeduplicationId
        ),
        Some(shared::queue::decision_dedup_id(
            "unsuspend",
            &[EVENT, "00u1ana"]
        ))
    );
    assert_eq!(
        system_attribute(&messages[0], MessageSystemAttributeName::MessageGroupId),
        Some(shared::queue::group_id(EVENT))
    );
    // Unsuspend needs no held event, and the event's decision is untouched.
    assert_eq!(f.store.get_decision(EVENT).await.unwrap(), None);
}

#[tokio::test]
async fn a_button_that_is_not_ours_changes_nothing() {
    let f = Fixture::new().await;
    let actions = f.actions(&[]);
    for (action_id, value) in [
        ("delete_everything", event_value(EVENT)),
        ("approve", "{\"e\":\"x\",\"u\":\"00u1\"}".to_string()),
        ("unsuspend", event_value(EVENT)),
    ] {
        let text = reply(&actions, click(APPROVER, action_id, &value)).await;
        assert!(
            text.contains("not one oort-okta-lockout understands"),
            "{text}"
        );
    }
    nothing_happened(&f, EVENT).await;
}

#[tokio::test]
async fn an_unavailable_store_is_never_a_false_success() {
    let f = Fixture::new().await;
    let actions = f.actions(&[("STORE_TABLE", "no-such-table")]);
    for (action_id, value) in [
        ("approve", event_value(EVENT)),
        ("dismiss", event_value(EVENT)),
        ("unsuspend", undo_value(EVENT)),
    ] {
        let text = reply(&actions, click(APPROVER, action_id, &value)).await;
        assert!(
            text.starts_with("This did not happen: your decision could not be recorded"),
            "{text}"
        );
        assert!(text.contains("try again"), "{text}");
    }
    // A refusal still refuses, even if it cannot be recorded.
    let text = reply(&actions, click(STRANGER, "approve", &event_value(EVENT))).await;
    assert!(text.contains("not allowed to approve or undo"), "{text}");
    assert!(f.drain().await.is_empty());
}

#[tokio::test]
async fn a_failed_send_says_so_and_the_retry_goes_through() {
    let f = Fixture::new().await;
    f.hold(EVENT, 4, Duration::ZERO).await;
    let broken = f.actions(&[(
        "QUEUE_URL",
        &format!("{}/000000000000/no-such-queue.fifo", moto_endpoint()),
    )]);
    let text = reply(&broken, click(APPROVER, "approve", &event_value(EVENT))).await;
    assert!(
        text.starts_with("This did not happen: your decision could not be passed on"),
        "{text}"
    );
    let record = f.store.get_decision(EVENT).await.unwrap().unwrap();
    assert_eq!(record.state, RecordState::NotQueued);
    let text = reply(&broken, click(APPROVER, "unsuspend", &undo_value(EVENT))).await;
    assert!(text.starts_with("This did not happen"), "{text}");
    assert!(f.drain().await.is_empty());

    let fixed = f.actions(&[]);
    let text = reply(&fixed, click(APPROVER, "approve", &event_value(EVENT))).await;
    assert!(
        text.starts_with("Approved: the dispatcher is acting on 4 users."),
        "{text}"
    );
    let text = reply(&fixed, click(APPROVER, "unsuspend", &undo_value(EVENT))).await;
    assert!(
        text.starts_with("Unsuspend of ana.lima@example.com requested"),
        "{text}"
    );
    assert_eq!(f.drain().await.len(), 2);
    assert_eq!(
        f.store.get_decision(EVENT).await.unwrap().unwrap().state,
        RecordState::Recorded
    );
}

#[tokio::test]
async fn a_decision_left_recorded_is_sent_again_with_the_same_dedup_id() {
    let f = Fixture::new().await;
    f.hold(EVENT, 4, Duration::ZERO).await;
    // The function stopped between the write and the send.
    let at = time::OffsetDateTime::now_utc();
    f.store
        .record_decision(EVENT, Action::Approve, APPROVER, at)
        .await
        .unwrap();
    let actions = f.actions(&[]);
    let already = format!("This event was already approved by <@{APPROVER}> at ");
    let text = reply(&actions, click(APPROVER, "approve", &event_value(EVENT))).await;
    assert!(text.starts_with(&already), "{text}");
    let messages = f.drain().await;
    assert_eq!(messages.len(), 1);
    let decision = Decision::parse(messages[0].body().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        decision.at,
        shared::decision::parse_time(&shared::decision::format_time(at)).unwrap()
    );

    // Once the dispatcher has carried it out, a click sends nothing more.
    f.store
        .update_decision_result(EVENT, "approved: 4 suspended")
        .await
        .unwrap();
    let text = reply(&actions, click(APPROVER, "approve", &event_value(EVENT))).await;
    assert!(text.starts_with(&already), "{text}");
    assert!(f.drain().await.is_empty(), "nothing sent after the result");
}

#[tokio::test]
async fn group_members_are_approvers_and_the_member_list_is_cached() {
    let f = Fixture::new().await;
    f.hold(EVENT, 2, Duration::ZERO).await;
    let slack = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/usergroups.users.list"))
        .and(query_param("usergroup", "S0APPROVERS"))
        .and(header(
            "authorization",
            format!("Bearer {BOT_TOKEN}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"ok": true, "users": ["U0MEMBER"]})),
        )
        .expect(1)
        .mount(&slack)
        .await;
    let api = format!("{}/api", slack.uri());
    let actions = f.actions(&[
        ("SLACK_APPROVERS", ""),
        ("SLACK_APPROVER_GROUP", "S0APPROVERS"),
        ("SLACK_API_URL", &api),
    ]);
    let logs = capture_logs();
    let text = reply(&actions, click("U0MEMBER", "approve", &event_value(EVENT))).await;
    assert!(text.starts_with("Approved"), "{text}");
    // Not a member: refused, from the cached list.
    let text = reply(&actions, click(STRANGER, "dismiss", &event_value(EVENT))).await;
    assert!(text.contains("not allowed to approve or undo"), "{text}");
    assert_eq!(f.drain().await.len(), 1);
    let line = logs
        .lines()
        .into_iter()
        .find(|l| l["outcome"] == "queued")
        .unwrap();
    assert_eq!(line["via"], "group member");
    assert!(!logs.text().contains(BOT_TOKEN));
    slack.verify().await;
}

#[tokio::test]
async fn a_failed_group_check_is_neither_allowed_nor_refused() {
    let f = Fixture::new().await;
    f.hold(EVENT, 2, Duration::ZERO).await;
    let slack = MockServer::start().await;
    Mock::given(path("/api/usergroups.users.list"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok": false, "error": "missing_scope"})),
        )
        .mount(&slack)
        .await;
    let api = format!("{}/api", slack.uri());
    let actions = f.actions(&[
        ("SLACK_APPROVERS", APPROVER),
        ("SLACK_APPROVER_GROUP", "S0APPROVERS"),
        ("SLACK_API_URL", &api),
    ]);
    let text = reply(&actions, click("U0MEMBER", "approve", &event_value(EVENT))).await;
    assert!(
        text.starts_with("This did not happen: oort-okta-lockout could not check"),
        "{text}"
    );
    nothing_happened(&f, EVENT).await;
    // Listed approvers need no group check.
    let text = reply(&actions, click(APPROVER, "approve", &event_value(EVENT))).await;
    assert!(text.starts_with("Approved"), "{text}");
}

#[tokio::test]
async fn an_unset_signing_secret_verifies_nothing() {
    let f = Fixture::with_signing_secret("unset").await;
    f.hold(EVENT, 2, Duration::ZERO).await;
    let actions = f.actions(&[]);
    let body = form(&payload(APPROVER, "approve", &event_value(EVENT)));
    for secret in ["unset", SIGNING_SECRET] {
        let (status, answer) = answer(&actions, signed_with(&body, secret, now())).await;
        assert_eq!(status, 503, "{answer}");
        assert_eq!(
            answer["error"],
            "the request could not be verified right now; retry later"
        );
    }
    nothing_happened(&f, EVENT).await;
    // Filled in: picked up at the next mismatch.
    local_pipeline::aws_setup::rotate_secret(&f.aws, &f.signing_secret_id, SIGNING_SECRET)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let text = reply(&actions, signed(&body)).await;
    assert!(text.starts_with("Approved"), "{text}");
}
