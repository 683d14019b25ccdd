//! Arbitrary bytes as the body of `POST /v1/login/finish` / `POST /v1/stepup/finish`: body
//! parsing, clientDataJSON and its `pawActionHash` binding, userHandle, origin,
//! authenticatorData flags and counter, and the signature, against a fixed assertion state.
//! Errors are fine; a panic, abort or sanitizer report is a bug (case A13).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/fixture.rs"]
mod fixture;

fuzz_target!(|data: &[u8]| {
    let f = fixture::fixture();
    // What `/v1/login/finish` and `/v1/stepup/finish` run on a body before the stored
    // credential: the JSON extractor's parse, then the same pure verification.
    let credential = match serde_json::from_slice::<paw_proto::http::LoginFinishRequest>(data) {
        Ok(r) => r.credential,
        Err(_) => match serde_json::from_slice::<paw_proto::http::StepUpFinishRequest>(data) {
            Ok(r) => r.credential,
            Err(_) => return,
        },
    };
    let _ = paw_broker::identity::stepup::verify_assertion(
        &f.rp,
        f.authentication_state,
        f.user,
        &f.action_hash,
        &credential,
    );
});
