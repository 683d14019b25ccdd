//! The help-desk view (issue #6) against a real OpenSSH `sshd` on loopback: the organisation's
//! session history with filters, replays of recordings with configured patterns masked and
//! checked against their audit record, input after a password prompt kept out of the
//! recording, every replay audited, and a help-desk role that can request nothing.
//!
//! As in `sessions.rs`, the broker's clock is the real time (sshd checks the certificate's
//! validity with its own clock).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::idp::*;
use common::ssh::*;
use paw_broker::audit;
use paw_client::terminal::{Credential, TermEvent};
use paw_proto::action::Action;
use serde_json::{json, Value};
use tokio::sync::mpsc;

const MASK: &str = "••••";

/// An active web-1 grant for `c` and a redeemed session credential on it.
async fn session_credential(c: &mut Client, b: &Broker) -> Credential {
    let grant = grant_for(c, b).await;
    cred(&redeem_for(c, b, &grant).await)
}

/// Output until the session ends (which it must).
async fn drain_to_end(rx: &mut mpsc::UnboundedReceiver<TermEvent>) -> String {
    let (out, end) = drain(rx, Duration::from_secs(30)).await;
    assert!(end.is_some(), "the session did not end: {out}");
    out
}

/// Runs `command` in a session of `c`'s; returns the session id once the broker recorded its
/// end (so the recording is closed and hashed).
async fn run_session(c: &mut Client, b: &Broker, command: &str) -> (String, String) {
    let cred = session_credential(c, b).await;
    let sid = cred.session_id.clone();
    let (_t, mut rx) = open(cred, Some(command)).await.unwrap();
    let out = drain_to_end(&mut rx).await;
    session_end(b, &sid).await;
    (sid, out)
}

async fn audited(b: &Broker, subject: &str) -> Vec<(String, String, String, Value)> {
    audit::records(&b.db, 0, 1_000_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event.subject == subject)
        .map(|r| {
            (
                r.event.actor,
                r.event.action,
                r.event.outcome.as_str().to_owned(),
                r.event.detail,
            )
        })
        .collect()
}

