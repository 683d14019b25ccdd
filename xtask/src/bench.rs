//! Bench binary for the figures that need whole processes (BENCHMARKS.md):
//! `cargo xtask bench app` builds the release app and measures cold start to first paint,
//! resident memory of all its processes when idle, and the size of what ships.
//! It runs itself under Xvfb with a private D-Bus session and keyring.
//!
//! `cargo xtask bench commands` builds the release `pawd` with the `virtual-key` feature and runs
//! `cargo bench -p paw-tests --bench commands_keystrokes` against it (issue #15: keystroke round
//! trip and Enter-to-prompt with and without command rules, bulk exec under rules);
//! `cargo xtask bench machines` does the same with `--bench machines` (issue #16: a machine's
//! pipeline step against direct OpenSSH, the inventory of 10,000 machines), and `cargo xtask
//! bench vault` with `--bench vault` (issue #17: session set-up with an injected secret against
//! a minted certificate, rotations per minute against the same change done directly), and
//! `cargo xtask bench files` with `--bench files` (issue #18: a large file uploaded and
//! downloaded with the stock `sftp` through the broker against the same client direct).
//!
//! `cargo xtask bench audit` (issue #20 item 4) runs the audit verification benches: the
//! workstation's trail (`cargo bench -p paw-audit --bench audit`) and `pawd audit verify` on
//! the broker's SQLite log (`cargo bench -p paw-broker --bench audit_verify`), 1,000,000
//! records each, every figure a ratio against raw SHA-256 measured in the same run;
//! `--quick` uses 100,000 records.
//!
//! Broker throughput lives next to the broker: `cargo bench -p paw-broker --bench healthz`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::util;

const RUNS: usize = 10;
const IDLE: Duration = Duration::from_secs(10);

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        // The app needs a display and a Secret Service: run the measurement inside a private
        // session unless we are already in one.
        Some("app") if std::env::var_os("PAW_BENCH_IN_SESSION").is_none() => {
            let keyring = util::root().join("target/bench-keyring");
            let _ = std::fs::remove_dir_all(&keyring);
            std::fs::create_dir_all(&keyring)?;
            util::in_private_desktop_session()
                .arg(std::env::current_exe()?)
                .args(["bench", "app"])
                .env("PAW_BENCH_IN_SESSION", "1")
                .env("XDG_DATA_HOME", &keyring)
                .status_ok()
        }
        Some("app") => app(),
        Some("commands") => paw_tests_bench("commands_keystrokes"),
        Some("machines") => paw_tests_bench("machines"),
        Some("vault") => paw_tests_bench("vault"),
        Some("files") => paw_tests_bench("files"),
        Some("audit") => audit(args.iter().any(|a| a == "--quick")),
        _ => bail!("usage: cargo xtask bench app | commands | machines | vault | files | audit"),
    }
}

/// A bench binary of `tests/benches` against a release `pawd`: command control's cost per
/// keystroke (issue #15), machine identities' pipeline step and inventory (issue #16), the
/// vault (issue #17), file transfer (issue #18). The harness would build a `pawd` of its own
/// without features; this one is built with the virtual key, as the e2e's is, in
/// `CARGO_TARGET_DIR` when set.
fn paw_tests_bench(name: &str) -> Result<()> {
    util::cargo(&[
        "build",
        "--release",
        "-p",
        "paw-broker",
        "--features",
        "paw-broker/virtual-key",
    ])
    .status_ok()?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| util::root().join("target"), |d| util::root().join(d));
    util::cargo(&["bench", "-p", "paw-tests", "--bench", name])
        .env("PAW_TEST_PAWD", target.join("release/pawd"))
        .status_ok()
}

/// Audit verification from storage against raw SHA-256 (issue #20 item 4); see the module
/// documentation.
fn audit(quick: bool) -> Result<()> {
    let records = if quick { "100000" } else { "1000000" };
    util::cargo(&["bench", "-p", "paw-audit", "--bench", "audit"])
        .env("PAW_AUDIT_BENCH_RECORDS", records)
        .status_ok()?;
    util::cargo(&[
        "bench",
        "-p",
        "paw-broker",
        "--features",
        "paw-broker/virtual-key",
        "--bench",
        "audit_verify",
    ])
    .env("PAW_AUDIT_BENCH_RECORDS", records)
    .status_ok()
}

