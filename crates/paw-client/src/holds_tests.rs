//! Held commands through the real `Core` and HTTPS client against [`crate::fake_broker`]: what
//! the core signs comes from the broker's list of holds, which endpoint it goes to, and that a
//! hold prompt is spent only by its own confirm call. What the real broker decides is tested in
//! the `tests` crate (J3/J4).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use paw_proto::action::{Action, Purpose};
use paw_proto::elevation::SignedElevation;
use paw_proto::http::StepUpStartRequest;
use paw_proto::ipc::{AuditOutcome, HoldDecisionInput};
use paw_proto::session::{CommandHoldView, KillSessionInput};
use paw_proto::ErrorCode;
use serde_json::json;

use crate::core_tests::{all_records, signed_in, virtual_key_with_credential};
use crate::fake_broker::{FakeBroker, Reply};
use crate::{clock, ClientError};

fn hold(id: &str, user: &str, needs: &str, target: &str, command: &str) -> CommandHoldView {
    let now = clock::local_wall_ms();
    CommandHoldView {
        id: id.into(),
        session_id: format!("s-{id}"),
        user: user.into(),
        entitlement: "web-root".into(),
        target: target.into(),
        command: command.into(),
        needs: needs.into(),
        state: "pending".into(),
        created_at: now,
        expires_at: now + 120_000,
        decided_by: None,
    }
}

