//! What every test here uses: an HTTP client, answers read in full, the fake
//! Okta seeded with the demo org, and Okta's error shape.

use std::net::SocketAddr;
use std::time::UNIX_EPOCH;

use local_pipeline::fake_okta::FakeOkta;
use local_pipeline::seed::seed_demo_org;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) const TOKEN: &str = "test-okta-token";

pub(crate) fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }
    pub(crate) fn h(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header"))
    }
    pub(crate) fn num(&self, name: &str) -> u64 {
        self.h(name)
            .unwrap_or_else(|| panic!("missing {name}"))
            .parse()
            .expect("number")
    }
    /// `X-Rate-Limit-Reset` minus `Date`, the wait Okta's SDKs compute.
    pub(crate) fn reset_minus_date(&self) -> i64 {
        let date = httpdate::parse_http_date(self.h("date").expect("Date")).expect("RFC 7231 date");
        let date = date.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        self.num("x-rate-limit-reset") as i64 - date
    }
}

pub(crate) async fn send(rb: reqwest::RequestBuilder) -> Reply {
    let resp = rb.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    Reply {
        status,
        headers,
        text,
    }
}

pub(crate) struct Okta {
    pub(crate) fake: FakeOkta,
    pub(crate) http: reqwest::Client,
}

impl Okta {
    pub(crate) async fn start() -> Okta {
        let fake = FakeOkta::start(TOKEN).await;
        seed_demo_org(&fake);
        Okta {
            fake,
            http: client(),
        }
    }
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.fake.base_url())
    }
    pub(crate) async fn get(&self, path: &str) -> Reply {
        send(
            self.http
                .get(self.url(path))
                .header("Authorization", format!("SSWS {TOKEN}")),
        )
        .await
    }
    pub(crate) async fn post(&self, path: &str) -> Reply {
        send(
            self.http
                .post(self.url(path))
                .header("Authorization", format!("SSWS {TOKEN}")),
        )
        .await
    }
    pub(crate) async fn delete(&self, path: &str) -> Reply {
        send(
            self.http
                .delete(self.url(path))
                .header("Authorization", format!("SSWS {TOKEN}")),
        )
        .await
    }
    pub(crate) async fn search(&self, expr: &str) -> Reply {
        let rb = self
            .http
            .get(self.url(&format!("/api/v1/users?{}", query("search", expr))));
        send(rb.header("Authorization", format!("SSWS {TOKEN}"))).await
    }
    pub(crate) fn id(&self, login: &str) -> String {
        self.fake.user(login).expect("seeded user").id
    }
}

/// `name=value`, form-encoded as clients send it (`+` as `%2B`, space as `+`).
pub(crate) fn query(name: &str, value: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair(name, value)
        .finish()
}

/// Sends a request exactly as written (no client-side normalisation of `..` or
/// re-encoding), over a fresh connection.
pub(crate) async fn raw(addr: SocketAddr, method: &str, target: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: SSWS {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub(crate) fn logins(users: &Value) -> Vec<String> {
    let mut v: Vec<String> = users
        .as_array()
        .expect("array")
        .iter()
        .map(|u| u["profile"]["login"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

pub(crate) fn assert_okta_error(r: &Reply, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.h("content-type"), Some("application/json"));
    let b = r.json();
    assert_eq!(b["errorCode"], code, "{b}");
    assert_eq!(b["errorLink"], code);
    assert!(b["errorSummary"].is_string());
    assert!(b["errorId"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(b["errorCauses"].is_array());
    b
}
