//! Proof of possession of the workstation's device key, carried by every authenticated request.
//!
//! Access and refresh tokens are bound to the device key registered at enrollment: a stolen
//! token is useless without the key, which never leaves the OS keyring. Each request carries the
//! header [`HEADER`] = `t=<broker-time ms>;n=<nonce b64url>;s=<ed25519 signature b64url>` over
//! [`message`]. The time is the *broker's* clock as the client estimates it from `/healthz`, so a
//! wrong workstation clock does not break requests (case B8); the broker accepts a bounded skew
//! and remembers nonces within that window to refuse replays.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// HTTP header that carries the proof.
pub const HEADER: &str = "paw-device-proof";
/// Largest difference the broker accepts between the proof's time and its own clock.
pub const MAX_SKEW_MS: i64 = 60_000;

const DOMAIN: &[u8] = b"paw-device-proof-v1\0";

/// The bytes the device key signs: domain tag, method, path with query, SHA-256 of the body,
/// the time, the nonce and the SHA-256 of the bearer token the request presents (binding the
/// proof to that token). Fields are length-prefixed so no two requests share an encoding.
pub fn message(
    method: &str,
    path_and_query: &str,
    body: &[u8],
    time_ms: i64,
    nonce: &[u8; 16],
    token: &str,
) -> Vec<u8> {
    let mut m = DOMAIN.to_vec();
    for part in [method.as_bytes(), path_and_query.as_bytes()] {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(part);
    }
    m.extend_from_slice(&Sha256::digest(body));
    m.extend_from_slice(&time_ms.to_be_bytes());
    m.extend_from_slice(nonce);
    m.extend_from_slice(&Sha256::digest(token.as_bytes()));
    m
}

/// Parsed header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofHeader {
    pub time_ms: i64,
    pub nonce: [u8; 16],
    pub signature: [u8; 64],
}

impl ProofHeader {
    pub fn encode(&self) -> String {
        format!(
            "t={};n={};s={}",
            self.time_ms,
            b64url(&self.nonce),
            b64url(&self.signature)
        )
    }

    /// Strict parse: exactly the three fields, in order, with exact lengths.
    pub fn parse(v: &str) -> Option<Self> {
        let mut it = v.split(';');
        let t = it.next()?.strip_prefix("t=")?;
        let n = it.next()?.strip_prefix("n=")?;
        let s = it.next()?.strip_prefix("s=")?;
        if it.next().is_some() || t.len() > 20 {
            return None;
        }
        Some(Self {
            time_ms: t.parse().ok()?,
            nonce: from_b64url(n)?.try_into().ok()?,
            signature: from_b64url(s)?.try_into().ok()?,
        })
    }
}

fn b64url(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// Strict: the engine refuses padding and non-zero trailing bits, so each value has one encoding.
fn from_b64url(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_junk() {
        let h = ProofHeader {
            time_ms: 1_764_000_000_000,
            nonce: [7; 16],
            signature: [9; 64],
        };
        let s = h.encode();
        assert_eq!(ProofHeader::parse(&s), Some(h.clone()));
        for bad in [
            "",
            "t=1;n=AAAA;s=AAAA",
            &format!("{s};x=1"),
            &s.replace("t=", "T="),
            &s.replacen('n', "s", 1),
        ] {
            assert_eq!(ProofHeader::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn base64url_is_canonical() {
        for len in 0..40 {
            let b: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(from_b64url(&b64url(&b)).as_deref(), Some(&b[..]));
        }
        // "AB" decodes to one byte only if its unused bits are zero.
        assert_eq!(from_b64url("AA"), Some(vec![0]));
        assert_eq!(from_b64url("AB"), None);
        assert_eq!(from_b64url("A"), None);
        assert_eq!(from_b64url("A+"), None);
    }

    #[test]
    fn message_binds_every_input() {
        let base = message("GET", "/v1/me", b"", 1, &[0; 16], "tok");
        let variants = [
            message("POST", "/v1/me", b"", 1, &[0; 16], "tok"),
            message("GET", "/v1/me?x", b"", 1, &[0; 16], "tok"),
            message("GET", "/v1/me", b"x", 1, &[0; 16], "tok"),
            message("GET", "/v1/me", b"", 2, &[0; 16], "tok"),
            message("GET", "/v1/me", b"", 1, &[1; 16], "tok"),
            message("GET", "/v1/me", b"", 1, &[0; 16], "tok2"),
            message("GE", "T/v1/me", b"", 1, &[0; 16], "tok"),
        ];
        for v in variants {
            assert_ne!(v, base);
        }
    }
}
