//! The workstation's local audit trail: the hash chain in a SQLite file.
//!
//! Durability is the contract: [`LocalTrail::append`] returns only after the record's
//! transaction has committed with `synchronous=FULL` in WAL mode, which fsyncs the log before
//! the commit returns. That return is the acknowledgement a privileged action waits for (fail
//! closed: no acknowledged record, no action). Every way it can fail maps to an [`AuditError`]
//! variant the caller can show (case D1).
//!
//! Appends are serialised twice: in this process by one writer connection behind an async
//! mutex (so they queue in order instead of spinning on SQLite's busy handler), and across
//! processes by `BEGIN IMMEDIATE`, under which the head is re-read from the file. The head is
//! never cached, so two writers can never fork the chain.
//!
//! Reads (queries, verification, export) use a small pool of separate `query_only`
//! connections, so a long verification never delays an append.

mod query;
mod scan;
mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Row, Sqlite};
use tokio::sync::Mutex;

pub use query::{Filter, Order, MAX_LIMIT};

use crate::chain::{Chain, Head, Record};
use crate::checkpoint::{Checkpoint, Cosignature};
use crate::error::AuditError;
use crate::event::{canonical_detail, Event, Outcome};
use crate::parallel::Chunking;

/// Records read per round trip while verifying or listing.
const PAGE: u32 = 4096;

/// Records per INSERT statement: 9 bound values each, well under SQLite's 32,766 limit.
const INSERT_CHUNK: usize = 500;

/// How to open a trail. [`Default`] is what the app uses.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// How long an append waits for another process's write lock before failing with
    /// [`AuditError::Locked`]. The privileged action waits this long at most.
    pub busy_timeout: Duration,
    /// A cap on the file's size in pages (SQLite's `max_page_count`, 4 KiB pages). Reaching it
    /// fails appends with [`AuditError::DiskFull`], as a full disk would: the trail can be kept
    /// from filling the disk, and the disk-full path can be tested.
    pub max_pages: Option<u32>,
    /// Reader connections for queries and verification.
    pub readers: u32,
    /// How [`LocalTrail::verify`] splits the chain across threads.
    pub verify_chunking: Chunking,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            busy_timeout: Duration::from_secs(3),
            max_pages: None,
            readers: 2,
            verify_chunking: Chunking::default(),
        }
    }
}

/// One event to append; the store gives it its seq and seals it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub time_ms: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub outcome: Outcome,
    pub detail: Value,
}

impl NewEvent {
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        subject: impl Into<String>,
        outcome: Outcome,
        detail: Value,
        time_ms: i64,
    ) -> Self {
        NewEvent {
            time_ms,
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            outcome,
            detail,
        }
    }
}

/// A checkpoint as the trail keeps it, with every cosignature received for it (opaque bytes:
/// the store does not judge them; [`LocalTrail::latest_cosigned`] does).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCheckpoint {
    pub checkpoint: Checkpoint,
    pub cosignatures: Vec<Vec<u8>>,
}

/// The local audit trail. See the module documentation for its guarantees.
pub struct LocalTrail {
    writer: Mutex<SqliteConnection>,
    readers: SqlitePool,
    /// Verification reads the file through connections of its own (see [`scan`]).
    path: PathBuf,
    busy_timeout: Duration,
    verify_chunking: Chunking,
}

impl std::fmt::Debug for LocalTrail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTrail").finish_non_exhaustive()
    }
}

/// An event made ready outside the write lock: its stored detail text is checked to read back
/// to the same canonical bytes.
struct Prepared {
    event: NewEvent,
    detail_text: String,
}

impl Prepared {
    fn new(event: NewEvent) -> Result<Prepared, AuditError> {
        let detail_text = serde_json::to_string(&event.detail)?;
        // The record hash covers the canonical form of the in-memory value, but verification
        // will hash what it reads back. Refuse a value whose text form would differ (or that is
        // nested too deep to read back), or the record would be reported as tampered forever.
        let back: Value =
            serde_json::from_str(&detail_text).map_err(|_| AuditError::DetailNotStorable)?;
        if canonical_detail(&back) != canonical_detail(&event.detail) {
            return Err(AuditError::DetailNotStorable);
        }
        Ok(Prepared { event, detail_text })
    }
}

