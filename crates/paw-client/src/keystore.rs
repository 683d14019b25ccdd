//! Where the workstation keeps its secrets: the OS keyring, and nowhere else (cases H1, H2).
//!
//! Rules:
//! - The store is chosen explicitly per platform ([`OsKeyStore::open`]): the Secret Service on
//!   Linux (over zbus, pure Rust), the Keychain on macOS, the Credential Manager on Windows. No
//!   process-wide default is set, so no dependency can redirect our secrets to another store.
//! - Opening the store proves it works (write, read back, delete a probe entry). If it does not,
//!   the app fails closed with [`ClientError::KeyringUnavailable`]: there is no plaintext or
//!   file fallback, ever.
//! - Tests use [`MemoryKeyStore`] and never touch the real keyring.
//! - Calls block (a D-Bus or OS round trip): from async code, run them on a blocking thread.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use rand_core::{OsRng, RngCore};

use crate::secret::Secret;
use crate::ClientError;

/// Service name of every entry paw writes to the OS keyring.
pub const SERVICE: &str = "paw";
/// Entry written and removed by the start-up probe.
const PROBE_ENTRY: &str = "probe";
/// Entry names are ours and fixed; refusing anything else keeps a bug from writing arbitrary
/// attributes into the user's keyring.
const MAX_NAME_LEN: usize = 64;

/// Named secret blobs for one service ("paw").
pub trait KeyStore: Send + Sync {
    /// The stored blob, or `None` when the entry does not exist.
    fn get(&self, name: &str) -> Result<Option<Secret<Vec<u8>>>, ClientError>;
    /// Creates or replaces the entry.
    fn set(&self, name: &str, value: &[u8]) -> Result<(), ClientError>;
    /// Removes the entry; removing a missing entry succeeds.
    fn delete(&self, name: &str) -> Result<(), ClientError>;
    /// Human name of the backing store, for logs and the status page.
    fn describe(&self) -> &'static str;
}

fn check_name(name: &str) -> Result<(), ClientError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ClientError::KeyringUnavailable(format!(
            "invalid entry name {name:?}"
        )))
    }
}

/// Proves a store can hold a secret: write random bytes, read them back, delete them. A store
/// that accepts writes but loses them (a misconfigured or stub Secret Service) fails here
/// instead of at the first sign-in.
pub fn probe(store: &dyn KeyStore) -> Result<(), ClientError> {
    let mut value = Secret::new(vec![0u8; 16]);
    OsRng
        .try_fill_bytes(value.expose_mut())
        .map_err(|e| ClientError::Random(e.to_string()))?;
    let fail = |why: String| {
        ClientError::KeyringUnavailable(format!(
            "{} is not usable ({why}). paw keeps its device key and sign-in tokens only in the \
             OS keyring and will not fall back to a file; start or unlock the keyring and retry",
            store.describe()
        ))
    };
    let unwrap_reason = |e: ClientError| match e {
        ClientError::KeyringUnavailable(m) => m,
        other => other.to_string(),
    };
    store
        .set(PROBE_ENTRY, value.expose())
        .map_err(|e| fail(format!("write failed: {}", unwrap_reason(e))))?;
    let read = store
        .get(PROBE_ENTRY)
        .map_err(|e| fail(format!("read failed: {}", unwrap_reason(e))))?;
    let matches = read.as_ref().map(Secret::expose) == Some(value.expose());
    // Clean up even when the read-back failed, but report the first problem.
    let deleted = store.delete(PROBE_ENTRY);
    if !matches {
        return Err(fail("a written entry did not read back".into()));
    }
    deleted.map_err(|e| fail(format!("delete failed: {}", unwrap_reason(e))))
}

/// The operating system's keyring.
pub struct OsKeyStore {
    backend: backend::Backend,
}

impl OsKeyStore {
    /// Opens this platform's store and probes it; fails closed when none is usable (case H2).
    pub fn open() -> Result<Self, ClientError> {
        let store = Self {
            backend: backend::Backend::new().map_err(ClientError::KeyringUnavailable)?,
        };
        probe(&store)?;
        tracing::info!(store = store.describe(), "OS keyring ready");
        Ok(store)
    }
}

