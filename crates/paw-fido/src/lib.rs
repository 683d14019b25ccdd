//! # paw-fido
//!
//! Authenticator side: CTAP2 over USB HID and the insecure virtual key for demos and tests.
