//! The broker's authoritative audit log: paw-audit's hash-linked records in the `audit_log`
//! table, appended inside the same database transaction as the change they record, so a grant
//! never exists without its record and a record never describes a change that rolled back.
//!
//! How appends stay one chain: `audit_head` holds the last seq and hash in one row. Every
//! transaction that changes privileged state starts with [`lock`] (a no-op UPDATE of that
//! row), which serialises those transactions on PostgreSQL (row lock, taken first, so lock order
//! is the same everywhere and they cannot deadlock) and takes SQLite's write lock up front (a
//! deferred transaction that reads first can fail to upgrade). Appends then read the head, seal
//! the record with paw-audit and write both.

pub mod checkpoints;
pub mod error;
pub mod stream;

use paw_audit::{Event, Head, Outcome, Record};
use serde_json::Value;

use crate::base::error::BrokerError;
use crate::base::error::Result;
use crate::store::{Db, Tx};
use crate::{with_pool, with_tx};

/// One thing to record: who did what to what, and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub actor: String,
    pub action: &'static str,
    pub subject: String,
    pub outcome: Outcome,
    pub detail: Value,
}

impl Entry {
    pub fn new(
        actor: impl Into<String>,
        action: &'static str,
        subject: impl Into<String>,
        outcome: Outcome,
        detail: Value,
    ) -> Self {
        Self {
            actor: actor.into(),
            action,
            subject: subject.into(),
            outcome,
            detail,
        }
    }
}

/// Seals `entry` after the head (`seq`, hex `hash`) read in the current transaction.
pub fn seal(head_seq: i64, head_hash: &str, time_ms: i64, entry: Entry) -> Result<Record> {
    let prev = decode_hash(head_hash)?;
    let seq = u64::try_from(head_seq)
        .map_err(|_| BrokerError::Internal("audit head seq is negative".into()))?;
    let mut chain = paw_audit::Chain::resume(Head { seq, hash: prev });
    chain
        .append(Event {
            seq: seq + 1,
            time_ms,
            actor: entry.actor,
            action: entry.action.to_owned(),
            subject: entry.subject,
            outcome: entry.outcome,
            detail: entry.detail,
        })
        .map_err(|e| BrokerError::Internal(format!("audit: {e}")))
}

fn decode_hash(hex_hash: &str) -> Result<[u8; 32]> {
    let bytes = hex::decode(hex_hash)
        .map_err(|_| BrokerError::Internal("audit head hash is not hex".into()))?;
    bytes
        .try_into()
        .map_err(|_| BrokerError::Internal("audit head hash is not 32 bytes".into()))
}

/// Takes the audit lock in `tx`: must be its first statement.
pub async fn lock(tx: &mut Tx) -> Result<()> {
    with_tx!(tx, t => {
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1").execute(&mut **t).await?;
    });
    Ok(())
}

/// Appends `entry` at time `now` in `tx`, which must hold the audit lock ([`lock`]). Returns
/// the new record's seq.
pub async fn append(tx: &mut Tx, now: i64, entry: Entry) -> Result<i64> {
    let (head_seq, head_hash): (i64, String) = with_tx!(tx, t => {
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut **t)
            .await?
    });
    let rec = seal(head_seq, &head_hash, now, entry)?;
    let seq = i64::try_from(rec.event.seq)
        .map_err(|_| BrokerError::Internal("audit seq overflow".into()))?;
    let hash = hex::encode(rec.hash);
    let detail = rec.event.detail.to_string();
    let prev = hex::encode(rec.prev_hash);
    with_tx!(tx, t => {
        sqlx::query(
            "INSERT INTO audit_log (seq, time_ms, actor, action, subject, outcome, detail, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(seq)
        .bind(rec.event.time_ms)
        .bind(&rec.event.actor)
        .bind(&rec.event.action)
        .bind(&rec.event.subject)
        .bind(rec.event.outcome.as_str())
        .bind(&detail)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut **t)
        .await?;
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(seq)
            .bind(&hash)
            .execute(&mut **t)
            .await?;
    });
    Ok(seq)
}

/// Records `entry` in a transaction of its own (refusals, and changes that have no other row).
pub async fn record(db: &Db, now: i64, entry: Entry) -> Result<i64> {
    let mut tx = db.begin().await?;
    lock(&mut tx).await?;
    let seq = append(&mut tx, now, entry).await?;
    tx.commit().await?;
    Ok(seq)
}

