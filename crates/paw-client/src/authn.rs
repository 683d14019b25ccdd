//! Which authenticator a client uses (case G5): the app and `pawctl` both ask here, so the rule
//! for the INSECURE virtual key is written once.
//!
//! Real security keys come through CTAP2 over USB HID ([`paw_fido::HidAuthenticator`], this
//! crate's `hid` feature). The virtual key is a software stand-in for demos and tests: it is
//! INSECURE by design, so a release build never uses it unless it was both compiled in
//! (paw-fido's `virtual-key` feature, the app's `demo`) and switched on at run time with
//! `PAW_DEMO_VIRTUAL_KEY=1`. A debug build that has it uses it by default;
//! `PAW_DEMO_VIRTUAL_KEY=0` switches to the USB key instead. Whenever it is in use, the caller
//! says so (`BuildInfo.virtual_key` in the app, a warning line in `pawctl`).

use std::sync::Arc;

use paw_fido::Authenticator;

use crate::{ClientError, KeyStore};

/// The run-time switch a demo sets to use the virtual key in a release build ("1"), or that
/// turns it off in a debug build ("0").
pub const DEMO_FLAG: &str = "PAW_DEMO_VIRTUAL_KEY";
/// Makes the virtual key ask for this PIN before every operation, so demos and the end-to-end
/// tests go through the same PIN prompt a real key needs. Only read when the virtual key is used.
pub const DEMO_PIN: &str = "PAW_DEMO_VIRTUAL_KEY_PIN";

/// Whether the virtual key is used: it must be compiled in, and then a debug build uses it
/// unless told not to, a release build only when a demo asks for it explicitly.
pub fn virtual_key_allowed(debug_build: bool, compiled: bool, flag: Option<&str>) -> bool {
    compiled
        && match flag {
            Some("1") => true,
            Some(_) => false,
            None => debug_build,
        }
}

/// The authenticator for a build (`debug_build`: the caller's `cfg!(debug_assertions)`): the
/// virtual key when [`virtual_key_allowed`], else the USB key when this crate has `hid`, else
/// none ([`ClientError::NoAuthenticator`]).
pub fn choose(
    keystore: &dyn KeyStore,
    debug_build: bool,
) -> Result<Arc<dyn Authenticator>, ClientError> {
    let flag = std::env::var(DEMO_FLAG).ok();
    if virtual_key_allowed(debug_build, paw_fido::VIRTUAL_KEY_COMPILED, flag.as_deref()) {
        tracing::warn!("using the INSECURE virtual security key (demo and test builds only)");
        let pin = std::env::var(DEMO_PIN).ok();
        if let Some(a) = crate::load_virtual_authenticator(keystore, pin.as_deref())? {
            return Ok(a);
        }
    }
    hid()
}

#[cfg(feature = "hid")]
fn hid() -> Result<Arc<dyn Authenticator>, ClientError> {
    Ok(Arc::new(paw_fido::HidAuthenticator::new()))
}

#[cfg(not(feature = "hid"))]
fn hid() -> Result<Arc<dyn Authenticator>, ClientError> {
    Err(ClientError::NoAuthenticator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g5_release_needs_both_the_feature_and_the_demo_flag() {
        assert!(!virtual_key_allowed(false, true, None));
        assert!(!virtual_key_allowed(false, true, Some("yes")));
        assert!(!virtual_key_allowed(false, false, Some("1")));
        assert!(virtual_key_allowed(false, true, Some("1")));
        assert!(virtual_key_allowed(true, true, None));
        assert!(!virtual_key_allowed(true, true, Some("0")));
        assert!(!virtual_key_allowed(true, false, Some("1")));
    }
}
