//! Held commands (issue #15, J3/J4) end to end in the real app, against a real pawd and a real
//! sshd that trusts only the broker's CA:
//! - ada types `rm <marker>` in her embedded terminal; the rules hold it for her own step-up,
//!   the terminal says so, the Sessions page shows it, and "Run it" opens the step-up prompt
//!   naming exactly that command, target and session; once her key confirms, it runs.
//! - bob (a second workstation, driven through paw-client's core with his own virtual key)
//!   types `rm <marker>` under an entitlement whose rules want a second person; ada's Approvals
//!   inbox shows it as it happens, she approves it with her key, and it runs in bob's session.
//!
//! The marker file lives on the target (this machine: the sshd logs in as root here), so "it
//! ran" is checked where the command acts, not in the UI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use paw_e2e::{approved_in_inbox, second_workstation, App, Broker, CoreTerminal};
use paw_proto::ipc::ElevationAction;
use paw_tests::sshd::TempSshd;

const POLICY: &str = r#"
[groups]
sre = ["ada", "bob"]
leads = ["ada"]

[[entitlement]]
id = "web-rm-stepup"
description = "Root on the web servers; rm after the user's own step-up"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"

[entitlement.commands]
hold_secs = 120
rules = [{ program = "rm", action = "step_up" }]

[[entitlement]]
id = "web-rm-approve"
description = "Root on the web servers; rm only with a lead's approval"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = { required = 1, groups = ["leads"] }

[entitlement.commands]
hold_secs = 120
rules = [{ program = "rm", action = "approve" }]
"#;

/// How long a wait for the app, the broker or the target may take, and how often it looks.
const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(500);

/// The target (a real sshd trusting a fresh user CA) and a broker whose sessions go to it as
/// `web-1`, with [`POLICY`].
struct Setup {
    broker: Broker,
    _sshd: TempSshd,
    _keys: tempfile::TempDir,
}

fn start() -> Setup {
    let keys = tempfile::tempdir().unwrap();
    let ca = keys.path().join("ssh_user_ca");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "e2e broker CA", "-f"])
        .arg(&ca)
        .status()
        .unwrap();
    assert!(st.success());
    let ca_pub = std::fs::read_to_string(ca.with_extension("pub")).unwrap();
    let sshd = TempSshd::start(&ca_pub).unwrap();
    let ssh_port = paw_e2e::free_port().unwrap();
    let config = format!(
        "{POLICY}\n[sessions]\nssh_listen = \"127.0.0.1:{ssh_port}\"\nssh_ca_key = \"{ca}\"\n\n\
         [[target]]\nname = \"web-1\"\nkind = \"ssh\"\naddress = \"{addr}\"\nhost_key = \"{hk}\"\n",
        ca = ca.display(),
        addr = sshd.address(),
        hk = sshd.host_key(),
    );
    Setup {
        broker: Broker::start_with_policy(&config).unwrap(),
        _sshd: sshd,
        _keys: keys,
    }
}

/// A file on the target for `rm` to remove: while it exists, the command has not run.
fn marker(dir: &Path) -> PathBuf {
    let m = dir.join("marker");
    std::fs::write(&m, "held-command e2e").unwrap();
    m
}

