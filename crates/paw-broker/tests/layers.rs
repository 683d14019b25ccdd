//! The broker's layering, enforced on its sources (issue 13): only `http/` and `server.rs` know
//! the HTTP state, domain code never imports from `http/`, the top-level folders form no
//! cycle, and no source file grows past the size a reader can hold.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files that wire the layers together (or are the binary); they may reach everything.
const WIRING: &[&str] = &["lib", "main", "server", "init"];
/// The longest a broker source file may be.
const MAX_LINES: usize = 800;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level folder (or wiring file) a source belongs to.
fn layer_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The code of a file without its comments, so a doc link is not a dependency.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a file's code names through `crate::`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

struct Tree {
    files: Vec<(PathBuf, String)>,
}

impl Tree {
    fn load() -> Self {
        let mut paths = Vec::new();
        sources(&src(), &mut paths);
        paths.sort();
        let files = paths
            .into_iter()
            .map(|p| {
                let text = std::fs::read_to_string(&p).unwrap();
                (p, text)
            })
            .collect();
        Self { files }
    }

    fn folders(&self) -> BTreeSet<String> {
        self.files
            .iter()
            .map(|(p, _)| layer_of(p))
            .filter(|l| !WIRING.contains(&l.as_str()))
            .collect()
    }

    /// Folder → folders it imports from, with one file that does it, for the message.
    fn edges(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let folders = self.folders();
        let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (path, text) in &self.files {
            let from = layer_of(path);
            if !folders.contains(&from) {
                continue;
            }
            for to in imports(&code(text)) {
                if to != from && folders.contains(&to) {
                    let rel = path.strip_prefix(src()).unwrap().display().to_string();
                    edges
                        .entry(from.clone())
                        .or_default()
                        .entry(to)
                        .or_insert(rel);
                }
            }
        }
        edges
    }
}

/// A cycle through the folder graph, if there is one, as the path that closes it.
fn find_cycle(edges: &BTreeMap<String, BTreeMap<String, String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeMap<String, String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flat_map(|m| m.keys()) {
            if let Some(c) = visit(next, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for start in edges.keys() {
        if let Some(c) = visit(start, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn only_http_and_server_know_the_app_state() {
    let tree = Tree::load();
    let offenders: Vec<String> = tree
        .files
        .iter()
        .filter(|(p, _)| {
            let l = layer_of(p);
            l != "http" && l != "server"
        })
        .filter(|(_, t)| t.contains("AppState"))
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "AppState outside http/ and server.rs: {offenders:?}"
    );
}

#[test]
fn domain_code_never_imports_from_http() {
    let tree = Tree::load();
    let offenders: Vec<String> = tree
        .files
        .iter()
        .filter(|(p, _)| {
            let l = layer_of(p);
            l != "http" && !WIRING.contains(&l.as_str())
        })
        .filter(|(_, t)| imports(&code(t)).contains("http"))
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "imports from http/: {offenders:?}");
}

#[test]
fn top_level_folders_form_no_cycle() {
    let tree = Tree::load();
    let edges = tree.edges();
    if let Some(cycle) = find_cycle(&edges) {
        let why: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("{} → {} (in {})", w[0], w[1], edges[&w[0]][&w[1]]))
            .collect();
        panic!("import cycle between broker folders: {}", why.join(", "));
    }
}

#[test]
fn no_broker_source_file_is_over_the_limit() {
    let tree = Tree::load();
    let long: Vec<String> = tree
        .files
        .iter()
        .filter(|(_, t)| t.lines().count() > MAX_LINES)
        .map(|(p, t)| format!("{} ({} lines)", p.display(), t.lines().count()))
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}

#[test]
fn the_checks_see_what_they_check() {
    // The scanner must find real edges, or the cycle test would pass on an empty graph.
    let tree = Tree::load();
    let edges = tree.edges();
    assert!(edges["elevation"].contains_key("identity"), "{edges:?}");
    assert!(edges["sessions"].contains_key("elevation"), "{edges:?}");
    assert!(imports("use crate::{base, store::Db};").contains("store"));
    let planted = "use crate::http::AppState; // x\n";
    assert!(imports(&code(planted)).contains("http"));
    assert!(!imports(&code("// see crate::http::router\n")).contains("http"));
    let mut cyclic: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    cyclic
        .entry("a".into())
        .or_default()
        .insert("b".into(), "a.rs".into());
    cyclic
        .entry("b".into())
        .or_default()
        .insert("a".into(), "b.rs".into());
    assert!(find_cycle(&cyclic).is_some());
}
