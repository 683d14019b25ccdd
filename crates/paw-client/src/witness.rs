//! The broker as witness of the local audit trail, the workstation's side (case D3).
//!
//! A hash chain alone cannot show that its tail was cut: what is left still verifies. So before
//! every privileged action (after its `started` record, see [`crate::audit`]) the core signs a
//! checkpoint of the trail's head with the device key and uploads it, with every record since
//! the last checkpoint the broker cosigned, to `POST /v1/audit/checkpoint`. The broker cosigns
//! only a checkpoint that continues the last one it cosigned for this trail; the cosignature is
//! checked against the witness key pinned for the broker and kept in the trail.
//!
//! Rules:
//! - One round trip per action. The witness key is fetched once per broker
//!   (`GET /v1/audit/witness`) and pinned in `witness.json` next to the trail; a broker that
//!   later cosigns with another key is refused (`audit_witness_changed`), never re-pinned
//!   silently. TLS to the broker is already pinned to its CA, which is what makes the first
//!   fetch trustworthy.
//! - Fail closed: a refused checkpoint (`audit_diverged`), an unreachable broker, a bad
//!   cosignature or a cosignature that cannot be stored stops the action.
//! - Retry by construction (case E3): nothing is stored for a failed upload; the next action's
//!   checkpoint carries every record since the last cosigned one, so the broker sees them then.
//! - The trail's origin is derived from the device key, not stored in the trail: deleting or
//!   replacing the whole trail file yields the same origin, whose last cosigned head the broker
//!   still remembers.
//! - Checkpoint rounds run one at a time: two concurrent rounds would upload the same records
//!   and the second would not continue the first's new head.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use paw_audit::{Checkpoint, Cosignature, Head, Record};
use paw_proto::http::{
    AuditRecordDto, CheckpointCosigned, CheckpointDto, CheckpointUploadRequest, WitnessKey,
    MAX_CHECKPOINT_RECORDS,
};
use paw_proto::ErrorCode;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::util::{encode, hex};
use crate::{clock, BrokerClient, ClientError, Core};

const CHECKPOINT_PATH: &str = "/v1/audit/checkpoint";
const WITNESS_PATH: &str = "/v1/audit/witness";

/// The pinned witness keys and the checkpoint round in progress.
pub(crate) struct Witness {
    pin_file: PathBuf,
    /// Held for a whole checkpoint round (see the module doc).
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Broker URL → pinned key, read from the pin file at first use.
    pins: Option<Pins>,
    /// Witness key → the last checkpoint it cosigned, read from the trail at first use (the
    /// trail's own lookup reads every checkpoint, which grows with every action).
    last: HashMap<[u8; 32], Option<Checkpoint>>,
}

/// `witness.json`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pins {
    pub(crate) brokers: BTreeMap<String, Pin>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pin {
    /// ed25519 public key, base64url.
    pub(crate) public_key: String,
    /// `AB:CD:…`, as `pawd check` prints it, for a person to compare.
    pub(crate) fingerprint: String,
}

impl Pin {
    pub(crate) fn key(&self) -> Result<VerifyingKey, ClientError> {
        decode_key(&self.public_key).ok_or_else(|| {
            ClientError::Storage(format!(
                "the pinned witness key is malformed ({}); remove the entry to pin again",
                self.public_key
            ))
        })
    }
}

fn decode_key(b64: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = B64.decode(b64).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// Reads the pin file; a missing file is no pins. A file that does not parse is an error
/// rather than "no pins": re-pinning whatever the broker says would defeat the pin.
pub(crate) fn load_pins(path: &Path) -> Result<Pins, ClientError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            ClientError::Storage(format!(
                "{} is unreadable ({e}); fix or remove it",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Pins::default()),
        Err(e) => Err(ClientError::Storage(format!(
            "read {}: {e}",
            path.display()
        ))),
    }
}

