//! The terminal bridge: an SSH connection from the core to the broker's front door with a
//! session's one-time credential, carrying one interactive shell (or one command).
//!
//! Rules: the broker's host key is pinned from the redeem answer (learnt over the broker's
//! TLS), never trusted on first use; the credential is used once and dropped; nothing is
//! written to disk (case C7). Output goes to a callback as raw bytes; input, resizes and close
//! come in through [`Terminal`].

use std::sync::Arc;
use std::time::Duration;

use russh::client::{self, DisconnectReason, Handle};
use russh::keys::{PublicKey, PublicKeyOrCertificate};
use russh::ChannelMsg;
use tokio::sync::{mpsc, oneshot};

use crate::error::ClientError;

/// What a terminal reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermEvent {
    Output(Vec<u8>),
    /// The session is over: the broker's reason code (`grant_ended`, `revoked`, `killed`,
    /// `recording_failed`, `closed`, …) and its words.
    Ended {
        reason: String,
        message: String,
    },
}

enum Cmd {
    Data(Vec<u8>),
    Resize(u32, u32),
    Close,
}

/// A running terminal. Dropping it closes the session.
pub struct Terminal {
    cmds: mpsc::Sender<Cmd>,
}

impl Terminal {
    pub async fn input(&self, data: Vec<u8>) -> Result<(), ClientError> {
        self.cmds
            .send(Cmd::Data(data))
            .await
            .map_err(|_| ClientError::Session("the session has ended".into()))
    }

    pub async fn resize(&self, cols: u32, rows: u32) -> Result<(), ClientError> {
        self.cmds
            .send(Cmd::Resize(cols, rows))
            .await
            .map_err(|_| ClientError::Session("the session has ended".into()))
    }

    pub async fn close(&self) {
        let _ = self.cmds.send(Cmd::Close).await;
    }
}

/// Where and how to log in: from the broker's redeem answer. Clone keeps the ticket zeroized
/// on drop in every copy.
#[derive(Clone)]
pub struct Credential {
    pub addr: String,
    pub host_key: String,
    pub session_id: String,
    pub ticket: zeroize::Zeroizing<String>,
}

pub(crate) struct Pinned {
    key: PublicKey,
    disconnect: Option<oneshot::Sender<String>>,
}

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(
            matches!(key, PublicKeyOrCertificate::PublicKey { key, .. } if key.key_data() == self.key.key_data()),
        )
    }

    async fn disconnected(
        &mut self,
        reason: DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        if let DisconnectReason::ReceivedDisconnect(info) = reason {
            if let Some(tx) = self.disconnect.take() {
                let _ = tx.send(info.message);
            }
        }
        Ok(())
    }
}

/// Connects and logs in with the one-time credential (terminals and local forwards). The
/// receiver yields the broker's disconnect message, or fails when the connection ends
/// without one.
pub(crate) async fn login(
    cred: &Credential,
) -> Result<(Handle<Pinned>, oneshot::Receiver<String>), ClientError> {
    let key = PublicKey::from_openssh(&cred.host_key)
        .map_err(|e| ClientError::Protocol(format!("the broker's SSH host key: {e}")))?;
    let (tx, rx) = oneshot::channel();
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(15)),
        nodelay: true,
        ..Default::default()
    });
    let connect = client::connect(
        config,
        cred.addr.as_str(),
        Pinned {
            key,
            disconnect: Some(tx),
        },
    );
    let mut h = tokio::time::timeout(Duration::from_secs(15), connect)
        .await
        .map_err(|_| ClientError::Session("connecting to the broker timed out".into()))?
        .map_err(|e| ClientError::Session(format!("connecting to the broker: {e}")))?;
    let ok = h
        .authenticate_password(cred.session_id.clone(), cred.ticket.as_str())
        .await
        .map_err(|e| ClientError::Session(format!("logging in to the broker: {e}")))?;
    if !ok.success() {
        return Err(ClientError::Session(
            "the broker refused the session credential".into(),
        ));
    }
    Ok((h, rx))
}

