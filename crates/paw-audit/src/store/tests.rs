use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use serde_json::json;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor, SqliteConnection};

use super::*;
use crate::checkpoint::{check_extends, check_successor, KeyPeriod};
use crate::error::{VerifyError, VerifyFailure};
use crate::to_json_line;

const T0: i64 = 1_700_000_000_000;
const ACTIONS: [&str; 5] = [
    "grant.request",
    "grant.approve",
    "session.open",
    "session.close",
    "key.add",
];
const ACTORS: [&str; 4] = ["ada", "bob", "chen", "dana"];
const WHY: [&str; 6] = [
    "rotate the replica keys",
    "Hotfix for the billing outage",
    "quarterly access review",
    "zoë asked to restore a backup",
    "deploy hotfix then rotate",
    "investigate \"slow\" queries",
];

fn ev(i: u64) -> NewEvent {
    let n = i as usize;
    NewEvent::new(
        ACTORS[n % 4],
        ACTIONS[n % 5],
        format!(
            "{}-db-{}/dba",
            if n.is_multiple_of(3) { "prod" } else { "Stage" },
            n % 7
        ),
        Outcome::ALL[(n / 2) % 4],
        json!({"why": format!("{} T-{i}", WHY[n % 6]), "n": i, "nested": {"ok": true}}),
        // Not monotone in seq: results are ordered by time, and ties by seq.
        T0 + ((i * 37) % 101) as i64 * 1000,
    )
}

async fn new_trail() -> (tempfile::TempDir, PathBuf, LocalTrail) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let trail = LocalTrail::open(&path).await.unwrap();
    (dir, path, trail)
}

async fn filled(n: u64) -> (tempfile::TempDir, PathBuf, LocalTrail, Vec<Record>) {
    let (dir, path, trail) = new_trail().await;
    let records = trail.append_batch((1..=n).map(ev).collect()).await.unwrap();
    (dir, path, trail, records)
}

/// A second connection, as an attacker with the file would have: no triggers in the way.
async fn raw(path: &Path) -> SqliteConnection {
    let mut c = SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .unwrap();
    c.execute(
        "DROP TRIGGER IF EXISTS audit_log_no_update; \
         DROP TRIGGER IF EXISTS audit_log_no_delete; \
         PRAGMA ignore_check_constraints = ON;",
    )
    .await
    .unwrap();
    c
}

fn verify_err(r: Result<Head, AuditError>) -> VerifyError {
    match r {
        Err(AuditError::Verify(e)) => e,
        other => panic!("expected a verification failure, got {other:?}"),
    }
}

#[tokio::test]
async fn appends_are_linked_durable_and_survive_reopen() {
    let (_dir, path, trail) = new_trail().await;
    assert_eq!(
        trail.durability_settings().await.unwrap(),
        ("wal".to_owned(), 2)
    );
    assert_eq!(trail.head().await.unwrap(), Head::genesis());
    let mut all = Vec::new();
    for i in 1..=3 {
        let e = ev(i);
        let r = trail
            .append(e.actor, e.action, e.subject, e.outcome, e.detail, e.time_ms)
            .await
            .unwrap();
        assert_eq!(r.event.seq, i);
        all.push(r);
    }
    all.extend(trail.append_batch((4..=7).map(ev).collect()).await.unwrap());
    assert!(trail.append_batch(Vec::new()).await.unwrap().is_empty());
    crate::verify(&all).unwrap();
    let head = trail.verify().await.unwrap();
    assert_eq!(
        head,
        Head {
            seq: 7,
            hash: all[6].hash
        }
    );
    assert_eq!(trail.records(0, 100).await.unwrap(), all);
    assert_eq!(trail.records(5, 1).await.unwrap(), all[5..6].to_vec());
    trail.close().await;

    let trail = LocalTrail::open(&path).await.unwrap();
    assert_eq!(trail.head().await.unwrap(), head);
    let r = trail
        .append("ada", "x", "y", Outcome::Started, json!(null), T0)
        .await
        .unwrap();
    assert_eq!((r.event.seq, r.prev_hash), (8, head.hash));
    assert_eq!(trail.verify().await.unwrap().seq, 8);
    trail.close().await;
}

