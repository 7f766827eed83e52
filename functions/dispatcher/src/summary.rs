//! The Slack messages: one summary per event, and short notices.
//!
//! Block Kit with a plain-text fallback, built within Slack's limits (50
//! blocks, 3,000 characters a section, about 13k characters of blocks in
//! all): long user lists end with "and N more". Everything that came from the
//! webhook (titles, logins, ids) is escaped for mrkdwn, so an event cannot
//! mention `@channel` or disguise a link.

use serde_json::{Value, json};
use shared::event::OortEvent;

use crate::outcome::{Outcome, SignOut, UserReport, counts};

/// How many users are listed by name at most; the rest are counted.
pub const MAX_LISTED_USERS: usize = 40;
/// Characters of user lines at most: with the rest of the message, blocks
/// stay well under the ~13k where Slack answers `msg_blocks_too_long`.
const USER_LINES_CHARS: usize = 8_000;
/// A section's text limit is 3,000; stay under it with room for escaping.
const SECTION_CHARS: usize = 2_800;
/// The notification text: Slack advises staying under 4,000.
const FALLBACK_CHARS: usize = 3_000;
/// Untrusted single values (titles, ids) are cut at this length.
const VALUE_CHARS: usize = 200;

/// A message ready to post: `{"text": ..., "blocks": [...]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackMessage {
    pub text: String,
    pub blocks: Vec<Value>,
}

impl SlackMessage {
    pub fn to_json(&self) -> Value {
        json!({"text": self.text, "blocks": self.blocks})
    }
}

/// Escapes text for Slack mrkdwn: `&`, `<` and `>` (so `<!channel>` or
/// `<https://evil|click>` stay text).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text for a `plain_text` object. Slack documents no escaping there, so
/// angle brackets become look-alikes rather than risk a mention or link.
fn plain(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => '‹',
            '>' => '›',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// Untrusted text cut to `max` characters, then escaped.
fn value(text: Option<&str>, max: usize) -> String {
    match text {
        Some(t) if !t.is_empty() => escape(&truncate(t, max)),
        _ => "–".to_string(),
    }
}

/// `text` escaped for mrkdwn, at most `max` characters *after* escaping
/// (Slack counts the escaped text: 200 `&` are 1,000 characters), cut
/// between entities, never inside one.
pub fn escaped(text: &str, max: usize) -> String {
    let full = escape(text);
    if full.chars().count() <= max {
        return full;
    }
    let mut out = String::with_capacity(max * 4);
    let mut used = 0;
    for c in text.chars() {
        let piece = escape(c.encode_utf8(&mut [0; 4]));
        let n = piece.chars().count();
        if used + n > max.saturating_sub(1) {
            break;
        }
        out.push_str(&piece);
        used += n;
    }
    out.push('…');
    out
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// What the summary is about, besides the users.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub event: &'a OortEvent,
    pub event_id: &'a str,
    /// Which delivery of the message this is, and of how many at most.
    pub delivery: u32,
    pub max_deliveries: u32,
    /// What happens next to the event, when a person should know.
    pub follow_up: FollowUp,
}

/// What happens next to an event, said in its summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUp {
    None,
    /// Some users need a person; the event is kept and retried.
    WillRetry {
        deliveries_left: u32,
    },
    /// The last delivery: the event goes to the dead-letter queue.
    DeadLetterQueue,
    /// Every user is done now, after earlier deliveries failed.
    DoneAfterRetries,
}

/// How the run went, shown as a banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Acted,
    DryRun,
    Held(String),
}

