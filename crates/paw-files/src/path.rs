//! Paths as the rules see them: absolute, with `.`, `..` and repeated slashes resolved
//! lexically. Symlinks are the target's business: the broker asks the target's realpath for
//! what a path really names and normalizes that too (M1).

/// Longest path accepted (Linux's PATH_MAX).
pub const MAX_PATH: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("paw: the path is empty")]
    Empty,
    #[error("paw: the path is longer than {MAX_PATH} bytes")]
    TooLong,
    #[error("paw: the path has a NUL byte or a line break")]
    BadByte,
    #[error("paw: the path is not absolute")]
    Relative,
}

/// `p` with `.`, `..` and `//` resolved, no trailing slash (`/` stays `/`). `..` at the root
/// stays at the root, as the kernel does.
pub fn normalize(p: &str) -> Result<String, PathError> {
    if p.is_empty() {
        return Err(PathError::Empty);
    }
    if p.len() > MAX_PATH {
        return Err(PathError::TooLong);
    }
    // A NUL ends the path for the target's C code while the check read on; a line break
    // would split the audit's one-line summary.
    if p.bytes().any(|b| b == 0 || b == b'\n' || b == b'\r') {
        return Err(PathError::BadByte);
    }
    if !p.starts_with('/') {
        return Err(PathError::Relative);
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// `p` read from `cwd` (the session's directory on the target), then normalized.
pub fn join_relative(cwd: &str, p: &str) -> Result<String, PathError> {
    if p.is_empty() {
        return Err(PathError::Empty);
    }
    if p.starts_with('/') {
        normalize(p)
    } else {
        normalize(&format!("{cwd}/{p}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m1_traversal_and_spelling_are_resolved_before_any_check() {
        for (cwd, p, want) in [
            ("/root", "../etc/shadow", "/etc/shadow"),
            ("/root", "/srv/app/../../etc/passwd", "/etc/passwd"),
            ("/root", "/srv//app/./x", "/srv/app/x"),
            ("/root", "x/", "/root/x"),
            ("/", "../../..", "/"),
            ("/srv/app", ".", "/srv/app"),
            ("/srv/app", "a/../../b", "/srv/b"),
        ] {
            assert_eq!(join_relative(cwd, p).unwrap(), want, "{cwd} {p}");
        }
    }

    #[test]
    fn unusable_paths_are_refused_with_a_reason() {
        assert_eq!(normalize(""), Err(PathError::Empty));
        assert_eq!(normalize("x"), Err(PathError::Relative));
        assert_eq!(normalize("/srv/a\0b"), Err(PathError::BadByte));
        assert_eq!(normalize("/srv/a\nb"), Err(PathError::BadByte));
        assert_eq!(
            normalize(&format!("/{}", "a".repeat(MAX_PATH))),
            Err(PathError::TooLong)
        );
    }
}
