//! The broker as witness of each workstation's local audit trail (case D3 of
//! SECURITY-CASES.md): the workstation signs checkpoints of its paw-audit `LocalTrail` with its
//! device key and the broker cosigns only checkpoints that continue the last one it cosigned.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::idp::{Broker, Client};
use ed25519_dalek::{SigningKey, VerifyingKey};
use paw_audit::{Chain, Checkpoint, Cosignature, Event, Head, LocalTrail, Outcome, Record};
use paw_broker::audit;
use reqwest::StatusCode;
use serde_json::{json, Value};

const PATH: &str = "/v1/audit/checkpoint";

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn checkpoint_json(c: &Checkpoint) -> Value {
    json!({
        "origin": c.origin,
        "seq": c.head.seq,
        "hash": hex::encode(c.head.hash),
        "time_ms": c.time_ms,
        "key": b64(&c.key),
        "signature": b64(&c.signature),
    })
}

fn record_json(r: &Record) -> Value {
    json!({
        "seq": r.event.seq,
        "time_ms": r.event.time_ms,
        "actor": r.event.actor,
        "action": r.event.action,
        "subject": r.event.subject,
        "outcome": r.event.outcome.as_str(),
        "detail": r.event.detail,
        "prev_hash": hex::encode(r.prev_hash),
        "hash": hex::encode(r.hash),
    })
}

fn upload_body(c: &Checkpoint, records: &[Record]) -> Value {
    json!({
        "checkpoint": checkpoint_json(c),
        "records": records.iter().map(record_json).collect::<Vec<_>>(),
    })
}

/// A workstation: its local trail in a temp dir and the origin it signs checkpoints for.
struct Workstation {
    _dir: tempfile::TempDir,
    trail: LocalTrail,
    origin: String,
}

impl Workstation {
    async fn new(origin: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let trail = LocalTrail::open(dir.path().join("trail.db")).await.unwrap();
        Self {
            _dir: dir,
            trail,
            origin: origin.to_owned(),
        }
    }

    async fn append(&self, n: usize, time_ms: i64) {
        for i in 0..n {
            self.trail
                .append(
                    "ada",
                    "grant.request",
                    format!("db-{i}"),
                    Outcome::Started,
                    json!({"why": format!("INC-{i}")}),
                    time_ms,
                )
                .await
                .unwrap();
        }
    }

    async fn records_after(&self, seq: u64) -> Vec<Record> {
        self.trail.records(seq, 100_000).await.unwrap()
    }

    /// Signs the current head with `key` and uploads it with the records after `after_seq`.
    async fn upload(
        &self,
        b: &Broker,
        c: &Client,
        key: &SigningKey,
        after_seq: u64,
    ) -> (Checkpoint, StatusCode, Value) {
        let cp = self
            .trail
            .sign_checkpoint(key, &self.origin, b.now())
            .await
            .unwrap();
        let records = self.records_after(after_seq).await;
        let (status, v) = c
            .call(b, "POST", PATH, Some(&upload_body(&cp, &records)))
            .await;
        (cp, status, v)
    }
}

