//! Machine identities through the real `Core` and HTTPS client against [`crate::fake_broker`]:
//! what the key signs for a creation and a transfer, that the spec sent is the one the prompt
//! described, where each goes, what the local audit trail keeps (never the join token). What
//! the real broker decides is tested in the `tests` crate (K1–K6) and end to end in tests/e2e.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use paw_proto::action::{Action, Purpose};
use paw_proto::http::StepUpStartRequest;
use paw_proto::ipc::{AuditOutcome, ConfirmMachineInput, TransferMachineInput};
use paw_proto::machine::{
    CreateMachineRequest, MachineAuth, MachineFlag, MachineSpec, MachineView,
    TransferMachineRequest,
};
use paw_proto::ErrorCode;
use serde_json::json;

use crate::core_tests::{all_records, signed_in, virtual_key_with_credential};
use crate::fake_broker::{FakeBroker, Reply};
use crate::{clock, ClientError};

const TOKEN: &str = "pawjoin-Zm9vYmFyYmF6cXV1eA";

fn view(name: &str, owner: Option<&str>, suspended: bool) -> MachineView {
    let now = clock::local_wall_ms();
    MachineView {
        name: name.into(),
        owner: owner.map(str::to_owned),
        backup_owner: None,
        purpose: "deploys the payments app".into(),
        environment: "prod".into(),
        labels: BTreeMap::new(),
        auth_kind: "key".into(),
        oidc_issuer: None,
        oidc_claims: BTreeMap::new(),
        sources: vec![],
        created_at_ms: now - 86_400_000,
        expires_at_ms: None,
        suspended_at_ms: suspended.then_some(now - 60_000),
        suspended_reason: suspended.then(|| "owner bob disabled by pawd (cli)".into()),
        last_used_at_ms: None,
        last_source: None,
        credential_age_days: None,
        keys: vec![],
        open_grants: 0,
        flags: if suspended {
            vec![MachineFlag {
                code: "owner_missing".into(),
                detail: "no accountable owner".into(),
                audit_seq: None,
            }]
        } else {
            vec![]
        },
    }
}

fn spec() -> MachineSpec {
    MachineSpec {
        name: "deploy-bot".into(),
        owner: "bob".into(),
        backup_owner: Some("group:sre".into()),
        purpose: "deploys the payments app".into(),
        environment: "prod".into(),
        expires_at_ms: None,
        labels: BTreeMap::from([("team".into(), "payments".into())]),
        auth: MachineAuth::Key,
        sources: vec!["10.20.0.0/16".into()],
    }
}

/// A broker listing one suspended machine; it challenges whatever is asked, creates what is
/// posted (with a join token for a key machine) and hands a machine to a new owner.
fn machines_broker(cred: Vec<u8>) -> FakeBroker {
    let machines = Arc::new(Mutex::new(vec![view("old-cron", None, true)]));
    FakeBroker::start(move |req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/v1/machines") => Some(Reply::Json(
            200,
            json!({"machines": *machines.lock().unwrap()}),
        )),
        ("POST", "/v1/stepup/start") => {
            let action = req.json::<StepUpStartRequest>().action;
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
        ("POST", "/v1/machines") => {
            let body: CreateMachineRequest = req.json();
            let v = view(&body.spec.name, Some(&body.spec.owner), false);
            machines.lock().unwrap().push(v.clone());
            let key = matches!(body.spec.auth, MachineAuth::Key);
            Some(Reply::Json(
                200,
                json!({"machine": v,
                       "join_token": key.then_some(TOKEN),
                       "join_expires_at_ms": key.then(|| clock::local_wall_ms() + 3_600_000)}),
            ))
        }
        ("POST", p) if p.starts_with("/v1/machines/") && p.ends_with("/owner") => {
            let name = p
                .trim_start_matches("/v1/machines/")
                .trim_end_matches("/owner");
            let body: TransferMachineRequest = req.json();
            let mut list = machines.lock().unwrap();
            let m = list.iter_mut().find(|m| m.name == name)?;
            m.owner = Some(body.owner);
            m.suspended_at_ms = None;
            m.suspended_reason = None;
            m.flags.clear();
            Some(Reply::Json(200, serde_json::to_value(&*m).unwrap()))
        }
        _ => None,
    })
}

