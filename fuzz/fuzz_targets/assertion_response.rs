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
    let _ = paw_broker::fuzzing::assertion_response(
        &f.rp,
        f.authentication_state,
        f.user,
        &f.action_hash,
        data,
    );
});
