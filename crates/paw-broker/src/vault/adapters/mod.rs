//! How the vault talks to a target about an account: does a secret open it, change it to a new
//! one, and (keys) forget the old one. One module per protocol.
//!
//! Rules:
//! - A refusal of the secret is `Ok(false)`; anything else that stops the question being
//!   answered (target down, timeout, protocol error) is `Err(Unreachable)`. The reconciler only
//!   drops a secret that a login *refused*, never one it could not try (case L2).
//! - Secrets go to the target on the protocol's stdin or in its authentication exchange, never
//!   in a command line, an environment variable or a log.

pub mod postgres;
pub mod ssh;

use std::time::Duration;

use paw_proto::vault::VaultKind;
use paw_vault::SecretBytes;

use crate::config::sessions::TargetConfig;
use crate::vault::store::AccountRow;

/// Why a question could not be answered; no secret in it.
#[derive(Debug, Clone)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub type Answer<T> = std::result::Result<T, Unreachable>;

/// The account's kind, from its stored name.
pub fn kind(row: &AccountRow) -> Option<VaultKind> {
    Some(match row.kind.as_str() {
        "ssh_password" => VaultKind::SshPassword,
        "ssh_key" => VaultKind::SshKey,
        "postgres_password" => VaultKind::PostgresPassword,
        "generic" => VaultKind::Generic,
        _ => return None,
    })
}

/// Whether `secret` opens the account on its target.
pub async fn opens(
    target: &TargetConfig,
    row: &AccountRow,
    secret: &SecretBytes,
    limit: Duration,
) -> Answer<bool> {
    let q = async {
        match kind(row) {
            Some(VaultKind::SshPassword | VaultKind::SshKey) => {
                ssh::opens(target, row, secret).await
            }
            Some(VaultKind::PostgresPassword) => postgres::opens(target, row, secret).await,
            Some(VaultKind::Generic) | None => Err(Unreachable(format!(
                "accounts of kind {} are not rotated by paw",
                row.kind
            ))),
        }
    };
    tokio::time::timeout(limit, q)
        .await
        .unwrap_or_else(|_| Err(Unreachable("the target did not answer in time".into())))
}

/// Changes the account's secret on its target from `current` to `new`. For a key, the new
/// key is added beside the current one (both open until [`cleanup`]).
pub async fn change(
    target: &TargetConfig,
    row: &AccountRow,
    current: &SecretBytes,
    new: &SecretBytes,
    limit: Duration,
) -> Answer<()> {
    let q = async {
        match kind(row) {
            Some(VaultKind::SshPassword) => ssh::change_password(target, row, current, new).await,
            Some(VaultKind::SshKey) => ssh::add_key(target, row, current, new).await,
            Some(VaultKind::PostgresPassword) => postgres::change(target, row, current, new).await,
            Some(VaultKind::Generic) | None => Err(Unreachable(format!(
                "accounts of kind {} are not rotated by paw",
                row.kind
            ))),
        }
    };
    tokio::time::timeout(limit, q)
        .await
        .unwrap_or_else(|_| Err(Unreachable("the target did not answer in time".into())))
}

/// After a key account's new key is promoted: removes the `old` key from the target, logging
/// in with the `current` one. Nothing to do for passwords (the change replaced them).
pub async fn cleanup(
    target: &TargetConfig,
    row: &AccountRow,
    current: &SecretBytes,
    old: &SecretBytes,
    limit: Duration,
) -> Answer<()> {
    if kind(row) != Some(VaultKind::SshKey) {
        return Ok(());
    }
    tokio::time::timeout(limit, ssh::remove_key(target, row, current, old))
        .await
        .unwrap_or_else(|_| Err(Unreachable("the target did not answer in time".into())))
}
