//! `pawctl` as the tests run it: the real binary, built once per test process (with the
//! INSECURE virtual key compiled in, for `pawctl user …`), and what one run of it printed.
//!
//! The binary: `$PAW_TEST_PAWCTL` if set (`cargo xtask test` builds it with the same features),
//! else `cargo build -p paw-cli --bin pawctl --features virtual-key` into the target directory
//! the test runs from, as the harness does for `pawd`, so an old binary never tests new code.

// A test helper that cannot do its job fails the test that called it, with what it saw.
#![allow(clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use serde_json::Value;

/// Overrides the `pawctl` binary (and skips building it).
pub const PAWCTL_ENV: &str = "PAW_TEST_PAWCTL";

/// A finished pawctl: its status, stdout and stderr.
#[derive(Debug)]
pub struct Run {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(out: Output, args: &[&str]) -> Self {
        let run = Self {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!("pawctl {args:?} -> {run:?}");
        run
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// The `code` of a `--json` error: stderr's last line (a warning, such as the virtual
    /// key's, may come before it).
    pub fn code(&self) -> String {
        let last = self.stderr.trim().lines().last().unwrap_or_default();
        serde_json::from_str::<Value>(last)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("stderr is not a JSON error: {self:?}"))
    }
}

/// `$PAW_TEST_PAWCTL`, or a freshly built `target/<profile>/pawctl` (built once per process).
pub fn binary() -> PathBuf {
    static PAWCTL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PAWCTL
        .get_or_init(build_pawctl)
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn build_pawctl() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(PAWCTL_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{PAWCTL_ENV}={} is not a file", p.display()))
        };
    }
    // The test binary is target/<profile>/deps/<name>-<hash>.
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected test binary path {}", exe.display()))?;
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| format!("unexpected test binary path {}", exe.display()))?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "-p",
        "paw-cli",
        "--bin",
        "pawctl",
        "--features",
        "virtual-key",
    ])
    .current_dir(env!("CARGO_MANIFEST_DIR"))
    .env("CARGO_TARGET_DIR", target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd.output().map_err(|e| format!("running cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build -p paw-cli --bin pawctl --features virtual-key failed (set {PAWCTL_ENV} to use a built pawctl):\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let bin = profile_dir.join("pawctl");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "cargo built pawctl but {} is missing",
            bin.display()
        ))
    }
}
