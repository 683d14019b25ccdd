//! Refusing at once while this broker cannot reach its database (I5).

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use paw_proto::ErrorCode;

use super::{ApiFailure, AppState};

/// I5: a broker that has not reached its database for [`REFUSE_AFTER`] answers every API call
/// 503 at once, so that clients move to another broker instead of each waiting for the pool.
/// Health and readiness stay as they are: they report the outage themselves.
///
/// [`REFUSE_AFTER`]: crate::sessions::brokers::REFUSE_AFTER
pub(super) async fn refuse_without_database(
    State(state): State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    if req.uri().path().starts_with("/v1/") {
        if let Some(silent) = state.sessions.heartbeat.silent_for() {
            if silent > crate::sessions::brokers::REFUSE_AFTER {
                return ApiFailure::new(
                    ErrorCode::StorageUnavailable,
                    format!(
                        "this broker has not reached its database for {} s; another broker may answer",
                        silent.as_secs()
                    ),
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::StatusCode;
    use paw_proto::{ApiError, ErrorCode};
    use tower::ServiceExt;

    use super::super::tests::app_with_heartbeat;

    /// I5: once the lease has gone without the database past REFUSE_AFTER, API calls answer
    /// 503 `storage_unavailable` at once (no pool wait); before that, and for the health
    /// probes, nothing changes; a renewal lifts it.
    #[tokio::test]
    async fn api_calls_are_refused_at_once_when_the_lease_has_not_reached_the_database() {
        use crate::sessions::brokers::REFUSE_AFTER;
        let dir = tempfile::tempdir().unwrap();
        let (app, _db, heartbeat) = app_with_heartbeat(&dir).await;
        let get = |path: &str| {
            app.clone()
                .oneshot(axum::http::Request::get(path).body(Body::empty()).unwrap())
        };
        // No lease yet, then a fresh one: the call reaches its handler (401 without a token).
        assert_eq!(
            get("/v1/keys").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
        heartbeat.beat();
        assert_eq!(
            get("/v1/keys").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );

        heartbeat.beat_at(tokio::time::Instant::now() - REFUSE_AFTER - Duration::from_millis(100));
        let res = get("/v1/keys").await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let e: ApiError = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(e.code, ErrorCode::StorageUnavailable, "{}", e.message);
        assert_eq!(
            get("/healthz?shallow=true").await.unwrap().status(),
            StatusCode::OK
        );

        heartbeat.beat();
        assert_eq!(
            get("/v1/keys").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
}
