//! Case E3 for real (issue #19 item 7): the real `pawctl` binary against a real `pawd` (SQLite)
//! and a real OpenSSH sshd, with the broker made unreachable twice — frozen with SIGSTOP (its
//! port open, nothing answers) and killed with SIGKILL (its port closed) — and then started
//! again on the same database. Replaces nothing: the in-process fakes in
//! `crates/paw-client/src/core_tests.rs` stay, this is the same claim on processes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paw_client::{load_virtual_authenticator, Core, MemoryKeyStore};
use paw_fido::VirtualAuthenticator;
use paw_proto::ipc::{AuditQueryInput, BuildInfo, ElevationAction, EnrollInput, SettingsInput};
use paw_tests::pawctl::{self, Run};
use paw_tests::replicas::{Options, Replicas, Store, SSH_TARGET};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;

const PAWD: usize = 0;
/// pawctl's own bound on a broker call is 5 s (3 s to connect); this only stops a hung run.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// How long a live shell may outlive a frozen broker: the client's SSH keepalive notices (one
/// every 15 s; russh drops the connection when more than three go unanswered, so about 60 s).
/// This is the test's deadline, with room for a loaded machine.
const FROZEN_SESSION_LIMIT: Duration = Duration::from_secs(120);
/// A killed broker's connections are reset by the kernel at once; this is a deadline only.
const KILLED_SESSION_LIMIT: Duration = Duration::from_secs(15);

/// ada (pawctl) and cara (the app's core) may have root on web-1 at once.
const POLICY: &str = r#"
[groups]
sre = ["ada", "cara"]

[[entitlement]]
id = "web-root"
description = "Root on the web servers"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
max_sessions = 4
"#;

struct World {
    r: Replicas,
    state: tempfile::TempDir,
}

