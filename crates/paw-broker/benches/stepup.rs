//! Step-up verification with criterion (BENCHMARKS.md, issue #3).
//!
//! In-process broker on SQLite in a temp dir, the INSECURE virtual key as the authenticator.
//! Setup enrolls one user and logs in through the router, as a client would.
//!
//! Group `stepup`:
//! - `verify`: the verification `POST /v1/stepup/finish` runs, called as the library function
//!   the handler calls ([`paw_broker::identity::stepup::verify_any`]): consume the challenge, check
//!   expiry, purpose, user and action hash, verify the assertion (origin, RP ID, UP/UV,
//!   signature, allowCredentials), advance the counter with a compare-and-swap, reset the
//!   failure count. No HTTP, no bearer-token or device-proof check. The challenge is issued and
//!   the key signs outside the timed region.
//! - `finish_router`: the whole `POST /v1/stepup/finish` through the router with
//!   `tower::ServiceExt::oneshot` (no socket, no TLS): JSON, bearer token and device proof, then
//!   the same verification. Request building and signing are outside the timed region.
//! - `start_finish`: a whole step-up through the router, `POST /v1/stepup/start` then
//!   `POST /v1/stepup/finish`; only the broker's two requests are timed, not the key's signature
//!   nor the client's device proofs.
//!
//! Criterion reports time per iteration and, with `Throughput::Elements(1)`, verifications per
//! second. It does not report percentiles, so after the group a plain timed loop of `verify`
//! and of `finish_router` prints p50/p99/mean and 1/mean.
//!
//! `cargo bench -p paw-broker --bench stepup` (criterion filters and options after `--`).
//! Under `cargo test --benches` criterion runs each benchmark once and the loops are short.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use criterion::{Criterion, Throughput};
use ed25519_dalek::{Signer, SigningKey};
use paw_broker::base::clock::SystemClock;
use paw_broker::config::Config;
use paw_broker::http::AppState;
use paw_fido::attestation::{attestation_ca_pem, VIRTUAL_KEY_AAGUID};
use paw_fido::VirtualKey;
use paw_proto::action::Action;
use paw_proto::device_proof::{self, ProofHeader};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::runtime::Runtime;
use tower::ServiceExt;

const ORIGIN: &str = "https://localhost:8443";
/// Iterations of the percentile loops (`cargo bench`); 5 under `cargo test --benches`.
const LOOP_ITERATIONS: usize = 500;

/// One enrolled, logged-in user and everything needed to step up as them.
struct Bench {
    _dir: tempfile::TempDir,
    app: Router,
    state: AppState,
    user_id: String,
    key: VirtualKey,
    device: SigningKey,
    token: String,
    /// Device-proof nonces must not repeat.
    nonce: u64,
    /// Distinct actions, so every challenge is for a new grant.
    action: u64,
}

/// A prepared `POST /v1/stepup/finish`: what the library call and the request need.
struct Finish {
    challenge: String,
    action: Action,
    credential: Value,
    body: Value,
    headers: Vec<(String, String)>,
}

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

