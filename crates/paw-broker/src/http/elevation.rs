//! HTTP handlers of the elevation API. Each one extracts, authenticates, verifies the step-up
//! where one is needed, calls one [`crate::elevation`] function and converts.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::{Stream, StreamExt};
use paw_proto::action::Action;
use paw_proto::elevation::{
    CloseReviewRequest, EntitlementList, GrantList, GrantView, Inbox, RedeemResponse,
    RevokeGrantRequest, SignedElevation,
};
use paw_proto::ApiError;
use tokio_stream::wrappers::BroadcastStream;

use crate::base::auth::AuthContext;
use crate::elevation;
use crate::http::identity::Signed;
use crate::http::DeviceProof;
use crate::http::{ApiFailure, AppState};
use crate::identity::stepup::{self, kind, Kind, StepUp};

use crate::http::ApiResult;

/// How often a live event stream re-checks its session.
const SESSION_CHECK: Duration = Duration::from_secs(5);

/// Authenticates, then verifies the body's step-up for purpose `K` by the caller.
pub(crate) async fn signed<K: Kind>(
    state: &AppState,
    req: &Signed,
) -> Result<(AuthContext, StepUp<K>), ApiFailure> {
    let body: SignedElevation = req.json()?;
    let auth = req.auth(state).await?;
    let s = &body.stepup;
    let proof = stepup::verify::<K>(
        &state.identity,
        Some(&auth.user_id),
        &s.challenge,
        Some(&s.action),
        &s.credential,
    )
    .await?;
    Ok((auth, proof))
}

#[utoipa::path(get, path = "/v1/entitlements", tag = "elevation",
    params(DeviceProof),
    responses(
        (status = 200, description = "Entitlements the caller may request", body = EntitlementList),
        (status = 401, description = "`unauthenticated`", body = ApiError),
    ))]
pub async fn entitlements(
    State(state): State<AppState>,
    req: Signed,
) -> ApiResult<EntitlementList> {
    req.no_body()?;
    // Reading is not activity: pages that refresh themselves must not keep an idle session
    // alive (case A15).
    let auth = req.probe(&state).await?;
    Ok(Json(elevation::entitlements(&state.elevation, &auth)))
}

#[utoipa::path(get, path = "/v1/grants", tag = "elevation",
    params(DeviceProof),
    responses(
        (status = 200, description = "The caller's requests and grants, newest first, with the broker's time", body = GrantList),
        (status = 401, description = "`unauthenticated`", body = ApiError),
    ))]
pub async fn grants(State(state): State<AppState>, req: Signed) -> ApiResult<GrantList> {
    req.no_body()?;
    let auth = req.probe(&state).await?;
    Ok(Json(elevation::mine(&state.elevation, &auth).await?))
}

#[utoipa::path(post, path = "/v1/requests", tag = "elevation",
    request_body = SignedElevation,
    params(DeviceProof),
    responses(
        (status = 200, description = "The request as stored (active at once for automatic approval)", body = GrantView),
        (status = 400, description = "The request breaks a rule (duration, justification, ticket)", body = ApiError),
        (status = 401, description = "The request step-up failed", body = ApiError),
        (status = 403, description = "`forbidden`: not a requester, target or role outside the entitlement", body = ApiError),
    ))]
pub async fn request(State(state): State<AppState>, req: Signed) -> ApiResult<GrantView> {
    let (auth, proof) = signed::<kind::Request>(&state, &req).await?;
    Ok(Json(
        elevation::request(&state.elevation, &auth, &proof).await?,
    ))
}

#[utoipa::path(post, path = "/v1/requests/{id}/cancel", tag = "elevation",
    params(("id" = String, Path, description = "Request id"), DeviceProof),
    responses(
        (status = 200, description = "Cancelled", body = GrantView),
        (status = 404, description = "`not_found` (also for another user's request)", body = ApiError),
        (status = 409, description = "`conflict`: no longer pending", body = ApiError),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Signed,
) -> ApiResult<GrantView> {
    req.no_body()?;
    let auth = req.auth(&state).await?;
    Ok(Json(elevation::cancel(&state.elevation, &auth, &id).await?))
}

