//! API calls with OAuth tokens: scopes per call, DPoP proofs on resource
//! requests, expired and unknown tokens, nonces, and Universal Logout.

use std::time::{Duration, Instant};

use local_pipeline::fake_okta::{DISPATCHER_SCOPES, DpopPolicy, Fault, Operation};
use serde_json::{Value, json};

use crate::oauth_support::*;
use crate::support::*;

#[tokio::test]
async fn okta_oauth_scopes_per_call() {
    let o = Okta::start().await;
    let id = o.id("ana.lima@example.com");
    let app = Client::register(&o, TestKey::ec(), DISPATCHER_SCOPES, DpopPolicy::Required);
    let read_only = app.dpop_token("okta.users.read").await;
    use reqwest::Method as M;

    let r = app
        .call(M::GET, &format!("/api/v1/users/{id}"), &read_only)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let denied = [
        (M::GET, format!("/api/v1/users/{id}/roles")),
        (M::POST, format!("/api/v1/users/{id}/lifecycle/suspend")),
        (M::POST, format!("/api/v1/users/{id}/lifecycle/unsuspend")),
        (M::DELETE, format!("/api/v1/users/{id}/sessions")),
    ];
    for (m, path) in &denied {
        let r = app.call(m.clone(), path, &read_only).await;
        let b = assert_okta_error(&r, 403, "E0000006");
        assert_eq!(
            b["errorSummary"],
            "You do not have permission to perform the requested action"
        );
        let www = r.h("www-authenticate").expect("WWW-Authenticate");
        assert!(www.starts_with("Bearer "), "{www}");
        assert!(www.contains(r#"error="insufficient_scope""#), "{www}");
        assert!(
            www.contains(r#"error_description="The access token provided does not contain the required scopes.""#),
            "{www}"
        );
    }
    let r = send(
        o.http
            .post(o.url("/oauth2/v1/global-token-revocation"))
            .header("Authorization", format!("DPoP {read_only}"))
            .header(
                "DPoP",
                app.dpop.proof(
                    "POST",
                    &o.url("/oauth2/v1/global-token-revocation"),
                    None,
                    Some(&read_only),
                ),
            )
            .json(&json!({ "sub_id": { "format": "opaque", "id": id } })),
    )
    .await;
    assert_okta_error(&r, 403, "E0000006");
    assert_eq!(o.fake.user(&id).unwrap().status, "ACTIVE");
    assert_eq!(o.fake.user(&id).unwrap().universal_logouts, 0);

    // manage includes read; roles.read lists roles.
    let manage = app.dpop_token("okta.users.manage okta.roles.read").await;
    let r = app
        .call(M::GET, &format!("/api/v1/users/{id}"), &manage)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .call(M::GET, &format!("/api/v1/users/{id}/roles"), &manage)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .call(
            M::POST,
            &format!("/api/v1/users/{id}/lifecycle/suspend"),
            &manage,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // SSWS is not limited by scopes.
    assert_eq!(
        o.post(&format!("/api/v1/users/{id}/lifecycle/unsuspend"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn okta_oauth_resource_proof_checks() {
    let o = Okta::start().await;
    let id = o.id("ana.lima@example.com");
    let app = Client::register(&o, TestKey::ec(), DISPATCHER_SCOPES, DpopPolicy::Required);
    let token = app.dpop_token(READ_MANAGE).await;
    let path = format!("/api/v1/users/{id}");
    let url = o.url(&path);
    let auth = format!("DPoP {token}");
    let stranger = TestKey::ec();
    let port = o.fake.addr().port();
    use reqwest::Method as M;

    let cases: Vec<(&str, M, Option<String>, &str)> = vec![
        (
            "no proof",
            M::GET,
            None,
            "The DPoP proof JWT header is missing.",
        ),
        (
            "htu with the query",
            M::GET,
            Some(
                app.dpop
                    .proof("GET", &format!("{url}?x=1"), None, Some(&token)),
            ),
            "'htu' claim does not match",
        ),
        (
            "htu with another host name",
            M::GET,
            Some(app.dpop.proof(
                "GET",
                &format!("http://localhost:{port}{path}"),
                None,
                Some(&token),
            )),
            "'htu' claim does not match",
        ),
        (
            "htu of another path",
            M::GET,
            Some(
                app.dpop
                    .proof("GET", &o.url("/api/v1/users"), None, Some(&token)),
            ),
            "'htu' claim does not match",
        ),
        (
            "htm of another method",
            M::GET,
            Some(app.dpop.proof("POST", &url, None, Some(&token))),
            "'htm' claim does not match",
        ),
        (
            "no ath",
            M::GET,
            Some(app.dpop.proof("GET", &url, None, None)),
            "'ath' claim does not match",
        ),
        (
            "ath of another token",
            M::GET,
            Some(app.dpop.proof("GET", &url, None, Some("another-token"))),
            "'ath' claim does not match",
        ),
        (
            "another key than the token's",
            M::GET,
            Some(stranger.proof("GET", &url, None, Some(&token))),
            "not the key the access token is bound to",
        ),
        (
            "stale iat",
            M::GET,
            Some(
                app.dpop
                    .proof_with("GET", &url, None, Some(&token), |_, c| {
                        c["iat"] = json!(now_secs() - 3600)
                    }),
            ),
            "'iat' claim is too far",
        ),
        (
            "typ jwt",
            M::GET,
            Some(
                app.dpop
                    .proof_with("GET", &url, None, Some(&token), |h, _| {
                        h["typ"] = json!("JWT")
                    }),
            ),
            "'typ' header must be 'dpop+jwt'",
        ),
        (
            "a private key in the jwk",
            M::GET,
            Some(
                app.dpop
                    .proof_with("GET", &url, None, Some(&token), |h, _| {
                        h["jwk"]["d"] = json!("AAAA")
                    }),
            ),
            "'jwk' header is not a public",
        ),
        (
            "tampered signature",
            M::GET,
            Some({
                let p = app.dpop.proof("GET", &url, None, Some(&token));
                let (rest, _) = p.rsplit_once('.').unwrap();
                format!("{rest}.{}", b64([7u8; 64]))
            }),
            "signature is invalid",
        ),
    ];
    for (what, m, proof, want) in &cases {
        let r = app
            .call_with(m.clone(), &path, &auth, proof.as_deref())
            .await;
        let www = assert_dpop_challenge(&r, "invalid_dpop_proof");
        assert!(www.contains(want), "{what}: {www}");
    }

    // A proof is good once.
    let proof = app.dpop.proof("GET", &url, None, Some(&token));
    let r = app.call_with(M::GET, &path, &auth, Some(&proof)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.call_with(M::GET, &path, &auth, Some(&proof)).await;
    let www = assert_dpop_challenge(&r, "invalid_dpop_proof");
    assert!(www.contains("'jti' has already been used"), "{www}");

    // The DPoP token as a Bearer token.
    let r = app
        .call_with(M::GET, &path, &format!("Bearer {token}"), None)
        .await;
    assert_dpop_challenge(&r, "invalid_token");

    // The query is not part of htu, and the encoded path is compared as sent.
    let search = format!(
        "/api/v1/users?{}",
        query("search", r#"profile.login eq "ana.lima@example.com""#)
    );
    let r = app.call(M::GET, &search, &token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .call(M::GET, "/api/v1/users/ana.lima%40example.com", &token)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // No state changed by the refused calls, nor counted in the bucket.
    assert!(o.fake.writes().is_empty());
}

#[tokio::test]
async fn okta_oauth_expired_and_unknown_tokens() {
    let o = Okta::start().await;
    let id = o.id("ana.lima@example.com");
    let path = format!("/api/v1/users/{id}");
    let app = Client::register(&o, TestKey::ec(), DISPATCHER_SCOPES, DpopPolicy::Required);
    let bearer_app = Client::register(
        &o,
        TestKey::ec(),
        DISPATCHER_SCOPES,
        DpopPolicy::NotUsedIgnoresProof,
    );
    let token = app.dpop_token(READ_MANAGE).await;
    let bearer = bearer_app.bearer_token(READ_MANAGE).await;
    assert_eq!(
        app.call(reqwest::Method::GET, &path, &token).await.status,
        200
    );

    o.fake.expire_all_tokens();
    let r = app.call(reqwest::Method::GET, &path, &token).await;
    assert_dpop_challenge(&r, "invalid_token");
    let r = bearer_app
        .call_with(
            reqwest::Method::GET,
            &path,
            &format!("Bearer {bearer}"),
            None,
        )
        .await;
    let b = assert_okta_error(&r, 401, "E0000011");
    assert_eq!(b["errorSummary"], "Invalid token provided");
    assert!(
        r.h("www-authenticate")
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    let r = bearer_app
        .call_with(reqwest::Method::GET, &path, "Bearer not-a-token", None)
        .await;
    assert_okta_error(&r, 401, "E0000011");

    // A new token works; a short lifetime shows in expires_in and runs out.
    o.fake.set_token_lifetime(Duration::from_secs(2));
    let issued = Instant::now();
    let r = bearer_app
        .request_token(&bearer_app.assertion(), READ_MANAGE, None)
        .await;
    assert_eq!(r.json()["expires_in"], 2);
    let short = r.json()["access_token"].as_str().unwrap().to_string();
    let auth = format!("Bearer {short}");
    assert_eq!(
        bearer_app
            .call_with(reqwest::Method::GET, &path, &auth, None)
            .await
            .status,
        200
    );
    tokio::time::sleep_until((issued + Duration::from_millis(2100)).into()).await;
    let r = bearer_app
        .call_with(reqwest::Method::GET, &path, &auth, None)
        .await;
    assert_okta_error(&r, 401, "E0000011");
}

#[tokio::test]
async fn okta_oauth_nonce_rotation_and_resource_nonce() {
    let o = Okta::start().await;
    let id = o.id("ana.lima@example.com");
    let path = format!("/api/v1/users/{id}");
    let app = Client::register(&o, TestKey::ec(), DISPATCHER_SCOPES, DpopPolicy::Required);
    let first = o.fake.dpop_nonce();
    let second = o.fake.rotate_dpop_nonce();
    assert_ne!(first, second);
    assert_eq!(o.fake.dpop_nonce(), second);
    // The previous nonce is still good ...
    let r = app
        .request_token(
            &app.assertion(),
            READ_MANAGE,
            Some(&app.token_proof(Some(&first))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // ... the one before it no longer: a new nonce is announced.
    let third = o.fake.rotate_dpop_nonce();
    let r = app
        .request_token(
            &app.assertion(),
            READ_MANAGE,
            Some(&app.token_proof(Some(&first))),
        )
        .await;
    assert_oauth_error(&r, 400, "use_dpop_nonce");
    assert_eq!(r.h("dpop-nonce"), Some(third.as_str()));
    let r = app
        .request_token(
            &app.assertion(),
            READ_MANAGE,
            Some(&app.token_proof(Some("made-up"))),
        )
        .await;
    assert_oauth_error(&r, 400, "use_dpop_nonce");

    // Resource requests need no nonce, unless asked for.
    let token = app.dpop_token(READ_MANAGE).await;
    assert_eq!(
        app.call(reqwest::Method::GET, &path, &token).await.status,
        200
    );
    o.fake.require_resource_nonce(true);
    let r = app.call(reqwest::Method::GET, &path, &token).await;
    let www = assert_dpop_challenge(&r, "use_dpop_nonce");
    assert!(
        www.contains("Resource server requires nonce in DPoP proof."),
        "{www}"
    );
    let nonce = r.h("dpop-nonce").expect("DPoP-Nonce").to_string();
    assert_eq!(nonce, third);
    let proof = app
        .dpop
        .proof("GET", &o.url(&path), Some(&nonce), Some(&token));
    let r = app
        .call_with(
            reqwest::Method::GET,
            &path,
            &format!("DPoP {token}"),
            Some(&proof),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn okta_global_token_revocation() {
    let o = Okta::start().await;
    let id = o.id("ana.lima@example.com");
    let url = o.url("/oauth2/v1/global-token-revocation");
    let body = json!({ "sub_id": { "format": "opaque", "id": id } });
    let revoke = |auth: String, body: Value| {
        send(o.http.post(&url).header("Authorization", auth).json(&body))
    };

    // SSWS works.
    let r = revoke(format!("SSWS {TOKEN}"), body.clone()).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    assert!(r.h("x-okta-request-id").is_some());
    assert!(r.h("x-rate-limit-remaining").is_some());
    assert_eq!(o.fake.user(&id).unwrap().universal_logouts, 1);

    // A Bearer token with okta.universalLogout.manage works.
    let app = Client::register(
        &o,
        TestKey::ec(),
        DISPATCHER_SCOPES,
        DpopPolicy::NotUsedIgnoresProof,
    );
    let token = app.bearer_token("okta.universalLogout.manage").await;
    let r = revoke(format!("Bearer {token}"), body.clone()).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(o.fake.user(&id).unwrap().universal_logouts, 2);

    // A DPoP token too.
    let dpop_app = Client::register(&o, TestKey::ec(), DISPATCHER_SCOPES, DpopPolicy::Required);
    let dpop_token = dpop_app.dpop_token("okta.universalLogout.manage").await;
    let proof = dpop_app.dpop.proof("POST", &url, None, Some(&dpop_token));
    let r = send(
        o.http
            .post(&url)
            .header("Authorization", format!("DPoP {dpop_token}"))
            .header("DPoP", proof)
            .json(&body),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(o.fake.user(&id).unwrap().universal_logouts, 3);

    // Malformed bodies, an unknown user.
    for bad in [
        json!({}),
        json!({ "sub_id": { "format": "email", "email": "ana.lima@example.com" } }),
        json!({ "sub_id": { "format": "opaque" } }),
        json!("nope"),
    ] {
        let r = revoke(format!("SSWS {TOKEN}"), bad.clone()).await;
        assert_okta_error(&r, 400, "E0000001");
    }
    let r = send(
        o.http
            .post(&url)
            .header("Authorization", format!("SSWS {TOKEN}"))
            .body("{not json"),
    )
    .await;
    assert_okta_error(&r, 400, "E0000001");
    let r = revoke(
        format!("SSWS {TOKEN}"),
        json!({ "sub_id": { "format": "opaque", "id": "00unobody" } }),
    )
    .await;
    assert_okta_error(&r, 404, "E0000007");
    let r = send(
        o.http
            .get(&url)
            .header("Authorization", format!("SSWS {TOKEN}")),
    )
    .await;
    assert_okta_error(&r, 405, "E0000022");
    let r = revoke("SSWS wrong".to_string(), body.clone()).await;
    assert_okta_error(&r, 401, "E0000011");

    // Faults apply to it like to any operation.
    o.fake
        .inject(Fault::server_error(503).on(Operation::GlobalTokenRevocation));
    let r = revoke(format!("SSWS {TOKEN}"), body.clone()).await;
    assert_okta_error(&r, 503, "E0000009");
    o.fake.inject(
        Fault::rate_limited(5)
            .on(Operation::GlobalTokenRevocation)
            .for_user(&id),
    );
    let r = revoke(format!("SSWS {TOKEN}"), body.clone()).await;
    assert_okta_error(&r, 429, "E0000047");

    // Not licensed: 403, nothing recorded on the user.
    o.fake.set_universal_logout_licensed(false);
    let r = revoke(format!("SSWS {TOKEN}"), body.clone()).await;
    let b = assert_okta_error(&r, 403, "E0000006");
    assert!(
        b["errorSummary"].as_str().unwrap().contains("not enabled"),
        "{b}"
    );
    assert_eq!(o.fake.user(&id).unwrap().universal_logouts, 3);

    // Revocations are writes; the journal names the user.
    let reqs = o.fake.requests();
    let revocations: Vec<_> = reqs
        .iter()
        .filter(|r| r.operation == Some(Operation::GlobalTokenRevocation))
        .collect();
    assert!(
        revocations
            .iter()
            .filter(|r| r.status == 204)
            .all(|r| r.user_id.as_deref() == Some(id.as_str()))
    );
    assert!(
        o.fake
            .writes()
            .iter()
            .any(|w| w.operation == Some(Operation::GlobalTokenRevocation))
    );
}
