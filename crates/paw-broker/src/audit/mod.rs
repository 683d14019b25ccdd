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

/// Verifies the whole log in pages; the first bad record is named in the error.
pub async fn verify(db: &Db) -> Result<u64> {
    let mut head = Head::genesis();
    loop {
        let page = records(db, i64::try_from(head.seq).unwrap_or(i64::MAX), 10_000).await?;
        if page.is_empty() {
            return Ok(head.seq);
        }
        head = paw_audit::verify_from(&head, &page)
            .map_err(|e| BrokerError::Internal(format!("audit log does not verify: {e}")))?;
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
