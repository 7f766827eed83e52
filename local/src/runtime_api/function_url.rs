//! A Lambda function URL in front of a function (auth type NONE, buffered
//! invoke mode): HTTP requests become API Gateway payload format 2.0 events
//! ([`http_event`]), and the function's answers become HTTP responses
//! ([`http_response_from`]); a function error, crash or timeout is a 502.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{InvokeResult, Invoker, MAX_PAYLOAD_BYTES, insert_header, lambda_request_id, trace_id};
use crate::http_stub::random_hex;

/// An HTTP endpoint in front of a function, behaving like a Lambda function
/// URL (auth type NONE, buffered invoke mode, payload format 2.0).
pub struct FunctionUrl {
    addr: SocketAddr,
    url_id: String,
    task: JoinHandle<()>,
}

#[derive(Clone)]
struct UrlCtx {
    invoker: Invoker,
    url_id: Arc<str>,
    region: Arc<str>,
}

impl FunctionUrl {
    /// Serves on `bind` (port 0 for a free one).
    pub async fn start(invoker: Invoker, bind: SocketAddr) -> anyhow::Result<FunctionUrl> {
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("binding the function URL to {bind}"))?;
        let addr = listener.local_addr()?;
        // Real url ids are 32 lower-case alphanumerics.
        let url_id = random_hex(16);
        let ctx = UrlCtx {
            region: Arc::from(invoker.spec().region.as_str()),
            invoker,
            url_id: Arc::from(url_id.as_str()),
        };
        let app = Router::new().fallback(function_url_request).with_state(ctx);
        let task = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        Ok(FunctionUrl { addr, url_id, task })
    }

    /// `http://127.0.0.1:<port>/`
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The made-up url id (the `<url-id>` in `https://<url-id>.lambda-url.<region>.on.aws`).
    pub fn url_id(&self) -> &str {
        &self.url_id
    }

    /// Stops accepting requests.
    pub fn shutdown(&self) {
        self.task.abort();
    }
}

impl Drop for FunctionUrl {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn json_response(status: StatusCode, body: Value, request_id: &str) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    insert_header(response.headers_mut(), "x-amzn-requestid", request_id);
    response
}

async fn function_url_request(
    State(ctx): State<UrlCtx>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let request_id = lambda_request_id();
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"Message": "Request Entity Too Large"}),
            &request_id,
        )
    };
    if declared.is_some_and(|n| n > MAX_PAYLOAD_BYTES) {
        return too_large();
    }
    let Ok(body) = to_bytes(body, MAX_PAYLOAD_BYTES).await else {
        return too_large();
    };
    let now = time::OffsetDateTime::now_utc();
    let request_info = HttpRequestInfo {
        method: parts.method.as_str(),
        uri: &parts.uri,
        version: parts.version,
        headers: &parts.headers,
        body: &body,
        source_ip: peer.ip().to_string(),
        source_port: peer.port(),
        url_id: &ctx.url_id,
        region: &ctx.region,
        request_id: &request_id,
        now,
    };
    let event = http_event(&request_info);
    match ctx.invoker.invoke(&event).await {
        Ok(InvokeResult::Response(value)) => {
            let mut response = http_response_from(value).unwrap_or_else(|_| {
                json_response(
                    StatusCode::BAD_GATEWAY,
                    json!({"Message": null}),
                    &request_id,
                )
            });
            insert_header(response.headers_mut(), "x-amzn-requestid", &request_id);
            response
        }
        // Function URLs answer 502 for a function error, crash or timeout.
        Ok(_) => json_response(
            StatusCode::BAD_GATEWAY,
            json!({"Message": "Internal Server Error"}),
            &request_id,
        ),
        Err(e) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"Message": e.to_string()}),
            &request_id,
        ),
    }
}

/// What [`http_event`] needs to know about an HTTP request.
pub struct HttpRequestInfo<'a> {
    pub method: &'a str,
    pub uri: &'a http::Uri,
    pub version: http::Version,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: String,
    pub source_port: u16,
    pub url_id: &'a str,
    pub region: &'a str,
    pub request_id: &'a str,
    pub now: time::OffsetDateTime,
}

/// Whether function URLs pass a body of this content type as text; anything
/// else (or no content type at all) arrives base64-encoded.
pub fn is_text_content_type(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime.starts_with("text/")
        || mime.ends_with("+json")
        || mime.ends_with("+xml")
        || matches!(
            mime.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-javascript"
                | "application/yaml"
        )
}

