//! Key helpers for Okta OAuth 2.0 service apps (`private_key_jwt`), with ring.
//!
//! [`generate_ec_p256_pkcs8_pem`] makes a client key the way an admin would
//! for an API Services app (`make local` does at start-up);
//! [`public_jwk_from_pkcs8_pem`] gives the public JWK to register in Okta (or
//! in [`FakeOkta::register_app`](crate::fake_okta::FakeOkta::register_app));
//! [`jwk_thumbprint`] is the RFC 7638 thumbprint a DPoP-bound token is bound to.
//!
//! Only EC P-256 and RSA (2048 bits or more) PKCS#8 keys are accepted, as the
//! dispatcher does. Errors never contain key material.

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair as _, RsaKeyPair, RsaPublicKeyComponents,
};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// A new EC P-256 private key, PKCS#8, as PEM (`-----BEGIN PRIVATE KEY-----`).
pub fn generate_ec_p256_pkcs8_pem() -> String {
    let rng = SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("the system random source works");
    pem_encode("PRIVATE KEY", doc.as_ref())
}

/// The DER of the first `-----BEGIN PRIVATE KEY-----` (PKCS#8) block in `pem`.
pub fn pkcs8_der_from_pem(pem: &str) -> anyhow::Result<Vec<u8>> {
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
        anyhow!("not a PKCS#8 private key: expected a -----BEGIN PRIVATE KEY----- block")
    })?;
    Ok(der.secret_pkcs8_der().to_vec())
}

/// The public JWK of a PKCS#8 EC P-256 key (`{"kty":"EC","crv":"P-256","x","y"}`)
/// or RSA key (`{"kty":"RSA","n","e"}`), with `kid` when given.
pub fn public_jwk_from_pkcs8_pem(pem: &str, kid: Option<&str>) -> anyhow::Result<Value> {
    let der = pkcs8_der_from_pem(pem)?;
    let rng = SystemRandom::new();
    let mut jwk =
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng) {
            ec_p256_jwk(pair.public_key().as_ref())?
        } else if let Ok(pair) = RsaKeyPair::from_pkcs8(&der) {
            let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
            json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(&public.n),
                "e": URL_SAFE_NO_PAD.encode(&public.e),
            })
        } else {
            bail!("{}", unsupported_key(&der, &rng));
        };
    if let Some(kid) = kid {
        jwk["kid"] = json!(kid);
    }
    Ok(jwk)
}

/// The RFC 7638 JWK SHA-256 thumbprint (base64url, no padding) of an RSA or
/// EC public JWK: the value a DPoP-bound token's `cnf.jkt` carries.
pub fn jwk_thumbprint(jwk: &Value) -> anyhow::Result<String> {
    let member = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .map(|v| Value::String(v.to_string()).to_string())
            .with_context(|| format!("the JWK has no {name:?} member"))
    };
    // Required members only, in lexicographic order, no whitespace.
    let canonical = match jwk.get("kty").and_then(Value::as_str) {
        Some("RSA") => format!(
            r#"{{"e":{},"kty":"RSA","n":{}}}"#,
            member("e")?,
            member("n")?
        ),
        Some("EC") => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            member("crv")?,
            member("x")?,
            member("y")?
        ),
        _ => bail!("the JWK is neither an RSA nor an EC key"),
    };
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// `0x04 || x || y` (an uncompressed P-256 point) as a JWK.
fn ec_p256_jwk(point: &[u8]) -> anyhow::Result<Value> {
    if point.len() != 65 || point[0] != 0x04 {
        bail!("unexpected EC public key encoding");
    }
    Ok(json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..]),
    }))
}

/// Why a PKCS#8 key is not usable, as precisely as ring lets us tell.
fn unsupported_key(der: &[u8], rng: &SystemRandom) -> String {
    if EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, der, rng).is_ok() {
        return "unsupported key: EC P-384 (use EC P-256 or RSA 2048+)".to_string();
    }
    if Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).is_ok() {
        return "unsupported key: Ed25519 (use EC P-256 or RSA 2048+)".to_string();
    }
    match RsaKeyPair::from_pkcs8(der) {
        Err(e) if e.to_string() == "TooSmall" => {
            "unsupported key: RSA shorter than 2048 bits".to_string()
        }
        _ => "unsupported key: only EC P-256 and RSA (2048 bits or more) PKCS#8 keys".to_string(),
    }
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_to_a_p256_jwk() {
        let pem = generate_ec_p256_pkcs8_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
        let jwk = public_jwk_from_pkcs8_pem(&pem, Some("k1")).unwrap();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["kid"], "k1");
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(jwk["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert!(jwk.get("d").is_none());
        assert_ne!(generate_ec_p256_pkcs8_pem(), pem);
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638, section 3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29",
        });
        assert_eq!(
            jwk_thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn refuses_what_is_not_a_pkcs8_key() {
        let err = public_jwk_from_pkcs8_pem(
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a PKCS#8 private key"), "{err}");
    }
}
