//! `cargo xtask fuzz [TARGET] [--secs N]` and the fuzz step of `cargo xtask test` (case F3).
//!
//! The targets in `fuzz/` are built with the **stable** toolchain: libFuzzer comes from
//! libfuzzer-sys, and the coverage instrumentation it needs is plain LLVM SanitizerCoverage,
//! switched on with stable `-C` flags (no `-Z`, no nightly, no cargo-fuzz). The build has its
//! own target directory (`fuzz/target/stable`, git-ignored), so the root workspace's builds are
//! never invalidated by these flags.
//!
//! What a run finds is kept: a crashing input is written to `fuzz/regressions/<target>/`
//! (committed), and every committed seed and regression input is replayed on each
//! `cargo xtask test`, so a parser that crashed once fails the suite until it is fixed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::util;

/// Every target in `fuzz/fuzz_targets/`, one per untrusted parser (see fuzz/README.md).
pub const TARGETS: &[&str] = &[
    "registration_response",
    "assertion_response",
    "cbor_cose",
    "canonical_action",
    "duration_target",
    "audit_checkpoint",
    "asciicast",
    "pg_wire",
    "ssh_channel_request",
    "sftp_packet",
    "shell_command",
    "config",
];

/// Seconds per target in `cargo xtask test`: enough for each target to get past its seeds
/// and hit shallow crashes, short enough that the whole step stays within a few minutes.
const SUITE_SECS: u64 = 10;

/// SanitizerCoverage as libFuzzer wants it (inline 8-bit counters, the PC table for `cov:`,
/// compare tracing for its value profile and dictionaries), `cfg(fuzzing)` as cargo-fuzz sets
/// it, and overflow and debug assertions so arithmetic slips are crashes. All stable flags.
const RUSTFLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing -Cdebug-assertions -Coverflow-checks";

fn fuzz_dir() -> PathBuf {
    util::root().join("fuzz")
}

/// `cargo xtask fuzz [TARGET] [--secs N]`: runs one target, or each in turn, for N seconds
/// (default 300), after replaying the committed inputs.
pub fn run(args: &[String]) -> Result<()> {
    let mut target: Option<&str> = None;
    let mut secs: u64 = 300;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--secs" => {
                let v = it.next().context("--secs needs a number of seconds")?;
                secs =
                    v.parse().ok().filter(|s| *s > 0).with_context(|| {
                        format!("--secs {v:?}: a whole number of seconds above 0")
                    })?;
            }
            t if target.is_none() && TARGETS.contains(&t) => target = Some(t),
            other => bail!(
                "usage: cargo xtask fuzz [TARGET] [--secs N]; {other:?} is not one of: {}",
                TARGETS.join(", ")
            ),
        }
    }
    let targets: Vec<&str> = match target {
        Some(t) => vec![t],
        None => TARGETS.to_vec(),
    };
    let bins = build()?;
    replay(&bins, &targets)?;
    for t in &targets {
        fuzz(&bins, t, secs)?;
    }
    Ok(())
}

/// The fuzz step of `cargo xtask test`: build, replay every seed and regression input, then a
/// short run of every target. Fails on any crash, new or old.
pub fn suite() -> Result<()> {
    let started = Instant::now();
    let bins = build()?;
    let built = started.elapsed();
    replay(&bins, TARGETS)?;
    for t in TARGETS {
        fuzz(&bins, t, SUITE_SECS)?;
    }
    eprintln!(
        "xtask fuzz: build {:.0} s, replay and {} runs of {SUITE_SECS} s: {:.0} s",
        built.as_secs_f64(),
        TARGETS.len(),
        (started.elapsed() - built).as_secs_f64()
    );
    Ok(())
}

fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running `rustc -vV`")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .context("`rustc -vV` names no host")
}

/// Builds every target; returns the directory holding the binaries.
fn build() -> Result<PathBuf> {
    let triple = host_triple()?;
    let target_dir = fuzz_dir().join("target/stable");
    // An explicit --target keeps RUSTFLAGS off build scripts and proc macros (they need no
    // coverage), as cargo-fuzz does. Not --locked: fuzz/ depends on the workspace crates by
    // path, so a dependency they gain must be added to fuzz/Cargo.lock rather than fail the
    // suite; versions already locked stay as they are.
    let mut c = Command::new(util::cargo_bin());
    c.current_dir(fuzz_dir())
        .args([
            "build",
            "--release",
            "--bins",
            "--locked",
            "--target",
            &triple,
        ])
        .env("RUSTFLAGS", RUSTFLAGS)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("CARGO_TARGET_DIR", &target_dir);
    status_ok(c)?;
    Ok(target_dir.join(triple).join("release"))
}

/// Files directly under `dir` (none if it does not exist), sorted.
fn inputs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Runs each committed seed and regression input once (libFuzzer's file mode: no mutation,
/// nothing written); a crash on any of them fails.
fn replay(bins: &Path, targets: &[&str]) -> Result<()> {
    for t in targets {
        let mut files = inputs(&fuzz_dir().join("corpus").join(t))?;
        files.extend(inputs(&fuzz_dir().join("regressions").join(t))?);
        if files.is_empty() {
            bail!("fuzz target {t} has no seeds in fuzz/corpus/{t}");
        }
        let mut c = Command::new(bins.join(t));
        c.current_dir(fuzz_dir())
            // Not a time bound: only a stuck input should trip it, even on a loaded machine.
            .arg("-timeout=60")
            .args(&files);
        status_ok(c).with_context(|| {
            format!("replaying the seeds and regression inputs of fuzz target {t}")
        })?;
    }
    Ok(())
}

/// Fuzzes `target` for `secs` seconds from its seeds (the corpus it grows stays in the
/// git-ignored `fuzz/work/<target>`); a crash is saved under `fuzz/regressions/<target>/`.
fn fuzz(bins: &Path, target: &str, secs: u64) -> Result<()> {
    let work = fuzz_dir().join("work").join(target);
    let regressions = fuzz_dir().join("regressions").join(target);
    std::fs::create_dir_all(&work)?;
    std::fs::create_dir_all(&regressions)?;
    let mut c = Command::new(bins.join(target));
    c.current_dir(fuzz_dir())
        .arg(format!("-max_total_time={secs}"))
        .arg(format!("-artifact_prefix={}/", regressions.display()))
        // A single input running this long is a hang worth keeping; generous for a busy CI.
        .arg("-timeout=25")
        .arg("-rss_limit_mb=2048")
        // libFuzzer also writes merely slow inputs to the artifact directory: only crashes,
        // hangs and memory blow-ups belong among the regressions.
        .arg("-report_slow_units=100000")
        .arg("-print_final_stats=1")
        .arg(&work)
        .arg(fuzz_dir().join("corpus").join(target));
    status_ok(c).with_context(|| {
        format!(
            "fuzz target {target} found a crash: the input is kept in fuzz/regressions/{target}/ \
             (commit it with the fix; every `cargo xtask test` replays it)"
        )
    })
}

fn status_ok(mut c: Command) -> Result<()> {
    let d = format!("{c:?}");
    eprintln!("+ {d}");
    let st = c.status().with_context(|| format!("starting {d}"))?;
    if !st.success() {
        bail!("{d} failed ({st})");
    }
    Ok(())
}
