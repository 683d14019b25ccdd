//! A session's files through the real `Core` and HTTPS client against [`crate::fake_broker`]:
//! the list, a captured copy saved byte for byte into a new file (never over the user's own),
//! a copy whose bytes do not match the broker's SHA-256 refused with nothing written, and each
//! save between its own records in the local audit trail. What the broker decides (who may
//! read, the check on its disk, the 64 MiB bound) is tested in the `tests` crate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use paw_proto::files::SessionFileInput;
use paw_proto::ipc::AuditOutcome;
use paw_proto::session::{CapturedFile, SessionFileView, SessionFiles, SessionIdInput};
use paw_proto::ErrorCode;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::core_tests::{all_records, signed_in};
use crate::fake_broker::{FakeBroker, Reply};
use crate::util::hex;

/// The uploaded file's bytes: not valid UTF-8, so nothing on the way may treat them as text.
fn report() -> Vec<u8> {
    (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn file(n: i64, path: &str, bytes: &[u8], captured: bool) -> SessionFileView {
    SessionFileView {
        n,
        path: path.into(),
        direction: "upload".into(),
        size: bytes.len() as i64,
        sha256: Some(hex(&Sha256::digest(bytes))),
        outcome: "success".into(),
        captured,
        capture_complete: captured,
        at_ms: 1_767_000_000_000,
    }
}

/// Session `se-1`: file 1 `/srv/report.bin` captured whole; file 2 captured, but the copy the
/// broker sends is not the one whose hash it kept; file 3 not captured (the broker's 404).
fn files_broker() -> FakeBroker {
    FakeBroker::start(move |req| {
        let body = report();
        let list = SessionFiles {
            session_id: "se-1".into(),
            files: vec![
                file(1, "/srv/report.bin", &body, true),
                file(2, "/etc/passwd", b"root:x:0:0\n", true),
                file(3, "/tmp/big.iso", b"", false),
            ],
        };
        match req.path.as_str() {
            "/v1/sessions/se-1/files" => Some(Reply::Json(200, json!(list))),
            "/v1/sessions/se-1/files/1" => Some(Reply::Json(
                200,
                json!(CapturedFile {
                    file: list.files[0].clone(),
                    capture_sha256: hex(&Sha256::digest(&body)),
                    content_base64: base64::engine::general_purpose::STANDARD.encode(&body),
                }),
            )),
            "/v1/sessions/se-1/files/2" => Some(Reply::Json(
                200,
                json!(CapturedFile {
                    file: list.files[1].clone(),
                    capture_sha256: hex(&Sha256::digest(b"root:x:0:0\n")),
                    content_base64: base64::engine::general_purpose::STANDARD
                        .encode(b"root::0:0\n"),
                }),
            )),
            "/v1/sessions/se-1/files/3" => Some(Reply::Json(
                404,
                json!({"code": "not_found", "message": "no captured copy of this file"}),
            )),
            _ => None,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_comes_from_the_broker_as_it_is() {
    let fb = files_broker();
    let s = signed_in(&fb, None).await;
    let list = s
        .core
        .session_files(SessionIdInput {
            session_id: "se-1".into(),
        })
        .await
        .unwrap();
    assert_eq!(list.files.len(), 3);
    assert_eq!(list.files[0].path, "/srv/report.bin");
    assert!(!list.files[2].captured);
    // A malformed id never reaches the broker.
    let e = s
        .core
        .session_files(SessionIdInput {
            session_id: "se-1/files/1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadRequest);
    assert_eq!(fb.requests("/v1/sessions/se-1/files").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_copy_is_saved_byte_for_byte_into_a_new_file() {
    let fb = files_broker();
    let s = signed_in(&fb, None).await;
    let dir = tempfile::tempdir().unwrap();
    // The user's own file of the same name is left alone.
    std::fs::write(dir.path().join("report.bin"), b"mine").unwrap();

    let saved = s
        .core
        .save_session_file_in(
            SessionFileInput {
                session_id: "se-1".into(),
                n: 1,
            },
            dir.path(),
        )
        .await
        .unwrap();
    let body = report();
    assert_eq!(
        saved.local_path,
        dir.path().join("report (2).bin").display().to_string()
    );
    assert_eq!(std::fs::read(&saved.local_path).unwrap(), body);
    assert_eq!(
        std::fs::read(dir.path().join("report.bin")).unwrap(),
        b"mine"
    );
    assert_eq!(saved.sha256, hex(&Sha256::digest(&body)));
    assert_eq!(saved.bytes, body.len() as u64);
    assert_eq!(saved.remote_path, "/srv/report.bin");
    assert!(saved.complete);

    // Started, then success with where it went and the hash; the broker cosigned before.
    let r = s.core.audit_query(all_records()).await.unwrap().records;
    let kinds: Vec<(&str, AuditOutcome)> = r.iter().map(|r| (r.kind.as_str(), r.outcome)).collect();
    assert_eq!(
        kinds,
        [
            ("session.file_save", AuditOutcome::Success),
            ("session.file_save", AuditOutcome::Started)
        ]
    );
    assert_eq!(r[0].target, "se-1");
    assert!(r[0].detail.contains(&saved.sha256), "{}", r[0].detail);
    assert!(r[0].detail.contains("report (2).bin"), "{}", r[0].detail);
    assert!(!fb.requests("/v1/audit/checkpoint").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_does_not_match_its_hash_is_refused_and_nothing_is_written() {
    let fb = files_broker();
    let s = signed_in(&fb, None).await;
    let dir = tempfile::tempdir().unwrap();
    let e = s
        .core
        .save_session_file_in(
            SessionFileInput {
                session_id: "se-1".into(),
                n: 2,
            },
            dir.path(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::RecordingTampered, "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // No copy kept: the broker's own code reaches the UI, and nothing is written either.
    let e = s
        .core
        .save_session_file_in(
            SessionFileInput {
                session_id: "se-1".into(),
                n: 3,
            },
            dir.path(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound, "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let r = s.core.audit_query(all_records()).await.unwrap().records;
    let outcomes: Vec<AuditOutcome> = r.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            AuditOutcome::Failure,
            AuditOutcome::Started,
            AuditOutcome::Failure,
            AuditOutcome::Started
        ]
    );
    assert!(
        r[2].detail.contains("recording_tampered") || r[2].detail.contains("does not match"),
        "{}",
        r[2].detail
    );
}
