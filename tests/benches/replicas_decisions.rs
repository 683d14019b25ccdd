//! Elevation decisions per second across replicas (BENCHMARKS.md, issue #14): 1, 2 and 3 real
//! `pawd` processes on one real PostgreSQL, 100 approvers deciding at once over HTTPS.
//!
//! What one decision is, as in `crates/paw-broker/benches/elevation.rs` but over the network:
//! `POST /v1/requests/{id}/decide` over HTTPS to a `pawd` process (TLS, JSON, bearer token and
//! device proof, the approver's step-up verification with the counter compare-and-swap, then
//! the decision transaction: audit lock, checks, decision row, state change, two hash-linked
//! audit records, committed). The entitlement needs one approval, so every decision approves and
//! the grant becomes active.
//!
//! Each approver has a key and an HTTPS client of its own and sends its decisions one after
//! another (one security key does one thing at a time); all approvers send at once. Approver
//! `j`'s `k`-th decision goes to replica `(j + k) mod n`, so the approvers start spread
//! round-robin over the replicas and each moves on to the next replica with every decision. The
//! request it decides was made, and its step-up challenge issued, on the next replica
//! `(j + k + 1) mod n`: with two or three replicas a decision is always verified and committed
//! by another process than the one that took the request and issued the challenge. Requests,
//! challenges and the keys' signatures are made before the timed part (a challenge lives 5
//! minutes, far longer than a configuration takes); the timed part is the decisions only.
//!
//! One cluster for the whole run: replicas 0, 1 and 2 are started one after another and each
//! configuration measured as it comes up; everyone signs in again before each configuration (an
//! access token lives 15 minutes). The floor, on the same cluster in the same run, is
//! PostgreSQL's own commit rate at the same concurrency: `pgbench` with as many clients as there
//! are approvers, each committing one-row INSERTs one after another, measured before the first
//! replica starts and again after the last one stops (the cluster allows 100 connections and a
//! replica's pool holds up to 16, so it cannot run beside them). The cluster is the test one:
//! `fsync=off`, `synchronous_commit=off`, so a commit is no disk flush.
//!
//! `cargo bench -p paw-tests --bench replicas_decisions` (release `pawd`), or
//! `PAW_BENCH_TRIALS=1000 cargo test -p paw-tests --bench replicas_decisions` (debug `pawd`):
//! `PAW_BENCH_TRIALS` decisions per configuration (default 1000), 100 approvers. Without
//! either, as under `cargo test --benches`, a short check: 8 approvers, 16 decisions each
//! configuration, a 2-second floor.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use paw_proto::action::Action;
use paw_tests::replicas::Replicas;
use paw_tests::virtual_user::VirtualUser;
use serde_json::json;
use tokio::task::JoinSet;

/// Replicas in the last configuration (configurations 1..=MAX_REPLICAS).
const MAX_REPLICAS: usize = 3;
/// Requesters: the requests are made before the timed part, by several keys at once.
const DEVS: usize = 4;

struct Plan {
    approvers: usize,
    per_approver: usize,
    floor_secs: u32,
}

fn plan() -> Plan {
    let trials = std::env::var("PAW_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    let full = trials.is_some() || std::env::args().any(|a| a == "--bench");
    if full {
        let approvers = 100;
        Plan {
            approvers,
            per_approver: trials.unwrap_or(1000).div_ceil(approvers).max(1),
            floor_secs: 10,
        }
    } else {
        Plan {
            approvers: 8,
            per_approver: 2,
            floor_secs: 2,
        }
    }
}

fn policy(approvers: usize) -> String {
    let devs: Vec<String> = (0..DEVS).map(|i| format!("\"{}\"", dev(i))).collect();
    let aps: Vec<String> = (0..approvers)
        .map(|i| format!("\"{}\"", approver(i)))
        .collect();
    format!(
        r#"
[groups]
devs = [{}]
approvers = [{}]

[[entitlement]]
id = "bench-db"
description = "Benchmark database"
target_kind = "postgres"
target = "db-*"
role = "dba"
max_duration_secs = 3600
requesters = ["devs"]
approval = {{ required = 1, groups = ["approvers"] }}
"#,
        devs.join(", "),
        aps.join(", ")
    )
}

fn dev(i: usize) -> String {
    format!("dev{i}")
}

fn approver(i: usize) -> String {
    format!("ap{i:03}")
}

fn main() {
    let plan = plan();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(plan));
}

