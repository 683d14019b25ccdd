//! What pawctl prints: one JSON value on stdout with `--json`, words otherwise; errors on
//! stderr as `pawctl: <code>: <message>` or `{"code","message"}`; and the inventory's CSV.
//!
//! Nothing printed here is a secret: the values handed in are views (grants, machines, public
//! keys), never a stored record.

use std::io::Write;

use serde::Serialize;

use crate::error::CliError;

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// `value` as JSON with `--json`, else `human()`.
    pub fn print<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        let text = if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(s) => s,
                Err(e) => {
                    self.error(&CliError::store(format!("encoding the answer: {e}")));
                    return;
                }
            }
        } else {
            human()
        };
        let mut out = std::io::stdout().lock();
        // A closed stdout (`pawctl grants | head -1`) is the reader's choice, not a failure.
        let _ = writeln!(out, "{}", text.trim_end_matches('\n'));
        let _ = out.flush();
    }

    /// `text` as it is (the CSV export), whatever `--json` says.
    pub fn raw(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    pub fn error(&self, e: &CliError) {
        eprintln!("{}", error_line(e, self.json));
    }
}

/// The stderr line for `e`.
pub fn error_line(e: &CliError, json: bool) -> String {
    if json {
        serde_json::to_string(&e.to_api())
            .unwrap_or_else(|_| format!(r#"{{"code":"{}","message":""}}"#, e.code))
    } else {
        format!("pawctl: {}: {}", e.code, e.message)
    }
}

/// Broker time (Unix ms) as RFC 3339 UTC, for people; JSON keeps the number.
pub fn when(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil: the proleptic Gregorian date of a day count since 1970.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A whole CSV document (RFC 4180, CRLF line ends).
pub fn csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::new();
    let line = |s: &mut String, cells: &mut dyn Iterator<Item = String>| {
        let joined: Vec<String> = cells.map(|c| csv_cell(&c)).collect();
        s.push_str(&joined.join(","));
        s.push_str("\r\n");
    };
    line(&mut s, &mut header.iter().map(|h| (*h).to_owned()));
    for r in rows {
        line(&mut s, &mut r.iter().cloned());
    }
    s
}

/// One CSV cell. A cell a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab, CR)
/// gets a leading `'`: labels and purposes are written by people, and the export is opened in
/// spreadsheets (CSV injection).
fn csv_cell(raw: &str) -> String {
    let guarded = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{raw}")
    } else {
        raw.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::exit::Exit;
    use paw_proto::ErrorCode;

    #[test]
    fn errors_print_code_and_message() {
        let e = CliError::new(ErrorCode::AccountLocked, Exit::Refused, "machine suspended");
        assert_eq!(
            error_line(&e, false),
            "pawctl: account_locked: machine suspended"
        );
        let v: serde_json::Value = serde_json::from_str(&error_line(&e, true)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"code": "account_locked", "message": "machine suspended"})
        );
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let doc = csv(
            &["name", "note"],
            &[
                vec!["a,b".into(), "say \"hi\"".into()],
                vec!["=HYPERLINK(\"x\")".into(), "-1".into()],
                vec!["plain".into(), "two\nlines".into()],
            ],
        );
        assert_eq!(
            doc,
            "name,note\r\n\"a,b\",\"say \"\"hi\"\"\"\r\n\"'=HYPERLINK(\"\"x\"\")\",'-1\r\nplain,\"two\nlines\"\r\n"
        );
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(when(0), "1970-01-01T00:00:00Z");
        assert_eq!(when(1_765_099_370_000), "2025-12-07T09:22:50Z");
        assert_eq!(when(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
