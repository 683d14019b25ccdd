//! Step-up verifications per second and their p50/p99 latency, in-process (router driven with
//! `oneshot`, SQLite in a temp dir, the INSECURE virtual key as authenticator). Each iteration
//! is one authenticated `POST /v1/stepup/start` plus one `POST /v1/stepup/finish`; the latency
//! reported is the finish (verification) alone, throughput counts whole step-ups.
//!
//! `cargo bench -p paw-broker --bench stepup [-- ITERATIONS]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use paw_broker::api::SystemClock;
use paw_broker::config::Config;
use paw_fido::attestation::{attestation_ca_pem, VIRTUAL_KEY_AAGUID};
use paw_fido::VirtualKey;
use paw_proto::action::Action;
use paw_proto::device_proof::{self, ProofHeader};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

const ORIGIN: &str = "https://localhost:8443";

async fn send(app: &Router, path: &str, body: &Value, headers: &[(String, String)]) -> Value {
    let mut req = Request::post(path).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let res = app
        .clone()
        .oneshot(
            req.body(Body::from(serde_json::to_vec(body).unwrap()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

fn client_data(typ: &str, challenge: &str, hash: Option<&str>) -> Vec<u8> {
    let mut v =
        json!({"type": typ, "challenge": challenge, "origin": ORIGIN, "crossOrigin": false});
    if let Some(h) = hash {
        v["pawActionHash"] = json!(h);
    }
    serde_json::to_vec(&v).unwrap()
}

fn assertion(key: &mut VirtualKey, challenge: &str, hash: &str) -> Value {
    let cdj = client_data("webauthn.get", challenge, Some(hash));
    let a = key
        .get_assertion("localhost", &Sha256::digest(&cdj).into())
        .unwrap();
    let id = B64.encode(&a.credential_id);
    json!({"id": id, "rawId": id, "type": "public-key", "extensions": {}, "response": {
        "authenticatorData": B64.encode(&a.authenticator_data),
        "clientDataJSON": B64.encode(&cdj),
        "signature": B64.encode(&a.signature), "userHandle": null}})
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn authed(
    device: &SigningKey,
    token: &str,
    path: &str,
    body: &Value,
    n: u64,
) -> Vec<(String, String)> {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&n.to_le_bytes());
    nonce[8..].copy_from_slice(&now_ms().to_le_bytes());
    let t = now_ms();
    let msg = device_proof::message("POST", path, &bytes, t, &nonce, token);
    let header = ProofHeader {
        time_ms: t,
        nonce,
        signature: device.sign(&msg).to_bytes(),
    }
    .encode();
    vec![
        ("authorization".into(), format!("Bearer {token}")),
        (device_proof::HEADER.into(), header),
    ]
}

fn main() {
    let iterations: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, attestation_ca_pem().unwrap()).unwrap();
        let a = hex::encode(VIRTUAL_KEY_AAGUID);
        let aaguid = format!("{}-{}-{}-{}-{}", &a[..8], &a[8..12], &a[12..16], &a[16..20], &a[20..]);
        let text = format!(
            "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{}?mode=rwc\"\n\
             [tls]\ncert = \"x\"\nkey = \"y\"\n[webauthn]\nrp_id = \"localhost\"\norigin = \"{ORIGIN}\"\n\
             attestation_ca = [\"{}\"]\nallowed_aaguids = [\"{aaguid}\"]\n",
            dir.path().join("b.db").display(),
            ca.display()
        );
        let config = Config::from_toml(&text, dir.path(), Vec::new()).unwrap();
        let (app, db, _) = paw_broker::server::app(&config, Arc::new(SystemClock)).await.unwrap();
        let (code, _) = paw_broker::identity::create_invite(&db, now_ms(), "bench", &[]).await.unwrap();

        let mut key = VirtualKey::generate().unwrap();
        let device = SigningKey::from_bytes(&[42u8; 32]);
        let device_pub = B64.encode(device.verifying_key().as_bytes());
        let start = send(&app, "/v1/enroll/start", &json!({"code": code, "device_public_key": device_pub}), &[]).await;
        let cdj = client_data("webauthn.create", start["options"]["publicKey"]["challenge"].as_str().unwrap(), None);
        let ao = key.make_credential("localhost", &Sha256::digest(&cdj).into(), VIRTUAL_KEY_AAGUID).unwrap();
        let id = B64.encode(key.credential_id());
        let cred = json!({"id": id, "rawId": id, "type": "public-key", "extensions": {}, "response": {
            "attestationObject": B64.encode(&ao), "clientDataJSON": B64.encode(&cdj), "transports": ["usb"]}});
        send(&app, "/v1/enroll/finish", &json!({"ceremony_id": start["ceremony_id"], "credential": cred, "name": "k"}), &[]).await;
        let ch = send(&app, "/v1/login/start", &json!({"user": "bench"}), &[]).await;
        let cred = assertion(&mut key, ch["challenge"].as_str().unwrap(), ch["action_hash"].as_str().unwrap());
        let tokens = send(&app, "/v1/login/finish", &json!({"challenge": ch["challenge"], "credential": cred, "device_public_key": device_pub}), &[]).await;
        let token = tokens["access_token"].as_str().unwrap().to_owned();

        let mut finish_latency = Vec::with_capacity(iterations);
        let started = Instant::now();
        for i in 0..iterations {
            let action = Action::Session { grant_id: format!("g{i}"), target: "db-1".into() };
            let body = json!({"action": action});
            let ch = send(&app, "/v1/stepup/start", &body, &authed(&device, &token, "/v1/stepup/start", &body, 2 * i as u64)).await;
            let cred = assertion(&mut key, ch["challenge"].as_str().unwrap(), ch["action_hash"].as_str().unwrap());
            let body = json!({"challenge": ch["challenge"], "action": action, "credential": cred});
            let headers = authed(&device, &token, "/v1/stepup/finish", &body, 2 * i as u64 + 1);
            let t = Instant::now();
            send(&app, "/v1/stepup/finish", &body, &headers).await;
            finish_latency.push(t.elapsed());
        }
        let total = started.elapsed();
        finish_latency.sort();
        let pct = |p: f64| -> Duration {
            let idx = ((finish_latency.len() as f64 - 1.0) * p).round() as usize;
            finish_latency[idx]
        };
        println!("step-up (start + finish), SQLite, in-process, {iterations} iterations");
        println!("  step-ups/s:            {:.1}", iterations as f64 / total.as_secs_f64());
        println!("  verifications/s:       {:.1}", iterations as f64 / finish_latency.iter().sum::<Duration>().as_secs_f64());
        println!("  finish latency p50:    {:?}", pct(0.50));
        println!("  finish latency p99:    {:?}", pct(0.99));
    });
}
