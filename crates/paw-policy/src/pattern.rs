//! Anchored target and role patterns (case B4).
//!
//! A pattern is either an exact name or a glob where `*` stands for one or more characters
//! inside a single dot-separated label. A pattern always covers the whole name: there is no
//! unanchored form, so `prod-*` can never match `xprod-1` or `prod-1.evil`. There is no regex
//! engine on purpose: an auditor must be able to tell what a pattern admits by reading it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::text::is_deceptive;
use crate::PolicyError;

/// An anchored name pattern, parsed from a configuration string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pattern {
    source: String,
    /// Split once at parse time; `None` means the pattern is an exact name.
    labels: Option<Vec<Vec<Token>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Token {
    Lit(char),
    Star,
}

const LABEL_SEPARATOR: char = '.';
const WILDCARD: char = '*';

/// The character rules shared by patterns and the names they are matched against.
fn check_chars(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("empty");
    }
    for c in s.chars() {
        if c.is_whitespace() {
            return Err("contains whitespace");
        }
        if c.is_control() {
            return Err("contains a control character");
        }
        if is_deceptive(c) {
            return Err("contains an invisible or bidirectional formatting character");
        }
    }
    if s.split(LABEL_SEPARATOR).any(str::is_empty) {
        return Err("has an empty label (leading, trailing or doubled '.')");
    }
    Ok(())
}

impl Pattern {
    /// Parses a pattern from configuration. Rejects rather than repairs: no trimming.
    pub fn parse(source: &str) -> Result<Self, PolicyError> {
        let invalid = |reason| PolicyError::InvalidPattern { reason };
        check_chars(source).map_err(invalid)?;
        if !source
            .chars()
            .any(|c| c != WILDCARD && c != LABEL_SEPARATOR)
        {
            // `*`, `*.*` and friends admit every name of that shape: an entitlement to
            // "everything" must be written out, not implied by a wildcard.
            return Err(invalid("has no literal character"));
        }
        if source.contains("**") {
            // `**` means "across labels" in many glob dialects; refuse it rather than let a
            // reader assume a reach it does not have.
            return Err(invalid("contains '**'"));
        }
        let labels = if source.contains(WILDCARD) {
            Some(
                source
                    .split(LABEL_SEPARATOR)
                    .map(|label| {
                        label
                            .chars()
                            .map(|c| {
                                if c == WILDCARD {
                                    Token::Star
                                } else {
                                    Token::Lit(c)
                                }
                            })
                            .collect()
                    })
                    .collect(),
            )
        } else {
            None
        };
        Ok(Pattern {
            source: source.to_owned(),
            labels,
        })
    }

    /// The pattern as written in configuration.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the pattern has no wildcard.
    pub fn is_exact(&self) -> bool {
        self.labels.is_none()
    }

    /// Whether `name` is admitted. Anchored at both ends, case-sensitive.
    ///
    /// A name that would be rejected as a pattern (control characters, whitespace, bidi
    /// overrides, empty labels) matches nothing, so `*` cannot swallow a smuggled newline.
    /// Case-sensitive because entitlements are an allow-list: a case mismatch can only deny.
    pub fn matches(&self, name: &str) -> bool {
        if check_chars(name).is_err() {
            return false;
        }
        let Some(labels) = &self.labels else {
            return self.source == name;
        };
        let name_labels: Vec<&str> = name.split(LABEL_SEPARATOR).collect();
        // Same number of labels: `*` never spans a '.', so the label count is fixed.
        name_labels.len() == labels.len()
            && labels
                .iter()
                .zip(&name_labels)
                .all(|(pattern, label)| label_matches(pattern, label))
    }
}

/// Glob match of one label, `*` = one or more characters. A plain table, no backtracking:
/// `m[i][j]` is whether the first `i` tokens match the first `j` characters.
fn label_matches(pattern: &[Token], label: &str) -> bool {
    let chars: Vec<char> = label.chars().collect();
    let width = chars.len() + 1;
    let mut m = vec![false; (pattern.len() + 1) * width];
    m[0] = true;
    for (i, token) in pattern.iter().enumerate() {
        for j in 1..width {
            let here = match token {
                Token::Lit(c) => *c == chars[j - 1] && m[i * width + j - 1],
                // Either this character starts the star's run, or extends it. Never empty:
                // `db-*` should mean "db- followed by something", not also "db-".
                Token::Star => m[i * width + j - 1] || m[(i + 1) * width + j - 1],
            };
            m[(i + 1) * width + j] = here;
        }
    }
    m[pattern.len() * width + chars.len()]
}

impl FromStr for Pattern {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::parse(s)
    }
}

impl TryFrom<String> for Pattern {
    type Error = PolicyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Pattern::parse(&s)
    }
}