#[tokio::test]
async fn two_handles_on_one_file_never_fork_the_chain() {
    let (_dir, path, a) = new_trail().await;
    let b = LocalTrail::open(&path).await.unwrap();
    let (ra, rb) = tokio::join!(
        async {
            let mut v = Vec::new();
            for i in 0..20 {
                v.push(
                    a.append("a", "t", "s", Outcome::Success, json!(i), T0)
                        .await,
                );
            }
            v
        },
        async {
            let mut v = Vec::new();
            for i in 0..20 {
                v.push(
                    b.append("b", "t", "s", Outcome::Success, json!(i), T0)
                        .await,
                );
            }
            v
        }
    );
    assert!(ra.iter().chain(rb.iter()).all(Result::is_ok));
    assert_eq!(a.verify().await.unwrap().seq, 40);
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn append_only_triggers_refuse_edits_through_sql() {
    let (_dir, path, trail, _) = filled(3).await;
    let mut c = SqliteConnectOptions::new()
        .filename(&path)
        .connect()
        .await
        .unwrap();
    for sql in [
        "UPDATE audit_log SET actor = 'eve' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 3",
    ] {
        let err = sqlx::query(sql).execute(&mut c).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    c.close().await.unwrap();
    assert_eq!(trail.verify().await.unwrap().seq, 3);
    trail.close().await;
}

#[tokio::test]
async fn d1_read_only_trail_refuses_with_read_only() {
    let (_dir, path, trail, _) = filled(2).await;
    trail.close().await;
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o444);
    std::fs::set_permissions(&path, perms.clone()).unwrap();
    // chmod does not stop root (CI runs as root): make the file immutable as well.
    let root = std::fs::OpenOptions::new().append(true).open(&path).is_ok();
    if root {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(&path)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "running with DAC override and chattr +i failed");
    }
    let outcome = async {
        match LocalTrail::open(&path).await {
            Err(e) => Err(e),
            Ok(t) => {
                let r = t
                    .append("ada", "x", "y", Outcome::Started, json!(null), T0)
                    .await;
                t.close().await;
                r.map(|_| ())
            }
        }
    }
    .await;
    if root {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&path)
            .status();
    }
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&path, perms).unwrap();
    assert!(matches!(outcome, Err(AuditError::ReadOnly)), "{outcome:?}");
}

#[tokio::test]
async fn d1_garbage_file_is_corrupt_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let garbage: Vec<u8> = (0..16_384)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = LocalTrail::open(&path).await.unwrap_err();
    assert!(matches!(err, AuditError::Corrupt(_)), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
}

#[tokio::test]
async fn d1_another_applications_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let mut c = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    c.execute("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
        .await
        .unwrap();
    c.close().await.unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = LocalTrail::open(&path).await.unwrap_err();
    assert!(matches!(err, AuditError::NotATrail(_)), "{err:?}");
    // Not even switched to WAL: the header is byte-for-byte what it was.
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn d1_newer_schema_and_missing_tables_are_refused() {
    let (_dir, path, trail, _) = filled(1).await;
    trail.close().await;
    let mut c = raw(&path).await;
    c.execute("PRAGMA user_version = 99").await.unwrap();
    c.close().await.unwrap();
    let err = LocalTrail::open(&path).await.unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::NewerSchema {
                found: 99,
                known: 1
            }
        ),
        "{err:?}"
    );

    let mut c = raw(&path).await;
    c.execute("PRAGMA user_version = 1; DROP TABLE audit_cosignature;")
        .await
        .unwrap();
    c.close().await.unwrap();
    let err = LocalTrail::open(&path).await.unwrap_err();
    assert!(matches!(err, AuditError::Corrupt(_)), "{err:?}");
}

#[tokio::test]
async fn d1_locked_trail_fails_with_locked_within_the_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let trail = LocalTrail::open_with(
        &path,
        OpenOptions {
            busy_timeout: Duration::from_millis(150),
            ..OpenOptions::default()
        },
    )
    .await
    .unwrap();
    let mut other = SqliteConnectOptions::new()
        .filename(&path)
        .connect()
        .await
        .unwrap();
    other.execute("BEGIN EXCLUSIVE").await.unwrap();
    let started = Instant::now();
    let err = trail
        .append("ada", "x", "y", Outcome::Started, json!(null), T0)
        .await
        .unwrap_err();
    assert!(matches!(err, AuditError::Locked), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    other.execute("ROLLBACK").await.unwrap();
    // The refused append left nothing behind, and the next one goes through.
    let r = trail
        .append("ada", "x", "y", Outcome::Started, json!(null), T0)
        .await
        .unwrap();
    assert_eq!(r.event.seq, 1);
    other.close().await.unwrap();
    trail.close().await;
}

#[tokio::test]
async fn d1_full_trail_refuses_with_disk_full_and_keeps_no_partial_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let trail = LocalTrail::open(&path).await.unwrap();
    let pages: i64 = {
        let mut w = trail.writer.lock().await;
        sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut *w)
            .await
            .unwrap()
    };
    trail.close().await;
    let trail = LocalTrail::open_with(
        &path,
        OpenOptions {
            max_pages: Some(pages as u32 + 8),
            ..OpenOptions::default()
        },
    )
    .await
    .unwrap();
    let big = "x".repeat(3000);
    let mut acknowledged = 0u64;
    let err = loop {
        let batch = (0..3)
            .map(|i| {
                NewEvent::new(
                    "ada",
                    "x",
                    "y",
                    Outcome::Started,
                    json!({"pad": big, "i": i}),
                    T0,
                )
            })
            .collect();
        match trail.append_batch(batch).await {
            Ok(r) => acknowledged = r[2].event.seq,
            Err(e) => break e,
        }
        assert!(acknowledged < 1000, "the size limit never applied");
    };
    assert!(matches!(err, AuditError::DiskFull), "{err:?}");
    assert_eq!(trail.head().await.unwrap().seq, acknowledged);
    assert_eq!(trail.verify().await.unwrap().seq, acknowledged);
    trail.close().await;
}

