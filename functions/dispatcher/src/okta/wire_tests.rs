//! The client's handling of Okta's answers, against a local HTTP mock
//! (wiremock): statuses, redirects, token renewal, DPoP nonces, the token
//! endpoint's errors. Fast and focused; the stateful Okta stand-in in
//! `local/` covers whole pipelines.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use url::Url;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::auth::SecretSource;
use super::client::{OktaClient, OktaSettings};
use super::credential::DEFAULT_SCOPES;
use super::*;

const EC_P256: &str = include_str!("../../../../tests/fixtures/keys/ec-p256.pem");

fn client(server: &MockServer, secret: Value) -> OktaClient {
    OktaClient::with_source(
        OktaSettings {
            org_url: Url::parse(&server.uri()).unwrap(),
            secret_id: "acme/okta".into(),
            secret_ttl: Duration::from_secs(300),
            concurrency: 4,
            default_scopes: DEFAULT_SCOPES.into(),
        },
        SecretSource::Text(secret.to_string()),
        crate::http::Http::new(),
    )
}

fn app_secret() -> Value {
    json!({"clientId": "0oa1", "privateKey": EC_P256, "keyId": "k1"})
}

fn ctx() -> CallContext<'static> {
    CallContext::new(
        "evt-1",
        "ana@example.com",
        Deadline::after(Duration::from_secs(20)),
    )
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

/// The claims of a JWT (unverified: signatures are the stand-in's job).
fn claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn form(req: &Request) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect()
}

fn user_json(id: &str, status: &str) -> Value {
    json!({"id": id, "status": status, "profile": {"login": "ana@example.com", "email": "ana@example.com"}})
}

#[tokio::test]
async fn a_redirect_after_a_suspend_is_never_a_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/users/00u1/lifecycle/suspend"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/elsewhere"))
        .expect(1..)
        .mount(&server)
        .await;
    Mock::given(path("/elsewhere"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let okta = client(&server, json!({"apiToken": "t0k"}));
    let result = okta.suspend("00u1", &ctx()).await;
    assert!(
        matches!(&result, Err(CallError::Transient(r)) if r.contains("302")),
        "{result:?}"
    );
}

#[tokio::test]
async fn ssws_sends_the_token_and_a_refused_token_is_reread_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/users/00u1"))
        .respond_with(|req: &Request| {
            assert_eq!(header(req, "authorization").as_deref(), Some("SSWS t0k"));
            assert!(header(req, "dpop").is_none());
            ResponseTemplate::new(401).set_body_json(
                json!({"errorCode": "E0000011", "errorSummary": "Invalid token provided"}),
            )
        })
        .expect(2)
        .mount(&server)
        .await;
    let okta = client(&server, json!({"apiToken": "t0k"}));
    let err = okta.get_user("00u1", &ctx()).await.unwrap_err().to_string();
    assert_eq!(
        err,
        "Okta answered 401 E0000011: Invalid token provided: the API token in secret acme/okta was refused"
    );
    assert!(!err.contains("t0k"));
}

/// A token endpoint for an app with "Require DPoP": the nonce handshake,
/// then DPoP tokens. Counts token requests and keeps their jtis.
fn dpop_token_endpoint(
    requests: Arc<AtomicUsize>,
    jtis: Arc<std::sync::Mutex<Vec<String>>>,
) -> impl Fn(&Request) -> ResponseTemplate {
    move |req: &Request| {
        let n = requests.fetch_add(1, Ordering::SeqCst);
        let form = form(req);
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["scope"], DEFAULT_SCOPES);
        let assertion = claims(&form["client_assertion"]);
        assert_eq!(assertion["iss"], "0oa1");
        assert!(
            assertion["aud"]
                .as_str()
                .unwrap()
                .ends_with("/oauth2/v1/token")
        );
        jtis.lock()
            .unwrap()
            .push(assertion["jti"].as_str().unwrap().to_string());
        let proof = header(req, "dpop").expect("the proof is sent up front");
        let proof = claims(&proof);
        assert_eq!(proof["htm"], "POST");
        match proof.get("nonce").and_then(Value::as_str) {
            None => ResponseTemplate::new(400)
                .insert_header("dpop-nonce", "n1")
                .set_body_json(json!({"error": "use_dpop_nonce", "error_description": "Authorization server requires nonce in DPoP proof."})),
            Some(nonce) => {
                // n1 from the handshake, or n2 learned from an API answer.
                assert!(["n1", "n2"].contains(&nonce), "{nonce}");
                ResponseTemplate::new(200).set_body_json(json!({
                    "token_type": "DPoP", "expires_in": 3600, "access_token": format!("at{n}"), "scope": DEFAULT_SCOPES
                }))
            }
        }
    }
}

