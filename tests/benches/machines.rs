//! What machine identities cost (BENCHMARKS.md, issue #16).
//!
//! One real `pawd` (SQLite, the `replicas` harness), one real OpenSSH sshd and a local OIDC
//! issuer. Figures:
//! 1. **A pipeline step end to end**: log in, request an auto-approved entitlement, redeem a
//!    session and run `true` on `web-1` through the broker, closed — as `pawctl login`,
//!    `request`, `exec` do in a pipeline, in one process. Two paths, a key machine (challenge
//!    signed by its key) and a workload-token machine (a fresh token each run, minted before the
//!    clock starts), against the floor: the stock `ssh -T root@web-1 true` straight to the same
//!    sshd with a key certified by the broker's user CA (a process per run, as a pipeline's
//!    `ssh` step is). Paths interleave run by run; p50, p99 and the ratio of p50s.
//! 2. **The inventory with 10,000 machines**: `GET /v1/machines` as an administrator (every
//!    machine with its keys, open grants and flags), against the floor: the same rows read by
//!    one `SELECT` over the machines joined to their users, from this process, on the same
//!    database file.
//!
//! `cargo xtask bench machines` (release `pawd` with the `virtual-key` feature), or
//! `PAW_TEST_PAWD=… cargo bench -p paw-tests --bench machines`. `PAW_BENCH_RUNS` (default 100)
//! and `PAW_BENCH_MACHINES` (default 10,000). Without `--bench`, as under `cargo test
//! --benches`, a short check with tiny sizes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use paw_client::machine::{self, MachineKey, MachineSession};
use paw_client::BrokerClient;
use paw_proto::action::Action;
use paw_proto::machine::{MachineAuth, MachineSpec};
use paw_tests::bench::{direct_key, loadavg, ms, pct, ssh_command};
use paw_tests::oidc::{github_claims, TestIssuer};
use paw_tests::replicas::{Options, Replicas, Store, SSH_TARGET};
use paw_tests::virtual_user::VirtualUser;
use serde_json::{json, Value};

const PAWD: usize = 0;
const AUDIENCE: &str = "https://paw.bench";

struct Sizes {
    runs: usize,
    machines: usize,
    reads: usize,
}

fn sizes() -> Sizes {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    if std::env::args().any(|a| a == "--bench") || env("PAW_BENCH_RUNS").is_some() {
        Sizes {
            runs: env("PAW_BENCH_RUNS").unwrap_or(100).max(2),
            machines: env("PAW_BENCH_MACHINES").unwrap_or(10_000),
            reads: 20,
        }
    } else {
        Sizes {
            runs: 3,
            machines: 50,
            reads: 2,
        }
    }
}

fn main() {
    let s = sizes();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(s));
}

fn policy(issuer: &TestIssuer) -> String {
    format!(
        r#"
[[machines.oidc_issuer]]
issuer = "{}"
jwks_url = "{}"
audience = "{AUDIENCE}"
algorithm = "ES256"

[groups]
deployers = ["ci-key", "ci-oidc"]

[[entitlement]]
id = "web-deploy"
description = "Deploy on the web servers"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["deployers"]
approval = "auto"
max_sessions = 16
"#,
        issuer.issuer(),
        issuer.jwks_url()
    )
}

fn broker(r: &Replicas) -> BrokerClient {
    let ca = paw_client::load_ca(&r.ca_path()).unwrap();
    BrokerClient::new(&[r.url(PAWD)], &ca.der).unwrap()
}

async fn create(r: &Replicas, admin: &mut VirtualUser, spec: &MachineSpec) -> Value {
    let action = Action::ManageMachine {
        operation: "create".into(),
        machine: spec.name.clone(),
        owner: spec.owner.clone(),
        spec_sha256: spec.sha256(),
    };
    let base = r.url(PAWD);
    let start = admin.stepup_start(&base, &action).await.unwrap();
    let answer = admin.stepup_answer(&start, &action).unwrap();
    let body =
        json!({"spec": spec, "challenge": answer["challenge"], "credential": answer["credential"]});
    admin
        .call(&base, "POST", "/v1/machines", Some(&body))
        .await
        .unwrap()
        .ok()
        .unwrap()
}

