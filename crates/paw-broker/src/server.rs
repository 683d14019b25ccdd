//! Running the broker: bind, then serve until a shutdown future resolves.
//!
//! Binding and serving are separate steps so callers (the CLI, tests, benches) learn the real
//! address, port 0 included, before the first request.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use paw_proto::http::DatabaseKind;

use crate::audit::checkpoints::Cosigner;
use crate::base::clock::{Clock, SystemClock};
use crate::base::error::{BrokerError, Result};
use crate::config::Config;
use crate::elevation::{Elevation, FrontDoor};
use crate::http::{self, AppState};
use crate::identity::webauthn::RelyingParty;
use crate::identity::Identity;
use crate::sessions::Sessions;
use crate::store::{Create, Db};

/// How long in-flight requests get to finish after shutdown is requested.
const GRACEFUL_SHUTDOWN: Duration = Duration::from_secs(10);
/// How long a clean shutdown waits for the sessions it ended to close their recordings.
const SESSIONS_CLOSE: Duration = Duration::from_secs(3);

/// A broker that holds its socket, database and TLS identity and has not served yet.
pub struct BoundServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    app: Router,
    tls: Arc<rustls::ServerConfig>,
    db: Db,
    instance_id: String,
    state: AppState,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Held while serving: a second broker on the same SQLite file refuses to start.
    _single: Option<crate::store::SingleBroker>,
}

impl BoundServer {
    /// Loads the TLS identity, connects to the database, applies migrations, ensures the
    /// instance id and binds the listen address. Nothing is served yet.
    pub async fn bind(config: &Config) -> Result<Self> {
        Self::bind_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`BoundServer::bind`] with another clock (tests move time instead of sleeping).
    pub async fn bind_with_clock(config: &Config, clock: Arc<dyn Clock>) -> Result<Self> {
        // Before anything touches the database: a second broker must not even migrate it.
        let single = crate::store::SingleBroker::acquire(&config.database_url)?;
        let tls = crate::crypto::tls::server_config(&config.tls.cert, &config.tls.key)?;
        let App {
            router: app,
            db,
            instance_id,
            state,
            tasks,
        } = app(config, clock).await?;
        let listener = TcpListener::bind(config.listen)
            .map_err(|e| BrokerError::io(format!("cannot listen on {}", config.listen), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| BrokerError::io("set_nonblocking", e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| BrokerError::io("local_addr", e))?;
        Ok(Self {
            listener,
            local_addr,
            app,
            tls,
            db,
            instance_id,
            state,
            tasks,
            _single: single,
        })
    }

    /// The elevation service, for the policy reload on SIGHUP.
    pub fn elevation(&self) -> &Elevation {
        &self.state.elevation
    }

    /// The bound address, with the real port when the config said port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn database_kind(&self) -> DatabaseKind {
        self.db.kind()
    }

    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Serves HTTPS until `shutdown` resolves, then lets in-flight requests finish (bounded)
    /// and closes the database pool.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let handle = axum_server::Handle::new();
        let trigger = handle.clone();
        let notifier = self.state.elevation.notifier.clone();
        let watcher = tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutdown requested");
            // Event streams never finish on their own: end them so that the grace below is
            // spent on requests, and their clients move to another broker now.
            notifier.close();
            trigger.graceful_shutdown(Some(GRACEFUL_SHUTDOWN));
        });
        let ticker = tokio::spawn(grant_clock(self.state.elevation.clone()));
        tracing::info!(addr = %self.local_addr, database = ?self.db.kind(), "serving");
        let result =
            axum_server::from_tcp_rustls(self.listener, RustlsConfig::from_config(self.tls))
                .handle(handle)
                // The peer address is a machine's login source (K5).
                .serve(
                    self.app
                        .into_make_service_with_connect_info::<std::net::SocketAddr>(),
                )
                .await;
        watcher.abort();
        ticker.abort();
        end_own_sessions(&self.state.sessions).await;
        for t in &self.tasks {
            t.abort();
        }
        self.db.close().await;
        result.map_err(|e| BrokerError::io("server failed", e))
    }
}

