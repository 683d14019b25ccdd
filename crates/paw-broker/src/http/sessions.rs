//! HTTP handlers for brokered sessions: thin — authenticate, call [`crate::sessions`] or [`crate::sessions::history`].

use axum::extract::{Path, State};
use axum::Json;
use paw_proto::elevation::SignedElevation;
use paw_proto::session::{
    SessionHistory, SessionHistoryQuery, SessionList, SessionMasks, SessionRecording, SessionView,
};
use paw_proto::ApiError;

use crate::http::elevation::signed;
use crate::http::ApiResult;
use crate::http::DeviceProof;
use crate::http::{ApiQuery, AppState};
use crate::identity::stepup::kind;
use crate::sessions::{self, history};

#[utoipa::path(get, path = "/v1/sessions", tag = "sessions",
    params(DeviceProof),
    responses(
        (status = 200, description = "Live sessions: everyone's for an admin, the caller's own otherwise", body = SessionList),
        (status = 401, description = "`unauthenticated`", body = ApiError),
    ))]
pub async fn live(
    State(state): State<AppState>,
    req: crate::http::identity::Signed,
) -> ApiResult<SessionList> {
    req.no_body()?;
    // The sessions page refreshes it on its own: reading is not activity (case A15).
    let auth = req.probe(&state).await?;
    Ok(Json(sessions::live(&state.sessions, &auth).await?))
}

#[utoipa::path(post, path = "/v1/sessions/{id}/kill", tag = "sessions",
    request_body = SignedElevation,
    params(("id" = String, Path, description = "Session id"), DeviceProof),
    responses(
        (status = 200, description = "Ended; the connection closes within a second", body = SessionView),
        (status = 403, description = "`forbidden`: not an administrator", body = ApiError),
        (status = 404, description = "`not_found`: no such live session", body = ApiError),
    ))]
pub async fn kill(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: crate::http::identity::Signed,
) -> ApiResult<SessionView> {
    let (auth, proof) = signed::<kind::KillSession>(&state, &req).await?;
    Ok(Json(
        sessions::kill(&state.sessions, &auth, &id, &proof).await?,
    ))
}

#[utoipa::path(get, path = "/v1/sessions/masks", tag = "sessions",
    params(DeviceProof),
    responses(
        (status = 200, description = "The patterns a replay masks; any signed-in user", body = SessionMasks),
        (status = 401, description = "`unauthenticated`", body = ApiError),
    ))]
pub async fn masks(
    State(state): State<AppState>,
    req: crate::http::identity::Signed,
) -> ApiResult<SessionMasks> {
    req.no_body()?;
    req.probe(&state).await?;
    Ok(Json(history::mask_patterns(&state.sessions)))
}

#[utoipa::path(get, path = "/v1/sessions/history", tag = "sessions",
    params(SessionHistoryQuery, DeviceProof),
    responses(
        (status = 200, description = "Sessions newest first: everyone's for help-desk and administrators, the caller's own otherwise", body = SessionHistory),
        (status = 400, description = "`bad_request`: an unknown parameter, a limit outside 1–200, a bad time range", body = ApiError),
        (status = 401, description = "`unauthenticated`", body = ApiError),
    ))]
pub async fn history(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SessionHistoryQuery>,
    req: crate::http::identity::Signed,
) -> ApiResult<SessionHistory> {
    req.no_body()?;
    let auth = req.auth(&state).await?;
    Ok(Json(
        history::history(&state.sessions, &auth, &query).await?,
    ))
}

#[utoipa::path(get, path = "/v1/sessions/{id}/recording", tag = "sessions",
    params(("id" = String, Path, description = "Session id"), DeviceProof),
    responses(
        (status = 200, description = "The asciicast v2 recording, checked against its audit record, with the configured patterns masked; the replay is audited", body = SessionRecording),
        (status = 404, description = "`not_found`: no such session (or not the caller's), or it has no recording", body = ApiError),
        (status = 409, description = "`recording_tampered`: the file no longer matches its SHA-256; `conflict`: the session is still running", body = ApiError),
        (status = 413, description = "`payload_too_large`: larger than the broker replays (64 MiB)", body = ApiError),
    ))]
pub async fn recording(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: crate::http::identity::Signed,
) -> ApiResult<SessionRecording> {
    req.no_body()?;
    let auth = req.auth(&state).await?;
    Ok(Json(history::recording(&state.sessions, &auth, &id).await?))
}
