//! The wire-protocol side: take a client's startup packet, log in to the server as the
//! temporary role (SCRAM, MD5 or cleartext, answered by postgres-protocol), then splice.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::{backend, frontend};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use zeroize::Zeroize;

use crate::{validate_identifier, Error, TempRole};

/// Largest startup packet accepted from a client (libpq's are a few hundred bytes).
pub const MAX_STARTUP_PACKET: usize = 10_000;
/// Largest message accepted from the server before login completes (auth messages are tiny;
/// an ErrorResponse with detail and hint stays well under this).
const MAX_SERVER_AUTH_MESSAGE: usize = 64 * 1024;
/// SSLRequest + GSSENCRequest: a client may try each once before its startup packet.
const MAX_NEGOTIATIONS: usize = 2;
/// Time allowed for the client's startup sequence and, separately, for the server login.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on closing the two sides at the end, so a stuck peer cannot hold the task.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;

/// Startup parameters passed on to the server (compared case-insensitively, as GUC names are).
/// An allow-list, because any other key becomes a GUC set at session start: `options` can
/// carry `-c role=…` or `-c session_authorization=…`, `replication` opens a walsender, and
/// `user`/`database` are ours to set.
const PASSED_PARAMETERS: &[&str] = &[
    "application_name",
    "client_encoding",
    "datestyle",
    "timezone",
    "intervalstyle",
    "extra_float_digits",
    "search_path",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "default_transaction_isolation",
    "default_transaction_read_only",
];

/// Bytes spliced after login, each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub client_to_server: u64,
    pub server_to_client: u64,
}

/// Serves one accepted client connection: answers SSLRequest/GSSENCRequest with `N`, checks
/// the startup packet asks for `database`, logs in to `server` as `role` (the client's `user`
/// is ignored), then splices bytes both ways until either side closes or `stop` resolves.
///
/// Errors after the startup packet are also reported to the client as an ErrorResponse, so
/// the user sees why (a wrong database gets SQLSTATE 28000).
pub async fn serve_client<C>(
    mut client: C,
    server: SocketAddr,
    role: &TempRole,
    database: &str,
    stop: impl Future<Output = ()>,
) -> Result<Stats, Error>
where
    C: AsyncRead + AsyncWrite + Unpin + Send,
{
    // C8: both names go into the startup packet; refuse odd ones before any I/O.
    validate_identifier("database", database)?;
    validate_identifier("role name", role.name())?;
    let mut stop = std::pin::pin!(stop);

    let startup = tokio::select! {
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_startup(&mut client)) => match r {
            Ok(r) => r?,
            Err(_) => return Err(Error::Protocol("client sent no startup packet in time".into())),
        },
        () = &mut stop => return Ok(Stats::default()),
    };
    let Some(startup) = startup else {
        // CancelRequest: we do not map backend keys, so there is nothing to forward.
        let _ = client.shutdown().await;
        return Ok(Stats::default());
    };

    let requested = startup
        .parameters
        .iter()
        .find(|(k, _)| k == "database")
        .map(|(_, v)| v.clone());
    if requested.as_deref() != Some(database) {
        let requested = requested.unwrap_or_default();
        let message = format!(
            "paw: this session is granted for database \"{database}\" only, not \"{requested}\""
        );
        send_error(&mut client, "28000", &message).await;
        return Err(Error::WrongDatabase {
            expected: database.to_owned(),
            requested,
        });
    }
    if startup.minor_version > 0 || !startup.unknown_extensions.is_empty() {
        // We speak 3.0 to the server; tell a newer client so, as a server would.
        write_all(
            &mut client,
            &negotiate_protocol_version(&startup.unknown_extensions),
        )
        .await?;
    }

    let mut params: Vec<(&str, &str)> = vec![("user", role.name()), ("database", database)];
    for (key, value) in &startup.parameters {
        if PASSED_PARAMETERS.contains(&key.to_ascii_lowercase().as_str()) {
            params.push((key, value));
        } else if key != "user" && key != "database" {
            tracing::debug!(parameter = %key, "startup parameter dropped");
        }
    }

    let login = async {
        let mut upstream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(server))
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(Error::Unavailable(format!("connecting to {server}: {e}"))),
            Err(_) => {
                return Err(Error::Unavailable(format!(
                    "connecting to {server}: timed out"
                )))
            }
        };
        let _ = upstream.set_nodelay(true);
        login_upstream(&mut upstream, &mut client, role, &params).await?;
        Ok(upstream)
    };
    let upstream = tokio::select! {
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, login) => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                // An upstream ErrorResponse was forwarded already; otherwise say what failed.
                if !matches!(e, Error::UpstreamAuth(_)) {
                    send_error(&mut client, "08006", &format!("paw: {e}")).await;
                }
                return Err(e);
            }
            Err(_) => {
                let e = Error::Unavailable("logging in to the database server timed out".into());
                send_error(&mut client, "08006", &format!("paw: {e}")).await;
                return Err(e);
            }
        },
        () = &mut stop => return Ok(Stats::default()),
    };
    tracing::debug!(role = %role.name(), %database, "logged in; splicing");
    splice(client, upstream, stop).await
}