/// One configuration's figures.
struct Outcome {
    replicas: usize,
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    mean: Duration,
    max: Duration,
    n: usize,
    prepare: Duration,
}

async fn run(plan: Plan) {
    let started = Instant::now();
    let mut r = Replicas::start(0, &policy(plan.approvers)).await.unwrap();
    let before = floor(&r, plan.approvers, plan.floor_secs);

    let mut devs = Vec::new();
    let mut approvers = Vec::new();
    let mut outcomes = Vec::new();
    for n in 1..=MAX_REPLICAS {
        let i = r.add().unwrap();
        r.spawn(i).unwrap();
        r.wait_healthy(i).await.unwrap();
        if n == 1 {
            devs = enroll(&r, (0..DEVS).map(dev).collect()).await;
            approvers = enroll(&r, (0..plan.approvers).map(approver).collect()).await;
        }
        let o = configuration(&r, n, &mut devs, &mut approvers, plan.per_approver).await;
        println!(
            "replicas {n}, clients {:>3}: {:>6.1} decisions/s  p50 {:>7.1} ms  p99 {:>7.1} ms  \
             mean {:>7.1} ms  max {:>7.1} ms  (n={}, prepared in {:.1} s)",
            plan.approvers,
            o.per_sec,
            ms(o.p50),
            ms(o.p99),
            ms(o.mean),
            ms(o.max),
            o.n,
            o.prepare.as_secs_f64()
        );
        outcomes.push(o);
    }
    // Every decision of every configuration is on record, once.
    let decided = r
        .pg()
        .unwrap()
        .psql("SELECT count(*) FROM audit_log WHERE action = 'request_approval'")
        .unwrap();
    let total: usize = outcomes.iter().map(|o| o.n).sum();
    assert_eq!(decided.trim(), total.to_string(), "approval records");
    for i in 0..r.len() {
        let status = r.stop(i).await.unwrap();
        assert!(status.success(), "replica {i} exited with {status}");
    }
    let after = floor(&r, plan.approvers, plan.floor_secs);

    for (what, f) in [
        ("before the replicas", &before),
        ("after the replicas", &after),
    ] {
        println!(
            "floor {what}: PostgreSQL {:.0} commits/s (pgbench, {} clients, one-row INSERT per \
             transaction, {} s), p50 {:.2} ms, p99 {:.2} ms",
            f.per_sec,
            plan.approvers,
            plan.floor_secs,
            ms(f.p50),
            ms(f.p99)
        );
    }
    let floor_rate = (before.per_sec + after.per_sec) / 2.0;
    let floor_p50 = (before.p50 + after.p50) / 2;
    for o in &outcomes {
        println!(
            "replicas {}: {:.1} decisions/s = {:.2}% of the floor's commits/s (1/{:.0}); \
             p50 {:.0}x the floor's p50",
            o.replicas,
            o.per_sec,
            100.0 * o.per_sec / floor_rate.max(f64::MIN_POSITIVE),
            floor_rate / o.per_sec.max(f64::MIN_POSITIVE),
            ms(o.p50) / ms(floor_p50).max(0.001)
        );
    }
    println!("whole run {:.0} s", started.elapsed().as_secs_f64());
}

/// Invites `names`, enrolls and signs each in on replica 0, all at once.
async fn enroll(r: &Replicas, names: Vec<String>) -> Vec<VirtualUser> {
    // `pawd invite` is a process each: two at a time, one per core.
    let codes: Vec<String> = std::thread::scope(|s| {
        let (a, b) = names.split_at(names.len() / 2);
        let ha = s.spawn(|| {
            a.iter()
                .map(|n| r.invite(n, &[]).unwrap())
                .collect::<Vec<_>>()
        });
        let hb = s.spawn(|| {
            b.iter()
                .map(|n| r.invite(n, &[]).unwrap())
                .collect::<Vec<_>>()
        });
        let mut codes = ha.join().unwrap();
        codes.extend(hb.join().unwrap());
        codes
    });
    let url = r.url(0);
    let mut set = JoinSet::new();
    for (i, (name, code)) in names.iter().zip(codes).enumerate() {
        let mut user = r.user(name).unwrap();
        let url = url.clone();
        set.spawn(async move {
            user.enroll(&url, &code).await.unwrap();
            user.login(&url).await.unwrap();
            (i, user)
        });
    }
    let mut users: Vec<(usize, VirtualUser)> = set.join_all().await;
    users.sort_by_key(|(i, _)| *i);
    users.into_iter().map(|(_, u)| u).collect()
}

