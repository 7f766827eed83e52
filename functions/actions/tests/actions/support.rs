//! Test support: moto, fresh resources per test, signed Slack requests,
//! the queue's contents and captured logs.

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::Duration;

use actions::signature::sign;
use actions::{Actions, Config};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use lambda_http::http;
use lambda_http::{Body, Request};
use local_pipeline::aws_setup::{LocalAws, QueueSpec, create_queues, create_secret};
use local_pipeline::moto::MotoServer;
use serde_json::{Value, json};
use shared::config::Pairs;
use tracing_subscriber::fmt::MakeWriter;

pub const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
pub const BOT_TOKEN: &str = "xoxb-test-bot-token-never-logged";
pub const APPROVER: &str = "U0APPROVER";
pub const OTHER_APPROVER: &str = "U0SECOND";
pub const STRANGER: &str = "U0STRANGER";
pub const APP_ID: &str = "A0OORTAPP";
pub const TEAM_ID: &str = "T0OORTTEAM";
pub const RESPONSE_URL: &str = "https://hooks.slack.com/actions/T0OORTTEAM/1/abc";

/// This test binary's moto server, started on first use on a thread of its
/// own that lives as long as the process.
pub fn moto_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                match MotoServer::start().await {
                    Ok(server) => {
                        tx.send(Ok(server.endpoint().to_string())).ok();
                        std::future::pending::<()>().await;
                        drop(server);
                    }
                    Err(e) => {
                        tx.send(Err(e.to_string())).ok();
                    }
                }
            });
        });
        match rx.recv() {
            Ok(Ok(endpoint)) => endpoint,
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("the moto thread ended without an answer"),
        }
    })
}

pub async fn local_aws() -> LocalAws {
    LocalAws::connect(moto_endpoint()).await
}

pub fn dynamodb(aws: &LocalAws) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&aws.config)
}

/// A name no other test in this process uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh store table, created as the template creates it.
pub async fn new_table(aws: &LocalAws) -> (String, shared::store::Store) {
    let client = dynamodb(aws);
    let table = unique("store");
    shared::store::create_table(&client, &table)
        .await
        .expect("create the table");
    (table.clone(), shared::store::Store::new(client, table))
}

/// Everything one handler test needs: its own queue, table and secrets.
pub struct Fixture {
    pub aws: LocalAws,
    pub queue_url: String,
    pub table: String,
    pub store: shared::store::Store,
    pub signing_secret_id: String,
    pub slack_secret_id: String,
}

impl Fixture {
    pub async fn new() -> Fixture {
        Fixture::with_signing_secret(SIGNING_SECRET).await
    }

    pub async fn with_signing_secret(secret: &str) -> Fixture {
        let aws = local_aws().await;
        let queues = create_queues(&aws, &QueueSpec::new(&unique("actions")))
            .await
            .expect("create the queues");
        let (table, store) = new_table(&aws).await;
        let signing_secret_id = create_secret(&aws, &unique("signing"), secret)
            .await
            .expect("signing secret");
        let slack_secret_id = create_secret(
            &aws,
            &unique("slack"),
            &json!({"botToken": BOT_TOKEN, "channel": "C0123"}).to_string(),
        )
        .await
        .expect("slack secret");
        Fixture {
            aws,
            queue_url: queues.queue_url,
            table,
            store,
            signing_secret_id,
            slack_secret_id,
        }
    }

    /// The settings of a deployed stack with one approver, plus `extra`
    /// (which win; an empty value unsets a setting).
    pub fn config(&self, extra: &[(&str, &str)]) -> Config {
        let mut pairs = vec![
            ("QUEUE_URL", self.queue_url.as_str()),
            ("STORE_TABLE", self.table.as_str()),
            ("SLACK_SIGNING_SECRET_ID", self.signing_secret_id.as_str()),
            ("SLACK_APPROVERS", APPROVER),
            ("SLACK_SECRET_ID", self.slack_secret_id.as_str()),
        ];
        pairs.extend_from_slice(extra);
        Config::from_lookup(&Pairs(&pairs)).expect("valid test settings")
    }

    pub fn actions(&self, extra: &[(&str, &str)]) -> Actions {
        self.actions_with(self.config(extra))
    }

    pub fn actions_with(&self, config: Config) -> Actions {
        shared::aws::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .expect("http client");
        Actions::with_min_key_refresh(
            config,
            self.aws.sqs.clone(),
            self.aws.secrets.clone(),
            dynamodb(&self.aws),
            http,
            Duration::from_millis(10),
        )
    }

