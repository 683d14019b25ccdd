//! PostgreSQL sessions through the SSH front door: the app logs in with the session's one-time
//! credential and opens `direct-tcpip` channels; each channel is logged in to the configured
//! database as a temporary role minted for this session alone ([`paw_pgproxy`]).
//!
//! Rules:
//! - The role is created when the credential is used, is a member of the grant's role only, and
//!   the server itself refuses it after the grant's end (`VALID UNTIL`).
//! - The client never chooses where bytes go: the host and port it names in a channel request
//!   are ignored, the broker connects to the target's configured address and database.
//! - Whatever ends the session (grant end by the monotonic timer, revocation or kill through the
//!   live registry, the client leaving) stops every channel, terminates the role's backends and
//!   drops the role, and only then records the end (case C5). The session stays in the live
//!   registry until that record is written.
//! - The admin URL is read from its file at use and lives in the pool only; it never reaches a
//!   log line, an error message or an API answer (case C4).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use paw_pgproxy::{Admin, TempRole};
use russh::server::{ChannelOpenHandle, Msg};
use russh::{Channel, ChannelOpenFailure};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};

use crate::config::sessions::TargetConfig;
use crate::sessions::error::Result;
use crate::sessions::error::SessionsError;
use crate::sessions::front::SshFront;
use crate::sessions::Sessions;
use crate::sessions::{self, EndDetail, SessionInfo};

/// Channels one session may have open at once. The role's own `CONNECTION LIMIT` bounds the
/// server side; this bounds the broker's tasks and sockets for a client that opens many.
pub const MAX_CHANNELS: usize = 8;
/// Connecting the admin pool, and the start-up sweep of one target, give up after this: a
/// database that is down must not hold the front door.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(15);

/// The admin pools, one per target, made from the admin URL file when first needed.
///
/// The file is read at every use; the pool is kept while the URL is the same (compared by
/// hash, so no copy of the URL is kept beside the pool), and replaced when it was rotated.
#[derive(Default)]
pub struct Admins {
    pools: Mutex<HashMap<String, ([u8; 32], Admin)>>,
}

impl std::fmt::Debug for Admins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admins").finish_non_exhaustive()
    }
}

impl Admins {
    /// The admin pool for `target`, a postgres target.
    pub async fn get(&self, target: &TargetConfig) -> Result<Admin> {
        let path = target.admin_url_file.as_ref().ok_or_else(|| {
            unavailable(format!("target {:?} has no admin_url_file", target.name))
        })?;
        let text = zeroize::Zeroizing::new(tokio::fs::read_to_string(path).await.map_err(|e| {
            // The io error names the failure, never the file's content.
            unavailable(format!(
                "cannot read the admin URL file of target {:?}: {e}",
                target.name
            ))
        })?);
        let url = text.trim();
        let digest: [u8; 32] = Sha256::digest(url.as_bytes()).into();
        if let Some(admin) = self.cached(&target.name, &digest) {
            return Ok(admin);
        }
        // Not under the lock: one slow database must not hold the others' sessions. Two
        // concurrent first uses make two pools, and the second replaces the first.
        let admin = tokio::time::timeout(ADMIN_TIMEOUT, Admin::connect(url))
            .await
            .map_err(|_| {
                unavailable(format!(
                    "connecting to the database of target {:?} timed out",
                    target.name
                ))
            })?
            .map_err(pg_error)?;
        if let Ok(mut pools) = self.pools.lock() {
            pools.insert(target.name.clone(), (digest, admin.clone()));
        }
        Ok(admin)
    }

    fn cached(&self, target: &str, digest: &[u8; 32]) -> Option<Admin> {
        let pools = self.pools.lock().ok()?;
        pools
            .get(target)
            .filter(|(d, _)| d == digest)
            .map(|(_, a)| a.clone())
    }
}

fn unavailable(message: String) -> SessionsError {
    SessionsError::TargetUnavailable(message)
}

/// A [`paw_pgproxy::Error`] as the broker's error. Its messages hold no password or URL.
pub fn pg_error(e: paw_pgproxy::Error) -> SessionsError {
    e.into()
}

/// At start-up, before the front door accepts anyone: drops the temporary roles a previous
/// broker process left on every postgres target (it may have crashed mid-session, case E2).
/// A target that cannot be reached is logged and skipped; its roles are swept at the next
/// start, and meanwhile the server refuses them after their grant's end anyway (`VALID UNTIL`).
pub async fn sweep_all(front: &SshFront) {
    // Targets without an admin URL serve vaulted logins only: no temporary role to sweep.
    for target in front
        .targets()
        .filter(|t| t.kind == "postgres" && t.admin_url_file.is_some())
    {
        let swept = tokio::time::timeout(ADMIN_TIMEOUT, async {
            let admin = front.pg_admins().get(target).await?;
            admin.sweep().await.map_err(pg_error)
        })
        .await;
        match swept {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                tracing::warn!(target = %target.name, roles = n, "dropped temporary roles a previous broker process left")
            }
            Ok(Err(e)) => {
                tracing::warn!(target = %target.name, error = %e, "could not sweep temporary roles")
            }
            Err(_) => {
                tracing::warn!(target = %target.name, "sweeping temporary roles timed out")
            }
        }
    }
}