/// The summary of a `FAILED_CHECK`.
pub fn summary(ctx: &Context<'_>, mode: &Mode, reports: &[UserReport]) -> SlackMessage {
    let event = ctx.event;
    let title = value(
        event.title.as_deref().or(event.check_id.as_deref()),
        VALUE_CHARS,
    );
    let headline = format!(
        "Oort check failed: {}",
        event
            .title
            .as_deref()
            .or(event.check_id.as_deref())
            .unwrap_or("(untitled)")
    );
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": plain(&truncate(&headline, 150)), "emoji": false}
    })];
    match mode {
        Mode::Acted => {}
        Mode::DryRun => blocks.push(section(
            ":warning: *DRY RUN*: nothing was changed in Okta. This is what would have happened. Set `DryRun=false` to act.",
        )),
        Mode::Held(reason) => blocks.push(section(&format!(":octagonal_sign: *HELD*: {}.", escape(reason)))),
    }
    blocks.push(json!({
        "type": "section",
        "fields": [
            field("Check", &format!("{} (`{}`)", title, value(event.check_id.as_deref(), VALUE_CHARS))),
            field("Severity", &value(event.severity.as_deref(), VALUE_CHARS)),
            field("Event time", &value(event.time.as_deref().or(event.published.as_deref()), VALUE_CHARS)),
            field("Event id", &format!("`{}`", value(Some(ctx.event_id), VALUE_CHARS))),
        ]
    }));

    let tally = tally(reports);
    blocks.push(section(&format!(
        "*{}*: {}",
        count_users(reports.len()),
        if tally.is_empty() {
            "none listed".into()
        } else {
            tally.clone()
        }
    )));

    match ctx.follow_up {
        FollowUp::None => {}
        FollowUp::WillRetry { deliveries_left } => blocks.push(section(&format!(
            ":repeat: *A person must fix what failed below.* The event is kept: it will be retried {} more {}, then kept in the dead-letter queue. Fix the cause (the reasons are below), then let it retry or redrive it; users already done are not changed again.",
            deliveries_left,
            if deliveries_left == 1 { "time" } else { "times" }
        ))),
        FollowUp::DeadLetterQueue => blocks.push(section(
            ":file_cabinet: *This was the last delivery*: the event goes to the dead-letter queue. Fix the cause (the reasons are below), then redrive it (README: Alarms and the dead-letter queue).",
        )),
        FollowUp::DoneAfterRetries => blocks.push(section(&format!(
            ":white_check_mark: *Done on delivery {}*: earlier deliveries of this event failed; every user now has a final outcome.",
            ctx.delivery
        ))),
    }
    if !event.ignored.is_empty() {
        blocks.push(section(&format!(
            ":information_source: Ignored in this event (wrong type): {}.",
            escape(&truncate(&event.ignored.join("; "), 600))
        )));
    }

    // A reason several users failed for (Okta refusing the app's
    // credentials, say) is said once, not on every line.
    let shared = shared_failures(reports);
    for (reason, n) in &shared {
        blocks.push(section(&format!(
            ":x: *{} failed*: {}",
            count_users(*n),
            escaped(reason, 600)
        )));
    }
    if let Some(reason) = reports.iter().find_map(|r| match &r.sign_out {
        Some(SignOut::NotAvailable(reason)) => Some(reason),
        _ => None,
    }) {
        blocks.push(section(&format!(
            ":information_source: *Universal Logout is not available in this org* ({}): Okta sessions and tokens were cleared, but apps were not signed out.",
            escaped(reason, 300)
        )));
    }

    // Users needing a person first; event order within each outcome.
    let mut ordered: Vec<&UserReport> = reports.iter().collect();
    ordered.sort_by_key(|r| r.outcome);
    let mut lines: Vec<String> = Vec::new();
    let mut listed_chars = 0;
    for report in ordered.iter().take(MAX_LISTED_USERS) {
        let line = user_line(report, &shared);
        if listed_chars + line.len() > USER_LINES_CHARS {
            break;
        }
        listed_chars += line.len();
        lines.push(line);
    }
    let unlisted = reports.len() - lines.len();
    let mut chunk = String::new();
    for line in lines {
        if chunk.len() + line.len() + 1 > SECTION_CHARS {
            blocks.push(section(&chunk));
            chunk.clear();
        }
        chunk.push_str(&line);
        chunk.push('\n');
    }
    if unlisted > 0 {
        chunk.push_str(&format!("…and {unlisted} more"));
    }
    if !chunk.trim().is_empty() {
        blocks.push(section(chunk.trim_end()));
    }
    blocks.push(context_block(ctx));

    let banner = match mode {
        Mode::Acted => "",
        Mode::DryRun => "[DRY RUN] ",
        Mode::Held(_) => "[HELD] ",
    };
    let text = truncate(
        &format!(
            "{banner}Oort check failed: {} ({}). {}: {}. Event {}.",
            title,
            value(event.severity.as_deref(), VALUE_CHARS),
            count_users(reports.len()),
            if tally.is_empty() {
                "none listed".into()
            } else {
                tally
            },
            value(Some(ctx.event_id), VALUE_CHARS)
        ),
        FALLBACK_CHARS,
    );
    SlackMessage { text, blocks }
}

