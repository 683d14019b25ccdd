//! Vaulted credentials through the real `Core` and HTTPS client against
//! [`crate::fake_broker`]: what the key signs for a reveal and a rotation (the account's name
//! from the broker's own list), where each goes, that a prompt is spent only by its own confirm
//! call, and that the local audit trail never holds a revealed secret. What the real broker
//! decides (checkout, rotation, L1–L5) is tested in the `tests` crate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use paw_proto::action::{Action, Purpose};
use paw_proto::elevation::GrantView;
use paw_proto::http::StepUpStartRequest;
use paw_proto::ipc::{AuditOutcome, KeyAction};
use paw_proto::vault::{
    Checkout, RevealInput, RevealRequest, RevealedSecret, RotateInput, RotateRequest,
    RotationStatus, VaultAccountView, VaultKind,
};
use paw_proto::ErrorCode;
use serde_json::{json, Value};

use crate::core_tests::{all_records, signed_in, virtual_key_with_credential};
use crate::fake_broker::{FakeBroker, Reply, Req};
use crate::{clock, ClientError};

/// What the fake broker reveals for `web-1/root`.
const SECRET: &str = "Vq7#hunter2-Zx0!pL";
/// What it reveals for `db-1/owner`: under the wrong name (see `vault_broker`).
const OTHER_SECRET: &str = "Kd3$correct-horse-Yy8";
const REASON: &str = "INC-77: the BMC has no SSH, console login needed";

fn account(id: &str, target: &str, user: &str) -> VaultAccountView {
    let now = clock::local_wall_ms();
    VaultAccountView {
        id: id.into(),
        name: format!("{target}/{user}"),
        target: target.into(),
        account: user.into(),
        kind: VaultKind::SshPassword,
        exclusive: true,
        version: 3,
        holder: None,
        rotation: RotationStatus {
            state: "idle".into(),
            last_result: "ok".into(),
            last_error: None,
            last_rotated_at_ms: Some(now - 86_400_000),
            next_rotation_at_ms: Some(now + 6 * 86_400_000),
            rotate_after_checkout: false,
            failing_since_ms: None,
        },
        created_at_ms: now - 30 * 86_400_000,
    }
}

fn grant(id: &str, target: &str, role: &str, state: &str) -> GrantView {
    let now = clock::local_wall_ms();
    GrantView {
        id: id.into(),
        user: "alice".into(),
        entitlement: "web-root".into(),
        target_kind: "ssh".into(),
        target: target.into(),
        role: role.into(),
        duration_secs: 3600,
        justification: "INC-77 console access".into(),
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
    }
}

/// The action hash the signed client data carries.
fn signed_hash(credential: &Value) -> Value {
    let cdj = B64
        .decode(credential["response"]["clientDataJSON"].as_str().unwrap())
        .unwrap();
    let cdj: Value = serde_json::from_slice(&cdj).unwrap();
    cdj["pawActionHash"].clone()
}

