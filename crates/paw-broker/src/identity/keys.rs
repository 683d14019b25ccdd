//! The security keys page: list, rename, revoke, add a second key.
//!
//! Revoking and adding take a key-management step-up proof ([`StepUp<kind::KeyManagement>`]),
//! checked against the exact action the operation performs. A revoked key is refused by the
//! next assertion, because only usable keys are offered and accepted (case A16).

use paw_proto::action::Action;
use paw_proto::http::{AddKeyStartResponse, SecurityKeyInfo, SecurityKeyList};
use paw_proto::ErrorCode;
use serde_json::Value;

use crate::base::error::Result;
use crate::base::util::refuse;
use crate::http::AppState;
use crate::identity;
use crate::identity::stepup::{self, kind, StepUp};
use crate::identity::tokens::AuthContext;
use crate::identity::webauthn::{self, ChallengeRow, CHALLENGE_TTL_MS, PURPOSE_ADD_KEY};
use crate::with_pool;

pub async fn list(state: &AppState, auth: &AuthContext) -> Result<SecurityKeyList> {
    let keys = identity::credentials(&state.db, &auth.user_id)
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

pub async fn rename(state: &AppState, auth: &AuthContext, id: &str, name: &str) -> Result<()> {
    identity::validate_key_name(name)?;
    let n = with_pool!(&state.db, pool => sqlx::query(
        "UPDATE credentials SET name = $1 WHERE id = $2 AND user_id = $3")
        .bind(name).bind(id).bind(&auth.user_id).execute(pool).await?.rows_affected());
    if n == 0 {
        return Err(refuse(ErrorCode::NotFound, "no such security key"));
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

/// Revokes one of the step-up user's keys. Privileged: takes the proof.
pub async fn revoke(state: &AppState, proof: &StepUp<kind::KeyManagement>, id: &str) -> Result<()> {
    if proof.action() != Some(&revoke_action(id)) {
        return Err(stepup::wrong_action());
    }
    let now = state.clock.now_ms();
    let user = proof.user();
    // One audited transaction: the key stops working and everything it asked for ends with it
    // (case A16), or nothing changes.
    let mut tx = state.db.begin().await?;
    crate::audit::lock(&mut tx).await?;
    let cred: Option<String> = crate::with_tx!(&mut tx, t => sqlx::query_scalar(
        "UPDATE credentials SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL \
         RETURNING cred_id")
        .bind(now).bind(id).bind(&user.id).fetch_optional(&mut **t).await?);
    let Some(cred) = cred else {
        return Err(refuse(ErrorCode::NotFound, "no such active security key"));
    };
    let voided = crate::elevation::void_activated_by(
        &mut tx,
        &user.id,
        &cred,
        now,
        "the security key that asked for it was revoked",
    )
    .await?;
    crate::audit::append(
        &mut tx,
        now,
        crate::audit::Entry::new(
            &user.name,
            "security_key_revoked",
            id,
            paw_audit::Outcome::Success,
            serde_json::json!({ "grants_revoked": voided }),
        ),
    )
    .await?;
    tx.commit().await?;
    tracing::warn!(user = %user.name, key_id = %id, grants = voided.len(), "security key revoked");
    Ok(())
}

/// Creation options for an additional key of the caller.
pub async fn add_start(state: &AppState, auth: &AuthContext) -> Result<AddKeyStartResponse> {
    let user = identity::user_by_id(&state.db, &auth.user_id)
        .await?
        .ok_or_else(|| refuse(ErrorCode::Unauthenticated, "unknown user"))?;
    let exclude = identity::credentials(&state.db, &user.id)
        .await?
        .iter()
        .map(|c| c.passkey().map(|p| p.cred_id().clone()))
        .collect::<Result<Vec<_>>>()?;
    let (options, challenge, state_json) =
        state
            .rp
            .start_registration(user.uuid()?, &user.name, exclude)?;
    webauthn::insert_challenge(
        &state.db,
        &ChallengeRow {
            challenge: challenge.clone(),
            user_id: Some(user.id.clone()),
            purpose: PURPOSE_ADD_KEY.to_owned(),
            action_hash: String::new(),
            state_json,
            context: "{}".to_owned(),
            expires_at: state.clock.now_ms() + CHALLENGE_TTL_MS,
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
    state: &AppState,
    proof: &StepUp<kind::KeyManagement>,
    ceremony_id: &str,
    credential: &Value,
    name: &str,
) -> Result<String> {
    identity::validate_key_name(name)?;
    if proof.action() != Some(&add_action(name)) {
        return Err(stepup::wrong_action());
    }
    let now = state.clock.now_ms();
    let row = webauthn::take_challenge(&state.db, ceremony_id, now)
        .await?
        .filter(|r| r.purpose == PURPOSE_ADD_KEY && r.user_id.as_deref() == Some(&proof.user().id))
        .ok_or_else(|| {
            refuse(
                ErrorCode::ChallengeInvalid,
                "unknown or used registration ceremony",
            )
        })?;
    webauthn::check_not_expired(&row, now)?;
    let passkey = state.rp.finish_registration(credential, &row.state_json)?;
    let id = identity::insert_credential(&state.db, now, &proof.user().id, name, &passkey).await?;
    tracing::info!(user = %proof.user().name, key_id = %id, "security key added");
    Ok(id)
}
