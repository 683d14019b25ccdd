//! Brokered SSH sessions against a real OpenSSH `sshd` on loopback, side by side with direct
//! connections to the same sshd (BENCHMARKS.md, "Brokered SSH sessions"). A bench binary, not
//! criterion: throughput, latency percentiles and a concurrency soak are not one-at-a-time loops.
//!
//! Paths compared:
//! - **broker**: paw-client's `terminal::open` (russh) → the broker's SSH front door (russh server,
//!   one-time credential) → the broker's per-session certificate connection (russh client) → sshd.
//!   Everything is recorded (asciicast, flushed per chunk).
//! - **direct russh**: the same client library straight to sshd, with a certificate signed here by
//!   the broker's CA (`UserCa::issue`); its event loop mirrors `terminal.rs` (a task, a command
//!   channel in, events out), so the difference to the broker path is the broker.
//! - **direct OpenSSH**: the stock `ssh` client with a key and a certificate signed by the same CA
//!   with `ssh-keygen -s` (throughput only).
//!
//! Figures:
//! 1. Bulk output: 256 MiB of `yes 0123…z | head -c 268435456` (printable, so the recording is not
//!    6× the output as asciicast escapes of NUL bytes would make it), each path with a pty (`ssh
//!    -tt` for OpenSSH), so every path's pty turns `\n` into `\r\n` alike.
//! 2. Keystroke round trip: a shell with a pty, `stty -icanon; cat >/dev/null`, then one character
//!    at a time, waiting for its echo (the target's tty echo); 100 warm-up, 1000 measured, 10 ms
//!    apart.
//! 3. Set-up from "click" to prompt: step-up (start + the virtual key's assertion) + redeem (the
//!    router in-process, no TLS) + connect and log in to the front door + first output of the
//!    shell; one session after another, each closed before the next.
//! 4. 100 concurrent shells: opened at once, `echo ok-N` in each, held ~10 s, asked again, closed.
//!    A grant allows at most 16 sessions (the policy crate's cap), so the bench holds 7 grants.
//!
//! `cargo bench -p paw-broker --features virtual-key --bench sessions`. Under
//! `cargo test --benches` it runs tiny sizes only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/idp.rs"]
mod idp;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idp::{Broker, Client, Tweak};
use paw_broker::crypto::ssh_ca::{CertRequest, UserCa};
use paw_client::terminal::{self, Credential, TermEvent};
use paw_proto::action::Action;
use paw_tests::sshd::TempSshd;
use reqwest::StatusCode;
use russh::ChannelMsg;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Sessions per grant: the most the policy crate allows.
const PER_GRANT: usize = 16;

struct Sizes {
    bulk: usize,
    rounds: usize,
    warmup: usize,
    samples: usize,
    setups: usize,
    concurrent: usize,
    hold: Duration,
}

fn sizes() -> Sizes {
    if std::env::args().any(|a| a == "--bench") {
        Sizes {
            bulk: 256 << 20,
            rounds: 3,
            warmup: 100,
            samples: 1000,
            setups: 50,
            concurrent: 100,
            hold: Duration::from_secs(10),
        }
    } else {
        Sizes {
            bulk: 1 << 20,
            rounds: 1,
            warmup: 5,
            samples: 20,
            setups: 3,
            concurrent: 4,
            hold: Duration::from_millis(500),
        }
    }
}

const POLICY: &str = r#"
[groups]
sre = ["ada"]

[[entitlement]]
id = "web-root"
description = "Root on the web servers"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
max_sessions = 16
"#;

fn real_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

struct Bench {
    b: Broker,
    sshd: TempSshd,
    ada: Client,
    ca: Arc<UserCa>,
    /// (grant id, target name).
    grants: Vec<(String, String)>,
    /// The stock ssh client's key (its certificate is `<key>-cert.pub`).
    ssh_key: PathBuf,
    _keys: tempfile::TempDir,
    recordings: tempfile::TempDir,
}