/// Every record from `after_seq` on, in order (for `pawd audit verify` and export).
pub async fn records(db: &Db, after_seq: i64, limit: i64) -> Result<Vec<Record>> {
    type Row = (
        i64,
        i64,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
    );
    let rows: Vec<Row> = with_pool!(db, pool => sqlx::query_as(
        "SELECT seq, time_ms, actor, action, subject, outcome, detail, prev_hash, hash \
         FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
        .bind(after_seq).bind(limit).fetch_all(pool).await?);
    rows.into_iter()
        .map(
            |(seq, time_ms, actor, action, subject, outcome, detail, prev, hash)| {
                let outcome = Outcome::ALL
                    .into_iter()
                    .find(|o| o.as_str() == outcome)
                    .ok_or_else(|| BrokerError::Internal(format!("audit {seq}: outcome")))?;
                Ok(Record {
                    event: Event {
                        seq: u64::try_from(seq)
                            .map_err(|_| BrokerError::Internal("audit seq".into()))?,
                        time_ms,
                        actor,
                        action,
                        subject,
                        outcome,
                        detail: serde_json::from_str(&detail)
                            .map_err(|_| BrokerError::Internal(format!("audit {seq}: detail")))?,
                    },
                    prev_hash: decode_hash(&prev)?,
                    hash: decode_hash(&hash)?,
                })
            },
        )
        .collect()
}

/// Verifies the whole log and returns its length; the first bad record is named in the error.
///
/// Issue #20: ranges of seqs are verified on every core at once and joined at the seams
/// (`paw_audit::verify_chunked`, which reports the same first failure as one pass in order).
/// Each range streams its rows over a pooled connection of its own and hands the columns to
/// paw-audit as borrowed text, so no record is first decoded into owned strings and a JSON
/// value. The last seq is fixed before any range is read; records up to it are only ever
/// added, so ranges read at slightly different moments see the same rows.
pub async fn verify(db: &Db) -> Result<u64> {
    verify_in(db, paw_audit::Chunking::default()).await
}

/// [`verify`] with the log split as `chunking` says (tests use small ranges to put seams
/// where they tamper).
pub async fn verify_in(db: &Db, chunking: paw_audit::Chunking) -> Result<u64> {
    let last: Option<i64> = with_pool!(db, pool => sqlx::query_scalar(
        "SELECT max(seq) FROM audit_log").fetch_one(pool).await?);
    // seq is positive by the tables' CHECK; a negative one is left to verification to report.
    let last = last.map_or(0, |s| u64::try_from(s).unwrap_or(0));
    let handle = tokio::runtime::Handle::current();
    let pools = db.clone();
    let verified = tokio::task::spawn_blocking(move || {
        paw_audit::verify_chunked(
            Head::genesis(),
            last,
            chunking,
            None,
            |from, to, verifier| handle.block_on(read_range(&pools, from, to, verifier)),
        )
    })
    .await
    .map_err(|e| BrokerError::Internal(format!("audit verification task failed: {e}")))?;
    let head =
        verified.map_err(|e| BrokerError::Internal(format!("audit log does not verify: {e}")))?;
    Ok(head.seq)
}

/// Streams the records with `from <= seq <= to` into `verifier`, in seq order.
async fn read_range(
    db: &Db,
    from: u64,
    to: u64,
    verifier: &mut paw_audit::RawVerifier,
) -> std::result::Result<(), paw_audit::AuditError> {
    use futures_util::TryStreamExt;
    let bound = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
    let storage = |e: sqlx::Error| paw_audit::AuditError::Storage(e.to_string());
    with_pool!(db, pool => {
        let mut rows = sqlx::query(
            "SELECT seq, time_ms, actor, action, subject, outcome, detail, prev_hash, hash \
             FROM audit_log WHERE seq BETWEEN $1 AND $2 ORDER BY seq",
        )
        .bind(bound(from))
        .bind(bound(to))
        .fetch(pool);
        while let Some(row) = rows.try_next().await.map_err(storage)? {
            if !verifier.push(raw_row(&row)) {
                break;
            }
        }
    });
    Ok(())
}

/// A row of `audit_log` as borrowed columns (hashes are stored as hex text here). A column
/// that does not decode makes the record unreadable, which verification reports at its place.
fn raw_row<'r, R>(row: &'r R) -> paw_audit::RawRow<'r>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let text = |i: usize| row.try_get::<&str, _>(i).ok().map(str::as_bytes);
    let hash = |i: usize| {
        let mut out = [0u8; 32];
        hex::decode_to_slice(row.try_get::<&str, _>(i).ok()?, &mut out).ok()?;
        Some(out)
    };
    let Ok(seq) = row.try_get::<i64, _>(0) else {
        return paw_audit::RawRow::Unreadable { seq: None };
    };
    let record = || {
        Some(paw_audit::RawRecord {
            seq,
            time_ms: row.try_get::<i64, _>(1).ok()?,
            actor: text(2)?,
            action: text(3)?,
            subject: text(4)?,
            outcome: text(5)?,
            detail: text(6)?,
            prev_hash: hash(7)?,
            hash: hash(8)?,
        })
    };
    match record() {
        Some(r) => paw_audit::RawRow::Record(r),
        None => paw_audit::RawRow::Unreadable { seq: Some(seq) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_links_to_the_head_read_in_the_transaction() {
        let genesis = hex::encode(paw_audit::genesis_hash());
        let e = Entry::new("ada", "test", "x", Outcome::Success, Value::Null);
        let r1 = seal(0, &genesis, 5, e.clone()).unwrap();
        assert_eq!(r1.event.seq, 1);
        assert_eq!(r1.prev_hash, paw_audit::genesis_hash());
        let r2 = seal(1, &hex::encode(r1.hash), 6, e).unwrap();
        paw_audit::verify(&[r1, r2]).unwrap();
    }

    #[test]
    fn the_migrations_seed_the_genesis_value() {
        let genesis = hex::encode(paw_audit::genesis_hash());
        for sql in [
            include_str!("../../migrations/sqlite/20251130000000_elevation.sql"),
            include_str!("../../migrations/postgres/20251130000000_elevation.sql"),
        ] {
            assert!(sql.contains(&genesis));
        }
    }

    #[test]
    fn a_corrupt_head_is_an_error_not_a_new_chain() {
        let e = Entry::new("ada", "test", "x", Outcome::Success, Value::Null);
        assert!(seal(0, "zz", 1, e.clone()).is_err());
        assert!(seal(0, "abcd", 1, e.clone()).is_err());
        assert!(seal(-1, &hex::encode([0u8; 32]), 1, e).is_err());
    }
}