/// Opens a terminal: a pty of `cols`×`rows` and a shell, or `command` when given. Events go
/// to `on_event` from a task of its own until the session ends.
pub async fn open(
    cred: Credential,
    cols: u32,
    rows: u32,
    command: Option<String>,
    on_event: impl Fn(TermEvent) + Send + 'static,
) -> Result<Terminal, ClientError> {
    let (handle, disconnect) = login(&cred).await?;
    drop(cred);
    let channel = handle
        .channel_open_session()
        .await
        .map_err(|e| ClientError::Session(format!("opening the session: {e}")))?;
    let fail = |e: russh::Error| ClientError::Session(format!("starting the session: {e}"));
    channel
        .request_pty(false, "xterm-256color", cols, rows, 0, 0, &[])
        .await
        .map_err(fail)?;
    match &command {
        Some(c) => channel
            .exec(false, c.as_bytes().to_vec())
            .await
            .map_err(fail)?,
        None => channel.request_shell(false).await.map_err(fail)?,
    }
    let (cmds, mut rx) = mpsc::channel::<Cmd>(256);
    tokio::spawn(async move {
        let (mut read, write) = channel.split();
        let mut exit: Option<u32> = None;
        // The channel vanished without a Close: the connection to the broker went (the broker
        // was killed, or stopped answering until the keepalive gave up), not the session.
        let mut lost = false;
        loop {
            tokio::select! {
                m = read.wait() => match m {
                    Some(ChannelMsg::Data { data }) => on_event(TermEvent::Output(data.to_vec())),
                    Some(ChannelMsg::ExtendedData { data, .. }) => on_event(TermEvent::Output(data.to_vec())),
                    Some(ChannelMsg::ExitStatus { exit_status }) => exit = Some(exit_status),
                    Some(ChannelMsg::Close) => break,
                    None => { lost = true; break }
                    Some(_) => {}
                },
                c = rx.recv() => match c {
                    Some(Cmd::Data(d)) => { if write.data_bytes(d).await.is_err() { break; } }
                    Some(Cmd::Resize(c, r)) => { let _ = write.window_change(c, r, 0, 0).await; }
                    Some(Cmd::Close) | None => {
                        let _ = write.close().await;
                        break;
                    }
                },
            }
        }
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, "closed", "")
            .await;
        let said = tokio::time::timeout(Duration::from_millis(500), disconnect)
            .await
            .ok()
            .and_then(|r| r.ok());
        on_event(ended(said.as_deref(), exit, lost));
    });
    Ok(Terminal { cmds })
}

/// The broker says `paw: session ended (<code>): <words>` when it ends a session. Without
/// its word, a connection that dropped before any exit status is `connection_lost`, so a
/// caller can tell a lost broker from a shell that exited.
pub(crate) fn ended(said: Option<&str>, exit: Option<u32>, lost: bool) -> TermEvent {
    if let Some(rest) = said.and_then(|s| s.strip_prefix("paw: session ended (")) {
        if let Some((code, words)) = rest.split_once("): ") {
            return TermEvent::Ended {
                reason: code.to_owned(),
                message: words.to_owned(),
            };
        }
    }
    if lost && exit.is_none() {
        return TermEvent::Ended {
            reason: "connection_lost".into(),
            message: "the connection to the broker was lost".into(),
        };
    }
    TermEvent::Ended {
        reason: "closed".into(),
        message: match exit {
            Some(c) => format!("the session closed (exit status {c})"),
            None => "the session closed".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_reason_is_read_from_its_disconnect_message() {
        assert_eq!(
            ended(
                Some("paw: session ended (grant_ended): the grant ended"),
                None,
                true
            ),
            TermEvent::Ended {
                reason: "grant_ended".into(),
                message: "the grant ended".into()
            }
        );
        assert!(
            matches!(ended(None, Some(0), false), TermEvent::Ended { reason, .. } if reason == "closed")
        );
        // A shell that exited before the connection dropped is still a normal end.
        assert!(
            matches!(ended(None, Some(0), true), TermEvent::Ended { reason, .. } if reason == "closed")
        );
        assert!(matches!(
            ended(None, None, true),
            TermEvent::Ended { reason, .. } if reason == "connection_lost"
        ));
    }
}
