//! Broker throughput on `GET /healthz` over HTTPS (BENCHMARKS.md).
//!
//! A bench binary rather than criterion: the figure is requests per second of a separate `pawd`
//! process under concurrent load, with latency percentiles, not the time of one function.
//! `cargo bench -p paw-broker --bench healthz` builds pawd in the release profile, starts it on
//! loopback with SQLite in a temp dir, and drives it with paw-client's real broker client (TLS 1.3,
//! pinned CA) from this process. Both share the machine's cores, as they would on one host.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paw_client::BrokerClient;

const RUN: Duration = Duration::from_secs(10);
const WARMUP: Duration = Duration::from_secs(2);

fn main() {
    // `cargo bench` passes --bench; a filter argument, if any, is ignored.
    let pawd = env!("CARGO_BIN_EXE_pawd");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("broker");
    let st = Command::new(pawd)
        .args(["init", "--listen", "127.0.0.1:0", "--dir"])
        .arg(&data)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let mut child = Command::new(pawd)
        .args(["serve", "--config"])
        .arg(data.join("pawd.toml"))
        .env("PAWD_LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let l = lines.next().expect("pawd exited").unwrap();
        if let Some(rest) = l.split("listening on ").nth(1) {
            break rest.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let ca = std::fs::read(data.join("tls/ca.pem")).unwrap();
    let ca_der = rustls_pemfile::certs(&mut ca.as_slice())
        .next()
        .unwrap()
        .unwrap()
        .to_vec();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "pawd {url}, {} cores",
        std::thread::available_parallelism().unwrap()
    );
    println!("| concurrency | path | requests/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|---|");
    for path in ["/healthz", "/healthz?shallow=true"] {
        for conc in [1usize, 16, 64] {
            let r = rt.block_on(load(&url, &ca_der, path, conc));
            println!(
                "| {conc} | `{path}` | {:.0} | {:.2} | {:.2} | {} |",
                r.rps, r.p50_ms, r.p99_ms, r.errors
            );
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

struct Result {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// `conc` workers, each with its own client (so its own TLS connection), loop for WARMUP + RUN;
/// only requests that finish after warm-up count.
async fn load(base: &str, ca_der: &[u8], path: &str, conc: usize) -> Result {
    let start = Instant::now();
    let measure_from = start + WARMUP;
    let end = measure_from + RUN;
    let path: Arc<str> = path.into();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let client = BrokerClient::new(&[base.to_owned()], ca_der).unwrap();
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let ok = client.get_json::<serde_json::Value>(&path).await.is_ok();
                let done = Instant::now();
                if done >= measure_from && done < end {
                    if ok {
                        lat.push(done - t);
                    } else {
                        errors += 1;
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(f64::NAN)
    };
    Result {
        rps: all.len() as f64 / RUN.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    }
}
