//! How to start the pipeline: [`PipelineOptions`], where Okta and Slack come
//! from ([`Services`]: the stand-ins, or a real org and webhook named in the
//! environment), how the dispatcher signs in to the fake Okta ([`OktaAuth`]),
//! who may approve from Slack, and where the function binaries are.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;

use super::{DEMO_APPROVER, DISPATCHER, INGEST};

/// Where Okta and Slack come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Services {
    /// Local stand-ins, always (tests).
    Fakes,
    /// A real Okta org when `OKTA_ORG_URL` and `OKTA_API_TOKEN` are set, a
    /// real Slack webhook when `SLACK_WEBHOOK_URL` is; stand-ins otherwise.
    FromEnvironment,
}

/// How the dispatcher authenticates to the fake Okta (a real org: always the
/// API token in `OKTA_API_TOKEN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OktaAuth {
    /// An SSWS API token; the secret is `{"apiToken": "..."}`.
    ApiToken,
    /// An OAuth 2.0 service app ([`seed::register_demo_app`](crate::seed::register_demo_app): EC P-256 key,
    /// DPoP required, the dispatcher's scopes); the secret is
    /// `{"clientId": "0oa...", "privateKey": "<PEM>", "keyId": "local-demo"}`.
    OAuth,
}

impl OktaAuth {
    /// The variable `make local` reads: `oauth` (the default) or `ssws`.
    pub const ENV: &'static str = "LOCAL_OKTA_AUTH";

    /// Reads [`OktaAuth::ENV`]: unset or empty is [`OktaAuth::OAuth`].
    pub fn from_env() -> anyhow::Result<OktaAuth> {
        Self::parse(std::env::var(Self::ENV).ok().as_deref())
    }

    /// `oauth` or `ssws` (any case); `None` or blank is `oauth`.
    pub fn parse(value: Option<&str>) -> anyhow::Result<OktaAuth> {
        match value
            .map(str::trim)
            .unwrap_or("")
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "oauth" => Ok(OktaAuth::OAuth),
            "ssws" => Ok(OktaAuth::ApiToken),
            other => bail!("{} must be oauth or ssws, not {other:?}", Self::ENV),
        }
    }
}

/// How to start the pipeline. `new` gives settings fit for tests and the demo.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// Where `ingest` and `dispatcher` are (`target/<profile>`).
    pub bin_dir: PathBuf,
    /// Queue and secret names start with this.
    pub prefix: String,
    /// The webhook API key; random when `None`.
    pub api_key: Option<String>,
    pub max_receive_count: u32,
    pub visibility_timeout: Duration,
    pub ingest_instances: usize,
    pub dispatcher_instances: usize,
    pub ingest_timeout: Duration,
    pub dispatcher_timeout: Duration,
    /// Event source pollers (batches in flight at once).
    pub poller_concurrency: usize,
    pub batch_size: i32,
    /// Extra environment for ingest (overrides the defaults).
    pub ingest_env: Vec<(String, String)>,
    /// Extra environment for the dispatcher (overrides the defaults), e.g.
    /// `DRY_RUN`, `MAX_USERS_PER_EVENT`, `PROTECT_ADMINS`.
    pub dispatcher_env: Vec<(String, String)>,
    pub services: Services,
    /// Seed the fake Okta with [`seed::demo_users`](crate::seed::demo_users).
    pub seed_demo_org: bool,
    /// The dispatcher's credentials for the fake Okta. `new` gives
    /// [`OktaAuth::ApiToken`]; `make local` sets it from `LOCAL_OKTA_AUTH`
    /// (default OAuth).
    pub okta_auth: OktaAuth,
    /// The function URL's address (port 0: a free one).
    pub function_url_addr: SocketAddr,
    /// Execution environments of the actions function (the Slack app's Request URL).
    pub actions_instances: usize,
    /// The actions function's timeout (the template's: 5 s).
    pub actions_timeout: Duration,
    /// Extra environment for the actions function (overrides the defaults).
    pub actions_env: Vec<(String, String)>,
    /// The actions function URL's address (port 0: a free one).
    pub actions_url_addr: SocketAddr,
    /// Slack user ids allowed to approve and undo: `SLACK_APPROVERS` of the
    /// actions function, and of the dispatcher with [`approvals`](Self::approvals).
    /// `new` gives [`DEMO_APPROVER`].
    pub approvers: Vec<String>,
    /// `APPROVAL_TTL_HOURS` (both functions): how long a held event can be approved.
    pub approval_ttl_hours: u64,
    /// The Slack app's signing secret (the signing-secret secret, and what
    /// the fake Slack signs clicks with); a fresh random one when `None`.
    pub signing_secret: Option<String>,
    /// Gives the dispatcher `SLACK_APPROVERS` and `APPROVAL_TTL_HOURS` (it
    /// always has `STORE_TABLE`, as the template configures it), so that its
    /// summaries carry the Approve, Dismiss and Unsuspend buttons and it
    /// stores what it holds. Off in `new` (the dispatcher works as without approvers);
    /// `make local` turns it on.
    pub approvals: bool,
    /// Print every function log line on stderr.
    pub echo_logs: bool,
    /// How long the functions may take to initialise.
    pub ready_timeout: Duration,
}

