//! What command control costs an interactive user (BENCHMARKS.md, issue #15): the broker holds
//! every line end of a shell under command rules until the command it completes is checked,
//! and follows the target's output with a terminal emulator; keystrokes other than line ends
//! pass at once. The goal: the rules cost no more than 1 ms p99 per keystroke.
//!
//! One real `pawd` (SQLite, the `replicas` harness) and one real OpenSSH sshd whose shell is
//! bash; the user is the INSECURE virtual key, signed in once. Three paths to the same sshd,
//! all with a pty of 80×24 and opened at once:
//! - **rules**: paw's terminal (`paw_client::terminal`) → the broker's front door → sshd, under
//!   an entitlement with a realistic rule set (`rm` and friends denied, `systemctl restart`
//!   held for a step-up, `dd` warned about; no allow-list; strict);
//! - **no rules**: the same, under an entitlement without rules (the broker only relays and
//!   records);
//! - **floor**: the stock `ssh -tt` straight to sshd with a key certified here by the broker's
//!   user CA (`ssh-keygen -s`), driven through pipes.
//!
//! Figures, the paths interleaved sample by sample so that the drift of the machine's load
//! falls on all of them alike:
//! 1. Keystroke round trip: one printable character typed at bash's prompt (readline) until
//!    its echo comes back, 2 ms apart; ^U clears the line every 40 characters (not timed).
//! 2. Enter to prompt: `true` typed and echoed, then Enter, timed until the next prompt
//!    (`# `) shows. Under rules this is the line's check: an allowed command goes on.
//! 3. The broker's CPU per keystroke and per `true⏎` line, with and without rules: the same
//!    typing into one session at a time (blocks alternating a, b, a, b), `pawd`'s CPU time
//!    summed over its threads (`/proc/PID/task/*/schedstat`) around each block. The latency
//!    percentiles of a shared 2-core machine are mostly its scheduling noise; this is not.
//! 4. Bulk exec: `head -c N /dev/zero | base64 | cat` as an exec session (checked once, before
//!    the target is dialled, under rules), first to last byte of output, and `pawd`'s CPU per
//!    MiB relayed; rounds alternate paths. `| cat` because base64's stdout on a pty is
//!    line-buffered: without it the target makes one 77-byte write per line and its tty, not
//!    the relay, sets the pace.
//!
//! `cargo xtask bench commands` (builds the release `pawd` with the `virtual-key` feature and
//! runs this with `PAW_TEST_PAWD` set), or `PAW_TEST_PAWD=… cargo bench -p paw-tests --bench
//! commands_keystrokes`. `PAW_BENCH_TRIALS`: keystrokes per path (default 2000; Enter-to-prompt
//! takes a fifth of it, at least 200, unless `PAW_BENCH_ENTERS`); `PAW_BENCH_BULK_MIB` (default 256) and
//! `PAW_BENCH_ROUNDS` (default 3). Without `--bench` or `PAW_BENCH_TRIALS`, as under `cargo
//! test --benches`, a short check with tiny sizes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use paw_client::terminal::{self, Credential, TermEvent, Terminal};
use paw_proto::action::Action;
use paw_tests::bench::{cpu_ns, direct_key, files, loadavg, median, ms, pct, ssh_command};
use paw_tests::replicas::{Options, Replicas, Store, SSH_TARGET};
use paw_tests::virtual_user::VirtualUser;
use serde_json::Value;
use tokio::sync::mpsc;

const PAWD: usize = 0;

const POLICY: &str = r#"
[groups]
sre = ["ada"]

[[entitlement]]
id = "web-free"
description = "Root on the web servers, no command rules"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
max_sessions = 16

[[entitlement]]
id = "web-rules"
description = "Root on the web servers under command rules"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
max_sessions = 16

[entitlement.commands]
strict = true
rules = [
  { program = "rm", action = "deny", reason = "deleting is done by the release tool" },
  { program = "shred", action = "deny" },
  { program = "mkfs*", action = "deny" },
  { program = "systemctl", args = ["restart"], action = "step_up", reason = "restarts are confirmed with the key" },
  { program = "reboot", action = "step_up" },
  { program = "dd", action = "warn" },
]
"#;

