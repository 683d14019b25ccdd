//! `cargo xtask cases`: every case of the security catalogue, with the tests that cover it.
//!
//! A test covers a case when its name starts with the case id (`a11_…`, `c1_c7_…`, `b8_e4_…`;
//! `a01_…` is A1), the convention of SECURITY-CASES.md. The command fails when:
//! - a case has no test;
//! - a case has no row in SECURITY.md's table of covered cases;
//! - SECURITY.md names a test (`b9_…`, or a prefix `b1_*`) that does not exist, so a row cannot
//!   keep pointing at a test that was renamed or removed.
//!
//! The catalogue is the team's `../shared/SECURITY-CASES.md`; a copy is committed as
//! `docs/SECURITY-CASES.md` so a fresh clone can run this, and the two must not differ.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A case id: its section letter and number (`('a', 11)`).
type Case = (char, u32);

pub fn run() -> Result<()> {
    let root = crate::util::root();
    let catalogue = catalogue(&root)?;
    let tests = test_names(&root)?;
    let security = std::fs::read_to_string(root.join("SECURITY.md")).context("SECURITY.md")?;

    let mut covering: BTreeMap<Case, Vec<&str>> = BTreeMap::new();
    for name in tests.keys() {
        for case in cases_of(name) {
            covering.entry(case).or_default().push(name);
        }
    }
    let rows = covered_rows(&security);
    let mut problems = Vec::new();
    println!("{:<5} {:>5}  tests", "case", "count");
    for case in &catalogue {
        let names = covering.get(case).map(Vec::as_slice).unwrap_or(&[]);
        let id = format!("{}{}", case.0.to_ascii_uppercase(), case.1);
        let shown: Vec<&str> = names.iter().take(3).copied().collect();
        let more = names.len().saturating_sub(3);
        println!(
            "{id:<5} {:>5}  {}{}",
            names.len(),
            shown.join(", "),
            if more > 0 {
                format!(" (+{more})")
            } else {
                String::new()
            }
        );
        if names.is_empty() {
            problems.push(format!("{id}: no test name starts with its id"));
        }
        if !rows.contains(case) {
            problems.push(format!(
                "{id}: no row of SECURITY.md's covered table names it"
            ));
        }
    }
    for named in named_tests(&security) {
        let found = match named.strip_suffix('*') {
            Some(prefix) => tests.keys().any(|t| t.starts_with(prefix)),
            None => tests.contains_key(named.as_str()),
        };
        if !found {
            problems.push(format!("SECURITY.md names `{named}`, which is no test"));
        }
    }
    println!(
        "{} cases, {} case tests",
        catalogue.len(),
        covering.values().map(Vec::len).sum::<usize>()
    );
    if !problems.is_empty() {
        bail!("security cases:\n  {}", problems.join("\n  "));
    }
    Ok(())
}

/// The case ids of the catalogue, in its order, from its `- A1 …` lines.
fn catalogue(root: &Path) -> Result<Vec<Case>> {
    let copy = root.join("docs/SECURITY-CASES.md");
    let text = std::fs::read_to_string(&copy).with_context(|| copy.display().to_string())?;
    let shared = root.join("../shared/SECURITY-CASES.md");
    if let Ok(team) = std::fs::read_to_string(&shared) {
        if team != text {
            bail!(
                "{} differs from the team's {}: copy it over",
                copy.display(),
                shared.display()
            );
        }
    }
    let mut cases = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("- ") else {
            continue;
        };
        let id = rest.split_whitespace().next().unwrap_or("");
        if let Some(case) = parse_id(id) {
            cases.push(case);
        }
    }
    if cases.is_empty() {
        bail!("no case ids in {}", copy.display());
    }
    Ok(cases)
}

