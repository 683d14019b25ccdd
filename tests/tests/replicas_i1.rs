//! Case I1 across replicas: a grant revoked, a session killed, a user disabled or a security key
//! revoked through one broker (B) ends a session that another broker (A) carries, within 1 s.
//!
//! Each test opens a real interactive shell on the sshd target through replica A's SSH front
//! door, runs a command in it and sees its output, then ends it through B: its HTTP API, or for
//! disabling a user (no HTTP route) the `pawd user disable` command with B's config. The clock
//! runs from B's answer to the client seeing A's connection end. A ends the session it carries:
//! the broker's own disconnect message arrives over the connection to A, and the one
//! `session_end` record holds the recording's hash, which only the carrying front door has.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use paw_client::terminal::{self, TermEvent, Terminal};
use paw_proto::action::Action;
use paw_tests::replicas::{request_web, Replicas, SSH_TARGET, WEB_ROOT_POLICY};
use paw_tests::virtual_user::VirtualUser;
use serde_json::json;
use tokio::sync::mpsc;

mod common;
use common::{credential_at as credential, output_until, Events};

/// The case's bound: from B's answer to the end of the session A carries.
const BOUND: Duration = Duration::from_secs(1);

/// Replica A carries the session; B is told to end it.
const A: usize = 0;
const B: usize = 1;

/// A live shell through A's front door, and the people who can end it.
struct Carried {
    r: Replicas,
    ada: VirtualUser,
    admin: VirtualUser,
    grant: String,
    sid: String,
    _term: Terminal,
    rx: Events,
}

/// Two replicas with an sshd; ada's grant redeemed on A and a shell opened at A's front door,
/// in which a command ran and its output came back.
async fn carried_on_a() -> Carried {
    let r = Replicas::start_with_sshd(2, WEB_ROOT_POLICY).await.unwrap();
    let a = r.url(A);
    let mut ada = r.enrolled("ada", &[], A).await.unwrap();
    let admin = r.enrolled("root", &["admin"], B).await.unwrap();
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
    let ssh_a = r.ssh_addr(A).unwrap();
    assert_eq!(minted["ssh_addr"], ssh_a.as_str(), "{minted}");
    let sid = minted["session_id"].as_str().unwrap().to_owned();

    let (tx, mut rx) = mpsc::unbounded_channel();
    let term = terminal::open(credential(&minted, &ssh_a), 80, 24, None, move |e| {
        let _ = tx.send((Instant::now(), e));
    })
    .await
    .unwrap_or_else(|e| panic!("A refused the ticket: {e}\n{}", r.log(A)));
    // A command in the shell, and its output (computed, so the pty's echo of the input does
    // not count).
    term.input(b"echo paw-$((6*7))\n".to_vec()).await.unwrap();
    let out = output_until(&mut rx, "paw-42").await;
    assert!(
        out.contains("paw-42"),
        "no output from the shell: {out:?}\n{}",
        r.log(A)
    );
    Carried {
        r,
        ada,
        admin,
        grant,
        sid,
        _term: term,
        rx,
    }
}

