//! The public keys that sign requests and step-ups without a security key: a workstation's
//! device key and a machine's key. One parser and one verifier, so the device proof of every
//! request, a machine's step-up, its join and its rotation accept exactly the same keys.
//!
//! Two algorithms, told apart by the key's length, so no algorithm field can be forged apart
//! from the key (there is no `alg` to downgrade):
//! - Ed25519: 32 bytes, verified strictly (no small-order keys, no malleable signatures);
//! - ECDSA P-256 with SHA-256 (for machines whose keys live in a TPM, an HSM or a cloud KMS,
//!   which rarely offer Ed25519): the SEC1 compressed point, 33 bytes. Its signature is the
//!   fixed 64-byte `r || s` with `s` in the lower half, so one signature has one encoding.
//!
//! Both kinds arrive base64url without padding and sign 64 bytes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Verifier;

/// A parsed public key that may sign a device proof or a machine's message.
#[derive(Debug, Clone)]
pub enum ProofKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

impl ProofKey {
    /// The key from its base64url form; `None` unless it is a valid key of either kind.
    pub fn parse(b64: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(b64).ok()?;
        match bytes.len() {
            32 => {
                let raw: [u8; 32] = bytes.try_into().ok()?;
                ed25519_dalek::VerifyingKey::from_bytes(&raw)
                    .ok()
                    .filter(|k| !k.is_weak())
                    .map(Self::Ed25519)
            }
            // Only the compressed form: one key, one spelling, so one row in `machine_keys`.
            33 => p256::ecdsa::VerifyingKey::from_sec1_bytes(&bytes)
                .ok()
                .map(Self::P256),
            _ => None,
        }
    }

    /// The algorithm's name as the API and the inventory show it.
    pub fn alg(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => "ed25519",
            Self::P256(_) => "p256",
        }
    }

    /// Whether `signature` is this key's over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        match self {
            Self::Ed25519(k) => k
                .verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
                .is_ok(),
            Self::P256(k) => {
                let Ok(sig) = p256::ecdsa::Signature::from_slice(signature) else {
                    return false;
                };
                // A high `s` is the same signature spelled differently: refused.
                sig.normalize_s().is_none() && k.verify(message, &sig).is_ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ed25519_dalek::Signer as _;

    fn b64(b: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(b)
    }

    #[test]
    fn ed25519_signs_and_verifies_and_nothing_else_does() {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let key = ProofKey::parse(&b64(sk.verifying_key().as_bytes())).unwrap();
        assert_eq!(key.alg(), "ed25519");
        let sig = sk.sign(b"m").to_bytes();
        assert!(key.verify(b"m", &sig));
        assert!(!key.verify(b"n", &sig));
    }

    #[test]
    fn p256_compressed_verifies_low_s_only() {
        let sk = p256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap();
        let point = sk.verifying_key().to_encoded_point(true);
        let key = ProofKey::parse(&b64(point.as_bytes())).unwrap();
        assert_eq!(key.alg(), "p256");
        let sig: p256::ecdsa::Signature = sk.sign(b"m");
        let low = sig.normalize_s().unwrap_or(sig);
        let bytes: [u8; 64] = low.to_bytes().into();
        assert!(key.verify(b"m", &bytes));
        assert!(!key.verify(b"other", &bytes));
        // The same signature with s' = n - s: valid ECDSA, refused here.
        let (r, s) = low.split_scalars();
        let high = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
        let high_bytes: [u8; 64] = high.to_bytes().into();
        assert!(!key.verify(b"m", &high_bytes));
    }

    #[test]
    fn uncompressed_garbage_and_wrong_lengths_are_refused() {
        let sk = p256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap();
        let uncompressed = sk.verifying_key().to_encoded_point(false);
        assert!(ProofKey::parse(&b64(uncompressed.as_bytes())).is_none());
        assert!(ProofKey::parse(&b64(&[0xff; 33])).is_none());
        assert!(ProofKey::parse(&b64(&[1; 31])).is_none());
        assert!(ProofKey::parse("not base64!").is_none());
        // The identity point of Ed25519 is a weak key: anything verifies under it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(ProofKey::parse(&b64(&identity)).is_none());
    }
}
