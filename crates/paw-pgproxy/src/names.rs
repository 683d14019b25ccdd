//! Name validation (security case C8). Role and database names end up inside SQL text (DDL
//! cannot take bind parameters) and in startup packets, so they are checked against a small
//! alphabet first and quoted second; a name that needs escaping is refused, not escaped.

use crate::Error;

/// PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes; a longer name would silently
/// refer to a different (truncated) object.
pub const MAX_IDENTIFIER_LEN: usize = 63;

/// Accepts `[A-Za-z_][A-Za-z0-9_-]*`, at most 63 bytes. `what` names the field in the error.
///
/// The first character may not be `-` so a name can never read as a command-line option, and
/// quotes, whitespace, control characters, `;`, `=` and non-ASCII are all refused.
pub fn validate_identifier(what: &'static str, name: &str) -> Result<(), Error> {
    let Some(first) = name.chars().next() else {
        return Err(Error::bad_request(what, "empty"));
    };
    if name.len() > MAX_IDENTIFIER_LEN {
        return Err(Error::bad_request(
            what,
            format!("longer than {MAX_IDENTIFIER_LEN} bytes"),
        ));
    }
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(Error::bad_request(
            what,
            "must start with a letter or an underscore",
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(Error::bad_request(
            what,
            format!("character {bad:?} is not allowed (letters, digits, '_' and '-' only)"),
        ));
    }
    Ok(())
}

/// A validated identifier in double quotes. Validation guarantees there is no `"` to escape.
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

/// `paw_s_` + the session id lowercased with dashes removed (UUIDs are the usual form).
/// Anything but ASCII letters, digits and non-leading dashes is refused.
pub(crate) fn temp_role_name(session_id: &str) -> Result<String, Error> {
    const WHAT: &str = "session id";
    if session_id.starts_with('-') {
        return Err(Error::bad_request(WHAT, "must not start with '-'"));
    }
    if let Some(bad) = session_id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(Error::bad_request(
            WHAT,
            format!("character {bad:?} is not allowed (letters, digits and '-' only)"),
        ));
    }
    let cleaned: String = session_id
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if cleaned.is_empty() {
        return Err(Error::bad_request(WHAT, "empty"));
    }
    let name = format!("{}{cleaned}", crate::TEMP_ROLE_PREFIX);
    if name.len() > MAX_IDENTIFIER_LEN {
        return Err(Error::bad_request(
            WHAT,
            format!("the role name would exceed {MAX_IDENTIFIER_LEN} bytes"),
        ));
    }
    Ok(name)
}

/// Only names this crate could have minted may be dropped or swept.
pub(crate) fn validate_temp_role_name(name: &str) -> Result<(), Error> {
    validate_identifier("role name", name)?;
    let rest = name.strip_prefix(crate::TEMP_ROLE_PREFIX).unwrap_or("");
    if rest.is_empty()
        || !rest
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return Err(Error::bad_request(
            "role name",
            format!(
                "not a temporary role (must be {}<lowercase letters/digits>)",
                crate::TEMP_ROLE_PREFIX
            ),
        ));
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS.mmm+00` for a Unix time in milliseconds, years 1970..=9999.
/// Computed here (days-to-civil, proleptic Gregorian) so no clock or date crate is needed.
pub(crate) fn utc_timestamp(ms: i64) -> Result<String, Error> {
    const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31 23:59:59.999 UTC
    if !(0..=MAX_MS).contains(&ms) {
        return Err(Error::bad_request(
            "valid until",
            "outside 1970-01-01 .. 9999-12-31 UTC",
        ));
    }
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Ok(format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{milli:03}+00",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c8_identifiers_that_look_like_options_or_carry_quotes_are_rejected() {
        for bad in [
            "",
            "-oProxyCommand=x",
            "a\nb",
            "x\"; DROP ROLE paw; --",
            "a b",
            "a'b",
            "1abc",
            "é",
            "a;b",
            "a\0b",
            &"a".repeat(64),
        ] {
            let e = validate_identifier("role", bad).err();
            assert_eq!(e.map(|e| e.code()), Some("bad_request"), "{bad:?}");
        }
        for good in ["app_admin", "paw_test", "_x", "my-db", &"a".repeat(63)] {
            assert!(validate_identifier("role", good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn c8_session_ids_are_sanitized_or_rejected() {
        assert_eq!(
            temp_role_name("3F2504E0-4F89-11D3-9A0C-0305E82C3301").ok(),
            Some("paw_s_3f2504e04f8911d39a0c0305e82c3301".to_owned())
        );
        for bad in [
            "-oProxyCommand=x",
            "a\nb",
            "x\"; DROP ROLE paw; --",
            "",
            "---",
            "a_b",
            &"a".repeat(58),
        ] {
            let e = temp_role_name(bad).err();
            assert_eq!(e.map(|e| e.code()), Some("bad_request"), "{bad:?}");
        }
        assert!(temp_role_name(&"a".repeat(57)).is_ok());
    }

    #[test]
    fn c8_only_temporary_role_names_may_be_dropped() {
        assert!(validate_temp_role_name("paw_s_abc123").is_ok());
        for bad in [
            "paw",
            "app_admin",
            "paw_s_",
            "paw_s_ABC",
            "paw_s_a-b",
            "paw_s_x\"; DROP ROLE paw; --",
        ] {
            assert!(validate_temp_role_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timestamps_are_utc_and_exact() {
        assert_eq!(
            utc_timestamp(0).ok().as_deref(),
            Some("1970-01-01 00:00:00.000+00")
        );
        // 2024-02-29T12:34:56.789Z, a leap day.
        assert_eq!(
            utc_timestamp(1_709_210_096_789).ok().as_deref(),
            Some("2024-02-29 12:34:56.789+00")
        );
        assert_eq!(
            utc_timestamp(253_402_300_799_999).ok().as_deref(),
            Some("9999-12-31 23:59:59.999+00")
        );
        assert!(utc_timestamp(-1).is_err());
        assert!(utc_timestamp(i64::MAX).is_err());
    }
}
