//! File transfer end to end in the real app (issue #18): ada's active grant on web-1 allows
//! files under one directory; from the Sessions page she opens a file connection (a session
//! step-up), uploads a few MiB picked through the file input, sees the progress move and the
//! SHA-256 of the bytes, and the file lands byte for byte on the real sshd's side; then she
//! downloads a file from there, and the app saves it in her download folder with the same
//! SHA-256 shown. Every byte goes through pawd's SFTP front door and its path rules.
//! The entitlement captures files (cut at 4 MiB): once the connection is closed, History lists
//! the session's files, and Save writes the kept copies, checked by their SHA-256, into the
//! download folder: the download whole, the upload's first 4 MiB.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use paw_e2e::{App, Broker};
use paw_tests::sshd::TempSshd;
use sha2::{Digest, Sha256};

/// How long a wait for the app or a transfer may take, and how often it looks.
const WAIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(500);
/// Big enough that the upload goes in many chunks, so its progress can be seen moving.
const UPLOAD_BYTES: usize = 6 * 1024 * 1024;
const DOWNLOAD_BYTES: usize = 3 * 1024 * 1024 + 17;
/// What the broker keeps of each file: the download whole, the upload cut.
const CAPTURE_MAX: usize = 4 * 1024 * 1024;

fn policy(dir: &Path) -> String {
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
max_sessions = 5

[entitlement.files]
rules = [
  {{ path = "{dir}/**", ops = ["read", "write", "mkdir", "rename", "delete", "setstat"] }},
]
max_size = 104857600
capture = true
capture_max = {CAPTURE_MAX}
"#,
        dir = dir.display()
    )
}

