//! Per-account password rules and the alphabet they leave.
//!
//! Rules are checked, never repaired: a length out of bounds, a symbol set given while symbols
//! are off, or a class whose every character is forbidden is an error naming the rule, so the
//! administrator who wrote it learns at once instead of at the first rotation.

use serde::{Deserialize, Serialize};

use crate::error::{Result, VaultError};
use crate::limits::{DEFAULT_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH};

/// ASCII punctuation without space, quotes, backslash, `$` and backtick: the characters that
/// change meaning inside quoting in shells, SQL literals and config files, which is where an
/// appliance's password-change command or an administrator's paste puts a password.
pub const DEFAULT_SYMBOLS: &str = "!#%&()*+,-./:;<=>?@[]^_{|}~";

/// What a generated password for one account may contain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordRules {
    /// Characters per password, 8 to 256.
    pub length: usize,
    pub lowercase: bool,
    pub uppercase: bool,
    pub digits: bool,
    pub symbols: bool,
    /// Replaces [`DEFAULT_SYMBOLS`] for targets that accept only some punctuation. Only with
    /// `symbols` on.
    pub symbol_set: Option<String>,
    /// Characters never used, for targets that reject some (or to avoid `O0Il1`).
    pub forbidden: String,
    /// Every enabled class appears at least once, for targets whose policy demands it.
    pub require_each_class: bool,
}

impl Default for PasswordRules {
    fn default() -> Self {
        PasswordRules {
            length: DEFAULT_PASSWORD_LENGTH,
            lowercase: true,
            uppercase: true,
            digits: true,
            symbols: true,
            symbol_set: None,
            forbidden: String::new(),
            require_each_class: true,
        }
    }
}

/// A character class of the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Lowercase,
    Uppercase,
    Digits,
    Symbols,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Lowercase => "lowercase",
            Class::Uppercase => "uppercase",
            Class::Digits => "digits",
            Class::Symbols => "symbols",
        }
    }
}

/// The characters a password may hold, and which of them make up each enabled class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Alphabet {
    /// Distinct ASCII bytes, at most 94, so one random byte can pick one of them.
    pub chars: Vec<u8>,
    pub classes: Vec<(Class, Vec<u8>)>,
}

impl PasswordRules {
    /// Checks the rules; `Ok` means [`crate::generate_password`] can produce a password.
    pub fn validate(&self) -> Result<()> {
        self.alphabet().map(|_| ())
    }

    /// Strength of one password in bits: `length × log2(alphabet size)`. Requiring each class
    /// lowers it slightly; this is the figure to show next to the rules, not a proof.
    pub fn entropy_bits(&self) -> Result<f64> {
        let size = self.alphabet()?.chars.len() as f64;
        Ok(self.length as f64 * size.log2())
    }

    pub(crate) fn alphabet(&self) -> Result<Alphabet> {
        if !(MIN_PASSWORD_LENGTH..=MAX_PASSWORD_LENGTH).contains(&self.length) {
            return Err(invalid(format!(
                "length must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH}, not {}",
                self.length
            )));
        }
        if let Some(set) = &self.symbol_set {
            check_symbol_set(set, self.symbols)?;
        }
        if let Some(c) = self.forbidden.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(invalid(format!(
                "forbidden may hold only printable ASCII, not U+{:04X}",
                u32::from(c)
            )));
        }
        let symbols = self.symbol_set.as_deref().unwrap_or(DEFAULT_SYMBOLS);
        let wanted = [
            (Class::Lowercase, self.lowercase, ascii_range(b'a', b'z')),
            (Class::Uppercase, self.uppercase, ascii_range(b'A', b'Z')),
            (Class::Digits, self.digits, ascii_range(b'0', b'9')),
            (Class::Symbols, self.symbols, symbols.as_bytes().to_vec()),
        ];
        let mut classes = Vec::new();
        for (class, enabled, mut chars) in wanted {
            if !enabled {
                continue;
            }
            chars.retain(|b| !self.forbidden.as_bytes().contains(b));
            if chars.is_empty() {
                return Err(invalid(format!(
                    "every {} character is forbidden; turn the class off instead",
                    class.name()
                )));
            }
            classes.push((class, chars));
        }
        if classes.is_empty() {
            return Err(invalid("no character class is enabled".into()));
        }
        if self.require_each_class && classes.len() > self.length {
            return Err(invalid(format!(
                "{} classes are required but a password has only {} characters",
                classes.len(),
                self.length
            )));
        }
        let chars = classes
            .iter()
            .flat_map(|(_, c)| c.iter().copied())
            .collect();
        Ok(Alphabet { chars, classes })
    }
}

/// A custom symbol set is punctuation only (a letter in it would skew the letter classes) and
/// has no repeats (a repeated symbol would be drawn twice as often).
fn check_symbol_set(set: &str, symbols_on: bool) -> Result<()> {
    if !symbols_on {
        return Err(invalid("symbol_set is given but symbols is off".into()));
    }
    if set.is_empty() {
        return Err(invalid(
            "symbol_set is empty; turn symbols off instead".into(),
        ));
    }
    let mut seen = Vec::new();
    for c in set.chars() {
        if !c.is_ascii_punctuation() {
            return Err(invalid(
                "symbol_set may hold only ASCII punctuation (no letters, digits or spaces)".into(),
            ));
        }
        if seen.contains(&c) {
            return Err(invalid(format!("symbol_set lists {c} twice")));
        }
        seen.push(c);
    }
    Ok(())
}

fn ascii_range(from: u8, to: u8) -> Vec<u8> {
    (from..=to).collect()
}

fn invalid(reason: String) -> VaultError {
    VaultError::RulesInvalid { reason }
}
