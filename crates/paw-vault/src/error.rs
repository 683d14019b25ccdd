//! The one error type of the crate.
//!
//! Rule: a message names what failed and where (a path, an env var's name, a line number, a
//! rule), never a value that could be secret: no key bytes, no plaintext, no parser snippet of
//! an import file (TOML and CSV parsers quote the offending line, which may hold a password).

use std::path::PathBuf;

use crate::rotation::{RotationEvent, RotationState};

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A KEK id is empty, too long or holds characters outside `[A-Za-z0-9._-]`.
    #[error("a key-encryption key id must be 1 to {max} characters of [A-Za-z0-9._-]")]
    KekIdInvalid { max: usize },

    /// Key material that is not exactly 32 bytes, or not hex or base64 of 32 bytes.
    #[error("key-encryption key {id} is invalid: {reason}")]
    KekInvalid { id: String, reason: &'static str },

    /// A KEK file that group or others may read: the key is as exposed as the file.
    #[error(
        "key-encryption key file {} is readable by group or others (mode {mode:o}); \
         run chmod 600 on it",
        path.display()
    )]
    KekFilePermissions { path: PathBuf, mode: u32 },

    /// A KEK file that cannot be read (missing, a directory, too large).
    #[error("cannot read key-encryption key file {}: {reason}", path.display())]
    KekFileUnreadable { path: PathBuf, reason: String },

    /// The environment variable that should hold a KEK is unset or not Unicode.
    #[error("environment variable {var} holds no key-encryption key")]
    KekEnvMissing { var: String },

    /// Two KEKs in one ring share an id, so a sealed row could not say which one it needs.
    #[error("key-encryption key id {id} appears twice in the key ring")]
    KekDuplicate { id: String },

    /// A sealed row names a KEK that is in neither the active nor the retired keys.
    #[error("key-encryption key {id} is not in the key ring (retired and removed too early?)")]
    KekUnknown { id: String },

    /// Authentication failed: wrong KEK, wrong AAD (a row moved to another account or
    /// version) or a changed byte. Deliberately one error, so it tells an attacker nothing.
    #[error("the sealed secret does not open: wrong key, wrong account or version, or altered")]
    OpenFailed,

    /// The AEAD refused to encrypt (only possible for absurd lengths).
    #[error("sealing failed")]
    SealFailed,

    /// The operating system's random number generator failed; nothing is generated without it.
    #[error("the system random number generator failed")]
    Randomness,

    /// A compact sealed encoding that is not one this crate wrote.
    #[error("sealed secret encoding is invalid: {reason}")]
    EncodingInvalid { reason: &'static str },

    /// A secret over [`crate::limits::MAX_SECRET_BYTES`] (or an empty one).
    #[error("a secret must be 1 to {max} bytes")]
    SecretSize { max: usize },

    /// Password rules that cannot produce a password, or contradict each other.
    #[error("password rules are invalid: {reason}")]
    RulesInvalid { reason: String },

    /// The rules allow passwords but so few that hold every required class that
    /// generation gave up; loosen the rules.
    #[error("no password met the rules after {attempts} attempts; allow more characters")]
    GenerationExhausted { attempts: usize },

    /// Creating or encoding an SSH key failed.
    #[error("SSH key generation failed: {reason}")]
    SshKey { reason: &'static str },

    /// The rotation journal has no edge for this (state, event) pair.
    #[error("a rotation that is {from} cannot {event}")]
    InvalidTransition {
        from: RotationState,
        event: RotationEvent,
    },

    /// An import file over [`crate::limits::MAX_IMPORT_BYTES`].
    #[error("the import file is {bytes} bytes; the limit is {max}")]
    ImportTooLarge { bytes: usize, max: usize },

    /// An import file with more rows than [`crate::limits::MAX_IMPORT_ROWS`].
    #[error("the import file has more than {max} rows")]
    ImportTooManyRows { max: usize },

    /// An import file that does not parse as a whole (bad header, unbalanced quote, TOML
    /// syntax). Names the line when the parser knows it, never the line's text.
    #[error("the import file is malformed{}: {reason}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    ImportMalformed {
        line: Option<u64>,
        reason: &'static str,
    },
}