struct Startup {
    minor_version: i32,
    parameters: Vec<(String, String)>,
    unknown_extensions: Vec<String>,
}

/// Reads negotiation requests and the startup packet. `None` means a CancelRequest.
async fn read_startup<C>(client: &mut C) -> Result<Option<Startup>, Error>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let mut negotiations = 0;
    loop {
        let len = client
            .read_i32()
            .await
            .map_err(|e| Error::Protocol(format!("reading the startup packet length: {e}")))?;
        let len = usize::try_from(len).unwrap_or(0);
        if !(8..=MAX_STARTUP_PACKET).contains(&len) {
            return Err(Error::Protocol(format!(
                "startup packet length {len} outside 8..={MAX_STARTUP_PACKET}"
            )));
        }
        let mut body = vec![0u8; len - 4];
        client
            .read_exact(&mut body)
            .await
            .map_err(|e| Error::Protocol(format!("reading the startup packet: {e}")))?;
        let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        match code {
            SSL_REQUEST | GSSENC_REQUEST => {
                negotiations += 1;
                if negotiations > MAX_NEGOTIATIONS || len != 8 {
                    return Err(Error::Protocol(
                        "repeated or malformed SSL/GSS request".into(),
                    ));
                }
                // Plain only: the client side is loopback inside the workstation.
                write_all(client, b"N").await?;
            }
            CANCEL_REQUEST => return Ok(None),
            _ if code >> 16 == 3 => return parse_startup(code & 0xffff, &body[4..]).map(Some),
            _ => {
                return Err(Error::Protocol(format!(
                    "unsupported protocol version {}.{}",
                    code >> 16,
                    code & 0xffff
                )))
            }
        }
    }
}

/// Key/value C strings, ended by an empty key.
fn parse_startup(minor_version: i32, mut rest: &[u8]) -> Result<Startup, Error> {
    fn cstr<'a>(rest: &mut &'a [u8]) -> Result<&'a str, Error> {
        let end = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| Error::Protocol("unterminated string in startup packet".into()))?;
        let s = std::str::from_utf8(&rest[..end])
            .map_err(|_| Error::Protocol("startup packet is not UTF-8".into()))?;
        *rest = &rest[end + 1..];
        Ok(s)
    }
    let mut startup = Startup {
        minor_version,
        parameters: Vec::new(),
        unknown_extensions: Vec::new(),
    };
    loop {
        let key = cstr(&mut rest)?;
        if key.is_empty() {
            break;
        }
        let value = cstr(&mut rest)?;
        if key.starts_with("_pq_.") {
            startup.unknown_extensions.push(key.to_owned());
        } else if startup.parameters.iter().any(|(k, _)| k == key) {
            return Err(Error::Protocol(format!("parameter {key:?} given twice")));
        } else {
            startup.parameters.push((key.to_owned(), value.to_owned()));
        }
    }
    if !rest.is_empty() {
        return Err(Error::Protocol("bytes after the startup parameters".into()));
    }
    Ok(startup)
}

