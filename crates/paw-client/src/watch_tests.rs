//! Watching a live session through the real `Core` and HTTPS client against
//! [`crate::fake_broker`]: the stream's events reach the pane's sink in order with the end last,
//! the broker's refusals come back with its code and words, one watch per session id, and Stop
//! or sign-out ends a watch. What the real broker serves is tested in the `tests` crate (J6).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use paw_proto::ipc::{AuditOutcome, WatchEvent};
use paw_proto::session::{SessionIdInput, SessionWatchEvent};
use paw_proto::ErrorCode;
use serde_json::json;

use crate::core_tests::{all_records, eventually, signed_in};
use crate::fake_broker::{FakeBroker, Reply};
use crate::ClientError;

type Senders = Arc<Mutex<Vec<std::sync::mpsc::Sender<Vec<u8>>>>>;
type Seen = Arc<Mutex<Vec<WatchEvent>>>;

/// `s1` and `s2` stream (fed by the test); `own`, `gone` and `far` are refused as the broker
/// refuses its session's own person, an ended session and one another broker carries.
fn watch_broker() -> (FakeBroker, Senders) {
    let senders: Senders = Arc::default();
    let s = senders.clone();
    let fb = FakeBroker::start(move |req| {
        let refuse = |status: u16, code: &str, message: &str| {
            Some(Reply::Json(
                status,
                json!({"code": code, "message": message}),
            ))
        };
        match req.path.as_str() {
            "/v1/sessions/s1/watch" | "/v1/sessions/s2/watch" => {
                let (tx, rx) = std::sync::mpsc::channel();
                s.lock().unwrap().push(tx);
                Some(Reply::Stream(rx))
            }
            "/v1/sessions/own/watch" => {
                refuse(403, "forbidden", "nobody watches their own session")
            }
            "/v1/sessions/gone/watch" => refuse(404, "not_found", "no such live session"),
            "/v1/sessions/far/watch" => refuse(
                409,
                "conflict",
                "this session is carried by broker b-2 on pawd-2: watch it through that broker",
            ),
            _ => None,
        }
    });
    (fb, senders)
}

fn sse(e: &SessionWatchEvent) -> Vec<u8> {
    format!(
        "event: {}\r\ndata: {}\r\n\r\n",
        e.kind(),
        serde_json::to_string(e).unwrap()
    )
    .into_bytes()
}

fn start(screen: &[u8]) -> SessionWatchEvent {
    SessionWatchEvent::Start {
        session_id: "s1".into(),
        user: "bob".into(),
        target: "web-1".into(),
        role: "root".into(),
        cols: 100,
        rows: 30,
        screen: B64.encode(screen),
    }
}

fn input(id: &str) -> SessionIdInput {
    SessionIdInput {
        session_id: id.into(),
    }
}

fn collector() -> (Seen, impl Fn(WatchEvent) + Send + Sync + 'static) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    (seen, move |e| s.lock().unwrap().push(e))
}

