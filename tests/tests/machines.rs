//! Machine identities (issue #16), cases K1–K6 and the OWASP Non-Human Identities Top 10 (2025)
//! risks that apply, against real `pawd` processes, a real OpenSSH sshd and a local OIDC issuer
//! with its own JWKS. The machine side is paw-client's `machine` module, as `pawctl` uses it.
//!
//! Test names carry the case id and the NHI risk: NHI1 improper offboarding, NHI2 secret
//! leakage, NHI4 insecure authentication, NHI5 overprivileged, NHI6 insecure pipeline tokens,
//! NHI7 long-lived secrets, NHI9 reuse, NHI10 human use of a machine identity.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use paw_client::machine::{self, KeyAlg, MachineKey, MachineSession};
use paw_client::terminal::{self, TermEvent};
use paw_client::{BrokerClient, ClientError};
use paw_proto::action::Action;
use paw_proto::elevation::GrantView;
use paw_proto::machine::{stepup_message, MachineAuth, MachineSpec};
use paw_tests::oidc::{github_claims, TestIssuer};
use paw_tests::replicas::{Options, Replicas, Store, SSH_TARGET};
use paw_tests::virtual_user::VirtualUser;
use serde_json::{json, Value};
use tokio::sync::mpsc;

mod common;

const PAWD: usize = 0;
const AUDIENCE: &str = "https://paw.test";

fn config(issuer: &TestIssuer) -> String {
    format!(
        r#"
[machines]
key_overlap_secs = 2

[[machines.oidc_issuer]]
issuer = "{iss}"
jwks_url = "{jwks}"
audience = "{AUDIENCE}"
algorithm = "ES256"

[groups]
sre = ["ada", "bob"]
deployers = ["ci-key", "ci-oidc", "ci-pinned", "ci-rot", "ci-p256"]

[[entitlement]]
id = "web-deploy"
description = "Deploy on the web servers"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["deployers"]
approval = "auto"
max_sessions = 5
break_glass = {{ max_duration_secs = 600 }}

[[entitlement]]
id = "web-deploy-pty"
description = "Deploy on the web servers, terminal allowed"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["deployers"]
approval = "auto"
max_sessions = 5
machine_pty = true

[[entitlement]]
id = "web-owner"
description = "Deploy on the web servers, approved by the machine's owner"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["deployers", "sre"]
approval = "owner"

[[entitlement]]
id = "web-reviewed"
description = "Root on the web servers, approved by a deployer"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = {{ required = 1, groups = ["deployers"] }}
break_glass = {{ max_duration_secs = 600 }}
"#,
        iss = issuer.issuer(),
        jwks = issuer.jwks_url(),
    ) + &windows()
}

/// Two entitlements approved by `sre`, each automatic inside a window of every day: one
/// around now, one that starts two hours from now (UTC, minutes of the day).
fn windows() -> String {
    let now_min = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60)
        % (24 * 60);
    let hm = |m: u64| format!("{:02}:{:02}", (m % 1440) / 60, m % 60);
    let mut out = String::new();
    for (id, from, to) in [
        ("web-window-now", now_min + 1440 - 60, now_min + 60),
        ("web-window-later", now_min + 120, now_min + 180),
    ] {
        out.push_str(&format!(
            r#"
[[entitlement]]
id = "{id}"
description = "Deploy, automatic inside its window"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["deployers"]
approval = {{ required = 1, groups = ["sre"] }}
auto_window = {{ days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], from = "{}", to = "{}" }}
"#,
            hm(from),
            hm(to)
        ));
    }
    out
}

struct World {
    r: Replicas,
    issuer: TestIssuer,
    admin: VirtualUser,
    ada: VirtualUser,
}

async fn world() -> World {
    let issuer = TestIssuer::start("ES256").await.unwrap();
    let r = Replicas::start_with(Options {
        replicas: 1,
        extra_config: config(&issuer),
        store: Store::Sqlite,
        sshd: true,
    })
    .await
    .unwrap();
    let admin = r.enrolled("root-admin", &["admin"], PAWD).await.unwrap();
    let ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    World {
        r,
        issuer,
        admin,
        ada,
    }
}

fn broker(r: &Replicas) -> BrokerClient {
    let ca = paw_client::load_ca(&r.ca_path()).unwrap();
    BrokerClient::new(&[r.url(PAWD)], &ca.der).unwrap()
}

fn key_spec(name: &str, owner: &str) -> MachineSpec {
    MachineSpec {
        name: name.into(),
        owner: owner.into(),
        backup_owner: None,
        purpose: "deploys the web app".into(),
        environment: "prod".into(),
        expires_at_ms: None,
        labels: Default::default(),
        auth: MachineAuth::Key,
        sources: vec![],
    }
}

fn oidc_spec(name: &str, owner: &str, issuer: &TestIssuer) -> MachineSpec {
    MachineSpec {
        auth: MachineAuth::Oidc {
            issuer: issuer.issuer(),
            claims: [
                ("repository".to_owned(), "org/app".to_owned()),
                ("ref".to_owned(), "refs/heads/main".to_owned()),
            ]
            .into(),
        },
        ..key_spec(name, owner)
    }
}

/// An admin's step-up for `action`, then `POST path` with `body` plus the step-up's challenge
/// and credential: how machines are created and re-owned.
async fn admin_call(w: &mut World, action: &Action, path: &str, mut body: Value) -> Value {
    let base = w.r.url(PAWD);
    let start = w.admin.stepup_start(&base, action).await.unwrap();
    let answer = w.admin.stepup_answer(&start, action).unwrap();
    body["challenge"] = answer["challenge"].clone();
    body["credential"] = answer["credential"].clone();
    let reply = w
        .admin
        .call(&base, "POST", path, Some(&body))
        .await
        .unwrap();
    match reply.clone().ok() {
        Ok(v) => v,
        Err(_) => json!({ "error": reply.code(), "reply": format!("{reply:?}") }),
    }
}

