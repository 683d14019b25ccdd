//! Where pawctl keeps its key and sign-in between invocations: the OS keyring, or a 0600 file
//! in the state directory when there is no keyring (`--store auto` picks the keyring when one
//! answers).
//!
//! Rules:
//! - Each kind of credential has its own slot ([`Slot`]), so identities of different kinds
//!   live side by side: a key machine's key, a machine sign-in, and a person's sign-in (the
//!   client library's own entries, named `person-*`, [`PersonKeys`]). Commands pick the slot;
//!   nothing is overwritten by a login of another kind.
//! - Keyring entries are named after the state directory (a hash of its path), so two state
//!   directories never share an entry, whichever store holds them.
//! - A write is read back before it counts: a store that drops writes fails at the write.
//! - A record that does not parse is reported without its contents (serde's messages can
//!   quote values).

mod file;
pub mod records;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use paw_client::{ClientError, KeyStore, OsKeyStore, Secret};
use paw_proto::ErrorCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cli::StoreChoice;
use crate::error::{CliError, Result};
use crate::exit::Exit;

pub use file::FileStore;
pub use records::{KeyRecord, SessionKind, SessionRecord};

/// How long the keyring may take to answer its probe. A locked Secret Service can wait for an
/// unlock prompt nobody will answer on a server; `auto` then falls back to the file.
const KEYRING_PROBE: Duration = Duration::from_secs(3);

/// One credential pawctl keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A key machine's long-lived key ([`KeyRecord`]).
    MachineKey,
    /// A machine's sign-in ([`SessionRecord`]).
    MachineSession,
}

impl Slot {
    pub fn name(self) -> &'static str {
        match self {
            Slot::MachineKey => "machine-key",
            Slot::MachineSession => "machine-session",
        }
    }
}

enum Backend {
    Keyring { os: OsKeyStore, scope: String },
    File,
}

pub struct Store {
    backend: Backend,
    /// The state directory: the file store's entries, and the lock of either store.
    files: FileStore,
}

impl Store {
    pub fn open(choice: StoreChoice, state_dir: &Path) -> Result<Self> {
        let files = FileStore::open(state_dir)?;
        let backend = match choice {
            StoreChoice::File => Backend::File,
            StoreChoice::Keyring => keyring(state_dir)?,
            StoreChoice::Auto => keyring(state_dir).unwrap_or(Backend::File),
        };
        Ok(Self { backend, files })
    }

    /// Where the credentials are, in words (shown after join and login).
    pub fn describe(&self, slot: Slot) -> String {
        match &self.backend {
            Backend::Keyring { os, .. } => os.describe().to_owned(),
            Backend::File => self.files.path(slot.name()).display().to_string(),
        }
    }

    /// Held while a sign-in is read, refreshed and written back (see [`FileStore::lock`]).
    pub fn lock(&self) -> Result<std::fs::File> {
        self.files.lock()
    }

