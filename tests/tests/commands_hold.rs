//! Held commands (issue #15, J3 and J4), against a real `pawd` and a real sshd with bash: a
//! command the rules mark `step_up` or `approve` waits in the live terminal, its Enter kept
//! from the target, until its own step-up or another person's approval; refusal and timeout
//! drop it. Each outcome is checked on the target (a marker file) and in the audit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use paw_proto::action::Action;
use paw_tests::replicas::{Options, Replicas, Store, SSH_TARGET};
use paw_tests::virtual_user::VirtualUser;
use serde_json::Value;

mod common;

use common::shell::{grant, web_root, Shell};

const PAWD: usize = 0;

/// The groups and entitlements these tests run under.
fn policy() -> String {
    let mut p = String::from(
        r#"[groups]
sre = ["ada"]
leads = ["bob", "ada-admin"]

[people]
ada-admin = "ada"
"#,
    );
    p.push_str(&web_root(
        "web-rm-stepup",
        "Root on the web servers, rm after a step-up",
        r#""auto""#,
        r#"hold_secs = 3
rules = [{ program = "rm", action = "step_up" }]"#,
    ));
    p.push_str(&web_root(
        "web-rm-approve",
        "Root on the web servers, rm approved by a lead",
        r#"{ required = 1, groups = ["leads"] }"#,
        r#"hold_secs = 20
rules = [{ program = "rm", action = "approve" }]"#,
    ));
    p
}

async fn start() -> Replicas {
    Replicas::start_with(Options {
        replicas: 1,
        store: Store::Sqlite,
        sshd: true,
        extra_config: policy(),
    })
    .await
    .unwrap()
}

