//! Reading the trail for verification.
//!
//! Verification reads every row, and through sqlx each row costs a message between the
//! connection's worker thread and the caller and an owned copy of every column, which made
//! reading (not hashing) most of the time (issue #20). Here each range of seqs is read by a
//! plain read-only SQLite connection (rusqlite, on the same bundled SQLite as sqlx) on the
//! verifying thread itself, and each column is handed to the verifier as the bytes SQLite
//! holds, without a copy ([`RawRow`]).
//!
//! The ranges are read by separate connections, each with its own snapshot. That is sound
//! because the last seq is fixed before any range is read, and records at or below it are
//! only ever added, never changed, by the store: a range read later sees the same rows a
//! range read earlier would have. Someone editing the file during verification can make it
//! fail or pass as of a moment during the run, as with any single read.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, Row};

use crate::chain::Head;
use crate::error::AuditError;
use crate::parallel::{verify_chunked, Chunking};
use crate::raw::{RawRecord, RawRow};

/// Maps a rusqlite failure as [`super::storage_error`] maps sqlx's (case D1).
fn read_error(e: rusqlite::Error) -> AuditError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => AuditError::DiskFull,
        Some(ErrorCode::ReadOnly) => AuditError::ReadOnly,
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => AuditError::Locked,
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            AuditError::Corrupt(e.to_string())
        }
        Some(
            ErrorCode::PermissionDenied
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::AuthorizationForStatementDenied,
        ) => AuditError::Unavailable(e.to_string()),
        _ => AuditError::Storage(e.to_string()),
    }
}

fn open(path: &Path, busy: Duration) -> Result<Connection, AuditError> {
    // Read-only and no mutex: each connection lives on one thread for one range.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(read_error)?;
    conn.busy_timeout(busy).map_err(read_error)?;
    Ok(conn)
}

/// Verifies the records after `start` (see [`super::LocalTrail::verify_stream`]).
pub(super) fn verify_file(
    path: &Path,
    busy: Duration,
    start: Head,
    watch: Option<Head>,
    chunking: Chunking,
) -> Result<Head, AuditError> {
    let last: Option<i64> = open(path, busy)?
        .query_row("SELECT max(seq) FROM audit_log", [], |r| r.get(0))
        .map_err(read_error)?;
    // seq is the rowid: an integer, and positive by the table's CHECK.
    let last = last.map_or(0, |s| u64::try_from(s).unwrap_or(0));
    verify_chunked(start, last, chunking, watch, |from, to, verifier| {
        let conn = open(path, busy)?;
        let mut stmt = conn
            .prepare(
                "SELECT seq, time_ms, actor, action, subject, outcome, detail, prev_hash, hash \
                 FROM audit_log WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq",
            )
            .map_err(read_error)?;
        let bound = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
        let mut rows = stmt.query([bound(from), bound(to)]).map_err(read_error)?;
        while let Some(row) = rows.next().map_err(read_error)? {
            if !verifier.push(raw_row(row)) {
                break;
            }
        }
        Ok(())
    })
}

/// A row of the SELECT above as borrowed bytes. Text columns are taken as bytes (text or
/// blob, as sqlx decodes them), so a bad encoding is the verifier's verdict.
fn raw_row<'a>(row: &'a Row<'_>) -> RawRow<'a> {
    let int = |i: usize| match row.get_ref(i) {
        Ok(ValueRef::Integer(n)) => Some(n),
        _ => None,
    };
    let bytes = |i: usize| match row.get_ref(i) {
        Ok(ValueRef::Text(b) | ValueRef::Blob(b)) => Some(b),
        _ => None,
    };
    let hash = |i: usize| bytes(i).and_then(|b| <[u8; 32]>::try_from(b).ok());
    let Some(seq) = int(0) else {
        return RawRow::Unreadable { seq: None };
    };
    let record = || {
        Some(RawRecord {
            seq,
            time_ms: int(1)?,
            actor: bytes(2)?,
            action: bytes(3)?,
            subject: bytes(4)?,
            outcome: bytes(5)?,
            detail: bytes(6)?,
            prev_hash: hash(7)?,
            hash: hash(8)?,
        })
    };
    match record() {
        Some(r) => RawRow::Record(r),
        None => RawRow::Unreadable { seq: Some(seq) },
    }
}