impl Bench {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, attestation_ca_pem().unwrap()).unwrap();
        let a = hex::encode(VIRTUAL_KEY_AAGUID);
        let aaguid = format!(
            "{}-{}-{}-{}-{}",
            &a[..8],
            &a[8..12],
            &a[12..16],
            &a[16..20],
            &a[20..]
        );
        let text = format!(
            "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{}?mode=rwc\"\n\
             [tls]\ncert = \"x\"\nkey = \"y\"\n[webauthn]\nrp_id = \"localhost\"\norigin = \"{ORIGIN}\"\n\
             attestation_ca = [\"{}\"]\nallowed_aaguids = [\"{aaguid}\"]\n",
            dir.path().join("b.db").display(),
            ca.display()
        );
        let config = Config::from_toml(&text, dir.path(), Vec::new()).unwrap();
        let built = paw_broker::server::app(&config, Arc::new(SystemClock))
            .await
            .unwrap();
        // The same state the router holds.
        let (app, db, state) = (built.router, built.db, built.state);
        let (code, _) = paw_broker::identity::create_invite(&db, now_ms(), "bench", &[])
            .await
            .unwrap();

        let mut key = VirtualKey::generate().unwrap();
        let device = SigningKey::from_bytes(&[42u8; 32]);
        let device_pub = B64.encode(device.verifying_key().as_bytes());
        let start = send(
            &app,
            "/v1/enroll/start",
            &json!({"code": code, "device_public_key": device_pub}),
            &[],
        )
        .await;
        let cdj = client_data(
            "webauthn.create",
            start["options"]["publicKey"]["challenge"].as_str().unwrap(),
            None,
        );
        let ao = key
            .make_credential(
                "localhost",
                &Sha256::digest(&cdj).into(),
                VIRTUAL_KEY_AAGUID,
            )
            .unwrap();
        let id = B64.encode(key.credential_id());
        let cred = json!({"id": id, "rawId": id, "type": "public-key", "extensions": {}, "response": {
            "attestationObject": B64.encode(&ao), "clientDataJSON": B64.encode(&cdj), "transports": ["usb"]}});
        send(
            &app,
            "/v1/enroll/finish",
            &json!({"ceremony_id": start["ceremony_id"], "credential": cred, "name": "k"}),
            &[],
        )
        .await;
        let ch = send(&app, "/v1/login/start", &json!({"user": "bench"}), &[]).await;
        let cred = assertion(
            &mut key,
            ch["challenge"].as_str().unwrap(),
            ch["action_hash"].as_str().unwrap(),
        );
        let tokens = send(
            &app,
            "/v1/login/finish",
            &json!({"challenge": ch["challenge"], "credential": cred, "device_public_key": device_pub}),
            &[],
        )
        .await;
        let token = tokens["access_token"].as_str().unwrap().to_owned();
        let user_id = paw_broker::identity::user_by_name(&db, "bench")
            .await
            .unwrap()
            .unwrap()
            .id;
        Bench {
            _dir: dir,
            app,
            state,
            user_id,
            key,
            device,
            token,
            nonce: 0,
            action: 0,
        }
    }

    /// Bearer token and device proof for one request, as paw-client sends them.
    fn authed(&mut self, path: &str, body: &Value) -> Vec<(String, String)> {
        self.nonce += 1;
        let bytes = serde_json::to_vec(body).unwrap();
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&self.nonce.to_le_bytes());
        nonce[8..].copy_from_slice(&now_ms().to_le_bytes());
        let t = now_ms();
        let msg = device_proof::message("POST", path, &bytes, t, &nonce, &self.token);
        let header = ProofHeader {
            time_ms: t,
            nonce,
            signature: self.device.sign(&msg).to_bytes(),
        }
        .encode();
        vec![
            ("authorization".into(), format!("Bearer {}", self.token)),
            (device_proof::HEADER.into(), header),
        ]
    }

    fn next_action(&mut self) -> Action {
        self.action += 1;
        Action::Session {
            grant_id: format!("g{}", self.action),
            target: "db-1".into(),
        }
    }

    /// The key's answer to a challenge, and the finish request carrying it.
    fn answer(&mut self, challenge: String, action_hash: &str, action: Action) -> Finish {
        let credential = assertion(&mut self.key, &challenge, action_hash);
        let body = json!({"challenge": challenge, "action": action, "credential": credential});
        let headers = self.authed("/v1/stepup/finish", &body);
        Finish {
            challenge,
            action,
            credential,
            body,
            headers,
        }
    }

    /// A challenge issued by the library (untimed setup for `verify`) and the key's answer.
    async fn prepared(&mut self) -> Finish {
        let action = self.next_action();
        let ch =
            paw_broker::identity::stepup::start_for(&self.state.identity, &self.user_id, &action)
                .await
                .unwrap();
        self.answer(ch.challenge, &ch.action_hash, action)
    }

    /// The verification alone, as the `/v1/stepup/finish` handler calls it.
    async fn verify(&self, f: &Finish) -> Duration {
        let t = Instant::now();
        let hash = paw_broker::identity::stepup::verify_any(
            &self.state.identity,
            &self.user_id,
            &f.challenge,
            &f.action,
            &f.credential,
        )
        .await
        .unwrap();
        let d = t.elapsed();
        black_box(hash);
        d
    }

    /// `POST /v1/stepup/finish` through the router.
    async fn finish_router(&self, f: &Finish) -> Duration {
        let t = Instant::now();
        let v = send(&self.app, "/v1/stepup/finish", &f.body, &f.headers).await;
        let d = t.elapsed();
        black_box(v);
        d
    }

    /// `POST /v1/stepup/start` + `POST /v1/stepup/finish` through the router; the key's
    /// signature and the client's device proofs are not timed.
    async fn start_finish(&mut self) -> Duration {
        let action = self.next_action();
        let body = json!({"action": action});
        let headers = self.authed("/v1/stepup/start", &body);
        let t = Instant::now();
        let ch = send(&self.app, "/v1/stepup/start", &body, &headers).await;
        let start = t.elapsed();
        let f = self.answer(
            ch["challenge"].as_str().unwrap().to_owned(),
            ch["action_hash"].as_str().unwrap(),
            action,
        );
        start + self.finish_router(&f).await
    }
}