impl PipelineOptions {
    pub fn new(bin_dir: impl Into<PathBuf>) -> Self {
        PipelineOptions {
            bin_dir: bin_dir.into(),
            prefix: "oort-local".to_string(),
            api_key: None,
            max_receive_count: 3,
            visibility_timeout: Duration::from_secs(10),
            ingest_instances: 2,
            dispatcher_instances: 2,
            ingest_timeout: Duration::from_secs(10),
            dispatcher_timeout: Duration::from_secs(10),
            poller_concurrency: 2,
            batch_size: 10,
            ingest_env: Vec::new(),
            dispatcher_env: Vec::new(),
            services: Services::Fakes,
            seed_demo_org: true,
            okta_auth: OktaAuth::ApiToken,
            function_url_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            actions_instances: 2,
            actions_timeout: Duration::from_secs(5),
            actions_env: Vec::new(),
            actions_url_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            approvers: vec![DEMO_APPROVER.to_string()],
            approval_ttl_hours: shared::store::DEFAULT_APPROVAL_TTL_HOURS,
            signing_secret: None,
            approvals: false,
            echo_logs: false,
            ready_timeout: Duration::from_secs(60),
        }
    }
}

/// The directory holding the function binaries: `LAMBDA_BIN_DIR`, else the
/// `target/<profile>` this executable runs from (tests run from
/// `target/<profile>/deps`).
pub fn lambda_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LAMBDA_BIN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir
        .file_name()
        .is_some_and(|n| n == "deps" || n == "examples")
    {
        dir.pop();
    }
    dir
}

/// The binary of the function `name` (`ingest`, `dispatcher`, `actions`) in
/// `dir`, or an error that says how to build it.
pub fn function_binary(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let binary = dir.join(name);
    if !binary.is_file() {
        bail!(
            "{} is missing: run `cargo build --bins` first (make test does)",
            binary.display()
        );
    }
    Ok(binary)
}

/// The ingest and dispatcher binaries in `dir`, or an error that says how to
/// build them. (The actions binary: [`function_binary`] with [`ACTIONS`](super::ACTIONS).)
pub fn function_binaries(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    Ok((
        function_binary(dir, INGEST)?,
        function_binary(dir, DISPATCHER)?,
    ))
}

/// `SLACK_APPROVERS`: the approvers, comma-separated.
pub(super) fn approvers_setting(approvers: &[String]) -> String {
    approvers.join(",")
}

/// A real Okta or Slack from the environment.
#[derive(Clone, Debug)]
pub(super) struct RealServices {
    /// The org URL and API token.
    pub(super) okta: Option<(String, String)>,
    pub(super) slack_webhook: Option<String>,
}

impl RealServices {
    pub(super) fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let okta = match (var("OKTA_ORG_URL"), var("OKTA_API_TOKEN")) {
            (Some(url), Some(token)) => Some((url.trim_end_matches('/').to_string(), token)),
            _ => None,
        };
        RealServices {
            okta,
            slack_webhook: var("SLACK_WEBHOOK_URL"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::ACTIONS;

    #[test]
    fn local_okta_auth_defaults_to_oauth() {
        assert_eq!(OktaAuth::parse(None).unwrap(), OktaAuth::OAuth);
        assert_eq!(OktaAuth::parse(Some(" ")).unwrap(), OktaAuth::OAuth);
        assert_eq!(OktaAuth::parse(Some("OAuth")).unwrap(), OktaAuth::OAuth);
        assert_eq!(OktaAuth::parse(Some("ssws")).unwrap(), OktaAuth::ApiToken);
        let err = OktaAuth::parse(Some("basic")).unwrap_err().to_string();
        assert!(
            err.contains("LOCAL_OKTA_AUTH must be oauth or ssws"),
            "{err}"
        );
    }

    #[test]
    fn missing_binaries_say_how_to_build_them() {
        let err = function_binaries(Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("run `cargo build --bins` first (make test does)"),
            "{err}"
        );
        let err = function_binary(Path::new("/nonexistent"), ACTIONS)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/nonexistent/actions is missing: run `cargo build --bins` first"),
            "{err}"
        );
    }

    #[test]
    fn the_binaries_are_found_next_to_the_tests() {
        // `cargo build --bins` puts every function binary in target/<profile>,
        // where `lambda_bin_dir` looks from a test executable.
        let dir = lambda_bin_dir();
        assert!(
            !dir.ends_with("deps"),
            "{} is the binaries' directory, not deps/",
            dir.display()
        );
    }

    #[test]
    fn approvers_are_one_comma_separated_setting() {
        let options = PipelineOptions::new("target/debug");
        assert_eq!(options.approvers, [DEMO_APPROVER]);
        assert!(
            !options.approvals,
            "the dispatcher gets no buttons unless asked"
        );
        assert_eq!(options.approval_ttl_hours, 72);
        assert_eq!(
            approvers_setting(&["U0APPROVER".into(), "U0SECOND".into()]),
            "U0APPROVER,U0SECOND"
        );
    }
}
