//! `paw audit verify` run as the built binary: no window, a summary on stdout, exit status 0 for
//! a good trail and 2 naming the first bad record for a tampered one (case D2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use paw_audit::{LocalTrail, NewEvent, Outcome};
use serde_json::{json, Value};

fn identifier() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let conf: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tauri.conf.json")).unwrap())
            .unwrap();
    conf["identifier"].as_str().unwrap().to_owned()
}

async fn write_trail(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let t = LocalTrail::open(dir.join("audit.db")).await.unwrap();
    let events = (1..=5)
        .map(|i| {
            NewEvent::new(
                "alice",
                "grant.release",
                format!("g-{i}"),
                Outcome::Started,
                json!({"why": format!("MARKER-{i:03}")}),
                1_000 + i,
            )
        })
        .collect();
    t.append_batch(events).await.unwrap();
    t.close().await;
}

fn paw(args: &[&str], env: &[(&str, &Path)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paw"));
    cmd.args(args).env_remove("PAW_CONFIG_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn d2_paw_audit_verify_exits_zero_on_a_good_trail_and_two_on_a_tampered_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cfg");
    write_trail(&dir).await;
    let d = dir.display().to_string();

    let (code, out) = paw(&["audit", "verify", "--config-dir", &d], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("records verified: 5") && out.contains("OK"),
        "{out}"
    );
    // PAW_CONFIG_DIR, as the app itself uses it.
    let (code, out) = paw(&["audit", "verify"], &[("PAW_CONFIG_DIR", &dir)]);
    assert_eq!(code, 0, "{out}");
    // Without either: the app's own directory under the OS config directory.
    let xdg = tmp.path().join("xdg");
    write_trail(&xdg.join(identifier())).await;
    let (code, out) = paw(
        &["audit", "verify"],
        &[("XDG_CONFIG_HOME", &xdg), ("HOME", tmp.path())],
    );
    assert_eq!(code, 0, "{out}");

    // One byte of record #4 changed.
    let path = dir.join("audit.db");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(10).position(|w| w == b"MARKER-004").unwrap();
    bytes[at + 9] = b'7';
    std::fs::write(&path, &bytes).unwrap();
    let (code, out) = paw(&["audit", "verify", "--config-dir", &d], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("first bad record #4"), "{out}");

    // No trail there: cannot check, not "OK".
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, out) = paw(
        &[
            "audit",
            "verify",
            "--config-dir",
            &empty.display().to_string(),
        ],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no audit trail"), "{out}");
}