impl fmt::Debug for OsKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OsKeyStore")
            .field("store", &self.describe())
            .finish()
    }
}

impl KeyStore for OsKeyStore {
    fn get(&self, name: &str) -> Result<Option<Secret<Vec<u8>>>, ClientError> {
        check_name(name)?;
        self.backend
            .get(name)
            .map(|v| v.map(Secret::new))
            .map_err(ClientError::KeyringUnavailable)
    }

    fn set(&self, name: &str, value: &[u8]) -> Result<(), ClientError> {
        check_name(name)?;
        self.backend
            .set(name, value)
            .map_err(ClientError::KeyringUnavailable)
    }

    fn delete(&self, name: &str) -> Result<(), ClientError> {
        check_name(name)?;
        self.backend
            .delete(name)
            .map_err(ClientError::KeyringUnavailable)
    }

    fn describe(&self) -> &'static str {
        self.backend.describe()
    }
}

#[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
mod backend {
    use keyring::credential::CredentialBuilder;

    use super::SERVICE;

    pub(super) struct Backend {
        builder: Box<CredentialBuilder>,
        name: &'static str,
    }

    impl Backend {
        pub(super) fn new() -> Result<Self, String> {
            #[cfg(target_os = "linux")]
            let (builder, name) = (
                keyring::secret_service::default_credential_builder(),
                "the Secret Service",
            );
            #[cfg(target_os = "macos")]
            let (builder, name) = (
                keyring::macos::default_credential_builder(),
                "the macOS Keychain",
            );
            #[cfg(target_os = "windows")]
            let (builder, name) = (
                keyring::windows::default_credential_builder(),
                "the Windows Credential Manager",
            );
            Ok(Self { builder, name })
        }

        pub(super) fn describe(&self) -> &'static str {
            self.name
        }

        /// Built per call from our own builder, never from keyring's global default.
        fn entry(&self, name: &str) -> Result<keyring::Entry, String> {
            let cred = self
                .builder
                .build(None, SERVICE, name)
                .map_err(|e| describe(&e))?;
            Ok(keyring::Entry::new_with_credential(cred))
        }

        pub(super) fn get(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
            match self.entry(name)?.get_secret() {
                Ok(v) => Ok(Some(v)),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(describe(&e)),
            }
        }

        pub(super) fn set(&self, name: &str, value: &[u8]) -> Result<(), String> {
            self.entry(name)?
                .set_secret(value)
                .map_err(|e| describe(&e))
        }

        pub(super) fn delete(&self, name: &str) -> Result<(), String> {
            match self.entry(name)?.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                Err(e) => Err(describe(&e)),
            }
        }
    }

    /// Never formats the error with `Debug`: `BadEncoding` carries the secret's bytes, and
    /// `Ambiguous` carries credentials.
    fn describe(e: &keyring::Error) -> String {
        match e {
            keyring::Error::PlatformFailure(p) => format!("platform failure: {p}"),
            keyring::Error::NoStorageAccess(p) => format!("locked or access denied: {p}"),
            keyring::Error::NoEntry => "no such entry".into(),
            keyring::Error::BadEncoding(_) => "stored value is not valid".into(),
            keyring::Error::TooLong(attr, max) => format!("{attr} longer than {max}"),
            keyring::Error::Invalid(attr, why) => format!("invalid {attr}: {why}"),
            keyring::Error::Ambiguous(found) => {
                format!("{} entries match; remove the duplicates", found.len())
            }
            _ => "unexpected keyring error".into(),
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
mod backend {
    /// No supported store on this platform: the type is uninhabited, so `open` always fails.
    pub(super) enum Backend {}

    impl Backend {
        pub(super) fn new() -> Result<Self, String> {
            Err("no supported OS keyring on this platform".into())
        }
        pub(super) fn describe(&self) -> &'static str {
            match *self {}
        }
        pub(super) fn get(&self, _: &str) -> Result<Option<Vec<u8>>, String> {
            match *self {}
        }
        pub(super) fn set(&self, _: &str, _: &[u8]) -> Result<(), String> {
            match *self {}
        }
        pub(super) fn delete(&self, _: &str) -> Result<(), String> {
            match *self {}
        }
    }
}

/// An isolated in-memory store for tests and for running the core without a desktop session.
/// Its contents vanish with the value; it never reads or writes the OS keyring.
#[derive(Default)]
pub struct MemoryKeyStore {
    entries: Mutex<Entries>,
}

type Entries = HashMap<String, Secret<Vec<u8>>>;

impl MemoryKeyStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Names of the stored entries, sorted (the values stay inside).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .entries
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    fn locked(&self) -> Result<std::sync::MutexGuard<'_, Entries>, ClientError> {
        self.entries
            .lock()
            .map_err(|_| ClientError::KeyringUnavailable("in-memory store poisoned".into()))
    }
}