/// The terminal's text mirror (visually hidden, so read `textContent`, not WebDriver's text).
async fn terminal_text(app: &App) -> String {
    app.client
        .execute(
            "const e = document.querySelector('[data-testid=terminal-text]'); \
             return e ? e.textContent : '';",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until the file is gone from the target, failing with a screenshot.
async fn until_removed(app: &App, m: &Path) {
    if let Err(e) = app
        .wait_until("the held command to run", WAIT, POLL, async || {
            Ok(!m.exists())
        })
        .await
    {
        panic!("{e} (screen: {})", app.failure_screenshot().await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j3_a_held_rm_runs_after_the_user_s_own_step_up_in_the_app() {
    let s = start();
    let app = App::launch(Some(&s.broker)).await.unwrap();
    app.enroll_and_sign_in(&s.broker, "ada").await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let m = marker(scratch.path());
    let command = format!("rm {}", m.display());

    // Root on web-1 (approved automatically), then a terminal on it.
    app.fill_request(
        "web-rm-stepup",
        "web-1",
        10,
        "clear the stale cache by hand",
    )
    .await
    .unwrap();
    // The form lists the entitlement's command rules, which push the button under the status
    // bar of the test's window: bring it into view first.
    app.scroll_into_view("[data-testid=request-submit]")
        .await
        .unwrap();
    app.submit_request("web-1").await.unwrap();
    app.wait_for("[data-testid=grant-row][data-state=active]")
        .await
        .unwrap();
    app.click("[data-testid=nav-sessions]").await.unwrap();
    app.click("[data-testid=session-open]").await.unwrap();
    app.wait_for_text("[data-testid=stepup-description]", "web-1")
        .await
        .unwrap();
    app.click("[data-testid=stepup-approve]").await.unwrap();
    let input = app
        .wait_for("[data-testid=terminal] textarea")
        .await
        .unwrap();
    app.wait_until("a shell prompt", WAIT, POLL, async || {
        Ok(terminal_text(&app).await.contains('#'))
    })
    .await
    .unwrap();

    // The rules hold it: the terminal says why and the card shows it, with its countdown.
    input
        .send_keys(&format!("{command}\u{E007}"))
        .await
        .unwrap();
    app.wait_until("the hold line in the terminal", WAIT, POLL, async || {
        Ok(terminal_text(&app)
            .await
            .contains("needs a security-key step-up"))
    })
    .await
    .unwrap();
    let item = "[data-testid=held-commands-own] [data-testid=held-command][data-needs=step_up]";
    app.wait_for(item).await.unwrap();
    let shown = app
        .wait_for_text(&format!("{item} [data-testid=held-command-text]"), &command)
        .await
        .unwrap();
    assert_eq!(shown.trim(), command);
    app.wait_for(&format!("{item} [data-testid=held-command-countdown]"))
        .await
        .unwrap();
    assert!(m.exists(), "ran before its step-up");
    app.scroll_into_view("[data-testid=held-commands-own]")
        .await
        .unwrap();
    app.screenshot("command-held").await.unwrap();

    // "Run it": the prompt names exactly this command, the target and the session.
    app.click(&format!("{item} [data-testid=held-command-run]"))
        .await
        .unwrap();
    let words = app
        .wait_for_text(
            "[data-testid=stepup-description]",
            &format!("Run `{command}` on web-1 in session "),
        )
        .await
        .unwrap();
    assert_eq!(
        app.text_of("[data-testid=stepup-purpose]")
            .await
            .unwrap()
            .as_deref(),
        Some("Held command"),
        "{words}"
    );
    assert!(m.exists(), "ran before the key confirmed it");
    app.click("[data-testid=stepup-approve]").await.unwrap();

    // It runs on the target; the terminal and the page say so.
    until_removed(&app, &m).await;
    app.wait_until("the release in the terminal", WAIT, POLL, async || {
        Ok(terminal_text(&app).await.contains("released by ada"))
    })
    .await
    .unwrap();
    app.wait_for_text("[data-testid=sessions-notice]", "Released")
        .await
        .unwrap();
    app.wait_until("the card to go", WAIT, POLL, async || {
        Ok(app
            .text_of("[data-testid=held-commands-own]")
            .await?
            .is_none())
    })
    .await
    .unwrap();
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j4_an_approver_lets_someone_else_s_held_rm_run_from_the_inbox() {
    let s = start();
    let app = App::launch(Some(&s.broker)).await.unwrap();
    app.enroll_and_sign_in(&s.broker, "ada").await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let bob = second_workstation(&s.broker, scratch.path(), "bob")
        .await
        .unwrap();
    let m = marker(scratch.path());
    let command = format!("rm {}", m.display());

    // Bob's grant needs a lead: ada approves it in her inbox.
    let grant = approved_in_inbox(
        &app,
        &bob,
        ElevationAction::Request {
            entitlement: "web-rm-approve".into(),
            target: "web-1".into(),
            role: "root".into(),
            duration_secs: 600,
            justification: "remove the stuck lock file".into(),
            ticket: None,
            start_at_ms: None,
        },
        "web-1",
    )
    .await
    .unwrap();

    // Bob's terminal, typed into through his core; the rules hold his rm for an approver.
    let term = CoreTerminal::open(&bob, &grant.id).await.unwrap();
    term.sees("# ").await.unwrap();
    term.types(&bob, &format!("{command}\r")).await.unwrap();
    term.sees("second person's approval").await.unwrap();

    // Ada's inbox shows it as it happens: whose, where, what it needs.
    let item = "[data-testid=held-commands-approve] [data-testid=held-command][data-needs=approve]";
    app.wait_for(item).await.unwrap();
    let shown = app
        .wait_for_text(&format!("{item} [data-testid=held-command-text]"), &command)
        .await
        .unwrap();
    assert_eq!(shown.trim(), command);
    app.wait_for_text(
        &format!("{item} [data-testid=held-command-where]"),
        "bob’s session on web-1",
    )
    .await
    .unwrap();
    assert!(m.exists(), "ran before anyone approved it");
    app.scroll_into_view("[data-testid=held-commands-approve]")
        .await
        .unwrap();
    app.screenshot("command-approve").await.unwrap();

    // Approve: the prompt names the command, bob's session and the target.
    app.click(&format!("{item} [data-testid=held-command-approve]"))
        .await
        .unwrap();
    let words = app
        .wait_for_text(
            "[data-testid=stepup-description]",
            &format!("Let run `{command}`"),
        )
        .await
        .unwrap();
    assert!(
        words.contains(&format!("In bob's session {} on web-1", term.session_id)),
        "{words}"
    );
    assert_eq!(
        app.text_of("[data-testid=stepup-purpose]")
            .await
            .unwrap()
            .as_deref(),
        Some("Held command approval")
    );
    app.click("[data-testid=stepup-approve]").await.unwrap();

    until_removed(&app, &m).await;
    term.sees("released by ada").await.unwrap();
    app.wait_for_text("[data-testid=approvals-notice]", "run in bob’s session")
        .await
        .unwrap();
    app.close().await.unwrap();
}
