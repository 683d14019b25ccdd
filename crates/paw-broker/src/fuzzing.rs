//! Entry points for the cargo-fuzz targets in `fuzz/` (cargo feature `fuzzing`, off by default;
//! never enabled by `pawd` or the desktop app).
//!
//! Each function runs, on a raw request body, what the HTTP handler runs between reading the
//! body and its first database statement, with the stored ceremony state passed in instead of
//! read from the `challenges` table:
//!
//! - [`registration_response`]: `POST /v1/enroll/finish` and `POST /v1/keys/register/finish`
//!   (`ApiJson` body parsing, key name check, ceremony id format, then
//!   [`RelyingParty::finish_registration`]: clientDataJSON and exact origin, base64url,
//!   attestationObject CBOR, authenticatorData, COSE key, attestation chain).
//! - [`assertion_response`]: `POST /v1/login/finish` and `POST /v1/stepup/finish` (body parsing,
//!   action hash of a step-up, then the checks of `stepup::check_assertion` up to the counter
//!   update: credential JSON, clientDataJSON, `pawActionHash` binding, userHandle, origin,
//!   authenticatorData flags and counter, signature, UV and backup flags).
//!
//! Keep these in step with `identity::enroll_finish`, `keys::add_finish`, `stepup::verify` and
//! `stepup::check_assertion`: they are copies of those sequences minus the database.

use paw_proto::action::Purpose;
use paw_proto::http::{
    AddKeyFinishRequest, EnrollFinishRequest, LoginFinishRequest, StepUpFinishRequest,
};
use paw_proto::ErrorCode;
use serde_json::Value;
use webauthn_rs::prelude::{AttestedPasskey, AuthenticationResult, Uuid};

use crate::base::error::Result;
use crate::base::util::{b64, refuse, unb64};
use crate::identity;
use crate::identity::webauthn::{self, RelyingParty, WebauthnFailure};

/// `take_challenge` treats an id that is empty, too long or not base64url as unknown.
fn check_challenge_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 128 || unb64(id).is_none() {
        return Err(refuse(
            ErrorCode::ChallengeInvalid,
            "unknown or used ceremony",
        ));
    }
    Ok(())
}

fn bad_body(e: &serde_json::Error) -> crate::BrokerError {
    refuse(ErrorCode::BadRequest, format!("body: {e}"))
}

/// The body of `/v1/enroll/finish` or, if it is not one, of `/v1/keys/register/finish`,
/// verified against the registration state `state_json` (as stored by `start_registration`).
/// Returns the new key, serialised as the broker stores it.
pub fn registration_response(
    rp: &RelyingParty,
    state_json: &str,
    body: &[u8],
) -> Result<(AttestedPasskey, String)> {
    let (ceremony_id, credential, name) = match serde_json::from_slice::<EnrollFinishRequest>(body)
    {
        Ok(r) => (r.ceremony_id, r.credential, r.name),
        Err(_) => {
            let r: AddKeyFinishRequest = serde_json::from_slice(body).map_err(|e| bad_body(&e))?;
            (r.ceremony_id, r.credential, r.name)
        }
    };
    identity::validate_key_name(&name)?;
    check_challenge_id(&ceremony_id)?;
    let passkey = rp.finish_registration(&credential, state_json)?;
    let _cred_id = webauthn::cred_id_b64(&passkey);
    let json = webauthn::to_json(&passkey)?;
    Ok((passkey, json))
}

/// The body of `/v1/login/finish` or, if it is not one, of `/v1/stepup/finish`, verified
/// against the assertion state `state_json`, for user `user` and a challenge issued for the
/// action whose base64url SHA-256 is `action_hash` (the handlers read it from the challenge
/// row; for a login it is the hash of `Action::Login`, here any hash is accepted so that one
/// fixture serves both bodies).
pub fn assertion_response(
    rp: &RelyingParty,
    state_json: &str,
    user: Uuid,
    action_hash: &str,
    body: &[u8],
) -> Result<AuthenticationResult> {
    let (challenge, credential) = match serde_json::from_slice::<LoginFinishRequest>(body) {
        Ok(r) => (r.challenge, r.credential),
        Err(_) => {
            let r: StepUpFinishRequest = serde_json::from_slice(body).map_err(|e| bad_body(&e))?;
            // stepup::verify_any: login is not a step-up.
            if r.action.purpose() == Purpose::Login {
                return Err(refuse(
                    ErrorCode::BadRequest,
                    "login is not a step-up; use /v1/login",
                ));
            }
            // stepup::verify: the posted action must be the one the challenge was issued for.
            if b64(&r.action.hash()) != action_hash {
                return Err(refuse(
                    ErrorCode::ChallengeInvalid,
                    "the action differs from the one the challenge was issued for",
                ));
            }
            (r.challenge, r.credential)
        }
    };
    check_challenge_id(&challenge)?;
    check_assertion(rp, state_json, user, action_hash, &credential)
}

