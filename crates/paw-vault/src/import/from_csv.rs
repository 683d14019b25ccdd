//! The CSV reader: header check, one [`RawRow`] per record, optional rule columns.

use csv::{ByteRecord, ReaderBuilder};

use crate::error::{Result, VaultError};
use crate::generate::PasswordRules;
use crate::limits::MAX_IMPORT_ROWS;
use crate::SecretBytes;

use super::rows::RawRow;

const REQUIRED: [&str; 4] = ["target", "account", "kind", "secret"];
const RULE_COLUMNS: [&str; 8] = [
    "length",
    "lowercase",
    "uppercase",
    "digits",
    "symbols",
    "symbol_set",
    "forbidden",
    "require_each_class",
];

pub(super) fn read(bytes: &[u8]) -> Result<Vec<RawRow>> {
    // Flexible, so a row with the wrong number of fields is that row's error, not the file's.
    let mut reader = ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes);
    let header = reader.byte_headers().map_err(|e| malformed(&e))?.clone();
    let rule_columns = check_header(&header)?;

    let mut rows = Vec::new();
    let mut record = ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(malformed(&e)),
        }
        if rows.len() == MAX_IMPORT_ROWS {
            return Err(VaultError::ImportTooManyRows {
                max: MAX_IMPORT_ROWS,
            });
        }
        let line = record.position().map_or(0, |p| p.line());
        rows.push(to_row(line, &record, header.len(), &rule_columns));
    }
    Ok(rows)
}

/// The header is required so that a file with swapped columns is refused rather than read as
/// a password in the account column. It is not echoed in errors: a file without a header has
/// a data row there.
fn check_header(header: &ByteRecord) -> Result<Vec<&'static str>> {
    let bad = |reason| VaultError::ImportMalformed {
        line: Some(1),
        reason,
    };
    let names: Vec<&[u8]> = header.iter().collect();
    if names.len() < REQUIRED.len()
        || names
            .iter()
            .zip(REQUIRED)
            .any(|(got, want)| *got != want.as_bytes())
    {
        return Err(bad("the header must start with target,account,kind,secret"));
    }
    let mut rule_columns = Vec::new();
    for name in &names[REQUIRED.len()..] {
        let known = RULE_COLUMNS
            .into_iter()
            .find(|c| c.as_bytes() == *name)
            .ok_or_else(|| bad("the header has a column that is not a password rule"))?;
        if rule_columns.contains(&known) {
            return Err(bad("the header names a rule column twice"));
        }
        rule_columns.push(known);
    }
    Ok(rule_columns)
}

fn to_row(line: u64, record: &ByteRecord, width: usize, rule_columns: &[&str]) -> RawRow {
    let text = |i: usize| {
        record
            .get(i)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let malformed = (record.len() != width).then(|| {
        format!(
            "the row has {} fields; the header has {width}",
            record.len()
        )
    });
    RawRow {
        line,
        target: text(0),
        account: text(1),
        kind: text(2),
        secret: record.get(3).map(SecretBytes::from_slice),
        rules: rules(record, rule_columns),
        malformed,
    }
}

/// Rule cells overlay the defaults; a row whose rule cells are all empty has no rules.
fn rules(
    record: &ByteRecord,
    columns: &[&str],
) -> std::result::Result<Option<PasswordRules>, String> {
    let mut rules = PasswordRules::default();
    let mut any = false;
    for (i, column) in columns.iter().enumerate() {
        let Some(cell) = record.get(REQUIRED.len() + i).filter(|c| !c.is_empty()) else {
            continue;
        };
        any = true;
        let cell = std::str::from_utf8(cell).map_err(|_| format!("{column} is not UTF-8"))?;
        let flag = || match cell {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("{column} must be true or false")),
        };
        match *column {
            "length" => {
                rules.length = cell
                    .parse()
                    .map_err(|_| "length must be a whole number".to_string())?;
            }
            "lowercase" => rules.lowercase = flag()?,
            "uppercase" => rules.uppercase = flag()?,
            "digits" => rules.digits = flag()?,
            "symbols" => rules.symbols = flag()?,
            "symbol_set" => rules.symbol_set = Some(cell.to_string()),
            "forbidden" => rules.forbidden = cell.to_string(),
            "require_each_class" => rules.require_each_class = flag()?,
            _ => return Err(format!("{column} is not a password rule")),
        }
    }
    Ok(any.then_some(rules))
}

/// The csv crate's messages can quote field contents; only the line is kept.
fn malformed(e: &csv::Error) -> VaultError {
    VaultError::ImportMalformed {
        line: e.position().map(|p| p.line()),
        reason: "not readable as CSV",
    }
}
