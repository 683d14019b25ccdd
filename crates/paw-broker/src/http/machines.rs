//! HTTP handlers for machine identities: thin — extract, call [`crate::machines`], convert.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::Json;
use paw_proto::http::{ChallengeResponse, LoginFinishRequest, LoginStartRequest, TokenResponse};
use paw_proto::machine::{
    CreateMachineRequest, CreateMachineResponse, JoinMachineRequest, MachineList, MachineView,
    RotateMachineKeyRequest, RotatedMachineKey, TransferMachineRequest, WorkloadLoginRequest,
};
use paw_proto::ApiError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::identity::Signed;
use crate::http::{ApiFailure, ApiJson, ApiResult, AppState, DeviceProof};
use crate::identity::stepup::{self, kind};
use crate::machines::{self, inventory};

/// The TCP peer's address, as the machine's login source (K5). Behind a proxy this is the
/// proxy: the broker does not trust forwarding headers.
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_canonical()),
        ))
    }
}

/// An empty success.
#[derive(Debug, Serialize, ToSchema)]
pub struct Joined {
    pub machine: String,
}

#[utoipa::path(post, path = "/v1/machines", tag = "machines",
    request_body = CreateMachineRequest,
    params(DeviceProof),
    responses(
        (status = 200, description = "Created; a key machine's join token is shown once", body = CreateMachineResponse),
        (status = 400, description = "`bad_request`: a field is invalid, the owner is not an active person, the issuer is not trusted", body = ApiError),
        (status = 401, description = "`unauthenticated`, `challenge_invalid` or `webauthn_rejected`", body = ApiError),
        (status = 403, description = "`forbidden`: not an administrator", body = ApiError),
        (status = 409, description = "`conflict`: the name is taken", body = ApiError),
    ))]
pub async fn create(
    State(state): State<AppState>,
    req: Signed,
) -> ApiResult<CreateMachineResponse> {
    let body: CreateMachineRequest = req.json()?;
    let auth = req.auth(&state).await?;
    let action = machines::create_action(&body.spec);
    let proof = stepup::verify::<kind::ManageMachine>(
        &state.identity,
        Some(&auth.user_id),
        &body.challenge,
        Some(&action),
        &body.credential,
    )
    .await?;
    Ok(Json(
        state.machines.create(&auth, &proof, &body.spec).await?,
    ))
}

#[utoipa::path(post, path = "/v1/machines/{name}/owner", tag = "machines",
    request_body = TransferMachineRequest,
    params(("name" = String, Path, description = "Machine name"), DeviceProof),
    responses(
        (status = 200, description = "The new owner is accountable; a suspension for want of an owner is lifted. An administrator assigns anyone; the backup owner may take the machine over themselves", body = MachineView),
        (status = 400, description = "`bad_request`: the new owner is not an active person", body = ApiError),
        (status = 401, description = "`unauthenticated`, `challenge_invalid` or `webauthn_rejected`", body = ApiError),
        (status = 403, description = "`forbidden`: neither an administrator nor the backup owner taking it over", body = ApiError),
        (status = 404, description = "`not_found`: no such machine", body = ApiError),
    ))]
pub async fn transfer(
    State(state): State<AppState>,
    Path(name): Path<String>,
    req: Signed,
) -> ApiResult<MachineView> {
    let body: TransferMachineRequest = req.json()?;
    let auth = req.auth(&state).await?;
    let action = machines::transfer_action(&name, &body.owner);
    let proof = stepup::verify::<kind::ManageMachine>(
        &state.identity,
        Some(&auth.user_id),
        &body.challenge,
        Some(&action),
        &body.credential,
    )
    .await?;
    Ok(Json(
        state
            .machines
            .transfer(&auth, &proof, &name, &body.owner)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/machines", tag = "machines",
    params(DeviceProof),
    responses(
        (status = 200, description = "Every machine for an administrator; otherwise those the caller owns or backs up; with flags", body = MachineList),
        (status = 401, description = "`unauthenticated`", body = ApiError),
    ))]
pub async fn list(State(state): State<AppState>, req: Signed) -> ApiResult<MachineList> {
    req.no_body()?;
    let auth = req.probe(&state).await?;
    Ok(Json(inventory::list(&state.machines, &auth).await?))
}

#[utoipa::path(post, path = "/v1/machines/join", tag = "machines",
    request_body = JoinMachineRequest,
    responses(
        (status = 200, description = "The key is registered; the join token is spent", body = Joined),
        (status = 400, description = "`bad_request`: not an Ed25519 or compressed P-256 key", body = ApiError),
        (status = 401, description = "`unauthenticated`: unknown machine, used or expired token, bad signature, source not allowed", body = ApiError),
        (status = 403, description = "`account_locked`: the machine is suspended", body = ApiError),
        (status = 409, description = "`conflict`: the key is registered already (one key belongs to one machine)", body = ApiError),
    ))]
