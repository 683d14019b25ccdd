//! The trail's on-disk layout and the embedded migration that creates it.
//!
//! The store is strict about files: it only ever writes to an empty database or to one that
//! carries its `application_id`. Anything else (another program's database, a newer schema) is
//! refused before a single byte is written, including before WAL mode is switched on, because
//! turning on WAL rewrites the file header.

use sqlx::{Connection, SqliteConnection};

use super::storage_error;
use crate::error::AuditError;

/// `PRAGMA application_id` of a trail: "pawA". Lets `file(1)` and this code tell a trail from
/// any other SQLite file.
pub(super) const APPLICATION_ID: i64 = 0x7061_7741;

/// `MIGRATIONS[i]` takes the schema from version `i` to `i + 1` (`PRAGMA user_version`).
/// Append only: an applied migration is never edited.
const MIGRATIONS: &[&str] = &[V1];

/// The schema version this build writes.
pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Tables a trail at [`SCHEMA_VERSION`] must have; a trail missing one was damaged.
const TABLES: &[&str] = &[
    "audit_log",
    "audit_text",
    "audit_subject_name",
    "audit_subject",
    "audit_checkpoint",
    "audit_cosignature",
];

/// Version 1.
///
/// - `audit_log` holds the records; `seq` is the rowid, so chain order is storage order and
///   verification streams the table without a sort. Hashes are raw 32-byte blobs. `detail` is
///   JSON text that must read back to the same canonical bytes (checked before every insert).
/// - Indexes serve the filters a reviewer uses, newest first: time range alone, and time range
///   with action, actor, outcome or subject. Each ends in `time_ms` and, implicitly, `seq`,
///   which is the result order, so a page is read off an index with no sort.
/// - Search structures are derived by triggers in the inserting statement, so they can never
///   be out of step with a committed record and an append is one statement per batch:
///   `audit_text` (FTS5, contentless) indexes the text and number leaves of `detail`
///   (justifications, tickets; keys are left out so "ticket" finds tickets mentioned, not every
///   event with a ticket field). `audit_subject_name` keeps each distinct subject once, with a
///   trigram index (`audit_subject`) over it: a substring search finds the few matching names
///   there and then reads their rows through `audit_log_subject_time`. Subjects repeat (targets,
///   roles), so this index stays small where a per-record trigram index would not.
///   None of this is part of verification: it steers searches, the chain is the evidence.
/// - Triggers make records append-only through SQL. They stop a bug, not an attacker who
///   edits the file; that is what hashes and cosigned checkpoints are for.
/// - Checkpoints are stored with their cosignatures as opaque bytes.
const V1: &str = r#"
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY CHECK (seq > 0),
    time_ms   INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),
    hash      BLOB NOT NULL CHECK (length(hash) = 32)
) STRICT;
CREATE INDEX audit_log_time ON audit_log (time_ms);
CREATE INDEX audit_log_action_time ON audit_log (action, time_ms);
CREATE INDEX audit_log_actor_time ON audit_log (actor, time_ms);
CREATE INDEX audit_log_outcome_time ON audit_log (outcome, time_ms);
CREATE INDEX audit_log_subject_time ON audit_log (subject, time_ms);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;

