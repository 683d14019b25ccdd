//! # xtask
//!
//! The developer entry points, so a fresh machine needs exactly two commands:
//! - `cargo xtask run`: install what is missing, build, start `pawd` (SQLite) and the app.
//! - `cargo xtask test`: the whole suite, as CI runs it.
//!
//! Also: `cargo xtask bindings` (regenerate the UI's TS types and limits), `cargo xtask bench`
//! (the start-up, memory, size and broker throughput figures of BENCHMARKS.md).
//!
//! System packages are installed with apt-get (as root, or through passwordless sudo); where
//! neither is possible the exact command is printed and the task stops.

mod bench;
mod cases;
mod demo;
mod fuzz;
mod setup;
mod util;

use anyhow::{bail, Result};

fn main() {
    if let Err(e) = real_main() {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => run(),
        Some("test") => test(),
        Some("bindings") => util::cargo(&["test", "-p", "paw-proto", "--test", "bindings_drift"])
            .env("PAW_UPDATE_BINDINGS", "1")
            .status_ok(),
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("setup") => setup::ensure(setup::Purpose::Test),
        Some("cases") => cases::run(),
        _ => bail!("usage: cargo xtask run | test | bindings | bench | cases | setup"),
    }
}

/// Builds everything once and starts a local broker and the app against it.
/// The demo broker's elevation policy: `admin` may take root on the web servers at once (with
/// command rules: `rm -rf` refused, restarts held for a step-up), and the databases with one
/// approval from `approver` (or by break-glass).
const DEMO_POLICY: &str = r#"
[groups]
ops = ["admin"]
approvers = ["approver"]

[[entitlement]]
id = "web-root"
description = "Root on the web servers"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["ops"]
approval = "auto"

# Command control: what the shell may run, checked by the broker at each Enter.
[entitlement.commands]
rules = [
  { program = "rm", flags = ["-r", "-f"], action = "deny", reason = "trees go through the release tool" },
  { program = "systemctl", args = ["restart", "*"], action = "step_up" },
  { program = "reboot", action = "step_up" },
]

[[entitlement]]
id = "prod-db"
description = "Administer the production databases"
target_kind = "postgres"
target = "db-*"
role = "dba"
max_duration_secs = 7200
requesters = ["ops"]
approval = { required = 1, groups = ["approvers"] }
ticket = "INC-*"
break_glass = { max_duration_secs = 900 }
"#;

fn run() -> Result<()> {
    setup::ensure(setup::Purpose::Run)?;
    util::npm(&["run", "build"]).status_ok()?;
    // A demo needs a security key: this debug build carries the INSECURE virtual key (G5: the
    // app labels it everywhere), and the local broker trusts its attestation CA.
    util::cargo(&[
        "build",
        "-p",
        "paw",
        "-p",
        "paw-broker",
        "--features",
        "paw/demo,paw-broker/virtual-key",
        "--bins",
    ])
    .status_ok()?;
    let root = util::root();
    let dev = root.join(".paw-dev");
    let broker_dir = dev.join("broker");
    let config = broker_dir.join("pawd.toml");
    let pawd = root.join("target/debug/pawd");
    // The invite code is a secret: it is printed once, never written to a file.
    let mut invite = None;
    if !config.exists() {
        util::cmd(&pawd)
            .args(["init", "--trust-virtual-key", "--dir"])
            .arg(&broker_dir)
            .args(["--listen", "127.0.0.1:8443"])
            .status_ok()?;
        // A small elevation policy so every screen has something real to show.
        let mut text = std::fs::read_to_string(&config)?;
        text.push_str(DEMO_POLICY);
        std::fs::write(&config, text)?;
        let out = util::cmd(&pawd)
            .args(["invite", "--config"])
            .arg(&config)
            .args(["admin", "--role", "admin"])
            .output_ok()?;
        invite = out
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_owned());
    }
    let app_cfg = dev.join("app");
    std::fs::create_dir_all(&app_cfg)?;
    let settings = app_cfg.join("settings.json");
    if !settings.exists() {
        let ca = broker_dir.join("tls/ca.pem");
        std::fs::write(
            &settings,
            serde_json::json!({"broker_url": "https://localhost:8443", "ca_path": ca}).to_string(),
        )?;
    }
    // Demo targets: a local sshd trusting the broker's CA and a local PostgreSQL cluster, so
    // sessions are real. They live as long as this command.
    // Best effort: without them (no root for sshd, say) everything else still runs.
    let _targets = match demo::start_targets(&broker_dir, &config) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("xtask: demo session targets not started ({e:#}); sessions will not open");
            None
        }
    };
    let broker = util::cmd(&pawd)
        .args(["serve", "--config"])
        .arg(&config)
        .spawn()?;
    println!(
        "pawd is serving https://localhost:8443 (data in {})",
        broker_dir.display()
    );
    if let Some(code) = invite {
        println!("first start: enroll as `admin` with invite code {code} (single use, 24 h)");
    }
    println!(
        "new invite codes (an `approver` can decide admin's database requests): \
         target/debug/pawd invite --config {} NAME --role admin",
        config.display()
    );
    let app = util::cmd(root.join("target/debug/paw"))
        .env("PAW_CONFIG_DIR", &app_cfg)
        .status_ok();
    broker.kill();
    app
}

