//! Vaulted credentials in the real app against a real pawd and a real OpenSSH server standing
//! in for a legacy host (issue #17). bob (no admin) sees the vaulted accounts his entitlement
//! may use and can reveal none without a grant. ada, an administrator on the same team, asks
//! for root on legacy-1 (approved at once) and reveals its password once, under its own
//! step-up bound to account, grant and reason; it counts down, hides itself, and once the
//! dialog is gone no trace of it is left in the page, the WebView's storage, the app's IPC
//! answers or the app's files. Releasing the grant ends her checkout and makes the broker
//! rotate the password; the host does not answer (its sshd is stopped), so the rotation fails
//! and Rotation health shows it with its error; once the host is back she rotates it from
//! there and the alert clears.
//!
//! One app, bob then ada: a workstation's local audit trail belongs to the first user whose
//! actions the broker's witness cosigned (its origin is the device key, in the OS keyring every
//! app instance of this session shares), so bob does nothing that is witnessed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant};

use paw_e2e::{files_containing, signal, App, Broker};
use paw_tests::vault_sshd::LegacySshd;
use serde_json::json;

/// legacy-1's root password as imported (and as the host has it).
const PASSWORD: &str = "Legacy-Vault-Pw-3k9QzT7x";
/// The generic secret of an appliance console paw cannot reach (never revealed here).
const CONSOLE_SECRET: &str = "Console-Generic-Secret-8fWm2";
const REVEAL_REASON: &str = "INC-4711: the appliance console has no SSO";

/// How long a wait for the app or the broker may take, and how often it looks.
const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(500);

/// One legacy target, the vault paced for a test (a reconcile every second, an adapter step
/// gives up after 3 s, a reveal shows for 20 s), and root on legacy-* for sre with the vault.
/// A broker rotates only when it serves sessions, hence `[sessions]`.
fn policy(legacy: &LegacySshd) -> String {
    format!(
        r#"
[sessions]
ssh_listen = "127.0.0.1:{ssh_port}"

[[target]]
name = "legacy-1"
kind = "ssh"
address = "{addr}"
host_key = "{hk}"

[vault]
kek_id = "kek-1"
kek_file = "vault-kek"
reconcile_secs = 1
step_timeout_secs = 3
reveal_show_secs = 20

[groups]
sre = ["ada", "bob"]

[[entitlement]]
id = "legacy-root"
description = "root on the legacy hosts, logged in with the vaulted credential"
target_kind = "ssh"
target = "legacy-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
vault = ["inject", "reveal"]
"#,
        ssh_port = paw_e2e::free_port().unwrap(),
        addr = legacy.address(),
        hk = legacy.host_key(),
    )
}

/// An OpenSSH public key line for the host's key file (this test logs in by password only).
fn unused_public_key() -> String {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("unused");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "unused", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read_to_string(key.with_extension("pub"))
        .unwrap()
        .trim()
        .to_owned()
}

fn row(account: &str) -> String {
    format!("[data-testid='vault-account-row-{account}']")
}

fn health_item(account: &str) -> String {
    format!("[data-testid=rotation-health-item][data-account='{account}']")
}

async fn open_vault(app: &App) {
    app.click("[data-testid=nav-vault]").await.unwrap();
    app.wait_for("[data-testid=vault-page]").await.unwrap();
}

/// The countdown's `m:ss` in seconds.
fn seconds(countdown: &str) -> u64 {
    let (m, s) = countdown
        .trim()
        .split_once(':')
        .unwrap_or_else(|| panic!("not a countdown: {countdown:?}"));
    m.parse::<u64>().unwrap() * 60 + s.parse::<u64>().unwrap()
}

/// Every place in the app a user could read `secret` from after the reveal is over: the
/// page, the WebView's storage, the answers of the app's read commands, and the files of the
/// app's home (its config dir, WebKit's data and caches). The places it was found.
async fn traces_of(app: &App, secret: &str) -> Vec<String> {
    let mut found = Vec::new();
    if app.page_text().await.unwrap().contains(secret) {
        found.push("the page".to_owned());
    }
    if app.web_storage().await.unwrap().contains(secret) {
        found.push("localStorage/sessionStorage".to_owned());
    }
    for (cmd, args) in [
        ("app_status", json!({})),
        ("list_grants", json!({})),
        ("list_vault_accounts", json!({})),
        ("live_events", json!({ "since": 0 })),
        (
            "audit_query",
            json!({ "input": { "limit": 500, "offset": 0 } }),
        ),
    ] {
        let answer = app.invoke(cmd, args).await.unwrap();
        assert!(!answer.starts_with("refused"), "{cmd}: {answer}");
        if answer.contains(secret) {
            found.push(format!("the answer of {cmd}"));
        }
    }
    for f in files_containing(app.home.path(), secret).unwrap() {
        found.push(f.display().to_string());
    }
    found
}