impl World {
    fn pawctl(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(pawctl::binary());
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("PAW_") || k.starts_with("PAWCTL_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("PAW_DEMO_VIRTUAL_KEY", "1")
            .arg("--broker")
            .arg(self.r.direct_url(PAWD))
            .arg("--ca")
            .arg(self.r.ca_path())
            .arg("--state-dir")
            .arg(self.state.path())
            .args(["--store", "file"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, args: &[&str]) -> (Run, Duration) {
        let t = Instant::now();
        let out = tokio::time::timeout(RUN_LIMIT, self.pawctl(args).output())
            .await
            .unwrap_or_else(|_| panic!("pawctl {args:?} did not finish in {RUN_LIMIT:?}"))
            .unwrap();
        (Run::from(out, args), t.elapsed())
    }

    async fn request(&self) -> (Run, Duration) {
        self.run(&[
            "--json",
            "user",
            "request",
            "web-root",
            SSH_TARGET,
            "--role",
            "root",
            "--duration",
            "30m",
            "--reason",
            "restart the stuck worker pool",
        ])
        .await
    }

    async fn grant_ids(&self) -> Vec<String> {
        let (g, _) = self.run(&["--json", "user", "grants"]).await;
        assert_eq!(g.status, Some(0), "{g:?}");
        g.json()["grants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// A live `pawctl user shell` and everything it has printed.
struct Shell {
    child: Child,
    stdin: tokio::process::ChildStdin,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Shell {
    async fn open(w: &World, grant: &str) -> Self {
        let mut child = w
            .pawctl(&["user", "shell", grant])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let mut me = Self { child, stdin, out };
        me.line("echo live-$((40+2))").await;
        me.until("live-42").await;
        me
    }

    async fn line(&mut self, text: &str) {
        self.stdin
            .write_all(format!("{text}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn until(&self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if String::from_utf8_lossy(&self.out.lock().unwrap()).contains(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {want:?} from the shell: {}",
                String::from_utf8_lossy(&self.out.lock().unwrap())
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for pawctl to exit: how long after `since`, and its status.
    async fn ended(&mut self, since: Instant, limit: Duration) -> (Duration, Option<i32>) {
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the shell outlived the broker by {limit:?}"))
            .unwrap();
        (since.elapsed(), status.code())
    }
}

/// cara's workstation: the app's core in this process (its own trail and witness pin), with
/// an INSECURE virtual key, enrolled against the broker directly.
async fn cara(w: &World, dir: &std::path::Path) -> Core {
    let keystore = Arc::new(MemoryKeyStore::new());
    let authenticator = load_virtual_authenticator(keystore.as_ref(), None)
        .unwrap()
        .unwrap_or_else(|| Arc::new(VirtualAuthenticator::new()));
    let core = Core::open(
        dir.to_path_buf(),
        BuildInfo {
            version: "test".into(),
            debug: true,
            virtual_key: false,
        },
        keystore,
        Some(authenticator),
    )
    .unwrap();
    core.save_settings(SettingsInput {
        broker_url: w.r.direct_url(PAWD),
        fallback_urls: Vec::new(),
        ca_path: w.r.ca_path().display().to_string(),
    })
    .await
    .unwrap();
    core.enroll(EnrollInput {
        code: w.r.invite("cara", &[]).unwrap(),
        key_name: "primary".into(),
    })
    .await
    .unwrap();
    core
}

fn cara_request() -> ElevationAction {
    ElevationAction::Request {
        entitlement: "web-root".into(),
        target: SSH_TARGET.into(),
        role: "root".into(),
        duration_secs: 30 * 60,
        justification: "rotate the worker logs".into(),
        ticket: None,
        start_at_ms: None,
    }
}

/// cara's local trail, oldest first: (seq, kind, outcome).
async fn cara_trail(core: &Core) -> Vec<(u64, String, String)> {
    let page = core
        .audit_query(AuditQueryInput {
            from_ms: None,
            until_ms: None,
            kind: None,
            target: None,
            outcome: None,
            text: None,
            limit: 500,
            offset: 0,
        })
        .await
        .unwrap();
    let mut v: Vec<(u64, String, String)> = page
        .records
        .iter()
        .map(|r| {
            let outcome = serde_json::to_value(r.outcome).unwrap();
            (r.seq, r.kind.clone(), outcome.as_str().unwrap().to_owned())
        })
        .collect();
    v.sort();
    v
}

fn signal(pid: u32, sig: &str) {
    let st = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig} {pid}");
}

/// E3. With the broker frozen (SIGSTOP) and then killed (SIGKILL):
/// - a grant request by `pawctl` fails with exit 4 (unreachable) and the `{code, message}`
///   error `broker_unreachable` within a bounded time (measured), and no grant exists
///   afterwards (the broker, back, lists only the grant made before);
/// - a live `pawctl user shell` through the broker ends: when frozen, by the client's SSH
///   keepalive (measured; asserted < 120 s), when killed at once (measured; asserted < 15 s);
/// - the app's core (another user, cara, in this process) confirms a request it prepared before
///   the kill: it fails `broker_unreachable`, its `started` and `failure` records stay on the
///   local trail, and once `pawd` is started again on the same database her next request's
///   checkpoint uploads them: the broker's `audit_checkpoint_cosigned` record covers their
///   sequence numbers, and her trail verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e3_broker_unreachable_frozen_or_killed_no_grant_sessions_end_audit_uploaded_after() {
    // Started by hand so that the broker accepts WebAuthn from its own address, as a
    // workstation talking to it directly does.
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
    let w = World {
        r,
        state: tempfile::Builder::new()
            .prefix("pawctl-e3-")
            .tempdir()
            .unwrap(),
    };
    let invite_dir = tempfile::tempdir().unwrap();
    let invite = invite_dir.path().join("invite");
    std::fs::write(&invite, w.r.invite("ada", &[]).unwrap()).unwrap();
    std::fs::set_permissions(&invite, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (out, _) = w
        .run(&[
            "--json",
            "user",
            "enroll",
            "--invite-file",
            invite.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.status, Some(0), "{out:?}");
    let (granted, _) = w.request().await;
    assert_eq!(granted.status, Some(0), "{granted:?}");
    assert_eq!(granted.json()["state"], "active", "{granted:?}");
    let grant = granted.json()["id"].as_str().unwrap().to_owned();
    let cara_dir = tempfile::tempdir().unwrap();
    let cara = cara(&w, cara_dir.path()).await;
    // A first witnessed action, so that the broker has cosigned cara's trail before it goes:
    // what it misses later is then a gap after a cosigned head.
    let prompt = cara.prepare_elevation(cara_request()).await.unwrap();
    cara.confirm_elevation(prompt.id).await.unwrap();
    let mut w = w;

    // Frozen: the port accepts, nothing answers.
    let mut shell = Shell::open(&w, &grant).await;
    let pid = w.r.pid(PAWD).unwrap();
    signal(pid, "-STOP");
    let frozen = Instant::now();
    let (refused, took) = w.request().await;
    assert_eq!(refused.status, Some(4), "unreachable: {refused:?}");
    let code_frozen = refused.code();
    let (gone, status) = shell.ended(frozen, FROZEN_SESSION_LIMIT).await;
    println!(
        "E3 frozen: the request failed {code_frozen:?} after {} ms; the shell ended {} ms after \
         the freeze (exit {status:?})",
        took.as_millis(),
        gone.as_millis()
    );
    // A lost broker is not a clean exit: pawctl says so with exit 4 (retry later).
    assert_eq!(status, Some(4), "pawctl user shell after the freeze");
    signal(pid, "-CONT");
    assert_eq!(
        w.grant_ids().await,
        std::slice::from_ref(&grant),
        "no grant from the frozen time"
    );

    // Killed: the port is closed.
    let mut shell = Shell::open(&w, &grant).await;
    let prepared = cara.prepare_elevation(cara_request()).await.unwrap();
    w.r.kill9(PAWD).unwrap();
    let killed = Instant::now();
    let (gone, status) = shell.ended(killed, KILLED_SESSION_LIMIT).await;
    let (refused, took) = w.request().await;
    assert_eq!(refused.status, Some(4), "unreachable: {refused:?}");
    let code_killed = refused.code();
    assert_eq!(status, Some(4), "pawctl user shell after the kill");
    println!(
        "E3 killed: the shell ended {} ms after the kill (exit {status:?}); the request failed \
         {code_killed:?} after {} ms",
        gone.as_millis(),
        took.as_millis()
    );

    // cara had prepared a request (its step-up challenge) before the kill and confirms it
    // now: the core writes the action's `started` record, cannot have it cosigned, does not
    // send the request, and records the failure. These are records written while the broker
    // is away.
    let before = cara_trail(&cara).await.last().unwrap().0;
    let t = Instant::now();
    let err = cara.confirm_elevation(prepared.id).await.unwrap_err();
    println!(
        "E3 killed: the core's confirmed request failed {:?} after {} ms",
        err.code(),
        t.elapsed().as_millis()
    );
    assert_eq!(
        serde_json::to_value(err.code()).unwrap(),
        "broker_unreachable",
        "{err}"
    );
    let away: Vec<(u64, String, String)> = cara_trail(&cara)
        .await
        .into_iter()
        .filter(|(seq, _, _)| *seq > before)
        .collect();
    assert!(
        away.iter()
            .any(|(_, k, o)| k == "elevation.request" && o == "started")
            && away
                .iter()
                .any(|(_, k, o)| k == "elevation.request" && o == "failure"),
        "the refused request is on cara's trail: {away:?}"
    );
    let last_away = away.last().unwrap().0;

    // Back on the same database: the next action's checkpoint carries them.
    let spawned = Instant::now();
    w.r.spawn(PAWD).unwrap();
    w.r.wait_healthy(PAWD).await.unwrap();
    println!(
        "E3: pawd healthy {} ms after the restart",
        spawned.elapsed().as_millis()
    );
    assert_eq!(
        w.grant_ids().await,
        std::slice::from_ref(&grant),
        "no grant from the killed time"
    );
    let t = Instant::now();
    let prompt = cara.prepare_elevation(cara_request()).await.unwrap();
    let view = cara.confirm_elevation(prompt.id).await.unwrap();
    assert_eq!(view.state, "active", "{view:?}");
    println!(
        "E3: cara's next request after the restart took {} ms (its checkpoint carried the \
         missed records)",
        t.elapsed().as_millis()
    );
    let cosigned: Vec<Value> = common::sqlite_audit(&w.r)
        .await
        .into_iter()
        .filter(|e| e["action"] == "audit_checkpoint_cosigned" && e["actor"] == "cara")
        .collect();
    let covering = cosigned.iter().find(|c| {
        let d = &c["detail"];
        d["previous_seq"].as_u64().is_some_and(|p| p <= before)
            && d["seq"].as_u64().is_some_and(|s| s >= last_away)
            && d["records"]
                .as_u64()
                .is_some_and(|n| n >= last_away - before)
    });
    assert!(
        covering.is_some(),
        "a checkpoint cosigned after the restart uploads cara's records {before}..={last_away}: \
         {cosigned:?}"
    );
    let verified = cara.audit_verify().await.unwrap();
    assert!(verified.ok, "{verified:?}");
    let (verify, _) = w.run(&["--json", "user", "audit", "--verify"]).await;
    assert_eq!(verify.status, Some(0), "{verify:?}");
    assert_eq!(verify.json()["ok"], true, "{verify:?}");
}

mod common;
