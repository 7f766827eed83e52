//! Slack's request signature.
//!
//! Slack signs every request with the app's signing secret:
//! `X-Slack-Signature: v0=<hex of HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)>`,
//! with the Unix time in `X-Slack-Request-Timestamp`. The check runs over the
//! raw body exactly as Slack sent it (a function URL's base64 already
//! decoded), before anything in it is read. The headers and the timestamp
//! window are checked first, without the secret, so junk costs no Secrets
//! Manager call. The MAC comparison is ring's, in constant time.
//!
//! The signing secret is cached for `SECRET_TTL_SECONDS`; after a mismatch it
//! is re-read once (at most every [`MIN_EARLY_REFRESH`]) in case it was just
//! regenerated. A request within the window can be replayed: every action
//! behind it is idempotent (see the handler).

use std::time::Duration;

use ring::hmac;
use shared::secrets::{Cached, ExposeSecret, SecretError, SecretReader};

pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// How far a request's timestamp may be from now.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);
/// After a mismatch, the secret may be re-read early at most this often.
pub const MIN_EARLY_REFRESH: Duration = Duration::from_secs(30);

/// Why a request is not Slack's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("header {TIMESTAMP_HEADER} is not a Unix time")]
    MalformedTimestamp,
    #[error("stale request: its timestamp is {0} seconds from now, more than 300")]
    Stale(i64),
    #[error("invalid Slack signature")]
    Mismatch,
}

/// `v0=<hex>`: the signature Slack sends for `body` at `timestamp`. Used by
/// the check, the tests and the local Slack stand-in.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, &basestring(timestamp, body));
    format!("v0={}", hex::encode(tag.as_ref()))
}

fn basestring(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(body.len() + timestamp.len() + 4);
    message.extend_from_slice(b"v0:");
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b':');
    message.extend_from_slice(body);
    message
}

/// The headers of a request, checked for presence and freshness: what can
/// be judged without the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented<'a> {
    timestamp: &'a str,
    /// The MAC, decoded from `v0=<hex>`; `None` when the header is not of that
    /// form (it then matches nothing).
    mac: Option<Vec<u8>>,
}

impl<'a> Presented<'a> {
    /// Checks that both headers are there and the timestamp is within
    /// [`MAX_CLOCK_SKEW`] of `now` (Unix seconds).
    pub fn check(
        timestamp: Option<&'a str>,
        signature: Option<&'a str>,
        now: i64,
    ) -> Result<Presented<'a>, SignatureError> {
        let timestamp = timestamp
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(SignatureError::MissingHeader(TIMESTAMP_HEADER))?;
        let signature = signature
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(SignatureError::MissingHeader(SIGNATURE_HEADER))?;
        let seconds: i64 = timestamp
            .parse()
            .map_err(|_| SignatureError::MalformedTimestamp)?;
        let skew = seconds.saturating_sub(now);
        if skew.unsigned_abs() > MAX_CLOCK_SKEW.as_secs() {
            return Err(SignatureError::Stale(skew));
        }
        let mac = signature
            .strip_prefix("v0=")
            .and_then(|h| hex::decode(h).ok());
        Ok(Presented { timestamp, mac })
    }

    /// Whether the signature is `key`'s over `body`, in constant time.
    pub fn matches(&self, key: &hmac::Key, body: &[u8]) -> bool {
        match &self.mac {
            Some(mac) => hmac::verify(key, &basestring(self.timestamp, body), mac).is_ok(),
            None => false,
        }
    }
}

/// Why a request could not be checked at all (our side, not the caller's).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Unavailable(#[from] SecretError),
    #[error(
        "secret {0} holds no signing secret yet: put the Slack app's signing secret in it (README \"Approve and undo from Slack\")"
    )]
    Unset(String),
}

/// The value the template creates the secret with, before anyone fills it in.
pub const PLACEHOLDER: &str = "unset";