/// The one pending hold `user` sees, waiting for it to appear.
async fn the_hold(r: &Replicas, user: &mut VirtualUser) -> Value {
    for _ in 0..50 {
        let list = user
            .call(&r.url(PAWD), "GET", "/v1/holds", None)
            .await
            .unwrap()
            .ok()
            .unwrap();
        if let Some(h) = list["holds"].as_array().unwrap().first() {
            return h.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no hold appeared");
}

fn actions(audit: &[Value], action: &str) -> Vec<Value> {
    audit
        .iter()
        .filter(|a| a["action"] == action)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j3_a_held_command_runs_only_after_its_own_step_up() {
    let r = start().await;
    let mut ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    let g = grant(&r, &mut ada, "web-rm-stepup", SSH_TARGET).await;
    let other = grant(&r, &mut ada, "web-rm-stepup", SSH_TARGET).await;
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    std::fs::write(&m, "marker").unwrap();
    let mut t = Shell::open(&r, &mut ada, &g, SSH_TARGET).await;

    // Held, said so in the terminal, and listed for its user.
    t.line(&format!("rm {}", m.display())).await;
    t.until("needs a security-key step-up", 0).await;
    let hold = the_hold(&r, &mut ada).await;
    let id = hold["id"].as_str().unwrap().to_owned();
    let command = format!("rm {}", m.display());
    assert_eq!(hold["command"], command.as_str(), "{hold}");
    assert_eq!(hold["needs"], "step_up");
    let session_id = hold["session_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/holds/{id}/release");

    // A step-up for another command, another session or another target does not release it.
    for wrong in [
        Action::Command {
            session_id: session_id.clone(),
            target: SSH_TARGET.into(),
            command: "rm /tmp/other".into(),
        },
        Action::Command {
            session_id: other.clone(),
            target: SSH_TARGET.into(),
            command: command.clone(),
        },
        Action::Command {
            session_id: session_id.clone(),
            target: "web-2".into(),
            command: command.clone(),
        },
    ] {
        let answer = ada.signed(&r.url(PAWD), &path, &wrong).await.unwrap();
        assert!(answer.ok().is_err(), "{wrong:?} released the hold");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(m.exists(), "ran before its step-up");

    // Its own step-up: it runs.
    let right = Action::Command {
        session_id: session_id.clone(),
        target: SSH_TARGET.into(),
        command: command.clone(),
    };
    let v = ada
        .signed(&r.url(PAWD), &path, &right)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["state"], "released", "{v}");
    t.sync(1).await;
    assert!(!m.exists(), "released but did not run:\n{}", t.screen());
    // Not twice.
    let again = ada.signed(&r.url(PAWD), &path, &right).await.unwrap();
    assert!(again.ok().is_err());

    // No step-up within hold_secs (3 s): refused, and it never runs.
    std::fs::write(&m, "marker").unwrap();
    let before = t.seen.len();
    t.line(&format!("rm {}", m.display())).await;
    t.until("no decision within 3 s", before).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.sync(2).await;
    assert!(m.exists(), "ran without a step-up:\n{}", t.screen());

    // ^C while held gives the command up at once.
    let before = t.seen.len();
    t.line(&format!("rm {}", m.display())).await;
    t.until("needs a security-key step-up", before).await;
    t.type_row(&["\u{3}"], dir.path(), 0).await;
    t.until("given up (^C)", before).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.sync(3).await;
    assert!(m.exists(), "ran though given up:\n{}", t.screen());

    let audit = common::sqlite_audit(&r).await;
    assert_eq!(actions(&audit, "command_held").len(), 3);
    let released = actions(&audit, "command_released");
    assert_eq!(released.len(), 1, "{released:#?}");
    assert_eq!(released[0]["actor"], "ada");
    assert_eq!(released[0]["detail"]["command"], command.as_str());
    let expired = actions(&audit, "command_expired");
    assert_eq!(expired.len(), 2, "{expired:#?}");
    assert_eq!(expired[1]["detail"]["why"], "given up by its user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j4_a_command_needing_approval_runs_only_when_another_person_approves() {
    let r = start().await;
    let mut ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    let mut ada_admin = r.enrolled("ada-admin", &[], PAWD).await.unwrap();
    let mut bob = r.enrolled("bob", &[], PAWD).await.unwrap();
    // The grant itself needs bob.
    let request = Action::Request {
        entitlement: "web-rm-approve".into(),
        target: SSH_TARGET.into(),
        role: "root".into(),
        duration_secs: 30 * 60,
        justification: "held command approval test".into(),
        ticket: None,
        start_at_ms: None,
    };
    let v = ada
        .signed(&r.url(PAWD), "/v1/requests", &request)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let g = v["id"].as_str().unwrap().to_owned();
    let approve = Action::Approve {
        request_id: g.clone(),
        approve: true,
        comment: "ok".into(),
    };
    bob.signed(&r.url(PAWD), &format!("/v1/requests/{g}/decide"), &approve)
        .await
        .unwrap()
        .ok()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    std::fs::write(&m, "marker").unwrap();
    let command = format!("rm {}", m.display());
    let mut t = Shell::open(&r, &mut ada, &g, SSH_TARGET).await;

    // Bob's inbox hears of the hold as it happens (his app's live stream).
    let mut events = bob.stream(&r.url(PAWD), "/v1/events").await.unwrap();
    assert_eq!(events.status(), 200);

    // Refused by bob: dropped.
    t.line(&command).await;
    t.until("waits for a second person's approval", 0).await;
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !text.contains("command_held") {
        match tokio::time::timeout_at(deadline, events.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("no command_held event for bob: {other:?} {text}"),
        }
    }
    assert!(text.contains(&command), "{text}");
    let hold = the_hold(&r, &mut bob).await;
    let id = hold["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/holds/{id}/decide");
    let decide = |approve: bool, id: &str| Action::ApproveCommand {
        hold_id: id.to_owned(),
        command: command.clone(),
        approve,
    };
    // The requester cannot approve it, nor under their other account (same person).
    for me in [&mut ada, &mut ada_admin] {
        let answer = me
            .signed(&r.url(PAWD), &path, &decide(true, &id))
            .await
            .unwrap();
        assert_eq!(answer.status, 403, "{}", answer.body);
        assert_eq!(answer.body["code"], "forbidden", "{}", answer.body);
    }
    let before = t.seen.len();
    bob.signed(&r.url(PAWD), &path, &decide(false, &id))
        .await
        .unwrap()
        .ok()
        .unwrap();
    t.until("refused by bob", before).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.sync(1).await;
    assert!(m.exists(), "ran though refused:\n{}", t.screen());

    // Approved by bob: runs. An approval bound to another command does not count.
    let before = t.seen.len();
    t.line(&command).await;
    t.until("waits for a second person's approval", before)
        .await;
    let hold = the_hold(&r, &mut bob).await;
    let id = hold["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/holds/{id}/decide");
    let wrong = Action::ApproveCommand {
        hold_id: id.clone(),
        command: "rm /tmp/other".into(),
        approve: true,
    };
    assert!(bob
        .signed(&r.url(PAWD), &path, &wrong)
        .await
        .unwrap()
        .ok()
        .is_err());
    assert!(m.exists());
    bob.signed(&r.url(PAWD), &path, &decide(true, &id))
        .await
        .unwrap()
        .ok()
        .unwrap();
    t.sync(2).await;
    assert!(!m.exists(), "approved but did not run:\n{}", t.screen());

    let audit = common::sqlite_audit(&r).await;
    let refused = actions(&audit, "command_refused");
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert_eq!(refused[0]["actor"], "bob");
    let approved = actions(&audit, "command_approved");
    assert_eq!(approved.len(), 1, "{approved:#?}");
    assert_eq!(approved[0]["actor"], "bob");
    assert_eq!(approved[0]["detail"]["user"], "ada");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j3_on_postgres_a_hold_is_released_through_another_broker() {
    let r = Replicas::start_with(Options {
        replicas: 2,
        store: Store::Postgres,
        sshd: true,
        extra_config: policy(),
    })
    .await
    .unwrap();
    let mut ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    let g = grant(&r, &mut ada, "web-rm-stepup", SSH_TARGET).await;
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    std::fs::write(&m, "marker").unwrap();
    // The session runs on broker 0; the app talks to broker 1.
    let mut t = Shell::open(&r, &mut ada, &g, SSH_TARGET).await;
    let command = format!("rm {}", m.display());
    t.line(&command).await;
    t.until("needs a security-key step-up", 0).await;
    let list = ada
        .call(&r.url(1), "GET", "/v1/holds", None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let hold = &list["holds"][0];
    assert_eq!(hold["command"], command.as_str(), "{list}");
    let right = Action::Command {
        session_id: hold["session_id"].as_str().unwrap().to_owned(),
        target: SSH_TARGET.into(),
        command: command.clone(),
    };
    let path = format!("/v1/holds/{}/release", hold["id"].as_str().unwrap());
    ada.signed(&r.url(1), &path, &right)
        .await
        .unwrap()
        .ok()
        .unwrap();
    t.sync(1).await;
    assert!(
        !m.exists(),
        "released on broker 1 but did not run:\n{}",
        t.screen()
    );
    let n = common::psql(
        &r,
        "SELECT count(*) FROM audit_log WHERE action IN ('command_held', 'command_released')",
    );
    assert_eq!(n, "2");
}
