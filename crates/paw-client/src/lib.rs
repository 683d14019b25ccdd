//! # paw-client
//!
//! The workstation core. Everything the desktop app does is a use case here, written without
//! Tauri so that it runs (and is tested) without a desktop: the `paw` shell only adapts these
//! calls to IPC commands.
//!
//! Rules:
//! - The broker is reached over HTTPS only, trusting exactly the CA the user pinned in the
//!   settings, never the system store: a compromised public CA must not be able to impersonate
//!   the broker.
//! - Nothing returned from here to the UI carries a secret.
//! - Errors are [`ClientError`], which maps to a `paw_proto::ErrorCode`.
//! - Secrets (device key, tokens, PINs) live in redacting, zeroizing types ([`secret`]) and at
//!   rest only in the OS keyring ([`keystore`]); the settings file holds no secret.
//! - The broker's clock decides validity: the workstation estimates it ([`BrokerClock`]) and
//!   never trusts its own wall clock for an expiry.
//! - A privileged use case (login, enrollment, key management, elevation, grant and review
//!   changes) starts only after its `started` record is durably in the local audit trail, and
//!   is refused with `audit_unavailable` otherwise (case D1; see the `audit` module).

mod audit;
pub mod authn;
mod broker;
mod clock;
#[cfg(test)]
mod core_tests;
mod device;
mod elevation;
mod error;
mod external;
#[cfg(test)]
mod fake_broker;
mod files;
mod history;
mod holds;
#[cfg(test)]
mod holds_tests;
mod identity;
mod inventory;
#[cfg(test)]
mod inventory_tests;
pub mod keystore;
mod live;
pub mod machine;
mod paths;
mod pending;
mod prompts;
pub mod secret;
#[cfg(test)]
mod session_files_tests;
mod settings;
mod sse;
mod tokens;
mod trail_check;
mod util;
mod vault;
#[cfg(test)]
mod vault_tests;
mod watch;
#[cfg(test)]
mod watch_tests;
mod witness;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use paw_fido::Authenticator;
use paw_proto::ipc::{
    AppStatus, BrokerState, BrokerStatus, BuildInfo, SessionUser, SettingsInput, SettingsView,
};
use tokio::sync::RwLock;

pub use broker::BrokerClient;
pub use clock::BrokerClock;
pub use device::DeviceKey;
pub use error::ClientError;
pub use external::validate_external_url;
pub use files::CHUNK_BYTES as UPLOAD_CHUNK_BYTES;
pub use identity::{load_virtual_authenticator, STEP_UP_TTL, VIRTUAL_KEY_ENTRY};
pub use keystore::{KeyStore, MemoryKeyStore, OsKeyStore};
pub use prompts::PIN_WAIT;
pub use secret::{AccessToken, Pin, RefreshToken, Secret};
pub use settings::{load_ca, Settings, SettingsStore};
pub use tokens::{TokenStore, Tokens};
pub use trail_check::{audit_cli, verify_trail, TrailReport};

/// The app's core state: settings on disk, the broker client built from them, the identity
/// side (keyring, authenticator, pending step-ups) and the live updates from the broker.
///
/// A handle on shared state: the live-events task holds a weak reference to the same state, so
/// it can authenticate its reconnections like any other call and ends when the core is dropped.
pub struct Core {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    store: SettingsStore,
    state: RwLock<State>,
    build: BuildInfo,
    identity: identity::Identity,
    live: live::Live,
    /// The user's grants as last fetched, for the status bar.
    grants: std::sync::Mutex<elevation::GrantCache>,
    /// The local audit trail (`audit.db` in the config dir), opened on first use.
    audit: audit::Trail,
    /// Open terminals and local forwards by session id.
    sessions: sessions::Open,
    /// Open file connections and their transfers, by session and transfer id.
    files: files::Files,
    /// Other people's live sessions this user watches, by session id.
    watches: watch::Watches,
}

struct State {
    settings: Settings,
    client: Option<BrokerClient>,
    /// Broker time from the last successful health check; reset when the broker changes.
    clock: BrokerClock,
    /// The signed-in user as last confirmed (login, refresh or `/v1/me`).
    user: Option<SessionUser>,
}

