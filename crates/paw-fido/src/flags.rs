//! Bits of the authenticatorData flags byte (W3C WebAuthn §6.1).

/// User Present: the user touched the key.
pub const UP: u8 = 0x01;
/// User Verified: PIN or biometrics checked by the key.
pub const UV: u8 = 0x04;
/// Backup Eligible: the credential can be synced off this authenticator.
pub const BE: u8 = 0x08;
/// Backup State: the credential is currently backed up.
pub const BS: u8 = 0x10;
/// Attested credential data included (registration only).
pub const AT: u8 = 0x40;
/// Extension data included.
pub const ED: u8 = 0x80;
