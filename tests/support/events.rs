//! The sample events in `events/`, as the functions receive them.

use std::path::PathBuf;

/// The repository's `events/` folder.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// The text of `events/<name>`.
pub fn read(name: &str) -> String {
    let path = dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file name in `events/` ending in `.json`, except the env file.
pub fn all() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .expect("events/ exists")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".json") && name != "env.json")
        .collect();
    names.sort();
    names
}

/// A function URL event (payload format 2.0) turned into the `Request` that
/// `lambda_http` hands the handler, through lambda_http's own deserializer.
pub fn function_url_request(json: &str) -> lambda_http::Request {
    lambda_http::request::from_str(json).expect("a payload 2.0 event")
}

/// The header value an event file sends as its API key, if any.
pub fn api_key_in(json: &str) -> Option<String> {
    let event: serde_json::Value = serde_json::from_str(json).expect("json");
    event["headers"]["x-api-client-token"]
        .as_str()
        .map(String::from)
}