async fn setup(grants: usize) -> Bench {
    let keys = tempfile::Builder::new()
        .prefix("paw-bench-keys-")
        .tempdir()
        .unwrap();
    let recordings = tempfile::Builder::new()
        .prefix("paw-bench-rec-")
        .tempdir()
        .unwrap();
    let ca_path = keys.path().join("ssh_user_ca");
    let ca_key = paw_broker::crypto::ssh_ca::load_or_create(&ca_path, "bench CA").unwrap();
    let sshd = TempSshd::start(&ca_key.public_key().to_openssh().unwrap()).unwrap();
    let mut cfg = format!(
        "[sessions]\nssh_listen = \"127.0.0.1:0\"\nssh_ca_key = \"{}\"\nrecordings = \"{}\"\n",
        ca_path.display(),
        recordings.path().display()
    );
    for k in 1..=grants {
        cfg.push_str(&format!(
            "[[target]]\nname = \"web-{k}\"\nkind = \"ssh\"\naddress = \"{}\"\nhost_key = \"{}\"\n",
            sshd.address(),
            sshd.host_key()
        ));
    }
    cfg.push_str(POLICY);
    let b = Broker::start_raw(None, &cfg).await;
    // sshd checks certificates with the real clock; the broker's stays at this instant (tickets
    // and grants do not expire during the run).
    b.clock
        .0
        .store(real_now_ms(), std::sync::atomic::Ordering::SeqCst);
    let mut ada = b.enrolled_as("ada", &[]).await;
    let mut ids = Vec::new();
    for k in 1..=grants {
        let target = format!("web-{k}");
        let action = Action::Request {
            entitlement: "web-root".into(),
            target: target.clone(),
            role: "root".into(),
            duration_secs: 3600,
            justification: "benchmark of brokered ssh sessions".into(),
            ticket: None,
            start_at_ms: None,
        };
        let body = ada.stepup(&b, &action, &Tweak::default()).await;
        let (st, v) = ada
            .call(&b, "POST", "/v1/requests", Some(&json!({ "stepup": body })))
            .await;
        assert_eq!(
            (st, v["state"].as_str()),
            (StatusCode::OK, Some("active")),
            "{v}"
        );
        ids.push((v["id"].as_str().unwrap().to_owned(), target));
    }
    // The stock client's key and a certificate from the same CA.
    let ssh_key = keys.path().join("id_bench");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&ssh_key));
    run(Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&ca_path)
        .args(["-I", "bench-direct", "-n", "root", "-V", "-5m:+2h"])
        .arg(ssh_key.with_extension("pub")));
    Bench {
        b,
        sshd,
        ada,
        ca: Arc::new(UserCa::new(ca_key)),
        grants: ids,
        ssh_key,
        _keys: keys,
        recordings,
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Step-up for the session + redeem; the credential.
async fn redeem(bench: &mut Bench, grant: usize) -> Credential {
    let (g, target) = bench.grants[grant].clone();
    let action = Action::Session {
        grant_id: g.clone(),
        target,
    };
    let body = bench.ada.stepup(&bench.b, &action, &Tweak::default()).await;
    let (st, v) = bench
        .ada
        .call(
            &bench.b,
            "POST",
            &format!("/v1/grants/{g}/redeem"),
            Some(&json!({ "stepup": body })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    cred(&v)
}

fn cred(v: &Value) -> Credential {
    Credential {
        addr: v["ssh_addr"].as_str().unwrap().into(),
        host_key: v["ssh_host_key"].as_str().unwrap().into(),
        session_id: v["session_id"].as_str().unwrap().into(),
        ticket: v["ticket"].as_str().unwrap().to_owned().into(),
    }
}

/// A terminal on either path, with the same shape: input goes in through a channel to a task,
/// output comes out as [`TermEvent`]s on an unbounded channel.
enum Term {
    Broker(terminal::Terminal),
    Direct(mpsc::Sender<Option<Vec<u8>>>),
}

impl Term {
    async fn input(&self, data: &[u8]) {
        match self {
            Term::Broker(t) => t.input(data.to_vec()).await.unwrap(),
            Term::Direct(t) => t.send(Some(data.to_vec())).await.unwrap(),
        }
    }

    async fn close(&self) {
        match self {
            Term::Broker(t) => t.close().await,
            Term::Direct(t) => {
                let _ = t.send(None).await;
            }
        }
    }
}

type Events = mpsc::UnboundedReceiver<TermEvent>;

async fn open_broker(
    c: Credential,
    command: Option<&str>,
) -> Result<(Term, Events), paw_client::ClientError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let t = terminal::open(c, 80, 24, command.map(str::to_owned), move |e| {
        let _ = tx.send(e);
    })
    .await?;
    Ok((Term::Broker(t), rx))
}

struct PinnedHost(russh::keys::PublicKey);

impl russh::client::Handler for PinnedHost {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        k: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(
            matches!(k, russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } if key.key_data() == self.0.key_data()),
        )
    }
}

