//! The JWTs an OAuth service app signs: the client assertion that proves
//! who the app is (private_key_jwt), and the DPoP proofs that bind its
//! access token to a key only this container holds.
//!
//! Signatures are ring's (RS256 with an RSA 2048+ key, ES256 with a P-256
//! key). A key's `Debug` and every error here name what is wrong, never
//! the key; the JWTs themselves are secrets and are only ever put in a
//! request.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// How long a client assertion is valid: Okta allows up to an hour; it is
/// used at once, so a few minutes covers any clock skew.
const ASSERTION_LIFETIME_SECS: u64 = 300;

/// An app's private key, parsed and checked.
pub struct SigningKey {
    kind: KeyKind,
    rng: SystemRandom,
}

enum KeyKind {
    Rsa(RsaKeyPair),
    EcP256(EcdsaKeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, redacted)", self.alg())
    }
}

/// Why a private key cannot be used. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

// DER of the algorithm identifiers a PKCS#8 key names, to say what a
// refused key is. ring alone decides whether a key is usable.
const OID_RSA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
const OID_EC: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

impl SigningKey {
    /// Parses a PEM PKCS#8 private key: RSA of 2048 bits or more, or EC P-256.
    pub fn from_pem(pem: &str) -> Result<SigningKey, KeyError> {
        // A PEM pasted through a shell often arrives with literal `\n`s.
        let pem = pem.trim().replace("\\n", "\n");
        if pem.contains("BEGIN ENCRYPTED PRIVATE KEY") {
            return Err(KeyError(
                "the private key is encrypted; store it unencrypted (PKCS#8, BEGIN PRIVATE KEY)"
                    .into(),
            ));
        }
        for (label, convert) in [("RSA PRIVATE KEY", "rsa"), ("EC PRIVATE KEY", "ec")] {
            if pem.contains(&format!("BEGIN {label}")) {
                return Err(KeyError(format!(
                    "the private key is {label} (not PKCS#8); convert it with `openssl pkcs8 -topk8 -nocrypt` (or `openssl {convert} ... | openssl pkcs8 -topk8 -nocrypt`)"
                )));
            }
        }
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
            KeyError("the private key is not a PEM PKCS#8 key (BEGIN PRIVATE KEY)".into())
        })?;
        SigningKey::from_pkcs8(der.secret_pkcs8_der())
    }

    /// Parses a DER PKCS#8 private key.
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey, KeyError> {
        let rng = SystemRandom::new();
        // The algorithm identifier sits near the start of the structure.
        let head = &der[..der.len().min(40)];
        if contains(head, OID_RSA) {
            return match RsaKeyPair::from_pkcs8(der) {
                Ok(key) => Ok(SigningKey {
                    kind: KeyKind::Rsa(key),
                    rng,
                }),
                Err(e) if e.to_string() == "TooSmall" => Err(KeyError(
                    "the RSA key is shorter than 2048 bits; use RSA 2048 or more, or EC P-256"
                        .into(),
                )),
                Err(e) => Err(KeyError(format!("the RSA key could not be read ({})", e))),
            };
        }
        if contains(head, OID_EC) {
            if !contains(der, OID_P256) {
                return Err(KeyError(
                    "the EC key is not on the P-256 curve; only P-256 (ES256) is supported".into(),
                ));
            }
            return EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                der,
                &rng,
            )
            .map(|key| SigningKey {
                kind: KeyKind::EcP256(key),
                rng,
            })
            .map_err(|e| KeyError(format!("the EC P-256 key could not be read ({})", e)));
        }
        Err(KeyError(
            "the private key is of an unsupported type; use RSA 2048+ or EC P-256".into(),
        ))
    }

    /// A fresh P-256 key, for DPoP: made once per container, never stored.
    pub fn generate_p256() -> SigningKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("the system random source works");
        let key = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .expect("a key ring just made parses");
        SigningKey {
            kind: KeyKind::EcP256(key),
            rng,
        }
    }

    /// The JWS algorithm this key signs with.
    pub fn alg(&self) -> &'static str {
        match self.kind {
            KeyKind::Rsa(_) => "RS256",
            KeyKind::EcP256(_) => "ES256",
        }
    }

    /// The public key as a JWK (what a DPoP proof carries in its header).
    pub fn public_jwk(&self) -> Value {
        match &self.kind {
            KeyKind::Rsa(key) => {
                let public: ring::rsa::PublicKeyComponents<Vec<u8>> = key.public().into();
                json!({
                    "kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(&public.n),
                    "e": URL_SAFE_NO_PAD.encode(&public.e),
                })
            }
            KeyKind::EcP256(key) => {
                // Uncompressed point: 0x04 || x || y.
                let point = key.public_key().as_ref();
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
                })
            }
        }
    }

    /// A compact JWS of `header` (to which `alg` is added) and `claims`.
    pub fn sign(&self, mut header: Value, claims: &Value) -> SecretString {
        header["alg"] = Value::from(self.alg());
        let mut jwt = String::with_capacity(512);
        URL_SAFE_NO_PAD.encode_string(header.to_string(), &mut jwt);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut jwt);
        let signature = match &self.kind {
            KeyKind::Rsa(key) => {
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    jwt.as_bytes(),
                    &mut sig,
                )
                .expect("RSA signing with a valid key does not fail");
                sig
            }
            KeyKind::EcP256(key) => key
                .sign(&self.rng, jwt.as_bytes())
                .expect("ECDSA signing with a valid key does not fail")
                .as_ref()
                .to_vec(),
        };
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jwt);
        SecretString::from(jwt)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A unique token id: 128 random bits.
