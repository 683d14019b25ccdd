//! The broker's HTTP API over real HTTPS, in-process. F1 tests carry the case id.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{client_trusting_pem, TestBroker};
use paw_proto::http::{DatabaseKind, Health};
use paw_proto::{ApiError, ErrorCode};
use reqwest::{Method, StatusCode};

/// Sends a request and asserts the answer is a JSON `{code, message}` with `status` and `code`.
async fn expect_error(
    broker: &TestBroker,
    req: reqwest::RequestBuilder,
    status: StatusCode,
    code: ErrorCode,
) -> ApiError {
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), status);
    assert!(
        res.status().is_client_error(),
        "F1: bad input must be a 4xx"
    );
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    assert_security_headers(res.headers());
    let text = res.text().await.unwrap();
    // ApiError denies unknown fields: the body is exactly {code, message}.
    let err: ApiError = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(err.code, code, "{text}");
    assert!(!err.message.is_empty());
    let _ = broker;
    err
}

fn assert_security_headers(h: &reqwest::header::HeaderMap) {
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["strict-transport-security"]
        .to_str()
        .unwrap()
        .starts_with("max-age="));
}

#[tokio::test]
async fn healthz_over_https_reports_database_and_instance() {
    let b = TestBroker::start().await;
    let res = b.client.get(b.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_security_headers(res.headers());
    let h: Health = res.json().await.unwrap();
    assert_eq!(h.status, "ok");
    assert_eq!(h.database, DatabaseKind::Sqlite);
    assert_eq!(h.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(h.instance_id, b.report.instance_id);
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    assert!((h.time_ms - now_ms).abs() < 60_000);

    let shallow: Health = b
        .client
        .get(b.url("/healthz?shallow=true"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shallow.status, "ok");
    b.stop().await;
}

#[tokio::test]
async fn client_pinning_a_different_ca_is_refused() {
    let b = TestBroker::start().await;
    let other =
        paw_broker::crypto::tls::generate_dev_pki("localhost", time::OffsetDateTime::now_utc())
            .unwrap();
    let stranger = client_trusting_pem(other.ca_cert_pem.as_bytes());
    let err = stranger.get(b.url("/healthz")).send().await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    // And the broker keeps serving clients that pin the right CA.
    assert!(b
        .client
        .get(b.url("/healthz"))
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    b.stop().await;
}

#[tokio::test]
async fn plain_http_is_not_served() {
    let b = TestBroker::start().await;
    let plain = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{}/healthz", b.addr.port());
    match plain.get(url).send().await {
        Err(_) => {}
        Ok(res) => panic!("plain HTTP answered {}", res.status()),
    }
    b.stop().await;
}

#[tokio::test]
async fn openapi_json_lists_healthz() {
    let b = TestBroker::start().await;
    let res = b.client.get(b.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc: serde_json::Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/healthz"]["get"].is_object(), "{doc}");
    assert_eq!(
        doc,
        serde_json::to_value(paw_broker::http::openapi()).unwrap()
    );
    b.stop().await;
}

#[tokio::test]
async fn f1_healthz_rejects_unknown_query_param() {
    let b = TestBroker::start().await;
    for q in ["?verbose=1", "?shallow=true&x=1", "?SHALLOW=true"] {
        let err = expect_error(
            &b,
            b.client.get(b.url(&format!("/healthz{q}"))),
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
        )
        .await;
        assert!(!err.message.is_empty(), "{q}");
    }
    b.stop().await;
}

#[tokio::test]
async fn f1_healthz_rejects_wrong_typed_query() {
    let b = TestBroker::start().await;
    for q in ["?shallow=maybe", "?shallow=", "?shallow=1x", "?shallow=%FF"] {
        expect_error(
            &b,
            b.client.get(b.url(&format!("/healthz{q}"))),
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
        )
        .await;
    }
    b.stop().await;
}

#[tokio::test]
async fn f1_oversized_body_is_413_with_code() {
    let b = TestBroker::start().await;
    let limit = b.config.limits.max_body_bytes;
    // A little over the limit, so the whole body fits in socket buffers and the client reads
    // the early 413 instead of failing mid-upload.
    let body = vec![b'{'; limit + 1024];
    expect_error(
        &b,
        b.client
            .post(b.url("/healthz"))
            .header("content-type", "application/json")
            .body(body),
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
    )
    .await;
    b.stop().await;
}

#[tokio::test]
async fn f1_unknown_route_is_404_with_code() {
    let b = TestBroker::start().await;
    for path in [
        "/",
        "/nope",
        "/healthz/x",
        "/api/v1/../../etc/passwd",
        "/%00",
    ] {
        expect_error(
            &b,
            b.client.get(b.url(path)),
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
        )
        .await;
    }
    b.stop().await;
}

#[tokio::test]
async fn f1_wrong_method_is_405_with_code() {
    let b = TestBroker::start().await;
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let res = b
            .client
            .request(method.clone(), b.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert!(res.headers()["allow"].to_str().unwrap().contains("GET"));
        expect_error(
            &b,
            b.client.request(method, b.url("/healthz")),
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
        )
        .await;
    }
    b.stop().await;
}

#[tokio::test]
async fn f1_errors_are_json_code_message() {
    let b = TestBroker::start().await;
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, ErrorCode)> = vec![
        (
            b.client.get(b.url("/healthz?bogus")),
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
        ),
        (
            b.client.get(b.url("/missing")),
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
        ),
        (
            b.client.delete(b.url("/openapi.json")),
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
        ),
        (
            b.client
                .put(b.url("/missing"))
                .body(vec![0u8; b.config.limits.max_body_bytes + 1]),
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
        ),
    ];
    for (req, status, code) in cases {
        let err = expect_error(&b, req, status, code).await;
        assert_eq!(code.http_status(), status.as_u16());
        assert!(
            err.message.len() < 300,
            "messages stay short: {}",
            err.message
        );
    }
    b.stop().await;
}