/// Atomic replace, as for the settings: a crash leaves the old or the new pins.
fn save_pins(path: &Path, pins: &Pins) -> Result<(), ClientError> {
    let storage = |e: std::io::Error| ClientError::Storage(format!("{}: {e}", path.display()));
    let body = serde_json::to_vec_pretty(pins).map_err(|e| ClientError::Storage(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(storage)?;
    f.write_all(&body).map_err(storage)?;
    f.sync_all().map_err(storage)?;
    std::fs::rename(&tmp, path).map_err(storage)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(storage)?;
    }
    Ok(())
}

/// The trail's origin: fixed by the device key (see the module doc), in the broker's closed
/// alphabet.
pub(crate) fn origin_of(device_public_key: &[u8; 32]) -> String {
    format!("ws-{}", hex(device_public_key))
}

impl Witness {
    pub(crate) fn new(pin_file: PathBuf) -> Self {
        Self {
            pin_file,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    pub(crate) fn pin_file(&self) -> &Path {
        &self.pin_file
    }
}

fn checkpoint_dto(c: &Checkpoint) -> CheckpointDto {
    CheckpointDto {
        origin: c.origin.clone(),
        seq: c.head.seq,
        hash: hex(&c.head.hash),
        time_ms: c.time_ms,
        key: B64.encode(c.key),
        signature: B64.encode(c.signature),
    }
}

fn record_dto(r: &Record) -> AuditRecordDto {
    AuditRecordDto {
        seq: r.event.seq,
        time_ms: r.event.time_ms,
        actor: r.event.actor.clone(),
        action: r.event.action.clone(),
        subject: r.event.subject.clone(),
        outcome: r.event.outcome.as_str().to_owned(),
        detail: r.event.detail.clone(),
        prev_hash: hex(&r.prev_hash),
        hash: hex(&r.hash),
    }
}

/// The broker's `conflict` on a checkpoint is the witness saying the trail diverged.
fn diverged(e: ClientError) -> ClientError {
    match e {
        ClientError::Broker(api) if api.code == ErrorCode::Conflict => {
            ClientError::AuditDiverged(api.message)
        }
        other => other,
    }
}

impl Core {
    /// Has the broker cosign the local trail's head now: the step every privileged action
    /// takes after its `started` record. Public so the app (and the latency measurement) can
    /// run it on its own.
    pub async fn audit_checkpoint(&self) -> Result<(), ClientError> {
        self.witness_checkpoint().await
    }

    /// See the module doc. Errors: `audit_diverged` when the broker refuses the checkpoint,
    /// `audit_witness_changed` when it cosigns with an unpinned key, `audit_unavailable` when
    /// the trail cannot be read or the cosignature stored, and the usual broker errors.
    pub(crate) async fn witness_checkpoint(&self) -> Result<(), ClientError> {
        let started = Instant::now();
        let (client, url) = {
            let st = self.inner.state.read().await;
            match (&st.client, st.settings.broker_url()) {
                (Some(c), Some(u)) => (c.clone(), u.to_owned()),
                _ => return Err(ClientError::NotConfigured),
            }
        };
        let trail = &self.inner.audit;
        let mut st = trail.witness.state.lock().await;
        let witness = self.pinned_witness(&mut st, &client, &url).await?;
        let device = self.device().await?;
        let origin = origin_of(&device.public_key());
        let key = witness.to_bytes();
        let mut base = match st.last.get(&key) {
            Some(cached) => cached.clone(),
            None => trail
                .latest_cosigned(witness)
                .await
                .map_err(ClientError::AuditUnavailable)?,
        };
        st.last.insert(key, base.clone());
        let head = trail.head().await.map_err(ClientError::AuditUnavailable)?;
        let now = self.broker_now(&client).await?;
        loop {
            // Records since the last cosigned head, at most what one upload may carry. With no
            // cosigned checkpoint for this witness none are sent: the broker either starts from
            // this one, or (if it has cosigned this origin before) finds it does not continue.
            let (step, records) = match &base {
                None => (head, Vec::new()),
                Some(b) if b.head.seq >= head.seq => (head, Vec::new()),
                Some(b) => {
                    let cap = u32::try_from(MAX_CHECKPOINT_RECORDS).unwrap_or(u32::MAX);
                    let mut records = trail
                        .records(b.head.seq, cap)
                        .await
                        .map_err(ClientError::AuditUnavailable)?;
                    // Appended after `head` was read (another action's `started`): the next
                    // round covers them.
                    records.retain(|r| r.event.seq <= head.seq);
                    let step = match records.last() {
                        Some(last) if records.len() >= MAX_CHECKPOINT_RECORDS => Head {
                            seq: last.event.seq,
                            hash: last.hash,
                        },
                        _ => head,
                    };
                    (step, records)
                }
            };
            // The broker cosigns only strictly newer checkpoints; its clock, not ours (B8).
            let time_ms = base
                .as_ref()
                .map_or(now, |b| now.max(b.time_ms.saturating_add(1)));
            let checkpoint = device.sign_checkpoint(&origin, step, time_ms);
            let cosignature = self.upload(&url, &witness, &checkpoint, &records).await?;
            trail
                .add_cosignature(
                    checkpoint.clone(),
                    cosignature.to_bytes().to_vec(),
                    clock::local_wall_ms(),
                )
                .await
                .map_err(ClientError::AuditUnavailable)?;
            tracing::debug!(
                seq = step.seq,
                records = records.len(),
                elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "audit checkpoint cosigned"
            );
            base = Some(checkpoint);
            st.last.insert(key, base.clone());
            if step == head {
                return Ok(());
            }
        }
    }

    /// One upload; returns the cosignature once it verifies under the pinned key.
    async fn upload(
        &self,
        url: &str,
        witness: &VerifyingKey,
        checkpoint: &Checkpoint,
        records: &[Record],
    ) -> Result<Cosignature, ClientError> {
        let body = encode(&CheckpointUploadRequest {
            checkpoint: checkpoint_dto(checkpoint),
            records: records.iter().map(record_dto).collect(),
        })?;
        let answer: CheckpointCosigned = self
            .authed(Method::POST, CHECKPOINT_PATH, Some(body))
            .await
            .map_err(diverged)?;
        let pinned = B64.encode(witness.as_bytes());
        let changed = |found: String| {
            let file = self.inner.audit.witness.pin_file.display().to_string();
            tracing::error!(alert = true, broker = %url, %pinned, %found, "the broker's audit witness key changed");
            ClientError::WitnessChanged {
                pinned: pinned.clone(),
                found,
                file,
            }
        };
        if answer.witness_key != pinned {
            return Err(changed(answer.witness_key));
        }
        let cosignature = B64
            .decode(&answer.cosignature)
            .ok()
            .and_then(|b| Cosignature::from_bytes(&b).ok())
            .ok_or_else(|| {
                ClientError::Protocol("the checkpoint cosignature is malformed".into())
            })?;
        if cosignature.witness != witness.to_bytes() {
            return Err(changed(B64.encode(cosignature.witness)));
        }
        cosignature.verify(checkpoint, witness).map_err(|_| {
            ClientError::Protocol(
                "the broker's cosignature does not verify for the checkpoint it was sent".into(),
            )
        })?;
        Ok(cosignature)
    }

    /// The witness key pinned for `url`, fetched and pinned at the first use of that broker.
    async fn pinned_witness(
        &self,
        st: &mut State,
        client: &BrokerClient,
        url: &str,
    ) -> Result<VerifyingKey, ClientError> {
        let pin_file = &self.inner.audit.witness.pin_file;
        if st.pins.is_none() {
            st.pins = Some(load_pins(pin_file)?);
        }
        if let Some(pin) = st.pins.as_ref().and_then(|p| p.brokers.get(url)) {
            return pin.key();
        }
        let answer: WitnessKey = client.get_json(WITNESS_PATH).await?;
        let key = decode_key(&answer.public_key)
            .ok_or_else(|| ClientError::Protocol("the broker's witness key is malformed".into()))?;
        let fingerprint = crate::settings::fingerprint(key.as_bytes());
        if fingerprint != answer.fingerprint {
            return Err(ClientError::Protocol(
                "the broker's witness key does not match its fingerprint".into(),
            ));
        }
        let mut pins = st.pins.clone().unwrap_or_default();
        pins.brokers.insert(
            url.to_owned(),
            Pin {
                public_key: answer.public_key,
                fingerprint: fingerprint.clone(),
            },
        );
        save_pins(pin_file, &pins)?;
        st.pins = Some(pins);
        tracing::info!(broker = %url, %fingerprint, "pinned the broker's audit witness key");
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::paths::PIN_FILE;

    #[test]
    fn origins_are_in_the_brokers_alphabet_and_fixed_by_the_device_key() {
        let o = origin_of(&[0xab; 32]);
        assert_eq!(o.len(), 67);
        assert!(o
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')));
        assert_eq!(o, origin_of(&[0xab; 32]));
        assert_ne!(o, origin_of(&[0xac; 32]));
    }

    #[test]
    fn pins_round_trip_and_a_damaged_file_is_an_error_not_an_empty_pin_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PIN_FILE);
        assert!(load_pins(&path).unwrap().brokers.is_empty());
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
        let mut pins = Pins::default();
        pins.brokers.insert(
            "https://b:1".into(),
            Pin {
                public_key: B64.encode(key.as_bytes()),
                fingerprint: crate::settings::fingerprint(key.as_bytes()),
            },
        );
        save_pins(&path, &pins).unwrap();
        let back = load_pins(&path).unwrap();
        assert_eq!(back.brokers["https://b:1"].key().unwrap(), key);
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(
            load_pins(&path).unwrap_err().code(),
            ErrorCode::StorageUnavailable
        );
    }

    #[test]
    fn a_witness_conflict_is_audit_diverged_and_other_refusals_keep_their_code() {
        let e = diverged(ClientError::Broker(paw_proto::ApiError::new(
            ErrorCode::Conflict,
            "behind",
        )));
        assert_eq!(e.code(), ErrorCode::AuditDiverged);
        assert!(e.to_string().contains("behind"));
        let e = diverged(ClientError::Unreachable("down".into()));
        assert_eq!(e.code(), ErrorCode::BrokerUnreachable);
    }
}
