//! What the end-to-end bench binaries (`tests/benches/`) share: the stock OpenSSH client as
//! the floor, certified by the broker's own user CA, and the figures' arithmetic.

// Bench harness: a failed step must stop the run loudly, as in a test.
#![allow(clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::replicas::Replicas;

/// A key for the stock `ssh` client, certified for `root` by the broker's user CA (which the
/// harness's sshd trusts): the direct path each bench compares paw with. The key lives in the
/// returned temp dir.
pub fn direct_key(r: &Replicas) -> (tempfile::TempDir, PathBuf) {
    let keys = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let key = keys.path().join("id_bench");
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key),
    );
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(r.broker_dir().join("ssh_user_ca"))
            .args(["-I", "bench-direct", "-n", "root", "-V", "-5m:+2h"])
            .arg(key.with_extension("pub")),
    );
    (keys, key)
}

/// The stock client straight to the harness's sshd as root with `key`; a pty when `tty`.
pub fn ssh_command(r: &Replicas, key: &Path, tty: bool, remote: Option<&str>) -> Command {
    let mut c = Command::new("ssh");
    c.env("TERM", "xterm-256color");
    if tty {
        c.args(["-tt", "-e", "none"]);
    } else {
        c.arg("-T");
    }
    c.arg("-i").arg(key).args([
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-p",
    ]);
    let port = r.sshd().map(|s| s.port().to_string()).unwrap_or_default();
    c.arg(port).arg("root@127.0.0.1");
    if let Some(remote) = remote {
        c.arg(remote);
    }
    c
}

/// Runs `cmd`; a failure stops the bench with its stderr.
pub fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `p`th percentile (nearest rank, rounding up) of `v`, which it sorts.
pub fn pct(v: &mut [Duration], p: usize) -> Duration {
    v.sort();
    v[((v.len() - 1) * p).div_ceil(100)]
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// CPU time of process `pid` so far, in ns: the scheduler's sum over its live threads.
pub fn cpu_ns(pid: u32) -> u64 {
    files(Path::new(&format!("/proc/{pid}/task")))
        .iter()
        .filter_map(|t| {
            std::fs::read_to_string(t.join("schedstat"))
                .ok()?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

pub fn files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The machine's load average, printed with each figure: a shared 2-core machine's noise.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
