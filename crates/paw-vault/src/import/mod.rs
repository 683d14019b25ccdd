//! Import of existing account secrets from a CSV or TOML file, with a report per row.
//!
//! The broker reads the upload, calls [`parse_import`], shows the [`ImportReport`] (a dry run
//! stops there), seals the rows that passed, and keeps neither the file nor the rows.
//!
//! Rules:
//! - **The report never holds a secret.** It names the line, the target and account (echoed
//!   only when they are valid names, because a file with shifted columns can put a password
//!   in the account column), the kind, and a code. Messages never quote a cell, and parser
//!   errors are reduced to a line number: CSV and TOML parsers quote the offending text.
//! - **Checked, never repaired.** Cells are not trimmed; a name with a space is an error.
//! - **Ambiguity is an error.** Two rows for one (target, account) are both refused, since
//!   nothing says which secret is right. Targets compare case-insensitively (host names),
//!   accounts exactly (Unix and PostgreSQL names are case-sensitive).
//! - The parsers' internal buffers are not wiped; the caller treats the uploaded bytes as
//!   secret and drops them, and the parse result, promptly.
//!
//! CSV: a header `target,account,kind,secret`, then optionally rule columns named after the
//! fields of [`PasswordRules`] (`length`, `lowercase`, …, `require_each_class`); an empty rule
//! cell means the default, a row with every rule cell empty has no rules of its own.
//! TOML: `[[account]]` tables with `target`, `account`, `kind`, `secret` and an optional
//! `[account.rules]` table.

mod from_csv;
mod from_toml;
mod rows;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Result, VaultError};
use crate::generate::PasswordRules;
use crate::limits::MAX_IMPORT_BYTES;
use crate::SecretBytes;

pub use rows::codes;

/// What an account's secret is and how the broker uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// A Unix password, injected into SSH password auth and rotated with `chpasswd`.
    SshPassword,
    /// An OpenSSH private key, rotated by replacing the public key in `authorized_keys`.
    SshKey,
    /// A PostgreSQL login role's password, rotated with `ALTER ROLE … PASSWORD`.
    PostgresPassword,
    /// Anything else (an appliance, an API token), rotated by a configured command.
    Generic,
}

impl AccountKind {
    pub const ALL: [AccountKind; 4] = [
        AccountKind::SshPassword,
        AccountKind::SshKey,
        AccountKind::PostgresPassword,
        AccountKind::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::SshPassword => "ssh_password",
            AccountKind::SshKey => "ssh_key",
            AccountKind::PostgresPassword => "postgres_password",
            AccountKind::Generic => "generic",
        }
    }

    /// The exact stored name; no case folding, no aliases.
    pub fn parse(text: &str) -> Option<AccountKind> {
        AccountKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Whether rotation generates a password (and so per-account rules apply).
    pub fn takes_password_rules(self) -> bool {
        !matches!(self, AccountKind::SshKey)
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The file's format, as the caller knows it from the upload (name or content type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Csv,
    Toml,
}

/// A row that passed every check, ready to seal. `Debug` shows `<redacted>` for the secret.
#[derive(Debug)]
pub struct ImportRow {
    pub line: u64,
    pub target: String,
    pub account: String,
    pub kind: AccountKind,
    pub secret: SecretBytes,
    pub rules: Option<PasswordRules>,
}

/// The outcome of one row, as shown to the administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RowOutcome {
    Ok,
    Error { code: &'static str, message: String },
}

/// One row of the report. `target` and `account` are empty when the cell was not a valid
/// name (it is not echoed), `kind` is `None` when it was not a known kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowResult {
    pub line: u64,
    pub target: String,
    pub account: String,
    pub kind: Option<AccountKind>,
    pub outcome: RowOutcome,
}

/// Every row's outcome, in file order, and the totals. Holds no secret by construction: no
/// field can carry one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub rows: Vec<RowResult>,
    pub ok: usize,
    pub errors: usize,
}

impl ImportReport {
    /// Whether every row passed; a broker that imports all-or-nothing checks this.
    pub fn all_ok(&self) -> bool {
        self.errors == 0
    }
}

/// The parsed file: the rows that passed, and the report on all of them.
#[derive(Debug)]
pub struct Import {
    pub rows: Vec<ImportRow>,
    pub report: ImportReport,
}

/// Parses and checks an import file. A file-level problem (too large, too many rows, a bad
/// header, broken syntax) is an error; a bad row is a line in the report.
pub fn parse_import(format: ImportFormat, bytes: &[u8]) -> Result<Import> {
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(VaultError::ImportTooLarge {
            bytes: bytes.len(),
            max: MAX_IMPORT_BYTES,
        });
    }
    let raw = match format {
        ImportFormat::Csv => from_csv::read(bytes)?,
        ImportFormat::Toml => from_toml::read(bytes)?,
    };
    Ok(rows::check_all(raw))
}

#[cfg(test)]
mod tests;