async fn witness_key(b: &Broker) -> VerifyingKey {
    let (status, v) = b.send("GET", "/v1/audit/witness", Vec::new(), &[]).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let bytes = URL_SAFE_NO_PAD
        .decode(v["public_key"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        v["fingerprint"].as_str().unwrap(),
        b.state.cosigner.witness.fingerprint()
    );
    VerifyingKey::from_bytes(&bytes.try_into().unwrap()).unwrap()
}

fn cosignature(v: &Value) -> Cosignature {
    let bytes = URL_SAFE_NO_PAD
        .decode(v["cosignature"].as_str().unwrap())
        .unwrap();
    Cosignature::from_bytes(&bytes).unwrap()
}

async fn broker_actions(b: &Broker, action: &str) -> Vec<Value> {
    audit::records(&b.db, 0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == action)
        .map(|r| {
            let mut d = r.event.detail.clone();
            d["origin"] = json!(r.event.subject);
            d["actor"] = json!(r.event.actor);
            d
        })
        .collect()
}

fn assert_refused(status: StatusCode, v: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

#[tokio::test]
async fn d3_a_growing_chain_is_cosigned_and_the_cosignature_verifies() {
    growing_chain(Broker::start().await).await;
}

#[tokio::test]
async fn d3_a_growing_chain_is_cosigned_and_the_cosignature_verifies_postgres() {
    let pg = paw_tests::postgres::TempPostgres::start().unwrap();
    growing_chain(Broker::start_on(Some(pg.url()), "").await).await;
}

async fn growing_chain(b: Broker) {
    let c = b.enrolled("ada").await;
    let witness = witness_key(&b).await;
    let ws = Workstation::new("ws-ada-1").await;

    // First checkpoint of the origin, with the records from the genesis.
    ws.append(3, b.now()).await;
    let (cp1, status, v) = ws.upload(&b, &c, &c.device, 0).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["previous_seq"], Value::Null);
    assert_eq!(v["witness_key"].as_str().unwrap(), b64(witness.as_bytes()));
    let co1 = cosignature(&v);
    co1.verify(&cp1, &witness).unwrap();
    assert_eq!(co1.time_ms, v["cosigned_at_ms"].as_i64().unwrap());
    ws.trail
        .add_cosignature(&cp1, &co1.to_bytes(), b.now())
        .await
        .unwrap();

    // It grows; the next checkpoint carries the records since the cosigned one.
    b.advance(1_000);
    ws.append(4, b.now()).await;
    let (cp2, status, v) = ws.upload(&b, &c, &c.device, cp1.head.seq).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["previous_seq"], 3);
    let co2 = cosignature(&v);
    co2.verify(&cp2, &witness).unwrap();
    assert!(co2.verify(&cp1, &witness).is_err());
    ws.trail
        .add_cosignature(&cp2, &co2.to_bytes(), b.now())
        .await
        .unwrap();
    // What the app does on its side: the newest cosigned checkpoint, and the trail against it.
    let latest = ws.trail.latest_cosigned(&witness).await.unwrap().unwrap();
    assert_eq!(latest, cp2);
    assert_eq!(ws.trail.verify_against(&latest).await.unwrap().seq, 7);

    // A checkpoint with no new records but a newer time is fine (the app checkpoints before
    // each privileged action, whether or not anything was written since).
    b.advance(1_000);
    let (_, status, v) = ws.upload(&b, &c, &c.device, cp2.head.seq).await;
    assert_eq!(status, StatusCode::OK, "{v}");

    let cosigned = broker_actions(&b, "audit_checkpoint_cosigned").await;
    assert_eq!(cosigned.len(), 3);
    assert_eq!(cosigned[1]["seq"], 7);
    assert_eq!(cosigned[1]["previous_seq"], 3);
    assert_eq!(cosigned[1]["records"], 4);
    assert_eq!(cosigned[1]["origin"], "ws-ada-1");
    assert_eq!(cosigned[1]["actor"], "ada");
    audit::verify(&b.db).await.unwrap();
}