/// `A11` or `a11` or `a01` → `('a', 11)`.
fn parse_id(s: &str) -> Option<Case> {
    let mut chars = s.chars();
    let letter = chars.next()?.to_ascii_lowercase();
    let digits = chars.as_str();
    if !('a'..='n').contains(&letter) || digits.is_empty() || digits.len() > 2 {
        return None;
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((letter, digits.parse().ok()?))
}

/// The cases a test name claims: its leading `_`-separated ids.
fn cases_of(name: &str) -> Vec<Case> {
    name.split('_').map_while(parse_id).collect()
}

/// Every `#[test]`-like function in the Rust sources, by name, with its file.
fn test_names(root: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let mut files = Vec::new();
    for dir in ["crates", "tests", "src-tauri", "fuzz", "xtask"] {
        rust_files(&root.join(dir), &mut files)?;
    }
    let mut names = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(name) = fn_name(line) else { continue };
            // An attribute naming a test sits in the lines just above (`#[test]`,
            // `#[tokio::test(…)]`, `#[sqlx::test]`), possibly under a doc comment or `#[cfg]`.
            let above = lines[i.saturating_sub(6)..i]
                .iter()
                .rev()
                .take_while(|l| {
                    let t = l.trim_start();
                    t.starts_with('#') || t.starts_with("//") || t.ends_with(')') || t.is_empty()
                })
                .any(|l| l.contains("#[test]") || l.contains("::test"));
            if above {
                names.insert(name.to_string(), file.clone());
            }
        }
    }
    Ok(names)
}

fn fn_name(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let t = t.strip_prefix("pub ").unwrap_or(t);
    let t = t.strip_prefix("async ").unwrap_or(t);
    let rest = t.strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    Some(&rest[..end])
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !matches!(name, "target" | "node_modules" | "corpus" | "regressions") {
                rust_files(&path, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The cases named in the first cell of the rows of SECURITY.md's "Covered" table
/// (`A1–A16, B11`, `C2, B9, B12 (…)`).
fn covered_rows(security: &str) -> BTreeSet<Case> {
    let mut cases = BTreeSet::new();
    let mut in_covered = false;
    for line in security.lines() {
        if line.starts_with("## ") {
            in_covered = line.trim() == "## Covered";
            continue;
        }
        if !in_covered || !line.starts_with("| ") {
            continue;
        }
        let cell = line[2..].split(" | ").next().unwrap_or("");
        // Only the ids before the first parenthesis name cases; the words after describe them.
        let head = cell.split('(').next().unwrap_or("");
        for part in head.split([',', ' ']) {
            let part = part.trim();
            if let Some((a, b)) = part.split_once('–') {
                if let (Some(from), Some(to)) = (parse_id(a), parse_id(b)) {
                    if from.0 == to.0 {
                        for n in from.1..=to.1 {
                            cases.insert((from.0, n));
                        }
                    }
                }
            } else if let Some(case) = parse_id(part) {
                cases.insert(case);
            }
        }
    }
    cases
}

/// Test names SECURITY.md cites in backticks: `file.rs::name`, `name`, or a prefix `b1_*`.
fn named_tests(security: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, chunk) in security.split('`').enumerate() {
        if i % 2 == 0 {
            continue;
        }
        let name = chunk.rsplit("::").next().unwrap_or(chunk);
        let head = name.trim_end_matches('*');
        let is_name = head
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if is_name && !cases_of(head).is_empty() && head.contains('_') {
            let full_name = !name.ends_with('*') && !name.ends_with('_');
            // `b1_*` and `a01_*` … are prefixes; `…_` before an ellipsis is one too.
            out.insert(if full_name {
                head.to_string()
            } else {
                format!("{head}*")
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_names_and_rows_parse() {
        assert_eq!(parse_id("A11"), Some(('a', 11)));
        assert_eq!(parse_id("a01"), Some(('a', 1)));
        assert_eq!(parse_id("o1"), None);
        assert_eq!(parse_id("nhi4"), None);
        assert_eq!(cases_of("c1_c7_whoami_through"), vec![('c', 1), ('c', 7)]);
        assert_eq!(cases_of("k3_nhi4_a_p256"), vec![('k', 3)]);
        assert!(cases_of("helpdesk1_masking").is_empty());
        let rows = covered_rows(
            "## Covered\n| case | tests |\n|---|---|\n| A1–A3, B11 | x |\n| C2 (with D1 in words) | y |\n## Not\n| F3 | z |\n",
        );
        let want: BTreeSet<Case> = [('a', 1), ('a', 2), ('a', 3), ('b', 11), ('c', 2)].into();
        assert_eq!(rows, want);
        let named = named_tests("`x.rs::a11_race` and `b1_*`, `paw audit verify`, `c1_c7_…`");
        let want: BTreeSet<String> = ["a11_race".into(), "b1_*".into()].into();
        assert_eq!(named, want);
    }
}
