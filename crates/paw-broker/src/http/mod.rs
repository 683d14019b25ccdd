//! The HTTP API: router, handlers, the `{code, message}` error mapping and the OpenAPI document.
//!
//! Handlers are thin: they take typed input through [`ApiQuery`] / [`ApiJson`], whose rejections
//! are already `{code, message}`, and return `Result<_, ApiFailure>`. Anything that still
//! leaves the router as a non-JSON error (axum's 405, tower-http's 413 and 408, a caught panic)
//! is rewritten by [`finish_response`], so no client ever has to parse a plain-text error.

pub mod audit;
pub mod elevation;
pub mod identity;
pub mod machines;
mod outage;
pub mod sessions;
pub mod statuses;
pub mod vault;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use paw_proto::http::{Health, HealthQuery, Readiness};
use paw_proto::{ApiError, ErrorCode};
use serde::de::DeserializeOwned;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::base::error::{BrokerError, ServiceError};
use crate::config::Limits;
use crate::store::Db;

/// How long `/healthz` waits for the database before answering 503. Shorter than the request
/// timeout so a probe learns "storage down" rather than "timeout".
const HEALTH_DB_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest client-influenced text echoed back in an error message.
const MAX_ECHO: usize = 200;

/// What every handler can reach: the domain services, each owning its dependencies, plus the
/// store and clock for `/healthz`. Only `http/` and `server.rs` know this type.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub instance_id: Arc<str>,
    pub clock: Arc<dyn crate::base::clock::Clock>,
    pub identity: crate::identity::Identity,
    pub elevation: crate::elevation::Elevation,
    pub sessions: crate::sessions::Sessions,
    pub machines: crate::machines::Machines,
    pub vault: crate::vault::Vault,
    pub cosigner: crate::audit::checkpoints::Cosigner,
}

/// The `paw-device-proof` header every authenticated operation takes, declared once for the
/// OpenAPI document (and read by [`statuses`] to document the signed-request errors).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct DeviceProof {
    /// Device-key proof
    #[param(rename = "paw-device-proof")]
    #[allow(dead_code)]
    proof: String,
}

/// What a JSON handler answers: its body, or `{code, message}` with the code's status.
pub type ApiResult<T> = Result<Json<T>, ApiFailure>;

/// An error on its way to the client as `{code, message}` with the code's HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure(pub ApiError);

impl ApiFailure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(ApiError::new(code, message))
    }
}

/// The one table from every service's error to the answer: the code names the HTTP status
/// (`ErrorCode::http_status`), the message is the refusal's own or, for storage and internal
/// failures, a generic one.
impl<E: ServiceError> From<E> for ApiFailure {
    fn from(e: E) -> Self {
        let api = e.to_api_error();
        if matches!(
            api.code,
            ErrorCode::Internal | ErrorCode::StorageUnavailable | ErrorCode::InvalidConfig
        ) {
            // The client gets a generic message; the details go to the operator.
            tracing::error!(code = %api.code, error = %e, "request failed");
        }
        Self(api)
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.0)).into_response()
    }
}

/// `Query<T>` whose rejection is a 400 `bad_request` in the API's error shape.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiFailure::new(
                ErrorCode::BadRequest,
                truncate(rejection.body_text()),
            )),
        }
    }
}

/// `Json<T>` whose rejections map to 400 `bad_request`, 413 `payload_too_large` or
/// 415 `unsupported_media_type`. Request DTOs use `deny_unknown_fields`, so extra fields are
/// rejected here too.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiFailure {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiFailure::new(ErrorCode::PayloadTooLarge, "request body is too large")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiFailure::new(
            ErrorCode::UnsupportedMediaType,
            "expected Content-Type: application/json",
        ),
        // Whatever else axum reports about a body is the client's fault, never a 5xx.
        _ => ApiFailure::new(ErrorCode::BadRequest, truncate(rejection.body_text())),
    }
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_ECHO {
        let mut end = MAX_ECHO;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pawd",
        description = "The paw broker API. Every error is `{code, message}` (ApiError); \
                       clients branch on `code`."
    ),
    components(schemas(ApiError, ErrorCode)),
    tags(
        (name = "system", description = "Liveness and the API document"),
        (name = "identity", description = "Enrollment, login, tokens and step-up. Authenticated \
            requests carry `Authorization: Bearer <access token>` and a `paw-device-proof` header."),
        (name = "keys", description = "The caller's security keys"),
        (name = "elevation", description = "Just-in-time elevation: entitlements, requests, \
            approvals, grants, break-glass and its review, session tickets, live events"),
        (name = "machines", description = "Machine identities: owned by a person, proving \
            themselves with a key or a workload token, and the inventory of their risks"),
        (name = "vault", description = "Vaulted credentials of accounts that cannot use \
            certificates: listed without secrets, revealed once on a step-up, rotated by a journal \
            that never loses a secret"),
        (name = "audit", description = "The broker as witness of each workstation's audit \
            trail: it cosigns checkpoints that continue the last one it cosigned"),
    )
)]
struct ApiDoc;