/// `stepup::check_assertion` without the database (credential lookup and counter update).
fn check_assertion(
    rp: &RelyingParty,
    state_json: &str,
    user: Uuid,
    action_hash: &str,
    credential: &Value,
) -> Result<AuthenticationResult> {
    let parsed = webauthn::parse_assertion(credential)?;
    let binding = webauthn::client_binding(credential)?;
    rp.check_origin(credential)?;
    if binding.action_hash.as_deref() != Some(action_hash) {
        return Err(refuse(
            ErrorCode::WebauthnRejected,
            "the signed client data is not bound to this action",
        ));
    }
    if let Some(handle) = &binding.user_handle {
        if handle.as_slice() != user.as_bytes() {
            return Err(refuse(
                ErrorCode::WebauthnRejected,
                "userHandle does not match the user",
            ));
        }
    }
    let _claimed_id = credential["id"].as_str().unwrap_or_default().to_owned();
    let result = match rp.finish_authentication(&parsed, state_json) {
        Ok(r) => r,
        Err(WebauthnFailure::CounterRegression) => {
            return Err(refuse(
                ErrorCode::WebauthnRejected,
                "signature counter went backwards",
            ))
        }
        Err(WebauthnFailure::Rejected(reason)) => {
            return Err(refuse(
                ErrorCode::WebauthnRejected,
                format!("assertion refused: {reason}"),
            ))
        }
        Err(WebauthnFailure::Broker(e)) => return Err(e),
    };
    if !result.user_verified() || result.backup_eligible() || result.backup_state() {
        return Err(refuse(
            ErrorCode::WebauthnRejected,
            "assertion refused: user verification missing or a syncable credential",
        ));
    }
    let _cred_id = b64(result.cred_id().as_ref());
    let _counter = i64::from(result.counter());
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WebauthnConfig;
    use paw_fido::attestation::{attestation_ca_pem, VIRTUAL_KEY_AAGUID};
    use paw_fido::VirtualKey;
    use paw_proto::action::Action;
    use serde_json::json;
    use sha2::{Digest, Sha256};

    const ORIGIN: &str = "https://localhost:8443";

    fn cdj(typ: &str, challenge: &str, action_hash: Option<&str>) -> Vec<u8> {
        let mut v =
            json!({"type": typ, "challenge": challenge, "origin": ORIGIN, "crossOrigin": false});
        if let Some(h) = action_hash {
            v["pawActionHash"] = json!(h);
        }
        serde_json::to_vec(&v).unwrap()
    }

    /// Valid bodies pass the same checks as the handlers; tampered ones are refused, not
    /// panicked on.
    #[test]
    fn entry_points_accept_valid_and_refuse_tampered_bodies() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, attestation_ca_pem().unwrap()).unwrap();
        let aaguid = Uuid::from_bytes(VIRTUAL_KEY_AAGUID).to_string();
        let rp = RelyingParty::new(&WebauthnConfig {
            rp_id: "localhost".into(),
            origin: ORIGIN.into(),
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
        let raw = serde_json::to_vec(&body).unwrap();
        let (passkey, _) = registration_response(&rp, &reg_state, &raw).unwrap();
        let truncated = &raw[..raw.len() / 2];
        assert!(registration_response(&rp, &reg_state, truncated).is_err());
        let mut bad = body.clone();
        bad["credential"]["response"]["attestationObject"] = json!(b64(&ao[..ao.len() - 9]));
        let raw_bad = serde_json::to_vec(&bad).unwrap();
        assert!(registration_response(&rp, &reg_state, &raw_bad).is_err());

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
        let login = json!({"challenge": challenge, "credential": credential,
            "device_public_key": b64(&[1; 32])});
        let raw = serde_json::to_vec(&login).unwrap();
        assert!(assertion_response(&rp, &auth_state, user, &hash, &raw).is_ok());
        // Another action's hash, another user, a stepup body for another action: refused.
        assert!(assertion_response(&rp, &auth_state, user, "AAAA", &raw).is_err());
        assert!(assertion_response(&rp, &auth_state, Uuid::nil(), &hash, &raw).is_err());
        let stepup = json!({"challenge": challenge, "credential": credential,
            "action": {"kind": "login", "user": "bob"}});
        let raw = serde_json::to_vec(&stepup).unwrap();
        assert!(assertion_response(&rp, &auth_state, user, &hash, &raw).is_err());
    }
}