/// Sends the startup packet and answers the server's authentication requests with the
/// role's password, forwarding AuthenticationOk (or the server's ErrorResponse) to the client.
async fn login_upstream<C>(
    upstream: &mut TcpStream,
    client: &mut C,
    role: &TempRole,
    params: &[(&str, &str)],
) -> Result<(), Error>
where
    C: AsyncWrite + Unpin,
{
    let mut buf = BytesMut::new();
    frontend::startup_message(params.iter().copied(), &mut buf)
        .map_err(|e| Error::Protocol(format!("building the startup packet: {e}")))?;
    write_upstream(upstream, &mut buf).await?;

    let mut scram: Option<ScramSha256> = None;
    loop {
        let raw = read_server_message(upstream).await?;
        if raw[0] == b'v' {
            return Err(Error::UpstreamProtocol(
                "server asked to negotiate the protocol version of a 3.0 startup".into(),
            ));
        }
        let message = backend::Message::parse(&mut BytesMut::from(&raw[..]))
            .map_err(|e| Error::UpstreamProtocol(e.to_string()))?
            .ok_or_else(|| Error::UpstreamProtocol("truncated message".into()))?;
        match message {
            backend::Message::AuthenticationOk => {
                // The rest (ParameterStatus, BackendKeyData, ReadyForQuery) is spliced as is.
                write_all(client, &raw).await?;
                return Ok(());
            }
            backend::Message::AuthenticationCleartextPassword => {
                password_message(role.password.as_bytes(), &mut buf)?;
                write_upstream(upstream, &mut buf).await?;
            }
            backend::Message::AuthenticationMd5Password(body) => {
                let hash = zeroize::Zeroizing::new(postgres_protocol::authentication::md5_hash(
                    role.name().as_bytes(),
                    role.password.as_bytes(),
                    body.salt(),
                ));
                password_message(hash.as_bytes(), &mut buf)?;
                write_upstream(upstream, &mut buf).await?;
            }
            backend::Message::AuthenticationSasl(body) => {
                let mut mechanisms = body.mechanisms();
                let mut offered = false;
                while let Some(m) = mechanisms
                    .next()
                    .map_err(|e| Error::UpstreamProtocol(e.to_string()))?
                {
                    offered |= m == SCRAM_SHA_256;
                }
                if !offered {
                    return Err(Error::UpstreamProtocol(
                        "server offers no SASL mechanism we support (SCRAM-SHA-256)".into(),
                    ));
                }
                // Plain TCP: there is no TLS channel to bind to.
                let s = ScramSha256::new(role.password.as_bytes(), ChannelBinding::unsupported());
                frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut buf)
                    .map_err(|e| Error::Protocol(e.to_string()))?;
                write_upstream(upstream, &mut buf).await?;
                scram = Some(s);
            }
            backend::Message::AuthenticationSaslContinue(body) => {
                let s = scram.as_mut().ok_or_else(|| {
                    Error::UpstreamProtocol("SASL continue before SASL start".into())
                })?;
                s.update(body.data())
                    .map_err(|e| Error::UpstreamAuth(format!("SCRAM: {e}")))?;
                frontend::sasl_response(s.message(), &mut buf)
                    .map_err(|e| Error::Protocol(e.to_string()))?;
                write_upstream(upstream, &mut buf).await?;
            }
            backend::Message::AuthenticationSaslFinal(body) => {
                // Verifies the server's signature: it proves the server knows the verifier.
                scram
                    .as_mut()
                    .ok_or_else(|| Error::UpstreamProtocol("SASL final before SASL start".into()))?
                    .finish(body.data())
                    .map_err(|e| Error::UpstreamAuth(format!("SCRAM: {e}")))?;
            }
            backend::Message::ErrorResponse(body) => {
                write_all(client, &raw).await?;
                return Err(Error::UpstreamAuth(describe_error(&body)));
            }
            backend::Message::NoticeResponse(_) => write_all(client, &raw).await?,
            _ => {
                return Err(Error::UpstreamProtocol(format!(
                    "message {:?} during authentication (unsupported method?)",
                    char::from(raw[0])
                )))
            }
        }
    }
}

/// A PasswordMessage; the buffer is wiped after sending by [`write_upstream`].
fn password_message(secret: &[u8], buf: &mut BytesMut) -> Result<(), Error> {
    frontend::password_message(secret, buf).map_err(|e| Error::Protocol(e.to_string()))
}

/// Writes and then zeroizes the buffer: it may hold a password or a SCRAM proof.
async fn write_upstream(upstream: &mut TcpStream, buf: &mut BytesMut) -> Result<(), Error> {
    let result = upstream.write_all(buf).await;
    buf.as_mut().zeroize();
    buf.clear();
    result.map_err(|e| Error::Unavailable(format!("writing to the database server: {e}")))
}

async fn write_all<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> Result<(), Error> {
    w.write_all(bytes)
        .await
        .map_err(|e| Error::Protocol(format!("writing to the client: {e}")))?;
    w.flush()
        .await
        .map_err(|e| Error::Protocol(format!("writing to the client: {e}")))
}

/// One whole backend message (tag, length, body), bounded in size.
async fn read_server_message(upstream: &mut TcpStream) -> Result<Vec<u8>, Error> {
    let mut header = [0u8; 5];
    upstream
        .read_exact(&mut header)
        .await
        .map_err(|e| Error::Unavailable(format!("reading from the database server: {e}")))?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if !(4..=MAX_SERVER_AUTH_MESSAGE).contains(&len) {
        return Err(Error::UpstreamProtocol(format!(
            "message length {len} during authentication"
        )));
    }
    let mut raw = vec![0u8; 1 + len];
    raw[..5].copy_from_slice(&header);
    upstream
        .read_exact(&mut raw[5..])
        .await
        .map_err(|e| Error::Unavailable(format!("reading from the database server: {e}")))?;
    Ok(raw)
}

