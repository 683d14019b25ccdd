//! File transfer through the broker (BENCHMARKS.md, issue #18): the stock OpenSSH `sftp` client
//! uploading and downloading one large file through the broker's front door (its SFTP subsystem,
//! which decodes both sides, checks every path against the entitlement's rules and audits each
//! file) against the same client straight to the same sshd. The goal: at least 0.8× direct.
//!
//! One real `pawd` (SQLite, the `replicas` harness) and its OpenSSH sshd (`web-1`; its `Subsystem
//! sftp` line is printed with the figures). Two paths, one `sftp -b` process per transfer, the same client options and
//! cipher on both (`PAW_BENCH_CIPHER`, default chacha20-poly1305@openssh.com, which is also the
//! one the broker's russh client picks for its leg to the sshd):
//! - **direct**: `sftp` → sshd with a key certified here by the broker's user CA;
//! - **broker**: `sftp` → the front door → sshd, a session redeemed for each transfer (one
//!   credential is one connection), the ticket passed by `SSH_ASKPASS` from the environment and
//!   the front door's host key pinned, as `paw_client::stock_ssh` does for `ssh`.
//!
//! Per round, `put` (upload) then `get` (download) of a file of random bytes, the two paths
//! alternating which goes first. Timed: from `sftp`'s echo of the `put`/`get` line to its echo of
//! the next batch line (`lpwd`, local), i.e. the transfer alone, all write or read answers in
//! and the handle closed; the session's set-up (spawn to the first echo) is reported apart. Each
//! transferred file's SHA-256 must equal the source's. Around each transfer: `pawd`'s CPU time
//! (`/proc/PID/stat` utime and stime, all threads, spawn to exit), the CPU during the transfer
//! window of each process involved (`sftp` and its `ssh`, the sshd's session processes and its
//! `sftp-server` if any, `pawd`: the process trees under the client, the sshd listener and
//! `pawd`, so that other work on the machine does not count), and the machine's busy time
//! (`/proc/stat`), which says whether two cores were the limit.
//!
//! The files live in `PAW_BENCH_FILES_DIR` (default `/dev/shm/paw-bench-files`: tmpfs, so a
//! shared machine's disk is not what is measured): `local/` for the client's side, `remote/`
//! for the sshd's; the entitlement's rule is that directory's `/**`.
//!
//! `cargo xtask bench files`, or `PAW_TEST_PAWD=… cargo bench -p paw-tests --bench files`.
//! `PAW_BENCH_FILE_MIB` (default 1024), `PAW_BENCH_ROUNDS` (default 3; the median is reported).
//! `PAW_BENCH_DIRECT_ONLY=1` measures the direct path alone (a dry run of the floor);
//! `PAW_BENCH_DIRECTIONS=put` or `get`, one direction only. A transfer whose destination file
//! stops growing for 20 s is killed and the bench fails, saying where it stopped. Without
//! `--bench` or `PAW_BENCH_FILE_MIB`, as under `cargo test --benches`, a short check (8 MiB,
//! one round).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use paw_client::terminal::Credential;
use paw_proto::action::Action;
use paw_tests::bench::{direct_key, loadavg, median};
use paw_tests::replicas::{Options, Replicas, Store, SSH_TARGET};
use paw_tests::virtual_user::VirtualUser;
use sha2::{Digest, Sha256};

const PAWD: usize = 0;
const MIB: u64 = 1 << 20;
const GIB: f64 = (1u64 << 30) as f64;
/// A transfer whose destination has not grown for this long has stalled.
const STALL: Duration = Duration::from_secs(20);

struct Sizes {
    mib: u64,
    rounds: usize,
    cipher: String,
    dir: PathBuf,
    direct_only: bool,
    dirs: Vec<Dir>,
}

