//! The client side of Okta OAuth 2.0 for these tests: a tiny JWS signer on
//! ring directly (independent of the fake's verifier and of the dispatcher's
//! code), and a registered service app that gets tokens and calls the API.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use local_pipeline::fake_okta::{DpopPolicy, OAuthApp};
use local_pipeline::okta_keys;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use serde_json::{Value, json};

use crate::support::{Okta, Reply, assert_okta_error, send};

/// A tiny JWS signer for the tests, with ring directly (independent of the
/// fake's verifier and of the dispatcher's code).
pub(crate) enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

pub(crate) struct TestKey {
    pub(crate) signer: Signer,
    pub(crate) jwk: Value,
}

pub(crate) fn fixture_key(name: &str) -> String {
    let path = format!(
        "{}/../tests/fixtures/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub(crate) fn new_jti() -> String {
    format!("jti-{:032x}", rand::random::<u128>())
}

/// base64url(SHA-256(token)), computed with ring (the fake uses sha2).
pub(crate) fn ath(token: &str) -> String {
    b64(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

impl TestKey {
    pub(crate) fn from_pem(pem: &str, kid: Option<&str>) -> TestKey {
        let der = okta_keys::pkcs8_der_from_pem(pem).expect("PKCS#8 PEM");
        let rng = SystemRandom::new();
        let signer = match EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng) {
            Ok(k) => Signer::Ec(k),
            Err(_) => Signer::Rsa(RsaKeyPair::from_pkcs8(&der).expect("RSA PKCS#8")),
        };
        TestKey {
            signer,
            jwk: okta_keys::public_jwk_from_pkcs8_pem(pem, kid).expect("JWK"),
        }
    }

    pub(crate) fn ec() -> TestKey {
        Self::from_pem(&okta_keys::generate_ec_p256_pkcs8_pem(), None)
    }

    pub(crate) fn alg(&self) -> &'static str {
        match self.signer {
            Signer::Ec(_) => "ES256",
            Signer::Rsa(_) => "RS256",
        }
    }

    pub(crate) fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(serde_json::to_vec(header).unwrap()),
            b64(serde_json::to_vec(claims).unwrap())
        );
        let rng = SystemRandom::new();
        let sig = match &self.signer {
            Signer::Ec(k) => k.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
            Signer::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
        };
        format!("{input}.{}", b64(sig))
    }

    pub(crate) fn proof_header(&self) -> Value {
        json!({ "typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk })
    }

    /// A DPoP proof for `htm` `htu`, with a nonce and an `ath` when given.
    pub(crate) fn proof(
        &self,
        htm: &str,
        htu: &str,
        nonce: Option<&str>,
        token: Option<&str>,
    ) -> String {
        self.proof_with(htm, htu, nonce, token, |_, _| {})
    }

    pub(crate) fn proof_with(
        &self,
        htm: &str,
        htu: &str,
        nonce: Option<&str>,
        token: Option<&str>,
        edit: impl FnOnce(&mut Value, &mut Value),
    ) -> String {
        let mut header = self.proof_header();
        let mut claims = json!({ "htm": htm, "htu": htu, "iat": now_secs(), "jti": new_jti() });
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        if let Some(t) = token {
            claims["ath"] = json!(ath(t));
        }
        edit(&mut header, &mut claims);
        self.sign(&header, &claims)
    }
}

/// A registered service app and the test's side of it: the client key and a DPoP key.
pub(crate) struct Client<'a> {
    pub(crate) o: &'a Okta,
    pub(crate) client_id: String,
    pub(crate) key: TestKey,
    pub(crate) dpop: TestKey,
}

