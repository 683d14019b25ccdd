//! The workstation's device key: an ed25519 key that proves requests come from this machine.
//!
//! Rules:
//! - The 32-byte seed lives only in the [`KeyStore`] (the OS keyring), never in a file (H1).
//!   In memory it sits inside `ed25519_dalek::SigningKey`, which zeroizes on drop.
//! - A stored seed that is malformed is an error, not a reason to make a new key: a silent new
//!   identity would orphan the enrollment and hide tampering with the keyring.
//! - Every proof gets a fresh random nonce from the OS, so the broker can refuse replays.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, SECRET_KEY_LENGTH};
use paw_proto::device_proof::{message, ProofHeader};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroize;

use crate::keystore::KeyStore;
use crate::secret::Secret;
use crate::ClientError;

/// Keyring entry that holds the seed.
pub const DEVICE_KEY_ENTRY: &str = "device-key";

/// The device key, loaded from (or created in) the keystore.
pub struct DeviceKey {
    signing: SigningKey,
}

impl DeviceKey {
    /// Loads the device key from `store`, creating and storing a new one on first use.
    ///
    /// A new key is read back after writing, so a store that silently drops the write fails
    /// here rather than producing a key that is gone at the next start (and an enrollment that
    /// can never be used again).
    pub fn load_or_create(store: &dyn KeyStore) -> Result<Self, ClientError> {
        if let Some(seed) = store.get(DEVICE_KEY_ENTRY)? {
            return Self::from_seed(seed.expose());
        }
        let mut seed = Secret::new([0u8; SECRET_KEY_LENGTH]);
        OsRng
            .try_fill_bytes(seed.expose_mut())
            .map_err(|e| ClientError::Random(e.to_string()))?;
        store.set(DEVICE_KEY_ENTRY, seed.expose())?;
        match store.get(DEVICE_KEY_ENTRY)? {
            Some(back) if back.expose().as_slice() == seed.expose().as_slice() => {
                tracing::info!(store = store.describe(), "created a new device key");
                Self::from_seed(seed.expose())
            }
            _ => Err(ClientError::KeyringUnavailable(format!(
                "{} did not keep the new device key",
                store.describe()
            ))),
        }
    }

    fn from_seed(bytes: &[u8]) -> Result<Self, ClientError> {
        let mut seed = [0u8; SECRET_KEY_LENGTH];
        if bytes.len() != seed.len() {
            return Err(ClientError::KeyringUnavailable(
                "the stored device key is malformed; re-enroll this workstation".into(),
            ));
        }
        seed.copy_from_slice(bytes);
        let signing = SigningKey::from_bytes(&seed);
        seed.zeroize();
        Ok(Self { signing })
    }

    /// The public half, as registered with the broker at enrollment.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// Signs a checkpoint of the local audit trail (`head` of log `origin` at `time_ms`) for
    /// the broker to cosign (case D3). The same key as the request proofs: the broker accepts
    /// only checkpoints signed by the device key of the session that uploads them.
    pub(crate) fn sign_checkpoint(
        &self,
        origin: &str,
        head: paw_audit::Head,
        time_ms: i64,
    ) -> paw_audit::Checkpoint {
        paw_audit::Checkpoint::sign(&self.signing, origin, head, time_ms)
    }

    /// The value of the `paw-device-proof` header for one request.
    ///
    /// `broker_time_ms` is the broker's clock as estimated by [`crate::BrokerClock`], not the
    /// local clock (case B8). `token` is the bearer token the request presents (the access token,
    /// or the refresh token on a refresh), which binds the proof to it.
    pub fn sign_request(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        broker_time_ms: i64,
        token: &str,
    ) -> Result<String, ClientError> {
        sign_with(
            |m| self.signing.sign(m).to_bytes(),
            method,
            path_and_query,
            body,
            broker_time_ms,
            token,
        )
    }
}

