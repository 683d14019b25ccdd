//! Issue #14: a broker's faults and what several brokers share, on real `pawd` processes, one
//! real PostgreSQL (or one SQLite file) and a real sshd.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use paw_client::terminal::{self, Credential, TermEvent};
use paw_proto::action::Action;
use paw_tests::replicas::{request_web, Options, Replicas, Store, SSH_TARGET, WEB_ROOT_POLICY};
use paw_tests::virtual_user::VirtualUser;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

mod common;
use common::{credential, psql};

/// How long a replica's sessions are watched for a wrong end after a peer restarts: longer
/// than the session watcher's period and the grant clock's tick.
const STAYS_OPEN_FOR: Duration = Duration::from_secs(3);
/// How long a killed replica's sessions may wait for a peer to end them: its lease ("renewed
/// every few seconds") must expire first.
const LEASE_DEADLINE: Duration = Duration::from_secs(20);

/// I6. The second `pawd serve` on a SQLite config another running pawd holds exits
/// non-zero within 20 s, without serving, and says why on stderr: a message containing "lock"
/// and naming the database file (`pawd.db`, or a lock file next to it). The first keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i6_second_broker_on_the_same_sqlite_file_refuses_to_start() {
    let mut r = Replicas::start_with(Options {
        replicas: 1,
        store: Store::Sqlite,
        ..Options::default()
    })
    .await
    .unwrap();
    // Its own listen port: the refusal must come from the database, not from the socket.
    let second = r.add().unwrap();
    r.spawn(second).unwrap();
    let status = r.wait_exit(second, Duration::from_secs(20)).await.unwrap();
    let log = r.log(second);
    let status = status.unwrap_or_else(|| {
        panic!("a second pawd on the same SQLite file is still running:\n{log}")
    });
    assert!(!status.success(), "it exited with {status}:\n{log}");
    assert!(
        log.to_lowercase().contains("lock") && log.contains("pawd.db"),
        "the message must name the lock on the database file:\n{log}"
    );
    let health = r
        .client()
        .unwrap()
        .get(format!("{}/healthz", r.url(0)))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the first broker keeps serving");
}

/// I7. `POST /v1/auth/sign-out`, authenticated like every call (bearer access token and
/// device proof), no body; after it, every access and refresh token of that
/// sign-in (the token family, rotated ones included) is refused by every replica with 401
/// `unauthenticated`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i7_sign_out_revokes_the_token_family_on_every_broker() {
    let r = Replicas::start(2, WEB_ROOT_POLICY).await.unwrap();
    let (a, b) = (r.url(0), r.url(1));
    let mut ada = r.enrolled("ada", &[], 0).await.unwrap();
    let first_access = ada.access.clone().unwrap();
    // Rotate once on B: the family now has an older access token and a current pair.
    let rotated = ada
        .refresh_with(&b, ada.refresh.as_deref().unwrap())
        .await
        .unwrap()
        .ok()
        .unwrap();
    let access = rotated["access_token"].as_str().unwrap().to_owned();
    let refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    ada.access = Some(access.clone());
    ada.refresh = Some(refresh.clone());
    for url in [&a, &b] {
        let me = ada.call(url, "GET", "/v1/me", None).await.unwrap();
        assert_eq!(me.status, 200, "{url} before sign-out: {:?}", me.body);
    }

    let out = ada
        .call(&a, "POST", "/v1/auth/sign-out", None)
        .await
        .unwrap();
    assert_eq!(out.status, 200, "sign-out on A: {:?}", out.body);
    // It says what it revoked: both access tokens of the family, the one unused refresh token.
    assert_eq!(out.body["access_tokens"], 2, "{:?}", out.body);
    assert_eq!(out.body["refresh_tokens"], 1, "{:?}", out.body);
    let audited = r
        .pg()
        .unwrap()
        .psql("SELECT COUNT(*) FROM audit_log WHERE action = 'sign_out'")
        .unwrap();
    assert_eq!(audited.trim(), "1", "one sign_out record");

    // Copies of the tokens, presented anywhere, are refused.
    for url in [&a, &b] {
        let refreshed = ada.refresh_with(url, &refresh).await.unwrap();
        assert_eq!(
            (refreshed.status, refreshed.code()),
            (401, "unauthenticated"),
            "{url}: the copied refresh token: {:?}",
            refreshed.body
        );
        for token in [&access, &first_access] {
            let me = ada
                .call_with(url, token, "GET", "/v1/me", None)
                .await
                .unwrap();
            assert_eq!(
                (me.status, me.code()),
                (401, "unauthenticated"),
                "{url}: a copied access token: {:?}",
                me.body
            );
        }
    }
}

