//! A brokered SSH session end to end in the real app: ada's active grant on web-1 becomes an
//! embedded terminal in one click (and a step-up), `whoami` answers through the broker from a
//! real sshd that trusts only the broker's CA, the live-sessions list shows it, and when the
//! grant expires the broker ends the session and the terminal says why.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

use paw_e2e::{App, Broker};
use paw_tests::sshd::TempSshd;

const POLICY: &str = r#"
[groups]
sre = ["ada"]

[[entitlement]]
id = "web-root"
description = "Root on the web servers"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
"#;

/// How long a wait for the app or the session may take (240 looks), and how often it looks.
const WAIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(500);

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_session_whoami_in_the_embedded_terminal_then_the_grant_ends_it() {
    // The broker's user CA first: the target must trust it before the broker starts.
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
    let broker = Broker::start_with_policy(&config).unwrap();
    let app = App::launch(Some(&broker)).await.unwrap();
    app.enroll_and_sign_in(&broker, "ada").await.unwrap();

    // One minute of root on web-1 (approved automatically), with a step-up.
    app.fill_request("web-root", "web-1", 1, "restart the stuck worker pool")
        .await
        .unwrap();
    app.submit_request("web-1").await.unwrap();
    app.wait_for("[data-testid=grant-row][data-state=active]")
        .await
        .unwrap();

    // Sessions: open a terminal on the grant (a session-scoped step-up).
    app.click("[data-testid=nav-sessions]").await.unwrap();
    if let Err(e) = app.wait_for("[data-testid=session-open]").await {
        panic!(
            "no grant to open a session on: {e} (screen: {})",
            app.failure_screenshot().await
        );
    }
    app.click("[data-testid=session-open]").await.unwrap();
    app.wait_for_text("[data-testid=stepup-description]", "web-1")
        .await
        .unwrap();
    app.click("[data-testid=stepup-approve]").await.unwrap();
    app.wait_for("[data-testid=terminal]").await.unwrap();

    // whoami in the embedded terminal: keys go to xterm's input element.
    let input = app
        .wait_for("[data-testid=terminal] textarea")
        .await
        .unwrap();
    app.wait_until("a shell prompt", WAIT, POLL, async || {
        Ok(terminal_text(&app).await.contains('#'))
    })
    .await
    .unwrap();
    input.send_keys("whoami\u{E007}").await.unwrap();
    app.wait_until("whoami's answer", WAIT, POLL, async || {
        let t = terminal_text(&app).await;
        Ok(t.lines()
            .skip_while(|l| !l.contains("whoami"))
            .skip(1)
            .any(|l| l.trim() == "root"))
    })
    .await
    .unwrap();
    app.screenshot("terminal").await.unwrap();

    // The live-sessions list shows it (ada is an admin here, so she may end it).
    app.scroll_into_view("[data-testid=live-sessions]")
        .await
        .unwrap();
    app.wait_until("the live session listed", WAIT, POLL, async || {
        Ok(app
            .text_of("[data-testid=live-sessions]")
            .await?
            .is_some_and(|t| t.contains("web-1")))
    })
    .await
    .unwrap();
    app.screenshot("sessions-live").await.unwrap();

    // The grant ends; the broker ends the session and the terminal says why.
    app.wait_until(
        "the session to end with the grant",
        WAIT,
        POLL,
        async || Ok(app.text_of("[data-testid=terminal-ended]").await?.is_some()),
    )
    .await
    .unwrap();
    let ended = app.wait_for("[data-testid=terminal-ended]").await.unwrap();
    assert_eq!(
        ended.attr("data-reason").await.unwrap().as_deref(),
        Some("grant_ended")
    );
    app.scroll_into_view("[data-testid=terminal-ended]")
        .await
        .unwrap();
    app.screenshot("terminal-ended").await.unwrap();
    assert!(
        sshd.log().contains("Accepted publickey for root"),
        "{}",
        sshd.log()
    );
    app.close().await.unwrap();
}