/// A broker with three accounts (`a-web` = web-1/root, `a-db` = db-1/owner, `a-gone` =
/// web-2/admin, refused by the broker as checked out), alice's grants (`g-web` root on web-1,
/// `g-db` owner on db-1, `g-w2` admin on web-2, `g-old` root on web-1 but expired, `g-ops` ops
/// on web-1: the right target, another account), step-ups for whatever action is asked, and reveal and
/// rotate endpoints that check the signed request carries exactly that action. The reveal of
/// `a-db` answers with another account's name, as a confused or hostile broker might.
fn vault_broker(cred: Vec<u8>) -> FakeBroker {
    let asked: Arc<Mutex<Option<Action>>> = Arc::default();
    FakeBroker::start(move |req: &Req| {
        let now = clock::local_wall_ms();
        let path = req.path.as_str();
        let signed = |challenge: &str, credential: &Value| {
            let want = asked
                .lock()
                .unwrap()
                .take()
                .expect("a challenge was issued");
            assert_eq!(challenge, "ch-1");
            assert_eq!(signed_hash(credential), json!(B64.encode(want.hash())));
            want
        };
        match (req.method.as_str(), path) {
            ("GET", "/v1/vault/accounts") => Some(Reply::Json(
                200,
                json!({"accounts": [account("a-web", "web-1", "root"),
                                    account("a-db", "db-1", "owner"),
                                    account("a-gone", "web-2", "admin")],
                       "now_ms": now}),
            )),
            ("GET", "/v1/grants") => Some(Reply::Json(
                200,
                json!({"grants": [grant("g-web", "web-1", "root", "active"),
                                  grant("g-db", "db-1", "owner", "active"),
                                  grant("g-old", "web-1", "root", "expired"),
                                  grant("g-w2", "web-2", "admin", "active"),
                                  grant("g-ops", "web-1", "ops", "active")],
                       "now_ms": now}),
            )),
            ("GET", "/v1/me") => Some(Reply::Json(
                200,
                json!({"user": "alice", "roles": ["admin"], "session_expires_at_ms": now + 3_600_000}),
            )),
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
            ("POST", p) if p.ends_with("/reveal") => {
                let body: RevealRequest = req.json();
                let want = signed(&body.challenge, &body.credential);
                let Action::RevealSecret {
                    account,
                    grant_id,
                    reason,
                } = want
                else {
                    panic!("a reveal signed {want:?}");
                };
                assert_eq!((body.grant_id, body.reason), (grant_id, reason));
                let revealed = |account: &str, secret: &str| RevealedSecret {
                    account: account.into(),
                    secret: secret.into(),
                    now_ms: now,
                    show_until_ms: now + 30_000,
                    checkout_until_ms: now + 600_000,
                };
                match p {
                    "/v1/vault/accounts/a-web/reveal" => {
                        assert_eq!(account, "web-1/root");
                        Some(Reply::Json(
                            200,
                            serde_json::to_value(revealed(&account, SECRET)).unwrap(),
                        ))
                    }
                    "/v1/vault/accounts/a-db/reveal" => Some(Reply::Json(
                        200,
                        serde_json::to_value(revealed("web-2/admin", OTHER_SECRET)).unwrap(),
                    )),
                    _ => Some(Reply::Json(
                        409,
                        json!({"code": "checked_out",
                               "message": "web-2/admin is checked out by bob until 14:05"}),
                    )),
                }
            }
            ("POST", "/v1/vault/accounts/a-web/rotate") => {
                let body: RotateRequest = req.json();
                let want = signed(&body.challenge, &body.credential);
                assert_eq!(
                    want,
                    Action::RotateSecret {
                        account: "web-1/root".into(),
                        reason: body.reason.clone(),
                    }
                );
                let mut v = account("a-web", "web-1", "root");
                v.version = 4;
                v.rotation.last_rotated_at_ms = Some(now);
                v.holder = Some(Checkout {
                    user: "bob".into(),
                    grant_id: "g-bob".into(),
                    until_ms: now + 60_000,
                });
                Some(Reply::Json(200, serde_json::to_value(v).unwrap()))
            }
            _ => None,
        }
    })
}