/// Unsuspend buttons per summary at most (Slack allows 50 blocks in all).
pub const MAX_UNDO_BUTTONS: usize = 20;

/// The buttons a summary carries when approvers are configured.
#[derive(Debug, Clone)]
pub enum Buttons<'a> {
    /// Approve / Dismiss a held or dry-run event; `doing` says what
    /// approving does to the users ("suspends", "quarantines", ...).
    Decide {
        event_id: &'a str,
        users: usize,
        doing: &'a str,
    },
    /// Unsuspend for each user this product suspended, Release for each it
    /// quarantined: `(okta user id, login)`.
    Undo {
        event_id: &'a str,
        suspended: &'a [(String, String)],
        quarantined: &'a [(String, String)],
    },
}

impl SlackMessage {
    /// Adds buttons before the closing context line. A button that cannot be
    /// built (an id too long for Slack) is left out and said so.
    pub fn with_buttons(mut self, buttons: Buttons<'_>) -> SlackMessage {
        let mut added: Vec<Value> = Vec::new();
        match buttons {
            Buttons::Decide {
                event_id,
                users,
                doing,
            } => {
                let elements: Vec<Value> = [
                    shared::decision::approve_button_doing(event_id, users, doing),
                    shared::decision::dismiss_button(event_id),
                ]
                .into_iter()
                .filter_map(Result::ok)
                .collect();
                if elements.is_empty() {
                    added.push(section("This event cannot be approved from Slack (its id is too long for a button)."));
                } else {
                    added.push(
                        json!({"type": "actions", "block_id": "decide", "elements": elements}),
                    );
                }
            }
            Buttons::Undo {
                event_id,
                suspended,
                quarantined,
            } => {
                let undos = suspended
                    .iter()
                    .map(|u| (u, true))
                    .chain(quarantined.iter().map(|u| (u, false)));
                for ((okta_user_id, login), suspend) in undos.clone().take(MAX_UNDO_BUTTONS) {
                    let (button, what) = if suspend {
                        (
                            shared::decision::unsuspend_button(event_id, okta_user_id, login),
                            "was suspended",
                        )
                    } else {
                        (
                            shared::decision::release_button(event_id, okta_user_id, login),
                            "was quarantined",
                        )
                    };
                    if let Ok(button) = button {
                        added.push(json!({
                            "type": "section",
                            "text": {"type": "mrkdwn", "text": format!("`{}` {what}", escaped(&login.replace('`', "'"), 120))},
                            "accessory": button,
                        }));
                    }
                }
                let left = undos.count().saturating_sub(MAX_UNDO_BUTTONS);
                let who = if quarantined.is_empty() {
                    "suspended"
                } else {
                    "suspended or quarantined"
                };
                if left > 0 {
                    added.push(section(&format!(
                        "…{left} more {who} users: undo them in the Okta Admin Console if needed."
                    )));
                }
            }
        }
        let at = self.blocks.len().saturating_sub(1);
        for (i, block) in added.into_iter().enumerate() {
            self.blocks.insert(at + i, block);
        }
        self
    }

    /// States the response the check's policy chose (`CHECK_ACTIONS`),
    /// once: a field beside the check's, and in the notification text.
    pub fn with_check_action(mut self, name: &str, description: &str) -> SlackMessage {
        let field = field(
            "Response (CHECK_ACTIONS)",
            &format!("`{}`: {}", escape(name), escape(description)),
        );
        match self
            .blocks
            .iter_mut()
            .find_map(|b| b.get_mut("fields").and_then(Value::as_array_mut))
        {
            Some(fields) => fields.push(field),
            None => {
                let at = 1.min(self.blocks.len());
                self.blocks
                    .insert(at, json!({"type": "section", "fields": [field]}));
            }
        }
        self.text = truncate(&format!("{} Response: {name}.", self.text), FALLBACK_CHARS);
        self
    }