fn percentiles(name: &str, mut lat: Vec<Duration>) {
    lat.sort();
    let n = lat.len();
    let pct = |p: f64| lat[(((n - 1) as f64) * p).round() as usize];
    let mean = lat.iter().sum::<Duration>() / u32::try_from(n).unwrap();
    println!(
        "stepup/{name}: {n} iterations: p50 {:.3} ms, p99 {:.3} ms, mean {:.3} ms, \
         max {:.3} ms, 1/mean {:.0}/s",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
        lat[n - 1].as_secs_f64() * 1e3,
        1.0 / mean.as_secs_f64(),
    );
}

fn bench(c: &mut Criterion, rt: &Runtime, b: &mut Bench) {
    let mut g = c.benchmark_group("stepup");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("verify", |bencher| {
        bencher.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let f = b.prepared().await;
                    total += b.verify(&f).await;
                }
                total
            })
        })
    });
    g.bench_function("finish_router", |bencher| {
        bencher.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let f = b.prepared().await;
                    total += b.finish_router(&f).await;
                }
                total
            })
        })
    });
    g.bench_function("start_finish", |bencher| {
        bencher.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += b.start_finish().await;
                }
                total
            })
        })
    });
    g.finish();
}

fn main() {
    // `cargo bench` passes `--bench`; without it (cargo test --benches) criterion runs each
    // benchmark once, and the loops below stay short.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut b = rt.block_on(Bench::new());

    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &rt, &mut b);
    c.final_summary();

    let n = if bench_mode { LOOP_ITERATIONS } else { 5 };
    let (verify, router) = rt.block_on(async {
        let mut verify = Vec::with_capacity(n);
        let mut router = Vec::with_capacity(n);
        for _ in 0..n {
            let f = b.prepared().await;
            verify.push(b.verify(&f).await);
            let f = b.prepared().await;
            router.push(b.finish_router(&f).await);
        }
        (verify, router)
    });
    percentiles("verify", verify);
    percentiles("finish_router", router);
    // A success resets the failure count; nothing here may have counted as a failure.
    let user = rt
        .block_on(paw_broker::identity::user_by_id(&b.state.db, &b.user_id))
        .unwrap()
        .unwrap();
    assert!(!user.locked && user.failed_attempts == 0, "{user:?}");
}
