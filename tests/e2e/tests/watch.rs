//! Live oversight (issue #15 item 5, J6) end to end in the real app, against a real pawd and a
//! real sshd that trusts only the broker's CA:
//! - bob (a second workstation, driven through paw-client's core with his own virtual key) has
//!   a root session on `web-1` under an entitlement with command rules; ada, who approved his
//!   grant, sees the session in the app's live list and watches it read-only: the pane shows
//!   what bob's terminal shows, bob's terminal says that ada is watching, and Stop tells him
//!   she stopped. Screenshot `session-watch`.
//! - After bob's session, ada replays it from the History page: the chapters list the commands
//!   the rules checked (a denied one among them) and the watch. Screenshot `replay-chapters`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

use paw_e2e::{approved_in_inbox, second_workstation, App, Broker, CoreTerminal};
use paw_proto::ipc::ElevationAction;
use paw_proto::session::SessionIdInput;
use paw_tests::sshd::TempSshd;

const POLICY: &str = r#"
[groups]
sre = ["bob"]
leads = ["ada"]

[[entitlement]]
id = "web-root-watched"
description = "Root on the web servers, approved by a lead; no shutdown"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = { required = 1, groups = ["leads"] }

[entitlement.commands]
rules = [{ program = "shutdown", action = "deny" }]
"#;

/// How long a wait for the app, the broker or the target may take, and how often it looks.
const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(500);

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

/// The watch pane's text mirror (visually hidden, so `textContent`, not WebDriver's text).
async fn watch_text(app: &App) -> String {
    app.client
        .execute(
            "const e = document.querySelector('[data-testid=watch-text]'); \
             return e ? e.textContent : '';",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn attr(app: &App, css: &str, name: &str) -> Option<String> {
    app.find(css).await.ok()?.attr(name).await.ok().flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j6_an_approver_watches_someone_else_s_live_session_and_replays_its_chapters() {
    let s = start();
    let app = App::launch(Some(&s.broker)).await.unwrap();
    app.enroll_and_sign_in(&s.broker, "ada").await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let bob = second_workstation(&s.broker, scratch.path(), "bob")
        .await
        .unwrap();

    // Bob's grant needs a lead: ada approves it in her inbox.
    let grant = approved_in_inbox(
        &app,
        &bob,
        ElevationAction::Request {
            entitlement: "web-root-watched".into(),
            target: "web-1".into(),
            role: "root".into(),
            duration_secs: 600,
            justification: "look into the 502s on web-1".into(),
            ticket: None,
            start_at_ms: None,
        },
        "web-1",
    )
    .await
    .unwrap();

    // Bob's terminal, typed into through his core.
    let term = CoreTerminal::open(&bob, &grant.id).await.unwrap();
    let sid = term.session_id.clone();
    let t = &term;
    let bob_sees = move |want: &'static str| async move { t.sees(want).await.unwrap() };
    let bob_types = |data: &'static str| term.types(&bob, data);
    bob_sees("# ").await;
    bob_types("uptime\r").await.unwrap();
    bob_types("shutdown -h now\r").await.unwrap();
    bob_sees("command refused").await;

    // Ada's live list shows bob's session, which she may watch.
    app.click("[data-testid=nav-sessions]").await.unwrap();
    let row = format!("[data-testid=live-session-{sid}]");
    app.wait_for(&row).await.unwrap();
    let watch = format!("[data-testid=watch-session-{sid}]");
    app.click(&watch).await.unwrap();
    app.wait_until("the watch to start", WAIT, POLL, async || {
        Ok(attr(&app, "[data-testid=watch-pane]", "data-phase")
            .await
            .as_deref()
            == Some("watching"))
    })
    .await
    .unwrap();
    let title = app
        .text_of("[data-testid=watch-title]")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(title.trim(), "Watching bob on web-1 (read-only)");
    app.wait_for_text("[data-testid=watch-note]", "bob sees that you are watching")
        .await
        .unwrap();
    // The broker told bob before ada saw anything; the screen so far came with the start.
    bob_sees("ada is watching this session").await;
    if let Err(e) = app
        .wait_until(
            "bob's earlier commands on the watched screen",
            WAIT,
            POLL,
            async || Ok(watch_text(&app).await.contains("uptime")),
        )
        .await
    {
        panic!(
            "{e}: {:?} (screen: {})",
            watch_text(&app).await,
            app.failure_screenshot().await
        );
    }

    // What bob types now shows up in the pane as he sees it.
    bob_types("echo watched-$((40+2))\r").await.unwrap();
    bob_sees("watched-42").await;
    if let Err(e) = app
        .wait_until("the output in the watch pane", WAIT, POLL, async || {
            Ok(watch_text(&app).await.contains("watched-42"))
        })
        .await
    {
        panic!(
            "{e}: {:?} (screen: {})",
            watch_text(&app).await,
            app.failure_screenshot().await
        );
    }
    // Nothing typed into the pane reaches bob's session: xterm takes no input.
    let before = term.len();
    if let Ok(input) = app.find("[data-testid=watch-terminal] textarea").await {
        let _ = input.send_keys("echo typed-by-the-watcher\u{E007}").await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = term.text_from(before);
    assert!(!after.contains("typed-by-the-watcher"), "{after}");
    app.scroll_into_view("[data-testid=watch-pane]")
        .await
        .unwrap();
    app.screenshot("session-watch").await.unwrap();

    // Stop: bob is told.
    app.click("[data-testid=watch-stop]").await.unwrap();
    bob_sees("ada stopped watching").await;
    app.wait_until("the pane to close", WAIT, POLL, async || {
        Ok(app.text_of("[data-testid=watch-pane]").await?.is_none())
    })
    .await
    .unwrap();

    // Bob ends his session; ada replays it: its chapters name the checked commands and the watch.
    bob.close_terminal(SessionIdInput {
        session_id: sid.clone(),
    })
    .await
    .unwrap();
    app.click("[data-testid=nav-history]").await.unwrap();
    let replay = format!("[data-testid=history-replay-{sid}]");
    app.wait_until("bob's session in the history", WAIT, POLL, async || {
        if app.text_of(&replay).await?.is_some() {
            return Ok(true);
        }
        // The list does not follow the session's end on its own: look again.
        app.click("[data-testid=nav-sessions]").await?;
        app.click("[data-testid=nav-history]").await?;
        Ok(false)
    })
    .await
    .unwrap();
    app.click(&replay).await.unwrap();
    app.wait_for("[data-testid=replay-verified]").await.unwrap();
    let chapters = app
        .wait_for_text("[data-testid=replay-chapters]", "shutdown")
        .await
        .unwrap();
    for want in ["uptime", "shutdown -h now", "ada"] {
        assert!(chapters.contains(want), "{want:?} in {chapters}");
    }
    app.wait_until("the player to load", WAIT, POLL, async || {
        Ok(matches!(
            attr(&app, "[data-testid=replay-player]", "data-state")
                .await
                .as_deref(),
            Some("ready" | "playing" | "paused" | "ended")
        ))
    })
    .await
    .unwrap();
    app.scroll_into_view("[data-testid=replay-chapters]")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.screenshot("replay-chapters").await.unwrap();
    app.close().await.unwrap();
}
