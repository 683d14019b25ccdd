//! The broker's SSH front door: the app (or a stock `ssh`) logs in with a session's one-time
//! credential, and the broker opens the session to the target with a certificate it signed
//! for this session alone, recording everything that passes.
//!
//! Rules: one credential, one connection, one shell or command (case C3); no agent, X11, port
//! forwarding or subsystems are relayed (C1); the target's host key is pinned by config; the
//! session's key pair and certificate live in this task's memory only (C7); a recording that
//! cannot be created refuses the session and one that cannot be written ends it (C6); the
//! session ends at the grant's end by a monotonic timer, and within
//! [`crate::sessions::WATCH_EVERY`] of anything else ending it (C2).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, ChannelMsg, MethodKind, MethodSet};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::base::error::BrokerError;
use crate::config::sessions::{SessionsConfig, TargetConfig};
use crate::crypto::ssh_ca::{self, CertRequest, UserCa};
use crate::crypto::ssh_pin::{pinned_key, PinnedHost};
use crate::sessions::error::SessionsError;
use crate::sessions::error::{reason_words, Result};
use crate::sessions::recording::Recorder;
use crate::sessions::watch::Tap;
use crate::sessions::Sessions;
use crate::sessions::{self, SessionInfo};
use crate::vault::Injected;

/// Everything the front door needs besides the sessions service.
pub struct SshFront {
    ca: UserCa,
    host_key: PrivateKey,
    targets: HashMap<String, TargetConfig>,
    recordings: PathBuf,
    public_addr: Option<String>,
    pg_admins: crate::sessions::postgres::Admins,
    /// `[sessions] mask`, compiled once: what replays hide.
    masks: crate::config::masks::Masks,
}

impl std::fmt::Debug for SshFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshFront")
            .field("targets", &self.targets.keys())
            .finish_non_exhaustive()
    }
}

impl SshFront {
    /// Loads (or creates, at the first start) the host key and the user CA.
    pub fn load(config: &SessionsConfig, targets: &[TargetConfig]) -> Result<Self> {
        let host_key = ssh_ca::load_or_create(&config.ssh_host_key, "pawd ssh front door")?;
        let ca = UserCa::new(ssh_ca::load_or_create(&config.ssh_ca_key, "pawd user CA")?);
        Ok(Self {
            ca,
            host_key,
            targets: targets
                .iter()
                .map(|t| (t.name.clone(), t.clone()))
                .collect(),
            recordings: config.recordings.clone(),
            public_addr: config.ssh_public.clone(),
            pg_admins: Default::default(),
            masks: crate::config::masks::Masks::compile(&config.mask)?,
        })
    }

    pub fn host_public_key(&self) -> &PublicKey {
        self.host_key.public_key()
    }

    pub fn public_addr(&self) -> Option<&str> {
        self.public_addr.as_deref()
    }

    pub fn recordings_dir(&self) -> &std::path::Path {
        &self.recordings
    }

    pub fn masks(&self) -> &crate::config::masks::Masks {
        &self.masks
    }

    pub fn target(&self, name: &str) -> Option<&TargetConfig> {
        self.targets.get(name)
    }

    pub fn targets(&self) -> impl Iterator<Item = &TargetConfig> {
        self.targets.values()
    }

    /// The admin pools of the postgres targets.
    pub fn pg_admins(&self) -> &crate::sessions::postgres::Admins {
        &self.pg_admins
    }
}

fn server_config(front: &SshFront) -> russh::server::Config {
    russh::server::Config {
        methods: MethodSet::from(&[MethodKind::Password][..]),
        auth_rejection_time: Duration::from_millis(300),
        auth_rejection_time_initial: Some(Duration::from_millis(0)),
        max_auth_attempts: 3,
        keys: vec![front.host_key.clone()],
        inactivity_timeout: Some(Duration::from_secs(3600)),
        keepalive_interval: Some(Duration::from_secs(15)),
        nodelay: true,
        ..Default::default()
    }
}

