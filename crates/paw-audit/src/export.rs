//! Rendering events for export, with hostile text made inert (case D5).

use crate::error::AuditError;
use crate::event::Event;

/// Renders `event` as one line of JSON, without the trailing newline (the caller joins lines
/// with `\n`).
///
/// serde_json already escapes quotes, backslashes and C0 controls. This also escapes, as
/// `\uXXXX`, characters that JSON allows raw but that mislead a reader of the file:
/// DEL and C1 controls (terminal escapes), U+2028/U+2029 (line breaks to many viewers),
/// and bidi/invisible formatting characters (U+202A–U+202E, U+2066–U+2069, marks, zero-width,
/// BOM) that can make a line display differently from what it contains. The escaped line
/// parses back to the identical event.
pub fn to_json_line(event: &Event) -> Result<String, AuditError> {
    let json = serde_json::to_string(event)?;
    let mut out = String::with_capacity(json.len());
    // Every character escaped here is non-ASCII or DEL; compact serde_json output is
    // printable ASCII outside string literals, so each one sits inside a string, where a
    // `\uXXXX` escape means exactly that character.
    for c in json.chars() {
        if must_escape(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Outcome;
    use serde_json::json;

    const HOSTILE: &str = "ok\n{\"seq\":99,\"forged\":true}\r\u{1b}[2K\u{7f}\u{85}\u{9b}31m\u{2028}\u{2029}\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}\u{2066}\u{2067}\u{2068}\u{2069}\u{200e}\u{200f}\u{061c}\u{200b}\u{feff}\t\0end";

    fn hostile_event() -> Event {
        Event {
            seq: 7,
            time_ms: 1,
            actor: format!("mallory{HOSTILE}"),
            action: "grant.request".into(),
            subject: format!("prod-1{HOSTILE}"),
            outcome: Outcome::Denied,
            detail: json!({"justification": HOSTILE, HOSTILE: [HOSTILE]}),
        }
    }

    #[test]
    fn d5_export_is_one_line_without_raw_hostile_characters() {
        let line = to_json_line(&hostile_event()).unwrap();
        assert_eq!(line.lines().count(), 1);
        for c in line.chars() {
            assert!(
                c.is_ascii() && !c.is_ascii_control(),
                "raw {c:?} in exported line"
            );
        }
    }

    #[test]
    fn d5_hostile_characters_are_escaped_not_dropped() {
        let line = to_json_line(&hostile_event()).unwrap();
        for escaped in [
            "\\n", "\\r", "\\t", "\\u0000", "\\u001b", "\\u007f", "\\u0085", "\\u009b", "\\u2028",
            "\\u2029", "\\u202a", "\\u202e", "\\u2066", "\\u2069", "\\u200e", "\\u200f", "\\u061c",
            "\\u200b", "\\ufeff",
        ] {
            assert!(line.contains(escaped), "{escaped} missing from {line}");
        }
        // The forged record stays inside a string: its quotes are escaped.
        assert!(line.contains("{\\\"seq\\\":99"));
    }

    #[test]
    fn d5_escaped_line_parses_back_to_the_same_event() {
        let event = hostile_event();
        let line = to_json_line(&event).unwrap();
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn d5_ordinary_text_is_left_readable() {
        let event = Event {
            seq: 1,
            time_ms: 0,
            actor: "zoë".into(),
            action: "session.open".into(),
            subject: "база-1".into(),
            outcome: Outcome::Success,
            detail: json!({"note": "日本語 ok"}),
        };
        let line = to_json_line(&event).unwrap();
        assert!(line.contains("zoë") && line.contains("база-1") && line.contains("日本語"));
    }
}
