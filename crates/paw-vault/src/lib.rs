//! # paw-vault
//!
//! Vaulted credentials for legacy accounts (issue #17), as a library the broker drives:
//! envelope encryption of secrets under a key-encryption key ([`envelope`]), new passwords
//! and SSH keys for rotation ([`generate`]), the rotation journal and its reconciler
//! ([`rotation`]), and the parsing and checking of import files ([`import`]). [`limits`]
//! holds every bound.
//!
//! Rules this crate keeps:
//! - **Pure.** No network, no database, no async runtime. The broker does the I/O (store,
//!   targets, OS keyring) and hands this crate bytes and outcomes. The only I/O here is
//!   reading a KEK file or environment variable, where the permission check belongs.
//! - **Secrets stay in [`SecretBytes`].** Redacted `Debug`, no `Display`, no `Serialize`,
//!   zeroized on drop; key material likewise ([`Kek`]). Nothing that can hold a secret is
//!   formatted into an error, a report or a log line.
//! - **Maintained primitives only.** AES-256-GCM from `aes-gcm`, randomness from the OS
//!   (`OsRng`), keys from `ssh-key`; nothing here implements a cipher.
//! - **Fail closed.** A wrong key, a wrong account, an altered byte: an error, never
//!   garbage. Invalid rules or rows are refused, never repaired.
//! - **Explicit tables.** The rotation journal is one `match` listing every allowed edge.

pub mod envelope;
mod error;
pub mod generate;
pub mod import;
pub mod limits;
pub mod rotation;
mod secret;

pub use envelope::{account_aad, needs_rewrap, open, rewrap, seal, Kek, KekRing, Sealed};
pub use error::{Result, VaultError};
pub use generate::{generate_password, generate_ssh_key, PasswordRules};
pub use import::{
    parse_import, AccountKind, Import, ImportFormat, ImportReport, ImportRow, RowOutcome, RowResult,
};
pub use rotation::{reconcile, Decision, RotationEvent, RotationState};
pub use secret::SecretBytes;
