//! The security keys page: list, rename, revoke, add a second key.
//!
//! Revoking and adding take a key-management step-up proof ([`StepUp<kind::KeyManagement>`]),
//! checked against the exact action the operation performs. A revoked key is refused by the
//! next assertion, because only usable keys are offered and accepted (case A16).

use paw_proto::action::Action;
use paw_proto::http::{AddKeyStartResponse, SecurityKeyInfo, SecurityKeyList};
use serde_json::Value;

use crate::base::auth::AuthContext;
use crate::identity;
use crate::identity::error::{IdentityError, Result};
use crate::identity::stepup::{self, kind, StepUp};
use crate::identity::webauthn::{self, ChallengeRow, CHALLENGE_TTL_MS, PURPOSE_ADD_KEY};
use crate::identity::Identity;
use crate::with_pool;

pub async fn list(svc: &Identity, auth: &AuthContext) -> Result<SecurityKeyList> {
    let keys = identity::credentials(&svc.db, &auth.user_id)
        .await?
        .into_iter()
        .map(|c| SecurityKeyInfo {
            id: c.id,
            name: c.name,
            created_at_ms: c.created_at,
            revoked_at_ms: c.revoked_at,
            locked: c.locked_at.is_some(),
        })
        .collect();
    Ok(SecurityKeyList { keys })
}

pub async fn rename(svc: &Identity, auth: &AuthContext, id: &str, name: &str) -> Result<()> {
    identity::validate_key_name(name)?;
    let n = with_pool!(&svc.db, pool => sqlx::query(
        "UPDATE credentials SET name = $1 WHERE id = $2 AND user_id = $3")
        .bind(name).bind(id).bind(&auth.user_id).execute(pool).await?.rows_affected());
    if n == 0 {
        return Err(IdentityError::NotFound("no such security key".into()));
    }
    Ok(())
}

/// The action a revocation of key `id` must have been approved as.
pub fn revoke_action(id: &str) -> Action {
    Action::KeyManagement {
        operation: "revoke".into(),
        credential: id.into(),
    }
}

/// The action adding a key named `name` must have been approved as.
pub fn add_action(name: &str) -> Action {
    Action::KeyManagement {
        operation: "add".into(),
        credential: name.into(),
    }
}

/// Creation options for an additional key of the caller.
pub async fn add_start(svc: &Identity, auth: &AuthContext) -> Result<AddKeyStartResponse> {
    let user = identity::user_by_id(&svc.db, &auth.user_id)
        .await?
        .ok_or_else(|| IdentityError::Unauthenticated("unknown user".into()))?;
    let exclude = identity::credentials(&svc.db, &user.id)
        .await?
        .iter()
        .map(|c| c.passkey().map(|p| p.cred_id().clone()))
        .collect::<Result<Vec<_>>>()?;
    let (options, challenge, state_json) =
        svc.rp
            .start_registration(user.uuid()?, &user.name, exclude)?;
    webauthn::insert_challenge(
        &svc.db,
        &ChallengeRow {
            challenge: challenge.clone(),
            user_id: Some(user.id.clone()),
            purpose: PURPOSE_ADD_KEY.to_owned(),
            action_hash: String::new(),
            state_json,
            context: "{}".to_owned(),
            expires_at: svc.clock.now_ms() + CHALLENGE_TTL_MS,
        },
    )
    .await?;
    Ok(AddKeyStartResponse {
        ceremony_id: challenge,
        options,
    })
}

/// Registers the additional key. Privileged: takes the proof, which must approve adding a
/// key with this name and belong to the same user as the registration ceremony.
pub async fn add_finish(
    svc: &Identity,
    proof: &StepUp<kind::KeyManagement>,
    ceremony_id: &str,
    credential: &Value,
    name: &str,
) -> Result<String> {
    identity::validate_key_name(name)?;
    if proof.action() != Some(&add_action(name)) {
        return Err(stepup::wrong_action());
    }
    let now = svc.clock.now_ms();
    let row = webauthn::take_challenge(&svc.db, ceremony_id, now)
        .await?
        .filter(|r| r.purpose == PURPOSE_ADD_KEY && r.user_id.as_deref() == Some(&proof.user().id))
        .ok_or_else(|| {
            IdentityError::ChallengeInvalid("unknown or used registration ceremony".into())
        })?;
    webauthn::check_not_expired(&row, now)?;
    let passkey = svc.rp.finish_registration(credential, &row.state_json)?;
    let id = identity::insert_credential(&svc.db, now, &proof.user().id, name, &passkey).await?;
    tracing::info!(user = %proof.user().name, key_id = %id, "security key added");
    Ok(id)
}
