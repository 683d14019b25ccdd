//! Case E2 on real processes (issue #14): a real `kill -9` of the only `pawd`, on SQLite, while
//! it carries an SSH session to a real sshd, then a restart on the same database file.
//!
//! Replaces the in-process restart test (which aborted tasks and built a second app in the
//! same process): here nothing of the first broker runs after the kill, and what the restarted
//! one finds is exactly what the dead one left on disk.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use paw_client::terminal::{self, Credential, TermEvent, Terminal};
use paw_proto::action::Action;
use paw_tests::replicas::{request_web, Options, Replicas, Store, SSH_TARGET, WEB_ROOT_POLICY};
use paw_tests::virtual_user::VirtualUser;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

mod common;
use common::{credential, sqlite_audit as audit};

/// The only broker.
const PAWD: usize = 0;
/// How long the restarted broker may take to show the session ended (it is ended before the
/// broker serves; the deadline only bounds the poll).
const ENDED_WITHIN: Duration = Duration::from_secs(10);
/// What a cut in the middle of writing an event leaves at the end of the recording: part of a
/// line, no newline.
const TORN_TAIL: &[u8] = b"[99.5, \"o\", \"half-written-by-the-cu";

/// E2. `kill -9` of a single SQLite `pawd` during a session, then `pawd serve` again on the same
/// file: the session shows as ended with reason `broker_restart` (the broker's own sessions
/// that no process carries any more: on SQLite there is no peer to take it for lost), with
/// exactly one `session_end` record (actor `pawd`); its recording holds what ran before the
/// cut, is well-formed asciicast v2 (a torn last event is trimmed) and hashes, on disk and
/// through the replay, to the SHA-256 in the record and the session row; the grant is exactly
/// as it was (active, same end) and still opens sessions. The old broker's row is stopped as
/// lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2_kill_9_of_the_sqlite_broker_mid_session_ends_the_session_with_its_recording_after_restart(
) {
    let mut r = Replicas::start_with(Options {
        replicas: 1,
        store: Store::Sqlite,
        sshd: true,
        extra_config: WEB_ROOT_POLICY.to_owned(),
    })
    .await
    .unwrap();
    let url = r.url(PAWD);
    let mut ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    let granted = ada
        .signed(&url, "/v1/requests", &request_web())
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(granted["state"], "active", "{granted}");
    let grant = granted["id"].as_str().unwrap().to_owned();
    let before = grant_view(&ada, &url, &grant).await;
    assert_eq!(before["state"], "active", "{before}");
    assert!(before["ends_at_ms"].is_i64(), "{before}");

    // A live shell through the front door, and a distinctive line of output from it (computed
    // by the shell: the pty's echo of the typed command does not contain it).
    let minted = redeem(&r, &mut ada, &grant).await;
    let sid = minted["session_id"].as_str().unwrap().to_owned();
    let (term, mut rx) = open(credential(&minted)).await;
    let token = random_token();
    let marker = format!("before-the-cut-{token}");
    term.input(format!("printf 'before-the-cut-%s\\n' {token}\n").into_bytes())
        .await
        .unwrap();
    wait_for(&mut rx, &marker).await;
    let cast = r
        .broker_dir()
        .join("recordings")
        .join(format!("{sid}.cast"));
    // The proxy records as it forwards; the event may reach the file just after the client.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&cast).is_ok_and(|c| c.contains(&marker)) {
        assert!(
            Instant::now() < deadline,
            "the recording never showed {marker:?}:\n{}",
            r.log(PAWD)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        history_entry(&ada, &url, &sid).await["ended_at_ms"].is_null(),
        "the session is live before the cut"
    );

    // The cut. A kill landing inside the write of an event leaves part of a line: make that
    // happen for certain (one write per event makes it rare), so the restart must cope with it.
    r.kill9(PAWD).unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&cast)
            .unwrap();
        f.write_all(TORN_TAIL).unwrap();
    }
    let _ = drain(&mut rx, Duration::from_secs(5)).await;
    drop(term);

    let spawned = Instant::now();
    let spawned_ms = unix_ms();
    r.spawn(PAWD).unwrap();
    r.wait_healthy(PAWD).await.unwrap();
    let healthy_after = spawned.elapsed();

    // Ended, with a reason and a hash.
    let deadline = Instant::now() + ENDED_WITHIN;
    let entry = loop {
        let e = history_entry(&ada, &url, &sid).await;
        if e["ended_at_ms"].is_i64() && e["recording_sha256"].is_string() {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "the session is not ended with a recording hash {ENDED_WITHIN:?} after the restart \
             was healthy: {e}\n{}",
            r.log(PAWD)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let seen_after = spawned.elapsed();
    let ended_ms = entry["ended_at_ms"].as_i64().unwrap();
    println!(
        "E2: pawd restarted (healthy) {} ms after spawn; the session was marked ended {} ms after \
         spawn by its row (seen over the API {} ms after spawn)",
        healthy_after.as_millis(),
        ended_ms - spawned_ms,
        seen_after.as_millis()
    );
    assert!(
        ended_ms >= spawned_ms,
        "ended by the restarted broker, not before the cut: {entry}"
    );
    assert_eq!(entry["end_reason"], "broker_restart", "{entry}");
    let sha = entry["recording_sha256"].as_str().unwrap().to_owned();
    assert_eq!(entry["has_recording"], true, "{entry}");

    // Exactly one end on record, by the broker, naming the reason and the recording's hash.
    let ends: Vec<Value> = audit(&r)
        .await
        .into_iter()
        .filter(|e| e["action"] == "session_end" && e["subject"] == sid.as_str())
        .collect();
    assert_eq!(ends.len(), 1, "one session_end record: {ends:?}");
    let end = &ends[0];
    assert_eq!(end["actor"], "pawd", "{end}");
    assert_eq!(end["detail"]["reason"], "broker_restart", "{end}");
    assert_eq!(end["detail"]["grant_id"], grant.as_str(), "{end}");
    assert_eq!(
        end["detail"]["recording_sha256"].as_str(),
        Some(sha.as_str()),
        "{end}"
    );

    // The recording: complete up to the cut, well-formed, the torn event trimmed, and it is the
    // file the hash names.
    let bytes = std::fs::read(&cast).unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        sha,
        "the file's SHA-256"
    );
    assert_eq!(
        end["detail"]["recording_bytes"].as_u64(),
        Some(bytes.len() as u64),
        "{end}"
    );
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.ends_with('\n'), "the last line is whole: {text:?}");
    assert!(!text.contains("half-written"), "the torn event is trimmed");
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2, "{header}");
    let mut output = String::new();
    let mut events = 0;
    for line in lines {
        let ev: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not an asciicast event ({e}): {line:?}"));
        let ev = ev.as_array().unwrap();
        assert!(
            ev.len() == 3 && ev[0].is_f64() && ev[1].is_string() && ev[2].is_string(),
            "{line}"
        );
        if ev[1] == "o" {
            output.push_str(ev[2].as_str().unwrap());
        }
        events += 1;
    }
    assert!(events > 0, "events after the header");
    assert!(
        output.contains(&marker),
        "the output before the cut is in the recording: {output:?}"
    );
    // The broker replays it: the file matches the hash it recorded.
    let replay = ada
        .call(&url, "GET", &format!("/v1/sessions/{sid}/recording"), None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(replay["sha256"], sha.as_str(), "{replay}");
    assert!(replay["cast"].as_str().unwrap().contains(&marker));

    // The grant is exactly as it was, and still opens sessions.
    let after = grant_view(&ada, &url, &grant).await;
    assert_eq!(after, before, "the grant changed across the crash");
    let again = redeem(&r, &mut ada, &grant).await;
    let (term, mut rx) = open(credential(&again)).await;
    term.input(b"echo after-$((40+2))\n".to_vec())
        .await
        .unwrap();
    wait_for(&mut rx, "after-42").await;

    // The dead process is on record as lost; the new one serves.
    let status = r.pawd(&["status".to_owned()]).unwrap();
    assert!(status.status.success(), "{status:?}");
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert_eq!(status.matches("stopped (lost)").count(), 1, "{status}");
    assert_eq!(status.matches("serving, lease").count(), 1, "{status}");
    // And the audit chain is whole.
    let verify = r.pawd(&["audit".to_owned(), "verify".to_owned()]).unwrap();
    assert!(verify.status.success(), "{verify:?}");
}