/// I2. `pawd serve` stopped with SIGTERM ends the sessions it carries with reason
/// `broker_shutdown` (one `session_end` audit record each) and its restart ends no session of a
/// running peer. A's session stays open, unmarked, and keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i2_restarting_one_broker_leaves_the_others_sessions_open() {
    let mut r = Replicas::start_with_sshd(2, WEB_ROOT_POLICY).await.unwrap();
    let a = r.url(0);
    let mut ada = r.enrolled("ada", &[], 0).await.unwrap();
    let grant = grant(&r, &mut ada).await;
    // One session through A, one through B.
    let on_a = redeem(&r, &mut ada, &grant, 0).await;
    let on_b = redeem(&r, &mut ada, &grant, 1).await;
    let (ta, mut rx_a) = open(credential(&on_a), None).await.unwrap();
    let (_tb, mut rx_b) = open(credential(&on_b), None).await.unwrap();
    ta.input(b"echo alive-$((20+1))\n".to_vec()).await.unwrap();
    wait_for(&mut rx_a, "alive-21").await;
    let sid_a = on_a["session_id"].as_str().unwrap().to_owned();
    let sid_b = on_b["session_id"].as_str().unwrap().to_owned();

    r.restart(1).await.unwrap();

    // B's own session ended once, as a clean shutdown.
    let (_, end) = drain(&mut rx_b, Duration::from_secs(10)).await;
    assert!(end.is_some(), "B's session still open after B stopped");
    let b_end = wait_ended(&r, &sid_b, Duration::from_secs(10)).await;
    assert_eq!(b_end.0, "broker_shutdown", "{b_end:?}\n{}", r.log(1));
    assert_eq!(session_ends(&r, &sid_b), vec!["broker_shutdown".to_owned()]);

    // A's session: open in the database, no end on record, the terminal still answers.
    let until = Instant::now() + STAYS_OPEN_FOR;
    while Instant::now() < until {
        let row = psql(&r, &format!(
            "SELECT coalesce(ended_at::text, '-'), coalesce(end_reason, '-') FROM session_tickets WHERE id = '{sid_a}'"
        ));
        assert_eq!(row, "-|-", "A's session was marked ended by B's restart");
        if let Ok(TermEvent::Ended { reason, message }) = rx_a.try_recv() {
            panic!("A's session ended: {reason}: {message}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(session_ends(&r, &sid_a).is_empty());
    ta.input(b"echo still-$((40+2))\n".to_vec()).await.unwrap();
    wait_for(&mut rx_a, "still-42").await;
    // And the grant is as it was.
    let grants = ada.call(&a, "GET", "/v1/grants", None).await.unwrap();
    assert!(
        grants.body.to_string().contains(&grant),
        "{:?}",
        grants.body
    );
}

/// I3. Replicas hold leases renewed every few seconds; once a killed replica's lease
/// has expired, the others end its sessions with reason `broker_lost`, exactly once in all
/// (one `session_end` audit record, actor `pawd`, whichever replica wins), close its recording
/// and put the recording's SHA-256 in the row and the record; the grant stays active. Needs
/// the recordings directory shared by the replicas (it is here: one broker directory): a lost
/// broker's recording on a disk no other broker reads is closed without a hash (see SECURITY.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i3_killed_broker_sessions_end_once_as_broker_lost() {
    let mut r = Replicas::start_with_sshd(3, WEB_ROOT_POLICY).await.unwrap();
    let b = r.url(1);
    let mut ada = r.enrolled("ada", &[], 1).await.unwrap();
    let grant = grant(&r, &mut ada).await;
    let on_a = redeem(&r, &mut ada, &grant, 0).await;
    let sid = on_a["session_id"].as_str().unwrap().to_owned();
    let (t, mut rx) = open(credential(&on_a), None).await.unwrap();
    t.input(b"echo before-$((3*3))\n".to_vec()).await.unwrap();
    wait_for(&mut rx, "before-9").await;

    let killed_at = Instant::now();
    r.kill9(0).unwrap();
    let (reason, sha) = wait_ended(&r, &sid, LEASE_DEADLINE).await;
    eprintln!("ended {:?} after the kill", killed_at.elapsed());
    assert_eq!(reason, "broker_lost");
    // B and C both saw the lease expire; one record in all. Give a late second writer time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(session_ends(&r, &sid), vec!["broker_lost".to_owned()]);
    let closed = psql(
        &r,
        &format!("SELECT recording_closed_at IS NOT NULL FROM session_tickets WHERE id = '{sid}'"),
    );
    assert_eq!(closed, "t", "recording closed");
    let file = r
        .broker_dir()
        .join("recordings")
        .join(format!("{sid}.cast"));
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        String::from_utf8_lossy(&bytes).contains("before-9"),
        "the recording holds what ran before the kill"
    );
    assert_eq!(
        sha.as_deref(),
        Some(hex::encode(Sha256::digest(&bytes)).as_str())
    );
    let detail = psql(
        &r,
        &format!("SELECT detail FROM audit_log WHERE action = 'session_end' AND subject = '{sid}'"),
    );
    let detail: Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(
        detail["recording_sha256"].as_str(),
        sha.as_deref(),
        "{detail}"
    );

    // `pawd status` shows it: the killed broker stopped as lost, carrying nothing; the two
    // others serving.
    let status = r.pawd(&["status".to_owned()]).unwrap();
    assert!(status.status.success(), "{status:?}");
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert_eq!(status.matches("stopped (lost)").count(), 1, "{status}");
    assert_eq!(status.matches("serving, lease").count(), 2, "{status}");
    assert!(!status.contains("1 open session"), "{status}");

    // The grant is untouched: still active, on every live replica.
    for url in [&b, &r.url(2)] {
        let grants = ada.call(url, "GET", "/v1/grants", None).await.unwrap();
        let g = grants.body["grants"]
            .as_array()
            .and_then(|gs| gs.iter().find(|g| g["id"] == grant.as_str()).cloned());
        assert_eq!(
            g.as_ref().and_then(|g| g["state"].as_str()),
            Some("active"),
            "{url}: {:?}",
            grants.body
        );
    }
}