/// A PostgreSQL session as its SSH connection holds it. Dropping it (the connection is gone)
/// ends the session with reason `closed`.
pub struct PgConn {
    session_id: String,
    role: Arc<TempRole>,
    address: SocketAddr,
    database: String,
    stop: watch::Receiver<bool>,
    channels: Arc<Semaphore>,
    handle: Option<oneshot::Sender<russh::server::Handle>>,
    // Never sent on: its drop with the connection tells the supervisor the client is gone.
    _alive: oneshot::Sender<()>,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("session_id", &self.session_id)
            .field("role", &self.role.name())
            .finish_non_exhaustive()
    }
}

/// Starts a claimed postgres session: registers it live, mints its role and starts the task
/// that ends it. On error the session is ended and recorded already; refuse the login.
pub async fn open(svc: &Sessions, front: &SshFront, info: &SessionInfo) -> Result<PgConn> {
    // First: a kill or revocation from now on reaches the session.
    let ends = svc.live_sessions.register(&info.id);
    match prepare(svc, front, info).await {
        Ok((admin, role, address, database)) => {
            let role = Arc::new(role);
            let (stop_tx, stop) = watch::channel(false);
            let (alive, gone) = oneshot::channel();
            let (handle, handle_rx) = oneshot::channel();
            tokio::spawn(supervise(
                svc.clone(),
                info.clone(),
                admin,
                role.clone(),
                Ends {
                    ends,
                    gone,
                    stop: stop_tx,
                    handle: handle_rx,
                },
            ));
            Ok(PgConn {
                session_id: info.id.clone(),
                role,
                address,
                database,
                stop,
                channels: Arc::new(Semaphore::new(MAX_CHANNELS)),
                handle: Some(handle),
                _alive: alive,
            })
        }
        Err(e) => {
            tracing::warn!(session = %info.id, target = %info.target, error = %e, "postgres session refused");
            let detail = EndDetail {
                fields: [("error".to_owned(), json!(e.to_string()))]
                    .into_iter()
                    .collect(),
                failed: true,
            };
            let reason = match crate::base::error::ServiceError::code(&e) {
                paw_proto::ErrorCode::CheckedOut => "checked_out",
                paw_proto::ErrorCode::VaultUnavailable => "vault_unavailable",
                _ => "target_unreachable",
            };
            if let Err(e) = sessions::finish_with(svc, info, reason, None, None, detail).await {
                tracing::error!(session = %info.id, error = %e, "could not record the end of a session");
            }
            svc.live_sessions.unregister(&info.id);
            Err(e)
        }
    }
}

/// The target's address and database, and what to log in as: a temporary role minted by the
/// admin pool (returned with it, to drop it at the end), or the vaulted login of the grant's
/// role when its entitlement says `vault = ["inject"]` (no admin involved, nothing to drop).
async fn prepare(
    svc: &Sessions,
    front: &SshFront,
    info: &SessionInfo,
) -> Result<(Option<Admin>, TempRole, SocketAddr, String)> {
    let target = front
        .target(&info.target)
        .filter(|t| t.kind == "postgres")
        .ok_or_else(|| {
            unavailable(format!(
                "no postgres target {:?} is configured",
                info.target
            ))
        })?;
    let database = target
        .database
        .clone()
        .ok_or_else(|| unavailable(format!("target {:?} names no database", target.name)))?;
    // Resolved before the role exists, so a bad address leaves nothing behind.
    let address = tokio::net::lookup_host(target.address.as_str())
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            unavailable(format!(
                "the address of target {:?} does not resolve",
                target.name
            ))
        })?;
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
    match injected {
        Some(crate::vault::Injected::Password(password)) => {
            let login = TempRole::vaulted(&info.role, password, info.grant_end_ms)?;
            tracing::info!(session = %info.id, login = %info.role, "vaulted login");
            Ok((None, login, address, database))
        }
        Some(crate::vault::Injected::Key(_)) => Err(unavailable(format!(
            "the vaulted account {}/{} is a key, not a PostgreSQL password",
            info.target, info.role
        ))),
        None => {
            let admin = front.pg_admins().get(target).await?;
            let role = admin
                .create_temp_role(&info.id, &info.role, info.grant_end_ms)
                .await
                .map_err(pg_error)?;
            tracing::info!(session = %info.id, role = %role.name(), granted = %info.role, "temporary role created");
            Ok((Some(admin), role, address, database))
        }
    }
}

