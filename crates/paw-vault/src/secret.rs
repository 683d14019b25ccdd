//! The holder of a secret in memory.
//!
//! Rules: `Debug` prints `<redacted>`; there is no `Display` and no `Serialize`, so a secret
//! cannot be formatted into a log line or encoded into a DTO by accident; the bytes are
//! overwritten with zeros when the holder is dropped. Copies made before wrapping are the
//! caller's business: wrap as early as possible.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Secret bytes: a password, a private key, an API token.
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership without copying, so no unzeroized copy is left behind.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Copies from a borrowed buffer; the caller still owns (and must wipe) the original.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// The secret itself. Keep the borrow short and never format it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretBytes {
    /// Moves the string's buffer in, without a copy.
    fn from(value: String) -> Self {
        Self(value.into_bytes())
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for SecretBytes {}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretBytes::from("hunter2-correct-horse".to_string());
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{s:#?}"), "<redacted>");
        assert_eq!(s.expose(), b"hunter2-correct-horse");
        assert_eq!(s.len(), 21);
    }

    #[test]
    fn from_slice_copies_exactly() {
        let s = SecretBytes::from_slice(&[0, 1, 255]);
        assert_eq!(s.expose(), &[0, 1, 255]);
        assert!(!s.is_empty());
        assert!(SecretBytes::new(Vec::new()).is_empty());
    }
}
