//! The demo's third part (`make local`, after the approvals): one check per
//! `CHECK_ACTIONS` action, against the local Okta's quarantine group.
//!
//! With the local Okta, the dispatcher runs with [`DEMO_CHECK_ACTIONS`]: the
//! samples' checks keep `*=suspend` (the README's story is unchanged), and
//! four demo checks each get one action. For each, an event naming one new
//! user goes through the function URL and the user's state in Okta is
//! printed: `sessions` clears sessions and leaves them ACTIVE, `quarantine`
//! adds them to the quarantine group, `notify` changes nothing, and
//! `approve:quarantine` holds the event until the approver clicks Approve,
//! then quarantines; the approver then clicks Release.

use std::time::Duration;

use anyhow::{Context as _, bail};
use local_pipeline::fake_okta::{FakeOkta, SeedUser};
use local_pipeline::fake_slack::{Click, SlackEndpoint, find_button};
use local_pipeline::pipeline::{DEMO_APPROVER, Pipeline, PipelineOptions};
use local_pipeline::seed::DEMO_QUARANTINE_GROUP_ID;
use shared::testing::OortBody;

use crate::approvals::{click, send_event, settle};
use crate::print::{PrintGate, Printer};

/// The demo's policy: the samples' checks suspend, as before.
pub const DEMO_CHECK_ACTIONS: &str = "demo-sessions=sessions,demo-quarantine=quarantine,demo-notify=notify,demo-approve=approve:quarantine,*=suspend";

/// `(check id, the action, the user the event names)`.
const CASES: [(&str, &str, &str); 4] = [
    ("demo-sessions", "sessions", "dana.sessions@example.com"),
    (
        "demo-quarantine",
        "quarantine",
        "quinn.quarantine@example.com",
    ),
    ("demo-notify", "notify", "nora.notify@example.com"),
    (
        "demo-approve",
        "approve:quarantine",
        "april.approve@example.com",
    ),
];

/// Whether `make local` talks to a real Okta org (then the demo policy,
/// which needs the local quarantine group, is not set).
fn real_okta() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    set("OKTA_ORG_URL") && set("OKTA_API_TOKEN")
}

/// Gives the dispatcher [`DEMO_CHECK_ACTIONS`] and the local quarantine
/// group, unless the shell set either or Okta is a real org.
pub fn configure(options: &mut PipelineOptions) {
    let set_by_shell = options
        .dispatcher_env
        .iter()
        .any(|(k, _)| k == "CHECK_ACTIONS" || k == "QUARANTINE_GROUP_ID");
    if set_by_shell || real_okta() {
        return;
    }
    options.dispatcher_env.extend([
        ("CHECK_ACTIONS".to_string(), DEMO_CHECK_ACTIONS.to_string()),
        (
            "QUARANTINE_GROUP_ID".to_string(),
            DEMO_QUARANTINE_GROUP_ID.to_string(),
        ),
    ]);
}

/// A user's state, in one line.
fn state(okta: &FakeOkta, login: &str) -> String {
    let Some(user) = okta.user(login) else {
        return format!("{login} absent");
    };
    let member = okta
        .group(DEMO_QUARANTINE_GROUP_ID)
        .is_some_and(|g| g.members.contains(&user.id));
    format!(
        "{login} {}, sessions cleared {} time(s), {} the quarantine group",
        user.status,
        user.sessions_cleared,
        if member { "in" } else { "not in" }
    )
}

pub async fn run(
    pipeline: &Pipeline,
    gate: &PrintGate,
    printer: &mut Printer,
) -> anyhow::Result<()> {
    let configured = pipeline
        .options()
        .dispatcher_env
        .iter()
        .any(|(k, v)| k == "CHECK_ACTIONS" && v == DEMO_CHECK_ACTIONS);
    let (Some(okta), Some(slack), true) = (pipeline.okta(), pipeline.slack(), configured) else {
        let _printing = gate.lock().await;
        println!(
            "\n== Responses per check: skipped (it needs the local Okta and Slack, and the demo's CHECK_ACTIONS)"
        );
        return Ok(());
    };
    {
        let _printing = gate.lock().await;
        println!("\n== Responses per check\n  CHECK_ACTIONS={DEMO_CHECK_ACTIONS}");
    }
    for (check, action, login) in CASES {
        if okta.user(login).is_none() {
            okta.add_user(SeedUser::new(login, login, "ACTIVE"));
        }
        let event_id = format!("demo-check-{action}").replace(':', "-");
        let event = OortBody::failed_check(&event_id, &[login])
            .check(check, &format!("Demo check ({action})"))
            .into_json();
        {
            let _printing = gate.lock().await;
            println!("\n== check {check}: its action is {action}");
            let (status, answer) = send_event(pipeline, &event).await?;
            println!("  answer: {status} {}", answer.trim());
            if status != 200 {
                bail!("the {check} event was answered {status}");
            }
        }
        settle(pipeline, printer).await?;
        {
            let _printing = gate.lock().await;
            println!("\n  Okta now: {}", state(okta, login));
        }
        if !action.starts_with("approve") {
            continue;
        }
        // Held: the approver approves, then releases.
        let summary = slack
            .wait_for_channel_message(Duration::from_secs(10), |m| {
                m.endpoint != SlackEndpoint::ResponseUrl
                    && m.message.to_string().contains(&event_id)
                    && find_button(&m.message, "approve", None).is_some()
            })
            .await
            .with_context(|| format!("no held summary of {event_id} with Approve"))?;
        let approved = click(
            slack,
            gate,
            &summary,
            &Click::approve(DEMO_APPROVER),
            &format!("<@{DEMO_APPROVER}> clicks Approve: the check's action runs"),
        )
        .await?;
        if approved.status != 200 {
            bail!("the approval was answered {}", approved.status);
        }
        settle(pipeline, printer).await?;
        slack
            .wait_for_response_posts(&approved.response_url, 1, Duration::from_secs(30))
            .await;
        {
            let _printing = gate.lock().await;
            println!("\n  Okta now: {}", state(okta, login));
        }
        let rewritten = slack.message(&summary.ts).unwrap_or(summary);
        if find_button(&rewritten.message, "release", Some(login)).is_none() {
            let _printing = gate.lock().await;
            println!(
                "\n  no Release button for {login} in the updated summary: the demo stops here."
            );
            return Ok(());
        }
        let release = click(
            slack,
            gate,
            &rewritten,
            &Click::release(login, DEMO_APPROVER),
            &format!("<@{DEMO_APPROVER}> clicks Release for {login}"),
        )
        .await?;
        if release.status != 200 {
            bail!("the release was answered {}", release.status);
        }
        settle(pipeline, printer).await?;
        slack
            .wait_for_response_posts(&release.response_url, 1, Duration::from_secs(30))
            .await;
        let _printing = gate.lock().await;
        println!("\n  Okta now: {}", state(okta, login));
    }
    Ok(())
}
