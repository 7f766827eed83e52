//! A Slack interaction, as the request body carries it.
//!
//! Slack POSTs `application/x-www-form-urlencoded` with one field,
//! `payload=<URL-encoded JSON>`. Only `block_actions` (a button click) is
//! accepted. Parsing happens only after the signature was checked, over
//! the same bytes.

use serde::Deserialize;
use shared::decision::is_slack_user_id;

/// What this function needs from a click.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    /// `user.id`: the identity of the clicker (`username` is display data).
    pub user_id: String,
    /// `team.id` (or `user.team_id` for org-wide installs).
    pub team_id: Option<String>,
    pub api_app_id: Option<String>,
    pub response_url: String,
    /// The first (and for a button, only) action.
    pub action_id: String,
    pub value: String,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    api_app_id: Option<String>,
    #[serde(default)]
    team: Option<Team>,
    #[serde(default)]
    user: Option<User>,
    #[serde(default)]
    response_url: Option<String>,
    #[serde(default)]
    actions: Vec<ActionItem>,
}

#[derive(Deserialize)]
struct Team {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct User {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
}

#[derive(Deserialize)]
struct ActionItem {
    #[serde(default)]
    action_id: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

/// The interaction in `body`, or why it is not one (a 400).
pub fn parse(body: &[u8]) -> Result<Interaction, String> {
    let payload = url::form_urlencoded::parse(body)
        .find(|(name, _)| name == "payload")
        .map(|(_, value)| value)
        .ok_or("body is not a Slack interaction: no payload field")?;
    let payload: Payload = serde_json::from_str(&payload).map_err(|e| {
        format!(
            "body is not a Slack interaction: payload is not valid JSON ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        )
    })?;
    if payload.kind != "block_actions" {
        return Err(format!(
            "body is not a button click: payload type is {:?}, not \"block_actions\"",
            payload.kind.chars().take(40).collect::<String>()
        ));
    }
    let user = payload.user.ok_or("payload has no user")?;
    let user_id = user
        .id
        .filter(|id| is_slack_user_id(id))
        .ok_or("payload has no valid user.id")?;
    let response_url = payload
        .response_url
        .filter(|u| u.starts_with("https://") || is_loopback_http(u))
        .ok_or("payload has no https response_url")?;
    let action = payload
        .actions
        .into_iter()
        .next()
        .ok_or("payload has no actions")?;
    Ok(Interaction {
        user_id,
        team_id: payload.team.and_then(|t| t.id).or(user.team_id),
        api_app_id: payload.api_app_id,
        response_url,
        action_id: action.action_id.unwrap_or_default(),
        value: action.value.unwrap_or_default(),
    })
}

fn is_loopback_http(raw: &str) -> bool {
    match url::Url::parse(raw) {
        Ok(url) if url.scheme() == "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(payload: &str) -> Vec<u8> {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", payload)
            .finish()
            .into_bytes()
    }

    #[test]
    fn a_button_click_is_read() {
        let payload = serde_json::json!({
            "type": "block_actions", "api_app_id": "A1", "team": {"id": "T1", "domain": "x"},
            "user": {"id": "U024BE7LH", "username": "ana"},
            "response_url": "https://hooks.slack.com/actions/T1/1/x",
            "actions": [{"type": "button", "action_id": "approve", "value": "{\"e\":\"x\"}", "block_id": "b"}]
        });
        let i = parse(&form(&payload.to_string())).unwrap();
        assert_eq!(i.user_id, "U024BE7LH");
        assert_eq!(i.team_id.as_deref(), Some("T1"));
        assert_eq!(i.api_app_id.as_deref(), Some("A1"));
        assert_eq!(i.action_id, "approve");
        assert_eq!(i.value, "{\"e\":\"x\"}");
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        let click = |patch: serde_json::Value| {
            let mut p = serde_json::json!({
                "type": "block_actions", "user": {"id": "U024BE7LH"},
                "response_url": "https://hooks.slack.com/actions/T1/1/x",
                "actions": [{"action_id": "approve", "value": "v"}]
            });
            for (k, v) in patch.as_object().unwrap() {
                p[k] = v.clone();
            }
            form(&p.to_string())
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "no payload field"),
            (b"{\"type\":\"block_actions\"}".to_vec(), "no payload field"),
            (form("not json"), "not valid JSON"),
            (
                click(serde_json::json!({"type": "view_submission"})),
                "not \"block_actions\"",
            ),
            (click(serde_json::json!({"user": null})), "no user"),
            (
                click(serde_json::json!({"user": {"id": "alice"}})),
                "user.id",
            ),
            (
                click(serde_json::json!({"response_url": "http://evil.example/x"})),
                "response_url",
            ),
            (click(serde_json::json!({"actions": []})), "no actions"),
        ];
        for (body, expected) in cases {
            let err = parse(&body).unwrap_err();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        let org_wide =
            click(serde_json::json!({"team": null, "user": {"id": "W1ABC", "team_id": "T9"}}));
        assert_eq!(parse(&org_wide).unwrap().team_id.as_deref(), Some("T9"));
    }
}
