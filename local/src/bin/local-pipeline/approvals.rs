//! The demo's second part (`make local`, after the samples): approve and undo
//! from Slack, through the actions function.
//!
//! 1. An event listing more users than `MAX_USERS_PER_EVENT` goes through the
//!    function URL; the dispatcher holds it and posts a summary with Approve
//!    and Dismiss (it stores the event it held).
//! 2. Someone who is not an approver clicks Approve: the fake Slack sends a
//!    signed `block_actions` request to the actions function URL, and the
//!    ephemeral refusal is printed.
//! 3. The approver clicks Approve: the actions function records the decision
//!    and queues it; the dispatcher suspends the event's users (protected
//!    users and admins stay untouched) and rewrites the summary through the
//!    click's `response_url`.
//! 4. The approver clicks Unsuspend on one of those users in the rewritten
//!    summary; the dispatcher unsuspends them and says so.
//!
//! Every step is printed in the order it happened: each click's answer
//! before what it caused, then the queued decision and its batch, as for the
//! samples. A summary without the button the next step needs ends the loop
//! with a plain message saying so, rather than waiting for it.

use std::time::Duration;

use anyhow::{Context as _, bail};
use local_pipeline::fake_okta::{FakeOkta, SeedUser};
use local_pipeline::fake_slack::{Click, FakeSlack, SlackEndpoint, SlackMessage, find_button};
use local_pipeline::pipeline::{DEMO_APPROVER, DEMO_NON_APPROVER, Pipeline};
use serde_json::Value;
use shared::testing::OortBody;

use crate::print::{PrintGate, Printer};

/// The held event's id.
const HELD_EVENT_ID: &str = "demo-held-over-the-cap";
/// The dispatcher's default cap.
const DEFAULT_CAP: usize = 20;
/// Protected, whatever is approved: an admin and the break-glass account
/// (`PROTECTED_USERS` of `make local`).
const PROTECTED: [&str; 2] = ["root.admin@example.com", "break-glass@example.com"];

/// `MAX_USERS_PER_EVENT` as the dispatcher reads it (the shell may set it).
fn cap() -> usize {
    std::env::var("MAX_USERS_PER_EVENT")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(DEFAULT_CAP)
}

fn contractor(i: usize) -> String {
    format!("contractor.{i:02}@example.com")
}

/// The users of the held event: the protected two, and enough new active
/// users (added to the local Okta) to be one over the cap.
fn held_users(okta: &FakeOkta, cap: usize) -> Vec<String> {
    let mut users: Vec<String> = PROTECTED.iter().map(|u| u.to_string()).collect();
    if okta.user("break-glass@example.com").is_none() {
        okta.add_user(SeedUser::new(
            "break-glass@example.com",
            "break-glass@example.com",
            "ACTIVE",
        ));
    }
    let extra = (cap + 1).saturating_sub(users.len()).max(1);
    for i in 1..=extra {
        let login = contractor(i);
        if okta.user(&login).is_none() {
            okta.add_user(SeedUser::new(&login, &login, "ACTIVE"));
        }
        users.push(login);
    }
    users
}

/// Sends the held event, as Oort would.
pub(crate) async fn send_event(pipeline: &Pipeline, body: &Value) -> anyhow::Result<(u16, String)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let response = http
        .post(pipeline.function_url())
        .header("content-type", "application/json")
        .header(pipeline.api_key_header(), pipeline.api_key())
        .body(body.to_string())
        .send()
        .await
        .context("sending the held event")?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}

/// Waits for the queue to drain and for every batch to have been printed.
pub(crate) async fn settle(pipeline: &Pipeline, printer: &mut Printer) -> anyhow::Result<()> {
    pipeline.wait_until_drained(Duration::from_secs(60)).await?;
    let batches = pipeline.event_source().stats().batches;
    printer.caught_up(batches, Duration::from_secs(5)).await;
    Ok(())
}

/// Clicks and prints the answer, holding the gate so that nothing the click
/// caused is printed before it.
pub(crate) async fn click(
    slack: &FakeSlack,
    gate: &PrintGate,
    message: &SlackMessage,
    click: &Click,
    headline: &str,
) -> anyhow::Result<local_pipeline::fake_slack::ClickOutcome> {
    let _printing = gate.lock().await;
    println!("\n== {headline}");
    let outcome = slack
        .click(message, click)
        .await
        .with_context(|| format!("clicking {}", click.action_id))?;
    let shown = if outcome.status == 200 {
        format!("(ephemeral: only <@{}> sees it) ", click.user_id)
    } else {
        String::new()
    };
    println!(
        "  actions function answered {} {shown}{}",
        outcome.status,
        outcome.summary()
    );
    Ok(outcome)
}

