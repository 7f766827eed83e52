//! Secrets Manager reads behind a TTL cache.
//!
//! [`SecretReader`] reads a secret's value by version stage. [`Cached`] keeps
//! a parsed value for a TTL, so a warm function calls Secrets Manager at most
//! once per TTL, and allows an early refresh at most once per
//! `min_refresh_interval` (a freshly rotated key works at once, yet a stream
//! of bad requests cannot turn into a Secrets Manager call each).
//!
//! Secret values are [`SecretString`]s: their `Debug` is redacted, and no
//! error here ever carries a value, only the secret's id and what went wrong.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};
pub use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A Secrets Manager version stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Current,
    /// The value before the last rotation: still accepted during a rotation.
    Previous,
}

impl Stage {
    fn label(self) -> &'static str {
        match self {
            Stage::Current => "AWSCURRENT",
            Stage::Previous => "AWSPREVIOUS",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("could not read secret {secret_id}: {reason}")]
    Unavailable { secret_id: String, reason: String },
    #[error("secret {secret_id} is malformed: {reason}")]
    Malformed { secret_id: String, reason: String },
}

/// Reads secret values from Secrets Manager.
#[derive(Clone, Debug)]
pub struct SecretReader {
    client: Client,
}

impl SecretReader {
    pub fn new(client: Client) -> Self {
        SecretReader { client }
    }

    /// The `SecretString` of one version stage; `None` when that stage does
    /// not exist (a secret that was never rotated has no `AWSPREVIOUS`).
    pub async fn read(
        &self,
        secret_id: &str,
        stage: Stage,
    ) -> Result<Option<SecretString>, SecretError> {
        let answer = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .version_stage(stage.label())
            .send()
            .await;
        match answer {
            Ok(output) => match output.secret_string {
                Some(value) => Ok(Some(SecretString::from(value))),
                None => Err(SecretError::Malformed {
                    secret_id: secret_id.into(),
                    reason: "it has no SecretString (binary secrets are not supported)".into(),
                }),
            },
            Err(err) => {
                let code = err.code().unwrap_or_default();
                if stage == Stage::Previous && code == "ResourceNotFoundException" {
                    return Ok(None);
                }
                Err(SecretError::Unavailable {
                    secret_id: secret_id.into(),
                    reason: DisplayErrorContext(&err).to_string(),
                })
            }
        }
    }

    /// The current value, required to exist.
    pub async fn read_current(&self, secret_id: &str) -> Result<SecretString, SecretError> {
        self.read(secret_id, Stage::Current)
            .await?
            .ok_or_else(|| SecretError::Unavailable {
                secret_id: secret_id.into(),
                reason: "it has no current value".into(),
            })
    }

    /// The current value parsed as JSON into `T`. A parse error reports only
    /// where the JSON is wrong and what shape was expected, never the text:
    /// serde's own messages quote the offending value.
    pub async fn read_json<T: DeserializeOwned>(
        &self,
        secret_id: &str,
        expected_shape: &str,
    ) -> Result<T, SecretError> {
        let raw = self.read_current(secret_id).await?;
        parse_secret_json(secret_id, raw.expose_secret(), expected_shape)
    }
}

