//! Machine identities (CI/CD, services, automation): what the broker, `pawctl` and the app
//! exchange about them, and the exact bytes a machine's key signs.
//!
//! A machine proves itself with a key (Ed25519, or P-256 for keys held in a TPM, HSM or KMS)
//! whose private half never leaves it, or with an OIDC workload token exchanged for a session
//! bound to a key it made for that session alone.
//! Either way, each privileged action is signed by that key over the step-up challenge and the
//! action's hash ([`stepup_message`]), the machine's equivalent of a security-key assertion.
//!
//! Every signed message starts with its own domain tag, so a signature made for one step can
//! never be presented as another.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ts_rs::TS;
use utoipa::ToSchema;

/// The credential a machine sends where a person sends a WebAuthn assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineProof {
    /// The signing key, base64url: Ed25519 (32 bytes) or compressed P-256 (33 bytes), registered
    /// for the machine.
    pub machine_key: String,
    /// base64url signature over [`stepup_message`]: Ed25519, or P-256 ECDSA/SHA-256 as `r || s`
    /// (64 bytes, low `s`).
    pub signature: String,
}

fn tagged(tag: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = tag.to_vec();
    for p in parts {
        // Length-prefixed, so no two part lists give the same bytes.
        let len = u32::try_from(p.len()).unwrap_or(u32::MAX);
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(p);
    }
    m
}

/// What a machine signs to answer a step-up (login included): the challenge and the action hash.
pub fn stepup_message(challenge: &str, action_hash: &str) -> Vec<u8> {
    tagged(
        b"paw-machine-stepup-v1\0",
        &[challenge.as_bytes(), action_hash.as_bytes()],
    )
}

/// What a machine signs with its first key when it redeems its join token: the token is
/// covered by its hash only, so the signature reveals nothing of it.
pub fn join_message(machine: &str, public_key: &str, join_token: &str) -> Vec<u8> {
    let token_hash = Sha256::digest(join_token.as_bytes());
    tagged(
        b"paw-machine-join-v1\0",
        &[machine.as_bytes(), public_key.as_bytes(), &token_hash],
    )
}

/// What the session key signs when a workload token is exchanged: the key proves it is held by
/// whoever presents the token, so a token lifted from a log is not enough on its own.
pub fn workload_message(token: &str, session_key: &str) -> Vec<u8> {
    let token_hash = Sha256::digest(token.as_bytes());
    tagged(
        b"paw-machine-workload-v1\0",
        &[&token_hash, session_key.as_bytes()],
    )
}

/// What the new key signs when a machine rotates to it (the old key signs the request itself
/// through the device proof).
pub fn rotate_message(machine: &str, new_key: &str) -> Vec<u8> {
    tagged(
        b"paw-machine-rotate-v1\0",
        &[machine.as_bytes(), new_key.as_bytes()],
    )
}

/// How a machine logs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
// Separate attributes: ts-rs drops a `serde(...)` it cannot parse whole, and would then
// describe the externally tagged shape instead of this one.
#[serde(tag = "kind", rename_all = "snake_case")]
#[serde(deny_unknown_fields)]
pub enum MachineAuth {
    /// A key pair (Ed25519 or P-256); the first key is registered with a single-use join token.
    Key,
    /// An OIDC workload token from `issuer` (one of the broker's `[[machines.oidc_issuer]]`),
    /// whose claims match every rule: claim name → glob (`*` any run, `?` one character).
    Oidc {
        issuer: String,
        claims: BTreeMap<String, String>,
    },
}

/// A machine identity as an admin writes it. The broker checks every field; the step-up that
/// creates it signs [`MachineSpec::sha256`], so nothing in it can change after the key touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct MachineSpec {
    pub name: String,
    /// The accountable person (a user name). Mandatory (case K1).
    pub owner: String,
    /// A second user, or `group:NAME`, who may take ownership when the owner goes.
    pub backup_owner: Option<String>,
    pub purpose: String,
    /// `prod`, `staging`, …: the inventory flags a credential seen across environments.
    pub environment: String,
    /// After this (Unix ms) the machine cannot log in.
    #[ts(type = "number | null")]
    pub expires_at_ms: Option<i64>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub auth: MachineAuth,
    /// Source addresses (IPs or CIDRs) it may log in from; empty means any, flagged when new.
    #[serde(default)]
    pub sources: Vec<String>,
}

impl MachineSpec {
    /// SHA-256 (hex) of the spec's JSON with sorted keys: what the creating step-up binds.
    pub fn sha256(&self) -> String {
        // serde_json's Value keeps object keys sorted (no preserve_order feature), and every
        // number here is an integer, so this JSON is canonical.
        let value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        hex::encode(Sha256::digest(value.to_string().as_bytes()))
    }
}

/// `POST /v1/machines`: create a machine, with the admin's step-up for
/// `Action::ManageMachine { operation: "create", machine, owner, spec_sha256 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMachineRequest {
    pub spec: MachineSpec,
    pub challenge: String,
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// Answer to `POST /v1/machines`. The join token is shown once and only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateMachineResponse {
    pub machine: MachineView,
    /// For `auth = key`: single use, expires at `join_expires_at_ms`.
    pub join_token: Option<String>,
    pub join_expires_at_ms: Option<i64>,
}