/// Maps a storage failure to the variant the caller can explain (case D1).
pub(crate) fn storage_error(e: sqlx::Error) -> AuditError {
    match &e {
        sqlx::Error::Database(db) => {
            let code = db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .unwrap_or_default();
            // The low byte of an extended result code is the primary code.
            match code & 0xff {
                13 => AuditError::DiskFull,                              // SQLITE_FULL
                8 => AuditError::ReadOnly,                               // SQLITE_READONLY
                5 | 6 => AuditError::Locked, // SQLITE_BUSY, SQLITE_LOCKED
                11 | 26 => AuditError::Corrupt(db.message().to_owned()), // CORRUPT, NOTADB
                3 | 10 | 14 | 23 => AuditError::Unavailable(db.message().to_owned()), // PERM, IOERR, CANTOPEN, AUTH
                _ => AuditError::Storage(e.to_string()),
            }
        }
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::StorageFull => AuditError::DiskFull,
            std::io::ErrorKind::ReadOnlyFilesystem => AuditError::ReadOnly,
            _ => AuditError::Unavailable(io.to_string()),
        },
        sqlx::Error::PoolTimedOut => AuditError::Locked,
        _ => AuditError::Storage(e.to_string()),
    }
}

const SELECT_RECORD: &str =
    "SELECT seq, time_ms, actor, action, subject, outcome, detail, prev_hash, hash FROM audit_log";

/// Decodes a row of [`SELECT_RECORD`]. `None` means a field cannot be decoded: the row was
/// edited outside the store (verification reports it as [`VerifyFailure::Unreadable`]).
fn decode(row: &SqliteRow) -> Option<Record> {
    // Text columns are read as bytes so that invalid UTF-8 is a verdict, not a driver error.
    let text = |i: usize| -> Option<String> {
        let bytes: Vec<u8> = row.try_get(i).ok()?;
        String::from_utf8(bytes).ok()
    };
    let hash = |i: usize| -> Option<[u8; 32]> {
        let bytes: Vec<u8> = row.try_get(i).ok()?;
        bytes.try_into().ok()
    };
    let seq: i64 = row.try_get(0).ok()?;
    let outcome = text(5)?;
    Some(Record {
        event: Event {
            seq: u64::try_from(seq).ok()?,
            time_ms: row.try_get(1).ok()?,
            actor: text(2)?,
            action: text(3)?,
            subject: text(4)?,
            outcome: Outcome::ALL.into_iter().find(|o| o.as_str() == outcome)?,
            detail: serde_json::from_str(&text(6)?).ok()?,
        },
        prev_hash: hash(7)?,
        hash: hash(8)?,
    })
}

fn to_i64(seq: u64) -> Result<i64, AuditError> {
    i64::try_from(seq).map_err(|_| AuditError::SeqExhausted)
}

fn decode_or_corrupt(row: &SqliteRow) -> Result<Record, AuditError> {
    decode(row).ok_or_else(|| {
        let seq: i64 = row.try_get(0).unwrap_or_default();
        AuditError::Corrupt(format!("audit record #{seq} cannot be read"))
    })
}

impl LocalTrail {
    /// Opens (creating if needed) the trail at `path` with [`OpenOptions::default`].
    pub async fn open(path: impl AsRef<Path>) -> Result<LocalTrail, AuditError> {
        LocalTrail::open_with(path, OpenOptions::default()).await
    }

