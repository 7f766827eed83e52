//! The Lambda Runtime API emulator, tested against a fixture function that
//! runs on the real `lambda_runtime` client: answers, errors, crashes,
//! timeouts, failed inits, concurrency, log capture, the function URL's
//! payload format 2.0 conversion, and that no child survives the emulator.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use local_pipeline::runtime_api::{
    FunctionSpec, FunctionUrl, InvokeResult, LogSource, RuntimeEmulator,
};
use serde_json::{Value, json};

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture-lambda");

fn spec(name: &str) -> FunctionSpec {
    FunctionSpec {
        timeout: Duration::from_secs(5),
        max_queue_wait: Duration::from_secs(20),
        ..FunctionSpec::new(name, FIXTURE)
    }
}

async fn started(spec: FunctionSpec) -> (RuntimeEmulator, local_pipeline::runtime_api::Invoker) {
    let emulator = RuntimeEmulator::new();
    let invoker = emulator
        .start_function(spec)
        .await
        .expect("start the fixture");
    invoker
        .wait_ready(Duration::from_secs(20))
        .await
        .expect("fixture ready");
    (emulator, invoker)
}

fn response(result: InvokeResult) -> Value {
    match result {
        InvokeResult::Response(value) => value,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn invocations_get_lambda_headers_and_environment() {
    let (emulator, fixture) = started(FunctionSpec {
        env: vec![("FIXTURE_SETTING".into(), "x".into())],
        ..spec("echo-fn")
    })
    .await;
    let before = epoch_ms();
    let answer = response(
        fixture
            .invoke(&json!({"action": "echo", "n": 1}))
            .await
            .unwrap(),
    );
    assert_eq!(answer["event"], json!({"action": "echo", "n": 1}));
    assert_eq!(
        answer["arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:echo-fn"
    );
    assert_eq!(answer["request_id"].as_str().unwrap().len(), 36);
    assert!(answer["trace_id"].as_str().unwrap().starts_with("Root=1-"));
    let deadline = answer["deadline"].as_i64().unwrap();
    assert!(
        deadline >= before + 4_000 && deadline <= epoch_ms() + 5_000,
        "deadline {deadline} vs now {before}"
    );
    let env = &answer["env"];
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "echo-fn");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "128");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/echo-fn");
    assert!(
        env["AWS_LAMBDA_LOG_STREAM_NAME"]
            .as_str()
            .unwrap()
            .contains("[$LATEST]")
    );
    assert_eq!(env["FIXTURE_SETTING"], "x");
    emulator.shutdown().await;
}

#[tokio::test]
async fn errors_crashes_and_timeouts_fail_the_invocation_and_the_instance_recovers() {
    let (emulator, fixture) = started(FunctionSpec {
        timeout: Duration::from_secs(1),
        ..spec("faulty-fn")
    })
    .await;

    let error = fixture.invoke(&json!({"action": "error"})).await.unwrap();
    match &error {
        InvokeResult::Error { error_message, .. } => {
            assert!(error_message.contains("asked to fail"), "{error_message}")
        }
        other => panic!("expected an error, got {other:?}"),
    }

    let crash = fixture
        .invoke(&json!({"action": "exit", "code": 7}))
        .await
        .unwrap();
    match &crash {
        InvokeResult::Crashed { error_message } => {
            assert!(error_message.contains("exit status: 7"), "{error_message}")
        }
        other => panic!("expected a crash, got {other:?}"),
    }
    assert_eq!(crash.error_type(), Some("Runtime.ExitError"));
    // The instance is restarted, like a fresh Lambda environment.
    response(fixture.invoke(&json!({"action": "echo"})).await.unwrap());

    let started = Instant::now();
    let timeout = fixture
        .invoke(&json!({"action": "sleep", "ms": 10_000}))
        .await
        .unwrap();
    assert_eq!(
        timeout,
        InvokeResult::TimedOut {
            timeout: Duration::from_secs(1)
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the timeout took {:?}",
        started.elapsed()
    );
    response(fixture.invoke(&json!({"action": "echo"})).await.unwrap());

    let stats = fixture.stats();
    assert_eq!((stats.errors, stats.crashes, stats.timeouts), (1, 1, 1));
    assert!(stats.restarts >= 2, "{stats:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_failed_init_fails_the_invocation_instead_of_hanging() {
    let emulator = RuntimeEmulator::new();
    let fixture = emulator
        .start_function(FunctionSpec {
            env: vec![("FIXTURE_INIT_FAIL".into(), "1".into())],
            ..spec("broken-fn")
        })
        .await
        .unwrap();
    let waited = Instant::now();
    let err = fixture
        .wait_ready(Duration::from_secs(30))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        waited.elapsed() < Duration::from_secs(5),
        "an instance that keeps failing to start is reported at once, not after the timeout"
    );
    assert!(err.contains("0 of 1 instances ready"), "{err}");
    assert!(err.contains("init failed on purpose"), "{err}");
    let result = tokio::time::timeout(Duration::from_secs(15), fixture.invoke(&json!({})))
        .await
        .expect("a failed init must not hang the caller")
        .unwrap();
    assert_eq!(result.error_type(), Some("Runtime.InitError"), "{result:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn instances_run_concurrently_and_their_output_is_published() {
    let (emulator, fixture) = started(FunctionSpec {
        instances: 4,
        ..spec("wide-fn")
    })
    .await;
    let mut logs = emulator.subscribe_logs();

    let started = Instant::now();
    let sleep = json!({"action": "sleep", "ms": 400});
    let calls = (0..8).map(|_| fixture.invoke(&sleep));
    let results = futures::future::join_all(calls).await;
    let elapsed = started.elapsed();
    let pids: std::collections::HashSet<u64> = results
        .into_iter()
        .map(|r| response(r.unwrap())["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 4, "every instance took work");
    assert!(
        elapsed < Duration::from_millis(2_400),
        "8 × 400 ms on 4 instances took {elapsed:?}"
    );

    response(
        fixture
            .invoke(&json!({"action": "log", "line": "{\"event_id\":\"e1\",\"outcome\":\"ok\"}"}))
            .await
            .unwrap(),
    );
    let line = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let line = logs.recv().await.unwrap();
            if line.source == LogSource::Stdout && line.line.contains("e1") {
                return line;
            }
        }
    })
    .await
    .expect("the log line arrives");
    assert_eq!(&*line.function, "wide-fn");
    assert_eq!(line.json().unwrap()["outcome"], "ok");
    emulator.shutdown().await;
}

fn alive(pid: u32) -> bool {
    // A killed child may linger as a zombie until reaped; that is not alive.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or_default()
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

#[tokio::test]
async fn no_child_outlives_the_emulator() {
    let (emulator, _fixture) = started(FunctionSpec {
        instances: 3,
        ..spec("leak-fn")
    })
    .await;
    let pids = emulator.pids();
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|pid| alive(*pid)));
    drop(emulator);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|pid| alive(*pid)) {
        assert!(
            Instant::now() < deadline,
            "children still alive after drop: {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_function_url_speaks_payload_format_2() {
    shared::aws::install_crypto_provider();
    let (emulator, fixture) = started(spec("url-fn")).await;
    let url = FunctionUrl::start(fixture, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::new();

    let answer = http
        .post(format!("{}hook/path?a=1&a=2&b=x%20y", url.url()))
        .header("content-type", "application/json")
        .header("X-Custom", "Value")
        .header("cookie", "c1=v1; c2=v2")
        .body(r#"{"hello":"world"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    assert_eq!(answer.headers()["x-fixture"], "yes");
    assert_eq!(answer.headers()["set-cookie"], "session=abc; Path=/");
    assert!(answer.headers().contains_key("x-amzn-requestid"));
    let event: Value = answer.json().await.unwrap();
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "$default");
    assert_eq!(event["rawPath"], "/hook/path");
    assert_eq!(event["rawQueryString"], "a=1&a=2&b=x%20y");
    assert_eq!(
        event["queryStringParameters"],
        json!({"a": "1,2", "b": "x y"})
    );
    assert_eq!(event["cookies"], json!(["c1=v1", "c2=v2"]));
    assert_eq!(event["headers"]["x-custom"], "Value");
    assert_eq!(event["body"], r#"{"hello":"world"}"#);
    assert_eq!(event["isBase64Encoded"], false);
    assert_eq!(event["requestContext"]["http"]["method"], "POST");
    assert_eq!(event["requestContext"]["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(event["requestContext"]["accountId"], "anonymous");

    let binary = http
        .put(url.url())
        .header("content-type", "application/octet-stream")
        .body(vec![0u8, 1, 2])
        .send()
        .await
        .unwrap();
    let event: Value = binary.json().await.unwrap();
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(event["body"], "AAEC");
    assert_eq!(event["requestContext"]["http"]["method"], "PUT");

    let decoded = http
        .get(format!("{}binary", url.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(decoded.bytes().await.unwrap().as_ref(), &[0u8, 1, 2]);

    let failed = http
        .get(format!("{}error", url.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 502);

    let too_big = http
        .post(url.url())
        .body(vec![b'x'; 6 * 1024 * 1024 + 1])
        .send()
        .await;
    match too_big {
        Ok(answer) => assert_eq!(answer.status(), 413),
        // The server may close the connection while the body is still being sent.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    emulator.shutdown().await;
}
