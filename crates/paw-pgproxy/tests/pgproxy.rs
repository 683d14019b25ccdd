//! paw-pgproxy against a real PostgreSQL (one throwaway server per test) and the real `psql`.
//! Security cases: C5 (grant end terminates backends and drops the role, nothing residual)
//! and C8 (names that look like options or carry quotes/newlines are refused before SQL).

use std::net::SocketAddr;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use paw_pgproxy::{serve_client, Admin, Error, Stats, TempRole};
use paw_tests::postgres::TempPostgres;
use postgres_protocol::message::{backend, frontend};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

const GRANTED: &str = "app_admin";
const DB: &str = "paw_test";
/// 2099-01-02T03:04:05.678Z
const VALID_UNTIL_MS: i64 = 4_070_919_845_678;

struct Fixture {
    pg: TempPostgres,
    admin: Admin,
    /// The test's own superuser pool, to inspect the catalog independently of `Admin`.
    sql: PgPool,
    server: SocketAddr,
}

impl Fixture {
    async fn start() -> Result<Fixture> {
        let pg = tokio::task::spawn_blocking(TempPostgres::start).await??;
        let admin = Admin::connect(&pg.url())
            .await
            .map_err(|e| anyhow!("{e}"))?;
        let sql = PgPoolOptions::new()
            .max_connections(2)
            .connect(&pg.url())
            .await?;
        sqlx::raw_sql(&format!("CREATE ROLE {GRANTED} NOLOGIN"))
            .execute(&sql)
            .await?;
        let server = SocketAddr::from(([127, 0, 0, 1], pg.port()));
        Ok(Fixture {
            pg,
            admin,
            sql,
            server,
        })
    }

    async fn role(&self, session: &str) -> Result<Arc<TempRole>> {
        let role = self
            .admin
            .create_temp_role(session, GRANTED, VALID_UNTIL_MS)
            .await
            .map_err(|e| anyhow!("create_temp_role: {e}"))?;
        Ok(Arc::new(role))
    }

    async fn role_exists(&self, name: &str) -> Result<bool> {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM pg_roles WHERE rolname = $1")
            .bind(name)
            .fetch_one(&self.sql)
            .await?;
        Ok(n > 0)
    }

    /// Every test ends here: no temporary role may survive it.
    async fn assert_clean(&self) -> Result<()> {
        let residual = self
            .admin
            .residual_roles()
            .await
            .map_err(|e| anyhow!("{e}"))?;
        if !residual.is_empty() {
            bail!("residual temporary roles: {residual:?}");
        }
        Ok(())
    }
}

/// A loopback listener that serves every accepted connection with `serve_client`, reporting
/// each result; `stop` (set to true) ends all live sessions.
struct Proxy {
    addr: SocketAddr,
    results: mpsc::UnboundedReceiver<Result<Stats, Error>>,
    stop: watch::Sender<bool>,
}

async fn start_proxy(server: SocketAddr, role: Arc<TempRole>, database: &str) -> Result<Proxy> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, results) = mpsc::unbounded_channel();
    let (stop, stop_rx) = watch::channel(false);
    let database = database.to_owned();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (tx, role, database, mut stop_rx) =
                (tx.clone(), role.clone(), database.clone(), stop_rx.clone());
            tokio::spawn(async move {
                let stop = async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                };
                let r = serve_client(stream, server, &role, &database, stop).await;
                let _ = tx.send(r);
            });
        }
    });
    Ok(Proxy {
        addr,
        results,
        stop,
    })
}

impl Proxy {
    async fn next_result(&mut self) -> Result<Result<Stats, Error>> {
        tokio::time::timeout(Duration::from_secs(15), self.results.recv())
            .await
            .context("serve_client did not return")?
            .context("proxy task ended")
    }
}