    pub fn load<T: DeserializeOwned>(&self, slot: Slot) -> Result<Option<T>> {
        let Some(bytes) = self.get(slot)? else {
            return Ok(None);
        };
        let version = serde_json::from_slice::<serde_json::Value>(bytes.expose())
            .ok()
            .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64));
        if version.is_some_and(|v| v != u64::from(records::VERSION)) {
            return Err(CliError::store(format!(
                "the stored {} was written by another pawctl version; sign in again",
                slot.name()
            )));
        }
        serde_json::from_slice(bytes.expose())
            .map(Some)
            .map_err(|e| {
                CliError::store(format!(
                    "the stored {} is malformed (line {}, column {}); sign in again",
                    slot.name(),
                    e.line(),
                    e.column()
                ))
            })
    }

    pub fn save<T: Serialize>(&self, slot: Slot, value: &T) -> Result<()> {
        let bytes = Secret::new(serde_json::to_vec(value).map_err(|e| {
            CliError::store(format!("encoding the {}: {:?}", slot.name(), e.classify()))
        })?);
        self.set(slot, bytes.expose())?;
        match self.get(slot)? {
            Some(back) if back.expose() == bytes.expose() => Ok(()),
            _ => Err(CliError::store(format!(
                "{} did not keep the {}",
                self.describe(slot),
                slot.name()
            ))),
        }
    }

    pub fn delete(&self, slot: Slot) -> Result<()> {
        self.delete_named(slot.name())
    }

    fn get(&self, slot: Slot) -> Result<Option<Secret<Vec<u8>>>> {
        self.get_named(slot.name())
    }

    fn set(&self, slot: Slot, value: &[u8]) -> Result<()> {
        self.set_named(slot.name(), value)
    }

    /// Entry `name` of either store: the slots', and the entries the client library keeps for a
    /// person's sign-in (`person-*`, see [`PersonKeys`]).
    fn get_named(&self, name: &str) -> Result<Option<Secret<Vec<u8>>>> {
        match &self.backend {
            Backend::Keyring { os, scope } => {
                os.get(&entry(scope, name)).map_err(|e| keyring_error(&e))
            }
            Backend::File => self.files.get(name),
        }
    }

    fn set_named(&self, name: &str, value: &[u8]) -> Result<()> {
        match &self.backend {
            Backend::Keyring { os, scope } => os
                .set(&entry(scope, name), value)
                .map_err(|e| keyring_error(&e)),
            Backend::File => self.files.set(name, value),
        }
    }

    fn delete_named(&self, name: &str) -> Result<()> {
        match &self.backend {
            Backend::Keyring { os, scope } => os
                .delete(&entry(scope, name))
                .map_err(|e| keyring_error(&e)),
            Backend::File => self.files.delete(name),
        }
    }

    fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Keyring { os, .. } => os.describe(),
            Backend::File => "a 0600 file in the pawctl state directory",
        }
    }
}

/// The store as the client library's [`KeyStore`] for a person's sign-in (device key, tokens,
/// and the INSECURE virtual key's state in test builds): the same keyring or 0600 files as the
/// machine's entries, under names of their own (`person-*`), so neither overwrites the other.
pub struct PersonKeys(pub std::sync::Arc<Store>);

const PERSON_PREFIX: &str = "person-";

impl KeyStore for PersonKeys {
    fn get(&self, name: &str) -> std::result::Result<Option<Secret<Vec<u8>>>, ClientError> {
        self.0
            .get_named(&format!("{PERSON_PREFIX}{name}"))
            .map_err(|e| ClientError::KeyringUnavailable(e.message))
    }

    fn set(&self, name: &str, value: &[u8]) -> std::result::Result<(), ClientError> {
        self.0
            .set_named(&format!("{PERSON_PREFIX}{name}"), value)
            .map_err(|e| ClientError::KeyringUnavailable(e.message))
    }

    fn delete(&self, name: &str) -> std::result::Result<(), ClientError> {
        self.0
            .delete_named(&format!("{PERSON_PREFIX}{name}"))
            .map_err(|e| ClientError::KeyringUnavailable(e.message))
    }

    fn describe(&self) -> &'static str {
        self.0.backend_name()
    }
}

/// `$XDG_STATE_HOME/pawctl`, else `~/.local/state/pawctl`, made absolute.
pub fn state_dir(given: Option<&Path>) -> Result<PathBuf> {
    let dir = match given {
        Some(d) => d.to_path_buf(),
        None => match (
            std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()),
            std::env::var_os("HOME").filter(|v| !v.is_empty()),
        ) {
            (Some(x), _) => PathBuf::from(x).join("pawctl"),
            (None, Some(h)) => PathBuf::from(h).join(".local/state/pawctl"),
            (None, None) => {
                return Err(CliError::usage(
                    "no state directory: pass --state-dir or set PAWCTL_STATE_DIR",
                ))
            }
        },
    };
    std::path::absolute(&dir)
        .map_err(|e| CliError::usage(format!("state directory {}: {e}", dir.display())))
}