async fn create(w: &mut World, spec: &MachineSpec) -> Value {
    let action = Action::ManageMachine {
        operation: "create".into(),
        machine: spec.name.clone(),
        owner: spec.owner.clone(),
        spec_sha256: spec.sha256(),
    };
    admin_call(w, &action, "/v1/machines", json!({ "spec": spec })).await
}

/// A key machine created, joined and signed in.
async fn key_machine(w: &mut World, name: &str, owner: &str) -> (MachineSession, String) {
    let created = create(w, &key_spec(name, owner)).await;
    let token = created["join_token"].as_str().unwrap().to_owned();
    let key = MachineKey::generate().unwrap();
    machine::join(&broker(&w.r), name, &token, &key)
        .await
        .unwrap();
    let seed = *key.seed().expose();
    let s = MachineSession::login(broker(&w.r), name, key)
        .await
        .unwrap();
    (s, hex_seed(&seed))
}

fn hex_seed(seed: &[u8; 32]) -> String {
    seed.iter().map(|b| format!("{b:02x}")).collect()
}

fn key_from_hex(h: &str) -> MachineKey {
    let bytes: Vec<u8> = (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect();
    MachineKey::from_seed(&bytes).unwrap()
}

fn deploy(entitlement: &str) -> Action {
    Action::Request {
        entitlement: entitlement.into(),
        target: SSH_TARGET.into(),
        role: "root".into(),
        duration_secs: 600,
        justification: "deploy build 42".into(),
        ticket: None,
        start_at_ms: None,
    }
}

fn code(e: &ClientError) -> String {
    match e {
        ClientError::Broker(api) => api.code.as_str().to_owned(),
        other => format!("{other:?}"),
    }
}

async fn inventory(w: &World) -> Value {
    w.admin
        .call(&w.r.url(PAWD), "GET", "/v1/machines", None)
        .await
        .unwrap()
        .ok()
        .unwrap()
}

fn machine_in<'a>(inv: &'a Value, name: &str) -> &'a Value {
    inv["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {inv}"))
}

