//! [`VirtualAuthenticator`]: the INSECURE virtual key behind the [`Authenticator`] trait, with
//! any number of credentials and a saved state the core keeps in the OS keyring.

use std::sync::{Mutex, MutexGuard};

use zeroize::Zeroizing;

use sha2::{Digest, Sha256};

use crate::attestation::VIRTUAL_KEY_AAGUID;
use crate::pin::{with_pin, Touching};
use crate::{
    Assertion, Authenticator, FailureKnobs, FidoError, KeyPrompt, Registration, UserEntity,
    VirtualKey, VIRTUAL_KEY_LABEL,
};

/// PIN attempts a key allows before blocking itself for good (CTAP2's usual 8).
const PIN_RETRIES: u32 = 8;

/// Start of the saved state: format name and version.
const MAGIC: &[u8] = b"paw-vk-state-v1\0";
/// A sanity bound on how many credentials a saved state may hold.
const MAX_CREDENTIALS: usize = 64;
const MAX_ID_LEN: usize = 255;

/// A software authenticator holding several virtual-key credentials. **INSECURE** — see
/// [`VIRTUAL_KEY_LABEL`]. `make_credential` always creates a new credential.
#[derive(Debug, Default)]
pub struct VirtualAuthenticator {
    keys: Mutex<Vec<VirtualKey>>,
    /// Applied to every credential, existing and new (tests of the negative paths).
    knobs: Mutex<FailureKnobs>,
    /// A PIN to ask for before every operation, like a real key with a PIN set, so that the
    /// PIN prompt is exercised end to end. In memory only: a restart forgets it.
    pin: Mutex<Option<VirtualPin>>,
}

struct VirtualPin {
    pin: Zeroizing<String>,
    retries: u32,
}

impl std::fmt::Debug for VirtualPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualPin")
            .field("pin", &"<redacted>")
            .field("retries", &self.retries)
            .finish()
    }
}

impl VirtualAuthenticator {
    /// An authenticator with no credential yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores an authenticator from [`Self::export_state`]'s bytes. Malformed state is an
    /// error, never a silent empty authenticator (which would orphan the registered keys).
    pub fn from_state(bytes: &[u8]) -> Result<Self, FidoError> {
        let mut r = Reader(bytes);
        if r.take(MAGIC.len())? != MAGIC {
            return Err(FidoError::State("unknown format".into()));
        }
        let count = usize::from(r.u16()?);
        if count > MAX_CREDENTIALS {
            return Err(FidoError::State("too many credentials".into()));
        }
        let mut keys = Vec::with_capacity(count);
        for _ in 0..count {
            let scalar = r.take(32)?;
            let id_len = usize::from(r.u16()?);
            if id_len == 0 || id_len > MAX_ID_LEN {
                return Err(FidoError::State("bad credential id length".into()));
            }
            let id = r.take(id_len)?.to_vec();
            let counter = r.u32()?;
            keys.push(VirtualKey::from_parts(scalar, id, counter)?);
        }
        if !r.0.is_empty() {
            return Err(FidoError::State("trailing bytes".into()));
        }
        Ok(Self {
            keys: Mutex::new(keys),
            ..Self::default()
        })
    }

    /// Every credential's private key, id and counter. Secret: keep it in the OS keyring only.
    pub fn export_state(&self) -> Result<Zeroizing<Vec<u8>>, FidoError> {
        let keys = self.keys()?;
        let mut out = Zeroizing::new(Vec::with_capacity(MAGIC.len() + 2 + keys.len() * 72));
        out.extend_from_slice(MAGIC);
        let count = u16::try_from(keys.len())
            .map_err(|_| FidoError::State("too many credentials".into()))?;
        out.extend_from_slice(&count.to_be_bytes());
        for k in keys.iter() {
            let (scalar, id, counter) = k.export_parts();
            out.extend_from_slice(scalar.as_ref());
            let id_len =
                u16::try_from(id.len()).map_err(|_| FidoError::State("credential id".into()))?;
            out.extend_from_slice(&id_len.to_be_bytes());
            out.extend_from_slice(id);
            out.extend_from_slice(&counter.to_be_bytes());
        }
        Ok(out)
    }

