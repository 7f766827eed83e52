//! The webhook's API key check.
//!
//! The key lives in Secrets Manager (the SecretString is the key itself). Both
//! the current and the previous version are accepted, so a rotation never
//! rejects a sender that has not switched yet. Only SHA-256 digests of the
//! keys are kept in memory, and the comparison is of digests in constant
//! time: neither timing nor length tells a caller how close they got.

use std::time::Duration;

use sha2::{Digest, Sha256};
use shared::secrets::{Cached, ExposeSecret, SecretError, SecretReader, Stage};
use subtle::ConstantTimeEq;

/// After a wrong key, the cache may be refreshed early at most this often.
pub const MIN_EARLY_REFRESH: Duration = Duration::from_secs(30);

/// The keys accepted right now, as digests.
#[derive(Clone)]
pub struct KeySet {
    digests: Vec<[u8; 32]>,
}

impl KeySet {
    /// Keys as stored; surrounding whitespace (a pasted newline) is ignored.
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> KeySet {
        let digests = keys
            .into_iter()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| Sha256::digest(k.as_bytes()).into())
            .collect();
        KeySet { digests }
    }

    /// Whether `presented` is one of the keys. Every key is compared, so the
    /// time taken does not depend on which one matched.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.trim_ascii()).into();
        self.digests
            .iter()
            .fold(0u8, |found, key| found | key.ct_eq(&presented).unwrap_u8())
            == 1
    }
}

/// The key check against Secrets Manager, with a TTL cache.
///
/// The current version is read first and is all a sender with the current
/// key ever costs. The previous version is read only when a presented key is
/// not the current one (during a rotation, or a wrong key), then cached the
/// same way: a cold start answers after one Secrets Manager call, not two.
pub struct ApiKeys {
    reader: SecretReader,
    secret_id: String,
    current: Cached<KeySet>,
    previous: Cached<KeySet>,
}

impl ApiKeys {
    pub fn new(
        reader: SecretReader,
        secret_id: String,
        ttl: Duration,
        min_early_refresh: Duration,
    ) -> Self {
        ApiKeys {
            reader,
            secret_id,
            current: Cached::new(ttl, min_early_refresh),
            previous: Cached::new(ttl, min_early_refresh),
        }
    }

    /// Whether `presented` is a valid key. On a mismatch the keys are
    /// re-read once (at most every [`MIN_EARLY_REFRESH`]) in case the key was
    /// just rotated. Errors only when the current key could not be read.
    pub async fn verify(&self, presented: &[u8]) -> Result<bool, SecretError> {
        let current = self.current.get(|| self.load_current()).await?;
        if current.matches(presented) {
            return Ok(true);
        }
        let previous = self.previous.get(|| self.load_previous()).await?;
        if previous.matches(presented) {
            return Ok(true);
        }
        // Neither: a rotation may have just happened (the presented key is
        // the new current one, or the current one just became previous).
        let (current, previous) = tokio::join!(
            self.current.refresh_early(|| self.load_current()),
            self.previous.refresh_early(|| self.load_previous()),
        );
        let current = current.unwrap_or_else(|e| {
            // The cached keys were fine and did not match: still a 401.
            tracing::warn!(error = %e, "early refresh of the API key failed");
            None
        });
        let previous = previous.unwrap_or_default();
        Ok([current, previous]
            .iter()
            .flatten()
            .any(|keys| keys.matches(presented)))
    }

    async fn load_current(&self) -> Result<KeySet, SecretError> {
        let current = self
            .reader
            .read(&self.secret_id, Stage::Current)
            .await?
            .ok_or_else(|| SecretError::Unavailable {
                secret_id: self.secret_id.clone(),
                reason: "it has no current value".into(),
            })?;
        let keys = KeySet::new([current.expose_secret()]);
        if keys.digests.is_empty() {
            return Err(SecretError::Malformed {
                secret_id: self.secret_id.clone(),
                reason: "the key is empty".into(),
            });
        }
        Ok(keys)
    }

    /// The previous key, or none: a missing or unreadable previous version
    /// only narrows what is accepted.
    async fn load_previous(&self) -> Result<KeySet, SecretError> {
        let previous = self
            .reader
            .read(&self.secret_id, Stage::Previous)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not read the previous API key");
                None
            });
        Ok(KeySet::new(previous.as_ref().map(|p| p.expose_secret())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_current_and_previous_keys_only() {
        let keys = KeySet::new(["current-key", "previous-key"]);
        assert!(keys.matches(b"current-key"));
        assert!(keys.matches(b"previous-key"));
        assert!(!keys.matches(b"current-ke"));
        assert!(!keys.matches(b"current-key-and-more"));
        assert!(!keys.matches(b""));
        assert!(!keys.matches(b"CURRENT-KEY"));
    }

    #[test]
    fn surrounding_whitespace_is_ignored_and_blank_keys_never_match() {
        let keys = KeySet::new(["  k3y\n", "   "]);
        assert!(keys.matches(b"k3y"));
        assert!(keys.matches(b" k3y "));
        assert!(!keys.matches(b" "));
        assert!(!KeySet::new([""]).matches(b""));
    }
}