fn asked_for(fb: &FakeBroker) -> Vec<Action> {
    fb.requests("/v1/stepup/start")
        .iter()
        .map(|r| r.json::<StepUpStartRequest>().action)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_comes_with_the_broker_s_time() {
    let (key, cred) = virtual_key_with_credential();
    let fb = machines_broker(cred);
    let s = signed_in(&fb, Some(key)).await;
    s.core.status().await;
    let inv = s.core.machines().await.unwrap();
    assert_eq!(inv.machines.len(), 1);
    assert_eq!(inv.machines[0].flags[0].code, "owner_missing");
    let now = inv
        .now_ms
        .expect("the broker's time is known after a status");
    assert!((now - clock::local_wall_ms()).abs() < 5_000, "{now}");
    assert!(fb.requests("/v1/machines")[0]
        .header("authorization")
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_machine_signs_its_whole_spec_and_hands_over_the_join_token_once() {
    let (key, cred) = virtual_key_with_credential();
    let fb = machines_broker(cred);
    let s = signed_in(&fb, Some(key)).await;
    let core = &s.core;
    s.core.status().await;

    let prompt = core.prepare_create_machine(spec()).await.unwrap();
    let action = Action::ManageMachine {
        operation: "create".into(),
        machine: "deploy-bot".into(),
        owner: "bob".into(),
        spec_sha256: spec().sha256(),
    };
    assert_eq!(asked_for(&fb), std::slice::from_ref(&action));
    assert_eq!(prompt.purpose, Purpose::ManageMachine);
    assert!(prompt.description.starts_with(&action.describe()));
    for part in [
        "Sources: 10.20.0.0/16",
        "Labels: team=payments",
        "group:sre",
    ] {
        assert!(prompt.description.contains(part), "{}", prompt.description);
    }

    // An elevation's confirm call shares the prompt kind but refuses a machine action before
    // the key (and spends it: the UI that sent it there starts again).
    let stray = core.prepare_create_machine(spec()).await.unwrap();
    let e = core.confirm_elevation(stray.id.clone()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Internal, "{e}");
    assert!(fb.requests("/v1/requests").is_empty());
    let e = core
        .confirm_create_machine(ConfirmMachineInput {
            id: stray.id,
            spec: spec(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ChallengeInvalid);

    // Other kinds' confirm calls do not spend it.
    let e = core.confirm_step_up(prompt.id.clone()).await.unwrap_err();
    assert!(matches!(e, ClientError::StepUpUnknown), "{e:?}");
    let e = core
        .confirm_hold_decision(prompt.id.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::StepUpUnknown), "{e:?}");

    // Another spec than the prepared one is refused before the key or the broker.
    let mut other = spec();
    other.sources.clear();
    let e = core
        .confirm_create_machine(ConfirmMachineInput {
            id: prompt.id.clone(),
            spec: other,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::InvalidInput { field: "spec", .. }),
        "{e:?}"
    );
    assert!(fb.requests("/v1/machines").is_empty());
    // ...and the prompt is spent with it: the user starts again.
    let e = core
        .confirm_create_machine(ConfirmMachineInput {
            id: prompt.id,
            spec: spec(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ChallengeInvalid);

    let prompt = core.prepare_create_machine(spec()).await.unwrap();
    let created = core
        .confirm_create_machine(ConfirmMachineInput {
            id: prompt.id.clone(),
            spec: spec(),
        })
        .await
        .unwrap();
    let sent: CreateMachineRequest = fb.requests("/v1/machines")[0].json();
    assert_eq!(sent.spec, spec());
    assert_eq!(sent.challenge, "ch-1");
    assert_eq!(created.machine.name, "deploy-bot");
    let join = created.join.expect("a key machine gets a join token");
    assert_eq!(join.token, TOKEN);
    let left = join.expires_in_ms.expect("counted on the broker's clock");
    assert!((3_595_000..=3_600_000).contains(&left), "{left}");
    let e = core
        .confirm_create_machine(ConfirmMachineInput {
            id: prompt.id,
            spec: spec(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ChallengeInvalid, "single use");

    // Audited locally with the spec, never with the token.
    let r = core.audit_query(all_records()).await.unwrap().records;
    let mine: Vec<_> = r.iter().filter(|r| r.kind == "machine.create").collect();
    assert_eq!(mine.len(), 2, "{r:#?}");
    assert_eq!(mine[1].outcome, AuditOutcome::Started);
    assert_eq!(mine[1].target, "deploy-bot");
    assert!(
        mine[1].detail.contains("10.20.0.0/16"),
        "{}",
        mine[1].detail
    );
    assert_eq!(mine[0].outcome, AuditOutcome::Success);
    assert!(
        mine[0].detail.contains("join_token_issued"),
        "{}",
        mine[0].detail
    );
    for rec in &r {
        assert!(!rec.detail.contains(TOKEN), "{}", rec.detail);
    }

    // An OIDC machine gets no token.
    let mut o = spec();
    o.name = "ci-release".into();
    o.auth = MachineAuth::Oidc {
        issuer: "https://token.actions.githubusercontent.com".into(),
        claims: BTreeMap::from([("repository".into(), "acme/app".into())]),
    };
    let prompt = core.prepare_create_machine(o.clone()).await.unwrap();
    let created = core
        .confirm_create_machine(ConfirmMachineInput {
            id: prompt.id,
            spec: o,
        })
        .await
        .unwrap();
    assert!(created.join.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_names_the_machine_as_listed_and_goes_to_its_owner_endpoint() {
    let (key, cred) = virtual_key_with_credential();
    let fb = machines_broker(cred);
    let s = signed_in(&fb, Some(key)).await;
    let core = &s.core;

    // A machine this user cannot see, or bad names, never reach a step-up.
    for (machine, owner, field) in [
        ("nope", "ada", "machine"),
        ("../keys", "ada", "machine"),
        ("old-cron", "ada lovelace", "owner"),
    ] {
        let e = core
            .prepare_transfer_machine(TransferMachineInput {
                machine: machine.into(),
                owner: owner.into(),
            })
            .await
            .unwrap_err();
        assert!(
            matches!(e, ClientError::InvalidInput { field: f, .. } if f == field),
            "{machine}: {e:?}"
        );
    }
    assert!(asked_for(&fb).is_empty());

    let prompt = core
        .prepare_transfer_machine(TransferMachineInput {
            machine: "old-cron".into(),
            owner: "ada".into(),
        })
        .await
        .unwrap();
    let action = Action::ManageMachine {
        operation: "transfer".into(),
        machine: "old-cron".into(),
        owner: "ada".into(),
        spec_sha256: String::new(),
    };
    assert_eq!(asked_for(&fb), std::slice::from_ref(&action));
    assert!(prompt.description.starts_with(&action.describe()));
    assert!(
        prompt.description.contains("owner bob disabled"),
        "{}",
        prompt.description
    );
    // The creation's confirm call refuses a transfer prompt (and it is spent).
    let e = core
        .confirm_create_machine(ConfirmMachineInput {
            id: prompt.id.clone(),
            spec: spec(),
        })
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::StepUpUnknown), "{e:?}");
    assert!(fb.requests("/v1/machines/old-cron/owner").is_empty());

    let prompt = core
        .prepare_transfer_machine(TransferMachineInput {
            machine: "old-cron".into(),
            owner: "ada".into(),
        })
        .await
        .unwrap();
    let m = core.confirm_transfer_machine(prompt.id).await.unwrap();
    assert_eq!(m.owner.as_deref(), Some("ada"));
    assert!(m.suspended_at_ms.is_none());
    let sent: TransferMachineRequest = fb.requests("/v1/machines/old-cron/owner")[0].json();
    assert_eq!(sent.owner, "ada");
    let r = core.audit_query(all_records()).await.unwrap().records;
    let mine: Vec<_> = r.iter().filter(|r| r.kind == "machine.transfer").collect();
    assert_eq!(mine.len(), 2, "{r:#?}");
    assert_eq!(mine[0].outcome, AuditOutcome::Success);
    assert_eq!(mine[0].target, "old-cron");

    // Giving it to the owner it has is refused before the key.
    let e = core
        .prepare_transfer_machine(TransferMachineInput {
            machine: "old-cron".into(),
            owner: "ada".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadRequest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_spec_never_starts_a_step_up() {
    let (key, cred) = virtual_key_with_credential();
    let fb = machines_broker(cred);
    let s = signed_in(&fb, Some(key)).await;
    let mut bad = spec();
    bad.purpose = "deploys\nOwner: mallory".into();
    let e = s.core.prepare_create_machine(bad).await.unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::InvalidInput {
                field: "purpose",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(asked_for(&fb).is_empty());
}