/// The Okta status of each login, in one line.
pub(crate) fn statuses(okta: &FakeOkta, logins: &[String]) -> String {
    logins
        .iter()
        .map(|login| {
            let status = okta
                .user(login)
                .map(|u| u.status)
                .unwrap_or_else(|| "absent".into());
            format!("{login} {status}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Says why the loop stops here (not a failure of the demo).
async fn stop_here(pipeline: &Pipeline, gate: &PrintGate, what: &str) {
    let _printing = gate.lock().await;
    println!("\n  {what}");
    let given = if pipeline.options().approvals {
        "it was given both"
    } else {
        "it was not given them"
    };
    println!(
        "  (the dispatcher puts buttons on its summaries when it has STORE_TABLE and SLACK_APPROVERS, and {given}; the clicking itself is tested in tests/it/e2e.rs)"
    );
}

pub async fn run(
    pipeline: &Pipeline,
    gate: &PrintGate,
    printer: &mut Printer,
) -> anyhow::Result<()> {
    let (Some(okta), Some(slack)) = (pipeline.okta(), pipeline.slack()) else {
        let _printing = gate.lock().await;
        println!(
            "\n== Approve and undo from Slack: skipped (it clicks buttons in the local Slack stand-in, and needs the local Okta)"
        );
        return Ok(());
    };
    let cap = cap();
    let users = held_users(okta, cap);
    let logins: Vec<&str> = users.iter().map(String::as_str).collect();
    let event = OortBody::failed_check(HELD_EVENT_ID, &logins).into_json();

    // 1. The held event.
    {
        let _printing = gate.lock().await;
        println!(
            "\n== Approve and undo from Slack\n\n== an event listing {} users, over MAX_USERS_PER_EVENT {cap}: held, nobody touched",
            users.len()
        );
        let (status, answer) = send_event(pipeline, &event).await?;
        println!("  answer: {status} {}", answer.trim());
        if status != 200 {
            bail!("the held event was answered {status}");
        }
    }
    settle(pipeline, printer).await?;
    let summary = slack
        .wait_for_channel_message(Duration::from_secs(10), |m| {
            m.endpoint != SlackEndpoint::ResponseUrl
                && m.message.to_string().contains(HELD_EVENT_ID)
        })
        .await
        .with_context(|| format!("no Slack summary of {HELD_EVENT_ID} arrived"))?;
    if find_button(&summary.message, "approve", None).is_none() {
        stop_here(
            pipeline,
            gate,
            &format!(
                "no Approve button in the summary of {HELD_EVENT_ID}: the approval loop stops here."
            ),
        )
        .await;
        return Ok(());
    }

    // 2. Someone who may not approve.
    let refused = click(
        slack,
        gate,
        &summary,
        &Click::approve(DEMO_NON_APPROVER),
        &format!("<@{DEMO_NON_APPROVER}> (not an approver) clicks Approve"),
    )
    .await?;
    let refusals = pipeline.refusals(DEMO_NON_APPROVER).await?;
    {
        let _printing = gate.lock().await;
        println!(
            "  refusals recorded in the store for {DEMO_NON_APPROVER}: {}; nothing queued, nobody touched",
            refusals.len()
        );
    }
    if refused.status != 200 {
        bail!(
            "the actions function answered {} to a signed click: {}",
            refused.status,
            refused.summary()
        );
    }

    // 3. The approver.
    let approved = click(
        slack,
        gate,
        &summary,
        &Click::approve(DEMO_APPROVER),
        &format!("<@{DEMO_APPROVER}> (an approver) clicks Approve"),
    )
    .await?;
    if approved.status != 200 {
        bail!(
            "the approval was answered {}: {}",
            approved.status,
            approved.summary()
        );
    }
    settle(pipeline, printer).await?;
    let posts = slack
        .wait_for_response_posts(&approved.response_url, 1, Duration::from_secs(30))
        .await;
    let contractors: Vec<String> = users
        .iter()
        .filter(|u| !PROTECTED.contains(&u.as_str()))
        .cloned()
        .collect();
    {
        let _printing = gate.lock().await;
        let suspended = contractors
            .iter()
            .filter(|l| okta.user(l).is_some_and(|u| u.status == "SUSPENDED"))
            .count();
        println!(
            "\n  Okta now: {suspended} of the {} new users SUSPENDED; protected: {}",
            contractors.len(),
            statuses(okta, &PROTECTED.map(String::from))
        );
    }
    if !posts.iter().any(|p| p.accepted()) {
        stop_here(
            pipeline,
            gate,
            "the dispatcher did not update the summary through the click's response_url: the approval loop stops here.",
        )
        .await;
        return Ok(());
    }

    // 4. Undo one of them, from the rewritten summary.
    let undone = &contractors[0];
    let rewritten = slack.message(&summary.ts).unwrap_or(summary);
    let found = find_button(&rewritten.message, "unsuspend", Some(undone)).is_some();
    let undo_from = if found {
        Some(rewritten)
    } else {
        // Or a message the dispatcher posted in the channel instead.
        slack
            .channel_messages()
            .into_iter()
            .rev()
            .find(|m| find_button(&m.message, "unsuspend", Some(undone)).is_some())
    };
    let Some(undo_from) = undo_from else {
        stop_here(
            pipeline,
            gate,
            &format!("no Unsuspend button for {undone} in the updated summary: the approval loop stops here."),
        )
        .await;
        return Ok(());
    };
    let undo = click(
        slack,
        gate,
        &undo_from,
        &Click::unsuspend(undone, DEMO_APPROVER),
        &format!("<@{DEMO_APPROVER}> clicks Unsuspend for {undone}"),
    )
    .await?;
    if undo.status != 200 {
        bail!(
            "the unsuspend was answered {}: {}",
            undo.status,
            undo.summary()
        );
    }
    settle(pipeline, printer).await?;
    slack
        .wait_for_response_posts(&undo.response_url, 1, Duration::from_secs(30))
        .await;
    let _printing = gate.lock().await;
    println!(
        "\n  Okta now: {}",
        statuses(okta, std::slice::from_ref(undone))
    );
    Ok(())
}
