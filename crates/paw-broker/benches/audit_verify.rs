//! `pawd audit verify` on a large log (issue #20 item 4): the broker's own chain, read from its
//! SQLite database, verified by [`paw_broker::audit::verify`] (ranges on every core, joined at
//! the seams), against raw SHA-256 over the same records' hash inputs measured in the same
//! run, printed as a ratio.
//!
//! `cargo bench -p paw-broker --bench audit_verify` runs 1,000,000 records;
//! `PAW_AUDIT_BENCH_RECORDS` overrides that, and under `cargo test --benches` (no `--bench`) it
//! runs 2,000 so the bench is built and exercised without taking minutes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use paw_audit::{canonical, Chain, Event, Outcome};
use paw_broker::config::DatabaseUrl;
use paw_broker::store::{Create, Db};
use serde_json::json;
use sha2::{Digest, Sha256};

const RUNS: usize = 3;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::var("PAW_AUDIT_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 2_000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(n));
}

fn event(seq: u64) -> Event {
    Event {
        seq,
        time_ms: 1_735_689_600_000 + seq as i64 * 31_536,
        actor: format!("user{:03}", seq * 7 % 300),
        action: [
            "grant.request",
            "session.open",
            "session.close",
            "stepup.verify",
        ][(seq % 4) as usize]
            .into(),
        subject: format!("prod-db-{:04}/dba", seq * 13 % 2000),
        outcome: Outcome::ALL[(seq % 4) as usize],
        detail: json!({
            "justification": format!("rotate the replica keys INC-{seq:06}"),
            "ticket": format!("CHG-{}", 10_000 + seq / 40),
            "duration_s": 900 * (1 + seq % 8),
        }),
    }
}

async fn run(n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::new(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("broker.db").display()
    ));
    let db = Db::connect(&url, Create::IfMissing).await.unwrap();
    db.migrate().await.unwrap();
    let Db::Sqlite(pool) = &db else {
        unreachable!()
    };

    // The log as `audit::append` writes it (hex hashes, JSON detail), in big transactions.
    let mut chain = Chain::new();
    let mut inputs: Vec<Vec<u8>> = Vec::with_capacity(1000);
    let t = Instant::now();
    let mut seq = 1;
    while seq <= n {
        let mut tx = pool.begin().await.unwrap();
        for s in seq..=(seq + 9_999).min(n) {
            let r = chain.append(event(s)).unwrap();
            if inputs.len() < 1000 {
                let mut input = b"paw-audit-record-v1\0".to_vec();
                input.extend_from_slice(&r.prev_hash);
                input.extend_from_slice(&canonical(&r.event));
                inputs.push(input);
            }
            sqlx::query(
                "INSERT INTO audit_log (seq, time_ms, actor, action, subject, outcome, detail, \
                 prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(s as i64)
            .bind(r.event.time_ms)
            .bind(&r.event.actor)
            .bind(&r.event.action)
            .bind(&r.event.subject)
            .bind(r.event.outcome.as_str())
            .bind(r.event.detail.to_string())
            .bind(hex::encode(r.prev_hash))
            .bind(hex::encode(r.hash))
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        seq += 10_000;
    }
    let build = t.elapsed();
    let avg = inputs.iter().map(Vec::len).sum::<usize>() / inputs.len().max(1);

    println!("# pawd audit verify, SQLite, {n} records");
    println!();
    println!("| run | raw SHA-256 hashes/s ({avg}-byte inputs) | verify records/s | s | vs raw SHA-256 |");
    println!("|---|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for run in 1..=RUNS {
        let t = Instant::now();
        let mut acc = 0u8;
        for k in 0..n as usize {
            acc ^= Sha256::digest(&inputs[k % inputs.len()])[0];
        }
        std::hint::black_box(acc);
        let raw = n as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        assert_eq!(paw_broker::audit::verify(&db).await.unwrap(), n);
        let d = t.elapsed();
        let rps = n as f64 / d.as_secs_f64();
        ratios.push(rps / raw);
        println!(
            "| {run} | {raw:.0} | {rps:.0} | {:.2} | {:.2} |",
            d.as_secs_f64(),
            rps / raw
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!();
    println!(
        "broker-verify-vs-sha256: best {:.2}, median {:.2} ({} runs; building the log took {:.1} s)",
        ratios[ratios.len() - 1],
        ratios[ratios.len() / 2],
        RUNS,
        build.as_secs_f64()
    );
    db.close().await;
}