pub fn jti() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The client assertion for one token request (a new one for every attempt:
/// Okta consumes each `jti`, even on a request it answers with an error).
pub fn client_assertion(
    key: &SigningKey,
    client_id: &str,
    key_id: Option<&str>,
    token_url: &str,
) -> SecretString {
    let now = now_secs();
    let mut header = json!({"typ": "JWT"});
    if let Some(kid) = key_id {
        header["kid"] = Value::from(kid);
    }
    key.sign(
        header,
        &json!({
            "iss": client_id,
            "sub": client_id,
            "aud": token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
            "jti": jti(),
        }),
    )
}

/// A DPoP proof for one request. `htu` is the URL without query or
/// fragment; `access_token` (for API calls) adds `ath`.
pub fn dpop_proof(
    key: &SigningKey,
    method: &str,
    htu: &str,
    nonce: Option<&str>,
    access_token: Option<&str>,
) -> SecretString {
    let mut claims = json!({
        "htm": method,
        "htu": htu,
        "iat": now_secs(),
        "jti": jti(),
    });
    if let Some(nonce) = nonce {
        claims["nonce"] = Value::from(nonce);
    }
    if let Some(token) = access_token {
        claims["ath"] = Value::from(URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())));
    }
    key.sign(json!({"typ": "dpop+jwt", "jwk": key.public_jwk()}), &claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use secrecy::ExposeSecret;

    const RSA_2048: &str = include_str!("../../../../tests/fixtures/keys/rsa-2048.pem");
    const RSA_2048_PKCS1: &str = include_str!("../../../../tests/fixtures/keys/rsa-2048-pkcs1.pem");
    const RSA_1024: &str = include_str!("../../../../tests/fixtures/keys/rsa-1024.pem");
    const EC_P256: &str = include_str!("../../../../tests/fixtures/keys/ec-p256.pem");
    const EC_P384: &str = include_str!("../../../../tests/fixtures/keys/ec-p384.pem");
    const ED25519: &str = include_str!("../../../../tests/fixtures/keys/ed25519.pem");

    fn parts(jwt: &SecretString) -> (Value, Value, Vec<u8>, String) {
        let jwt = jwt.expose_secret();
        let mut it = jwt.split('.');
        let (h, c, s) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        let decode = |p: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
        (
            decode(h),
            decode(c),
            URL_SAFE_NO_PAD.decode(s).unwrap(),
            format!("{h}.{c}"),
        )
    }

    /// Verifies with the public JWK alone, as Okta does.
    fn verify(jwk: &Value, signed: &str, sig: &[u8]) -> bool {
        let b = |k: &str| URL_SAFE_NO_PAD.decode(jwk[k].as_str().unwrap()).unwrap();
        match jwk["kty"].as_str() {
            Some("EC") => {
                let mut point = vec![4u8];
                point.extend(b("x"));
                point.extend(b("y"));
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(signed.as_bytes(), sig)
                    .is_ok()
            }
            Some("RSA") => signature::RsaPublicKeyComponents {
                n: b("n"),
                e: b("e"),
            }
            .verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), sig)
            .is_ok(),
            _ => false,
        }
    }

    #[test]
    fn rsa_and_p256_keys_sign_assertions_okta_can_verify() {
        for (pem, alg) in [(RSA_2048, "RS256"), (EC_P256, "ES256")] {
            let key = SigningKey::from_pem(pem).unwrap();
            let jwt = client_assertion(
                &key,
                "0oa1",
                Some("k1"),
                "https://o.okta.com/oauth2/v1/token",
            );
            let (header, claims, sig, signed) = parts(&jwt);
            assert_eq!(header["alg"], alg);
            assert_eq!(header["kid"], "k1");
            assert_eq!(claims["iss"], "0oa1");
            assert_eq!(claims["sub"], "0oa1");
            assert_eq!(claims["aud"], "https://o.okta.com/oauth2/v1/token");
            let (iat, exp) = (
                claims["iat"].as_u64().unwrap(),
                claims["exp"].as_u64().unwrap(),
            );
            assert!(exp > iat && exp - iat <= 3600);
            assert!(verify(&key.public_jwk(), &signed, &sig), "{alg}");
            let other = client_assertion(&key, "0oa1", None, "x");
            assert_ne!(
                parts(&other).1["jti"],
                claims["jti"],
                "a new jti every time"
            );
            assert!(parts(&other).0.get("kid").is_none());
        }
    }

    #[test]
    fn dpop_proofs_carry_the_public_key_and_bind_the_token() {
        let key = SigningKey::generate_p256();
        let proof = dpop_proof(
            &key,
            "POST",
            "https://o.okta.com/api/v1/users/1",
            Some("n1"),
            Some("tok"),
        );
        let (header, claims, sig, signed) = parts(&proof);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert!(header["jwk"].get("d").is_none(), "public part only");
        assert!(verify(&header["jwk"], &signed, &sig));
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "https://o.okta.com/api/v1/users/1");
        assert_eq!(claims["nonce"], "n1");
        // RFC 9449's example: ath of "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU".
        let rfc = dpop_proof(
            &key,
            "GET",
            "h",
            None,
            Some("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
        );
        assert_eq!(
            parts(&rfc).1["ath"],
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
        let bare = dpop_proof(&key, "POST", "h", None, None);
        assert!(parts(&bare).1.get("nonce").is_none());
        assert!(parts(&bare).1.get("ath").is_none());
    }

    #[test]
    fn unusable_keys_say_what_is_wrong_and_nothing_more() {
        let cases = [
            (RSA_2048_PKCS1, "not PKCS#8"),
            (RSA_1024, "shorter than 2048 bits"),
            (EC_P384, "not on the P-256 curve"),
            (ED25519, "unsupported type"),
            ("not a key", "not a PEM PKCS#8 key"),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
                "encrypted",
            ),
        ];
        for (pem, expected) in cases {
            let err = SigningKey::from_pem(pem).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
            let body_line = pem.lines().nth(1).unwrap_or("not a key");
            assert!(!err.contains(body_line), "the key leaked into: {err}");
        }
    }

    #[test]
    fn a_pem_with_escaped_newlines_is_accepted() {
        let escaped = EC_P256.trim().replace('\n', "\\n");
        assert_eq!(SigningKey::from_pem(&escaped).unwrap().alg(), "ES256");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = SigningKey::from_pem(RSA_2048).unwrap();
        assert_eq!(format!("{key:?}"), "SigningKey(RS256, redacted)");
    }
}
