//! The TOML reader: `[[account]]` tables, one [`RawRow`] each.

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::error::{Result, VaultError};
use crate::generate::PasswordRules;
use crate::limits::MAX_IMPORT_ROWS;
use crate::SecretBytes;

use super::rows::RawRow;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    account: Vec<Spanned<Account>>,
}

/// Every field is optional so that a missing one is that row's error in the report, not a
/// parser error for the whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Account {
    target: Option<String>,
    account: Option<String>,
    kind: Option<String>,
    secret: Option<Secret>,
    rules: Option<toml::Table>,
}

/// Moves the parsed string into its zeroizing holder as soon as serde hands it over.
struct Secret(SecretBytes);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(|s| Secret(SecretBytes::from(s)))
    }
}

pub(super) fn read(bytes: &[u8]) -> Result<Vec<RawRow>> {
    let text = std::str::from_utf8(bytes).map_err(|e| VaultError::ImportMalformed {
        line: Some(line_of(bytes, e.valid_up_to())),
        reason: "not UTF-8 text",
    })?;
    // toml's messages quote the offending source line, which may hold a secret: keep the line.
    let file: File = toml::from_str(text).map_err(|e| VaultError::ImportMalformed {
        line: e.span().map(|s| line_of(bytes, s.start)),
        reason: "not an import file (TOML syntax, or a value or key that is not allowed)",
    })?;
    if file.account.len() > MAX_IMPORT_ROWS {
        return Err(VaultError::ImportTooManyRows {
            max: MAX_IMPORT_ROWS,
        });
    }
    Ok(file
        .account
        .into_iter()
        .map(|spanned| {
            let line = line_of(bytes, spanned.span().start);
            let a = spanned.into_inner();
            RawRow {
                line,
                target: a.target,
                account: a.account,
                kind: a.kind,
                secret: a.secret.map(|s| s.0),
                rules: a.rules.map(rules).transpose(),
                malformed: None,
            }
        })
        .collect())
}

/// A rules table is checked per row, so one account's typo does not reject the whole file.
/// The reason names the problem without quoting the table.
fn rules(table: toml::Table) -> std::result::Result<PasswordRules, String> {
    toml::Value::Table(table).try_into().map_err(|_| {
        "rules must use only length, lowercase, uppercase, digits, symbols, symbol_set, \
         forbidden, require_each_class, with the right types"
            .to_string()
    })
}

/// 1-based line of a byte offset.
fn line_of(bytes: &[u8], offset: usize) -> u64 {
    let upto = bytes.get(..offset).unwrap_or(bytes);
    1 + upto.iter().filter(|&&b| b == b'\n').count() as u64
}
