//! Regenerates `fixtures/*.json` and the seeds in `corpus/` with the INSECURE virtual key:
//! a registration state and valid enroll / add-key bodies for it, then an assertion state
//! for that key and valid login / step-up bodies, plus the actions for `canonical_action`.
//!
//! Run from `fuzz/`: `cargo run --features seedgen --bin gen_seeds`. The new seeds only fit
//! the new fixtures, so commit both together.

use std::path::Path;

use paw_broker::config::WebauthnConfig;
use paw_broker::identity::webauthn::RelyingParty;
use paw_fido::attestation::{attestation_ca_pem, VIRTUAL_KEY_AAGUID};
use paw_fido::VirtualKey;
use paw_proto::action::Action;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::Uuid;

#[path = "../common/fixture.rs"]
mod fixture;
use fixture::{b64, ORIGIN, RP_ID, USER};

fn client_data(typ: &str, challenge: &str, action_hash: Option<&str>) -> Vec<u8> {
    let mut v =
        json!({"type": typ, "challenge": challenge, "origin": ORIGIN, "crossOrigin": false});
    if let Some(h) = action_hash {
        v["pawActionHash"] = json!(h);
    }
    serde_json::to_vec(&v).expect("json")
}

fn write(path: &str, bytes: &[u8]) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, bytes).expect("write");
    println!("wrote {}", p.display());
}

fn write_json(path: &str, v: &Value) {
    write(path, &serde_json::to_vec(v).expect("json"));
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, attestation_ca_pem().expect("ca")).expect("write ca");
    let rp = RelyingParty::new(&WebauthnConfig {
        rp_id: RP_ID.into(),
        origin: ORIGIN.into(),
        attestation_ca: vec![ca],
        allowed_aaguids: vec![Uuid::from_bytes(VIRTUAL_KEY_AAGUID).to_string()],
    })
    .expect("relying party");
    let user = Uuid::from_bytes(USER);
    let mut key = VirtualKey::generate().expect("virtual key");

    // Registration.
    let (_, challenge, reg_state) = rp.start_registration(user, "alice", vec![]).expect("start");
    let cdj = client_data("webauthn.create", &challenge, None);
    let ao = key
        .make_credential(RP_ID, &Sha256::digest(&cdj).into(), VIRTUAL_KEY_AAGUID)
        .expect("make_credential");
    let id = b64(key.credential_id());
    let reg_credential = json!({"id": id, "rawId": id, "type": "public-key", "extensions": {},
        "response": {"attestationObject": b64(&ao), "clientDataJSON": b64(&cdj),
            "transports": ["usb"]}});
    let enroll =
        json!({"ceremony_id": challenge, "credential": reg_credential, "name": "virtual key"});

    // Assertion for the fixed action, with the key just registered.
    let passkey = rp
        .finish_registration(&enroll["credential"], &reg_state)
        .expect("the generated registration must verify");
    let action = fixture::action();
    let hash = b64(&action.hash());
    let (_, achallenge, auth_state) = rp.start_authentication(&[passkey]).expect("start auth");
    let cdj = client_data("webauthn.get", &achallenge, Some(&hash));
    let a = key
        .get_assertion(RP_ID, &Sha256::digest(&cdj).into())
        .expect("get_assertion");
    let credential = json!({"id": id, "rawId": id, "type": "public-key", "extensions": {},
        "response": {"authenticatorData": b64(&a.authenticator_data), "clientDataJSON": b64(&cdj),
            "signature": b64(&a.signature), "userHandle": b64(user.as_bytes())}});
    let login = json!({"challenge": achallenge, "credential": credential,
        "device_public_key": b64(&[1; 32])});
    let stepup = json!({"challenge": achallenge, "action": action, "credential": credential});
    let mut stepup_null_handle = stepup.clone();
    stepup_null_handle["credential"]["response"]["userHandle"] = Value::Null;
    let add_key = json!({"ceremony_id": challenge, "credential": reg_credential,
        "name": "second key", "stepup": stepup});

    write("fixtures/registration_state.json", reg_state.as_bytes());
    write("fixtures/authentication_state.json", auth_state.as_bytes());
    write_json("corpus/registration_response/enroll_finish.json", &enroll);
    write_json(
        "corpus/registration_response/keys_register_finish.json",
        &add_key,
    );
    write_json("corpus/assertion_response/login_finish.json", &login);
    write_json("corpus/assertion_response/stepup_finish.json", &stepup);
    write_json(
        "corpus/assertion_response/stepup_finish_null_handle.json",
        &stepup_null_handle,
    );

    // canonical_action: one of each kind.
    let actions = [
        Action::Login {
            user: "alice".into(),
        },
        Action::Request {
            entitlement: "db-admin".into(),
            target: "db-prod-1".into(),
            role: "admin".into(),
            duration_secs: 3600,
            justification: "INC-42: disk full <script>".into(),
            ticket: Some("INC-42".into()),
            start_at_ms: Some(1_800_000_000_000),
        },
        Action::Approve {
            request_id: "r-1".into(),
            approve: true,
            comment: String::new(),
        },
        Action::Session {
            grant_id: "g-1".into(),
            target: "db-prod-1".into(),
        },
        Action::BreakGlass {
            entitlement: "root".into(),
            target: "*".into(),
            role: "root".into(),
            duration_secs: 900,
            justification: "outage \u{202e}".into(),
        },
        action,
    ];
    for a in &actions {
        let v = serde_json::to_value(a).expect("json");
        let kind = v["kind"].as_str().expect("kind").to_owned();
        write_json(&format!("corpus/canonical_action/{kind}.json"), &v);
    }

    // The seeds must pass against the fixtures exactly as the targets load them.
    let f = fixture::Fixture {
        rp: fixture::relying_party(),
        registration_state: "",
        authentication_state: "",
        user,
        action_hash: hash,
    };
    for body in [&enroll, &add_key] {
        f.rp.finish_registration(&body["credential"], &reg_state)
            .expect("registration seed must verify against the CA-less fixture relying party");
    }
    for body in [&login, &stepup, &stepup_null_handle] {
        paw_broker::identity::stepup::verify_assertion(
            &f.rp,
            &auth_state,
            f.user,
            &f.action_hash,
            &body["credential"],
        )
        .map_err(|e| format!("{e:?}"))
        .expect("assertion seed must verify");
    }
    println!("all seeds verify against the fixtures");
}