    /// Opens the trail at `path` with `options`. Refuses, without writing to it, a file that
    /// is not SQLite ([`AuditError::Corrupt`]), another application's database
    /// ([`AuditError::NotATrail`]) or a newer schema ([`AuditError::NewerSchema`]).
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: OpenOptions,
    ) -> Result<LocalTrail, AuditError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let base = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(options.busy_timeout)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // journal_mode is set by schema::prepare, after the file is known to be a trail.
            .disable_statement_logging();

        let mut writer_options = base.clone().create_if_missing(true);
        if let Some(pages) = options.max_pages {
            writer_options = writer_options.pragma("max_page_count", pages.to_string());
        }
        let mut writer = writer_options.connect().await.map_err(storage_error)?;
        if let Err(e) = schema::prepare(&mut writer, &shown).await {
            // Close explicitly so a refused file is released before the error reaches the user.
            let _ = writer.close().await;
            return Err(e);
        }

        let readers = SqlitePoolOptions::new()
            .max_connections(options.readers.max(1))
            .min_connections(0)
            // A local file has no connection to go stale: no ping round trip per acquire.
            .test_before_acquire(false)
            // Room for a whole page, so the worker thread reads ahead instead of handing rows
            // over fifty at a time.
            .connect_with(
                base.pragma("query_only", "ON")
                    .row_buffer_size(PAGE as usize),
            )
            .await
            .map_err(storage_error)?;
        Ok(LocalTrail {
            writer: Mutex::new(writer),
            readers,
            path: path.to_owned(),
            busy_timeout: options.busy_timeout,
            verify_chunking: options.verify_chunking,
        })
    }

    /// Closes every connection; the WAL is checkpointed into the main file when the last
    /// connection to it closes.
    pub async fn close(self) {
        let _ = self.writer.into_inner().close().await;
        self.readers.close().await;
    }

    /// Appends one event and returns its sealed record once it is durably committed.
    pub async fn append(
        &self,
        actor: impl Into<String>,
        action: impl Into<String>,
        subject: impl Into<String>,
        outcome: Outcome,
        detail: Value,
        time_ms: i64,
    ) -> Result<Record, AuditError> {
        let mut records = self
            .append_batch(vec![NewEvent::new(
                actor, action, subject, outcome, detail, time_ms,
            )])
            .await?;
        records
            .pop()
            .ok_or_else(|| AuditError::Storage("append produced no record".into()))
    }

    /// Appends `events` in order, in one transaction with one fsync (group commit). All of them
    /// are committed, or none is and the error says why. Returns their records in order.
    pub async fn append_batch(&self, events: Vec<NewEvent>) -> Result<Vec<Record>, AuditError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // Serialise and check outside the lock: a refused detail costs no one else a wait.
        let prepared = events
            .into_iter()
            .map(Prepared::new)
            .collect::<Result<Vec<_>, _>>()?;

        let mut conn = self.writer.lock().await;
        // If this future is dropped mid-way, the transaction is dropped and rolls back before
        // the connection's next use. A dropped append is never acknowledged; at worst (dropped
        // after COMMIT was sent) it is committed unacknowledged, which is safe: the rule is
        // only that nothing is acknowledged before it is durable.
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(storage_error)?;
        let mut chain = Chain::resume(read_head(&mut tx).await?);
        let mut sealed = Vec::with_capacity(prepared.len());
        for p in prepared {
            let record = chain.append(Event {
                seq: chain.next_seq()?,
                time_ms: p.event.time_ms,
                actor: p.event.actor,
                action: p.event.action,
                subject: p.event.subject,
                outcome: p.event.outcome,
                detail: p.event.detail,
            })?;
            sealed.push((to_i64(record.event.seq)?, record, p.detail_text));
        }
        // Multi-row INSERTs: one statement per chunk instead of one per record (each statement
        // is a round trip to the connection's worker thread). The search indexes are filled by
        // triggers inside the same statement.
        for chunk in sealed.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO audit_log \
                 (seq, time_ms, actor, action, subject, outcome, detail, prev_hash, hash) ",
            );
            q.push_values(chunk, |mut row, (seq, r, detail)| {
                row.push_bind(*seq)
                    .push_bind(r.event.time_ms)
                    .push_bind(r.event.actor.as_str())
                    .push_bind(r.event.action.as_str())
                    .push_bind(r.event.subject.as_str())
                    .push_bind(r.event.outcome.as_str())
                    .push_bind(detail.as_str())
                    .push_bind(&r.prev_hash[..])
                    .push_bind(&r.hash[..]);
            });
            q.build().execute(&mut *tx).await.map_err(storage_error)?;
        }
        // The acknowledgement point: COMMIT returns after the WAL is fsynced (synchronous=FULL).
        tx.commit().await.map_err(storage_error)?;
        Ok(sealed.into_iter().map(|(_, record, _)| record).collect())
    }

    /// The current head (genesis for an empty trail).
    pub async fn head(&self) -> Result<Head, AuditError> {
        let mut conn = self.readers.acquire().await.map_err(storage_error)?;
        read_head(&mut conn).await
    }

    /// Up to `limit` records after `after_seq`, in chain order (for export, upload to the
    /// broker, and [`crate::check_extends`]).
    pub async fn records(&self, after_seq: u64, limit: u32) -> Result<Vec<Record>, AuditError> {
        let rows = sqlx::query(&format!(
            "{SELECT_RECORD} WHERE seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(to_i64(after_seq)?)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await
        .map_err(storage_error)?;
        rows.iter().map(decode_or_corrupt).collect()
    }

    /// Records matching `filter`, a page at a time. See [`Filter`].
    pub async fn query(&self, filter: &Filter) -> Result<Vec<Record>, AuditError> {
        let mut q = query::build(filter, "")?;
        let rows = q
            .build()
            .fetch_all(&self.readers)
            .await
            .map_err(storage_error)?;
        rows.iter().map(decode_or_corrupt).collect()
    }

    /// Verifies the whole chain from genesis, streaming it a page at a time, and returns its
    /// head. A bad record is reported as [`AuditError::Verify`] naming the first one; storage
    /// failures are reported as themselves. A chain cut short still verifies here: use
    /// [`LocalTrail::verify_against`] with the last cosigned checkpoint to catch that.
    pub async fn verify(&self) -> Result<Head, AuditError> {
        self.verify_stream(Head::genesis(), None).await
    }

    /// Verifies the whole chain and that it still contains, at its seq, the head `cosigned`
    /// signed, and does not end before it (cases D3 and D4). Check `cosigned`'s signatures
    /// first; this checks the chain against it.
    pub async fn verify_against(&self, cosigned: &Checkpoint) -> Result<Head, AuditError> {
        let want = cosigned.head;
        let head = self.verify_stream(Head::genesis(), Some(want)).await?;
        if head.seq < want.seq {
            return Err(AuditError::BehindCheckpoint {
                checkpoint_seq: want.seq,
                head_seq: head.seq,
            });
        }
        if head.seq == want.seq && head.hash != want.hash {
            // Covers a cosigned empty chain (seq 0), where no record is visited.
            return Err(AuditError::ForkedFromCheckpoint { seq: want.seq });
        }
        Ok(head)
    }

    /// Verifies the records after `start` in chain order and returns the head they reach.
    /// Positions in a reported [`VerifyError`] count from the first record after `start`.
    /// With `watch`, a record at `watch.seq` that verifies but carries another hash is
    /// [`AuditError::ForkedFromCheckpoint`] (unless an earlier record failed first).
    ///
    /// The file is read and verified in ranges on several threads (see [`scan`] and
    /// [`crate::parallel`]), off the async runtime.
    async fn verify_stream(&self, start: Head, watch: Option<Head>) -> Result<Head, AuditError> {
        let path = self.path.clone();
        let busy = self.busy_timeout;
        let chunking = self.verify_chunking;
        tokio::task::spawn_blocking(move || scan::verify_file(&path, busy, start, watch, chunking))
            .await
            .map_err(|e| AuditError::Storage(format!("verification task failed: {e}")))?
    }

    /// Signs the current head as a checkpoint of log `origin` at `time_ms` and stores it.
    ///
    /// Before signing, the records after this trail's latest stored checkpoint are verified to
    /// continue it, so the owner never signs a chain that does not extend what it signed
    /// before. `key` is used and dropped: the store keeps public keys only.
    pub async fn sign_checkpoint(
        &self,
        key: &SigningKey,
        origin: &str,
        time_ms: i64,
    ) -> Result<Checkpoint, AuditError> {
        let start = match self.checkpoints().await?.pop() {
            Some(stored) => stored.checkpoint.head,
            None => Head::genesis(),
        };
        if start.seq > 0 {
            let at = self.records(start.seq - 1, 1).await?;
            match at.first() {
                Some(r) if r.event.seq == start.seq && r.hash == start.hash => {}
                Some(_) => return Err(AuditError::ForkedFromCheckpoint { seq: start.seq }),
                None => {
                    return Err(AuditError::BehindCheckpoint {
                        checkpoint_seq: start.seq,
                        head_seq: self.head().await?.seq,
                    })
                }
            }
        }
        let head = self.verify_stream(start, None).await?;
        let checkpoint = Checkpoint::sign(key, origin, head, time_ms);
        self.save_checkpoint(&checkpoint).await?;
        Ok(checkpoint)
    }

    /// Stores `checkpoint` (idempotent) and returns its row id.
    pub async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<i64, AuditError> {
        let mut conn = self.writer.lock().await;
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(storage_error)?;
        let id = upsert_checkpoint(&mut tx, checkpoint).await?;
        tx.commit().await.map_err(storage_error)?;
        Ok(id)
    }

    /// Stores a cosignature for `checkpoint` (storing the checkpoint too if needed). The bytes
    /// are kept as received; [`LocalTrail::latest_cosigned`] checks them when it reads them.
    pub async fn add_cosignature(
        &self,
        checkpoint: &Checkpoint,
        cosignature: &[u8],
        received_ms: i64,
    ) -> Result<(), AuditError> {
        let mut conn = self.writer.lock().await;
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(storage_error)?;
        let id = upsert_checkpoint(&mut tx, checkpoint).await?;
        sqlx::query(
            "INSERT INTO audit_cosignature (checkpoint_id, received_ms, body) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(received_ms)
        .bind(cosignature)
        .execute(&mut *tx)
        .await
        .map_err(storage_error)?;
        tx.commit().await.map_err(storage_error)?;
        Ok(())
    }

    /// Every stored checkpoint, oldest first, with its cosignatures.
    pub async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, AuditError> {
        type Row = (i64, String, i64, Vec<u8>, i64, Vec<u8>, Vec<u8>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, origin, seq, hash, time_ms, key, signature FROM audit_checkpoint \
             ORDER BY seq, id",
        )
        .fetch_all(&self.readers)
        .await
        .map_err(storage_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, origin, seq, hash, time_ms, key, signature) in rows {
            let bad = || AuditError::Corrupt(format!("stored checkpoint {id} cannot be read"));
            let checkpoint = Checkpoint {
                origin,
                head: Head {
                    seq: u64::try_from(seq).map_err(|_| bad())?,
                    hash: hash.try_into().map_err(|_| bad())?,
                },
                time_ms,
                key: key.try_into().map_err(|_| bad())?,
                signature: signature.try_into().map_err(|_| bad())?,
            };
            let cosignatures: Vec<Vec<u8>> = sqlx::query_scalar(
                "SELECT body FROM audit_cosignature WHERE checkpoint_id = ? ORDER BY rowid",
            )
            .bind(id)
            .fetch_all(&self.readers)
            .await
            .map_err(storage_error)?;
            out.push(StoredCheckpoint {
                checkpoint,
                cosignatures,
            });
        }
        Ok(out)
    }

    /// The newest stored checkpoint that carries a valid cosignature by `witness`, if any.
    /// Cosignature bytes that do not parse or verify are ignored, not trusted.
    pub async fn latest_cosigned(
        &self,
        witness: &VerifyingKey,
    ) -> Result<Option<Checkpoint>, AuditError> {
        let stored = self.checkpoints().await?;
        Ok(stored.into_iter().rev().find_map(|s| {
            let cosigned = s.cosignatures.iter().any(|bytes| {
                Cosignature::from_bytes(bytes)
                    .and_then(|c| c.verify(&s.checkpoint, witness))
                    .is_ok()
            });
            cosigned.then_some(s.checkpoint)
        }))
    }

    /// The writer connection's effective `journal_mode` and `synchronous` (for tests and a
    /// diagnostics screen): the durability contract depends on them being `wal` and 2 (FULL).
    pub async fn durability_settings(&self) -> Result<(String, i64), AuditError> {
        let mut conn = self.writer.lock().await;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .map_err(storage_error)?;
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .map_err(storage_error)?;
        Ok((mode, sync))
    }
}

async fn read_head(conn: &mut SqliteConnection) -> Result<Head, AuditError> {
    let row: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(storage_error)?;
    let Some((seq, hash)) = row else {
        return Ok(Head::genesis());
    };
    let bad = || AuditError::Corrupt(format!("the last audit record (#{seq}) cannot be read"));
    Ok(Head {
        seq: u64::try_from(seq).map_err(|_| bad())?,
        hash: hash.try_into().map_err(|_| bad())?,
    })
}

async fn upsert_checkpoint(
    conn: &mut SqliteConnection,
    checkpoint: &Checkpoint,
) -> Result<i64, AuditError> {
    let seq = to_i64(checkpoint.head.seq)?;
    sqlx::query(
        "INSERT INTO audit_checkpoint (origin, seq, hash, time_ms, key, signature) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(&checkpoint.origin)
    .bind(seq)
    .bind(&checkpoint.head.hash[..])
    .bind(checkpoint.time_ms)
    .bind(&checkpoint.key[..])
    .bind(&checkpoint.signature[..])
    .execute(&mut *conn)
    .await
    .map_err(storage_error)?;
    let (id, signature): (i64, Vec<u8>) = sqlx::query_as(
        "SELECT id, signature FROM audit_checkpoint \
         WHERE origin = ? AND seq = ? AND hash = ? AND time_ms = ? AND key = ?",
    )
    .bind(&checkpoint.origin)
    .bind(seq)
    .bind(&checkpoint.head.hash[..])
    .bind(checkpoint.time_ms)
    .bind(&checkpoint.key[..])
    .fetch_one(&mut *conn)
    .await
    .map_err(storage_error)?;
    if signature != checkpoint.signature {
        // ed25519 is deterministic and verify_strict admits one signature per message: a
        // second, different signature for the same statement is not ours to keep.
        return Err(AuditError::BadSignature("checkpoint"));
    }
    Ok(id)
}

#[cfg(test)]
mod tests;