/// The documented routes. Handlers are registered here with `routes!` so the OpenAPI document
/// is generated from them and cannot drift.
fn documented_routes() -> OpenApiRouter<AppState> {
    use self::{audit as audit_api, elevation as elevation_api, identity as handlers};
    sessions::routes(OpenApiRouter::with_openapi(ApiDoc::openapi()))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(handlers::enroll_start))
        .routes(routes!(handlers::enroll_finish))
        .routes(routes!(handlers::login_start))
        .routes(routes!(handlers::login_finish))
        .routes(routes!(handlers::token_refresh))
        .routes(routes!(handlers::sign_out))
        .routes(routes!(handlers::whoami))
        .routes(routes!(handlers::stepup_start))
        .routes(routes!(handlers::stepup_finish))
        .routes(routes!(handlers::keys_list))
        .routes(routes!(handlers::key_rename))
        .routes(routes!(handlers::key_revoke))
        .routes(routes!(handlers::key_add_start))
        .routes(routes!(handlers::key_add_finish))
        .routes(routes!(elevation_api::entitlements))
        .routes(routes!(elevation_api::grants))
        .routes(routes!(elevation_api::request))
        .routes(routes!(elevation_api::cancel))
        .routes(routes!(elevation_api::decide))
        .routes(routes!(elevation_api::approvals))
        .routes(routes!(elevation_api::oversight))
        .routes(routes!(elevation_api::release))
        .routes(routes!(elevation_api::revoke))
        .routes(routes!(elevation_api::break_glass))
        .routes(routes!(elevation_api::close_review))
        .routes(routes!(elevation_api::redeem))
        .routes(routes!(
            crate::http::machines::create,
            crate::http::machines::list
        ))
        .routes(routes!(crate::http::machines::transfer))
        .routes(routes!(crate::http::machines::join))
        .routes(routes!(crate::http::machines::login_start))
        .routes(routes!(crate::http::machines::login_finish))
        .routes(routes!(crate::http::machines::workload_login))
        .routes(routes!(crate::http::machines::rotate))
        .routes(routes!(crate::http::vault::list))
        .routes(routes!(crate::http::vault::reveal))
        .routes(routes!(crate::http::vault::rotate))
        .routes(routes!(elevation_api::events))
        .routes(routes!(audit_api::checkpoint))
        .routes(routes!(audit_api::witness))
}

/// The OpenAPI document, without a database or a server.
pub fn openapi() -> utoipa::openapi::OpenApi {
    statuses::document(documented_routes().into_openapi())
}

/// The complete application: routes, fallbacks and every layer.
pub fn router(state: AppState, limits: &Limits) -> Router {
    let (routes, doc) = documented_routes().split_for_parts();
    let doc = Arc::new(statuses::document(doc));
    let routes = routes
        .route(
            "/openapi.json",
            get(move || {
                let doc = Arc::clone(&doc);
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            outage::refuse_without_database,
        ))
        .route_layer(axum::middleware::from_fn(identity::with_source))
        .fallback(not_found)
        .with_state(state);
    with_layers(routes, limits)
}

/// The layer stack every route gets, outermost first: request span, error rewriting and
/// security headers, panic catching, timeout, body limit. Public so tests can wrap test-only
/// routes in exactly the production stack.
pub fn with_layers(routes: Router, limits: &Limits) -> Router {
    // Separate `layer` calls rather than one ServiceBuilder: each call turns the response body
    // back into axum's `Body`, which the next layer (timeout, response rewriting) needs.
    routes
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout(),
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::map_response(finish_response))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %truncate(req.uri().path().to_owned()),
                        status = tracing::field::Empty,
                        latency_ms = tracing::field::Empty,
                    )
                })
                .on_request(())
                .on_response(|res: &Response, latency: Duration, span: &Span| {
                    span.record("status", res.status().as_u16());
                    span.record(
                        "latency_ms",
                        u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
                    );
                    tracing::info!("request finished");
                })
                .on_failure(()),
        )
}