/// russh straight to sshd with a certificate from the broker's CA; the same client settings
/// and event loop as `paw_client::terminal`.
async fn open_direct(bench: &Bench, command: Option<&str>) -> (Term, Events) {
    open_direct_to(
        bench.sshd.address(),
        bench.sshd.host_key().to_owned(),
        bench.ca.clone(),
        command,
    )
    .await
}

async fn open_direct_to(
    addr: String,
    host_key: String,
    ca: Arc<UserCa>,
    command: Option<&str>,
) -> (Term, Events) {
    let key = paw_broker::crypto::ssh_ca::ephemeral_key().unwrap();
    let now = (real_now_ms() / 1000) as u64;
    let cert = ca
        .issue(
            key.public_key(),
            &CertRequest {
                user: "bench",
                grant_id: "direct",
                session_id: "direct",
                login: "root",
                now_secs: now,
                grant_end_secs: now + 3600,
            },
        )
        .unwrap();
    let config = Arc::new(russh::client::Config {
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(15)),
        nodelay: true,
        ..Default::default()
    });
    let hk = russh::keys::PublicKey::from_openssh(&host_key).unwrap();
    let mut h = russh::client::connect(config, addr.as_str(), PinnedHost(hk))
        .await
        .unwrap();
    assert!(h
        .authenticate_openssh_cert("root".to_owned(), Arc::new(key), cert)
        .await
        .unwrap()
        .success());
    let channel = h.channel_open_session().await.unwrap();
    channel
        .request_pty(false, "xterm-256color", 80, 24, 0, 0, &[])
        .await
        .unwrap();
    match command {
        Some(c) => channel.exec(false, c.as_bytes().to_vec()).await.unwrap(),
        None => channel.request_shell(false).await.unwrap(),
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let (cmds, mut crx) = mpsc::channel::<Option<Vec<u8>>>(256);
    tokio::spawn(async move {
        let (mut read, write) = channel.split();
        loop {
            tokio::select! {
                m = read.wait() => match m {
                    Some(ChannelMsg::Data { data }) => { let _ = tx.send(TermEvent::Output(data.to_vec())); }
                    Some(ChannelMsg::ExtendedData { data, .. }) => { let _ = tx.send(TermEvent::Output(data.to_vec())); }
                    Some(ChannelMsg::Close) | None => break,
                    Some(_) => {}
                },
                c = crx.recv() => match c {
                    Some(Some(d)) => { if write.data_bytes(d).await.is_err() { break; } }
                    Some(None) | None => { let _ = write.close().await; break; }
                },
            }
        }
        let _ = h
            .disconnect(russh::Disconnect::ByApplication, "closed", "")
            .await;
        let _ = tx.send(TermEvent::Ended {
            reason: "closed".into(),
            message: String::new(),
        });
    });
    (Term::Direct(cmds), rx)
}

// ---------------------------------------------------------------------------------------------
// 1. Bulk output