fn spec(name: &str, auth: MachineAuth) -> MachineSpec {
    MachineSpec {
        name: name.into(),
        owner: "ada".into(),
        backup_owner: None,
        purpose: "bench".into(),
        environment: "prod".into(),
        expires_at_ms: None,
        labels: Default::default(),
        auth,
        sources: vec![],
    }
}

/// One pipeline step through paw: request, redeem, exec `true`, sign out.
async fn step(s: MachineSession) {
    let grant = s
        .request(Action::Request {
            entitlement: "web-deploy".into(),
            target: SSH_TARGET.into(),
            role: "root".into(),
            duration_secs: 300,
            justification: "bench deploy".into(),
            ticket: None,
            start_at_ms: None,
        })
        .await
        .unwrap();
    assert_eq!(grant.state, "active");
    let redeemed = s.redeem(&grant).await.unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let done = machine::exec(&redeemed, "true", &mut out, &mut err)
        .await
        .unwrap();
    assert_eq!(
        done.exit_status,
        Some(0),
        "{}",
        String::from_utf8_lossy(&err)
    );
    s.sign_out().await.unwrap();
}

async fn run(s: Sizes) {
    let started = Instant::now();
    let issuer = TestIssuer::start("ES256").await.unwrap();
    let r = Replicas::start_with(Options {
        replicas: 1,
        store: Store::Sqlite,
        sshd: true,
        extra_config: policy(&issuer),
    })
    .await
    .unwrap();
    let mut admin = r.enrolled("root-admin", &["admin"], PAWD).await.unwrap();
    r.enrolled("ada", &[], PAWD).await.unwrap();
    let created = create(&r, &mut admin, &spec("ci-key", MachineAuth::Key)).await;
    let key = MachineKey::generate().unwrap();
    machine::join(
        &broker(&r),
        "ci-key",
        created["join_token"].as_str().unwrap(),
        &key,
    )
    .await
    .unwrap();
    let seed = *key.seed().expose();
    let claims = [
        ("repository".to_owned(), "org/app".to_owned()),
        ("ref".to_owned(), "refs/heads/main".to_owned()),
    ];
    create(
        &r,
        &mut admin,
        &spec(
            "ci-oidc",
            MachineAuth::Oidc {
                issuer: issuer.issuer(),
                claims: claims.into(),
            },
        ),
    )
    .await;
    let (_keys, direct) = direct_key(&r);
    eprintln!(
        "set up in {:.1} s; load {}",
        started.elapsed().as_secs_f64(),
        loadavg()
    );

    // 1. A pipeline step, three paths interleaved.
    let mut times: [Vec<Duration>; 3] = Default::default();
    for i in 0..s.runs + 1 {
        let t = Instant::now();
        let session =
            MachineSession::login(broker(&r), "ci-key", MachineKey::from_seed(&seed).unwrap())
                .await
                .unwrap();
        step(session).await;
        let key_path = t.elapsed();

        let token = issuer.mint(github_claims(AUDIENCE, "org/app", "refs/heads/main"));
        let t = Instant::now();
        let session = MachineSession::workload_login(broker(&r), &token)
            .await
            .unwrap();
        step(session).await;
        let oidc_path = t.elapsed();

        let t = Instant::now();
        let out = ssh_command(&r, &direct, false, Some("true"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let floor = t.elapsed();
        // The first round warms caches and connections: not counted.
        if i > 0 {
            times[0].push(floor);
            times[1].push(key_path);
            times[2].push(oidc_path);
        }
    }
    let [floor, key_path, oidc_path] = &mut times;
    let floor50 = pct(floor, 50);
    println!(
        "\n## Machine pipeline step ({} runs, load {})\n\n| path | p50 ms | p99 ms | p50 ratio to floor |\n|---|---|---|---|",
        s.runs,
        loadavg()
    );
    for (name, v) in [
        ("floor: direct `ssh -T root@web-1 true`", &mut *floor),
        (
            "key machine: login + request + exec `true` + sign-out",
            &mut *key_path,
        ),
        ("workload-token machine: the same", &mut *oidc_path),
    ] {
        let p50 = pct(v, 50);
        println!(
            "| {name} | {:.1} | {:.1} | {:.2}× |",
            ms(p50),
            ms(pct(v, 99)),
            p50.as_secs_f64() / floor50.as_secs_f64()
        );
    }

    // 2. The inventory with many machines: rows written straight into the broker's database
    // (creating 10,000 through the API would take an admin's step-up each).
    let url = format!("sqlite://{}/pawd.db", r.broker_dir().display());
    let db = paw_broker::store::Db::connect(
        &paw_broker::config::DatabaseUrl::new(url),
        paw_broker::store::Create::Never,
    )
    .await
    .unwrap();
    let paw_broker::store::Db::Sqlite(pool) = &db else {
        panic!("the bench runs on SQLite")
    };
    let owner: String = sqlx::query_scalar("SELECT id FROM users WHERE name = 'ada'")
        .fetch_one(pool)
        .await
        .unwrap();
    let t = Instant::now();
    // Batches of 200: one long write transaction would keep the broker's lease heartbeat
    // from the database for seconds, and the broker then fails closed (I5).
    let mut tx = pool.begin().await.unwrap();
    for i in 0..s.machines {
        if i % 200 == 199 {
            tx.commit().await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            tx = pool.begin().await.unwrap();
        }
        let id = format!("00000000-0000-4000-8000-{i:012}");
        sqlx::query("INSERT INTO users (id, name, roles, created_at, kind) VALUES ($1, $2, '[]', 0, 'machine')")
            .bind(&id)
            .bind(format!("fleet-{i:05}"))
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO machines (user_id, owner_id, purpose, environment, labels, auth_kind, \
             oidc_claims, sources, spec_sha256, created_at, last_used_at, last_source) \
             VALUES ($1, $2, 'fleet', $3, '{\"team\":\"web\"}', 'key', '{}', '[]', 'x', 0, $4, '10.0.0.1')",
        )
        .bind(&id)
        .bind(&owner)
        .bind(if i % 2 == 0 { "prod" } else { "staging" })
        .bind(if i % 3 == 0 { None } else { Some(1_000_i64) })
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query("INSERT INTO machine_keys (public_key, machine_id, source, created_at) VALUES ($1, $2, 'key', 0)")
            .bind(format!("key-{i}"))
            .bind(&id)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    eprintln!(
        "{} machines written in {:.1} s",
        s.machines,
        t.elapsed().as_secs_f64()
    );

    // The broker must have its lease again before the clock starts.
    let deadline = Instant::now() + Duration::from_secs(15);
    while admin
        .call(&r.url(PAWD), "GET", "/v1/machines", None)
        .await
        .unwrap()
        .status
        != 200
    {
        assert!(Instant::now() < deadline, "the broker did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut api = Vec::new();
    let mut raw = Vec::new();
    let mut flagged = 0;
    for _ in 0..s.reads + 1 {
        let t = Instant::now();
        let v = admin
            .call(&r.url(PAWD), "GET", "/v1/machines", None)
            .await
            .unwrap()
            .ok()
            .unwrap();
        api.push(t.elapsed());
        let n = v["machines"].as_array().unwrap().len();
        assert_eq!(n, s.machines + 2);
        flagged = v["machines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| !m["flags"].as_array().unwrap().is_empty())
            .count();
        let t = Instant::now();
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT u.name, m.environment, o.name FROM machines m JOIN users u ON u.id = m.user_id \
             LEFT JOIN users o ON o.id = m.owner_id ORDER BY u.name",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        raw.push(t.elapsed());
        assert_eq!(rows.len(), s.machines + 2);
    }
    api.remove(0);
    raw.remove(0);
    let (a, f) = (pct(&mut api, 50), pct(&mut raw, 50));
    println!(
        "\n## Inventory of {} machines ({} reads, {flagged} flagged)\n\n| path | p50 ms | p99 ms | ratio |\n|---|---|---|---|\n| floor: one SELECT of the rows | {:.1} | {:.1} | 1.00× |\n| `GET /v1/machines` (keys, grants, flags, JSON, TLS) | {:.1} | {:.1} | {:.1}× |",
        s.machines,
        s.reads,
        ms(f),
        ms(pct(&mut raw, 99)),
        ms(a),
        ms(pct(&mut api, 99)),
        a.as_secs_f64() / f.as_secs_f64()
    );
    db.close().await;
}
