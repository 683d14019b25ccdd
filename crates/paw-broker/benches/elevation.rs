//! Elevation decisions per second, with their audit records durably committed, and latency
//! percentiles, at 1, 10 and 100 concurrent approvers, on SQLite and on PostgreSQL
//! (BENCHMARKS.md, issue #4). A bench binary, not criterion: the figure is a throughput under
//! concurrency, which criterion's one-at-a-time loop does not measure.
//!
//! What one decision is: `POST /v1/requests/{id}/decide` through the router in-process
//! (`tower::ServiceExt::oneshot`, no socket or TLS): JSON, bearer token and device proof, the
//! approver's step-up verification (WebAuthn assertion, counter compare-and-swap), then the
//! decision transaction — audit lock, checks, decision row, state change to approved, two
//! hash-linked audit records — committed (SQLite WAL with synchronous=FULL; PostgreSQL is the
//! test cluster of `paw_tests::postgres::TempPostgres`, which runs with fsync=off and
//! synchronous_commit=off: its commits are not durable, and its figures flatter PostgreSQL
//! against SQLite). The entitlement needs one approval, so every decision
//! approves. Requests, challenges and the keys' signatures are made before the timed part;
//! each approver has a key of its own and sends its decisions in order (one security key does
//! one thing at a time).
//!
//! `cargo bench -p paw-broker --bench elevation` (PostgreSQL from Debian's packages, started by
//! the bench in a temporary directory). `PAW_BENCH_DECISIONS` overrides the decisions per run.
//! Under `cargo test --benches` it runs a few decisions per configuration only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/idp.rs"]
mod idp;

use std::sync::Arc;
use std::time::{Duration, Instant};

use idp::{Broker, Client, Tweak};
use paw_proto::action::Action;
use reqwest::StatusCode;
use serde_json::{json, Value};

const LEVELS: [usize; 3] = [1, 10, 100];

fn policy(approvers: usize) -> String {
    let list: Vec<String> = (0..approvers).map(|i| format!("\"ap{i:03}\"")).collect();
    format!(
        r#"
[groups]
devs = ["dev"]
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
        list.join(", ")
    )
}

fn request(n: usize) -> Action {
    Action::Request {
        entitlement: "bench-db".into(),
        target: format!("db-{n}"),
        role: "dba".into(),
        duration_secs: 600,
        justification: "benchmark request for a decision".into(),
        ticket: None,
        start_at_ms: None,
    }
}

fn decisions_per_level(level: usize) -> usize {
    if let Some(n) = std::env::var("PAW_BENCH_DECISIONS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        return n.max(level);
    }
    if std::env::args().any(|a| a == "--bench") {
        (level * 20).max(400)
    } else {
        level * 2
    }
}

struct Outcome {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    mean: Duration,
    n: usize,
}

async fn run(b: Arc<Broker>, dev: &mut Client, approvers: &mut [Client], total: usize) -> Outcome {
    let level = approvers.len();
    let per_approver = total / level;
    // Prepare: pending requests, and each approver's signed decisions, in its counter order.
    let mut batches: Vec<(idp::Caller, Vec<(String, Value)>)> = Vec::new();
    let mut n = 0;
    for ap in approvers.iter_mut() {
        let mut batch = Vec::with_capacity(per_approver);
        for _ in 0..per_approver {
            let body = dev.stepup(&b, &request(n), &Tweak::default()).await;
            n += 1;
            let (s, v) = dev
                .call(&b, "POST", "/v1/requests", Some(&json!({ "stepup": body })))
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let id = v["id"].as_str().unwrap().to_owned();
            let action = Action::Approve {
                request_id: id.clone(),
                approve: true,
                comment: "ok".into(),
            };
            let stepup = ap.stepup(&b, &action, &Tweak::default()).await;
            batch.push((
                format!("/v1/requests/{id}/decide"),
                json!({ "stepup": stepup }),
            ));
        }
        batches.push((ap.caller(), batch));
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (caller, batch) in batches {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(batch.len());
            for (path, body) in batch {
                let t = Instant::now();
                let (s, v) = caller.call(&b, "POST", &path, Some(&body)).await;
                lat.push(t.elapsed());
                assert_eq!(s, StatusCode::OK, "{v}");
                assert_eq!(v["state"], "active");
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let wall = started.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    let mean = lat.iter().sum::<Duration>() / u32::try_from(lat.len()).unwrap();
    Outcome {
        per_sec: lat.len() as f64 / wall.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        mean,
        n: lat.len(),
    }
}

/// One configuration: a fresh broker on `url` (a temporary SQLite file if `None`), `level`
/// approvers deciding at once.
async fn bench_one(name: &str, url: Option<String>, level: usize) {
    let b = Arc::new(Broker::start_raw(url, &policy(level)).await);
    let mut dev = b.enrolled_as("dev", &[]).await;
    let mut approvers = Vec::with_capacity(level);
    for i in 0..level {
        approvers.push(b.enrolled_as(&format!("ap{i:03}"), &[]).await);
    }
    let o = run(
        b.clone(),
        &mut dev,
        &mut approvers,
        decisions_per_level(level),
    )
    .await;
    // Every decision's records are in the log and the chain holds.
    paw_broker::audit::verify(&b.db).await.unwrap();
    println!(
        "{name:<8} clients {level:>3}: {:>6.0} decisions/s  p50 {:>7.2} ms  p99 {:>7.2} ms  mean {:>7.2} ms  (n={})",
        o.per_sec,
        o.p50.as_secs_f64() * 1e3,
        o.p99.as_secs_f64() * 1e3,
        o.mean.as_secs_f64() * 1e3,
        o.n
    );
    b.db.close().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for level in LEVELS {
            bench_one("sqlite", None, level).await;
        }
        let pg = paw_tests::postgres::TempPostgres::start().unwrap();
        for level in LEVELS {
            let url = pg.create_database(&format!("bench{level}")).unwrap();
            bench_one("postgres", Some(url), level).await;
        }
    });
}
