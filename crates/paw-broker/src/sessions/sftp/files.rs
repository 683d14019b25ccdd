//! One open file of an SFTP session: what it is, the SHA-256 of the bytes that passed, the
//! optional capture, and the audit records (M3: one per file, with path, size, direction and
//! hash; one per other operation).

use std::io::Write;
use std::path::PathBuf;

use paw_audit::Outcome;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::audit::{self, Entry};
use crate::sessions::error::Result;
use crate::sessions::{SessionInfo, Sessions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Upload,
    Download,
}

impl Direction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
        }
    }
}

/// A write waiting for a step-up or a second person: it goes to `temp` beside `path`, and is
/// renamed over `path` only once its hash is approved (M2).
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub temp: String,
    pub needs: paw_commands::Action,
}

/// A file handle's state. The hash follows the bytes in order; a transfer that skips around
/// (a resumed or parallel client) is hashed again from the target when it closes.
pub(crate) struct OpenFile {
    /// Its place in the session, from 1.
    pub n: i64,
    pub path: String,
    pub direction: Direction,
    pub held: Option<Held>,
    hasher: Sha256,
    /// Bytes hashed so far, which is the next offset expected.
    pub done: u64,
    /// The highest offset + length seen: the size of what was transferred.
    pub size: u64,
    pub in_order: bool,
    /// A write past the size limit was refused: the file is not what the client sent.
    pub oversize: bool,
    capture: Option<Capture>,
}

struct Capture {
    path: PathBuf,
    file: std::fs::File,
    hasher: Sha256,
    left: u64,
    cut: bool,
}

/// A kept copy: its name in the recording store, the SHA-256 of what it holds, and whether
/// that is the whole file.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    pub name: String,
    pub sha256: String,
    pub complete: bool,
}

impl OpenFile {
    pub(crate) fn new(path: String, direction: Direction, held: Option<Held>) -> Self {
        Self {
            n: 0,
            path,
            direction,
            held,
            hasher: Sha256::new(),
            done: 0,
            size: 0,
            in_order: true,
            oversize: false,
            capture: None,
        }
    }

    /// Keeps up to `max` bytes of the file as `dir/NNN-name` (created 0600).
    pub(crate) fn capture_into(&mut self, dir: &std::path::Path, n: i64, max: u64) {
        let name: String = self
            .path
            .rsplit('/')
            .next()
            .unwrap_or("file")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        let path = dir.join(format!("{n:03}-{}-{name}", self.direction.as_str()));
        let opened = std::fs::create_dir_all(dir).and_then(|()| {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
        });
        match opened {
            Ok(file) => {
                self.capture = Some(Capture {
                    path,
                    file,
                    hasher: Sha256::new(),
                    left: max,
                    cut: false,
                })
            }
            Err(e) => tracing::warn!(error = %e, "cannot capture a transferred file"),
        }
    }

    /// Bytes at `offset` passed (written by the client, or read from the target).
    pub(crate) fn bytes(&mut self, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        self.size = self.size.max(end);
        if offset == self.done && self.in_order {
            self.hasher.update(data);
            self.done = end;
            if let Some(c) = self.capture.as_mut() {
                let keep = (data.len() as u64).min(c.left) as usize;
                if keep > 0 {
                    if c.file.write_all(&data[..keep]).is_err() {
                        c.cut = true;
                        c.left = 0;
                    } else {
                        c.hasher.update(&data[..keep]);
                        c.left -= keep as u64;
                    }
                }
                c.cut |= keep < data.len();
            }
        } else if end > self.done {
            self.in_order = false;
        }
    }

    /// The SHA-256 of the bytes in order, when they were.
    pub(crate) fn sha256(&self) -> Option<String> {
        self.in_order
            .then(|| hex::encode(self.hasher.clone().finalize()))
    }