/// A broker holding alice's `rm` (her step-up) and bob's `shutdown` (alice may approve it).
/// Step-ups are challenged for whatever action is asked; a signed answer must carry exactly
/// that action, and settles the hold it names.
fn holds_broker(cred: Vec<u8>) -> FakeBroker {
    let holds = Arc::new(Mutex::new(vec![
        hold("h-own", "alice", "step_up", "web-1", "rm /srv/www/cache.db"),
        hold("h-bob", "bob", "approve", "web-2", "shutdown -h now"),
    ]));
    let asked: Arc<Mutex<Option<Action>>> = Arc::default();
    FakeBroker::start(move |req| {
        let path = req.path.as_str();
        match (req.method.as_str(), path) {
            ("GET", "/v1/holds") => {
                Some(Reply::Json(200, json!({"holds": *holds.lock().unwrap()})))
            }
            ("POST", "/v1/stepup/start") => {
                let action = req.json::<StepUpStartRequest>().action;
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
            ("POST", p) if p.starts_with("/v1/holds/") => {
                let signed: SignedElevation = req.json();
                let want = asked
                    .lock()
                    .unwrap()
                    .take()
                    .expect("a challenge was issued");
                assert_eq!(signed.stepup.action, want);
                let id = p
                    .trim_start_matches("/v1/holds/")
                    .split('/')
                    .next()
                    .unwrap();
                let mut list = holds.lock().unwrap();
                let i = list.iter().position(|h| h.id == id)?;
                let mut h = list.remove(i);
                h.state = match want {
                    Action::ApproveCommand { approve: false, .. } => "refused".into(),
                    _ => "released".into(),
                };
                h.decided_by = Some("alice".into());
                Some(Reply::Json(200, serde_json::to_value(h).unwrap()))
            }
            _ => None,
        }
    })
}

fn answer(hold_id: &str, approve: bool) -> HoldDecisionInput {
    HoldDecisionInput {
        hold_id: hold_id.into(),
        approve,
    }
}

fn asked_for(fb: &FakeBroker) -> Vec<Action> {
    fb.requests("/v1/stepup/start")
        .iter()
        .map(|r| r.json::<StepUpStartRequest>().action)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_are_listed_with_the_broker_s_time() {
    let (key, cred) = virtual_key_with_credential();
    let fb = holds_broker(cred);
    let s = signed_in(&fb, Some(key)).await;
    // The status check learns the broker's clock.
    s.core.status().await;
    let list = s.core.list_holds().await.unwrap();
    assert_eq!(
        list.holds.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        ["h-own", "h-bob"]
    );
    let now = list
        .now_ms
        .expect("the broker's time is known after a status");
    assert!((now - clock::local_wall_ms()).abs() < 5_000, "{now}");
    let get = &fb.requests("/v1/holds")[0];
    assert!(get.header("authorization").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_one_s_own_held_command_signs_the_broker_s_command_and_releases_it() {
    let (key, cred) = virtual_key_with_credential();
    let fb = holds_broker(cred);
    let s = signed_in(&fb, Some(key)).await;
    let core = &s.core;

    let prompt = core
        .prepare_hold_decision(answer("h-own", true))
        .await
        .unwrap();
    let action = Action::Command {
        session_id: "s-h-own".into(),
        target: "web-1".into(),
        command: "rm /srv/www/cache.db".into(),
    };
    assert_eq!(asked_for(&fb), std::slice::from_ref(&action));
    assert_eq!(prompt.purpose, Purpose::Command);
    // The prompt names the exact command, the target and the session.
    assert_eq!(prompt.description, action.describe());
    for part in ["`rm /srv/www/cache.db`", "web-1", "s-h-own"] {
        assert!(prompt.description.contains(part), "{}", prompt.description);
    }

    // No other confirm call spends it; its own does, once.
    let e = core.confirm_elevation(prompt.id.clone()).await.unwrap_err();
    assert!(matches!(e, ClientError::StepUpUnknown), "{e:?}");
    let e = core
        .confirm_kill_session(prompt.id.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::StepUpUnknown), "{e:?}");
    let e = core.confirm_step_up(prompt.id.clone()).await.unwrap_err();
    assert!(matches!(e, ClientError::StepUpUnknown), "{e:?}");
    let view = core.confirm_hold_decision(prompt.id.clone()).await.unwrap();
    assert_eq!(
        (view.id.as_str(), view.state.as_str()),
        ("h-own", "released")
    );
    assert_eq!(fb.requests("/v1/holds/h-own/release").len(), 1);
    assert!(fb.requests("/v1/holds/h-own/decide").is_empty());
    let e = core.confirm_hold_decision(prompt.id).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ChallengeInvalid);

    // Audited locally like any privileged action, with the words the user saw.
    let r = core.audit_query(all_records()).await.unwrap().records;
    let mine: Vec<_> = r.iter().filter(|r| r.kind == "command.release").collect();
    assert_eq!(mine.len(), 2, "{r:#?}");
    assert_eq!(mine[1].outcome, AuditOutcome::Started);
    assert_eq!(mine[1].target, "h-own");
    assert!(
        mine[1].detail.contains("rm /srv/www/cache.db"),
        "{}",
        mine[1].detail
    );
    assert_eq!(mine[0].outcome, AuditOutcome::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_decides_someone_else_s_held_command_in_words_that_name_it() {
    let (key, cred) = virtual_key_with_credential();
    let fb = holds_broker(cred);
    let s = signed_in(&fb, Some(key)).await;
    let core = &s.core;

    let prompt = core
        .prepare_hold_decision(answer("h-bob", false))
        .await
        .unwrap();
    let action = Action::ApproveCommand {
        hold_id: "h-bob".into(),
        command: "shutdown -h now".into(),
        approve: false,
    };
    assert_eq!(asked_for(&fb), std::slice::from_ref(&action));
    assert_eq!(prompt.purpose, Purpose::ApproveCommand);
    assert_eq!(
        prompt.description,
        format!("In bob's session s-h-bob on web-2: {}", action.describe())
    );
    // An elevation's confirm call does not spend it, nor does a hold's spend a kill prompt.
    let e = core.confirm_elevation(prompt.id.clone()).await.unwrap_err();
    assert!(matches!(e, ClientError::StepUpUnknown), "{e:?}");
    let view = core.confirm_hold_decision(prompt.id).await.unwrap();
    assert_eq!(view.state, "refused");
    assert_eq!(fb.requests("/v1/holds/h-bob/decide").len(), 1);
    let r = core.audit_query(all_records()).await.unwrap().records;
    assert!(r.iter().any(|r| r.kind == "command.refuse"), "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_the_broker_would_refuse_never_reach_the_key() {
    let (key, cred) = virtual_key_with_credential();
    let fb = holds_broker(cred);
    let s = signed_in(&fb, Some(key)).await;
    let core = &s.core;

    // Bad ids are refused before the broker is asked anything.
    for id in ["", "../keys", "h 1"] {
        let e = core
            .prepare_hold_decision(answer(id, true))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::InvalidInput {
                    field: "hold_id",
                    ..
                }
            ),
            "{id:?}: {e:?}"
        );
    }
    assert!(fb.requests("/v1/holds").is_empty());

    // One's own held command is not refused from here; a hold that is not listed (decided,
    // timed out, someone else's) is not answered at all.
    for (id, approve, why) in [
        ("h-own", false, "time out"),
        ("h-gone", true, "not waiting for you"),
    ] {
        let e = core
            .prepare_hold_decision(answer(id, approve))
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadRequest, "{e}");
        assert!(e.to_string().contains(why), "{e}");
    }
    assert!(asked_for(&fb).is_empty(), "no step-up was started");

    // A kill prompt cannot be spent as a hold decision.
    let kill = core
        .prepare_kill_session(KillSessionInput {
            session_id: "s-h-bob".into(),
            reason: "left open overnight".into(),
        })
        .await
        .unwrap();
    let e = core
        .confirm_hold_decision(kill.id.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::StepUpUnknown), "{e:?}");
    core.cancel_step_up(kill.id).await.unwrap();
    assert_eq!(fb.requests("/v1/holds").len(), 2);
}
