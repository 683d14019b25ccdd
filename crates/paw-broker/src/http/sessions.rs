//! HTTP handlers for brokered sessions: thin — authenticate, call [`crate::sessions`] or [`crate::sessions::history`].

use axum::extract::{Path, State};
use axum::Json;
use paw_proto::elevation::SignedElevation;
use paw_proto::session::{
    CapturedFile, CommandHoldList, CommandHoldView, SessionFiles, SessionHistory,
    SessionHistoryQuery, SessionList, SessionMasks, SessionRecording, SessionView,
    SessionWatchEvent,
};
use paw_proto::ApiError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::elevation::signed;
use crate::http::ApiResult;
use crate::http::DeviceProof;
use crate::http::{ApiQuery, AppState};
use crate::identity::stepup::kind;
use crate::sessions::{self, history, holds, watch};

/// The sessions' routes, registered with `routes!` so the OpenAPI document has them.
pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(live))
        .routes(routes!(kill))
        .routes(routes!(masks))
        .routes(routes!(history))
        .routes(routes!(recording))
        .routes(routes!(files))
        .routes(routes!(file))
        .routes(routes!(holds_list))
        .routes(routes!(holds_release))
        .routes(routes!(holds_decide))
        .routes(routes!(watch))
}

#[utoipa::path(get, path = "/v1/sessions", tag = "sessions",
    params(DeviceProof),
    responses(
        (status = 200, description = "Live sessions: everyone's for an admin; otherwise the caller's own and those of the entitlements the caller may approve for the session's person. `may_watch` marks the ones the caller may watch (`/v1/sessions/{id}/watch`)", body = SessionList),
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

#[utoipa::path(get, path = "/v1/sessions/{id}/files", tag = "sessions",
    params(("id" = String, Path, description = "Session id"), DeviceProof),
    responses(
        (status = 200, description = "The files moved through the session's SFTP, in order, with path, direction, size and SHA-256; for help-desk, administrators and the session's user", body = SessionFiles),
        (status = 404, description = "`not_found`: no such session (or not the caller's)", body = ApiError),
    ))]
pub async fn files(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: crate::http::identity::Signed,
) -> ApiResult<SessionFiles> {
    req.no_body()?;
    let auth = req.auth(&state).await?;
    Ok(Json(
        sessions::sftp::captures::list(&state.sessions, &auth, &id).await?,
    ))
}

#[utoipa::path(get, path = "/v1/sessions/{id}/files/{n}", tag = "sessions",
    params(("id" = String, Path, description = "Session id"), ("n" = i64, Path, description = "The file's place in the session, from 1"), DeviceProof),
    responses(
        (status = 200, description = "The captured copy (`[entitlement.files] capture = true`), checked against the SHA-256 taken when it was kept; the read is audited", body = CapturedFile),
        (status = 400, description = "`bad_request`: `n` is not a number", body = ApiError),
        (status = 404, description = "`not_found`: no such session (or not the caller's), no such file, or no captured copy", body = ApiError),
        (status = 409, description = "`recording_tampered`: the copy no longer matches its SHA-256", body = ApiError),
        (status = 413, description = "`payload_too_large`: larger than the broker gives out (64 MiB)", body = ApiError),
    ))]
pub async fn file(
    State(state): State<AppState>,
    Path((id, n)): Path<(String, i64)>,
    req: crate::http::identity::Signed,
) -> ApiResult<CapturedFile> {
    req.no_body()?;
    let auth = req.auth(&state).await?;
    Ok(Json(
        sessions::sftp::captures::read(&state.sessions, &auth, &id, n).await?,
    ))
}

#[utoipa::path(get, path = "/v1/holds", tag = "sessions",
    params(DeviceProof),
    responses(
        (status = 200, description = "Pending held commands: the caller's own, and those the caller may approve", body = CommandHoldList),
        (status = 401, description = "`unauthenticated`", body = ApiError),
    ))]
pub async fn holds_list(
    State(state): State<AppState>,
    req: crate::http::identity::Signed,
) -> ApiResult<CommandHoldList> {
    req.no_body()?;
    let auth = req.probe(&state).await?;
    Ok(Json(holds::list(&state.sessions, &auth).await?))
}

