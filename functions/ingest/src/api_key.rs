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
pub struct ApiKeys {
    reader: SecretReader,
    secret_id: String,
    cache: Cached<KeySet>,
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
            cache: Cached::new(ttl, min_early_refresh),
        }
    }

    /// Whether `presented` is a valid key. On a mismatch the keys are
    /// re-read once (at most every [`MIN_EARLY_REFRESH`]) in case the key was
    /// just rotated. Errors only when the keys could not be read at all.
    pub async fn verify(&self, presented: &[u8]) -> Result<bool, SecretError> {
        let keys = self.cache.get(|| self.load()).await?;
        if keys.matches(presented) {
            return Ok(true);
        }
        match self.cache.refresh_early(|| self.load()).await {
            Ok(Some(fresh)) => Ok(fresh.matches(presented)),
            Ok(None) => Ok(false),
            Err(e) => {
                // The cached keys were fine and did not match: still a 401.
                tracing::warn!(error = %e, "early refresh of the API key failed");
                Ok(false)
            }
        }
    }

    async fn load(&self) -> Result<KeySet, SecretError> {
        let (current, previous) = tokio::join!(
            self.reader.read(&self.secret_id, Stage::Current),
            self.reader.read(&self.secret_id, Stage::Previous),
        );
        let current = current?.ok_or_else(|| SecretError::Unavailable {
            secret_id: self.secret_id.clone(),
            reason: "it has no current value".into(),
        })?;
        // A missing or unreadable previous version only narrows what is accepted.
        let previous = previous.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read the previous API key");
            None
        });
        let keys = KeySet::new(
            std::iter::once(current.expose_secret())
                .chain(previous.as_ref().map(|p| p.expose_secret())),
        );
        if keys.digests.is_empty() {
            return Err(SecretError::Malformed {
                secret_id: self.secret_id.clone(),
                reason: "the key is empty".into(),
            });
        }
        Ok(keys)
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
