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
//! the feature). Real keys go through [`HidAuthenticator`] (feature `hid`): CTAP2 over USB HID
//! by the `ctap-hid-fido2` crate, with the PIN asked for through [`KeyPrompt`] while the call
//! runs and "touch your key" announced the same way.
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
#[cfg(feature = "hid")]
mod hid;
pub mod pin;
#[cfg(feature = "virtual-key")]
mod virtual_authenticator;
#[cfg(feature = "virtual-key")]
mod virtual_key;

use std::sync::Arc;

pub use authenticator::{
    Assertion, Authenticator, KeyPrompt, PinRequest, Registration, UserEntity,
};
pub use error::FidoError;
#[cfg(feature = "hid")]
pub use hid::HidAuthenticator;
#[cfg(feature = "virtual-key")]
pub use virtual_authenticator::VirtualAuthenticator;
#[cfg(feature = "virtual-key")]
pub use virtual_key::{FailureKnobs, VirtualKey};

/// Shown wherever the virtual key is offered or in use, so nobody mistakes it for a real one.
pub const VIRTUAL_KEY_LABEL: &str = "Virtual security key — INSECURE, for demos and tests";

/// A [`KeyPrompt`] for callers with nobody to ask: a PIN request is answered "cancelled" and
/// touches are not announced. Fine for a key without a PIN (the virtual key in tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPrompt;

impl KeyPrompt for NoPrompt {
    fn pin(&self, _request: PinRequest) -> Result<zeroize::Zeroizing<String>, FidoError> {
        Err(FidoError::Cancelled)
    }

    fn touch(&self, _waiting: bool) {}
}

/// Whether this build contains the INSECURE virtual key (the `virtual-key` feature).
pub const VIRTUAL_KEY_COMPILED: bool = cfg!(feature = "virtual-key");

/// The virtual authenticator restored from its saved state (`None`: a new, empty one), asking
/// for `pin` before every operation when one is given, or `None` when this build does not
/// contain the virtual key. Always available, so callers compile with and without the feature.
#[allow(unused_variables)]
pub fn virtual_authenticator_from_state(
    state: Option<&[u8]>,
    pin: Option<&str>,
) -> Option<Result<Arc<dyn Authenticator>, FidoError>> {
    #[cfg(feature = "virtual-key")]
    {
        let restored = match state {
            Some(bytes) => VirtualAuthenticator::from_state(bytes),
            None => Ok(VirtualAuthenticator::new()),
        };
        Some(restored.and_then(|a| {
            a.set_pin(pin)?;
            Ok(Arc::new(a) as Arc<dyn Authenticator>)
        }))
    }
    #[cfg(not(feature = "virtual-key"))]
    {
        None
    }
}