fn describe_error(body: &backend::ErrorResponseBody) -> String {
    let mut code = String::new();
    let mut message = String::new();
    let mut fields = body.fields();
    while let Ok(Some(field)) = fields.next() {
        match field.type_() {
            b'C' => code = String::from_utf8_lossy(field.value_bytes()).into_owned(),
            b'M' => message = String::from_utf8_lossy(field.value_bytes()).into_owned(),
            _ => {}
        }
    }
    format!("{message} ({code})")
}

/// A FATAL ErrorResponse to the client, best effort (it may have gone already).
async fn send_error<C: AsyncWrite + Unpin>(client: &mut C, sqlstate: &str, message: &str) {
    let mut body = BytesMut::new();
    for (field, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', sqlstate),
        (b'M', message),
    ] {
        body.put_u8(field);
        // Our own texts carry no NUL; strip defensively so the framing stays intact.
        body.put_slice(value.replace('\0', "").as_bytes());
        body.put_u8(0);
    }
    body.put_u8(0);
    let mut msg = BytesMut::with_capacity(body.len() + 5);
    msg.put_u8(b'E');
    msg.put_u32(u32::try_from(body.len() + 4).unwrap_or(u32::MAX));
    msg.put_slice(&body);
    let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, async {
        let _ = client.write_all(&msg).await;
        let _ = client.shutdown().await;
    })
    .await;
}

/// NegotiateProtocolVersion: newest minor we support (0) and the `_pq_` options we ignored.
fn negotiate_protocol_version(unknown: &[String]) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i32(0);
    body.put_i32(i32::try_from(unknown.len()).unwrap_or(0));
    for option in unknown {
        body.put_slice(option.as_bytes());
        body.put_u8(0);
    }
    let mut msg = BytesMut::with_capacity(body.len() + 5);
    msg.put_u8(b'v');
    msg.put_u32(u32::try_from(body.len() + 4).unwrap_or(u32::MAX));
    msg.put_slice(&body);
    msg.to_vec()
}

/// Copies both ways concurrently (one direction blocking must not stall the other, or a big
/// COPY in one direction with output in the other would deadlock). The first direction to
/// end ends the session: half-open PostgreSQL connections are useless, and a terminated
/// backend must close the client's connection promptly.
async fn splice<C>(
    client: C,
    upstream: TcpStream,
    stop: Pin<&mut impl Future<Output = ()>>,
) -> Result<Stats, Error>
where
    C: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (client_read, mut client_write) = tokio::io::split(client);
    let (upstream_read, mut upstream_write) = upstream.into_split();
    let mut client_read = Counted::new(client_read);
    let mut upstream_read = Counted::new(upstream_read);
    let outcome = {
        let up = tokio::io::copy(&mut client_read, &mut upstream_write);
        let down = tokio::io::copy(&mut upstream_read, &mut client_write);
        tokio::select! {
            r = up => r.map(|_| ()).map_err(|e| ("client", e)),
            r = down => r.map(|_| ()).map_err(|e| ("server", e)),
            () = stop => Ok(()),
        }
    };
    let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, upstream_write.shutdown()).await;
    let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, client_write.shutdown()).await;
    let stats = Stats {
        client_to_server: client_read.count,
        server_to_client: upstream_read.count,
    };
    match outcome {
        Ok(()) => Ok(stats),
        // A reset by either peer is how many sessions end; report it but keep the stats.
        Err((side, e)) if is_disconnect(&e) => {
            tracing::debug!(side, error = %e, "connection ended");
            Ok(stats)
        }
        Err((side, e)) => Err(Error::Unavailable(format!("splice ({side} side): {e}"))),
    }
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// Counts bytes read, so the totals survive the copy future being cancelled by `stop`.
struct Counted<R> {
    inner: R,
    count: u64,
}

impl<R> Counted<R> {
    fn new(inner: R) -> Self {
        Self { inner, count: 0 }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        self.count += read as u64;
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_parameters_parse_and_reject_garbage() {
        let s = parse_startup(0, b"user\0bob\0database\0db\0\0");
        let s = s.ok().map(|s| s.parameters);
        assert_eq!(
            s,
            Some(vec![
                ("user".into(), "bob".into()),
                ("database".into(), "db".into())
            ])
        );
        assert!(parse_startup(0, b"user\0bob").is_err());
        assert!(parse_startup(0, b"user\0bob\0user\0eve\0\0").is_err());
        assert!(parse_startup(0, b"user\0\xff\0\0").is_err());
        assert!(parse_startup(0, b"user\0bob\0\0extra").is_err());
    }
}
