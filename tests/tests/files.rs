//! File transfer through the broker (issue #18, cases M1–M4): stock OpenSSH `sftp` and `scp`
//! through a real `pawd`'s front door to a real sshd's sftp-server, each operation checked
//! against `[entitlement.files]` and audited. The target is this machine (sshd runs as root),
//! so what arrived or did not is read straight from the filesystem.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use paw_proto::action::Action;
use paw_tests::replicas::{Options, Replicas, Store, SSH_TARGET};
use paw_tests::virtual_user::VirtualUser;
use serde_json::Value;
use sha2::{Digest, Sha256};

mod common;

use common::sftp::{finish, said, Stock};
use common::shell::grant;
use common::sqlite_audit;

const PAWD: usize = 0;

/// A place on "the target" (this machine): `area` is what the rules allow, `outside` what
/// they do not, `local` the client's side.
struct Place {
    _base: tempfile::TempDir,
    area: PathBuf,
    outside: PathBuf,
    local: PathBuf,
}

impl Place {
    fn new() -> Self {
        let base = tempfile::Builder::new()
            .prefix("paw-files-")
            .tempdir_in("/tmp")
            .unwrap();
        let area = base.path().join("area");
        let outside = base.path().join("outside");
        let local = base.path().join("local");
        for d in [&area, &outside, &local, &area.join("bin"), &area.join("ro")] {
            std::fs::create_dir_all(d).unwrap();
        }
        Self {
            _base: base,
            area,
            outside,
            local,
        }
    }

    fn a(&self, p: &str) -> String {
        format!("{}/{p}", self.area.display())
    }
}

fn policy(p: &Place) -> String {
    let area = p.area.display();
    format!(
        r#"
[groups]
sre = ["ada"]

[[entitlement]]
id = "web-files"
description = "Files on the web servers"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
max_sessions = 16

[entitlement.files]
rules = [
  {{ path = "{area}/**", ops = ["read", "write", "mkdir", "rename", "delete", "setstat"] }},
  {{ path = "{area}/bin/**", ops = ["write"], action = "step_up" }},
  {{ path = "{area}/ro/**", ops = ["write", "delete", "setstat", "rename", "mkdir"], action = "deny", reason = "read-only here" }},
]
max_size = 1048576
hold_secs = 10
capture = true
capture_max = 1048576

[[entitlement]]
id = "web-bulk"
description = "Large files on the web servers"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
max_sessions = 4

[entitlement.files]
rules = [{{ path = "{area}/bulk/**", ops = ["read", "write"] }}]
max_size = 536870912

[[entitlement]]
id = "web-shell"
description = "Root on the web servers, no file rules"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
max_sessions = 5
"#
    )
}

async fn start(p: &Place) -> (Replicas, VirtualUser, String) {
    let r = Replicas::start_with(Options {
        replicas: 1,
        store: Store::Sqlite,
        sshd: true,
        extra_config: policy(p),
    })
    .await
    .unwrap();
    let mut ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    let g = grant(&r, &mut ada, "web-files", SSH_TARGET).await;
    (r, ada, g)
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Bytes that are not all alike, so a misplaced chunk changes the hash.
fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_be_bytes()[0] ^ seed)
        .collect()
}

fn records(audit: &[Value], action: &str) -> Vec<Value> {
    audit
        .iter()
        .filter(|a| a["action"] == action)
        .cloned()
        .collect()
}

fn one<'a>(list: &'a [Value], what: &str, f: impl Fn(&Value) -> bool) -> &'a Value {
    let found: Vec<&Value> = list.iter().filter(|v| f(v)).collect();
    assert_eq!(found.len(), 1, "{what}: {list:#?}");
    found[0]
}