/// Characters typed per line before ^U clears it (the prompt and the line stay on one row).
const LINE: usize = 40;

struct Sizes {
    warmup: usize,
    keystrokes: usize,
    enters: usize,
    /// Keystrokes and lines per CPU block.
    cpu_keys: usize,
    cpu_lines: usize,
    bulk: usize,
    rounds: usize,
}

fn sizes() -> Sizes {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    let trials = env("PAW_BENCH_TRIALS");
    if trials.is_some() || std::env::args().any(|a| a == "--bench") {
        let keystrokes = trials.unwrap_or(2000).max(10);
        Sizes {
            warmup: 100,
            keystrokes,
            enters: env("PAW_BENCH_ENTERS").unwrap_or((keystrokes / 5).max(200)),
            cpu_keys: 1000,
            cpu_lines: 200,
            bulk: env("PAW_BENCH_BULK_MIB").unwrap_or(256) << 20,
            rounds: env("PAW_BENCH_ROUNDS").unwrap_or(3).max(1),
        }
    } else {
        Sizes {
            warmup: 5,
            keystrokes: 30,
            enters: 10,
            cpu_keys: 20,
            cpu_lines: 5,
            bulk: 1 << 20,
            rounds: 1,
        }
    }
}

fn main() {
    let s = sizes();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(s));
}

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Floor,
    Free,
    Rules,
}

const PATHS: [Which; 3] = [Which::Floor, Which::Free, Which::Rules];

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Floor => "floor: direct OpenSSH `ssh -tt` → sshd",
            Which::Free => "(a) paw → pawd → sshd, no rules",
            Which::Rules => "(b) paw → pawd → sshd, rules",
        }
    }
}

struct Bench {
    r: Replicas,
    ada: VirtualUser,
    free: String,
    rules: String,
    ssh_key: PathBuf,
    _keys: tempfile::TempDir,
}

