//! A scripted stand-in for the broker in unit tests: HTTPS (TLS 1.3, a certificate for
//! `localhost` from a throwaway CA), HTTP/1.1, one request per connection, answers chosen by
//! the test. It checks nothing about authentication itself; tests read what it received.
//! Cross-crate behaviour against the real broker lives in the `tests` crate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};

/// A request as received.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Req {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What to answer.
pub(crate) enum Reply {
    Json(u16, Value),
    /// An event stream: each message is written as it arrives; the stream ends when the
    /// sender is dropped.
    Stream(Receiver<Vec<u8>>),
}

type Handler = dyn Fn(&Req) -> Option<Reply> + Send + Sync;

pub(crate) struct FakeBroker {
    pub(crate) url: String,
    pub(crate) ca_path: PathBuf,
    pub(crate) seen: Arc<Mutex<Vec<Req>>>,
    /// Event streams currently open (a closed client is noticed within ~100 ms).
    pub(crate) open_streams: Arc<AtomicUsize>,
    /// Its CA, so that another fake broker of the same "deployment" can share it.
    ca: Arc<rcgen::CertifiedKey>,
    _dir: Arc<tempfile::TempDir>,
}

impl FakeBroker {
    /// Serves `handler`'s answers; `/healthz` is answered with the real time unless the
    /// handler answers it; anything else unanswered is a 404.
    pub(crate) fn start(handler: impl Fn(&Req) -> Option<Reply> + Send + Sync + 'static) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (ca_path, ca) = crate::settings::tests::write_ca(dir.path());
        Self::start_signed(handler, ca_path, Arc::new(ca), Arc::new(dir))
    }

    /// Another broker of the same deployment: its certificate from the same CA.
    pub(crate) fn start_beside(
        &self,
        handler: impl Fn(&Req) -> Option<Reply> + Send + Sync + 'static,
    ) -> Self {
        Self::start_signed(
            handler,
            self.ca_path.clone(),
            self.ca.clone(),
            self._dir.clone(),
        )
    }

    fn start_signed(
        handler: impl Fn(&Req) -> Option<Reply> + Send + Sync + 'static,
        ca_path: PathBuf,
        ca: Arc<rcgen::CertifiedKey>,
        dir: Arc<tempfile::TempDir>,
    ) -> Self {
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .signed_by(&leaf_key, &ca.cert, &ca.key_pair)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![leaf.der().clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
                )
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let open_streams = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let seen = seen.clone();
            let open = open_streams.clone();
            std::thread::spawn(move || {
                for tcp in listener.incoming() {
                    let Ok(tcp) = tcp else { return };
                    let (tls, seen, open, handler) =
                        (tls.clone(), seen.clone(), open.clone(), handler.clone());
                    std::thread::spawn(move || serve(tcp, tls, &seen, &open, handler.as_ref()));
                }
            });
        }
        Self {
            url: format!("https://localhost:{port}"),
            ca_path,
            seen,
            open_streams,
            ca,
            _dir: dir,
        }
    }

    /// Requests received for `path` so far.
    pub(crate) fn requests(&self, path: &str) -> Vec<Req> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

fn serve(
    tcp: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    seen: &Mutex<Vec<Req>>,
    open: &AtomicUsize,
    handler: &Handler,
) {
    let Ok(conn) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut r = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    let Some(req) = read_request(&mut r) else {
        return;
    };
    seen.lock().unwrap().push(req.clone());
    let reply = handler(&req).or_else(|| match req.path.as_str() {
        "/healthz" => Some(Reply::Json(
            200,
            json!({"status": "ok", "version": "fake", "database": "sqlite",
                   "time_ms": crate::clock::local_wall_ms(), "instance_id": "fake"}),
        )),
        "/v1/audit/witness" => Some(witness_key_reply()),
        "/v1/audit/checkpoint" => Some(cosign(&req)),
        _ => None,
    });
    let w = r.get_mut();
    match reply {
        None => write_json(
            w,
            404,
            &json!({"code": "not_found", "message": "no such path"}),
        ),
        Some(Reply::Json(status, body)) => write_json(w, status, &body),
        Some(Reply::Stream(rx)) => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                        cache-control: no-cache\r\nconnection: close\r\n\r\n";
            if w.write_all(head.as_bytes())
                .and_then(|()| w.flush())
                .is_err()
            {
                return;
            }
            open.fetch_add(1, Ordering::SeqCst);
            loop {
                // A comment every 100 ms of quiet, so a client that went away is noticed.
                let out = match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(bytes) => bytes,
                    Err(RecvTimeoutError::Timeout) => b":\n".to_vec(),
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                if w.write_all(&out).and_then(|()| w.flush()).is_err() {
                    break;
                }
            }
            open.fetch_sub(1, Ordering::SeqCst);
            w.conn.send_close_notify();
            let _ = w.flush();
        }
    }
}

/// The fake broker's witness key: fixed, so tests can check cosignatures against it.
pub(crate) fn witness_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[0x57; 32])
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn witness_key_reply() -> Reply {
    let public = witness_key().verifying_key();
    Reply::Json(
        200,
        json!({"public_key": b64(public.as_bytes()),
               "fingerprint": crate::settings::fingerprint(public.as_bytes())}),
    )
}

/// Cosigns whatever checkpoint it is sent (the real witness's judgement is tested against the
/// real broker), so that privileged use cases can run against the fake.
fn cosign(req: &Req) -> Reply {
    use base64::Engine;
    let body: paw_proto::http::CheckpointUploadRequest = req.json();
    let c = body.checkpoint;
    let bytes = |s: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .unwrap()
    };
    let hash: Vec<u8> = (0..c.hash.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&c.hash[i..i + 2], 16).unwrap())
        .collect();
    let checkpoint = paw_audit::Checkpoint {
        origin: c.origin,
        head: paw_audit::Head {
            seq: c.seq,
            hash: hash.try_into().unwrap(),
        },
        time_ms: c.time_ms,
        key: bytes(&c.key).try_into().unwrap(),
        signature: bytes(&c.signature).try_into().unwrap(),
    };
    let now = crate::clock::local_wall_ms();
    let co = paw_audit::Cosignature::sign(&witness_key(), &checkpoint, now);
    Reply::Json(
        200,
        json!({"cosignature": b64(&co.to_bytes()),
               "witness_key": b64(witness_key().verifying_key().as_bytes()),
               "cosigned_at_ms": now, "previous_seq": null}),
    )
}

fn read_request(r: &mut impl BufRead) -> Option<Req> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.trim().to_owned(), v.trim().to_owned()));
    }
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Req {
        method,
        path,
        headers,
        body,
    })
}

fn write_json(w: &mut impl Write, status: u16, body: &Value) {
    let body = serde_json::to_vec(body).unwrap();
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    let _ = w
        .write_all(head.as_bytes())
        .and_then(|()| w.write_all(&body))
        .and_then(|()| w.flush());
}
