//! `pawctl user …` (issue #16): a person on a server with a security key, through the real
//! `pawctl` binary against a real `pawd` and a real OpenSSH sshd. The key is paw's INSECURE
//! virtual key (compiled into the test build of pawctl, labelled on stderr), kept in pawctl's
//! own 0600 store like the device key and tokens.
//!
//! Two people, each with a state directory of their own: ada requests root on web-1, cannot
//! approve it herself, bob approves it from his inbox, ada opens a shell through the broker
//! and runs a command there, and both find their actions in their host's local audit trail,
//! whose chain verifies. A PIN is asked on the terminal, never taken from a pipe.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use paw_tests::pawctl::{self, Run};
use paw_tests::replicas::{Options, Replicas, Store, SSH_TARGET};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

const PAWD: usize = 0;

const POLICY: &str = r#"
[groups]
sre = ["ada"]
leads = ["bob"]

[[entitlement]]
id = "web-admin"
description = "Root on the web servers, approved by a lead"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = { required = 1, groups = ["leads"] }
"#;

struct Person {
    name: &'static str,
    state: tempfile::TempDir,
}

struct World {
    r: Replicas,
    ada: Person,
    bob: Person,
}

async fn world() -> World {
    // Started by hand so that the broker accepts WebAuthn from its own address
    // (`https://localhost:PORT`, inside the RP ID), as a workstation talking to it directly.
    let mut r = Replicas::start_with(Options {
        replicas: 0,
        extra_config: POLICY.into(),
        store: Store::Sqlite,
        sshd: true,
    })
    .await
    .unwrap();
    r.add().unwrap();
    r.allow_direct_origins().unwrap();
    r.spawn(PAWD).unwrap();
    r.wait_healthy(PAWD).await.unwrap();
    let person = |name| Person {
        name,
        state: tempfile::Builder::new()
            .prefix("pawctl-person-")
            .tempdir()
            .unwrap(),
    };
    World {
        r,
        ada: person("ada"),
        bob: person("bob"),
    }
}

impl World {
    /// `pawctl` for `who`, with this world's broker and CA, nothing of the test's environment
    /// that pawctl reads, and `env` on top.
    fn pawctl(&self, who: &Person, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(pawctl::binary());
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("PAW_") || k.starts_with("PAWCTL_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("PAW_DEMO_VIRTUAL_KEY", "1")
            .envs(env.iter().copied())
            .arg("--broker")
            .arg(self.r.direct_url(PAWD))
            .arg("--ca")
            .arg(self.r.ca_path())
            .arg("--state-dir")
            .arg(who.state.path())
            .args(["--store", "file"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, who: &Person, args: &[&str]) -> Run {
        self.run_env(who, args, &[]).await
    }

    async fn run_env(&self, who: &Person, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            self.pawctl(who, args, env).output(),
        )
        .await
        .unwrap_or_else(|_| panic!("pawctl {args:?} did not finish in 60 s"))
        .unwrap();
        Run::from(out, args)
    }

    /// `pawctl user enroll` with an invite written to a 0600 file.
    async fn enroll(&self, who: &Person) -> String {
        let code = self.r.invite(who.name, &[]).unwrap();
        // Beside the state directory, not in it: the scan of the state must not find it there.
        let dir = tempfile::tempdir().unwrap();
        let file: PathBuf = dir.path().join("invite");
        std::fs::write(&file, &code).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = self
            .run(
                who,
                &[
                    "--json",
                    "user",
                    "enroll",
                    "--invite-file",
                    file.to_str().unwrap(),
                ],
            )
            .await;
        std::fs::remove_file(&file).unwrap();
        assert_eq!(out.status, Some(0), "{out:?}");
        assert_eq!(out.json()["name"], who.name);
        assert!(
            out.stderr.contains("INSECURE"),
            "the virtual key is not announced: {out:?}"
        );
        code
    }
}

/// Every file under `dir`, as text.
fn files_text(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_requests_another_approves_and_a_shell_runs_through_the_broker() {
    let w = world().await;
    let invite = w.enroll(&w.ada).await;
    w.enroll(&w.bob).await;
    // The invite is spent and kept nowhere; the store's files are 0600.
    for (path, bytes) in files_text(w.ada.state.path()) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&invite),
            "{} holds the invite code",
            path.display()
        );
        // The store's entries (device key, tokens, the virtual key's state) are 0600; the
        // core's settings (broker URL, CA path) and trail under person/ are not secrets.
        if path.parent() == Some(w.ada.state.path())
            && path.extension().is_some_and(|e| e == "json")
        {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{} is mode {mode:o}", path.display());
        }
    }

    let req = w
        .run(
            &w.ada,
            &[
                "--json",
                "user",
                "request",
                "web-admin",
                SSH_TARGET,
                "--role",
                "root",
                "--duration",
                "10m",
                "--reason",
                "rotate the logs",
                "--ticket",
                "OPS-7",
            ],
        )
        .await;
    assert_eq!(req.status, Some(0), "{req:?}");
    let grant = req.json();
    assert_eq!(grant["state"], "pending", "{grant}");
    let id = grant["id"].as_str().unwrap().to_owned();
    // What the key signs is shown before the touch: the words and the action's hash.
    assert!(req.stderr.contains("your security key signs:"), "{req:?}");
    assert!(req.stderr.contains("action sha256 "), "{req:?}");

    // ada cannot approve her own request (it is not in her inbox): refused before the key.
    let own = w.run(&w.ada, &["--json", "user", "approve", &id]).await;
    assert_eq!(own.status, Some(2), "{own:?}");
    assert_eq!(own.code(), "bad_request", "{own:?}");

