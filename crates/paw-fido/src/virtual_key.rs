//! The virtual security key: INSECURE, for demos and tests only.

use std::fmt;

use ciborium::Value;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::{flags, Assertion, FidoError, VIRTUAL_KEY_LABEL};

/// Long enough that ids never collide and never look like a guessable sequence.
const CREDENTIAL_ID_LEN: usize = 32;
/// Rejection-sampling tries for a private scalar; each fails with probability ~2^-32.
const KEYGEN_TRIES: usize = 4;

/// Private key material. `Debug` never shows it; the inner `SigningKey` zeroizes its scalar
/// on drop (RustCrypto's `ZeroizeOnDrop`), so neither does a crash dump of a freed key.
struct KeyMaterial(SigningKey);

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

// Holds only a `SigningKey`, which is itself `ZeroizeOnDrop`.
impl ZeroizeOnDrop for KeyMaterial {}

/// Ways to make the virtual key misbehave, so tests can show the relying party refuses each.
/// Each knob changes exactly the field it names and nothing else; all off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureKnobs {
    /// Clear the UP (user present) flag.
    pub no_user_presence: bool,
    /// Clear the UV (user verified) flag.
    pub no_user_verification: bool,
    /// Report one less than the last reported counter (never below 1) instead of a new,
    /// higher one, as a cloned key would; the key's own counter does not advance.
    pub counter_regression: bool,
    /// Put SHA-256 of this RP ID in rpIdHash instead of the one asked for.
    pub wrong_rp_id: Option<String>,
    /// Set the BE (backup eligible, i.e. syncable) flag.
    pub backup_eligible: bool,
    /// Set the BS (backed up) flag.
    pub backed_up: bool,
}

/// A software security key. **INSECURE** — see [`VIRTUAL_KEY_LABEL`]. Its private key is in
/// process memory and it asserts user presence and verification without asking anyone.
/// One credential per key, which is all the demo and the tests need.
#[derive(Debug)]
pub struct VirtualKey {
    key: KeyMaterial,
    credential_id: Vec<u8>,
    counter: u32,
    knobs: FailureKnobs,
}

impl VirtualKey {
    pub const LABEL: &'static str = VIRTUAL_KEY_LABEL;

    /// A fresh key pair and credential id from the OS random source, counter at 0.
    pub fn generate() -> Result<Self, FidoError> {
        let mut credential_id = vec![0u8; CREDENTIAL_ID_LEN];
        OsRng
            .try_fill_bytes(&mut credential_id)
            .map_err(|_| FidoError::Random)?;
        Ok(VirtualKey {
            key: KeyMaterial(random_signing_key()?),
            credential_id,
            counter: 0,
            knobs: FailureKnobs::default(),
        })
    }

    /// The private scalar, credential id and counter, for [`crate::VirtualAuthenticator`]'s
    /// saved state. The scalar comes back in a zeroizing buffer.
    pub(crate) fn export_parts(&self) -> (Zeroizing<[u8; 32]>, &[u8], u32) {
        let mut scalar = Zeroizing::new([0u8; 32]);
        let mut bytes = self.key.0.to_bytes();
        scalar.copy_from_slice(&bytes);
        bytes.as_mut_slice().zeroize();
        (scalar, &self.credential_id, self.counter)
    }

    /// The inverse of [`Self::export_parts`]; knobs start off.
    pub(crate) fn from_parts(
        scalar: &[u8],
        credential_id: Vec<u8>,
        counter: u32,
    ) -> Result<Self, FidoError> {
        let key = SigningKey::from_slice(scalar)
            .map_err(|_| FidoError::State("a private key is not a P-256 scalar".into()))?;
        Ok(VirtualKey {
            key: KeyMaterial(key),
            credential_id,
            counter,
            knobs: FailureKnobs::default(),
        })
    }

    pub fn credential_id(&self) -> &[u8] {
        &self.credential_id
    }

    /// The last counter value this key reported (0 before its first assertion).
    pub fn sign_count(&self) -> u32 {
        self.counter
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        self.key.0.verifying_key()
    }

    pub fn knobs(&self) -> &FailureKnobs {
        &self.knobs
    }

    pub fn set_knobs(&mut self, knobs: FailureKnobs) {
        self.knobs = knobs;
    }