#[utoipa::path(post, path = "/v1/requests/{id}/decide", tag = "elevation",
    request_body = SignedElevation,
    params(("id" = String, Path, description = "Request id"), DeviceProof),
    responses(
        (status = 200, description = "The decision is recorded; the request as it stands", body = GrantView),
        (status = 401, description = "The approver's step-up failed", body = ApiError),
        (status = 403, description = "`forbidden`: own request, or not in an approving group", body = ApiError),
        (status = 409, description = "`conflict`: not pending, or this person already decided", body = ApiError),
    ))]
pub async fn decide(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Signed,
) -> ApiResult<GrantView> {
    let (auth, proof) = signed::<kind::Approve>(&state, &req).await?;
    match proof.action() {
        Some(Action::Approve { request_id, .. }) if *request_id == id => {}
        _ => return Err(stepup::wrong_action().into()),
    }
    Ok(Json(
        elevation::decide(&state.elevation, &auth, &proof).await?,
    ))
}

#[utoipa::path(get, path = "/v1/approvals", tag = "elevation",
    params(DeviceProof),
    responses(
        (status = 200, description = "Requests the caller may decide, and break-glass uses to review", body = Inbox),
        (status = 401, description = "`unauthenticated`", body = ApiError),
    ))]
pub async fn approvals(State(state): State<AppState>, req: Signed) -> ApiResult<Inbox> {
    req.no_body()?;
    let auth = req.probe(&state).await?;
    Ok(Json(elevation::inbox(&state.elevation, &auth).await?))
}

#[utoipa::path(get, path = "/v1/oversight", tag = "elevation",
    params(DeviceProof),
    responses(
        (status = 200, description = "Other people's approved or active grants the caller may revoke \
            (of entitlements they approve for; every one for an admin), newest first, at most 200, \
            with the broker's time", body = GrantList),
        (status = 401, description = "`unauthenticated`", body = ApiError),
    ))]
pub async fn oversight(State(state): State<AppState>, req: Signed) -> ApiResult<GrantList> {
    req.no_body()?;
    // The approvals page refreshes it on its own: reading is not activity (case A15).
    let auth = req.probe(&state).await?;
    Ok(Json(elevation::oversight(&state.elevation, &auth).await?))
}

#[utoipa::path(post, path = "/v1/grants/{id}/release", tag = "elevation",
    params(("id" = String, Path, description = "Grant id"), DeviceProof),
    responses(
        (status = 200, description = "Released; its sessions end", body = GrantView),
        (status = 404, description = "`not_found`", body = ApiError),
        (status = 409, description = "`conflict`: not approved or active", body = ApiError),
    ))]
pub async fn release(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Signed,
) -> ApiResult<GrantView> {
    req.no_body()?;
    let auth = req.auth(&state).await?;
    Ok(Json(
        elevation::release(&state.elevation, &auth, &id).await?,
    ))
}

#[utoipa::path(post, path = "/v1/grants/{id}/revoke", tag = "elevation",
    request_body = RevokeGrantRequest,
    params(("id" = String, Path, description = "Grant id"), DeviceProof),
    responses(
        (status = 200, description = "Revoked; its sessions end", body = GrantView),
        (status = 403, description = "`forbidden`: not an approver of the entitlement or an admin", body = ApiError),
        (status = 409, description = "`conflict`: already over", body = ApiError),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Signed,
) -> ApiResult<GrantView> {
    let body: RevokeGrantRequest = req.json()?;
    let auth = req.auth(&state).await?;
    Ok(Json(
        elevation::revoke(&state.elevation, &auth, &id, &body.reason).await?,
    ))
}

#[utoipa::path(post, path = "/v1/breakglass", tag = "elevation",
    request_body = SignedElevation,
    params(DeviceProof),
    responses(
        (status = 200, description = "Active at once, audited first, every admin notified, review opened", body = GrantView),
        (status = 400, description = "No justification, or too long", body = ApiError),
        (status = 401, description = "The break-glass step-up failed", body = ApiError),
        (status = 403, description = "`forbidden`: the entitlement has no break-glass", body = ApiError),
    ))]
