//! `pawctl` as a pipeline uses it (issue #16): the real binary, run as a process with nothing but
//! a workload token in a file, against a real `pawd`, a real OpenSSH sshd and a local OIDC
//! issuer. It logs in, requests, runs a command on the target, and logs out leaving nothing open;
//! its owner disabled mid-run ends it (case K1). And the binary links no WebKit or GTK.
//!
//! The `pawctl` binary: `$PAW_TEST_PAWCTL` if set, else this test builds it once
//! (`cargo build -p paw-cli --bin pawctl`) into the target directory it runs from, as the
//! harness does for `pawd`, so an old binary never tests new code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use paw_proto::machine::{MachineAuth, MachineSpec};
use paw_tests::oidc::{github_claims, TestIssuer};
use paw_tests::pawctl::{self, Run};
use paw_tests::replicas::{Options, Replicas, Store, SSH_TARGET};
use paw_tests::virtual_user::VirtualUser;
use serde_json::{json, Value};

const PAWD: usize = 0;
const AUDIENCE: &str = "https://paw.test";
const MACHINE: &str = "ci-deploy";
/// A key machine (a server's own identity), for the join, key login and rotation path.
const KEY_MACHINE: &str = "backup-1";

fn config(issuer: &TestIssuer) -> String {
    format!(
        r#"
[[machines.oidc_issuer]]
issuer = "{iss}"
jwks_url = "{jwks}"
audience = "{AUDIENCE}"
algorithm = "ES256"

[groups]
deployers = ["{MACHINE}", "{KEY_MACHINE}"]

[[entitlement]]
id = "web-deploy"
description = "Deploy on the web servers"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["deployers"]
approval = "auto"
max_sessions = 5
"#,
        iss = issuer.issuer(),
        jwks = issuer.jwks_url(),
    )
}

/// One pawd with sshd, an admin, ada, and the OIDC machine `ci-deploy` (repository org/app,
/// main branch) owned by ada. Each test gets its own pawctl state directory.
struct World {
    r: Replicas,
    issuer: TestIssuer,
    admin: VirtualUser,
    state: tempfile::TempDir,
    /// Where the "runner" writes its workload tokens, apart from pawctl's state.
    tokens: tempfile::TempDir,
}

async fn world() -> World {
    let issuer = TestIssuer::start("ES256").await.unwrap();
    let r = Replicas::start_with(Options {
        replicas: 1,
        extra_config: config(&issuer),
        store: Store::Sqlite,
        sshd: true,
    })
    .await
    .unwrap();
    let mut admin = r.enrolled("root-admin", &["admin"], PAWD).await.unwrap();
    r.enrolled("ada", &[], PAWD).await.unwrap();
    let spec = MachineSpec {
        name: MACHINE.into(),
        owner: "ada".into(),
        backup_owner: None,
        purpose: "deploys the web app from CI".into(),
        environment: "prod".into(),
        expires_at_ms: None,
        labels: Default::default(),
        auth: MachineAuth::Oidc {
            issuer: issuer.issuer(),
            claims: [
                ("repository".to_owned(), "org/app".to_owned()),
                ("ref".to_owned(), "refs/heads/main".to_owned()),
            ]
            .into(),
        },
        sources: vec![],
    };
    create_machine(&r, &mut admin, &spec).await;
    let state = tempfile::Builder::new()
        .prefix("pawctl-state-")
        .tempdir()
        .unwrap();
    World {
        r,
        issuer,
        admin,
        state,
        tokens: tempfile::tempdir().unwrap(),
    }
}

/// The admin's step-up for creating `spec`, then `POST /v1/machines`: its answer.
async fn create_machine(r: &Replicas, admin: &mut VirtualUser, spec: &MachineSpec) -> Value {
    let action = paw_broker::machines::create_action(spec);
    let base = r.url(PAWD);
    let start = admin.stepup_start(&base, &action).await.unwrap();
    let answer = admin.stepup_answer(&start, &action).unwrap();
    let body = json!({
        "spec": spec,
        "challenge": answer["challenge"],
        "credential": answer["credential"],
    });
    admin
        .call(&base, "POST", "/v1/machines", Some(&body))
        .await
        .unwrap()
        .ok()
        .expect("creating the machine")
}

impl World {
    /// A workload token for `repository` on main, in a 0600 file (what a runner writes).
    fn token_file(&self, repository: &str) -> (PathBuf, String) {
        let token = self
            .issuer
            .mint(github_claims(AUDIENCE, repository, "refs/heads/main"));
        let path = self
            .tokens
            .path()
            .join(format!("token-{}", repository.replace('/', "-")));
        std::fs::write(&path, &token).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        (path, token)
    }