impl PgConn {
    /// The SSH session's handle, once logged in: the supervisor disconnects through it.
    pub fn logged_in(&mut self, handle: russh::server::Handle) {
        if let Some(tx) = self.handle.take() {
            let _ = tx.send(handle);
        }
    }

    /// A `direct-tcpip` channel: accepted while the session is open and under
    /// [`MAX_CHANNELS`], then logged in to the configured database whatever host and port the
    /// client named.
    pub async fn open_channel(
        &self,
        svc: &Sessions,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
    ) {
        if *self.stop.borrow() {
            return reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
        }
        // The database is the authority: a session ended a moment ago gets no new channel.
        match sessions::still_open(svc, &self.session_id).await {
            Ok(None) => {}
            Ok(Some(_)) => {
                return reply
                    .reject(ChannelOpenFailure::AdministrativelyProhibited)
                    .await
            }
            Err(e) => {
                tracing::warn!(session = %self.session_id, error = %e, "cannot check the session");
                return reply.reject(ChannelOpenFailure::ConnectFailed).await;
            }
        }
        let Ok(permit) = self.channels.clone().try_acquire_owned() else {
            return reply.reject(ChannelOpenFailure::ResourceShortage).await;
        };
        reply.accept().await;
        tokio::spawn(serve_channel(
            self.session_id.clone(),
            self.role.clone(),
            self.address,
            self.database.clone(),
            self.stop.clone(),
            channel,
            permit,
        ));
    }
}

async fn serve_channel(
    session_id: String,
    role: Arc<TempRole>,
    address: SocketAddr,
    database: String,
    mut stop: watch::Receiver<bool>,
    channel: Channel<Msg>,
    _permit: OwnedSemaphorePermit,
) {
    // Resolves when the session ends (or its supervisor is gone, which is the same).
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    match paw_pgproxy::serve_client(channel.into_stream(), address, &role, &database, stopped).await
    {
        Ok(s) => tracing::info!(
            session = %session_id,
            client_to_server = s.client_to_server,
            server_to_client = s.server_to_client,
            "database connection closed"
        ),
        Err(e) => {
            tracing::info!(session = %session_id, code = e.code(), error = %e, "database connection failed")
        }
    }
}

/// What can end a session, and how the supervisor ends it.
struct Ends {
    /// The live registry: revoked, released, killed, the grant ended by the broker's clock.
    ends: watch::Receiver<Option<String>>,
    /// The SSH connection is gone.
    gone: oneshot::Receiver<()>,
    /// Tells every channel to stop.
    stop: watch::Sender<bool>,
    handle: oneshot::Receiver<russh::server::Handle>,
}

async fn supervise(
    svc: Sessions,
    info: SessionInfo,
    admin: Option<Admin>,
    role: Arc<TempRole>,
    mut e: Ends,
) {
    // The grant's end by the monotonic clock: a wall-clock step cannot move it (E4).
    let left = u64::try_from((info.grant_end_ms - svc.clock.now_ms()).max(0)).unwrap_or(0);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(left);
    let reason: String = tokio::select! {
        r = e.ends.changed() => match r {
            Ok(()) => e.ends.borrow().clone().unwrap_or_else(|| "ended".into()),
            // The registry entry was replaced or removed: nobody can end it from now on.
            Err(_) => "ended".into(),
        },
        _ = tokio::time::sleep_until(deadline) => "grant_ended".into(),
        _ = &mut e.gone => "closed".into(),
    };
    e.stop.send_replace(true);
    if let Ok(handle) = e.handle.try_recv() {
        let _ = handle
            .disconnect(
                russh::Disconnect::ByApplication,
                format!(
                    "paw: session ended ({reason}): {}",
                    crate::sessions::error::reason_words(&reason)
                ),
                String::new(),
            )
            .await;
    }
    let mut fields = serde_json::Map::new();
    fields.insert("db_role".into(), json!(role.name()));
    let dropped = match &admin {
        Some(admin) => admin.drop_temp_role(role.name()).await,
        // A vaulted login is not dropped: its connections closed with the channels above.
        None => Ok(paw_pgproxy::DropReport::default()),
    };
    let failed = match dropped {
        Ok(report) => {
            fields.insert(
                "backends_terminated".into(),
                json!(report.backends_terminated),
            );
            false
        }
        Err(err) => {
            // The role stays (NOLOGIN when it got that far) until the next start-up sweep;
            // the server refuses it after the grant's end regardless.
            tracing::error!(session = %info.id, role = %role.name(), code = err.code(), error = %err, "could not drop a temporary role");
            fields.insert("role_drop_error".into(), json!(err.to_string()));
            true
        }
    };
    if let Err(err) = sessions::finish_with(
        &svc,
        &info,
        &reason,
        None,
        None,
        EndDetail { fields, failed },
    )
    .await
    {
        tracing::error!(session = %info.id, error = %err, "could not record the end of a session");
    }
    // Only now: a registry without this session means its end is on record.
    svc.live_sessions.unregister(&info.id);
}
