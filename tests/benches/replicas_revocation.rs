//! Cross-replica revocation (BENCHMARKS.md, issue #14): how long after broker B answers a
//! revocation does the session that broker A carries end, as its user sees it.
//!
//! Two real `pawd` processes on one real PostgreSQL and a real sshd (the `replicas` harness).
//! Each trial: ada's auto-approved grant requested and redeemed on A, a shell opened through
//! A's SSH front door and a command's output seen, then an admin revokes the grant on B; the
//! time runs from B's answer to the client seeing A's disconnect. A learns of the end by polling
//! the database (`sessions::WATCH_EVERY`, 250 ms), so the expected mean is about half that plus
//! the work. The floor, measured in the same run, is the database's own commit round trip: a
//! one-row UPDATE committed through `psql`, averaged over the trials' count.
//!
//! `cargo bench -p paw-tests --bench replicas_revocation` (PAW_BENCH_TRIALS, default 100).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use paw_client::terminal::{self, Credential, TermEvent};
use paw_proto::action::Action;
use paw_tests::replicas::{Replicas, SSH_TARGET};
use serde_json::json;
use tokio::sync::mpsc;

const POLICY: &str = r#"
[groups]
sre = ["ada"]

[[entitlement]]
id = "web-root"
description = "Root on the web servers"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
"#;

fn main() {
    let trials: usize = std::env::var("PAW_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(trials));
}

async fn run(trials: usize) {
    let r = Replicas::start_with_sshd(2, POLICY).await.unwrap();
    let (a, b) = (r.url(0), r.url(1));
    let mut ada = r.enrolled("ada", &[], 0).await.unwrap();
    let admin = r.enrolled("root", &["admin"], 1).await.unwrap();
    let ssh_a = r.ssh_addr(0).unwrap();

    // From B's answer (0 when the end reached the client first), and from the request leaving
    // the admin's client (includes B's own work and the HTTPS round trip).
    let mut took = Vec::with_capacity(trials);
    let mut from_sent = Vec::with_capacity(trials);
    let mut before_answer = 0usize;
    for i in 0..trials {
        let request = Action::Request {
            entitlement: "web-root".into(),
            target: SSH_TARGET.into(),
            role: "root".into(),
            duration_secs: 1800,
            justification: format!("benchmark trial {i} of cross-replica revocation"),
            ticket: None,
            start_at_ms: None,
        };
        let grant = ada.signed(&a, "/v1/requests", &request).await.unwrap();
        let grant = grant.ok().unwrap()["id"].as_str().unwrap().to_owned();
        let session = Action::Session {
            grant_id: grant.clone(),
            target: SSH_TARGET.into(),
        };
        let minted = ada
            .signed(&a, &format!("/v1/grants/{grant}/redeem"), &session)
            .await
            .unwrap()
            .ok()
            .unwrap();
        let credential = Credential {
            addr: ssh_a.clone(),
            host_key: minted["ssh_host_key"].as_str().unwrap().to_owned(),
            session_id: minted["session_id"].as_str().unwrap().to_owned(),
            ticket: minted["ticket"].as_str().unwrap().to_owned().into(),
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let term = terminal::open(credential, 80, 24, None, move |e| {
            let _ = tx.send((Instant::now(), e));
        })
        .await
        .unwrap();
        term.input(b"echo paw-$((6*7))\n".to_vec()).await.unwrap();
        let mut out = Vec::new();
        while !String::from_utf8_lossy(&out).contains("paw-42") {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some((_, TermEvent::Output(d)))) => out.extend(d),
                other => panic!("trial {i}: no output ({other:?})"),
            }
        }
        let sent = Instant::now();
        let res = admin
            .call(
                &b,
                "POST",
                &format!("/v1/grants/{grant}/revoke"),
                Some(&json!({"reason": "benchmark: access no longer needed"})),
            )
            .await
            .unwrap();
        let answered = Instant::now();
        assert_eq!(res.status, 200, "{:?}", res.body);
        let ended = loop {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some((_, TermEvent::Output(_)))) => {}
                Ok(Some((at, TermEvent::Ended { reason, .. }))) => {
                    assert_eq!(reason, "revoked");
                    break at;
                }
                other => panic!("trial {i}: the session did not end ({other:?})"),
            }
        };
        took.push(ended.saturating_duration_since(answered));
        from_sent.push(ended.saturating_duration_since(sent));
        if ended < answered {
            before_answer += 1;
        }
        drop(term);
    }

    // The floor: the database's commit round trip, in the same run.
    let pg = r.pg().unwrap();
    pg.psql("CREATE TABLE IF NOT EXISTS bench_floor (id INT PRIMARY KEY, n BIGINT); INSERT INTO bench_floor VALUES (1, 0) ON CONFLICT DO NOTHING")
        .unwrap();
    let script: String = (0..trials)
        .map(|_| "UPDATE bench_floor SET n = n + 1 WHERE id = 1;\n")
        .collect();
    let start = Instant::now();
    pg.psql(&script).unwrap();
    let commit = start.elapsed() / u32::try_from(trials.max(1)).unwrap_or(1);

    println!(
        "cross-replica revocation → session end over {} trials:",
        took.len()
    );
    let p50 = report("from B's answer", &mut took);
    println!(
        "  ({before_answer} of {trials} ends reached the client before B's answer: counted 0)"
    );
    report("from the revoke request leaving the client", &mut from_sent);
    println!(
        "  floor: one PostgreSQL commit round trip {:.2} ms (psql, {} UPDATEs); p50 = {:.0}x the floor",
        ms(commit),
        trials,
        ms(p50) / ms(commit).max(0.001)
    );
}

/// Prints mean, p50, p99 and max of `v`; returns the p50.
fn report(what: &str, v: &mut [Duration]) -> Duration {
    v.sort();
    let pct = |p: f64| {
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i.min(v.len() - 1)]
    };
    let mean = v.iter().sum::<Duration>() / u32::try_from(v.len()).unwrap_or(1);
    println!(
        "  {what}: mean {:.1} ms, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(mean),
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(*v.last().unwrap())
    );
    pct(0.5)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