/// Accepts connections until the task is dropped.
pub async fn serve(listener: TcpListener, svc: Sessions, front: Arc<SshFront>) {
    let config = Arc::new(server_config(&front));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "ssh accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = Conn {
            svc: svc.clone(),
            front: front.clone(),
            peer,
            session: None,
            channel_taken: false,
            pg: None,
        };
        let config = config.clone();
        tokio::spawn(async move {
            match russh::server::run_stream(config, stream, handler).await {
                Ok(running) => {
                    if let Err(e) = running.await {
                        tracing::debug!(error = ?e, %peer, "ssh connection ended");
                    }
                }
                Err(e) => tracing::debug!(error = ?e, %peer, "ssh handshake failed"),
            }
        });
    }
}

struct Conn {
    svc: Sessions,
    front: Arc<SshFront>,
    peer: SocketAddr,
    session: Option<SessionInfo>,
    channel_taken: bool,
    /// A postgres session: its role and the task that ends it (dropped with the connection).
    pg: Option<crate::sessions::postgres::PgConn>,
}

impl Drop for Conn {
    /// An SSH session whose credential was used but which never opened its channel (the
    /// client logged in and left): end it, or it would stay open in the history.
    fn drop(&mut self) {
        let Some(info) = self.session.take() else {
            return;
        };
        if self.channel_taken || info.target_kind != "ssh" {
            return;
        }
        let svc = self.svc.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = sessions::finish(&svc, &info, "closed", None, None).await {
                    tracing::error!(session = %info.id, error = %e, "could not record the end of a session");
                }
            });
        }
    }
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_password(
        &mut self,
        user: &str,
        password: &str,
    ) -> std::result::Result<Auth, Self::Error> {
        // A session id is a UUID and a ticket 43 base64url characters: anything else is refused
        // before it reaches the database or the audit log.
        let plausible = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if self.session.is_some() || !plausible(user, 64) || !plausible(password, 128) {
            return Ok(Auth::reject());
        }
        match sessions::claim(&self.svc, user, password, &self.peer.to_string()).await {
            Ok(info) => {
                if info.target_kind == "postgres" {
                    // On error the session is ended and on record already.
                    match crate::sessions::postgres::open(&self.svc, &self.front, &info).await {
                        Ok(pg) => self.pg = Some(pg),
                        Err(_) => return Ok(Auth::reject()),
                    }
                }
                self.session = Some(info);
                Ok(Auth::Accept)
            }
            Err(e) => {
                tracing::info!(peer = %self.peer, error = %e, "session credential refused");
                Ok(Auth::reject())
            }
        }
    }

    async fn auth_succeeded(
        &mut self,
        session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        if let Some(pg) = &mut self.pg {
            pg.logged_in(session.handle());
        }
        Ok(())
    }

    // Postgres sessions only; the host and port the client names are ignored. Anything else
    // is refused by dropping `reply` (C1: no port forwarding on SSH sessions).
    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        _host_to_connect: &str,
        _port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        if let Some(pg) = &self.pg {
            pg.open_channel(&self.svc, channel, reply).await;
        }
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        let Some(info) = self.session.clone() else {
            return Ok(());
        };
        // One session, one channel: a second shell would be a second session on one credential.
        if self.channel_taken || info.target_kind != "ssh" {
            return Ok(());
        }
        self.channel_taken = true;
        reply.accept().await;
        let svc = self.svc.clone();
        let front = self.front.clone();
        let handle = session.handle();
        // Registered before the task runs: from here on a kill or revocation reaches it.
        let ends = svc.live_sessions.register(&info.id);
        tokio::spawn(async move {
            bridge(svc, front, info, channel, handle, ends).await;
        });
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn window_change_request(
        &mut self,
        _channel: ChannelId,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        Ok(())
    }

    // Refused: nothing is relayed that the certificate does not grant (C1).
    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    // SFTP only, and only when the entitlement has file rules (#18); nothing else (C1).
    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        let sftp = self
            .session
            .as_ref()
            .and_then(|i| sessions::sftp::rules_of(&self.svc, i));
        if name == "sftp" && sftp.is_some() {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> std::result::Result<bool, Self::Error> {
        Ok(false)
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> std::result::Result<bool, Self::Error> {
        Ok(false)
    }
}

/// What the client asked to run.
enum Start {
    Shell,
    Exec(Vec<u8>),
    Sftp(Arc<paw_files::FileRules>),
}

#[derive(Clone, Copy)]
struct Pty {
    cols: u32,
    rows: u32,
}

async fn bridge(
    svc: Sessions,
    front: Arc<SshFront>,
    info: SessionInfo,
    client: Channel<Msg>,
    handle: russh::server::Handle,
    mut ends: watch::Receiver<Option<String>>,
) {
    let (reason, recording, error) = run(&svc, &front, &info, client, &handle, &mut ends).await;
    let _ = handle
        .disconnect(
            russh::Disconnect::ByApplication,
            format!("paw: session ended ({reason}): {}", reason_words(&reason)),
            String::new(),
        )
        .await;
    // The end must reach the record: while the database is away (I5) keep trying, the
    // session staying in the registry meanwhile. `finish` writes once, so a peer that ended
    // it first (`broker_lost`) makes this a no-op.
    let mut wait = Duration::from_millis(250);
    while let Err(e) =
        sessions::finish(&svc, &info, &reason, recording.as_ref(), error.as_deref()).await
    {
        tracing::error!(session = %info.id, error = %e, "could not record the end of a session; retrying");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
    // Only now: a registry without this session means its end is on record.
    svc.live_sessions.unregister(&info.id);
}

pub(crate) type Outcome = (
    String,
    Option<crate::sessions::recording::Finished>,
    Option<String>,
);

async fn run(
    svc: &Sessions,
    front: &SshFront,
    info: &SessionInfo,
    client: Channel<Msg>,
    handle: &russh::server::Handle,
    ends: &mut watch::Receiver<Option<String>>,
) -> Outcome {
    let cid = client.id();
    let (mut client_rx, _client_tx) = client.split();
    let say = |text: String| async move {
        let _ = handle
            .extended_data(cid, 1, format!("\r\npaw: {text}\r\n").into_bytes())
            .await;
    };
    // The grant's end by the monotonic clock: a wall-clock step cannot move it (E4).
    let left = (info.grant_end_ms - svc.clock.now_ms()).max(0);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(left as u64);

    // Until the client says what to run.
    let mut pty: Option<Pty> = None;
    let mut term = "xterm-256color".to_owned();
    let start = loop {
        tokio::select! {
            m = client_rx.wait() => match m {
                Some(ChannelMsg::RequestPty { term: t, col_width, row_height, .. }) => {
                    term = t;
                    pty = Some(Pty { cols: col_width, rows: row_height });
                }
                Some(ChannelMsg::WindowChange { col_width, row_height, .. }) => {
                    pty = Some(Pty { cols: col_width, rows: row_height });
                }
                Some(ChannelMsg::RequestShell { .. }) => break Start::Shell,
                Some(ChannelMsg::Exec { command, .. }) => break Start::Exec(command),
                Some(ChannelMsg::RequestSubsystem { name, .. }) if name == "sftp" => {
                    if let Some(rules) = sessions::sftp::rules_of(svc, info) { break Start::Sftp(rules); }
                }
                Some(_) => {}
                None => return ("closed".into(), None, None),
            },
            _ = ends.changed() => {
                let r = ends.borrow().clone().unwrap_or_else(|| "ended".into());
                return (r, None, None);
            }
            _ = tokio::time::sleep_until(deadline) => return ("grant_ended".into(), None, None),
        }
    };

    if info.machine {
        let interactive = pty.is_some() || matches!(start, Start::Shell);
        match crate::sessions::commands::check_machine_terminal(svc, info, interactive).await {
            Ok(Ok(())) => {}
            Ok(Err(refusal)) => {
                say(refusal).await;
                let _ = handle.exit_status_request(cid, 126).await;
                let _ = handle.close(cid).await;
                return ("interactive_refused".into(), None, None);
            }
            Err(e) => {
                tracing::error!(session = %info.id, error = %e, "could not record a machine's terminal check");
                return ("interactive_refused".into(), None, Some(e.to_string()));
            }
        }
    }
    let size = pty.unwrap_or(Pty { cols: 80, rows: 24 });
    let title = format!("{}@{} ({})", info.role, info.target, info.user);
    let mut rec = match Recorder::create(
        &front.recordings,
        &info.id,
        size.cols,
        size.rows,
        svc.clock.now_ms() / 1000,
        &title,
        &term,
    ) {
        Ok(r) => r,
        Err(e) => {
            say("the session cannot be recorded, so it does not start".into()).await;
            return ("recording_failed".into(), None, Some(e.to_string()));
        }
    };
    if let Start::Exec(cmd) = &start {
        if let Err(e) = rec.input(cmd) {
            return ("recording_failed".into(), None, Some(e.to_string()));
        }
        // M4: the rcp protocol is not decoded, so it does not pass; modern scp speaks SFTP.
        if sessions::sftp::legacy_scp(cmd) {
            sessions::sftp::refuse_legacy_scp(svc, info, cmd, handle, cid).await;
            return ("scp_legacy".into(), rec.finish().ok(), None);
        }
        // Checked before the target is even dialled (J5).
        match crate::sessions::commands::check_exec(svc, info, cmd).await {
            Ok(Ok(())) => {}
            Ok(Err(refusal)) => {
                say(refusal).await;
                // What a shell answers for a command it may not run.
                let _ = handle.exit_status_request(cid, 126).await;
                let _ = handle.close(cid).await;
                return ("command_denied".into(), rec.finish().ok(), None);
            }
            Err(e) => {
                // Not recorded, not run.
                tracing::error!(session = %info.id, error = %e, "could not record a command check");
                say("the command check could not be recorded, so the command does not run".into())
                    .await;
                return ("command_denied".into(), rec.finish().ok(), None);
            }
        }
    }

    let target = match connect_target(svc, front, info).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(session = %info.id, error = %e, "target connection failed");
            say(format!("cannot reach {}: {e}", info.target)).await;
            let finished = rec.finish().ok();
            let reason = match crate::base::error::ServiceError::code(&e) {
                paw_proto::ErrorCode::CheckedOut => "checked_out",
                paw_proto::ErrorCode::VaultUnavailable => "vault_unavailable",
                _ => "target_unreachable",
            };
            return (reason.into(), finished, None);
        }
    };
    let (handle_t, target_ch) = target;
    if let Some(p) = pty {
        if let Err(e) = target_ch
            .request_pty(false, &term, p.cols, p.rows, 0, 0, &[])
            .await
        {
            let finished = rec.finish().ok();
            say(format!("the target refused a terminal: {e}")).await;
            return ("target_closed".into(), finished, None);
        }
    }
    let started = match &start {
        Start::Shell => target_ch.request_shell(false).await,
        Start::Exec(cmd) => target_ch.exec(false, cmd.clone()).await,
        Start::Sftp(_) => target_ch.request_subsystem(false, "sftp").await,
    };
    if let Err(e) = started {
        let finished = rec.finish().ok();
        say(format!("the target refused the session: {e}")).await;
        return ("target_closed".into(), finished, None);
    }
    if let Start::Sftp(rules) = start {
        let (target, recordings) = ((handle_t, target_ch), front.recordings.clone());
        let s = sessions::sftp::Serve {
            svc,
            info,
            rules,
            recordings,
            handle,
            cid,
            client_rx,
        };
        return sessions::sftp::serve(s, target, rec, ends.clone(), deadline).await;
    }
    let (mut target_rx, target_tx) = target_ch.split();
    // A shell under command rules has its lines checked at Enter (J1/J2); without rules at the
    // start, nothing follows the screen, which costs nothing per byte.
    let mut shell = (matches!(start, Start::Shell)
        && crate::sessions::commands::control_of(svc, info).is_some())
    .then(|| crate::sessions::shell::Shell::new(size.cols, size.rows));
    // Watchers (J6) attach from here on; output is copied to them only while one watches.
    let mut tap = Tap::open(
        svc,
        info,
        &front.recordings,
        (size.cols, size.rows),
        handle,
        cid,
    );

    let mut record_error: Option<String> = None;
    let reason: String = loop {
        tokio::select! {
            m = client_rx.wait() => match m {
                Some(ChannelMsg::Data { data }) => {
                    if let Err(e) = rec.input(&data) { record_error = Some(e.to_string()); break "recording_failed".into(); }
                    if let Some(sh) = shell.as_mut() {
                        let mut io = crate::sessions::shell::Io {
                            svc, info, handle, cid, target_tx: &target_tx, target_rx: &mut target_rx, rec: &mut rec,
                            ends: &mut *ends, deadline, client_rx: &mut client_rx, tap: &tap,
                        };
                        if let Err(end) = sh.input(&mut io, &data).await { break end; }
                    } else if target_tx.data_bytes(data).await.is_err() { break "target_closed".into(); }
                }
                Some(ChannelMsg::WindowChange { col_width, row_height, pix_width, pix_height }) => {
                    if let Err(e) = rec.resize(col_width, row_height) { record_error = Some(e.to_string()); break "recording_failed".into(); }
                    if let Some(sh) = shell.as_mut() { sh.resize(col_width, row_height); }
                    tap.resize(col_width, row_height);
                    let _ = target_tx.window_change(col_width, row_height, pix_width, pix_height).await;
                }
                Some(ChannelMsg::Eof) => { let _ = target_tx.eof().await; }
                Some(ChannelMsg::Close) | None => break "closed".into(),
                Some(_) => {}
            },
            m = target_rx.wait() => match m {
                Some(ChannelMsg::Data { data }) => {
                    if let Err(e) = rec.output(&data) { record_error = Some(e.to_string()); break "recording_failed".into(); }
                    if let Some(sh) = shell.as_mut() { sh.output(&data); }
                    tap.output(&data);
                    if handle.data(cid, data).await.is_err() { break "closed".into(); }
                }
                Some(ChannelMsg::ExtendedData { data, ext }) => {
                    if let Err(e) = rec.output(&data) { record_error = Some(e.to_string()); break "recording_failed".into(); }
                    tap.output(&data);
                    if handle.extended_data(cid, ext, data).await.is_err() { break "closed".into(); }
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    let _ = handle.exit_status_request(cid, exit_status).await;
                }
                Some(ChannelMsg::Eof) => { let _ = handle.eof(cid).await; }
                Some(ChannelMsg::Close) | None => break "target_closed".into(),
                Some(_) => {}
            },
            // A watcher joins or leaves a chapter mark; nothing of theirs reaches the target.
            c = tap.request() => {
                if let Err(e) = tap.serve(c, &mut rec) { record_error = Some(e.to_string()); break "recording_failed".into(); }
            }
            _ = ends.changed() => {
                break ends.borrow().clone().unwrap_or_else(|| "ended".into());
            }
            _ = tokio::time::sleep_until(deadline) => break "grant_ended".into(),
        }
    };
    tap.end(&reason);
    let _ = target_tx.close().await;
    let _ = handle_t
        .disconnect(russh::Disconnect::ByApplication, "paw session ended", "")
        .await;
    if reason != "closed" && reason != "target_closed" {
        say(format!("session ended: {}", reason_words(&reason))).await;
    }
    if reason == "target_closed" || reason == "closed" {
        let _ = handle.close(cid).await;
        // The command ended by itself: let the client read the last output and close its
        // side before the connection goes (a disconnect can overtake data still queued).
        if reason == "target_closed" {
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Some(m) = client_rx.wait().await {
                    if matches!(m, ChannelMsg::Close) {
                        break;
                    }
                }
            })
            .await;
        }
    }
    match rec.finish() {
        Ok(f) => (reason, Some(f), record_error),
        Err(e) => ("recording_failed".into(), None, Some(e.to_string())),
    }
}