struct Bulk {
    bytes: u64,
    /// Connect to end of output.
    wall: Duration,
    /// First byte to last byte.
    stream: Duration,
}

impl Bulk {
    fn mib_s(&self) -> f64 {
        self.bytes as f64 / (1u64 << 20) as f64 / self.stream.as_secs_f64()
    }
}

fn bulk_command(n: usize) -> String {
    format!("yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c {n}")
}

async fn count_until_end(t0: Instant, rx: &mut Events) -> Bulk {
    let mut bytes = 0u64;
    let mut first = None;
    let mut last = t0;
    loop {
        match tokio::time::timeout(Duration::from_secs(120), rx.recv()).await {
            Ok(Some(TermEvent::Output(d))) => {
                if first.is_none() {
                    first = Some(Instant::now());
                }
                bytes += d.len() as u64;
                last = Instant::now();
            }
            Ok(Some(TermEvent::Ended { .. })) | Ok(None) => break,
            Err(_) => panic!("bulk output stalled after {bytes} bytes"),
        }
    }
    Bulk {
        bytes,
        wall: last - t0,
        stream: last - first.unwrap_or(t0),
    }
}

async fn bulk_broker(bench: &mut Bench, n: usize) -> Bulk {
    let c = redeem(bench, 0).await;
    let t0 = Instant::now();
    let (_t, mut rx) = open_broker(c, Some(&bulk_command(n))).await.unwrap();
    let r = count_until_end(t0, &mut rx).await;
    wait_no_live(&bench.b).await;
    // The recording of it is ~n bytes of JSON: drop it now.
    for e in std::fs::read_dir(bench.recordings.path())
        .unwrap()
        .flatten()
    {
        let _ = std::fs::remove_file(e.path());
    }
    r
}

async fn bulk_direct(bench: &Bench, n: usize) -> Bulk {
    let t0 = Instant::now();
    let (_t, mut rx) = open_direct(bench, Some(&bulk_command(n))).await;
    count_until_end(t0, &mut rx).await
}

/// The stock client straight to sshd, with a pty, with its key and certificate.
fn ssh_command(bench: &Bench, remote: Option<&str>) -> Command {
    let mut c = Command::new("ssh");
    c.args(["-tt", "-e", "none", "-i"])
        .arg(&bench.ssh_key)
        .args([
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
            &bench.sshd.port().to_string(),
            "root@127.0.0.1",
        ]);
    if let Some(r) = remote {
        c.arg(r);
    }
    c
}

fn bulk_openssh(bench: &Bench, n: usize) -> Bulk {
    let t0 = Instant::now();
    let mut child = ssh_command(bench, Some(&bulk_command(n)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep stdin open (an EOF on a pty session's input is not what a terminal does).
    let _stdin = child.stdin.take();
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    let mut first = None;
    let mut last = t0;
    loop {
        let k = out.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        if first.is_none() {
            first = Some(Instant::now());
        }
        bytes += k as u64;
        last = Instant::now();
    }
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "ssh: {status} {err}");
    Bulk {
        bytes,
        wall: last - t0,
        stream: last - first.unwrap_or(t0),
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Keystroke round trip

/// Waits for output containing `needle` (up to `limit`); `Err` says what came instead.
async fn wait_for(rx: &mut Events, needle: &[u8], limit: Duration) -> Result<(), String> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(TermEvent::Output(d))) => {
                out.extend(d);
                if out.windows(needle.len()).any(|w| w == needle) {
                    return Ok(());
                }
            }
            Ok(Some(TermEvent::Ended { reason, message })) => {
                return Err(format!("ended ({reason}: {message})"))
            }
            Ok(None) => return Err("event stream closed".into()),
            Err(_) => {
                return Err(format!(
                    "timed out; so far {:?}",
                    String::from_utf8_lossy(&out)
                ))
            }
        }
    }
}