fn sizes() -> Sizes {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mib = env("PAW_BENCH_FILE_MIB").and_then(|v| v.parse::<u64>().ok());
    let full = mib.is_some() || std::env::args().any(|a| a == "--bench");
    Sizes {
        mib: if full { mib.unwrap_or(1024).max(1) } else { 8 },
        rounds: if full {
            env("PAW_BENCH_ROUNDS")
                .and_then(|v| v.parse().ok())
                .unwrap_or(3usize)
                .max(1)
        } else {
            1
        },
        cipher: env("PAW_BENCH_CIPHER").unwrap_or_else(|| "chacha20-poly1305@openssh.com".into()),
        dir: env("PAW_BENCH_FILES_DIR")
            .map_or_else(|| PathBuf::from("/dev/shm/paw-bench-files"), PathBuf::from),
        direct_only: env("PAW_BENCH_DIRECT_ONLY").is_some_and(|v| v != "0"),
        dirs: match env("PAW_BENCH_DIRECTIONS").as_deref() {
            Some("put") => vec![Dir::Up],
            Some("get") => vec![Dir::Down],
            _ => vec![Dir::Up, Dir::Down],
        },
    }
}

/// The bench's entitlement; `files` false leaves out its file rules (for a dry run of the direct
/// path against a broker that has no SFTP yet).
fn policy(dir: &Path, files: bool) -> String {
    let p = format!(
        r#"
[groups]
sre = ["ada"]

[[entitlement]]
id = "bench-files"
description = "Files for the bench"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
max_sessions = 16

[entitlement.files]
rules = [ {{ path = "{}/**", ops = ["read", "write", "mkdir", "rename", "delete", "setstat"] }} ]
max_size = 4294967296
"#,
        dir.display()
    );
    if files {
        p
    } else {
        p[..p.find("[entitlement.files]").unwrap()].to_owned()
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Path2 {
    Direct,
    Broker,
}

impl Path2 {
    fn name(self) -> &'static str {
        match self {
            Path2::Direct => "direct: `sftp` → sshd",
            Path2::Broker => "broker: `sftp` → pawd → sshd",
        }
    }
    fn tag(self) -> &'static str {
        match self {
            Path2::Direct => "direct",
            Path2::Broker => "broker",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Up,
    Down,
}

impl Dir {
    fn name(self) -> &'static str {
        match self {
            Dir::Up => "upload (`put`)",
            Dir::Down => "download (`get`)",
        }
    }
}

struct Bench {
    r: Replicas,
    ada: VirtualUser,
    grant: String,
    key: PathBuf,
    /// The direct key, the askpass helper, the known-hosts files.
    tmp: tempfile::TempDir,
    _keys: tempfile::TempDir,
    cipher: String,
    local: PathBuf,
    remote: PathBuf,
    sha: [u8; 32],
    sshd_pid: u32,
}

/// One transfer's figures.
struct Run {
    mib_s: f64,
    setup: Duration,
    /// `pawd`'s user and system CPU seconds, spawn to exit.
    pawd_user: f64,
    pawd_sys: f64,
    /// CPU seconds during the transfer window, per process kind, and the machine's busy cores.
    window: Procs,
    busy_cores: f64,
}

async fn run(s: Sizes) {
    let started = Instant::now();
    let local = s.dir.join("local");
    let remote = s.dir.join("remote");
    let _ = std::fs::remove_dir_all(&s.dir);
    std::fs::create_dir_all(&local).unwrap();
    std::fs::create_dir_all(&remote).unwrap();
    let bytes = s.mib * MIB;
    let sha = make_source(&local.join("src.bin"), bytes);
    std::fs::copy(local.join("src.bin"), remote.join("src.bin")).unwrap();

    let r = Replicas::start_with(Options {
        replicas: 1,
        store: Store::Sqlite,
        sshd: true,
        extra_config: policy(&s.dir, !s.direct_only),
    })
    .await
    .unwrap();
    let mut ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    let grant = grant(&r, &mut ada).await;
    let (keys, key) = direct_key(&r);
    let tmp = tempfile::tempdir().unwrap();
    let askpass = tmp.path().join("askpass");
    std::fs::write(
        &askpass,
        "#!/bin/sh\nprintf '%s\\n' \"$PAW_ASKPASS_SECRET\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut b = Bench {
        r,
        ada,
        grant,
        key,
        tmp,
        _keys: keys,
        cipher: s.cipher.clone(),
        local,
        remote,
        sha,
        sshd_pid: 0,
    };
    b.sshd_pid = sshd_pid(&b.r);
    let subsystem = sftp_subsystem(&b.r);
    let paths: &[Path2] = if s.direct_only {
        &[Path2::Direct]
    } else {
        &[Path2::Direct, Path2::Broker]
    };
    eprintln!(
        "set up in {:.1} s ({} MiB source made and hashed); load {}",
        started.elapsed().as_secs_f64(),
        s.mib,
        loadavg()
    );

    // A warm-up transfer each way on each path, not counted: the broker path must work before
    // gigabytes go through it.
    let small = b.local.join("warm.bin");
    std::fs::write(&small, vec![7u8; (4 * MIB) as usize]).unwrap();
    for &p in paths {
        let dst = b.remote.join(format!("warm-{}.bin", p.tag()));
        sftp(
            &mut b,
            p,
            &format!("put {} {}", small.display(), dst.display()),
            None,
        )
        .await;
        let back = b.local.join(format!("warm-{}.bin", p.tag()));
        sftp(
            &mut b,
            p,
            &format!("get {} {}", dst.display(), back.display()),
            None,
        )
        .await;
        assert_eq!(
            std::fs::read(&back).unwrap(),
            std::fs::read(&small).unwrap(),
            "{}",
            p.name()
        );
        let _ = std::fs::remove_file(dst);
        let _ = std::fs::remove_file(back);
    }

    let load_before = loadavg();
    let t0 = Instant::now();
    let mut runs: Vec<Vec<Vec<Run>>> = (0..2)
        .map(|_| (0..paths.len()).map(|_| Vec::new()).collect())
        .collect();
    for round in 0..s.rounds {
        for (d, dir) in [Dir::Up, Dir::Down].into_iter().enumerate() {
            if !s.dirs.contains(&dir) {
                continue;
            }
            for k in 0..paths.len() {
                let pi = (round + k) % paths.len();
                let p = paths[pi];
                let (src, dst) = match dir {
                    Dir::Up => (
                        b.local.join("src.bin"),
                        b.remote.join(format!("up-{}-{round}.bin", p.tag())),
                    ),
                    Dir::Down => (
                        b.remote.join("src.bin"),
                        b.local.join(format!("down-{}-{round}.bin", p.tag())),
                    ),
                };
                let cmd = format!(
                    "{} {} {}",
                    if dir == Dir::Up { "put" } else { "get" },
                    src.display(),
                    dst.display()
                );
                let got = sftp(&mut b, p, &cmd, Some(bytes)).await.unwrap();
                let dst2 = dst.clone();
                let (len, sha) = tokio::task::spawn_blocking(move || hash_file(&dst2))
                    .await
                    .unwrap();
                assert_eq!(len, bytes, "{} {}: size", p.name(), dir.name());
                assert!(
                    sha == b.sha,
                    "{} {}: the SHA-256 of {} differs from the source's",
                    p.name(),
                    dir.name(),
                    dst.display()
                );
                std::fs::remove_file(&dst).unwrap();
                eprintln!(
                    "round {round} {} {}: {:.1} MiB/s, set-up {:.0} ms, pawd {:.2} s CPU",
                    dir.name(),
                    p.name(),
                    got.mib_s,
                    got.setup.as_secs_f64() * 1000.0,
                    got.pawd_user + got.pawd_sys
                );
                runs[d][pi].push(got);
            }
        }
    }
    let load = format!("{load_before} → {}", loadavg());
    let took = t0.elapsed();

    println!(
        "\nfile transfer, one pawd (SQLite) and one OpenSSH sshd (`Subsystem sftp {subsystem}`), \
         {} cores, {} MiB file, {} round(s) per path and direction, cipher {}, OpenSSH sftp defaults \
         otherwise (load {load}; measured in {:.0} s, run took {:.0} s)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        s.mib,
        s.rounds,
        s.cipher,
        took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "\n| transfer | path | MiB/s, median | min–max | broker / direct | session set-up ms, median \
         | `pawd` CPU s per GiB, median (user + sys) | machine busy cores, median |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for (d, dir) in [Dir::Up, Dir::Down].into_iter().enumerate() {
        if !s.dirs.contains(&dir) {
            continue;
        }
        let mut direct_mib = 0.0;
        for (pi, p) in paths.iter().enumerate() {
            let v = &runs[d][pi];
            let mut mib: Vec<f64> = v.iter().map(|r| r.mib_s).collect();
            let m = median(&mut mib);
            if *p == Path2::Direct {
                direct_mib = m;
            }
            let mut setup: Vec<f64> = v.iter().map(|r| r.setup.as_secs_f64() * 1000.0).collect();
            let mut busy: Vec<f64> = v.iter().map(|r| r.busy_cores).collect();
            let cpu = if *p == Path2::Broker {
                let gib = bytes as f64 / GIB;
                let mut user: Vec<f64> = v.iter().map(|r| r.pawd_user / gib).collect();
                let mut sys: Vec<f64> = v.iter().map(|r| r.pawd_sys / gib).collect();
                let mut all: Vec<f64> =
                    v.iter().map(|r| (r.pawd_user + r.pawd_sys) / gib).collect();
                format!(
                    "{:.2} ({:.2} + {:.2})",
                    median(&mut all),
                    median(&mut user),
                    median(&mut sys)
                )
            } else {
                "–".into()
            };
            println!(
                "| {} | {} | {m:.1} | {:.1}–{:.1} | {} | {:.0} | {cpu} | {:.2} |",
                dir.name(),
                p.name(),
                mib[0],
                mib[mib.len() - 1],
                if *p == Path2::Direct {
                    "1.00".to_owned()
                } else {
                    format!("**{:.2}**", m / direct_mib)
                },
                median(&mut setup),
                median(&mut busy),
            );
        }
    }
    println!(
        "\nCPU seconds per GiB during the transfer window, by process (median over the runs; \
         `ssh` is the client's transport under `sftp`, `sshd` the harness sshd's processes but \
         `sftp-server`):"
    );
    println!("\n| transfer | path | sftp | ssh | pawd | sshd | sftp-server | sum |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for (d, dir) in [Dir::Up, Dir::Down].into_iter().enumerate() {
        if !s.dirs.contains(&dir) {
            continue;
        }
        for (pi, p) in paths.iter().enumerate() {
            let v = &runs[d][pi];
            let gib = bytes as f64 / GIB;
            let col = |f: &dyn Fn(&Procs) -> f64| {
                let mut x: Vec<f64> = v.iter().map(|r| f(&r.window) / gib).collect();
                median(&mut x)
            };
            println!(
                "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                dir.name(),
                p.name(),
                col(&|w| w.sftp),
                col(&|w| w.ssh),
                col(&|w| w.pawd),
                col(&|w| w.sshd),
                col(&|w| w.sftp_server),
                col(&Procs::sum),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&s.dir);
}

// ---------------------------------------------------------------------------------------------
// Grant, session, client

async fn grant(r: &Replicas, user: &mut VirtualUser) -> String {
    let request = Action::Request {
        entitlement: "bench-files".into(),
        target: SSH_TARGET.into(),
        role: "root".into(),
        duration_secs: 3600,
        justification: "file transfer bench".into(),
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

/// A session under the bench's grant: the front door's one-time credential.
async fn redeem(b: &mut Bench) -> Credential {
    let grant = b.grant.clone();
    let session = Action::Session {
        grant_id: grant.clone(),
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
    Credential {
        addr: minted["ssh_addr"].as_str().unwrap().to_owned(),
        host_key: minted["ssh_host_key"].as_str().unwrap().to_owned(),
        session_id: minted["session_id"].as_str().unwrap().to_owned(),
        ticket: minted["ticket"].as_str().unwrap().to_owned().into(),
    }
}

/// The options both paths share: the cipher, no compression, quiet.
fn common(c: &mut Command, cipher: &str) {
    c.args([
        "-o",
        &format!("Ciphers={cipher}"),
        "-o",
        "Compression=no",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ControlPath=none",
    ]);
}

/// `sftp -b` running `line`, `lpwd`, `!sleep 0.3` on `path`. With `bytes`, the figures of the transfer;
/// without, a warm-up whose success is all that counts.
async fn sftp(b: &mut Bench, path: Path2, line: &str, bytes: Option<u64>) -> Option<Run> {
    let batch = b.tmp.path().join("batch");
    // The sleep keeps the client and its connection alive past the window's last snapshot.
    std::fs::write(&batch, format!("{line}\nlpwd\n!sleep 0.3\n")).unwrap();
    let mut c = Command::new("sftp");
    match path {
        Path2::Direct => {
            c.arg("-i").arg(&b.key).args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ]);
            common(&mut c, &b.cipher);
            let port = b.r.sshd().unwrap().port().to_string();
            c.args(["-P", &port, "-b"])
                .arg(&batch)
                .args(["--", "root@127.0.0.1"]);
        }
        Path2::Broker => {
            let cred = redeem(b).await;
            let (host, port) = cred.addr.rsplit_once(':').unwrap();
            let kh = b
                .tmp
                .path()
                .join(format!("known_hosts-{}", cred.session_id));
            std::fs::write(&kh, paw_client::stock_ssh::known_hosts_line(&cred).unwrap()).unwrap();
            // `sftp -b` passes `-oBatchMode yes` to ssh, which would refuse to ask for the
            // password; ssh keeps the first value of an option, so this one goes before it.
            c.args(["-o", "BatchMode=no"]);
            c.arg("-o")
                .arg(format!("UserKnownHostsFile={}", kh.display()));
            c.args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "PreferredAuthentications=password",
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "IdentityFile=none",
            ]);
            common(&mut c, &b.cipher);
            c.args(["-P", port, "-b"])
                .arg(&batch)
                .arg("--")
                .arg(format!("{}@{host}", cred.session_id))
                .env("SSH_ASKPASS", b.tmp.path().join("askpass"))
                .env("SSH_ASKPASS_REQUIRE", "force")
                .env(paw_client::stock_ssh::ASKPASS_ENV, cred.ticket.as_str());
        }
    }
    let pid = b.r.pid(PAWD).unwrap();
    let sshd = b.sshd_pid;
    let verb = line.split_whitespace().next().unwrap().to_owned();
    let what = format!("{} `{line}`", path.name());
    let dst = PathBuf::from(line.split_whitespace().last().unwrap());
    let t = match tokio::task::spawn_blocking(move || timed(c, pid, sshd, &verb, &what, &dst))
        .await
        .unwrap()
    {
        Ok(t) => t,
        Err(e) => {
            // A panic aborts here (the release profile): the gigabytes in tmpfs go first.
            let _ = std::fs::remove_dir_all(b.local.parent().unwrap());
            let log = b.r.log(PAWD);
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            panic!(
                "{e}\npawd's log, last lines:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        }
    };
    bytes.map(|n| Run {
        mib_s: n as f64 / MIB as f64 / t.transfer.as_secs_f64(),
        setup: t.setup,
        pawd_user: t.pawd_user,
        pawd_sys: t.pawd_sys,
        busy_cores: t.busy / t.transfer.as_secs_f64(),
        window: t.window,
    })
}

struct Timed {
    setup: Duration,
    transfer: Duration,
    pawd_user: f64,
    pawd_sys: f64,
    window: Procs,
    /// Machine busy CPU seconds in the transfer window.
    busy: f64,
}

/// Runs `sftp`, timing the batch line `verb …` by the echoes of it and of the line after it.
/// The transfer is given up when `dst` has not grown for [`STALL`]: the error says where it
/// stopped.
fn timed(
    mut c: Command,
    pawd: u32,
    sshd: u32,
    verb: &str,
    what: &str,
    dst: &Path,
) -> Result<Timed, String> {
    let (u0, s0) = proc_cpu(pawd).unwrap();
    let spawned = Instant::now();
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let roots = Roots {
        sftp: child.id(),
        sshd,
        pawd,
    };
    let stalled = std::sync::Arc::new(std::sync::Mutex::new(None::<u64>));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let (stalled, done, dst, pid) = (stalled.clone(), done.clone(), dst.to_owned(), child.id());
        std::thread::spawn(move || {
            let (mut last, mut since) = (0u64, Instant::now());
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let len = std::fs::metadata(&dst).map_or(0, |m| m.len());
                if len != last {
                    (last, since) = (len, Instant::now());
                } else if since.elapsed() > STALL {
                    *stalled.lock().unwrap() = Some(len);
                    let _ = Command::new("kill").arg(pid.to_string()).status();
                    return;
                }
            }
        })
    };
    let mut err = child.stderr.take().unwrap();
    let errs = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut start: Option<(Instant, Procs, f64)> = None;
    let mut end: Option<(Instant, Procs, f64)> = None;
    let mut l = String::new();
    while out.read_line(&mut l).unwrap() > 0 {
        let at = Instant::now();
        if l.starts_with(&format!("sftp> {verb} ")) {
            start = Some((at, Procs::now(roots), machine_busy()));
        } else if l.starts_with("sftp> lpwd") {
            end = Some((at, Procs::now(roots), machine_busy()));
        }
        seen.push_str(&l);
        l.clear();
    }
    let status = child.wait().unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    watchdog.join().unwrap();
    let stderr = errs.join().unwrap();
    if let Some(at) = *stalled.lock().unwrap() {
        return Err(format!(
            "{what}: STALLED, {} stayed at {at} bytes for {STALL:?}; sftp killed ({status}); \
             stdout {seen:?}; stderr {stderr:?}",
            dst.display()
        ));
    }
    // The broker's share of the session's teardown (its audit record, the upstream close).
    std::thread::sleep(Duration::from_millis(100));
    let (u1, s1) = proc_cpu(pawd).unwrap();
    let (Some(start), Some(end)) = (start, end) else {
        panic!("{what}: {status}; stdout {seen:?}; stderr {stderr:?}")
    };
    assert!(
        status.success() && stderr.trim().is_empty(),
        "{what}: {status}; stdout {seen:?}; stderr {stderr:?}"
    );
    let _ = std::io::stdout().flush();
    Ok(Timed {
        setup: start.0 - spawned,
        transfer: end.0 - start.0,
        pawd_user: u1 - u0,
        pawd_sys: s1 - s0,
        window: end.1.minus(&start.1),
        busy: end.2 - start.2,
    })
}

// ---------------------------------------------------------------------------------------------
// Files and /proc

/// Writes `bytes` random bytes to `path`; their SHA-256.
fn make_source(path: &Path, bytes: u64) -> [u8; 32] {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut h = Sha256::new();
    let mut buf = vec![0u8; MIB as usize];
    for _ in 0..bytes / MIB {
        getrandom::getrandom(&mut buf).unwrap();
        h.update(&buf);
        f.write_all(&buf).unwrap();
    }
    f.flush().unwrap();
    h.finalize().into()
}

fn hash_file(path: &Path) -> (u64, [u8; 32]) {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; MIB as usize];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        len += n as u64;
        h.update(&buf[..n]);
    }
    (len, h.finalize().into())
}