/// `POST /v1/machines/join`: register the first key with the join token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinMachineRequest {
    pub machine: String,
    pub join_token: String,
    /// base64url public key: Ed25519 (32 bytes) or compressed P-256 (33 bytes).
    pub public_key: String,
    /// base64url signature by that key over [`join_message`].
    pub signature: String,
}

/// `POST /v1/machines/workload-login`: exchange an OIDC workload token for a session bound to
/// `session_key`, which signs [`workload_message`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkloadLoginRequest {
    pub token: String,
    /// base64url without padding: Ed25519 (32 bytes) or compressed P-256 (33 bytes).
    #[schema(
        pattern = "^(?:[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]|[A-Za-z0-9_-]{44})$",
        example = "WGZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY"
    )]
    pub session_key: String,
    pub signature: String,
}

/// `POST /v1/machines/self/rotate`: the calling machine adds `new_key`; its current key keeps
/// working until the overlap window ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateMachineKeyRequest {
    pub new_key: String,
    /// Signature by the new key over [`rotate_message`].
    pub signature: String,
}

/// Answer to a rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RotatedMachineKey {
    pub new_key: String,
    /// When the previous key stops working (Unix ms).
    pub old_key_retires_at_ms: i64,
}

/// `POST /v1/machines/{name}/owner`: hand a machine to a new owner (lifts a suspension), with
/// the admin's step-up for `Action::ManageMachine { operation: "transfer", machine, owner, .. }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferMachineRequest {
    pub owner: String,
    pub challenge: String,
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// One key of a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct MachineKeyView {
    /// base64url public key, Ed25519 or compressed P-256 (not a secret).
    pub public_key: String,
    /// `key` (registered) or `session` (made for one workload-token session).
    pub source: String,
    #[ts(type = "number")]
    pub created_at_ms: i64,
    #[ts(type = "number | null")]
    pub retires_at_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub last_used_at_ms: Option<i64>,
}

/// A risk the inventory raises about a machine (OWASP NHI Top 10, 2025), with the audit record
/// that raised it when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct MachineFlag {
    /// `owner_missing`, `owner_disabled`, `suspended`, `expired`, `unused`, `never_used`,
    /// `standing_privilege`, `key_not_rotated`, `new_source`, `source_refused`,
    /// `interactive_use`.
    pub code: String,
    pub detail: String,
    /// The audit record's sequence number, when one raised the flag.
    #[ts(type = "number | null")]
    pub audit_seq: Option<i64>,
}

/// A machine identity as the inventory shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct MachineView {
    pub name: String,
    /// The owner's name; `None` once the owner was disabled or removed.
    pub owner: Option<String>,
    pub backup_owner: Option<String>,
    pub purpose: String,
    pub environment: String,
    pub labels: BTreeMap<String, String>,
    /// `key` or `oidc`.
    pub auth_kind: String,
    /// For `oidc`: the issuer and the claim rules.
    pub oidc_issuer: Option<String>,
    pub oidc_claims: BTreeMap<String, String>,
    pub sources: Vec<String>,
    #[ts(type = "number")]
    pub created_at_ms: i64,
    #[ts(type = "number | null")]
    pub expires_at_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub suspended_at_ms: Option<i64>,
    pub suspended_reason: Option<String>,
    #[ts(type = "number | null")]
    pub last_used_at_ms: Option<i64>,
    /// The address it last logged in from.
    pub last_source: Option<String>,
    /// Age of the newest registered key (key machines), in days.
    #[ts(type = "number | null")]
    pub credential_age_days: Option<i64>,
    pub keys: Vec<MachineKeyView>,
    /// Grants approved or active now.
    pub open_grants: u32,
    pub flags: Vec<MachineFlag>,
}

/// `GET /v1/machines`: admins see every machine, anyone else the machines they own or back up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct MachineList {
    pub machines: Vec<MachineView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_domain_separated() {
        let a = stepup_message("c", "h");
        let b = rotate_message("c", "h");
        assert_ne!(a, b);
        assert_ne!(stepup_message("ab", "c"), stepup_message("a", "bc"));
        assert!(!join_message("m", "k", "secret-token")
            .windows(12)
            .any(|w| w == b"secret-token"));
    }

    #[test]
    fn spec_hash_covers_every_field() {
        let spec = MachineSpec {
            name: "ci".into(),
            owner: "alice".into(),
            backup_owner: None,
            purpose: "deploy".into(),
            environment: "prod".into(),
            expires_at_ms: None,
            labels: BTreeMap::new(),
            auth: MachineAuth::Oidc {
                issuer: "https://token.actions.githubusercontent.com".into(),
                claims: BTreeMap::from([("repository".into(), "org/app".into())]),
            },
            sources: vec![],
        };
        let base = spec.sha256();
        let mut other = spec.clone();
        if let MachineAuth::Oidc { claims, .. } = &mut other.auth {
            claims.insert("repository".into(), "org/*".into());
        }
        assert_ne!(other.sha256(), base);
        let mut other = spec.clone();
        other.sources.push("10.0.0.0/8".into());
        assert_ne!(other.sha256(), base);
        assert_eq!(spec.clone().sha256(), base);
    }
}