/// Converts an HTTP request to the payload format 2.0 event a function URL sends.
pub fn http_event(req: &HttpRequestInfo<'_>) -> Value {
    // Header names are already lower case in `http`; repeated headers join with ",".
    let mut headers: Map<String, Value> = Map::new();
    let mut cookies: Vec<Value> = Vec::new();
    for name in req.headers.keys() {
        let values: Vec<String> = req
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        if name == header::COOKIE {
            // Cookies travel in their own array, not as a header.
            for value in &values {
                cookies.extend(
                    value
                        .split(';')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(|c| Value::from(c.to_string())),
                );
            }
            continue;
        }
        headers.insert(name.as_str().to_string(), Value::from(values.join(",")));
    }
    let trace = trace_id();
    for (name, value) in [
        ("x-forwarded-for", req.source_ip.clone()),
        ("x-forwarded-proto", "http".to_string()),
        (
            "x-forwarded-port",
            req.uri.port_u16().unwrap_or(req.source_port).to_string(),
        ),
        (
            "x-amzn-trace-id",
            trace.split(';').next().unwrap_or_default().to_string(),
        ),
    ] {
        headers
            .entry(name.to_string())
            .or_insert(Value::from(value));
    }

    let raw_query = req.uri.query().unwrap_or_default();
    let mut query: Vec<(String, Vec<String>)> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        match query.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value.into_owned()),
            None => query.push((key.into_owned(), vec![value.into_owned()])),
        }
    }

    let content_type = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let is_text = is_text_content_type(content_type) && std::str::from_utf8(req.body).is_ok();
    let user_agent = req
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let domain = format!("{}.lambda-url.{}.on.aws", req.url_id, req.region);
    let time_format = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    let protocol = match req.version {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    };

    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": req.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": req.url_id,
            "domainName": domain,
            "domainPrefix": req.url_id,
            "http": {
                "method": req.method,
                "path": req.uri.path(),
                "protocol": protocol,
                "sourceIp": req.source_ip,
                "userAgent": user_agent,
            },
            "requestId": req.request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": req.now.format(&time_format).unwrap_or_default(),
            "timeEpoch": req.now.unix_timestamp_nanos() / 1_000_000,
        },
        "isBase64Encoded": false,
    });
    if let Some(object) = event.as_object_mut() {
        if !cookies.is_empty() {
            object.insert("cookies".into(), Value::Array(cookies));
        }
        if !query.is_empty() {
            let params: Map<String, Value> = query
                .into_iter()
                .map(|(k, values)| (k, Value::from(values.join(","))))
                .collect();
            object.insert("queryStringParameters".into(), Value::Object(params));
        }
        if !req.body.is_empty() {
            if is_text {
                object.insert(
                    "body".into(),
                    Value::from(String::from_utf8_lossy(req.body).into_owned()),
                );
            } else {
                object.insert("body".into(), Value::from(BASE64.encode(req.body)));
                object.insert("isBase64Encoded".into(), Value::Bool(true));
            }
        }
    }
    event
}

/// Why a function's answer could not be turned into an HTTP response.
#[derive(Debug, thiserror::Error)]
#[error("invalid function URL response: {0}")]
pub struct BadResponse(String);

