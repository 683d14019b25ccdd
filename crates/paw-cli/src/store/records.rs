//! What pawctl keeps between invocations, as JSON in the credential store: a key machine's
//! key, and a sign-in (the session's key and tokens).
//!
//! Rules:
//! - Secret fields (seed, tokens) are wiped when a record is dropped, and `Debug` leaves them
//!   out. Records are never printed; commands print views made from them.
//! - A record names the brokers and CA it belongs to, so a later invocation without `--broker`
//!   goes to the same deployment, and one naming another deployment is refused.
//! - Unknown fields are refused, and the format carries a version, so a record written by a
//!   newer pawctl is reported rather than half-understood.

use std::path::PathBuf;

use paw_client::machine::{KeyAlg, MachineKey, MachineSession};
use paw_proto::http::TokenResponse;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::error::{CliError, Result};

pub const VERSION: u32 = 1;

/// The key a key machine registered with `pawctl machine join`: its identity on this host.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    pub version: u32,
    pub machine: String,
    /// The key's algorithm; records from before P-256 keys have none and are Ed25519.
    #[serde(default)]
    pub alg: KeyAlg,
    /// Hex of the key's secret: the Ed25519 seed or the P-256 scalar.
    pub seed: String,
    pub brokers: Vec<String>,
    pub ca: PathBuf,
}

impl KeyRecord {
    pub fn new(machine: &str, key: &MachineKey, brokers: &[String], ca: PathBuf) -> Self {
        Self {
            version: VERSION,
            machine: machine.to_owned(),
            alg: key.alg(),
            seed: to_hex(key.seed().expose()),
            brokers: brokers.to_vec(),
            ca,
        }
    }

    pub fn key(&self) -> Result<MachineKey> {
        seed_key(self.alg, &self.seed, "the stored machine key")
    }
}

impl Drop for KeyRecord {
    fn drop(&mut self) {
        self.seed.zeroize();
    }
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("machine", &self.machine)
            .field("brokers", &self.brokers)
            .finish_non_exhaustive()
    }
}

/// How a stored sign-in was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// Key login with the machine key of [`KeyRecord`].
    MachineKey,
    /// A workload token exchanged for a session bound to a key made for it alone.
    Workload,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::MachineKey => "machine_key",
            SessionKind::Workload => "workload",
        }
    }
}

/// A sign-in: the key its requests are signed with and the broker's tokens.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRecord {
    pub version: u32,
    pub kind: SessionKind,
    /// The machine signed in.
    pub user: String,
    pub roles: Vec<String>,
    pub brokers: Vec<String>,
    pub ca: PathBuf,
    /// The session key's algorithm (Ed25519 when absent).
    #[serde(default)]
    pub key_alg: KeyAlg,
    /// Hex of the session key's secret (secret).
    pub key_seed: String,
    pub access_token: String,
    pub access_expires_at_ms: i64,
    pub refresh_token: String,
    pub session_expires_at_ms: i64,
    /// Grants this sign-in requested: `logout` releases those still open.
    #[serde(default)]
    pub requested: Vec<String>,
}

impl SessionRecord {
    pub fn new(kind: SessionKind, s: &MachineSession, brokers: &[String], ca: PathBuf) -> Self {
        let t = s.tokens();
        Self {
            version: VERSION,
            kind,
            user: t.user.clone(),
            roles: t.roles.clone(),
            brokers: brokers.to_vec(),
            ca,
            key_alg: s.key().alg(),
            key_seed: to_hex(s.key().seed().expose()),
            access_token: t.access_token.clone(),
            access_expires_at_ms: t.access_expires_at_ms,
            refresh_token: t.refresh_token.clone(),
            session_expires_at_ms: t.session_expires_at_ms,
            requested: Vec::new(),
        }
    }

    pub fn key(&self) -> Result<MachineKey> {
        seed_key(self.key_alg, &self.key_seed, "the stored session key")
    }

    /// The tokens as the client library takes them back.
    pub fn tokens(&self) -> TokenResponse {
        TokenResponse {
            user: self.user.clone(),
            roles: self.roles.clone(),
            access_token: self.access_token.clone(),
            access_expires_at_ms: self.access_expires_at_ms,
            refresh_token: self.refresh_token.clone(),
            session_expires_at_ms: self.session_expires_at_ms,
        }
    }

    /// Takes rotated tokens from a refresh (the old ones are wiped).
    pub fn take_tokens(&mut self, mut t: TokenResponse) {
        self.access_token.zeroize();
        self.refresh_token.zeroize();
        self.access_token = std::mem::take(&mut t.access_token);
        self.refresh_token = std::mem::take(&mut t.refresh_token);
        self.access_expires_at_ms = t.access_expires_at_ms;
        self.session_expires_at_ms = t.session_expires_at_ms;
        self.roles = t.roles;
    }
}

impl Drop for SessionRecord {
    fn drop(&mut self) {
        self.key_seed.zeroize();
        self.access_token.zeroize();
        self.refresh_token.zeroize();
    }
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("kind", &self.kind)
            .field("user", &self.user)
            .field("brokers", &self.brokers)
            .field("access_expires_at_ms", &self.access_expires_at_ms)
            .field("session_expires_at_ms", &self.session_expires_at_ms)
            .finish_non_exhaustive()
    }
}

fn seed_key(alg: KeyAlg, hex: &str, what: &str) -> Result<MachineKey> {
    let seed = paw_client::Secret::new(
        from_hex(hex).ok_or_else(|| CliError::store(format!("{what} is malformed")))?,
    );
    MachineKey::from_stored(alg, seed.expose())
        .map_err(|_| CliError::store(format!("{what} is malformed")))
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn hex_round_trips() {
        let b: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&to_hex(&b)).unwrap(), b);
        assert!(from_hex("abc").is_none());
        assert!(from_hex("zz").is_none());
    }

    #[test]
    fn records_keep_the_key_and_never_show_secrets() {
        let key = MachineKey::generate().unwrap();
        let rec = KeyRecord::new("backup-1", &key, &["https://b".into()], "/ca.pem".into());
        assert_eq!(rec.key().unwrap().public(), key.public());
        let shown = format!("{rec:?}");
        assert!(shown.contains("backup-1"), "{shown}");
        assert!(!shown.contains(&rec.seed), "{shown}");

        let json = serde_json::to_vec(&rec).unwrap();
        let back: KeyRecord = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.key().unwrap().public(), key.public());

        let mut extra: serde_json::Value = serde_json::from_slice(&json).unwrap();
        extra["future"] = serde_json::json!(1);
        assert!(serde_json::from_value::<KeyRecord>(extra).is_err());
    }

    #[test]
    fn session_debug_hides_tokens() {
        let rec = SessionRecord {
            version: VERSION,
            kind: SessionKind::Workload,
            user: "ci-deploy".into(),
            roles: vec![],
            brokers: vec!["https://b".into()],
            ca: "/ca.pem".into(),
            key_alg: KeyAlg::Ed25519,
            key_seed: "00".repeat(32),
            access_token: "access-secret".into(),
            access_expires_at_ms: 1,
            refresh_token: "refresh-secret".into(),
            session_expires_at_ms: 2,
            requested: vec![],
        };
        let shown = format!("{rec:?}");
        assert!(shown.contains("ci-deploy"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(rec.key().is_ok());
    }
}
