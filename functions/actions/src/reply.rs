//! What the clicker reads: ephemeral replies, only they see them.
//!
//! Every answer to a verified click is HTTP 200 (Slack shows anything else as
//! an error of its own) with
//! `{"response_type":"ephemeral","replace_original":false,"text":...}`. A
//! reply says plainly whether something happened; a failure never reads
//! like a success.

use serde_json::{Value, json};
use shared::decision::{Action, format_time};
use time::OffsetDateTime;

/// The ephemeral reply JSON.
pub fn ephemeral(text: &str) -> Value {
    json!({"response_type": "ephemeral", "replace_original": false, "text": text})
}

/// `&`, `<` and `>` escaped, as Slack's mrkdwn needs for untrusted text.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn users(n: u32) -> String {
    if n == 1 {
        "1 user".into()
    } else {
        format!("{n} users")
    }
}

pub fn not_allowed() -> String {
    "You are not allowed to approve or undo actions of oort-okta-lockout: nothing was done. Ask one of its approvers.".into()
}

pub fn approved(user_count: u32) -> String {
    format!(
        "Approved: the dispatcher is acting on {}. This message is updated when it is done.",
        users(user_count)
    )
}

pub fn dismissed() -> String {
    "Dismissed: nobody in this event will be suspended.".into()
}

pub fn unsuspend_requested(login: &str) -> String {
    format!(
        "Unsuspend of {} requested: the dispatcher checks that oort-okta-lockout suspended them and that they are still suspended in Okta, then unsuspends them.",
        escape(login)
    )
}

pub fn release_requested(login: &str) -> String {
    format!(
        "Release of {} requested: the dispatcher checks that oort-okta-lockout added them to the quarantine group, then removes them from it.",
        escape(login)
    )
}

/// What an Unsuspend or Release click is answered.
pub fn undo_requested(action: Action, login: &str) -> String {
    match action {
        Action::Release => release_requested(login),
        _ => unsuspend_requested(login),
    }
}

/// Someone decided on the event before.
pub fn already_decided(action: Action, by: &str, at: OffsetDateTime) -> String {
    format!(
        "This event was already {} by <@{by}> at {}: nothing more was done.",
        action.past_tense(),
        format_time(at)
    )
}

/// Someone asked for this unsuspend (or release) before.
pub fn already_undone(action: Action, login: &str, by: &str, at: OffsetDateTime) -> String {
    format!(
        "{} of {} was already requested by <@{by}> at {}: nothing more was done.",
        if action == Action::Release {
            "Release"
        } else {
            "Unsuspend"
        },
        escape(login),
        format_time(at)
    )
}

pub fn expired(approval_hours: u64) -> String {
    format!(
        "This event can no longer be approved: it expired (events can be approved for {approval_hours} hours after they are reported). Nothing was done."
    )
}

pub fn not_recorded() -> String {
    "This did not happen: your decision could not be recorded (the store is unavailable). Nothing was done; please try again in a minute.".into()
}

pub fn not_queued() -> String {
    "This did not happen: your decision could not be passed on to the dispatcher. Nothing was done; please try again in a minute.".into()
}

pub fn check_failed() -> String {
    "This did not happen: oort-okta-lockout could not check whether you may approve (the approver group look-up failed). Nothing was done; please try again in a minute.".into()
}

pub fn timed_out() -> String {
    "This did not happen: oort-okta-lockout could not finish in time. Please try again in a minute."
        .into()
}

pub fn not_understood() -> String {
    "This button is not one oort-okta-lockout understands: nothing was done.".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn texts() {
        assert!(not_allowed().contains("not allowed to approve or undo"));
        assert!(approved(1).starts_with("Approved: the dispatcher is acting on 1 user."));
        assert!(approved(25).starts_with("Approved: the dispatcher is acting on 25 users."));
        let at = datetime!(2026-01-05 09:30:00 UTC);
        assert_eq!(
            already_decided(Action::Approve, "U024BE7LH", at),
            "This event was already approved by <@U024BE7LH> at 2026-01-05T09:30:00Z: nothing more was done."
        );
        assert!(
            already_decided(Action::Dismiss, "U1AB", at).contains("already dismissed by <@U1AB>")
        );
        assert!(expired(72).starts_with("This event can no longer be approved: it expired"));
        assert_eq!(
            unsuspend_requested("<!channel>&co"),
            "Unsuspend of &lt;!channel&gt;&amp;co requested: the dispatcher checks that oort-okta-lockout suspended them and that they are still suspended in Okta, then unsuspends them."
        );
        for failure in [not_recorded(), not_queued(), check_failed(), timed_out()] {
            assert!(failure.starts_with("This did not happen"), "{failure}");
            assert!(failure.contains("try again"), "{failure}");
        }
        assert_eq!(
            ephemeral("hi"),
            json!({"response_type": "ephemeral", "replace_original": false, "text": "hi"})
        );
    }
}
