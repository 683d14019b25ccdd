//! The fixed relying party and ceremony states the targets verify against. The states and
//! the seeds in `corpus/` come from one run of `gen_seeds` (INSECURE virtual key), so the
//! seeds' challenges, credential and attestation match these states.

#![allow(dead_code)]

use std::sync::OnceLock;

use paw_broker::config::WebauthnConfig;
use paw_broker::identity::webauthn::RelyingParty;
use paw_proto::action::Action;
use webauthn_rs::prelude::Uuid;

pub const RP_ID: &str = "localhost";
pub const ORIGIN: &str = "https://localhost:8443";
/// The user (and userHandle) the fixed states were made for.
pub const USER: [u8; 16] = [7; 16];

/// The action the fixed assertion challenge was issued for.
pub fn action() -> Action {
    Action::KeyManagement {
        operation: "add".into(),
        credential: "second key".into(),
    }
}

pub struct Fixture {
    pub rp: RelyingParty,
    pub registration_state: &'static str,
    pub authentication_state: &'static str,
    pub user: Uuid,
    pub action_hash: String,
}

/// The relying party as `pawd` builds it from `[webauthn]`. The attestation CA list travels
/// inside the registration state, so the relying party itself needs no CA file here.
pub fn relying_party() -> RelyingParty {
    RelyingParty::new(&WebauthnConfig {
        rp_id: RP_ID.into(),
        origin: ORIGIN.into(),
        attestation_ca: Vec::new(),
        allowed_aaguids: Vec::new(),
        replica_origins: Vec::new(),
    })
    .unwrap_or_else(|e| panic!("fixture relying party: {e}"))
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| Fixture {
        rp: relying_party(),
        registration_state: include_str!("../fixtures/registration_state.json"),
        authentication_state: include_str!("../fixtures/authentication_state.json"),
        user: Uuid::from_bytes(USER),
        action_hash: b64(&action().hash()),
    })
}