    /// The public key as a COSE_Key (RFC 9053): EC2, ES256, P-256, with x and y, in CTAP2
    /// canonical key order (1, 3, -1, -2, -3).
    pub fn cose_public_key(&self) -> Result<Vec<u8>, FidoError> {
        let point = self.verifying_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(FidoError::CoseEncoding(
                "public key has no affine coordinates".into(),
            ));
        };
        let map = Value::Map(vec![
            (Value::Integer(1.into()), Value::Integer(2.into())), // kty: EC2
            (Value::Integer(3.into()), Value::Integer((-7).into())), // alg: ES256
            (Value::Integer((-1).into()), Value::Integer(1.into())), // crv: P-256
            (Value::Integer((-2).into()), Value::Bytes(x.to_vec())),
            (Value::Integer((-3).into()), Value::Bytes(y.to_vec())),
        ]);
        let mut out = Vec::with_capacity(77);
        ciborium::into_writer(&map, &mut out)
            .map_err(|e| FidoError::CoseEncoding(e.to_string()))?;
        Ok(out)
    }

    /// Registers this key's credential with `rp_id` (CTAP2 authenticatorMakeCredential) and
    /// returns the CBOR attestationObject: packed attestation signed by the INSECURE test
    /// attestation leaf of [`crate::attestation`], with `aaguid` in the attested credential
    /// data. The knobs apply to the flags and the rpIdHash as for assertions; the counter is
    /// the key's current counter.
    pub fn make_credential(
        &mut self,
        rp_id: &str,
        client_data_hash: &[u8; 32],
        aaguid: [u8; 16],
    ) -> Result<Vec<u8>, FidoError> {
        let leaf = crate::attestation::leaf()?;
        let mut auth_data = Vec::with_capacity(200);
        auth_data.extend_from_slice(&Sha256::digest(
            self.knobs.wrong_rp_id.as_deref().unwrap_or(rp_id),
        ));
        auth_data.push(self.flag_byte() | flags::AT);
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        auth_data.extend_from_slice(&aaguid);
        let id_len = u16::try_from(self.credential_id.len())
            .map_err(|_| FidoError::CoseEncoding("credential id too long".into()))?;
        auth_data.extend_from_slice(&id_len.to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&self.cose_public_key()?);

        let mut signed = auth_data.clone();
        signed.extend_from_slice(client_data_hash);
        let sig: Signature = leaf.key.try_sign(&signed).map_err(|_| FidoError::Signing)?;
        let att_stmt = Value::Map(vec![
            (Value::Text("alg".into()), Value::Integer((-7).into())),
            (
                Value::Text("sig".into()),
                Value::Bytes(sig.to_der().as_bytes().to_vec()),
            ),
            (
                Value::Text("x5c".into()),
                Value::Array(vec![Value::Bytes(leaf.cert_der)]),
            ),
        ]);
        let object = Value::Map(vec![
            (Value::Text("fmt".into()), Value::Text("packed".into())),
            (Value::Text("attStmt".into()), att_stmt),
            (Value::Text("authData".into()), Value::Bytes(auth_data)),
        ]);
        let mut out = Vec::new();
        ciborium::into_writer(&object, &mut out)
            .map_err(|e| FidoError::Attestation(e.to_string()))?;
        Ok(out)
    }

    fn flag_byte(&self) -> u8 {
        let mut flag_byte = flags::UP | flags::UV;
        if self.knobs.no_user_presence {
            flag_byte &= !flags::UP;
        }
        if self.knobs.no_user_verification {
            flag_byte &= !flags::UV;
        }
        if self.knobs.backup_eligible {
            flag_byte |= flags::BE;
        }
        if self.knobs.backed_up {
            flag_byte |= flags::BS;
        }
        flag_byte
    }

    /// Signs an assertion for `rp_id`. Takes the clientDataHash, as a CTAP2 authenticator does:
    /// the caller (the platform side) builds clientDataJSON and hashes it.
    ///
    /// The counter advances only when the assertion is produced, so a failed call leaves the
    /// key as it was.
    pub fn get_assertion(
        &mut self,
        rp_id: &str,
        client_data_hash: &[u8; 32],
    ) -> Result<Assertion, FidoError> {
        let counter = self.next_counter()?;

        let rp_id_hash = Sha256::digest(self.knobs.wrong_rp_id.as_deref().unwrap_or(rp_id));
        let flag_byte = self.flag_byte();

        let mut authenticator_data = Vec::with_capacity(37);
        authenticator_data.extend_from_slice(&rp_id_hash);
        authenticator_data.push(flag_byte);
        authenticator_data.extend_from_slice(&counter.to_be_bytes());

        let mut signed = Vec::with_capacity(authenticator_data.len() + 32);
        signed.extend_from_slice(&authenticator_data);
        signed.extend_from_slice(client_data_hash);
        let signature: Signature = self
            .key
            .0
            .try_sign(&signed)
            .map_err(|_| FidoError::Signing)?;

        if !self.knobs.counter_regression {
            self.counter = counter;
        }
        Ok(Assertion {
            credential_id: self.credential_id.clone(),
            authenticator_data,
            signature: signature.to_der().as_bytes().to_vec(),
        })
    }

    fn next_counter(&self) -> Result<u32, FidoError> {
        if self.knobs.counter_regression {
            return match self.counter {
                0 => Err(FidoError::NoCounterToRegress),
                n => Ok((n - 1).max(1)),
            };
        }
        self.counter
            .checked_add(1)
            .ok_or(FidoError::CounterExhausted)
    }
}