/// `GET /v1/grants`: the grant `id`.
async fn grant_view(user: &VirtualUser, url: &str, id: &str) -> Value {
    let list = user
        .call(url, "GET", "/v1/grants", None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    list["grants"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["id"] == id).cloned())
        .unwrap_or_else(|| panic!("no grant {id}: {list}"))
}

/// `GET /v1/sessions/history`: the session `sid`.
async fn history_entry(user: &VirtualUser, url: &str, sid: &str) -> Value {
    let h = user
        .call(url, "GET", "/v1/sessions/history", None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    h["sessions"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == sid).cloned())
        .unwrap_or_else(|| panic!("no session {sid} in the history: {h}"))
}

async fn redeem(r: &Replicas, user: &mut VirtualUser, grant: &str) -> Value {
    let session = Action::Session {
        grant_id: grant.into(),
        target: SSH_TARGET.into(),
    };
    let v = user
        .signed(
            &r.url(PAWD),
            &format!("/v1/grants/{grant}/redeem"),
            &session,
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["ssh_addr"], r.ssh_addr(PAWD).unwrap().as_str(), "{v}");
    v
}

async fn open(c: Credential) -> (Terminal, mpsc::UnboundedReceiver<TermEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let t = terminal::open(c, 80, 24, None, move |e| {
        let _ = tx.send(e);
    })
    .await
    .unwrap();
    (t, rx)
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

/// Events until the session ends or `limit` passes (the client notices the dead connection).
async fn drain(rx: &mut mpsc::UnboundedReceiver<TermEvent>, limit: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(TermEvent::Output(_))) => {}
            Ok(Some(TermEvent::Ended { reason, .. })) => return Some(reason),
            Ok(None) | Err(_) => return None,
        }
    }
}

fn random_token() -> String {
    let mut b = [0u8; 6];
    getrandom::getrandom(&mut b).unwrap();
    hex::encode(b)
}

fn unix_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}