fn lines(v: &[String]) -> Vec<String> {
    v.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m3_m4_stock_sftp_and_scp_move_files_each_audited_with_its_hash_and_scp_o_is_refused() {
    let p = Place::new();
    let (r, mut ada, g) = start(&p).await;
    let body = payload(300 * 1024 + 7, 1);
    let local_a = p.local.join("a.txt");
    std::fs::write(&local_a, &body).unwrap();
    let stock = Stock::new();

    // sftp: put, get, rename, mkdir, delete.
    let cred = Stock::session(&r, &mut ada, &g, SSH_TARGET).await;
    let out = stock.sftp(
        &cred,
        &lines(&[
            format!("put {} {}", local_a.display(), p.a("a.txt")),
            format!("get {} {}", p.a("a.txt"), p.local.join("a.back").display()),
            format!("rename {} {}", p.a("a.txt"), p.a("b.txt")),
            format!("mkdir {}", p.a("d")),
            format!("rm {}", p.a("b.txt")),
        ]),
    );
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(std::fs::read(p.local.join("a.back")).unwrap(), body);
    assert!(!p.area.join("a.txt").exists() && !p.area.join("b.txt").exists());
    assert!(p.area.join("d").is_dir());

    // scp (OpenSSH ≥ 9 speaks SFTP): a put and a get.
    let cred = Stock::session(&r, &mut ada, &g, SSH_TARGET).await;
    let out = stock.scp_put(&cred, false, &local_a, &p.a("c.txt"));
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(std::fs::read(p.area.join("c.txt")).unwrap(), body);
    let cred = Stock::session(&r, &mut ada, &g, SSH_TARGET).await;
    let out = stock.scp_get(&cred, &p.a("c.txt"), &p.local.join("c.back"));
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(std::fs::read(p.local.join("c.back")).unwrap(), body);

    // M4: legacy scp is refused, and told what to do.
    let cred = Stock::session(&r, &mut ada, &g, SSH_TARGET).await;
    let out = stock.scp_put(&cred, true, &local_a, &p.a("legacy.txt"));
    assert!(!out.status.success(), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("drop -O"),
        "{}",
        said(&out)
    );
    assert!(!p.area.join("legacy.txt").exists());

    // M3: one record per file with path, direction, size and the right SHA-256.
    let audit = sqlite_audit(&r).await;
    let files = records(&audit, "file_transfer");
    let want = sha(&body);
    for (path, direction) in [
        (p.a("a.txt"), "upload"),
        (p.a("a.txt"), "download"),
        (p.a("c.txt"), "upload"),
        (p.a("c.txt"), "download"),
    ] {
        let rec = one(&files, &format!("{direction} {path}"), |v| {
            v["detail"]["path"] == path.as_str() && v["detail"]["direction"] == direction
        });
        assert_eq!(rec["outcome"], "success", "{rec}");
        assert_eq!(rec["detail"]["size"], body.len() as u64, "{rec}");
        assert_eq!(rec["detail"]["sha256"], want.as_str(), "{rec}");
        assert_eq!(rec["actor"], "ada");
        assert_eq!(rec["detail"]["target"], SSH_TARGET);
    }
    assert_eq!(files.len(), 4, "{files:#?}");
    let ops = records(&audit, "file_operation");
    one(&ops, "rename", |v| {
        v["detail"]["op"] == "rename"
            && v["detail"]["path"] == p.a("a.txt").as_str()
            && v["detail"]["to"] == p.a("b.txt").as_str()
            && v["outcome"] == "success"
    });
    one(&ops, "mkdir", |v| {
        v["detail"]["op"] == "mkdir" && v["detail"]["path"] == p.a("d").as_str()
    });
    one(&ops, "delete", |v| {
        v["detail"]["op"] == "delete" && v["detail"]["path"] == p.a("b.txt").as_str()
    });
    let denied = records(&audit, "file_denied");
    one(&denied, "legacy scp", |v| v["detail"]["op"] == "scp_legacy");

    // The session's history lists its files, and help-desk fetches the captured copy,
    // checked against the hash taken when it was kept.
    let sftp_session = one(&files, "the first upload", |v| {
        v["detail"]["path"] == p.a("a.txt").as_str() && v["detail"]["direction"] == "upload"
    })["subject"]
        .as_str()
        .unwrap()
        .to_owned();
    let helen = r.enrolled("helen", &["helpdesk"], PAWD).await.unwrap();
    let bob = r.enrolled("bob", &[], PAWD).await.unwrap();
    let listed = helen
        .call(
            &r.url(PAWD),
            "GET",
            &format!("/v1/sessions/{sftp_session}/files"),
            None,
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    let listed = listed["files"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 2, "{listed:#?}");
    assert_eq!(listed[0]["direction"], "upload");
    assert_eq!(listed[1]["direction"], "download");
    for f in &listed {
        assert_eq!(f["sha256"], want.as_str(), "{f}");
        assert_eq!(f["captured"], true, "{f}");
        assert_eq!(f["capture_complete"], true, "{f}");
    }
    let fetch = format!("/v1/sessions/{sftp_session}/files/1");
    let copy = helen
        .call(&r.url(PAWD), "GET", &fetch, None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(copy["content_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, body, "the captured copy is the file");
    // Someone who is neither help-desk nor the session's user sees nothing.
    assert!(bob
        .call(&r.url(PAWD), "GET", &fetch, None)
        .await
        .unwrap()
        .ok()
        .is_err());
    // A copy changed on disk is refused, not given out.
    let store = std::fs::read_dir(r.broker_dir())
        .unwrap()
        .flatten()
        .flat_map(|e| walk(&e.path()))
        .find(|p| p.ends_with(format!("{sftp_session}.files/001-upload-a.txt")))
        .expect("the captured copy in the recording store");
    std::fs::write(&store, b"changed").unwrap();
    let refused = helen.call(&r.url(PAWD), "GET", &fetch, None).await.unwrap();
    let e = refused.ok().unwrap_err().to_string();
    assert!(e.contains("recording_tampered"), "{e}");
    let audit = sqlite_audit(&r).await;
    let reads = records(&audit, "session_file_read");
    assert_eq!(
        reads
            .iter()
            .map(|v| v["outcome"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["success", "failure"],
        "{reads:#?}"
    );
}

/// Every file under `p` (or `p` itself).
fn walk(p: &Path) -> Vec<PathBuf> {
    if p.is_dir() {
        std::fs::read_dir(p)
            .unwrap()
            .flatten()
            .flat_map(|e| walk(&e.path()))
            .collect()
    } else {
        vec![p.to_path_buf()]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m1_traversal_symlinks_and_renames_cannot_leave_the_allowed_paths() {
    let p = Place::new();
    let (r, mut ada, g) = start(&p).await;
    let secret = p.outside.join("secret");
    std::fs::write(&secret, "outside the rules").unwrap();
    std::fs::write(p.area.join("mine.txt"), "mine").unwrap();
    // Links made on the target by someone else: a directory and a file pointing outside.
    std::os::unix::fs::symlink(&p.outside, p.area.join("link")).unwrap();
    std::os::unix::fs::symlink(&secret, p.area.join("filelink")).unwrap();
    let planted = p.local.join("payload");
    std::fs::write(&planted, "planted").unwrap();
    let l = |n: &str| p.local.join(n).display().to_string();
    let outside = p.outside.display().to_string();

    let attempts = [
        format!("-get ../outside/secret {}", l("t1")),
        format!("-get {}/../outside/secret {}", p.area.display(), l("t2")),
        format!(
            "-get {}//.//..//outside/secret {}",
            p.area.display(),
            l("t3")
        ),
        format!("-get /etc/shadow {}", l("t4")),
        format!("-get {} {}", p.a("link/secret"), l("t5")),
        format!("-get {} {}", p.a("filelink"), l("t6")),
        format!("-put {} {}", planted.display(), p.a("link/planted")),
        format!("-put {} ../outside/planted2", planted.display()),
        format!("-rename {} {outside}/moved.txt", p.a("mine.txt")),
        format!("-rename {} {}", p.a("link/secret"), p.a("stolen")),
        format!("-ln -s {} {}", secret.display(), p.a("newlink")),
        format!("-ls {outside}"),
    ];
    let mut batch = vec![format!("cd {}", p.area.display())];
    batch.extend(attempts.iter().cloned());
    // The control: what the rules allow still works in the same session.
    batch.push(format!("get {} {}", p.a("mine.txt"), l("ok")));
    let stock = Stock::new();
    let cred = Stock::session(&r, &mut ada, &g, SSH_TARGET).await;
    let out = stock.sftp(&cred, &batch);
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(std::fs::read_to_string(p.local.join("ok")).unwrap(), "mine");

    for t in ["t1", "t2", "t3", "t4", "t5", "t6"] {
        assert!(!p.local.join(t).exists(), "{t} was fetched: {}", said(&out));
    }
    let mut left: Vec<String> = std::fs::read_dir(&p.outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["secret"], "the outside changed: {}", said(&out));
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "outside the rules"
    );
    assert!(p.area.join("mine.txt").exists());
    assert!(!p.area.join("stolen").exists());
    assert!(std::fs::symlink_metadata(p.area.join("newlink")).is_err());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("paw: "), "the refusals say why: {stderr}");

    // Every refusal is on record, with the path as resolved on the target: the link's
    // target, not the name the client used.
    let audit = sqlite_audit(&r).await;
    let denied = records(&audit, "file_denied");
    let paths: Vec<&str> = denied
        .iter()
        .filter_map(|v| v["detail"]["path"].as_str())
        .collect();
    let secret_s = secret.display().to_string();
    assert!(
        paths.iter().filter(|p| **p == secret_s).count() >= 5,
        "reads of the secret, by every spelling, resolved to it: {paths:#?}"
    );
    assert!(paths.contains(&"/etc/shadow"), "{paths:#?}");
    assert!(
        paths.contains(&format!("{outside}/planted").as_str()),
        "the write through the link is judged where it lands: {paths:#?}"
    );
    assert!(
        paths.contains(&format!("{outside}/moved.txt").as_str()),
        "{paths:#?}"
    );
    assert!(denied.iter().any(|v| v["detail"]["op"] == "symlink"));
    assert!(records(&audit, "file_transfer")
        .iter()
        .all(|v| v["detail"]["path"] == p.a("mine.txt").as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m2_sizes_and_operations_beyond_the_rules_are_refused() {
    let p = Place::new();
    let (r, mut ada, g) = start(&p).await;
    let big = payload(2 * 1024 * 1024, 2);
    std::fs::write(p.local.join("big.bin"), &big).unwrap();
    std::fs::write(p.area.join("huge.bin"), &big).unwrap();
    std::fs::write(p.area.join("ro/keep"), "keep").unwrap();
    std::fs::write(p.local.join("small"), "small").unwrap();
    let stock = Stock::new();
    let cred = Stock::session(&r, &mut ada, &g, SSH_TARGET).await;
    let small = p.local.join("small").display().to_string();
    let out = stock.sftp(
        &cred,
        &lines(&[
            format!(
                "-put {} {}",
                p.local.join("big.bin").display(),
                p.a("big.bin")
            ),
            format!(
                "-get {} {}",
                p.a("huge.bin"),
                p.local.join("huge.back").display()
            ),
            format!("-put {small} {}", p.a("ro/new")),
            format!("-rm {}", p.a("ro/keep")),
            format!("-chmod 600 {}", p.a("ro/keep")),
            format!("-mkdir {}", p.a("ro/sub")),
            format!("put {small} {}", p.a("fine")),
        ]),
    );
    assert!(out.status.success(), "{}", said(&out));
    // An upload over the limit is not left half-written on the target.
    assert!(!p.area.join("big.bin").exists(), "{}", said(&out));
    assert!(!p.local.join("huge.back").exists());
    assert!(!p.area.join("ro/new").exists() && !p.area.join("ro/sub").exists());
    assert_eq!(
        std::fs::read_to_string(p.area.join("ro/keep")).unwrap(),
        "keep"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_ne!(
        std::fs::metadata(p.area.join("ro/keep"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(p.area.join("fine")).unwrap(),
        "small"
    );

    let audit = sqlite_audit(&r).await;
    let denied = records(&audit, "file_denied");
    let why = |path: &str| -> Vec<String> {
        denied
            .iter()
            .filter(|v| v["detail"]["path"] == path)
            .map(|v| v["detail"]["why"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert!(
        why(&p.a("big.bin"))
            .iter()
            .any(|w| w.contains("1048576 bytes")),
        "{denied:#?}"
    );
    assert!(
        why(&p.a("huge.bin"))
            .iter()
            .any(|w| w.contains("1048576 bytes")),
        "{denied:#?}"
    );
    for path in ["ro/new", "ro/keep", "ro/sub"] {
        assert!(
            why(&p.a(path)).iter().any(|w| w.contains("read-only here")),
            "{path}: {denied:#?}"
        );
    }
    let big_rec = one(
        &records(&audit, "file_transfer"),
        "the oversize upload",
        |v| v["detail"]["path"] == p.a("big.bin").as_str(),
    )
    .clone();
    assert_eq!(big_rec["outcome"], "failure", "{big_rec}");
    assert_eq!(big_rec["detail"]["refused_for_size"], true, "{big_rec}");
}

/// The one pending hold `user` sees, waiting for it to appear.
async fn the_hold(r: &Replicas, user: &mut VirtualUser) -> Value {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        let list = user
            .call(&r.url(PAWD), "GET", "/v1/holds", None)
            .await
            .unwrap()
            .ok()
            .unwrap();
        if let Some(h) = list["holds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["state"] == "pending")
        {
            return h.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no hold appeared");
}

fn temps(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".paw-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m2_a_write_under_a_step_up_rule_lands_only_after_a_step_up_bound_to_its_path_and_hash() {
    let p = Place::new();
    let (r, mut ada, g) = start(&p).await;
    let first = payload(200 * 1024, 3);
    let second = payload(100 * 1024, 4);
    std::fs::write(p.local.join("first"), &first).unwrap();
    std::fs::write(p.local.join("second"), &second).unwrap();
    let tool = p.a("bin/tool");
    let stock = Stock::new();

    let cred = Stock::session(&r, &mut ada, &g, SSH_TARGET).await;
    let session_id = cred.session_id.clone();
    let child = stock.sftp_spawn(
        &cred,
        &[format!("put {} {tool}", p.local.join("first").display())],
    );
    let hold = the_hold(&r, &mut ada).await;
    let text = format!(
        "sftp put {tool} ({} bytes, sha256 {})",
        first.len(),
        sha(&first)
    );
    assert_eq!(hold["command"], text.as_str(), "{hold}");
    assert_eq!(hold["needs"], "step_up");
    // Held: the bytes wait under a temporary name, the real path is untouched.
    assert!(!p.area.join("bin/tool").exists());
    let waiting = temps(&p.area.join("bin"));
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(
        std::fs::read(p.area.join("bin").join(&waiting[0])).unwrap(),
        first
    );

    // A step-up for other bytes or another path releases nothing.
    let release = format!("/v1/holds/{}/release", hold["id"].as_str().unwrap());
    for wrong in [
        format!(
            "sftp put {tool} ({} bytes, sha256 {})",
            first.len(),
            sha(&second)
        ),
        format!(
            "sftp put {} ({} bytes, sha256 {})",
            p.a("bin/other"),
            first.len(),
            sha(&first)
        ),
    ] {
        let answer = ada
            .signed(
                &r.url(PAWD),
                &release,
                &Action::Command {
                    session_id: session_id.clone(),
                    target: SSH_TARGET.into(),
                    command: wrong.clone(),
                },
            )
            .await
            .unwrap();
        assert!(answer.ok().is_err(), "released by a step-up for {wrong}");
    }
    assert!(!p.area.join("bin/tool").exists());

    // The right one: the file lands with exactly the approved bytes.
    ada.signed(
        &r.url(PAWD),
        &release,
        &Action::Command {
            session_id: session_id.clone(),
            target: SSH_TARGET.into(),
            command: text.clone(),
        },
    )
    .await
    .unwrap()
    .ok()
    .expect("the step-up for the held bytes releases them");
    let out = finish(child, Duration::from_secs(15));
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(std::fs::read(p.area.join("bin/tool")).unwrap(), first);
    assert!(temps(&p.area.join("bin")).is_empty());

    // Nobody confirms the next one: after hold_secs it is refused and the file stays as it was.
    let cred = Stock::session(&r, &mut ada, &g, SSH_TARGET).await;
    let child = stock.sftp_spawn(
        &cred,
        &[format!("put {} {tool}", p.local.join("second").display())],
    );
    let started = Instant::now();
    let out = finish(child, Duration::from_secs(30));
    assert!(!out.status.success(), "{}", said(&out));
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "refused before its hold ran out: {:?}",
        started.elapsed()
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not kept"),
        "{}",
        said(&out)
    );
    assert_eq!(std::fs::read(p.area.join("bin/tool")).unwrap(), first);
    assert!(temps(&p.area.join("bin")).is_empty());

    let audit = sqlite_audit(&r).await;
    let files = records(&audit, "file_transfer");
    let kept = one(&files, "the released write", |v| {
        v["detail"]["held"]["state"] == "released"
    });
    assert_eq!(kept["outcome"], "success");
    assert_eq!(kept["detail"]["sha256"], sha(&first).as_str());
    assert_eq!(kept["detail"]["held"]["by"], "ada");
    let dropped = one(&files, "the expired write", |v| {
        v["detail"]["held"]["state"] == "expired"
    });
    assert_eq!(dropped["outcome"], "denied");
    assert_eq!(dropped["detail"]["sha256"], sha(&second).as_str());
}

/// The CI run before this test existed: uploads and downloads through the broker stalled for
/// good after 10–20 MB (the proxy awaited a write to one side while the other side's window
/// adjustments sat unread). Tens of MB each way must pass whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m3_tens_of_megabytes_stream_both_ways_whole() {
    let p = Place::new();
    let (r, mut ada, _) = start(&p).await;
    let g = grant(&r, &mut ada, "web-bulk", SSH_TARGET).await;
    std::fs::create_dir_all(p.area.join("bulk")).unwrap();
    let body = payload(64 * 1024 * 1024 + 12345, 5);
    let local = p.local.join("big");
    std::fs::write(&local, &body).unwrap();
    let stock = Stock::new();
    let cred = Stock::session(&r, &mut ada, &g, SSH_TARGET).await;
    let started = Instant::now();
    let out = stock.sftp(
        &cred,
        &lines(&[
            format!("put {} {}", local.display(), p.a("bulk/big")),
            format!(
                "get {} {}",
                p.a("bulk/big"),
                p.local.join("big.back").display()
            ),
        ]),
    );
    assert!(out.status.success(), "{}", said(&out));
    eprintln!(
        "64 MiB up and down through the broker in {:?}",
        started.elapsed()
    );
    let want = sha(&body);
    assert_eq!(sha(&std::fs::read(p.area.join("bulk/big")).unwrap()), want);
    assert_eq!(sha(&std::fs::read(p.local.join("big.back")).unwrap()), want);
    let audit = sqlite_audit(&r).await;
    let files = records(&audit, "file_transfer");
    assert_eq!(files.len(), 2, "{files:#?}");
    for f in &files {
        assert_eq!(f["detail"]["sha256"], want.as_str(), "{f}");
        assert_eq!(f["detail"]["size"], body.len() as u64, "{f}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c1_an_entitlement_without_file_rules_has_no_sftp() {
    let p = Place::new();
    let (r, mut ada, _) = start(&p).await;
    let g = grant(&r, &mut ada, "web-shell", SSH_TARGET).await;
    std::fs::write(p.local.join("x"), "x").unwrap();
    let stock = Stock::new();
    let cred = Stock::session(&r, &mut ada, &g, SSH_TARGET).await;
    let out = stock.sftp(
        &cred,
        &[format!("put {} {}", p.local.join("x").display(), p.a("x"))],
    );
    assert!(!out.status.success(), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("subsystem request failed"),
        "{}",
        said(&out)
    );
    assert!(!p.area.join("x").exists());
}
