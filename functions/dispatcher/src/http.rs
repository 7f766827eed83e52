//! The dispatcher's one outbound HTTP client, for Okta and Slack alike.
//!
//! Built once per cold start and shared: building a client reads the
//! system's root certificates, a large part of init. No request waits longer
//! than [`REQUEST_TIMEOUT`] (callers also bound it by the invocation's
//! deadline), and no redirect is followed: a redirect after a suspend or a
//! post is never a success, so it is reported as the answer it is.

use std::time::Duration;

/// One request never waits longer than this for Okta or Slack.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub fn client() -> reqwest::Client {
    shared::aws::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("oort-okta-lockout/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("static client settings are valid")
}
