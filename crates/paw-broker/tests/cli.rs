//! The `pawd` binary end to end: init → check → serve → healthz → SIGTERM, and init's refusals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use paw_proto::http::{DatabaseKind, Health};

const PAWD: &str = env!("CARGO_BIN_EXE_pawd");

/// `pawd` with no inherited `PAWD_*` variables, so the host environment cannot steer a test.
fn pawd() -> Command {
    let mut cmd = Command::new(PAWD);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PAWD_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    eprintln!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn init(dir: &Path, extra: &[&str]) -> Output {
    run(pawd()
        .args(["init", "--dir"])
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra))
}

fn fingerprint_of(ca_pem: &Path) -> String {
    let certs = paw_broker::crypto::tls::read_certs(ca_pem).unwrap();
    paw_broker::crypto::tls::fingerprint_sha256(certs[0].as_ref())
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn pawd_init_check_serve_healthz_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let out = init(&dir, &[]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let ca = dir.join("tls/ca.pem");
    assert!(stdout.contains(&ca.display().to_string()), "{stdout}");
    assert!(stdout.contains(&fingerprint_of(&ca)), "{stdout}");

    let config = dir.join("pawd.toml");
    let out = run(pawd().arg("check").arg("--config").arg(&config));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok"));

    let mut child = pawd()
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--json-logs")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let pid = child.id();
    let served = Served(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let stderr_reader = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    assert!(!base.ends_with(":0"), "the real port is printed: {base}");

    let client = common::client_trusting(&ca);
    let health: Health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health.database, DatabaseKind::Sqlite);

    let killed = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut served = served;
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = served.0.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "pawd did not exit after SIGTERM");
        // Async sleep: the client's connection task must keep running to answer the
        // server's HTTP/2 GOAWAY/PING, or graceful shutdown waits out its grace period.
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "graceful shutdown took {:?}",
        killed.elapsed()
    );
    assert!(exit.success(), "{exit:?}");
    let logs = stderr_reader.join().unwrap();
    // --json-logs: every log line is a JSON object, and the request was logged with its status.
    assert!(!logs.is_empty());
    for l in &logs {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
    assert!(
        logs.iter()
            .any(|l| l.contains("/healthz") && l.contains("\"status\":200")),
        "{logs:#?}"
    );
}

#[test]
fn pawd_init_refuses_to_overwrite_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    assert!(init(&dir, &[]).status.success());
    let ca = dir.join("tls/ca.pem");
    let before = fingerprint_of(&ca);
    let config_before = std::fs::read(dir.join("pawd.toml")).unwrap();

    let out = init(&dir, &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("invalid_config: "), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(fingerprint_of(&ca), before, "nothing was overwritten");
    assert_eq!(std::fs::read(dir.join("pawd.toml")).unwrap(), config_before);

    let out = init(&dir, &["--force"]);
    assert!(out.status.success());
    assert_ne!(fingerprint_of(&ca), before, "--force makes a new CA");
    assert!(String::from_utf8_lossy(&out.stdout).contains("kept from the existing database"));
}

#[test]
fn pawd_init_discards_the_ca_key_and_protects_the_server_key() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    assert!(init(&dir, &["--hostname", "broker.test"]).status.success());
    let with_keys: Vec<PathBuf> = files_under(&dir)
        .into_iter()
        .filter(|p| {
            std::fs::read(p)
                .map(|b| String::from_utf8_lossy(&b).contains("PRIVATE KEY"))
                .unwrap_or(false)
        })
        .collect();
    assert_eq!(with_keys, [dir.join("tls/server.key")]);
    for name in ["tls/ca.key", "tls/ca-key.pem", "ca.key"] {
        assert!(!dir.join(name).exists(), "{name}");
    }
    for name in ["tls/server.key", "tls/server.pem", "pawd.toml"] {
        let mode = std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
}

#[test]
fn pawd_check_reports_code_and_message_on_bad_config() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    assert!(init(&dir, &[]).status.success());
    let config = dir.join("pawd.toml");

    // Unknown environment variable: a typo, refused.
    let out = run(pawd()
        .arg("check")
        .arg("--config")
        .arg(&config)
        .env("PAWD_LISTNE", "127.0.0.1:1"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("invalid_config: "), "{stderr}");
    assert!(stderr.contains("PAWD_LISTNE"), "{stderr}");

    // A key that does not belong to the certificate.
    let other =
        paw_broker::crypto::tls::generate_dev_pki("localhost", time::OffsetDateTime::now_utc())
            .unwrap();
    std::fs::write(dir.join("tls/server.key"), other.server_key_pem).unwrap();
    let out = run(pawd().arg("check").arg("--config").arg(&config));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("invalid_config: "));

    // An unknown key in the file.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\nlisten_port = 1\n")).unwrap();
    let out = run(pawd().arg("check").arg("--config").arg(&config));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_port"));
}

