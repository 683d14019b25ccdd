//! HTTP handlers of the identity API. Each one only extracts, calls one module function and
//! converts; the logic lives in [`crate::identity`], [`crate::identity::stepup`], [`crate::identity::tokens`] and
//! [`crate::identity::keys`].

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Path, Request, State};
use axum::http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;

use paw_proto::device_proof;
use paw_proto::http::{
    AddKeyFinishRequest, AddKeyStartResponse, ChallengeResponse, EnrollFinishRequest,
    EnrollFinishResponse, EnrollStartRequest, EnrollStartResponse, LoginFinishRequest,
    LoginStartRequest, RefreshRequest, RenameKeyRequest, RevokeKeyRequest, SecurityKeyList,
    SignedOut, StepUpFinishRequest, StepUpStartRequest, StepUpVerified, TokenResponse, WhoAmI,
};
use paw_proto::{ApiError, ErrorCode};
use serde::de::DeserializeOwned;

use crate::base::auth::AuthContext;
use crate::http::DeviceProof;
use crate::http::{ApiFailure, ApiJson, AppState};
use crate::identity::stepup::{self, kind};
use crate::identity::throttle;
use crate::identity::tokens::{self, SignedRequest};
use crate::identity::{self, keys};

use crate::http::ApiResult;

/// A request whose exact bytes a device proof may cover: method, path, body, proof header and
/// bearer token, with the body parsed on demand.
pub struct Signed(pub SignedRequest);

impl<S: Send + Sync> FromRequest<S> for Signed {
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let method = req.method().as_str().to_owned();
        let path_and_query = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
        let (proof, bearer, json) = {
            let headers = req.headers();
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let proof = header(device_proof::HEADER);
            let bearer = header(AUTHORIZATION.as_str())
                .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned));
            let json =
                header(CONTENT_TYPE.as_str()).is_some_and(|v| v.starts_with("application/json"));
            (proof, bearer, json)
        };
        let body = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiFailure::new(ErrorCode::PayloadTooLarge, "request body is too large")
            } else {
                ApiFailure::new(ErrorCode::BadRequest, "cannot read the request body")
            }
        })?;
        if !body.is_empty() && !json {
            return Err(ApiFailure::new(
                ErrorCode::UnsupportedMediaType,
                "expected Content-Type: application/json",
            ));
        }
        Ok(Self(SignedRequest {
            method,
            path_and_query,
            body: body.to_vec(),
            proof,
            bearer,
        }))
    }
}

impl Signed {
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, ApiFailure> {
        serde_json::from_slice(&self.0.body).map_err(|e| {
            let mut m = e.to_string();
            m.truncate(200);
            ApiFailure::new(ErrorCode::BadRequest, m)
        })
    }

    pub(crate) fn no_body(&self) -> Result<(), ApiFailure> {
        if self.0.body.is_empty() {
            Ok(())
        } else {
            Err(ApiFailure::new(
                ErrorCode::BadRequest,
                "this endpoint takes no body",
            ))
        }
    }

    pub(crate) async fn auth(&self, state: &AppState) -> Result<AuthContext, ApiFailure> {
        Ok(tokens::authenticate(&state.identity, &self.0).await?)
    }

    /// Authenticated, but not user activity: the app's background status poll.
    pub(crate) async fn probe(&self, state: &AppState) -> Result<AuthContext, ApiFailure> {
        Ok(tokens::authenticate_as(&state.identity, &self.0, tokens::Activity::Probe).await?)
    }
}

/// Runs every request with its source, the TCP peer address, known to the sign-in throttle
/// (case N1), and gives a throttled refusal its `Retry-After`. Proxy headers are not read:
/// behind a proxy all clients share its address, which only throttles more.
pub async fn with_source(req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical());
    let source = throttle::Source::new(ip);
    let mut res = throttle::scope(source.clone(), next.run(req)).await;
    if res.status() == StatusCode::TOO_MANY_REQUESTS {
        if let Some(secs) = source.retry_after_secs() {
            res.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
    }
    res
}

#[utoipa::path(post, path = "/v1/enroll/start", tag = "identity",
    request_body = EnrollStartRequest,
    responses(
        (status = 200, description = "Creation options for the security key", body = EnrollStartResponse),
        (status = 400, description = "Malformed request", body = ApiError),
        (status = 403, description = "`invite_invalid`", body = ApiError),
    ))]
pub async fn enroll_start(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EnrollStartRequest>,
) -> ApiResult<EnrollStartResponse> {
    Ok(Json(identity::enroll_start(&state.identity, &req).await?))
}

#[utoipa::path(post, path = "/v1/enroll/finish", tag = "identity",
    request_body = EnrollFinishRequest,
    responses(
        (status = 200, description = "User, security key and device key registered", body = EnrollFinishResponse),
        (status = 400, description = "Malformed request", body = ApiError),
        (status = 401, description = "`challenge_invalid` or `webauthn_rejected`", body = ApiError),
        (status = 403, description = "`invite_invalid`", body = ApiError),
    ))]