/// An active web-1 grant for `user`, requested on replica 1.
async fn grant(r: &Replicas, user: &mut VirtualUser) -> String {
    let v = user
        .signed(&r.url(1), "/v1/requests", &request_web())
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["state"], "active", "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// A session credential redeemed on replica `i`, whose front door carries it.
async fn redeem(r: &Replicas, user: &mut VirtualUser, grant: &str, i: usize) -> Value {
    let session = Action::Session {
        grant_id: grant.into(),
        target: SSH_TARGET.into(),
    };
    let v = user
        .signed(&r.url(i), &format!("/v1/grants/{grant}/redeem"), &session)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["ssh_addr"], r.ssh_addr(i).unwrap().as_str(), "{v}");
    v
}

async fn open(
    c: Credential,
    command: Option<&str>,
) -> Result<(terminal::Terminal, mpsc::UnboundedReceiver<TermEvent>), paw_client::ClientError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let t = terminal::open(c, 80, 24, command.map(str::to_owned), move |e| {
        let _ = tx.send(e);
    })
    .await?;
    Ok((t, rx))
}

/// Output until the session ends or `limit` passes.
async fn drain(
    rx: &mut mpsc::UnboundedReceiver<TermEvent>,
    limit: Duration,
) -> (String, Option<String>) {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
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

/// Waits (at most 15 s) until the terminal's output contains `needle`.
async fn wait_for(rx: &mut mpsc::UnboundedReceiver<TermEvent>, needle: &str) {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(TermEvent::Output(d))) => {
                out.extend(d);
                if String::from_utf8_lossy(&out).contains(needle) {
                    return;
                }
            }
            other => panic!(
                "waiting for {needle:?}: {other:?}; so far {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// The reasons of every `session_end` audit record for `sid`, oldest first.
fn session_ends(r: &Replicas, sid: &str) -> Vec<String> {
    psql(
        r,
        &format!(
            "SELECT coalesce(detail::json->>'reason', '?') FROM audit_log \
             WHERE action = 'session_end' AND subject = '{sid}' ORDER BY seq"
        ),
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// Polls until the session's row is ended and its recording closed; its end reason and the
/// recording's hash.
async fn wait_ended(r: &Replicas, sid: &str, limit: Duration) -> (String, Option<String>) {
    let deadline = Instant::now() + limit;
    loop {
        let row = psql(
            r,
            &format!(
                "SELECT coalesce(end_reason, '-'), coalesce(recording_sha256, '-') \
                 FROM session_tickets WHERE id = '{sid}' AND ended_at IS NOT NULL \
                 AND recording_closed_at IS NOT NULL"
            ),
        );
        if let Some((reason, sha)) = row.split_once('|') {
            return (reason.to_owned(), (sha != "-").then(|| sha.to_owned()));
        }
        assert!(
            Instant::now() < deadline,
            "session {sid} not ended within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
