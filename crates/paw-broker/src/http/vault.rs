//! HTTP handlers for vaulted accounts: thin — extract, verify the step-up, call
//! [`crate::vault`], convert. No handler returns a secret except `reveal`.

use axum::extract::{Path, State};
use axum::Json;
use paw_proto::action::Action;
use paw_proto::vault::{
    RevealRequest, RevealedSecret, RotateRequest, VaultAccountList, VaultAccountView,
};
use paw_proto::ApiError;

use crate::http::identity::Signed;
use crate::http::{ApiResult, AppState, DeviceProof};
use crate::identity::stepup::{self, kind};

#[utoipa::path(get, path = "/v1/vault/accounts", tag = "vault",
    params(DeviceProof),
    responses(
        (status = 200, description = "Vaulted accounts without their secrets: every one for administrators and help-desk, otherwise those the caller's entitlements use; with holder and rotation health", body = VaultAccountList),
        (status = 401, description = "`unauthenticated`", body = ApiError),
        (status = 503, description = "`vault_unavailable`: no `[vault]`, or its key-encryption key is missing or wrong", body = ApiError),
    ))]
pub async fn list(State(state): State<AppState>, req: Signed) -> ApiResult<VaultAccountList> {
    req.no_body()?;
    let auth = req.auth(&state).await?;
    Ok(Json(state.vault.list(&auth).await?))
}

/// The account's name (`target/account`) for the step-up's action, as the vault stores it.
async fn account_name(
    state: &AppState,
    id: &str,
) -> Result<String, crate::vault::error::VaultError> {
    crate::vault::store::by_id(&state.vault.db, id)
        .await?
        .map(|r| r.name())
        .ok_or_else(|| {
            crate::vault::error::VaultError::NotFound(format!("no vaulted account {id}"))
        })
}

#[utoipa::path(post, path = "/v1/vault/accounts/{id}/reveal", tag = "vault",
    request_body = RevealRequest,
    params(("id" = String, Path, description = "Account id"), DeviceProof),
    responses(
        (status = 200, description = "The secret, once, after its audit record; it is rotated when the checkout ends (L4)", body = RevealedSecret),
        (status = 400, description = "`bad_request`: the reason is empty or too long", body = ApiError),
        (status = 401, description = "`unauthenticated`, `challenge_invalid` (a step-up for another account, grant or reason) or `webauthn_rejected`", body = ApiError),
        (status = 403, description = "`forbidden`: not an active grant of the caller's for this account, or its entitlement does not allow a reveal", body = ApiError),
        (status = 404, description = "`not_found`: no such account", body = ApiError),
        (status = 409, description = "`checked_out`: another grant holds this exclusive account (the message says who and until when)", body = ApiError),
        (status = 503, description = "`vault_unavailable`: the key-encryption key is missing or does not open the secret", body = ApiError),
    ))]
pub async fn reveal(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Signed,
) -> ApiResult<RevealedSecret> {
    let body: RevealRequest = req.json()?;
    let auth = req.auth(&state).await?;
    let action = Action::RevealSecret {
        account: account_name(&state, &id).await?,
        grant_id: body.grant_id.clone(),
        reason: body.reason.clone(),
    };
    let proof = stepup::verify::<kind::RevealSecret>(
        &state.identity,
        Some(&auth.user_id),
        &body.challenge,
        Some(&action),
        &body.credential,
    )
    .await?;
    Ok(Json(
        state
            .vault
            .reveal(&auth, &proof, &id, &body.grant_id, &body.reason)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/vault/accounts/{id}/rotate", tag = "vault",
    request_body = RotateRequest,
    params(("id" = String, Path, description = "Account id"), DeviceProof),
    responses(
        (status = 200, description = "The account after the rotation (rotated, kept the current secret, or failed with the alert raised), or as it stands when the rotation is still running after 4 s (it goes on; the journal and the health list show the rest)", body = VaultAccountView),
        (status = 400, description = "`bad_request`: the reason is empty or too long, or a generic secret (paw cannot change it)", body = ApiError),
        (status = 401, description = "`unauthenticated`, `challenge_invalid` or `webauthn_rejected`", body = ApiError),
        (status = 403, description = "`forbidden`: not an administrator", body = ApiError),
        (status = 404, description = "`not_found`: no such account", body = ApiError),
        (status = 409, description = "`conflict`: another broker is rotating it", body = ApiError),
        (status = 502, description = "`target_unavailable`: the account's target is not configured", body = ApiError),
        (status = 503, description = "`vault_unavailable`", body = ApiError),
    ))]
pub async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Signed,
) -> ApiResult<VaultAccountView> {
    let body: RotateRequest = req.json()?;
    let auth = req.auth(&state).await?;
    let action = Action::RotateSecret {
        account: account_name(&state, &id).await?,
        reason: body.reason.clone(),
    };
    let proof = stepup::verify::<kind::RotateSecret>(
        &state.identity,
        Some(&auth.user_id),
        &body.challenge,
        Some(&action),
        &body.credential,
    )
    .await?;
    Ok(Json(
        state
            .vault
            .rotate_now(&auth, &proof, &id, &body.reason)
            .await?,
    ))
}