fn clk_tck() -> f64 {
    // USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK).
    100.0
}

/// utime and stime of process `pid` in seconds, all its threads (dead ones included).
fn proc_cpu(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let comm_end = stat.rfind(')')?;
    let f: Vec<&str> = stat[comm_end + 2..].split_whitespace().collect();
    // After the comm: state is field 3, utime field 14, stime field 15 (1-based, man proc).
    let u: f64 = f.get(11)?.parse().ok()?;
    let s: f64 = f.get(12)?.parse().ok()?;
    Some((u / clk_tck(), s / clk_tck()))
}

/// The processes whose CPU a transfer window counts: the `sftp` client (and its `ssh`), the
/// harness's sshd listener (its session processes, `sftp-server` if it runs one), `pawd`.
#[derive(Clone, Copy)]
struct Roots {
    sftp: u32,
    sshd: u32,
    pawd: u32,
}

/// CPU seconds so far of the live processes under each of [`Roots`] (the root included).
#[derive(Default, Clone, Copy)]
struct Procs {
    sftp: f64,
    ssh: f64,
    sshd: f64,
    sftp_server: f64,
    pawd: f64,
}

impl Procs {
    fn now(roots: Roots) -> Self {
        // pid → (ppid, comm, CPU seconds)
        let mut all = std::collections::HashMap::new();
        for d in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = d.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(d.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let comm = stat[open + 1..close].to_owned();
            let ppid: u32 = stat[close + 2..]
                .split_whitespace()
                .nth(1)
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
            let (u, s) = proc_cpu(pid).unwrap_or((0.0, 0.0));
            all.insert(pid, (ppid, comm, u + s));
        }
        let mut p = Procs::default();
        for (&pid, (_, comm, cpu)) in &all {
            let mut at = pid;
            let root = loop {
                if at == roots.sftp || at == roots.sshd || at == roots.pawd {
                    break Some(at);
                }
                match all.get(&at) {
                    Some((ppid, _, _)) if *ppid > 1 => at = *ppid,
                    _ => break None,
                }
            };
            let slot = match (root, comm.as_str()) {
                (Some(r), "ssh") if r == roots.sftp => &mut p.ssh,
                (Some(r), _) if r == roots.sftp => &mut p.sftp,
                (Some(r), "sftp-server") if r == roots.sshd => &mut p.sftp_server,
                (Some(r), _) if r == roots.sshd => &mut p.sshd,
                (Some(r), _) if r == roots.pawd => &mut p.pawd,
                _ => continue,
            };
            *slot += cpu;
        }
        p
    }

