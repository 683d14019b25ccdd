//! A word as the shell will see it after quote removal: the literal text where it is known, and
//! where an expansion makes it unknowable, the expansion's own source text and a note of it.

use std::ops::Range;

/// One word after quote removal.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resolved {
    /// The literal value; an expansion stands as its source text (`$x`, `$(echo rm)`).
    pub text: String,
    /// The word as written, to show it back when it is not literal.
    pub raw: String,
    /// The source text of each expansion in the word.
    pub dynamic: Vec<String>,
    /// Where the expansions are in `text`.
    pub dyn_ranges: Vec<Range<usize>>,
    /// Positions in `text` of unquoted pattern characters, which the shell may expand to file
    /// names (`/bin/r?` runs `/bin/rm`).
    pub globs: Vec<usize>,
    /// Positions in `text` of `/` written literally (not coming from an expansion).
    pub slashes: Vec<usize>,
    /// An unquoted brace expansion (`{rm,x}` is two words to the shell).
    pub braces: bool,
}

impl Resolved {
    /// A word with a known value and nothing to expand.
    pub fn literal(s: &str) -> Self {
        Self {
            text: s.to_owned(),
            raw: quote(s),
            slashes: s.match_indices('/').map(|(i, _)| i).collect(),
            ..Self::default()
        }
    }

    pub fn push_literal(&mut self, s: &str, quoted: bool) {
        let base = self.text.len();
        let bytes = s.as_bytes();
        for (i, c) in s.char_indices() {
            match c {
                '/' => self.slashes.push(base + i),
                '*' | '?' if !quoted => self.globs.push(base + i),
                // A lone `[` is the `test` program; a bracket expression needs its `]`.
                '[' if !quoted && bytes[i..].contains(&b']') => self.globs.push(base + i),
                _ => {}
            }
        }
        self.text.push_str(s);
    }

    pub fn push_dynamic(&mut self, source: &str) {
        let start = self.text.len();
        self.text.push_str(source);
        self.dyn_ranges.push(start..self.text.len());
        self.dynamic.push(source.to_owned());
    }

    pub fn is_literal(&self) -> bool {
        self.dynamic.is_empty()
    }

    /// The program's basename, and why it cannot be known if it cannot: only what follows the
    /// last literal `/` matters, so `"$HOME/bin/rm"` is `rm` whatever `$HOME` is.
    pub fn basename(&self) -> (String, Option<String>) {
        let start = self.slashes.last().map_or(0, |s| s + 1);
        let base = self.text.get(start..).unwrap_or_default().to_owned();
        if let Some(r) = self.dyn_ranges.iter().find(|r| r.end > start) {
            let src = self.text.get(r.clone()).unwrap_or_default();
            return (
                self.text.clone(),
                Some(format!("program name comes from {src}")),
            );
        }
        if self.braces {
            return (
                base,
                Some(format!("program name {} is a brace expansion", self.raw)),
            );
        }
        if self.globs.iter().any(|g| *g >= start) {
            return (
                base,
                Some(format!(
                    "program name {} is a pattern the shell expands to file names",
                    self.raw
                )),
            );
        }
        if base.is_empty() {
            return (self.text.clone(), None);
        }
        (base, None)
    }

    /// How the word is shown in a normalized command.
    pub fn display(&self) -> String {
        if self.is_literal() {
            quote(&self.text)
        } else {
            self.raw.clone()
        }
    }
}

/// Shell-quotes a literal only where needed: `rm -rf '/tmp/a b'`.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '-' | '.' | '/' | ',' | ':' | '@' | '%' | '+' | '=')
        })
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The value of a `$'…'` string, as bash decodes it.
pub fn decode_ansi_c(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = it.next() else {
            out.push('\\');
            break;
        };
        match e {
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'e' | 'E' => out.push('\x1b'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '\\' | '\'' | '"' | '?' => out.push(e),
            'c' => {
                if let Some(x) = it.next() {
                    out.push(char::from((x as u32 & 0x1f) as u8));
                }
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match it.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            it.next();
                        }
                        None => break,
                    }
                }
                out.push(char::from((v & 0xff) as u8));
            }
            'x' | 'u' | 'U' => {
                let max = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut v: u32 = 0;
                let mut n = 0;
                while n < max {
                    match it.peek().and_then(|d| d.to_digit(16)) {
                        Some(d) => {
                            v = v.saturating_mul(16).saturating_add(d);
                            it.next();
                            n += 1;
                        }
                        None => break,
                    }
                }
                if n == 0 {
                    out.push('\\');
                    out.push(e);
                } else if e == 'x' {
                    out.push(char::from((v & 0xff) as u8));
                } else {
                    out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                }
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("rm"), "rm");
        assert_eq!(quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn ansi_c() {
        assert_eq!(decode_ansi_c(r"\x72m"), "rm");
        assert_eq!(decode_ansi_c(r"\162m"), "rm");
        assert_eq!(decode_ansi_c(r"\u0072m"), "rm");
        assert_eq!(decode_ansi_c(r"a\'b\n"), "a'b\n");
    }
}