    /// Adds a line right under the header (who approved, who dismissed).
    pub fn with_note(mut self, mrkdwn: &str) -> SlackMessage {
        let at = 1.min(self.blocks.len());
        self.blocks.insert(at, section(mrkdwn));
        self.text = format!("{} {}", self.text, mrkdwn.replace('*', ""));
        self.text = truncate(&self.text, FALLBACK_CHARS);
        self
    }
}

/// The notice for Oort's "Test Connectivity" message.
pub fn connectivity_test(ctx: &Context<'_>) -> SlackMessage {
    let event = ctx.event;
    let text = format!(
        ":white_check_mark: *Connectivity test received* from Oort. The webhook, the queue and Slack work. Test messages never act in Okta ({} listed, none touched).",
        count_users(event.users.len())
    );
    notice("Oort connectivity test received", &text, ctx)
}

/// The notice for an event type the dispatcher does not act on.
pub fn unhandled(ctx: &Context<'_>, kind: &str) -> SlackMessage {
    let text = format!(
        ":grey_question: An Oort event of unhandled type `{}` arrived. It was recorded; nothing was changed in Okta.",
        value(Some(kind), VALUE_CHARS)
    );
    notice("Unhandled Oort event type", &text, ctx)
}

/// The notice for a queued message that could not be read, on its last delivery.
pub fn unreadable(message_id: &str, reason: &str) -> SlackMessage {
    let text = format!(
        ":x: A queued message could not be read and goes to the dead-letter queue. Nothing was changed in Okta.\nMessage `{}`: {}",
        escape(message_id),
        escaped(reason, 500)
    );
    SlackMessage {
        text: format!(
            "An unreadable message ({message_id}) goes to the dead-letter queue",
            message_id = escape(message_id)
        ),
        blocks: vec![section(&text)],
    }
}

fn notice(headline: &str, text: &str, ctx: &Context<'_>) -> SlackMessage {
    let event = ctx.event;
    let blocks = vec![
        section(text),
        json!({
            "type": "section",
            "fields": [
                field("Check", &format!("{} (`{}`)", value(event.title.as_deref(), VALUE_CHARS), value(event.check_id.as_deref(), VALUE_CHARS))),
                field("Event id", &format!("`{}`", value(Some(ctx.event_id), VALUE_CHARS))),
            ]
        }),
        context_block(ctx),
    ];
    SlackMessage {
        text: format!(
            "{headline}: event {}",
            value(Some(ctx.event_id), VALUE_CHARS)
        ),
        blocks,
    }
}

/// "1 user", "3 users".
fn count_users(n: usize) -> String {
    if n == 1 {
        "1 user".into()
    } else {
        format!("{n} users")
    }
}

