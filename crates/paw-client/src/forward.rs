//! The local forward for a database session: a port on loopback that `psql` or a GUI client
//! connects to without a password; every connection becomes a `direct-tcpip` channel on the
//! SSH connection to the broker's front door, which logs it in to the granted database.
//!
//! Rules: the port listens on loopback only, never on 0.0.0.0 or another interface (case C9);
//! the broker's host key is pinned and the one-time credential is used once and dropped
//! (as for terminals, [`crate::terminal`]); the broker decides where the bytes go, so the
//! channel names no real host. When the broker ends the session its reason is kept, every
//! local connection is cut and the port is closed.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use russh::client::Handle;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::error::ClientError;
use crate::terminal::{self, Credential, Pinned, TermEvent};

/// What the `direct-tcpip` request names. The broker ignores both and connects to the
/// target its config holds; they only make the request well-formed.
const CHANNEL_HOST: &str = "paw-target";
const CHANNEL_PORT: u32 = 5432;
/// How long a stop waits for the broker to acknowledge the disconnect.
const GOODBYE: Duration = Duration::from_millis(500);

/// Why a forward ended: the broker's reason code (`grant_ended`, `revoked`, `killed`, …, or
/// `closed` when it was stopped here or the connection dropped) and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub reason: String,
    pub message: String,
}

/// A running forward. Dropping it stops it.
#[derive(Debug)]
pub struct Forward {
    local: SocketAddr,
    stop: watch::Sender<bool>,
    ended: watch::Receiver<Option<Ended>>,
}

impl Forward {
    /// Where clients connect: always `127.0.0.1:PORT`.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Closes the port, cuts every connection and ends the session at the broker.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Waits until the session has ended, for whatever reason, and says why.
    pub async fn ended(&self) -> Ended {
        let mut rx = self.ended.clone();
        let end = rx.wait_for(Option::is_some).await.map(|e| e.clone());
        // Err: the forward's task is gone without saying why; it cannot be running.
        end.ok().flatten().unwrap_or_else(gone)
    }

    /// The end, if the session has ended.
    pub fn ended_now(&self) -> Option<Ended> {
        self.ended.borrow().clone()
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

fn gone() -> Ended {
    Ended {
        reason: "closed".into(),
        message: "the session closed".into(),
    }
}

/// Listens on `127.0.0.1:local_port` (0 picks a free port), logs in to the broker with the
/// session's one-time credential and forwards every accepted connection until the session
/// ends or [`Forward::stop`].
pub async fn start(cred: Credential, local_port: u16) -> Result<Forward, ClientError> {
    // Bound before the login: a port in use fails without spending the one-time credential.
    let listener = bind_loopback(SocketAddr::from((Ipv4Addr::LOCALHOST, local_port))).await?;
    let local = listener
        .local_addr()
        .map_err(|e| ClientError::Session(format!("the local port: {e}")))?;
    let (handle, disconnect) = terminal::login(&cred).await?;
    drop(cred);
    let (stop, stop_rx) = watch::channel(false);
    let (ended_tx, ended) = watch::channel(None);
    tokio::spawn(async move {
        let end = run(listener, handle, disconnect, stop_rx).await;
        ended_tx.send_replace(Some(end));
    });
    Ok(Forward { local, stop, ended })
}

/// Binds a listener on a loopback address and refuses any other (C9).
pub(crate) async fn bind_loopback(addr: SocketAddr) -> Result<TcpListener, ClientError> {
    let refuse = || ClientError::InvalidInput {
        field: "local_addr",
        reason: "local forwards listen on loopback (127.0.0.1) only".into(),
    };
    if !addr.ip().is_loopback() {
        return Err(refuse());
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| ClientError::Session(format!("cannot listen on {addr}: {e}")))?;
    // Belt and braces: what the OS bound is what we meant.
    match listener.local_addr() {
        Ok(a) if a.ip().is_loopback() => Ok(listener),
        _ => Err(refuse()),
    }
}

async fn run(
    listener: TcpListener,
    handle: Handle<Pinned>,
    mut disconnect: oneshot::Receiver<String>,
    mut stop: watch::Receiver<bool>,
) -> Ended {
    let handle = Arc::new(handle);
    let mut conns = JoinSet::new();
    // `Some(message)`: the broker (or the network) ended it; `None`: stopped here.
    let said: Option<Option<String>> = loop {
        tokio::select! {
            // The connection is over: the broker said why, or it just dropped.
            r = &mut disconnect => break Some(r.ok()),
            () = stopped(&mut stop) => break None,
            a = listener.accept() => match a {
                Ok((tcp, peer)) => {
                    conns.spawn(pipe(handle.clone(), tcp, peer));
                }
                Err(e) => {
                    // Out of file descriptors and the like: retry, do not spin.
                    tracing::warn!(error = %e, "local forward accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    };
    // No new connections, and the open ones are cut: the session is over for all of them.
    drop(listener);
    conns.abort_all();
    while conns.join_next().await.is_some() {}
    match said {
        Some(message) => {
            let _ = handle
                .disconnect(russh::Disconnect::ByApplication, "closed", "")
                .await;
            to_ended(message.as_deref())
        }
        None => {
            let _ = handle
                .disconnect(russh::Disconnect::ByApplication, "closed", "")
                .await;
            // The broker may still say it ended the session first (a race with its end).
            let said = tokio::time::timeout(GOODBYE, disconnect)
                .await
                .ok()
                .and_then(|r| r.ok());
            match said {
                Some(m) if m.starts_with("paw: session ended (") => to_ended(Some(&m)),
                _ => Ended {
                    reason: "closed".into(),
                    message: "you closed it".into(),
                },
            }
        }
    }
}

/// Resolves once a stop is asked for (or the [`Forward`] is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The borrow `wait_for` returns is not `Send`: dropped here, before any other await.
    let _ = stop.wait_for(|s| *s).await;
}

fn to_ended(said: Option<&str>) -> Ended {
    match terminal::ended(said, None, false) {
        TermEvent::Ended { reason, message } => Ended { reason, message },
        TermEvent::Output(_) => gone(),
    }
}

/// One local connection: a channel to the broker, bytes copied both ways until either side
/// closes (or the task is aborted when the session ends).
async fn pipe(handle: Arc<Handle<Pinned>>, mut tcp: TcpStream, peer: SocketAddr) {
    let _ = tcp.set_nodelay(true);
    let channel = match handle
        .channel_open_direct_tcpip(
            CHANNEL_HOST,
            CHANNEL_PORT,
            peer.ip().to_string(),
            u32::from(peer.port()),
        )
        .await
    {
        Ok(c) => c,
        Err(e) => {
            // Dropping `tcp` tells the local client; the broker logs why it refused.
            tracing::info!(error = %e, "the broker refused a forwarded connection");
            return;
        }
    };
    let mut stream = channel.into_stream();
    if let Err(e) = tokio::io::copy_bidirectional(&mut tcp, &mut stream).await {
        tracing::debug!(error = %e, "forwarded connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn c9_forward_refuses_non_loopback_addresses() {
        for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:0"] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert!(matches!(
                bind_loopback(addr).await,
                Err(ClientError::InvalidInput { .. })
            ));
        }
        let l = bind_loopback(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        assert!(l.local_addr().unwrap().ip().is_loopback());
    }

    #[test]
    fn the_broker_reason_is_kept() {
        assert_eq!(
            to_ended(Some("paw: session ended (revoked): the grant was revoked")),
            Ended {
                reason: "revoked".into(),
                message: "the grant was revoked".into()
            }
        );
        assert_eq!(to_ended(None).reason, "closed");
    }
}
