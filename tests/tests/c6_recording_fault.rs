//! Case C6 mid-session on real processes (issue #19 item 6): the recordings directory of a real
//! `pawd` is a 1 MiB tmpfs in a private mount namespace (nothing is mounted on the host), and the
//! test fills it while an SSH session to a real sshd runs through the broker's front door.
//!
//! `pawd serve` is started through a small wrapper (`PAW_TEST_PAWD` points at it for this test
//! binary): `unshare -m --propagation private` then `mount -t tmpfs` on the replica's
//! `recordings` directory, then `exec pawd` — the same process id, so the harness's kill and
//! wait apply to pawd itself. The test writes into that tmpfs through `/proc/<pid>/root`.
//!
//! Not covered: a read-only remount. Linux refuses `mount -o remount,ro` with EBUSY while a file
//! is open for writing, and the live recording is exactly such a file, so a remount cannot
//! happen under a live session; a full filesystem is the fault that can.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use paw_client::terminal::{self, TermEvent, Terminal};
use paw_proto::action::Action;
use paw_tests::replicas::{Options, Replicas, Store, SSH_TARGET};
use paw_tests::virtual_user::VirtualUser;
use serde_json::Value;
use tokio::sync::mpsc;

mod common;

/// The only broker.
const PAWD: usize = 0;
/// How long the session may take to end once the recording cannot be written. Not the claim
/// (the broker ends it at the first failed write); a bound for a loaded 2-core machine.
const ENDS_WITHIN: Duration = Duration::from_secs(15);

/// How close to a page boundary step 3 brings the recording's end (bytes).
const PAGE_ROOM: u64 = 1500;

type Rx = mpsc::UnboundedReceiver<TermEvent>;

