//! The broker's access and refresh tokens, kept only in the [`KeyStore`] (case H1).
//!
//! Rules:
//! - One keyring entry holds the whole set (both tokens and their expiries), so a refresh-token
//!   rotation replaces both at once and a crash cannot leave a new access token beside a spent
//!   refresh token (which the broker would treat as reuse, case B11).
//! - Expiries are broker-time milliseconds (see [`crate::BrokerClock`]), never local time.
//! - Nothing here touches the settings file or any other file.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::keystore::KeyStore;
use crate::secret::{AccessToken, RefreshToken, Secret};
use crate::ClientError;

/// Keyring entry that holds the token set.
pub const TOKENS_ENTRY: &str = "tokens";
/// Version of the entry's encoding, so a future change is read as "sign in again", not garbage.
const VERSION: u8 = 1;

/// What the broker issued at login or refresh. `Debug` shows the expiries only.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: AccessToken,
    /// Broker time (Unix ms) after which the access token is refused.
    pub access_expires_ms: i64,
    pub refresh: RefreshToken,
    /// Broker time (Unix ms) after which the refresh token is refused.
    pub refresh_expires_ms: i64,
}

impl Tokens {
    pub fn access_valid_at(&self, broker_now_ms: i64) -> bool {
        broker_now_ms < self.access_expires_ms
    }

    pub fn refresh_valid_at(&self, broker_now_ms: i64) -> bool {
        broker_now_ms < self.refresh_expires_ms
    }
}

/// The on-keyring encoding. Only ever lives briefly, and wipes its strings on drop.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    v: u8,
    access: String,
    access_expires_ms: i64,
    refresh: String,
    refresh_expires_ms: i64,
}

impl Drop for Stored {
    fn drop(&mut self) {
        self.access.zeroize();
        self.refresh.zeroize();
    }
}

/// Reads and writes the token set in a keystore.
#[derive(Clone)]
pub struct TokenStore {
    store: Arc<dyn KeyStore>,
}

impl TokenStore {
    pub fn new(store: Arc<dyn KeyStore>) -> Self {
        Self { store }
    }

    /// Replaces the stored set (login, refresh).
    pub fn save(&self, t: &Tokens) -> Result<(), ClientError> {
        let stored = Stored {
            v: VERSION,
            access: t.access.expose().to_owned(),
            access_expires_ms: t.access_expires_ms,
            refresh: t.refresh.expose().to_owned(),
            refresh_expires_ms: t.refresh_expires_ms,
        };
        let bytes = Secret::new(
            serde_json::to_vec(&stored)
                // The message of a serde_json error never includes the values.
                .map_err(|e| ClientError::KeyringUnavailable(format!("encode tokens: {e}")))?,
        );
        self.store.set(TOKENS_ENTRY, bytes.expose())
    }

    /// The stored set, or `None` when signed out.
    ///
    /// An entry that does not decode is removed and reads as signed out: the user signs in
    /// again, which is the safe direction. Keyring errors are errors (fail closed).
    pub fn load(&self) -> Result<Option<Tokens>, ClientError> {
        let Some(bytes) = self.store.get(TOKENS_ENTRY)? else {
            return Ok(None);
        };
        match serde_json::from_slice::<Stored>(bytes.expose()) {
            Ok(mut s) if s.v == VERSION => Ok(Some(Tokens {
                access: AccessToken::new(std::mem::take(&mut s.access)),
                access_expires_ms: s.access_expires_ms,
                refresh: RefreshToken::new(std::mem::take(&mut s.refresh)),
                refresh_expires_ms: s.refresh_expires_ms,
            })),
            _ => {
                tracing::warn!("stored tokens unreadable; signing out");
                self.clear()?;
                Ok(None)
            }
        }
    }

    /// Forgets the tokens (logout, or the broker refused them).
    pub fn clear(&self) -> Result<(), ClientError> {
        self.store.delete(TOKENS_ENTRY)
    }
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("store", &self.store.describe())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::device::DeviceKey;
    use crate::keystore::tests::FailingKeyStore;
    use crate::keystore::MemoryKeyStore;
    use crate::settings::tests::write_ca;
    use crate::{Settings, SettingsStore};