#[tokio::test]
async fn d3_first_checkpoint_may_come_without_records_but_not_with_wrong_ones() {
    let b = Broker::start().await;
    let c = b.enrolled("ada").await;
    let ws = Workstation::new("ws-ada-2").await;
    ws.append(3, b.now()).await;
    let cp = ws
        .trail
        .sign_checkpoint(&c.device, &ws.origin, b.now())
        .await
        .unwrap();
    let records = ws.records_after(0).await;
    // Records that stop short of the head it signs.
    let (status, v) = c
        .call(&b, "POST", PATH, Some(&upload_body(&cp, &records[..2])))
        .await;
    assert_refused(status, &v, StatusCode::CONFLICT, "conflict");
    // None at all: the checkpoint becomes the base.
    let (status, v) = c.call(&b, "POST", PATH, Some(&upload_body(&cp, &[]))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

/// Cosigned at seq 8; then the tail is cut and re-grown with re-computed hashes.
#[tokio::test]
async fn d3_a_truncated_and_recomputed_tail_is_refused_and_recorded() {
    truncated_tail(Broker::start().await).await;
}

#[tokio::test]
async fn d3_a_truncated_and_recomputed_tail_is_refused_and_recorded_postgres() {
    let pg = paw_tests::postgres::TempPostgres::start().unwrap();
    truncated_tail(Broker::start_on(Some(pg.url()), "").await).await;
}

async fn truncated_tail(b: Broker) {
    let c = b.enrolled("ada").await;
    let ws = Workstation::new("ws-ada-3").await;
    ws.append(8, b.now()).await;
    let (cosigned, status, v) = ws.upload(&b, &c, &c.device, 0).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let honest = ws.records_after(0).await;
    let head_at = |records: &[Record], seq: u64| Head {
        seq,
        hash: records[seq as usize - 1].hash,
    };

    // The attacker keeps records 1..=5 and writes a different 6..=10, re-hashing each.
    let mut chain = Chain::resume(head_at(&honest, 5));
    let mut forged: Vec<Record> = honest[..5].to_vec();
    for seq in 6..=10 {
        forged.push(
            chain
                .append(Event {
                    seq,
                    time_ms: b.now(),
                    actor: "ada".into(),
                    action: "grant.request".into(),
                    subject: "nothing".into(),
                    outcome: Outcome::Success,
                    detail: json!({"why": "routine"}),
                })
                .unwrap(),
        );
    }
    paw_audit::verify(&forged).unwrap(); // on its own the forged chain verifies

    let mut attempts = Vec::new();
    // Longer, forked: the records after seq 8 do not link to the cosigned head.
    b.advance(1_000);
    let cp = Checkpoint::sign(&c.device, &ws.origin, head_at(&forged, 10), b.now());
    attempts.push(upload_body(&cp, &forged[8..]));
    // Cut back: a lower seq than the cosigned one.
    let cp = Checkpoint::sign(&c.device, &ws.origin, head_at(&forged, 6), b.now());
    attempts.push(upload_body(&cp, &[]));
    // The same seq with another hash.
    let cp = Checkpoint::sign(&c.device, &ws.origin, head_at(&forged, 8), b.now());
    attempts.push(upload_body(&cp, &[]));
    // Longer, with every record since the cut (the broker wants those after ITS head).
    let cp = Checkpoint::sign(&c.device, &ws.origin, head_at(&forged, 10), b.now());
    attempts.push(upload_body(&cp, &forged[5..]));
    for body in &attempts {
        let (status, v) = c.call(&b, "POST", PATH, Some(body)).await;
        assert_refused(status, &v, StatusCode::CONFLICT, "conflict");
    }
    let refused = broker_actions(&b, "audit_checkpoint_refused").await;
    assert_eq!(refused.len(), attempts.len());
    assert_eq!(refused[0]["origin"], "ws-ada-3");
    assert_eq!(refused[0]["last_cosigned_seq"], 8);
    assert_eq!(refused[0]["seq"], 10);
    assert!(
        refused[0]["reason"].as_str().unwrap().contains("record #9"),
        "the first bad record is named: {}",
        refused[0]
    );
    assert!(refused[1]["reason"].as_str().unwrap().contains("behind"));

    // The honest trail still continues the cosigned checkpoint.
    b.advance(1_000);
    ws.append(1, b.now()).await;
    let (_, status, v) = ws.upload(&b, &c, &c.device, cosigned.head.seq).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    audit::verify(&b.db).await.unwrap();
}

#[tokio::test]
async fn d3_a_replayed_old_checkpoint_is_refused() {
    let b = Broker::start().await;
    let c = b.enrolled("ada").await;
    let ws = Workstation::new("ws-ada-4").await;
    ws.append(2, b.now()).await;
    let (cp1, status, v) = ws.upload(&b, &c, &c.device, 0).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let first = upload_body(&cp1, &ws.records_after(0).await);
    b.advance(1_000);
    ws.append(2, b.now()).await;
    let (cp2, status, v) = ws.upload(&b, &c, &c.device, 2).await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // The first checkpoint again: behind the last one.
    let (status, v) = c.call(&b, "POST", PATH, Some(&first)).await;
    assert_refused(status, &v, StatusCode::CONFLICT, "conflict");
    // The last one again: not newer, so not cosigned a second time.
    let (status, v) = c
        .call(&b, "POST", PATH, Some(&upload_body(&cp2, &[])))
        .await;
    assert_refused(status, &v, StatusCode::CONFLICT, "conflict");
    // Same head, but a time older than the cosigned checkpoint's.
    let old = Checkpoint::sign(&c.device, &ws.origin, cp2.head, cp2.time_ms - 1);
    let (status, v) = c
        .call(&b, "POST", PATH, Some(&upload_body(&old, &[])))
        .await;
    assert_refused(status, &v, StatusCode::CONFLICT, "conflict");
    assert_eq!(
        broker_actions(&b, "audit_checkpoint_refused").await.len(),
        3
    );
    // A time far ahead of the broker's clock would block every honest later checkpoint.
    let ahead = Checkpoint::sign(&c.device, &ws.origin, cp2.head, b.now() + 3_600_000);
    let (status, v) = c
        .call(&b, "POST", PATH, Some(&upload_body(&ahead, &[])))
        .await;
    assert_refused(status, &v, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn d3_a_checkpoint_signed_by_another_key_is_refused() {
    let b = Broker::start().await;
    let ada = b.enrolled("ada").await;
    let bob = b.enrolled("bob").await;
    let ws = Workstation::new("ws-ada-5").await;
    ws.append(2, b.now()).await;
    // A key nobody registered, and another user's registered device key.
    for key in [SigningKey::from_bytes(&[42; 32]), bob.device.clone()] {
        let cp = Checkpoint::sign(&key, &ws.origin, ws.trail.head().await.unwrap(), b.now());
        let (status, v) = ada
            .call(&b, "POST", PATH, Some(&upload_body(&cp, &[])))
            .await;
        assert_refused(status, &v, StatusCode::FORBIDDEN, "forbidden");
    }
    // The session's key named, but the signature is not its.
    let mut cp = Checkpoint::sign(
        &ada.device,
        &ws.origin,
        ws.trail.head().await.unwrap(),
        b.now(),
    );
    cp.signature[0] ^= 1;
    let (status, v) = ada
        .call(&b, "POST", PATH, Some(&upload_body(&cp, &[])))
        .await;
    assert_refused(status, &v, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        broker_actions(&b, "audit_checkpoint_refused").await.len(),
        3
    );
    assert!(broker_actions(&b, "audit_checkpoint_cosigned")
        .await
        .is_empty());
}

#[tokio::test]
async fn d3_another_users_origin_is_refused() {
    let b = Broker::start().await;
    let ada = b.enrolled("ada").await;
    let bob = b.enrolled("bob").await;
    let ws = Workstation::new("ws-ada-6").await;
    ws.append(3, b.now()).await;
    let (_, status, v) = ws.upload(&b, &ada, &ada.device, 0).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // Bob, with his own device key, claims Ada's origin (say, to cosign a shorter chain).
    b.advance(1_000);
    let cp = Checkpoint::sign(
        &bob.device,
        &ws.origin,
        ws.trail.head().await.unwrap(),
        b.now(),
    );
    let (status, v) = bob
        .call(&b, "POST", PATH, Some(&upload_body(&cp, &[])))
        .await;
    assert_refused(status, &v, StatusCode::FORBIDDEN, "forbidden");
    let refused = broker_actions(&b, "audit_checkpoint_refused").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["actor"], "bob");
    // Without a session: no cosignature at all.
    let (status, _) = b
        .send(
            "POST",
            PATH,
            serde_json::to_vec(&upload_body(&cp, &[])).unwrap(),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

fn tiny_records(n: u64) -> Vec<Record> {
    let mut chain = Chain::new();
    (1..=n)
        .map(|seq| {
            chain
                .append(Event {
                    seq,
                    time_ms: 0,
                    actor: String::new(),
                    action: String::new(),
                    subject: String::new(),
                    outcome: Outcome::Success,
                    detail: Value::Null,
                })
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn oversized_uploads_are_refused_with_payload_too_large() {
    // Above the record limit, with a body limit raised so the count is what refuses it.
    let b = Broker::start_with("[limits]\nmax_body_bytes = 16777216\n").await;
    let c = b.enrolled("ada").await;
    let records = tiny_records(10_001);
    let head = Head {
        seq: 10_001,
        hash: records.last().unwrap().hash,
    };
    let cp = Checkpoint::sign(&c.device, "ws-big", head, b.now());
    let (status, v) = c
        .call(&b, "POST", PATH, Some(&upload_body(&cp, &records)))
        .await;
    assert_refused(
        status,
        &v,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    assert!(v["message"].as_str().unwrap().contains("10000"), "{v}");
    // Exactly at the limit is fine.
    let head = Head {
        seq: 10_000,
        hash: records[9_999].hash,
    };
    let cp = Checkpoint::sign(&c.device, "ws-big", head, b.now());
    let (status, v) = c
        .call(
            &b,
            "POST",
            PATH,
            Some(&upload_body(&cp, &records[..10_000])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // With the default body limit the body itself is refused first, with the same code.
    let b = Broker::start().await;
    let c = b.enrolled("ada").await;
    let cp = Checkpoint::sign(&c.device, "ws-big", head, b.now());
    let (status, v) = c
        .call(&b, "POST", PATH, Some(&upload_body(&cp, &records[..2_000])))
        .await;
    assert_refused(
        status,
        &v,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
}

#[tokio::test]
async fn malformed_checkpoints_are_bad_requests() {
    let b = Broker::start().await;
    let c = b.enrolled("ada").await;
    let cp = Checkpoint::sign(&c.device, "ws-ok", Head::genesis(), b.now());
    let good = upload_body(&cp, &[]);
    let mut cases = Vec::new();
    for (field, value) in [
        ("origin", json!("bad origin\n")),
        ("origin", json!("")),
        ("hash", json!("abcd")),
        ("hash", json!(hex::encode([0xAB; 32]).to_uppercase())),
        ("key", json!("!!")),
        ("signature", json!(b64(&[0; 10]))),
    ] {
        let mut body = good.clone();
        body["checkpoint"][field] = value;
        cases.push(body);
    }
    let mut body = good.clone();
    body["extra"] = json!(1);
    cases.push(body);
    let mut body = good.clone();
    let mut rec = record_json(&tiny_records(1)[0]);
    rec["outcome"] = json!("maybe");
    body["records"] = json!([rec]);
    cases.push(body);
    for body in cases {
        let (status, v) = c.call(&b, "POST", PATH, Some(&body)).await;
        assert_refused(status, &v, StatusCode::BAD_REQUEST, "bad_request");
    }
    assert!(broker_actions(&b, "audit_checkpoint_refused")
        .await
        .is_empty());
}

#[tokio::test]
async fn the_witness_key_survives_a_restart_and_is_generated_when_missing() {
    let b = Broker::start().await;
    let path = b.config.audit.witness_key.clone();
    assert!(path.starts_with(b.dir.path()));
    let first = witness_key(&b).await;
    // Same config, new process: the same key.
    let clock = std::sync::Arc::new(common::idp::TestClock(std::sync::atomic::AtomicI64::new(0)));
    let again = paw_broker::server::app(&b.config, clock.clone())
        .await
        .unwrap();
    assert_eq!(again.state.cosigner.witness.public_key(), first);
    // A broker from before witnessing (no key file): one is made at start.
    std::fs::remove_file(&path).unwrap();
    let made = paw_broker::server::app(&b.config, clock).await.unwrap();
    assert_ne!(made.state.cosigner.witness.public_key(), first);
    assert!(path.exists());
}

/// Two forks of one cosigned head uploaded at once: the witness cosigns at most one of them,
/// or it would vouch for two different histories of the same trail.
async fn concurrent_forks(b: Broker) {
    let b = std::sync::Arc::new(b);
    let c = b.enrolled("ada").await;
    let ws = Workstation::new("ws-race").await;
    ws.append(2, b.now()).await;
    let (_, status, v) = ws.upload(&b, &c, &c.device, 0).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let base = ws.trail.head().await.unwrap();
    b.advance(1_000);
    let mut tasks = Vec::new();
    for fork in 0..8 {
        let mut chain = Chain::resume(base);
        let rec = chain
            .append(Event {
                seq: 3,
                time_ms: b.now(),
                actor: "ada".into(),
                action: "fork".into(),
                subject: format!("fork-{fork}"),
                outcome: Outcome::Success,
                detail: Value::Null,
            })
            .unwrap();
        let cp = Checkpoint::sign(&c.device, "ws-race", chain.head(), b.now() + fork);
        let body = upload_body(&cp, &[rec]);
        let (b, caller) = (b.clone(), c.caller());
        tasks.push(tokio::spawn(async move {
            caller.call(&b, "POST", PATH, Some(&body)).await.0
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(
        broker_actions(&b, "audit_checkpoint_refused").await.len(),
        7
    );
    audit::verify(&b.db).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn d3_concurrent_forks_of_one_head_get_one_cosignature() {
    concurrent_forks(Broker::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn d3_concurrent_forks_of_one_head_get_one_cosignature_postgres() {
    let pg = paw_tests::postgres::TempPostgres::start().unwrap();
    concurrent_forks(Broker::start_on(Some(pg.url()), "").await).await;
}

#[tokio::test]
async fn pawd_init_makes_a_private_witness_key_that_check_reports_and_force_keeps() {
    use paw_broker::init::{check, init, InitOptions};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = InitOptions {
        dir: dir.path().join("broker"),
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: None,
        hostname: "localhost".into(),
        force: false,
    };
    let report = init(&opts).await.unwrap();
    assert!(report.witness_created);
    let path = report.dir.join("witness.key");
    assert_eq!(report.witness_key_path, path);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let printed = report.to_string();
    assert!(printed.contains(&report.witness_fingerprint), "{printed}");
    let seed = std::fs::read_to_string(&path).unwrap();
    assert!(!printed.contains(seed.trim()), "the seed is never printed");

    let checked = check(&report.config_path).await.unwrap();
    assert_eq!(
        checked.witness_fingerprint.as_deref(),
        Some(report.witness_fingerprint.as_str())
    );
    assert!(checked.to_string().contains(&report.witness_fingerprint));

    // Re-init keeps the key apps have pinned.
    opts.force = true;
    let again = init(&opts).await.unwrap();
    assert!(!again.witness_created);
    assert_eq!(again.witness_fingerprint, report.witness_fingerprint);

    // A key others can read is refused by check.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = check(&report.config_path).await.unwrap_err().to_string();
    assert!(err.contains("chmod 600"), "{err}");
}

/// The workstation's last upload was cosigned but the answer never reached it, so it still
/// counts from an older cosigned head and re-sends records the broker has seen (case E3: audit
/// uploads retry). Accepted when they pass through the cosigned head; refused otherwise.
#[tokio::test]
async fn e3_a_retry_that_resends_records_already_cosigned_is_accepted_when_they_pass_through_the_head(
) {
    let b = Broker::start().await;
    let c = b.enrolled("ada").await;
    let ws = Workstation::new("ws-ada-lost").await;
    ws.append(3, b.now()).await;
    let (_, status, v) = ws.upload(&b, &c, &c.device, 0).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    b.advance(1_000);
    let (_, status, v) = ws.upload(&b, &c, &c.device, 0).await; // answer "lost": from 0 again
    assert_eq!(status, StatusCode::OK, "{v}");
    b.advance(1_000);
    ws.append(2, b.now()).await;
    let (_, status, v) = ws.upload(&b, &c, &c.device, 1).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["previous_seq"], 3);

    // Records that claim to pass through the cosigned head (seq 5) but carry another hash there.
    b.advance(1_000);
    let mut records = ws.records_after(0).await;
    records[4].hash[0] ^= 1;
    let cp = Checkpoint::sign(
        &c.device,
        &ws.origin,
        ws.trail.head().await.unwrap(),
        b.now(),
    );
    let (status, v) = c
        .call(&b, "POST", PATH, Some(&upload_body(&cp, &records)))
        .await;
    assert_refused(status, &v, StatusCode::CONFLICT, "conflict");
    // Records that stop before the cosigned head.
    let (status, v) = c
        .call(&b, "POST", PATH, Some(&upload_body(&cp, &records[..3])))
        .await;
    assert_refused(status, &v, StatusCode::CONFLICT, "conflict");
}
