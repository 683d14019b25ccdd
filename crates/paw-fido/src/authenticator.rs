//! The shape every authenticator has, real or virtual: what the workstation core calls.
//!
//! Calls block (a real key waits for a touch, and its PIN comes from the user mid-call), so the
//! async core runs them on a blocking thread (`tokio::task::spawn_blocking`). The core builds
//! clientDataJSON; the authenticator hashes it into the clientDataHash it signs over, as a CTAP2
//! platform does (the CTAP library we use for USB keys takes the JSON, not the hash).

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

/// The account a new credential is for (WebAuthn's `user` entity), as the relying party sent it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserEntity {
    pub id: Vec<u8>,
    pub name: String,
    pub display_name: String,
}

/// Why the user is asked for the key's PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PinRequest {
    /// PIN attempts the key has left before it blocks itself, when the key said.
    pub retries: Option<u32>,
    /// The previous PIN of this same operation was wrong.
    pub wrong: bool,
}

/// How an authenticator talks to the person at the keyboard while a call is in progress. The
/// workstation core implements it and shows each state in the UI; calls come from the blocking
/// thread the authenticator runs on.
pub trait KeyPrompt: Send + Sync {
    /// Asks for the key's PIN and blocks until the user gives it or gives up
    /// ([`FidoError::Cancelled`], [`FidoError::Timeout`]). The PIN is wiped when dropped.
    fn pin(&self, request: PinRequest) -> Result<Zeroizing<String>, FidoError>;

    /// The key is (`true`) or is no longer (`false`) waiting for a touch.
    fn touch(&self, waiting: bool);
}

/// A security key as the core uses it. Blocking; thread-safe.
pub trait Authenticator: Send + Sync {
    /// Creates a new credential for `rp_id` and `user` (authenticatorMakeCredential), with user
    /// verification: the key's PIN through `prompt`, or its built-in biometrics.
    fn make_credential(
        &self,
        rp_id: &str,
        user: &UserEntity,
        client_data_json: &[u8],
        prompt: &dyn KeyPrompt,
    ) -> Result<Registration, FidoError>;

    /// Signs an assertion, with user verification, using a credential it holds from
    /// `allow_credentials` ([`FidoError::NoCredential`] if it holds none of them).
    fn get_assertion(
        &self,
        rp_id: &str,
        client_data_json: &[u8],
        allow_credentials: &[Vec<u8>],
        prompt: &dyn KeyPrompt,
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
