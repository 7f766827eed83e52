//! `POST /oauth2/v1/token`: client assertions, DPoP at the token endpoint,
//! scopes, apps without DPoP, and the endpoint's own faults and bucket.

use local_pipeline::fake_okta::{DISPATCHER_SCOPES, DpopPolicy, Fault, Operation, TokenType};
use local_pipeline::okta_keys;
use serde_json::json;

use crate::oauth_support::*;
use crate::support::*;

#[tokio::test]
async fn okta_oauth_dpop_required_happy_path() {
    let o = Okta::start().await;
    let app = Client::register(
        &o,
        TestKey::from_pem(&fixture_key("ec-p256.pem"), Some("k1")),
        &["okta.users.read", "okta.users.manage", "okta.roles.read"],
        DpopPolicy::Required,
    );

    // No proof at all.
    let r = app.request_token(&app.assertion(), READ_MANAGE, None).await;
    let d = assert_oauth_error(&r, 400, "invalid_dpop_proof");
    assert_eq!(d, "The DPoP proof JWT header is missing.");

    // A proof without the nonce: the handshake.
    let r = app
        .request_token(&app.assertion(), READ_MANAGE, Some(&app.token_proof(None)))
        .await;
    let d = assert_oauth_error(&r, 400, "use_dpop_nonce");
    assert_eq!(d, "Authorization server requires nonce in DPoP proof.");
    let nonce = r.h("dpop-nonce").expect("DPoP-Nonce").to_string();
    assert_eq!(nonce, o.fake.dpop_nonce());

    // With it: a DPoP token.
    let r = app
        .request_token(
            &app.assertion(),
            READ_MANAGE,
            Some(&app.token_proof(Some(&nonce))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.h("cache-control"), Some("no-cache, no-store"));
    assert!(r.h("x-okta-request-id").is_some());
    assert!(r.h("x-rate-limit-limit").is_some());
    let b = r.json();
    assert_eq!(b["token_type"], "DPoP");
    assert_eq!(b["expires_in"], 3600);
    assert_eq!(b["scope"], READ_MANAGE);
    let token = b["access_token"].as_str().unwrap().to_string();
    assert!(token.len() >= 32);

    let issued = o.fake.tokens_issued();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].client_id, app.client_id);
    assert_eq!(issued[0].token_type, TokenType::DPoP);
    assert_eq!(issued[0].scopes, ["okta.users.read", "okta.users.manage"]);
    assert_eq!(
        issued[0].jkt.as_deref(),
        Some(okta_keys::jwk_thumbprint(&app.dpop.jwk).unwrap().as_str())
    );

    // API calls with the token and a proof each.
    let id = o.id("ana.lima@example.com");
    let r = app
        .call(reqwest::Method::GET, &format!("/api/v1/users/{id}"), &token)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["profile"]["login"], "ana.lima@example.com");
    let r = app
        .call(
            reqwest::Method::GET,
            &format!(
                "/api/v1/users?{}",
                query("search", r#"profile.email eq "li.wei@example.com""#)
            ),
            &token,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(logins(&r.json()), ["li.wei@example.com"]);
    let r = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/users/{id}/lifecycle/suspend"),
            &token,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/users/{id}/sessions?oauthTokens=true"),
            &token,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let ana = o.fake.user(&id).unwrap();
    assert_eq!(ana.status, "SUSPENDED");
    assert_eq!(ana.sessions_cleared, 1);

    // What the fake recorded.
    let trs = o.fake.token_requests();
    assert_eq!(trs.len(), 3);
    assert_eq!(
        trs.iter().map(|t| t.error.as_deref()).collect::<Vec<_>>(),
        [Some("invalid_dpop_proof"), Some("use_dpop_nonce"), None]
    );
    assert_eq!(
        trs.iter()
            .map(|t| (t.dpop_proof, t.dpop_nonce))
            .collect::<Vec<_>>(),
        [(false, false), (true, false), (true, true)]
    );
    assert!(
        trs.iter()
            .all(|t| t.client_id.as_deref() == Some(app.client_id.as_str()))
    );
    assert_eq!(trs[2].token_type, Some(TokenType::DPoP));
    assert_eq!(trs[2].scopes, ["okta.users.read", "okta.users.manage"]);
    assert_eq!(trs[2].assertion_alg.as_deref(), Some("ES256"));
    assert_eq!(o.fake.used_assertion_jtis().len(), 3);
    let reqs = o.fake.requests();
    assert_eq!(reqs[trs[2].seq as usize].operation, Some(Operation::Token));
    let call = reqs
        .iter()
        .find(|r| r.operation == Some(Operation::Suspend))
        .unwrap();
    assert_eq!(call.header("authorization"), Some("DPoP [redacted]"));
    assert_eq!(call.header("dpop"), Some("[redacted]"));
    // Token requests are not writes to the org.
    assert_eq!(
        o.fake
            .writes()
            .iter()
            .map(|w| w.operation)
            .collect::<Vec<_>>(),
        [Some(Operation::Suspend), Some(Operation::ClearSessions)]
    );
}

#[tokio::test]
async fn okta_oauth_assertion_jti_is_consumed_on_every_request() {
    let o = Okta::start().await;
    let app = Client::register(
        &o,
        TestKey::from_pem(&fixture_key("rsa-2048.pem"), Some("rsa1")),
        DISPATCHER_SCOPES,
        DpopPolicy::Required,
    );
    let already = "The client_assertion token has already been used.";

    // Used by a request answered use_dpop_nonce: gone.
    let assertion = app.assertion();
    let r = app
        .request_token(&assertion, READ_MANAGE, Some(&app.token_proof(None)))
        .await;
    assert_oauth_error(&r, 400, "use_dpop_nonce");
    let nonce = r.h("dpop-nonce").unwrap().to_string();
    let r = app
        .request_token(
            &assertion,
            READ_MANAGE,
            Some(&app.token_proof(Some(&nonce))),
        )
        .await;
    assert_eq!(assert_oauth_error(&r, 401, "invalid_client"), already);

    // Used by a request refused for its scope, or for a missing proof: gone too.
    let assertion = app.assertion();
    let r = app
        .request_token(
            &assertion,
            "okta.apps.manage",
            Some(&app.token_proof(Some(&nonce))),
        )
        .await;
    assert_oauth_error(&r, 400, "invalid_scope");
    let r = app
        .request_token(
            &assertion,
            READ_MANAGE,
            Some(&app.token_proof(Some(&nonce))),
        )
        .await;
    assert_eq!(assert_oauth_error(&r, 401, "invalid_client"), already);

    // Used by a successful request: gone.
    let assertion = app.assertion();
    let r = app
        .request_token(
            &assertion,
            READ_MANAGE,
            Some(&app.token_proof(Some(&nonce))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .request_token(
            &assertion,
            READ_MANAGE,
            Some(&app.token_proof(Some(&nonce))),
        )
        .await;
    assert_eq!(assert_oauth_error(&r, 401, "invalid_client"), already);

    // A reused proof is refused as well.
    let proof = app.token_proof(Some(&nonce));
    let r = app
        .request_token(&app.assertion(), READ_MANAGE, Some(&proof))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .request_token(&app.assertion(), READ_MANAGE, Some(&proof))
        .await;
    let d = assert_oauth_error(&r, 400, "invalid_dpop_proof");
    assert!(d.contains("'jti' has already been used"), "{d}");
    assert_eq!(o.fake.used_assertion_jtis().len(), 5);
}

#[tokio::test]
async fn okta_oauth_bad_assertions_are_invalid_client() {
    let o = Okta::start().await;
    let app = Client::register(
        &o,
        TestKey::from_pem(&fixture_key("ec-p256.pem"), Some("k1")),
        DISPATCHER_SCOPES,
        DpopPolicy::NotUsedIgnoresProof,
    );
    let other_key = TestKey::ec();
    let token_url = o.fake.token_url();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong aud",
            app.assertion_with(|_, c| {
                c["aud"] = json!(format!("{}/oauth2/default/v1/token", o.fake.base_url()))
            }),
            "The audience claim for client_assertion must be the endpoint invoked for the request.",
        ),
        (
            "aud with a trailing slash",
            app.assertion_with(|_, c| c["aud"] = json!(format!("{token_url}/"))),
            "The audience claim for client_assertion must be the endpoint invoked for the request.",
        ),
        (
            "expired",
            app.assertion_with(|_, c| c["exp"] = json!(now_secs() - 10)),
            "The client_assertion token is expired.",
        ),
        (
            "exp too far ahead",
            app.assertion_with(|_, c| c["exp"] = json!(now_secs() + 3700)),
            "The client_assertion token has an expiration too far in the future.",
        ),
        (
            "no exp",
            app.assertion_with(|_, c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            "The client_assertion token is missing the 'exp' claim.",
        ),
        (
            "no iat",
            app.assertion_with(|_, c| {
                c.as_object_mut().unwrap().remove("iat");
            }),
            "The client_assertion token is missing the 'iat' claim.",
        ),
        (
            "no jti",
            app.assertion_with(|_, c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            "The client_assertion token is missing the 'jti' claim.",
        ),
        (
            "signed by another key",
            other_key.sign(
                &json!({ "alg": "ES256", "kid": "k1" }),
                &json!({ "iss": app.client_id, "sub": app.client_id, "aud": token_url,
                         "iat": now_secs(), "exp": now_secs() + 60, "jti": new_jti() }),
            ),
            "The client_assertion token signature is invalid.",
        ),
        (
            "alg RS256 for an EC key",
            app.assertion_with(|h, _| h["alg"] = json!("RS256")),
            "The client_assertion token signature is invalid.",
        ),
        (
            "alg ES384",
            app.assertion_with(|h, _| h["alg"] = json!("ES384")),
            "The client_assertion token has an unsupported signature algorithm: use RS256 or ES256.",
        ),
        (
            "alg HS256",
            app.assertion_with(|h, _| h["alg"] = json!("HS256")),
            "The client_assertion token has an unsupported signature algorithm: use RS256 or ES256.",
        ),
        (
            "another kid",
            app.assertion_with(|h, _| h["kid"] = json!("k2")),
            "The client_assertion token's 'kid' is not a key of this client.",
        ),
        (
            "iss is not the client",
            app.assertion_with(|_, c| c["iss"] = json!("someone-else")),
            "The 'iss' and 'sub' claims of the client_assertion token must both be the client id.",
        ),
        (
            "unknown client",
            app.assertion_with(|_, c| {
                c["iss"] = json!("0oaunknown");
                c["sub"] = json!("0oaunknown");
            }),
            "Invalid value for 'client_id' parameter.",
        ),
        (
            "not a JWT",
            "not.a.jwt".to_string(),
            "The client_assertion token is malformed.",
        ),
    ];
    for (what, assertion, want) in &cases {
        let r = app.request_token(assertion, READ_MANAGE, None).await;
        let d = assert_oauth_error(&r, 401, "invalid_client");
        assert_eq!(d, *want, "{what}");
    }
    // Without a kid in the header, the single key is used.
    let r = app
        .request_token(
            &app.assertion_with(|h, _| {
                h.as_object_mut().unwrap().remove("kid");
            }),
            READ_MANAGE,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(o.fake.tokens_issued().len() == 1);
}

#[tokio::test]
async fn okta_oauth_token_request_form_errors() {
    let o = Okta::start().await;
    let app = Client::register(
        &o,
        TestKey::ec(),
        DISPATCHER_SCOPES,
        DpopPolicy::NotUsedIgnoresProof,
    );
    let a = app.assertion();
    let r = app
        .post_form(
            &[
                ("scope", READ_MANAGE),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &a),
            ],
            None,
        )
        .await;
    assert_eq!(
        assert_oauth_error(&r, 400, "invalid_request"),
        "The 'grant_type' parameter is missing."
    );
    let r = app
        .post_form(
            &[
                ("grant_type", "password"),
                ("scope", READ_MANAGE),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &a),
            ],
            None,
        )
        .await;
    assert_oauth_error(&r, 400, "unsupported_grant_type");
    let r = app
        .post_form(
            &[("grant_type", "client_credentials"), ("scope", READ_MANAGE)],
            None,
        )
        .await;
    assert_eq!(
        assert_oauth_error(&r, 401, "invalid_client"),
        "Client authentication failed. Either the client or the client credentials are invalid."
    );
    let r = app
        .post_form(
            &[
                ("grant_type", "client_credentials"),
                ("scope", READ_MANAGE),
                ("client_assertion_type", "jwt"),
                ("client_assertion", &a),
            ],
            None,
        )
        .await;
    assert_oauth_error(&r, 400, "invalid_request");
    let r = app
        .post_form(
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
            None,
        )
        .await;
    assert_eq!(
        assert_oauth_error(&r, 400, "invalid_request"),
        "The 'grant_type' parameter is repeated."
    );
    // JSON is not accepted; nor is GET.
    let r = send(
        o.http
            .post(o.fake.token_url())
            .header("Content-Type", "application/json")
            .body(json!({ "grant_type": "client_credentials" }).to_string()),
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_request");
    let r = send(o.http.get(o.fake.token_url())).await;
    assert_oauth_error(&r, 405, "invalid_request");
    assert_eq!(r.h("allow"), Some("POST"));
    // None of these issued anything, and the assertion was never parsed.
    assert!(o.fake.tokens_issued().is_empty());
    assert!(o.fake.used_assertion_jtis().is_empty());
    assert_eq!(o.fake.token_requests().len(), 7);
    assert!(o.fake.writes().is_empty());
}

#[tokio::test]
async fn okta_oauth_invalid_scope() {
    let o = Okta::start().await;
    let app = Client::register(
        &o,
        TestKey::ec(),
        &["okta.users.read"],
        DpopPolicy::NotUsedIgnoresProof,
    );
    let r = app
        .request_token(
            &app.assertion(),
            "okta.users.read okta.users.manage okta.groups.manage",
            None,
        )
        .await;
    assert_eq!(
        assert_oauth_error(&r, 400, "invalid_scope"),
        "The following scopes are not allowed: okta.users.manage okta.groups.manage"
    );
    let r = app.request_token(&app.assertion(), "", None).await;
    assert_oauth_error(&r, 400, "invalid_scope");
    // Exactly the granted ones: fine (and repeated scopes count once).
    let r = app
        .request_token(&app.assertion(), "okta.users.read okta.users.read", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["scope"], "okta.users.read");
}

#[tokio::test]
async fn okta_oauth_apps_without_dpop_get_bearer_tokens() {
    let o = Okta::start().await;
    let id = o.id("ana.lima@example.com");
    let path = format!("/api/v1/users/{id}");

    // Ignores a proof (RSA client key).
    let ignores = Client::register(
        &o,
        TestKey::from_pem(&fixture_key("rsa-2048.pem"), None),
        DISPATCHER_SCOPES,
        DpopPolicy::NotUsedIgnoresProof,
    );
    let r = ignores
        .request_token(
            &ignores.assertion(),
            READ_MANAGE,
            Some(&ignores.token_proof(None)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["token_type"], "Bearer");
    let token = ignores.bearer_token(READ_MANAGE).await;
    let r = ignores
        .call_with(
            reqwest::Method::GET,
            &path,
            &format!("Bearer {token}"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A Bearer token is not a DPoP token.
    let proof = ignores.dpop.proof("GET", &o.url(&path), None, Some(&token));
    let r = ignores
        .call_with(
            reqwest::Method::GET,
            &path,
            &format!("DPoP {token}"),
            Some(&proof),
        )
        .await;
    assert_okta_error(&r, 401, "E0000011");
    assert!(
        o.fake
            .tokens_issued()
            .iter()
            .all(|t| t.token_type == TokenType::Bearer && t.jkt.is_none())
    );

    // Refuses a proof (EC client key).
    let refuses = Client::register(
        &o,
        TestKey::ec(),
        DISPATCHER_SCOPES,
        DpopPolicy::NotUsedRefusesProof,
    );
    let r = refuses
        .request_token(
            &refuses.assertion(),
            READ_MANAGE,
            Some(&refuses.token_proof(None)),
        )
        .await;
    assert_eq!(
        assert_oauth_error(&r, 400, "invalid_dpop_proof"),
        "DPoP proof not expected for this client"
    );
    let token = refuses.bearer_token(READ_MANAGE).await;
    let r = refuses
        .call_with(
            reqwest::Method::GET,
            &path,
            &format!("Bearer {token}"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // SSWS still works next to them.
    assert_eq!(o.get(&path).await.status, 200);
    assert_eq!(o.fake.apps().len(), 2);
}

#[tokio::test]
async fn okta_token_endpoint_faults_and_its_own_bucket() {
    let o = Okta::start().await;
    let app = Client::register(
        &o,
        TestKey::ec(),
        DISPATCHER_SCOPES,
        DpopPolicy::NotUsedIgnoresProof,
    );
    o.fake.inject(Fault::server_error(503).on(Operation::Token));
    let r = app.request_token(&app.assertion(), READ_MANAGE, None).await;
    assert_okta_error(&r, 503, "E0000009");
    assert!(r.h("x-rate-limit-limit").is_some());
    let trs = o.fake.token_requests();
    assert_eq!(trs.len(), 1);
    assert!(trs[0].injected);
    assert_eq!(trs[0].status, 503);
    // A faulted request was not processed: its jti is still unused.
    assert!(o.fake.used_assertion_jtis().is_empty());

    // The shared bucket does not cover the token endpoint ...
    o.fake.set_rate_limit(1);
    app.bearer_token(READ_MANAGE).await;
    app.bearer_token(READ_MANAGE).await;
    // ... its own does.
    o.fake.set_rate_limit_for(Operation::Token, 3);
    let r = app.request_token(&app.assertion(), READ_MANAGE, None).await;
    assert_okta_error(&r, 429, "E0000047");
    assert_eq!(r.num("x-rate-limit-remaining"), 0);
    let last = o.fake.token_requests().pop().unwrap();
    assert!(last.rate_limited);
    o.fake.clear_requests();
    assert!(o.fake.token_requests().is_empty());
}