CREATE VIRTUAL TABLE audit_text USING fts5 (
    body, content = '', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE audit_subject_name (
    id      INTEGER PRIMARY KEY,
    subject TEXT NOT NULL UNIQUE
) STRICT;
CREATE VIRTUAL TABLE audit_subject USING fts5 (
    subject, content = '', tokenize = 'trigram', detail = 'none'
);
CREATE TRIGGER audit_log_derive AFTER INSERT ON audit_log
BEGIN
    INSERT INTO audit_subject_name (subject) VALUES (new.subject) ON CONFLICT DO NOTHING;
    INSERT INTO audit_text (rowid, body)
        SELECT new.seq, group_concat(value, char(10)) FROM json_tree(new.detail)
        WHERE type IN ('text', 'integer', 'real') HAVING count(*) > 0;
END;
CREATE TRIGGER audit_subject_name_derive AFTER INSERT ON audit_subject_name
BEGIN
    INSERT INTO audit_subject (rowid, subject) VALUES (new.id, new.subject);
END;

CREATE TABLE audit_checkpoint (
    id        INTEGER PRIMARY KEY,
    origin    TEXT NOT NULL,
    seq       INTEGER NOT NULL CHECK (seq >= 0),
    hash      BLOB NOT NULL CHECK (length(hash) = 32),
    time_ms   INTEGER NOT NULL,
    key       BLOB NOT NULL CHECK (length(key) = 32),
    signature BLOB NOT NULL CHECK (length(signature) = 64),
    UNIQUE (origin, seq, hash, time_ms, key)
) STRICT;
CREATE TABLE audit_cosignature (
    checkpoint_id INTEGER NOT NULL REFERENCES audit_checkpoint (id),
    received_ms   INTEGER NOT NULL,
    body          BLOB NOT NULL,
    UNIQUE (checkpoint_id, body)
) STRICT;
"#;

/// What the file at hand is.
enum Identity {
    /// No schema, no application id: a new (or never initialised) file.
    Empty,
    /// A trail at this schema version.
    Trail(i64),
}

async fn identify(conn: &mut SqliteConnection, path: &str) -> Result<Identity, AuditError> {
    // The first read of the header: a file that is not SQLite fails here (SQLITE_NOTADB).
    let app_id: i64 = sqlx::query_scalar("PRAGMA application_id")
        .fetch_one(&mut *conn)
        .await
        .map_err(storage_error)?;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await
        .map_err(storage_error)?;
    let objects: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master")
        .fetch_one(&mut *conn)
        .await
        .map_err(storage_error)?;
    if app_id == APPLICATION_ID {
        if version > SCHEMA_VERSION {
            return Err(AuditError::NewerSchema {
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        return Ok(Identity::Trail(version));
    }
    if app_id == 0 && version == 0 && objects == 0 {
        return Ok(Identity::Empty);
    }
    Err(AuditError::NotATrail(format!(
        "{path} is a database of another application (application_id {app_id:#x})"
    )))
}

/// Checks the file, switches it to WAL and brings its schema to [`SCHEMA_VERSION`].
pub(super) async fn prepare(conn: &mut SqliteConnection, path: &str) -> Result<(), AuditError> {
    identify(conn, path).await?;

    // WAL: appends write only the log, readers never block the writer, and with
    // synchronous=FULL each commit is fsynced before it returns. The mode is stored in the file.
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
        .fetch_one(&mut *conn)
        .await
        .map_err(storage_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(AuditError::Unavailable(format!(
            "{path}: the file system does not support WAL mode (got {mode})"
        )));
    }

    // IMMEDIATE takes the write lock now, so two processes opening a new file at once cannot
    // both create the schema; the second one re-reads the identity under the lock.
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(storage_error)?;
    let from = match identify(&mut tx, path).await? {
        Identity::Empty => 0,
        Identity::Trail(version) => version,
    };
    let start = usize::try_from(from)
        .map_err(|_| AuditError::Corrupt(format!("{path}: schema version {from}")))?;
    for migration in MIGRATIONS.iter().skip(start) {
        sqlx::raw_sql(migration)
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?;
    }
    if from < SCHEMA_VERSION {
        // PRAGMA takes no bound parameters; both values are constants of this file.
        sqlx::raw_sql(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
        ))
        .execute(&mut *tx)
        .await
        .map_err(storage_error)?;
    }
    for table in TABLES {
        let found: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
        )
        .bind(*table)
        .fetch_one(&mut *tx)
        .await
        .map_err(storage_error)?;
        if found != 1 {
            return Err(AuditError::Corrupt(format!(
                "{path}: table {table} is missing"
            )));
        }
    }
    tx.commit().await.map_err(storage_error)?;
    Ok(())
}
