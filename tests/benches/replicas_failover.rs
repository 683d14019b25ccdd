//! Failover time seen by the app (BENCHMARKS.md, issue #14): how long after the broker the app
//! uses dies does the user's next call succeed on another broker, and how many calls fail first.
//!
//! Two real `pawd` processes on one real PostgreSQL (the `replicas` harness), no load balancer:
//! the workstation is paw-client's `Core` (what the desktop app runs) with both brokers in its
//! settings and the INSECURE virtual key, enrolled and signed in once. Each trial finds the
//! broker in use, stops it — `kill -9`, or SIGTERM — and times an authenticated call
//! (`list_keys`: bearer, device proof, a database read) from the signal until it succeeds;
//! a call that fails instead is counted and repeated at once. The stopped broker is started
//! again before the next trial, so trials alternate between the two brokers.
//!
//! The floor, measured in the same run, is the same call answered by a healthy broker.
//!
//! `cargo bench -p paw-tests --bench replicas_failover` (PAW_BENCH_TRIALS, default 20 per way of
//! stopping).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use paw_client::{Core, MemoryKeyStore};
use paw_fido::{Authenticator, VirtualAuthenticator};
use paw_proto::ipc::{BuildInfo, EnrollInput, SettingsInput};
use paw_tests::replicas::{Options, Replicas};

/// Past this, a trial is a failure of the failover itself, not a slow one.
const GIVE_UP: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug)]
enum Stop {
    Kill9,
    Term,
}

fn main() {
    let trials: usize = std::env::var("PAW_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(trials));
}

async fn run(trials: usize) {
    let mut r = Replicas::start_with(Options::default()).await.unwrap();
    for _ in 0..2 {
        r.add().unwrap();
    }
    r.allow_direct_origins().unwrap();
    for i in 0..2 {
        r.spawn(i).unwrap();
        r.wait_healthy(i).await.unwrap();
    }
    let urls = [r.direct_url(0), r.direct_url(1)];
    let home = tempfile::tempdir().unwrap();
    let authenticator: Arc<dyn Authenticator> = Arc::new(VirtualAuthenticator::new());
    let core = Core::open(
        home.path().join("ada"),
        BuildInfo {
            version: "bench".into(),
            debug: true,
            virtual_key: true,
        },
        Arc::new(MemoryKeyStore::new()),
        Some(authenticator),
    )
    .unwrap();
    core.save_settings(SettingsInput {
        broker_url: urls[0].clone(),
        fallback_urls: vec![urls[1].clone()],
        ca_path: r.ca_path().display().to_string(),
    })
    .await
    .unwrap();
    core.enroll(EnrollInput {
        code: r.invite("ada", &["admin"]).unwrap(),
        key_name: "bench".into(),
    })
    .await
    .unwrap();

    // The floor: the same call, answered by the broker in use.
    let mut floor = Vec::with_capacity(trials);
    for _ in 0..trials.max(10) {
        let t = Instant::now();
        core.list_keys().await.unwrap();
        floor.push(t.elapsed());
    }
    let floor_p50 = pct(&mut floor, 50);

    let mut rows = Vec::new();
    for way in [Stop::Kill9, Stop::Term] {
        let mut took = Vec::with_capacity(trials);
        let mut failed_calls = 0usize;
        for _ in 0..trials {
            let status = core.status().await;
            let url = status.broker.url.unwrap();
            let i = urls.iter().position(|u| *u == url).unwrap();
            let t = Instant::now();
            match way {
                Stop::Kill9 => r.kill9(i).unwrap(),
                Stop::Term => {
                    let pid = r.pid(i).unwrap().to_string();
                    assert!(std::process::Command::new("kill")
                        .args(["-TERM", &pid])
                        .status()
                        .unwrap()
                        .success());
                }
            }
            loop {
                match core.list_keys().await {
                    Ok(_) => break,
                    Err(e) => {
                        failed_calls += 1;
                        eprintln!("{way:?}: a call failed during the failover: {e}");
                        assert!(t.elapsed() < GIVE_UP, "no failover after {GIVE_UP:?}");
                    }
                }
            }
            took.push(t.elapsed());
            let now_on = core.status().await.broker.url.unwrap();
            assert_ne!(now_on, url, "still on the stopped broker");
            // Back to two brokers for the next trial.
            if let Stop::Term = way {
                r.wait_exit(i, GIVE_UP).await.unwrap().expect("stopped");
            }
            r.spawn(i).unwrap();
            r.wait_healthy(i).await.unwrap();
        }
        rows.push((
            way,
            pct(&mut took.clone(), 50),
            pct(&mut took, 99),
            failed_calls,
        ));
    }

    println!(
        "failover seen by the app, 2 brokers on PostgreSQL, {trials} trials per way: \
         floor (healthy broker, same call) p50 {:.2} ms",
        ms(floor_p50)
    );
    println!("| stop | p50 ms | p99 ms | p50 / floor | calls that failed first |");
    println!("|---|---|---|---|---|");
    for (way, p50, p99, failed) in rows {
        println!(
            "| {} | {:.2} | {:.2} | {:.1}x | {failed} |",
            match way {
                Stop::Kill9 => "kill -9",
                Stop::Term => "SIGTERM",
            },
            ms(p50),
            ms(p99),
            p50.as_secs_f64() / floor_p50.as_secs_f64()
        );
    }
}

fn pct(v: &mut [Duration], p: usize) -> Duration {
    v.sort();
    v[((v.len() - 1) * p).div_ceil(100)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
