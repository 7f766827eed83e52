//! Ingest's settings, from the environment.

use std::time::Duration;

use lambda_http::http::HeaderName;
use shared::config::{self, ConfigError, Lookup};

/// The header Oort's "API Key" auth sends by default (the admin may choose another).
pub const DEFAULT_API_KEY_HEADER: &str = "x-api-client-token";
/// The largest body accepted: SQS's 1 MiB message limit less room for the
/// message attributes, so that every accepted body fits the queue.
pub const MAX_BODY_BYTES: usize = 1024 * 1024 - 1024;
/// SQS's message size limit (since 2025), and the template's queues'.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_576;

#[derive(Debug, Clone)]
pub struct Config {
    /// `QUEUE_URL`: the FIFO queue events go to.
    pub queue_url: String,
    /// `API_KEY_SECRET_ID`: the secret whose SecretString is the API key.
    pub api_key_secret_id: String,
    /// `API_KEY_HEADER`: where the key travels (lower-cased, as function URLs deliver headers).
    pub api_key_header: HeaderName,
    /// `MAX_MESSAGE_BYTES`: the largest message the queue accepts (its `MaximumMessageSize`).
    pub max_message_bytes: usize,
    /// `SECRET_TTL_SECONDS`: how long the key is cached.
    pub secret_ttl: Duration,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(&config::process_env)
    }

    pub fn from_lookup(env: &impl Lookup) -> Result<Config, ConfigError> {
        let header = config::optional(env, "API_KEY_HEADER")
            .unwrap_or_else(|| DEFAULT_API_KEY_HEADER.to_string())
            .to_ascii_lowercase();
        let api_key_header = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
            ConfigError::invalid(
                "API_KEY_HEADER",
                format!("{header:?} is not a valid HTTP header name"),
            )
        })?;
        Ok(Config {
            queue_url: config::required(env, "QUEUE_URL")?,
            api_key_secret_id: config::required(env, "API_KEY_SECRET_ID")?,
            api_key_header,
            max_message_bytes: config::number_in(
                env,
                "MAX_MESSAGE_BYTES",
                DEFAULT_MAX_MESSAGE_BYTES,
                1024..=1_048_576,
            )?,
            secret_ttl: config::seconds(env, "SECRET_TTL_SECONDS", Duration::from_secs(300))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::config::Pairs;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(&Pairs(pairs))
    }

    #[test]
    fn defaults_apply_and_header_is_lower_cased() {
        let c = from(&[("QUEUE_URL", "q"), ("API_KEY_SECRET_ID", "s")]).unwrap();
        assert_eq!(c.api_key_header.as_str(), "x-api-client-token");
        assert_eq!(c.max_message_bytes, 1_048_576);
        assert_eq!(c.secret_ttl, Duration::from_secs(300));
        let c = from(&[
            ("QUEUE_URL", "q"),
            ("API_KEY_SECRET_ID", "s"),
            ("API_KEY_HEADER", "X-Oort-Key"),
        ])
        .unwrap();
        assert_eq!(c.api_key_header.as_str(), "x-oort-key");
    }

    #[test]
    fn missing_or_malformed_settings_name_the_setting() {
        let err = from(&[("API_KEY_SECRET_ID", "s")]).unwrap_err().to_string();
        assert_eq!(err, "QUEUE_URL is required but not set");
        let err = from(&[("QUEUE_URL", "q")]).unwrap_err().to_string();
        assert_eq!(err, "API_KEY_SECRET_ID is required but not set");
        let err = from(&[
            ("QUEUE_URL", "q"),
            ("API_KEY_SECRET_ID", "s"),
            ("API_KEY_HEADER", "bad header"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("API_KEY_HEADER is invalid"), "{err}");
        let err = from(&[
            ("QUEUE_URL", "q"),
            ("API_KEY_SECRET_ID", "s"),
            ("MAX_MESSAGE_BYTES", "5000000"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("MAX_MESSAGE_BYTES is invalid"), "{err}");
    }
}
