//! Live oversight (issue #15 item 5, case J6), against real `pawd` processes and a real sshd
//! with bash: an approver or an administrator watches a live SSH session read-only through
//! `GET /v1/sessions/{id}/watch` (server-sent events). The user is told in their terminal,
//! nothing the watcher sends reaches the target, and every watch is audited.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use paw_proto::action::Action;
use paw_tests::replicas::{Options, Replicas, Store, SSH_TARGET};
use paw_tests::virtual_user::VirtualUser;
use serde_json::{json, Value};

mod common;

use common::shell::{web_root, Shell};

const PAWD: usize = 0;

/// ada's grants need one lead, and so does her `rm`; bob leads; carol is an engineer; dana
/// administers; ada-admin is ada's administrator account (the same person).
/// The groups and entitlements these tests run under.
fn policy() -> String {
    let mut p = String::from(
        r#"[groups]
sre = ["ada", "carol"]
leads = ["bob"]

[people]
ada-admin = "ada"
"#,
    );
    p.push_str(&web_root(
        "web-watched",
        "Root on the web servers, approved by a lead",
        r#"{ required = 1, groups = ["leads"] }"#,
        r#"hold_secs = 20
rules = [{ program = "rm", action = "approve" }]"#,
    ));
    p
}

async fn start(replicas: usize, store: Store) -> Replicas {
    Replicas::start_with(Options {
        replicas,
        store,
        sshd: true,
        extra_config: policy(),
    })
    .await
    .unwrap()
}

/// ada's grant on [`SSH_TARGET`], requested by her and approved by bob, on broker `at`.
async fn approved_grant(
    r: &Replicas,
    ada: &mut VirtualUser,
    bob: &mut VirtualUser,
    at: usize,
) -> String {
    let request = Action::Request {
        entitlement: "web-watched".into(),
        target: SSH_TARGET.into(),
        role: "root".into(),
        duration_secs: 30 * 60,
        justification: "live oversight test".into(),
        ticket: None,
        start_at_ms: None,
    };
    let v = ada
        .signed(&r.url(at), "/v1/requests", &request)
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
    let v = bob
        .signed(&r.url(at), &format!("/v1/requests/{g}/decide"), &approve)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["state"], "active", "{v}");
    g
}

/// The id of ada's one live session.
async fn session_id(r: &Replicas, ada: &VirtualUser) -> String {
    let list = ada
        .call(&r.url(PAWD), "GET", "/v1/sessions", None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{list}");
    sessions[0]["id"].as_str().unwrap().to_owned()
}

fn watch_path(sid: &str) -> String {
    format!("/v1/sessions/{sid}/watch")
}

/// A server-sent event stream read as it comes.
struct Sse {
    res: reqwest::Response,
    buf: String,
}

impl Sse {
    async fn open(r: &Replicas, at: usize, user: &VirtualUser, sid: &str) -> Self {
        let res = user.stream(&r.url(at), &watch_path(sid)).await.unwrap();
        assert_eq!(res.status(), 200, "{} may not watch", user.name);
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Self {
            res,
            buf: String::new(),
        }
    }

    /// The next event (`event` name, `data` JSON), waiting 10 s at most; `None` when the
    /// stream ends.
    async fn next(&mut self) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            while let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                // Keep-alive comments carry neither.
                if !name.is_empty() {
                    return Some((name, serde_json::from_str(&data).unwrap()));
                }
            }
            match tokio::time::timeout_at(deadline, self.res.chunk()).await {
                Ok(Ok(Some(c))) => self.buf.push_str(&String::from_utf8_lossy(&c)),
                Ok(Ok(None)) => return None,
                Ok(Err(e)) => panic!("the watch stream failed: {e}"),
                Err(_) => panic!("no event within 10 s; unread: {:?}", self.buf),
            }
        }
    }

    /// Events until the watcher's view (output, and screens drawn again) contains `want`:
    /// all of it read meanwhile.
    async fn output_until(&mut self, want: &str) -> String {
        let mut out = Vec::new();
        loop {
            let (name, ev) = self
                .next()
                .await
                .unwrap_or_else(|| panic!("the stream ended before {want:?}"));
            assert_eq!(ev["kind"], name.as_str(), "{ev}");
            match name.as_str() {
                "output" => out.extend(B64.decode(ev["data"].as_str().unwrap()).unwrap()),
                // Drawn again (after the shell's command check relayed a line's echo).
                "start" => out.extend(B64.decode(ev["screen"].as_str().unwrap()).unwrap()),
                "resize" => {}
                other => panic!("{other} event before {want:?}: {ev}"),
            }
            let text = String::from_utf8_lossy(&out).into_owned();
            if text.contains(want) {
                return text;
            }
        }
    }
}

fn actions(audit: &[Value], action: &str) -> Vec<Value> {
    audit
        .iter()
        .filter(|a| a["action"] == action)
        .cloned()
        .collect()
}