/// Signs everyone in again, spread over the replicas (fresh 15-minute access tokens).
async fn login_all(r: &Replicas, n: usize, users: &mut Vec<VirtualUser>) {
    let mut set = JoinSet::new();
    for (i, mut user) in users.drain(..).enumerate() {
        let url = r.url(i % n);
        set.spawn(async move {
            user.login(&url).await.unwrap();
            (i, user)
        });
    }
    let mut back: Vec<(usize, VirtualUser)> = set.join_all().await;
    back.sort_by_key(|(i, _)| *i);
    users.extend(back.into_iter().map(|(_, u)| u));
}

fn request(j: usize, k: usize) -> Action {
    Action::Request {
        entitlement: "bench-db".into(),
        target: format!("db-{j}-{k}"),
        role: "dba".into(),
        duration_secs: 600,
        justification: "benchmark request for a cross-replica decision".into(),
        ticket: None,
        start_at_ms: None,
    }
}

/// Where approver `j`'s `k`-th decision goes, and where its request and challenge were made.
fn decide_on(j: usize, k: usize, n: usize) -> (usize, usize) {
    let d = (j + k) % n;
    (d, (d + 1) % n)
}

/// Prepares and times `per_approver` decisions by each approver against the first `n` replicas.
async fn configuration(
    r: &Replicas,
    n: usize,
    devs: &mut Vec<VirtualUser>,
    approvers: &mut Vec<VirtualUser>,
    per_approver: usize,
) -> Outcome {
    let prepare = Instant::now();
    login_all(r, n, devs).await;
    login_all(r, n, approvers).await;
    let count = approvers.len();
    let urls: Vec<String> = (0..n).map(|i| r.url(i)).collect();

    // The pending requests: dev `j mod DEVS` makes approver j's, on the replica after the one
    // the decision will go to. ids[j][k].
    let mut set = JoinSet::new();
    for (d, mut user) in devs.drain(..).enumerate() {
        let urls = urls.clone();
        set.spawn(async move {
            let mut made = Vec::new();
            for j in (d..count).step_by(DEVS) {
                for k in 0..per_approver {
                    let (_, on) = decide_on(j, k, n);
                    let res = user
                        .signed(&urls[on], "/v1/requests", &request(j, k))
                        .await
                        .unwrap();
                    let v = res.ok().unwrap();
                    assert_eq!(v["state"], "pending", "{v}");
                    made.push((j, k, v["id"].as_str().unwrap().to_owned()));
                }
            }
            (d, user, made)
        });
    }
    let mut ids = vec![vec![String::new(); per_approver]; count];
    let mut back = set.join_all().await;
    back.sort_by_key(|(d, _, _)| *d);
    for (_, user, made) in back {
        devs.push(user);
        for (j, k, id) in made {
            ids[j][k] = id;
        }
    }

    // Each approver's signed decisions, in its key's counter order: challenge issued by the
    // request's replica, decision addressed to the other one.
    let mut set = JoinSet::new();
    for (j, (mut user, ids)) in approvers.drain(..).zip(ids).enumerate() {
        let urls = urls.clone();
        set.spawn(async move {
            let mut batch = Vec::with_capacity(ids.len());
            for (k, id) in ids.into_iter().enumerate() {
                let (to, issued_on) = decide_on(j, k, n);
                let action = Action::Approve {
                    request_id: id.clone(),
                    approve: true,
                    comment: "ok".into(),
                };
                let start = user.stepup_start(&urls[issued_on], &action).await.unwrap();
                let answer = user.stepup_answer(&start, &action).unwrap();
                batch.push((
                    urls[to].clone(),
                    format!("/v1/requests/{id}/decide"),
                    json!({ "stepup": answer }),
                ));
            }
            (j, user, batch)
        });
    }
    let mut prepared = set.join_all().await;
    prepared.sort_by_key(|(j, _, _)| *j);
    let prepare = prepare.elapsed();

    // The timed part: every approver sends its decisions, one after another, all at once.
    let started = Instant::now();
    let mut set = JoinSet::new();
    for (j, user, batch) in prepared {
        set.spawn(async move {
            let mut lat = Vec::with_capacity(batch.len());
            for (url, path, body) in batch {
                let t = Instant::now();
                let res = user
                    .call(&url, "POST", &path, Some(&body))
                    .await
                    .unwrap_or_else(|e| panic!("{url}{path}: {e:#}"));
                lat.push(t.elapsed());
                assert_eq!(res.status, 200, "{url}{path}: {}", res.body);
                assert_eq!(res.body["state"], "active", "{}", res.body);
            }
            (j, user, lat)
        });
    }
    let mut done: Vec<(usize, VirtualUser, Vec<Duration>)> = set.join_all().await;
    let wall = started.elapsed();
    done.sort_by_key(|(j, _, _)| *j);
    let mut lat = Vec::new();
    for (_, user, l) in done {
        approvers.push(user);
        lat.extend(l);
    }
    let (p50, p99, mean, max) = percentiles(&mut lat);
    Outcome {
        replicas: n,
        per_sec: lat.len() as f64 / wall.as_secs_f64(),
        p50,
        p99,
        mean,
        max,
        n: lat.len(),
        prepare,
    }
}

