//! Installs what a fresh Debian 12 / Ubuntu machine lacks: system packages, npm packages and
//! tauri-driver. Idempotent and quick when everything is present.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::util;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Run,
    Test,
}

/// Build dependencies of the Tauri shell (WebKitGTK 4.1) and what the app uses at run time.
const BUILD: &[&str] = &[
    "build-essential",
    "pkg-config",
    "libwebkit2gtk-4.1-dev",
    "libxdo-dev",
    "librsvg2-dev",
    "libdbus-1-dev",
    // hidapi's hidraw backend: USB security keys (CTAP2 over HID).
    "libudev-dev",
    "dbus",
    "xdg-utils",
    "fonts-dejavu-core",
];
/// The desktop e2e (WebKitWebDriver under Xvfb in a private D-Bus session) and the real
/// PostgreSQL server the broker's tests start.
const TEST: &[&str] = &[
    "webkit2gtk-driver",
    "xvfb",
    "xauth",
    "dbus-x11",
    "postgresql",
    // Real sshd targets for the brokered-session tests; `asciinema cat` plays their recordings.
    "openssh-server",
    "openssh-client",
    // The sftp-server file transfer through the broker is tested against (stock sftp, scp).
    "openssh-sftp-server",
    "asciinema",
    // A private Secret Service for the keyring tests (never the developer's own keyring).
    "gnome-keyring",
    // libfaketime: steps a real pawd's or pawctl's wall clock in tests/tests/clocks.rs.
    "faketime",
];

/// The demo's session targets (`cargo xtask run`): a local sshd and PostgreSQL cluster.
const DEMO: &[&str] = &[
    "openssh-server",
    "openssh-sftp-server",
    "openssh-client",
    "postgresql",
];

pub fn ensure(purpose: Purpose) -> Result<()> {
    let mut wanted: Vec<&str> = BUILD.to_vec();
    match purpose {
        Purpose::Test => wanted.extend_from_slice(TEST),
        Purpose::Run => wanted.extend_from_slice(DEMO),
    }
    apt(&wanted)?;
    npm_ci()?;
    if purpose == Purpose::Test {
        tauri_driver()?;
    }
    Ok(())
}

fn installed(pkg: &str) -> bool {
    util::cmd("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output_ok()
        .map(|s| s.contains("install ok installed"))
        .unwrap_or(false)
}

fn apt(wanted: &[&str]) -> Result<()> {
    let missing: Vec<&str> = wanted.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = util::cmd("id").arg("-u").output_ok()?.trim() == "0";
    let sudo = !is_root && util::cmd("sudo").args(["-n", "true"]).succeeds_quietly();
    if !is_root && !sudo {
        bail!(
            "missing system packages; install them with:\n  sudo apt-get update && sudo apt-get install -y {}",
            missing.join(" ")
        );
    }
    let prefix: &[&str] = if sudo { &["sudo", "-n"] } else { &[] };
    let run = |args: &[&str]| {
        let all: Vec<&str> = prefix.iter().chain(args.iter()).copied().collect();
        util::cmd(all[0])
            .args(&all[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status_ok()
    };
    eprintln!("installing system packages: {}", missing.join(" "));
    run(&["apt-get", "update", "-qq"])?;
    // Recommends stay on: they are what the WebKitGTK stack was tested with here.
    let mut install = vec!["apt-get", "install", "-y", "-qq"];
    install.extend(missing);
    run(&install)
}

pub fn npm_ci() -> Result<()> {
    let ui = util::root().join("ui");
    let marker = ui.join("node_modules/.package-lock.json");
    let lock = ui.join("package-lock.json");
    let fresh = match (std::fs::metadata(&marker), std::fs::metadata(&lock)) {
        (Ok(m), Ok(l)) => m.modified()? >= l.modified()?,
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    util::npm(&["ci", "--no-audit", "--no-fund"]).status_ok()
}

/// Path to tauri-driver, installing it with cargo when missing.
pub fn tauri_driver() -> Result<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    let bin = home.join("bin/tauri-driver");
    if !bin.exists() {
        util::cargo(&["install", "tauri-driver", "--version", "^2", "--locked"]).status_ok()?;
    }
    Ok(bin)
}
