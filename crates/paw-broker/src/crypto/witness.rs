//! The broker's witness key: the ed25519 key it cosigns workstations' audit checkpoints with
//! (DESIGN.md: the broker is the witness of each workstation's audit log).
//!
//! The key lives in one file, `witness.key` next to `pawd.toml` unless `[audit] witness_key`
//! says otherwise: the 32-byte seed as base64url on one line, mode 0600. It is made by
//! `pawd init`, or at the first start of a broker initialised before witnessing existed. The
//! seed is never logged or printed; only the public key's fingerprint is.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::base::error::{BrokerError, Result};
use crate::base::util::{b64, random_bytes, unb64};

/// The loaded witness key.
pub struct Witness {
    key: SigningKey,
}

// Hand-written so the seed can never reach a log through `{:?}`.
impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witness")
            .field("public_key", &self.public_b64())
            .finish_non_exhaustive()
    }
}

impl Witness {
    pub fn from_key(key: SigningKey) -> Self {
        Self { key }
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    pub fn public_b64(&self) -> String {
        b64(self.key.verifying_key().as_bytes())
    }

    /// SHA-256 of the public key, `AB:CD:…`: what an operator compares with what the app pinned.
    pub fn fingerprint(&self) -> String {
        crate::crypto::tls::fingerprint_sha256(self.key.verifying_key().as_bytes())
    }
}

/// Reads the witness key at `path`. Refuses a file others can read: whoever holds the seed can
/// cosign a truncated trail.
pub fn load(path: &Path) -> Result<Witness> {
    let ctx = |e| BrokerError::io(format!("cannot read witness key {}", path.display()), e);
    let meta = std::fs::metadata(path).map_err(ctx)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(BrokerError::Config(format!(
            "witness key {} has mode {mode:o}; it must be readable by its owner only (chmod 600)",
            path.display()
        )));
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(ctx)?);
    let bad = || {
        BrokerError::Config(format!(
            "witness key {} is not a base64url ed25519 seed (32 bytes)",
            path.display()
        ))
    };
    let seed = Zeroizing::new(unb64(text.trim()).ok_or_else(bad)?);
    let seed: Zeroizing<[u8; 32]> = Zeroizing::new(seed.as_slice().try_into().map_err(|_| bad())?);
    Ok(Witness::from_key(SigningKey::from_bytes(&seed)))
}

/// Creates a new witness key at `path` (mode 0600, never over an existing file).
pub fn create(path: &Path) -> Result<Witness> {
    let seed = Zeroizing::new(random_bytes::<32>()?);
    let text = Zeroizing::new(format!("{}\n", b64(seed.as_slice())));
    let ctx = |e| BrokerError::io(format!("cannot write witness key {}", path.display()), e);
    // create_new: an existing key is never replaced, since apps have pinned it.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(ctx)?;
    file.write_all(text.as_bytes()).map_err(ctx)?;
    file.sync_all().map_err(ctx)?;
    Ok(Witness::from_key(SigningKey::from_bytes(&seed)))
}

/// Whether `path` existed (and was kept) or was created now, for `pawd init`'s report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Existing,
    Created,
}

/// Loads the key at `path`, creating it when the file does not exist.
pub fn load_or_create(path: &Path) -> Result<(Witness, Origin)> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok((load(path)?, Origin::Existing)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((create(path)?, Origin::Created)),
        Err(e) => Err(BrokerError::io(
            format!("cannot read witness key {}", path.display()),
            e,
        )),
    }
}

/// At startup: the key, generated with a warning when a broker initialised before witnessing
/// existed starts for the first time.
pub fn load_at_start(path: &Path) -> Result<Witness> {
    let (witness, origin) = load_or_create(path)?;
    if origin == Origin::Created {
        tracing::warn!(
            path = %path.display(),
            fingerprint = %witness.fingerprint(),
            "no witness key found: generated a new one (back it up; apps pin its public key)"
        );
    }
    Ok(witness)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_key_is_private_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("witness.key");
        let (made, origin) = load_or_create(&path).unwrap();
        assert_eq!(origin, Origin::Created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (again, origin) = load_or_create(&path).unwrap();
        assert_eq!(origin, Origin::Existing);
        assert_eq!(made.public_b64(), again.public_b64());
        // create never replaces a key apps may have pinned.
        assert!(create(&path).is_err());
        assert!(!format!("{made:?}").contains(&std::fs::read_to_string(&path).unwrap()));
    }

    #[test]
    fn a_readable_or_malformed_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("witness.key");
        create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "not a key\n").unwrap();
        assert!(load(&path).is_err());
    }
}
