//! [`TempPostgres`]: a real, throwaway PostgreSQL server for one test.
//!
//! PostgreSQL refuses to run as root and CI runs as root, so when the effective uid is 0 the
//! server-side binaries (`initdb`, `postgres`, `pg_ctl`) run as the `postgres` OS user through
//! `runuser`, in a temporary directory handed over to that user. Clients (`pg_isready`,
//! `createdb`) connect over TCP on 127.0.0.1 with a random password (SCRAM), the way the
//! broker will in production.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// Where Debian's `postgresql-NN` packages put the server binaries.
const DEBIAN_PG_LIB: &str = "/usr/lib/postgresql";
/// Overrides the binary directory (for machines with PostgreSQL elsewhere).
pub const PG_BIN_ENV: &str = "PAW_TEST_PG_BIN";
/// The OS user the server runs as when the tests run as root.
const PG_OS_USER: &str = "postgres";
/// Superuser created by `initdb`.
const SUPERUSER: &str = "paw";
/// Database created for the test.
const DATABASE: &str = "paw_test";
/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running PostgreSQL server in a temporary directory. Stopped and deleted on drop.
pub struct TempPostgres {
    bin: PathBuf,
    dir: Option<tempfile::TempDir>,
    data: PathBuf,
    port: u16,
    password: String,
    as_postgres_user: bool,
    /// The running server process; behind a lock so a shared `&TempPostgres` can
    /// [`TempPostgres::stop`] and [`TempPostgres::start_again`] it.
    child: Mutex<Option<Child>>,
}

impl TempPostgres {
    /// Finds the binaries, runs `initdb`, starts `postgres` on a free loopback port, waits until
    /// it accepts connections and creates the test database. Fails (never skips) if PostgreSQL
    /// is not installed.
    pub fn start() -> Result<Self> {
        let bin = find_bin_dir()?;
        let as_postgres_user = effective_uid()? == 0;
        if as_postgres_user {
            let ok = Command::new("id")
                .args(["-u", PG_OS_USER])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                bail!(
                    "tests run as root, and PostgreSQL refuses root, but there is no `{PG_OS_USER}` \
                     OS user to run it as; install the Debian `postgresql` package (it creates one)"
                );
            }
        }