/// The signing secret, from Secrets Manager, cached.
pub struct SigningSecret {
    reader: SecretReader,
    secret_id: String,
    /// `None`: the secret is still the placeholder (or blank).
    cache: Cached<Option<hmac::Key>>,
}

impl SigningSecret {
    pub fn new(
        reader: SecretReader,
        secret_id: String,
        ttl: Duration,
        min_early_refresh: Duration,
    ) -> SigningSecret {
        SigningSecret {
            reader,
            secret_id,
            cache: Cached::new(ttl, min_early_refresh),
        }
    }

    async fn load(&self) -> Result<Option<hmac::Key>, SecretError> {
        let value = self.reader.read_current(&self.secret_id).await?;
        let secret = value.expose_secret().trim();
        if secret.is_empty() || secret == PLACEHOLDER {
            return Ok(None);
        }
        Ok(Some(hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes())))
    }

    /// Whether `presented` signs `body`. `Err` only when the secret could not
    /// be read or is not set.
    pub async fn verify(&self, presented: &Presented<'_>, body: &[u8]) -> Result<bool, KeyError> {
        let key = self.cache.get(|| self.load()).await?;
        if let Some(key) = key.as_ref()
            && presented.matches(key, body)
        {
            return Ok(true);
        }
        let fresh = match self.cache.refresh_early(|| self.load()).await {
            Ok(Some(fresh)) => fresh,
            Ok(None) => key,
            // The cached secret was fine and did not match: still a mismatch.
            Err(e) if key.is_some() => {
                tracing::warn!(error = %e, "could not re-read the signing secret after a mismatch");
                key
            }
            Err(e) => return Err(e.into()),
        };
        match fresh.as_ref() {
            Some(key) => Ok(presented.matches(key, body)),
            None => Err(KeyError::Unset(self.secret_id.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's documented example.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TIMESTAMP: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn key() -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes())
    }

    #[test]
    fn slacks_documented_example_verifies() {
        assert_eq!(
            sign(SECRET.as_bytes(), TIMESTAMP, BODY.as_bytes()),
            SIGNATURE
        );
        let now = TIMESTAMP.parse::<i64>().unwrap() + 10;
        let presented = Presented::check(Some(TIMESTAMP), Some(SIGNATURE), now).unwrap();
        assert!(presented.matches(&key(), BODY.as_bytes()));
        assert!(!presented.matches(&key(), format!("{BODY}x").as_bytes()));
        let other = hmac::Key::new(hmac::HMAC_SHA256, b"another secret");
        assert!(!presented.matches(&other, BODY.as_bytes()));
    }

    #[test]
    fn headers_and_window_are_checked_first() {
        let now = 1_700_000_000;
        let ts = now.to_string();
        assert_eq!(
            Presented::check(None, Some(SIGNATURE), now),
            Err(SignatureError::MissingHeader(TIMESTAMP_HEADER))
        );
        assert_eq!(
            Presented::check(Some(&ts), Some("  "), now),
            Err(SignatureError::MissingHeader(SIGNATURE_HEADER))
        );
        assert_eq!(
            Presented::check(Some("soon"), Some(SIGNATURE), now),
            Err(SignatureError::MalformedTimestamp)
        );
        let old = (now - 301).to_string();
        assert_eq!(
            Presented::check(Some(&old), Some(SIGNATURE), now),
            Err(SignatureError::Stale(-301))
        );
        let future = (now + 301).to_string();
        assert_eq!(
            Presented::check(Some(&future), Some(SIGNATURE), now),
            Err(SignatureError::Stale(301))
        );
        let edge = (now - 300).to_string();
        assert!(Presented::check(Some(&edge), Some(SIGNATURE), now).is_ok());
        for malformed in [
            "a2114d57",
            "v0=zz",
            "v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            "v0=",
        ] {
            let p = Presented::check(Some(&ts), Some(malformed), now).unwrap();
            assert!(!p.matches(&key(), BODY.as_bytes()), "{malformed}");
        }
    }
}
