//! Redacting, zeroizing holders for secrets (tokens, PINs, key material).
//!
//! Rules:
//! - `Debug` and `Display` print `<redacted>`, so a secret that ends up in a log line, an error
//!   message or a panic report shows nothing (case H1).
//! - The value is overwritten with zeros when the holder is dropped, so it does not linger in
//!   freed memory (case H3). Copies the caller made before wrapping are the caller's business:
//!   wrap a secret as early as possible.
//! - No `Serialize`: a secret must never be encoded into a DTO or a settings file by accident.
//!   The few places that must encode one (the keystore entries) do it by hand.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

const REDACTED: &str = "<redacted>";

/// A value that is redacted when formatted and zeroized when dropped.
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself. Keep the borrow short and never format it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// For wiping in place (see [`Pin::with_exposed`]); not public so that callers cannot swap
    /// the value out of the zeroizing holder.
    pub(crate) fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> ZeroizeOnDrop for Secret<T> {}

impl<T: Zeroize + Clone> Clone for Secret<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A string secret with its own type, so an access token cannot be passed where a refresh token
/// is expected (and neither where a plain string is).
macro_rules! string_secret {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(Secret<String>);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(Secret::new(value.into()))
            }

            /// The token text, to put in a request header. Never format it.
            pub fn expose(&self) -> &str {
                self.0.expose()
            }
        }

        impl ZeroizeOnDrop for $name {}

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(REDACTED)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(REDACTED)
            }
        }
    };
}

string_secret!(
    /// The broker's short-lived bearer token (≤ 15 min), bound to the device key.
    AccessToken
);
string_secret!(
    /// The broker's rotating refresh token, bound to the device key.
    RefreshToken
);

/// A security-key PIN, as typed by the user.
///
/// Deliberately not `Clone`: there is one copy, it is used once ([`Pin::with_exposed`]) and then
/// it is gone. A PIN that must be entered again is asked for again.
pub struct Pin(Secret<String>);

impl Pin {
    pub fn new(value: String) -> Self {
        Self(Secret::new(value))
    }

    /// Lends the PIN to `f` (the CTAP2 exchange) and wipes it when `f` returns or unwinds.
    ///
    /// Wiping right after use rather than at drop keeps the PIN's lifetime as short as the
    /// exchange, even if the `Pin` itself is held longer (for example by a UI request struct).
    pub fn with_exposed<R>(&mut self, f: impl FnOnce(&str) -> R) -> R {
        /// Wipes on every exit path, including a panic inside `f`.
        struct Wipe<'a>(&'a mut String);
        impl Drop for Wipe<'_> {
            fn drop(&mut self) {
                self.0.zeroize();
            }
        }
        let guard = Wipe(self.0.expose_mut());
        f(guard.0.as_str())
    }

    /// True once the PIN has been used (wiped) or was empty.
    pub fn is_wiped(&self) -> bool {
        self.0.expose().is_empty()
    }
}

impl ZeroizeOnDrop for Pin {}

impl From<String> for Pin {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Records what its buffer held when it was zeroized, so the test can observe the wipe
    /// without reading freed memory.
    struct Probe {
        data: Vec<u8>,
        wiped: Arc<Mutex<Option<Vec<u8>>>>,
    }

    impl Zeroize for Probe {
        fn zeroize(&mut self) {
            self.data.zeroize();
            *self.wiped.lock().unwrap() = Some(self.data.clone());
        }
    }

    #[test]
    fn h1_secrets_never_format() {
        let access = AccessToken::new("acc-3f9a");
        let refresh = RefreshToken::new("ref-77c1");
        let pin = Pin::new("482913".into());
        let blob = Secret::new(b"seed-bytes".to_vec());
        for shown in [
            format!("{access:?} {access} {access:#?}"),
            format!("{refresh:?} {refresh} {refresh:#?}"),
            format!("{pin:?} {pin} {pin:#?}"),
            format!("{blob:?} {blob} {blob:#?}"),
            format!("{:?}", Some(&access)),
            format!("{:?}", (&refresh, &pin)),
        ] {
            for value in ["acc-3f9a", "ref-77c1", "482913", "seed", "115, 101"] {
                assert!(!shown.contains(value), "{shown}");
            }
            assert!(shown.contains(REDACTED), "{shown}");
        }
        // The value is still there for the one place that needs it.
        assert_eq!(access.expose(), "acc-3f9a");
        assert_eq!(refresh.expose(), "ref-77c1");
    }

    #[test]
    fn h3_secret_zeroized_on_drop() {
        let wiped = Arc::new(Mutex::new(None));
        let s = Secret::new(Probe {
            data: b"session-key".to_vec(),
            wiped: wiped.clone(),
        });
        assert_eq!(s.expose().data, b"session-key");
        assert!(wiped.lock().unwrap().is_none(), "wiped before drop");
        drop(s);
        let after = wiped.lock().unwrap().clone();
        assert_eq!(after, Some(Vec::new()), "drop must zeroize the value");
    }

    #[test]
    fn h3_pin_wiped_after_use() {
        let mut pin = Pin::new("482913".to_owned());
        assert!(!pin.is_wiped());
        let seen = pin.with_exposed(|p| p.to_owned());
        assert_eq!(seen, "482913", "the exchange gets the real PIN");
        assert!(pin.is_wiped(), "the PIN must be wiped right after use");
        pin.with_exposed(|p| assert_eq!(p, "", "a second use sees nothing"));
    }

    #[test]
    fn h3_pin_wiped_when_use_panics() {
        let mut pin = Pin::new("482913".to_owned());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pin.with_exposed(|_| panic!("authenticator went away"))
        }));
        assert!(r.is_err());
        assert!(
            pin.is_wiped(),
            "an unwinding exchange must still wipe the PIN"
        );
    }
}