fn reveal(account_id: &str, grant_id: &str, reason: &str) -> RevealInput {
    RevealInput {
        account_id: account_id.into(),
        grant_id: grant_id.into(),
        reason: reason.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_accounts_is_a_signed_get_of_metadata() {
    let (key, cred) = virtual_key_with_credential();
    let fb = vault_broker(cred);
    let s = signed_in(&fb, Some(key)).await;
    let list = s.core.vault_accounts().await.unwrap();
    let names: Vec<&str> = list.accounts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["web-1/root", "db-1/owner", "web-2/admin"]);
    assert!(list.now_ms > 0);
    let req = &fb.requests("/v1/vault/accounts")[0];
    assert_eq!(req.method, "GET");
    assert_eq!(req.header("authorization"), Some("Bearer access-1"));
    assert!(req.header(paw_proto::device_proof::HEADER).is_some());
    assert!(req.body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l4_a_reveal_is_its_own_step_up_bound_to_the_listed_account_grant_and_reason() {
    let (key, cred) = virtual_key_with_credential();
    let fb = vault_broker(cred);
    let s = signed_in(&fb, Some(key)).await;
    let core = &s.core;

    let prompt = core
        .prepare_reveal(reveal("a-web", "g-web", REASON))
        .await
        .unwrap();
    // The key signs the account's name as the broker lists it, the grant and the reason.
    let want = Action::RevealSecret {
        account: "web-1/root".into(),
        grant_id: "g-web".into(),
        reason: REASON.into(),
    };
    assert_eq!(
        fb.requests("/v1/stepup/start")[0]
            .json::<StepUpStartRequest>()
            .action,
        want
    );
    assert_eq!(prompt.purpose, Purpose::RevealSecret);
    assert_eq!(prompt.description, want.describe());
    assert_eq!(prompt.action_hash, crate::util::hex(&want.hash()));

    // Not a key-management, elevation or rotation prompt; still there for its own call.
    for e in [
        core.confirm_step_up(prompt.id.clone()).await.unwrap_err(),
        core.confirm_elevation(prompt.id.clone()).await.unwrap_err(),
        core.confirm_rotation(prompt.id.clone()).await.unwrap_err(),
    ] {
        assert!(matches!(e, ClientError::StepUpUnknown), "{e:?}");
    }
    let secret = core.confirm_reveal(prompt.id.clone()).await.unwrap();
    assert_eq!(secret.account, "web-1/root");
    assert_eq!(secret.secret, SECRET);
    assert!(secret.show_until_ms < secret.checkout_until_ms);
    assert_eq!(fb.requests("/v1/vault/accounts/a-web/reveal").len(), 1);
    // Single use.
    let e = core.confirm_reveal(prompt.id).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ChallengeInvalid);

    // A rotation prompt is not a reveal; cancelling drops it.
    let prompt = core
        .prepare_rotation(RotateInput {
            account_id: "a-web".into(),
            reason: "rotate".into(),
        })
        .await
        .unwrap();
    let e = core.confirm_reveal(prompt.id.clone()).await.unwrap_err();
    assert!(matches!(e, ClientError::StepUpUnknown), "{e:?}");
    core.cancel_step_up(prompt.id.clone()).await.unwrap();
    assert!(core.confirm_rotation(prompt.id).await.is_err());
    // A key-management prompt is not a reveal either.
    let prompt = core
        .prepare_step_up(KeyAction::Revoke { id: "k1".into() })
        .await
        .unwrap();
    let e = core.confirm_reveal(prompt.id).await.unwrap_err();
    assert!(matches!(e, ClientError::StepUpUnknown), "{e:?}");

    // The broker's refusal of the reveal itself (someone holds the account) is passed on.
    let prompt = core
        .prepare_reveal(reveal("a-gone", "g-w2", REASON))
        .await
        .unwrap();
    let e = core.confirm_reveal(prompt.id).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::CheckedOut);
    assert!(e.to_string().contains("checked out by bob"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlisted_accounts_unfit_grants_and_bad_reasons_are_refused_before_the_key() {
    let (key, cred) = virtual_key_with_credential();
    let fb = vault_broker(cred);
    let s = signed_in(&fb, Some(key)).await;
    let core = &s.core;
    let field = |e: ClientError| match e {
        ClientError::InvalidInput { field, .. } => field,
        other => panic!("expected invalid input, got {other:?}"),
    };

    // Input that cannot be right never reaches the broker.
    let before = fb.seen.lock().unwrap().len();
    for (input, want) in [
        (reveal("../keys", "g-web", REASON), "account_id"),
        (reveal("a-web", "g/web", REASON), "grant_id"),
        (reveal("a-web", "g-web", ""), "reason"),
        (
            reveal("a-web", "g-web", "ok\nApproved by the CISO"),
            "reason",
        ),
        (reveal("a-web", "g-web", " padded"), "reason"),
    ] {
        assert_eq!(field(core.prepare_reveal(input).await.unwrap_err()), want);
    }
    for (id, reason) in [("a b", "ok"), ("a-web", "  ")] {
        let e = core
            .prepare_rotation(RotateInput {
                account_id: id.into(),
                reason: reason.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadRequest, "{e}");
    }
    assert_eq!(fb.seen.lock().unwrap().len(), before);

    // An account the broker does not list, a grant that is not active or not the user's, or
    // one for another account (another target, or the same target as another role): refused
    // after reading the lists, before any step-up.
    for (input, want) in [
        (reveal("a-nope", "g-web", REASON), "account_id"),
        (reveal("a-web", "g-old", REASON), "grant_id"),
        (reveal("a-web", "g-nope", REASON), "grant_id"),
        (reveal("a-web", "g-db", REASON), "grant_id"),
        (reveal("a-web", "g-ops", REASON), "grant_id"),
    ] {
        assert_eq!(field(core.prepare_reveal(input).await.unwrap_err()), want);
    }
    let e = core
        .prepare_rotation(RotateInput {
            account_id: "a-nope".into(),
            reason: "scheduled".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(field(e), "account_id");
    assert!(fb.requests("/v1/stepup/start").is_empty());
    // Nothing was audited: a typo is not an action.
    assert!(core
        .audit_query(all_records())
        .await
        .unwrap()
        .records
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_the_local_audit_trail_never_holds_a_revealed_secret() {
    let (key, cred) = virtual_key_with_credential();
    let fb = vault_broker(cred);
    let dir = tempfile::tempdir().unwrap();
    let core = &signed_in_at(dir.path(), &fb, key).await;

    let prompt = core
        .prepare_reveal(reveal("a-web", "g-web", REASON))
        .await
        .unwrap();
    let shown = core.confirm_reveal(prompt.id).await.unwrap();
    assert_eq!(shown.secret, SECRET);
    assert!(!format!("{shown:?}").contains(SECRET), "Debug hides it");

    // A broker that answers with another account's secret: refused, the secret dropped.
    let prompt = core
        .prepare_reveal(reveal("a-db", "g-db", REASON))
        .await
        .unwrap();
    let e = core.confirm_reveal(prompt.id).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::BrokerProtocol);
    assert!(!e.to_string().contains(OTHER_SECRET), "{e}");

    let page = core.audit_query(all_records()).await.unwrap();
    let r = &page.records;
    assert_eq!(r.len(), 4, "{r:#?}");
    // Newest first: the refused reveal, then the shown one.
    let (started, done) = (&r[3], &r[2]);
    assert_eq!(
        (
            started.kind.as_str(),
            started.outcome,
            started.target.as_str()
        ),
        ("vault.reveal", AuditOutcome::Started, "web-1/root")
    );
    assert!(started.detail.contains(REASON), "{}", started.detail);
    assert!(started.detail.contains("g-web"), "{}", started.detail);
    assert_eq!(
        (done.kind.as_str(), done.outcome),
        ("vault.reveal", AuditOutcome::Success)
    );
    assert!(done.detail.contains("checkout_until_ms"), "{}", done.detail);
    assert_eq!(
        (r[1].target.as_str(), r[0].outcome),
        ("db-1/owner", AuditOutcome::Failure)
    );
    assert!(r[0].detail.contains("broker_protocol"), "{}", r[0].detail);

    // Neither secret anywhere in the trail: its records as shown, its export, and every byte
    // of every file in the config dir (the database, its journal, the settings).
    let export = core.audit_export(all_records()).await.unwrap();
    assert_eq!(export.lines().count(), 4);
    let files = files_under(dir.path());
    assert!(
        files.iter().any(|(p, _)| p.ends_with("audit.db")),
        "{:?}",
        files.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for secret in [SECRET, OTHER_SECRET] {
        assert!(!export.contains(secret), "{secret} in {export}");
        for rec in r {
            assert!(!rec.detail.contains(secret), "{secret} in {rec:?}");
        }
        for (path, bytes) in &files {
            assert!(!contains(bytes, secret), "{secret} in {}", path.display());
        }
    }
    // Negative control: the same searches find what is in the trail.
    assert!(export.contains(REASON));
    assert!(files.iter().any(|(_, b)| contains(b, "web-1/root")));
    assert!(core.audit_verify().await.unwrap().ok);
}

/// A core signed in as alice against `fb`, its config (and audit trail) in `dir/cfg`, like
/// [`signed_in`] but with the directory known, so the test can read every file in it.
async fn signed_in_at(
    dir: &std::path::Path,
    fb: &FakeBroker,
    key: Arc<dyn paw_fido::Authenticator>,
) -> crate::Core {
    use crate::secret::{AccessToken, RefreshToken};
    use crate::{MemoryKeyStore, TokenStore, Tokens};
    let keystore = Arc::new(MemoryKeyStore::new());
    let core = crate::Core::open(
        dir.join("cfg"),
        paw_proto::ipc::BuildInfo {
            version: "t".into(),
            debug: true,
            virtual_key: false,
        },
        keystore.clone(),
        Some(key),
    )
    .unwrap();
    core.save_settings(paw_proto::ipc::SettingsInput {
        broker_url: fb.url.clone(),
        fallback_urls: Vec::new(),
        ca_path: fb.ca_path.display().to_string(),
    })
    .await
    .unwrap();
    let now = clock::local_wall_ms();
    TokenStore::new(keystore)
        .save(&Tokens {
            access: AccessToken::new("access-1"),
            access_expires_ms: now + 3_600_000,
            refresh: RefreshToken::new("refresh-1"),
            refresh_expires_ms: now + 12 * 3_600_000,
        })
        .unwrap();
    core.inner.state.write().await.user = Some(paw_proto::ipc::SessionUser {
        name: "alice".into(),
        roles: vec![],
    });
    core
}

fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            out.push((path, bytes));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    haystack.windows(n.len()).any(|w| w == n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_rotation_signs_the_listed_account_and_returns_it_as_it_stands() {
    let (key, cred) = virtual_key_with_credential();
    let fb = vault_broker(cred);
    let s = signed_in(&fb, Some(key)).await;
    let core = &s.core;

    let prompt = core
        .prepare_rotation(RotateInput {
            account_id: "a-web".into(),
            reason: "Ops lead left the team".into(),
        })
        .await
        .unwrap();
    let want = Action::RotateSecret {
        account: "web-1/root".into(),
        reason: "Ops lead left the team".into(),
    };
    assert_eq!(prompt.purpose, Purpose::RotateSecret);
    assert_eq!(prompt.description, want.describe());
    assert_eq!(
        fb.requests("/v1/stepup/start")[0]
            .json::<StepUpStartRequest>()
            .action,
        want
    );
    let e = core.confirm_reveal(prompt.id.clone()).await.unwrap_err();
    assert!(matches!(e, ClientError::StepUpUnknown), "{e:?}");
    let view = core.confirm_rotation(prompt.id.clone()).await.unwrap();
    assert_eq!((view.name.as_str(), view.version), ("web-1/root", 4));
    assert_eq!(fb.requests("/v1/vault/accounts/a-web/rotate").len(), 1);
    assert!(
        core.confirm_rotation(prompt.id).await.is_err(),
        "single use"
    );

    let r = core.audit_query(all_records()).await.unwrap().records;
    let kinds: Vec<(&str, AuditOutcome)> = r.iter().map(|r| (r.kind.as_str(), r.outcome)).collect();
    assert_eq!(
        kinds,
        [
            ("vault.rotate", AuditOutcome::Success),
            ("vault.rotate", AuditOutcome::Started)
        ]
    );
    assert_eq!(r[1].target, "web-1/root");
    assert!(
        r[1].detail.contains("Ops lead left the team"),
        "{}",
        r[1].detail
    );
    assert!(r[0].detail.contains("\"version\": 4"), "{}", r[0].detail);
}