    /// `pawctl` with this world's broker, CA and state directory, and nothing of the test's
    /// own environment that pawctl reads.
    fn pawctl(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(pawctl::binary());
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("PAW_") || k.starts_with("PAWCTL_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("--broker")
            .arg(self.r.url(PAWD))
            .arg("--ca")
            .arg(self.r.ca_path())
            .arg("--state-dir")
            .arg(self.state.path())
            .args(["--store", "file"])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `pawctl ARGS` to its end (at most 60 s).
    async fn run(&self, args: &[&str]) -> Run {
        let out = tokio::time::timeout(Duration::from_secs(60), self.pawctl(args).output())
            .await
            .unwrap_or_else(|_| panic!("pawctl {args:?} did not finish in 60 s"))
            .unwrap();
        Run::from(out, args)
    }

    async fn admin_get(&self, path: &str) -> Value {
        self.admin
            .call(&self.r.url(PAWD), "GET", path, None)
            .await
            .unwrap()
            .ok()
            .unwrap()
    }

    fn session_file(&self) -> PathBuf {
        self.state.path().join("machine-session.json")
    }
}

/// Logs in with a fresh org/app token and requests web-deploy on web-1 until active.
async fn login_and_request(w: &World) -> String {
    let (file, token) = w.token_file("org/app");
    let login = w
        .run(&[
            "--json",
            "login",
            "--workload-token-file",
            file.to_str().unwrap(),
        ])
        .await;
    assert_eq!(login.status, Some(0), "{login:?}");
    assert_eq!(login.json()["user"], MACHINE);
    assert_eq!(login.json()["kind"], "workload");
    // NHI2: the workload token is in no output and not kept (only the sign-in it bought is).
    assert!(!login.stdout.contains(&token) && !login.stderr.contains(&token));
    for entry in std::fs::read_dir(w.state.path()).unwrap() {
        let entry = entry.unwrap();
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        assert!(!text.contains(&token), "{:?} holds the token", entry.path());
    }
    let mode = std::fs::metadata(w.session_file())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let req = w
        .run(&[
            "--json",
            "request",
            "web-deploy",
            SSH_TARGET,
            "--role",
            "root",
            "--duration",
            "10m",
            "--reason",
            "deploy build 42",
            "--wait",
            "30",
        ])
        .await;
    assert_eq!(req.status, Some(0), "{req:?}");
    assert_eq!(req.json()["state"], "active", "{req:?}");
    req.json()["id"].as_str().unwrap().to_owned()
}

/// The live brokered sessions of the machine, as the admin sees them.
async fn live_sessions(w: &World) -> Vec<Value> {
    w.admin_get("/v1/sessions").await["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["user"] == MACHINE && s["ended_at_ms"].is_null())
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k_pipeline_workload_token_to_exec_and_nothing_left_open() {
    let w = world().await;

    // Another repository's token matches no machine: refused at login (3), nothing stored.
    let (other, _) = w.token_file("org/other");
    let refused = w
        .run(&[
            "--json",
            "login",
            "--workload-token-file",
            other.to_str().unwrap(),
        ])
        .await;
    assert_eq!(refused.status, Some(3), "{refused:?}");
    assert_eq!(refused.code(), "unauthenticated");
    assert!(!w.session_file().exists());

    let grant = login_and_request(&w).await;

    let grants = w.run(&["--json", "grants"]).await;
    assert_eq!(grants.status, Some(0), "{grants:?}");
    assert!(
        grants.json()["grants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == grant.as_str() && g["state"] == "active"),
        "{grants:?}"
    );

    // The target's output and exit status come through pawctl unchanged.
    let exec = w
        .run(&["exec", SSH_TARGET, "--", "sh", "-c", "echo hello; exit 3"])
        .await;
    assert_eq!(exec.stdout, "hello\n", "{exec:?}");
    assert_eq!(exec.status, Some(3), "{exec:?}");

    // What a copy of the sign-in (a leaked state file) could do after logout: nothing.
    let copy = std::fs::read(w.session_file()).unwrap();
    let out = w.run(&["--json", "logout"]).await;
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_eq!(out.json()["revoked"], true, "{out:?}");
    assert_eq!(out.json()["ended_grants"], json!([grant]), "{out:?}");
    assert!(!w.session_file().exists(), "the sign-in is still stored");

    let after = w.run(&["--json", "grants"]).await;
    assert_eq!(after.status, Some(5), "{after:?}");

    std::fs::write(w.session_file(), &copy).unwrap();
    std::fs::set_permissions(w.session_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let replayed = w.run(&["--json", "grants"]).await;
    assert!(
        matches!(replayed.status, Some(3) | Some(5)),
        "the token family still works after logout: {replayed:?}"
    );
    assert_eq!(replayed.code(), "unauthenticated", "{replayed:?}");

    // Nothing open at the broker: no live session, the grant released, no open grant.
    assert!(live_sessions(&w).await.is_empty());
    let inv = w.admin_get("/v1/machines").await;
    let m = inv["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == MACHINE)
        .unwrap();
    assert_eq!(m["open_grants"], 0, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k1_owner_disabled_mid_run_ends_the_pipeline() {
    let w = world().await;
    login_and_request(&w).await;

    let mut running = w
        .pawctl(&["exec", SSH_TARGET, "--", "sleep", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Until the command runs on the target: its session is live at the broker.
    let deadline = Instant::now() + Duration::from_secs(15);
    while live_sessions(&w).await.is_empty() {
        assert!(Instant::now() < deadline, "the exec never started");
        assert!(
            running.try_wait().unwrap().is_none(),
            "the exec ended early"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let asked = Instant::now();
    let out =
        w.r.pawd(&["user".into(), "disable".into(), "ada".into()])
            .unwrap();
    assert!(out.status.success(), "{out:?}");
    let disabled = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(20), running.wait_with_output())
        .await
        .expect("pawctl exec outlived its machine's owner")
        .unwrap();
    let took = disabled.elapsed();
    eprintln!(
        "K1: pawctl exec ended {took:?} after `pawd user disable` returned ({:?} after it was run)",
        asked.elapsed()
    );
    let exec = Run::from(ended, &["exec", SSH_TARGET, "--", "sleep", "60"]);
    assert!(took <= Duration::from_secs(3), "ended after {took:?}");
    assert_ne!(exec.status, Some(0), "{exec:?}");

    // The sign-in went with the suspension, and the machine cannot sign in again.
    let grants = w.run(&["--json", "grants"]).await;
    assert!(matches!(grants.status, Some(3) | Some(5)), "{grants:?}");
    let (file, _) = w.token_file("org/app");
    let again = w
        .run(&[
            "--json",
            "login",
            "--workload-token-file",
            file.to_str().unwrap(),
        ])
        .await;
    assert_eq!(again.status, Some(3), "{again:?}");
    assert_eq!(again.code(), "account_locked", "{again:?}");
    let inv = w.admin_get("/v1/machines").await;
    let m = inv["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == MACHINE)
        .unwrap();
    assert!(m["suspended_at_ms"].is_i64(), "{m}");
    assert!(live_sessions(&w).await.is_empty());
}

/// Parallel pipeline steps share one sign-in: when its access token is due, each pawctl
/// refreshes under the state directory's lock and re-reads the store first, so one refresh
/// token is never spent twice (the broker would revoke the whole sign-in, case B11).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k_parallel_steps_refresh_one_sign_in_without_spending_a_token_twice() {
    let w = world().await;
    login_and_request(&w).await;
    let stored = |w: &World| -> Value {
        serde_json::from_slice(&std::fs::read(w.session_file()).unwrap()).unwrap()
    };
    let mut rec = stored(&w);
    let first_refresh = rec["refresh_token"].as_str().unwrap().to_owned();
    // As if the access token were about to expire (it lives 15 minutes).
    rec["access_expires_at_ms"] = json!(0);
    std::fs::write(w.session_file(), serde_json::to_vec(&rec).unwrap()).unwrap();

    let args = ["--json", "grants"];
    let (a, b, c, d) = tokio::join!(w.run(&args), w.run(&args), w.run(&args), w.run(&args));
    for run in [&a, &b, &c, &d] {
        assert_eq!(run.status, Some(0), "{run:?}");
    }
    let now = stored(&w);
    assert_ne!(
        now["refresh_token"],
        first_refresh.as_str(),
        "no refresh happened"
    );
    assert!(now["access_expires_at_ms"].as_i64().unwrap() > 0);
    let later = w.run(&args).await;
    assert_eq!(
        later.status,
        Some(0),
        "the sign-in did not survive: {later:?}"
    );
    let out = w.run(&["logout"]).await;
    assert_eq!(out.status, Some(0), "{out:?}");
}

/// A server's own identity: `machine join` with the single-use token (from the environment,
/// never argv), key login, a command, `rotate` (the new key stored, the sign-in moved to it),
/// the inventory as its owner sees it, and `logout` keeping the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k_key_machine_joins_rotates_and_keeps_its_key_after_logout() {
    let mut w = world().await;
    let spec = MachineSpec {
        name: KEY_MACHINE.into(),
        owner: "ada".into(),
        backup_owner: None,
        purpose: "nightly backups".into(),
        environment: "prod".into(),
        expires_at_ms: None,
        labels: Default::default(),
        auth: MachineAuth::Key,
        sources: vec![],
    };
    let created = create_machine(&w.r, &mut w.admin, &spec).await;
    let token = created["join_token"].as_str().unwrap().to_owned();

    // No token given: refused before anything is sent.
    let none = w.run(&["--json", "machine", "join", KEY_MACHINE]).await;
    assert_eq!(none.status, Some(2), "{none:?}");
    let join = w
        .pawctl(&["--json", "machine", "join", KEY_MACHINE])
        .env("PAWCTL_JOIN_TOKEN", &token)
        .output()
        .await
        .unwrap();
    let join = Run::from(join, &["machine", "join"]);
    assert_eq!(join.status, Some(0), "{join:?}");
    assert!(!join.stdout.contains(&token) && !join.stderr.contains(&token));
    let first_key = join.json()["public_key"].as_str().unwrap().to_owned();
    let key_file = w.state.path().join("machine-key.json");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // The join token was single use: a second join is refused (3) and the key stays.
    let again = w
        .pawctl(&["--json", "machine", "join", KEY_MACHINE, "--replace"])
        .env("PAWCTL_JOIN_TOKEN", &token)
        .output()
        .await
        .unwrap();
    let again = Run::from(again, &["machine", "join", "--replace"]);
    assert_eq!(again.status, Some(3), "{again:?}");
    let still: Value = serde_json::from_slice(&std::fs::read(&key_file).unwrap()).unwrap();
    assert_eq!(still["machine"], KEY_MACHINE);

    let login = w.run(&["--json", "login", "--machine", KEY_MACHINE]).await;
    assert_eq!(login.status, Some(0), "{login:?}");
    assert_eq!(login.json()["kind"], "machine_key");
    let req = w
        .run(&[
            "request",
            "web-deploy",
            SSH_TARGET,
            "--role",
            "root",
            "--duration",
            "5m",
            "--reason",
            "nightly backup",
            "--wait",
            "30",
        ])
        .await;
    assert_eq!(req.status, Some(0), "{req:?}");
    let whoami = w.run(&["exec", SSH_TARGET, "--", "id -un"]).await;
    assert_eq!((whoami.status, whoami.stdout.trim()), (Some(0), "root"));

    let rotated = w.run(&["--json", "rotate"]).await;
    assert_eq!(rotated.status, Some(0), "{rotated:?}");
    let new_key = rotated.json()["public_key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, first_key);
    // The sign-in moved to the new key and still works; the grant is still usable.
    let after = w.run(&["exec", SSH_TARGET, "--", "true"]).await;
    assert_eq!(after.status, Some(0), "{after:?}");

    let inv = w.admin_get("/v1/machines").await;
    let m = inv["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == KEY_MACHINE)
        .unwrap();
    let keys: Vec<&str> = m["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["public_key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&new_key.as_str()), "{m}");
    // The machine itself owns nothing: its inventory export is empty, in CSV a header only.
    let csv = w.run(&["machines", "--csv"]).await;
    assert_eq!(csv.status, Some(0), "{csv:?}");
    assert!(csv.stdout.starts_with("name,owner,"), "{csv:?}");

    let out = w.run(&["--json", "logout"]).await;
    assert_eq!(out.status, Some(0), "{out:?}");
    assert!(!w.session_file().exists());
    assert!(key_file.exists(), "logout removed the machine's key");
    let back = w.run(&["--json", "login", "--machine", KEY_MACHINE]).await;
    assert_eq!(back.status, Some(0), "{back:?}");
    let out = w.run(&["logout"]).await;
    assert_eq!(out.status, Some(0), "{out:?}");
    assert!(live_sessions(&w).await.is_empty());
}

/// The CLI is for hosts without a desktop: no WebKit, GTK or libsoup may be linked. Prints its
/// size and the median start time of `pawctl --version` over 10 runs.
#[test]
fn pawctl_links_no_webkit_or_gtk() {
    let bin = pawctl::binary();
    let out = std::process::Command::new("ldd")
        .arg(&bin)
        .output()
        .unwrap();
    let libs = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ldd failed: {out:?}");
    for line in libs.lines() {
        let l = line.to_lowercase();
        assert!(
            !["webkit", "gtk", "soup", "javascriptcore", "gdk"]
                .iter()
                .any(|n| l.contains(n)),
            "pawctl links a GUI library: {line}"
        );
    }
    let size = std::fs::metadata(&bin).unwrap().len();
    let mut times = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let v = std::process::Command::new(&bin)
            .arg("--version")
            .output()
            .unwrap();
        times.push(t.elapsed());
        assert!(v.status.success());
    }
    times.sort();
    eprintln!(
        "pawctl {}: {:.1} MiB, `--version` median {:?} over 10 runs; ldd:\n{libs}",
        bin.display(),
        size as f64 / (1024.0 * 1024.0),
        times[times.len() / 2]
    );
}
