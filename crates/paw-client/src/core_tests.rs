//! The elevation use cases, the live stream and the status bar's grant through the real `Core`
//! and HTTPS client, against [`crate::fake_broker`]. What the real broker decides is tested in
//! the `tests` crate; here it is what the core sends, when, and what it keeps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use paw_fido::{Authenticator, UserEntity};
use paw_proto::action::{Action, Purpose};
use paw_proto::elevation::{GrantView, LiveEvent, SignedElevation};
use paw_proto::http::StepUpStartRequest;
use paw_proto::ipc::{
    BuildInfo, ElevationAction, KeyAction, RevokeGrantInput, SessionUser, SettingsInput,
};
use paw_proto::ErrorCode;
use serde_json::{json, Value};

use crate::fake_broker::{FakeBroker, Reply};
use crate::secret::{AccessToken, RefreshToken};
use crate::{clock, ClientError, Core, MemoryKeyStore, TokenStore, Tokens};

pub(crate) struct Setup {
    pub(crate) core: Core,
    keystore: Arc<MemoryKeyStore>,
    _dir: tempfile::TempDir,
}

/// A core pointed at `fb`, signed in as alice (tokens in its store, as after a login).
pub(crate) async fn signed_in(fb: &FakeBroker, auth: Option<Arc<dyn Authenticator>>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let keystore = Arc::new(MemoryKeyStore::new());
    let core = Core::open(
        dir.path().join("cfg"),
        BuildInfo {
            version: "t".into(),
            debug: true,
            virtual_key: false,
        },
        keystore.clone(),
        auth,
    )
    .unwrap();
    core.save_settings(SettingsInput {
        broker_url: fb.url.clone(),
        fallback_urls: Vec::new(),
        ca_path: fb.ca_path.display().to_string(),
    })
    .await
    .unwrap();
    let now = clock::local_wall_ms();
    TokenStore::new(keystore.clone())
        .save(&Tokens {
            access: AccessToken::new("access-1"),
            access_expires_ms: now + 3_600_000,
            refresh: RefreshToken::new("refresh-1"),
            refresh_expires_ms: now + 12 * 3_600_000,
        })
        .unwrap();
    core.inner.state.write().await.user = Some(SessionUser {
        name: "alice".into(),
        roles: vec![],
    });
    Setup {
        core,
        keystore,
        _dir: dir,
    }
}

pub(crate) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn sse(kind: &str, grant_id: &str) -> Vec<u8> {
    let ev = LiveEvent {
        kind: kind.into(),
        grant_id: grant_id.into(),
        state: "active".into(),
        message: "m".into(),
        at_ms: 1,
    };
    format!(
        "event: {kind}\r\ndata: {}\r\n\r\n",
        serde_json::to_string(&ev).unwrap()
    )
    .into_bytes()
}

type Senders = Arc<Mutex<Vec<std::sync::mpsc::Sender<Vec<u8>>>>>;

