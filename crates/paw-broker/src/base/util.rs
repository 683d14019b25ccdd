//! Small helpers shared by the identity modules: encodings, randomness, hashing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::base::error::{BrokerError, Invalid, Result};

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url without padding; `None` for anything else.
pub fn unb64(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b)
        .map_err(|e| BrokerError::Internal(format!("no randomness: {e}")))?;
    Ok(b)
}

/// A 256-bit random secret (token, invite code), base64url.
pub fn random_secret() -> Result<String> {
    Ok(b64(&random_bytes::<32>()?))
}

/// How a secret is stored: SHA-256, hex. The secret itself is never stored or logged.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The longest user, role or key name.
pub const MAX_NAME: usize = paw_policy::limits::MAX_NAME_CHARS;

/// A user or role name: short, printable, no separators that could confuse logs or paths.
pub fn validate_name(what: &str, name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Invalid(format!(
            "{what} must be 1–{MAX_NAME} characters of a-z, A-Z, 0-9, '.', '_', '-', '@'"
        )))
    }
}

/// This host's name, as brokers record themselves (`brokers.host`, a rotation's owner).
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Unix ms as RFC 3339 UTC, for messages people read (the number when out of range).
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}
