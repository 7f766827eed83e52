//! The Okta secret (`OKTA_SECRET_ID`): an SSWS API token, or an OAuth 2.0
//! service app (client id and private key, private_key_jwt).
//!
//! | SecretString | meaning |
//! |---|---|
//! | `{"apiToken": "..."}` | SSWS |
//! | `{"clientId": "0oa...", "privateKey": "<PEM PKCS#8>", "keyId": "..."}` | OAuth service app (`keyId` optional) |
//! | the same plus `"scopes": "..."` | OAuth, with these scopes instead of the default |
//!
//! Every error names the secret and what is wrong with it, never its text.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use shared::secrets::SecretError;

use super::jwt::SigningKey;

/// The shapes, for error messages.
pub const SECRET_SHAPES: &str = r#"{"apiToken": "..."} or {"clientId": "0oa...", "privateKey": "-----BEGIN PRIVATE KEY-----...", "keyId": "..." (optional), "scopes": "..." (optional)}"#;

/// Scopes an app asks for unless its secret names others.
pub const DEFAULT_SCOPES: &str = "okta.users.read okta.users.manage okta.roles.read";
/// Added to the default when Universal Logout is on.
pub const UNIVERSAL_LOGOUT_SCOPE: &str = "okta.universalLogout.manage";
/// Added when `CHECK_ACTIONS` quarantines: read the group, change its members.
pub const GROUPS_SCOPE: &str = "okta.groups.manage";

/// How the dispatcher signs in to Okta.
#[derive(Debug)]
pub enum Credential {
    /// `Authorization: SSWS <token>`.
    ApiToken(SecretString),
    OAuthApp(Box<OAuthApp>),
}

/// An API Services app that signs its own client assertions.
#[derive(Debug)]
pub struct OAuthApp {
    pub client_id: String,
    pub key: SigningKey,
    pub key_id: Option<String>,
    /// Space separated, as the token request sends them.
    pub scopes: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(rename = "apiToken")]
    api_token: Option<SecretString>,
    #[serde(rename = "clientId")]
    client_id: Option<String>,
    #[serde(rename = "privateKey")]
    private_key: Option<SecretString>,
    #[serde(rename = "keyId")]
    key_id: Option<String>,
    scopes: Option<String>,
}