impl VaultError {
    /// Stable snake_case code that callers map to the API's `ErrorCode` and the UI branches on.
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::KekIdInvalid { .. } => "vault_kek_id_invalid",
            VaultError::KekInvalid { .. } => "vault_kek_invalid",
            VaultError::KekFilePermissions { .. } => "vault_kek_file_permissions",
            VaultError::KekFileUnreadable { .. } => "vault_kek_file_unreadable",
            VaultError::KekEnvMissing { .. } => "vault_kek_env_missing",
            VaultError::KekDuplicate { .. } => "vault_kek_duplicate",
            VaultError::KekUnknown { .. } => "vault_kek_unknown",
            VaultError::OpenFailed => "vault_open_failed",
            VaultError::SealFailed => "vault_seal_failed",
            VaultError::Randomness => "vault_randomness_failed",
            VaultError::EncodingInvalid { .. } => "vault_encoding_invalid",
            VaultError::SecretSize { .. } => "vault_secret_size",
            VaultError::RulesInvalid { .. } => "vault_rules_invalid",
            VaultError::GenerationExhausted { .. } => "vault_generation_exhausted",
            VaultError::SshKey { .. } => "vault_ssh_key_failed",
            VaultError::InvalidTransition { .. } => "vault_rotation_invalid_transition",
            VaultError::ImportTooLarge { .. } => "vault_import_too_large",
            VaultError::ImportTooManyRows { .. } => "vault_import_too_many_rows",
            VaultError::ImportMalformed { .. } => "vault_import_malformed",
        }
    }
}

pub type Result<T, E = VaultError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_prefixed_snake_case_and_distinct() {
        let all = [
            VaultError::KekIdInvalid { max: 1 },
            VaultError::KekInvalid {
                id: "k".into(),
                reason: "r",
            },
            VaultError::KekFilePermissions {
                path: "/k".into(),
                mode: 0o644,
            },
            VaultError::KekFileUnreadable {
                path: "/k".into(),
                reason: "r".into(),
            },
            VaultError::KekEnvMissing { var: "V".into() },
            VaultError::KekDuplicate { id: "k".into() },
            VaultError::KekUnknown { id: "k".into() },
            VaultError::OpenFailed,
            VaultError::SealFailed,
            VaultError::Randomness,
            VaultError::EncodingInvalid { reason: "r" },
            VaultError::SecretSize { max: 1 },
            VaultError::RulesInvalid { reason: "r".into() },
            VaultError::GenerationExhausted { attempts: 1 },
            VaultError::SshKey { reason: "r" },
            VaultError::InvalidTransition {
                from: RotationState::Idle,
                event: RotationEvent::Promote,
            },
            VaultError::ImportTooLarge { bytes: 2, max: 1 },
            VaultError::ImportTooManyRows { max: 1 },
            VaultError::ImportMalformed {
                line: None,
                reason: "r",
            },
        ];
        let mut codes: Vec<&str> = all.iter().map(VaultError::code).collect();
        for code in &codes {
            assert!(code.starts_with("vault_"), "{code}");
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }

    #[test]
    fn messages_read_plainly() {
        let e = VaultError::KekFilePermissions {
            path: "/etc/pawd/kek".into(),
            mode: 0o644,
        };
        assert_eq!(
            e.to_string(),
            "key-encryption key file /etc/pawd/kek is readable by group or others (mode 644); \
             run chmod 600 on it"
        );
        let e = VaultError::ImportMalformed {
            line: Some(3),
            reason: "unterminated quote",
        };
        assert_eq!(
            e.to_string(),
            "the import file is malformed at line 3: unterminated quote"
        );
        let e = VaultError::InvalidTransition {
            from: RotationState::Idle,
            event: RotationEvent::Promote,
        };
        assert_eq!(e.to_string(), "a rotation that is idle cannot promote");
    }
}