/// Draws the private scalar from OS randomness with a fallible call: `SigningKey::random`
/// would panic if the OS source failed, and key generation should fail closed instead.
fn random_signing_key() -> Result<SigningKey, FidoError> {
    for _ in 0..KEYGEN_TRIES {
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng
            .try_fill_bytes(bytes.as_mut())
            .map_err(|_| FidoError::Random)?;
        // Rejects zero and values ≥ the group order, which is what makes this uniform.
        if let Ok(key) = SigningKey::from_slice(bytes.as_ref()) {
            return Ok(key);
        }
    }
    Err(FidoError::KeyGeneration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;
    use p256::EncodedPoint;

    const RP: &str = "paw.example";
    const CDH: [u8; 32] = [0x42; 32];

    fn expected_auth_data(rp_id: &str, flag_byte: u8, counter: u32) -> Vec<u8> {
        let mut v = Sha256::digest(rp_id).to_vec();
        v.push(flag_byte);
        v.extend_from_slice(&counter.to_be_bytes());
        v
    }

    fn verifies(key: &VerifyingKey, a: &Assertion, cdh: &[u8; 32]) -> bool {
        let mut msg = a.authenticator_data.clone();
        msg.extend_from_slice(cdh);
        let Ok(sig) = Signature::from_der(&a.signature) else {
            return false;
        };
        key.verify(&msg, &sig).is_ok()
    }

    #[test]
    fn label_says_insecure() {
        assert_eq!(
            VirtualKey::LABEL,
            "Virtual security key — INSECURE, for demos and tests"
        );
        assert!(VIRTUAL_KEY_LABEL.contains("INSECURE"));
    }

    #[test]
    fn default_assertion_has_up_uv_and_counter_one() {
        let mut key = VirtualKey::generate().unwrap();
        let a = key.get_assertion(RP, &CDH).unwrap();
        assert_eq!(
            a.authenticator_data,
            expected_auth_data(RP, flags::UP | flags::UV, 1)
        );
        assert_eq!(a.authenticator_data.len(), 37);
        assert_eq!(a.credential_id, key.credential_id());
    }

    #[test]
    fn signature_verifies_over_exact_bytes_with_p256() {
        let mut key = VirtualKey::generate().unwrap();
        let client_data_json =
            br#"{"type":"webauthn.get","challenge":"abc","origin":"https://paw.example"}"#;
        let cdh: [u8; 32] = Sha256::digest(client_data_json).into();
        let a = key.get_assertion(RP, &cdh).unwrap();
        assert!(verifies(key.verifying_key(), &a, &cdh));

        // Any other clientDataHash, authenticatorData byte or key fails.
        let mut other_cdh = cdh;
        other_cdh[0] ^= 1;
        assert!(!verifies(key.verifying_key(), &a, &other_cdh));
        for i in 0..a.authenticator_data.len() {
            let mut changed = a.clone();
            changed.authenticator_data[i] ^= 1;
            assert!(!verifies(key.verifying_key(), &changed, &cdh), "byte {i}");
        }
        let stranger = VirtualKey::generate().unwrap();
        assert!(!verifies(stranger.verifying_key(), &a, &cdh));
    }

    #[test]
    fn counter_increments_per_assertion() {
        let mut key = VirtualKey::generate().unwrap();
        assert_eq!(key.sign_count(), 0);
        for n in 1..=3u32 {
            let a = key.get_assertion(RP, &CDH).unwrap();
            assert_eq!(a.authenticator_data[33..], n.to_be_bytes());
            assert_eq!(key.sign_count(), n);
        }
    }

    #[test]
    fn counter_never_wraps() {
        let mut key = VirtualKey::generate().unwrap();
        key.counter = u32::MAX;
        assert_eq!(
            key.get_assertion(RP, &CDH),
            Err(FidoError::CounterExhausted)
        );
        assert_eq!(key.sign_count(), u32::MAX);
    }

    /// Runs `knobs` after two normal assertions and checks the third against `want`.
    fn with_knobs(knobs: FailureKnobs, want: Vec<u8>) {
        let mut key = VirtualKey::generate().unwrap();
        key.get_assertion(RP, &CDH).unwrap();
        key.get_assertion(RP, &CDH).unwrap();
        key.set_knobs(knobs);
        let a = key.get_assertion(RP, &CDH).unwrap();
        assert_eq!(a.authenticator_data, want);
        assert!(
            verifies(key.verifying_key(), &a, &CDH),
            "still a valid signature"
        );
    }

    #[test]
    fn knob_no_user_presence_clears_up_only() {
        let knobs = FailureKnobs {
            no_user_presence: true,
            ..Default::default()
        };
        with_knobs(knobs, expected_auth_data(RP, flags::UV, 3));
    }

    #[test]
    fn knob_no_user_verification_clears_uv_only() {
        let knobs = FailureKnobs {
            no_user_verification: true,
            ..Default::default()
        };
        with_knobs(knobs, expected_auth_data(RP, flags::UP, 3));
    }

    #[test]
    fn knob_wrong_rp_id_changes_rp_id_hash_only() {
        let knobs = FailureKnobs {
            wrong_rp_id: Some("paw.example.evil".into()),
            ..Default::default()
        };
        with_knobs(
            knobs,
            expected_auth_data("paw.example.evil", flags::UP | flags::UV, 3),
        );
    }

    #[test]
    fn knob_backup_eligible_sets_be_only() {
        let knobs = FailureKnobs {
            backup_eligible: true,
            ..Default::default()
        };
        with_knobs(
            knobs,
            expected_auth_data(RP, flags::UP | flags::UV | flags::BE, 3),
        );
    }

    #[test]
    fn knob_backed_up_sets_bs_only() {
        // BS without BE is an invalid combination a relying party must refuse (case A10).
        let knobs = FailureKnobs {
            backed_up: true,
            ..Default::default()
        };
        with_knobs(
            knobs,
            expected_auth_data(RP, flags::UP | flags::UV | flags::BS, 3),
        );
    }

    #[test]
    fn knob_counter_regression_reports_a_lower_counter_only() {
        let knobs = FailureKnobs {
            counter_regression: true,
            ..Default::default()
        };
        // Last reported was 2: the regression reports 1 and the key stays at 2.
        with_knobs(knobs, expected_auth_data(RP, flags::UP | flags::UV, 1));

        let mut key = VirtualKey::generate().unwrap();
        for _ in 0..5 {
            key.get_assertion(RP, &CDH).unwrap();
        }
        key.set_knobs(FailureKnobs {
            counter_regression: true,
            ..Default::default()
        });
        let a = key.get_assertion(RP, &CDH).unwrap();
        assert_eq!(a.authenticator_data[33..], 4u32.to_be_bytes());
        assert_eq!(key.sign_count(), 5);
        key.set_knobs(FailureKnobs::default());
        let a = key.get_assertion(RP, &CDH).unwrap();
        assert_eq!(a.authenticator_data[33..], 6u32.to_be_bytes());
    }

    #[test]
    fn knob_counter_regression_never_reports_zero() {
        let mut key = VirtualKey::generate().unwrap();
        key.set_knobs(FailureKnobs {
            counter_regression: true,
            ..Default::default()
        });
        assert_eq!(
            key.get_assertion(RP, &CDH),
            Err(FidoError::NoCounterToRegress)
        );
        key.set_knobs(FailureKnobs::default());
        key.get_assertion(RP, &CDH).unwrap();
        key.set_knobs(FailureKnobs {
            counter_regression: true,
            ..Default::default()
        });
        let a = key.get_assertion(RP, &CDH).unwrap();
        assert_eq!(a.authenticator_data[33..], 1u32.to_be_bytes());
    }

    #[test]
    fn cose_public_key_is_ec2_p256_and_matches_the_signing_key() {
        let key = VirtualKey::generate().unwrap();
        let cose = key.cose_public_key().unwrap();
        assert_eq!(cose.len(), 77);
        // map(5) {1: 2, 3: -7, -1: 1, -2: bstr(32), ...} in CTAP2 canonical order.
        assert_eq!(
            cose[..10],
            [0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20]
        );
        assert_eq!(cose[42..45], [0x22, 0x58, 0x20]);

        let value: Value = ciborium::from_reader(cose.as_slice()).unwrap();
        let entries = value.into_map().unwrap();
        let get = |k: i64| {
            entries
                .iter()
                .find(|(key, _)| key.as_integer() == Some(k.into()))
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get(1).as_integer(), Some(2.into()));
        assert_eq!(get(3).as_integer(), Some((-7).into()));
        assert_eq!(get(-1).as_integer(), Some(1.into()));
        let x = get(-2).into_bytes().unwrap();
        let y = get(-3).into_bytes().unwrap();
        let point =
            EncodedPoint::from_affine_coordinates(x.as_slice().into(), y.as_slice().into(), false);
        let decoded = VerifyingKey::from_encoded_point(&point).unwrap();
        assert_eq!(&decoded, key.verifying_key());
    }

    #[test]
    fn make_credential_is_packed_with_x5c_and_attested_data() {
        let mut key = VirtualKey::generate().unwrap();
        let ao = key
            .make_credential(RP, &CDH, crate::attestation::VIRTUAL_KEY_AAGUID)
            .unwrap();
        let value: Value = ciborium::from_reader(ao.as_slice()).unwrap();
        let map = value.into_map().unwrap();
        let get = |k: &str| {
            map.iter()
                .find(|(key, _)| key.as_text() == Some(k))
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("fmt").as_text(), Some("packed"));
        let auth = get("authData").into_bytes().unwrap();
        assert_eq!(auth[..32], Sha256::digest(RP)[..]);
        assert_eq!(auth[32], flags::UP | flags::UV | flags::AT);
        assert_eq!(auth[37..53], crate::attestation::VIRTUAL_KEY_AAGUID);
        assert_eq!(auth[53..55], 32u16.to_be_bytes());
        assert_eq!(&auth[55..87], key.credential_id());
        assert_eq!(auth[87..], key.cose_public_key().unwrap()[..]);
        assert!(get("attStmt").into_map().unwrap().len() == 3);
    }

    #[test]
    fn credential_ids_are_random_and_long_enough() {
        let a = VirtualKey::generate().unwrap();
        let b = VirtualKey::generate().unwrap();
        assert!(a.credential_id().len() >= 16);
        assert_ne!(a.credential_id(), b.credential_id());
        assert_ne!(a.verifying_key(), b.verifying_key());
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let key = VirtualKey::generate().unwrap();
        let secret = key.key.0.to_bytes();
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let shown = format!("{key:?} {key:#?} {:?}", key.key);
        assert!(shown.contains("<redacted>"));
        assert!(!shown.to_lowercase().contains(&hex));
        assert!(!shown.contains(&format!("{:?}", secret.as_slice())));
        assert!(!shown.contains(&format!("{:?}", key.key.0)));
    }

    #[test]
    fn private_key_zeroizes_on_drop() {
        fn assert_zeroize_on_drop<T: ZeroizeOnDrop>() {}
        assert_zeroize_on_drop::<SigningKey>();
        assert_zeroize_on_drop::<KeyMaterial>();
    }
}