fn last_is_end(seen: &Seen, reason: &str) -> bool {
    matches!(seen.lock().unwrap().last(), Some(WatchEvent::Ended { reason: r, .. }) if r == reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_streams_the_screen_output_and_end_in_order() {
    let (fb, senders) = watch_broker();
    let s = signed_in(&fb, None).await;
    let (seen, sink) = collector();
    s.core.watch_session(input("s1"), sink).await.unwrap();
    let req = &fb.requests("/v1/sessions/s1/watch")[0];
    assert_eq!(req.method, "GET");
    assert_eq!(req.header("accept"), Some("text/event-stream"));
    assert_eq!(req.header("authorization"), Some("Bearer access-1"));
    assert!(req.header(paw_proto::device_proof::HEADER).is_some());
    assert!(req.body.is_empty(), "a watch sends nothing");

    let tx = senders.lock().unwrap()[0].clone();
    let mut bytes = sse(&start(b"\x1b[Hbob@web-1:~$ "));
    bytes.extend(b": keep-alive\r\n\r\n");
    bytes.extend(sse(&SessionWatchEvent::Output {
        data: B64.encode("echo watched-$((40+2))\r\nwatched-42\r\n"),
    }));
    // Split mid-event: nothing is interpreted before its line is whole.
    let (a, b) = bytes.split_at(bytes.len() - 7);
    tx.send(a.to_vec()).unwrap();
    tx.send(b.to_vec()).unwrap();
    tx.send(sse(&SessionWatchEvent::Resize {
        cols: 132,
        rows: 43,
    }))
    .unwrap();
    tx.send(sse(&SessionWatchEvent::End {
        reason: "killed".into(),
        message: "the session ended: an administrator ended it".into(),
    }))
    .unwrap();
    eventually("the end", || seen.lock().unwrap().len() == 4).await;
    let got = seen.lock().unwrap().clone();
    assert!(
        matches!(&got[0], WatchEvent::Start { user, target, cols: 100, rows: 30, screen, .. }
            if user == "bob" && target == "web-1" && B64.decode(screen).unwrap() == b"\x1b[Hbob@web-1:~$ "),
        "{got:?}"
    );
    assert!(
        matches!(&got[1], WatchEvent::Output { data }
            if String::from_utf8(B64.decode(data).unwrap()).unwrap().contains("watched-42")),
        "{got:?}"
    );
    assert_eq!(
        got[2],
        WatchEvent::Resize {
            cols: 132,
            rows: 43
        }
    );
    assert_eq!(
        got[3],
        WatchEvent::Ended {
            reason: "killed".into(),
            message: "the session ended: an administrator ended it".into(),
        }
    );
    // Over: nothing more is sent, the stream is closed and the watch forgotten.
    drop(tx);
    eventually("the stream closes", || {
        fb.open_streams.load(Ordering::SeqCst) == 0
    })
    .await;
    assert!(s.core.inner.watches.ids().is_empty());
    assert_eq!(seen.lock().unwrap().len(), 4);
    // The watch is in the local trail.
    let page = s.core.audit_query(all_records()).await.unwrap();
    let noted = page
        .records
        .iter()
        .find(|r| r.kind == "session.watch")
        .expect("a session.watch record");
    assert_eq!(noted.target, "s1");
    assert_eq!(noted.outcome, AuditOutcome::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_s_refusals_come_back_with_its_code_and_words() {
    let (fb, _senders) = watch_broker();
    let s = signed_in(&fb, None).await;
    for (id, code, words) in [
        (
            "own",
            ErrorCode::Forbidden,
            "nobody watches their own session",
        ),
        ("gone", ErrorCode::NotFound, "no such live session"),
        (
            "far",
            ErrorCode::Conflict,
            "carried by broker b-2 on pawd-2",
        ),
    ] {
        let (seen, sink) = collector();
        let e = s.core.watch_session(input(id), sink).await.unwrap_err();
        assert_eq!(e.code(), code, "{id}: {e:?}");
        assert!(e.to_string().contains(words), "{id}: {e}");
        assert!(
            seen.lock().unwrap().is_empty(),
            "a refused watch sends nothing"
        );
    }
    assert!(s.core.inner.watches.ids().is_empty());
    // Not an id: refused before the broker.
    let (_seen, sink) = collector();
    let e = s.core.watch_session(input("../x"), sink).await.unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::InvalidInput {
                field: "session_id",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(fb.requests("/v1/sessions/../x/watch").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_watch_per_session_stop_and_sign_out_end_them() {
    let (fb, senders) = watch_broker();
    let s = signed_in(&fb, None).await;
    let (first, sink) = collector();
    s.core.watch_session(input("s1"), sink).await.unwrap();
    // Watching s1 again replaces the first watch, which is told it stopped.
    let (second, sink) = collector();
    s.core.watch_session(input("s1"), sink).await.unwrap();
    eventually("the first watch ends", || last_is_end(&first, "stopped")).await;
    assert_eq!(first.lock().unwrap().len(), 1);
    assert_eq!(s.core.inner.watches.ids(), vec!["s1".to_owned()]);
    // The second one goes on.
    let tx = senders.lock().unwrap()[1].clone();
    tx.send(sse(&start(b""))).unwrap();
    eventually("the second watch starts", || {
        second.lock().unwrap().len() == 1
    })
    .await;

    // Stop: the pane is told, the stream closes.
    s.core.stop_watch(input("s1")).unwrap();
    eventually("the second watch ends", || last_is_end(&second, "stopped")).await;
    s.core.stop_watch(input("s1")).unwrap();

    // Sign-out ends every watch.
    let (third, sink) = collector();
    s.core.watch_session(input("s2"), sink).await.unwrap();
    s.core.logout().await.unwrap();
    eventually("the watch ends at sign-out", || {
        last_is_end(&third, "signed_out")
    })
    .await;
    assert!(s.core.inner.watches.ids().is_empty());
    eventually("every stream closes", || {
        fb.open_streams.load(Ordering::SeqCst) == 0
    })
    .await;
    // A broker that goes away mid-watch is a lost connection, not a session end.
    drop(tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_closes_without_an_end_is_a_lost_connection() {
    let (fb, senders) = watch_broker();
    let s = signed_in(&fb, None).await;
    let (seen, sink) = collector();
    s.core.watch_session(input("s1"), sink).await.unwrap();
    let tx = senders.lock().unwrap().remove(0);
    tx.send(sse(&start(b"x"))).unwrap();
    tx.send(b"event: output\ndata: {\"kind\":\"output\",\"data\":\"%%%\"}\n\n".to_vec())
        .unwrap();
    eventually("a malformed event ends the watch", || {
        last_is_end(&seen, "broker_protocol")
    })
    .await;
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "the bad bytes never reach the pane"
    );

    let (seen, sink) = collector();
    s.core.watch_session(input("s1"), sink).await.unwrap();
    let tx = senders.lock().unwrap().remove(0);
    tx.send(sse(&start(b"x"))).unwrap();
    drop(tx);
    eventually("a closed stream ends the watch", || {
        last_is_end(&seen, "connection_lost")
    })
    .await;
}
