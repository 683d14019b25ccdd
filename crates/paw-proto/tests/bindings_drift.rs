//! Fails when the UI's generated files no longer match the Rust they come from:
//! `ui/src/lib/ipc/bindings.ts` (the IPC types, from this crate) and `ui/src/lib/ipc/limits.ts`
//! (every length, duration and count, from paw-policy). `cargo xtask bindings` (or this test
//! with `PAW_UPDATE_BINDINGS=1`) rewrites both.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

fn check(file: &str, want: &str, source: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../ui/src/lib/ipc")
        .join(file);
    if std::env::var_os("PAW_UPDATE_BINDINGS").is_some() {
        std::fs::write(&path, want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is out of date with {source}; run `cargo xtask bindings` and commit it",
        path.display()
    );
}

#[test]
fn typescript_bindings_match_committed_file() {
    check(
        "bindings.ts",
        &paw_proto::ipc::typescript_bindings(),
        "crates/paw-proto",
    );
}

#[test]
fn typescript_limits_match_committed_file() {
    check(
        "limits.ts",
        &paw_policy::limits::typescript_limits(),
        "crates/paw-policy/src/limits.rs",
    );
}
