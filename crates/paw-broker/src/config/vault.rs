//! `[vault]`: where the key-encryption key comes from, and how rotation is paced.
//!
//! ```toml
//! [vault]
//! kek_id = "kek-2026-12"             # names the active key in every sealed secret
//! kek_file = "vault-kek"             # 0600 file, 32 bytes as hex or base64 (or PAWD_VAULT_KEK)
//! retired_keks = [{ id = "kek-2025", file = "vault-kek-2025" }]   # still open older secrets
//! rotate_days = 30                   # scheduled rotation of every account
//! reconcile_secs = 15                # how often unsettled rotations and ended checkouts are looked at
//! step_timeout_secs = 20             # one adapter step (log in, change, verify) gives up after this
//! reveal_show_secs = 30              # how long the app shows a revealed secret
//!
//! [[vault.account]]                  # options of one account (its secret comes from `pawd vault import`)
//! target = "web-1"
//! account = "deploy"
//! exclusive = true                   # one holder at a time (the default)
//! authorized_keys = ".ssh/authorized_keys"   # ssh_key: the file on the target listing its key
//! change_command = "passwd"          # ssh_password: a passwd-style command instead of chpasswd
//! ```
//!
//! The KEK is read at start; a broker whose KEK is missing or unreadable starts without a
//! vault and every vault call answers `vault_unavailable` (fail closed, case L5): nothing is
//! opened with a weaker key or none.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::base::error::{BrokerError, Result};

/// The environment variable that may hold the active KEK instead of `kek_file`.
pub const KEK_ENV: &str = "PAWD_VAULT_KEK";

/// Bounds of every `[vault]` value, in one place.
pub const ROTATE_DAYS: (u64, u64) = (1, 3650);
pub const RECONCILE_SECS: (u64, u64) = (1, 3600);
pub const STEP_TIMEOUT_SECS: (u64, u64) = (2, 300);
pub const REVEAL_SHOW_SECS: (u64, u64) = (5, 300);

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    pub kek_id: String,
    /// The active KEK's file; none: `PAWD_VAULT_KEK`.
    #[serde(default)]
    pub kek_file: Option<PathBuf>,
    #[serde(default)]
    pub retired_keks: Vec<RetiredKek>,
    #[serde(default = "default_rotate_days")]
    pub rotate_days: u64,
    #[serde(default = "default_reconcile_secs")]
    pub reconcile_secs: u64,
    #[serde(default = "default_step_timeout_secs")]
    pub step_timeout_secs: u64,
    #[serde(default = "default_reveal_show_secs")]
    pub reveal_show_secs: u64,
    #[serde(default)]
    pub account: Vec<AccountOptions>,
}

/// `[[vault.account]]`: how the vault treats one account. Accounts without an entry are
/// exclusive, keep keys in `.ssh/authorized_keys` and change passwords with `chpasswd`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountOptions {
    pub target: String,
    pub account: String,
    #[serde(default = "default_true")]
    pub exclusive: bool,
    #[serde(default)]
    pub authorized_keys: Option<String>,
    #[serde(default)]
    pub change_command: Option<String>,
}

fn default_true() -> bool {
    true
}

/// Longest `authorized_keys` path or `change_command`.
const MAX_OPTION_CHARS: usize = 256;

impl AccountOptions {
    fn validate(&self) -> Result<()> {
        let bad = |m: String| {
            Err(BrokerError::Config(format!(
                "vault.account {}/{}: {m}",
                self.target, self.account
            )))
        };
        if let Some(p) = &self.authorized_keys {
            let ok = !p.is_empty()
                && p.len() <= MAX_OPTION_CHARS
                && !p.starts_with('-')
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._/-%".contains(&b));
            if !ok {
                return bad("authorized_keys: a path of letters, digits and . _ / - only".into());
            }
        }
        if let Some(c) = &self.change_command {
            if c.trim().is_empty() || c.len() > MAX_OPTION_CHARS || c.chars().any(char::is_control)
            {
                return bad(format!(
                    "change_command: 1–{MAX_OPTION_CHARS} printable characters"
                ));
            }
        }
        Ok(())
    }
}

/// A KEK that no longer seals but still opens what it sealed, until a rewrap moves them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetiredKek {
    pub id: String,
    pub file: PathBuf,
}

fn default_rotate_days() -> u64 {
    30
}
fn default_reconcile_secs() -> u64 {
    15
}
fn default_step_timeout_secs() -> u64 {
    20
}
fn default_reveal_show_secs() -> u64 {
    30
}

impl VaultConfig {
    pub fn validate(&self) -> Result<()> {
        let check = |name: &str, v: u64, (lo, hi): (u64, u64)| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(BrokerError::Config(format!(
                    "vault.{name} must be between {lo} and {hi}, got {v}"
                )))
            }
        };
        check("rotate_days", self.rotate_days, ROTATE_DAYS)?;
        check("reconcile_secs", self.reconcile_secs, RECONCILE_SECS)?;
        check(
            "step_timeout_secs",
            self.step_timeout_secs,
            STEP_TIMEOUT_SECS,
        )?;
        check("reveal_show_secs", self.reveal_show_secs, REVEAL_SHOW_SECS)?;
        let mut ids = vec![self.kek_id.as_str()];
        for r in &self.retired_keks {
            if ids.contains(&r.id.as_str()) {
                return Err(BrokerError::Config(format!(
                    "vault: KEK id {:?} is used twice",
                    r.id
                )));
            }
            ids.push(&r.id);
        }
        for (i, a) in self.account.iter().enumerate() {
            a.validate()?;
            if self.account[..i]
                .iter()
                .any(|o| o.target == a.target && o.account == a.account)
            {
                return Err(BrokerError::Config(format!(
                    "vault.account {}/{} is listed twice",
                    a.target, a.account
                )));
            }
        }
        Ok(())
    }

    pub fn resolve(&mut self, base: &Path) {
        if let Some(f) = &mut self.kek_file {
            if f.is_relative() {
                *f = base.join(&*f);
            }
        }
        for r in &mut self.retired_keks {
            if r.file.is_relative() {
                r.file = base.join(&r.file);
            }
        }
    }

    /// The options of `target/account` (the defaults when it has no entry).
    pub fn options(&self, target: &str, account: &str) -> AccountOptions {
        self.account
            .iter()
            .find(|a| a.target == target && a.account == account)
            .cloned()
            .unwrap_or_else(|| AccountOptions {
                target: target.to_owned(),
                account: account.to_owned(),
                exclusive: true,
                authorized_keys: None,
                change_command: None,
            })
    }

    /// Loads the KEK ring: the active key from its file or `PAWD_VAULT_KEK`, the retired ones
    /// from their files. Every failure names the file or variable, never a key byte.
    pub fn load_ring(&self) -> std::result::Result<paw_vault::KekRing, paw_vault::VaultError> {
        use paw_vault::Kek;
        let active = match &self.kek_file {
            Some(f) => Kek::from_file(&self.kek_id, f)?,
            None => Kek::from_env(&self.kek_id, KEK_ENV)?,
        };
        let retired = self
            .retired_keks
            .iter()
            .map(|r| Kek::from_file(&r.id, &r.file))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        paw_vault::KekRing::new(active, retired)
    }
}