/// C6. A live root shell on web-1 through a real `pawd` whose recordings directory is a full
/// 1 MiB tmpfs:
/// 1. output after the filesystem is filled ends the session: the client is told
///    `recording_failed`, the session row ends `recording_failed` and one `session_end` record
///    (outcome `failure`) says so and names the error (ENOSPC);
/// 2. while it is full, a new session under the same grant never reaches a prompt (its
///    recording cannot be started);
/// 3. a command typed after the filesystem is full (its input event cannot be written) ends the
///    session and never runs on the target: the file it would create does not exist, checked
///    from a later session after space is freed;
/// 4. once space is freed, sessions work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c6_recording_storage_fails_mid_session_ends_it_and_nothing_runs_unrecorded() {
    let wrapper_dir = tempfile::tempdir().unwrap();
    let wrapper = tmpfs_wrapper(wrapper_dir.path(), &real_pawd());
    // Only this test binary's harness sees the wrapper; it is set before any broker starts.
    std::env::set_var(paw_tests::replicas::PAWD_ENV, &wrapper);
    let policy = format!(
        "[groups]\nsre = [\"ada\"]\n{}",
        common::shell::web_root("c6-root", "root on the web servers", "\"auto\"", "")
    );
    let r = Replicas::start_with(Options {
        replicas: 1,
        store: Store::Sqlite,
        sshd: true,
        extra_config: policy,
    })
    .await
    .unwrap();
    let url = r.url(PAWD);
    let pid = r.pid(PAWD).unwrap();
    let host_dir = r.broker_dir().join("recordings");
    // What pawd sees: the tmpfs, reached from outside its namespace.
    let ns_dir = PathBuf::from(format!("/proc/{pid}/root{}", host_dir.display()));
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert!(
        mountinfo
            .lines()
            .any(|l| l.contains(&format!(" {} ", host_dir.display())) && l.contains(" tmpfs ")),
        "pawd's recordings directory is a tmpfs in its namespace:\n{mountinfo}"
    );
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host_mounts.contains(&host_dir.display().to_string()),
        "nothing is mounted on the host"
    );

    let mut ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    let grant = common::shell::grant(&r, &mut ada, "c6-root", SSH_TARGET).await;
    let marks = tempfile::tempdir().unwrap();

    // 1. Output after the filesystem is full.
    let (sid1, term, mut rx) = open(&r, &mut ada, &grant).await;
    prompt(&term, &mut rx, 1).await;
    let filler = fill(&ns_dir);
    let typed = Instant::now();
    term.input(b"head -c 300000 /dev/zero | tr '\\0' o; echo after-$((40+2))\r".to_vec())
        .await
        .unwrap();
    let (reason, seen) = ended(&mut rx).await;
    let took = typed.elapsed();
    assert_eq!(reason, "recording_failed", "{seen}");
    println!(
        "C6: the session ended {} ms after the command whose output could not be recorded",
        took.as_millis()
    );
    drop(term);
    check_ended(&r, &ada, &url, &sid1).await;

    // 2. A new session while it is full never reaches a prompt.
    let session = Action::Session {
        grant_id: grant.clone(),
        target: SSH_TARGET.into(),
    };
    let minted = ada
        .signed(&url, &format!("/v1/grants/{grant}/redeem"), &session)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let sid2 = minted["session_id"].as_str().unwrap().to_owned();
    let (tx, mut rx2) = mpsc::unbounded_channel();
    match terminal::open(common::credential(&minted), 80, 24, None, move |e| {
        let _ = tx.send(e);
    })
    .await
    {
        Err(e) => println!("C6: the session while full was refused at open: {e}"),
        Ok(t) => {
            let (reason, seen) = ended(&mut rx2).await;
            assert!(!seen.contains("# "), "no prompt while full: {seen:?}");
            assert_eq!(reason, "recording_failed", "{seen}");
            drop(t);
        }
    }
    check_ended(&r, &ada, &url, &sid2).await;

    // 3. A command typed once the filesystem is full. Line editing and the terminal's echo
    // are off first, so the typed line would reach bash whole and run without printing
    // anything: only the recording of the input itself stands between it and the target.
    std::fs::remove_file(&filler).unwrap();
    let (sid3, term, mut rx) = open(&r, &mut ada, &grant).await;
    prompt(&term, &mut rx, 3).await;
    term.input(b"set +o emacs +o vi; stty -echo; echo quiet-$((40+2))\r".to_vec())
        .await
        .unwrap();
    until(&mut rx, &["quiet-42"]).await;
    // A full tmpfs still lets a file grow to the end of its last page. Output brings the
    // recording's end to within PAGE_ROOM of a page boundary, so the line below (longer than
    // that) cannot be recorded once the rest is full.
    let cast = ns_dir.join(format!("{sid3}.cast"));
    for i in 0..8 {
        let size = std::fs::metadata(&cast).unwrap().len();
        let room = 4096 - size % 4096;
        if room < PAGE_ROOM {
            break;
        }
        assert!(i < 7, "the recording's end never came near a page boundary");
        let pad = room - PAGE_ROOM / 2;
        term.input(format!("printf '%{pad}s\\n' ''; echo sized-$((5000+{i}))\r").into_bytes())
            .await
            .unwrap();
        until(&mut rx, &[&format!("sized-{}", 5000 + i)]).await;
    }
    let filler = fill(&ns_dir);
    let marker = marks.path().join("typed-after-full");
    let line = format!(
        "touch {} # {}\r",
        marker.display(),
        "x".repeat(PAGE_ROOM as usize + 100)
    );
    term.input(line.into_bytes()).await.unwrap();
    let (reason, seen) = ended(&mut rx).await;
    assert_eq!(reason, "recording_failed", "{seen}");
    drop(term);
    check_ended(&r, &ada, &url, &sid3).await;

    // 4. Space freed: a session works again, and the command of step 3 never ran. (The
    // target's shell had the line, if it ever got it, long before this round trip.)
    std::fs::remove_file(&filler).unwrap();
    let (_, term, mut rx) = open(&r, &mut ada, &grant).await;
    prompt(&term, &mut rx, 4).await;
    term.input(
        format!(
            "test -e {} && echo marker-$((1+1)) || echo marker-$((2+2))\r",
            marker.display()
        )
        .into_bytes(),
    )
    .await
    .unwrap();
    let out = until(&mut rx, &["marker-2", "marker-4"]).await;
    assert!(out.contains("marker-4"), "{out}");
    assert!(
        !marker.exists(),
        "the command typed after the filesystem was full ran"
    );
}

