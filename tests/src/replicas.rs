//! [`Replicas`]: several real `pawd serve` processes on one real database (issue #14).
//!
//! One broker directory is made by a real `pawd init` (TLS CA and server certificate, witness
//! key, database migrated), so every replica shares the TLS identity, the signing keys, the SSH
//! CA and the database, as replicas behind a load balancer do. Each replica gets its own config
//! file next to `pawd.toml` (so relative paths resolve to the same shared files) that differs
//! only in `listen` and, with an sshd, `[sessions] ssh_listen`. Each one's stdout and stderr go
//! to a log file that [`Replicas::log`] reads and failures quote.
//!
//! The WebAuthn origin stays the one `pawd init` wrote (`https://localhost:PORT`, PORT a port
//! nobody listens on): it plays the load balancer's address, which every replica accepts in
//! assertions whichever replica receives them. [`Replicas::user`] makes clients that claim it.
//!
//! The `pawd` binary: `$PAW_TEST_PAWD` if set, else the harness runs
//! `cargo build -p paw-broker --bin pawd` once per test process into the target directory the
//! test binary itself lives in (a dev-dependency's binaries are not built for another package's
//! tests, and an old binary would test old code). It is built without the `virtual-key` feature:
//! the virtual key's attestation CA is trusted through the config, as an operator would trust
//! any other CA.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::postgres::TempPostgres;
use crate::sshd::TempSshd;
use crate::virtual_user::VirtualUser;

/// Overrides the `pawd` binary the harness runs (and skips building it).
pub const PAWD_ENV: &str = "PAW_TEST_PAWD";
/// The SSH target the harness configures when it starts an sshd.
pub const SSH_TARGET: &str = "web-1";
/// The same sshd as [`SSH_TARGET`], on a port where every session's shell is dash.
pub const DASH_TARGET: &str = "web-dash";
/// How long a replica may take to answer `/healthz` after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop` waits after SIGTERM (pawd gives in-flight requests 10 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Where `pawd init` puts the virtual key's CA when asked to (the same relative path).
const ATTESTATION_CA_FILE: &str = "webauthn/attestation-ca.pem";

/// Which database the replicas share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Store {
    /// One [`TempPostgres`].
    #[default]
    Postgres,
    /// The SQLite file `pawd init` makes in the broker directory (single-broker only).
    Sqlite,
}

/// What [`Replicas::start_with`] sets up.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Replicas configured and started (each waited for on `/healthz`), in order.
    pub replicas: usize,
    /// TOML merged into every replica's config: tables merge key by key, arrays (such as
    /// `[[entitlement]]`) are appended to, other values replace.
    pub extra_config: String,
    pub store: Store,
    /// Start a real sshd trusting the broker's SSH user CA, give every replica a `[sessions]`
    /// front door of its own and configure the sshd as target [`SSH_TARGET`].
    pub sshd: bool,
}

struct Replica {
    port: u16,
    ssh_port: Option<u16>,
    config: PathBuf,
    log: PathBuf,
    /// Extra environment for this replica's `pawd serve` ([`Replicas::set_env`]).
    env: Vec<(String, String)>,
    child: Option<Child>,
}

/// Real `pawd serve` processes sharing one broker directory and one database. Dropping it kills
/// every replica (SIGKILL), then stops the sshd and PostgreSQL.
pub struct Replicas {
    replicas: Vec<Replica>,
    pawd: PathBuf,
    base: toml::Table,
    dir: tempfile::TempDir,
    broker_dir: PathBuf,
    origin: String,
    rp_id: String,
    sshd: Option<TempSshd>,
    pg: Option<TempPostgres>,
}

impl Replicas {
    /// `n` replicas on one PostgreSQL, `extra_config` merged into each config.
    pub async fn start(n: usize, extra_config: &str) -> Result<Self> {
        Self::start_with(Options {
            replicas: n,
            extra_config: extra_config.to_owned(),
            ..Options::default()
        })
        .await
    }

