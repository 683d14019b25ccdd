//! Brokered SSH sessions against a real OpenSSH `sshd` on loopback (cases C1–C4, C6, C7; E2 is
//! `tests/tests/replicas_e2_crash.rs`, a real `kill -9`).
//!
//! The broker's clock is set to the real time here (sshd checks the certificate's validity with
//! its own clock); ending a grant moves the broker's clock past the end and runs its tick, as
//! the 200 ms grant clock would.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::idp::*;
use common::ssh::*;
use paw_broker::audit;
use paw_client::terminal::Credential;
use paw_proto::action::Action;
use serde_json::{json, Value};

async fn audited(b: &Broker, subject: &str) -> Vec<(String, String, Value)> {
    audit::records(&b.db, 0, 1_000_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event.subject == subject)
        .map(|r| {
            (
                r.event.action,
                r.event.outcome.as_str().to_owned(),
                r.event.detail,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c1_c7_whoami_through_a_certificate_signed_for_this_session_and_recorded() {
    let mut s = setup("").await;
    let g = active_grant(&mut s).await;
    let v = redeem(&mut s, &g).await;
    let sid = v["session_id"].as_str().unwrap().to_owned();
    // C4: nothing the API returns holds a private key.
    assert!(!v.to_string().contains("PRIVATE KEY"), "{v}");
    let (_t, mut rx) = open(cred(&v), Some("whoami")).await.unwrap();
    let (out, end) = drain(&mut rx, Duration::from_secs(30)).await;
    assert_eq!(out.trim(), "root");
    assert!(end.is_some());

    // C1: sshd accepted a certificate from the broker CA whose key id names user, grant, session.
    let log = s.sshd.log();
    let want = format!("ID paw user=ada grant={g} session={sid}");
    assert!(
        log.contains("Accepted publickey for root") && log.contains(&want),
        "{log}"
    );

    // The recording: its hash is in the audit log, it matches the file, and asciinema plays it.
    let d = session_end(&s.b, &sid).await;
    let file =
        s.b.dir
            .path()
            .join("recordings")
            .join(format!("{sid}.cast"));
    let sha = paw_broker::sessions::recording::file_sha256(&file).unwrap();
    assert_eq!(d["recording_sha256"], sha, "{d}");
    // asciinema 2.2 wants a terminal even for `cat`: give it one with util-linux's `script`.
    let played = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("asciinema cat {}", file.display()),
            "/dev/null",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        played.status.success(),
        "{}",
        String::from_utf8_lossy(&played.stderr)
    );
    assert!(String::from_utf8_lossy(&played.stdout).contains("root"));

    // C7: the broker's directory holds no session key or certificate, only its own keys,
    // the database and recordings.
    for entry in walk(s.b.dir.path()) {
        let text = std::fs::read(&entry).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        assert!(
            !text.contains("-cert-v01@openssh.com"),
            "a certificate on disk: {}",
            entry.display()
        );
    }
    no_residual_sessions(&s.b).await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c3_a_session_credential_works_once_and_only_for_its_session() {
    let mut s = setup("").await;
    let g = active_grant(&mut s).await;
    let v = redeem(&mut s, &g).await;
    let v2 = redeem(&mut s, &g).await;
    // Another session's id with this ticket: refused (and the ticket is not used up by it).
    let mut crossed = cred(&v);
    crossed.session_id = v2["session_id"].as_str().unwrap().into();
    assert!(open(crossed, Some("true")).await.is_err());
    // A made-up ticket: refused.
    let mut wrong = cred(&v);
    wrong.ticket = "not-the-ticket".to_owned().into();
    assert!(open(wrong, Some("true")).await.is_err());
    // First use works...
    let (_t, mut rx) = open(cred(&v), Some("echo once")).await.unwrap();
    let (out, _) = drain(&mut rx, Duration::from_secs(30)).await;
    assert_eq!(out.trim(), "once");
    // ...a second use, from this or any other client, does not.
    assert!(open(cred(&v), Some("echo twice")).await.is_err());
    let sid = v["session_id"].as_str().unwrap();
    let denied = audited(&s.b, sid)
        .await
        .into_iter()
        .filter(|(a, o, _)| a == "session_start" && o == "denied")
        .count();
    assert!(denied >= 2, "refusals are audited");
    // An expired ticket (never used within its minute): refused.
    s.b.advance(61_000);
    let v3 = cred(&v2);
    assert!(open(v3, Some("true")).await.is_err());
    no_residual_sessions(&s.b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c1_no_agent_x11_port_forwarding_or_subsystem_is_relayed() {
    let mut s = setup("").await;
    let g = active_grant(&mut s).await;
    let v = redeem(&mut s, &g).await;
    let c = cred(&v);
    // Drive russh directly to ask for what paw's own client never asks for.
    struct Any(russh::keys::PublicKey);
    impl russh::client::Handler for Any {
        type Error = russh::Error;
        async fn check_server_key(
            &mut self,
            k: &russh::keys::PublicKeyOrCertificate,
        ) -> Result<bool, Self::Error> {
            Ok(
                matches!(k, russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } if key.key_data() == self.0.key_data()),
            )
        }
    }
    let hk = russh::keys::PublicKey::from_openssh(&c.host_key).unwrap();
    let mut h = russh::client::connect(
        std::sync::Arc::new(Default::default()),
        c.addr.as_str(),
        Any(hk),
    )
    .await
    .unwrap();
    assert!(h
        .authenticate_password(c.session_id.clone(), c.ticket.as_str())
        .await
        .unwrap()
        .success());
    assert!(
        h.channel_open_direct_tcpip("127.0.0.1", 22, "127.0.0.1", 5000)
            .await
            .is_err(),
        "direct-tcpip"
    );
    assert!(
        !h.tcpip_forward("127.0.0.1", 0).await.is_ok_and(|p| p > 0),
        "remote forward"
    );
    let ch = h.channel_open_session().await.unwrap();
    ch.agent_forward(true).await.unwrap();
    ch.request_x11(true, false, "MIT-MAGIC-COOKIE-1", "00", 0)
        .await
        .unwrap();
    ch.request_subsystem(true, "sftp").await.unwrap();
    let mut ch = ch;
    let mut failures = 0;
    while failures < 3 {
        match tokio::time::timeout(Duration::from_secs(5), ch.wait()).await {
            Ok(Some(russh::ChannelMsg::Failure)) => failures += 1,
            Ok(Some(russh::ChannelMsg::Success)) => panic!("a forwarding request was granted"),
            Ok(Some(_)) => {}
            other => panic!("no answer: {other:?}"),
        }
    }
    // A second session channel on the same credential is refused too.
    assert!(h.channel_open_session().await.is_err());
    drop(ch);
    let _ = h.disconnect(russh::Disconnect::ByApplication, "", "").await;
    no_residual_sessions(&s.b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_the_session_ends_within_a_second_of_the_grant_end_revocation_or_kill() {
    let mut s = setup("").await;
    let mut admin = s.b.enrolled_as("bob", &["admin"]).await;

    // Grant end.
    let g = active_grant(&mut s).await;
    let v = redeem(&mut s, &g).await;
    let (_t, mut rx) = open(cred(&v), None).await.unwrap();
    let t = _t;
    t.input(b"echo ready-$((6*7))\n".to_vec()).await.unwrap();
    wait_for(&mut rx, "ready-42").await;
    s.b.advance(31 * 60_000);
    let t0 = Instant::now();
    paw_broker::elevation::tick(&s.b.state.elevation)
        .await
        .unwrap();
    let (_, end) = drain(&mut rx, Duration::from_secs(5)).await;
    let overrun = t0.elapsed();
    assert_eq!(end.unwrap().0, "grant_ended");
    assert!(overrun <= Duration::from_secs(1), "overrun {overrun:?}");
    let sid = v["session_id"].as_str().unwrap();
    assert_eq!(session_end(&s.b, sid).await["reason"], "grant_ended");

    // Revocation by an admin.
    s.b.clock
        .0
        .store(real_now_ms(), std::sync::atomic::Ordering::SeqCst);
    let g = active_grant(&mut s).await;
    let v = redeem(&mut s, &g).await;
    let (t, mut rx) = open(cred(&v), None).await.unwrap();
    t.input(b"echo up\n".to_vec()).await.unwrap();
    wait_for(&mut rx, "up").await;
    let t0 = Instant::now();
    let (st, body) = admin
        .call(
            &s.b,
            "POST",
            &format!("/v1/grants/{g}/revoke"),
            Some(&json!({"reason": "wrong host"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (_, end) = drain(&mut rx, Duration::from_secs(5)).await;
    assert_eq!(end.unwrap().0, "revoked");
    assert!(
        t0.elapsed() <= Duration::from_secs(1),
        "overrun {:?}",
        t0.elapsed()
    );

    // An admin's kill, with a step-up naming the session.
    let g = active_grant(&mut s).await;
    let v = redeem(&mut s, &g).await;
    let sid = v["session_id"].as_str().unwrap().to_owned();
    let (t, mut rx) = open(cred(&v), None).await.unwrap();
    t.input(b"echo up\n".to_vec()).await.unwrap();
    wait_for(&mut rx, "up").await;
    let (st, live) = admin.call(&s.b, "GET", "/v1/sessions", None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        live["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == sid.as_str()),
        "{live}"
    );
    // ada (not an admin) cannot kill.
    let kill = Action::KillSession {
        session_id: sid.clone(),
        reason: "suspicious".into(),
    };
    let (st, _) = signed(&mut s.ada, &s.b, &format!("/v1/sessions/{sid}/kill"), &kill).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let t0 = Instant::now();
    let (st, body) = signed(&mut admin, &s.b, &format!("/v1/sessions/{sid}/kill"), &kill).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (_, end) = drain(&mut rx, Duration::from_secs(5)).await;
    assert_eq!(end.unwrap().0, "killed");
    assert!(
        t0.elapsed() <= Duration::from_secs(1),
        "overrun {:?}",
        t0.elapsed()
    );
    let kills = audited(&s.b, &sid).await;
    assert!(
        kills
            .iter()
            .any(|(a, _, d)| a == "session_kill" && d["reason"] == "suspicious"),
        "{kills:?}"
    );
    no_residual_sessions(&s.b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c6_a_recording_that_cannot_be_written_refuses_the_session() {
    // The recordings "directory" is a file: nothing can be created in it.
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("recordings");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let mut s = setup(&format!("recordings = \"{}\"", blocker.display())).await;
    let g = active_grant(&mut s).await;
    let v = redeem(&mut s, &g).await;
    let sid = v["session_id"].as_str().unwrap().to_owned();
    let (_t, mut rx) = open(cred(&v), Some("touch /tmp/paw-c6-should-not-exist"))
        .await
        .unwrap();
    let (out, end) = drain(&mut rx, Duration::from_secs(30)).await;
    assert!(out.contains("cannot be recorded"), "{out}");
    assert_eq!(end.unwrap().0, "recording_failed");
    // The target never saw a login.
    assert!(
        !s.sshd.log().contains("Accepted publickey"),
        "{}",
        s.sshd.log()
    );
    let d = session_end(&s.b, &sid).await;
    assert_eq!(d["reason"], "recording_failed");
    assert!(d["recording_error"].is_string());
    no_residual_sessions(&s.b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c3_a_client_that_logs_in_and_leaves_ends_its_session() {
    let mut s = setup("").await;
    let g = active_grant(&mut s).await;
    let v = redeem(&mut s, &g).await;
    let c = cred(&v);
    struct Any(russh::keys::PublicKey);
    impl russh::client::Handler for Any {
        type Error = russh::Error;
        async fn check_server_key(
            &mut self,
            k: &russh::keys::PublicKeyOrCertificate,
        ) -> Result<bool, Self::Error> {
            Ok(
                matches!(k, russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } if key.key_data() == self.0.key_data()),
            )
        }
    }
    let hk = russh::keys::PublicKey::from_openssh(&c.host_key).unwrap();
    let mut h = russh::client::connect(
        std::sync::Arc::new(Default::default()),
        c.addr.as_str(),
        Any(hk),
    )
    .await
    .unwrap();
    assert!(h
        .authenticate_password(c.session_id.clone(), c.ticket.as_str())
        .await
        .unwrap()
        .success());
    let _ = h.disconnect(russh::Disconnect::ByApplication, "", "").await;
    let sid = v["session_id"].as_str().unwrap();
    assert_eq!(session_end(&s.b, sid).await["reason"], "closed");
    // The credential is spent: it does not open a second time.
    assert!(open(cred(&v), Some("true")).await.is_err());
    no_residual_sessions(&s.b).await;
}

/// "Open in my terminal": the stock OpenSSH client, the broker's host key pinned, the one-time
/// credential handed over by an askpass helper from the environment (the app uses its own
/// binary; this test a two-line script reading the same variable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c7_c8_stock_ssh_opens_the_session_with_the_one_time_credential() {
    use std::os::unix::fs::PermissionsExt;
    let mut s = setup("").await;
    let g = active_grant(&mut s).await;
    let v = redeem(&mut s, &g).await;
    let dir = tempfile::tempdir().unwrap();
    let askpass = dir.path().join("askpass");
    std::fs::write(
        &askpass,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"${}\"\n",
            paw_client::stock_ssh::ASKPASS_ENV
        ),
    )
    .unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let run = |c: Credential| {
        let (mut cmd, _kh) =
            paw_client::stock_ssh::command(&c, dir.path(), &askpass, Some("whoami")).unwrap();
        cmd.stdin(std::process::Stdio::null());
        cmd.output().unwrap()
    };
    let out = run(cred(&v));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "root");
    // Spent: the same credential does not log in twice (C3), and ssh says so.
    let again = run(cred(&v));
    assert!(!again.status.success());
    // A broker host key other than the pinned one: ssh refuses to talk to it at all.
    let v2 = redeem(&mut s, &g).await;
    let mut wrong = cred(&v2);
    wrong.host_key = paw_broker::crypto::ssh_ca::ephemeral_key()
        .unwrap()
        .public_key()
        .to_openssh()
        .unwrap();
    let refused = run(wrong);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Host key verification failed"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // Nothing of the credential on disk: only the public known-hosts lines in the directory.
    for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let text = std::fs::read_to_string(f.path()).unwrap_or_default();
        assert!(!text.contains(v["ticket"].as_str().unwrap()));
    }
    no_residual_sessions(&s.b).await;
}
