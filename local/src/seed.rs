//! The demo Okta org that `make local` starts with.
//!
//! The files in `events/` and the README name these users, each picked to show
//! one outcome of the dispatcher: suspended, already suspended, protected admin,
//! found by email rather than login, ambiguous email, deprovisioned, a login
//! without a domain, and (by its absence) `ghost@example.com`, not found;
//! and a quarantine group (plus an app group that cannot be one).
//!
//! It also has the demo OAuth 2.0 service app ([`register_demo_app`]): a
//! fresh EC P-256 client key, DPoP required, the dispatcher's scopes.

use crate::aws_setup::okta_oauth_secret_json;
use crate::fake_okta::{DISPATCHER_SCOPES, DpopPolicy, FakeOkta, GroupType, OAuthApp, SeedUser};
use crate::okta_keys;

/// The API token the demo fake Okta accepts (`Authorization: SSWS local-okta-token`).
pub const DEMO_OKTA_TOKEN: &str = "local-okta-token";

/// The `kid` of the demo OAuth app's client key (the secret's `keyId`).
pub const DEMO_OAUTH_KEY_ID: &str = "local-demo";

/// The demo users, in a fixed order.
pub fn demo_users() -> Vec<SeedUser> {
    vec![
        SeedUser::new("ana.lima@example.com", "ana.lima@example.com", "ACTIVE"),
        SeedUser::new("li.wei@example.com", "li.wei@example.com", "ACTIVE"),
        // Already suspended: the dispatcher should report it, not fail.
        SeedUser::new(
            "omar.haddad@example.com",
            "omar.haddad@example.com",
            "SUSPENDED",
        ),
        // Protected when PROTECT_ADMINS is on.
        SeedUser::new("root.admin@example.com", "root.admin@example.com", "ACTIVE")
            .with_admin_role("SUPER_ADMIN"),
        // Email differs from login: events list the email.
        SeedUser::new(
            "jsmith@corp.example.com",
            "john.smith@example.com",
            "ACTIVE",
        )
        .with_name("John", "Smith"),
        // Two users share one email: a lookup by it is ambiguous.
        SeedUser::new("ops1@example.com", "shared-ops@example.com", "ACTIVE")
            .with_name("Ops", "One"),
        SeedUser::new("ops2@example.com", "shared-ops@example.com", "ACTIVE")
            .with_name("Ops", "Two"),
        SeedUser::new(
            "former.employee@example.com",
            "former.employee@example.com",
            "DEPROVISIONED",
        ),
        // A service-account style login without a domain.
        SeedUser::new("svc.backup", "svc.backup@example.com", "ACTIVE").with_name("Svc", "Backup"),
    ]
}

/// The demo org's quarantine group (an Okta group), for `QUARANTINE_GROUP_ID`.
pub const DEMO_QUARANTINE_GROUP_ID: &str = "00gdemoquarantine001";
/// A group imported from a directory (`APP_GROUP`): Okta refuses to change
/// its members, so it cannot be the quarantine group.
pub const DEMO_APP_GROUP_ID: &str = "00gdemoappgroup00001";

/// Adds [`demo_users`] and the demo groups to `okta`.
pub fn seed_demo_org(okta: &FakeOkta) {
    for user in demo_users() {
        okta.add_user(user);
    }
    okta.add_group_with_id(
        DEMO_QUARANTINE_GROUP_ID,
        "oort-quarantine",
        GroupType::OktaGroup,
    );
    okta.add_group_with_id(DEMO_APP_GROUP_ID, "AD: Engineering", GroupType::AppGroup);
}

/// The demo OAuth 2.0 service app as the dispatcher sees it: what goes into
/// the Okta secret. `Debug` leaves the private key out.
#[derive(Clone)]
pub struct DemoOAuthApp {
    pub client_id: String,
    pub key_id: String,
    private_key_pem: String,
}

impl DemoOAuthApp {
    /// The client key, PKCS#8 PEM.
    pub fn private_key_pem(&self) -> &str {
        &self.private_key_pem
    }

    /// The Okta secret: `{"clientId": ..., "privateKey": "<PEM>", "keyId": ...}`.
    pub fn secret_json(&self) -> String {
        okta_oauth_secret_json(&self.client_id, &self.private_key_pem, &self.key_id)
    }
}

impl std::fmt::Debug for DemoOAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoOAuthApp")
            .field("client_id", &self.client_id)
            .field("key_id", &self.key_id)
            .field("private_key_pem", &"[redacted]")
            .finish()
    }
}

/// Generates an EC P-256 client key (`kid` [`DEMO_OAUTH_KEY_ID`]) and
/// registers an app with it in `okta`: DPoP required (the Admin Console
/// default) and [`DISPATCHER_SCOPES`] granted.
pub fn register_demo_app(okta: &FakeOkta) -> anyhow::Result<DemoOAuthApp> {
    let private_key_pem = okta_keys::generate_ec_p256_pkcs8_pem();
    let jwk = okta_keys::public_jwk_from_pkcs8_pem(&private_key_pem, Some(DEMO_OAUTH_KEY_ID))?;
    let client_id = OAuthApp::new_client_id();
    okta.register_app(
        OAuthApp::new(client_id.clone(), jwk)
            .with_scopes(DISPATCHER_SCOPES.iter().copied())
            .with_dpop(DpopPolicy::Required),
    );
    Ok(DemoOAuthApp {
        client_id,
        key_id: DEMO_OAUTH_KEY_ID.to_string(),
        private_key_pem,
    })
}
