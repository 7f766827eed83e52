//! Typed settings read once from the environment.
//!
//! Each function's `Config` is built from a lookup function rather than from
//! the process environment directly, so tests can build one from a map. Every
//! error names the setting, so a bad deployment fails at start-up with a
//! message that says what to fix.

use std::str::FromStr;
use std::time::Duration;

/// Where settings come from: `std::env::var` in production, a map in tests.
pub trait Lookup {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Settings as name–value pairs, the way tests, benchmarks and the local
/// tools write them: `Config::from_lookup(&Pairs(&[("QUEUE_URL", url)]))`.
/// The last pair of a name wins, so a default can be overridden by appending.
pub struct Pairs<'a, K, V>(pub &'a [(K, V)]);

impl<K: AsRef<str>, V: AsRef<str>> Lookup for Pairs<'_, K, V> {
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_ref().to_string())
    }
}

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is required but not set")]
    Missing { name: &'static str },
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl ConfigError {
    pub fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            name,
            reason: reason.into(),
        }
    }
}

/// A set, non-blank value (trimmed); blank counts as unset.
pub fn optional(env: &impl Lookup, name: &'static str) -> Option<String> {
    env.get(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

pub fn required(env: &impl Lookup, name: &'static str) -> Result<String, ConfigError> {
    optional(env, name).ok_or(ConfigError::Missing { name })
}

/// Parses the value with `FromStr`, or returns `default` when unset.
pub fn parse_or<T>(env: &impl Lookup, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match optional(env, name) {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|e| ConfigError::invalid(name, format!("{raw:?}: {e}"))),
    }
}

/// A whole number within `range`, or `default` when unset.
pub fn number_in<T>(
    env: &impl Lookup,
    name: &'static str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
    T::Err: std::fmt::Display,
{
    let value = parse_or(env, name, default)?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::invalid(
            name,
            format!("{value} is outside {}..={}", range.start(), range.end()),
        ))
    }
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, any case), or `default` when unset.
pub fn flag(env: &impl Lookup, name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match optional(env, name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if matches!(v.as_str(), "true" | "1" | "yes") => Ok(true),
        Some(v) if matches!(v.as_str(), "false" | "0" | "no") => Ok(false),
        Some(v) => Err(ConfigError::invalid(
            name,
            format!("{v:?} is not true or false"),
        )),
    }
}

/// Seconds as a duration, at least one second, or `default` when unset.
pub fn seconds(
    env: &impl Lookup,
    name: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let secs = number_in(env, name, default.as_secs(), 1..=86_400)?;
    Ok(Duration::from_secs(secs))
}

/// A comma-separated list; blank entries are dropped.
pub fn list(env: &impl Lookup, name: &'static str) -> Vec<String> {
    optional(env, name)
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> Pairs<'a, &'a str, &'a str> {
        Pairs(pairs)
    }

    #[test]
    fn the_last_pair_of_a_name_wins() {
        let e = env(&[("A", "1"), ("B", "2"), ("A", "3")]);
        assert_eq!(e.get("A").as_deref(), Some("3"));
        assert_eq!(e.get("B").as_deref(), Some("2"));
        assert_eq!(e.get("C"), None);
    }

    #[test]
    fn missing_and_blank_required_settings_name_the_setting() {
        let e = env(&[("BLANK", "  ")]);
        assert_eq!(
            required(&e, "QUEUE_URL").unwrap_err().to_string(),
            "QUEUE_URL is required but not set"
        );
        assert_eq!(
            required(&e, "BLANK"),
            Err(ConfigError::Missing { name: "BLANK" })
        );
    }

    #[test]
    fn numbers_are_parsed_and_bounded() {
        let e = env(&[("N", "7"), ("BIG", "5000"), ("BAD", "seven")]);
        assert_eq!(number_in(&e, "N", 1u32, 1..=10), Ok(7));
        assert_eq!(number_in(&e, "UNSET", 3u32, 1..=10), Ok(3));
        let err = number_in(&e, "BIG", 1u32, 1..=10).unwrap_err().to_string();
        assert!(
            err.starts_with("BIG is invalid: 5000 is outside 1..=10"),
            "{err}"
        );
        let err = number_in(&e, "BAD", 1u32, 1..=10).unwrap_err().to_string();
        assert!(err.starts_with("BAD is invalid: \"seven\""), "{err}");
    }

    #[test]
    fn flags_accept_common_spellings_and_reject_others() {
        let e = env(&[("A", "TRUE"), ("B", "0"), ("C", "maybe")]);
        assert_eq!(flag(&e, "A", false), Ok(true));
        assert_eq!(flag(&e, "B", true), Ok(false));
        assert_eq!(flag(&e, "UNSET", true), Ok(true));
        assert!(flag(&e, "C", true).is_err());
    }

    #[test]
    fn lists_drop_blank_entries() {
        let e = env(&[("L", " a@x.com, ,B ,")]);
        assert_eq!(list(&e, "L"), vec!["a@x.com", "B"]);
        assert!(list(&e, "UNSET").is_empty());
    }
}