pub async fn join(
    State(state): State<AppState>,
    Peer(peer): Peer,
    ApiJson(body): ApiJson<JoinMachineRequest>,
) -> ApiResult<Joined> {
    state.machines.join(&body, peer).await?;
    Ok(Json(Joined {
        machine: body.machine,
    }))
}

#[utoipa::path(post, path = "/v1/machines/login/start", tag = "machines",
    request_body = LoginStartRequest,
    responses(
        (status = 200, description = "A single-use challenge for the machine's key", body = ChallengeResponse),
        (status = 401, description = "`unauthenticated`: unknown machine", body = ApiError),
        (status = 403, description = "`account_locked`", body = ApiError),
        (status = 429, description = "`rate_limited`", body = ApiError),
    ))]
pub async fn login_start(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginStartRequest>,
) -> ApiResult<ChallengeResponse> {
    Ok(Json(state.machines.login_start(&body.user).await?))
}

#[utoipa::path(post, path = "/v1/machines/login/finish", tag = "machines",
    request_body = LoginFinishRequest,
    responses(
        (status = 200, description = "A session bound to the key that signed", body = TokenResponse),
        (status = 400, description = "`bad_request`", body = ApiError),
        (status = 401, description = "`challenge_invalid` (replayed or expired), `unauthenticated` (retired key, source not allowed)", body = ApiError),
        (status = 403, description = "`account_locked`: suspended", body = ApiError),
    ))]
pub async fn login_finish(
    State(state): State<AppState>,
    Peer(peer): Peer,
    ApiJson(body): ApiJson<LoginFinishRequest>,
) -> ApiResult<TokenResponse> {
    Ok(Json(
        state
            .machines
            .login_finish(&body.challenge, &body.credential, peer)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/machines/workload-login", tag = "machines",
    request_body = WorkloadLoginRequest,
    responses(
        (status = 200, description = "A session bound to the session key; it ends with `session_expires_at_ms`", body = TokenResponse),
        (status = 400, description = "`bad_request`: not an Ed25519 or compressed P-256 session key", body = ApiError),
        (status = 401, description = "`unauthenticated`: the token is refused (issuer, alg, signature, audience, times, used before) or matches no machine", body = ApiError),
        (status = 403, description = "`account_locked`: the machine is suspended", body = ApiError),
        (status = 409, description = "`conflict`: the key is registered already (one key belongs to one machine)", body = ApiError),
    ))]
pub async fn workload_login(
    State(state): State<AppState>,
    Peer(peer): Peer,
    ApiJson(body): ApiJson<WorkloadLoginRequest>,
) -> ApiResult<TokenResponse> {
    Ok(Json(state.machines.workload_login(&body, peer).await?))
}

#[utoipa::path(post, path = "/v1/machines/self/rotate", tag = "machines",
    request_body = RotateMachineKeyRequest,
    params(DeviceProof),
    responses(
        (status = 200, description = "The new key works now; the old ones until `old_key_retires_at_ms`", body = RotatedMachineKey),
        (status = 400, description = "`bad_request`: not an Ed25519 or compressed P-256 key, or not a key machine", body = ApiError),
        (status = 401, description = "`unauthenticated`: bad signature by the new key", body = ApiError),
        (status = 403, description = "`forbidden`: the caller is not a machine", body = ApiError),
        (status = 409, description = "`conflict`: the key is registered already (one key belongs to one machine)", body = ApiError),
    ))]
pub async fn rotate(State(state): State<AppState>, req: Signed) -> ApiResult<RotatedMachineKey> {
    let body: RotateMachineKeyRequest = req.json()?;
    let auth = req.auth(&state).await?;
    Ok(Json(state.machines.rotate(&auth, &body).await?))
}
