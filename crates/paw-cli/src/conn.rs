//! Reaching the broker: which deployment (brokers and CA), and a stored sign-in brought back to
//! life, its tokens rotated when they are about to expire.
//!
//! Rules:
//! - The broker is trusted through the pinned CA alone (paw-client's `BrokerClient`); its URLs
//!   are validated as the desktop app validates them (https, host and port only).
//! - A sign-in belongs to the deployment that issued it: an invocation naming brokers that
//!   share none with the stored sign-in is refused rather than sending its tokens elsewhere.
//! - Expiry is judged with the broker's clock (from its health answer), never the local one.
//! - A refresh happens under the state directory's lock and re-reads the store first: two
//!   pawctl processes sharing a sign-in must never both spend one refresh token, which would
//!   make the broker end the whole sign-in (case B11).

use std::path::{Path, PathBuf};
use std::time::Instant;

use paw_client::machine::MachineSession;
use paw_client::{load_ca, BrokerClient, BrokerClock, DeviceKey, KeyStore, MemoryKeyStore};
use paw_client::{Secret, Settings};
use paw_proto::device_proof;
use paw_proto::http::{RefreshRequest, TokenResponse};
use paw_proto::ipc::SettingsInput;
use reqwest::Method;

use crate::error::{CliError, Result};
use crate::store::{SessionRecord, Slot, Store};

/// Tokens are rotated this long before the broker would refuse the access token.
const REFRESH_MARGIN_MS: i64 = 60_000;
/// paw-client's keystore entry for a device key: the refresh proof is signed through
/// `DeviceKey`, loaded from an in-memory store holding the session key's seed.
const DEVICE_KEY_ENTRY: &str = "device-key";

/// The brokers of one deployment and the CA that pins them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub brokers: Vec<String>,
    pub ca: PathBuf,
}

/// The deployment to talk to: the command line's (`--broker`, `--ca`), else the stored one.
pub fn deployment(
    cli_brokers: &[String],
    cli_ca: Option<&Path>,
    stored: Option<(&[String], &Path)>,
) -> Result<Deployment> {
    let given: Vec<&str> = cli_brokers
        .iter()
        .map(|b| b.trim())
        .filter(|b| !b.is_empty())
        .collect();
    let brokers: Vec<String> = match (given.as_slice(), stored) {
        ([], Some((s, _))) => s.to_vec(),
        ([], None) => {
            return Err(CliError::usage(
                "which broker? pass --broker URL or set PAW_BROKER",
            ))
        }
        (g, _) => g.iter().map(|s| (*s).to_owned()).collect(),
    };
    let ca = match (cli_ca, stored) {
        (Some(c), _) => c.to_path_buf(),
        (None, Some((_, c))) => c.to_path_buf(),
        (None, None) => {
            return Err(CliError::usage(
                "which CA pins the broker? pass --ca FILE or set PAW_CA",
            ))
        }
    };
    let ca = std::path::absolute(&ca)
        .map_err(|e| CliError::usage(format!("--ca {}: {e}", ca.display())))?;
    let (first, rest) = brokers
        .split_first()
        .ok_or_else(|| CliError::usage("pass --broker URL or set PAW_BROKER"))?;
    let settings = Settings::validate(SettingsInput {
        broker_url: first.clone(),
        fallback_urls: rest.to_vec(),
        ca_path: ca.display().to_string(),
    })?;
    let brokers = settings.broker_urls();
    if let Some((stored_brokers, _)) = stored {
        if !brokers.iter().any(|b| stored_brokers.contains(b)) {
            return Err(CliError::not_signed_in(format!(
                "the stored sign-in belongs to {}; log out first or pass that --broker",
                stored_brokers.join(", ")
            )));
        }
    }
    Ok(Deployment { brokers, ca })
}

pub fn client(d: &Deployment) -> Result<BrokerClient> {
    Ok(BrokerClient::new(&d.brokers, &load_ca(&d.ca)?.der)?)
}

/// The broker's time, from one health answer (see paw-client's `BrokerClock`).
async fn synced(client: &BrokerClient) -> Result<BrokerClock> {
    let sent = Instant::now();
    let health = client.health().await?;
    let mut clock = BrokerClock::new();
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    clock.record(health.time_ms, sent, Instant::now(), wall);
    Ok(clock)
}

/// A stored sign-in in use.
pub struct Conn<'a> {
    store: &'a Store,
    rec: SessionRecord,
    client: BrokerClient,
    clock: BrokerClock,
    session: MachineSession,
}

impl<'a> Conn<'a> {
    /// The stored machine sign-in, refreshed first when due.
    pub async fn open(
        store: &'a Store,
        cli_brokers: &[String],
        cli_ca: Option<&Path>,
    ) -> Result<Self> {
        let mut rec: SessionRecord = store.load(Slot::MachineSession)?.ok_or_else(|| {
            CliError::not_signed_in("no sign-in is stored here; run `pawctl login` first")
        })?;
        let d = deployment(cli_brokers, cli_ca, Some((&rec.brokers, &rec.ca)))?;
        let client = client(&d)?;
        let clock = synced(&client).await?;
        refresh_if_due(store, &mut rec, &client, &clock).await?;
        let session = MachineSession::resume(client.clone(), rec.key()?, rec.tokens()).await?;
        Ok(Self {
            store,
            rec,
            client,
            clock,
            session,
        })
    }

    /// The session, its tokens rotated first when due (a long `--wait` outlives an access
    /// token).
    pub async fn session(&mut self) -> Result<&MachineSession> {
        if refresh_if_due(self.store, &mut self.rec, &self.client, &self.clock).await? {
            self.session =
                MachineSession::resume(self.client.clone(), self.rec.key()?, self.rec.tokens())
                    .await?;
        }
        Ok(&self.session)
    }

