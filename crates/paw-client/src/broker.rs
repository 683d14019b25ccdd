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

/// A client bound to one broker URL and pinned to one CA. Cheap to clone.
#[derive(Clone)]
pub struct BrokerClient {
    base: String,
    http: reqwest::Client,
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
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // The broker never redirects; following one could leak a token to another host.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("paw/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Storage(format!("HTTP client setup: {e}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
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
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        for (name, value) in headers {
            let mut value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| ClientError::Internal(format!("header {name} is not ASCII")))?;
            value.set_sensitive(true);
            req = req.header(*name, value);
        }
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
        match serde_json::from_slice::<ApiError>(&body) {
            Ok(e) => Err(ClientError::Broker(e)),
            Err(_) => Err(ClientError::Protocol(format!(
                "{method} {path}: HTTP {status}"
            ))),
        }
    }

    /// The WebAuthn origin this workstation claims in clientDataJSON: the broker URL's origin
    /// (`https://host[:port]`), which the broker pins as its relying-party origin.
    pub fn origin(&self) -> Result<url::Url, ClientError> {
        url::Url::parse(&self.base).map_err(|e| ClientError::Internal(format!("broker URL: {e}")))
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