#[tokio::test]
async fn d1_missing_directory_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let err = LocalTrail::open(dir.path().join("no/such/dir/audit.db"))
        .await
        .unwrap_err();
    assert!(matches!(err, AuditError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn d2_store_verify_names_the_first_edited_record_for_every_column() {
    let (_dir, path, trail, records) = filled(6).await;
    let mut c = raw(&path).await;
    for target in [1u64, 3, 6] {
        let r = &records[target as usize - 1];
        let mut flipped_hash = r.hash.to_vec();
        flipped_hash[7] ^= 0x10;
        let mut flipped_prev = r.prev_hash.to_vec();
        flipped_prev[0] ^= 0x01;
        let mut actor = r.event.actor.clone().into_bytes();
        actor[0] ^= 0x01;
        let other_outcome = Outcome::ALL
            .into_iter()
            .find(|o| *o != r.event.outcome)
            .unwrap()
            .as_str();
        // (column, SQL expression for the new value, expected failure)
        let edits: Vec<(&str, String, VerifyFailure)> = vec![
            (
                "time_ms",
                format!("{}", r.event.time_ms + 1),
                VerifyFailure::HashMismatch,
            ),
            (
                "actor",
                format!("'{}'", String::from_utf8(actor).unwrap()),
                VerifyFailure::HashMismatch,
            ),
            (
                "action",
                "'grant.approve.x'".into(),
                VerifyFailure::HashMismatch,
            ),
            (
                "subject",
                "'prod-db-9/dba'".into(),
                VerifyFailure::HashMismatch,
            ),
            (
                "outcome",
                format!("'{other_outcome}'"),
                VerifyFailure::HashMismatch,
            ),
            (
                "detail",
                "'{\"why\":\"routine\"}'".into(),
                VerifyFailure::HashMismatch,
            ),
            (
                "prev_hash",
                format!("x'{}'", hex::encode(&flipped_prev)),
                VerifyFailure::BrokenLink,
            ),
            (
                "hash",
                format!("x'{}'", hex::encode(&flipped_hash)),
                VerifyFailure::HashMismatch,
            ),
            // Rows no longer decodable: reported at that record, not as a crash or I/O error.
            ("outcome", "'approved'".into(), VerifyFailure::Unreadable),
            ("detail", "'{\"why\":'".into(), VerifyFailure::Unreadable),
            (
                "actor",
                "CAST(x'ff00' AS TEXT)".into(),
                VerifyFailure::Unreadable,
            ),
            ("hash", "x'00'".into(), VerifyFailure::Unreadable),
        ];
        for (column, value, reason) in edits {
            let old: Vec<u8> = sqlx::query_scalar(&format!(
                "SELECT CAST({column} AS BLOB) FROM audit_log WHERE seq = ?"
            ))
            .bind(target as i64)
            .fetch_one(&mut c)
            .await
            .unwrap();
            let typed_old = sqlx::query_scalar::<_, String>(&format!(
                "SELECT typeof({column}) FROM audit_log WHERE seq = ?"
            ))
            .bind(target as i64)
            .fetch_one(&mut c)
            .await
            .unwrap();
            sqlx::query(&format!(
                "UPDATE audit_log SET {column} = {value} WHERE seq = ?"
            ))
            .bind(target as i64)
            .execute(&mut c)
            .await
            .unwrap();
            let err = verify_err(trail.verify().await);
            assert_eq!(
                err,
                VerifyError {
                    seq: target,
                    index: target as usize - 1,
                    reason
                },
                "record {target}, {column} = {value}"
            );
            let restore = match typed_old.as_str() {
                "integer" => format!(
                    "UPDATE audit_log SET {column} = CAST(CAST(? AS TEXT) AS INTEGER) WHERE seq = ?"
                ),
                "blob" => format!("UPDATE audit_log SET {column} = ? WHERE seq = ?"),
                _ => format!("UPDATE audit_log SET {column} = CAST(? AS TEXT) WHERE seq = ?"),
            };
            sqlx::query(&restore)
                .bind(old)
                .bind(target as i64)
                .execute(&mut c)
                .await
                .unwrap();
            assert_eq!(trail.verify().await.unwrap().seq, 6, "restore {column}");
        }
    }
    c.close().await.unwrap();
    trail.close().await;
}

#[tokio::test]
async fn d2_store_verify_detects_deleted_and_reordered_records() {
    let (_dir, path, trail, records) = filled(6).await;
    let mut c = raw(&path).await;

    // Reorder: records 2 and 4 trade places (seq is the row's position, so the contents move).
    let swap = "UPDATE audit_log SET time_ms = o.time_ms, actor = o.actor, action = o.action, \
                subject = o.subject, outcome = o.outcome, detail = o.detail, \
                prev_hash = o.prev_hash, hash = o.hash \
                FROM (SELECT * FROM audit_log_copy WHERE seq = ?) AS o WHERE audit_log.seq = ?";
    c.execute("CREATE TABLE audit_log_copy AS SELECT * FROM audit_log")
        .await
        .unwrap();
    for (to, from) in [(2i64, 4i64), (4, 2)] {
        sqlx::query(swap)
            .bind(from)
            .bind(to)
            .execute(&mut c)
            .await
            .unwrap();
    }
    assert_eq!(
        verify_err(trail.verify().await),
        VerifyError {
            seq: 2,
            index: 1,
            reason: VerifyFailure::BrokenLink
        }
    );
    for (to, from) in [(2i64, 2i64), (4, 4)] {
        sqlx::query(swap)
            .bind(from)
            .bind(to)
            .execute(&mut c)
            .await
            .unwrap();
    }
    assert_eq!(trail.verify().await.unwrap().hash, records[5].hash);

    // Delete a middle record, then the first.
    c.execute("DELETE FROM audit_log WHERE seq = 3")
        .await
        .unwrap();
    assert_eq!(
        verify_err(trail.verify().await),
        VerifyError {
            seq: 3,
            index: 2,
            reason: VerifyFailure::SeqMismatch { found: 4 }
        }
    );
    c.execute("DELETE FROM audit_log WHERE seq = 1")
        .await
        .unwrap();
    assert_eq!(
        verify_err(trail.verify().await),
        VerifyError {
            seq: 1,
            index: 0,
            reason: VerifyFailure::SeqMismatch { found: 2 }
        }
    );
    c.close().await.unwrap();
    trail.close().await;
}

#[tokio::test]
async fn d2_store_verify_streams_pages_and_reports_positions_across_them() {
    // Past the default range length, so the default split (ranges on every core) is used.
    let len = Chunking::default().len;
    let n = len * 2 + 10;
    let (_dir, path, trail, records) = filled(n).await;
    assert_eq!(
        trail.verify().await.unwrap().hash,
        records.last().unwrap().hash
    );
    let target = len + 7;
    let mut c = raw(&path).await;
    sqlx::query("UPDATE audit_log SET subject = 'elsewhere' WHERE seq = ?")
        .bind(target as i64)
        .execute(&mut c)
        .await
        .unwrap();
    assert_eq!(
        verify_err(trail.verify().await),
        VerifyError {
            seq: target,
            index: target as usize - 1,
            reason: VerifyFailure::HashMismatch
        }
    );
    c.close().await.unwrap();
    trail.close().await;
}

/// The trail's file verified in ranges of 4 on 2 threads and in one range on one thread, after
/// tampering at and around the seams (seqs 4|5, 8|9, ...): the same verdict, naming the
/// first bad record, every time.
#[tokio::test]
async fn d2_store_verify_in_ranges_reports_the_sequential_first_failure_at_seams() {
    let (dir, path, trail, _records) = filled(16).await;
    let open = |len: u64, threads: usize| {
        let path = path.clone();
        async move {
            LocalTrail::open_with(
                &path,
                OpenOptions {
                    verify_chunking: Chunking { len, threads },
                    ..OpenOptions::default()
                },
            )
            .await
            .unwrap()
        }
    };
    let chunked = open(4, 2).await;
    let sequential = open(u64::MAX, 1).await;
    let mut c = raw(&path).await;
    c.execute("CREATE TABLE pristine AS SELECT * FROM audit_log")
        .await
        .unwrap();
    let restore = "DELETE FROM audit_log; INSERT INTO audit_log SELECT * FROM pristine;";
    // (tamper, the first failure it must cause)
    let swap = |a: i64, b: i64| {
        format!(
            "UPDATE audit_log SET time_ms = o.time_ms, actor = o.actor, action = o.action, \
             subject = o.subject, outcome = o.outcome, detail = o.detail, \
             prev_hash = o.prev_hash, hash = o.hash \
             FROM (SELECT * FROM pristine WHERE seq = {b}) AS o WHERE audit_log.seq = {a}; \
             UPDATE audit_log SET time_ms = o.time_ms, actor = o.actor, action = o.action, \
             subject = o.subject, outcome = o.outcome, detail = o.detail, \
             prev_hash = o.prev_hash, hash = o.hash \
             FROM (SELECT * FROM pristine WHERE seq = {a}) AS o WHERE audit_log.seq = {b};"
        )
    };
    let err = |seq: u64, reason| {
        Some(VerifyError {
            seq,
            index: seq as usize - 1,
            reason,
        })
    };
    let cases: Vec<(String, Option<VerifyError>)> = vec![
        (
            "DELETE FROM audit_log WHERE seq = 4".into(),
            err(4, VerifyFailure::SeqMismatch { found: 5 }),
        ),
        (
            "DELETE FROM audit_log WHERE seq = 5".into(),
            err(5, VerifyFailure::SeqMismatch { found: 6 }),
        ),
        (
            "DELETE FROM audit_log WHERE seq BETWEEN 5 AND 8".into(),
            err(5, VerifyFailure::SeqMismatch { found: 9 }),
        ),
        (
            "DELETE FROM audit_log WHERE seq BETWEEN 4 AND 9".into(),
            err(4, VerifyFailure::SeqMismatch { found: 10 }),
        ),
        ("DELETE FROM audit_log WHERE seq >= 13".into(), None),
        (swap(4, 5), err(4, VerifyFailure::BrokenLink)),
        (swap(8, 13), err(8, VerifyFailure::BrokenLink)),
        (
            "UPDATE audit_log SET prev_hash = zeroblob(32) WHERE seq = 9".into(),
            err(9, VerifyFailure::BrokenLink),
        ),
        (
            "UPDATE audit_log SET hash = zeroblob(32) WHERE seq = 8".into(),
            err(8, VerifyFailure::HashMismatch),
        ),
        (
            "UPDATE audit_log SET time_ms = 0 WHERE seq = 12".into(),
            err(12, VerifyFailure::HashMismatch),
        ),
        (
            "UPDATE audit_log SET detail = '{' WHERE seq = 13".into(),
            err(13, VerifyFailure::Unreadable),
        ),
        (
            "UPDATE audit_log SET detail = '{' WHERE seq = 13; \
             UPDATE audit_log SET actor = 'x' WHERE seq = 11"
                .into(),
            err(11, VerifyFailure::HashMismatch),
        ),
        (
            "UPDATE audit_log SET seq = 100 WHERE seq = 16".into(),
            err(16, VerifyFailure::SeqMismatch { found: 100 }),
        ),
    ];
    for (tamper, want) in cases {
        c.execute(tamper.as_str()).await.unwrap();
        let got_chunked = chunked.verify().await;
        let got_sequential = sequential.verify().await;
        match want {
            Some(want) => {
                assert_eq!(verify_err(got_chunked), want, "{tamper}");
                assert_eq!(verify_err(got_sequential), want, "{tamper}");
            }
            None => {
                assert_eq!(got_chunked.unwrap(), got_sequential.unwrap(), "{tamper}");
            }
        }
        c.execute(restore).await.unwrap();
        assert_eq!(
            chunked.verify().await.unwrap().seq,
            16,
            "restored after {tamper}"
        );
    }
    c.close().await.unwrap();
    chunked.close().await;
    sequential.close().await;
    trail.close().await;
    drop(dir);
}

fn device_key() -> SigningKey {
    SigningKey::from_bytes(&[0x11; 32])
}
fn rotated_key() -> SigningKey {
    SigningKey::from_bytes(&[0x22; 32])
}
fn broker_key() -> SigningKey {
    SigningKey::from_bytes(&[0x99; 32])
}

/// Checkpoints the trail and has "the broker" cosign it, as the app does after an upload.
async fn cosigned_checkpoint(trail: &LocalTrail, key: &SigningKey, time_ms: i64) -> Checkpoint {
    let cp = trail
        .sign_checkpoint(key, "device-1", time_ms)
        .await
        .unwrap();
    let co = Cosignature::sign(&broker_key(), &cp, time_ms + 5);
    trail
        .add_cosignature(&cp, &co.to_bytes(), time_ms + 10)
        .await
        .unwrap();
    cp
}

#[tokio::test]
async fn d3_checkpoints_and_cosignatures_are_stored_and_checked_on_read() {
    let (_dir, path, trail, _) = filled(4).await;
    let cp = cosigned_checkpoint(&trail, &device_key(), T0).await;
    assert_eq!(cp.head, trail.head().await.unwrap());
    cp.verify(&device_key().verifying_key()).unwrap();
    // Garbage, and a cosignature by someone else, are stored as given but never trusted.
    trail.add_cosignature(&cp, b"garbage", T0).await.unwrap();
    let stranger = Cosignature::sign(&SigningKey::from_bytes(&[5; 32]), &cp, T0);
    trail
        .add_cosignature(&cp, &stranger.to_bytes(), T0)
        .await
        .unwrap();
    // Idempotent.
    trail.save_checkpoint(&cp).await.unwrap();
    let stored = trail.checkpoints().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].checkpoint, cp);
    assert_eq!(stored[0].cosignatures.len(), 3);
    trail.append_batch((5..=6).map(ev).collect()).await.unwrap();
    let uncosigned = trail
        .sign_checkpoint(&device_key(), "device-1", T0 + 1)
        .await
        .unwrap();
    assert_eq!(uncosigned.head.seq, 6);
    let broker = broker_key().verifying_key();
    assert_eq!(
        trail.latest_cosigned(&broker).await.unwrap(),
        Some(cp.clone())
    );
    assert_eq!(
        trail
            .latest_cosigned(&SigningKey::from_bytes(&[5; 32]).verifying_key())
            .await
            .unwrap(),
        Some(cp.clone())
    );
    assert_eq!(
        trail
            .latest_cosigned(&SigningKey::from_bytes(&[6; 32]).verifying_key())
            .await
            .unwrap(),
        None
    );
    // A forged signature for a stored statement is refused, not stored beside it.
    let mut forged = cp.clone();
    forged.signature[0] ^= 1;
    assert!(trail.save_checkpoint(&forged).await.is_err());
    trail.close().await;
    // The signing key itself is never written.
    let secret = device_key().to_bytes();
    let file = std::fs::read(&path).unwrap();
    assert!(!file.windows(32).any(|w| w == secret));
}