/// Rewrites any error response that is not already JSON into `{code, message}` (keeping the
/// status and an `Allow` header), and adds the security headers to every response.
pub async fn finish_response(res: Response) -> Response {
    let status = res.status();
    let mut res = if (status.is_client_error() || status.is_server_error()) && !is_json(&res) {
        let code = code_for_status(status);
        let mut rewritten = (status, Json(ApiError::new(code, message_for(code)))).into_response();
        if let Some(allow) = res.headers().get(ALLOW) {
            rewritten.headers_mut().insert(ALLOW, allow.clone());
        }
        rewritten
    } else {
        res
    };
    let headers = res.headers_mut();
    // API answers are per-caller and may name privileges: no cache may keep them.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    res
}

fn is_json(res: &Response) -> bool {
    res.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

fn code_for_status(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::REQUEST_TIMEOUT => ErrorCode::Timeout,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::StorageUnavailable,
        s if s.is_client_error() => ErrorCode::BadRequest,
        _ => ErrorCode::Internal,
    }
}

fn message_for(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::NotFound => "no such route",
        ErrorCode::MethodNotAllowed => "method not allowed on this route",
        ErrorCode::Timeout => "the request took too long",
        ErrorCode::PayloadTooLarge => "request body is too large",
        ErrorCode::UnsupportedMediaType => "expected Content-Type: application/json",
        ErrorCode::StorageUnavailable => "the broker's database is unavailable",
        ErrorCode::Internal => "internal error; see the broker log",
        _ => "bad request",
    }
}

fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %detail, "handler panicked");
    ApiFailure::new(ErrorCode::Internal, message_for(ErrorCode::Internal)).into_response()
}

async fn not_found() -> ApiFailure {
    ApiFailure::new(ErrorCode::NotFound, message_for(ErrorCode::NotFound))
}

/// Liveness, the broker's clock, and (unless `shallow=true`) a database round trip.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "system",
    params(HealthQuery),
    responses(
        (status = 200, description = "The broker and its database are up", body = Health),
        (status = 400, description = "Unknown or malformed query parameter", body = ApiError),
        (status = 503, description = "The database is unavailable (`storage_unavailable`)", body = ApiError),
    )
)]
async fn healthz(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HealthQuery>,
) -> Result<Json<Health>, ApiFailure> {
    if !query.shallow.unwrap_or(false) {
        match tokio::time::timeout(HEALTH_DB_TIMEOUT, state.db.ping()).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(BrokerError::Database("ping timed out".into()).into());
            }
        }
    }
    Ok(Json(Health {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database: state.db.kind(),
        time_ms: state.clock.now_ms(),
        instance_id: state.instance_id.to_string(),
    }))
}

/// How long `/readyz` waits for the database: a load balancer's check should get an answer,
/// 503 included, well within its own timeout.
const READY_DB_TIMEOUT: Duration = Duration::from_secs(1);