/// The `paw-device-proof` header for one request, signed by `sign`: the device key's, or a
/// machine session's key (`crate::machine`).
pub(crate) fn sign_with(
    sign: impl FnOnce(&[u8]) -> [u8; 64],
    method: &str,
    path_and_query: &str,
    body: &[u8],
    broker_time_ms: i64,
    token: &str,
) -> Result<String, ClientError> {
    let mut nonce = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(|e| ClientError::Random(e.to_string()))?;
    let msg = message(method, path_and_query, body, broker_time_ms, &nonce, token);
    let signature = sign(&msg);
    Ok(ProofHeader {
        time_ms: broker_time_ms,
        nonce,
        signature,
    }
    .encode())
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let public: String = self
            .public_key()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        f.debug_struct("DeviceKey")
            .field("public_key", &public)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signature, VerifyingKey};

    use super::*;
    use crate::keystore::tests::FailingKeyStore;
    use crate::keystore::MemoryKeyStore;
    use crate::util::hex;

    #[test]
    fn h1_device_key_persists_only_in_keystore() {
        let store = MemoryKeyStore::new();
        let a = DeviceKey::load_or_create(&store).unwrap();
        let b = DeviceKey::load_or_create(&store).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(store.names(), vec![DEVICE_KEY_ENTRY.to_owned()]);
        let other = DeviceKey::load_or_create(&MemoryKeyStore::new()).unwrap();
        assert_ne!(a.public_key(), other.public_key(), "a new store, a new key");
    }

    #[test]
    fn h1_seed_not_in_debug() {
        let store = MemoryKeyStore::new();
        let key = DeviceKey::load_or_create(&store).unwrap();
        let seed = store.get(DEVICE_KEY_ENTRY).unwrap().unwrap();
        let shown = format!("{key:?} {key:#?}");
        assert!(shown.contains(&hex(&key.public_key())), "{shown}");
        assert!(!shown.contains(&hex(seed.expose())), "{shown}");
        assert!(!shown.contains(&format!("{:?}", seed.expose())), "{shown}");
    }

    #[test]
    fn device_proof_verifies_over_proto_message() {
        let key = DeviceKey::load_or_create(&MemoryKeyStore::new()).unwrap();
        let vk = VerifyingKey::from_bytes(&key.public_key()).unwrap();
        let t = 1_764_000_000_123;
        let header = key
            .sign_request("POST", "/v1/grants?x=1", b"{\"a\":1}", t, "tok")
            .unwrap();
        let p = ProofHeader::parse(&header).unwrap();
        assert_eq!(p.time_ms, t);
        let sig = Signature::from_bytes(&p.signature);
        let msg = message("POST", "/v1/grants?x=1", b"{\"a\":1}", t, &p.nonce, "tok");
        vk.verify_strict(&msg, &sig).unwrap();
        // Bound to every input: another token or body does not verify.
        let other = message("POST", "/v1/grants?x=1", b"{\"a\":2}", t, &p.nonce, "tok");
        assert!(vk.verify_strict(&other, &sig).is_err());
        let other = message("POST", "/v1/grants?x=1", b"{\"a\":1}", t, &p.nonce, "tok2");
        assert!(vk.verify_strict(&other, &sig).is_err());
    }

    #[test]
    fn device_proof_nonces_are_fresh() {
        let key = DeviceKey::load_or_create(&MemoryKeyStore::new()).unwrap();
        let a = ProofHeader::parse(&key.sign_request("GET", "/v1/me", b"", 1, "t").unwrap());
        let b = ProofHeader::parse(&key.sign_request("GET", "/v1/me", b"", 1, "t").unwrap());
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.signature, b.signature);
    }

    #[test]
    fn h2_device_key_fails_closed_without_keyring() {
        let e = DeviceKey::load_or_create(&FailingKeyStore).unwrap_err();
        assert_eq!(e.code(), paw_proto::ErrorCode::KeyringUnavailable);
    }

    #[test]
    fn malformed_stored_seed_is_an_error_not_a_new_key() {
        let store = MemoryKeyStore::new();
        store.set(DEVICE_KEY_ENTRY, &[1u8; 31]).unwrap();
        let e = DeviceKey::load_or_create(&store).unwrap_err();
        assert!(e.to_string().contains("malformed"), "{e}");
        assert_eq!(
            store.get(DEVICE_KEY_ENTRY).unwrap().unwrap().expose(),
            &[1u8; 31]
        );
    }
}