/// The application without a socket: database connected and migrated, the elevation policy
/// installed (and recorded in the audit log if it changed), router built. Tests and benches
/// drive `router` in-process with `tower::ServiceExt::oneshot`, and `state` directly (the
/// grant clock's [`crate::elevation::tick`], policy reloads).
pub struct App {
    pub router: Router,
    pub db: Db,
    pub instance_id: String,
    pub state: AppState,
    /// The SSH front door and the session watcher, when `[sessions]` is configured; they run
    /// from here on (in-process tests use them as they are).
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub async fn app(config: &Config, clock: Arc<dyn Clock>) -> Result<App> {
    let rp = RelyingParty::new(&config.webauthn)?;
    let witness = crate::crypto::witness::load_at_start(&config.audit.witness_key)?;
    let db = Db::connect(&config.database_url, Create::IfMissing).await?;
    db.migrate().await?;
    let (instance_id, _) = db.ensure_instance_id().await?;
    let webhook = config
        .webhook
        .as_ref()
        .map(crate::elevation::notify::Webhook::from_config)
        .transpose()?;
    let policy = crate::elevation::policy::SharedPolicy::default();
    crate::elevation::policy::install(
        &db,
        &policy,
        crate::elevation::policy::Policy::from_config(config),
        clock.now_ms(),
        "pawd (start)",
    )
    .await?;
    // The SIEM feed of the audit log, when `[audit] stream_file` / `stream_url` are set.
    let mut tasks = crate::audit::stream::spawn(&config.audit, &db, clock.clone())?;
    let mut ssh_listener = None;
    let ssh = match &config.sessions {
        Some(sc) => {
            let front = Arc::new(crate::sessions::front::SshFront::load(sc, &config.targets)?);
            let listener = crate::sessions::front::bind(sc).await?;
            let bound = listener
                .local_addr()
                .map_err(|e| BrokerError::io("ssh local_addr", e))?;
            ssh_listener = Some(listener);
            Some(Arc::new(crate::sessions::front::Running {
                front,
                addr: sc.ssh_public.clone().unwrap_or_else(|| bound.to_string()),
            }))
        }
        None => None,
    };
    let identity = Identity {
        db: db.clone(),
        clock: clock.clone(),
        rp: Arc::new(rp),
        auth: config.auth,
    };
    let front_door = ssh.as_ref().map(|run| {
        Arc::new(FrontDoor {
            addr: run.addr.clone(),
            host_key: run.front.host_public_key().to_openssh().ok(),
            databases: run
                .front
                .targets()
                .filter_map(|t| Some((t.name.clone(), t.database.clone()?)))
                .collect(),
        })
    });
    // This process, as the origin of the live events it shares and as a broker with a lease.
    let live_origin = crate::base::util::new_id();
    let elevation = Elevation {
        db: db.clone(),
        clock: clock.clone(),
        policy,
        notifier: match db.kind() {
            // One broker: its streams are all there is.
            DatabaseKind::Sqlite => crate::elevation::notify::Notifier::new(webhook),
            DatabaseKind::Postgres => crate::elevation::notify::Notifier::new(webhook).shared(
                db.clone(),
                clock.clone(),
                &live_origin,
            ),
        },
        front_door,
    };
    tasks.push(tokio::spawn(crate::elevation::notify::relay(
        elevation.notifier.clone(),
    )));
    let mut vault = crate::vault::Vault::new(
        db.clone(),
        clock.clone(),
        elevation.policy.clone(),
        elevation.notifier.clone(),
        config.vault.clone(),
        &config.targets,
    );
    vault.verify_keys().await?;
    // Operator commands that build the app (`pawd user disable`) drop `[vault]` first, so that
    // they never start a rotation they would cut short on exit.
    if vault.enabled() {
        vault.sync_options().await?;
        // Settles at once any rotation a previous process left in flight (L2), then paces
        // the schedule, ended checkouts and retries.
        tasks.push(tokio::spawn(crate::vault::rotation::ticker(vault.clone())));
    }
    let sessions = Sessions {
        db: db.clone(),
        clock: clock.clone(),
        live_sessions: Default::default(),
        ssh: ssh.clone(),
        broker_id: Arc::from(live_origin.as_str()),
        policy: elevation.policy.clone(),
        heartbeat: Default::default(),
        notifier: elevation.notifier.clone(),
        vault: vault.clone(),
    };
    let cosigner = Cosigner {
        db: db.clone(),
        clock: clock.clone(),
        witness: Arc::new(witness),
    };
    let machines = crate::machines::Machines::new(
        db.clone(),
        clock.clone(),
        identity.clone(),
        elevation.policy.clone(),
        config.machines.clone(),
    )?;
    let state = AppState {
        db: db.clone(),
        instance_id: Arc::from(instance_id.as_str()),
        clock,
        identity,
        elevation,
        sessions: sessions.clone(),
        machines,
        vault,
        cosigner,
    };
    if let (Some(listener), Some(run)) = (ssh_listener, ssh) {
        // A broker that carries sessions registers with a lease, so that its peers can end
        // them if it dies (I3), and cleans up what previous processes left. On SQLite this is
        // the only broker (`SingleBroker`): every open session was a dead process's. On
        // PostgreSQL, only those of brokers whose lease has expired; a restart leaves its live
        // peers' sessions alone (I2).
        crate::sessions::brokers::register(&sessions).await?;
        let ended = match db.kind() {
            DatabaseKind::Sqlite => crate::sessions::close_orphans(&sessions).await?,
            DatabaseKind::Postgres => crate::sessions::brokers::reap_lost(&sessions).await?,
        };
        if ended > 0 {
            tracing::warn!(
                sessions = ended,
                "ended sessions a previous broker process held"
            );
        }
        tasks.push(tokio::spawn(lease(sessions.clone())));
        let (st, front) = (sessions.clone(), run.front.clone());
        tasks.push(tokio::spawn(async move {
            // Roles a previous process left are dropped before anyone can log in, so the
            // sweep never races a new session's role. Connections wait in the backlog.
            crate::sessions::postgres::sweep_all(&front).await;
            crate::sessions::front::serve(listener, st, front).await
        }));
        tasks.push(tokio::spawn(crate::sessions::watch_ends(sessions.clone())));
    }
    Ok(App {
        router: http::router(state.clone(), &config.limits),
        db,
        instance_id,
        state,
        tasks,
    })
}

/// A clean shutdown ends the sessions this broker carries (`broker_shutdown`), lets their
/// connections close and finish their recordings (bounded), and releases the lease.
async fn end_own_sessions(svc: &Sessions) {
    let ids = match crate::sessions::brokers::shutdown(svc).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::error!(error = %e, "could not end this broker's sessions at shutdown");
            return;
        }
    };
    for id in &ids {
        svc.live_sessions.signal(id, "broker_shutdown");
    }
    let deadline = tokio::time::Instant::now() + SESSIONS_CLOSE;
    while !ids.is_empty() && tokio::time::Instant::now() < deadline {
        if crate::sessions::brokers::all_closed(svc, &ids)
            .await
            .unwrap_or(false)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Renews this broker's lease and ends the sessions of brokers whose lease expired, every
/// [`brokers::RENEW_EVERY`]; ends the sessions this broker carries when it has not reached the
/// database for [`brokers::DB_GRACE`] (I5), or when the others already took it for dead. The
/// grace is watched by its own loop, so a database that hangs the renewal does not delay it.
async fn lease(sessions: Sessions) {
    use crate::sessions::brokers;
    sessions.heartbeat.beat();
    let watchdog = tokio::spawn(grace_watch(sessions.clone()));
    // Ends the watchdog with this task (the task is aborted at shutdown).
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _watchdog = AbortOnDrop(watchdog);
    let renewed = || sessions.heartbeat.beat();
    let mut every = tokio::time::interval(brokers::RENEW_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match tokio::time::timeout(brokers::RENEW_EVERY, brokers::renew(&sessions)).await {
            Ok(Ok(true)) => renewed(),
            Ok(Ok(false)) => {
                tracing::error!(
                    alert = true,
                    "the other brokers took this one for dead and ended its sessions; \
                     ending their connections and taking the lease back"
                );
                end_all(&sessions, "broker_lost");
                if brokers::revive(&sessions).await.is_ok() {
                    renewed();
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "lease renewal failed"),
            Err(_) => tracing::warn!("lease renewal timed out"),
        }
        if let Ok(Err(e)) =
            tokio::time::timeout(brokers::RENEW_EVERY, brokers::reap_lost(&sessions)).await
        {
            tracing::warn!(error = %e, "looking for lost brokers failed");
        }
    }
}

/// Every [`crate::sessions::brokers::WATCH_EVERY`]: once the last renewal is older than the
/// grace, every session this broker carries is told to end (once per outage in the log).
async fn grace_watch(sessions: Sessions) {
    use crate::sessions::brokers;
    let mut every = tokio::time::interval(brokers::WATCH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported = false;
    loop {
        every.tick().await;
        let since = sessions.heartbeat.silent_for().unwrap_or_default();
        if since < brokers::DB_GRACE {
            reported = false;
            continue;
        }
        let live = sessions.live_sessions.ids();
        if !live.is_empty() && !reported {
            reported = true;
            tracing::error!(
                alert = true,
                sessions = live.len(),
                "the database has been unreachable for the grace; ending every session"
            );
        }
        end_all(&sessions, "database_lost");
    }
}

/// Tells every connection this broker carries to end with `reason`; each closes its
/// recording and records its end (retrying until the database takes it).
fn end_all(sessions: &Sessions, reason: &str) {
    for id in sessions.live_sessions.ids() {
        sessions.live_sessions.signal(&id, reason);
    }
}

/// How often the grant clock runs: grants start, warn and end within this of their time (the
/// issue asks for 1 s; reads are exact regardless, see [`crate::elevation::effective`]).
pub const GRANT_TICK: Duration = Duration::from_millis(200);

/// Runs [`crate::elevation::tick`] forever. A failed tick (database briefly down) is logged
/// and retried at the next one.
async fn grant_clock(elevation: Elevation) {
    let mut every = tokio::time::interval(GRANT_TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = crate::elevation::tick(&elevation).await {
            tracing::warn!(error = %e, "grant clock tick failed");
        }
    }
}

/// Binds and serves `config` until `shutdown` resolves. Use [`BoundServer::bind`] instead when
/// the caller needs the bound address first.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    BoundServer::bind(&config).await?.run(shutdown).await
}