/// Readiness for a load balancer: the database answers within a second and, for a broker that
/// carries sessions, its lease is live (others have not taken it for dead).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "system",
    responses(
        (status = 200, description = "Ready: the database answers and the lease is live", body = Readiness),
        (status = 503, description = "Not ready: the database is unavailable or the lease has lapsed (`storage_unavailable`)", body = ApiError),
    )
)]
async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiFailure> {
    let not_ready = |m: &str| ApiFailure::new(ErrorCode::StorageUnavailable, m);
    let checks = async {
        state.db.ping().await?;
        crate::sessions::brokers::lease_left(&state.sessions).await
    };
    let lease = match tokio::time::timeout(READY_DB_TIMEOUT, checks).await {
        Ok(Ok(lease)) => lease,
        Ok(Err(_)) | Err(_) => return Err(not_ready("the database is unavailable")),
    };
    if lease.is_some_and(|left| left < 0) {
        return Err(not_ready("this broker's lease has lapsed"));
    }
    Ok(Json(Readiness {
        database: state.db.kind(),
        broker_id: lease.map(|_| state.sessions.broker_id.to_string()),
        lease_ms_left: lease,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::clock::Clock;
    use crate::config::AuthConfig;
    use crate::identity::webauthn::RelyingParty;
    use axum::body::Body;
    use axum::routing::post;
    use serde::Deserialize;
    use tower::ServiceExt;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Echo {
        name: String,
        n: u32,
    }

    fn limits() -> Limits {
        Limits {
            max_body_bytes: 1024,
            request_timeout_secs: 1,
        }
    }

    /// Test-only routes behind the production layer stack: a JSON body endpoint (none exists in
    /// the API yet), a slow one and a panicking one.
    fn app() -> Router {
        let routes = Router::new()
            .route(
                "/echo",
                post(|ApiJson(e): ApiJson<Echo>| async move { e.name }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route(
                "/boom",
                get(|| async {
                    if std::env::var_os("PAW_NEVER_SET_THIS").is_none() {
                        panic!("secret detail");
                    }
                    "unreachable"
                }),
            )
            .fallback(not_found);
        with_layers(routes, &limits())
    }

    async fn call(req: axum::http::Request<Body>) -> (StatusCode, ApiError, Response) {
        let res = app().oneshot(req).await.unwrap();
        let status = res.status();
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let err: ApiError = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not an ApiError ({e}): {bytes:?}"));
        (status, err, Response::from_parts(parts, Body::empty()))
    }

    fn post_json(body: impl Into<Body>, content_type: Option<&str>) -> axum::http::Request<Body> {
        let mut b = axum::http::Request::post("/echo");
        if let Some(ct) = content_type {
            b = b.header(CONTENT_TYPE, ct);
        }
        b.body(body.into()).unwrap()
    }

    #[tokio::test]
    async fn f1_json_body_extra_missing_wrong_typed_fields_are_400() {
        for body in [
            r#"{"name":"a","n":1,"extra":true}"#,
            r#"{"name":"a"}"#,
            r#"{"name":"a","n":"1"}"#,
            r#"{"name":"a","n":-1}"#,
            r#"{"name":"a","#,
            r#"null"#,
            "",
        ] {
            let (status, err, _) = call(post_json(body, Some("application/json"))).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(err.code, ErrorCode::BadRequest, "{body}");
        }
    }

    #[tokio::test]
    async fn f1_json_body_without_json_content_type_is_415() {
        for ct in [None, Some("text/plain")] {
            let (status, err, _) = call(post_json(r#"{"name":"a","n":1}"#, ct)).await;
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert_eq!(err.code, ErrorCode::UnsupportedMediaType);
        }
    }

    #[tokio::test]
    async fn f1_oversized_json_body_is_413_with_and_without_length() {
        let big = format!(r#"{{"name":"{}","n":1}}"#, "x".repeat(4096));
        // With Content-Length: refused before the handler runs.
        let mut req = post_json(big.clone(), Some("application/json"));
        req.headers_mut().insert(
            axum::http::header::CONTENT_LENGTH,
            HeaderValue::from(big.len()),
        );
        let (status, err, _) = call(req).await;
        assert_eq!(
            (status, err.code),
            (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge)
        );
        // Without a length header: refused while reading.
        let (status, err, _) = call(post_json(big, Some("application/json"))).await;
        assert_eq!(
            (status, err.code),
            (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge)
        );
    }

    #[tokio::test]
    async fn f1_slow_request_is_408_timeout() {
        let req = axum::http::Request::get("/slow")
            .body(Body::empty())
            .unwrap();
        let (status, err, _) = call(req).await;
        assert_eq!(
            (status, err.code),
            (StatusCode::REQUEST_TIMEOUT, ErrorCode::Timeout)
        );
    }

    #[tokio::test]
    async fn f1_panic_is_500_internal_without_details() {
        let req = axum::http::Request::get("/boom")
            .body(Body::empty())
            .unwrap();
        let (status, err, res) = call(req).await;
        assert_eq!(
            (status, err.code),
            (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal)
        );
        assert!(!err.message.contains("secret"));
        assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
    }

    #[tokio::test]
    async fn f1_wrong_method_keeps_allow_header() {
        let req = axum::http::Request::delete("/echo")
            .body(Body::empty())
            .unwrap();
        let (status, err, res) = call(req).await;
        assert_eq!(
            (status, err.code),
            (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed)
        );
        assert_eq!(res.headers()[ALLOW], "POST");
    }

    struct FixedClock(i64);

    impl Clock for FixedClock {
        fn now_ms(&self) -> i64 {
            self.0
        }
    }

    async fn healthz_app(dir: &tempfile::TempDir) -> (Router, Db) {
        let (app, db, _) = app_with_heartbeat(dir).await;
        (app, db)
    }

    pub(super) async fn app_with_heartbeat(
        dir: &tempfile::TempDir,
    ) -> (Router, Db, Arc<crate::sessions::brokers::Heartbeat>) {
        let heartbeat: Arc<crate::sessions::brokers::Heartbeat> = Default::default();
        let url = crate::config::DatabaseUrl::new(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("h.db").display()
        ));
        let db = Db::connect(&url, crate::store::Create::IfMissing)
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let rp = RelyingParty::new(&crate::config::WebauthnConfig {
            rp_id: "localhost".into(),
            origin: "https://localhost:8443".into(),
            replica_origins: Vec::new(),
            attestation_ca: Vec::new(),
            allowed_aaguids: Vec::new(),
        })
        .unwrap();
        let clock: Arc<dyn Clock> = Arc::new(FixedClock(42));
        let identity = crate::identity::Identity {
            db: db.clone(),
            clock: clock.clone(),
            rp: Arc::new(rp),
            auth: AuthConfig::default(),
        };
        let policy = crate::elevation::policy::SharedPolicy::default();
        let machines = crate::machines::Machines::new(
            db.clone(),
            clock.clone(),
            identity.clone(),
            policy.clone(),
            Default::default(),
        )
        .unwrap();
        let vault = crate::vault::Vault::disabled(db.clone(), clock.clone());
        let state = AppState {
            machines,
            db: db.clone(),
            instance_id: Arc::from("abc"),
            clock: clock.clone(),
            identity,
            elevation: crate::elevation::Elevation {
                db: db.clone(),
                clock: clock.clone(),
                policy,
                notifier: crate::elevation::notify::Notifier::new(None),
                front_door: None,
            },
            sessions: crate::sessions::Sessions {
                db: db.clone(),
                clock: clock.clone(),
                live_sessions: Default::default(),
                ssh: None,
                broker_id: Arc::from("test-broker"),
                policy: crate::elevation::policy::SharedPolicy::default(),
                heartbeat: heartbeat.clone(),
                notifier: crate::elevation::notify::Notifier::new(None),
                vault: vault.clone(),
            },
            vault,
            cosigner: crate::audit::checkpoints::Cosigner {
                db: db.clone(),
                clock,
                witness: Arc::new(crate::crypto::witness::Witness::from_key(
                    ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
                )),
            },
        };
        (router(state, &limits()), db, heartbeat)
    }

    #[tokio::test]
    async fn healthz_uses_the_broker_clock() {
        let dir = tempfile::tempdir().unwrap();
        let (app, _db) = healthz_app(&dir).await;
        let req = axum::http::Request::get("/healthz")
            .body(Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let health: Health = serde_json::from_slice(&bytes).unwrap();
        assert_eq!((health.time_ms, health.instance_id.as_str()), (42, "abc"));
    }

    #[tokio::test]
    async fn healthz_is_503_storage_unavailable_when_the_database_is_down() {
        let dir = tempfile::tempdir().unwrap();
        let (app, db) = healthz_app(&dir).await;
        db.close().await;
        let req = axum::http::Request::get("/healthz")
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let err: ApiError = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(err.code, ErrorCode::StorageUnavailable);
        assert!(
            !err.message.contains("h.db"),
            "no internals: {}",
            err.message
        );
        // A shallow probe does not touch the database.
        let req = axum::http::Request::get("/healthz?shallow=true")
            .body(Body::empty())
            .unwrap();
        assert_eq!(app.oneshot(req).await.unwrap().status(), StatusCode::OK);
    }

    #[test]
    fn openapi_documents_healthz_and_error_shape() {
        let doc = serde_json::to_value(openapi()).unwrap();
        assert!(doc["paths"]["/healthz"]["get"].is_object());
        assert!(doc["components"]["schemas"]["ApiError"].is_object());
        assert!(doc["components"]["schemas"]["Health"].is_object());
        for (path, method) in [
            ("/v1/enroll/start", "post"),
            ("/v1/enroll/finish", "post"),
            ("/v1/login/start", "post"),
            ("/v1/login/finish", "post"),
            ("/v1/token/refresh", "post"),
            ("/v1/me", "get"),
            ("/v1/stepup/start", "post"),
            ("/v1/stepup/finish", "post"),
            ("/v1/keys", "get"),
            ("/v1/keys/{id}/rename", "post"),
            ("/v1/keys/{id}/revoke", "post"),
            ("/v1/keys/register/start", "post"),
            ("/v1/keys/register/finish", "post"),
            ("/v1/audit/checkpoint", "post"),
            ("/v1/audit/witness", "get"),
        ] {
            assert!(doc["paths"][path][method].is_object(), "{method} {path}");
        }
        assert!(doc["components"]["schemas"]["TokenResponse"].is_object());
    }

    #[test]
    fn every_status_maps_to_a_code_with_that_status() {
        for s in [400u16, 404, 405, 408, 413, 415, 503, 500] {
            let status = StatusCode::from_u16(s).unwrap();
            assert_eq!(code_for_status(status).http_status(), s);
        }
    }
}
