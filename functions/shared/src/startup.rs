//! What every function does first, before its async runtime starts a thread.
//!
//! The TLS clients (the AWS SDK's and reqwest's) trust the system's root
//! certificates, which rustls-native-certs reads from the system's bundle
//! file *and* every file of its certificate directory: on Debian about 300
//! files, most of a function's init on a machine with a cold page cache.
//! The systems the functions run on (Lambda's Amazon Linux 2023, Debian and
//! Ubuntu, Alpine) keep the same roots in one bundle file, so when the
//! operator has set neither `SSL_CERT_FILE` nor `SSL_CERT_DIR`, the process
//! reads only that bundle. A setting the operator made always wins, and a
//! system without a known bundle keeps the default search.

use std::path::Path;

/// The system bundles, most likely first: Amazon Linux and RHEL (Lambda's
/// `provided.al2023`), Debian and Ubuntu, Alpine.
const BUNDLES: &[&str] = &[
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
];

/// The bundle to read, if the operator has not chosen: the first of
/// `bundles` that is a non-empty file.
pub fn ca_bundle_to_use(
    ssl_cert_file: Option<&str>,
    ssl_cert_dir: Option<&str>,
    bundles: &[&str],
) -> Option<String> {
    if ssl_cert_file.is_some() || ssl_cert_dir.is_some() {
        return None;
    }
    bundles
        .iter()
        .find(|path| std::fs::metadata(Path::new(path)).is_ok_and(|m| m.is_file() && m.len() > 0))
        .map(|path| path.to_string())
}

/// A multi-thread Tokio runtime for the function's `main`, made after the
/// process-wide settings above.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let chosen = ca_bundle_to_use(
        std::env::var("SSL_CERT_FILE").ok().as_deref(),
        std::env::var("SSL_CERT_DIR").ok().as_deref(),
        BUNDLES,
    );
    if let Some(bundle) = chosen {
        // SAFETY: no other thread exists yet (the runtime is built below), so
        // nothing can read the environment while it changes.
        unsafe { std::env::set_var("SSL_CERT_FILE", bundle) };
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operators_setting_wins() {
        assert_eq!(ca_bundle_to_use(Some("/mine.pem"), None, BUNDLES), None);
        assert_eq!(ca_bundle_to_use(None, Some("/my/certs"), BUNDLES), None);
    }

    #[test]
    fn the_first_non_empty_bundle_is_chosen_and_none_without_one() {
        let dir = std::env::temp_dir().join(format!("startup-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.crt");
        let full = dir.join("full.crt");
        std::fs::write(&empty, "").unwrap();
        std::fs::write(&full, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let (empty, full) = (empty.to_str().unwrap(), full.to_str().unwrap());
        let missing = "/no/such/bundle.crt";
        assert_eq!(
            ca_bundle_to_use(None, None, &[missing, empty, full]).as_deref(),
            Some(full)
        );
        assert_eq!(ca_bundle_to_use(None, None, &[missing, empty]), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
