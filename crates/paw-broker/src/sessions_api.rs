//! HTTP handlers for brokered sessions: thin — authenticate, call [`crate::sessions`].

use axum::extract::{Path, State};
use axum::Json;
use paw_proto::elevation::SignedElevation;
use paw_proto::session::{SessionList, SessionView};
use paw_proto::ApiError;

use crate::api::AppState;
use crate::elevation_api::{signed, ApiResult};
use crate::sessions;
use crate::stepup::kind;

#[utoipa::path(get, path = "/v1/sessions", tag = "sessions",
    params(("paw-device-proof" = String, Header, description = "Device-key proof")),
    responses(
        (status = 200, description = "Live sessions: everyone's for an admin, the caller's own otherwise", body = SessionList),
        (status = 401, description = "`unauthenticated`", body = ApiError),
    ))]
pub async fn live(
    State(state): State<AppState>,
    req: crate::handlers::Signed,
) -> ApiResult<SessionList> {
    req.no_body()?;
    // The sessions page refreshes it on its own: reading is not activity (case A15).
    let auth = req.probe(&state).await?;
    Ok(Json(sessions::live(&state, &auth).await?))
}

#[utoipa::path(post, path = "/v1/sessions/{id}/kill", tag = "sessions",
    request_body = SignedElevation,
    params(("id" = String, Path, description = "Session id"),
           ("paw-device-proof" = String, Header, description = "Device-key proof")),
    responses(
        (status = 200, description = "Ended; the connection closes within a second", body = SessionView),
        (status = 403, description = "`forbidden`: not an administrator", body = ApiError),
        (status = 404, description = "`not_found`: no such live session", body = ApiError),
    ))]
pub async fn kill(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: crate::handlers::Signed,
) -> ApiResult<SessionView> {
    let (auth, proof) = signed::<kind::KillSession>(&state, &req).await?;
    Ok(Json(sessions::kill(&state, &auth, &id, &proof).await?))
}