/// Rotates `account` from its Rotation health item with a reason and the step-up: the notice
/// the page gives afterwards.
async fn rotate_from_health(app: &App, account: &str, reason: &str) -> String {
    app.click(&format!(
        "{} [data-testid=rotation-health-rotate]",
        health_item(account)
    ))
    .await
    .unwrap();
    app.type_into("[data-testid=vault-rotate-reason]", reason)
        .await
        .unwrap();
    app.click("[data-testid=vault-rotate-submit]")
        .await
        .unwrap();
    app.wait_for_text(
        "[data-testid=stepup-description]",
        &format!("Rotate the secret of {account} now. Reason: {reason}"),
    )
    .await
    .unwrap();
    app.click("[data-testid=stepup-approve]").await.unwrap();
    let mut notice = String::new();
    app.wait_until("the rotation's outcome", WAIT, POLL, async || {
        for refusal in ["vault-rotate-error", "stepup-error"] {
            if let Some(e) = app.text_of(&format!("[data-testid={refusal}]")).await? {
                panic!("the rotation was refused: {e}");
            }
        }
        notice = app
            .text_of("[data-testid=vault-notice]")
            .await?
            .unwrap_or_default();
        Ok(notice.contains(account))
    })
    .await
    .unwrap();
    notice
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_l4_a_reveal_shows_once_leaves_no_trace_and_its_forced_rotation_reports_in_rotation_health(
) {
    let started = Instant::now();
    let legacy = LegacySshd::start(PASSWORD, &unused_public_key()).unwrap();
    let broker = Broker::start_with_vault(&policy(&legacy)).unwrap();

    // The administrator imports two accounts on the broker host; the report names no secret.
    let import = tempfile::tempdir().unwrap();
    let csv = import.path().join("accounts.csv");
    std::fs::write(
        &csv,
        format!(
            "target,account,kind,secret\nlegacy-1,root,ssh_password,{PASSWORD}\n\
             legacy-console,root,generic,{CONSOLE_SECRET}\n"
        ),
    )
    .unwrap();
    let report = broker.vault_import(&csv).unwrap();
    assert!(report.contains("2 account(s) vaulted"), "{report}");
    assert!(
        !report.contains(PASSWORD) && !report.contains(CONSOLE_SECRET),
        "the import printed a secret: {report}"
    );
    drop(import);

    let app = App::launch(Some(&broker)).await.unwrap();
    app.enroll_and_sign_in_as(&broker, "bob", "engineer")
        .await
        .unwrap();

    // Without a grant bob sees the accounts his entitlement may use, and can neither reveal
    // nor rotate any.
    open_vault(&app).await;
    app.wait_for_text(
        "[data-testid=vault-heading]",
        "Vaulted accounts you may use",
    )
    .await
    .unwrap();
    app.wait_for(&row("legacy-1/root")).await.unwrap();
    app.wait_for(&row("legacy-console/root")).await.unwrap();
    for button in ["vault-reveal-button", "vault-rotate-button"] {
        assert!(app
            .text_of(&format!("[data-testid={button}]"))
            .await
            .unwrap()
            .is_none());
    }
    app.click("[data-testid=signout]").await.unwrap();

    // ada, an administrator, sees them all.
    app.enroll_and_sign_in(&broker, "ada").await.unwrap();
    open_vault(&app).await;
    app.wait_for_text("[data-testid=vault-heading]", "All vaulted accounts")
        .await
        .unwrap();

    // Root on legacy-1 for 30 minutes, approved at once.
    app.fill_request(
        "legacy-root",
        "legacy-1",
        30,
        "the appliance behind legacy-1 needs its console",
    )
    .await
    .unwrap();
    app.submit_request("legacy-1").await.unwrap();
    let active = "[data-testid=grant-row][data-state=active]";
    app.wait_for(active).await.unwrap();
    let grant = app
        .find(active)
        .await
        .unwrap()
        .attr("data-grant-id")
        .await
        .unwrap()
        .expect("the grant row names its grant");

    // The Vault page: both accounts, Reveal on the one the grant is for, Rotate now on the
    // one paw can rotate.
    open_vault(&app).await;
    let reveal = format!("{} [data-testid=vault-reveal-button]", row("legacy-1/root"));
    app.wait_for(&reveal).await.unwrap();
    app.wait_for(&format!(
        "{} [data-testid=vault-rotate-button]",
        row("legacy-1/root")
    ))
    .await
    .unwrap();
    app.wait_for_text("[data-testid=vault-counts]", "2 accounts")
        .await
        .unwrap();
    for button in ["vault-reveal-button", "vault-rotate-button"] {
        assert!(app
            .text_of(&format!(
                "{} [data-testid={button}]",
                row("legacy-console/root")
            ))
            .await
            .unwrap()
            .is_none());
    }
    app.wait_for("[data-testid=rotation-health-ok]")
        .await
        .unwrap();
    app.screenshot("vault").await.unwrap();

    // Reveal: the grant and a reason, then a step-up bound to account, grant and reason (L4).
    app.click(&reveal).await.unwrap();
    app.wait_for("[data-testid=vault-reveal-grant]")
        .await
        .unwrap();
    let offered = app
        .client
        .execute(
            "return Array.from(document.querySelector('[data-testid=vault-reveal-grant]').options)\
             .map((o) => o.value);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(offered, json!([grant]), "the grants offered for the reveal");
    app.select("[data-testid=vault-reveal-grant]", &grant)
        .await
        .unwrap();
    app.type_into("[data-testid=vault-reveal-reason]", REVEAL_REASON)
        .await
        .unwrap();
    app.click("[data-testid=vault-reveal-submit]")
        .await
        .unwrap();
    let words = app
        .wait_for_text(
            "[data-testid=stepup-description]",
            "Reveal the secret of legacy-1/root",
        )
        .await
        .unwrap();
    assert!(
        words.contains(&grant) && words.contains(REVEAL_REASON),
        "the step-up does not name the grant and the reason: {words}"
    );
    assert!(!words.contains(PASSWORD), "{words}");
    app.click("[data-testid=stepup-approve]").await.unwrap();

    // Shown once, with a countdown that runs.
    app.wait_for("[data-testid=vault-reveal-dialog][data-hidden=false]")
        .await
        .unwrap();
    let shown = app
        .text_of("[data-testid=vault-reveal-secret]")
        .await
        .unwrap();
    assert_eq!(shown.as_deref(), Some(PASSWORD));
    let first = app
        .text_of("[data-testid=vault-reveal-countdown]")
        .await
        .unwrap()
        .unwrap();
    assert!((1..=20).contains(&seconds(&first)), "countdown {first:?}");
    // The probe of the page sees the secret while it is shown (so its absence later means
    // something).
    assert!(app.page_text().await.unwrap().contains(PASSWORD));
    app.screenshot("vault-reveal").await.unwrap();
    app.wait_until(
        "the countdown to run",
        Duration::from_secs(5),
        Duration::from_millis(250),
        async || {
            let now = app
                .text_of("[data-testid=vault-reveal-countdown]")
                .await?
                .unwrap_or_default();
            Ok(seconds(&now) < seconds(&first))
        },
    )
    .await
    .unwrap();
    app.click("[data-testid=vault-copy]").await.unwrap();
    app.wait_for_text("[data-testid=vault-copied]", "Copied")
        .await
        .unwrap();

    // At the end of the countdown the secret leaves the screen, though the dialog stays.
    app.wait_for("[data-testid=vault-reveal-hidden]")
        .await
        .unwrap();
    app.wait_for("[data-testid=vault-reveal-dialog][data-hidden=true]")
        .await
        .unwrap();
    assert!(
        !app.page_text().await.unwrap().contains(PASSWORD),
        "the hidden dialog still holds the secret"
    );
    app.click("[data-testid=vault-reveal-close]").await.unwrap();
    app.wait_until("the dialog to close", WAIT, POLL, async || {
        Ok(app
            .text_of("[data-testid=vault-reveal-dialog]")
            .await?
            .is_none())
    })
    .await
    .unwrap();

    // The reveal checked the account out to ada, and its rotation waits for the checkout's end.
    app.wait_for_text(
        &format!("{} [data-testid=vault-holder]", row("legacy-1/root")),
        "You",
    )
    .await
    .unwrap();
    app.wait_for_text(
        &format!("{} [data-testid=vault-next]", row("legacy-1/root")),
        "When the checkout ends",
    )
    .await
    .unwrap();

    // L1: nothing of either secret is left anywhere the app keeps or answers with. First the
    // probes prove they can find a planted copy (in storage, and in a file as WebKit would
    // write it), then they look for the real one.
    app.client
        .execute(
            "sessionStorage.setItem('paw-e2e-control', arguments[0]);",
            vec![json!(PASSWORD)],
        )
        .await
        .unwrap();
    let planted = app.config_dir().join("paw-e2e-control");
    let utf16: Vec<u8> = PASSWORD.encode_utf16().flat_map(u16::to_le_bytes).collect();
    std::fs::write(&planted, utf16).unwrap();
    let control = traces_of(&app, PASSWORD).await;
    assert!(
        control.iter().any(|p| p.contains("sessionStorage"))
            && control.iter().any(|p| p.ends_with("paw-e2e-control")),
        "the probes did not find the planted copies: {control:?}"
    );
    app.client
        .execute("sessionStorage.removeItem('paw-e2e-control');", vec![])
        .await
        .unwrap();
    std::fs::remove_file(&planted).unwrap();
    for secret in [PASSWORD, CONSOLE_SECRET] {
        let traces = traces_of(&app, secret).await;
        assert!(traces.is_empty(), "a secret was left in {traces:?}");
    }

    // ada is done: releasing the grant ends her checkout, and the broker rotates the password
    // it revealed (L4). The host does not answer now, so that rotation fails.
    signal(legacy.pid(), "STOP").unwrap();
    app.click("[data-testid=nav-access]").await.unwrap();
    let release = format!("[data-testid=grant-release][data-grant-id='{grant}']");
    // The CI run of e0c9c42 lost this one click (the app never sent the release, and the
    // button stayed): a click that lands while the page is still settling is dropped by
    // WebKitWebDriver under Xvfb without an error. Click again only while the button is
    // still there and enabled, so at most one release reaches the broker.
    let mut clicks = 0;
    app.wait_until("the grant to end", WAIT, POLL, async || {
        if app.text_of(active).await?.is_none() {
            return Ok(true);
        }
        let idle = app
            .client
            .execute(
                "const b = document.querySelector(arguments[0]); return b !== null && !b.disabled;",
                vec![json!(release)],
            )
            .await?;
        if idle == json!(true) && clicks < 3 {
            clicks += 1;
            app.click(&release).await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        Ok(false)
    })
    .await
    .unwrap();

    // The rotation fails, and Rotation health says so, with the error.
    open_vault(&app).await;
    let failed = format!("{}[data-health=failed]", health_item("legacy-1/root"));
    if let Err(e) = app
        .wait_until("the rotation to fail", WAIT, POLL, async || {
            Ok(app.text_of(&failed).await?.is_some())
        })
        .await
    {
        panic!("{e} (screen: {})", app.failure_screenshot().await);
    }
    let error = app
        .text_of(&format!("{failed} [data-testid=rotation-health-error]"))
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(!error.trim().is_empty(), "the failure has no error");
    app.wait_for_text(
        "[data-testid=rotation-health-summary]",
        "1 rotation has failed",
    )
    .await
    .unwrap();
    app.wait_for(&format!("{}[data-health=failed]", row("legacy-1/root")))
        .await
        .unwrap();
    assert!(app
        .text_of(&health_item("legacy-console/root"))
        .await
        .unwrap()
        .is_none());
    app.wait_for("[data-testid=rotation-health-since]")
        .await
        .unwrap();
    app.screenshot("rotation-health").await.unwrap();

    // The host is back. ada rotates from the alert: the first try may only settle the failed
    // rotation (the host kept the current password, so the pending one is dropped and the
    // alert stays); the next one rotates, and the alert clears.
    signal(legacy.pid(), "CONT").unwrap();
    let mut notices = Vec::new();
    for _ in 0..3 {
        let notice =
            rotate_from_health(&app, "legacy-1/root", "the host is back after INC-4712").await;
        let done = notice.starts_with("Rotated legacy-1/root");
        notices.push(notice);
        if done {
            break;
        }
    }
    assert!(
        notices.last().is_some_and(|n| n.contains("version 2")),
        "no rotation after the host came back: {notices:?}"
    );
    app.wait_for("[data-testid=rotation-health-ok]")
        .await
        .unwrap();
    app.wait_for_text(
        &format!("{} [data-testid=vault-version]", row("legacy-1/root")),
        "v2",
    )
    .await
    .unwrap();
    eprintln!("vault e2e: {notices:?}; {:.0?} in all", started.elapsed());
    app.close().await.unwrap();
}