fn tally(reports: &[UserReport]) -> String {
    counts(reports)
        .iter()
        .map(|(o, n)| format!("{n} {o}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Failure reasons shared by more than one user, with how many, in first-seen order.
fn shared_failures(reports: &[UserReport]) -> Vec<(String, usize)> {
    let mut seen: Vec<(String, usize)> = Vec::new();
    for r in reports.iter().filter(|r| r.outcome == Outcome::Failed) {
        let Some(detail) = &r.detail else { continue };
        match seen.iter_mut().find(|(d, _)| d == detail) {
            Some((_, n)) => *n += 1,
            None => seen.push((detail.clone(), 1)),
        }
    }
    seen.retain(|(_, n)| *n > 1);
    seen
}

fn user_line(report: &UserReport, shared: &[(String, usize)]) -> String {
    let login = escaped(&report.login.replace('`', "'"), 120);
    if report.outcome == Outcome::Failed
        && report
            .detail
            .as_ref()
            .is_some_and(|d| shared.iter().any(|(s, _)| s == d))
    {
        return format!("• `{login}`: *{}* (reason above)", report.outcome);
    }
    match &report.detail {
        Some(detail) => format!(
            "• `{login}`: *{}* ({})",
            report.outcome,
            escaped(detail, 200)
        ),
        None => format!("• `{login}`: *{}*", report.outcome),
    }
}

fn context_block(ctx: &Context<'_>) -> Value {
    let mut text = format!(
        "oort-okta-lockout · delivery {} of at most {}",
        ctx.delivery, ctx.max_deliveries
    );
    if ctx.delivery > 1 {
        text.push_str(" · users suspended on an earlier delivery show as already suspended");
    }
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

fn field(label: &str, text: &str) -> Value {
    json!({"type": "mrkdwn", "text": format!("*{label}*\n{text}")})
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::testing::OortBody;

    fn event(title: &str, users: usize) -> OortEvent {
        OortBody::failed_check("e-1", &OortBody::numbered_users(users))
            .check("no-mfa", title)
            .parse()
    }

    fn all_text(message: &SlackMessage) -> String {
        message.to_json().to_string()
    }

    #[test]
    fn escape_neutralises_mentions_and_links() {
        assert_eq!(
            escape("<!channel> & <https://evil|click>"),
            "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"
        );
        assert_eq!(escape("a\nb"), "a b");
    }

    #[test]
    fn untrusted_text_cannot_mention_or_link() {
        let e = event(
            "<!channel> urgent <https://evil.example|reset your password>",
            0,
        );
        let reports = [UserReport::new(
            "<@U123>@x.com",
            Outcome::NotFound,
            Some("<!here>".into()),
        )];
        let ctx = Context {
            event: &e,
            event_id: "<!everyone>",
            delivery: 1,
            max_deliveries: 5,
            follow_up: FollowUp::None,
        };
        let text = all_text(&summary(&ctx, &Mode::Acted, &reports));
        for raw in [
            "<!channel>",
            "<https://evil",
            "<@U123>",
            "<!here>",
            "<!everyone>",
        ] {
            assert!(!text.contains(raw), "{raw} reached Slack unescaped: {text}");
        }
        assert!(text.contains("&lt;!channel&gt;"));
    }

    #[test]
    fn summary_has_counts_users_banner_and_fallback() {
        let e = event("No MFA Configured", 3);
        let reports = vec![
            UserReport::new("a@example.com", Outcome::Suspended, None),
            UserReport::new(
                "b@example.com",
                Outcome::Failed,
                Some("Okta answered 503".into()),
            ),
            UserReport::new("c@example.com", Outcome::Suspended, None),
        ];
        let ctx = Context {
            event: &e,
            event_id: "e-1",
            delivery: 1,
            max_deliveries: 5,
            follow_up: FollowUp::None,
        };
        let m = summary(&ctx, &Mode::DryRun, &reports);
        assert!(m.text.starts_with("[DRY RUN] Oort check failed: No MFA Configured (critical). 3 users: 2 suspended, 1 failed."), "{}", m.text);
        let text = all_text(&m);
        assert!(text.contains("*DRY RUN*"));
        let failed_at = text
            .find("`b@example.com`: *failed* (Okta answered 503)")
            .expect("failed line");
        let suspended_at = text
            .find("`a@example.com`: *suspended*")
            .expect("suspended line");
        assert!(failed_at < suspended_at, "failures come first");
    }

    #[test]
    fn held_banner_says_why() {
        let e = event("No MFA", 2);
        let reports: Vec<UserReport> = e
            .users
            .iter()
            .map(|u| UserReport::new(u.as_str(), Outcome::Held, None))
            .collect();
        let ctx = Context {
            event: &e,
            event_id: "e-1",
            delivery: 1,
            max_deliveries: 5,
            follow_up: FollowUp::None,
        };
        let m = summary(&ctx, &Mode::Held("over the cap".into()), &reports);
        assert!(m.text.starts_with("[HELD] "));
        assert!(all_text(&m).contains("*HELD*: over the cap."));
    }

    #[test]
    fn long_lists_stay_within_slack_limits() {
        let e = event(&"T".repeat(5000), 220);
        let reports: Vec<UserReport> = e
            .users
            .iter()
            .map(|u| {
                UserReport::new(
                    &format!("{}{}", u.as_str(), "x".repeat(200)),
                    Outcome::Failed,
                    Some("d".repeat(500)),
                )
            })
            .collect();
        let ctx = Context {
            event: &e,
            event_id: "e-1",
            delivery: 5,
            max_deliveries: 5,
            follow_up: FollowUp::None,
        };
        let m = summary(&ctx, &Mode::Acted, &reports);
        assert!(m.blocks.len() <= 50);
        let blocks_chars: usize = m.blocks.iter().map(|b| b.to_string().len()).sum();
        assert!(blocks_chars < 12_000, "{blocks_chars}");
        for block in &m.blocks {
            if let Some(text) = block["text"]["text"].as_str() {
                assert!(text.chars().count() <= 3000);
            }
        }
        assert!(m.text.chars().count() <= FALLBACK_CHARS);
        let listed = all_text(&m).matches("*failed*").count();
        assert!(listed > 0 && listed <= MAX_LISTED_USERS);
        assert!(all_text(&m).contains(&format!("and {} more", 220 - listed)));
        assert!(
            m.blocks[0]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= 150
        );
    }

    #[test]
    fn connectivity_notice_names_the_check_and_event() {
        let body = json!({"id": "t-1", "detail-type": "WebhookTest", "detail": {"checkId": "oort-test-check-id", "title": "OORT Failing Check Event Test", "usersFailing": ["a@b.co"]}});
        let e = OortEvent::parse(body.to_string().as_bytes()).unwrap();
        let ctx = Context {
            event: &e,
            event_id: "t-1",
            delivery: 1,
            max_deliveries: 5,
            follow_up: FollowUp::None,
        };
        let text = all_text(&connectivity_test(&ctx));
        assert!(text.contains("Connectivity test received"));
        assert!(text.contains("oort-test-check-id"));
        assert!(text.contains("OORT Failing Check Event Test"));
        assert!(text.contains("t-1"));
    }

    #[test]
    fn a_reason_shared_by_several_failures_is_said_once() {
        let e = event("No MFA", 3);
        let ctx = Context {
            event: &e,
            event_id: "e-1",
            delivery: 5,
            max_deliveries: 5,
            follow_up: FollowUp::None,
        };
        let refused = "the Okta app 0oa1 was refused: invalid_scope: The following scopes are not allowed: okta.roles.read";
        let reports = vec![
            UserReport::new("a@example.com", Outcome::Failed, Some(refused.into())),
            UserReport::new("b@example.com", Outcome::Failed, Some(refused.into())),
            UserReport::new(
                "c@example.com",
                Outcome::Failed,
                Some("Okta answered 503".into()),
            ),
        ];
        let text = all_text(&summary(&ctx, &Mode::Acted, &reports));
        assert_eq!(text.matches("invalid_scope").count(), 1, "{text}");
        assert!(
            text.contains("*2 users failed*: the Okta app 0oa1 was refused: invalid_scope"),
            "{text}"
        );
        assert_eq!(text.matches("(reason above)").count(), 2);
        assert!(
            text.contains("`c@example.com`: *failed* (Okta answered 503)"),
            "{text}"
        );
    }

    #[test]
    fn universal_logout_not_available_is_said_once() {
        let e = event("No MFA", 2);
        let ctx = Context {
            event: &e,
            event_id: "e-1",
            delivery: 1,
            max_deliveries: 5,
            follow_up: FollowUp::None,
        };
        let mut reports = vec![
            UserReport::new(
                "a@example.com",
                Outcome::Suspended,
                Some("was ACTIVE; sessions and tokens cleared".into()),
            ),
            UserReport::new(
                "b@example.com",
                Outcome::Suspended,
                Some("was ACTIVE; sessions and tokens cleared".into()),
            ),
        ];
        let text = all_text(&summary(&ctx, &Mode::Acted, &reports));
        assert!(!text.contains("Universal Logout"), "{text}");
        for r in &mut reports {
            r.sign_out = Some(SignOut::NotAvailable("Okta answered 403 E0000006".into()));
        }
        let text = all_text(&summary(&ctx, &Mode::Acted, &reports));
        assert_eq!(
            text.matches("Universal Logout is not available in this org")
                .count(),
            1,
            "{text}"
        );
        assert_eq!(text.matches("*suspended*").count(), 2, "{text}");
    }

    #[test]
    fn limits_count_the_escaped_text() {
        assert_eq!(escaped("a&b", 10), "a&amp;b");
        let amps = "&".repeat(200);
        let cut = escaped(&amps, 200);
        assert!(cut.chars().count() <= 200, "{}", cut.chars().count());
        assert!(cut.ends_with("&amp;…"), "never inside an entity: {cut}");
        let e = event(&amps, 3);
        let ctx = Context {
            event: &e,
            event_id: &"&".repeat(300),
            delivery: 1,
            max_deliveries: 5,
            follow_up: FollowUp::None,
        };
        let reports: Vec<UserReport> = (0..40)
            .map(|i| {
                UserReport::new(
                    &format!("{}{i}", "<&>".repeat(60)),
                    Outcome::Failed,
                    Some("&".repeat(500)),
                )
            })
            .collect();
        let message = summary(&ctx, &Mode::Acted, &reports);
        for block in &message.blocks {
            if let Some(text) = block["text"]["text"].as_str() {
                assert!(text.chars().count() <= 3000, "a section over Slack's 3,000");
            }
            for field in block["fields"].as_array().into_iter().flatten() {
                assert!(
                    field["text"].as_str().unwrap().chars().count() <= 2000,
                    "a field over 2,000"
                );
            }
        }
        assert!(message.text.chars().count() <= 4000);
        assert!(
            serde_json::to_string(&message.blocks).unwrap().len() < 13_000,
            "blocks under Slack's total"
        );
    }

    #[test]
    fn buttons_go_before_the_context_line_and_stay_within_slack_s_limits() {
        let e = event("No MFA", 3);
        let ctx = Context {
            event: &e,
            event_id: "e-1",
            delivery: 1,
            max_deliveries: 5,
            follow_up: FollowUp::None,
        };
        let held =
            summary(&ctx, &Mode::Held("over the cap".into()), &[]).with_buttons(Buttons::Decide {
                event_id: "e-1",
                users: 25,
                doing: "quarantines",
            });
        let n = held.blocks.len();
        assert_eq!(held.blocks[n - 1]["type"], "context");
        assert_eq!(held.blocks[n - 2]["type"], "actions");
        let ids: Vec<&str> = held.blocks[n - 2]["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["action_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["approve", "dismiss"]);
        assert!(
            held.blocks[n - 2]
                .to_string()
                .contains("This quarantines 25 users in Okta now"),
            "the confirm says what approving does, to how many: {}",
            held.blocks[n - 2]
        );

        let suspended: Vec<(String, String)> = (0..30)
            .map(|i| (format!("00u{i}"), format!("u{i}@example.com")))
            .collect();
        let quarantined = vec![("00uq".to_string(), "q@example.com".to_string())];
        let one = summary(&ctx, &Mode::Acted, &[]).with_buttons(Buttons::Undo {
            event_id: "e-1",
            suspended: &suspended[..1],
            quarantined: &quarantined,
        });
        let actions: Vec<&Value> = one
            .blocks
            .iter()
            .filter_map(|b| b.get("accessory"))
            .map(|a| &a["action_id"])
            .collect();
        assert_eq!(actions, [&json!("unsuspend"), &json!("release")]);
        assert!(
            one.to_json()
                .to_string()
                .contains("`q@example.com` was quarantined")
        );
        let acted = summary(&ctx, &Mode::Acted, &[]).with_buttons(Buttons::Undo {
            event_id: "e-1",
            suspended: &suspended,
            quarantined: &quarantined,
        });
        let undo = acted
            .blocks
            .iter()
            .filter(|b| b["accessory"]["action_id"] == "unsuspend")
            .count();
        assert_eq!(undo, MAX_UNDO_BUTTONS);
        assert!(acted.blocks.len() <= 50);
        assert!(
            acted
                .to_json()
                .to_string()
                .contains("11 more suspended or quarantined users")
        );
        let only_suspended = summary(&ctx, &Mode::Acted, &[]).with_buttons(Buttons::Undo {
            event_id: "e-1",
            suspended: &suspended,
            quarantined: &[],
        });
        assert!(
            only_suspended
                .to_json()
                .to_string()
                .contains("10 more suspended users")
        );
        let noted = acted.with_note("Approved by <@U0APPROVER>");
        assert_eq!(noted.blocks[1]["text"]["text"], "Approved by <@U0APPROVER>");
    }
}
