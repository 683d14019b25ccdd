//! `pawd audit verify` (case D2) on the broker's own log: the log is verified in ranges on
//! several threads and joined at the seams; tampering at and around the seams is reported at
//! the first bad record, exactly as one pass in order reports it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use paw_audit::{Chunking, Outcome};
use paw_broker::audit::{self, Entry};
use paw_broker::config::DatabaseUrl;
use paw_broker::store::{Create, Db};
use serde_json::json;

const N: i64 = 16;

async fn log() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::new(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("broker.db").display()
    ));
    let db = Db::connect(&url, Create::IfMissing).await.unwrap();
    db.migrate().await.unwrap();
    for i in 0..N {
        let entry = Entry::new(
            format!("user{i}"),
            "grant.request",
            format!("prod-db-{i}/dba"),
            Outcome::ALL[i as usize % 4],
            json!({"why": format!("rotate T-{i}"), "n": i}),
        );
        audit::record(&db, 1_700_000_000_000 + i, entry)
            .await
            .unwrap();
    }
    (dir, db)
}

/// The verdict as `pawd audit verify` prints it, in ranges of 4 on 2 threads, and in one range.
async fn verdicts(db: &Db) -> (String, String) {
    let show = |r: paw_broker::base::error::Result<u64>| match r {
        Ok(n) => format!("ok {n}"),
        Err(e) => e.to_string(),
    };
    let chunked = audit::verify_in(db, Chunking { len: 4, threads: 2 }).await;
    let sequential = audit::verify_in(
        db,
        Chunking {
            len: u64::MAX,
            threads: 1,
        },
    )
    .await;
    (show(chunked), show(sequential))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d2_pawd_audit_verify_reports_the_first_bad_record_at_range_seams() {
    let (_dir, db) = log().await;
    let Db::Sqlite(pool) = &db else {
        unreachable!()
    };
    assert_eq!(audit::verify(&db).await.unwrap(), N as u64);
    sqlx::query("CREATE TABLE pristine AS SELECT * FROM audit_log")
        .execute(pool)
        .await
        .unwrap();
    let swap = |a: i64, b: i64| {
        format!(
            "UPDATE audit_log SET time_ms = o.time_ms, actor = o.actor, action = o.action, \
             subject = o.subject, outcome = o.outcome, detail = o.detail, \
             prev_hash = o.prev_hash, hash = o.hash \
             FROM (SELECT * FROM pristine WHERE seq = {b}) AS o WHERE audit_log.seq = {a}"
        )
    };
    // (tamper, the verdict it must give; seams fall between seqs 4|5, 8|9, 12|13)
    let cases: Vec<(String, &str)> = vec![
        ("DELETE FROM audit_log WHERE seq = 4".into(), "audit record #4 (position 3) fails verification: found seq 5"),
        ("DELETE FROM audit_log WHERE seq BETWEEN 5 AND 8".into(), "audit record #5 (position 4) fails verification: found seq 9"),
        (swap(8, 9), "audit record #8 (position 7) fails verification: it does not link"),
        ("UPDATE audit_log SET prev_hash = hash WHERE seq = 9".into(), "audit record #9 (position 8) fails verification: it does not link"),
        ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 12".into(), "audit record #12 (position 11) fails verification: its contents do not match"),
        ("UPDATE audit_log SET hash = 'zz' WHERE seq = 13".into(), "audit record #13 (position 12) fails verification: its stored fields cannot be decoded"),
        ("UPDATE audit_log SET detail = '{\"n\":' WHERE seq = 1".into(), "audit record #1 (position 0) fails verification: its stored fields cannot be decoded"),
        ("DELETE FROM audit_log WHERE seq > 12".into(), "ok 12"),
    ];
    for (tamper, want) in cases {
        sqlx::query(&tamper).execute(pool).await.unwrap();
        let (chunked, sequential) = verdicts(&db).await;
        assert!(chunked.contains(want), "{tamper}: {chunked}");
        assert_eq!(chunked, sequential, "{tamper}");
        sqlx::query("DELETE FROM audit_log; INSERT INTO audit_log SELECT * FROM pristine")
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(
            verdicts(&db).await.0,
            format!("ok {N}"),
            "restored after {tamper}"
        );
    }
    db.close().await;
}
