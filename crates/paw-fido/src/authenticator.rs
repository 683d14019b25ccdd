//! The shape every authenticator has, real or virtual: what the workstation core calls.
//!
//! Calls block (a real key waits for a touch), so the async core runs them on a blocking
//! thread (`tokio::task::spawn_blocking`). The core builds clientDataJSON and passes only its
//! SHA-256, as a CTAP2 platform does.

use zeroize::Zeroizing;

use crate::FidoError;

/// A new credential: what `authenticatorMakeCredential` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub credential_id: Vec<u8>,
    /// CBOR attestationObject (`fmt`, `attStmt`, `authData`).
    pub attestation_object: Vec<u8>,
}

/// The pieces of a WebAuthn assertion the relying party checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    pub credential_id: Vec<u8>,
    /// `rpIdHash (32) || flags (1) || signCount (4, big-endian)`.
    pub authenticator_data: Vec<u8>,
    /// ASN.1 DER ECDSA P-256 / SHA-256 signature over `authenticator_data || clientDataHash`.
    pub signature: Vec<u8>,
}

/// A security key as the core uses it. Blocking; thread-safe.
pub trait Authenticator: Send + Sync {
    /// Creates a new credential for `rp_id` (authenticatorMakeCredential).
    fn make_credential(
        &self,
        rp_id: &str,
        client_data_hash: &[u8; 32],
    ) -> Result<Registration, FidoError>;

    /// Signs an assertion with a credential it holds from `allow_credentials`
    /// ([`FidoError::NoCredential`] if it holds none of them).
    fn get_assertion(
        &self,
        rp_id: &str,
        client_data_hash: &[u8; 32],
        allow_credentials: &[Vec<u8>],
    ) -> Result<Assertion, FidoError>;

    /// True for the INSECURE software key; the UI must say so wherever it is in use.
    fn is_virtual(&self) -> bool;

    /// What the UI calls this authenticator.
    fn label(&self) -> String;

    /// State the caller must persist (in the OS keyring, never a file) after every
    /// successful call, or `None` for an authenticator that keeps its own (a hardware key).
    /// Only the virtual key has any: its private keys and counters.
    fn persistent_state(&self) -> Result<Option<Zeroizing<Vec<u8>>>, FidoError> {
        Ok(None)
    }
}