impl Credential {
    /// Reads the secret's text. `default_scopes` is what an app without a
    /// `scopes` field asks for.
    pub fn parse(
        secret_id: &str,
        text: &str,
        default_scopes: &str,
    ) -> Result<Credential, SecretError> {
        let malformed = |reason: String| SecretError::Malformed {
            secret_id: secret_id.into(),
            reason,
        };
        let raw: Raw = serde_json::from_str(text).map_err(|e| {
            // serde's messages quote values; keep only the field name when
            // it is an unknown field, else only the position.
            let what = e.to_string();
            let field = what
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next())
                .filter(|f| {
                    f.len() <= 40 && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                });
            match field {
                Some(field) => malformed(format!(
                    "it has an unknown field `{field}`; expected {SECRET_SHAPES}"
                )),
                None => malformed(format!(
                    "expected JSON of the form {SECRET_SHAPES} ({:?} error at line {} column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                )),
            }
        })?;
        let blank = |v: &Option<SecretString>| {
            v.as_ref()
                .is_none_or(|s| s.expose_secret().trim().is_empty())
        };
        match raw {
            Raw {
                api_token: Some(_),
                client_id: Some(_),
                ..
            } => Err(malformed(
                "it has both apiToken and clientId; keep one: the app's clientId and privateKey (recommended) or an apiToken".into(),
            )),
            Raw {
                api_token: Some(token),
                private_key: None,
                key_id: None,
                scopes: None,
                ..
            } => {
                if blank(&Some(token.clone())) {
                    return Err(malformed("its apiToken is empty".into()));
                }
                Ok(Credential::ApiToken(token))
            }
            Raw { api_token: Some(_), .. } => Err(malformed(
                "privateKey, keyId and scopes belong to an OAuth app (clientId), not to an apiToken".into(),
            )),
            Raw {
                client_id: Some(client_id),
                private_key,
                key_id,
                scopes,
                ..
            } => {
                let client_id = client_id.trim().to_string();
                if client_id.is_empty() || client_id.chars().any(|c| c.is_control() || c.is_whitespace()) {
                    return Err(malformed("its clientId is empty or has spaces in it".into()));
                }
                if blank(&private_key) {
                    return Err(malformed(format!(
                        "the OAuth app {client_id} has no privateKey (a PEM PKCS#8 RSA 2048+ or EC P-256 key)"
                    )));
                }
                let key = SigningKey::from_pem(private_key.as_ref().expect("checked").expose_secret())
                    .map_err(|e| malformed(format!("the privateKey of the OAuth app {client_id} is unusable: {e}")))?;
                let key_id = key_id.map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
                let scopes = match scopes {
                    Some(s) if !s.trim().is_empty() => s.split_whitespace().collect::<Vec<_>>().join(" "),
                    Some(_) => return Err(malformed("its scopes field is empty; leave it out to use the default".into())),
                    None => default_scopes.to_string(),
                };
                Ok(Credential::OAuthApp(Box::new(OAuthApp {
                    client_id,
                    key,
                    key_id,
                    scopes,
                })))
            }
            Raw { .. } => Err(malformed(format!("expected JSON of the form {SECRET_SHAPES}"))),
        }
    }

    /// What the logs and reports call this credential (no secret in it).
    pub fn describe(&self) -> String {
        match self {
            Credential::ApiToken(_) => "the API token".into(),
            Credential::OAuthApp(app) => format!("the Okta app {}", app.client_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_2048: &str = include_str!("../../../../tests/fixtures/keys/rsa-2048.pem");
    const EC_P256: &str = include_str!("../../../../tests/fixtures/keys/ec-p256.pem");
    const RSA_1024: &str = include_str!("../../../../tests/fixtures/keys/rsa-1024.pem");

    fn parse(value: serde_json::Value) -> Result<Credential, String> {
        Credential::parse("acme/okta", &value.to_string(), DEFAULT_SCOPES)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_api_token_is_ssws() {
        let c = parse(serde_json::json!({"apiToken": "00abc"})).unwrap();
        assert!(matches!(&c, Credential::ApiToken(t) if t.expose_secret() == "00abc"));
        assert_eq!(c.describe(), "the API token");
    }

    #[test]
    fn an_app_with_either_key_type_is_oauth() {
        for (pem, alg) in [(RSA_2048, "RS256"), (EC_P256, "ES256")] {
            let c =
                parse(serde_json::json!({"clientId": "0oa1", "privateKey": pem, "keyId": "k1"}))
                    .unwrap();
            let Credential::OAuthApp(app) = c else {
                panic!("not an app")
            };
            assert_eq!(app.client_id, "0oa1");
            assert_eq!(app.key.alg(), alg);
            assert_eq!(app.key_id.as_deref(), Some("k1"));
            assert_eq!(app.scopes, DEFAULT_SCOPES);
        }
        let c = parse(serde_json::json!({"clientId": "0oa1", "privateKey": EC_P256})).unwrap();
        assert!(matches!(c, Credential::OAuthApp(ref a) if a.key_id.is_none()));
        assert_eq!(c.describe(), "the Okta app 0oa1");
    }

    #[test]
    fn scopes_can_be_overridden() {
        let c = parse(serde_json::json!({"clientId": "0oa1", "privateKey": EC_P256, "scopes": " okta.users.manage   okta.roles.read "})).unwrap();
        let Credential::OAuthApp(app) = c else {
            panic!("not an app")
        };
        assert_eq!(app.scopes, "okta.users.manage okta.roles.read");
    }

    #[test]
    fn every_other_shape_is_named_without_its_contents() {
        let secret_text = "sup3r-s3cret-value";
        let cases = [
            (serde_json::json!({}), "expected JSON of the form"),
            (serde_json::json!({"apiToken": ""}), "apiToken is empty"),
            (
                serde_json::json!({"apiToken": secret_text, "clientId": "0oa1"}),
                "both apiToken and clientId",
            ),
            (
                serde_json::json!({"apiToken": secret_text, "privateKey": secret_text}),
                "belong to an OAuth app",
            ),
            (serde_json::json!({"clientId": "0oa1"}), "has no privateKey"),
            (
                serde_json::json!({"clientId": "", "privateKey": EC_P256}),
                "clientId is empty",
            ),
            (
                serde_json::json!({"clientId": "0oa1", "privateKey": secret_text}),
                "privateKey of the OAuth app 0oa1 is unusable",
            ),
            (
                serde_json::json!({"clientId": "0oa1", "privateKey": RSA_1024}),
                "shorter than 2048 bits",
            ),
            (
                serde_json::json!({"clientId": "0oa1", "privateKey": EC_P256, "scopes": " "}),
                "scopes field is empty",
            ),
            (
                serde_json::json!({"apiToken": secret_text, "token": secret_text}),
                "unknown field `token`",
            ),
            (
                serde_json::json!({"apiToken": 12}),
                "expected JSON of the form",
            ),
            (serde_json::json!(secret_text), "expected JSON of the form"),
        ];
        for (value, expected) in cases {
            let err = parse(value.clone()).unwrap_err();
            assert!(err.starts_with("secret acme/okta is malformed: "), "{err}");
            assert!(err.contains(expected), "{value}: {err}");
            assert!(!err.contains(secret_text), "leaked: {err}");
            assert!(!err.contains("MII"), "key material leaked: {err}");
        }
        let err = Credential::parse("acme/okta", "{\"apiToken\": \"sup3r", DEFAULT_SCOPES)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("sup3r"), "{err}");
    }
}