    /// [`Replicas::start`] plus a real sshd as target [`SSH_TARGET`] and a front door each.
    pub async fn start_with_sshd(n: usize, extra_config: &str) -> Result<Self> {
        Self::start_with(Options {
            replicas: n,
            extra_config: extra_config.to_owned(),
            sshd: true,
            ..Options::default()
        })
        .await
    }

    pub async fn start_with(opts: Options) -> Result<Self> {
        install_crypto_provider();
        let pawd = pawd_binary()?;
        let pg = match opts.store {
            Store::Postgres => Some(TempPostgres::start()?),
            Store::Sqlite => None,
        };
        let dir = tempfile::Builder::new()
            .prefix("paw-replicas-")
            .tempdir()
            .context("creating the replicas' temp dir")?;
        let broker_dir = dir.path().join("broker");
        // The origin's port: the "load balancer" address the WebAuthn origin names.
        let origin_port = crate::free_port()?;
        let mut init = pawd_command(&pawd);
        init.arg("init")
            .arg("--dir")
            .arg(&broker_dir)
            .args(["--listen", &format!("127.0.0.1:{origin_port}")])
            .args(["--hostname", "localhost"]);
        if let Some(pg) = &pg {
            // The environment, not argv: the URL holds the password.
            init.env("PAWD_DATABASE_URL", pg.url());
        }
        let out = init.output().context("running pawd init")?;
        if !out.status.success() {
            bail!(
                "pawd init failed with {}:\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let init_config = broker_dir.join("pawd.toml");
        let text = std::fs::read_to_string(&init_config)
            .with_context(|| format!("reading {}", init_config.display()))?;
        let mut base: toml::Table = text.parse().context("parsing pawd init's config")?;

        // Trust the INSECURE virtual key: its CA and AAGUID, as `--trust-virtual-key` would.
        let ca = paw_fido::attestation::attestation_ca_pem()
            .map_err(|e| anyhow!("virtual key CA: {e}"))?;
        let ca_path = broker_dir.join(ATTESTATION_CA_FILE);
        std::fs::create_dir_all(ca_path.parent().unwrap_or(&broker_dir))?;
        std::fs::write(&ca_path, ca)?;
        let webauthn = base
            .get_mut("webauthn")
            .and_then(toml::Value::as_table_mut)
            .ok_or_else(|| anyhow!("pawd init wrote no [webauthn] table"))?;
        webauthn.insert(
            "attestation_ca".into(),
            toml::Value::Array(vec![ATTESTATION_CA_FILE.into()]),
        );
        webauthn.insert(
            "allowed_aaguids".into(),
            toml::Value::Array(vec![crate::aaguid_string(
                paw_fido::attestation::VIRTUAL_KEY_AAGUID,
            )
            .into()]),
        );
        let origin = webauthn
            .get("origin")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| anyhow!("no webauthn.origin"))?
            .to_owned();
        let rp_id = webauthn
            .get("rp_id")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| anyhow!("no webauthn.rp_id"))?
            .to_owned();

        let sshd = if opts.sshd {
            // The user CA every replica signs with, made before the sshd that trusts it.
            let ca_key = broker_dir.join("ssh_user_ca");
            let out = Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "paw replicas CA",
                    "-f",
                ])
                .arg(&ca_key)
                .output()
                .context("running ssh-keygen")?;
            if !out.status.success() {
                bail!("ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
            }
            let ca_pub = std::fs::read_to_string(ca_key.with_extension("pub"))?;
            let sshd = TempSshd::start(&ca_pub)?;
            let extra: toml::Table = format!(
                "[[target]]\nname = \"{SSH_TARGET}\"\nkind = \"ssh\"\naddress = \"{}\"\n\
                 host_key = \"{}\"\n\
                 [[target]]\nname = \"{DASH_TARGET}\"\nkind = \"ssh\"\naddress = \"{}\"\n\
                 host_key = \"{}\"\n",
                sshd.address(),
                sshd.host_key(),
                sshd.dash_address(),
                sshd.host_key()
            )
            .parse()?;
            merge(&mut base, extra);
            Some(sshd)
        } else {
            None
        };
        if !opts.extra_config.trim().is_empty() {
            let extra: toml::Table = opts.extra_config.parse().context("parsing extra_config")?;
            merge(&mut base, extra);
        }