impl fmt::Debug for MemoryKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryKeyStore")
            .field("entries", &self.names())
            .finish()
    }
}

impl KeyStore for MemoryKeyStore {
    fn get(&self, name: &str) -> Result<Option<Secret<Vec<u8>>>, ClientError> {
        check_name(name)?;
        Ok(self.locked()?.get(name).cloned())
    }

    fn set(&self, name: &str, value: &[u8]) -> Result<(), ClientError> {
        check_name(name)?;
        self.locked()?
            .insert(name.to_owned(), Secret::new(value.to_vec()));
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<(), ClientError> {
        check_name(name)?;
        self.locked()?.remove(name);
        Ok(())
    }

    fn describe(&self) -> &'static str {
        "the in-memory test store"
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A keyring that is absent or locked: every call fails.
    pub(crate) struct FailingKeyStore;

    impl KeyStore for FailingKeyStore {
        fn get(&self, _: &str) -> Result<Option<Secret<Vec<u8>>>, ClientError> {
            Err(ClientError::KeyringUnavailable(
                "collection is locked".into(),
            ))
        }
        fn set(&self, _: &str, _: &[u8]) -> Result<(), ClientError> {
            Err(ClientError::KeyringUnavailable(
                "collection is locked".into(),
            ))
        }
        fn delete(&self, _: &str) -> Result<(), ClientError> {
            Err(ClientError::KeyringUnavailable(
                "collection is locked".into(),
            ))
        }
        fn describe(&self) -> &'static str {
            "a failing store"
        }
    }

    /// Accepts writes and loses them, like a stub Secret Service.
    struct ForgetfulKeyStore;