    /// What ran between `earlier` and `self`.
    fn minus(&self, earlier: &Procs) -> Procs {
        Procs {
            sftp: self.sftp - earlier.sftp,
            ssh: self.ssh - earlier.ssh,
            sshd: self.sshd - earlier.sshd,
            sftp_server: self.sftp_server - earlier.sftp_server,
            pawd: self.pawd - earlier.pawd,
        }
    }

    fn sum(&self) -> f64 {
        self.sftp + self.ssh + self.sshd + self.sftp_server + self.pawd
    }
}

/// The harness sshd's listener: the `sshd` whose command line names its config.
fn sshd_pid(r: &Replicas) -> u32 {
    let config = r.sshd().unwrap().dir().join("sshd_config");
    let config = config.to_str().unwrap();
    for d in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = d.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(d.path().join("cmdline")).unwrap_or_default();
        // sshd rewrites its argv ("sshd: /usr/sbin/sshd -D -e -f … [listener] …").
        let comm = std::fs::read_to_string(d.path().join("comm")).unwrap_or_default();
        if comm.trim() == "sshd"
            && cmdline
                .windows(config.len())
                .any(|w| w == config.as_bytes())
        {
            return pid;
        }
    }
    panic!("no sshd process runs with {config}")
}

/// The `Subsystem sftp` line of the harness sshd's config: what serves the files.
fn sftp_subsystem(r: &Replicas) -> String {
    std::fs::read_to_string(r.sshd().unwrap().dir().join("sshd_config"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Subsystem sftp "))
        .unwrap_or("?")
        .trim()
        .to_owned()
}

/// The machine's busy CPU seconds so far, all cores (`/proc/stat`: all but idle and iowait).
fn machine_busy() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    (total - idle) / clk_tck()
}
