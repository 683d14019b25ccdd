//! Filtered reads of the trail, for the history screen and for investigations.
//!
//! Results are ordered by time (then seq), because that is what a time-range filter shows and
//! what every index ends in; chain order is what [`super::LocalTrail::records`] gives.
//! User text never reaches SQL or the FTS5 query language as syntax: values are bound, and
//! search words are quoted as FTS5 strings.

use sqlx::{QueryBuilder, Sqlite};

use super::SELECT_RECORD;
use crate::error::AuditError;
use crate::event::Outcome;

/// The largest page [`Filter::limit`] may ask for.
pub const MAX_LIMIT: u32 = 10_000;

/// Trigrams looked up for one subject substring. Any subset of a substring's trigrams finds a
/// superset of the rows that contain it (the row itself is checked after), so a long needle
/// need not cost a long FTS query.
const MAX_TRIGRAMS: usize = 12;

/// Words allowed in one text search.
const MAX_WORDS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// What to look for. Every set field must match (AND); unset fields match everything.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Events at or after this time (Unix ms).
    pub from_ms: Option<i64>,
    /// Events before this time (Unix ms, exclusive).
    pub until_ms: Option<i64>,
    /// Exact action (event kind), e.g. `grant.request`.
    pub action: Option<String>,
    /// Exact actor.
    pub actor: Option<String>,
    /// A substring of the subject (target), ASCII case-insensitive. Looked up among the
    /// distinct subjects (by trigram index from three characters on), then their rows.
    pub subject_contains: Option<String>,
    pub outcome: Option<Outcome>,
    /// Words that must all occur in the detail's text values (justifications, tickets), in any
    /// order; case and diacritics are ignored. A word with punctuation (`T-123`) matches as a
    /// phrase of its parts.
    pub text: Option<String>,
    pub order: Order,
    /// Page size, 1 to [`MAX_LIMIT`].
    pub limit: u32,
    pub offset: u64,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            from_ms: None,
            until_ms: None,
            action: None,
            actor: None,
            subject_contains: None,
            outcome: None,
            text: None,
            order: Order::NewestFirst,
            limit: 100,
            offset: 0,
        }
    }
}

/// `"…"` with inner quotes doubled: an FTS5 string, never an operator.
fn fts_string(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// An FTS5 query for rows whose subject may contain `needle`, or `None` if it is too short
/// for a trigram.
fn trigram_query(needle: &str) -> Option<String> {
    let chars: Vec<char> = needle.chars().collect();
    // Trigrams with control characters are left out: FTS5 does not find a line break inside a
    // quoted query string, and a NUL would cut the string short. Leaving a trigram out only
    // widens the candidate set, which the row check narrows again.
    let mut grams: Vec<String> = chars
        .windows(3)
        .filter(|w| !w.iter().any(|c| c.is_control()))
        .map(|w| w.iter().collect())
        .collect();
    grams.sort_unstable();
    grams.dedup();
    if grams.is_empty() {
        return None;
    }
    if grams.len() > MAX_TRIGRAMS {
        let step = grams.len().div_ceil(MAX_TRIGRAMS);
        grams = grams.into_iter().step_by(step).collect();
    }
    Some(
        grams
            .iter()
            .map(|g| fts_string(g))
            .collect::<Vec<_>>()
            .join(" AND "),
    )
}

/// An FTS5 query requiring every word of `text`.
fn words_query(text: &str) -> Result<String, AuditError> {
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect();
    if words.is_empty() {
        return Err(AuditError::BadFilter("the search text has no words".into()));
    }
    if words.len() > MAX_WORDS {
        return Err(AuditError::BadFilter(format!(
            "the search text has more than {MAX_WORDS} words"
        )));
    }
    Ok(words
        .into_iter()
        .map(fts_string)
        .collect::<Vec<_>>()
        .join(" AND "))
}

/// The query for `f`. `prefix` goes before the SELECT (tests use `EXPLAIN QUERY PLAN` to pin
/// the index plan).
pub(super) fn build(f: &Filter, prefix: &str) -> Result<QueryBuilder<'static, Sqlite>, AuditError> {
    if f.limit == 0 || f.limit > MAX_LIMIT {
        return Err(AuditError::BadFilter(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let offset =
        i64::try_from(f.offset).map_err(|_| AuditError::BadFilter("offset is too large".into()))?;
    let mut q = QueryBuilder::new(format!("{prefix}{SELECT_RECORD}"));
    q.push(" WHERE 1 = 1");
    if let Some(from) = f.from_ms {
        q.push(" AND time_ms >= ").push_bind(from);
    }
    if let Some(until) = f.until_ms {
        q.push(" AND time_ms < ").push_bind(until);
    }
    if let Some(action) = &f.action {
        q.push(" AND action = ").push_bind(action.clone());
    }
    if let Some(actor) = &f.actor {
        q.push(" AND actor = ").push_bind(actor.clone());
    }
    if let Some(outcome) = f.outcome {
        q.push(" AND outcome = ").push_bind(outcome.as_str());
    }
    if let Some(needle) = f.subject_contains.as_deref().filter(|s| !s.is_empty()) {
        // Matching names first (few: subjects repeat), then their rows by index.
        q.push(" AND subject IN (SELECT subject FROM audit_subject_name WHERE ");
        if let Some(m) = trigram_query(needle) {
            q.push("id IN (SELECT rowid FROM audit_subject WHERE audit_subject MATCH ")
                .push_bind(m)
                .push(") AND ");
        }
        // The trigram match is a candidate set; this is the definition of a match.
        q.push("instr(lower(subject), lower(")
            .push_bind(needle.to_owned())
            .push(")) > 0)");
    }
    if let Some(text) = &f.text {
        q.push(" AND seq IN (SELECT rowid FROM audit_text WHERE audit_text MATCH ")
            .push_bind(words_query(text)?)
            .push(")");
    }
    q.push(match f.order {
        Order::NewestFirst => " ORDER BY time_ms DESC, seq DESC",
        Order::OldestFirst => " ORDER BY time_ms, seq",
    });
    q.push(" LIMIT ")
        .push_bind(i64::from(f.limit))
        .push(" OFFSET ")
        .push_bind(offset);
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_quoted_as_fts_strings() {
        assert_eq!(
            words_query("rotate  T-123 \"x\" OR NEAR(a b) !!").unwrap(),
            r#""rotate" AND "T-123" AND """x""" AND "OR" AND "NEAR(a" AND "b)""#
        );
        assert!(matches!(words_query(" !! "), Err(AuditError::BadFilter(_))));
        assert_eq!(trigram_query("ab"), None);
        assert_eq!(trigram_query("a\nbc"), None);
        assert_eq!(trigram_query("a\nbcd").unwrap(), r#""bcd""#);
        assert_eq!(trigram_query("a\"bc").unwrap(), r#""""bc" AND "a""b""#);
        let long = "x".repeat(3) + &"abcdefghijklmnopqrstuvwxyz".repeat(2);
        let q = trigram_query(&long).unwrap();
        assert!(q.matches(" AND ").count() < MAX_TRIGRAMS);
    }
}