pub async fn break_glass(State(state): State<AppState>, req: Signed) -> ApiResult<GrantView> {
    let (auth, proof) = signed::<kind::BreakGlass>(&state, &req).await?;
    Ok(Json(
        elevation::break_glass(&state.elevation, &auth, &proof).await?,
    ))
}

#[utoipa::path(post, path = "/v1/reviews/{id}/close", tag = "elevation",
    request_body = CloseReviewRequest,
    params(("id" = String, Path, description = "Break-glass grant id"), DeviceProof),
    responses(
        (status = 200, description = "The review with this reviewer's sign-off", body = GrantView),
        (status = 403, description = "`forbidden`: not an admin, or the user who broke the glass", body = ApiError),
        (status = 409, description = "`conflict`: already reviewed by this person", body = ApiError),
    ))]
pub async fn close_review(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Signed,
) -> ApiResult<GrantView> {
    let body: CloseReviewRequest = req.json()?;
    let auth = req.auth(&state).await?;
    Ok(Json(
        elevation::close_review(&state.elevation, &auth, &id, &body.comment).await?,
    ))
}

#[utoipa::path(post, path = "/v1/grants/{id}/redeem", tag = "elevation",
    request_body = SignedElevation,
    params(("id" = String, Path, description = "Grant id"), DeviceProof),
    responses(
        (status = 200, description = "A one-time session ticket", body = RedeemResponse),
        (status = 401, description = "The session step-up failed", body = ApiError),
        (status = 403, description = "`forbidden`: not active, approvals no longer hold, user locked", body = ApiError),
        (status = 409, description = "`conflict`: the grant's sessions are all in use", body = ApiError),
    ))]
pub async fn redeem(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Signed,
) -> ApiResult<RedeemResponse> {
    let (auth, proof) = signed::<kind::Session>(&state, &req).await?;
    match proof.action() {
        Some(Action::Session { grant_id, .. }) if *grant_id == id => {}
        _ => return Err(stepup::wrong_action().into()),
    }
    Ok(Json(
        elevation::redeem(&state.elevation, &auth, &proof).await?,
    ))
}

#[utoipa::path(get, path = "/v1/events", tag = "elevation",
    params(DeviceProof),
    responses(
        (status = 200, description = "Server-sent events: `LiveEvent` JSON in each `data`", content_type = "text/event-stream"),
        (status = 401, description = "`unauthenticated`", body = ApiError),
    ))]
pub async fn events(
    State(state): State<AppState>,
    req: Signed,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiFailure> {
    req.no_body()?;
    let auth = req.probe(&state).await?;
    let policy = state.elevation.policy.clone();
    let rx = state.elevation.notifier.subscribe();
    let closed = state.elevation.notifier.closed();
    // The stream authenticated once; it ends when its session does (revoked, idle, past 12 h,
    // user locked or disabled), checked every few seconds, or when this broker stops.
    let ended = {
        let state = state.clone();
        let session = auth.session_id.clone();
        async move {
            let alive = async {
                loop {
                    tokio::time::sleep(SESSION_CHECK).await;
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
    let stream = BroadcastStream::new(rx)
        .filter_map(move |n| {
            let out = match n {
                Ok(n)
                    if n.audience
                        .includes(&policy.get(), &auth.user_name, &auth.roles) =>
                {
                    serde_json::to_string(&n.event)
                        .ok()
                        .map(|data| Ok(Event::default().event(n.event.kind.clone()).data(data)))
                }
                // A subscriber that fell behind is told to reload rather than silently miss events.
                Err(_) => Some(Ok(Event::default().event("resync").data("{}"))),
                Ok(_) => None,
            };
            std::future::ready(out)
        })
        .take_until(ended);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// A refusal before the step-up starts, so nobody touches their key for a request that cannot
/// succeed.
pub fn precheck(state: &AppState, auth: &AuthContext, action: &Action) -> Result<(), ApiFailure> {
    match action {
        Action::Request { .. } | Action::BreakGlass { .. } => {
            elevation::check_action(
                &state.elevation.policy.get(),
                auth,
                action,
                state.clock.now_ms(),
            )?;
        }
        Action::KillSession { reason, .. } => crate::sessions::check_kill_reason(reason)?,
        _ => {}
    }
    Ok(())
}
