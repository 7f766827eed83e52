//! The demo Okta org that `make local` starts with.
//!
//! The files in `events/` and the README name these users, each picked to show
//! one outcome of the dispatcher: suspended, already suspended, protected admin,
//! found by email rather than login, ambiguous email, deprovisioned, a login
//! without a domain, and (by its absence) `ghost@example.com`, not found.

use crate::fake_okta::{FakeOkta, SeedUser};

/// The API token the demo fake Okta accepts (`Authorization: SSWS local-okta-token`).
pub const DEMO_OKTA_TOKEN: &str = "local-okta-token";

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

/// Adds [`demo_users`] to `okta`.
pub fn seed_demo_org(okta: &FakeOkta) {
    for user in demo_users() {
        okta.add_user(user);
    }
}