pub async fn enroll_finish(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EnrollFinishRequest>,
) -> ApiResult<EnrollFinishResponse> {
    Ok(Json(identity::enroll_finish(&state.identity, &req).await?))
}

#[utoipa::path(post, path = "/v1/login/start", tag = "identity",
    request_body = LoginStartRequest,
    responses(
        (status = 200, description = "Assertion options for `Action::Login`; the same shape for \
            every name (a decoy for an unknown or disabled user, N2)", body = ChallengeResponse),
        (status = 400, description = "Malformed request or user name", body = ApiError),
        (status = 401, description = "`webauthn_rejected`: no security key is registered on this broker at all", body = ApiError),
        (status = 429, description = "`rate_limited`: too many failed attempts from this address \
            (for this user); see `Retry-After`", body = ApiError, headers(("Retry-After" = u64, description = "Seconds until an attempt is verified again"))),
    ))]
pub async fn login_start(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginStartRequest>,
) -> ApiResult<ChallengeResponse> {
    Ok(Json(stepup::login_start(&state.identity, &req.user).await?))
}

#[utoipa::path(post, path = "/v1/login/finish", tag = "identity",
    request_body = LoginFinishRequest,
    responses(
        (status = 200, description = "A new session's tokens", body = TokenResponse),
        (status = 401, description = "`challenge_invalid`, `webauthn_rejected` or `unauthenticated`", body = ApiError),
        (status = 403, description = "`account_locked`", body = ApiError),
        (status = 429, description = "`rate_limited`: too many failed attempts from this address \
            (for this user); see `Retry-After`", body = ApiError, headers(("Retry-After" = u64, description = "Seconds until an attempt is verified again"))),
    ))]
pub async fn login_finish(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginFinishRequest>,
) -> ApiResult<TokenResponse> {
    let proof =
        stepup::verify::<kind::Login>(&state.identity, None, &req.challenge, None, &req.credential)
            .await?;
    Ok(Json(
        tokens::login(&state.identity, &proof, &req.device_public_key).await?,
    ))
}

#[utoipa::path(post, path = "/v1/token/refresh", tag = "identity",
    request_body = RefreshRequest,
    params(("paw-device-proof" = String, Header, description = "Device-key proof over the refresh token")),
    responses(
        (status = 200, description = "Rotated tokens", body = TokenResponse),
        (status = 401, description = "`unauthenticated` (reuse revokes the session) or `reauthentication_required`", body = ApiError),
    ))]
pub async fn token_refresh(State(state): State<AppState>, req: Signed) -> ApiResult<TokenResponse> {
    let body: RefreshRequest = req.json()?;
    Ok(Json(
        tokens::refresh(&state.identity, &req.0, &body.refresh_token).await?,
    ))
}

#[utoipa::path(post, path = "/v1/auth/sign-out", tag = "identity",
    params(DeviceProof),
    responses(
        (status = 200, description = "The sign-in's token family is revoked on every broker", body = SignedOut),
        (status = 401, description = "`unauthenticated` (already signed out) or `reauthentication_required`", body = ApiError),
    ))]
pub async fn sign_out(State(state): State<AppState>, req: Signed) -> ApiResult<SignedOut> {
    req.no_body()?;
    let auth = req.probe(&state).await?;
    Ok(Json(tokens::sign_out(&state.identity, &auth).await?))
}

#[utoipa::path(get, path = "/v1/me", tag = "identity",
    params(DeviceProof),
    responses(
        (status = 200, description = "The caller", body = WhoAmI),
        (status = 401, description = "`unauthenticated` or `reauthentication_required`", body = ApiError),
    ))]
pub async fn whoami(State(state): State<AppState>, req: Signed) -> ApiResult<WhoAmI> {
    req.no_body()?;
    let auth = req.probe(&state).await?;
    Ok(Json(WhoAmI {
        user: auth.user_name,
        roles: auth.roles,
        session_expires_at_ms: auth.session_expires_at_ms,
    }))
}

#[utoipa::path(post, path = "/v1/stepup/start", tag = "identity",
    request_body = StepUpStartRequest,
    params(DeviceProof),
    responses(
        (status = 200, description = "Assertion options bound to the action's purpose and hash", body = ChallengeResponse),
        (status = 400, description = "Malformed request, or a login action", body = ApiError),
        (status = 401, description = "`unauthenticated` or `reauthentication_required`", body = ApiError),
        (status = 429, description = "`rate_limited`: too many failed step-ups from this address; \
            see `Retry-After`", body = ApiError, headers(("Retry-After" = u64, description = "Seconds until an attempt is verified again"))),
    ))]
pub async fn stepup_start(
    State(state): State<AppState>,
    req: Signed,
) -> ApiResult<ChallengeResponse> {
    let body: StepUpStartRequest = req.json()?;
    let auth = req.auth(&state).await?;
    crate::http::elevation::precheck(&state, &auth, &body.action)?;
    Ok(Json(
        stepup::start_for(&state.identity, &auth.user_id, &body.action).await?,
    ))
}