        let mut me = Self {
            replicas: Vec::new(),
            pawd,
            base,
            dir,
            broker_dir,
            origin,
            rp_id,
            sshd,
            pg,
        };
        for _ in 0..opts.replicas {
            let i = me.add()?;
            me.spawn(i)?;
            me.wait_healthy(i).await?;
        }
        Ok(me)
    }

    /// Configures one more replica (its own ports and config file) without starting it.
    pub fn add(&mut self) -> Result<usize> {
        let i = self.replicas.len();
        let port = crate::free_port()?;
        let mut table = self.base.clone();
        table.insert("listen".into(), format!("127.0.0.1:{port}").into());
        let ssh_port = if self.sshd.is_some() {
            let p = crate::free_port()?;
            let sessions: toml::Table = format!("[sessions]\nssh_listen = \"127.0.0.1:{p}\"\n")
                .parse()
                .context("sessions table")?;
            merge(&mut table, sessions);
            Some(p)
        } else {
            None
        };
        let config = self.broker_dir.join(format!("replica-{i}.toml"));
        std::fs::write(&config, toml::to_string(&table)?)
            .with_context(|| format!("writing {}", config.display()))?;
        let log = self.dir.path().join(format!("replica-{i}.log"));
        self.replicas.push(Replica {
            port,
            ssh_port,
            config,
            log,
            env: Vec::new(),
            child: None,
        });
        Ok(i)
    }

    /// Starts replica `i`'s `pawd serve` (not waiting for it). Its output is appended to its log.
    pub fn spawn(&mut self, i: usize) -> Result<()> {
        let pawd = self.pawd.clone();
        let r = self.get_mut(i)?;
        if let Some(c) = r.child.as_mut() {
            if c.try_wait()?.is_none() {
                bail!("replica {i} is already running");
            }
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&r.log)
            .with_context(|| format!("opening {}", r.log.display()))?;
        let log_err = log.try_clone()?;
        let child = pawd_command(&pawd)
            .arg("serve")
            .arg("--config")
            .arg(&r.config)
            .envs(r.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .context("starting pawd serve")?;
        r.child = Some(child);
        Ok(())
    }

    /// Sets `key=value` in replica `i`'s environment from its next [`Replicas::spawn`] on: a
    /// shim such as libfaketime (`LD_PRELOAD`) that moves the broker's own clock (case E4).
    pub fn set_env(&mut self, i: usize, key: &str, value: &str) -> Result<()> {
        self.get_mut(i)?
            .env
            .push((key.to_owned(), value.to_owned()));
        Ok(())
    }

    /// Waits until replica `i` answers `GET /healthz` with 200; fails at once if it exits.
    pub async fn wait_healthy(&mut self, i: usize) -> Result<()> {
        let client = self.client()?;
        let url = format!("{}/healthz", self.url(i));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.exit_status(i)? {
                bail!(
                    "replica {i} exited with {status} before it was healthy:\n{}",
                    tail(&self.log(i))
                );
            }
            if let Ok(res) = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                if res.status() == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "replica {i} did not answer {url} within {START_TIMEOUT:?}:\n{}",
                    tail(&self.log(i))
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Replica `i`'s exit status if it has exited, `None` while it runs (or was never started).
    pub fn exit_status(&mut self, i: usize) -> Result<Option<ExitStatus>> {
        match self.get_mut(i)?.child.as_mut() {
            Some(c) => Ok(c.try_wait()?),
            None => Ok(None),
        }
    }

    /// Waits up to `limit` for replica `i` to exit on its own; `None` if it still runs.
    pub async fn wait_exit(&mut self, i: usize, limit: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.exit_status(i)? {
                return Ok(Some(s));
            }
            if Instant::now() > deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether replica `i`'s process is running.
    pub fn is_running(&mut self, i: usize) -> Result<bool> {
        Ok(self.get_mut(i)?.child.is_some() && self.exit_status(i)?.is_none())
    }

    /// The OS process id of replica `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.replicas.get(i)?.child.as_ref().map(Child::id)
    }

    /// `kill -9`: SIGKILL to replica `i`, then reaps it. Nothing of pawd runs after this.
    pub fn kill9(&mut self, i: usize) -> Result<()> {
        let r = self.get_mut(i)?;
        let mut child = r
            .child
            .take()
            .ok_or_else(|| anyhow!("replica {i} is not running"))?;
        child.kill().context("SIGKILL")?;
        child.wait().context("reaping the killed replica")?;
        Ok(())
    }

    /// SIGTERM to replica `i` and waits for its clean exit; returns its exit status.
    pub async fn stop(&mut self, i: usize) -> Result<ExitStatus> {
        let pid = self
            .pid(i)
            .ok_or_else(|| anyhow!("replica {i} is not running"))?;
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .context("running kill -TERM")?;
        if !sent.success() {
            bail!("kill -TERM {pid} failed");
        }
        match self.wait_exit(i, STOP_TIMEOUT).await? {
            Some(status) => {
                self.get_mut(i)?.child = None;
                Ok(status)
            }
            None => {
                let _ = self.kill9(i);
                bail!(
                    "replica {i} did not exit within {STOP_TIMEOUT:?} of SIGTERM:\n{}",
                    tail(&self.log(i))
                )
            }
        }
    }

    /// Stops replica `i` (SIGTERM) if it runs, starts it again on the same ports and config,
    /// and waits for `/healthz`.
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        if self.is_running(i)? {
            self.stop(i).await?;
        }
        self.spawn(i)?;
        self.wait_healthy(i).await
    }

    /// Lets workstations talk to each replica directly, without a load balancer: every
    /// replica's `webauthn.replica_origins` lists every replica's [`Replicas::direct_url`].
    /// Rewrites the configs of the replicas added so far; call it before starting them.
    pub fn allow_direct_origins(&mut self) -> Result<()> {
        let origins: Vec<toml::Value> = (0..self.replicas.len())
            .map(|i| self.direct_url(i).into())
            .collect();
        for r in &self.replicas {
            let text = std::fs::read_to_string(&r.config)
                .with_context(|| format!("reading {}", r.config.display()))?;
            let mut table: toml::Table = text.parse().context("parsing a replica's config")?;
            table
                .get_mut("webauthn")
                .and_then(toml::Value::as_table_mut)
                .ok_or_else(|| anyhow!("no [webauthn] table"))?
                .insert("replica_origins".into(), origins.clone().into());
            std::fs::write(&r.config, toml::to_string(&table)?)
                .with_context(|| format!("writing {}", r.config.display()))?;
        }
        Ok(())
    }

    /// `https://localhost:PORT` of replica `i`: the address a workstation uses for it directly,
    /// inside the WebAuthn RP ID (see [`Replicas::allow_direct_origins`]).
    pub fn direct_url(&self, i: usize) -> String {
        let port = self.replicas.get(i).map_or(0, |r| r.port);
        format!("https://localhost:{port}")
    }

    /// `https://127.0.0.1:PORT` of replica `i` (its certificate names 127.0.0.1).
    pub fn url(&self, i: usize) -> String {
        let port = self.replicas.get(i).map_or(0, |r| r.port);
        format!("https://127.0.0.1:{port}")
    }

    /// Replica `i`'s SSH front door, `127.0.0.1:PORT` (with an sshd only).
    pub fn ssh_addr(&self, i: usize) -> Option<String> {
        let port = self.replicas.get(i)?.ssh_port?;
        Some(format!("127.0.0.1:{port}"))
    }

    /// Everything replica `i` wrote to stdout and stderr so far, over all its starts.
    pub fn log(&self, i: usize) -> String {
        self.replicas
            .get(i)
            .and_then(|r| std::fs::read_to_string(&r.log).ok())
            .unwrap_or_default()
    }

    /// Replica `i`'s config file.
    pub fn config_path(&self, i: usize) -> Option<&Path> {
        self.replicas.get(i).map(|r| r.config.as_path())
    }

    /// The shared broker directory (`pawd init`'s `--dir`).
    pub fn broker_dir(&self) -> &Path {
        &self.broker_dir
    }

    /// The development CA every replica's certificate chains to.
    pub fn ca_path(&self) -> PathBuf {
        self.broker_dir.join("tls/ca.pem")
    }

    /// An HTTPS client trusting only the broker's CA.
    pub fn client(&self) -> Result<reqwest::Client> {
        install_crypto_provider();
        let pem = std::fs::read(self.ca_path()).context("reading the broker CA")?;
        Ok(reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem)?)
            .timeout(Duration::from_secs(20))
            .build()?)
    }

    /// [`Replicas::client`] whose connections leave from `local` (another loopback address,
    /// say): what a login from a second machine looks like to the broker.
    pub fn client_from(&self, local: std::net::IpAddr) -> Result<reqwest::Client> {
        install_crypto_provider();
        let pem = std::fs::read(self.ca_path()).context("reading the broker CA")?;
        Ok(reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem)?)
            .local_address(local)
            .timeout(Duration::from_secs(20))
            .build()?)
    }

    /// The WebAuthn origin every replica accepts.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// A new (not enrolled) INSECURE virtual-key user for these replicas.
    pub fn user(&self, name: &str) -> Result<VirtualUser> {
        VirtualUser::new(name, &self.rp_id, &self.origin, self.client()?)
    }

    /// `pawd invite NAME --role …` (a real process): the one-time enrollment code.
    pub fn invite(&self, name: &str, roles: &[&str]) -> Result<String> {
        let mut args = vec!["invite".to_owned(), name.to_owned()];
        for r in roles {
            args.push("--role".into());
            args.push((*r).to_owned());
        }
        let out = self.pawd(&args)?;
        if !out.status.success() {
            bail!(
                "pawd invite failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Two lines: what the code is for, then the code.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .map(|l| l.trim().to_owned())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| anyhow!("no code in pawd invite's output"))
    }

    /// Invites `name` with `roles`, enrolls on replica `enroll_on` and signs in there.
    pub async fn enrolled(
        &self,
        name: &str,
        roles: &[&str],
        enroll_on: usize,
    ) -> Result<VirtualUser> {
        let code = self.invite(name, roles)?;
        let mut user = self.user(name)?;
        let url = self.url(enroll_on);
        user.enroll(&url, &code).await?;
        user.login(&url).await?;
        Ok(user)
    }

    /// Runs `pawd ARGS… --config <replica 0's config>`: an operator command against the
    /// shared database (`invite`, `user disable`, `audit verify`, …).
    pub fn pawd(&self, args: &[String]) -> Result<std::process::Output> {
        let config = self
            .replicas
            .first()
            .map(|r| r.config.clone())
            .unwrap_or_else(|| self.broker_dir.join("pawd.toml"));
        pawd_command(&self.pawd)
            .args(args)
            .env("PAWD_CONFIG", config)
            .output()
            .context("running pawd")
    }

    /// [`Replicas::pawd`] with another config file (`PAWD_CONFIG`): an operator command run
    /// with, say, a replica's own config or one made from it.
    pub fn pawd_with(&self, config: &Path, args: &[String]) -> Result<std::process::Output> {
        pawd_command(&self.pawd)
            .args(args)
            .env("PAWD_CONFIG", config)
            .output()
            .context("running pawd")
    }

    /// The shared PostgreSQL (with [`Store::Postgres`]).
    pub fn pg(&self) -> Option<&TempPostgres> {
        self.pg.as_ref()
    }

    /// The sshd (with [`Options::sshd`]).
    pub fn sshd(&self) -> Option<&TempSshd> {
        self.sshd.as_ref()
    }

    /// How many replicas are configured.
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    fn get_mut(&mut self, i: usize) -> Result<&mut Replica> {
        let n = self.replicas.len();
        self.replicas
            .get_mut(i)
            .ok_or_else(|| anyhow!("no replica {i} (there are {n})"))
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        for r in &mut self.replicas {
            if let Some(mut c) = r.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl std::fmt::Debug for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicas")
            .field("dir", &self.broker_dir)
            .field(
                "ports",
                &self.replicas.iter().map(|r| r.port).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// reqwest is built without a default rustls provider; pawd's is ring, so the tests' is too.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `pawd` with no `PAWD_*` variable from the test's environment (pawd rejects unknown ones and
/// a stray `PAWD_DATABASE_URL` would point a replica at another database).
fn pawd_command(pawd: &Path) -> Command {
    let mut cmd = Command::new(pawd);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PAWD_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// `$PAW_TEST_PAWD`, or a freshly built `target/<profile>/pawd` (built once per process).
fn pawd_binary() -> Result<PathBuf> {
    static PAWD: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    PAWD.get_or_init(|| build_pawd().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn build_pawd() -> Result<PathBuf> {
    // The desktop e2e names its pawd too: building another here would replace the binary those
    // tests use (built with the workspace's features) with one built without them.
    for var in [PAWD_ENV, "PAW_E2E_PAWD"] {
        if let Some(p) = std::env::var_os(var) {
            let p = PathBuf::from(p);
            if !p.is_file() {
                bail!("{var}={} is not a file", p.display());
            }
            return Ok(p);
        }
    }
    // The test binary is target/<profile>/deps/<name>-<hash>.
    let exe = std::env::current_exe().context("locating the test binary")?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("unexpected test binary path {}", exe.display()))?;
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| anyhow!("unexpected test binary path {}", exe.display()))?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "paw-broker", "--bin", "pawd"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd
        .output()
        .context("running cargo build -p paw-broker --bin pawd")?;
    if !out.status.success() {
        bail!(
            "cargo build -p paw-broker --bin pawd failed (set {PAWD_ENV} to use a built pawd):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pawd = profile_dir.join("pawd");
    if !pawd.is_file() {
        bail!("cargo built pawd but {} is missing", pawd.display());
    }
    Ok(pawd)
}

/// Merges `extra` into `base`: tables recursively, arrays appended, other values replaced.
fn merge(base: &mut toml::Table, extra: toml::Table) {
    for (k, v) in extra {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(e)) => merge(b, e),
            (Some(toml::Value::Array(b)), toml::Value::Array(e)) => b.extend(e),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// The last 60 lines of a log, for failure messages.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// ada may have root on web-1 ([`SSH_TARGET`]) at once (automatic approval), two sessions per
/// grant: the policy most replica tests share.
pub const WEB_ROOT_POLICY: &str = r#"
[groups]
sre = ["ada"]

[[entitlement]]
id = "web-root"
description = "Root on the web servers"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
max_sessions = 2
"#;

/// ada's request for root on web-1 for 30 minutes, under [`WEB_ROOT_POLICY`].
pub fn request_web() -> paw_proto::action::Action {
    paw_proto::action::Action::Request {
        entitlement: "web-root".into(),
        target: SSH_TARGET.into(),
        role: "root".into(),
        duration_secs: 30 * 60,
        justification: "restart the stuck worker pool".into(),
        ticket: None,
        start_at_ms: None,
    }
}