#[tokio::test]
async fn a_dpop_app_gets_its_token_in_one_handshake_and_proves_every_call() {
    let server = MockServer::start().await;
    let token_requests = Arc::new(AtomicUsize::new(0));
    let jtis = Arc::new(std::sync::Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(path("/oauth2/v1/token"))
        .respond_with(dpop_token_endpoint(token_requests.clone(), jtis.clone()))
        .mount(&server)
        .await;
    let uri = server.uri();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    Mock::given(method("GET"))
        .and(path("/api/v1/users/00u1"))
        .respond_with(move |req: &Request| {
            seen.fetch_add(1, Ordering::SeqCst);
            assert_eq!(header(req, "authorization").as_deref(), Some("DPoP at1"));
            let proof = claims(&header(req, "dpop").expect("a proof on every call"));
            assert_eq!(proof["htm"], "GET");
            assert_eq!(proof["htu"], format!("{uri}/api/v1/users/00u1"));
            assert_eq!(
                proof["ath"],
                URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(b"at1"))
            );
            ResponseTemplate::new(200).set_body_json(user_json("00u1", "ACTIVE"))
        })
        .mount(&server)
        .await;
    use sha2::Digest;
    let okta = client(&server, app_secret());
    for _ in 0..3 {
        assert_eq!(
            okta.get_user("00u1", &ctx()).await.unwrap().unwrap().id,
            "00u1"
        );
    }
    assert_eq!(
        token_requests.load(Ordering::SeqCst),
        2,
        "nonce handshake, then one cached token"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let jtis = jtis.lock().unwrap();
    assert_ne!(jtis[0], jtis[1], "a new assertion for the retry");
}

#[tokio::test]
async fn a_new_nonce_on_an_api_call_gets_one_retry_and_a_401_one_new_token() {
    let server = MockServer::start().await;
    let token_requests = Arc::new(AtomicUsize::new(0));
    Mock::given(method("POST"))
        .and(path("/oauth2/v1/token"))
        .respond_with(dpop_token_endpoint(
            token_requests.clone(),
            Default::default(),
        ))
        .mount(&server)
        .await;
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    Mock::given(method("DELETE"))
        .and(path("/api/v1/users/00u1/sessions"))
        .respond_with(move |req: &Request| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let proof = claims(&header(req, "dpop").unwrap());
            match n {
                // The server rotates the nonce: one retry with it.
                0 => ResponseTemplate::new(401)
                    .insert_header("dpop-nonce", "n2")
                    .insert_header("www-authenticate", r#"DPoP error="use_dpop_nonce""#),
                1 => {
                    assert_eq!(proof["nonce"], "n2");
                    // Then the token is refused: one new token.
                    ResponseTemplate::new(401).set_body_json(
                        json!({"errorCode": "E0000011", "errorSummary": "Invalid token provided"}),
                    )
                }
                _ => {
                    assert_eq!(
                        header(req, "authorization").as_deref(),
                        Some("DPoP at2"),
                        "the new token"
                    );
                    ResponseTemplate::new(204)
                }
            }
        })
        .mount(&server)
        .await;
    let okta = client(&server, app_secret());
    okta.clear_sessions("00u1", &ctx()).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // n1 handshake + token, then after the 401 one token with the known nonce.
    assert_eq!(token_requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_app_without_dpop_is_recognised_and_remembered() {
    for refuses_proofs in [false, true] {
        let server = MockServer::start().await;
        let with_proof = Arc::new(AtomicUsize::new(0));
        let without = Arc::new(AtomicUsize::new(0));
        let (p, w) = (with_proof.clone(), without.clone());
        Mock::given(method("POST"))
            .and(path("/oauth2/v1/token"))
            .respond_with(move |req: &Request| {
                if header(req, "dpop").is_some() {
                    p.fetch_add(1, Ordering::SeqCst);
                    if refuses_proofs {
                        return ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_dpop_proof", "error_description": "DPoP proof not expected for this client"}));
                    }
                } else {
                    w.fetch_add(1, Ordering::SeqCst);
                }
                ResponseTemplate::new(200).set_body_json(json!({"token_type": "Bearer", "expires_in": 1, "access_token": "bt", "scope": DEFAULT_SCOPES}))
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/users/00u1/roles"))
            .respond_with(|req: &Request| {
                assert_eq!(header(req, "authorization").as_deref(), Some("Bearer bt"));
                assert!(header(req, "dpop").is_none());
                ResponseTemplate::new(200).set_body_json(json!([{"type": "SUPER_ADMIN"}]))
            })
            .mount(&server)
            .await;
        let okta = client(&server, app_secret());
        assert_eq!(
            okta.admin_roles("00u1", &ctx()).await.unwrap(),
            ["SUPER_ADMIN"]
        );
        // The token lives 1 s: the renewal sends no proof.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        okta.admin_roles("00u1", &ctx()).await.unwrap();
        assert_eq!(
            with_proof.load(Ordering::SeqCst),
            1,
            "refuses proofs: {refuses_proofs}"
        );
        assert_eq!(
            without.load(Ordering::SeqCst),
            if refuses_proofs { 2 } else { 1 }
        );
    }
}

#[tokio::test]
async fn a_refused_app_is_reported_in_plain_words_once_per_event() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/v1/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_scope", "error_description": "The following scopes are not allowed: okta.roles.read"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/users/00u1"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let okta = client(&server, app_secret());
    for _ in 0..5 {
        let err = okta.get_user("00u1", &ctx()).await.unwrap_err();
        assert_eq!(
            err,
            CallError::Credentials(
                "the Okta app 0oa1 was refused: invalid_scope: The following scopes are not allowed: okta.roles.read".into()
            ),
            "for a person to fix, with the same words for every user"
        );
    }
}

#[tokio::test]
async fn universal_logout_not_licensed_is_not_a_failure() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/v1/global-token-revocation"))
        .respond_with(|req: &Request| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            assert_eq!(body, json!({"sub_id": {"format": "opaque", "id": "00u1"}}));
            ResponseTemplate::new(403).set_body_json(json!({"errorCode": "E0000006", "errorSummary": "You do not have permission to perform the requested action"}))
        })
        .mount(&server)
        .await;
    let okta = client(&server, json!({"apiToken": "t0k"}));
    assert!(matches!(
        okta.revoke_globally("00u1", &ctx()).await,
        Ok(Revocation::NotAvailable { reason }) if reason.starts_with("Okta answered 403 E0000006")
    ));
}

#[tokio::test]
async fn suspend_answers_become_typed_results() {
    let server = MockServer::start().await;
    let not_active = json!({"errorCode": "E0000001", "errorSummary": "Api validation failed: suspendUser", "errorCauses": [{"errorSummary": "Cannot suspend a user that is not active"}]});
    for (id, answer, expected) in [
        ("00ua", ResponseTemplate::new(200), Ok(Suspension::Done)),
        ("00ub", ResponseTemplate::new(400).set_body_json(not_active), Ok(Suspension::NotSuspendable {
            refusal: "Okta answered 400 E0000001: Api validation failed: suspendUser (Cannot suspend a user that is not active)".into(),
        })),
        ("00uc", ResponseTemplate::new(404), Ok(Suspension::Gone)),
        ("00ud", ResponseTemplate::new(403).set_body_json(json!({"errorCode": "E0000006", "errorSummary": "You do not have permission"})), Err(CallError::Refused {
            doing: "suspend the user",
            okta: "Okta answered 403 E0000006: You do not have permission".into(),
        })),
    ] {
        Mock::given(method("POST"))
            .and(path(format!("/api/v1/users/{id}/lifecycle/suspend")))
            .respond_with(answer)
            .mount(&server)
            .await;
        let okta = client(&server, json!({"apiToken": "t0k"}));
        assert_eq!(okta.suspend(id, &ctx()).await, expected, "{id}");
    }
}

#[tokio::test]
async fn group_membership_answers_become_typed_results() {
    let server = MockServer::start().await;
    let forbidden = json!({"errorCode": "E0000006", "errorSummary": "You do not have permission to perform the requested action"});
    Mock::given(method("GET"))
        .and(path("/api/v1/groups/00gq"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": "00gq", "type": "OKTA_GROUP", "profile": {"name": "oort-quarantine", "description": null}, "_links": {}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/groups/00gapp"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "00gapp", "type": "APP_GROUP"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/users/00u1/groups"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!([{"id": "00gEveryone", "type": "BUILT_IN"}, {"id": "00gq", "type": "OKTA_GROUP"}]),
        ))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/api/v1/groups/00gq/users/00u1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/api/v1/groups/00gapp/users/00u1"))
        .respond_with(ResponseTemplate::new(403).set_body_json(forbidden))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/api/v1/groups/00gq/users/00u2"))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"errorCode": "E0000007", "errorSummary": "Not found: Resource not found: 00u2 (User)"}),
        ))
        .mount(&server)
        .await;
    let okta = client(&server, json!({"apiToken": "t0k"}));

    let group = okta.get_group("00gq", &ctx()).await.unwrap().unwrap();
    assert!(group.is_okta_group());
    assert_eq!(group.profile.name.as_deref(), Some("oort-quarantine"));
    let app = okta.get_group("00gapp", &ctx()).await.unwrap().unwrap();
    assert!(!app.is_okta_group());
    assert_eq!(app.kind(), "APP_GROUP");
    assert_eq!(okta.get_group("00gnone", &ctx()).await, Ok(None));
    assert_eq!(
        okta.user_groups("00u1", &ctx()).await.unwrap(),
        ["00gEveryone", "00gq"]
    );
    assert_eq!(
        okta.add_to_group("00gq", "00u1", &ctx()).await,
        Ok(Membership::Done)
    );
    assert_eq!(
        okta.add_to_group("00gapp", "00u1", &ctx()).await,
        Err(CallError::Refused {
            doing: "add the user to the quarantine group",
            okta: "Okta answered 403 E0000006: You do not have permission to perform the requested action".into(),
        })
    );
    assert_eq!(
        okta.remove_from_group("00gq", "00u2", &ctx()).await,
        Ok(Membership::NotFound {
            okta: "Okta answered 404 E0000007: Not found: Resource not found: 00u2 (User)".into()
        })
    );
    // A group id that cannot be one path segment never reaches Okta.
    assert!(matches!(
        okta.get_group("00g/../users", &ctx()).await,
        Err(CallError::Refused { .. })
    ));
}

