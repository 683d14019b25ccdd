//! `[sessions] mask`: the patterns replays replace with `••••`, compiled once at load so a bad
//! pattern is a config error, not a failed replay.

use regex::Regex;

use crate::base::error::{BrokerError, Result};

/// At most this many mask patterns, each compiled within this size: a replay runs every
/// pattern over every recording, so the config cannot make that unbounded.
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

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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