    /// How many credentials it holds.
    pub fn credential_count(&self) -> Result<usize, FidoError> {
        Ok(self.keys()?.len())
    }

    /// Sets the failure knobs for every credential, now and later.
    pub fn set_knobs(&self, knobs: FailureKnobs) -> Result<(), FidoError> {
        for k in self.keys()?.iter_mut() {
            k.set_knobs(knobs.clone());
        }
        *self
            .knobs
            .lock()
            .map_err(|_| FidoError::Unavailable("lock poisoned".into()))? = knobs;
        Ok(())
    }

    /// Makes every later operation ask for `pin` first (`None`: no PIN, as before).
    pub fn set_pin(&self, pin: Option<&str>) -> Result<(), FidoError> {
        *self.pin_slot()? = pin.map(|p| VirtualPin {
            pin: Zeroizing::new(p.to_owned()),
            retries: PIN_RETRIES,
        });
        Ok(())
    }

    fn pin_slot(&self) -> Result<MutexGuard<'_, Option<VirtualPin>>, FidoError> {
        self.pin
            .lock()
            .map_err(|_| FidoError::Unavailable("lock poisoned".into()))
    }

    /// User verification as a key with a PIN does it: nothing without a PIN; with one, the
    /// PIN conversation, wrong answers counting down to a blocked key. Then the touch.
    fn verify_user<'p>(&self, prompt: &'p dyn KeyPrompt) -> Result<Touching<'p>, FidoError> {
        let retries = self.pin_slot()?.as_ref().map(|p| p.retries);
        if let Some(retries) = retries {
            if retries == 0 {
                return Err(FidoError::PinBlocked);
            }
            with_pin(prompt, Some(retries), |given| {
                let mut slot = self.pin_slot()?;
                let p = slot.as_mut().ok_or(FidoError::PinNotSet)?;
                if p.retries == 0 {
                    return Err(FidoError::PinBlocked);
                }
                if given == p.pin.as_str() {
                    p.retries = PIN_RETRIES;
                    return Ok(());
                }
                p.retries -= 1;
                match p.retries {
                    0 => Err(FidoError::PinBlocked),
                    n => Err(FidoError::PinInvalid { retries: Some(n) }),
                }
            })?;
        }
        Ok(Touching::start(prompt))
    }

    fn keys(&self) -> Result<MutexGuard<'_, Vec<VirtualKey>>, FidoError> {
        self.keys
            .lock()
            .map_err(|_| FidoError::Unavailable("lock poisoned".into()))
    }
}

impl Authenticator for VirtualAuthenticator {
    fn make_credential(
        &self,
        rp_id: &str,
        _user: &UserEntity,
        client_data_json: &[u8],
        prompt: &dyn KeyPrompt,
    ) -> Result<Registration, FidoError> {
        let _touch = self.verify_user(prompt)?;
        let client_data_hash: &[u8; 32] = &Sha256::digest(client_data_json).into();
        let mut key = VirtualKey::generate()?;
        key.set_knobs(
            self.knobs
                .lock()
                .map_err(|_| FidoError::Unavailable("lock poisoned".into()))?
                .clone(),
        );
        let attestation_object =
            key.make_credential(rp_id, client_data_hash, VIRTUAL_KEY_AAGUID)?;
        let credential_id = key.credential_id().to_vec();
        let mut keys = self.keys()?;
        if keys.len() >= MAX_CREDENTIALS {
            return Err(FidoError::State("the virtual key is full".into()));
        }
        keys.push(key);
        Ok(Registration {
            credential_id,
            attestation_object,
        })
    }

