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
    left: u64,
    cut: bool,
}

impl OpenFile {
    pub(crate) fn new(path: String, direction: Direction, held: Option<Held>) -> Self {
        Self {
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
    pub(crate) fn capture_into(&mut self, dir: &std::path::Path, n: usize, max: u64) {
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

    /// Where the capture went and whether it holds the whole file.
    pub(crate) fn captured(&mut self) -> Value {
        match self.capture.take() {
            None => Value::Null,
            Some(mut c) => {
                let _ = c.file.flush();
                json!({
                    "file": c.path.file_name().map(|n| n.to_string_lossy().into_owned()),
                    "complete": !c.cut && self.in_order,
                })
            }
        }
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

/// M3: one record per transferred file, written before the client hears the close.
pub(crate) async fn record_file(
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
            "file_transfer",
            &info.id,
            outcome,
            merge(base(info), detail),
        ),
    )
    .await?;
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
        let c = f.captured();
        assert_eq!(c["complete"], false);
        let name = c["file"].as_str().unwrap();
        assert_eq!(name, "001-download-a_b");
        assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), b"abcd");
    }
}
