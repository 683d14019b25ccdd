//! Every bound this crate enforces, in one place, so the broker, its config check and the
//! import report quote the same numbers.

// ---- Secrets ------------------------------------------------------------------------------

/// The largest secret the vault stores. An Ed25519 or RSA-4096 OpenSSH private key is under
/// 4 KiB; 16 KiB leaves room for an appliance's certificate bundle while keeping a sealed row,
/// and a reveal, small.
pub const MAX_SECRET_BYTES: usize = 16 * 1024;

// ---- Key-encryption keys ------------------------------------------------------------------

/// A KEK is an AES-256 key.
pub const KEK_BYTES: usize = 32;
/// Ids are short labels such as `kek-2026-12`; they are stored in every sealed row.
pub const MAX_KEK_ID_CHARS: usize = 64;
/// A KEK file holds 64 hex or 44 base64 characters and a newline; anything much larger is not
/// a key file, and is refused before it is read into memory.
pub const MAX_KEK_FILE_BYTES: u64 = 1024;

// ---- Sealed rows --------------------------------------------------------------------------

/// AES-GCM nonces are 96 bits.
pub const NONCE_BYTES: usize = 12;
/// A data key is a fresh AES-256 key per secret.
pub const DEK_BYTES: usize = 32;
/// The GCM tag appended to every ciphertext.
pub const TAG_BYTES: usize = 16;
/// The longest compact encoding accepted by the parser: the largest secret in base64 plus the
/// header, rounded up. Checked before decoding so a hostile column cannot cost memory.
pub const MAX_SEALED_COMPACT_CHARS: usize = 32 * 1024;

// ---- Generated passwords ------------------------------------------------------------------

/// Fewer than 8 characters is below what NIST SP 800-63B accepts for a memorised secret,
/// and nobody memorises these.
pub const MIN_PASSWORD_LENGTH: usize = 8;
/// Long enough for any target; longer ones hit limits in `chpasswd` and appliances.
pub const MAX_PASSWORD_LENGTH: usize = 256;
/// The length used when an account's rules do not say.
pub const DEFAULT_PASSWORD_LENGTH: usize = 24;
/// Whole-password redraws before giving up when every class must appear. With sane rules the
/// first draw almost always succeeds; this only stops rules that make it near impossible (eight
/// characters, four classes, one allowed symbol) from spinning forever.
pub const MAX_GENERATION_ATTEMPTS: usize = 10_000;
/// An SSH key comment lands in `authorized_keys` on the target.
pub const MAX_SSH_COMMENT_CHARS: usize = 128;

// ---- Import -------------------------------------------------------------------------------

/// An import file is read whole into memory: 4 MiB is hundreds of accounts' worth of keys.
pub const MAX_IMPORT_BYTES: usize = 4 * 1024 * 1024;
/// Rows per import file; more is a migration to be done in batches, with a report per batch.
pub const MAX_IMPORT_ROWS: usize = 5_000;
/// Target and account names in an import file: `[A-Za-z0-9._@-]`, 1 to 64 characters.
pub const MAX_NAME_CHARS: usize = 64;
