//! # paw-fido
//!
//! The authenticator side of paw: what talks to the security key. The workstation speaks to
//! the key itself (WebAuthn does not work inside the Linux WebView), so this crate produces the
//! raw WebAuthn pieces (authenticatorData, signature, COSE public key) that the broker, as the
//! relying party, checks.
//!
//! What is here today: the [`Authenticator`] trait the workstation core calls (blocking), the
//! flag bits of authenticatorData, the crate's error type, and — behind the `virtual-key` cargo
//! feature, off by default — `VirtualKey`, a software key for demos and tests that registers
//! (packed attestation from a fixed, published test CA, see `attestation`) and asserts, and
//! `VirtualAuthenticator`, which holds several of them behind the trait with a saved state the
//! core keeps in the OS keyring ([`virtual_authenticator_from_state`] works with or without
//! the feature). The real path, CTAP2 over USB HID with PIN and touch prompts, comes later and
//! will sit beside it behind the same shapes.
//!
//! Rules this crate keeps:
//! - **The virtual key is insecure and says so.** Its private key lives in process memory, it
//!   proves no user presence, and it can be told to lie (`FailureKnobs`). It is compiled only
//!   with the `virtual-key` feature, so a release build lacks it unless a demo build asks
//!   (case G5), and anything showing it must show [`VIRTUAL_KEY_LABEL`].
//! - **No hand-rolled crypto or encoding.** ECDSA P-256 comes from RustCrypto's `p256`, CBOR from
//!   `ciborium`, randomness from the OS via `rand_core`/`getrandom`.
//! - **Secrets are redacted and zeroized.** Private key material sits in a type whose `Debug`
//!   prints `<redacted>` and whose inner key zeroizes on drop.
//! - **Failures are values.** Randomness, signing and encoding errors come back as [`FidoError`];
//!   nothing here panics on its own account.

#[cfg(feature = "virtual-key")]
pub mod attestation;
mod authenticator;
mod error;
pub mod flags;
#[cfg(feature = "virtual-key")]
mod virtual_authenticator;
#[cfg(feature = "virtual-key")]
mod virtual_key;

use std::sync::Arc;

pub use authenticator::{Assertion, Authenticator, Registration};
pub use error::FidoError;
#[cfg(feature = "virtual-key")]
pub use virtual_authenticator::VirtualAuthenticator;
#[cfg(feature = "virtual-key")]
pub use virtual_key::{FailureKnobs, VirtualKey};

/// Shown wherever the virtual key is offered or in use, so nobody mistakes it for a real one.
pub const VIRTUAL_KEY_LABEL: &str = "Virtual security key — INSECURE, for demos and tests";

/// Whether this build contains the INSECURE virtual key (the `virtual-key` feature).
pub const VIRTUAL_KEY_COMPILED: bool = cfg!(feature = "virtual-key");

/// The virtual authenticator restored from its saved state (`None`: a new, empty one), or
/// `None` when this build does not contain the virtual key. Always available, so callers
/// compile with and without the feature.
#[allow(unused_variables)]
pub fn virtual_authenticator_from_state(
    state: Option<&[u8]>,
) -> Option<Result<Arc<dyn Authenticator>, FidoError>> {
    #[cfg(feature = "virtual-key")]
    {
        let restored = match state {
            Some(bytes) => VirtualAuthenticator::from_state(bytes),
            None => Ok(VirtualAuthenticator::new()),
        };
        Some(restored.map(|a| Arc::new(a) as Arc<dyn Authenticator>))
    }
    #[cfg(not(feature = "virtual-key"))]
    {
        None
    }
}