impl Carried {
    /// The session ended within [`BOUND`] of `answered` on A's connection with `reason`, and
    /// the database holds that reason and exactly one `session_end` record, written by the
    /// front door that carried it.
    async fn assert_ended_by_a(mut self, what: &str, answered: Instant, reason: &str) {
        let (at, said) = ended(&mut self.rx)
            .await
            .unwrap_or_else(|| panic!("{what}: the session on A never ended\n{}", self.r.log(A)));
        let took = at.saturating_duration_since(answered);
        println!(
            "I1 {what}: the session on A ended {} ms after B's answer",
            took.as_millis()
        );
        assert!(
            took <= BOUND,
            "{what}: the session on A ended {took:?} after B's answer (bound {BOUND:?})"
        );
        // The broker's words came over the connection to A: A ended it, for this reason.
        assert_eq!(said, reason, "{what}: A's disconnect message");

        // A records the end after the disconnect: wait for it (bounded).
        let pg = self.r.pg().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let row = loop {
            let row = pg
                .psql(&format!(
                    "SELECT end_reason, recording_closed_at IS NOT NULL, \
                     recording_sha256 IS NOT NULL FROM session_tickets WHERE id = '{}'",
                    self.sid
                ))
                .unwrap();
            if row.trim().ends_with("|t|t") || Instant::now() > deadline {
                break row;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(
            row.trim(),
            format!("{reason}|t|t"),
            "{what}: session row (end_reason, closed, recording hash)\n{}",
            self.r.log(A)
        );
        let ends = pg
            .psql(&format!(
                "SELECT actor, outcome, detail::json->>'reason', \
                 (detail::json->>'recording_sha256') IS NOT NULL, \
                 (detail::json->>'recording_bytes')::bigint > 0 \
                 FROM audit_log WHERE action = 'session_end' AND subject = '{}'",
                self.sid
            ))
            .unwrap();
        // One record, ada's, with the recording's hash: only A, which recorded the session, has
        // one to give (B, or the CLI, ending it would leave none).
        assert_eq!(
            ends.trim(),
            format!("ada|success|{reason}|t|t"),
            "{what}: session_end records"
        );
        // The hash on record is the one A wrote in the session row.
        let same = pg
            .psql(&format!(
                "SELECT count(*) FROM audit_log a JOIN session_tickets s ON s.id = a.subject \
                 WHERE a.action = 'session_end' AND a.subject = '{}' \
                 AND detail::json->>'recording_sha256' = s.recording_sha256",
                self.sid
            ))
            .unwrap();
        assert_eq!(same.trim(), "1", "{what}: the recording hash on record");
        // A still runs (it ended the session; it did not die), and so does B.
        assert!(self.r.is_running(A).unwrap(), "{what}: A exited");
        assert!(self.r.is_running(B).unwrap(), "{what}: B exited");
    }
}

/// (1) An admin revokes the grant on B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i1_grant_revoked_on_one_broker_ends_session_on_another() {
    let c = carried_on_a().await;
    let b = c.r.url(B);
    let body = json!({"reason": "incident 42: access no longer needed"});
    let res = c
        .admin
        .call(
            &b,
            "POST",
            &format!("/v1/grants/{}/revoke", c.grant),
            Some(&body),
        )
        .await
        .unwrap();
    let answered = Instant::now();
    assert_eq!(
        (res.status, res.body["state"].as_str()),
        (200, Some("revoked")),
        "{:?}\n{}",
        res.body,
        c.r.log(B)
    );
    c.assert_ended_by_a("grant revoked", answered, "revoked")
        .await;
}

/// (2) An admin kills the session on B (step-up naming the session and the reason).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i1_session_killed_on_one_broker_ends_session_on_another() {
    let mut c = carried_on_a().await;
    let b = c.r.url(B);
    let kill = Action::KillSession {
        session_id: c.sid.clone(),
        reason: "suspicious commands on web-1".into(),
    };
    let res = c
        .admin
        .signed(&b, &format!("/v1/sessions/{}/kill", c.sid), &kill)
        .await
        .unwrap();
    let answered = Instant::now();
    assert_eq!(
        (res.status, res.body["end_reason"].as_str()),
        (200, Some("killed")),
        "{:?}\n{}",
        res.body,
        c.r.log(B)
    );
    c.assert_ended_by_a("session killed", answered, "killed")
        .await;
}

/// (3) The user is disabled with the operator's command, `pawd user disable`, run with B's own
/// config (there is no HTTP route). The command does not open B's SSH front door nor clean up
/// sessions at start-up (it once did both: it could not run beside B, and with a port of its
/// own it ended every replica's sessions as `broker_restart`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i1_user_disabled_through_one_broker_ends_session_on_another() {
    let c = carried_on_a().await;
    let b_config = c.r.config_path(B).unwrap().to_owned();
    let out =
        c.r.pawd_with(&b_config, &["user".into(), "disable".into(), "ada".into()])
            .unwrap();
    let answered = Instant::now();
    assert!(
        out.status.success(),
        "pawd user disable failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Disabling revokes the grant: the session ends as revoked.
    c.assert_ended_by_a("user disabled", answered, "revoked")
        .await;
}

/// (4) ada revokes, on B, the security key that asked for the grant (case A16: what it
/// activated ends with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i1_key_revoked_on_one_broker_ends_session_on_another() {
    let mut c = carried_on_a().await;
    let b = c.r.url(B);
    let keys = c.ada.call(&b, "GET", "/v1/keys", None).await.unwrap();
    let keys = keys.ok().unwrap();
    let list = keys["keys"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{keys}");
    let key = list[0]["id"].as_str().unwrap().to_owned();
    let revoke = Action::KeyManagement {
        operation: "revoke".into(),
        credential: key.clone(),
    };
    let res = c
        .ada
        .signed(&b, &format!("/v1/keys/{key}/revoke"), &revoke)
        .await
        .unwrap();
    let answered = Instant::now();
    assert_eq!(res.status, 200, "{:?}\n{}", res.body, c.r.log(B));
    // The grant that key asked for is revoked: the session ends as revoked.
    c.assert_ended_by_a("key revoked", answered, "revoked")
        .await;
}

/// When the session ended and the broker's reason (at most 10 s).
async fn ended(rx: &mut Events) -> Option<(Instant, String)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((_, TermEvent::Output(_)))) => {}
            Ok(Some((at, TermEvent::Ended { reason, .. }))) => return Some((at, reason)),
            Ok(None) | Err(_) => return None,
        }
    }
}
