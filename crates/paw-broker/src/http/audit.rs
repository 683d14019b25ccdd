//! HTTP handlers of the audit witness ([`crate::audit::checkpoints`]): thin, like [`crate::http::identity`].

use axum::extract::State;
use axum::Json;
use paw_proto::http::{CheckpointCosigned, CheckpointUploadRequest, WitnessKey};
use paw_proto::ApiError;

use crate::audit::checkpoints;
use crate::http::identity::Signed;
use crate::http::DeviceProof;
use crate::http::{ApiFailure, AppState};

#[utoipa::path(post, path = "/v1/audit/checkpoint", tag = "audit",
    request_body = CheckpointUploadRequest,
    params(DeviceProof),
    responses(
        (status = 200, description = "Cosigned: the checkpoint continues the last one the broker cosigned for its origin", body = CheckpointCosigned),
        (status = 400, description = "Malformed checkpoint or record", body = ApiError),
        (status = 401, description = "`unauthenticated` or `reauthentication_required`", body = ApiError),
        (status = 403, description = "`forbidden`: not signed by this session's device key, or another user's origin", body = ApiError),
        (status = 409, description = "`conflict`: behind, forked from or not newer than the last cosigned checkpoint (recorded in the broker's log)", body = ApiError),
        (status = 413, description = "`payload_too_large`: more than 10,000 records, or the body limit", body = ApiError),
    ))]
pub async fn checkpoint(
    State(state): State<AppState>,
    req: Signed,
) -> Result<Json<CheckpointCosigned>, ApiFailure> {
    let body: CheckpointUploadRequest = req.json()?;
    let auth = req.auth(&state).await?;
    Ok(Json(
        checkpoints::upload(&state.cosigner, &auth, &body).await?,
    ))
}

#[utoipa::path(get, path = "/v1/audit/witness", tag = "audit",
    responses(
        (status = 200, description = "The broker's witness public key, for the app to pin on first use", body = WitnessKey),
    ))]
pub async fn witness(State(state): State<AppState>) -> Json<WitnessKey> {
    Json(checkpoints::witness_key(&state.cosigner))
}
