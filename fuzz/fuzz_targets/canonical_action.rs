//! Arbitrary bytes as an `Action` JSON (as in `/v1/stepup/start`), then the canonical
//! encoding, its hash and the plain-words description (case F3). Also checks that the JSON
//! round trip keeps the canonical bytes, so two encodings of one action cannot differ.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paw_proto::action::Action;

fuzz_target!(|data: &[u8]| {
    let Ok(action) = serde_json::from_slice::<Action>(data) else {
        return;
    };
    let bytes = action.canonical_bytes();
    let _ = action.hash();
    let _ = action.describe();
    let _ = action.purpose();
    let again: Action = serde_json::from_slice(
        &serde_json::to_vec(&action).unwrap_or_else(|e| panic!("serialise: {e}")),
    )
    .unwrap_or_else(|e| panic!("re-parse: {e}"));
    assert_eq!(
        again.canonical_bytes(),
        bytes,
        "canonical bytes changed in a JSON round trip"
    );
});
