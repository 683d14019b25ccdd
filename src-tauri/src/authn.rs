//! Which authenticator the app uses (case G5).
//!
//! Real security keys will come through CTAP2 over USB HID. The virtual key is a software
//! stand-in for demos and tests: it is INSECURE by design, so a release build never uses it
//! unless it was both compiled in (`--features demo`) and switched on at run time with
//! `PAW_DEMO_VIRTUAL_KEY=1`. Whenever it is in use, `BuildInfo.virtual_key` is true and the UI
//! labels it on every screen that touches a key.

use std::sync::Arc;

use paw_client::KeyStore;
use paw_fido::Authenticator;

/// The run-time switch a demo sets to use the virtual key in a release build.
pub const DEMO_FLAG: &str = "PAW_DEMO_VIRTUAL_KEY";

/// Debug builds may use the virtual key whenever it is compiled in; release builds only when a
/// demo asks for it explicitly.
pub fn virtual_key_allowed(debug_build: bool, compiled: bool, demo_flag: bool) -> bool {
    compiled && (debug_build || demo_flag)
}

pub fn choose(keystore: &dyn KeyStore) -> Result<Option<Arc<dyn Authenticator>>, String> {
    let flag = std::env::var(DEMO_FLAG).is_ok_and(|v| v == "1");
    if !virtual_key_allowed(cfg!(debug_assertions), paw_fido::VIRTUAL_KEY_COMPILED, flag) {
        // No hardware authenticator support yet: the app runs, and sign-in says why it cannot.
        return Ok(None);
    }
    tracing::warn!("using the INSECURE virtual security key (demo and test builds only)");
    paw_client::load_virtual_authenticator(keystore).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g5_release_needs_both_the_feature_and_the_demo_flag() {
        assert!(!virtual_key_allowed(false, true, false));
        assert!(!virtual_key_allowed(false, false, true));
        assert!(virtual_key_allowed(false, true, true));
        assert!(virtual_key_allowed(true, true, false));
        assert!(!virtual_key_allowed(true, false, true));
    }
}