/// Bytes that do not compress and differ per offset (a repeated pattern could hide a
/// misplaced chunk).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// The transfer row's state as the page has it: phase, bytes done, bytes in all.
async fn transfer_state(app: &App, direction: &str) -> (String, u64, u64) {
    let v = app
        .client
        .execute(
            "const e = document.querySelector(`[data-testid=transfer][data-direction=${arguments[0]}]`); \
             return e ? [e.dataset.phase, e.dataset.done, e.dataset.total] : null;",
            vec![serde_json::json!(direction)],
        )
        .await
        .unwrap();
    let Some(a) = v.as_array() else {
        return (String::new(), 0, 0);
    };
    let s = |i: usize| a.get(i).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    (s(0), s(1).parse().unwrap_or(0), s(2).parse().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_and_download_with_progress_and_the_sha256_shown() {
    let keys = tempfile::tempdir().unwrap();
    let ca = keys.path().join("ssh_user_ca");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "e2e broker CA", "-f"])
        .arg(&ca)
        .status()
        .unwrap();
    assert!(st.success());
    let ca_pub = std::fs::read_to_string(ca.with_extension("pub")).unwrap();
    let sshd = TempSshd::start(&ca_pub).unwrap();

    // The directory the grant's file rules allow, on the target (this machine: sshd runs here).
    let remote = Path::new("/tmp").join(format!("paw-e2e-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&remote);
    std::fs::create_dir_all(&remote).unwrap();
    let ssh_port = paw_e2e::free_port().unwrap();
    let config = format!(
        "{policy}\n[sessions]\nssh_listen = \"127.0.0.1:{ssh_port}\"\nssh_ca_key = \"{ca}\"\n\n\
         [[target]]\nname = \"web-1\"\nkind = \"ssh\"\naddress = \"{addr}\"\nhost_key = \"{hk}\"\n",
        policy = policy(&remote),
        ca = ca.display(),
        addr = sshd.address(),
        hk = sshd.host_key(),
    );
    let broker = Broker::start_with_policy(&config).unwrap();

    let local = tempfile::tempdir().unwrap();
    let downloads = local.path().join("Downloads");
    let upload_file = local.path().join("release-bundle.bin");
    let upload_bytes = noise(UPLOAD_BYTES, 0x5eed);
    std::fs::write(&upload_file, &upload_bytes).unwrap();
    let app = App::launch_with(
        Some(&broker),
        &[("XDG_DOWNLOAD_DIR", downloads.to_str().unwrap())],
    )
    .await
    .unwrap();
    app.enroll_and_sign_in(&broker, "ada").await.unwrap();

    app.fill_request("web-files", "web-1", 30, "ship the release bundle to web-1")
        .await
        .unwrap();
    app.submit_request("web-1").await.unwrap();
    app.wait_for("[data-testid=grant-row][data-state=active]")
        .await
        .unwrap();

    // Sessions → Files on the grant: a session-scoped step-up, then the file panel.
    app.click("[data-testid=nav-sessions]").await.unwrap();
    app.click("[data-testid=session-open-files]").await.unwrap();
    app.wait_for_text("[data-testid=stepup-description]", "web-1")
        .await
        .unwrap();
    app.click("[data-testid=stepup-approve]").await.unwrap();
    if let Err(e) = app.wait_for("[data-testid=files-panel]").await {
        panic!(
            "no file panel: {e} (error: {:?}; screen: {})",
            app.text_of("[data-testid=session-open-error]").await,
            app.failure_screenshot().await
        );
    }

    // Upload: the file picked through the input (WebDriver sets its path), to the allowed dir.
    let input = app
        .wait_for("[data-testid=files-upload-input]")
        .await
        .unwrap();
    input
        .send_keys(upload_file.to_str().unwrap())
        .await
        .unwrap();
    let remote_upload = remote.join("release-bundle.bin");
    app.type_into(
        "[data-testid=files-upload-path]",
        remote_upload.to_str().unwrap(),
    )
    .await
    .unwrap();
    app.click("[data-testid=files-upload-start]").await.unwrap();
    // Watch it closely: the bytes done must be seen between none and all.
    let mut seen_between = false;
    let deadline = Instant::now() + WAIT;
    loop {
        let (phase, done, total) = transfer_state(&app, "upload").await;
        if total == UPLOAD_BYTES as u64 && done > 0 && done < total {
            seen_between = true;
        }
        match phase.as_str() {
            "done" => break,
            "failed" | "cancelled" => panic!(
                "the upload {phase}: {:?} (screen: {})",
                app.text_of("[data-testid=transfer]").await,
                app.failure_screenshot().await
            ),
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "the upload did not finish (phase {phase:?}, {done}/{total}; screen: {})",
            app.failure_screenshot().await
        );
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    assert!(seen_between, "no progress between 0 and all was shown");
    let (_, done, total) = transfer_state(&app, "upload").await;
    assert_eq!((done, total), (UPLOAD_BYTES as u64, UPLOAD_BYTES as u64));
    let shown = app
        .text_of("[data-testid=transfer][data-direction=upload] [data-testid=transfer-sha256]")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(shown.trim(), sha256_hex(&upload_bytes));
    let landed = std::fs::read(&remote_upload).unwrap();
    assert!(landed == upload_bytes, "the target's file differs");
    // The remote folder now lists it, with its size.
    app.type_into("[data-testid=files-dir]", remote.to_str().unwrap())
        .await
        .unwrap();
    app.click("[data-testid=files-list]").await.unwrap();
    let listed = app
        .wait_for_text("[data-testid=files-entries]", "release-bundle.bin")
        .await
        .unwrap();
    assert!(listed.contains("6.0 MiB"), "{listed}");
    app.scroll_into_view("[data-testid=files-panel]")
        .await
        .unwrap();
    app.screenshot("file-upload").await.unwrap();

    // Download: a file the target has, saved by the app in the download folder.
    let download_bytes = noise(DOWNLOAD_BYTES, 0xd0d0);
    let remote_download = remote.join("access-log.gz");
    std::fs::write(&remote_download, &download_bytes).unwrap();
    app.type_into(
        "[data-testid=files-download-path]",
        remote_download.to_str().unwrap(),
    )
    .await
    .unwrap();
    app.click("[data-testid=files-download-start]")
        .await
        .unwrap();
    app.wait_until("the download to finish", WAIT, POLL, async || {
        let (phase, _, _) = transfer_state(&app, "download").await;
        assert!(
            phase != "failed" && phase != "cancelled",
            "the download {phase}: {:?}",
            app.text_of("[data-testid=transfer][data-direction=download]")
                .await
        );
        Ok(phase == "done")
    })
    .await
    .unwrap();
    let (_, done, total) = transfer_state(&app, "download").await;
    assert_eq!(
        (done, total),
        (DOWNLOAD_BYTES as u64, DOWNLOAD_BYTES as u64)
    );
    let row = "[data-testid=transfer][data-direction=download]";
    let shown = app
        .text_of(&format!("{row} [data-testid=transfer-sha256]"))
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(shown.trim(), sha256_hex(&download_bytes));
    let saved = app
        .text_of(&format!("{row} [data-testid=transfer-local-path]"))
        .await
        .unwrap()
        .unwrap_or_default();
    let saved = Path::new(saved.trim());
    assert_eq!(saved, downloads.join("access-log.gz"));
    assert!(
        std::fs::read(saved).unwrap() == download_bytes,
        "the saved file differs"
    );
    app.scroll_into_view(row).await.unwrap();
    app.screenshot("file-download").await.unwrap();

    // Outside the grant's file rules the broker refuses, and its words reach the page.
    app.type_into("[data-testid=files-download-path]", "/etc/hostname")
        .await
        .unwrap();
    app.click("[data-testid=files-download-start]")
        .await
        .unwrap();
    let refused = app
        .wait_for_text(
            "[data-testid=transfer][data-phase=failed] [data-testid=transfer-error]",
            "paw: ",
        )
        .await
        .unwrap();
    assert!(refused.contains("/etc/hostname"), "{refused}");
    assert!(
        !downloads.join("hostname").exists(),
        "nothing is saved from a refused download"
    );

    // Close the connection: the session ends and its recording and captures are final.
    let session_id = app
        .client
        .execute(
            "return document.querySelector('[data-testid=files-panel]').dataset.sessionId;",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    app.click("[data-testid=files-close]").await.unwrap();
    check_history_files(
        &app,
        &session_id,
        &downloads,
        &upload_bytes,
        &download_bytes,
    )
    .await;

    app.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&remote);
}

/// History → the session's detail: its files are listed with what the broker kept, and Save
/// writes exactly the kept bytes into the download folder, beside (never over) the download
/// of the same name.
async fn check_history_files(
    app: &App,
    session_id: &str,
    downloads: &Path,
    upload_bytes: &[u8],
    download_bytes: &[u8],
) {
    app.click("[data-testid=nav-history]").await.unwrap();
    let replay = format!("[data-testid=history-replay-{session_id}]");
    // The recording is final a moment after the connection closes.
    app.wait_until("the session in History", WAIT, POLL, async || {
        if app.text_of(&replay).await?.is_some() {
            return Ok(true);
        }
        let _ = app.click_now("[data-testid=history-refresh]").await;
        Ok(false)
    })
    .await
    .unwrap();
    app.click(&replay).await.unwrap();
    app.wait_for("[data-testid=session-file-2]").await.unwrap();

    let upload = app
        .text_of("[data-testid=session-file-1]")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(upload.contains("release-bundle.bin"), "{upload}");
    assert!(upload.contains("6.0 MiB"), "{upload}");
    let capture = app
        .text_of("[data-testid=session-file-capture-1]")
        .await
        .unwrap();
    assert_eq!(capture.as_deref(), Some("Partial copy"));
    let download = app
        .text_of("[data-testid=session-file-2]")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(download.contains("access-log.gz"), "{download}");
    let capture = app
        .text_of("[data-testid=session-file-capture-2]")
        .await
        .unwrap();
    assert_eq!(capture.as_deref(), Some("Captured"));
    let sha = app
        .client
        .execute(
            "return document.querySelector('[data-testid=session-file-sha-2]').title;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(sha.as_str(), Some(sha256_hex(download_bytes).as_str()));

    // The whole copy: the same bytes as the download, in a new file beside it.
    app.click("[data-testid=session-file-save-2]")
        .await
        .unwrap();
    let saved = saved_path(app, 2).await;
    assert_eq!(saved, downloads.join("access-log (2).gz"));
    assert!(
        std::fs::read(&saved).unwrap() == download_bytes,
        "the saved copy differs from the download"
    );
    assert!(
        std::fs::read(downloads.join("access-log.gz")).unwrap() == download_bytes,
        "the earlier download was touched"
    );
    let shown = app
        .text_of("[data-testid=session-file-saved-sha-2]")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(shown.trim(), sha256_hex(download_bytes));

    // The cut copy: the upload's first bytes, as many as the broker keeps.
    app.click("[data-testid=session-file-save-1]")
        .await
        .unwrap();
    let saved = saved_path(app, 1).await;
    assert_eq!(saved, downloads.join("release-bundle.bin"));
    let kept = std::fs::read(&saved).unwrap();
    assert_eq!(kept.len(), CAPTURE_MAX);
    assert!(
        kept == upload_bytes[..CAPTURE_MAX],
        "the partial copy is not the upload's first bytes"
    );
    app.wait_for("[data-testid=session-file-partial-1]")
        .await
        .unwrap();

    app.scroll_into_view("[data-testid=session-files]")
        .await
        .unwrap();
    app.screenshot("session-files").await.unwrap();
}

/// Where the page says file `n`'s copy was saved, once it says so (or why not).
async fn saved_path(app: &App, n: u32) -> std::path::PathBuf {
    let local = format!("[data-testid=session-file-local-{n}]");
    let error = format!("[data-testid=session-file-error-{n}]");
    let mut path = String::new();
    app.wait_until("the copy to be saved", WAIT, POLL, async || {
        if let Some(e) = app.text_of(&error).await? {
            panic!("saving file {n} failed: {e}");
        }
        Ok(match app.text_of(&local).await? {
            Some(t) => {
                path = t.trim().to_owned();
                true
            }
            None => false,
        })
    })
    .await
    .unwrap();
    std::path::PathBuf::from(path)
}
