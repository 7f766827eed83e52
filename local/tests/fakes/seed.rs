//! The demo org and the demo OAuth app that `make local` starts with, and the
//! keys and JWKs they are made of.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use local_pipeline::fake_okta::{DpopPolicy, FakeOkta, OAuthApp};
use local_pipeline::okta_keys;
use local_pipeline::seed::{DEMO_OAUTH_KEY_ID, DEMO_OKTA_TOKEN, register_demo_app, seed_demo_org};
use serde_json::Value;

use crate::oauth_support::*;
use crate::support::*;

#[tokio::test]
async fn seed_matches_the_demo_org() {
    let okta = FakeOkta::start(DEMO_OKTA_TOKEN).await;
    seed_demo_org(&okta);
    let users = okta.users();
    let got: Vec<(&str, &str, &str)> = users
        .iter()
        .map(|u| (u.login.as_str(), u.email.as_str(), u.status.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("ana.lima@example.com", "ana.lima@example.com", "ACTIVE"),
            ("li.wei@example.com", "li.wei@example.com", "ACTIVE"),
            (
                "omar.haddad@example.com",
                "omar.haddad@example.com",
                "SUSPENDED"
            ),
            ("root.admin@example.com", "root.admin@example.com", "ACTIVE"),
            (
                "jsmith@corp.example.com",
                "john.smith@example.com",
                "ACTIVE"
            ),
            ("ops1@example.com", "shared-ops@example.com", "ACTIVE"),
            ("ops2@example.com", "shared-ops@example.com", "ACTIVE"),
            (
                "former.employee@example.com",
                "former.employee@example.com",
                "DEPROVISIONED"
            ),
            ("svc.backup", "svc.backup@example.com", "ACTIVE"),
        ]
    );
    assert_eq!(
        okta.user("root.admin@example.com").unwrap().admin_roles,
        ["SUPER_ADMIN"]
    );
    assert!(
        users
            .iter()
            .filter(|u| u.login != "root.admin@example.com")
            .all(|u| u.admin_roles.is_empty())
    );
    assert!(okta.user("ghost@example.com").is_none());
    let http = client();
    let r = send(
        http.get(format!(
            "{}/api/v1/users/ghost@example.com",
            okta.base_url()
        ))
        .header("Authorization", format!("SSWS {DEMO_OKTA_TOKEN}")),
    )
    .await;
    assert_eq!(r.status, 404);
}

#[test]
fn okta_keys_make_jwks_from_the_fixture_keys() {
    let rsa =
        okta_keys::public_jwk_from_pkcs8_pem(&fixture_key("rsa-2048.pem"), Some("r1")).unwrap();
    assert_eq!(rsa["kty"], "RSA");
    assert_eq!(rsa["e"], "AQAB");
    assert_eq!(rsa["kid"], "r1");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(rsa["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );
    assert_eq!(rsa.as_object().unwrap().len(), 4);
    let ec = okta_keys::public_jwk_from_pkcs8_pem(&fixture_key("ec-p256.pem"), None).unwrap();
    assert_eq!(ec["kty"], "EC");
    assert_eq!(ec["crv"], "P-256");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(ec["x"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(ec["y"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert_eq!(ec.as_object().unwrap().len(), 4);
    assert_eq!(okta_keys::jwk_thumbprint(&ec).unwrap().len(), 43);

    for (file, want) in [
        ("rsa-2048-pkcs1.pem", "not a PKCS#8 private key"),
        ("rsa-1024.pem", "RSA shorter than 2048 bits"),
        ("ec-p384.pem", "EC P-384"),
        ("ed25519.pem", "Ed25519"),
    ] {
        let pem = fixture_key(file);
        let err = format!(
            "{:#}",
            okta_keys::public_jwk_from_pkcs8_pem(&pem, None).unwrap_err()
        );
        assert!(err.contains(want), "{file}: {err}");
        // Errors carry no key material.
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!err.contains(line), "{file}: {err}");
        }
    }
}

#[tokio::test]
async fn demo_oauth_app_secret_gets_a_token_from_the_fake() {
    let okta = FakeOkta::start(DEMO_OKTA_TOKEN).await;
    seed_demo_org(&okta);
    let app = register_demo_app(&okta).unwrap();
    assert!(!format!("{app:?}").contains("PRIVATE KEY"));

    // The secret the dispatcher reads.
    let secret: Value = serde_json::from_str(&app.secret_json()).unwrap();
    let mut keys: Vec<&str> = secret
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["clientId", "keyId", "privateKey"]);
    assert_eq!(secret["keyId"], DEMO_OAUTH_KEY_ID);
    assert_eq!(secret["keyId"], "local-demo");
    let client_id = secret["clientId"].as_str().unwrap();
    assert!(
        client_id.starts_with("0oa") && client_id.len() == 20,
        "{client_id}"
    );
    let pem = secret["privateKey"].as_str().unwrap();
    assert!(
        pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "PKCS#8 PEM"
    );
    assert_eq!(
        okta.apps(),
        [OAuthApp::new(
            client_id,
            okta_keys::public_jwk_from_pkcs8_pem(pem, Some("local-demo")).unwrap()
        )
        .with_scopes([
            "okta.users.read",
            "okta.users.manage",
            "okta.roles.read",
            "okta.universalLogout.manage",
            "okta.groups.manage"
        ])
        .with_dpop(DpopPolicy::Required)]
    );

    // Signing with the key from the secret gets a DPoP token the API takes.
    let o = Okta {
        fake: okta.clone(),
        http: client(),
    };
    let c = Client {
        o: &o,
        client_id: client_id.to_string(),
        key: TestKey::from_pem(pem, Some("local-demo")),
        dpop: TestKey::ec(),
    };
    let token = c
        .dpop_token("okta.users.read okta.users.manage okta.roles.read okta.universalLogout.manage")
        .await;
    let root = o.id("root.admin@example.com");
    let r = c
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/users/{root}/roles"),
            &token,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()[0]["type"], "SUPER_ADMIN");
}
