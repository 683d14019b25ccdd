//! Fails when `ui/src/lib/ipc/bindings.ts` no longer matches the Rust IPC types.
//! `cargo xtask bindings` (or this test with `PAW_UPDATE_BINDINGS=1`) rewrites the file.

use std::path::PathBuf;

#[test]
fn typescript_bindings_match_committed_file() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/lib/ipc/bindings.ts");
    let want = paw_proto::ipc::typescript_bindings();
    if std::env::var_os("PAW_UPDATE_BINDINGS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is out of date with crates/paw-proto; run `cargo xtask bindings` and commit it",
        path.display()
    );
}
