//! The audit trail end to end in the real app: ada's privileged actions are on her Audit page
//! and verify; one byte of one record is changed in the local database (as someone with the
//! file could) and verification fails naming that record; then a help-desk user replays a
//! recorded session from the Session history, with a configured secret masked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

use paw_e2e::{second_workstation, App, Broker};
use paw_proto::ipc::ElevationAction;
use paw_proto::session::{OpenSessionInput, SessionIdInput, TerminalInput};
use paw_tests::sshd::TempSshd;

const POLICY: &str = r#"
[groups]
sre = ["ada", "bob"]

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

/// How long a wait for the app may take (120 looks), and how often it looks.
const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(500);

/// Bob's workstation: paw-client's core with its own virtual key; he opens a recorded session
/// and types a "token" the broker's mask hides from help-desk.
async fn bobs_recorded_session(broker: &Broker, dir: &std::path::Path) -> String {
    let core = second_workstation(broker, dir, "bob").await.unwrap();
    let p = core
        .prepare_elevation(ElevationAction::Request {
            entitlement: "web-root".into(),
            target: "web-1".into(),
            role: "root".into(),
            duration_secs: 600,
            justification: "rotate the deploy token".into(),
            ticket: None,
            start_at_ms: None,
        })
        .await
        .unwrap();
    let grant = core.confirm_elevation(p.id).await.unwrap();
    let p = core
        .prepare_session(OpenSessionInput {
            grant_id: grant.id.clone(),
        })
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let view = core
        .open_terminal(p.id, move |e| {
            let _ = tx.send(e);
        })
        .await
        .unwrap();
    core.terminal_input(TerminalInput {
        session_id: view.session_id.clone(),
        data: "echo token=abc123SECRET; echo done-$((40+2))\n".into(),
    })
    .await
    .unwrap();
    let mut seen = String::new();
    while !seen.contains("done-42") {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(paw_proto::session::TerminalEvent::Output { data })) => {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .unwrap();
                seen.push_str(&String::from_utf8_lossy(&bytes));
            }
            Ok(Some(_)) => {}
            other => panic!("bob's session: {other:?}; so far {seen:?}"),
        }
    }
    core.close_terminal(SessionIdInput {
        session_id: view.session_id.clone(),
    })
    .await
    .unwrap();
    view.session_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d2_tampered_local_trail_fails_verification_and_helpdesk_replays_a_recording() {
    let keys = tempfile::tempdir().unwrap();
    let ca = keys.path().join("ssh_user_ca");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "e2e broker CA", "-f"])
        .arg(&ca)
        .status()
        .unwrap();
    assert!(st.success());
    let sshd =
        TempSshd::start(&std::fs::read_to_string(ca.with_extension("pub")).unwrap()).unwrap();
    let config = format!(
        "{POLICY}\n[sessions]\nssh_listen = \"127.0.0.1:{port}\"\nssh_ca_key = \"{ca}\"\n\
         mask = [\"token=[A-Za-z0-9]+\"]\n\n\
         [[target]]\nname = \"web-1\"\nkind = \"ssh\"\naddress = \"{addr}\"\nhost_key = \"{hk}\"\n",
        port = paw_e2e::free_port().unwrap(),
        ca = ca.display(),
        addr = sshd.address(),
        hk = sshd.host_key(),
    );
    let broker = Broker::start_with_policy(&config).unwrap();
    let app = App::launch(Some(&broker)).await.unwrap();
    app.enroll_and_sign_in(&broker, "ada").await.unwrap();

    // A privileged action of ada's: a request with a step-up.
    app.fill_request("web-root", "web-1", 5, "check the disk usage")
        .await
        .unwrap();
    app.submit_request("web-1").await.unwrap();
    app.wait_for("[data-testid=grant-row][data-state=active]")
        .await
        .unwrap();

    // The Audit page: her trail, verified.
    app.click("[data-testid=nav-audit]").await.unwrap();
    app.click("[data-testid=audit-verify]").await.unwrap();
    app.wait_for_text("[data-testid=audit-verify-badge]", "erified")
        .await
        .unwrap();
    app.screenshot("audit-verified").await.unwrap();

    // Someone with the file changes one byte of the request's record (its justification),
    // going around the append-only trigger as they could with any SQLite tool.
    let db = app.config_dir().join("audit.db");
    let url = format!("sqlite://{}", db.display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let (seq,): (i64,) = sqlx::query_as(
        "SELECT seq FROM audit_log WHERE detail LIKE '%check the disk usage%' ORDER BY seq LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    sqlx::query("DROP TRIGGER audit_log_no_update")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE audit_log SET detail = replace(detail, 'check the disk', 'check the dusk') WHERE seq = $1",
    )
    .bind(seq)
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);
    app.click("[data-testid=audit-verify]").await.unwrap();
    let bad = app
        .wait_for_text("[data-testid=audit-first-bad]", "FAILED")
        .await
        .unwrap();
    assert!(bad.contains(&format!("#{seq}")), "{bad}");
    app.screenshot("audit-failed").await.unwrap();

    // Bob's recorded session, then help-desk replays it.
    let work = tempfile::tempdir().unwrap();
    let sid = bobs_recorded_session(&broker, work.path()).await;
    app.click("[data-testid=signout]").await.unwrap();
    app.enroll_and_sign_in_as(&broker, "hal", "helpdesk")
        .await
        .unwrap();
    app.click("[data-testid=nav-history]").await.unwrap();
    let replay = format!("[data-testid=history-replay-{sid}]");
    app.wait_until("bob's session in the history", WAIT, POLL, async || {
        Ok(app.text_of(&replay).await?.is_some())
    })
    .await
    .unwrap();
    app.click(&replay).await.unwrap();
    app.wait_for("[data-testid=replay-verified]").await.unwrap();
    app.wait_for("[data-testid=replay-masked]").await.unwrap();
    app.wait_until("the player to load", WAIT, POLL, async || {
        let el = app.wait_for("[data-testid=replay-player]").await?;
        Ok(matches!(
            el.attr("data-state").await?.as_deref(),
            Some("ready" | "playing" | "paused" | "ended")
        ))
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    app.screenshot("replay").await.unwrap();
    let page = app
        .text_of("[data-testid=replay-pane]")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(!page.contains("abc123SECRET"), "{page}");
    app.close().await.unwrap();
}
