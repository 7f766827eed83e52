//! What an OAuth service app adds to each Okta call: signing one DPoP proof
//! (ES256, with `ath`), and to each token request: one client assertion
//! (RS256 or ES256). Target for the proof: under 200 µs.
//! Run: `cargo bench -p dispatcher --bench okta_signing`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dispatcher::okta::jwt::{SigningKey, client_assertion, dpop_proof};

const RSA_2048: &str = include_str!("../../../tests/fixtures/keys/rsa-2048.pem");
const EC_P256: &str = include_str!("../../../tests/fixtures/keys/ec-p256.pem");
const TOKEN_URL: &str = "https://acme.okta.com/oauth2/v1/token";

fn signing(c: &mut Criterion) {
    let dpop_key = SigningKey::generate_p256();
    let token = "eyJraWQiOiJrMSIsImFsZyI6IlJTMjU2In0.a-realistic-access-token-of-about-a-kilobyte"
        .repeat(12);
    c.bench_function("DPoP proof for an API call (ES256, ath)", |b| {
        b.iter(|| {
            dpop_proof(
                &dpop_key,
                "POST",
                black_box("https://acme.okta.com/api/v1/users/00u1/lifecycle/suspend"),
                Some("nonce-value"),
                Some(black_box(&token)),
            )
        })
    });
    for (name, pem) in [("RS256", RSA_2048), ("ES256", EC_P256)] {
        let key = SigningKey::from_pem(pem).unwrap();
        c.bench_function(&format!("client assertion ({name})"), |b| {
            b.iter(|| client_assertion(&key, black_box("0oa1"), Some("k1"), TOKEN_URL))
        });
    }
}

criterion_group!(benches, signing);
criterion_main!(benches);
