//! The file store: one 0600 file per entry in a state directory that only its owner may
//! change, written atomically, for hosts without an OS keyring (containers, CI runners,
//! servers).
//!
//! Rules:
//! - The directory is created 0700. An existing one that others may write to is refused: they
//!   could swap an entry or plant a symlink between our checks and our writes. That rule is
//!   what makes the checks below hold until the file is opened.
//! - An entry is written to a new temporary file (created 0600 with `O_EXCL`, so never through
//!   a planted file or symlink), flushed to disk, then renamed over the old one, and the
//!   directory is synced: a crash leaves the old entry or the new one, never half of either.
//! - An entry that is not a regular file, or that others may read, is refused rather than
//!   used (as OpenSSH does with private keys): a key that was exposed is not trusted silently.
//! - Deleting unlinks the file. Overwriting it first would not reach the blocks a journaling
//!   file system or an SSD actually wrote, so it is not pretended.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use paw_client::Secret;

use crate::error::{CliError, Result};

/// Entries are small JSON records; a larger file is not one of ours.
const MAX_ENTRY_BYTES: u64 = 64 * 1024;
const LOCK_FILE: &str = ".lock";

#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// Opens (creating it 0700 when missing) the state directory `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        ensure_private_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    pub fn get(&self, name: &str) -> Result<Option<Secret<Vec<u8>>>> {
        let path = self.path(name);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path, "reading", &e)),
        };
        if !meta.file_type().is_file() {
            return Err(CliError::store(format!(
                "{} is not a regular file; remove it",
                path.display()
            )));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(CliError::store(format!(
                "{} may be read by other users (mode {:o}); treat what it holds as exposed: \
                 remove it and sign in again",
                path.display(),
                meta.permissions().mode() & 0o777
            )));
        }
        if meta.len() > MAX_ENTRY_BYTES {
            return Err(CliError::store(format!(
                "{} is too large to be a pawctl entry",
                path.display()
            )));
        }
        let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        let read = File::open(&path).and_then(|f| f.take(MAX_ENTRY_BYTES).read_to_end(&mut buf));
        // Wrapped before the error check, so a partial read is wiped too.
        let bytes = Secret::new(buf);
        read.map_err(|e| io(&path, "reading", &e))?;
        Ok(Some(bytes))
    }

    /// Atomically replaces entry `name` with `value` (see the module doc).
    pub fn set(&self, name: &str, value: &[u8]) -> Result<()> {
        let path = self.path(name);
        let tmp = self.dir.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            next_serial()
        ));
        let written = (|| -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(value)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            // The rename is durable only once the directory is.
            File::open(&self.dir)?.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(&path, "writing", &e));
        }
        Ok(())
    }

    pub fn delete(&self, name: &str) -> Result<()> {
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path, "removing", &e)),
        }
    }

    /// An exclusive lock on the state directory, released when the file is dropped: two
    /// pawctl processes must not both spend the same refresh token (the broker would end the
    /// whole sign-in, case B11).
    pub fn lock(&self) -> Result<File> {
        let path = self.dir.join(LOCK_FILE);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io(&path, "opening", &e))?;
        f.lock().map_err(|e| io(&path, "locking", &e))?;
        Ok(f)
    }
}

/// Creates `dir` 0700 (and missing parents), or checks that an existing one is a directory
/// others cannot write to.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| io(dir, "creating", &e))?;
            Ok(())
        }
        Err(e) => Err(io(dir, "reading", &e)),
        Ok(m) if !m.is_dir() => Err(CliError::store(format!(
            "the state directory {} is not a directory",
            dir.display()
        ))),
        Ok(m) if m.permissions().mode() & 0o022 != 0 => Err(CliError::store(format!(
            "other users may write to the state directory {} (mode {:o}); use `chmod 700` or \
             another --state-dir",
            dir.display(),
            m.permissions().mode() & 0o777
        ))),
        Ok(_) => Ok(()),
    }
}

fn io(path: &Path, doing: &str, e: &std::io::Error) -> CliError {
    CliError::store(format!("{doing} {}: {e}", path.display()))
}