fn ids(v: &Value) -> Vec<String> {
    v["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("not a history: {v}"))
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn history(c: &Client, b: &Broker, query: &str) -> (StatusCode, Value) {
    c.call(b, "GET", &format!("/v1/sessions/history{query}"), None)
        .await
}

fn recording_file(b: &Broker, sid: &str) -> std::path::PathBuf {
    b.dir.path().join("recordings").join(format!("{sid}.cast"))
}

/// The cast's events of one kind (`o` or `i`), concatenated.
fn stream(cast: &str, code: &str) -> String {
    cast.lines()
        .skip(1)
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v[1] == code)
        .map(|v| v[2].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpdesk1_helpdesk_sees_everyones_history_and_filters_work_others_only_their_own() {
    let mut s = setup("").await;
    let mut eve = s.b.enrolled_as("eve", &[]).await;
    let hana = s.b.enrolled_as("hana", &["helpdesk"]).await;
    let t_before = s.b.now();
    let (ada_sid, _) = run_session(&mut s.ada, &s.b, "echo from-ada").await;
    // Distinct start times, so "newest first" is decided by the clock, not by the id.
    s.b.advance(1000);
    let (eve_sid, _) = run_session(&mut eve, &s.b, "echo from-eve").await;

    // Help-desk: everyone's, newest first, with who, where, which grant, when and why it ended.
    let (st, v) = history(&hana, &s.b, "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(ids(&v), vec![eve_sid.clone(), ada_sid.clone()]);
    assert_eq!(v["has_more"], false);
    let e = &v["sessions"][0];
    assert_eq!(e["user"], "eve");
    assert_eq!(e["target"], "web-1");
    assert_eq!(e["target_kind"], "ssh");
    assert_eq!(e["role"], "root");
    assert!(e["grant_id"].is_string());
    assert!(e["started_at_ms"].as_i64().unwrap() >= t_before);
    assert!(e["ended_at_ms"].is_i64());
    let reason = e["end_reason"].as_str().unwrap().to_owned();
    assert_eq!(e["has_recording"], true);
    assert_eq!(
        e["recording_sha256"],
        session_end(&s.b, &eve_sid).await["recording_sha256"]
    );

    // Filters: user and target are case-insensitive parts, reason exact, time by start.
    let only = |q: &'static str| {
        let hana = &hana;
        let b = &s.b;
        async move {
            let (st, v) = history(hana, b, q).await;
            assert_eq!(st, StatusCode::OK, "{q}: {v}");
            ids(&v)
        }
    };
    assert_eq!(only("?user=EV").await, vec![eve_sid.clone()]);
    assert_eq!(only("?user=ada").await, vec![ada_sid.clone()]);
    assert_eq!(only("?target=WEB-").await.len(), 2);
    assert!(only("?target=db-").await.is_empty());
    assert!(
        only("?user=%25").await.is_empty(),
        "% is literal, not a wildcard"
    );
    assert!(only("?reason=killed").await.is_empty());
    assert!(only("?reason=live").await.is_empty());
    let by_reason = history(&hana, &s.b, &format!("?reason={reason}")).await.1;
    assert!(ids(&by_reason).contains(&eve_sid), "{by_reason}");
    let eve_start = e["started_at_ms"].as_i64().unwrap();
    assert_eq!(
        ids(&history(&hana, &s.b, &format!("?from_ms={eve_start}"))
            .await
            .1),
        vec![eve_sid.clone()]
    );
    assert_eq!(
        ids(&history(&hana, &s.b, &format!("?until_ms={eve_start}"))
            .await
            .1),
        vec![ada_sid.clone()]
    );
    assert!(ids(
        &history(&hana, &s.b, &format!("?user=eve&until_ms={eve_start}"))
            .await
            .1
    )
    .is_empty());

    // Pages.
    let (_, p1) = history(&hana, &s.b, "?limit=1").await;
    assert_eq!(
        (ids(&p1), &p1["has_more"]),
        (vec![eve_sid.clone()], &json!(true))
    );
    let (_, p2) = history(&hana, &s.b, "?limit=1&offset=1").await;
    assert_eq!(
        (ids(&p2), &p2["has_more"]),
        (vec![ada_sid.clone()], &json!(false))
    );

    // Bad queries are 400 `bad_request` (F1), never a 5xx or an ignored parameter.
    for q in [
        "?limit=0",
        "?limit=201",
        "?limit=ten",
        "?color=red",
        "?from_ms=5&until_ms=4",
        "?reason=DROP%20TABLE",
        "?offset=-1",
    ] {
        let (st, v) = history(&hana, &s.b, q).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{q}: {v}"
        );
    }

    // Anyone else sees only their own, whatever they filter by.
    let (st, v) = history(&s.ada, &s.b, "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(ids(&v), vec![ada_sid.clone()]);
    assert!(ids(&history(&s.ada, &s.b, "?user=eve").await.1).is_empty());
    assert_eq!(ids(&history(&eve, &s.b, "").await.1), vec![eve_sid.clone()]);

    // An administrator sees everyone's.
    let admin = s.b.enrolled_as("bob", &["admin"]).await;
    assert_eq!(ids(&history(&admin, &s.b, "").await.1).len(), 2);
    // Without a session: 401.
    let (st, _) =
        s.b.send("GET", "/v1/sessions/history", Vec::new(), &[])
            .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    no_residual_sessions(&s.b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpdesk2_replay_masks_configured_patterns_and_every_replay_is_audited() {
    let mut s = setup(r#"mask = ["token=[A-Za-z0-9]+", "(?i)api[_-]key: *\\S+"]"#).await;
    let eve = s.b.enrolled_as("eve", &[]).await;
    let hana = s.b.enrolled_as("hana", &["helpdesk"]).await;
    let (sid, out) = run_session(
        &mut s.ada,
        &s.b,
        "echo token=abc123SECRET; echo API_KEY: k-999; echo visible-line",
    )
    .await;
    // The session itself was not masked: only what help-desk sees is.
    assert!(out.contains("token=abc123SECRET"), "{out}");
    let on_disk = std::fs::read_to_string(recording_file(&s.b, &sid)).unwrap();
    assert!(
        on_disk.contains("abc123SECRET"),
        "the file stays the evidence"
    );
    let sha = session_end(&s.b, &sid).await["recording_sha256"].clone();
    // What a replay hides is readable by any signed-in user, as configured, and by nobody
    // who is not signed in.
    let (st, v) = eve.call(&s.b, "GET", "/v1/sessions/masks", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v["patterns"],
        serde_json::json!(["token=[A-Za-z0-9]+", "(?i)api[_-]key: *\\S+"])
    );
    assert_eq!(v["default"], false);
    assert_eq!(v["replacement"], "••••");
    let (st, v) = s.b.send("GET", "/v1/sessions/masks", Vec::new(), &[]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");

    let (st, v) = hana
        .call(&s.b, "GET", &format!("/v1/sessions/{sid}/recording"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let cast = v["cast"].as_str().unwrap();
    assert_eq!(v["session_id"], sid.as_str());
    assert_eq!(v["sha256"], sha);
    for secret in ["abc123SECRET", "k-999"] {
        assert!(!cast.contains(secret), "{secret} in the replay: {cast}");
    }
    assert!(cast.contains(MASK), "{cast}");
    // In the output and in the command (recorded as input) alike.
    assert!(stream(cast, "o").contains(&format!("{MASK}\r\n")), "{cast}");
    assert!(stream(cast, "i").contains(MASK), "{cast}");
    assert!(stream(cast, "o").contains("visible-line"), "{cast}");
    assert!(v["masked"].as_u64().unwrap() >= 4, "{v}");
    // Still asciicast v2.
    let header: Value = serde_json::from_str(cast.lines().next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);

    // The session's own user may replay it; another user may not (not even learn it exists).
    let (st, _) = s
        .ada
        .call(&s.b, "GET", &format!("/v1/sessions/{sid}/recording"), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = eve
        .call(&s.b, "GET", &format!("/v1/sessions/{sid}/recording"), None)
        .await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
    assert!(v.get("cast").is_none());
    let (st, v) = hana
        .call(&s.b, "GET", "/v1/sessions/no-such-session/recording", None)
        .await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
    let (st, _) = hana
        .call(&s.b, "GET", "/v1/sessions/..%2F..%2Fetc/recording", None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Every replay is on the broker's record: who replayed which session, with what hash.
    let replays: Vec<_> = audited(&s.b, &sid)
        .await
        .into_iter()
        .filter(|(_, a, _, _)| a == "session_replay")
        .collect();
    let who: Vec<(&str, &str)> = replays
        .iter()
        .map(|(actor, _, o, _)| (actor.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        who,
        vec![("hana", "success"), ("ada", "success"), ("eve", "denied")]
    );
    assert_eq!(replays[0].3["recording_sha256"], sha);
    assert_eq!(replays[0].3["session_user"], "ada");
    assert!(replays[0].3["masked"].as_u64().unwrap() >= 4);
    audit::verify(&s.b.db).await.unwrap();
    no_residual_sessions(&s.b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpdesk3_a_recording_edited_or_deleted_on_disk_is_refused_and_so_is_an_oversized_one() {
    let mut s = setup("").await;
    let hana = s.b.enrolled_as("hana", &["helpdesk"]).await;
    let (sid, _) = run_session(&mut s.ada, &s.b, "echo rm-rf-happened").await;
    let file = recording_file(&s.b, &sid);
    let path = format!("/v1/sessions/{sid}/recording");
    let (st, _) = hana.call(&s.b, "GET", &path, None).await;
    assert_eq!(st, StatusCode::OK);

    // Someone covers their tracks.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("rm-rf-happened", "nothing-to-see")).unwrap();
    let (st, v) = hana.call(&s.b, "GET", &path, None).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::CONFLICT, "recording_tampered"),
        "{v}"
    );
    assert!(
        !v.to_string().contains("nothing-to-see"),
        "never the tampered file"
    );
    assert!(v["message"].as_str().unwrap().contains("SHA-256"));

    // Deleted: the audit log says there was one, so that is tampering too.
    std::fs::remove_file(&file).unwrap();
    let (st, v) = hana.call(&s.b, "GET", &path, None).await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "recording_tampered"));

    // Larger than the broker replays (a sparse file: no 64 MiB written).
    let f = std::fs::File::create(&file).unwrap();
    f.set_len(paw_broker::sessions::history::MAX_RECORDING_BYTES + 1)
        .unwrap();
    drop(f);
    let (st, v) = hana.call(&s.b, "GET", &path, None).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("64 MiB"), "{v}");

    // Each refusal is on the record as a failed replay, with why.
    let reasons: Vec<(String, Value)> = audited(&s.b, &sid)
        .await
        .into_iter()
        .filter(|(_, a, _, _)| a == "session_replay")
        .map(|(_, _, o, d)| (o, d["reason"].clone()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("success".into(), Value::Null),
            ("failure".into(), json!("recording_hash_mismatch")),
            ("failure".into(), json!("recording_missing")),
            ("failure".into(), json!("recording_too_large")),
        ]
    );
    // The history no longer offers a replay of a file that is not there.
    std::fs::remove_file(&file).unwrap();
    let (_, v) = history(&hana, &s.b, "").await;
    assert_eq!(v["sessions"][0]["has_recording"], false);
    no_residual_sessions(&s.b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpdesk4_a_password_typed_after_a_password_prompt_is_not_recorded() {
    let mut s = setup("").await;
    let hana = s.b.enrolled_as("hana", &["helpdesk"]).await;
    let cred = session_credential(&mut s.ada, &s.b).await;
    let sid = cred.session_id.clone();
    // An interactive terminal, as the app opens it.
    let (t, mut rx) = open(cred, None).await.unwrap();
    t.input(b"echo shell-$((6*7))\r".to_vec()).await.unwrap();
    wait_for(&mut rx, "shell-42").await;
    // What `sudo` or `passwd` do: echo off, a prompt, a line read. The prompt is spelt apart in
    // the command so the echoed command line is not mistaken for the prompt itself.
    t.input(
        b"sh -c 'stty -echo; printf \"Pass\"\"word: \"; read -r x; stty echo; echo; echo \"got ${#x}\"'\r"
            .to_vec(),
    )
    .await
    .unwrap();
    wait_for(&mut rx, "Password: ").await;
    t.input(b"hunter2SECRET\r".to_vec()).await.unwrap();
    wait_for(&mut rx, "got 13").await;
    t.input(b"echo after-$((7*6))\r".to_vec()).await.unwrap();
    wait_for(&mut rx, "after-42").await;
    t.input(b"exit\r".to_vec()).await.unwrap();
    drain_to_end(&mut rx).await;
    session_end(&s.b, &sid).await;

    let on_disk = std::fs::read_to_string(recording_file(&s.b, &sid)).unwrap();
    assert!(
        !on_disk.contains("hunter2"),
        "the password is on disk: {on_disk}"
    );
    let (st, v) = hana
        .call(&s.b, "GET", &format!("/v1/sessions/{sid}/recording"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let cast = v["cast"].as_str().unwrap();
    assert!(!cast.contains("hunter2"), "{cast}");
    // Input before and after the prompt is recorded as usual.
    let typed = stream(cast, "i");
    assert!(typed.contains("echo shell-"), "{typed:?}");
    assert!(typed.contains("echo after-"), "{typed:?}");
    assert!(stream(cast, "o").contains("Password: "), "{cast}");
    no_residual_sessions(&s.b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpdesk5_helpdesk_can_request_nothing() {
    let b = Broker::start().await;
    // eve is a requester of both entitlements by the policy's groups; the help-desk role
    // overrides that.
    let eve = b.enrolled_as("eve", &["helpdesk"]).await;
    let (st, v) = eve.call(&b, "GET", "/v1/entitlements", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["entitlements"], json!([]), "{v}");
    let (st, v) = eve
        .call(
            &b,
            "POST",
            "/v1/stepup/start",
            Some(&json!({ "action": req_web(30) })),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "forbidden"), "{v}");
    let break_glass = Action::BreakGlass {
        entitlement: "prod-db".into(),
        target: "db-1".into(),
        role: "dba".into(),
        duration_secs: 600,
        justification: "the primary is down and paging".into(),
    };
    let (st, v) = eve
        .call(
            &b,
            "POST",
            "/v1/stepup/start",
            Some(&json!({ "action": break_glass })),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "forbidden"), "{v}");
    // And the history is theirs to read (empty here).
    let (st, v) = history(&eve, &b, "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["sessions"], json!([]));
}
