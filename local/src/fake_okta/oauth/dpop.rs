//! DPoP proofs (RFC 9449): the one check the token endpoint and the API
//! share. The signature, `typ`, `alg`/`jwk`, `jti` (once), `htm`, `htu`,
//! `iat`, and for API calls `ath` and the bound key's thumbprint.

use std::time::SystemTime;

use http::HeaderMap;

use super::super::jws::{Jws, PublicJwk};
use super::{OAuthState, PROOF_IAT_LEEWAY_SECS, epoch_f64};

/// What a proof must say.
pub(super) struct ProofCheck<'a> {
    pub(super) htm: &'a str,
    pub(super) htu: &'a str,
    /// The access token's hash (resource requests only).
    pub(super) ath: Option<&'a str>,
    /// The thumbprint of the key the token is bound to (resource requests only).
    pub(super) jkt: Option<&'a str>,
}

pub(super) struct Proof {
    pub(super) jkt: String,
    pub(super) nonce: Option<String>,
}

/// Verifies the single `DPoP` header against `want`; consumes its `jti` once
/// the signature is good. The nonce is the caller's business.
pub(super) fn check_proof(
    oauth: &mut OAuthState,
    headers: &HeaderMap,
    want: &ProofCheck<'_>,
    now: SystemTime,
) -> Result<Proof, &'static str> {
    let mut values = headers.get_all("dpop").iter();
    let raw = match (values.next(), values.next()) {
        (None, _) => return Err("The DPoP proof JWT header is missing."),
        (Some(_), Some(_)) => return Err("Only one DPoP proof JWT header is allowed."),
        (Some(v), None) => v.to_str().map_err(|_| "The DPoP proof JWT is malformed.")?,
    };
    let jws = Jws::parse(raw).ok_or("The DPoP proof JWT is malformed.")?;
    if jws.header_str("typ") != Some("dpop+jwt") {
        return Err("The DPoP proof JWT 'typ' header must be 'dpop+jwt'.");
    }
    let alg = jws
        .alg()
        .ok_or("The DPoP proof JWT 'alg' is not supported: use RS256 or ES256.")?;
    let jwk = jws
        .header
        .get("jwk")
        .ok_or("The DPoP proof JWT 'jwk' header is missing.")?;
    let key = PublicJwk::from_value(jwk).map_err(
        |_| "The DPoP proof JWT 'jwk' header is not a public RSA (2048+) or EC P-256 key.",
    )?;
    if !key.fits(alg) {
        return Err("The DPoP proof JWT 'alg' does not match its 'jwk'.");
    }
    if !jws.verify(alg, &key) {
        return Err("The DPoP proof JWT signature is invalid.");
    }
    let jti = jws
        .claim_str("jti")
        .filter(|j| !j.is_empty())
        .ok_or("The DPoP proof JWT 'jti' claim is missing.")?;
    if !oauth.seen_proof_jtis.insert(jti.to_string()) {
        return Err("The DPoP proof JWT 'jti' has already been used.");
    }
    if jws.claim_str("htm") != Some(want.htm) {
        return Err("The DPoP proof JWT 'htm' claim does not match the request method.");
    }
    if jws.claim_str("htu") != Some(want.htu) {
        return Err("The DPoP proof JWT 'htu' claim does not match the request URL.");
    }
    let iat = jws
        .claim_number("iat")
        .ok_or("The DPoP proof JWT 'iat' claim is missing.")?;
    if (iat - epoch_f64(now)).abs() > PROOF_IAT_LEEWAY_SECS {
        return Err("The DPoP proof JWT 'iat' claim is too far from the current time.");
    }
    if let Some(ath) = want.ath
        && jws.claim_str("ath") != Some(ath)
    {
        return Err("The DPoP proof JWT 'ath' claim does not match the access token.");
    }
    if let Some(jkt) = want.jkt
        && key.thumbprint != jkt
    {
        return Err("The DPoP proof JWT key is not the key the access token is bound to.");
    }
    Ok(Proof {
        jkt: key.thumbprint,
        nonce: jws.claim_str("nonce").map(str::to_string),
    })
}