type TargetConn = (
    russh::client::Handle<PinnedHost>,
    Channel<russh::client::Msg>,
);

async fn connect_target(
    svc: &Sessions,
    front: &SshFront,
    info: &SessionInfo,
) -> Result<TargetConn> {
    let unavailable = SessionsError::TargetUnavailable;
    let t = front
        .target(&info.target)
        .filter(|t| t.kind == "ssh")
        .ok_or_else(|| unavailable(format!("no ssh target {:?} is configured", info.target)))?;
    let pinned = pinned_key(t.host_key.as_deref())
        .ok_or_else(|| unavailable("the target has no usable host_key".into()))?;
    // A vaulted account (`vault = ["inject"]`): checked out to the grant first, so a holder
    // elsewhere is said before anything is dialled; its secret lives in this task only (L1).
    let injected = svc
        .vault
        .inject(&crate::vault::SessionUse {
            grant: &info.grant_id,
            user: &info.user,
            entitlement: &info.entitlement,
            target: &info.target,
            role: &info.role,
            grant_end_ms: info.grant_end_ms,
            session: &info.id,
        })
        .await?;
    let config = Arc::new(russh::client::Config {
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    });
    let connect = russh::client::connect(config, t.address.as_str(), PinnedHost { pinned });
    let mut h = tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .map_err(|_| unavailable("connecting timed out".into()))?
        .map_err(|e| unavailable(format!("{e}")))?;
    let fail = |e: russh::Error| unavailable(format!("{e}"));
    let (ok, how) = match injected {
        None => {
            // The session's own key and certificate: in this task's memory only (C7).
            let key = ssh_ca::ephemeral_key()?;
            let now_secs = (svc.clock.now_ms() / 1000).max(0) as u64;
            let cert = front.ca.issue(
                key.public_key(),
                &CertRequest {
                    user: &info.user,
                    grant_id: &info.grant_id,
                    session_id: &info.id,
                    login: &info.role,
                    now_secs,
                    grant_end_secs: (info.grant_end_ms / 1000).max(0) as u64,
                },
            )?;
            let auth = h
                .authenticate_openssh_cert(info.role.clone(), Arc::new(key), cert)
                .await
                .map_err(fail)?;
            (
                auth.success(),
                "the broker's certificate (does it trust the broker CA?)",
            )
        }
        Some(Injected::Password(password)) => {
            let auth = h
                .authenticate_password(info.role.clone(), password.as_str())
                .await
                .map_err(fail)?;
            (
                auth.success(),
                "the vaulted password (changed outside paw?)",
            )
        }
        Some(Injected::Key(pem)) => {
            let key = PrivateKey::from_openssh(pem.as_str())
                .map_err(|_| unavailable("the vaulted key does not parse".into()))?;
            let hash = h.best_supported_rsa_hash().await.map_err(fail)?.flatten();
            let auth = h
                .authenticate_publickey(
                    info.role.clone(),
                    russh::keys::PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                )
                .await
                .map_err(fail)?;
            (auth.success(), "the vaulted key (changed outside paw?)")
        }
    };
    if !ok {
        return Err(unavailable(format!(
            "the target refused {how} for {:?}",
            info.role
        )));
    }
    let ch = h
        .channel_open_session()
        .await
        .map_err(|e| unavailable(format!("{e}")))?;
    Ok((h, ch))
}

/// The front door as the rest of the broker sees it: what to tell clients.
#[derive(Debug)]
pub struct Running {
    pub front: Arc<SshFront>,
    /// What clients dial: `ssh_public`, else the bound address.
    pub addr: String,
}

/// Binds the front door.
pub async fn bind(config: &SessionsConfig) -> Result<TcpListener> {
    TcpListener::bind(config.ssh_listen)
        .await
        .map_err(|e| BrokerError::io(format!("cannot listen on {}", config.ssh_listen), e))
        .map_err(Into::into)
}