#[tokio::test]
async fn d3_truncated_and_recomputed_tail_is_detected_against_the_cosigned_checkpoint() {
    let (_dir, path, trail, _) = filled(10).await;
    let cosigned = cosigned_checkpoint(&trail, &device_key(), T0).await;
    assert_eq!(cosigned.head.seq, 10);
    // Honest growth extends it.
    trail
        .append_batch((11..=12).map(ev).collect())
        .await
        .unwrap();
    assert_eq!(trail.verify_against(&cosigned).await.unwrap().seq, 12);
    let next = trail
        .sign_checkpoint(&device_key(), "device-1", T0 + 1)
        .await
        .unwrap();
    let between = trail.records(10, 100).await.unwrap();
    check_successor(&cosigned, &next, &between).unwrap();

    // Attack: cut the tail back to 7 (records and checkpoints), append other events through
    // the store so the chain is recomputed properly, up to 14.
    let mut c = raw(&path).await;
    c.execute(
        "DELETE FROM audit_log WHERE seq > 7; DELETE FROM audit_cosignature; \
         DELETE FROM audit_checkpoint;",
    )
    .await
    .unwrap();
    trail
        .append_batch(
            (8..=14)
                .map(|i| {
                    let mut e = ev(i);
                    e.detail = json!({"why": "nothing happened"});
                    e
                })
                .collect(),
        )
        .await
        .unwrap();
    // On its own the chain verifies, and the local checkpoint store is empty...
    assert_eq!(trail.verify().await.unwrap().seq, 14);
    assert_eq!(
        trail
            .latest_cosigned(&broker_key().verifying_key())
            .await
            .unwrap(),
        None
    );
    // ...but against the checkpoint the broker kept, it is caught, at the checkpoint's seq.
    assert!(matches!(
        trail.verify_against(&cosigned).await,
        Err(AuditError::ForkedFromCheckpoint { seq: 10 })
    ));
    // The broker's own check on upload: the records after 10 do not continue its head.
    let between = trail.records(10, 100).await.unwrap();
    assert!(matches!(
        check_extends(&cosigned, &between),
        Err(AuditError::Verify(VerifyError {
            seq: 11,
            reason: VerifyFailure::BrokenLink,
            ..
        }))
    ));
    let resigned = trail
        .sign_checkpoint(&device_key(), "device-1", T0 + 2)
        .await
        .unwrap();
    assert!(check_successor(&cosigned, &resigned, &between).is_err());

    // Plain truncation, no new events: behind the checkpoint.
    c.execute("DELETE FROM audit_log WHERE seq > 6")
        .await
        .unwrap();
    assert!(matches!(
        trail.verify_against(&cosigned).await,
        Err(AuditError::BehindCheckpoint {
            checkpoint_seq: 10,
            head_seq: 6
        })
    ));
    c.close().await.unwrap();
    trail.close().await;
}

