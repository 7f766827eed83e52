//! AWS SDK configuration shared by the functions and the local tooling.
//!
//! Endpoints, region and credentials come from the SDK's standard environment
//! (`AWS_REGION`, `AWS_ENDPOINT_URL`, ...), so one binary runs against AWS and
//! against a local emulator. TLS is rustls with the ring provider: it keeps
//! aws-lc-rs and the legacy hyper stack out of the build.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::{Builder, tls};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Installs ring as the process-wide rustls crypto provider. reqwest built
/// with `rustls-no-provider` panics on first use without one. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The SDK's HTTP client with rustls and ring (it speaks plain HTTP to
/// local emulators too).
pub fn http_client() -> SharedHttpClient {
    install_crypto_provider();
    Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Loads the SDK configuration from the environment.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .load()
        .await
}