/// The session's history entry and audit: ended `recording_failed`, one `session_end` record
/// (outcome `failure`) naming ENOSPC.
async fn check_ended(r: &Replicas, user: &VirtualUser, url: &str, sid: &str) {
    let deadline = Instant::now() + ENDS_WITHIN;
    let entry = loop {
        let h = user
            .call(url, "GET", "/v1/sessions/history", None)
            .await
            .unwrap()
            .ok()
            .unwrap();
        let e = h["sessions"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["id"] == sid).cloned())
            .unwrap_or(Value::Null);
        if e["ended_at_ms"].is_i64() {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "session {sid} not ended: {e}\n{}",
            r.log(PAWD)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(entry["end_reason"], "recording_failed", "{entry}");
    let ends: Vec<Value> = common::sqlite_audit(r)
        .await
        .into_iter()
        .filter(|e| e["action"] == "session_end" && e["subject"] == sid)
        .collect();
    assert_eq!(ends.len(), 1, "one session_end for {sid}: {ends:?}");
    let end = &ends[0];
    assert_eq!(end["outcome"], "failure", "{end}");
    assert_eq!(end["detail"]["reason"], "recording_failed", "{end}");
    assert!(
        end["detail"]["recording_error"]
            .as_str()
            .is_some_and(|e| e.contains("os error 28")),
        "the record names the disk full: {end}"
    );
}

/// Redeems a session under `grant` and opens its terminal.
async fn open(r: &Replicas, user: &mut VirtualUser, grant: &str) -> (String, Terminal, Rx) {
    let session = Action::Session {
        grant_id: grant.into(),
        target: SSH_TARGET.into(),
    };
    let minted = user
        .signed(
            &r.url(PAWD),
            &format!("/v1/grants/{grant}/redeem"),
            &session,
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let t = terminal::open(common::credential(&minted), 80, 24, None, move |e| {
        let _ = tx.send(e);
    })
    .await
    .unwrap();
    (minted["session_id"].as_str().unwrap().to_owned(), t, rx)
}

/// Waits until the shell has run a first command (its output differs from its echo).
async fn prompt(term: &Terminal, rx: &mut Rx, n: u32) {
    term.input(format!("echo ready-$((1000+{n}))\r").into_bytes())
        .await
        .unwrap();
    until(rx, &[&format!("ready-{}", 1000 + n)]).await;
}

/// Output until one of `wants` shows (15 s at most); fails if the session ends first.
async fn until(rx: &mut Rx, wants: &[&str]) -> String {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if wants.iter().any(|w| text.contains(w)) {
            return text;
        }
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(TermEvent::Output(d))) => out.extend(d),
            other => panic!("waiting for {wants:?}: {other:?}; so far {text:?}"),
        }
    }
}

/// The reason the session ended with, and what it printed meanwhile ([`ENDS_WITHIN`] at most).
async fn ended(rx: &mut Rx) -> (String, String) {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + ENDS_WITHIN;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(TermEvent::Output(d))) => out.extend(d),
            Ok(Some(TermEvent::Ended { reason, .. })) => {
                return (reason, String::from_utf8_lossy(&out).into_owned())
            }
            other => panic!(
                "the session did not end within {ENDS_WITHIN:?}: {other:?}; it printed {} bytes",
                out.len()
            ),
        }
    }
}

/// Fills the filesystem of `dir` with one file until the kernel says it is full (ENOSPC).
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    path
}

/// The real `pawd`: the harness's variables, else the one beside this test binary.
fn real_pawd() -> PathBuf {
    for var in [paw_tests::replicas::PAWD_ENV, "PAW_E2E_PAWD"] {
        if let Some(p) = std::env::var_os(var) {
            return PathBuf::from(p);
        }
    }
    let exe = std::env::current_exe().unwrap();
    let pawd = exe.parent().unwrap().parent().unwrap().join("pawd");
    assert!(
        pawd.is_file(),
        "build pawd or set {}",
        paw_tests::replicas::PAWD_ENV
    );
    pawd
}

/// A `pawd` that, for `serve --config FILE`, runs in a private mount namespace with a 1 MiB
/// tmpfs on `recordings` beside FILE (the default recordings directory the harness uses).
fn tmpfs_wrapper(dir: &Path, pawd: &Path) -> PathBuf {
    let path = dir.join("pawd");
    let script = format!(
        "#!/bin/sh\n\
         if [ \"$1\" = serve ] && [ \"$2\" = --config ]; then\n\
         \x20 d=\"$(dirname \"$3\")/recordings\"\n\
         \x20 mkdir -p \"$d\"\n\
         \x20 exec unshare -m --propagation private sh -c \
         'mount -t tmpfs -o size=1m,mode=0700 tmpfs \"$0\" && exec \"$@\"' \"$d\" '{pawd}' \"$@\"\n\
         fi\n\
         exec '{pawd}' \"$@\"\n",
        pawd = pawd.display()
    );
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}
