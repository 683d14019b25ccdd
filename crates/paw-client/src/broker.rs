//! Typed HTTPS client for the broker's API.

use std::sync::Arc;
use std::time::Duration;

use paw_proto::http::Health;
use paw_proto::ApiError;
use reqwest::Method;
use rustls::pki_types::CertificateDer;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ClientError;

/// Bounded so a wedged broker shows as unreachable in the status bar instead of hanging it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Largest error body read from a stream endpoint that refused (an `ApiError` is far smaller).
const MAX_STREAM_ERROR_BYTES: usize = 16 * 1024;

/// A client bound to one broker URL and pinned to one CA. Cheap to clone.
#[derive(Clone)]
pub struct BrokerClient {
    base: String,
    http: reqwest::Client,
    /// Same trust and rules, without the overall request timeout, which would cut a long-lived
    /// event stream after [`REQUEST_TIMEOUT`]. The reader bounds the silence instead.
    stream_http: reqwest::Client,
}

impl BrokerClient {
    /// `ca_der` is the only trust anchor: the system's roots are not consulted.
    pub fn new(base: &str, ca_der: &[u8]) -> Result<Self, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca_der.to_vec()))
            .map_err(|e| ClientError::InvalidSettings {
                field: "ca_path",
                reason: format!("unusable CA certificate: {e}"),
            })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ClientError::Storage(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let http = http_client(tls.clone(), Some(REQUEST_TIMEOUT))?;
        let stream_http = http_client(tls, None)?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
            stream_http,
        })
    }

    /// Whether both clients talk to the same broker URL.
    pub(crate) fn same_broker(&self, other: &Self) -> bool {
        self.base == other.base
    }

    pub async fn health(&self) -> Result<Health, ClientError> {
        let h: Health = self.get_json("/healthz").await?;
        if h.status != "ok" {
            return Err(ClientError::Protocol(format!(
                "health status {:?}",
                h.status
            )));
        }
        Ok(h)
    }

    /// GET a broker path and decode its JSON; a broker error body becomes [`ClientError::Broker`].
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.request_json(Method::GET, path, None, &[]).await
    }

    /// POST `body` as JSON without authentication (enrollment and login).
    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| ClientError::Internal(format!("encode {path}: {e}")))?;
        self.request_json(Method::POST, path, Some(bytes), &[])
            .await
    }

    /// Sends exactly `body` (already-encoded JSON, so a device proof can cover these bytes)
    /// with extra `headers`, and decodes the JSON answer. Header values may be secrets (a
    /// bearer token): they never go into an error or a log line.
    pub async fn request_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<T, ClientError> {
        let mut req = with_headers(
            self.http
                .request(method.clone(), format!("{}{path}", self.base)),
            headers,
        )?;
        if let Some(body) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let resp = req.send().await.map_err(classify)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(classify)?;
        if status.is_success() {
            // Not the serde message: it can quote a value from the body, which may be a token.
            return serde_json::from_slice(&body).map_err(|e| {
                ClientError::Protocol(format!(
                    "{method} {path}: unexpected answer ({:?} error at line {} column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                ))
            });
        }
        Err(refusal(&method, path, status, &body))
    }

    /// GETs a server-sent-events `path` with `headers` (secrets, as for
    /// [`BrokerClient::request_json`]) and returns the open response for the caller to read.
    /// No overall timeout: the stream is meant to stay open.
    pub(crate) async fn open_stream(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<reqwest::Response, ClientError> {
        let req = with_headers(
            self.stream_http
                .get(format!("{}{path}", self.base))
                .header(reqwest::header::ACCEPT, "text/event-stream"),
            headers,
        )?;
        // The connection is up once the headers are in; bound that part like any request.
        let mut resp = tokio::time::timeout(REQUEST_TIMEOUT, req.send())
            .await
            .map_err(|_| ClientError::Unreachable("timed out".into()))?
            .map_err(classify)?;
        let status = resp.status();
        if status.is_success() {
            let sse = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            if !sse {
                return Err(ClientError::Protocol(format!(
                    "GET {path}: not an event stream"
                )));
            }
            return Ok(resp);
        }
        // A refusal is a small JSON error; read at most a bounded amount of it.
        let mut body = Vec::new();
        let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
            while let Some(chunk) = resp.chunk().await.map_err(classify)? {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_STREAM_ERROR_BYTES {
                    break;
                }
            }
            Ok::<(), ClientError>(())
        })
        .await;
        match read {
            Ok(Ok(())) => Err(refusal(&Method::GET, path, status, &body)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ClientError::Unreachable("timed out".into())),
        }
    }

    /// The WebAuthn origin this workstation claims in clientDataJSON: the broker URL's origin
    /// (`https://host[:port]`), which the broker pins as its relying-party origin.
    pub fn origin(&self) -> Result<url::Url, ClientError> {
        url::Url::parse(&self.base).map_err(|e| ClientError::Internal(format!("broker URL: {e}")))
    }
}

fn http_client(
    tls: rustls::ClientConfig,
    timeout: Option<Duration>,
) -> Result<reqwest::Client, ClientError> {
    let mut b = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(true)
        .connect_timeout(CONNECT_TIMEOUT)
        // The broker never redirects; following one could leak a token to another host.
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("paw/", env!("CARGO_PKG_VERSION")));
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    b.build()
        .map_err(|e| ClientError::Storage(format!("HTTP client setup: {e}")))
}

/// Adds `headers`, marked sensitive so that reqwest never shows them (they carry the bearer).
fn with_headers(
    mut req: reqwest::RequestBuilder,
    headers: &[(&str, &str)],
) -> Result<reqwest::RequestBuilder, ClientError> {
    for (name, value) in headers {
        let mut value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|_| ClientError::Internal(format!("header {name} is not ASCII")))?;
        value.set_sensitive(true);
        req = req.header(*name, value);
    }
    Ok(req)
}

/// A non-success answer: the broker's own `{code, message}` when it sent one.
fn refusal(method: &Method, path: &str, status: reqwest::StatusCode, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ApiError>(body) {
        Ok(e) => ClientError::Broker(e),
        Err(_) => ClientError::Protocol(format!("{method} {path}: HTTP {status}")),
    }
}

/// Tells a TLS trust failure (wrong CA, wrong name) from a network failure, so the user gets the
/// right advice: check the pinned CA, or check the network.
fn classify(e: reqwest::Error) -> ClientError {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = src {
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return ClientError::Untrusted(tls.to_string());
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return ClientError::Untrusted(tls.to_string());
            }
        }
        src = s.source();
    }
    if e.is_timeout() {
        return ClientError::Unreachable("timed out".into());
    }
    if e.is_connect() {
        return ClientError::Unreachable("connection failed".into());
    }
    if e.is_decode() || e.is_body() {
        return ClientError::Protocol(e.to_string());
    }
    ClientError::Unreachable(e.without_url().to_string())
}