    /// Every message on the queue, received and deleted.
    pub async fn drain(&self) -> Vec<Message> {
        let mut all = Vec::new();
        loop {
            let out = self
                .aws
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .wait_time_seconds(0)
                .send()
                .await
                .expect("receive");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return all;
            }
            for m in &messages {
                self.aws
                    .sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
            all.extend(messages);
        }
    }

    /// Stores a held event, as the dispatcher will.
    pub async fn hold(&self, event_id: &str, user_count: u32, age: Duration) {
        let event = shared::store::HeldEvent::new(
            event_id,
            &json!({"id": event_id, "detail-type": "FAILED_CHECK", "detail": {}}).to_string(),
            "over the cap",
            user_count,
            time::OffsetDateTime::now_utc() - age,
            Duration::from_secs(72 * 3600),
        );
        self.store.put_held_event(&event).await.expect("hold");
    }
}

/// A `block_actions` payload for a click of `action_id` with `value`.
pub fn payload(user: &str, action_id: &str, value: &str) -> Value {
    json!({
        "type": "block_actions",
        "api_app_id": APP_ID,
        "team": {"id": TEAM_ID, "domain": "oort"},
        "user": {"id": user, "username": "someone", "team_id": TEAM_ID},
        "channel": {"id": "C0123", "name": "security"},
        "message": {"ts": "1700000000.000100", "text": "summary"},
        "response_url": RESPONSE_URL,
        "trigger_id": "1.2.3",
        "actions": [{"type": "button", "action_id": action_id, "block_id": "decide",
                     "value": value, "action_ts": "1700000001.000200"}]
    })
}

/// The form body Slack POSTs: `payload=<URL-encoded JSON>`.
pub fn form(payload: &Value) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A request as a function URL delivers it, signed with `secret` at `timestamp`.
pub fn signed_with(body: &str, secret: &str, timestamp: i64) -> Request {
    let ts = timestamp.to_string();
    let signature = sign(secret.as_bytes(), &ts, body.as_bytes());
    request(body, Some(&ts), Some(&signature))
}

/// A request signed now with the test signing secret.
pub fn signed(body: &str) -> Request {
    signed_with(body, SIGNING_SECRET, now())
}

/// A click by `user`, signed now.
pub fn click(user: &str, action_id: &str, value: &str) -> Request {
    signed(&form(&payload(user, action_id, value)))
}

pub fn request(body: &str, timestamp: Option<&str>, signature: Option<&str>) -> Request {
    let mut builder = http::Request::builder()
        .method("POST")
        .uri("https://abc.lambda-url.us-east-1.on.aws/")
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(ts) = timestamp {
        builder = builder.header("x-slack-request-timestamp", ts);
    }
    if let Some(sig) = signature {
        builder = builder.header("x-slack-signature", sig);
    }
    builder.body(Body::Text(body.to_string())).unwrap()
}

/// Status and parsed JSON body of an answer.
pub async fn answer(actions: &Actions, request: Request) -> (u16, Value) {
    let response = actions.handle(request).await;
    let status = response.status().as_u16();
    let body = match response.body() {
        Body::Text(t) => t.clone(),
        other => panic!("unexpected body {other:?}"),
    };
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}")),
    )
}

/// The text of an ephemeral 200 answer (panics on anything else).
pub async fn reply(actions: &Actions, request: Request) -> String {
    let (status, body) = answer(actions, request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["response_type"], "ephemeral", "{body}");
    assert_eq!(body["replace_original"], false, "{body}");
    body["text"].as_str().expect("text").to_string()
}

pub fn attribute(message: &Message, name: &str) -> Option<String> {
    message
        .message_attributes
        .as_ref()?
        .get(name)?
        .string_value
        .clone()
}

pub fn system_attribute(message: &Message, name: MessageSystemAttributeName) -> Option<String> {
    message.attributes.as_ref()?.get(&name).cloned()
}

// ---------------------------------------------------------------- logs

#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

struct ThreadCapture;

impl Write for ThreadCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CURRENT.with(|c| {
            if let Some(captured) = c.borrow().as_ref() {
                captured.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ThreadCapture {
    type Writer = ThreadCapture;
    fn make_writer(&'a self) -> Self::Writer {
        ThreadCapture
    }
}

/// Captures what this thread logs from now until the returned guard drops
/// (`#[tokio::test]` runs each test on its own current-thread runtime).
pub fn capture_logs() -> Captured {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_env_filter("trace")
            .with_writer(ThreadCapture)
            .init();
    });
    let captured = Captured::default();
    CURRENT.with(|c| *c.borrow_mut() = Some(captured.clone()));
    captured
}