impl Core {
    /// Opens the core with settings kept in `config_dir` (created if missing), and the local
    /// audit trail at `config_dir/audit.db` (opened at its first use; see [`audit`]).
    ///
    /// A settings file that cannot be read or no longer validates (for example its CA file was
    /// removed) leaves the broker unconfigured rather than refusing to start: the user can fix it
    /// on the settings page.
    ///
    /// `keystore` holds the device key, the tokens and the virtual key's state (the OS keyring
    /// in the app, an isolated store in tests). `authenticator` is the security key; `None`
    /// makes enrollment, login and step-up fail with `webauthn_rejected` and a message saying
    /// this build has no security key support. `build.virtual_key` is set from the
    /// authenticator, so the UI's INSECURE marking cannot be forgotten.
    pub fn open(
        config_dir: PathBuf,
        mut build: BuildInfo,
        keystore: Arc<dyn KeyStore>,
        authenticator: Option<Arc<dyn Authenticator>>,
    ) -> Result<Self, ClientError> {
        build.virtual_key = authenticator.as_ref().is_some_and(|a| a.is_virtual());
        let audit = audit::Trail::new(config_dir.join(paths::TRAIL_FILE));
        let store = SettingsStore::new(config_dir)?;
        let settings = store.load()?;
        let client = match &settings {
            Settings::Configured { ca_path, .. } => {
                match BrokerClient::new(&settings.broker_urls(), &load_ca(ca_path)?.der) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::warn!(code = %e.code(), "stored broker settings are unusable");
                        None
                    }
                }
            }
            Settings::Unconfigured => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                state: RwLock::new(State {
                    settings,
                    client,
                    clock: BrokerClock::new(),
                    user: None,
                }),
                build,
                identity: identity::Identity::new(keystore, authenticator),
                live: live::Live::new(),
                grants: std::sync::Mutex::new(elevation::GrantCache::default()),
                sessions: sessions::Open::default(),
                files: files::Files::default(),
                watches: watch::Watches::default(),
                audit,
            }),
        })
    }

    /// Everything the frame and status bar show, with a fresh broker health check.
    pub async fn status(&self) -> AppStatus {
        let (configured, client) = {
            let st = self.inner.state.read().await;
            (
                st.settings.broker_url().map(str::to_owned),
                st.client.clone(),
            )
        };
        let connected;
        let broker = match client {
            None => {
                connected = false;
                BrokerStatus {
                    state: BrokerState::Unconfigured,
                    url: configured,
                    failed_over: false,
                    version: None,
                    latency_ms: None,
                    error: None,
                }
            }
            Some(c) => {
                let started = Instant::now();
                let health = c.health().await;
                // After the check: it may have moved to another broker.
                let url = Some(c.active_url().to_owned());
                let failed_over = c.failed_over();
                match health {
                    Ok(h) => {
                        connected = true;
                        let received = Instant::now();
                        self.sync_clock(&c, h.time_ms, started, received).await;
                        BrokerStatus {
                            state: BrokerState::Connected,
                            url,
                            failed_over,
                            version: Some(h.version),
                            latency_ms: Some(
                                u32::try_from(received.duration_since(started).as_millis())
                                    .unwrap_or(u32::MAX),
                            ),
                            error: None,
                        }
                    }
                    Err(e) => {
                        connected = false;
                        BrokerStatus {
                            state: e.broker_state(),
                            url,
                            failed_over,
                            version: None,
                            latency_ms: None,
                            error: Some(e.to_api()),
                        }
                    }
                }
            }
        };
        // Asked of the broker only when it answered; otherwise the last known user, and no
        // grant countdown (what the broker would say about it is unknown).
        let (user, grant) = if connected {
            let user = self.current_user().await;
            let grant = match user {
                Some(_) => {
                    self.ensure_live();
                    self.grant_summary().await
                }
                None => None,
            };
            (user, grant)
        } else {
            (self.inner.state.read().await.user.clone(), None)
        };
        AppStatus {
            broker,
            user,
            grant,
            build: self.inner.build.clone(),
        }
    }

    /// Records the broker's time from a health answer, unless the broker was switched while the
    /// check was in flight (the answer would then describe the previous broker's clock).
    async fn sync_clock(
        &self,
        checked: &BrokerClient,
        broker_time_ms: i64,
        sent: Instant,
        received: Instant,
    ) {
        let mut st = self.inner.state.write().await;
        if st.client.as_ref().is_some_and(|c| c.same_broker(checked)) {
            st.clock
                .record(broker_time_ms, sent, received, clock::local_wall_ms());
            if let Some(skew) = st.clock.local_skew_ms() {
                tracing::debug!(skew_ms = skew, "broker clock synced");
            }
        }
    }

    /// The broker's current time as estimated from the last health check (`None` before one
    /// succeeded). Device proofs and expiry checks use this, never the local clock (case B8).
    pub async fn broker_time_ms(&self) -> Option<i64> {
        self.inner.state.read().await.clock.now_ms()
    }

    pub async fn settings(&self) -> Result<SettingsView, ClientError> {
        self.inner.state.read().await.settings.view()
    }

    /// Validates and persists new settings, then switches the broker client over to them.
    /// Nothing changes (on disk or in memory) unless everything validates.
    pub async fn save_settings(&self, input: SettingsInput) -> Result<SettingsView, ClientError> {
        let settings = Settings::validate(input)?;
        let client = match &settings {
            Settings::Configured { ca_path, .. } => Some(BrokerClient::new(
                &settings.broker_urls(),
                &load_ca(ca_path)?.der,
            )?),
            Settings::Unconfigured => None,
        };
        // Tokens belong to the deployment that issued them (named by its primary broker): another
        // deployment never sees them. Editing only the fallback list keeps the sign-in.
        let changed = self.inner.state.read().await.settings.broker_url() != settings.broker_url();
        if changed {
            self.logout().await?;
        }
        let mut st = self.inner.state.write().await;
        self.inner.store.save(&settings)?;
        let view = settings.view()?;
        st.settings = settings;
        st.client = client;
        // Another broker, another clock.
        st.clock.reset();
        drop(st);
        // The live stream and the cached grants came through the previous client (another CA,
        // perhaps): start over with the new one at the next status.
        self.stop_live();
        Ok(view)
    }
}

pub mod forward;
pub mod sessions;
pub mod stock_ssh;
pub mod terminal;
