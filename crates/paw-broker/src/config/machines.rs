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
pub const JWKS_CACHE_SECS: (u64, u64) = (10, 86_400);
/// Algorithms an issuer may be pinned to: asymmetric only, so a public key can never be used
/// as an HMAC secret.
pub const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
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
fn default_jwks_cache_secs() -> u64 {
    600
}

/// One trusted issuer of workload tokens, as written under `[[machines.oidc_issuer]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuerConfig {
    /// The exact `iss` value.
    pub issuer: String,
    /// https, or http only to a loopback host.
    pub jwks_url: String,
    /// The `aud` the token must carry.
    pub audience: String,
    /// Pinned: the header's `alg` must equal it.
    pub algorithm: String,
    #[serde(default = "default_jwks_cache_secs")]
    pub jwks_cache_secs: u64,
}

impl OidcIssuerConfig {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.issuer.is_empty() || self.audience.is_empty() {
            return Err("issuer and audience must not be empty".into());
        }
        if !ALGORITHMS.contains(&self.algorithm.as_str()) {
            return Err(format!(
                "algorithm {:?} is not one of {}",
                self.algorithm,
                ALGORITHMS.join(", ")
            ));
        }
        let url = url::Url::parse(&self.jwks_url).map_err(|e| format!("jwks_url: {e}"))?;
        let loopback = matches!(
            url.host_str(),
            Some("127.0.0.1") | Some("[::1]") | Some("::1") | Some("localhost")
        );
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err("jwks_url must be https (http only to a loopback host)".into());
        }
        let (lo, hi) = JWKS_CACHE_SECS;
        if !(lo..=hi).contains(&self.jwks_cache_secs) {
            return Err(format!("jwks_cache_secs must be between {lo} and {hi}"));
        }
        Ok(())
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
