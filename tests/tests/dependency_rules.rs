//! The dependency rules of DESIGN.md, enforced on the resolved graph (normal dependencies,
//! transitively): the pure crates stay free of I/O, and only the named crate of each heavy
//! framework may depend on it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

fn host_triple() -> String {
    let out = Command::new("rustc").arg("-vV").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap()
        .to_owned()
}

struct Graph {
    names: HashMap<String, String>,
    deps: HashMap<String, Vec<String>>,
    by_name: HashMap<String, String>,
}

fn graph() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        // The host's graph is the one that gets built here; other platforms' keyring backends
        // are not downloaded by a Linux build, so they are left out rather than fetched.
        .args(["metadata", "--format-version", "1", "--filter-platform"])
        .arg(host_triple())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names = HashMap::new();
    let mut by_name = HashMap::new();
    for p in m["packages"].as_array().unwrap() {
        let id = p["id"].as_str().unwrap().to_owned();
        let name = p["name"].as_str().unwrap().to_owned();
        by_name.insert(name.clone(), id.clone());
        names.insert(id, name);
    }
    let mut deps = HashMap::new();
    for n in m["resolve"]["nodes"].as_array().unwrap() {
        let normal: Vec<String> = n["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|d| d["pkg"].as_str().unwrap().to_owned())
            .collect();
        deps.insert(n["id"].as_str().unwrap().to_owned(), normal);
    }
    Graph {
        names,
        deps,
        by_name,
    }
}

impl Graph {
    fn closure(&self, krate: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![self.by_name[krate].clone()];
        while let Some(id) = stack.pop() {
            for d in &self.deps[&id] {
                if seen.insert(self.names[d].clone()) {
                    stack.push(d.clone());
                }
            }
        }
        seen
    }
}

const IO: &[&str] = &[
    "tokio",
    "sqlx",
    "reqwest",
    "axum",
    "tauri",
    "hyper",
    "webauthn-rs",
];

#[test]
fn pure_crates_depend_on_no_io_crate() {
    let g = graph();
    for pure in ["paw-proto", "paw-policy", "paw-commands", "paw-vault"] {
        let c = g.closure(pure);
        for io in IO {
            assert!(!c.contains(*io), "{pure} depends on {io}");
        }
    }
}

#[test]
fn only_the_named_crate_depends_on_each_framework() {
    let g = graph();
    let owners = [
        ("tauri", "paw"),
        ("axum", "paw-broker"),
        ("webauthn-rs", "paw-broker"),
    ];
    let ours = [
        "paw-proto",
        "paw-policy",
        "paw-audit",
        "paw-fido",
        "paw-broker",
        "paw-client",
        "paw-pgproxy",
        "paw-commands",
        "paw-vault",
        "paw-cli",
        "paw",
    ];
    for (framework, owner) in owners {
        for krate in ours {
            if krate != owner {
                assert!(
                    !g.closure(krate).contains(framework),
                    "{krate} depends on {framework}; only {owner} may"
                );
            }
        }
    }
    // The probe can fail: the owner does have its framework.
    assert!(g.closure("paw").contains("tauri"));
    assert!(g.closure("paw-broker").contains("axum"));
}

/// The vault's encryption lives on the broker only: no client crate (the app, its core,
/// pawctl) can open a vaulted secret, because none links the code that does (issue #17).
#[test]
fn only_the_broker_side_links_the_vault() {
    let g = graph();
    for krate in ["paw-client", "paw-cli", "paw", "paw-proto", "paw-fido"] {
        assert!(
            !g.closure(krate).contains("paw-vault"),
            "{krate} depends on paw-vault; only the broker may"
        );
    }
    // The probe can fail: the vault crate is in the graph.
    assert!(g.closure("paw-vault").contains("aes-gcm"));
}

/// paw-pgproxy is a protocol library under the broker: PostgreSQL roles and the wire splice,
/// nothing about HTTP, SSH, WebAuthn or the desktop, and no other paw crate.
#[test]
fn pgproxy_is_a_leaf_that_only_the_broker_uses() {
    let g = graph();
    let c = g.closure("paw-pgproxy");
    for forbidden in [
        "paw-proto",
        "paw-policy",
        "paw-audit",
        "paw-fido",
        "paw-broker",
        "paw-client",
        "paw",
        "axum",
        "hyper",
        "reqwest",
        "russh",
        "tauri",
        "webauthn-rs",
    ] {
        assert!(!c.contains(forbidden), "paw-pgproxy depends on {forbidden}");
    }
    for krate in [
        "paw-proto",
        "paw-policy",
        "paw-audit",
        "paw-fido",
        "paw-client",
        "paw",
    ] {
        assert!(
            !g.closure(krate).contains("paw-pgproxy"),
            "{krate} depends on paw-pgproxy; only paw-broker may"
        );
    }
    // The probe can fail: the broker does use it, and it does speak the protocol.
    assert!(g.closure("paw-broker").contains("paw-pgproxy"));
    assert!(c.contains("postgres-protocol"));
}