    /// The kept copy, once the file is closed.
    pub(crate) fn captured(&mut self) -> Option<Captured> {
        let mut c = self.capture.take()?;
        let complete = c.file.flush().and_then(|()| c.file.sync_all()).is_ok() && !c.cut;
        Some(Captured {
            name: c.path.file_name()?.to_string_lossy().into_owned(),
            sha256: hex::encode(c.hasher.finalize()),
            complete: complete && self.in_order,
        })
    }
}

/// The session's facts every record carries.
fn base(info: &SessionInfo) -> Value {
    json!({
        "target": info.target,
        "role": info.role,
        "grant_id": info.grant_id,
        "entitlement": info.entitlement,
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// One file as the session's history keeps it.
pub(crate) struct Moved<'a> {
    /// Its place in the session, from 1.
    pub n: i64,
    pub file: &'a OpenFile,
    pub sha256: Option<&'a str>,
    pub capture: Option<&'a Captured>,
}

/// M3: one record per transferred file, with its history row in the same transaction,
/// written before the client hears the close. `detail` adds to the record.
pub(crate) async fn record_file(
    svc: &Sessions,
    info: &SessionInfo,
    outcome: Outcome,
    moved: Moved<'_>,
    detail: Value,
) -> Result<()> {
    let now = svc.clock.now_ms();
    let f = moved.file;
    let record = merge(
        merge(base(info), detail),
        json!({
            "n": moved.n,
            "path": f.path,
            "direction": f.direction.as_str(),
            "size": f.size,
            "sha256": moved.sha256,
            "captured": moved.capture.map(|c| json!({
                "file": c.name, "sha256": c.sha256, "complete": c.complete,
            })),
        }),
    );
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    crate::with_tx!(&mut tx, t => {
        sqlx::query("INSERT INTO session_files (session_id, n, path, direction, size, sha256, \
             outcome, capture, capture_sha256, capture_complete, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
            .bind(&info.id).bind(moved.n).bind(&f.path).bind(f.direction.as_str())
            .bind(f.size as i64).bind(moved.sha256).bind(outcome.as_str())
            .bind(moved.capture.map(|c| c.name.as_str()))
            .bind(moved.capture.map(|c| c.sha256.as_str()))
            .bind(moved.capture.is_some_and(|c| c.complete)).bind(now)
            .execute(&mut **t).await?;
    });
    audit::append(
        &mut tx,
        now,
        Entry::new(&info.user, "file_transfer", &info.id, outcome, record),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Any other operation that changes the target, or that the rules refused.
pub(crate) async fn record_op(
    svc: &Sessions,
    info: &SessionInfo,
    outcome: Outcome,
    detail: Value,
) -> Result<()> {
    audit::record(
        &svc.db,
        svc.clock.now_ms(),
        Entry::new(
            &info.user,
            if outcome == Outcome::Denied {
                "file_denied"
            } else {
                "file_operation"
            },
            &info.id,
            outcome,
            merge(base(info), detail),
        ),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m3_the_hash_follows_bytes_in_order_and_gives_up_when_they_skip() {
        let mut f = OpenFile::new("/srv/a".into(), Direction::Upload, None);
        f.bytes(0, b"hello ");
        f.bytes(6, b"world");
        assert_eq!(f.size, 11);
        assert_eq!(
            f.sha256().unwrap(),
            hex::encode(Sha256::digest(b"hello world"))
        );
        let mut g = OpenFile::new("/srv/a".into(), Direction::Upload, None);
        g.bytes(6, b"world");
        g.bytes(0, b"hello ");
        assert_eq!(g.size, 11);
        assert_eq!(g.sha256(), None, "out of order must be hashed again");
    }

    #[test]
    fn a_capture_keeps_at_most_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = OpenFile::new("/srv/a b".into(), Direction::Download, None);
        f.capture_into(dir.path(), 1, 4);
        f.bytes(0, b"abcdef");
        let c = f.captured().unwrap();
        assert!(!c.complete);
        assert_eq!(c.name, "001-download-a_b");
        assert_eq!(std::fs::read(dir.path().join(&c.name)).unwrap(), b"abcd");
        assert_eq!(c.sha256, hex::encode(Sha256::digest(b"abcd")));
    }
}