#[tokio::test]
async fn a_users_groups_are_read_to_the_last_page_and_only_within_the_org() {
    let server = MockServer::start().await;
    let page = |ids: &[&str]| {
        json!(
            ids.iter()
                .map(|id| json!({"id": id, "type": "OKTA_GROUP", "profile": {"name": id}}))
                .collect::<Vec<_>>()
        )
    };
    let next = format!(
        "<{}/api/v1/users/00u1/groups?after=00g2&limit=2>; rel=\"next\"",
        server.uri()
    );
    let this = format!(
        "<{}/api/v1/users/00u1/groups?limit=2>; rel=\"self\"",
        server.uri()
    );
    Mock::given(method("GET"))
        .and(path("/api/v1/users/00u1/groups"))
        .and(query_param_is_missing("after"))
        .respond_with(
            ResponseTemplate::new(200)
                .append_header("link", this.as_str())
                .append_header("link", next.as_str())
                .set_body_json(page(&["00g1", "00g2"])),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/users/00u1/groups"))
        .and(query_param("after", "00g2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&["00gq"])))
        .mount(&server)
        .await;
    // A next page somewhere else is never followed.
    Mock::given(method("GET"))
        .and(path("/api/v1/users/00u9/groups"))
        .respond_with(
            ResponseTemplate::new(200)
                .append_header(
                    "link",
                    "<https://elsewhere.example.com/api/v1/users/00u9/groups?after=x>; rel=\"next\"",
                )
                .set_body_json(page(&["00g1"])),
        )
        .mount(&server)
        .await;
    let okta = client(&server, json!({"apiToken": "t0k"}));

    assert_eq!(
        okta.user_groups("00u1", &ctx()).await.unwrap(),
        ["00g1", "00g2", "00gq"],
        "the quarantine group on the second page is found"
    );
    assert!(matches!(
        okta.user_groups("00u9", &ctx()).await,
        Err(CallError::Transient(reason)) if reason.contains("not in the org")
    ));
}