/// The OS keyring, if it proves usable within [`KEYRING_PROBE`].
fn keyring(state_dir: &Path) -> Result<Backend> {
    let (tx, rx) = mpsc::channel();
    // A thread of its own, left behind if it hangs: the process does not wait for it.
    std::thread::spawn(move || {
        let _ = tx.send(OsKeyStore::open());
    });
    let os = match rx.recv_timeout(KEYRING_PROBE) {
        Ok(Ok(os)) => os,
        Ok(Err(e)) => return Err(keyring_error(&e)),
        Err(_) => {
            return Err(CliError::new(
                ErrorCode::KeyringUnavailable,
                Exit::Failed,
                format!(
                    "the OS keyring did not answer within {} s; use --store file",
                    KEYRING_PROBE.as_secs()
                ),
            ))
        }
    };
    let digest = Sha256::digest(state_dir.as_os_str().as_encoded_bytes());
    let scope: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    Ok(Backend::Keyring { os, scope })
}

fn entry(scope: &str, name: &str) -> String {
    format!("pawctl-{scope}-{name}")
}

fn keyring_error(e: &paw_client::ClientError) -> CliError {
    let text = e.to_string();
    // paw-client's message goes on to say the desktop app never falls back to a file, which
    // pawctl does when asked to: that part is replaced by how to ask.
    let cause = text.split(". paw keeps").next().unwrap_or(&text);
    CliError::new(
        ErrorCode::KeyringUnavailable,
        Exit::Failed,
        format!("{cause}; pass --store file to keep credentials in a 0600 file instead"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn file_store_round_trips_records_side_by_side() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreChoice::File, dir.path()).unwrap();
        let key = paw_client::machine::MachineKey::generate().unwrap();
        let rec = KeyRecord::new("backup-1", &key, &["https://b".into()], "/ca".into());
        store.save(Slot::MachineKey, &rec).unwrap();
        assert!(store
            .load::<SessionRecord>(Slot::MachineSession)
            .unwrap()
            .is_none());
        let back: KeyRecord = store.load(Slot::MachineKey).unwrap().unwrap();
        assert_eq!(back.key().unwrap().public(), key.public());
        store.delete(Slot::MachineKey).unwrap();
        assert!(store.load::<KeyRecord>(Slot::MachineKey).unwrap().is_none());
    }

    #[test]
    fn unreadable_records_are_reported_without_their_contents() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreChoice::File, dir.path()).unwrap();
        store
            .files
            .set(
                "machine-key",
                br#"{"version":1,"machine":"m","seed":"top-secret-seed","brokers":7,"ca":"/x"}"#,
            )
            .unwrap();
        let e = store.load::<KeyRecord>(Slot::MachineKey).unwrap_err();
        assert!(!e.message.contains("top-secret"), "{}", e.message);
        assert!(e.message.contains("malformed"), "{}", e.message);
        store.files.set("machine-key", br#"{"version":9}"#).unwrap();
        let e = store.load::<KeyRecord>(Slot::MachineKey).unwrap_err();
        assert!(
            e.message.contains("another pawctl version"),
            "{}",
            e.message
        );
    }

    #[test]
    fn keyring_entries_are_scoped_to_the_state_dir() {
        let a = entry("0123456789ab", Slot::MachineSession.name());
        assert_eq!(a, "pawctl-0123456789ab-machine-session");
        // A person's entries (the client library's names, prefixed) fit the same rule.
        let p = entry(
            "0123456789ab",
            &format!("{PERSON_PREFIX}{}", paw_client::VIRTUAL_KEY_ENTRY),
        );
        assert_eq!(p, "pawctl-0123456789ab-person-virtual-key");
        // paw-client's keystore accepts lower-case letters, digits and dashes, ≤ 64 chars.
        assert!(a.len() <= 64);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    }

    #[test]
    fn state_dir_is_absolute() {
        let d = state_dir(Some(Path::new("rel/dir"))).unwrap();
        assert!(d.is_absolute());
        assert!(d.ends_with("rel/dir"));
    }
}
