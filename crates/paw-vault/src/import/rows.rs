//! The checks every imported row gets, whichever format it came from.

use std::collections::HashMap;

use crate::generate::PasswordRules;
use crate::limits::{MAX_NAME_CHARS, MAX_SECRET_BYTES};
use crate::SecretBytes;

use super::{AccountKind, Import, ImportReport, ImportRow, RowOutcome, RowResult};

/// The codes a row can fail with (besides `vault_import_duplicate`), stable for the UI.
pub mod codes {
    pub const ROW_MALFORMED: &str = "vault_import_row_malformed";
    pub const NAME_INVALID: &str = "vault_import_name_invalid";
    pub const DUPLICATE: &str = "vault_import_duplicate";
    pub const KIND_UNKNOWN: &str = "vault_import_kind_unknown";
    pub const SECRET_EMPTY: &str = "vault_import_secret_empty";
    pub const SECRET_TOO_LARGE: &str = "vault_import_secret_too_large";
    pub const SECRET_INVALID: &str = "vault_import_secret_invalid";
    pub const RULES_INVALID: &str = "vault_import_rules_invalid";
}

/// One row as a reader produced it, before any check. The secret is already in its holder.
#[derive(Debug)]
pub(crate) struct RawRow {
    pub line: u64,
    pub target: Option<String>,
    pub account: Option<String>,
    pub kind: Option<String>,
    pub secret: Option<SecretBytes>,
    /// `Err` holds a reason that names the rule or column, never a value.
    pub rules: Result<Option<PasswordRules>, String>,
    /// Set when the row's shape is wrong (a field count that differs from the header).
    pub malformed: Option<String>,
}

type Failure = (&'static str, String);

/// Checks every row, then refuses every row whose (target, account) appears more than once.
pub(crate) fn check_all(raw: Vec<RawRow>) -> Import {
    let keys: Vec<Option<(String, String)>> = raw.iter().map(key).collect();
    let mut lines: HashMap<&(String, String), Vec<u64>> = HashMap::new();
    for (row, key) in raw.iter().zip(&keys) {
        if let Some(key) = key {
            lines.entry(key).or_default().push(row.line);
        }
    }
    let mut report = Vec::with_capacity(raw.len());
    let mut passed = Vec::new();
    for (row, key) in raw.into_iter().zip(&keys) {
        let others: Vec<u64> = key
            .as_ref()
            .and_then(|k| lines.get(k))
            .map(|l| l.iter().copied().filter(|&x| x != row.line).collect())
            .unwrap_or_default();
        let target = echo_name(row.target.as_deref());
        let account = echo_name(row.account.as_deref());
        let kind = row.kind.as_deref().and_then(AccountKind::parse);
        let line = row.line;
        let outcome = match check_row(row, &others) {
            Ok(good) => {
                passed.push(good);
                RowOutcome::Ok
            }
            Err((code, message)) => RowOutcome::Error { code, message },
        };
        report.push(RowResult {
            line,
            target,
            account,
            kind,
            outcome,
        });
    }
    let ok = passed.len();
    let errors = report.len() - ok;
    Import {
        rows: passed,
        report: ImportReport {
            rows: report,
            ok,
            errors,
        },
    }
}

fn check_row(row: RawRow, duplicate_lines: &[u64]) -> Result<ImportRow, Failure> {
    if let Some(reason) = row.malformed {
        return Err((codes::ROW_MALFORMED, reason));
    }
    let target = checked_name("target", row.target)?;
    let account = checked_name("account", row.account)?;
    if !duplicate_lines.is_empty() {
        let list: Vec<String> = duplicate_lines.iter().map(u64::to_string).collect();
        return Err((
            codes::DUPLICATE,
            format!(
                "the same target and account are also on line {}; keep one row",
                list.join(", ")
            ),
        ));
    }
    let kind = match row.kind.as_deref() {
        None => return Err((codes::KIND_UNKNOWN, "kind is missing".into())),
        Some(text) => AccountKind::parse(text).ok_or_else(|| {
            (
                codes::KIND_UNKNOWN,
                "kind must be one of ssh_password, ssh_key, postgres_password, generic".into(),
            )
        })?,
    };
    let secret = row
        .secret
        .filter(|s| !s.is_empty())
        .ok_or_else(|| (codes::SECRET_EMPTY, "secret is empty".to_string()))?;
    if secret.len() > MAX_SECRET_BYTES {
        return Err((
            codes::SECRET_TOO_LARGE,
            format!("secret is over {MAX_SECRET_BYTES} bytes"),
        ));
    }
    check_secret(kind, &secret).map_err(|m| (codes::SECRET_INVALID, m.to_string()))?;
    let rules = row.rules.map_err(|m| (codes::RULES_INVALID, m))?;
    if let Some(rules) = &rules {
        if !kind.takes_password_rules() {
            return Err((
                codes::RULES_INVALID,
                "password rules do not apply to an ssh_key account".into(),
            ));
        }
        rules
            .validate()
            .map_err(|e| (codes::RULES_INVALID, e.to_string()))?;
    }
    Ok(ImportRow {
        line: row.line,
        target,
        account,
        kind,
        secret,
        rules,
    })
}

/// What the target will be asked to accept later must be usable now: a password goes into
/// `chpasswd`'s one line per account and into SQL, a key into an SSH client.
fn check_secret(kind: AccountKind, secret: &SecretBytes) -> Result<(), &'static str> {
    match kind {
        AccountKind::SshPassword | AccountKind::PostgresPassword => {
            let text = std::str::from_utf8(secret.expose())
                .map_err(|_| "a password must be UTF-8 text")?;
            if text.chars().any(char::is_control) {
                return Err("a password cannot hold control characters (line breaks, tabs)");
            }
            Ok(())
        }
        AccountKind::SshKey => {
            // Old PEM keys ("BEGIN RSA PRIVATE KEY") are rewritten by `ssh-keygen -p -f KEY`.
            const NOT_OPENSSH: &str = "an SSH key must be an OpenSSH private key \
                 (Ed25519, ECDSA or RSA; convert a PEM key with ssh-keygen -p)";
            let text = std::str::from_utf8(secret.expose()).map_err(|_| NOT_OPENSSH)?;
            let key = ssh_key::PrivateKey::from_openssh(text).map_err(|_| NOT_OPENSSH)?;
            if key.is_encrypted() {
                return Err("the SSH key is passphrase-protected; import it decrypted");
            }
            Ok(())
        }
        AccountKind::Generic => Ok(()),
    }
}

fn checked_name(what: &str, name: Option<String>) -> Result<String, Failure> {
    match name {
        None => Err((codes::NAME_INVALID, format!("{what} is missing"))),
        Some(n) if is_name(&n) => Ok(n),
        Some(_) => Err((
            codes::NAME_INVALID,
            format!("{what} must be 1 to {MAX_NAME_CHARS} characters of [A-Za-z0-9._@-]"),
        )),
    }
}

pub(crate) fn is_name(text: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
}

/// Only valid names are echoed into the report: an invalid one may be a shifted secret.
fn echo_name(name: Option<&str>) -> String {
    name.filter(|n| is_name(n)).unwrap_or_default().to_string()
}

fn key(row: &RawRow) -> Option<(String, String)> {
    if row.malformed.is_some() {
        return None;
    }
    match (row.target.as_deref(), row.account.as_deref()) {
        (Some(t), Some(a)) if is_name(t) && is_name(a) => {
            Some((t.to_ascii_lowercase(), a.to_string()))
        }
        _ => None,
    }
}