/// Waits for any output at all.
async fn first_output(rx: &mut Events) {
    match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
        Ok(Some(TermEvent::Output(_))) => {}
        other => panic!("no first output: {other:?}"),
    }
}

/// Drops whatever output arrives within `quiet`.
async fn settle(rx: &mut Events, quiet: Duration) {
    while let Ok(Some(e)) = tokio::time::timeout(quiet, rx.recv()).await {
        assert!(matches!(e, TermEvent::Output(_)), "{e:?}");
    }
}

/// Waits for the prompt, then `stty -icanon; cat >/dev/null`: from then on every character
/// typed is echoed by the target's tty, once.
async fn prepare_echo(t: &Term, rx: &mut Events) {
    first_output(rx).await;
    settle(rx, Duration::from_millis(300)).await;
    t.input(b"stty -icanon; cat >/dev/null\n").await;
    settle(rx, Duration::from_millis(500)).await;
}

async fn keystroke(t: &Term, rx: &mut Events, c: u8) -> Duration {
    let t0 = Instant::now();
    t.input(&[c]).await;
    wait_for(rx, &[c], Duration::from_secs(10)).await.unwrap();
    t0.elapsed()
}

// ---------------------------------------------------------------------------------------------
// 3. Set-up time

struct Setup {
    stepup: Duration,
    redeem: Duration,
    login: Duration,
    prompt: Duration,
    total: Duration,
}

async fn one_setup(bench: &mut Bench) -> Setup {
    let (g, target) = bench.grants[0].clone();
    let t0 = Instant::now();
    let action = Action::Session {
        grant_id: g.clone(),
        target,
    };
    let body = bench.ada.stepup(&bench.b, &action, &Tweak::default()).await;
    let t1 = Instant::now();
    let (st, v) = bench
        .ada
        .call(
            &bench.b,
            "POST",
            &format!("/v1/grants/{g}/redeem"),
            Some(&json!({ "stepup": body })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let t2 = Instant::now();
    let (t, mut rx) = open_broker(cred(&v), None).await.unwrap();
    let t3 = Instant::now();
    first_output(&mut rx).await;
    let t4 = Instant::now();
    t.close().await;
    while let Some(e) = rx.recv().await {
        if matches!(e, TermEvent::Ended { .. }) {
            break;
        }
    }
    wait_no_live(&bench.b).await;
    Setup {
        stepup: t1 - t0,
        redeem: t2 - t1,
        login: t3 - t2,
        prompt: t4 - t3,
        total: t4 - t0,
    }
}

/// The same shell straight to sshd with russh: (connect + log in + pty + shell, → first output).
async fn one_setup_direct(bench: &Bench) -> (Duration, Duration) {
    let t0 = Instant::now();
    let (t, mut rx) = open_direct(bench, None).await;
    let t1 = Instant::now();
    first_output(&mut rx).await;
    let t2 = Instant::now();
    t.close().await;
    while let Some(e) = rx.recv().await {
        if matches!(e, TermEvent::Ended { .. }) {
            break;
        }
    }
    (t1 - t0, t2 - t1)
}

/// The stock client: spawn `ssh -tt` to a login shell, until its first output byte.
fn one_setup_openssh(bench: &Bench) -> Duration {
    let t0 = Instant::now();
    let mut child = ssh_command(bench, None)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut b = [0u8; 1];
    assert_eq!(out.read(&mut b).unwrap(), 1);
    let d = t0.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    d
}

async fn wait_no_live(b: &Broker) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !b.state.sessions.live_sessions.is_empty() {
        assert!(Instant::now() < deadline, "sessions still held");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Concurrent sessions

#[derive(Default)]
struct Soak {
    sessions: usize,
    ok: usize,
    open_errors: usize,
    answer_errors: usize,
    ended_early: usize,
    live_at_hold_end: usize,
    all_open: Duration,
    all_answered: Duration,
    first_errors: Vec<String>,
}

async fn concurrent(bench: &mut Bench, n: usize, hold: Duration) -> Soak {
    let mut creds = Vec::with_capacity(n);
    for i in 0..n {
        creds.push(redeem(bench, i / PER_GRANT).await);
    }
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (i, c) in creds.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let (t, mut rx) = match open_broker(c, None).await {
                Ok(x) => x,
                Err(e) => return Err((true, format!("session {i}: open: {e}"))),
            };
            let opened = start.elapsed();
            t.input(format!("echo ok-$(({i}+0))\n").as_bytes()).await;
            match wait_for(
                &mut rx,
                format!("ok-{i}\r\n").as_bytes(),
                Duration::from_secs(60),
            )
            .await
            {
                Ok(()) => Ok((t, rx, opened, start.elapsed())),
                Err(e) => Err((false, format!("session {i}: answer: {e}"))),
            }
        }));
    }
    let mut soak = Soak {
        sessions: n,
        ..Default::default()
    };
    let mut held = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok((t, rx, opened, answered)) => {
                soak.all_open = soak.all_open.max(opened);
                soak.all_answered = soak.all_answered.max(answered);
                held.push((t, rx));
            }
            Err((open, e)) => {
                if open {
                    soak.open_errors += 1;
                } else {
                    soak.answer_errors += 1;
                }
                if soak.first_errors.len() < 3 {
                    soak.first_errors.push(e);
                }
            }
        }
    }
    tokio::time::sleep(hold).await;
    soak.live_at_hold_end = bench.b.state.sessions.live_sessions.len();
    // Still there: nothing ended meanwhile, and each answers again.
    for (i, (t, rx)) in held.iter_mut().enumerate() {
        let mut ended = false;
        while let Ok(e) = rx.try_recv() {
            if matches!(e, TermEvent::Ended { .. }) {
                ended = true;
            }
        }
        if ended {
            soak.ended_early += 1;
            continue;
        }
        t.input(format!("echo again-$(({i}+0))\n").as_bytes()).await;
    }
    for (i, (_, rx)) in held.iter_mut().enumerate() {
        match wait_for(
            rx,
            format!("again-{i}\r\n").as_bytes(),
            Duration::from_secs(30),
        )
        .await
        {
            Ok(()) => soak.ok += 1,
            Err(e) => {
                if soak.first_errors.len() < 3 {
                    soak.first_errors.push(format!("after the hold: {e}"));
                }
            }
        }
    }
    for (t, _) in &held {
        t.close().await;
    }
    drop(held);
    wait_no_live(&bench.b).await;
    soak
}