/// A fake broker whose every `/v1/events` is a stream the test feeds through `Senders`.
fn streaming_broker(
    extra: impl Fn(&crate::fake_broker::Req) -> Option<Reply> + Send + Sync + 'static,
) -> (FakeBroker, Senders) {
    let senders: Senders = Arc::default();
    let s = senders.clone();
    let fb = FakeBroker::start(move |req| {
        if req.path == "/v1/events" {
            let (tx, rx) = std::sync::mpsc::channel();
            s.lock().unwrap().push(tx);
            return Some(Reply::Stream(rx));
        }
        extra(req)
    });
    (fb, senders)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_stream_receives_reconnects_and_stops_at_sign_out() {
    let (fb, senders) = streaming_broker(|_| None);
    let s = signed_in(&fb, None).await;
    let core = &s.core;
    let feed = core.live_events(0).await;
    assert!(feed.events.is_empty());

    eventually("the stream opens", || senders.lock().unwrap().len() == 1).await;
    let req = &fb.requests("/v1/events")[0];
    assert_eq!(req.method, "GET");
    assert_eq!(req.header("authorization"), Some("Bearer access-1"));
    assert!(req.header(paw_proto::device_proof::HEADER).is_some());
    assert_eq!(req.header("accept"), Some("text/event-stream"));
    assert!(req.body.is_empty());

    // One event split across writes, and a keep-alive.
    let bytes = sse("grant_started", "g1");
    let tx = senders.lock().unwrap()[0].clone();
    let (a, b) = bytes.split_at(17);
    tx.send(a.to_vec()).unwrap();
    tx.send(b":keep-alive\n\n".to_vec()).unwrap();
    tx.send(b.to_vec()).unwrap();
    let mut feed = core.live_events(0).await;
    for _ in 0..200 {
        if feed.events.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        feed = core.live_events(0).await;
    }
    assert!(feed.connected);
    let kinds: Vec<&str> = feed.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["resync", "grant_started"],
        "a connection starts with a reload"
    );
    assert_eq!(feed.events[1].grant_id, "g1");
    let seen = feed.seq;
    assert!(core.live_events(seen).await.events.is_empty());

    // The broker ends the stream: the core reconnects (after ~1 s) and says to reload.
    drop(tx);
    senders.lock().unwrap().remove(0);
    eventually("a reconnection", || fb.requests("/v1/events").len() == 2).await;
    let mut feed = core.live_events(seen).await;
    for _ in 0..100 {
        if !feed.events.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        feed = core.live_events(seen).await;
    }
    assert_eq!(feed.events[0].kind, "resync");
    assert!(feed.seq > seen);

    // Sign-out ends the stream and forgets the events; no reconnection follows.
    core.logout().await.unwrap();
    let feed = core.live_events(0).await;
    assert!(feed.events.is_empty(), "{feed:?}");
    assert!(!feed.connected);
    eventually("the stream closes", || {
        fb.open_streams.load(Ordering::SeqCst) == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(fb.requests("/v1/events").len(), 2);
    assert!(TokenStore::new(s.keystore.clone())
        .load()
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stream_signs_out_and_does_not_retry() {
    let fb = FakeBroker::start(|req| {
        (req.path == "/v1/events").then(|| {
            Reply::Json(
                401,
                json!({"code": "unauthenticated", "message": "unknown access token"}),
            )
        })
    });
    let s = signed_in(&fb, None).await;
    s.core.live_events(0).await;
    let ks = s.keystore.clone();
    eventually("sign-out", || {
        TokenStore::new(ks.clone()).load().unwrap().is_none()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(fb.requests("/v1/events").len(), 1);
    assert!(s.core.inner.state.read().await.user.is_none());
    let feed = s.core.live_events(0).await;
    assert!(!feed.connected && feed.events.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_core_ends_its_stream() {
    let (fb, senders) = streaming_broker(|_| None);
    let s = signed_in(&fb, None).await;
    s.core.live_events(0).await;
    eventually("the stream opens", || senders.lock().unwrap().len() == 1).await;
    eventually("the stream is open", || {
        fb.open_streams.load(Ordering::SeqCst) == 1
    })
    .await;
    drop(s);
    eventually("the stream closes", || {
        fb.open_streams.load(Ordering::SeqCst) == 0
    })
    .await;
}

fn grant_json(id: &str, state: &str, now: i64) -> Value {
    serde_json::to_value(GrantView {
        id: id.into(),
        user: "alice".into(),
        entitlement: "prod-db-admin".into(),
        target_kind: "postgres".into(),
        target: "db-prod-1".into(),
        role: "dba".into(),
        duration_secs: 3600,
        justification: "INC-42 vacuum the orders table".into(),
        ticket: None,
        break_glass: false,
        state: state.into(),
        created_at_ms: now,
        start_at_ms: None,
        starts_at_ms: Some(now - 1_000),
        ends_at_ms: Some(now + 600_000),
        ended_at_ms: None,
        end_reason: None,
        decisions: vec![],
        rule: "auto".into(),
        approvals_missing: 0,
        reviewers: vec![],
        review_closed: false,
    })
    .unwrap()
}

/// A fake broker for the step-up flow: challenges for whatever action is asked (bound to its
/// hash, for the credential `cred`), refuses break-glass as policy would, and checks that a
/// signed elevation carries exactly the action the challenge was for.
fn elevation_broker(cred: Vec<u8>) -> (FakeBroker, Senders) {
    let asked: Arc<Mutex<Option<Action>>> = Arc::default();
    streaming_broker(move |req| {
        let now = clock::local_wall_ms();
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/v1/stepup/start") => {
                let action = req.json::<StepUpStartRequest>().action;
                if matches!(action, Action::BreakGlass { .. }) {
                    return Some(Reply::Json(
                        403,
                        json!({"code": "forbidden", "message": "the entitlement has no break-glass"}),
                    ));
                }
                *asked.lock().unwrap() = Some(action.clone());
                Some(Reply::Json(
                    200,
                    json!({
                        "challenge": "ch-1",
                        "purpose": action.purpose(),
                        "action_hash": B64.encode(action.hash()),
                        "description": "(the broker's words are not shown)",
                        "options": {"publicKey": {
                            "rpId": "localhost", "challenge": "ch-1",
                            "allowCredentials": [{"type": "public-key", "id": B64.encode(&cred)}]
                        }}
                    }),
                ))
            }
            ("POST", p) if p == "/v1/requests" || p.ends_with("/decide") => {
                let signed: SignedElevation = req.json();
                let want = asked
                    .lock()
                    .unwrap()
                    .take()
                    .expect("a challenge was issued");
                assert_eq!(signed.stepup.action, want);
                assert_eq!(signed.stepup.challenge, "ch-1");
                let cdj = B64
                    .decode(
                        signed.stepup.credential["response"]["clientDataJSON"]
                            .as_str()
                            .unwrap(),
                    )
                    .unwrap();
                let cdj: Value = serde_json::from_slice(&cdj).unwrap();
                assert_eq!(cdj["pawActionHash"], B64.encode(want.hash()));
                Some(Reply::Json(200, grant_json("g-new", "active", now)))
            }
            ("GET", "/v1/me") => Some(Reply::Json(
                200,
                json!({"user": "alice", "roles": [], "session_expires_at_ms": now + 3_600_000}),
            )),
            ("GET", "/v1/grants") => Some(Reply::Json(
                200,
                json!({"grants": [grant_json("g-new", "active", now)], "now_ms": now}),
            )),
            ("GET", "/v1/approvals") => {
                let mut r7 = grant_json("r-7", "pending", now);
                r7["user"] = json!("bob");
                Some(Reply::Json(
                    200,
                    json!({"requests": [{"request": r7, "requester_recent": [], "rule": "needs 1"}],
                           "reviews": [], "now_ms": now}),
                ))
            }
            _ => None,
        }
    })
}

pub(crate) fn virtual_key_with_credential() -> (Arc<dyn Authenticator>, Vec<u8>) {
    let store = MemoryKeyStore::new();
    let key = crate::load_virtual_authenticator(&store, None)
        .unwrap()
        .unwrap();
    let reg = key
        .make_credential(
            "localhost",
            &UserEntity::default(),
            b"{}",
            &paw_fido::NoPrompt,
        )
        .unwrap();
    (key, reg.credential_id)
}

fn request() -> ElevationAction {
    ElevationAction::Request {
        entitlement: "prod-db-admin".into(),
        target: "db-prod-1".into(),
        role: "dba".into(),
        duration_secs: 3600,
        justification: "INC-42 vacuum the orders table".into(),
        ticket: None,
        start_at_ms: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevation_step_ups_sign_the_core_s_action_and_go_to_their_endpoint() {
    let (key, cred) = virtual_key_with_credential();
    let (fb, _senders) = elevation_broker(cred);
    let s = signed_in(&fb, Some(key)).await;
    let core = &s.core;

    // Prepare: the words come from the core's own action.
    let prompt = core.prepare_elevation(request()).await.unwrap();
    let action = crate::elevation::canonical_action(&request()).unwrap();
    assert_eq!(prompt.purpose, Purpose::Request);
    assert_eq!(prompt.description, action.describe());
    let start = &fb.requests("/v1/stepup/start")[0];
    assert_eq!(start.json::<StepUpStartRequest>().action, action);

    // Not a key-management prompt; still usable by its own confirm call, then spent.
    let e = core.confirm_step_up(prompt.id.clone()).await.unwrap_err();
    assert!(matches!(e, ClientError::StepUpUnknown), "{e:?}");
    let view = core.confirm_elevation(prompt.id.clone()).await.unwrap();
    assert_eq!(view.id, "g-new");
    assert_eq!(fb.requests("/v1/requests").len(), 1);
    let e = core.confirm_elevation(prompt.id).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ChallengeInvalid);

    // A decision goes to its request's endpoint.
    let prompt = core
        .prepare_elevation(ElevationAction::Decide {
            request_id: "r-7".into(),
            approve: true,
            comment: "ok".into(),
        })
        .await
        .unwrap();
    assert_eq!(prompt.purpose, Purpose::Approve);
    // The approver reads what the request is, not just its id.
    assert!(
        prompt.description.starts_with("Approve bob's request:"),
        "{}",
        prompt.description
    );
    assert!(prompt.description.contains("r-7"), "{}", prompt.description);
    core.confirm_elevation(prompt.id).await.unwrap();
    // A request that is not waiting for this approver is refused before any step-up.
    let e = core
        .prepare_elevation(ElevationAction::Decide {
            request_id: "r-8".into(),
            approve: true,
            comment: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadRequest);
    assert_eq!(fb.requests("/v1/requests/r-7/decide").len(), 1);

    // A key-management prompt cannot be confirmed as an elevation; cancel works for it.
    let prompt = core
        .prepare_step_up(KeyAction::Revoke { id: "k1".into() })
        .await
        .unwrap();
    let e = core.confirm_elevation(prompt.id.clone()).await.unwrap_err();
    assert!(matches!(e, ClientError::StepUpUnknown), "{e:?}");
    core.cancel_step_up(prompt.id.clone()).await.unwrap();
    let e = core.confirm_step_up(prompt.id).await.unwrap_err();
    assert!(matches!(e, ClientError::StepUpUnknown), "{e:?}");

    // The broker's policy refusal at step-up start is passed on as it is.
    let e = core
        .prepare_elevation(ElevationAction::BreakGlass {
            entitlement: "prod-db-admin".into(),
            target: "db-prod-1".into(),
            role: "dba".into(),
            duration_secs: 600,
            justification: "primary is down, INC-9".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Forbidden);
    assert!(e.to_string().contains("no break-glass"), "{e}");

    // Bad input never reaches the broker.
    let before = fb.seen.lock().unwrap().len();
    let e = core
        .prepare_elevation(ElevationAction::Decide {
            request_id: "../keys".into(),
            approve: true,
            comment: String::new(),
        })
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        ClientError::InvalidInput {
            field: "request_id",
            ..
        }
    ));
    for e in [
        core.cancel_request(String::new()).await.unwrap_err(),
        core.release_grant("a/b".into()).await.unwrap_err(),
        core.revoke_grant(RevokeGrantInput {
            id: "g1".into(),
            reason: " ".into(),
        })
        .await
        .unwrap_err(),
    ] {
        assert_eq!(e.code(), ErrorCode::BadRequest, "{e}");
    }
    assert_eq!(fb.seen.lock().unwrap().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_bar_grant_is_refetched_only_on_change() {
    let (key, cred) = virtual_key_with_credential();
    let (fb, senders) = elevation_broker(cred);
    let s = signed_in(&fb, Some(key)).await;
    let core = &s.core;

    let st = core.status().await;
    let g = st.grant.expect("an active grant");
    assert_eq!((g.id.as_str(), g.role.as_str()), ("g-new", "dba"));
    assert!(
        g.remaining_ms > 590_000 && g.remaining_ms <= 600_000,
        "{g:?}"
    );
    assert_eq!(fb.requests("/v1/grants").len(), 1);

    // Steady polling does not ask again (GET /v1/grants would count as user activity).
    eventually("the stream is connected", || {
        core.inner.live.with_ring(|r| r.since(0, 0).connected)
    })
    .await;
    // The connection's own resync is consumed by the next status.
    for _ in 0..3 {
        core.status().await;
    }
    let settled = fb.requests("/v1/grants").len();
    for _ in 0..3 {
        core.status().await;
    }
    assert_eq!(fb.requests("/v1/grants").len(), settled);
    assert!(settled <= 2, "{settled}");

    // A warning changes nothing; a grant event for this user does.
    let tx = senders.lock().unwrap()[0].clone();
    tx.send(sse("grant_warning", "g-new")).unwrap();
    tx.send(sse("grant_ended", "g-new")).unwrap();
    eventually("the events arrive", || {
        core.inner.live.with_ring(|r| r.after(0).1.len() >= 3)
    })
    .await;
    core.status().await;
    assert_eq!(fb.requests("/v1/grants").len(), settled + 1);
    core.status().await;
    assert_eq!(fb.requests("/v1/grants").len(), settled + 1);

    // The user's own request marks it changed too.
    let prompt = core.prepare_elevation(request()).await.unwrap();
    core.confirm_elevation(prompt.id).await.unwrap();
    core.status().await;
    assert_eq!(fb.requests("/v1/grants").len(), settled + 2);

    // Signed out: no grant, no fetch.
    core.logout().await.unwrap();
    let st = core.status().await;
    assert!(st.user.is_none() && st.grant.is_none());
    assert_eq!(fb.requests("/v1/grants").len(), settled + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversight_reads_other_people_s_grants_and_leaves_the_status_bar_alone() {
    let refuse = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let refusing = refuse.clone();
    let (fb, _senders) = streaming_broker(move |req| {
        let now = clock::local_wall_ms();
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/v1/oversight") if refusing.load(Ordering::SeqCst) => Some(Reply::Json(
                403,
                json!({"code": "forbidden", "message": "no"}),
            )),
            ("GET", "/v1/oversight") => {
                let mut g = grant_json("g-bob", "active", now);
                g["user"] = json!("bob");
                Some(Reply::Json(200, json!({"grants": [g], "now_ms": now})))
            }
            ("GET", "/v1/grants") => Some(Reply::Json(200, json!({"grants": [], "now_ms": now}))),
            ("GET", "/v1/me") => Some(Reply::Json(
                200,
                json!({"user": "alice", "roles": ["admin"], "session_expires_at_ms": now + 3_600_000}),
            )),
            _ => None,
        }
    });
    let s = signed_in(&fb, None).await;
    let core = &s.core;

    let list = core.oversight().await.unwrap();
    let got: Vec<(&str, &str, &str)> = list
        .grants
        .iter()
        .map(|g| (g.id.as_str(), g.user.as_str(), g.state.as_str()))
        .collect();
    assert_eq!(got, [("g-bob", "bob", "active")]);
    assert!(list.now_ms > 0);
    let sent = fb.requests("/v1/oversight");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "GET");
    assert!(sent[0].header("authorization").is_some());

    // Bob's grant is not alice's: the status bar still shows none of hers.
    let st = core.status().await;
    assert!(st.grant.is_none(), "{:?}", st.grant);

    // The broker's refusal comes back as its code.
    refuse.store(true, Ordering::SeqCst);
    let e = core.oversight().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Forbidden, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_masks_is_a_signed_get_and_a_refusal_signs_out() {
    let refuse = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let refusing = refuse.clone();
    let fb = FakeBroker::start(move |req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/v1/sessions/masks") if refusing.load(Ordering::SeqCst) => Some(Reply::Json(
            401,
            json!({"code": "unauthenticated", "message": "unknown access token"}),
        )),
        ("GET", "/v1/sessions/masks") => Some(Reply::Json(
            200,
            json!({"patterns": [r"\bAKIA[0-9A-Z]{16}\b", "(?i)password=\\S+"],
                       "default": true, "replacement": "••••"}),
        )),
        _ => None,
    });
    let s = signed_in(&fb, None).await;
    let core = &s.core;

    let masks = core.session_masks().await.unwrap();
    assert_eq!(
        masks.patterns,
        [r"\bAKIA[0-9A-Z]{16}\b", r"(?i)password=\S+"],
        "patterns pass through as the broker wrote them"
    );
    assert!(masks.default);
    assert_eq!(masks.replacement, "••••");
    let sent = fb.requests("/v1/sessions/masks");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "GET");
    assert_eq!(sent[0].header("authorization"), Some("Bearer access-1"));
    assert!(sent[0].header(paw_proto::device_proof::HEADER).is_some());
    assert!(sent[0].body.is_empty());

    // The broker no longer knows the token: its code comes back and the core signs out.
    refuse.store(true, Ordering::SeqCst);
    let e = core.session_masks().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unauthenticated, "{e}");
    assert!(TokenStore::new(s.keystore.clone())
        .load()
        .unwrap()
        .is_none());
    let e = core.session_masks().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unauthenticated, "{e}");
    assert_eq!(
        fb.requests("/v1/sessions/masks").len(),
        2,
        "signed out, the core does not ask"
    );
}

// ---- local audit trail (cases D1, D2, D5) ------------------------------------------------

pub(crate) fn all_records() -> paw_proto::ipc::AuditQueryInput {
    paw_proto::ipc::AuditQueryInput {
        from_ms: None,
        until_ms: None,
        kind: None,
        target: None,
        outcome: None,
        text: None,
        limit: 500,
        offset: 0,
    }
}

fn trail_path(s: &Setup) -> std::path::PathBuf {
    s._dir.path().join("cfg").join("audit.db")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d1_a_privileged_action_writes_started_then_its_outcome() {
    use paw_proto::ipc::AuditOutcome;
    let (key, cred) = virtual_key_with_credential();
    let (fb, _senders) = elevation_broker(cred);
    let s = signed_in(&fb, Some(key)).await;
    let core = &s.core;

    let prompt = core.prepare_elevation(request()).await.unwrap();
    // Preparing is not the action: nothing is recorded yet.
    assert!(core
        .audit_query(all_records())
        .await
        .unwrap()
        .records
        .is_empty());
    core.confirm_elevation(prompt.id).await.unwrap();
    // The fake broker has no release endpoint: a failure, recorded with its code.
    let e = core.release_grant("g-new".into()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);

    let page = core.audit_query(all_records()).await.unwrap();
    let r = &page.records;
    assert_eq!(r.len(), 4, "{r:#?}");
    assert!(!page.has_more);
    // Newest first.
    assert_eq!(r.iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 3, 2, 1]);
    let (started, done) = (&r[3], &r[2]);
    assert_eq!(started.kind, "elevation.request");
    assert_eq!(started.target, "db-prod-1");
    assert_eq!(started.actor, "alice");
    assert_eq!(started.outcome, AuditOutcome::Started);
    let action = crate::elevation::canonical_action(&request()).unwrap();
    assert!(
        started.detail.contains(&action.describe()),
        "{}",
        started.detail
    );
    assert!(
        started.detail.contains(&crate::util::hex(&action.hash())),
        "{}",
        started.detail
    );
    assert_eq!(done.kind, "elevation.request");
    assert_eq!(done.outcome, AuditOutcome::Success);
    assert!(done.detail.contains("g-new"), "{}", done.detail);
    assert_eq!(
        (r[1].kind.as_str(), r[1].outcome, r[1].target.as_str()),
        ("grant.release", AuditOutcome::Started, "g-new")
    );
    assert_eq!(r[0].outcome, AuditOutcome::Failure);
    assert!(r[0].detail.contains("not_found"), "{}", r[0].detail);

    // Filters and paging.
    let q = |f: &dyn Fn(&mut paw_proto::ipc::AuditQueryInput)| {
        let mut i = all_records();
        f(&mut i);
        i
    };
    let seqs = |p: paw_proto::ipc::AuditPage| p.records.iter().map(|r| r.seq).collect::<Vec<_>>();
    let found = core
        .audit_query(q(&|i| i.text = Some("vacuum orders".into())))
        .await
        .unwrap();
    assert_eq!(seqs(found), [1]);
    let found = core
        .audit_query(q(&|i| i.kind = Some("grant.release".into())))
        .await
        .unwrap();
    assert_eq!(seqs(found), [4, 3]);
    let found = core
        .audit_query(q(&|i| i.target = Some("PROD".into())))
        .await
        .unwrap();
    assert_eq!(seqs(found), [2, 1]);
    let found = core
        .audit_query(q(&|i| i.outcome = Some(AuditOutcome::Failure)))
        .await
        .unwrap();
    assert_eq!(seqs(found), [4]);
    let page = core
        .audit_query(q(&|i| {
            i.limit = 3;
            i.offset = 0;
        }))
        .await
        .unwrap();
    assert!(page.has_more);
    let page = core
        .audit_query(q(&|i| {
            i.limit = 3;
            i.offset = 3;
        }))
        .await
        .unwrap();
    assert_eq!((seqs(page.clone()), page.has_more), (vec![1], false));
    let e = core.audit_query(q(&|i| i.limit = 0)).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadRequest);

    // The chain verifies, and no secret reached it.
    let v = core.audit_verify().await.unwrap();
    assert!(v.ok && v.records == 4 && v.first_bad.is_none(), "{v:?}");
    let export = core.audit_export(all_records()).await.unwrap();
    assert_eq!(export.lines().count(), 4);
    for secret in [
        "access-1",
        "refresh-1",
        "ch-1",
        "clientDataJSON",
        "signature",
    ] {
        assert!(!export.contains(secret), "{secret} in {export}");
    }
}

/// Replaces the trail with something the store refuses, runs a privileged action, and checks
/// it was refused with `audit_unavailable` naming `why`, before any request to the broker.
async fn refused_before_the_broker(s: &Setup, fb: &FakeBroker, why: &str) {
    let before = fb.seen.lock().unwrap().len();
    for e in [
        s.core.release_grant("g1".into()).await.unwrap_err(),
        s.core.cancel_request("r1".into()).await.unwrap_err(),
        s.core
            .revoke_grant(RevokeGrantInput {
                id: "g1".into(),
                reason: "leaving the team".into(),
            })
            .await
            .unwrap_err(),
        s.core
            .close_review(paw_proto::ipc::CloseReviewInput {
                id: "g1".into(),
                comment: "reviewed, fine".into(),
            })
            .await
            .unwrap_err(),
        s.core
            .login(paw_proto::ipc::LoginInput {
                user: "alice".into(),
            })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(e.code(), ErrorCode::AuditUnavailable, "{e}");
        assert!(e.to_string().contains(why), "{e}");
    }
    assert_eq!(
        fb.seen.lock().unwrap().len(),
        before,
        "the broker was asked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d1_a_corrupt_trail_refuses_privileged_actions_before_the_broker() {
    let (key, cred) = virtual_key_with_credential();
    let (fb, _senders) = elevation_broker(cred);
    let s = signed_in(&fb, Some(key)).await;
    let prompt = s.core.prepare_elevation(request()).await.unwrap();
    std::fs::write(trail_path(&s), vec![0x5a_u8; 8192]).unwrap();

    let e = s.core.confirm_elevation(prompt.id).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuditUnavailable, "{e}");
    assert!(e.to_string().contains("corrupt"), "{e}");
    assert!(fb.requests("/v1/requests").is_empty());
    refused_before_the_broker(&s, &fb, "corrupt").await;
    // Verification says the file is damaged rather than calling it fine.
    let v = s.core.audit_verify().await.unwrap();
    assert!(!v.ok, "{v:?}");
    assert!(v.problem.unwrap().contains("corrupt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d1_a_read_only_trail_refuses_privileged_actions_before_the_broker() {
    let fb = FakeBroker::start(|_| None);
    let s = signed_in(&fb, None).await;
    let path = trail_path(&s);
    let t = paw_audit::LocalTrail::open(&path).await.unwrap();
    t.close().await;
    let _undo = ReadOnly::make(&path);
    // The login would need a security key; the trail refuses before that matters.
    let (key, _) = virtual_key_with_credential();
    drop(s.core);
    let core = Core::open(
        s._dir.path().join("cfg"),
        BuildInfo {
            version: "t".into(),
            debug: true,
            virtual_key: false,
        },
        s.keystore.clone(),
        Some(key),
    )
    .unwrap();
    core.inner.state.write().await.user = Some(SessionUser {
        name: "alice".into(),
        roles: vec![],
    });
    let s = Setup {
        core,
        keystore: s.keystore,
        _dir: s._dir,
    };
    refused_before_the_broker(&s, &fb, "read-only").await;
}

/// Makes a file read-only, even for root (chattr +i), until dropped.
struct ReadOnly(std::path::PathBuf);

impl ReadOnly {
    fn make(path: &std::path::Path) -> Self {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
        let guard = Self(path.to_owned());
        // chmod does not stop root (CI runs as root): make the file immutable as well.
        if std::fs::OpenOptions::new().append(true).open(path).is_ok() {
            assert!(
                guard.chattr("+i"),
                "running with DAC override and chattr +i failed"
            );
        }
        guard
    }

    fn chattr(&self, flag: &str) -> bool {
        std::process::Command::new("chattr")
            .arg(flag)
            .arg(&self.0)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = self.chattr("-i");
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o644));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d2_verify_names_the_record_whose_byte_was_flipped() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    let t = paw_audit::LocalTrail::open(cfg.join("audit.db"))
        .await
        .unwrap();
    for (i, words) in ["first entry", "MARKER-flip-me-7f3a", "third entry"]
        .iter()
        .enumerate()
    {
        t.append(
            "alice",
            "grant.release",
            format!("g{i}"),
            paw_audit::Outcome::Started,
            json!({"justification": words}),
            1_700_000_000_000,
        )
        .await
        .unwrap();
    }
    t.close().await;
    let core = Core::open(
        cfg.clone(),
        BuildInfo {
            version: "t".into(),
            debug: true,
            virtual_key: false,
        },
        Arc::new(MemoryKeyStore::new()),
        None,
    )
    .unwrap();
    let v = core.audit_verify().await.unwrap();
    assert!(v.ok && v.records == 3, "{v:?}");
    drop(core);
    // Let the trail thread close its connections before the file is edited.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let path = cfg.join("audit.db");
    let mut bytes = std::fs::read(&path).unwrap();
    let marker = b"MARKER-flip-me-7f3a";
    let mut flipped = 0;
    for i in 0..bytes.len().saturating_sub(marker.len()) {
        if &bytes[i..i + marker.len()] == marker {
            bytes[i + 7] ^= 0x01; // 'f' -> 'g': still text, still JSON
            flipped += 1;
        }
    }
    assert!(
        flipped > 0,
        "the record's text is in the main database file"
    );
    std::fs::write(&path, &bytes).unwrap();

    let core = Core::open(
        cfg,
        BuildInfo {
            version: "t".into(),
            debug: true,
            virtual_key: false,
        },
        Arc::new(MemoryKeyStore::new()),
        None,
    )
    .unwrap();
    let v = core.audit_verify().await.unwrap();
    assert!(!v.ok, "{v:?}");
    let bad = v.first_bad.expect("the record is named");
    assert_eq!(bad.seq, 2, "{bad:?}");
    assert!(bad.reason.contains("hash"), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d5_exported_lines_and_shown_fields_are_inert() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    let hostile = "ok\n{\"seq\":99,\"forged\":true}\u{202E}evil\u{2028}x\u{1b}[31m\u{200B}";
    let t = paw_audit::LocalTrail::open(cfg.join("audit.db"))
        .await
        .unwrap();
    for subject in ["g1", "g\u{202E}2"] {
        t.append(
            "alice",
            "elevation.request",
            subject,
            paw_audit::Outcome::Started,
            json!({"text": {"justification": hostile}}),
            1_700_000_000_000,
        )
        .await
        .unwrap();
    }
    t.close().await;
    let core = Core::open(
        cfg,
        BuildInfo {
            version: "t".into(),
            debug: true,
            virtual_key: false,
        },
        Arc::new(MemoryKeyStore::new()),
        None,
    )
    .unwrap();
    let hostile_char =
        |c: char| c.is_control() && c != '\n' || matches!(c, '\u{202E}' | '\u{2028}' | '\u{200B}');

    let export = core.audit_export(all_records()).await.unwrap();
    assert!(export.ends_with('\n'));
    let lines: Vec<&str> = export.lines().collect();
    assert_eq!(lines.len(), 2, "{export}");
    assert!(!export.chars().any(hostile_char), "{export:?}");
    for (line, subject) in lines.iter().zip(["g1", "g\u{202E}2"]) {
        let ev: paw_audit::Event = serde_json::from_str(line).unwrap();
        assert_eq!(ev.subject, subject);
        assert_eq!(ev.detail["text"]["justification"], hostile);
    }

    // What the audit page shows is inert too, and still says what is there.
    let page = core.audit_query(all_records()).await.unwrap();
    for r in &page.records {
        for field in [&r.actor, &r.kind, &r.target] {
            assert!(
                !field.chars().any(|c| hostile_char(c) || c == '\n'),
                "{field:?}"
            );
        }
        assert!(!r.detail.chars().any(hostile_char), "{:?}", r.detail);
    }
    assert_eq!(page.records[0].target, "g\\u{202e}2");
    let found = core
        .audit_query(paw_proto::ipc::AuditQueryInput {
            text: Some("forged".into()),
            ..all_records()
        })
        .await
        .unwrap();
    assert_eq!(found.records.len(), 2);
}

// ---- the broker as witness of the trail (cases D3, E3) ------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum WitnessMode {
    Cosign,
    Unavailable,
    OtherKey,
    Refuse,
}

/// Indexes in `fb`'s requests of the checkpoint uploads and of the release calls.
fn witness_requests(fb: &FakeBroker) -> (Vec<usize>, Vec<usize>) {
    let seen = fb.seen.lock().unwrap();
    let at = |want: &dyn Fn(&str) -> bool| {
        seen.iter()
            .enumerate()
            .filter(|(_, r)| want(&r.path))
            .map(|(i, _)| i)
            .collect::<Vec<_>>()
    };
    (
        at(&|p| p == "/v1/audit/checkpoint"),
        at(&|p| p.starts_with("/v1/grants/")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d3_e3_every_privileged_action_waits_for_a_cosignature_and_failed_uploads_retry() {
    let mode = Arc::new(Mutex::new(WitnessMode::Cosign));
    let m = mode.clone();
    let fb = FakeBroker::start(move |req| {
        if req.path != "/v1/audit/checkpoint" {
            return None;
        }
        match *m.lock().unwrap() {
            WitnessMode::Cosign => None,
            WitnessMode::Unavailable => Some(Reply::Json(
                503,
                json!({"code": "storage_unavailable", "message": "database down"}),
            )),
            WitnessMode::Refuse => Some(Reply::Json(
                409,
                json!({"code": "conflict", "message": "the checkpoint's head is behind"}),
            )),
            WitnessMode::OtherKey => {
                let other = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
                Some(Reply::Json(
                    200,
                    json!({"cosignature": B64.encode([0u8; 104]),
                           "witness_key": B64.encode(other.verifying_key().as_bytes()),
                           "cosigned_at_ms": 1, "previous_seq": null}),
                ))
            }
        }
    });
    let s = signed_in(&fb, None).await;
    let core = &s.core;
    let witness = crate::fake_broker::witness_key().verifying_key();

    // The normal path: cosigned first, then the action (which the fake does not know).
    let e = core.release_grant("g1".into()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);
    let (uploads, releases) = witness_requests(&fb);
    assert_eq!((uploads.len(), releases.len()), (1, 1));
    assert!(uploads[0] < releases[0], "cosigned before the action ran");
    assert_eq!(fb.requests("/v1/audit/witness").len(), 1);
    let first: paw_proto::http::CheckpointUploadRequest =
        fb.requests("/v1/audit/checkpoint")[0].json();
    assert_eq!(first.checkpoint.seq, 1, "the head is the started record");
    assert!(first.records.is_empty(), "no cosigned base yet");
    assert!(first.checkpoint.origin.starts_with("ws-"));
    let pins = crate::witness::load_pins(&s._dir.path().join("cfg").join("witness.json")).unwrap();
    assert_eq!(pins.brokers[&fb.url].key().unwrap(), witness);

    // The broker cannot cosign: the action does not run, and says why.
    *mode.lock().unwrap() = WitnessMode::Unavailable;
    let e = core.release_grant("g2".into()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::StorageUnavailable);
    let (uploads, releases) = witness_requests(&fb);
    assert_eq!(
        (uploads.len(), releases.len()),
        (2, 1),
        "g2 was not released"
    );

    // Back: the next upload carries every record since the cosigned head, the failed round's
    // included (E3: uploads retry), and the witness key is not fetched again.
    *mode.lock().unwrap() = WitnessMode::Cosign;
    let e = core.release_grant("g3".into()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);
    let third: paw_proto::http::CheckpointUploadRequest =
        fb.requests("/v1/audit/checkpoint")[2].json();
    let seqs: Vec<u64> = third.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [2, 3, 4, 5]);
    assert_eq!(third.checkpoint.seq, 5);
    assert!(third.checkpoint.time_ms > first.checkpoint.time_ms);
    assert_eq!(fb.requests("/v1/audit/witness").len(), 1);
    assert_eq!(witness_requests(&fb).1.len(), 2);

    // One cosignature stored per cosigned action, valid under the pinned key.
    let trail = paw_audit::LocalTrail::open(trail_path(&s)).await.unwrap();
    let stored = trail.checkpoints().await.unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|c| c.cosignatures.len() == 1));
    let latest = trail.latest_cosigned(&witness).await.unwrap().unwrap();
    assert_eq!(latest.head.seq, 5);
    trail.verify_against(&latest).await.unwrap();
    trail.close().await;
    // The audit page's verify checks the chain and the cosigned checkpoints in it.
    let v = core.audit_verify().await.unwrap();
    assert!(v.ok && v.records == 6, "{v:?}");

    // A broker that cosigns with another key: refused, the action does not run.
    *mode.lock().unwrap() = WitnessMode::OtherKey;
    let e = core.release_grant("g4".into()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuditWitnessChanged, "{e}");
    assert!(e.to_string().contains("witness.json"), "{e}");
    // The witness refuses the trail: `audit_diverged`, the action does not run.
    *mode.lock().unwrap() = WitnessMode::Refuse;
    let e = core.release_grant("g5".into()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuditDiverged, "{e}");
    assert!(e.to_string().contains("behind"), "{e}");
    assert_eq!(witness_requests(&fb).1.len(), 2, "neither g4 nor g5 ran");
    let page = core.audit_query(all_records()).await.unwrap();
    let end = &page.records[0];
    assert_eq!(end.outcome, paw_proto::ipc::AuditOutcome::Denied);
    assert!(end.detail.contains("audit_diverged"), "{}", end.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d3_the_audit_page_verify_catches_a_tail_cut_below_a_cosigned_checkpoint() {
    let fb = FakeBroker::start(|_| None);
    let s = signed_in(&fb, None).await;
    for g in ["g1", "g2"] {
        s.core.release_grant(g.into()).await.unwrap_err();
    }
    assert!(s.core.audit_verify().await.unwrap().ok);
    let cfg = s._dir.path().join("cfg");
    drop(s.core);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Keep records 1-2 and the checkpoints (cosigned at #1 and #3), re-chained in a new file.
    let path = cfg.join("audit.db");
    let old = paw_audit::LocalTrail::open(&path).await.unwrap();
    let kept = old.records(0, 2).await.unwrap();
    let stored = old.checkpoints().await.unwrap();
    old.close().await;
    for ext in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(path.with_extension(ext));
    }
    let cut = paw_audit::LocalTrail::open(&path).await.unwrap();
    let events = kept
        .iter()
        .map(|r| {
            let e = &r.event;
            paw_audit::NewEvent::new(
                e.actor.clone(),
                e.action.clone(),
                e.subject.clone(),
                e.outcome,
                e.detail.clone(),
                e.time_ms,
            )
        })
        .collect();
    cut.append_batch(events).await.unwrap();
    for st in &stored {
        cut.add_cosignature(&st.checkpoint, &st.cosignatures[0], 1)
            .await
            .unwrap();
    }
    cut.verify().await.unwrap();
    cut.close().await;

    let core = Core::open(
        cfg,
        BuildInfo {
            version: "t".into(),
            debug: true,
            virtual_key: false,
        },
        Arc::new(MemoryKeyStore::new()),
        None,
    )
    .unwrap();
    let v = core.audit_verify().await.unwrap();
    assert!(!v.ok, "{v:?}");
    let bad = v.first_bad.unwrap();
    assert_eq!(bad.seq, 3, "{bad:?}");
    assert!(bad.reason.contains("cut"), "{bad:?}");
}

const SIGN_OUT: &str = "/v1/auth/sign-out";

/// The device proof on `req` verifies under this core's device key, over `method`, the
/// request's path, an empty body and the bearer token `token`.
async fn assert_signed_without_body(
    core: &Core,
    req: &crate::fake_broker::Req,
    method: &str,
    token: &str,
) {
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    use paw_proto::device_proof::{message, ProofHeader, HEADER};
    assert_eq!(req.method, method);
    assert!(req.body.is_empty(), "{:?}", req.body);
    assert_eq!(req.header("content-type"), None);
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    let proof = ProofHeader::parse(req.header(HEADER).expect("a device proof")).unwrap();
    let device = VerifyingKey::from_bytes(&core.device().await.unwrap().public_key()).unwrap();
    let msg = message(method, &req.path, b"", proof.time_ms, &proof.nonce, token);
    device
        .verify(&msg, &Signature::from_bytes(&proof.signature))
        .expect("the proof signs exactly this request");
}

async fn assert_forgotten(s: &Setup) {
    assert!(TokenStore::new(s.keystore.clone())
        .load()
        .unwrap()
        .is_none());
    assert!(s.core.status().await.user.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_revokes_the_sign_in_at_the_broker_and_reports_what_it_revoked() {
    let fb = FakeBroker::start(|req| {
        (req.path == SIGN_OUT).then(|| {
            Reply::Json(
                200,
                json!({"session_id": "s-1", "revoked_at_ms": 1_700_000_000_000_i64,
                       "access_tokens": 2, "refresh_tokens": 1}),
            )
        })
    });
    let s = signed_in(&fb, None).await;

    let report = s.core.logout().await.unwrap();

    let revoked = report.revoked.expect("the broker's answer");
    assert_eq!(report.broker_error, None);
    assert_eq!(revoked.session_id, "s-1");
    assert_eq!(revoked.revoked_at_ms, 1_700_000_000_000);
    assert_eq!((revoked.access_tokens, revoked.refresh_tokens), (2, 1));
    let sent = fb.requests(SIGN_OUT);
    assert_eq!(sent.len(), 1);
    assert_signed_without_body(&s.core, &sent[0], "POST", "access-1").await;
    assert_forgotten(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_refreshes_a_due_access_token_first_so_the_family_can_be_revoked() {
    let fb = FakeBroker::start(|req| {
        let now = clock::local_wall_ms();
        match req.path.as_str() {
            "/v1/token/refresh" => Some(Reply::Json(
                200,
                json!({"user": "alice", "roles": [], "access_token": "access-2",
                       "access_expires_at_ms": now + 900_000, "refresh_token": "refresh-2",
                       "session_expires_at_ms": now + 3_600_000}),
            )),
            SIGN_OUT => Some(Reply::Json(
                200,
                json!({"session_id": "s-1", "revoked_at_ms": now,
                       "access_tokens": 1, "refresh_tokens": 1}),
            )),
            _ => None,
        }
    });
    let s = signed_in(&fb, None).await;
    let now = clock::local_wall_ms();
    TokenStore::new(s.keystore.clone())
        .save(&Tokens {
            access: AccessToken::new("access-1"),
            access_expires_ms: now - 1,
            refresh: RefreshToken::new("refresh-1"),
            refresh_expires_ms: now + 3_600_000,
        })
        .unwrap();

    let report = s.core.logout().await.unwrap();

    assert_eq!(report.revoked.map(|r| r.access_tokens), Some(1));
    assert_eq!(fb.requests("/v1/token/refresh").len(), 1);
    let sent = fb.requests(SIGN_OUT);
    assert_eq!(sent.len(), 1);
    assert_signed_without_body(&s.core, &sent[0], "POST", "access-2").await;
    assert_forgotten(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_refused_by_the_broker_still_forgets_the_sign_in_here() {
    for (status, code, expected) in [
        (401, "unauthenticated", ErrorCode::Unauthenticated),
        (500, "internal", ErrorCode::Internal),
    ] {
        let fb = FakeBroker::start(move |req| {
            (req.path == SIGN_OUT)
                .then(|| Reply::Json(status, json!({"code": code, "message": "no"})))
        });
        let s = signed_in(&fb, None).await;

        let report = s.core.logout().await.unwrap();

        assert_eq!(report.revoked, None);
        assert_eq!(report.broker_error.map(|e| e.code), Some(expected));
        // Asked once: the refusal neither retries nor refreshes.
        assert_eq!(fb.requests(SIGN_OUT).len(), 1);
        assert!(fb.requests("/v1/token/refresh").is_empty());
        assert_forgotten(&s).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_with_the_broker_unreachable_still_forgets_the_sign_in_here() {
    let fb = FakeBroker::start(|_| None);
    let s = signed_in(&fb, None).await;
    // Nothing listens on this port any more: every connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ca = crate::load_ca(&fb.ca_path).unwrap();
    {
        let mut st = s.core.inner.state.write().await;
        st.client = Some(
            crate::BrokerClient::new(&[format!("https://127.0.0.1:{port}")], &ca.der).unwrap(),
        );
        st.clock.reset();
    }

    let report = s.core.logout().await.unwrap();

    assert_eq!(report.revoked, None);
    assert_eq!(
        report.broker_error.map(|e| e.code),
        Some(ErrorCode::BrokerUnreachable)
    );
    assert!(fb.requests(SIGN_OUT).is_empty());
    assert_forgotten(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_when_nobody_is_signed_in_asks_the_broker_nothing() {
    let fb = FakeBroker::start(|_| None);
    let s = signed_in(&fb, None).await;
    TokenStore::new(s.keystore.clone()).clear().unwrap();

    let report = s.core.logout().await.unwrap();

    assert_eq!((report.revoked, report.broker_error), (None, None));
    assert!(fb.requests(SIGN_OUT).is_empty());
    assert_forgotten(&s).await;
}