fn flags(m: &Value) -> Vec<String> {
    m["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

async fn exec(s: &MachineSession, grant: &GrantView, cmd: &str) -> (Option<u32>, String) {
    let redeemed = s.redeem(grant).await.unwrap();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let done = machine::exec(&redeemed, cmd, &mut out, &mut err)
        .await
        .unwrap();
    out.extend(err);
    (done.exit_status, String::from_utf8_lossy(&out).into_owned())
}

fn accepted(r: &Replicas) -> usize {
    r.sshd()
        .unwrap()
        .log()
        .matches("Accepted publickey")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k1_nhi1_a_machine_needs_an_active_owner_and_stops_when_the_owner_goes() {
    let mut w = world().await;
    // No owner, or an owner who is not an active person: refused.
    let none = create(&mut w, &key_spec("ci-orphan", "nobody")).await;
    assert_eq!(none["error"], "bad_request", "{none}");
    let bob = w.r.enrolled("bob", &[], PAWD).await.unwrap();

    let (ci, _) = key_machine(&mut w, "ci-key", "ada").await;
    let grant = ci.request(deploy("web-deploy")).await.unwrap();
    assert_eq!(grant.state, "active");
    let (status, out) = exec(&ci, &grant, "echo deployed").await;
    assert_eq!((status, out.trim()), (Some(0), "deployed"));

    // A long command under the grant when the owner is disabled.
    let redeemed = ci.redeem(&grant).await.unwrap();
    let running = tokio::spawn(async move {
        let mut sink = Vec::new();
        let mut errs = Vec::new();
        let r = machine::exec(&redeemed, "sleep 60", &mut sink, &mut errs).await;
        (r, Instant::now())
    });
    // Wait until the command runs on the target (its login is in sshd's log).
    let logins = accepted(&w.r);
    let deadline = Instant::now() + Duration::from_secs(10);
    while accepted(&w.r) == logins && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out =
        w.r.pawd(&["user".into(), "disable".into(), "ada".into()])
            .unwrap();
    assert!(out.status.success(), "{out:?}");
    let disabled_at = Instant::now();
    let (ended, at) = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the machine's session outlived its owner")
        .unwrap();
    let took = at.duration_since(disabled_at);
    assert!(took < Duration::from_secs(3), "ended after {took:?}");
    assert_ne!(ended.unwrap().exit_status, Some(0));
    eprintln!("K1: the machine's live session ended {took:?} after its owner was disabled");

    // Its sign-in, its grant and any new login: all refused.
    // Its sign-in was revoked with the suspension.
    assert_eq!(code(&ci.grants().await.unwrap_err()), "unauthenticated");
    let again = MachineSession::login(
        broker(&w.r),
        "ci-key",
        key_from_hex(&hex_seed(ci.key().seed().expose())),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&again), "account_locked", "{again:?}");
    let inv = inventory(&w).await;
    let m = machine_in(&inv, "ci-key");
    assert!(m["owner"].is_null(), "{m}");
    let f = flags(m);
    assert!(
        f.contains(&"owner_missing".to_owned()) && f.contains(&"suspended".to_owned()),
        "{f:?}"
    );
    let audit = common::sqlite_audit(&w.r).await;
    let suspended = audit
        .iter()
        .find(|a| a["action"] == "machine_suspended" && a["subject"] == "ci-key")
        .unwrap_or_else(|| panic!("no machine_suspended record"));
    assert_eq!(suspended["detail"]["former_owner"], "ada");
    assert_eq!(
        suspended["detail"]["grants_voided"],
        json!([grant.id]),
        "{suspended}"
    );

    // Re-owned by an admin: the machine works again, on record.
    let action = Action::ManageMachine {
        operation: "transfer".into(),
        machine: "ci-key".into(),
        owner: "bob".into(),
        spec_sha256: String::new(),
    };
    let moved = admin_call(
        &mut w,
        &action,
        "/v1/machines/ci-key/owner",
        json!({ "owner": "bob" }),
    )
    .await;
    assert_eq!(moved["owner"], "bob", "{moved}");
    assert!(moved["suspended_at_ms"].is_null(), "{moved}");
    let back = MachineSession::login(
        broker(&w.r),
        "ci-key",
        key_from_hex(&hex_seed(ci.key().seed().expose())),
    )
    .await
    .unwrap();
    assert!(back.grants().await.is_ok());
    let audit = common::sqlite_audit(&w.r).await;
    assert!(audit
        .iter()
        .any(|a| a["action"] == "machine_owner_changed" && a["detail"]["owner"] == "bob"));
    // Only an admin re-owns, and a person may not be handed a machine by themselves.
    let r = bob
        .call(
            &w.r.url(PAWD),
            "POST",
            "/v1/machines/ci-key/owner",
            Some(&json!({"owner": "bob", "challenge": "x", "credential": {}})),
        )
        .await
        .unwrap();
    assert_ne!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k2_nhi4_nhi6_workload_tokens_are_refused_unless_exactly_right() {
    let mut w = world().await;
    let spec = oidc_spec("ci-oidc", "ada", &w.issuer);
    let created = create(&mut w, &spec).await;
    assert!(created["join_token"].is_null(), "{created}");
    let good = || github_claims(AUDIENCE, "org/app", "refs/heads/main");
    let login = |t: String| {
        let b = broker(&w.r);
        async move { MachineSession::workload_login(b, &t).await }
    };

    let s = login(w.issuer.mint(good())).await.unwrap();
    assert_eq!(s.user(), "ci-oidc");
    let grant = s.request(deploy("web-deploy")).await.unwrap();
    let (status, out) = exec(&s, &grant, "echo from-the-pipeline").await;
    assert_eq!((status, out.trim()), (Some(0), "from-the-pipeline"));

    // The issuer rotates its key: tokens under the new kid are accepted at once (an unknown
    // kid refetches the JWKS; at most once per 30 s, so the unknown-kid case below, which
    // also refetches, comes after).
    w.issuer.rotate();
    login(w.issuer.mint(good())).await.unwrap();

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let other = TestIssuer::start("ES256").await.unwrap();
    let with = |k: &str, v: Value| {
        let mut c = good();
        c[k] = v;
        c
    };
    let mut unknown_kid = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    unknown_kid.kid = Some("not-a-key-of-the-issuer".into());
    let valid = w.issuer.mint(good());
    // Same header and signature over a payload the issuer never signed.
    let tampered = {
        let parts: Vec<&str> = valid.split('.').collect();
        let forged = base64_url(&serde_json::to_vec(&with("workflow", json!("other"))).unwrap());
        format!("{}.{forged}.{}", parts[0], parts[2])
    };
    let bad: Vec<(&str, String)> = vec![
        ("an issuer not on the allow-list", other.mint(good())),
        (
            "another audience",
            w.issuer.mint(with("aud", json!("https://elsewhere.test"))),
        ),
        ("expired", w.issuer.mint(with("exp", json!(now - 120)))),
        (
            "not yet valid",
            w.issuer.mint(with("nbf", json!(now + 300))),
        ),
        ("alg none", w.issuer.unsigned(good())),
        (
            "HS256 keyed with the public key",
            w.issuer.hs256_with_public_key(good()),
        ),
        ("an unknown kid", w.issuer.mint_with(unknown_kid, good())),
        (
            "another repository",
            w.issuer.mint(with("repository", json!("org/other"))),
        ),
        (
            "another branch",
            w.issuer.mint(with("ref", json!("refs/heads/feature"))),
        ),
        (
            "a lookalike repository",
            w.issuer.mint(with("repository", json!("org/app-evil"))),
        ),
        ("a tampered payload", tampered),
    ];
    for (what, token) in bad {
        let e = login(token).await.unwrap_err();
        assert_eq!(code(&e), "unauthenticated", "{what}: {e:?}");
    }
    // A token is good for one login (its jti): a copy lifted from a log is worth nothing.
    let once = w.issuer.mint(good());
    login(once.clone()).await.unwrap();
    let replay = login(once).await.unwrap_err();
    assert_eq!(code(&replay), "unauthenticated", "{replay:?}");

    let audit = common::sqlite_audit(&w.r).await;
    let refused = audit
        .iter()
        .filter(|a| a["action"] == "machine_token_refused")
        .count();
    assert!(refused >= 12, "{refused} refusals on record");
    // No refusal record carries a token.
    for a in &audit {
        assert!(!a.to_string().contains(&valid[..40]), "{a}");
    }
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k3_nhi7_key_login_needs_the_key_and_a_join_token_works_once() {
    let mut w = world().await;
    let created = create(&mut w, &key_spec("ci-key", "ada")).await;
    let token = created["join_token"].as_str().unwrap().to_owned();
    let b = broker(&w.r);

    // The join must be signed by the key it registers.
    let key = MachineKey::generate().unwrap();
    let thief = SigningKey::from_bytes(&[9; 32]);
    let forged = w
        .admin
        .post(
            &w.r.url(PAWD),
            "/v1/machines/join",
            &json!({
                "machine": "ci-key", "join_token": token, "public_key": key.public(),
                "signature": base64_url(&thief.sign(&paw_proto::machine::join_message("ci-key", &key.public(), &token)).to_bytes()),
            }),
        )
        .await
        .unwrap();
    assert_eq!(forged.code(), "unauthenticated");
    machine::join(&b, "ci-key", &token, &key).await.unwrap();
    // Once: a second key cannot use the same token.
    let second = MachineKey::generate().unwrap();
    let again = machine::join(&b, "ci-key", &token, &second)
        .await
        .unwrap_err();
    assert_eq!(code(&again), "unauthenticated", "{again:?}");
    // A key that was never registered cannot log in.
    let e = MachineSession::login(broker(&w.r), "ci-key", second)
        .await
        .unwrap_err();
    assert_eq!(code(&e), "unauthenticated", "{e:?}");

    // A login answer is good once: replaying it finds the challenge consumed.
    let start = w
        .admin
        .post(
            &w.r.url(PAWD),
            "/v1/machines/login/start",
            &json!({"user": "ci-key"}),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    let seed = *key.seed().expose();
    let signer = SigningKey::from_bytes(&seed);
    let sig = signer.sign(&stepup_message(
        start["challenge"].as_str().unwrap(),
        start["action_hash"].as_str().unwrap(),
    ));
    let finish = json!({
        "challenge": start["challenge"],
        "credential": {"machine_key": key.public(), "signature": base64_url(&sig.to_bytes())},
        "device_public_key": key.public(),
    });
    let first = w
        .admin
        .post(&w.r.url(PAWD), "/v1/machines/login/finish", &finish)
        .await
        .unwrap();
    assert!(first.clone().ok().is_ok(), "{first:?}");
    let replay = w
        .admin
        .post(&w.r.url(PAWD), "/v1/machines/login/finish", &finish)
        .await
        .unwrap();
    assert_eq!(replay.code(), "challenge_invalid", "{replay:?}");
    // A machine cannot use a person's login (its name gets a person's decoy challenge, N2,
    // which its key cannot answer), nor a person a machine's.
    let person = w
        .admin
        .post(
            &w.r.url(PAWD),
            "/v1/login/start",
            &json!({"user": "ci-key"}),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    let sig = signer.sign(&stepup_message(
        person["challenge"].as_str().unwrap(),
        person["action_hash"].as_str().unwrap(),
    ));
    let finish = json!({
        "challenge": person["challenge"],
        "credential": {"machine_key": key.public(), "signature": base64_url(&sig.to_bytes())},
        "device_public_key": key.public(),
    });
    let as_machine = w
        .admin
        .post(&w.r.url(PAWD), "/v1/login/finish", &finish)
        .await
        .unwrap();
    assert_ne!(as_machine.status, 200, "{as_machine:?}");
    let as_person = w
        .admin
        .post(
            &w.r.url(PAWD),
            "/v1/machines/login/start",
            &json!({"user": "ada"}),
        )
        .await
        .unwrap();
    assert_eq!(as_person.code(), "unauthenticated", "{as_person:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k4_nhi7_a_rotated_out_key_stops_after_the_overlap() {
    let mut w = world().await;
    let (old, old_seed) = key_machine(&mut w, "ci-rot", "ada").await;
    let new_key = MachineKey::generate().unwrap();
    let new_seed = hex_seed(new_key.seed().expose());
    let before = now_ms();
    let rotated = old.rotate(&new_key).await.unwrap();
    // The old key retires when the configured overlap (2 s) after the rotation ends.
    let overlap = rotated.old_key_retires_at_ms - before;
    assert!((1_900..=2_600).contains(&overlap), "overlap {overlap} ms");
    // Inside the overlap (2 s here): the old key and its session still work.
    assert!(old.grants().await.is_ok());
    MachineSession::login(broker(&w.r), "ci-rot", key_from_hex(&old_seed))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2600)).await;
    // After it: neither the old session nor a login with the old key.
    let e = old.grants().await.unwrap_err();
    assert_eq!(code(&e), "unauthenticated", "{e:?}");
    let e = MachineSession::login(broker(&w.r), "ci-rot", key_from_hex(&old_seed))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "unauthenticated", "{e:?}");
    let fresh = MachineSession::login(broker(&w.r), "ci-rot", key_from_hex(&new_seed))
        .await
        .unwrap();
    assert!(fresh.grants().await.is_ok());
    let inv = inventory(&w).await;
    let keys = machine_in(&inv, "ci-rot")["keys"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().any(|k| k["retires_at_ms"].is_number()));
}

async fn login_start(w: &World, name: &str) -> Value {
    w.admin
        .post(
            &w.r.url(PAWD),
            "/v1/machines/login/start",
            &json!({ "user": name }),
        )
        .await
        .unwrap()
        .ok()
        .unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// P-256 machine keys (for hosts whose TPM, HSM or policy asks for NIST curves) do everything an
/// Ed25519 key does — join, login, a device proof on every request, a step-up bound to the
/// action, exec, rotation — and a P-256 signature is held to one spelling (low `s`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k3_nhi4_a_p256_machine_key_works_end_to_end_and_malleated_signatures_are_refused() {
    let mut w = world().await;
    let created = create(&mut w, &key_spec("ci-p256", "ada")).await;
    let token = created["join_token"].as_str().unwrap().to_owned();
    let key = MachineKey::generate_alg(KeyAlg::P256).unwrap();
    // A compressed P-256 point is 33 bytes: 44 base64url characters.
    assert_eq!(key.public().len(), 44, "{}", key.public());
    machine::join(&broker(&w.r), "ci-p256", &token, &key)
        .await
        .unwrap();
    let seed = *key.seed().expose();

    // A login answer whose signature is the same ECDSA signature with s' = n - s (valid for
    // ECDSA in general) is refused; the low-s one is accepted.
    let signer = p256::ecdsa::SigningKey::from_slice(&seed).unwrap();
    let sign = |c: &Value, high: bool| {
        use p256::ecdsa::signature::Signer as _;
        let msg = stepup_message(
            c["challenge"].as_str().unwrap(),
            c["action_hash"].as_str().unwrap(),
        );
        let sig: p256::ecdsa::Signature = signer.sign(&msg);
        let low = sig.normalize_s().unwrap_or(sig);
        let (r, s) = low.split_scalars();
        let chosen = if high {
            p256::ecdsa::Signature::from_scalars(r, -*s).unwrap()
        } else {
            low
        };
        base64_url(&chosen.to_bytes())
    };
    let finish = |c: &Value, sig: String| {
        json!({
            "challenge": c["challenge"],
            "credential": {"machine_key": key.public(), "signature": sig},
            "device_public_key": key.public(),
        })
    };
    let c = login_start(&w, "ci-p256").await;
    let high = w
        .admin
        .post(
            &w.r.url(PAWD),
            "/v1/machines/login/finish",
            &finish(&c, sign(&c, true)),
        )
        .await
        .unwrap();
    assert_eq!(high.code(), "unauthenticated", "{high:?}");
    let c = login_start(&w, "ci-p256").await;
    let low = w
        .admin
        .post(
            &w.r.url(PAWD),
            "/v1/machines/login/finish",
            &finish(&c, sign(&c, false)),
        )
        .await
        .unwrap();
    assert!(low.clone().ok().is_ok(), "{low:?}");

    // Through the client: login, a request (step-up signed by the P-256 key), exec, rotation.
    let s = MachineSession::login(
        broker(&w.r),
        "ci-p256",
        MachineKey::from_stored(KeyAlg::P256, &seed).unwrap(),
    )
    .await
    .unwrap();
    let grant = s.request(deploy("web-deploy")).await.unwrap();
    let (status, out) = exec(&s, &grant, "echo p256-$((6*7))").await;
    assert_eq!((status, out.trim()), (Some(0), "p256-42"));
    let next = MachineKey::generate_alg(KeyAlg::P256).unwrap();
    s.rotate(&next).await.unwrap();
    let again = MachineSession::login(broker(&w.r), "ci-p256", next)
        .await
        .unwrap();
    assert!(again.grants().await.is_ok());
    // The same 33 bytes presented as an Ed25519 key would not parse: a P-256 key cannot be
    // passed off as the other kind, and an Ed25519 signature does not verify under it.
    let ed = SigningKey::from_bytes(&seed);
    let c = login_start(&w, "ci-p256").await;
    let msg = stepup_message(
        c["challenge"].as_str().unwrap(),
        c["action_hash"].as_str().unwrap(),
    );
    let wrong_kind = w
        .admin
        .post(
            &w.r.url(PAWD),
            "/v1/machines/login/finish",
            &finish(&c, base64_url(&ed.sign(&msg).to_bytes())),
        )
        .await
        .unwrap();
    assert_eq!(wrong_kind.code(), "unauthenticated", "{wrong_kind:?}");
}

/// One pipeline credential (a workload token's issuer and subject) that opens machines of two
/// environments is reuse (NHI9): the second environment's login raises `cross_environment` on
/// record, naming the other machine; a machine of the same environment does not. A key is one
/// machine's only: registering it for a second machine is refused with `conflict`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k5_nhi9_one_credential_across_environments_is_flagged_and_a_key_is_one_machine_s() {
    let mut w = world().await;
    let on = |name: &str, env: &str, workflow: &str, w: &World| MachineSpec {
        environment: env.into(),
        auth: MachineAuth::Oidc {
            issuer: w.issuer.issuer(),
            claims: [
                ("repository".to_owned(), "org/app".to_owned()),
                ("workflow".to_owned(), workflow.to_owned()),
            ]
            .into(),
        },
        ..key_spec(name, "ada")
    };
    let (prod, stage, prod2) = (
        on("app-prod", "prod", "deploy", &w),
        on("app-staging", "staging", "deploy-staging", &w),
        on("app-prod-db", "prod", "migrate", &w),
    );
    for spec in [&prod, &stage, &prod2] {
        create(&mut w, spec).await;
    }
    // The same subject (repo:org/app:ref:refs/heads/main) in every token; only the workflow
    // claim picks the machine.
    let token = |workflow: &str| {
        let mut c = github_claims(AUDIENCE, "org/app", "refs/heads/main");
        c["workflow"] = json!(workflow);
        w.issuer.mint(c)
    };
    for workflow in ["deploy", "migrate", "deploy"] {
        MachineSession::workload_login(broker(&w.r), &token(workflow))
            .await
            .unwrap();
    }
    let inv = inventory(&w).await;
    for name in ["app-prod", "app-prod-db"] {
        let f = flags(machine_in(&inv, name));
        assert!(
            !f.contains(&"cross_environment".to_owned()),
            "{name}: {f:?}"
        );
    }
    MachineSession::workload_login(broker(&w.r), &token("deploy-staging"))
        .await
        .unwrap();
    let inv = inventory(&w).await;
    let staging = machine_in(&inv, "app-staging");
    let flag = staging["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "cross_environment")
        .unwrap_or_else(|| panic!("no cross_environment flag: {staging}"));
    let detail = flag["detail"].as_str().unwrap();
    assert!(
        detail.contains("app-prod (prod)") && detail.contains("app-prod-db (prod)"),
        "{detail}"
    );
    // The flag links to its audit record, which names the credential (public: issuer and
    // subject, no token).
    let audit = common::sqlite_audit(&w.r).await;
    let record = audit
        .iter()
        .find(|a| a["seq"] == flag["audit_seq"])
        .unwrap_or_else(|| panic!("flag's record {} not in the audit", flag["audit_seq"]));
    assert_eq!(record["action"], "machine_cross_environment", "{record}");
    assert!(
        record["detail"]
            .to_string()
            .contains("repo:org/app:ref:refs/heads/main"),
        "{record}"
    );

    // A key already registered for one machine cannot join another.
    let (first, _) = key_machine(&mut w, "k-prod", "ada").await;
    let created = create(
        &mut w,
        &MachineSpec {
            environment: "staging".into(),
            ..key_spec("k-staging", "ada")
        },
    )
    .await;
    let join_token = created["join_token"].as_str().unwrap().to_owned();
    let seed = *first.key().seed().expose();
    let reused = MachineKey::from_seed(&seed).unwrap();
    let e = machine::join(&broker(&w.r), "k-staging", &join_token, &reused)
        .await
        .unwrap_err();
    assert_eq!(code(&e), "conflict", "{e:?}");
    // The refused join did not spend the token: a fresh key joins with it.
    machine::join(
        &broker(&w.r),
        "k-staging",
        &join_token,
        &MachineKey::generate().unwrap(),
    )
    .await
    .unwrap();
}

/// A key login from `from` (a loopback address) with raw HTTP: the broker sees that address.
async fn login_from(w: &World, from: &str, name: &str, seed: &str) -> u16 {
    let http = w.r.client_from(from.parse().unwrap()).unwrap();
    let base = w.r.url(PAWD);
    let start: Value = http
        .post(format!("{base}/v1/machines/login/start"))
        .json(&json!({"user": name}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = key_from_hex(seed);
    let signer = SigningKey::from_bytes(key.seed().expose());
    let sig = signer.sign(&stepup_message(
        start["challenge"].as_str().unwrap(),
        start["action_hash"].as_str().unwrap(),
    ));
    http.post(format!("{base}/v1/machines/login/finish"))
        .json(&json!({
            "challenge": start["challenge"],
            "credential": {"machine_key": key.public(), "signature": base64_url(&sig.to_bytes())},
            "device_public_key": key.public(),
        }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k5_nhi9_a_new_source_is_flagged_and_a_pinned_machine_refuses_others() {
    let mut w = world().await;
    let (_s, seed) = key_machine(&mut w, "ci-key", "ada").await;
    // Same credential from a second address: allowed (no `sources`), flagged with its record.
    assert_eq!(login_from(&w, "127.0.0.2", "ci-key", &seed).await, 200);
    let inv = inventory(&w).await;
    let m = machine_in(&inv, "ci-key");
    let flag = m["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "new_source")
        .unwrap_or_else(|| panic!("no new_source flag: {m}"));
    assert!(
        flag["detail"].as_str().unwrap().contains("127.0.0.2"),
        "{flag}"
    );
    assert!(flag["audit_seq"].is_number(), "{flag}");
    assert_eq!(m["last_source"], "127.0.0.2");

    // A machine pinned to 127.0.0.1 refuses a login from anywhere else, on record.
    let mut spec = key_spec("ci-pinned", "ada");
    spec.sources = vec!["127.0.0.1/32".into()];
    let created = create(&mut w, &spec).await;
    let key = MachineKey::generate().unwrap();
    machine::join(
        &broker(&w.r),
        "ci-pinned",
        created["join_token"].as_str().unwrap(),
        &key,
    )
    .await
    .unwrap();
    let seed = hex_seed(key.seed().expose());
    assert_eq!(login_from(&w, "127.0.0.1", "ci-pinned", &seed).await, 200);
    assert_eq!(login_from(&w, "127.0.0.3", "ci-pinned", &seed).await, 401);
    let inv = inventory(&w).await;
    assert!(flags(machine_in(&inv, "ci-pinned")).contains(&"source_refused".to_owned()));
    let audit = common::sqlite_audit(&w.r).await;
    assert!(audit.iter().any(|a| a["action"] == "machine_source_refused"
        && a["subject"] == "ci-pinned"
        && a["detail"]["source"] == "127.0.0.3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k6_nhi10_machine_sessions_are_exec_only_and_a_terminal_is_flagged() {
    let mut w = world().await;
    let (ci, _) = key_machine(&mut w, "ci-key", "ada").await;
    let grant = ci.request(deploy("web-deploy")).await.unwrap();

    // A terminal (pty + shell) is refused before the target is dialled, on record.
    let logins = accepted(&w.r);
    let redeemed = ci.redeem(&grant).await.unwrap();
    let text = terminal_says(&redeemed).await;
    assert!(text.contains("exec-only"), "{text}");
    assert_eq!(accepted(&w.r), logins, "the target saw a login");
    // Exec runs, output and status come back.
    let (status, out) = exec(&ci, &grant, "sh -c 'echo ok; exit 4'").await;
    assert_eq!((status, out.trim()), (Some(4), "ok"));
    let inv = inventory(&w).await;
    let m = machine_in(&inv, "ci-key");
    assert!(flags(m).contains(&"interactive_use".to_owned()), "{m}");

    // An entitlement that allows a terminal: it opens, and is flagged as interactive use.
    let pty = ci.request(deploy("web-deploy-pty")).await.unwrap();
    let redeemed = ci.redeem(&pty).await.unwrap();
    let text = terminal_says(&redeemed).await;
    assert!(!text.contains("exec-only"), "{text}");
    let audit = common::sqlite_audit(&w.r).await;
    assert!(audit
        .iter()
        .any(|a| a["action"] == "machine_pty_refused" && a["actor"] == "ci-key"));
    assert!(audit
        .iter()
        .any(|a| a["action"] == "machine_interactive" && a["actor"] == "ci-key"));
}

/// Opens a terminal with a redeemed ticket, types `echo typed-$((6*7))`, and returns what it
/// printed until it ended or 5 s passed.
async fn terminal_says(redeemed: &paw_proto::elevation::RedeemResponse) -> String {
    let cred = terminal::Credential {
        addr: redeemed.ssh_addr.clone().unwrap(),
        host_key: redeemed.ssh_host_key.clone().unwrap(),
        session_id: redeemed.session_id.clone(),
        ticket: zeroize::Zeroizing::new(redeemed.ticket.clone()),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let term = terminal::open(cred, 80, 24, None, move |e| {
        let _ = tx.send(e);
    })
    .await
    .unwrap();
    let _ = term.input(b"echo typed-$((6*7))\n".to_vec()).await;
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some(TermEvent::Output(d))) = tokio::time::timeout_at(deadline, rx.recv()).await {
        out.extend(d);
        if String::from_utf8_lossy(&out).contains("typed-42") {
            break;
        }
    }
    term.close().await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nhi5_a_machine_never_approves_or_breaks_glass() {
    let mut w = world().await;
    let (ci, _) = key_machine(&mut w, "ci-key", "ada").await;
    // ada asks under an entitlement whose approvers are the deployers group, ci-key among them.
    let pending = w
        .ada
        .signed(&w.r.url(PAWD), "/v1/requests", &deploy("web-reviewed"))
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(pending["state"], "pending");
    let decide = Action::Approve {
        request_id: pending["id"].as_str().unwrap().into(),
        approve: true,
        comment: "looks fine".into(),
    };
    let stepup = ci.step_up(decide).await.unwrap();
    let e = ci
        .call::<Value>(
            reqwest::Method::POST,
            &format!("/v1/requests/{}/decide", pending["id"].as_str().unwrap()),
            Some(&json!({ "stepup": stepup })),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), "forbidden", "{e:?}");
    // Eligible for break-glass by the entitlement, refused because it is not a person.
    let bg = Action::BreakGlass {
        entitlement: "web-deploy".into(),
        target: SSH_TARGET.into(),
        role: "root".into(),
        duration_secs: 300,
        justification: "the site is down".into(),
    };
    let stepup = ci.step_up(bg).await.unwrap();
    let e = ci
        .call::<Value>(
            reqwest::Method::POST,
            "/v1/breakglass",
            Some(&json!({ "stepup": stepup })),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), "forbidden", "{e:?}");
    // A machine has no roles: creating machines is refused to it as to any non-admin.
    let listed = ci.machines().await.unwrap();
    assert!(
        listed.machines.is_empty(),
        "a machine owns no machines: {listed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nhi2_no_machine_secret_is_stored_or_logged_in_the_clear() {
    let mut w = world().await;
    let created = create(&mut w, &key_spec("ci-key", "ada")).await;
    let join_token = created["join_token"].as_str().unwrap().to_owned();
    let key = MachineKey::generate().unwrap();
    machine::join(&broker(&w.r), "ci-key", &join_token, &key)
        .await
        .unwrap();
    let seed = *key.seed().expose();
    let s = MachineSession::login(broker(&w.r), "ci-key", key)
        .await
        .unwrap();
    let spec = oidc_spec("ci-oidc", "ada", &w.issuer);
    create(&mut w, &spec).await;
    let workload = w
        .issuer
        .mint(github_claims(AUDIENCE, "org/app", "refs/heads/main"));
    let o = MachineSession::workload_login(broker(&w.r), &workload)
        .await
        .unwrap();
    let secrets = [
        ("join token", join_token.clone()),
        ("workload token", workload.clone()),
        ("access token", s.tokens().access_token.clone()),
        ("refresh token", s.tokens().refresh_token.clone()),
        (
            "workload session access token",
            o.tokens().access_token.clone(),
        ),
        ("machine key seed", base64_url(&seed)),
    ];
    let mut places: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in std::fs::read_dir(w.r.broker_dir()).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            places.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    places.push(("pawd log".into(), w.r.log(PAWD).into_bytes()));
    places.push((
        "audit".into(),
        serde_json::to_vec(&common::sqlite_audit(&w.r).await).unwrap(),
    ));
    assert!(
        places.iter().any(|(p, _)| p.ends_with("pawd.db")),
        "the database was not searched"
    );
    for (what, secret) in &secrets {
        for (place, bytes) in &places {
            let found = bytes
                .windows(secret.len())
                .any(|win| win == secret.as_bytes());
            assert!(!found, "{what} found in {place}");
        }
    }
    // Negative control: a value that is stored is found by the same search.
    let planted = "ci-key";
    assert!(places.iter().any(|(_, b)| b
        .windows(planted.len())
        .any(|win| win == planted.as_bytes())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_is_approved_automatically_only_inside_its_window() {
    let mut w = world().await;
    let (ci, _) = key_machine(&mut w, "ci-key", "ada").await;
    let inside = ci.request(deploy("web-window-now")).await.unwrap();
    assert_eq!(inside.state, "active", "{inside:?}");
    let outside = ci.request(deploy("web-window-later")).await.unwrap();
    assert_eq!(outside.state, "pending", "{outside:?}");
    assert!(outside.rule.contains("UTC; otherwise"), "{}", outside.rule);
    // Outside the window a person approves, as for any request.
    let decide = Action::Approve {
        request_id: outside.id.clone(),
        approve: true,
        comment: "deploy outside the window, checked".into(),
    };
    let v = w
        .ada
        .signed(
            &w.r.url(PAWD),
            &format!("/v1/requests/{}/decide", outside.id),
            &decide,
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["state"], "active", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k1_nhi1_the_backup_owner_takes_over_a_suspended_machine_and_nobody_else_may() {
    let mut w = world().await;
    let mut bob = w.r.enrolled("bob", &[], PAWD).await.unwrap();
    let mut carol = w.r.enrolled("carol", &[], PAWD).await.unwrap();
    let mut spec = key_spec("ci-key", "ada");
    spec.backup_owner = Some("bob".into());
    let created = create(&mut w, &spec).await;
    assert_eq!(created["machine"]["backup_owner"], "bob", "{created}");
    let out =
        w.r.pawd(&["user".into(), "disable".into(), "ada".into()])
            .unwrap();
    assert!(out.status.success(), "{out:?}");

    let take = |to: &str| Action::ManageMachine {
        operation: "transfer".into(),
        machine: "ci-key".into(),
        owner: to.into(),
        spec_sha256: String::new(),
    };
    let base = w.r.url(PAWD);
    async fn signed_transfer(
        user: &mut VirtualUser,
        base: &str,
        action: &Action,
        to: &str,
    ) -> paw_tests::virtual_user::Reply {
        let start = user.stepup_start(base, action).await.unwrap();
        let answer = user.stepup_answer(&start, action).unwrap();
        let body = json!({"owner": to, "challenge": answer["challenge"], "credential": answer["credential"]});
        user.call(base, "POST", "/v1/machines/ci-key/owner", Some(&body))
            .await
            .unwrap()
    }
    // Someone who is not the backup owner: refused, even for themselves.
    let r = signed_transfer(&mut carol, &base, &take("carol"), "carol").await;
    assert_eq!(r.code(), "forbidden", "{r:?}");
    // The backup owner handing it to someone else: refused (that is an admin's call).
    let r = signed_transfer(&mut bob, &base, &take("carol"), "carol").await;
    assert_eq!(r.code(), "forbidden", "{r:?}");
    // The backup owner taking it over: the suspension is lifted, on record as such.
    let r = signed_transfer(&mut bob, &base, &take("bob"), "bob").await;
    let v = r.clone().ok().unwrap_or_else(|_| panic!("{r:?}"));
    assert_eq!(v["owner"], "bob");
    assert!(v["suspended_at_ms"].is_null(), "{v}");
    let audit = common::sqlite_audit(&w.r).await;
    assert!(audit.iter().any(|a| a["action"] == "machine_owner_changed"
        && a["actor"] == "bob"
        && a["detail"]["as"] == "backup_owner"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_s_request_under_the_owner_rule_is_approved_by_its_owner_or_backup_only() {
    let mut w = world().await;
    let bob = w.r.enrolled("bob", &[], PAWD).await.unwrap();
    let mut carol = w.r.enrolled("carol", &[], PAWD).await.unwrap();
    let mut spec = key_spec("ci-key", "ada");
    spec.backup_owner = Some("group:sre".into());
    let created = create(&mut w, &spec).await;
    let key = MachineKey::generate().unwrap();
    machine::join(
        &broker(&w.r),
        "ci-key",
        created["join_token"].as_str().unwrap(),
        &key,
    )
    .await
    .unwrap();
    let ci = MachineSession::login(broker(&w.r), "ci-key", key)
        .await
        .unwrap();
    let base = w.r.url(PAWD);

    let pending = ci.request(deploy("web-owner")).await.unwrap();
    assert_eq!(pending.state, "pending", "{pending:?}");
    assert!(
        pending.rule.contains("machine's owner or backup owner"),
        "{}",
        pending.rule
    );
    assert_eq!(pending.approvals_missing, 1);
    let decide = |approve: bool| Action::Approve {
        request_id: pending.id.clone(),
        approve,
        comment: "owner's call".into(),
    };
    let path = format!("/v1/requests/{}/decide", pending.id);
    // carol is neither owner nor in the backup group: not in her inbox, refused.
    let inbox = carol
        .call(&base, "GET", "/v1/approvals", None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert!(!inbox.to_string().contains(&pending.id), "{inbox}");
    let r = carol.signed(&base, &path, &decide(true)).await.unwrap();
    assert_eq!(r.code(), "forbidden", "{r:?}");
    // bob backs it up through group sre: he sees it (and could decide).
    let inbox = bob
        .call(&base, "GET", "/v1/approvals", None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert!(inbox.to_string().contains(&pending.id), "{inbox}");
    // ada, the owner, approves: one approval is the rule.
    let v = w
        .ada
        .signed(&base, &path, &decide(true))
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["state"], "active", "{v}");
    let audit = common::sqlite_audit(&w.r).await;
    assert!(audit.iter().any(|a| a["action"] == "request_approved"
        && a["subject"] == pending.id.as_str()
        && a["detail"]["rule"] == "owner"
        && a["detail"]["owner"] == "ada"));
    // A person may not request under the owner rule (no one could approve it): refused
    // before the step-up.
    let r = w
        .ada
        .call(
            &base,
            "POST",
            "/v1/stepup/start",
            Some(&json!({ "action": deploy("web-owner") })),
        )
        .await
        .unwrap();
    assert_eq!(r.code(), "forbidden", "{r:?}");
    assert!(
        r.body.to_string().contains("only machine identities"),
        "{r:?}"
    );
}