/// The same through russh straight to sshd: (answered, time until all answered).
async fn concurrent_direct(bench: &Bench, n: usize) -> (usize, Duration) {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (addr, hk, ca) = (
            bench.sshd.address(),
            bench.sshd.host_key().to_owned(),
            bench.ca.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let (t, mut rx) = open_direct_to(addr, hk, ca, None).await;
            t.input(format!("echo ok-$(({i}+0))\n").as_bytes()).await;
            let r = wait_for(
                &mut rx,
                format!("ok-{i}\r\n").as_bytes(),
                Duration::from_secs(60),
            )
            .await
            .map(|()| start.elapsed());
            t.close().await;
            r
        }));
    }
    let mut ok = 0;
    let mut all = Duration::ZERO;
    for t in tasks {
        if let Ok(Ok(d)) = t.await {
            ok += 1;
            all = all.max(d);
        }
    }
    (ok, all)
}

// ---------------------------------------------------------------------------------------------

fn median_bulk(mut v: Vec<Bulk>) -> (Bulk, f64, f64) {
    v.sort_by(|a, b| a.mib_s().total_cmp(&b.mib_s()));
    let (lo, hi) = (v[0].mib_s(), v[v.len() - 1].mib_s());
    let m = v.swap_remove(v.len() / 2);
    (m, lo, hi)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    (pct(&v, 0.5), pct(&v, 0.99), *v.last().unwrap())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let s = sizes();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let grants = s.concurrent.div_ceil(PER_GRANT).max(1);
        let mut bench = setup(grants).await;
        println!("load average at start: {}", loadavg());

        // 1. Bulk output: rounds of broker, direct russh, direct OpenSSH, interleaved.
        let n = s.bulk;
        let (mut broker, mut direct, mut openssh) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..s.rounds {
            broker.push(bulk_broker(&mut bench, n).await);
            direct.push(bulk_direct(&bench, n).await);
            let bench = &bench;
            openssh.push(tokio::task::block_in_place(|| bulk_openssh(bench, n)));
        }
        let (broker, broker_lo, broker_hi) = median_bulk(broker);
        let (direct, direct_lo, direct_hi) = median_bulk(direct);
        let (openssh, openssh_lo, openssh_hi) = median_bulk(openssh);
        println!("bulk done; load average: {}", loadavg());

        // 2. Keystrokes: both terminals open at once, samples alternating between them.
        let c = redeem(&mut bench, 0).await;
        let (tb, mut rxb) = open_broker(c, None).await.unwrap();
        let (td, mut rxd) = open_direct(&bench, None).await;
        prepare_echo(&tb, &mut rxb).await;
        prepare_echo(&td, &mut rxd).await;
        let mut lat_broker = Vec::with_capacity(s.samples);
        let mut lat_direct = Vec::with_capacity(s.samples);
        for i in 0..s.warmup + s.samples {
            let c = b'a' + (i % 26) as u8;
            let think = Duration::from_millis(5);
            let (b, d) = if i % 2 == 0 {
                let b = keystroke(&tb, &mut rxb, c).await;
                tokio::time::sleep(think).await;
                (b, keystroke(&td, &mut rxd, c).await)
            } else {
                let d = keystroke(&td, &mut rxd, c).await;
                tokio::time::sleep(think).await;
                (keystroke(&tb, &mut rxb, c).await, d)
            };
            tokio::time::sleep(think).await;
            if i >= s.warmup {
                lat_broker.push(b);
                lat_direct.push(d);
            }
        }
        tb.close().await;
        td.close().await;
        drop((tb, td));
        wait_no_live(&bench.b).await;
        println!("keystrokes done; load average: {}", loadavg());

        // 3. Set-up time: broker, direct russh, direct OpenSSH, interleaved.
        let mut setups = Vec::with_capacity(s.setups);
        let mut direct_setups = Vec::with_capacity(s.setups);
        let mut openssh_setups = Vec::with_capacity(s.setups);
        for _ in 0..s.setups {
            setups.push(one_setup(&mut bench).await);
            direct_setups.push(one_setup_direct(&bench).await);
            let bench = &bench;
            openssh_setups.push(tokio::task::block_in_place(|| one_setup_openssh(bench)));
        }
        println!("set-up done; load average: {}", loadavg());

        // 4. Concurrent sessions.
        let soak = concurrent(&mut bench, s.concurrent, s.hold).await;
        println!("concurrency done; load average: {}", loadavg());
        let (direct_ok, direct_all) = concurrent_direct(&bench, s.concurrent).await;
        println!("direct concurrency done; load average: {}", loadavg());

        paw_broker::audit::verify(&bench.b.db).await.unwrap();

        // The table.
        println!();
        println!(
            "## bulk output ({} MiB asked, pty on every path; median of {} interleaved rounds)",
            n >> 20,
            s.rounds
        );
        println!(
            "| path | bytes received | connect→last byte s | first→last byte s | MiB/s (median) | MiB/s min–max |"
        );
        println!("|---|---|---|---|---|---|");
        for (name, r, lo, hi) in [
            ("broker (paw terminal → pawd → sshd)", &broker, broker_lo, broker_hi),
            ("direct russh → sshd", &direct, direct_lo, direct_hi),
            ("direct OpenSSH `ssh -tt` → sshd", &openssh, openssh_lo, openssh_hi),
        ] {
            println!(
                "| {name} | {} | {:.2} | {:.2} | {:.1} | {lo:.1}–{hi:.1} |",
                r.bytes,
                r.wall.as_secs_f64(),
                r.stream.as_secs_f64(),
                r.mib_s()
            );
        }
        println!(
            "broker / direct OpenSSH = {:.2}; broker / direct russh = {:.2}",
            broker.mib_s() / openssh.mib_s(),
            broker.mib_s() / direct.mib_s()
        );

        println!();
        println!("## keystroke echo round trip ({} samples after {} warm-up)", s.samples, s.warmup);
        println!("| path | p50 ms | p99 ms | max ms |");
        println!("|---|---|---|---|");
        let (b50, b99, bmax) = percentiles(lat_broker);
        let (d50, d99, dmax) = percentiles(lat_direct);
        println!("| broker | {:.3} | {:.3} | {:.3} |", ms(b50), ms(b99), ms(bmax));
        println!("| direct russh | {:.3} | {:.3} | {:.3} |", ms(d50), ms(d99), ms(dmax));
        println!(
            "| added by the broker | {:+.3} | {:+.3} | |",
            ms(b50) - ms(d50),
            ms(b99) - ms(d99)
        );

        println!();
        println!("## set-up, click to prompt ({} sessions, one after another)", setups.len());
        println!("| part | p50 ms | p99 ms | max ms |");
        println!("|---|---|---|---|");
        type Part = fn(&Setup) -> Duration;
        let parts: [(&str, Part); 5] = [
            ("step-up (start + key assertion)", |x| x.stepup),
            ("redeem (verify step-up, ticket)", |x| x.redeem),
            ("connect + log in + pty + shell request", |x| x.login),
            ("target connection → first output", |x| x.prompt),
            ("**total**", |x| x.total),
        ];
        for (name, f) in parts {
            let (p50, p99, max) = percentiles(setups.iter().map(f).collect());
            println!("| {name} | {:.2} | {:.2} | {:.2} |", ms(p50), ms(p99), ms(max));
        }
        type DirectPart = fn(&(Duration, Duration)) -> Duration;
        let direct_parts: [(&str, DirectPart); 3] = [
            ("direct russh: connect + log in + pty + shell request", |x| x.0),
            ("direct russh: → first output", |x| x.1),
            ("direct russh: total", |x| x.0 + x.1),
        ];
        for (name, f) in direct_parts {
            let (p50, p99, max) = percentiles(direct_setups.iter().map(f).collect());
            println!("| {name} | {:.2} | {:.2} | {:.2} |", ms(p50), ms(p99), ms(max));
        }
        let (p50, p99, max) = percentiles(openssh_setups);
        println!(
            "| direct OpenSSH `ssh -tt`: spawn → first output | {:.2} | {:.2} | {:.2} |",
            ms(p50),
            ms(p99),
            ms(max)
        );

        println!();
        println!("## concurrent sessions");
        println!("| sessions | answered after hold | open errors | answer errors | ended early | live at hold end | all opened s | all answered s | hold s |");
        println!("|---|---|---|---|---|---|---|---|---|");
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.0} |",
            soak.sessions,
            soak.ok,
            soak.open_errors,
            soak.answer_errors,
            soak.ended_early,
            soak.live_at_hold_end,
            soak.all_open.as_secs_f64(),
            soak.all_answered.as_secs_f64(),
            s.hold.as_secs_f64()
        );
        println!(
            "direct russh, same {} shells at once: {direct_ok} answered, all answered after {:.2} s",
            s.concurrent,
            direct_all.as_secs_f64()
        );
        for e in &soak.first_errors {
            println!("error: {e}");
        }
        println!("load average at end: {}", loadavg());

        let Bench { b, sshd, recordings, .. } = bench;
        for t in &b.tasks {
            t.abort();
        }
        b.db.close().await;
        drop(b);
        drop(sshd);
        drop(recordings);
        assert_eq!(soak.ok, soak.sessions, "not every concurrent session answered");
    });
}
