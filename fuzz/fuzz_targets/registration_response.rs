//! Arbitrary bytes as the body of `POST /v1/enroll/finish` / `POST /v1/keys/register/finish`,
//! through the broker's parsing and webauthn-rs `finish_attested_passkey_registration` against
//! a fixed registration state. Errors are fine; a panic, abort or sanitizer report is a bug
//! (case A13).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/fixture.rs"]
mod fixture;

fuzz_target!(|data: &[u8]| {
    let f = fixture::fixture();
    let _ = paw_broker::fuzzing::registration_response(&f.rp, f.registration_state, data);
});