    fn get_assertion(
        &self,
        rp_id: &str,
        client_data_json: &[u8],
        allow_credentials: &[Vec<u8>],
        prompt: &dyn KeyPrompt,
    ) -> Result<Assertion, FidoError> {
        let _touch = self.verify_user(prompt)?;
        let client_data_hash: &[u8; 32] = &Sha256::digest(client_data_json).into();
        let mut keys = self.keys()?;
        let key = keys
            .iter_mut()
            .find(|k| allow_credentials.iter().any(|a| a == k.credential_id()))
            .ok_or(FidoError::NoCredential)?;
        key.get_assertion(rp_id, client_data_hash)
    }

    fn is_virtual(&self) -> bool {
        true
    }

    fn label(&self) -> String {
        VIRTUAL_KEY_LABEL.to_owned()
    }

    fn persistent_state(&self) -> Result<Option<Zeroizing<Vec<u8>>>, FidoError> {
        self.export_state().map(Some)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FidoError> {
        if self.0.len() < n {
            return Err(FidoError::State("truncated".into()));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u16(&mut self) -> Result<u16, FidoError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, FidoError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::{Signature, VerifyingKey};

    use super::*;
    use crate::pin::testing::Script;
    use crate::NoPrompt;

    const CDJ: &[u8] = b"{\"type\":\"webauthn.get\"}";
    const NP: &NoPrompt = &NoPrompt;

    fn user() -> UserEntity {
        UserEntity::default()
    }

    fn verifies(a: &VirtualAuthenticator, idx: usize, asr: &Assertion) -> bool {
        let keys = a.keys().unwrap();
        let vk: VerifyingKey = *keys[idx].verifying_key();
        let mut msg = asr.authenticator_data.clone();
        msg.extend_from_slice(&Sha256::digest(CDJ));
        let sig = Signature::from_der(&asr.signature).unwrap();
        vk.verify(&msg, &sig).is_ok()
    }

    #[test]
    fn make_credential_always_creates_a_new_credential() {
        let a = VirtualAuthenticator::new();
        let r1 = a.make_credential("localhost", &user(), CDJ, NP).unwrap();
        let r2 = a.make_credential("localhost", &user(), CDJ, NP).unwrap();
        assert_ne!(r1.credential_id, r2.credential_id);
        assert_eq!(a.credential_count().unwrap(), 2);
        assert!(a.is_virtual());
        assert!(a.label().contains("INSECURE"));
    }

    #[test]
    fn get_assertion_picks_an_allowed_credential_or_fails() {
        let a = VirtualAuthenticator::new();
        let r1 = a.make_credential("localhost", &user(), CDJ, NP).unwrap();
        let r2 = a.make_credential("localhost", &user(), CDJ, NP).unwrap();
        let asr = a
            .get_assertion(
                "localhost",
                CDJ,
                &[vec![1, 2, 3], r2.credential_id.clone()],
                NP,
            )
            .unwrap();
        assert_eq!(asr.credential_id, r2.credential_id);
        assert!(verifies(&a, 1, &asr));
        assert_eq!(
            &asr.authenticator_data[..32],
            Sha256::digest(b"localhost").as_slice()
        );
        let asr = a
            .get_assertion(
                "localhost",
                CDJ,
                std::slice::from_ref(&r1.credential_id),
                NP,
            )
            .unwrap();
        assert_eq!(asr.credential_id, r1.credential_id);
        assert_eq!(
            a.get_assertion("localhost", CDJ, &[vec![9; 32]], NP),
            Err(FidoError::NoCredential)
        );
        assert_eq!(
            a.get_assertion("localhost", CDJ, &[], NP),
            Err(FidoError::NoCredential)
        );
    }

    #[test]
    fn state_round_trips_keys_and_counters() {
        let a = VirtualAuthenticator::new();
        let r1 = a.make_credential("localhost", &user(), CDJ, NP).unwrap();
        let allow = vec![r1.credential_id.clone()];
        for _ in 0..3 {
            a.get_assertion("localhost", CDJ, &allow, NP).unwrap();
        }
        a.make_credential("localhost", &user(), CDJ, NP).unwrap();
        let state = a.persistent_state().unwrap().unwrap();
        let b = VirtualAuthenticator::from_state(&state).unwrap();
        assert_eq!(b.credential_count().unwrap(), 2);
        let asr = b.get_assertion("localhost", CDJ, &allow, NP).unwrap();
        // The counter went on from where it was: 3 assertions before, this is the 4th.
        assert_eq!(asr.authenticator_data[33..37], 4u32.to_be_bytes());
        assert!(verifies(&a, 0, &asr), "same private key after restore");
        assert_eq!(
            VirtualAuthenticator::new()
                .export_state()
                .map(|s| VirtualAuthenticator::from_state(&s)
                    .unwrap()
                    .credential_count()
                    .unwrap())
                .unwrap(),
            0
        );
    }

    #[test]
    fn malformed_state_is_an_error() {
        let a = VirtualAuthenticator::new();
        a.make_credential("localhost", &user(), CDJ, NP).unwrap();
        let state = a.export_state().unwrap();
        for bad in [
            &b""[..],
            &b"garbage"[..],
            &state[..state.len() - 1],
            &[state.as_slice(), &[0]].concat()[..],
        ] {
            assert!(matches!(
                VirtualAuthenticator::from_state(bad),
                Err(FidoError::State(_))
            ));
        }
    }

    #[test]
    fn debug_and_errors_never_show_the_state() {
        let a = VirtualAuthenticator::new();
        a.make_credential("localhost", &user(), CDJ, NP).unwrap();
        let state = a.export_state().unwrap();
        let scalar = &state[MAGIC.len() + 2..MAGIC.len() + 2 + 32];
        let hex: String = scalar.iter().map(|b| format!("{b:02x}")).collect();
        let shown = format!("{a:?}");
        assert!(!shown.contains(&hex), "{shown}");
        assert!(!shown.contains(&format!("{scalar:?}")), "{shown}");
    }

    #[test]
    fn knobs_apply_to_existing_and_new_credentials() {
        let a = VirtualAuthenticator::new();
        let r1 = a.make_credential("localhost", &user(), CDJ, NP).unwrap();
        a.set_knobs(FailureKnobs {
            no_user_verification: true,
            ..FailureKnobs::default()
        })
        .unwrap();
        let r2 = a.make_credential("localhost", &user(), CDJ, NP).unwrap();
        for id in [r1.credential_id, r2.credential_id] {
            let asr = a.get_assertion("localhost", CDJ, &[id], NP).unwrap();
            assert_eq!(asr.authenticator_data[32] & crate::flags::UV, 0);
        }
    }

    #[test]
    fn with_a_pin_set_it_asks_first_and_counts_wrong_answers_down_to_blocked() {
        let a = VirtualAuthenticator::new();
        let r = a.make_credential("localhost", &user(), CDJ, NP).unwrap();
        let allow = [r.credential_id];
        a.set_pin(Some("4321")).unwrap();
        // No PIN available: the operation does not happen.
        assert_eq!(
            a.get_assertion("localhost", CDJ, &allow, NP),
            Err(FidoError::Cancelled)
        );
        let s = Script::new(&[Some("0000"), Some("4321")]);
        a.get_assertion("localhost", CDJ, &allow, &s).unwrap();
        assert_eq!(s.asked.lock().unwrap()[1].retries, Some(7));
        assert_eq!(*s.touches.lock().unwrap(), [true, false]);
        // A right PIN resets the count; eight wrong ones block the key for good.
        let wrong = Script::new(&[Some("1"); 8]);
        for _ in 0..2 {
            assert!(matches!(
                a.get_assertion("localhost", CDJ, &allow, &wrong),
                Err(FidoError::PinInvalid { .. })
            ));
        }
        assert_eq!(
            a.get_assertion("localhost", CDJ, &allow, &wrong),
            Err(FidoError::PinBlocked)
        );
        let right = Script::new(&[Some("4321")]);
        assert_eq!(
            a.get_assertion("localhost", CDJ, &allow, &right),
            Err(FidoError::PinBlocked)
        );
        assert!(right.asked.lock().unwrap().is_empty());
    }
}
