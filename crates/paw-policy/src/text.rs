//! Character rules for short text that a person reads before deciding something: a pattern, a
//! target name, a ticket, a justification, an entitlement's description.
//!
//! The threat is text that reads differently from what it is: a newline that forges a second
//! line in the approvals inbox or a log, a bidirectional override that reverses "prod" into
//! "dorp", a zero-width space that makes two names look equal. Such text is rejected, never
//! cleaned up, so what the approver saw is byte for byte what was stored and signed.

/// Characters that would let a name look like something else to a human reader or a log:
/// bidirectional overrides and isolates, directional marks, zero-width characters and the BOM.
pub(crate) fn is_deceptive(c: char) -> bool {
    matches!(c,
        '\u{061C}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}'
        | '\u{FEFF}')
}

/// Line and paragraph separators are whitespace, not control characters, yet many renderers
/// break the line on them: they are a newline by another name.
fn is_line_break(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

/// Content rules for free text (spaces allowed inside, one line, nothing invisible).
/// Length is the caller's rule, because each field has its own bounds.
pub(crate) fn check_free_text(s: &str) -> Result<(), &'static str> {
    if s.chars().all(char::is_whitespace) {
        return Err("is empty or only whitespace");
    }
    if s.chars().any(char::is_control) {
        return Err("contains a control character");
    }
    if s.chars().any(is_line_break) {
        return Err("contains a line or paragraph separator");
    }
    if s.chars().any(is_deceptive) {
        return Err("contains an invisible or bidirectional formatting character");
    }
    // Never trimmed: trimming would make the stored text differ from the signed text.
    if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return Err("starts or ends with whitespace");
    }
    Ok(())
}

/// Content rules for a single token (a ticket id, a group name): free-text rules plus no
/// whitespace at all.
pub(crate) fn check_token(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("is empty");
    }
    for c in s.chars() {
        if c.is_control() {
            return Err("contains a control character");
        }
        if c.is_whitespace() {
            return Err("contains whitespace");
        }
        if is_deceptive(c) {
            return Err("contains an invisible or bidirectional formatting character");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_accepts_ordinary_sentences() {
        for s in [
            "INC-42 vacuum the orders table",
            "x",
            "Réindexation après incident, voir INC-7",
            "two  spaces inside are kept as written",
        ] {
            assert_eq!(check_free_text(s), Ok(()), "{s:?}");
        }
    }

    #[test]
    fn free_text_rejections() {
        let cases: &[(&str, &str)] = &[
            ("", "is empty or only whitespace"),
            (" ", "is empty or only whitespace"),
            ("\t \u{a0}", "is empty or only whitespace"),
            ("\n", "is empty or only whitespace"),
            ("fix\nApproved by: bob", "contains a control character"),
            ("fix\rthing", "contains a control character"),
            ("fix\tthing", "contains a control character"),
            ("fix\u{0}", "contains a control character"),
            ("fix \u{1b}[2K", "contains a control character"),
            ("fix\u{7f}", "contains a control character"),
            ("fix\u{85}thing", "contains a control character"),
            ("fix\u{2028}thing", "contains a line or paragraph separator"),
            ("fix\u{2029}thing", "contains a line or paragraph separator"),
            (
                "fix \u{202e}dorp",
                "contains an invisible or bidirectional formatting character",
            ),
            (
                "fix\u{200b}thing",
                "contains an invisible or bidirectional formatting character",
            ),
            (
                "\u{feff}fix thing",
                "contains an invisible or bidirectional formatting character",
            ),
            (" fix thing", "starts or ends with whitespace"),
            ("fix thing ", "starts or ends with whitespace"),
            ("\u{a0}fix thing", "starts or ends with whitespace"),
            ("fix thing\u{3000}", "starts or ends with whitespace"),
        ];
        for (s, reason) in cases {
            assert_eq!(check_free_text(s), Err(*reason), "{s:?}");
        }
    }

    #[test]
    fn token_rejections() {
        assert_eq!(check_token("INC-42"), Ok(()));
        let cases: &[(&str, &str)] = &[
            ("", "is empty"),
            ("INC 42", "contains whitespace"),
            (" INC-42", "contains whitespace"),
            ("INC\u{a0}42", "contains whitespace"),
            ("INC\u{2028}42", "contains whitespace"),
            ("INC-42\n", "contains a control character"),
            ("INC-\u{0}", "contains a control character"),
            (
                "INC-\u{202e}24",
                "contains an invisible or bidirectional formatting character",
            ),
            (
                "INC\u{2060}-42",
                "contains an invisible or bidirectional formatting character",
            ),
        ];
        for (s, reason) in cases {
            assert_eq!(check_token(s), Err(*reason), "{s:?}");
        }
    }
}
