//! Vaulted credentials (issue #17): the accounts that cannot use certificates (a `root`
//! password, a database owner login, an appliance's admin), as the broker, the app and `pawctl`
//! exchange them.
//!
//! Rules:
//! - No type here carries a secret except [`RevealedSecret`], the answer to a reveal; it is
//!   shown once and never stored by the client (its `Debug` hides the value).
//! - An account is named `target/account` (`web-1/root`): the name a step-up binds.

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use utoipa::ToSchema;

/// What kind of secret an account holds, and so how the broker uses and rotates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, TS)]
#[serde(rename_all = "snake_case")]
pub enum VaultKind {
    /// An SSH login by password; rotated with `chpasswd` on the target (or the account's
    /// configured command).
    SshPassword,
    /// An SSH login by private key; rotated by replacing its line in `authorized_keys`.
    SshKey,
    /// A PostgreSQL login role's password; rotated with `ALTER ROLE … PASSWORD`.
    PostgresPassword,
    /// Any other secret (an appliance, an API): reveal only, rotated by hand.
    Generic,
}

impl VaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SshPassword => "ssh_password",
            Self::SshKey => "ssh_key",
            Self::PostgresPassword => "postgres_password",
            Self::Generic => "generic",
        }
    }
}

/// Where an account's rotation stands, as the health page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct RotationStatus {
    /// The journal's state: `idle`, `pending`, `applied`, `verified`, `reconciling`, `failed`.
    pub state: String,
    /// `ok`, `failed`, or `never`.
    pub last_result: String,
    /// Why the last rotation failed (no secret in it), until one succeeds.
    pub last_error: Option<String>,
    #[ts(type = "number | null")]
    pub last_rotated_at_ms: Option<i64>,
    /// When the broker will rotate it next (schedule, or the end of a checkout after a reveal).
    #[ts(type = "number | null")]
    pub next_rotation_at_ms: Option<i64>,
    /// Set after a reveal: the secret is rotated as soon as its checkout ends.
    pub rotate_after_checkout: bool,
    /// Since when rotations have been failing (the alert stays until one succeeds).
    #[ts(type = "number | null")]
    pub failing_since_ms: Option<i64>,
}

/// Who holds an account checked out, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct Checkout {
    pub user: String,
    pub grant_id: String,
    #[ts(type = "number")]
    pub until_ms: i64,
}

/// One vaulted account, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct VaultAccountView {
    pub id: String,
    /// `target/account`.
    pub name: String,
    pub target: String,
    pub account: String,
    pub kind: VaultKind,
    /// One holder at a time.
    pub exclusive: bool,
    /// The secret's version: 1 when imported, +1 at each rotation.
    #[ts(type = "number")]
    pub version: i64,
    pub holder: Option<Checkout>,
    pub rotation: RotationStatus,
    #[ts(type = "number")]
    pub created_at_ms: i64,
}

/// `GET /v1/vault/accounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct VaultAccountList {
    pub accounts: Vec<VaultAccountView>,
    #[ts(type = "number")]
    pub now_ms: i64,
}

/// `POST /v1/vault/accounts/{id}/reveal`: the step-up for
/// `Action::RevealSecret { account, grant_id, reason }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealRequest {
    pub grant_id: String,
    pub reason: String,
    pub challenge: String,
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// The answer to a reveal: the secret, once. The app shows it until `show_until_ms`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct RevealedSecret {
    /// `target/account`.
    pub account: String,
    pub secret: String,
    /// The broker's time when it answered: the app counts the showing down from here, so a
    /// slow answer does not lengthen it.
    #[ts(type = "number")]
    pub now_ms: i64,
    /// When the app hides it again (broker time).
    #[ts(type = "number")]
    pub show_until_ms: i64,
    /// The checkout this reveal holds; the secret is rotated when it ends.
    #[ts(type = "number")]
    pub checkout_until_ms: i64,
}

impl std::fmt::Debug for RevealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevealedSecret")
            .field("account", &self.account)
            .field("secret", &"<redacted>")
            .field("show_until_ms", &self.show_until_ms)
            .finish_non_exhaustive()
    }
}

/// `POST /v1/vault/accounts/{id}/rotate`: an admin's step-up for
/// `Action::RotateSecret { account, reason }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    pub reason: String,
    pub challenge: String,
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// IPC `prepare_reveal`: which account, under which of the user's grants, and why. The core
/// turns it into `Action::RevealSecret` with the account's name from the broker's own list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct RevealInput {
    pub account_id: String,
    pub grant_id: String,
    pub reason: String,
}

/// IPC `prepare_rotation`: an admin rotates an account now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct RotateInput {
    pub account_id: String,
    pub reason: String,
}
