//! Typed HTTPS client for the broker's API.
//!
//! It may know several brokers of one deployment (same database, CA and witness key). It talks
//! to one at a time and moves to the next when that one cannot be reached, so that a broker
//! going away costs the user a retry inside one call, not their sign-in. A request is sent again
//! to another broker only when the first cannot have acted on it: the connection never opened,
//! or the broker answered 503 (it has no database, so it changed nothing). A request whose
//! connection broke or timed out after it was sent goes to the next broker only when it is a
//! read; a write fails with `broker_unreachable` (it may have been carried out), and the next
//! call goes to the next broker.

use std::sync::atomic::{AtomicUsize, Ordering};
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

/// A client bound to the broker URLs of one deployment, pinned to one CA. Cheap to clone;
/// clones share which broker is in use.
#[derive(Clone)]
pub struct BrokerClient {
    /// The configured URLs, first the primary; never empty.
    bases: Arc<[String]>,
    /// Index into `bases` of the broker in use; always in range.
    active: Arc<AtomicUsize>,
    http: reqwest::Client,
    /// Same trust and rules, without the overall request timeout, which would cut a long-lived
    /// event stream after [`REQUEST_TIMEOUT`]. The reader bounds the silence instead.
    stream_http: reqwest::Client,
}

impl BrokerClient {
    /// `ca_der` is the only trust anchor: the system's roots are not consulted. `bases` are the
    /// brokers to use, in order of preference.
    pub fn new(bases: &[String], ca_der: &[u8]) -> Result<Self, ClientError> {
        if bases.is_empty() {
            return Err(ClientError::NotConfigured);
        }
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
            bases: bases
                .iter()
                .map(|b| b.trim_end_matches('/').to_owned())
                .collect(),
            active: Arc::new(AtomicUsize::new(0)),
            http,
            stream_http,
        })
    }

    /// Whether both clients were made for the same brokers (a settings change makes another).
    pub(crate) fn same_broker(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.bases, &other.bases)
    }

    /// The URL of the broker in use.
    pub fn active_url(&self) -> &str {
        &self.bases[self.active.load(Ordering::Acquire)]
    }

    /// Whether the broker in use is not the first configured one.
    pub fn failed_over(&self) -> bool {
        self.active.load(Ordering::Acquire) != 0
    }

    /// Moves off broker `from` to the next one, unless another call already moved: two calls
    /// that fail together on the same broker skip it once, not two brokers.
    fn fail_over(&self, from: usize, why: &str) {
        let to = (from + 1) % self.bases.len();
        if from != to
            && self
                .active
                .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            tracing::warn!(
                from = %self.bases[from],
                to = %self.bases[to],
                why,
                "broker unreachable; using the next one"
            );
        }
    }

    /// Sends the request `build` makes for a broker URL, moving to the next broker when the
    /// answer says the one in use did not act on it (see the module doc). At most one attempt
    /// per configured broker; the last failure is returned.
    async fn send(
        &self,
        method: &Method,
        path: &str,
        build: impl Fn(&str) -> Result<reqwest::RequestBuilder, ClientError>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut last = None;
        for _ in 0..self.bases.len() {
            let at = self.active.load(Ordering::Acquire);
            let req = build(&self.bases[at])?.send();
            let sent = match timeout {
                Some(t) => match tokio::time::timeout(t, req).await {
                    Ok(r) => r.map_err(Unsent::Http),
                    Err(_) => Err(Unsent::TimedOut),
                },
                None => req.await.map_err(Unsent::Http),
            };
            // Whether to leave this broker, and whether the call may go to the next one.
            let (leave, resend) = match &sent {
                Ok(r) => {
                    let unavailable = r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE;
                    (unavailable, unavailable)
                }
                Err(Unsent::Http(e)) if e.is_connect() => (true, true),
                // The connection broke or went quiet with the request perhaps delivered: the
                // broker is likely gone, but it may have acted, so only a read goes again.
                Err(_) => (true, method == Method::GET),
            };
            if leave && self.bases.len() > 1 {
                let why = match &sent {
                    Ok(r) => format!("{method} {path} answered {}", r.status()),
                    Err(Unsent::Http(e)) => format!("{method} {path}: {}", classify_ref(e)),
                    Err(Unsent::TimedOut) => format!("{method} {path}: no answer in time"),
                };
                self.fail_over(at, &why);
            }
            if !(leave && resend) || self.bases.len() == 1 {
                return sent.map_err(Unsent::into_error);
            }
            last = Some(sent);
        }
        match last {
            Some(sent) => sent.map_err(Unsent::into_error),
            None => Err(ClientError::NotConfigured),
        }
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
        let resp = self
            .send(
                &method,
                path,
                |base| {
                    let mut req = with_headers(
                        self.http.request(method.clone(), format!("{base}{path}")),
                        headers,
                    )?;
                    if let Some(body) = &body {
                        req = req
                            .header(reqwest::header::CONTENT_TYPE, "application/json")
                            .body(body.clone());
                    }
                    Ok(req)
                },
                None,
            )
            .await?;
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
        // The connection is up once the headers are in; bound that part like any request.
        let mut resp = self
            .send(
                &Method::GET,
                path,
                |base| {
                    with_headers(
                        self.stream_http
                            .get(format!("{base}{path}"))
                            .header(reqwest::header::ACCEPT, "text/event-stream"),
                        headers,
                    )
                },
                Some(REQUEST_TIMEOUT),
            )
            .await?;
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

    /// The WebAuthn origin this workstation claims in clientDataJSON: the origin of the broker
    /// URL in use (`https://host[:port]`), which the brokers list as theirs
    /// (`webauthn.origin` or `webauthn.replica_origins`).
    pub fn origin(&self) -> Result<url::Url, ClientError> {
        url::Url::parse(self.active_url())
            .map_err(|e| ClientError::Internal(format!("broker URL: {e}")))
    }
}

