//! Compact JWS (RFC 7515) parsing and RS256/ES256 signature checks against a
//! public JWK, with ring, for the fake's OAuth endpoints.
//!
//! Written separately from any client's JWT code on purpose: the fake checks
//! what a client sends on its own, so it cannot share the client's mistakes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use serde_json::{Map, Value};

/// The signature algorithms the fake accepts (Okta also takes RS/ES 384 and
/// 512; the dispatcher uses only these two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Alg {
    Rs256,
    Es256,
}

impl Alg {
    pub(super) fn from_name(name: &str) -> Option<Alg> {
        match name {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }
}

/// JWK members that only a private (or symmetric) key has.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

#[derive(Clone, Debug)]
enum Material {
    /// Modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An uncompressed P-256 point, `0x04 || x || y`.
    EcP256 { point: Vec<u8> },
}

/// A public RSA or EC P-256 key read from a JWK.
#[derive(Clone, Debug)]
pub(super) struct PublicJwk {
    material: Material,
    pub(super) kid: Option<String>,
    /// RFC 7638 thumbprint.
    pub(super) thumbprint: String,
}

impl PublicJwk {
    /// Reads a public JWK; refuses private members, other key types and
    /// curves, and RSA moduli shorter than 2048 bits.
    pub(super) fn from_value(jwk: &Value) -> Result<PublicJwk, &'static str> {
        let obj = jwk.as_object().ok_or("the JWK is not a JSON object")?;
        if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
            return Err("the JWK contains private key material");
        }
        let b64 = |name: &str| -> Result<Vec<u8>, &'static str> {
            obj.get(name)
                .and_then(Value::as_str)
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                .ok_or("a JWK member is missing or not base64url")
        };
        let material = match obj.get("kty").and_then(Value::as_str) {
            Some("RSA") => {
                let n = strip_leading_zeros(b64("n")?);
                let e = strip_leading_zeros(b64("e")?);
                let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
                if bits < 2048 {
                    return Err("the RSA key is shorter than 2048 bits");
                }
                if e.is_empty() {
                    return Err("the RSA exponent is empty");
                }
                Material::Rsa { n, e }
            }
            Some("EC") => {
                if obj.get("crv").and_then(Value::as_str) != Some("P-256") {
                    return Err("only the EC curve P-256 is supported");
                }
                let (x, y) = (b64("x")?, b64("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err("the EC coordinates are not 32 bytes long");
                }
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Material::EcP256 { point }
            }
            _ => return Err("the JWK is neither an RSA nor an EC key"),
        };
        let thumbprint =
            crate::okta_keys::jwk_thumbprint(jwk).map_err(|_| "the JWK has no thumbprint")?;
        Ok(PublicJwk {
            material,
            kid: obj.get("kid").and_then(Value::as_str).map(str::to_string),
            thumbprint,
        })
    }

    /// Whether `alg` is the algorithm for this kind of key.
    pub(super) fn fits(&self, alg: Alg) -> bool {
        matches!(
            (&self.material, alg),
            (Material::Rsa { .. }, Alg::Rs256) | (Material::EcP256 { .. }, Alg::Es256)
        )
    }
}

fn strip_leading_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|b| **b == 0).count();
    v.drain(..zeros);
    v
}

/// A parsed (not yet verified) compact JWS with JSON header and claims.
pub(super) struct Jws {
    pub(super) header: Map<String, Value>,
    pub(super) claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jws {
    /// `header.payload.signature`, each base64url without padding, header and
    /// payload JSON objects. `None` when malformed.
    pub(super) fn parse(compact: &str) -> Option<Jws> {
        let mut parts = compact.trim().split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let object = |part: &str| -> Option<Map<String, Value>> {
            let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
            match serde_json::from_slice(&bytes).ok()? {
                Value::Object(map) => Some(map),
                _ => None,
            }
        };
        Some(Jws {
            header: object(h)?,
            claims: object(p)?,
            signing_input: format!("{h}.{p}"),
            signature: URL_SAFE_NO_PAD.decode(s).ok()?,
        })
    }

    pub(super) fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    pub(super) fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A numeric claim (NumericDate), integer or not.
    pub(super) fn claim_number(&self, name: &str) -> Option<f64> {
        self.claims.get(name).and_then(Value::as_f64)
    }

    /// The header's `alg`, if it is one the fake accepts.
    pub(super) fn alg(&self) -> Option<Alg> {
        self.header_str("alg").and_then(Alg::from_name)
    }

    /// Checks the signature with `key` (and that `alg` suits the key).
    pub(super) fn verify(&self, alg: Alg, key: &PublicJwk) -> bool {
        let msg = self.signing_input.as_bytes();
        match (&key.material, alg) {
            (Material::Rsa { n, e }, Alg::Rs256) => RsaPublicKeyComponents { n, e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, msg, &self.signature)
                .is_ok(),
            (Material::EcP256 { point }, Alg::Es256) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(msg, &self.signature)
                    .is_ok()
            }
            _ => false,
        }
    }
}
