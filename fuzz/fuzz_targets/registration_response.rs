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
    // What `/v1/enroll/finish` and `/v1/keys/register/finish` run on a body, minus the
    // database: the JSON extractor's parse, the name rule, then the relying party.
    let Ok(req) = serde_json::from_slice::<paw_proto::http::EnrollFinishRequest>(data) else {
        return;
    };
    if paw_broker::identity::validate_key_name(&req.name).is_ok() {
        let _ =
            f.rp.finish_registration(&req.credential, f.registration_state);
    }
});