#[utoipa::path(post, path = "/v1/holds/{id}/release", tag = "sessions",
    request_body = SignedElevation,
    params(("id" = String, Path, description = "Hold id"), DeviceProof),
    responses(
        (status = 200, description = "Released: the held line end goes to the target within a poll (200 ms)", body = CommandHoldView),
        (status = 403, description = "`forbidden`: not the session's user", body = ApiError),
        (status = 404, description = "`not_found`: no such held command", body = ApiError),
        (status = 409, description = "`conflict`: already decided, timed out, or waiting for an approval instead", body = ApiError),
    ))]
pub async fn holds_release(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: crate::http::identity::Signed,
) -> ApiResult<CommandHoldView> {
    let (auth, proof) = signed::<kind::Command>(&state, &req).await?;
    Ok(Json(
        holds::release(&state.sessions, &auth, &id, &proof).await?,
    ))
}

#[utoipa::path(post, path = "/v1/holds/{id}/decide", tag = "sessions",
    request_body = SignedElevation,
    params(("id" = String, Path, description = "Hold id"), DeviceProof),
    responses(
        (status = 200, description = "Decided: approved runs, refused is dropped", body = CommandHoldView),
        (status = 403, description = "`forbidden`: the session's own user (by person), or not an approver of the entitlement", body = ApiError),
        (status = 404, description = "`not_found`: no such held command", body = ApiError),
        (status = 409, description = "`conflict`: already decided, timed out, or waiting for a step-up instead", body = ApiError),
    ))]
pub async fn holds_decide(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: crate::http::identity::Signed,
) -> ApiResult<CommandHoldView> {
    let (auth, proof) = signed::<kind::ApproveCommand>(&state, &req).await?;
    Ok(Json(
        holds::decide(&state.sessions, &auth, &id, &proof).await?,
    ))
}

/// How often a watch stream re-checks the watcher's sign-in (as `/v1/events` does).
const WATCH_SIGN_IN_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Watching a live SSH session (case J6). Read-only by construction: this GET is the only
/// route of the watch, it takes no body, and what it serves comes from a receiver of the
/// target's output — no handler, channel or type carries anything a watcher sends towards
/// the session, so other methods on this path answer 405. The watch is audited
/// (`session_watch_started`) before the stream's first byte and the user is told in their
/// terminal before the watcher sees anything.
#[utoipa::path(get, path = "/v1/sessions/{id}/watch", tag = "sessions",
    params(("id" = String, Path, description = "Session id"), DeviceProof),
    responses(
        (status = 200, description = "Server-sent events, each `data` a `SessionWatchEvent` JSON and each `event` its `kind`: `start` (size and current screen; again after the watcher fell behind), `output`, `resize`, then `end`", body = SessionWatchEvent, content_type = "text/event-stream"),
        (status = 401, description = "`unauthenticated`", body = ApiError),
        (status = 403, description = "`forbidden`: neither an administrator nor an approver of the session's entitlement, or the session's own user (by person)", body = ApiError),
        (status = 404, description = "`not_found`: no such session, it has ended, or it has not started relaying yet", body = ApiError),
        (status = 409, description = "`conflict`: another broker carries the session (the message names it; watch through that broker), or it is not an SSH session", body = ApiError),
    ))]
pub async fn watch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: crate::http::identity::Signed,
) -> Result<
    axum::response::sse::Sse<
        impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    crate::http::ApiFailure,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::StreamExt;

    req.no_body()?;
    let auth = req.auth(&state).await?;
    // The stream authenticated once; it ends when the watcher's sign-in does (checked every
    // few seconds) or when this broker stops.
    let until = {
        let state = state.clone();
        let session = auth.session_id.clone();
        let closed = state.elevation.notifier.closed();
        async move {
            let alive = async {
                loop {
                    tokio::time::sleep(WATCH_SIGN_IN_CHECK).await;
                    if !crate::identity::tokens::session_alive(&state.identity, &session)
                        .await
                        .unwrap_or(false)
                    {
                        break;
                    }
                }
            };
            tokio::select! {
                () = alive => {}
                () = closed => {}
            }
        }
    };
    let events = watch::open(&state.sessions, &auth, &id, Box::pin(until)).await?;
    let stream = tokio_stream::wrappers::ReceiverStream::new(events).map(|e| {
        let data = serde_json::to_string(&e).unwrap_or_else(|_| "{}".into());
        Ok(Event::default().event(e.kind()).data(data))
    });
    // Short keep-alives: a watcher that went away is noticed (and the user told) soon.
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(5))))
}
