//! The compiled binary refuses to start on bad settings, naming the setting.

use std::process::Command;

fn run(env: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_actions"));
    command.env_clear();
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("run the actions binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_missing_or_malformed_setting_stops_the_start_and_is_named() {
    let (ok, text) = run(&[]);
    assert!(!ok);
    assert!(text.contains("QUEUE_URL is required but not set"), "{text}");
    let (ok, text) = run(&[
        ("QUEUE_URL", "q"),
        ("STORE_TABLE", "t"),
        ("SLACK_SIGNING_SECRET_ID", "s"),
        ("SLACK_APPROVERS", "alice"),
    ]);
    assert!(!ok);
    assert!(text.contains("SLACK_APPROVERS is invalid"), "{text}");
}