/// The whole suite, in the order that fails fastest and builds each thing once.
fn test() -> Result<()> {
    // CI runs the long loops whole: a variable that lowers one is refused here, and each loop's
    // record is checked after the run (paw-counts).
    let lowered = paw_counts::lowering_vars_set();
    if !lowered.is_empty() {
        bail!(
            "unset {} first: `cargo xtask test` runs every loop at its full count",
            lowered.join(", ")
        );
    }
    // Cheap and static: a case without a test, or a SECURITY.md row naming a test that is gone,
    // fails before anything is built.
    cases::run()?;
    setup::ensure(setup::Purpose::Test)?;
    util::cargo(&["fmt", "--all", "--", "--check"]).status_ok()?;
    util::npm(&["run", "check"]).status_ok()?;
    util::npm(&["test"]).status_ok()?;
    // The shell embeds ui/dist at compile time, so the UI is built before any Rust that links it.
    util::npm(&["run", "build"]).status_ok()?;
    util::cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])
    .status_ok()?;
    fuzz::suite()?;
    // `cargo test` builds a package's binaries only for its own integration tests; pawctl's
    // tests live in tests/, so the binary they run is built here and named to them (with the
    // INSECURE virtual key, which `pawctl user` tests sign with; paw_tests::pawctl builds the same).
    util::cargo(&[
        "build",
        "-p",
        "paw-cli",
        "--bin",
        "pawctl",
        "--features",
        "virtual-key",
    ])
    .status_ok()?;
    all_rust_tests()?;
    let short = paw_counts::check(&util::root().join("target/counts"));
    if !short.is_empty() {
        bail!("loops that did not run whole:\n  {}", short.join("\n  "));
    }
    Ok(())
}

/// Every Rust test in one `cargo test --workspace`, so features unify once and nothing is built
/// twice. It runs under Xvfb inside a private D-Bus session because the desktop end-to-end tests
/// (tests/e2e: the real app driven by tauri-driver and WebKitWebDriver, against a real pawd) are
/// part of it; they find the binaries this same command builds.
fn all_rust_tests() -> Result<()> {
    let root = util::root();
    let screenshots = root.join("docs/screenshots");
    std::fs::create_dir_all(&screenshots)?;
    // The app keeps its device key and tokens in the OS keyring, so the session gets its own
    // Secret Service: an unlocked gnome-keyring whose files live under target/, never the
    // developer's own keyring.
    let counts = root.join("target/counts");
    let _ = std::fs::remove_dir_all(&counts);
    let keyring = root.join("target/e2e-keyring");
    let _ = std::fs::remove_dir_all(&keyring);
    std::fs::create_dir_all(&keyring)?;
    util::in_private_desktop_session()
        .arg(util::cargo_bin())
        .args(["test", "--workspace"])
        .env("XDG_DATA_HOME", &keyring)
        .env("PAW_E2E_APP", root.join("target/debug/paw"))
        .env("PAW_E2E_PAWD", root.join("target/debug/pawd"))
        .env("PAW_TEST_PAWCTL", root.join("target/debug/pawctl"))
        .env("PAW_E2E_SCREENSHOTS", &screenshots)
        .env(paw_counts::DIR_VAR, &counts)
        .env("PAW_E2E_TAURI_DRIVER", setup::tauri_driver()?)
        .status_ok()
}