#[tokio::test]
async fn d3_the_owner_refuses_to_sign_a_chain_that_does_not_extend_its_last_checkpoint() {
    let (_dir, path, trail, _) = filled(5).await;
    cosigned_checkpoint(&trail, &device_key(), T0).await;
    let mut c = raw(&path).await;
    c.execute("DELETE FROM audit_log WHERE seq > 3")
        .await
        .unwrap();
    assert!(matches!(
        trail
            .sign_checkpoint(&device_key(), "device-1", T0 + 1)
            .await,
        Err(AuditError::BehindCheckpoint {
            checkpoint_seq: 5,
            head_seq: 3
        })
    ));
    trail
        .append_batch((14..=16).map(ev).collect())
        .await
        .unwrap();
    // Longer again, but with other records at 4 and 5.
    assert!(matches!(
        trail
            .sign_checkpoint(&device_key(), "device-1", T0 + 1)
            .await,
        Err(AuditError::ForkedFromCheckpoint { seq: 5 })
    ));
    c.close().await.unwrap();
    trail.close().await;
}

#[tokio::test]
async fn d4_history_rewritten_and_resigned_with_the_current_key_is_detected() {
    let (_dir, path, trail, records) = filled(6).await;
    let history = [
        KeyPeriod {
            key: device_key().verifying_key().to_bytes(),
            from_ms: 0,
            until_ms: Some(T0 + 10_000),
        },
        KeyPeriod {
            key: rotated_key().verifying_key().to_bytes(),
            from_ms: T0 + 10_000,
            until_ms: None,
        },
    ];
    let cosigned = cosigned_checkpoint(&trail, &device_key(), T0 + 9_000).await;
    cosigned.verify_with_history(&history).unwrap();

    // After the rotation, whoever holds the new key rewrites record 2 and re-hashes the rest
    // in place, then drops the stored checkpoints and signs afresh.
    let mut chain = Chain::resume(Head {
        seq: 1,
        hash: records[0].hash,
    });
    let mut c = raw(&path).await;
    for r in &records[1..] {
        let mut e = r.event.clone();
        if e.seq == 2 {
            e.detail = json!({"why": "routine"});
        }
        let new = chain.append(e).unwrap();
        sqlx::query("UPDATE audit_log SET detail = ?, prev_hash = ?, hash = ? WHERE seq = ?")
            .bind(new.event.detail.to_string())
            .bind(&new.prev_hash[..])
            .bind(&new.hash[..])
            .bind(new.event.seq as i64)
            .execute(&mut c)
            .await
            .unwrap();
    }
    c.execute("DELETE FROM audit_cosignature; DELETE FROM audit_checkpoint;")
        .await
        .unwrap();
    assert_eq!(trail.verify().await.unwrap().hash, chain.head().hash);

    // Signed "now" with the current key: a valid signature by a valid key...
    let now = trail
        .sign_checkpoint(&rotated_key(), "device-1", T0 + 11_000)
        .await
        .unwrap();
    now.verify_with_history(&history).unwrap();
    // ...of a chain that is not the one the broker cosigned.
    assert!(matches!(
        trail.verify_against(&cosigned).await,
        Err(AuditError::ForkedFromCheckpoint { seq: 6 })
    ));
    // Backdating the re-signature to when the rewritten records were made: wrong key then.
    let backdated = Checkpoint::sign(&rotated_key(), "device-1", now.head, T0 + 9_000);
    assert!(matches!(
        backdated.verify_with_history(&history),
        Err(AuditError::KeyNotCurrent { .. })
    ));
    c.close().await.unwrap();
    trail.close().await;
}

