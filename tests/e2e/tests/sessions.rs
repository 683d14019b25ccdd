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

async fn click(app: &App, css: &str) {
    app.click(css).await.unwrap();
}

async fn type_into(app: &App, css: &str, text: &str) {
    let el = app.wait_for(css).await.unwrap();
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

async fn select(app: &App, css: &str, value: &str) {
    app.wait_for(css).await.unwrap();
    app.client
        .execute(
            "const s = document.querySelector(arguments[0]); s.value = arguments[1]; \
             s.dispatchEvent(new Event('change', {bubbles: true})); \
             s.dispatchEvent(new Event('input', {bubbles: true}));",
            vec![serde_json::json!(css), serde_json::json!(value)],
        )
        .await
        .unwrap();
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

async fn wait_until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..240 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("timed out waiting for {what}");
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
    click(&app, "[data-testid=nav-access]").await;
    app.wait_for("[data-testid=request-form]").await.unwrap();
    select(&app, "[data-testid=request-entitlement]", "web-root").await;
    type_into(&app, "[data-testid=request-target]", "web-1").await;
    type_into(&app, "[data-testid=request-duration]", "1").await;
    type_into(
        &app,
        "[data-testid=request-justification]",
        "restart the stuck worker pool",
    )
    .await;
    click(&app, "[data-testid=request-submit]").await;
    app.wait_for_text("[data-testid=stepup-description]", "web-1")
        .await
        .unwrap();
    click(&app, "[data-testid=stepup-approve]").await;
    app.wait_for("[data-testid=grant-row][data-state=active]")
        .await
        .unwrap();

    // Sessions: open a terminal on the grant (a session-scoped step-up).
    click(&app, "[data-testid=nav-sessions]").await;
    if let Err(e) = app.wait_for("[data-testid=session-open]").await {
        panic!(
            "no grant to open a session on: {e} (screen: {})",
            app.failure_screenshot().await
        );
    }
    click(&app, "[data-testid=session-open]").await;
    app.wait_for_text("[data-testid=stepup-description]", "web-1")
        .await
        .unwrap();
    click(&app, "[data-testid=stepup-approve]").await;
    app.wait_for("[data-testid=terminal]").await.unwrap();

    // whoami in the embedded terminal: keys go to xterm's input element.
    let input = app
        .wait_for("[data-testid=terminal] textarea")
        .await
        .unwrap();
    wait_until("a shell prompt", async || {
        terminal_text(&app).await.contains('#')
    })
    .await;
    input.send_keys("whoami\u{E007}").await.unwrap();
    wait_until("whoami's answer", async || {
        let t = terminal_text(&app).await;
        t.lines()
            .skip_while(|l| !l.contains("whoami"))
            .skip(1)
            .any(|l| l.trim() == "root")
    })
    .await;
    app.screenshot("terminal").await.unwrap();

    // The live-sessions list shows it (ada is an admin here, so she may end it).
    app.client
        .execute(
            // The page scrolls, never the window (which scrollIntoView may also move).
            "document.querySelector('[data-testid=live-sessions]').scrollIntoView({block: 'center'}); \
             document.scrollingElement.scrollTop = 0;",
            vec![],
        )
        .await
        .unwrap();
    wait_until("the live session listed", async || {
        app.text_of("[data-testid=live-sessions]")
            .await
            .unwrap()
            .is_some_and(|t| t.contains("web-1"))
    })
    .await;
    app.screenshot("sessions-live").await.unwrap();

    // The grant ends; the broker ends the session and the terminal says why.
    wait_until("the session to end with the grant", async || {
        app.text_of("[data-testid=terminal-ended]")
            .await
            .unwrap()
            .is_some()
    })
    .await;
    let ended = app.wait_for("[data-testid=terminal-ended]").await.unwrap();
    assert_eq!(
        ended.attr("data-reason").await.unwrap().as_deref(),
        Some("grant_ended")
    );
    app.client
        .execute(
            "document.querySelector('[data-testid=terminal-ended]').scrollIntoView({block: 'center'}); \
             document.scrollingElement.scrollTop = 0;",
            vec![],
        )
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