/// The real psql, argv only (no shell), with no password source at all: the proxy must log
/// in on the user's behalf. sslmode=prefer makes psql send an SSLRequest first.
fn psql(port: u16, database: &str, sql: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("/usr/bin/psql");
    cmd.args(["-X", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-d", database, "-U", "anyone", "-w", "-Atc", sql])
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE")
        .env("PGPASSFILE", "/nonexistent/paw-no-pgpass")
        .env("PGSSLMODE", "prefer")
        .env("PGCONNECT_TIMEOUT", "10")
        .kill_on_drop(true);
    cmd
}

async fn run(mut cmd: tokio::process::Command) -> Result<Output> {
    tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .context("psql timed out")?
        .context("running psql")
}

async fn wait_for_backends(admin: &Admin, role: &str, n: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = admin.backends_of(role).await.map_err(|e| anyhow!("{e}"))?;
        if now == n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{role} has {now} backends, expected {n}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_psql_logs_in_as_temp_role_after_ssl_request_with_no_password() -> Result<()> {
    let f = Fixture::start().await?;
    let role = f.role("e2e0001").await?;
    let mut proxy = start_proxy(f.server, role.clone(), DB).await?;

    let out = run(psql(
        proxy.addr.port(),
        DB,
        "select current_user, pg_has_role(current_user,'app_admin','member')",
    ))
    .await?;
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout(&out), format!("{}|t", role.name()));
    let stats = proxy.next_result().await?.map_err(|e| anyhow!("{e}"))?;
    assert!(
        stats.client_to_server > 0 && stats.server_to_client > 0,
        "{stats:?}"
    );

    // application_name is passed on; `options` (GUCs such as role or search_path) is dropped.
    let mut cmd = psql(
        proxy.addr.port(),
        DB,
        "select current_setting('application_name'), current_setting('search_path'), \
         session_user, current_user",
    );
    cmd.env("PGAPPNAME", "paw-e2e")
        .env("PGOPTIONS", "-c search_path=evil -c role=app_admin");
    let out = run(cmd).await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout(&out),
        format!("paw-e2e|\"$user\", public|{0}|{0}", role.name())
    );
    proxy.next_result().await?.map_err(|e| anyhow!("{e}"))?;

    let report = f
        .admin
        .drop_temp_role(role.name())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    assert_eq!(report.backends_terminated, 0);
    f.assert_clean().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c5_drop_terminates_live_psql_session_and_drops_the_role() -> Result<()> {
    let f = Fixture::start().await?;
    let role = f.role("c5live").await?;
    let mut proxy = start_proxy(f.server, role.clone(), DB).await?;

    let started = Instant::now();
    let child = psql(proxy.addr.port(), DB, "select pg_sleep(120)")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    wait_for_backends(&f.admin, role.name(), 1).await?;

    let report = f
        .admin
        .drop_temp_role(role.name())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    assert_eq!(report.backends_terminated, 1);
    assert_eq!(
        f.admin
            .backends_of(role.name())
            .await
            .map_err(|e| anyhow!("{e}"))?,
        0
    );
    assert!(!f.role_exists(role.name()).await?, "role still exists");

    // The live client sees its connection end, long before its query would have.
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .context("psql still running after the role was dropped")??;
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("terminat"), "psql said: {stderr}");
    // serve_client returned too: no half-open splice is left behind.
    proxy.next_result().await?.map_err(|e| anyhow!("{e}"))?;

    // A new login with the dropped role fails and is reported to the client.
    let out = run(psql(proxy.addr.port(), DB, "select 1")).await?;
    assert!(!out.status.success());
    let e = proxy
        .next_result()
        .await?
        .err()
        .context("login should fail")?;
    assert_eq!(e.code(), "upstream_auth_failed");

    // Idempotent: dropping again is fine and terminates nothing.
    let again = f
        .admin
        .drop_temp_role(role.name())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    assert_eq!(again.backends_terminated, 0);
    f.assert_clean().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c5_drop_keeps_objects_created_during_the_grant() -> Result<()> {
    let f = Fixture::start().await?;
    sqlx::raw_sql(&format!("GRANT CREATE ON SCHEMA public TO {GRANTED}"))
        .execute(&f.sql)
        .await?;
    let role = f.role("c5owner").await?;
    let mut proxy = start_proxy(f.server, role.clone(), DB).await?;
    let url = format!("postgres://anyone@127.0.0.1:{}/{DB}", proxy.addr.port());
    let mut conn = PgConnection::connect(&url).await?;
    sqlx::raw_sql("CREATE TABLE made_during_grant (x int)")
        .execute(&mut conn)
        .await?;

    let report = f
        .admin
        .drop_temp_role(role.name())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    assert_eq!(report.backends_terminated, 1);
    assert!(sqlx::query("select 1").execute(&mut conn).await.is_err());
    proxy.next_result().await?.map_err(|e| anyhow!("{e}"))?;
    let (owner,): (String,) = sqlx::query_as(
        "SELECT tableowner::text FROM pg_tables WHERE tablename = 'made_during_grant'",
    )
    .fetch_one(&f.sql)
    .await?;
    assert_eq!(owner, "paw");
    f.assert_clean().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c8_names_like_options_newlines_or_quotes_are_rejected_before_any_sql() -> Result<()> {
    // A pool on a port nothing listens on: any SQL would fail as `unavailable`, so getting
    // `bad_request` proves validation came first.
    let nowhere = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy("postgres://paw@127.0.0.1:1/paw_test")?;
    let admin = Admin::from_pool(nowhere);
    let evil = [
        "-oProxyCommand=x",
        "a\nb",
        "x\"; DROP ROLE paw; --",
        "a b",
        "",
    ];
    for name in evil {
        let e = admin
            .create_temp_role(name, GRANTED, VALID_UNTIL_MS)
            .await
            .err();
        assert_eq!(e.map(|e| e.code()), Some("bad_request"), "session {name:?}");
        let e = admin
            .create_temp_role("s1", name, VALID_UNTIL_MS)
            .await
            .err();
        assert_eq!(e.map(|e| e.code()), Some("bad_request"), "granted {name:?}");
        let e = admin.drop_temp_role(name).await.err();
        assert_eq!(e.map(|e| e.code()), Some("bad_request"), "drop {name:?}");
        let e = admin.backends_of(name).await.err();
        assert_eq!(
            e.map(|e| e.code()),
            Some("bad_request"),
            "backends {name:?}"
        );
    }
    // Only temporary roles may be dropped through this API.
    let e = admin.drop_temp_role("paw").await.err();
    assert_eq!(e.map(|e| e.code()), Some("bad_request"));
    let e = admin.create_temp_role("s1", GRANTED, -1).await.err();
    assert_eq!(e.map(|e| e.code()), Some("bad_request"));

    // serve_client refuses a bad database name before reading from the client or connecting.
    let f = Fixture::start().await?;
    let role = f.role("c8db").await?;
    for name in evil {
        let (client, _peer) = tokio::io::duplex(1024);
        let e = serve_client(client, f.server, &role, name, std::future::pending())
            .await
            .err();
        assert_eq!(
            e.map(|e| e.code()),
            Some("bad_request"),
            "database {name:?}"
        );
    }
    assert!(f.role_exists("paw").await?);
    f.admin
        .drop_temp_role(role.name())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    f.assert_clean().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_role_must_exist_and_not_be_or_reach_a_superuser() -> Result<()> {
    let f = Fixture::start().await?;
    // `sneaky` is a member of the superuser `paw`: SET ROLE paw would make a session superuser.
    sqlx::raw_sql("CREATE ROLE sneaky NOLOGIN IN ROLE paw; CREATE ROLE big SUPERUSER NOLOGIN")
        .execute(&f.sql)
        .await?;
    for granted in ["no_such_role", "paw", "big", "sneaky", "paw_s_other"] {
        let e = f
            .admin
            .create_temp_role("gr1", granted, VALID_UNTIL_MS)
            .await
            .err();
        assert_eq!(
            e.as_ref().map(|e| e.code()),
            Some("forbidden"),
            "{granted}: {e:?}"
        );
    }
    f.assert_clean().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temp_role_is_least_privilege_valid_until_grant_end_and_redacted() -> Result<()> {
    let f = Fixture::start().await?;
    let role = f.role("3F2504E0-4F89-11D3-9A0C-0305E82C3301").await?;
    assert_eq!(role.name(), "paw_s_3f2504e04f8911d39a0c0305e82c3301");

    let row: (Option<i64>, bool, bool, bool, bool, bool, bool, bool, i32) = sqlx::query_as(
        "SELECT (extract(epoch FROM rolvaliduntil) * 1000)::int8, rolsuper, rolcanlogin, \
         rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolinherit, rolconnlimit \
         FROM pg_roles WHERE rolname = $1",
    )
    .bind(role.name())
    .fetch_one(&f.sql)
    .await?;
    assert_eq!(
        row,
        (
            Some(VALID_UNTIL_MS),
            false,
            true,
            false,
            false,
            false,
            false,
            true,
            4
        )
    );
    let (member,): (bool,) = sqlx::query_as("SELECT pg_has_role($1, $2, 'member')")
        .bind(role.name())
        .bind(GRANTED)
        .fetch_one(&f.sql)
        .await?;
    assert!(member);
    // The server stores a SCRAM verifier, never the password itself.
    let (stored,): (String,) =
        sqlx::query_as("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
            .bind(role.name())
            .fetch_one(&f.sql)
            .await?;
    assert!(stored.starts_with("SCRAM-SHA-256$"), "{stored}");

    let debug = format!("{role:?}");
    assert!(debug.contains("<redacted>"), "{debug}");
    assert!(!has_hex_run(&debug, 64), "{debug}");

    // A reused session id is a conflict, not a second role.
    let e = f
        .admin
        .create_temp_role("3f2504e04f8911d39a0c0305e82c3301", GRANTED, VALID_UNTIL_MS)
        .await
        .err();
    assert_eq!(e.map(|e| e.code()), Some("conflict"));

    f.admin
        .drop_temp_role(role.name())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    f.assert_clean().await
}

fn has_hex_run(s: &str, n: usize) -> bool {
    let mut run = 0;
    for c in s.chars() {
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        if run >= n {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_database_is_refused_with_28000() -> Result<()> {
    let f = Fixture::start().await?;
    f.pg.create_database("other").map_err(|e| anyhow!("{e}"))?;
    let role = f.role("wrongdb").await?;

    // Raw client: SSLRequest, then a startup packet for another database.
    let (mut client, proxy_side) = tokio::io::duplex(64 * 1024);
    let server = f.server;
    let role2 = role.clone();
    let task = tokio::spawn(async move {
        serve_client(proxy_side, server, &role2, DB, std::future::pending()).await
    });
    let mut buf = BytesMut::new();
    frontend::ssl_request(&mut buf);
    client.write_all(&buf).await?;
    assert_eq!(client.read_u8().await?, b'N');
    buf.clear();
    frontend::startup_message([("user", "paw"), ("database", "other")], &mut buf)?;
    client.write_all(&buf).await?;
    let mut reply = Vec::new();
    client.read_to_end(&mut reply).await?;
    let mut reply = BytesMut::from(&reply[..]);
    let Some(backend::Message::ErrorResponse(body)) = backend::Message::parse(&mut reply)? else {
        bail!("expected an ErrorResponse");
    };
    let fields: Vec<(u8, String)> = body
        .fields()
        .map(|f| {
            Ok((
                f.type_(),
                String::from_utf8_lossy(f.value_bytes()).into_owned(),
            ))
        })
        .collect()?;
    assert!(fields.contains(&(b'C', "28000".to_owned())), "{fields:?}");
    let e = task.await?.err();
    assert_eq!(e.map(|e| e.code()), Some("wrong_database"));

    // And the real psql gets a clear message.
    let mut proxy = start_proxy(f.server, role.clone(), DB).await?;
    let out = run(psql(proxy.addr.port(), "other", "select 1")).await?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("granted for database \"paw_test\" only"),
        "{stderr}"
    );
    let e = proxy.next_result().await?.err();
    assert_eq!(e.map(|e| e.code()), Some("wrong_database"));

    f.admin
        .drop_temp_role(role.name())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    f.assert_clean().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_a_live_session_and_reports_bytes() -> Result<()> {
    let f = Fixture::start().await?;
    let role = f.role("stop1").await?;
    let mut proxy = start_proxy(f.server, role.clone(), DB).await?;
    let url = format!("postgres://anyone@127.0.0.1:{}/{DB}", proxy.addr.port());
    let mut conn = PgConnection::connect(&url).await?;
    let (who,): (String,) = sqlx::query_as("select current_user::text")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(who, role.name());

    proxy.stop.send(true)?;
    let stats = proxy.next_result().await?.map_err(|e| anyhow!("{e}"))?;
    assert!(
        stats.client_to_server > 0 && stats.server_to_client > 0,
        "{stats:?}"
    );
    assert!(sqlx::query("select 1").execute(&mut conn).await.is_err());
    wait_for_backends(&f.admin, role.name(), 0).await?;

    f.admin
        .drop_temp_role(role.name())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    f.assert_clean().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_startup_and_cancel_request_are_closed() -> Result<()> {
    let f = Fixture::start().await?;
    let role = f.role("bounds1").await?;

    let (mut client, proxy_side) = tokio::io::duplex(64 * 1024);
    client.write_all(&10_001i32.to_be_bytes()).await?;
    let e = serve_client(proxy_side, f.server, &role, DB, std::future::pending())
        .await
        .err();
    assert_eq!(e.map(|e| e.code()), Some("protocol"));

    let (mut client, proxy_side) = tokio::io::duplex(64 * 1024);
    let mut buf = BytesMut::new();
    frontend::cancel_request(1, 2, &mut buf);
    client.write_all(&buf).await?;
    let stats = serve_client(proxy_side, f.server, &role, DB, std::future::pending())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    assert_eq!(stats, Stats::default());
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await?;
    assert!(rest.is_empty());

    f.admin
        .drop_temp_role(role.name())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    f.assert_clean().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c5_sweep_drops_every_residual_role_after_a_crash() -> Result<()> {
    let f = Fixture::start().await?;
    let a = f.role("crash1").await?;
    let _b = f.role("crash2").await?;
    let mut proxy = start_proxy(f.server, a.clone(), DB).await?;
    let url = format!("postgres://anyone@127.0.0.1:{}/{DB}", proxy.addr.port());
    let mut conn = PgConnection::connect(&url).await?;
    sqlx::query("select 1").execute(&mut conn).await?;

    // A fresh Admin, as after a broker restart, knows nothing but the prefix.
    let restarted = Admin::connect(&f.pg.url())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    assert_eq!(
        restarted
            .residual_roles()
            .await
            .map_err(|e| anyhow!("{e}"))?,
        vec!["paw_s_crash1".to_owned(), "paw_s_crash2".to_owned()]
    );
    assert_eq!(restarted.sweep().await.map_err(|e| anyhow!("{e}"))?, 2);
    assert!(sqlx::query("select 1").execute(&mut conn).await.is_err());
    proxy.next_result().await?.map_err(|e| anyhow!("{e}"))?;
    assert_eq!(restarted.sweep().await.map_err(|e| anyhow!("{e}"))?, 0);
    f.assert_clean().await
}