#[test]
fn pawd_check_refuses_a_missing_database() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    assert!(init(&dir, &[]).status.success());
    for f in ["pawd.db", "pawd.db-wal", "pawd.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let out = run(pawd()
        .arg("check")
        .arg("--config")
        .arg(dir.join("pawd.toml")));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("storage_unavailable: "));
    assert!(
        !dir.join("pawd.db").exists(),
        "check must not create the database"
    );
}

#[test]
fn pawd_init_never_prints_the_database_password() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: init fails, and its error must not echo the password.
    let out = init(
        &tmp.path().join("b"),
        &["--database-url", "postgres://paw:hunter2@127.0.0.1:1/paw"],
    );
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.starts_with("storage_unavailable: "), "{all}");
    assert!(!all.contains("hunter2"), "{all}");
    assert!(
        !tmp.path().join("b/pawd.toml").exists(),
        "nothing written on failure"
    );
}

#[test]
fn pawd_rejects_unknown_pawd_env_for_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(pawd()
        .args(["init", "--dir"])
        .arg(tmp.path().join("b"))
        .env("PAWD_DATABSE_URL", "sqlite::memory:"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PAWD_DATABSE_URL"));
    assert!(!tmp.path().join("b").exists(), "nothing created");
    let out = run(pawd().arg("openapi").env("PAWD_LOG_LEVLE", "debug"));
    assert!(!out.status.success());
}

#[test]
fn pawd_openapi_prints_the_document() {
    let out = run(pawd().arg("openapi"));
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["paths"]["/healthz"].is_object());
}

#[test]
fn pawd_invite_prints_a_one_time_code_and_stores_only_its_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    assert!(init(&dir, &[]).status.success());
    let config = dir.join("pawd.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    // The default trusts no attestation CA, so the virtual key cannot enroll silently.
    assert!(text.contains("[webauthn]"), "{text}");
    assert!(text.contains("rp_id = \"localhost\""), "{text}");
    assert!(text.contains("attestation_ca = []"), "{text}");
    let out = run(pawd().arg("check").arg("--config").arg(&config));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("enrollment disabled"));

    let out = run(pawd()
        .args(["invite", "--config"])
        .arg(&config)
        .args(["ada", "--role", "admin"]));
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let code = stdout.lines().last().unwrap().trim().to_owned();
    assert!(code.len() >= 43, "{code}");
    // Never in the database in clear.
    let db = std::fs::read(dir.join("pawd.db")).unwrap_or_default();
    let wal = std::fs::read(dir.join("pawd.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!bytes.windows(code.len()).any(|w| w == code.as_bytes()));
    }
    // A bad name is refused with a code.
    let out = run(pawd()
        .args(["invite", "--config"])
        .arg(&config)
        .arg("ada smith"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("bad_request: "));
}

#[test]
fn pawd_check_refuses_a_bad_webauthn_origin() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    assert!(init(&dir, &[]).status.success());
    let config = dir.join("pawd.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        "origin = \"https://localhost:0\"",
        "origin = \"http://localhost\"",
    );
    std::fs::write(&config, text).unwrap();
    let out = run(pawd().arg("check").arg("--config").arg(&config));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("webauthn.origin"), "{stderr}");
}

/// `pawd invite`, `unlock`, `user disable` and `audit verify` on an initialised broker: the
/// administrative changes land in the audit log, and verify exits non-zero naming the first
/// record whose bytes were changed (case D2 for the broker's log).
#[tokio::test]
async fn d2_admin_commands_are_audited_and_audit_verify_names_a_tampered_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("b");
    assert!(init(&data, &[]).status.success());
    let config = data.join("pawd.toml");
    let out = run(pawd()
        .args(["invite", "--config"])
        .arg(&config)
        .args(["ada", "--role", "admin"]));
    assert!(out.status.success());
    let out = run(pawd()
        .args(["user", "disable", "--config"])
        .arg(&config)
        .arg("nobody"));
    assert!(!out.status.success(), "an unknown user cannot be disabled");
    let out = run(pawd().args(["audit", "verify", "--config"]).arg(&config));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    // The policy installed at start-up (none yet: skipped) and the invite are on record.
    assert!(text.contains("verified"), "{text}");

    // One changed byte in a recorded field.
    let url = format!("sqlite://{}?mode=rw", data.join("pawd.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let n = sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE action = 'invite_created'")
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(n, 1);
    pool.close().await;
    let out = run(pawd().args(["audit", "verify", "--config"]).arg(&config));
    assert!(
        !out.status.success(),
        "a tampered log must fail verification"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("record #1"), "{err}");
}