fn app() -> Result<()> {
    crate::setup::npm_ci()?;
    util::npm(&["run", "build"]).status_ok()?;
    util::cargo(&["build", "--release", "-p", "paw"]).status_ok()?;
    let bin = util::root().join("target/release/paw");
    let size = std::fs::metadata(&bin)?.len();
    let dist = dir_size(&util::root().join("ui/dist"))?;

    let mut starts = Vec::new();
    let mut rss = Vec::new();
    for i in 0..RUNS {
        let home = tempdir()?;
        let started = Instant::now();
        let mut child = Command::new(&bin)
            .env("PAW_CONFIG_DIR", home.join("config"))
            .env("HOME", &home)
            .env("PAW_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting the release app")?;
        let err = child.stderr.take().context("stderr")?;
        let mut lines = BufReader::new(err).lines();
        let first_paint = loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("ui ready") => break started.elapsed(),
                Some(_) => {}
                None => bail!("the app exited before the UI was ready"),
            }
        };
        std::thread::spawn(move || for _ in lines {});
        starts.push(first_paint.as_secs_f64() * 1000.0);
        // Memory is taken once per run, after the UI has idled with its status polling.
        if i < 3 {
            std::thread::sleep(IDLE);
            rss.push(tree_mem(child.id())?);
        }
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&home);
    }
    starts.sort_by(f64::total_cmp);
    let median = starts[starts.len() / 2];
    println!("app cold start to first paint: median {median:.0} ms, min {:.0} ms, max {:.0} ms over {RUNS} runs", starts[0], starts[starts.len() - 1]);
    for (i, m) in rss.iter().enumerate() {
        println!(
            "idle memory, run {}: PSS {:.1} MiB, RSS {:.1} MiB, across {} processes",
            i + 1,
            m.pss_kib as f64 / 1024.0,
            m.rss_kib as f64 / 1024.0,
            m.procs
        );
    }
    // The .deb is what an admin installs: the binary plus icons and desktop entry, compressed.
    util::cmd(util::root().join("ui/node_modules/.bin/tauri"))
        .args(["build", "--bundles", "deb"])
        .status_ok()?;
    let deb_dir = util::root().join("target/release/bundle/deb");
    for e in std::fs::read_dir(&deb_dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "deb") {
            println!(
                "bundle {}: {:.1} MiB",
                p.file_name().unwrap_or_default().to_string_lossy(),
                std::fs::metadata(&p)?.len() as f64 / 1048576.0
            );
        }
    }
    println!(
        "release binary (UI embedded): {:.1} MiB; ui/dist: {:.0} KiB",
        size as f64 / 1048576.0,
        dist as f64 / 1024.0
    );
    Ok(())
}

fn tempdir() -> Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!(
        "paw-bench-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn dir_size(p: &Path) -> Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(p)? {
        let e = e?;
        let m = e.metadata()?;
        total += if m.is_dir() {
            dir_size(&e.path())?
        } else {
            m.len()
        };
    }
    Ok(total)
}

struct Mem {
    rss_kib: u64,
    pss_kib: u64,
    procs: usize,
}

/// Memory of `pid` and all its descendants (WebKit's web and network processes).
fn tree_mem(pid: u32) -> Result<Mem> {
    let mut children: Vec<(u32, u32)> = Vec::new();
    for e in std::fs::read_dir("/proc")?.flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) {
            if let Some((_, rest)) = stat.rsplit_once(')') {
                if let Some(pp) = rest.split_whitespace().nth(1).and_then(|x| x.parse().ok()) {
                    children.push((p, pp));
                }
            }
        }
    }
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        all.extend(children.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    let field = |file: &str, key: &str| -> u64 {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut rss = 0;
    let mut pss = 0;
    for p in &all {
        rss += field(&format!("/proc/{p}/status"), "VmRSS:");
        // PSS splits shared pages between the processes that map them, so the sum is what the
        // app tree really costs; RSS counts shared libraries once per process.
        pss += field(&format!("/proc/{p}/smaps_rollup"), "Pss:");
    }
    Ok(Mem {
        rss_kib: rss,
        pss_kib: pss,
        procs: all.len(),
    })
}