/// PostgreSQL's commit rate on the replicas' cluster: `pgbench` with `clients` connections,
/// each committing one-row INSERTs one after another for `secs` seconds.
struct Floor {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn floor(r: &Replicas, clients: usize, secs: u32) -> Floor {
    let pg = r.pg().unwrap();
    pg.psql(
        "CREATE TABLE IF NOT EXISTS bench_floor \
         (id BIGSERIAL PRIMARY KEY, client INT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("floor.sql");
    std::fs::write(
        &script,
        "INSERT INTO bench_floor (client) VALUES (:client_id);\n",
    )
    .unwrap();
    let url = pg.url();
    // postgres://paw:PASSWORD@127.0.0.1:PORT/DB
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(cred, _)| cred.split_once(':'))
        .map(|(_, p)| p.to_owned())
        .unwrap();
    let out = Command::new(pgbench())
        .current_dir(dir.path())
        .env("PGPASSWORD", password)
        .args(["-n", "-l", "-j", "2"])
        .args(["-c", &clients.to_string(), "-T", &secs.to_string()])
        .args(["-h", "127.0.0.1", "-p", &pg.port().to_string(), "-U", "paw"])
        .arg("-f")
        .arg(&script)
        .arg(pg.database())
        .output()
        .expect("running pgbench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "tps = 1234.567890 (without initial connection time)"
    let per_sec = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench's output: {stdout}"));
    // The per-transaction logs: "client_id transaction_no time_us script_no epoch epoch_us".
    let mut lat = Vec::new();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let path = e.unwrap().path();
        if !path
            .file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with("pgbench_log"))
        {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            if let Some(us) = line
                .split_whitespace()
                .nth(2)
                .and_then(|v| v.parse::<u64>().ok())
            {
                lat.push(Duration::from_micros(us));
            }
        }
    }
    assert!(!lat.is_empty(), "no pgbench transaction log");
    let (p50, p99, _, _) = percentiles(&mut lat);
    Floor { per_sec, p50, p99 }
}

/// `pgbench` next to the server binaries the harness uses (`PAW_TEST_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`), else from `PATH`.
fn pgbench() -> PathBuf {
    if let Some(dir) = std::env::var_os(paw_tests::postgres::PG_BIN_ENV) {
        return PathBuf::from(dir).join("pgbench");
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                    let p = e.path().join("bin/pgbench");
                    p.is_file().then_some((v, p))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
        .pop()
        .map_or_else(|| PathBuf::from("pgbench"), |(_, p)| p)
}

/// p50, p99, mean and max of `v` (sorted in place).
fn percentiles(v: &mut [Duration]) -> (Duration, Duration, Duration, Duration) {
    v.sort();
    let pct = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
    let mean = v.iter().sum::<Duration>() / u32::try_from(v.len()).unwrap_or(u32::MAX);
    (pct(0.50), pct(0.99), mean, *v.last().unwrap())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
