//! `[machines]`: how machine identities log in and how long their credentials live.
//!
//! ```toml
//! [machines]
//! key_overlap_secs = 3600        # after a rotation, the old key works this long (K4)
//! join_token_secs = 3600         # a join token's life (single use)
//! workload_session_secs = 3600   # a workload-token session's life (no refresh beyond it)
//! unused_days = 30               # inventory: flag a machine unused this long
//! rotate_days = 90               # inventory: flag a key older than this
//!
//! [[machines.oidc_issuer]]
//! issuer = "https://token.actions.githubusercontent.com"
//! jwks_url = "https://token.actions.githubusercontent.com/.well-known/jwks"
//! audience = "https://paw.example.com"
//! algorithm = "RS256"
//! ```

use serde::Deserialize;

use crate::base::error::{BrokerError, Result};

/// Bounds of every `[machines]` value, in one place.
pub const KEY_OVERLAP_SECS: (u64, u64) = (1, 7 * 24 * 3600);
pub const JOIN_TOKEN_SECS: (u64, u64) = (60, 7 * 24 * 3600);
pub const WORKLOAD_SESSION_SECS: (u64, u64) = (60, 12 * 3600);
/// How long a fetched key set may be used, in seconds.
const CACHE_SECS: std::ops::RangeInclusive<u64> = 10..=86_400;
const MAX_ISSUER_LEN: usize = 1024;
/// Algorithms an issuer may be pinned to: asymmetric only, since the broker holds no issuer's
/// secret and a public key must never serve as an HMAC secret.
pub const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA",
];

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachinesConfig {
    #[serde(default = "default_key_overlap")]
    pub key_overlap_secs: u64,
    #[serde(default = "default_join_token")]
    pub join_token_secs: u64,
    #[serde(default = "default_workload_session")]
    pub workload_session_secs: u64,
    #[serde(default = "default_unused_days")]
    pub unused_days: u64,
    #[serde(default = "default_rotate_days")]
    pub rotate_days: u64,
    #[serde(default)]
    pub oidc_issuer: Vec<OidcIssuerConfig>,
}

impl Default for MachinesConfig {
    fn default() -> Self {
        Self {
            key_overlap_secs: default_key_overlap(),
            join_token_secs: default_join_token(),
            workload_session_secs: default_workload_session(),
            unused_days: default_unused_days(),
            rotate_days: default_rotate_days(),
            oidc_issuer: Vec::new(),
        }
    }
}

fn default_key_overlap() -> u64 {
    3600
}
fn default_join_token() -> u64 {
    3600
}
fn default_workload_session() -> u64 {
    3600
}
fn default_unused_days() -> u64 {
    30
}
fn default_rotate_days() -> u64 {
    90
}
pub fn default_jwks_cache_secs() -> u64 {
    600
}

/// One trusted issuer of workload tokens, as written under `[[machines.oidc_issuer]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuerConfig {
    /// The exact `iss` value its tokens carry.
    pub issuer: String,
    /// Where its key set is: https, or http only when the host is loopback.
    pub jwks_url: String,
    /// The `aud` its tokens must carry to be meant for this broker.
    pub audience: String,
    /// The one algorithm accepted (see [`ALGORITHMS`]); the token header's `alg` must equal it.
    pub algorithm: String,
    /// How long a fetched key set is used before it is fetched again (10..=86400).
    #[serde(default = "default_jwks_cache_secs")]
    pub jwks_cache_secs: u64,
}

impl OidcIssuerConfig {
    /// Checks what can be checked without the network; messages name the field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.issuer.trim().is_empty() {
            return Err("issuer: must not be empty".into());
        }
        if self.issuer.len() > MAX_ISSUER_LEN
            || self
                .issuer
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(format!(
                "issuer: must be at most {MAX_ISSUER_LEN} characters, without spaces or control characters"
            ));
        }
        validate_jwks_url(&self.jwks_url)?;
        if self.audience.trim().is_empty() {
            return Err(format!(
                "audience: must not be empty (issuer {})",
                self.issuer
            ));
        }
        if !ALGORITHMS.contains(&self.algorithm.as_str()) {
            return Err(format!(
                "algorithm: {:?} is not one of {} (issuer {})",
                self.algorithm,
                ALGORITHMS.join(", "),
                self.issuer
            ));
        }
        if !CACHE_SECS.contains(&self.jwks_cache_secs) {
            return Err(format!(
                "jwks_cache_secs: must be {}..={} (issuer {}), is {}",
                CACHE_SECS.start(),
                CACHE_SECS.end(),
                self.issuer,
                self.jwks_cache_secs
            ));
        }
        Ok(())
    }
}

fn validate_jwks_url(raw: &str) -> std::result::Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("jwks_url: not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        // Credentials in the URL would end up in logs and error messages.
        return Err("jwks_url: must not carry a user name or password".into());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(
            "jwks_url: must be https (plain http is allowed only to 127.0.0.1, ::1 or localhost)"
                .into(),
        ),
        other => Err(format!("jwks_url: scheme {other} is not https")),
    }
}

/// Keys fetched in the clear can be swapped by anyone on the path, except on this machine.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

impl MachinesConfig {
    pub fn validate(&self) -> Result<()> {
        let range = |name: &str, v: u64, (lo, hi): (u64, u64)| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(BrokerError::Config(format!(
                    "machines.{name} must be between {lo} and {hi}, got {v}"
                )))
            }
        };
        range("key_overlap_secs", self.key_overlap_secs, KEY_OVERLAP_SECS)?;
        range("join_token_secs", self.join_token_secs, JOIN_TOKEN_SECS)?;
        range(
            "workload_session_secs",
            self.workload_session_secs,
            WORKLOAD_SESSION_SECS,
        )?;
        range("unused_days", self.unused_days, (1, 3650))?;
        range("rotate_days", self.rotate_days, (1, 3650))?;
        for (i, issuer) in self.oidc_issuer.iter().enumerate() {
            issuer
                .validate()
                .map_err(|m| BrokerError::Config(format!("machines.oidc_issuer[{i}]: {m}")))?;
            if self.oidc_issuer[..i]
                .iter()
                .any(|o| o.issuer == issuer.issuer)
            {
                return Err(BrokerError::Config(format!(
                    "machines.oidc_issuer[{i}]: issuer {} is listed twice",
                    issuer.issuer
                )));
            }
        }
        Ok(())
    }
}