/// Parses a JSON secret without ever echoing its text in the error.
pub fn parse_secret_json<T: DeserializeOwned>(
    secret_id: &str,
    text: &str,
    expected_shape: &str,
) -> Result<T, SecretError> {
    serde_json::from_str(text).map_err(|e| SecretError::Malformed {
        secret_id: secret_id.into(),
        reason: format!(
            "expected JSON of the form {expected_shape} ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ),
    })
}

/// A value cached for a TTL, loaded on demand.
pub struct Cached<T> {
    ttl: Duration,
    min_refresh_interval: Duration,
    entry: Mutex<Option<(Arc<T>, Instant)>>,
}

impl<T> Cached<T> {
    pub fn new(ttl: Duration, min_refresh_interval: Duration) -> Self {
        Cached {
            ttl,
            min_refresh_interval,
            entry: Mutex::new(None),
        }
    }

    /// The cached value while fresh, else a newly loaded one. Concurrent
    /// callers wait for one load rather than each loading.
    pub async fn get<F, Fut>(&self, load: F) -> Result<Arc<T>, SecretError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, SecretError>>,
    {
        let mut entry = self.entry.lock().await;
        if let Some((value, fetched)) = entry.as_ref()
            && fetched.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        store(&mut entry, load).await
    }

    /// Reloads before the TTL is up, unless the last load was less than
    /// `min_refresh_interval` ago; then returns `None` and loads nothing.
    pub async fn refresh_early<F, Fut>(&self, load: F) -> Result<Option<Arc<T>>, SecretError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, SecretError>>,
    {
        let mut entry = self.entry.lock().await;
        if let Some((_, fetched)) = entry.as_ref()
            && fetched.elapsed() < self.min_refresh_interval
        {
            return Ok(None);
        }
        store(&mut entry, load).await.map(Some)
    }

    /// Forgets the value, so the next `get` loads (after a credential was refused).
    pub async fn invalidate(&self) {
        *self.entry.lock().await = None;
    }
}

/// Loads a value into the (locked) entry; a failed load leaves it as it was.
async fn store<T, F, Fut>(
    entry: &mut Option<(Arc<T>, Instant)>,
    load: F,
) -> Result<Arc<T>, SecretError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, SecretError>>,
{
    let value = Arc::new(load().await?);
    *entry = Some((value.clone(), Instant::now()));
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn counting_loader(count: &AtomicUsize) -> Result<usize, SecretError> {
        Ok(count.fetch_add(1, Ordering::SeqCst) + 1)
    }

    #[tokio::test(start_paused = true)]
    async fn value_is_reused_within_the_ttl_and_reloaded_after() {
        let loads = AtomicUsize::new(0);
        let cache = Cached::new(Duration::from_secs(300), Duration::from_secs(30));
        assert_eq!(*cache.get(|| counting_loader(&loads)).await.unwrap(), 1);
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(*cache.get(|| counting_loader(&loads)).await.unwrap(), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(*cache.get(|| counting_loader(&loads)).await.unwrap(), 2);
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn early_refresh_happens_at_most_once_per_interval() {
        let loads = AtomicUsize::new(0);
        let cache = Cached::new(Duration::from_secs(300), Duration::from_secs(30));
        cache.get(|| counting_loader(&loads)).await.unwrap();
        assert!(
            cache
                .refresh_early(|| counting_loader(&loads))
                .await
                .unwrap()
                .is_none()
        );
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(
            *cache
                .refresh_early(|| counting_loader(&loads))
                .await
                .unwrap()
                .unwrap(),
            2
        );
        for _ in 0..100 {
            assert!(
                cache
                    .refresh_early(|| counting_loader(&loads))
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_load_is_not_cached() {
        let cache: Cached<u8> = Cached::new(Duration::from_secs(300), Duration::from_secs(30));
        let err = cache
            .get(|| async {
                Err(SecretError::Unavailable {
                    secret_id: "s".into(),
                    reason: "down".into(),
                })
            })
            .await;
        assert!(err.is_err());
        assert_eq!(*cache.get(|| async { Ok(7) }).await.unwrap(), 7);
    }

    #[test]
    fn malformed_json_secret_errors_never_quote_the_secret() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Token {
            #[serde(rename = "apiToken")]
            api_token: String,
        }
        for text in [
            "\"00abcSECRETtoken\"",
            "00abcSECRETtoken",
            "{\"apiToken\": [\"00abcSECRETtoken\"]}",
            "{\"other\": \"00abcSECRETtoken\"}",
        ] {
            let err = parse_secret_json::<Token>("okta", text, "{\"apiToken\": \"...\"}")
                .unwrap_err()
                .to_string();
            assert!(!err.contains("SECRET"), "leaked: {err}");
            assert!(
                err.starts_with("secret okta is malformed: expected JSON of the form"),
                "{err}"
            );
        }
    }
}