    const ACCESS: &str = "pat_access_5d1e0c7a9b";
    const REFRESH: &str = "prt_refresh_8c2f4e6a1d";

    fn sample() -> Tokens {
        Tokens {
            access: AccessToken::new(ACCESS),
            access_expires_ms: 1_000,
            refresh: RefreshToken::new(REFRESH),
            refresh_expires_ms: 2_000,
        }
    }

    fn all_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                all_files(&p, out);
            } else {
                out.push(p);
            }
        }
    }

    #[test]
    fn tokens_round_trip_and_clear() {
        let ks = Arc::new(MemoryKeyStore::new());
        let ts = TokenStore::new(ks.clone());
        assert!(ts.load().unwrap().is_none());
        ts.save(&sample()).unwrap();
        let t = ts.load().unwrap().unwrap();
        assert_eq!(t.access.expose(), ACCESS);
        assert_eq!(t.refresh.expose(), REFRESH);
        assert_eq!((t.access_expires_ms, t.refresh_expires_ms), (1_000, 2_000));
        assert!(t.access_valid_at(999) && !t.access_valid_at(1_000));
        assert!(t.refresh_valid_at(1_999) && !t.refresh_valid_at(2_000));
        assert_eq!(ks.names(), vec![TOKENS_ENTRY.to_owned()]);
        ts.clear().unwrap();
        assert!(ts.load().unwrap().is_none());
        assert!(ks.names().is_empty());
    }

    #[test]
    fn h1_tokens_debug_is_redacted() {
        let shown = format!("{:?}", sample());
        assert!(
            !shown.contains(ACCESS) && !shown.contains(REFRESH),
            "{shown}"
        );
        assert!(
            shown.contains("1000") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn unreadable_entry_reads_as_signed_out() {
        let ks = Arc::new(MemoryKeyStore::new());
        ks.set(TOKENS_ENTRY, b"{\"v\":9}").unwrap();
        let ts = TokenStore::new(ks.clone());
        assert!(ts.load().unwrap().is_none());
        assert!(ks.names().is_empty(), "the bad entry is removed");
    }

    #[test]
    fn h2_tokens_fail_closed_without_keyring() {
        let ts = TokenStore::new(Arc::new(FailingKeyStore));
        for e in [ts.save(&sample()).unwrap_err(), ts.load().unwrap_err()] {
            assert_eq!(e.code(), paw_proto::ErrorCode::KeyringUnavailable);
        }
    }

    /// Saves tokens, a device key and settings, then reads every file under the config dir:
    /// none may contain a token or the key.
    #[test]
    fn h1_no_secret_in_config_dir() {
        let d = tempfile::tempdir().unwrap();
        let (ca, _) = write_ca(d.path());
        let cfg = d.path().join("cfg");
        let settings = SettingsStore::new(cfg.clone()).unwrap();
        settings
            .save(
                &Settings::validate(paw_proto::ipc::SettingsInput {
                    broker_url: "https://broker.example:8443".into(),
                    fallback_urls: Vec::new(),
                    ca_path: ca.display().to_string(),
                })
                .unwrap(),
            )
            .unwrap();
        let ks = Arc::new(MemoryKeyStore::new());
        TokenStore::new(ks.clone()).save(&sample()).unwrap();
        DeviceKey::load_or_create(ks.as_ref()).unwrap();
        let seed = ks.get(crate::device::DEVICE_KEY_ENTRY).unwrap().unwrap();

        let mut files = Vec::new();
        all_files(&cfg, &mut files);
        assert!(!files.is_empty(), "the settings file should be there");
        for f in files {
            let body = std::fs::read(&f).unwrap();
            let text = String::from_utf8_lossy(&body);
            for needle in [ACCESS, REFRESH, "pat_", "prt_", "token", "refresh"] {
                assert!(!text.contains(needle), "{} contains {needle}", f.display());
            }
            assert!(
                !body
                    .windows(seed.expose().len())
                    .any(|w| w == seed.expose().as_slice()),
                "{} contains the device key",
                f.display()
            );
        }
    }
}