/// Converts a function's answer to the HTTP response a function URL sends.
/// An object with `statusCode` is a structured response; anything else is
/// returned as a 200 JSON body.
pub fn http_response_from(value: Value) -> Result<Response, BadResponse> {
    let object = match value {
        Value::Object(map) if map.contains_key("statusCode") => map,
        Value::String(text) => {
            return Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response());
        }
        other => {
            return Ok((
                [(header::CONTENT_TYPE, "application/json")],
                other.to_string(),
            )
                .into_response());
        }
    };
    let status = object
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|code| u16::try_from(code).ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| BadResponse("statusCode is not an HTTP status".into()))?;
    let body_text = match object.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let body = if object
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        BASE64
            .decode(body_text.as_bytes())
            .map_err(|e| BadResponse(format!("body is not base64: {e}")))?
    } else {
        body_text.into_bytes()
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let mut set: HashMap<String, ()> = HashMap::new();
    if let Some(Value::Object(map)) = object.get("headers") {
        for (name, value) in map {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::from_str(&text),
            ) {
                set.insert(name.as_str().to_string(), ());
                headers.append(name, value);
            }
        }
    }
    if let Some(Value::Object(map)) = object.get("multiValueHeaders") {
        for (name, values) in map {
            let Ok(name) = HeaderName::try_from(name.as_str()) else {
                continue;
            };
            if set.contains_key(name.as_str()) {
                continue; // already given in `headers`
            }
            for value in values.as_array().into_iter().flatten() {
                if let Some(Ok(value)) = value.as_str().map(HeaderValue::from_str) {
                    headers.append(name.clone(), value);
                }
            }
        }
    }
    if let Some(Value::Array(cookies)) = object.get("cookies") {
        for cookie in cookies.iter().filter_map(Value::as_str) {
            if let Ok(value) = HeaderValue::from_str(cookie) {
                headers.append(header::SET_COOKIE, value);
            }
        }
    }
    if !headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info<'a>(uri: &'a http::Uri, headers: &'a HeaderMap, body: &'a [u8]) -> HttpRequestInfo<'a> {
        HttpRequestInfo {
            method: "POST",
            uri,
            version: http::Version::HTTP_11,
            headers,
            body,
            source_ip: "127.0.0.1".into(),
            source_port: 40000,
            url_id: "abc",
            region: "us-east-1",
            request_id: "req-1",
            now: time::OffsetDateTime::from_unix_timestamp(1_583_348_638).unwrap(),
        }
    }

    #[test]
    fn http_event_has_the_function_url_shape() {
        let uri: http::Uri = "/hook/x?a=1&a=2&b=%20c".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.append("x-multi", HeaderValue::from_static("one"));
        headers.append("x-multi", HeaderValue::from_static("two"));
        headers.insert("cookie", HeaderValue::from_static("a=1; b=2"));
        headers.insert("user-agent", HeaderValue::from_static("curl/8"));
        let event = http_event(&info(&uri, &headers, br#"{"k":1}"#));
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["rawPath"], "/hook/x");
        assert_eq!(event["rawQueryString"], "a=1&a=2&b=%20c");
        assert_eq!(
            event["queryStringParameters"],
            json!({"a": "1,2", "b": " c"})
        );
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(event["headers"]["x-multi"], "one,two");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["body"], r#"{"k":1}"#);
        assert_eq!(event["isBase64Encoded"], false);
        let ctx = &event["requestContext"];
        assert_eq!(ctx["accountId"], "anonymous");
        assert_eq!(ctx["http"]["method"], "POST");
        assert_eq!(ctx["http"]["userAgent"], "curl/8");
        assert_eq!(ctx["time"], "04/Mar/2020:19:03:58 +0000");
        assert_eq!(ctx["timeEpoch"], 1_583_348_638_000i64);
        assert_eq!(ctx["stage"], "$default");
    }

    #[test]
    fn binary_or_untyped_bodies_are_base64() {
        let uri: http::Uri = "/".parse().unwrap();
        let headers = HeaderMap::new();
        let event = http_event(&info(&uri, &headers, b"\x00\x01"));
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], "AAE=");
        assert!(event.get("queryStringParameters").is_none());
        let event = http_event(&info(&uri, &headers, b""));
        assert!(event.get("body").is_none());
        assert!(is_text_content_type(Some("text/plain; charset=utf-8")));
        assert!(is_text_content_type(Some("application/vnd.api+json")));
        assert!(!is_text_content_type(Some("application/octet-stream")));
    }

    #[test]
    fn responses_convert_back_to_http() {
        let response = http_response_from(json!({
            "statusCode": 401,
            "headers": {"content-type": "application/json", "x-a": "1"},
            "multiValueHeaders": {"x-b": ["1", "2"], "x-a": ["ignored"]},
            "cookies": ["s=1"],
            "body": "eyJlcnJvciI6Im5vIn0=",
            "isBase64Encoded": true
        }))
        .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers().get_all("x-a").iter().count(), 1);
        assert_eq!(response.headers().get_all("x-b").iter().count(), 2);
        assert_eq!(response.headers()["set-cookie"], "s=1");
        assert!(http_response_from(json!({"statusCode": "nope"})).is_err());
        assert_eq!(
            http_response_from(json!({"plain": true})).unwrap().status(),
            StatusCode::OK
        );
    }
}