/// Distinguishes temporary files of one process (several writes, several threads in tests).
fn next_serial() -> u64 {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    SERIAL.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_a_private_dir_and_0600_entries() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b/pawctl");
        let s = FileStore::open(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert!(s.get("machine-session").unwrap().is_none());
        s.set("machine-session", b"{\"v\":1}").unwrap();
        assert_eq!(mode(&s.path("machine-session")), 0o600);
        assert_eq!(
            s.get("machine-session").unwrap().unwrap().expose(),
            b"{\"v\":1}"
        );
        s.delete("machine-session").unwrap();
        s.delete("machine-session").unwrap();
        assert!(s.get("machine-session").unwrap().is_none());
    }

    #[test]
    fn entries_are_0600_whatever_the_umask_allows() {
        // The mode is set at creation (O_EXCL with 0600), so a permissive umask changes nothing
        // and there is no moment when the file is readable by others.
        let root = tempfile::tempdir().unwrap();
        let s = FileStore::open(root.path()).unwrap();
        s.set("machine-key", b"one").unwrap();
        s.set("machine-key", b"two").unwrap();
        assert_eq!(mode(&s.path("machine-key")), 0o600);
    }

    #[test]
    fn writes_are_atomic_renames_and_leave_no_temporary_files() {
        let root = tempfile::tempdir().unwrap();
        let s = FileStore::open(root.path()).unwrap();
        s.set("machine-session", b"old").unwrap();
        let before = std::fs::metadata(s.path("machine-session")).unwrap();
        // A reader holding the old file keeps reading the old contents: the new entry is a new
        // inode renamed over the name, not the old file rewritten in place.
        let mut held = File::open(s.path("machine-session")).unwrap();
        s.set("machine-session", b"new contents").unwrap();
        let after = std::fs::metadata(s.path("machine-session")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_ne!(before.ino(), after.ino());
        let mut old = String::new();
        held.read_to_string(&mut old).unwrap();
        assert_eq!(old, "old");
        assert_eq!(
            s.get("machine-session").unwrap().unwrap().expose(),
            b"new contents"
        );
        let names: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["machine-session.json"], "{names:?}");
    }

    #[test]
    fn a_failed_write_keeps_the_old_entry() {
        let root = tempfile::tempdir().unwrap();
        let s = FileStore::open(root.path()).unwrap();
        s.set("machine-key", b"old").unwrap();
        // The rename target is now a directory: the write fails after the temporary file was
        // made, which must be cleaned up, and nothing half-written may appear.
        std::fs::remove_file(s.path("machine-key")).unwrap();
        std::fs::create_dir(s.path("machine-key")).unwrap();
        std::fs::write(s.path("machine-key").join("x"), b"x").unwrap();
        assert!(s.set("machine-key", b"new").is_err());
        let tmp: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .collect();
        assert!(tmp.is_empty());
    }

    #[test]
    fn refuses_exposed_entries_symlinks_and_open_dirs() {
        let root = tempfile::tempdir().unwrap();
        let s = FileStore::open(root.path()).unwrap();
        s.set("machine-key", b"seed").unwrap();
        std::fs::set_permissions(
            s.path("machine-key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let e = s.get("machine-key").unwrap_err();
        assert!(e.message.contains("other users"), "{}", e.message);
        assert!(!e.message.contains("seed"), "{}", e.message);

        let elsewhere = root.path().join("elsewhere.json");
        std::fs::write(&elsewhere, b"x").unwrap();
        std::os::unix::fs::symlink(&elsewhere, s.path("machine-session")).unwrap();
        assert!(s.get("machine-session").is_err());

        let open = root.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = FileStore::open(&open).unwrap_err();
        assert!(e.message.contains("chmod 700"), "{}", e.message);
    }

    #[test]
    fn the_lock_is_exclusive() {
        let root = tempfile::tempdir().unwrap();
        let s = FileStore::open(root.path()).unwrap();
        let held = s.lock().unwrap();
        let other = File::open(root.path().join(LOCK_FILE)).unwrap();
        assert!(other.try_lock().is_err());
        drop(held);
        assert!(other.try_lock().is_ok());
    }
}
