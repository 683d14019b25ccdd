//! Arbitrary bytes as the CBOR `attestationObject` of a registration, inside an otherwise
//! valid `POST /v1/enroll/finish` credential, through the broker's
//! `RelyingParty::finish_registration` (webauthn-rs): the CBOR decode, `fmt` / `attStmt` /
//! `authData`, the authenticator data flags, counter, AAGUID and credential id, the COSE public
//! key, the packed attestation's x5c chain and signature (cases A13/F3). Starting from the
//! seed's exact CBOR (not from JSON and base64 around it) keeps the fuzzer's mutations on the
//! binary formats. Errors are fine; a panic, abort or hang is a bug.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../common/fixture.rs"]
mod fixture;

/// The committed enrollment seed's credential, parsed once; only its attestationObject
/// changes per input.
fn template() -> &'static serde_json::Value {
    static T: OnceLock<serde_json::Value> = OnceLock::new();
    T.get_or_init(|| {
        let body: serde_json::Value = serde_json::from_str(include_str!(
            "../corpus/registration_response/enroll_finish.json"
        ))
        .unwrap_or_else(|e| panic!("seed: {e}"));
        body["credential"].clone()
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture::fixture();
    let mut credential = template().clone();
    credential["response"]["attestationObject"] = fixture::b64(data).into();
    let _ = f.rp.finish_registration(&credential, f.registration_state);
});