#[utoipa::path(post, path = "/v1/stepup/finish", tag = "identity",
    request_body = StepUpFinishRequest,
    params(DeviceProof),
    responses(
        (status = 200, description = "The step-up verified (and its challenge consumed)", body = StepUpVerified),
        (status = 401, description = "`challenge_invalid`, `webauthn_rejected`, `unauthenticated`", body = ApiError),
        (status = 429, description = "`rate_limited`: too many failed step-ups from this address; \
            see `Retry-After`", body = ApiError, headers(("Retry-After" = u64, description = "Seconds until an attempt is verified again"))),
    ))]
pub async fn stepup_finish(
    State(state): State<AppState>,
    req: Signed,
) -> ApiResult<StepUpVerified> {
    let body: StepUpFinishRequest = req.json()?;
    let auth = req.auth(&state).await?;
    let action_hash = stepup::verify_any(
        &state.identity,
        &auth.user_id,
        &body.challenge,
        &body.action,
        &body.credential,
    )
    .await?;
    Ok(Json(StepUpVerified {
        purpose: body.action.purpose(),
        action_hash,
    }))
}

#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    params(DeviceProof),
    responses(
        (status = 200, description = "The caller's security keys", body = SecurityKeyList),
        (status = 401, description = "`unauthenticated`", body = ApiError),
    ))]
pub async fn keys_list(State(state): State<AppState>, req: Signed) -> ApiResult<SecurityKeyList> {
    req.no_body()?;
    let auth = req.auth(&state).await?;
    Ok(Json(keys::list(&state.identity, &auth).await?))
}

#[utoipa::path(post, path = "/v1/keys/{id}/rename", tag = "keys",
    request_body = RenameKeyRequest,
    params(("id" = String, Path, description = "Security key id"), DeviceProof),
    responses(
        (status = 200, description = "Renamed; the updated list", body = SecurityKeyList),
        (status = 404, description = "`not_found`", body = ApiError),
    ))]
pub async fn key_rename(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Signed,
) -> ApiResult<SecurityKeyList> {
    let body: RenameKeyRequest = req.json()?;
    let auth = req.auth(&state).await?;
    keys::rename(&state.identity, &auth, &id, &body.name).await?;
    Ok(Json(keys::list(&state.identity, &auth).await?))
}

#[utoipa::path(post, path = "/v1/keys/{id}/revoke", tag = "keys",
    request_body = RevokeKeyRequest,
    params(("id" = String, Path, description = "Security key id"), DeviceProof),
    responses(
        (status = 200, description = "Revoked; the updated list", body = SecurityKeyList),
        (status = 401, description = "The key-management step-up failed", body = ApiError),
        (status = 404, description = "`not_found`", body = ApiError),
    ))]
pub async fn key_revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Signed,
) -> ApiResult<SecurityKeyList> {
    let body: RevokeKeyRequest = req.json()?;
    let auth = req.auth(&state).await?;
    let s = &body.stepup;
    let proof = stepup::verify::<kind::KeyManagement>(
        &state.identity,
        Some(&auth.user_id),
        &s.challenge,
        Some(&s.action),
        &s.credential,
    )
    .await?;
    crate::elevation::keys::revoke_key(&state.elevation, &proof, &id).await?;
    Ok(Json(keys::list(&state.identity, &auth).await?))
}

#[utoipa::path(post, path = "/v1/keys/register/start", tag = "keys",
    params(DeviceProof),
    responses(
        (status = 200, description = "Creation options for an additional key", body = AddKeyStartResponse),
        (status = 401, description = "`unauthenticated`", body = ApiError),
    ))]
pub async fn key_add_start(
    State(state): State<AppState>,
    req: Signed,
) -> ApiResult<AddKeyStartResponse> {
    req.no_body()?;
    let auth = req.auth(&state).await?;
    Ok(Json(keys::add_start(&state.identity, &auth).await?))
}

#[utoipa::path(post, path = "/v1/keys/register/finish", tag = "keys",
    request_body = AddKeyFinishRequest,
    params(DeviceProof),
    responses(
        (status = 200, description = "Added; the updated list", body = SecurityKeyList),
        (status = 401, description = "Registration or the key-management step-up failed", body = ApiError),
    ))]
pub async fn key_add_finish(
    State(state): State<AppState>,
    req: Signed,
) -> ApiResult<SecurityKeyList> {
    let body: AddKeyFinishRequest = req.json()?;
    let auth = req.auth(&state).await?;
    let s = &body.stepup;
    let proof = stepup::verify::<kind::KeyManagement>(
        &state.identity,
        Some(&auth.user_id),
        &s.challenge,
        Some(&s.action),
        &s.credential,
    )
    .await?;
    keys::add_finish(
        &state.identity,
        &proof,
        &body.ceremony_id,
        &body.credential,
        &body.name,
    )
    .await?;
    Ok(Json(keys::list(&state.identity, &auth).await?))
}