        let dir = tempfile::Builder::new()
            .prefix("paw-pg-")
            .tempdir()
            .context("creating the PostgreSQL temp dir")?;
        let data = dir.path().join("data");
        let sockets = dir.path().join("sock");
        std::fs::create_dir(&sockets).context("creating the socket dir")?;
        let mut random = [0u8; 18];
        getrandom::getrandom(&mut random).map_err(|e| anyhow!("no randomness: {e}"))?;
        let password = hex::encode(random);
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, &password).context("writing the password file")?;
        if as_postgres_user {
            let out = Command::new("chown")
                .arg("-R")
                .arg(format!("{PG_OS_USER}:{PG_OS_USER}"))
                .arg(dir.path())
                .output()
                .context("running chown")?;
            ensure_success("chown", &out)?;
        }

        let mut pg = Self {
            bin,
            dir: Some(dir),
            data,
            port: 0,
            password,
            as_postgres_user,
            child: Mutex::new(None),
        };

        let out = pg
            .server_command("initdb")
            .arg("-D")
            .arg(&pg.data)
            .args([
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["--encoding=UTF8", "--no-locale", "--no-sync"])
            .output()
            .context("running initdb")?;
        ensure_success("initdb", &out)?;
        std::fs::remove_file(&pwfile).context("removing the password file")?;

        // A port can be taken between probing and binding; retry a few times.
        let mut last_error = None;
        for _ in 0..5 {
            pg.port = free_port()?;
            match pg.spawn_server(&sockets) {
                Ok(()) => {
                    last_error = None;
                    break;
                }
                Err(e) => {
                    pg.stop_server();
                    last_error = Some(e);
                }
            }
        }
        if let Some(e) = last_error {
            return Err(e);
        }

        let out = pg
            .client_command("createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                SUPERUSER,
                DATABASE,
            ])
            .output()
            .context("running createdb")?;
        ensure_success("createdb", &out)?;
        Ok(pg)
    }

    /// `postgres://paw:…@127.0.0.1:PORT/paw_test`. The password is random per server.
    pub fn url(&self) -> String {
        self.url_for(DATABASE)
    }

    /// The URL of another database on this server.
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// Creates another, empty database and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String> {
        let out = self
            .client_command("createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                name,
            ])
            .output()
            .context("running createdb")?;
        ensure_success("createdb", &out)?;
        Ok(self.url_for(name))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `sql` with `psql` as the superuser in the test database; returns its unaligned output.
    pub fn psql(&self, sql: &str) -> Result<String> {
        let out = self
            .client_command("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
            ])
            .args(["-d", DATABASE, "-v", "ON_ERROR_STOP=1", "-Atc", sql])
            .output()
            .context("running psql")?;
        ensure_success("psql", &out)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`, as a crash or a cut network
    /// would look to its clients): every connection drops and new ones are refused until
    /// [`TempPostgres::start_again`]. Does nothing if it is not running.
    ///
    /// What was committed before the call survives: this cluster runs with
    /// `synchronous_commit=off`, so an immediate stop alone would lose the last few hundred
    /// milliseconds of commits (still in the WAL buffers) and a test would blame its client for
    /// them. A `CHECKPOINT` first writes them out (best effort: a commit racing the stop may
    /// still be lost, as in a real crash).
    pub fn stop(&self) {
        if self.is_running().unwrap_or(false) {
            let _ = self.psql("CHECKPOINT");
        }
        self.stop_server();
    }

    /// Starts the stopped server again on the same data directory and port (after crash
    /// recovery, with everything committed before [`TempPostgres::stop`]) and waits until it
    /// accepts connections. Fails if it is already running.
    pub fn start_again(&self) -> Result<()> {
        if self.is_running()? {
            bail!("postgres is already running");
        }
        let sockets = self
            .dir()
            .map(|d| d.join("sock"))
            .ok_or_else(|| anyhow!("temp dir already removed"))?;
        if let Err(e) = self.spawn_server(&sockets) {
            self.stop_server();
            return Err(e);
        }
        Ok(())
    }

    /// Whether the server process started by this value is running.
    pub fn is_running(&self) -> Result<bool> {
        let mut child = self.lock_child();
        match child.as_mut() {
            Some(c) => Ok(c.try_wait().context("polling postgres")?.is_none()),
            None => Ok(false),
        }
    }

    /// The test database's name.
    pub fn database(&self) -> &'static str {
        DATABASE
    }

    /// The temporary directory holding the cluster; gone after drop.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.path())
    }

    fn log_path(&self) -> Option<PathBuf> {
        self.dir().map(|d| d.join("postgres.log"))
    }

    fn lock_child(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn spawn_server(&self, sockets: &Path) -> Result<()> {
        let log_path = self
            .log_path()
            .ok_or_else(|| anyhow!("temp dir already removed"))?;
        // Appended to, so a start after a stop keeps what the first run logged.
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .context("opening postgres.log")?;
        let log_err = log.try_clone().context("cloning the log handle")?;
        let child = self
            .server_command("postgres")
            .arg("-D")
            .arg(&self.data)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-k")
            .arg(sockets)
            // Durability is pointless for a throwaway cluster and fsync dominates test time.
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=100"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .context("starting postgres")?;
        *self.lock_child() = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.lock_child().as_mut() {
                if let Some(status) = child.try_wait().context("polling postgres")? {
                    bail!(
                        "postgres exited with {status} before accepting connections:\n{}",
                        read_tail(&log_path)
                    );
                }
            }
            let ready = self
                .client_command("pg_isready")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    SUPERUSER,
                ])
                .args(["-d", "postgres", "-t", "1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .context("running pg_isready")?;
            if ready.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "postgres did not accept connections within {START_TIMEOUT:?}:\n{}",
                    read_tail(&log_path)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A server-side binary, run as the `postgres` user when we are root.
    fn server_command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        let mut cmd = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", PG_OS_USER, "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        // The postgres user may not be able to enter the test's working directory.
        if let Some(dir) = self.dir() {
            cmd.current_dir(dir);
        }
        cmd.env("LC_ALL", "C");
        cmd
    }

    /// A client binary: any user may run it; authenticates with the password.
    fn client_command(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(name));
        cmd.env("PGPASSWORD", &self.password)
            .env("PGCONNECT_TIMEOUT", "5");
        cmd
    }

    fn stop_server(&self) {
        let Some(mut child) = self.lock_child().take() else {
            return;
        };
        // Immediate shutdown through pg_ctl, because signals to `runuser` are not reliably
        // passed on and SIGKILL to the postmaster would orphan its backends.
        let _ = self
            .server_command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "-t", "10"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
            }
        }
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        self.stop_server();
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

impl std::fmt::Debug for TempPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TempPostgres")
            .field("bin", &self.bin)
            .field("port", &self.port)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The newest `/usr/lib/postgresql/N/bin` that has `initdb` and `postgres`, or `$PAW_TEST_PG_BIN`.
fn find_bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(PG_BIN_ENV) {
        let dir = PathBuf::from(dir);
        if has_server_binaries(&dir) {
            return Ok(dir);
        }
        bail!("{PG_BIN_ENV}={} has no initdb and postgres", dir.display());
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_PG_LIB)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let version = e.file_name().to_str()?.parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    has_server_binaries(&bin).then_some((version, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    match candidates.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "PostgreSQL server binaries (initdb, postgres) not found under {DEBIAN_PG_LIB}/*/bin. \
             These tests need a real PostgreSQL: install the Debian package `postgresql` \
             (`cargo xtask` does this on a fresh machine) or set {PG_BIN_ENV}."
        ),
    }
}

fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "postgres", "pg_ctl", "pg_isready", "createdb"]
        .iter()
        .all(|b| dir.join(b).is_file())
}

/// The effective uid, from /proc so no unsafe libc call is needed.
fn effective_uid() -> Result<u32> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .ok_or_else(|| anyhow!("no Uid line in /proc/self/status"))
}

/// Below the ephemeral range, as every harness port ([`crate::free_port`]): PostgreSQL is
/// stopped and started again on its port by the outage tests.
fn free_port() -> Result<u16> {
    crate::free_port().context("probing for a free port")
}

fn ensure_success(what: &str, out: &Output) -> Result<()> {
    if out.status.success() {
        return Ok(());
    }
    bail!(
        "{what} failed with {}:\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn read_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
