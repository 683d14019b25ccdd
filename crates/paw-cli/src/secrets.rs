//! Reading the tokens pawctl is handed (join tokens, workload tokens) from a file, stdin or an
//! environment variable: never from argv, which every user of the host can read in `ps`.
//!
//! Errors name where the token was looked for, never what was found there.

use std::io::Read;
use std::path::Path;

use paw_client::Secret;

use crate::error::{CliError, Result};

/// A JWT from GitHub or GitLab is 1-2 KiB and a join token far less; anything larger is a
/// mistyped path (a log, a binary), not a token.
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

/// Where the join token comes from when `--token-file` is absent.
pub const JOIN_TOKEN_ENV: &str = "PAWCTL_JOIN_TOKEN";
/// Where `pawctl user enroll` finds the invite code when no file is named.
pub const INVITE_ENV: &str = "PAWCTL_INVITE";

/// The token in `path` (`-` is stdin), surrounding whitespace removed.
pub fn from_file(path: &Path, what: &str) -> Result<Secret<String>> {
    let mut raw = Secret::new(Vec::new());
    let read = if path.as_os_str() == "-" {
        read_bounded(std::io::stdin().lock(), &mut raw)
    } else {
        std::fs::File::open(path).and_then(|f| read_bounded(f, &mut raw))
    };
    read.map_err(|e| CliError::usage(format!("reading the {what} from {}: {e}", path.display())))?;
    if raw.expose().len() as u64 > MAX_TOKEN_BYTES {
        return Err(CliError::usage(format!(
            "{} is larger than a {what} can be",
            path.display()
        )));
    }
    let text = std::str::from_utf8(raw.expose())
        .map_err(|_| CliError::usage(format!("{} does not hold a {what}", path.display())))?;
    one_token(text, &path.display().to_string(), what)
}

/// The token in environment variable `var`.
pub fn from_env(var: &str, what: &str) -> Result<Secret<String>> {
    let value = Secret::new(std::env::var(var).map_err(|e| {
        CliError::usage(match e {
            std::env::VarError::NotPresent => {
                format!("${var} is not set (it should hold the {what})")
            }
            std::env::VarError::NotUnicode(_) => format!("${var} does not hold a {what}"),
        })
    })?);
    if value.expose().len() as u64 > MAX_TOKEN_BYTES {
        return Err(CliError::usage(format!(
            "${var} is larger than a {what} can be"
        )));
    }
    one_token(value.expose(), &format!("${var}"), what)
}

fn read_bounded(r: impl Read, into: &mut Secret<Vec<u8>>) -> std::io::Result<()> {
    // One byte over the limit is enough to know it is too large.
    let mut buf = Vec::new();
    let res = r.take(MAX_TOKEN_BYTES + 1).read_to_end(&mut buf);
    *into = Secret::new(buf);
    res.map(|_| ())
}

/// `text` trimmed, if it is one token; `source` names where it came from, for the error.
fn one_token(text: &str, source: &str, what: &str) -> Result<Secret<String>> {
    let t = text.trim();
    if t.is_empty() {
        return Err(CliError::usage(format!("{source} holds no {what}")));
    }
    if t.chars().any(|c| c.is_control() || c == ' ') {
        // Said without the value: two lines or words are something else than a token.
        return Err(CliError::usage(format!(
            "{source} does not hold a single {what}"
        )));
    }
    Ok(Secret::new(t.to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn file_tokens_are_trimmed_bounded_and_never_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "  eyJ.secret-part.sig\n").unwrap();
        assert_eq!(
            from_file(&p, "workload token").unwrap().expose(),
            "eyJ.secret-part.sig"
        );
        std::fs::write(&p, "a.secret-part\nb").unwrap();
        let e = from_file(&p, "workload token").unwrap_err();
        assert!(!e.message.contains("secret-part"), "{}", e.message);
        std::fs::write(&p, vec![b'a'; 70 * 1024]).unwrap();
        assert!(from_file(&p, "workload token").is_err());
        std::fs::write(&p, "\n").unwrap();
        assert!(from_file(&p, "workload token").is_err());
        let e = from_file(&dir.path().join("missing"), "join token").unwrap_err();
        assert!(e.message.contains("missing"), "{}", e.message);
    }

    #[test]
    fn env_tokens() {
        let e = from_env("PAWCTL_TEST_SURELY_UNSET_VAR", "workload token").unwrap_err();
        assert!(e.message.contains("is not set"), "{}", e.message);
    }
}