    pub fn record(&self) -> &SessionRecord {
        &self.rec
    }

    pub fn client(&self) -> &BrokerClient {
        &self.client
    }

    /// Notes a grant this sign-in requested, for `logout` to release.
    pub fn remember_grant(&mut self, id: &str) -> Result<()> {
        let _lock = self.store.lock()?;
        let mut stored: SessionRecord =
            match self.store.load::<SessionRecord>(Slot::MachineSession)? {
                Some(s) if s.key_seed == self.rec.key_seed => s,
                // Logged out or replaced meanwhile: nothing to add to.
                _ => return Ok(()),
            };
        if !stored.requested.iter().any(|g| g == id) {
            stored.requested.push(id.to_owned());
            self.store.save(Slot::MachineSession, &stored)?;
        }
        self.rec.requested = stored.requested.clone();
        Ok(())
    }
}

/// Rotates `rec`'s tokens when the access token expires within [`REFRESH_MARGIN_MS`] by the
/// broker's clock, and stores them. True when `rec` changed.
async fn refresh_if_due(
    store: &Store,
    rec: &mut SessionRecord,
    client: &BrokerClient,
    clock: &BrokerClock,
) -> Result<bool> {
    let now = clock
        .now_ms()
        .ok_or_else(|| CliError::store("the broker's clock is not known"))?;
    if rec.access_expires_at_ms.saturating_sub(now) > REFRESH_MARGIN_MS {
        return Ok(false);
    }
    let _lock = store.lock()?;
    if let Some(stored) = store.load::<SessionRecord>(Slot::MachineSession)? {
        // Another pawctl of this sign-in rotated them while we waited for the lock.
        if stored.key_seed == rec.key_seed && stored.refresh_token != rec.refresh_token {
            rec.take_tokens(stored.tokens());
            rec.requested = stored.requested.clone();
            if rec.access_expires_at_ms.saturating_sub(now) > REFRESH_MARGIN_MS {
                return Ok(true);
            }
        }
    }
    if now >= rec.session_expires_at_ms {
        return Err(CliError::not_signed_in(
            "this sign-in has reached its end; run `pawctl login` again",
        ));
    }
    let device = device_key(rec)?;
    let path = "/v1/token/refresh";
    let body = Secret::new(
        serde_json::to_vec(&RefreshRequest {
            refresh_token: rec.refresh_token.clone(),
        })
        .map_err(|e| CliError::store(format!("encoding the refresh: {:?}", e.classify())))?,
    );
    let proof = device.sign_request("POST", path, body.expose(), now, &rec.refresh_token)?;
    let tokens: TokenResponse = client
        .request_json(
            Method::POST,
            path,
            Some(body.expose().clone()),
            &[(device_proof::HEADER, proof.as_str())],
        )
        .await?;
    rec.take_tokens(tokens);
    store.save(Slot::MachineSession, rec)?;
    Ok(true)
}

/// The session key as paw-client's `DeviceKey`, which signs device proofs over any token
/// (here the refresh token), through an in-memory keystore that holds nothing else.
fn device_key(rec: &SessionRecord) -> Result<DeviceKey> {
    let seed = rec.key()?.seed();
    let mem = MemoryKeyStore::new();
    mem.set(DEVICE_KEY_ENTRY, seed.expose())?;
    let device = DeviceKey::load_or_create(&mem)?;
    // Had paw-client renamed its entry, it would have made a fresh random key beside ours.
    if mem.names() != [DEVICE_KEY_ENTRY] {
        return Err(CliError::store(
            "paw-client did not load the session key for the refresh",
        ));
    }
    Ok(device)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::exit::Exit;

    #[test]
    fn the_deployment_comes_from_the_command_line_or_the_store() {
        let dir = tempfile::tempdir().unwrap();
        // Each refusal comes before the CA file is read, so none is needed.
        let ca = dir.path().join("ca.pem");
        let e = deployment(&[], Some(&ca), None).unwrap_err();
        assert_eq!(e.exit, Exit::Usage);
        assert!(e.message.contains("--broker"), "{}", e.message);
        let e = deployment(&["https://b:8443".into()], None, None).unwrap_err();
        assert_eq!(e.exit, Exit::Usage);
        assert!(e.message.contains("--ca"), "{}", e.message);
        // Plain http is refused before anything is sent.
        let e = deployment(&["http://b:8443".into()], Some(&ca), None).unwrap_err();
        assert_eq!(e.exit, Exit::Usage);
    }

    #[test]
    fn a_sign_in_is_not_sent_to_another_deployment() {
        let dir = tempfile::tempdir().unwrap();
        let ca = write_ca(dir.path());
        let stored = vec!["https://a.example:8443".to_owned()];
        let e = deployment(
            &["https://evil.example:8443".into()],
            Some(&ca),
            Some((&stored, &ca)),
        )
        .unwrap_err();
        assert_eq!(e.exit, Exit::NotSignedIn);
        let d = deployment(&[], None, Some((&stored, &ca))).unwrap();
        assert_eq!(d.brokers, stored);
        let d = deployment(
            &[
                "https://b.example:8443".into(),
                "https://a.example:8443/".into(),
            ],
            None,
            Some((&stored, &ca)),
        )
        .unwrap();
        assert_eq!(
            d.brokers,
            ["https://b.example:8443", "https://a.example:8443"]
        );
    }

    /// A CA certificate made with openssl (the test machines have it; rcgen is not a
    /// dependency of this crate).
    fn write_ca(dir: &Path) -> PathBuf {
        let key = dir.join("ca.key");
        let pem = dir.join("ca.pem");
        let out = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "2", "-subj", "/CN=pawctl test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&pem)
            .output()
            .expect("openssl is needed to make a test CA");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        pem
    }
}
