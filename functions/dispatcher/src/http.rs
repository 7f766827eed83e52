//! The dispatcher's one outbound HTTP client, for Okta and Slack alike.
//!
//! Built once per container, on first use, and shared: building a client
//! reads the system's root certificates, which a cold start then pays when
//! its first event needs Okta or Slack rather than before it can take one.
//! No request waits longer than [`REQUEST_TIMEOUT`] (callers also bound it
//! by the invocation's deadline), and no redirect is followed: a redirect
//! after a suspend or a post is never a success, so it is reported as the
//! answer it is.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// One request never waits longer than this for Okta or Slack.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The shared client; clones share one.
#[derive(Clone, Default)]
pub struct Http(Arc<OnceLock<reqwest::Client>>);

impl Http {
    pub fn new() -> Http {
        Http::default()
    }

    pub fn client(&self) -> &reqwest::Client {
        self.0.get_or_init(build)
    }
}

fn build() -> reqwest::Client {
    shared::aws::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("oort-okta-lockout/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("static client settings are valid")
}