#[tokio::test]
async fn d5_hostile_text_is_stored_verbatim_and_exported_inert() {
    let (_dir, _path, trail) = new_trail().await;
    let hostile = "ok\n{\"seq\":99}\r\u{1b}[2K\u{202e}\u{2066}\u{200b}\u{feff}\0end";
    let r = trail
        .append(
            format!("mallory{hostile}"),
            "grant.request",
            format!("prod{hostile}"),
            Outcome::Denied,
            json!({"justification": format!("urgent {hostile}"), hostile: [hostile]}),
            T0,
        )
        .await
        .unwrap();
    let back = trail.records(0, 10).await.unwrap();
    assert_eq!(back, vec![r.clone()]);
    trail.verify().await.unwrap();
    let line = to_json_line(&back[0].event).unwrap();
    assert_eq!(line.lines().count(), 1);
    assert!(line.chars().all(|c| c.is_ascii() && !c.is_ascii_control()));
    let found = trail
        .query(&Filter {
            text: Some("urgent".into()),
            subject_contains: Some("PRODok\n{\"seq".into()),
            ..Filter::default()
        })
        .await
        .unwrap();
    assert_eq!(found, vec![r]);
    trail.close().await;
}

/// The string and number leaves of `detail`: what the `audit_text` trigger indexes.
fn search_text(detail: &Value) -> String {
    let mut out = String::new();
    let mut stack = vec![detail];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            Value::Number(n) => {
                out.push_str(&n.to_string());
                out.push('\n');
            }
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Object(map) => stack.extend(map.values().rev()),
            Value::Null | Value::Bool(_) => {}
        }
    }
    out
}