    let inbox = w.run(&w.bob, &["--json", "user", "inbox"]).await;
    assert_eq!(inbox.status, Some(0), "{inbox:?}");
    let waiting: Vec<Value> = inbox.json()["requests"].as_array().unwrap().clone();
    assert_eq!(waiting.len(), 1, "{inbox:?}");
    assert_eq!(waiting[0]["request"]["id"], id.as_str());
    let ok = w
        .run(
            &w.bob,
            &["--json", "user", "approve", &id, "--comment", "go ahead"],
        )
        .await;
    assert_eq!(ok.status, Some(0), "{ok:?}");
    // bob's prompt named the stored request, not just its id.
    assert!(ok.stderr.contains("ada"), "{ok:?}");

    let grants = w.run(&w.ada, &["--json", "user", "grants"]).await;
    assert_eq!(grants.status, Some(0), "{grants:?}");
    let g = grants.json()["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(g["state"], "active", "{g}");

    // A shell through the broker, driven from a pipe: the command runs on the target.
    let mut shell = w
        .pawctl(&w.ada, &["user", "shell", &id], &[])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = shell.stdin.take().unwrap();
    stdin
        .write_all(b"echo people-$((6*7)) from $(hostname -s >/dev/null; whoami)\nexit\n")
        .await
        .unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), shell.wait_with_output())
        .await
        .expect("the shell did not end within 30 s")
        .unwrap();
    let shell = Run::from(out, &["user", "shell"]);
    assert_eq!(shell.status, Some(0), "{shell:?}");
    assert!(shell.stdout.contains("people-42 from root"), "{shell:?}");
    let logins =
        w.r.sshd()
            .unwrap()
            .log()
            .matches("Accepted publickey")
            .count();
    assert!(logins >= 1, "the target saw no login");

    // Each host's trail holds its person's actions, and its chain verifies.
    let audit = w.run(&w.ada, &["--json", "user", "audit"]).await;
    assert_eq!(audit.status, Some(0), "{audit:?}");
    let kinds: Vec<String> = audit.json()["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect();
    for k in ["enroll", "elevation.request", "session.open"] {
        assert!(kinds.iter().any(|x| x == k), "no {k} in {kinds:?}");
    }
    let bob_audit = w
        .run(
            &w.bob,
            &["--json", "user", "audit", "--kind", "elevation.approve"],
        )
        .await;
    // A decision is two records (started, then its outcome), both bob's.
    let records = bob_audit.json()["records"].as_array().unwrap().clone();
    let outcomes: Vec<&str> = records
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["success", "started"], "{bob_audit:?}");
    assert!(records.iter().all(|r| r["actor"] == "bob"), "{bob_audit:?}");
    let verify = w
        .run(&w.ada, &["--json", "user", "audit", "--verify"])
        .await;
    assert_eq!(verify.status, Some(0), "{verify:?}");
    assert_eq!(verify.json()["ok"], true, "{verify:?}");

    // Signed out: the tokens are gone, and the next call says so (exit 5).
    let out = w.run(&w.ada, &["--json", "user", "logout"]).await;
    assert_eq!(out.status, Some(0), "{out:?}");
    let after = w.run(&w.ada, &["--json", "user", "grants"]).await;
    assert_eq!(after.status, Some(5), "{after:?}");
}

/// A key that asks for its PIN gets it from the terminal only: without one pawctl says so
/// (exit 2) and nothing is signed; on a terminal (a pty from `script`) the PIN typed there
/// signs in, and it is echoed nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pin_comes_from_the_terminal_and_never_from_a_pipe() {
    const PIN: &str = "246810";
    let w = world().await;
    w.enroll(&w.ada).await;
    let out = w.run(&w.ada, &["--json", "user", "logout"]).await;
    assert_eq!(out.status, Some(0), "{out:?}");

    let pin_env = [("PAW_DEMO_VIRTUAL_KEY_PIN", PIN)];
    let no_tty = w
        .run_env(&w.ada, &["--json", "user", "login", "ada"], &pin_env)
        .await;
    assert_eq!(no_tty.status, Some(2), "{no_tty:?}");
    assert!(no_tty.stderr.contains("terminal"), "{no_tty:?}");

    // On a pseudo-terminal: `script` runs pawctl with the pty as its controlling terminal and
    // copies our stdin (the PIN) to it.
    let pawctl_cmd = format!(
        "{} --broker {} --ca {} --state-dir {} --store file user login ada",
        pawctl::binary().display(),
        w.r.direct_url(PAWD),
        w.r.ca_path().display(),
        w.ada.state.path().display()
    );
    let mut script = tokio::process::Command::new("script");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("PAW_") || k.starts_with("PAWCTL_") {
            script.env_remove(k);
        }
    }
    let mut child = script
        .args(["-qfec", &pawctl_cmd, "/dev/null"])
        .env("PAW_DEMO_VIRTUAL_KEY", "1")
        .env("PAW_DEMO_VIRTUAL_KEY_PIN", PIN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // After the prompt has had time to appear (the login's first round trip).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stdin
        .write_all(format!("{PIN}\n").as_bytes())
        .await
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("pawctl under script did not end within 30 s")
        .unwrap();
    let run = Run::from(out, &["script", "user", "login"]);
    assert_eq!(run.status, Some(0), "{run:?}");
    assert!(
        run.stdout.contains("security key PIN"),
        "no PIN prompt: {run:?}"
    );
    assert!(run.stdout.contains("signed in as ada"), "{run:?}");
    assert!(!run.stdout.contains(PIN), "the PIN was echoed: {run:?}");
}