/// The audit records of `action`, once there are `n` of them (10 s at most).
async fn await_records(r: &Replicas, action: &str, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let found = actions(&common::sqlite_audit(r).await, action);
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} {action} records after 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j6_an_approver_watches_a_live_session_read_only_and_the_user_is_told() {
    let r = start(1, Store::Sqlite).await;
    let mut ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    let ada_admin = r.enrolled("ada-admin", &["admin"], PAWD).await.unwrap();
    let mut bob = r.enrolled("bob", &[], PAWD).await.unwrap();
    let carol = r.enrolled("carol", &[], PAWD).await.unwrap();
    let dana = r.enrolled("dana", &["admin"], PAWD).await.unwrap();
    let g = approved_grant(&r, &mut ada, &mut bob, PAWD).await;
    let mut t = Shell::open(&r, &mut ada, &g, SSH_TARGET).await;
    t.line("echo before-$((1+1))").await;
    t.until("before-2", 0).await;
    let sid = session_id(&r, &ada).await;
    let path = watch_path(&sid);

    // Who may not: an engineer who approves nothing, the session's own user, her own
    // administrator account (the same person), and nobody watches a session that is not there.
    for (who, user, status, code) in [
        ("carol", &carol, 403, "forbidden"),
        ("ada", &ada, 403, "forbidden"),
        ("ada-admin", &ada_admin, 403, "forbidden"),
    ] {
        let res = user.stream(&r.url(PAWD), &path).await.unwrap();
        assert_eq!(res.status(), status, "{who}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], code, "{who}: {body}");
    }
    let res = bob
        .stream(
            &r.url(PAWD),
            &watch_path("00000000-0000-4000-8000-000000000000"),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(actions(&common::sqlite_audit(&r).await, "session_watch_started").is_empty());
    assert!(!t.screen().contains("is watching"), "{}", t.screen());

    // ada's `rm` waits for a lead. bob leads, so he may approve ada's requests: he watches,
    // while the command is held (the session's relay is busy), and starts from ada's screen.
    let dir = tempfile::tempdir().unwrap();
    let held = dir.path().join("held");
    std::fs::write(&held, "marker").unwrap();
    let rm = format!("rm {}", held.display());
    t.line(&rm).await;
    t.until("waits for a second person's approval", 0).await;
    let mut watch = Sse::open(&r, PAWD, &bob, &sid).await;
    let (name, start) = watch.next().await.unwrap();
    assert_eq!(name, "start", "{start}");
    assert_eq!(start["kind"], "start");
    assert_eq!(start["session_id"], sid.as_str());
    assert_eq!(start["user"], "ada");
    assert_eq!(start["target"], SSH_TARGET);
    assert_eq!(
        (start["cols"].as_u64(), start["rows"].as_u64()),
        (Some(80), Some(24))
    );
    let screen = B64.decode(start["screen"].as_str().unwrap()).unwrap();
    let screen = String::from_utf8_lossy(&screen);
    // What ada sees: the held line's echo waits with the line (the shell is not read meanwhile).
    assert!(
        screen.contains("before-2"),
        "the first screen lacks what ada saw: {screen:?}"
    );
    // ada was told, and the watch is on record (committed before the stream's first byte).
    t.until("paw: bob is watching this session", 0).await;
    let started = actions(&common::sqlite_audit(&r).await, "session_watch_started");
    assert_eq!(started.len(), 1, "{started:#?}");
    assert_eq!(started[0]["actor"], "bob");
    assert_eq!(started[0]["subject"], sid.as_str());
    assert_eq!(started[0]["detail"]["user"], "ada");
    assert_eq!(started[0]["detail"]["target"], SSH_TARGET);
    assert_eq!(started[0]["detail"]["as"], "approver");

    // He refuses it, having seen it: it does not run, and the session goes on.
    let hold = bob
        .call(&r.url(PAWD), "GET", "/v1/holds", None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let hold_id = hold["holds"][0]["id"].as_str().unwrap().to_owned();
    let refuse = Action::ApproveCommand {
        hold_id: hold_id.clone(),
        command: rm.clone(),
        approve: false,
    };
    bob.signed(
        &r.url(PAWD),
        &format!("/v1/holds/{hold_id}/decide"),
        &refuse,
    )
    .await
    .unwrap()
    .ok()
    .unwrap();
    t.until("refused by bob", 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.sync(1).await;
    assert!(held.exists());
    // The refused line's echo, which the check relayed itself, reaches bob by a redraw.
    watch.output_until(&rm).await;

    // What ada's command prints reaches bob.
    t.line("echo watched-$((40+2))").await;
    watch.output_until("watched-42").await;

    // bob cannot type: every other method on the watch route is refused before anything
    // happens, and a GET with a body is refused as a request. There is no other route.
    let marker = dir.path().join("bob-was-here");
    let typed = json!(format!("touch {}\r", marker.display()));
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let answer = bob
            .call(&r.url(PAWD), method, &path, Some(&typed))
            .await
            .unwrap();
        assert_eq!(answer.status, 405, "{method}: {}", answer.body);
        assert_eq!(answer.code(), "method_not_allowed", "{method}");
    }
    let answer = bob
        .call(&r.url(PAWD), "GET", &path, Some(&typed))
        .await
        .unwrap();
    assert_eq!(answer.status, 400, "{}", answer.body);
    let before = t.seen.len();
    t.sync(2).await;
    let seen_meanwhile = watch.output_until("sync-1002").await;
    assert!(!marker.exists(), "bob's keystrokes ran on the target");
    assert!(!t.screen().contains("bob-was-here"), "{}", t.screen());
    assert!(!seen_meanwhile.contains("bob-was-here"), "{seen_meanwhile}");
    assert!(t.seen.len() > before);
    // The refused GET did not start a second watch.
    let started = actions(&common::sqlite_audit(&r).await, "session_watch_started");
    assert_eq!(started.len(), 1, "{started:#?}");

    // bob closes the stream: ada is told, and the end is on record.
    let before = t.seen.len();
    drop(watch);
    t.until("paw: bob stopped watching", before).await;
    let ended = await_records(&r, "session_watch_ended", 1).await;
    assert_eq!(ended[0]["actor"], "bob");
    assert_eq!(ended[0]["subject"], sid.as_str());
    assert_eq!(ended[0]["detail"]["reason"], "closed", "{}", ended[0]);

    // An administrator watches too, until the session ends: the stream's last event says why.
    let mut watch = Sse::open(&r, PAWD, &dana, &sid).await;
    assert_eq!(watch.next().await.unwrap().0, "start");
    t.until("paw: dana is watching this session", before).await;
    t.line("exit").await;
    let end = loop {
        let (name, ev) = watch
            .next()
            .await
            .expect("the stream ended without an end event");
        if name == "end" {
            break ev;
        }
        assert!(
            ["output", "resize", "start"].contains(&name.as_str()),
            "{name}: {ev}"
        );
    };
    assert_eq!(end["reason"], "target_closed", "{end}");
    assert!(watch.next().await.is_none(), "events after the end");
    let ended = await_records(&r, "session_watch_ended", 2).await;
    assert_eq!(ended[1]["actor"], "dana");
    assert_eq!(
        ended[1]["detail"]["reason"], "session_ended",
        "{}",
        ended[1]
    );
    assert_eq!(ended[1]["detail"]["session_end_reason"], "target_closed");
    let started = actions(&common::sqlite_audit(&r).await, "session_watch_started");
    assert_eq!(started.len(), 2);
    assert_eq!(started[1]["detail"]["as"], "admin");

    // The recording holds the watches as chapters, and nothing bob sent.
    await_records(&r, "session_end", 1).await;
    let cast = std::fs::read_to_string(
        r.broker_dir()
            .join("recordings")
            .join(format!("{sid}.cast")),
    )
    .unwrap();
    assert!(cast.contains("watch: bob started watching"), "{cast}");
    assert!(cast.contains("watch: bob stopped watching"), "{cast}");
    assert!(cast.contains("watch: dana started watching"), "{cast}");
    assert!(!cast.contains("bob-was-here"), "{cast}");
    assert!(!marker.exists());
}

/// The output of a session exists only in the broker that carries it: another broker says
/// which one to ask, and that one serves the watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j6_a_session_carried_by_another_broker_is_watched_through_that_broker() {
    let r = start(2, Store::Postgres).await;
    let mut ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    let mut bob = r.enrolled("bob", &[], PAWD).await.unwrap();
    let g = approved_grant(&r, &mut ada, &mut bob, PAWD).await;
    let mut t = Shell::open(&r, &mut ada, &g, SSH_TARGET).await;
    let sid = session_id(&r, &ada).await;
    let carrier = common::psql(
        &r,
        &format!("SELECT broker_id FROM session_tickets WHERE id = '{sid}'"),
    );
    assert!(!carrier.is_empty());

    let answer = bob
        .call(&r.url(1), "GET", &watch_path(&sid), None)
        .await
        .unwrap();
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert_eq!(answer.code(), "conflict");
    let message = answer.body["message"].as_str().unwrap();
    assert!(
        message.contains(&carrier),
        "{message} does not name {carrier}"
    );
    assert!(!t.screen().contains("is watching"));

    let mut watch = Sse::open(&r, PAWD, &bob, &sid).await;
    assert_eq!(watch.next().await.unwrap().0, "start");
    t.until("paw: bob is watching this session", 0).await;
    t.line("echo carried-$((2+3))").await;
    watch.output_until("carried-5").await;
}
