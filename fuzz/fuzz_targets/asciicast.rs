//! Arbitrary bytes as a stored asciicast v2 recording, through the broker's
//! `sessions::history::mask_cast` with the default masks (what `GET /v1/sessions/{id}/recording`
//! runs before a recording leaves the broker): line split, the JSON of every event, the masks
//! over the joined output and input streams, and the re-encoding (case F3). An error is fine;
//! a panic, abort or hang is a bug. Masked output must stay well-formed: re-masking it must
//! not fail where the first pass succeeded.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use paw_broker::config::masks::{default_masks, Masks};
use paw_broker::sessions::history::mask_cast;

fn masks() -> &'static Masks {
    static M: OnceLock<Masks> = OnceLock::new();
    M.get_or_init(|| {
        Masks::compile(&default_masks()).unwrap_or_else(|e| panic!("default masks: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    // Recordings are UTF-8 on disk (the broker reads them with a UTF-8 check first).
    let Ok(cast) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((masked, _)) = mask_cast(cast, masks()) else {
        return;
    };
    if let Err(e) = mask_cast(&masked, masks()) {
        panic!("a masked recording no longer parses: {e}");
    }
});