impl<'a> Client<'a> {
    pub(crate) fn register(
        o: &'a Okta,
        key: TestKey,
        scopes: &[&str],
        policy: DpopPolicy,
    ) -> Client<'a> {
        let client_id = OAuthApp::new_client_id();
        o.fake.register_app(
            OAuthApp::new(client_id.clone(), key.jwk.clone())
                .with_scopes(scopes.iter().copied())
                .with_dpop(policy),
        );
        Client {
            o,
            client_id,
            key,
            dpop: TestKey::ec(),
        }
    }

    pub(crate) fn assertion_with(&self, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
        let mut header = json!({ "alg": self.key.alg() });
        if let Some(kid) = self.key.jwk.get("kid") {
            header["kid"] = kid.clone();
        }
        let now = now_secs();
        let mut claims = json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.o.fake.token_url(),
            "iat": now,
            "exp": now + 300,
            "jti": new_jti(),
        });
        edit(&mut header, &mut claims);
        self.key.sign(&header, &claims)
    }

    pub(crate) fn assertion(&self) -> String {
        self.assertion_with(|_, _| {})
    }

    pub(crate) fn token_proof(&self, nonce: Option<&str>) -> String {
        self.dpop
            .proof("POST", &self.o.fake.token_url(), nonce, None)
    }

    pub(crate) async fn post_form(&self, fields: &[(&str, &str)], proof: Option<&str>) -> Reply {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            form.append_pair(k, v);
        }
        let mut rb = self
            .o
            .http
            .post(self.o.fake.token_url())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(form.finish());
        if let Some(p) = proof {
            rb = rb.header("DPoP", p);
        }
        send(rb).await
    }

    pub(crate) async fn request_token(
        &self,
        assertion: &str,
        scope: &str,
        proof: Option<&str>,
    ) -> Reply {
        self.post_form(
            &[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", assertion),
            ],
            proof,
        )
        .await
    }

    /// The whole DPoP dance: proof without nonce, `use_dpop_nonce`, retry with
    /// it (new assertion, new proof); the access token.
    pub(crate) async fn dpop_token(&self, scope: &str) -> String {
        let r = self
            .request_token(&self.assertion(), scope, Some(&self.token_proof(None)))
            .await;
        assert_oauth_error(&r, 400, "use_dpop_nonce");
        let nonce = r.h("dpop-nonce").expect("DPoP-Nonce").to_string();
        let r = self
            .request_token(
                &self.assertion(),
                scope,
                Some(&self.token_proof(Some(&nonce))),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["token_type"], "DPoP");
        r.json()["access_token"].as_str().unwrap().to_string()
    }

    /// A Bearer token (for an app without DPoP).
    pub(crate) async fn bearer_token(&self, scope: &str) -> String {
        let r = self.request_token(&self.assertion(), scope, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["token_type"], "Bearer");
        r.json()["access_token"].as_str().unwrap().to_string()
    }

    /// An API call with `Authorization: <auth>` and the given proof.
    pub(crate) async fn call_with(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        auth: &str,
        proof: Option<&str>,
    ) -> Reply {
        let mut rb = self
            .o
            .http
            .request(method, self.o.url(path_and_query))
            .header("Authorization", auth);
        if let Some(p) = proof {
            rb = rb.header("DPoP", p);
        }
        send(rb).await
    }

    /// An API call with a DPoP token and a correct fresh proof.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        token: &str,
    ) -> Reply {
        let path = path_and_query.split('?').next().unwrap();
        let proof = self
            .dpop
            .proof(method.as_str(), &self.o.url(path), None, Some(token));
        self.call_with(
            method,
            path_and_query,
            &format!("DPoP {token}"),
            Some(&proof),
        )
        .await
    }
}

pub(crate) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub(crate) const READ_MANAGE: &str = "okta.users.read okta.users.manage";

pub(crate) fn assert_oauth_error(r: &Reply, status: u16, error: &str) -> String {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.h("content-type"), Some("application/json"));
    assert!(r.h("x-okta-request-id").is_some());
    assert!(r.h("x-rate-limit-remaining").is_some());
    let b = r.json();
    assert_eq!(b["error"], error, "{b}");
    b["error_description"]
        .as_str()
        .expect("error_description")
        .to_string()
}

/// 401 E0000011 with a DPoP challenge naming `error`; returns the header.
pub(crate) fn assert_dpop_challenge(r: &Reply, error: &str) -> String {
    let b = assert_okta_error(r, 401, "E0000011");
    assert_eq!(b["errorSummary"], "Invalid token provided");
    let www = r
        .h("www-authenticate")
        .expect("WWW-Authenticate")
        .to_string();
    assert!(www.starts_with(r#"DPoP algs="RS256 ES256""#), "{www}");
    assert!(www.contains(&format!(r#"error="{error}""#)), "{www}");
    assert!(www.contains("error_description=\""), "{www}");
    www
}
