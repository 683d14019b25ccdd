//! Several real `pawd` processes on one real PostgreSQL (issue #14, cases I4): a ceremony or a
//! one-time credential begun on one replica is finished on another, exactly once, as a load
//! balancer that sends each request anywhere requires.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use paw_client::terminal::{self, Credential, TermEvent};
use paw_proto::action::Action;
use paw_tests::replicas::{request_web, Replicas, SSH_TARGET, WEB_ROOT_POLICY};
use serde_json::json;
use tokio::sync::mpsc;

mod common;
use common::credential_at as credential;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i4_login_started_on_one_broker_finishes_on_another() {
    let r = Replicas::start(2, WEB_ROOT_POLICY).await.unwrap();
    let (a, b) = (r.url(0), r.url(1));
    let mut ada = r.enrolled("ada", &[], 0).await.unwrap();

    let start = ada.login_start(&a).await.unwrap().ok().unwrap();
    let answer = ada.login_answer(&start).unwrap();
    let finished = ada.login_finish(&b, &answer).await.unwrap();
    assert_eq!(finished.status, 200, "{:?}\n{}", finished.body, r.log(1));
    let access = ada.access.clone().unwrap();

    // The session B opened is one every replica knows.
    for url in [&a, &b] {
        let me = ada.call(url, "GET", "/v1/me", None).await.unwrap();
        assert_eq!(
            (me.status, me.body["user"].as_str()),
            (200, Some("ada")),
            "{url}: {:?}",
            me.body
        );
    }
    // The challenge was consumed on B: the same answer is refused on A, and on B again.
    for url in [&a, &b] {
        let again = ada.login_finish(url, &answer).await.unwrap();
        assert_eq!(
            (again.status, again.code()),
            (401, "challenge_invalid"),
            "{url}: {:?}",
            again.body
        );
    }
    // A refused replay did not replace the tokens B issued.
    assert_eq!(ada.access.as_deref(), Some(access.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i4_stepup_challenge_from_one_broker_answered_on_another() {
    let r = Replicas::start(2, WEB_ROOT_POLICY).await.unwrap();
    let (a, b) = (r.url(0), r.url(1));
    let mut ada = r.enrolled("ada", &[], 0).await.unwrap();
    let action = request_web();

    let start = ada.stepup_start(&a, &action).await.unwrap();
    let answer = ada.stepup_answer(&start, &action).unwrap();
    let body = json!({ "stepup": answer });
    let granted = ada
        .call(&b, "POST", "/v1/requests", Some(&body))
        .await
        .unwrap();
    assert_eq!(
        (granted.status, granted.body["state"].as_str()),
        (200, Some("active")),
        "{:?}\n{}",
        granted.body,
        r.log(1)
    );
    let grant = granted.body["id"].as_str().unwrap().to_owned();

    // A sees the grant B made.
    let grants = ada.call(&a, "GET", "/v1/grants", None).await.unwrap();
    assert_eq!(grants.status, 200, "{:?}", grants.body);
    assert!(
        grants.body.to_string().contains(&grant),
        "{:?}",
        grants.body
    );

    // The step-up was used up on B: replayed on A, or on B, it is refused and grants nothing.
    for url in [&a, &b] {
        let again = ada
            .call(url, "POST", "/v1/requests", Some(&body))
            .await
            .unwrap();
        assert_eq!(
            (again.status, again.code()),
            (401, "challenge_invalid"),
            "{url}: {:?}",
            again.body
        );
    }
    let rows = r.pg().unwrap().psql("SELECT count(*) FROM grants").unwrap();
    assert_eq!(rows.trim(), "1", "one grant, however often the answer came");
}

/// A one-time session credential minted (redeemed over HTTP) on replica A is used at B's SSH
/// front door, once; afterwards A's front door refuses it, as does B's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i4_session_credential_redeemed_once_across_brokers() {
    let r = Replicas::start_with_sshd(2, WEB_ROOT_POLICY).await.unwrap();
    let a = r.url(0);
    let mut ada = r.enrolled("ada", &[], 0).await.unwrap();
    let granted = ada
        .signed(&a, "/v1/requests", &request_web())
        .await
        .unwrap();
    assert_eq!(granted.body["state"], "active", "{:?}", granted.body);
    let grant = granted.body["id"].as_str().unwrap().to_owned();

    let session = Action::Session {
        grant_id: grant.clone(),
        target: SSH_TARGET.into(),
    };
    let minted = ada
        .signed(&a, &format!("/v1/grants/{grant}/redeem"), &session)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let ssh_a = r.ssh_addr(0).unwrap();
    let ssh_b = r.ssh_addr(1).unwrap();
    assert_eq!(minted["ssh_addr"], ssh_a.as_str(), "{minted}");
    let sid = minted["session_id"].as_str().unwrap().to_owned();

    // Used at B's front door: the session runs there.
    let (_t, mut rx) = open(credential(&minted, &ssh_b), "echo once")
        .await
        .unwrap_or_else(|e| panic!("B refused the ticket: {e}\n{}", r.log(1)));
    let (out, _) = drain(&mut rx).await;
    assert_eq!(out.trim(), "once");

    // Refused afterwards at A's front door, and again at B's.
    for addr in [&ssh_a, &ssh_b] {
        assert!(
            open(credential(&minted, addr), "echo twice").await.is_err(),
            "{addr} accepted a used ticket"
        );
    }
    // One login at the target for this session, and one use on record.
    let sshd_log = r.sshd().unwrap().log();
    let logins = sshd_log
        .lines()
        .filter(|l| l.contains("Accepted publickey") && l.contains(&format!("session={sid}")))
        .count();
    assert_eq!(logins, 1, "{sshd_log}");
    let used = r
        .pg()
        .unwrap()
        .psql(&format!(
            "SELECT count(*) FROM session_tickets WHERE id = '{sid}' AND used_at IS NOT NULL"
        ))
        .unwrap();
    assert_eq!(used.trim(), "1");
    // The audit log: one start, and each refusal on record whichever replica refused it.
    let starts = r
        .pg()
        .unwrap()
        .psql(&format!(
            "SELECT outcome, count(*) FROM audit_log WHERE action = 'session_start' \
             AND subject = '{sid}' GROUP BY outcome ORDER BY outcome"
        ))
        .unwrap();
    assert_eq!(starts.trim(), "denied|2\nsuccess|1", "{starts}");
}

async fn open(
    c: Credential,
    command: &str,
) -> Result<(terminal::Terminal, mpsc::UnboundedReceiver<TermEvent>), paw_client::ClientError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let t = terminal::open(c, 80, 24, Some(command.to_owned()), move |e| {
        let _ = tx.send(e);
    })
    .await?;
    Ok((t, rx))
}

/// Output until the session ends (at most 20 s).
async fn drain(rx: &mut mpsc::UnboundedReceiver<TermEvent>) -> (String, Option<String>) {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(TermEvent::Output(d))) => out.extend(d),
            Ok(Some(TermEvent::Ended { reason, .. })) => {
                return (String::from_utf8_lossy(&out).into(), Some(reason))
            }
            Ok(None) | Err(_) => return (String::from_utf8_lossy(&out).into(), None),
        }
    }
}