async fn run(s: Sizes) {
    let started = Instant::now();
    let r = Replicas::start_with(Options {
        replicas: 1,
        store: Store::Sqlite,
        sshd: true,
        extra_config: POLICY.to_owned(),
    })
    .await
    .unwrap();
    let mut ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    let free = grant(&r, &mut ada, "web-free").await;
    let rules = grant(&r, &mut ada, "web-rules").await;
    // The stock client's key, certified by the broker's user CA (which the sshd trusts).
    let (keys, ssh_key) = direct_key(&r);
    let mut b = Bench {
        r,
        ada,
        free,
        rules,
        ssh_key,
        _keys: keys,
    };
    eprintln!(
        "set up in {:.1} s; load {}",
        started.elapsed().as_secs_f64(),
        loadavg()
    );

    // Three shells at once, one per path.
    let mut shells = Vec::new();
    for w in PATHS {
        shells.push(open_shell(&mut b, w).await);
    }

    // 1. Keystroke round trip.
    let at = |t: Instant| t.duration_since(started).as_secs();
    let t1 = Instant::now();
    let load_before = loadavg();
    let mut keys: [Vec<Duration>; 3] = Default::default();
    for i in 0..s.warmup + s.keystrokes {
        for k in 0..3 {
            // Rotate which path goes first so none is always right after a pause.
            let p = (i + k) % 3;
            let took = shells[p].keystroke(i).await;
            if i >= s.warmup {
                keys[p].push(took);
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for t in shells.iter_mut() {
        t.clear().await;
    }
    let load_keys = format!("{load_before} → {}", loadavg());
    let t2 = Instant::now();

    // 2. Enter to prompt for an allowed command.
    let mut enters: [Vec<Duration>; 3] = Default::default();
    let warm = s.warmup / 10;
    for i in 0..warm + s.enters {
        for k in 0..3 {
            let p = (i + k) % 3;
            let took = shells[p].enter().await;
            if i >= warm {
                enters[p].push(took);
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let load_enters = loadavg();
    let t3 = Instant::now();

    // 3. pawd's CPU per keystroke and per line, one session at a time: a, b, a, b.
    let pid = b.r.pid(PAWD).unwrap();
    let mut cpu_keys = [0u64; 2];
    let mut cpu_lines = [0u64; 2];
    for block in 0..4 {
        let p = 1 + block % 2;
        let t = &mut shells[p];
        let c0 = cpu_ns(pid);
        for i in 0..s.cpu_keys {
            t.keystroke(i).await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        t.clear().await;
        let c1 = cpu_ns(pid);
        for _ in 0..s.cpu_lines {
            t.enter().await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        t.settle(Duration::from_millis(100)).await;
        let c2 = cpu_ns(pid);
        cpu_keys[p - 1] += c1.saturating_sub(c0);
        cpu_lines[p - 1] += c2.saturating_sub(c1);
    }
    // Keystrokes sent per path: the characters and a ^U after every LINE of them, two blocks.
    let keys_sent = (s.cpu_keys + s.cpu_keys.div_ceil(LINE)) as f64 * 2.0;
    let lines_sent = s.cpu_lines as f64 * 2.0;
    for t in shells {
        t.close().await;
    }
    // The premise: under rules every Enter was checked (a chapter marker per allowed line in
    // the recording), without rules none was.
    let recordings = b.r.broker_dir().join("recordings");
    let checked = warm + s.enters + 2 * s.cpu_lines;
    let deadline = Instant::now() + Duration::from_secs(10);
    let markers = loop {
        let n: Vec<usize> = files(&recordings)
            .iter()
            .map(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .matches(r#""m","allow: true""#)
                    .count()
            })
            .filter(|n| *n > 0)
            .collect();
        if n == [checked] || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        markers,
        [checked],
        "one session's recording in {} should hold {checked} `allow: true` markers",
        recordings.display()
    );

    // 4. Bulk exec.
    let t4 = Instant::now();
    let cmd = format!("head -c {} /dev/zero | base64 | cat", s.bulk);
    let expected = bulk_bytes(s.bulk);
    let kept: Vec<PathBuf> = files(&recordings);
    let mut bulk: [Vec<f64>; 3] = Default::default();
    // pawd's CPU per MiB relayed: what a per-byte cost would show in, whatever the load.
    let mut bulk_cpu: [Vec<f64>; 3] = Default::default();
    let load_bulk_before = loadavg();
    for round in 0..s.rounds {
        for k in 0..3 {
            let p = (round + k) % 3;
            let c0 = cpu_ns(pid);
            let got = match PATHS[p] {
                Which::Floor => {
                    let c = ssh_command(&b.r, &b.ssh_key, true, Some(&cmd));
                    tokio::task::spawn_blocking(move || bulk_openssh(c))
                        .await
                        .unwrap()
                }
                w => bulk_paw(&mut b, w, &cmd).await,
            };
            assert_eq!(
                got.bytes,
                expected,
                "{}: the output was cut short",
                PATHS[p].name()
            );
            bulk[p].push(got.mib_s());
            bulk_cpu[p].push(
                cpu_ns(pid).saturating_sub(c0) as f64
                    / 1e6
                    / (got.bytes as f64 / (1u64 << 20) as f64),
            );
            // Each broker round leaves a recording about the size of the output: drop it.
            for f in files(&recordings) {
                if !kept.contains(&f) {
                    let _ = std::fs::remove_file(f);
                }
            }
        }
    }
    let load_bulk = format!("{load_bulk_before} → {}", loadavg());
    let t5 = Instant::now();

    // The tables.
    println!(
        "\ncommand control, one pawd (SQLite) and one OpenSSH sshd (bash), {} cores, run took {:.0} s",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        started.elapsed().as_secs_f64()
    );
    println!(
        "\n1. keystroke round trip at bash's prompt, {} per path after {} warm-up, interleaved \
         (load {load_keys}; {}–{} s into the run)",
        s.keystrokes,
        s.warmup,
        at(t1),
        at(t2)
    );
    latency_table(&mut keys);
    println!(
        "\n2. Enter to prompt, `true`, {} per path after {warm} warm-up, interleaved (load {load_enters}; {}–{} s)",
        s.enters,
        at(t2),
        at(t3)
    );
    latency_table(&mut enters);
    println!(
        "\n3. pawd CPU time (all threads), one session at a time, blocks a b a b of {} keystrokes \
         (2 ms apart, ^U every {LINE}) then {} lines `true⏎` ({}–{} s)",
        s.cpu_keys,
        s.cpu_lines,
        at(t3),
        at(t4)
    );
    println!("| path | µs per keystroke | µs per line `true⏎` (5 keystrokes) |");
    println!("|---|---:|---:|");
    for (k, w) in [Which::Free, Which::Rules].into_iter().enumerate() {
        println!(
            "| {} | {:.1} | {:.1} |",
            w.name(),
            cpu_keys[k] as f64 / 1000.0 / keys_sent,
            cpu_lines[k] as f64 / 1000.0 / lines_sent
        );
    }
    println!(
        "(b) − (a): {:+.1} µs per keystroke, {:+.1} µs per line",
        (cpu_keys[1] as f64 - cpu_keys[0] as f64) / 1000.0 / keys_sent,
        (cpu_lines[1] as f64 - cpu_lines[0] as f64) / 1000.0 / lines_sent
    );
    println!(
        "\n4. bulk exec `{cmd}` with a pty, {expected} bytes of output, {} rounds per path \
         alternating (load {load_bulk}; {}–{} s)",
        s.rounds,
        at(t4),
        at(t5)
    );
    println!("| path | MiB/s median | min–max | median / floor | pawd CPU ms per MiB, median (min–max) |");
    println!("|---|---:|---:|---:|---:|");
    let floor = median(&mut bulk[0]);
    for (p, v) in bulk.iter_mut().enumerate() {
        let m = median(v);
        let cpu = &mut bulk_cpu[p];
        println!(
            "| {} | {m:.1} | {:.1}–{:.1} | {:.2} | {} |",
            PATHS[p].name(),
            v[0],
            v[v.len() - 1],
            m / floor,
            if PATHS[p] == Which::Floor {
                "–".to_owned()
            } else {
                let c = median(cpu);
                format!("{c:.2} ({:.2}–{:.2})", cpu[0], cpu[cpu.len() - 1])
            }
        );
    }
    let free = median(&mut bulk[1]);
    let rules = median(&mut bulk[2]);
    println!(
        "rules / no rules: {:.3} ({:+.1} MiB/s)",
        rules / free,
        rules - free
    );
}

fn latency_table(v: &mut [Vec<Duration>; 3]) {
    let floor = [pct(&mut v[0], 50), pct(&mut v[0], 99)];
    println!("| path | p50 ms | p90 ms | p99 ms | max ms | p50 / floor | p99 / floor |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (p, d) in v.iter_mut().enumerate() {
        let (p50, p99) = (pct(d, 50), pct(d, 99));
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} | {:.2} |",
            PATHS[p].name(),
            ms(p50),
            ms(pct(d, 90)),
            ms(p99),
            ms(d[d.len() - 1]),
            p50.as_secs_f64() / floor[0].as_secs_f64(),
            p99.as_secs_f64() / floor[1].as_secs_f64(),
        );
    }
    let (a50, a99) = (pct(&mut v[1], 50), pct(&mut v[1], 99));
    let (b50, b99) = (pct(&mut v[2], 50), pct(&mut v[2], 99));
    let d99 = ms(b99) - ms(a99);
    println!(
        "(b) − (a): p50 {:+.3} ms, p99 {d99:+.3} ms ({} the 1 ms p99 goal)",
        ms(b50) - ms(a50),
        if d99 < 1.0 { "within" } else { "OVER" }
    );
}

// ---------------------------------------------------------------------------------------------
// Grants and terminals

async fn grant(r: &Replicas, user: &mut VirtualUser, entitlement: &str) -> String {
    let request = Action::Request {
        entitlement: entitlement.into(),
        target: SSH_TARGET.into(),
        role: "root".into(),
        duration_secs: 30 * 60,
        justification: format!("keystroke bench under {entitlement}"),
        ticket: None,
        start_at_ms: None,
    };
    let v = user
        .signed(&r.url(PAWD), "/v1/requests", &request)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["state"], "active", "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// Step-up for a session under `grant` and redeem: the front door's one-time credential.
async fn redeem(b: &mut Bench, grant: &str) -> Credential {
    let session = Action::Session {
        grant_id: grant.into(),
        target: SSH_TARGET.into(),
    };
    let minted = b
        .ada
        .signed(
            &b.r.url(PAWD),
            &format!("/v1/grants/{grant}/redeem"),
            &session,
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    credential(&minted)
}

fn credential(minted: &Value) -> Credential {
    Credential {
        addr: minted["ssh_addr"].as_str().unwrap().to_owned(),
        host_key: minted["ssh_host_key"].as_str().unwrap().to_owned(),
        session_id: minted["session_id"].as_str().unwrap().to_owned(),
        ticket: minted["ticket"].as_str().unwrap().to_owned().into(),
    }
}

enum Ev {
    Out(Vec<u8>),
    End(String),
}

enum Input {
    Paw(Terminal),
    Ssh(ChildStdin, Child),
}

/// A live terminal on any path: input in, output chunks out as they arrive.
struct Term {
    which: Which,
    input: Input,
    rx: mpsc::UnboundedReceiver<Ev>,
}

async fn open_paw(b: &mut Bench, w: Which, command: Option<&str>) -> Term {
    let grant = if w == Which::Rules {
        b.rules.clone()
    } else {
        b.free.clone()
    };
    let cred = redeem(b, &grant).await;
    let (tx, rx) = mpsc::unbounded_channel();
    let t = terminal::open(cred, 80, 24, command.map(str::to_owned), move |e| {
        let _ = tx.send(match e {
            TermEvent::Output(d) => Ev::Out(d),
            TermEvent::Ended { reason, message } => Ev::End(format!("{reason}: {message}")),
        });
    })
    .await
    .unwrap();
    Term {
        which: w,
        input: Input::Paw(t),
        rx,
    }
}

fn open_ssh(b: &Bench) -> Term {
    let mut child = ssh_command(&b.r, &b.ssh_key, true, None)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || pump(out, tx));
    Term {
        which: Which::Floor,
        input: Input::Ssh(stdin, child),
        rx,
    }
}

/// Output of the stock client, chunk by chunk as `read` returns it.
fn pump(mut out: impl Read, tx: mpsc::UnboundedSender<Ev>) {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match out.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = tx.send(Ev::End("ssh's output closed".into()));
                return;
            }
            Ok(n) => {
                if tx.send(Ev::Out(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
        }
    }
}

async fn open_shell(b: &mut Bench, w: Which) -> Term {
    let mut t = match w {
        Which::Floor => open_ssh(b),
        w => open_paw(b, w, None).await,
    };
    t.until_within(b"# ", Duration::from_secs(30)).await;
    t.settle(Duration::from_millis(300)).await;
    t
}

impl Term {
    /// Types the `i`-th character of a line of letters (clearing the line with ^U first every
    /// [`LINE`] characters, untimed); the time until its echo.
    async fn keystroke(&mut self, i: usize) -> Duration {
        if i > 0 && i.is_multiple_of(LINE) {
            self.clear().await;
        }
        let letters = b"abcdefghijklmnopqrstuvwxyz";
        let c = letters[i % letters.len()];
        self.drain();
        let t0 = Instant::now();
        self.send(&[c]).await;
        self.until(&[c]).await - t0
    }

    /// ^U, and the shell's redraw let by.
    async fn clear(&mut self) {
        self.send(b"\x15").await;
        self.settle(Duration::from_millis(20)).await;
    }

    /// Types `true` and, once it shows, Enter: the time from Enter to the next prompt.
    async fn enter(&mut self) -> Duration {
        self.drain();
        self.send(b"true").await;
        self.until(b"true").await;
        let t0 = Instant::now();
        self.send(b"\r").await;
        self.until(b"# ").await - t0
    }

    async fn send(&mut self, bytes: &[u8]) {
        match &mut self.input {
            Input::Paw(t) => t.input(bytes.to_vec()).await.unwrap(),
            Input::Ssh(stdin, _) => {
                stdin.write_all(bytes).unwrap();
                stdin.flush().unwrap();
            }
        }
    }

    /// Drops the output that has already arrived.
    fn drain(&mut self) {
        while let Ok(e) = self.rx.try_recv() {
            if let Ev::End(why) = e {
                panic!("{}: the session ended ({why})", self.which.name());
            }
        }
    }

    /// When output from now on first contains `needle` (10 s at most).
    async fn until(&mut self, needle: &[u8]) -> Instant {
        self.until_within(needle, Duration::from_secs(10)).await
    }

    async fn until_within(&mut self, needle: &[u8], limit: Duration) -> Instant {
        let deadline = tokio::time::Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Ev::Out(d))) => {
                    let at = Instant::now();
                    seen.extend(d);
                    if seen.windows(needle.len()).any(|w| w == needle) {
                        return at;
                    }
                }
                Ok(Some(Ev::End(why))) => panic!(
                    "{}: the session ended ({why}): {:?}",
                    self.which.name(),
                    String::from_utf8_lossy(&seen)
                ),
                Ok(None) | Err(_) => panic!(
                    "{}: no {:?} within {limit:?}: {:?}",
                    self.which.name(),
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&seen)
                ),
            }
        }
    }

    /// Drops output until none has come for `quiet`.
    async fn settle(&mut self, quiet: Duration) {
        while let Ok(Some(e)) = tokio::time::timeout(quiet, self.rx.recv()).await {
            if let Ev::End(why) = e {
                panic!("{}: the session ended ({why})", self.which.name());
            }
        }
    }

    async fn close(self) {
        match self.input {
            Input::Paw(t) => t.close().await,
            Input::Ssh(stdin, mut child) => {
                drop(stdin);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bulk exec

struct Bulk {
    bytes: u64,
    /// First byte to last byte.
    stream: Duration,
}

impl Bulk {
    fn mib_s(&self) -> f64 {
        self.bytes as f64 / (1u64 << 20) as f64 / self.stream.as_secs_f64()
    }
}

/// What `head -c n /dev/zero | base64` prints through a pty: 76-character lines, each `\n`
/// turned into `\r\n`.
fn bulk_bytes(n: usize) -> u64 {
    let b64 = 4 * n.div_ceil(3);
    (b64 + 2 * b64.div_ceil(76)) as u64
}

async fn bulk_paw(b: &mut Bench, w: Which, cmd: &str) -> Bulk {
    let mut t = open_paw(b, w, Some(cmd)).await;
    let mut bytes = 0u64;
    let mut first = None;
    let mut last = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(120), t.rx.recv()).await {
            Ok(Some(Ev::Out(d))) => {
                last = Instant::now();
                first.get_or_insert(last);
                bytes += d.len() as u64;
            }
            Ok(Some(Ev::End(_)) | None) => break,
            Err(_) => panic!("{}: bulk output stalled after {bytes} bytes", w.name()),
        }
    }
    Bulk {
        bytes,
        stream: last - first.unwrap_or(last),
    }
}

fn bulk_openssh(mut cmd: Command) -> Bulk {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep stdin open: a terminal's input does not end.
    let _stdin = child.stdin.take();
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    let mut first = None;
    let mut last = Instant::now();
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        last = Instant::now();
        first.get_or_insert(last);
        bytes += n as u64;
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
        stream: last - first.unwrap_or(last),
    }
}

// ---------------------------------------------------------------------------------------------
// Figures