    impl KeyStore for ForgetfulKeyStore {
        fn get(&self, _: &str) -> Result<Option<Secret<Vec<u8>>>, ClientError> {
            Ok(None)
        }
        fn set(&self, _: &str, _: &[u8]) -> Result<(), ClientError> {
            Ok(())
        }
        fn delete(&self, _: &str) -> Result<(), ClientError> {
            Ok(())
        }
        fn describe(&self) -> &'static str {
            "a forgetful store"
        }
    }

    #[test]
    fn memory_store_round_trips_and_isolates() {
        let a = MemoryKeyStore::new();
        let b = MemoryKeyStore::new();
        assert!(a.get("device-key").unwrap().is_none());
        a.set("device-key", b"one").unwrap();
        a.set("device-key", b"two").unwrap();
        assert_eq!(a.get("device-key").unwrap().unwrap().expose(), b"two");
        assert!(
            b.get("device-key").unwrap().is_none(),
            "stores are isolated"
        );
        a.delete("device-key").unwrap();
        a.delete("device-key").unwrap();
        assert!(a.get("device-key").unwrap().is_none());
        for bad in ["", "Device", "a/b", "a b", &"x".repeat(65)] {
            assert!(a.set(bad, b"v").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn memory_store_debug_shows_names_only() {
        let s = MemoryKeyStore::new();
        s.set("tokens", b"very-secret-value").unwrap();
        let shown = format!("{s:?}");
        assert!(shown.contains("tokens"), "{shown}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(!shown.contains("118, 101"), "{shown}");
    }

    #[test]
    fn h2_probe_passes_on_a_working_store_and_leaves_nothing() {
        let s = MemoryKeyStore::new();
        probe(&s).unwrap();
        assert!(s.names().is_empty(), "{:?}", s.names());
    }

    #[test]
    fn h2_probe_fails_closed_on_unusable_store() {
        for store in [&FailingKeyStore as &dyn KeyStore, &ForgetfulKeyStore] {
            let e = probe(store).unwrap_err();
            assert!(matches!(e, ClientError::KeyringUnavailable(_)), "{e:?}");
            assert_eq!(e.code(), paw_proto::ErrorCode::KeyringUnavailable);
            let msg = e.to_string();
            assert!(msg.contains(store.describe()), "{msg}");
            assert!(msg.contains("will not fall back"), "{msg}");
        }
    }

    /// Runs `OsKeyStore::open()` in a child process whose session bus address points nowhere,
    /// so the environment change cannot leak into tests running in parallel, and the real
    /// keyring cannot be reached.
    #[cfg(target_os = "linux")]
    #[test]
    fn h2_os_keystore_without_secret_service_fails_closed() {
        let home = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "keystore::tests::h2_child_open_without_bus",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PAW_TEST_H2_CHILD", "1")
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}/no-bus", home.path().display()),
            )
            .env("XDG_RUNTIME_DIR", home.path())
            .env("HOME", home.path())
            .env_remove("DISPLAY")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("H2-CHILD-OK"),
            "child did not run the check:\n{stdout}\n{stderr}"
        );
    }

    /// The real backend against a real Secret Service: a private `dbus-run-session` with its
    /// own unlocked `gnome-keyring-daemon` and a throwaway HOME, so the developer's own keyring
    /// is never reached. The check runs in a child process inside that session.
    #[cfg(target_os = "linux")]
    #[test]
    fn h1_os_keystore_round_trips_in_private_secret_service() {
        let home = tempfile::tempdir().unwrap();
        let runtime = home.path().join("run");
        std::fs::create_dir_all(&runtime).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let exe = std::env::current_exe().unwrap();
        let script = "printf %s paw-test | gnome-keyring-daemon --unlock --components=secrets \
                      >/dev/null && exec \"$0\" --exact keystore::tests::secret_service_child \
                      --nocapture --test-threads=1";
        let out = std::process::Command::new("dbus-run-session")
            .args(["--", "sh", "-c", script])
            .arg(exe)
            .env("PAW_TEST_SS_CHILD", "1")
            .env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .output()
            .expect("dbus-run-session (package dbus) is required; `cargo xtask test` installs it");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("SS-CHILD-OK"),
            "child did not run:\n{stdout}\n{stderr}"
        );
    }

    /// Only does something when started by the test above, inside its private session.
    #[cfg(target_os = "linux")]
    #[test]
    fn secret_service_child() {
        if std::env::var_os("PAW_TEST_SS_CHILD").is_none() {
            return;
        }
        let store = OsKeyStore::open().unwrap();
        let a = crate::DeviceKey::load_or_create(&store).unwrap();
        let b = crate::DeviceKey::load_or_create(&OsKeyStore::open().unwrap()).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        store.set("tokens", b"one").unwrap();
        store.set("tokens", b"two").unwrap();
        assert_eq!(store.get("tokens").unwrap().unwrap().expose(), b"two");
        store.delete("tokens").unwrap();
        store.delete("device-key").unwrap();
        assert!(store.get("device-key").unwrap().is_none());
        assert!(format!("{store:?}").contains("Secret Service"));
        println!("SS-CHILD-OK");
    }

    /// Only does something when started by the test above.
    #[cfg(target_os = "linux")]
    #[test]
    fn h2_child_open_without_bus() {
        if std::env::var_os("PAW_TEST_H2_CHILD").is_none() {
            return;
        }
        let e = OsKeyStore::open().unwrap_err();
        assert!(matches!(e, ClientError::KeyringUnavailable(_)), "{e:?}");
        assert_eq!(e.code(), paw_proto::ErrorCode::KeyringUnavailable);
        let msg = e.to_string();
        assert!(msg.contains("Secret Service"), "{msg}");
        println!("H2-CHILD-OK: {msg}");
    }
}