/// Lower-cased alphanumeric runs, as unicode61 with diacritics removed would give for the
/// texts used here.
fn tokens(s: &str) -> Vec<String> {
    s.replace('ë', "e")
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn text_matches(r: &Record, query: &str) -> bool {
    let have = tokens(&search_text(&r.event.detail));
    query
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .all(|w| {
            let phrase = tokens(w);
            have.windows(phrase.len())
                .any(|win| win == phrase.as_slice())
        })
}

/// What `query` must return, computed the slow way.
fn brute(all: &[Record], f: &Filter) -> Vec<Record> {
    let mut out: Vec<Record> = all
        .iter()
        .filter(|r| {
            let e = &r.event;
            f.from_ms.is_none_or(|t| e.time_ms >= t)
                && f.until_ms.is_none_or(|t| e.time_ms < t)
                && f.action.as_ref().is_none_or(|a| &e.action == a)
                && f.actor.as_ref().is_none_or(|a| &e.actor == a)
                && f.outcome.is_none_or(|o| e.outcome == o)
                && f.subject_contains.as_ref().is_none_or(|s| {
                    e.subject
                        .to_ascii_lowercase()
                        .contains(&s.to_ascii_lowercase())
                })
                && f.text.as_ref().is_none_or(|t| text_matches(r, t))
        })
        .cloned()
        .collect();
    out.sort_by_key(|r| (r.event.time_ms, r.event.seq));
    if f.order == Order::NewestFirst {
        out.reverse();
    }
    out.into_iter()
        .skip(f.offset as usize)
        .take(f.limit as usize)
        .collect()
}

#[tokio::test]
async fn query_filters_match_a_brute_force_reading_of_the_trail() {
    let (_dir, _path, trail, all) = filled(300).await;
    let base = Filter {
        limit: 1000,
        ..Filter::default()
    };
    let mid = T0 + 30_000;
    let filters = vec![
        base.clone(),
        Filter {
            from_ms: Some(mid),
            until_ms: Some(mid + 20_000),
            ..base.clone()
        },
        Filter {
            from_ms: Some(mid),
            until_ms: Some(mid + 40_000),
            action: Some("session.open".into()),
            ..base.clone()
        },
        Filter {
            actor: Some("chen".into()),
            outcome: Some(Outcome::Denied),
            ..base.clone()
        },
        Filter {
            subject_contains: Some("PROD-db-3".into()),
            ..base.clone()
        },
        Filter {
            subject_contains: Some("db".into()),
            until_ms: Some(mid),
            ..base.clone()
        },
        Filter {
            subject_contains: Some("stage-db-1/dba".into()),
            action: Some("key.add".into()),
            ..base.clone()
        },
        Filter {
            subject_contains: Some("nowhere".into()),
            ..base.clone()
        },
        Filter {
            text: Some("hotfix".into()),
            ..base.clone()
        },
        Filter {
            text: Some("HOTFIX rotate".into()),
            ..base.clone()
        },
        Filter {
            text: Some("zoe".into()),
            ..base.clone()
        },
        Filter {
            text: Some("T-12".into()),
            ..base.clone()
        },
        Filter {
            text: Some("\"slow\"".into()),
            outcome: Some(Outcome::Started),
            ..base.clone()
        },
        Filter {
            text: Some("review".into()),
            subject_contains: Some("prod".into()),
            from_ms: Some(mid),
            order: Order::OldestFirst,
            ..base.clone()
        },
    ];
    for f in &filters {
        let want = brute(&all, f);
        assert_eq!(trail.query(f).await.unwrap(), want, "{f:?}");
    }
    assert!(!brute(&all, &filters[11]).is_empty());
    assert!(!brute(&all, &filters[9]).is_empty());

    // Paging walks the same order without gaps or repeats.
    let f = Filter {
        action: Some("grant.request".into()),
        limit: 7,
        ..Filter::default()
    };
    let mut paged = Vec::new();
    for page in 0.. {
        let got = trail
            .query(&Filter {
                offset: page * 7,
                ..f.clone()
            })
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        paged.extend(got);
    }
    assert_eq!(
        paged,
        brute(
            &all,
            &Filter {
                limit: 1000,
                ..f.clone()
            }
        )
    );
    trail.close().await;
}

#[tokio::test]
async fn query_refuses_filters_it_cannot_run() {
    let (_dir, _path, trail, _) = filled(3).await;
    for f in [
        Filter {
            limit: 0,
            ..Filter::default()
        },
        Filter {
            limit: MAX_LIMIT + 1,
            ..Filter::default()
        },
        Filter {
            offset: u64::MAX,
            ..Filter::default()
        },
        Filter {
            text: Some(" -- ".into()),
            ..Filter::default()
        },
    ] {
        assert!(
            matches!(trail.query(&f).await, Err(AuditError::BadFilter(_))),
            "{f:?}"
        );
    }
    // FTS5 syntax in the search text is just text.
    for text in ["NEAR(a b)", "a OR b", "col:x", "\"x", "x*", "^x", "a AND"] {
        trail
            .query(&Filter {
                text: Some(text.into()),
                ..Filter::default()
            })
            .await
            .unwrap();
    }
    trail.close().await;
}

async fn plan(trail: &LocalTrail, f: &Filter) -> String {
    let mut q = query::build(f, "EXPLAIN QUERY PLAN ").unwrap();
    let rows = q.build().fetch_all(&trail.readers).await.unwrap();
    rows.iter()
        .map(|r| r.get::<String, _>(3))
        .collect::<Vec<_>>()
        .join(" | ")
}

#[tokio::test]
async fn query_plans_use_an_index_for_every_filter() {
    let (_dir, _path, trail, _) = filled(50).await;
    let cases = [
        (
            Filter {
                from_ms: Some(T0),
                until_ms: Some(T0 + 1000),
                ..Filter::default()
            },
            "audit_log_time",
        ),
        (
            Filter {
                from_ms: Some(T0),
                action: Some("grant.request".into()),
                ..Filter::default()
            },
            "audit_log_action_time",
        ),
        (
            Filter {
                actor: Some("ada".into()),
                ..Filter::default()
            },
            "audit_log_actor_time",
        ),
        (
            Filter {
                outcome: Some(Outcome::Denied),
                until_ms: Some(T0),
                ..Filter::default()
            },
            "audit_log_outcome_time",
        ),
    ];
    // Column filters read their page straight off an index, in result order: no sort.
    for (f, index) in cases {
        let p = plan(&trail, &f).await;
        assert!(p.contains(index), "{f:?}: {p}");
        assert!(!p.contains("TEMP B-TREE"), "{f:?}: {p}");
    }
    // Substring: matching names through the trigram index, then their rows by index.
    let p = plan(
        &trail,
        &Filter {
            subject_contains: Some("prod-db-3".into()),
            ..Filter::default()
        },
    )
    .await;
    assert!(
        p.contains("audit_subject VIRTUAL TABLE") && p.contains("audit_log_subject_time"),
        "{p}"
    );
    let p = plan(
        &trail,
        &Filter {
            text: Some("hotfix".into()),
            ..Filter::default()
        },
    )
    .await;
    assert!(p.contains("audit_text VIRTUAL TABLE"), "{p}");
    trail.close().await;
}

/// The app keeps the trail in shared state and appends from spawned tasks: the handle must be
/// `Send + Sync` and its futures `Send` (this fails to compile otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trail_is_shareable_and_appends_run_from_spawned_tasks() {
    let (_dir, _path, trail) = new_trail().await;
    let trail = std::sync::Arc::new(trail);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let t = trail.clone();
            tokio::spawn(async move {
                t.append("ada", "x", "y", Outcome::Success, json!(i), T0)
                    .await
                    .map(|r| r.event.seq)
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=8).collect::<Vec<u64>>());
    let verify = tokio::spawn({
        let t = trail.clone();
        async move { t.verify().await.map(|h| h.seq) }
    });
    assert_eq!(verify.await.unwrap().unwrap(), 8);
    std::sync::Arc::into_inner(trail).unwrap().close().await;
}