/// A short, URL-free description of a transport failure, for the failover log line.
fn classify_ref(e: &reqwest::Error) -> &'static str {
    if e.is_connect() {
        "connection failed"
    } else if e.is_timeout() {
        "timed out"
    } else {
        "transport error"
    }
}

/// Why a request got no answer: reqwest's error, or our own bound on the wait.
enum Unsent {
    Http(reqwest::Error),
    TimedOut,
}

impl Unsent {
    fn into_error(self) -> ClientError {
        match self {
            Self::Http(e) => classify(e),
            Self::TimedOut => ClientError::Unreachable("timed out".into()),
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::fake_broker::{FakeBroker, Reply};
    use serde_json::{json, Value};

    /// A loopback port nothing listens on.
    fn dead_url() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("https://localhost:{port}")
    }

    fn client(fb: &FakeBroker, urls: &[String]) -> BrokerClient {
        let der = crate::settings::load_ca(&fb.ca_path).unwrap().der;
        BrokerClient::new(urls, &der).unwrap()
    }

    #[tokio::test]
    async fn an_unreachable_broker_is_left_for_the_next_and_the_move_sticks() {
        let live = FakeBroker::start(|_| None);
        let c = client(&live, &[dead_url(), live.url.clone()]);
        assert!(!c.failed_over());
        c.health().await.unwrap();
        assert_eq!(c.active_url(), live.url);
        assert!(c.failed_over());
        // Clones share the broker in use; the next call goes straight to it.
        let h = c.clone().health().await.unwrap();
        assert_eq!(h.status, "ok");
        assert_eq!(live.requests("/healthz").len(), 2);
        assert_eq!(c.origin().unwrap().as_str(), format!("{}/", live.url));
    }

    #[tokio::test]
    async fn a_broker_without_its_database_hands_the_call_to_the_next() {
        let down = FakeBroker::start(|r| {
            (r.path == "/v1/x").then(|| {
                Reply::Json(
                    503,
                    json!({"code": "storage_unavailable", "message": "no database"}),
                )
            })
        });
        let up = down.start_beside(|r| (r.path == "/v1/x").then(|| Reply::Json(200, json!(1))));
        let c = client(&down, &[down.url.clone(), up.url.clone()]);
        let v: Value = c.post_json("/v1/x", &json!({})).await.unwrap();
        assert_eq!(v, json!(1));
        assert_eq!(down.requests("/v1/x").len(), 1);
        assert_eq!(up.requests("/v1/x").len(), 1);
        assert_eq!(c.active_url(), up.url);
    }

    /// A write that reached a broker and got no answer may have been carried out: it is never
    /// sent to a second broker (the user sees the timeout and decides). A read is.
    #[tokio::test]
    async fn a_write_that_timed_out_is_not_sent_again_elsewhere_but_a_read_is() {
        let slow = FakeBroker::start(|r| {
            r.path.starts_with("/v1/slow").then(|| {
                std::thread::sleep(REQUEST_TIMEOUT + Duration::from_millis(500));
                Reply::Json(200, json!(0))
            })
        });
        let other = slow.start_beside(|r| {
            r.path
                .starts_with("/v1/slow")
                .then(|| Reply::Json(200, json!(2)))
        });
        let c = client(&slow, &[slow.url.clone(), other.url.clone()]);
        let empty = json!({});
        let (write, read) =
            tokio::join!(c.post_json::<_, Value>("/v1/slow-write", &empty), async {
                // After the write is on its way, so that both start on the slow broker.
                tokio::time::sleep(Duration::from_millis(200)).await;
                c.get_json::<Value>("/v1/slow-read").await
            });
        let e = write.unwrap_err();
        assert_eq!(e.code(), paw_proto::ErrorCode::BrokerUnreachable, "{e}");
        assert!(other.requests("/v1/slow-write").is_empty());
        // The next call goes to the other broker.
        assert_eq!(c.active_url(), other.url);
        assert_eq!(read.unwrap(), json!(2));
        assert_eq!(slow.requests("/v1/slow-read").len(), 1);
        assert_eq!(other.requests("/v1/slow-read").len(), 1);
    }

    #[tokio::test]
    async fn when_every_broker_is_down_the_call_says_unreachable() {
        let fb = FakeBroker::start(|_| None);
        let c = client(&fb, &[dead_url(), dead_url()]);
        let e = c.health().await.unwrap_err();
        assert_eq!(e.code(), paw_proto::ErrorCode::BrokerUnreachable, "{e}");
    }
}
