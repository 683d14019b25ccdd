//! The database-free WebAuthn checks, against the INSECURE virtual key.

use paw_proto::http::EnrollFinishRequest;
use webauthn_rs::prelude::Uuid;

use super::stepup::verify_assertion;
use super::webauthn::RelyingParty;
use crate::base::util::b64;
use crate::config::WebauthnConfig;
use paw_fido::attestation::{attestation_ca_pem, VIRTUAL_KEY_AAGUID};
use paw_fido::VirtualKey;
use paw_proto::action::Action;
use serde_json::json;
use sha2::{Digest, Sha256};

const ORIGIN: &str = "https://localhost:8443";

fn cdj(typ: &str, challenge: &str, action_hash: Option<&str>) -> Vec<u8> {
    cdj_from(ORIGIN, typ, challenge, action_hash)
}

fn cdj_from(origin: &str, typ: &str, challenge: &str, action_hash: Option<&str>) -> Vec<u8> {
    let mut v =
        json!({"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false});
    if let Some(h) = action_hash {
        v["pawActionHash"] = json!(h);
    }
    serde_json::to_vec(&v).unwrap()
}

/// The pure checks the handlers and the fuzz targets share accept a real key's answers and
/// refuse tampered ones without panicking.
#[test]
fn registration_and_assertion_checks_accept_valid_and_refuse_tampered() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, attestation_ca_pem().unwrap()).unwrap();
    let aaguid = Uuid::from_bytes(VIRTUAL_KEY_AAGUID).to_string();
    let rp = RelyingParty::new(&WebauthnConfig {
        rp_id: "localhost".into(),
        origin: ORIGIN.into(),
        replica_origins: Vec::new(),
        attestation_ca: vec![ca],
        allowed_aaguids: vec![aaguid],
    })
    .unwrap();
    let user = Uuid::from_bytes([7; 16]);
    let mut key = VirtualKey::generate().unwrap();

    let (options, challenge, reg_state) = rp.start_registration(user, "alice", vec![]).unwrap();
    assert_eq!(options["publicKey"]["challenge"], json!(challenge));
    let client = cdj("webauthn.create", &challenge, None);
    let ao = key
        .make_credential(
            "localhost",
            &Sha256::digest(&client).into(),
            VIRTUAL_KEY_AAGUID,
        )
        .unwrap();
    let id = b64(key.credential_id());
    let body = json!({"ceremony_id": challenge, "name": "key", "credential": {
        "id": id, "rawId": id, "type": "public-key", "extensions": {},
        "response": {"attestationObject": b64(&ao), "clientDataJSON": b64(&client)}}});
    let req: EnrollFinishRequest = serde_json::from_value(body.clone()).unwrap();
    let passkey = rp.finish_registration(&req.credential, &reg_state).unwrap();
    let mut bad = body.clone();
    bad["credential"]["response"]["attestationObject"] = json!(b64(&ao[..ao.len() - 9]));
    assert!(rp
        .finish_registration(&bad["credential"], &reg_state)
        .is_err());

    let action = Action::Login {
        user: "alice".into(),
    };
    let hash = b64(&action.hash());
    let (_, challenge, auth_state) = rp.start_authentication(&[passkey]).unwrap();
    let client = cdj("webauthn.get", &challenge, Some(&hash));
    let a = key
        .get_assertion("localhost", &Sha256::digest(&client).into())
        .unwrap();
    let credential = json!({"id": id, "rawId": id, "type": "public-key", "extensions": {},
        "response": {"authenticatorData": b64(&a.authenticator_data),
            "clientDataJSON": b64(&client), "signature": b64(&a.signature),
            "userHandle": b64(user.as_bytes())}});
    // Another action's hash, another user, a truncated signature: refused.
    assert!(verify_assertion(&rp, &auth_state, user, "AAAA", &credential).is_err());
    assert!(verify_assertion(&rp, &auth_state, Uuid::nil(), &hash, &credential).is_err());
    let mut cut = credential.clone();
    cut["response"]["signature"] = json!(b64(&a.signature[..a.signature.len() - 3]));
    assert!(verify_assertion(&rp, &auth_state, user, &hash, &cut).is_err());
    assert!(verify_assertion(&rp, &auth_state, user, &hash, &credential).is_ok());
}

/// A workstation that lists the brokers themselves claims the address it talks to: accepted when
/// the broker lists that address in `replica_origins`, refused otherwise (A6 for several brokers).
#[test]
fn an_assertion_from_a_listed_replica_origin_verifies_and_an_unlisted_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, attestation_ca_pem().unwrap()).unwrap();
    let rp = RelyingParty::new(&WebauthnConfig {
        rp_id: "localhost".into(),
        origin: ORIGIN.into(),
        replica_origins: vec!["https://localhost:9443".into()],
        attestation_ca: vec![ca],
        allowed_aaguids: vec![Uuid::from_bytes(VIRTUAL_KEY_AAGUID).to_string()],
    })
    .unwrap();
    let user = Uuid::from_bytes([9; 16]);
    let mut key = VirtualKey::generate().unwrap();
    let (_, challenge, reg_state) = rp.start_registration(user, "bob", vec![]).unwrap();
    // Enrolled through the second broker's address.
    let client = cdj_from(
        "https://localhost:9443",
        "webauthn.create",
        &challenge,
        None,
    );
    let ao = key
        .make_credential(
            "localhost",
            &Sha256::digest(&client).into(),
            VIRTUAL_KEY_AAGUID,
        )
        .unwrap();
    let id = b64(key.credential_id());
    let reg = json!({"id": id, "rawId": id, "type": "public-key", "extensions": {},
        "response": {"attestationObject": b64(&ao), "clientDataJSON": b64(&client)}});
    let passkey = rp.finish_registration(&reg, &reg_state).unwrap();

    let hash = b64(&Action::Login { user: "bob".into() }.hash());
    for (origin, accepted) in [
        (ORIGIN, true),
        ("https://localhost:9443", true),
        ("https://localhost:9444", false),
        ("https://localhost:9443/", false),
    ] {
        let (_, challenge, state) = rp
            .start_authentication(std::slice::from_ref(&passkey))
            .unwrap();
        let client = cdj_from(origin, "webauthn.get", &challenge, Some(&hash));
        let a = key
            .get_assertion("localhost", &Sha256::digest(&client).into())
            .unwrap();
        let credential = json!({"id": id, "rawId": id, "type": "public-key", "extensions": {},
            "response": {"authenticatorData": b64(&a.authenticator_data),
                "clientDataJSON": b64(&client), "signature": b64(&a.signature),
                "userHandle": b64(user.as_bytes())}});
        assert_eq!(
            verify_assertion(&rp, &state, user, &hash, &credential).is_ok(),
            accepted,
            "{origin}"
        );
    }
}
