//! `[sessions] mask`: the patterns replays replace with `••••`, compiled once at load so a bad
//! pattern is a config error, not a failed replay.

use regex::Regex;

use crate::base::error::{BrokerError, Result};

/// At most this many mask patterns, each compiled within this size: a replay runs every
/// pattern over every recording, so the config cannot make that unbounded.
/// What `[sessions] mask` holds when the config says nothing: the secrets people most often
/// type or print in the clear. `mask = []` turns masking off.
pub const DEFAULT_MASKS: &[&str] = &[
    r"(?i)\b(?:token|password|passwd|secret|api[_-]?key)=\S+",
    r"\bAKIA[0-9A-Z]{16}\b",
    r"(?i)aws_secret_access_key\s*[=:]\s*\S+",
    r"(?i)authorization:\s*bearer\s+\S+",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
];

/// The default patterns as the config holds them.
pub fn default_masks() -> Vec<String> {
    DEFAULT_MASKS.iter().map(|p| (*p).to_owned()).collect()
}

pub const MAX_MASKS: usize = 64;
const MASK_SIZE_LIMIT: usize = 1 << 20;

/// `[sessions] mask`, compiled.
#[derive(Debug, Clone, Default)]
pub struct Masks(Vec<Regex>);

impl Masks {
    /// Compiles every pattern; a pattern that does not compile, or that matches the empty
    /// string (it would mask nothing, so it is almost certainly a mistake), is a config error.
    pub fn compile(patterns: &[String]) -> Result<Self> {
        if patterns.len() > MAX_MASKS {
            return Err(BrokerError::Config(format!(
                "sessions.mask: at most {MAX_MASKS} patterns, got {}",
                patterns.len()
            )));
        }
        let mut out = Vec::with_capacity(patterns.len());
        for p in patterns {
            let re = regex::RegexBuilder::new(p)
                .size_limit(MASK_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    BrokerError::Config(format!("sessions.mask {p:?} is not a valid pattern: {e}"))
                })?;
            if re.is_match("") {
                return Err(BrokerError::Config(format!(
                    "sessions.mask {p:?} matches the empty string"
                )));
            }
            out.push(re);
        }
        Ok(Self(out))
    }

    /// The patterns as configured, in order.
    pub fn patterns(&self) -> Vec<String> {
        self.0.iter().map(|r| r.as_str().to_owned()).collect()
    }

    /// Whether these are [`DEFAULT_MASKS`] (the config said nothing).
    pub fn is_default(&self) -> bool {
        self.0.len() == DEFAULT_MASKS.len()
            && self
                .0
                .iter()
                .zip(DEFAULT_MASKS)
                .all(|(r, d)| r.as_str() == *d)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every match replaced by `with`: for what is written once, whole (an audit
    /// record's command line), where replays' stream-wise masking does not apply.
    pub fn mask(&self, text: &str, with: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (s, e) in self.ranges(text) {
            out.push_str(&text[at..s]);
            out.push_str(with);
            at = e;
        }
        out.push_str(&text[at..]);
        out
    }

    /// Byte ranges of `text` that some pattern matches, sorted and merged.
    pub fn ranges(&self, text: &str) -> Vec<(usize, usize)> {
        let mut r: Vec<(usize, usize)> = self
            .0
            .iter()
            .flat_map(|re| re.find_iter(text).map(|m| (m.start(), m.end())))
            .filter(|(s, e)| e > s)
            .collect();
        r.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(r.len());
        for (s, e) in r {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_patterns_compile_and_catch_what_they_name() {
        let masks = Masks::compile(&default_masks()).unwrap();
        for secret in [
            "curl -d token=abc123",
            "PASSWORD=hunter2",
            "AKIAABCDEFGHIJKLMNOP",
            "aws_secret_access_key = wJalrXUtnFEMI",
            "Authorization: Bearer eyJhbGciOi",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----",
        ] {
            assert!(!masks.ranges(secret).is_empty(), "{secret}");
        }
        assert!(masks.ranges("ls -la /etc && echo done").is_empty());
    }

    #[test]
    fn mask_replaces_each_match_and_keeps_the_rest() {
        let masks = Masks::compile(&default_masks()).unwrap();
        assert_eq!(
            masks.mask("mysql password=hunter2 -e 'drop x' token=t1", "*"),
            "mysql * -e 'drop x' *"
        );
        assert_eq!(masks.mask("ls -la", "*"), "ls -la");
    }
}
