//! Key-encryption keys and the ring of them the broker holds.
//!
//! The broker has one active KEK, which wraps every new data key, and any number of retired
//! ones, which only unwrap data keys sealed before a rotation. A KEK comes from a file, an
//! environment variable's value or bytes the caller fetched (the OS keyring of the broker
//! host); this module decodes and checks it, and never prints it.

use std::fmt;
use std::io::Read;
use std::path::Path;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::error::{Result, VaultError};
use crate::limits::{KEK_BYTES, MAX_KEK_FILE_BYTES, MAX_KEK_ID_CHARS};

/// A 32-byte AES-256 key-encryption key and its id. The bytes are zeroized on drop and never
/// formatted; the id is not secret (it is stored in every sealed row).
pub struct Kek {
    id: String,
    key: Zeroizing<[u8; KEK_BYTES]>,
}

impl Kek {
    /// From raw key bytes (for example what the broker read from the OS keyring).
    pub fn from_bytes(id: impl Into<String>, bytes: &[u8]) -> Result<Kek> {
        let id = checked_id(id.into())?;
        let mut key = Zeroizing::new([0u8; KEK_BYTES]);
        if bytes.len() != KEK_BYTES {
            return Err(VaultError::KekInvalid {
                id,
                reason: "it must be exactly 32 bytes",
            });
        }
        key.copy_from_slice(bytes);
        Ok(Kek { id, key })
    }

    /// From 64 hex characters or the base64 of 32 bytes. Surrounding whitespace is ignored
    /// because editors and `echo` end a key file with a newline.
    pub fn from_encoded(id: impl Into<String>, text: &str) -> Result<Kek> {
        let id = checked_id(id.into())?;
        let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let mut key = Zeroizing::new([0u8; KEK_BYTES]);
        if text.len() == 2 * KEK_BYTES {
            hex::decode_to_slice(text, &mut key[..]).map_err(|_| VaultError::KekInvalid {
                id: id.clone(),
                reason: "64 characters but not hex",
            })?;
            return Ok(Kek { id, key });
        }
        // Room for a few bytes over, so a longer input decodes and is refused by its length
        // rather than by a buffer error that would read as "not base64".
        let mut buf = Zeroizing::new([0u8; KEK_BYTES + 8]);
        let decoded = STANDARD
            .decode_slice(text, &mut buf[..])
            .or_else(|_| STANDARD_NO_PAD.decode_slice(text, &mut buf[..]));
        match decoded {
            Ok(KEK_BYTES) => {
                key.copy_from_slice(&buf[..KEK_BYTES]);
                Ok(Kek { id, key })
            }
            Ok(_) => Err(VaultError::KekInvalid {
                id,
                reason: "it decodes to a length other than 32 bytes",
            }),
            Err(_) => Err(VaultError::KekInvalid {
                id,
                reason: "it is neither 64 hex characters nor base64 of 32 bytes",
            }),
        }
    }

    /// From the value of an environment variable (hex or base64, as [`Kek::from_encoded`]).
    pub fn from_env(id: impl Into<String>, var: &str) -> Result<Kek> {
        let value = Zeroizing::new(std::env::var(var).map_err(|_| VaultError::KekEnvMissing {
            var: var.to_string(),
        })?);
        Kek::from_encoded(id, &value)
    }

    /// From a file holding hex or base64. On Unix the file must not be readable by group or
    /// others: the key is only as private as the file, and a key that leaked cannot be
    /// un-leaked by rotating later. The mode is read from the opened handle, so the file
    /// checked is the file read.
    pub fn from_file(id: impl Into<String>, path: &Path) -> Result<Kek> {
        let id = checked_id(id.into())?;
        let unreadable = |reason: String| VaultError::KekFileUnreadable {
            path: path.to_path_buf(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| unreadable(e.kind().to_string()))?;
        let meta = file
            .metadata()
            .map_err(|e| unreadable(e.kind().to_string()))?;
        if !meta.is_file() {
            return Err(unreadable("not a regular file".into()));
        }
        check_private(path, &meta)?;
        if meta.len() > MAX_KEK_FILE_BYTES {
            return Err(unreadable(format!(
                "larger than {MAX_KEK_FILE_BYTES} bytes"
            )));
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(128));
        file.take(MAX_KEK_FILE_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| unreadable(e.kind().to_string()))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| VaultError::KekInvalid {
            id: id.clone(),
            reason: "the file is not text",
        })?;
        Kek::from_encoded(id, text)
    }

    /// A fresh random KEK, for `pawd` to create its first key file and for tests.
    pub fn generate(id: impl Into<String>) -> Result<Kek> {
        let id = checked_id(id.into())?;
        let mut key = Zeroizing::new([0u8; KEK_BYTES]);
        OsRng
            .try_fill_bytes(&mut key[..])
            .map_err(|_| VaultError::Randomness)?;
        Ok(Kek { id, key })
    }

    /// The key as 64 hex characters, to write a new key file. The result is itself secret.
    pub fn to_hex(&self) -> crate::SecretBytes {
        crate::SecretBytes::from(hex::encode(&self.key[..]))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn key(&self) -> &[u8; KEK_BYTES] {
        &self.key
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .field("key", &format_args!("<redacted>"))
            .finish()
    }
}

/// The active KEK and the retired ones that may still be named by sealed rows. Ids are unique,
/// so the id stored in a row picks exactly one key.
#[derive(Debug)]
pub struct KekRing {
    active: Kek,
    retired: Vec<Kek>,
}

impl KekRing {
    pub fn new(active: Kek, retired: Vec<Kek>) -> Result<KekRing> {
        let mut seen = vec![active.id()];
        for kek in &retired {
            if seen.contains(&kek.id()) {
                return Err(VaultError::KekDuplicate {
                    id: kek.id().to_string(),
                });
            }
            seen.push(kek.id());
        }
        Ok(KekRing { active, retired })
    }

    /// A ring with no retired keys: a fresh install, or after every row was re-wrapped.
    pub fn single(active: Kek) -> KekRing {
        KekRing {
            active,
            retired: Vec::new(),
        }
    }

    pub fn active(&self) -> &Kek {
        &self.active
    }

    pub fn retired(&self) -> &[Kek] {
        &self.retired
    }

    /// The key with this id, active or retired.
    pub fn get(&self, id: &str) -> Option<&Kek> {
        std::iter::once(&self.active)
            .chain(&self.retired)
            .find(|k| k.id() == id)
    }
}

/// Ids go into the compact encoding (`:`-separated) and into logs, so they are plain labels.
fn checked_id(id: String) -> Result<String> {
    let ok = !id.is_empty()
        && id.chars().count() <= MAX_KEK_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(id)
    } else {
        Err(VaultError::KekIdInvalid {
            max: MAX_KEK_ID_CHARS,
        })
    }
}

#[cfg(unix)]
fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(VaultError::KekFilePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Windows ACLs are not modes; the broker's installer restricts the file there.
#[cfg(not(unix))]
fn check_private(_path: &Path, _meta: &std::fs::Metadata) -> Result<()> {
    Ok(())
}