impl From<Pattern> for String {
    fn from(p: Pattern) -> Self {
        p.source
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    fn rejected(s: &str) -> bool {
        matches!(Pattern::parse(s), Err(PolicyError::InvalidPattern { .. }))
    }

    #[test]
    fn b4_glob_is_anchored_at_the_start() {
        assert!(!p("prod-*").matches("xprod-1"));
        assert!(!p("prod-*").matches("a.prod-1"));
        assert!(!p("*-db").matches("prod-db-x"));
    }

    #[test]
    fn b4_glob_is_anchored_at_the_end() {
        assert!(!p("prod-*").matches("prod-1.evil"));
        assert!(!p("prod-*").matches("prod-1.evil.example"));
        assert!(!p("*-db").matches("prod-db.evil"));
    }

    #[test]
    fn b4_star_stays_within_one_label() {
        assert!(p("prod-*").matches("prod-1"));
        assert!(p("prod-*").matches("prod-db-eu-2"));
        assert!(p("*.corp.example").matches("db1.corp.example"));
        assert!(!p("*.corp.example").matches("a.db1.corp.example"));
        assert!(!p("*.corp.example").matches("corp.example"));
        assert!(p("db-*-primary").matches("db-eu-primary"));
        assert!(!p("db-*-primary").matches("db-eu.x-primary"));
        assert!(p("*.*.example").matches("a.b.example"));
    }

    #[test]
    fn b4_star_matches_at_least_one_character() {
        assert!(!p("prod-*").matches("prod-"));
        assert!(!p("db-*-primary").matches("db--primary"));
        assert!(p("db-*-primary").matches("db-x-primary"));
        assert!(p("a*b*c").matches("axbyc"));
        assert!(!p("a*b*c").matches("abc"));
        assert!(p("a*a").matches("aaa"));
        assert!(!p("a*a").matches("aa"));
    }

    #[test]
    fn b4_exact_pattern_matches_only_itself() {
        let exact = p("prod-1");
        assert!(exact.is_exact());
        assert!(exact.matches("prod-1"));
        for other in [
            "prod-10",
            "xprod-1",
            "prod-1.evil",
            "prod",
            "PROD-1",
            "prod-1 ",
        ] {
            assert!(!exact.matches(other), "{other:?}");
        }
    }

    #[test]
    fn b4_matching_is_case_sensitive() {
        assert!(!p("prod-*").matches("PROD-1"));
        assert!(!p("dba").matches("DBA"));
    }

    #[test]
    fn b4_rejects_empty_and_whitespace() {
        for s in [
            "",
            " ",
            "prod- 1",
            " prod-*",
            "prod-*\t",
            "prod\u{a0}1",
            "prod\u{3000}1",
        ] {
            assert!(rejected(s), "{s:?}");
        }
    }

    #[test]
    fn b4_rejects_control_and_bidi_characters() {
        for s in [
            "prod\n1",
            "prod\r*",
            "prod\u{0}",
            "prod\u{1b}[0m",
            "prod\u{7f}",
            "prod\u{85}",
            "prod-\u{202e}1",
            "prod-\u{2066}*",
            "prod\u{200b}-1",
            "\u{feff}prod",
        ] {
            assert!(rejected(s), "{s:?}");
        }
    }

    #[test]
    fn b4_rejects_patterns_without_a_literal() {
        for s in ["*", "*.*", "*.*.*"] {
            assert!(rejected(s), "{s:?}");
        }
        assert!(rejected("**"));
        assert!(rejected("prod-**"));
    }

    #[test]
    fn b4_rejects_empty_labels() {
        for s in [".prod", "prod.", "prod..example", "."] {
            assert!(rejected(s), "{s:?}");
        }
    }

    #[test]
    fn b4_names_with_smuggled_characters_never_match() {
        let glob = p("prod-*");
        for name in [
            "prod-1\n",
            "prod-\u{202e}1",
            "prod-1 ",
            "prod-\u{0}",
            "",
            "prod-1.",
        ] {
            assert!(!glob.matches(name), "{name:?}");
        }
    }

    #[test]
    fn b4_error_does_not_echo_the_pattern() {
        let err = Pattern::parse("evil\u{202e}\n*").unwrap_err().to_string();
        assert!(!err.contains('\n') && !err.contains('\u{202e}'), "{err:?}");
    }

    #[test]
    fn parses_from_config_strings_and_round_trips() {
        let parsed: Vec<Pattern> = serde_json::from_str(r#"["prod-*", "db1"]"#).unwrap();
        assert_eq!(parsed[0].as_str(), "prod-*");
        assert!(parsed[1].is_exact());
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            r#"["prod-*","db1"]"#
        );
        assert!(serde_json::from_str::<Pattern>(r#""*""#).is_err());
        assert_eq!("prod-*".parse::<Pattern>().unwrap(), p("prod-*"));
    }
}
