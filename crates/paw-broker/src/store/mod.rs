//! The broker's store: SQLite (embedded default) or PostgreSQL, chosen by the URL's scheme.
//!
//! Each backend has its own migration set (`migrations/sqlite`, `migrations/postgres`) because
//! their SQL dialects differ; queries are bound at run time, never checked against one database
//! at compile time.

use std::str::FromStr;
use std::time::Duration;

use paw_proto::http::DatabaseKind;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Connection;

use crate::base::error::{BrokerError, Result};
use crate::config::DatabaseUrl;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds. The body is compiled once per
/// backend, so one query text (with `$1`-style placeholders, which SQLite also accepts) serves
/// both without a runtime-typed `Any` driver.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}

/// `broker_meta` key of the id `pawd init` gives this broker.
pub const META_INSTANCE_ID: &str = "instance_id";

/// How long a request waits for a pooled connection before the database counts as down.
/// Short, so `/healthz` answers 503 promptly instead of hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long SQLite waits on a lock held by another connection before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether connecting may create a missing SQLite file. `pawd check` must not: a typo in the
/// path should be reported, not answered with a fresh empty database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    IfMissing,
    Never,
}

#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The SQLite file is for one broker (case I6): a serving `pawd` holds an exclusive lock on
/// `<database>.lock` for its lifetime, and a second one on the same file refuses to start. The
/// operating system drops the lock when the process ends, even by `kill -9`, so a restart is
/// never refused by a dead broker. Command-line tools (`pawd invite`, `unlock`) do not take
/// it: they work beside the running broker.
#[derive(Debug)]
pub struct SingleBroker {
    _file: std::fs::File,
}

impl SingleBroker {
    /// `None` for PostgreSQL, where several brokers are the point.
    pub fn acquire(url: &DatabaseUrl) -> Result<Option<Self>> {
        if url.kind()? != DatabaseKind::Sqlite {
            return Ok(None);
        }
        let options = SqliteConnectOptions::from_str(url.expose())
            .map_err(|e| BrokerError::Config(format!("database_url: {e}")))?;
        let db = options.get_filename();
        if db.as_os_str().is_empty() || db.as_os_str() == ":memory:" {
            return Ok(None);
        }
        let mut lock = db.as_os_str().to_owned();
        lock.push(".lock");
        let lock = std::path::PathBuf::from(lock);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|e| BrokerError::io(format!("cannot open {}", lock.display()), e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Err(BrokerError::Config(format!(
                "another pawd is serving {} (it holds the lock {}); SQLite is for one broker: \
                 run several brokers on PostgreSQL",
                db.display(),
                lock.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(BrokerError::io(
                format!("cannot lock {}", lock.display()),
                e,
            )),
        }
    }
}

impl Db {
    /// Opens a pool. Fails if the first connection fails, so a wrong URL is caught at start.
    pub async fn connect(url: &DatabaseUrl, create: Create) -> Result<Self> {
        let ctx = |e: sqlx::Error| BrokerError::Database(format!("{}: {e}", url.redacted()));
        match url.kind()? {
            DatabaseKind::Sqlite => {
                let mut options = SqliteConnectOptions::from_str(url.expose())
                    .map_err(ctx)?
                    .journal_mode(SqliteJournalMode::Wal)
                    // FULL: an acknowledged write (an audit record above all) survives power loss.
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT);
                if create == Create::Never {
                    options = options.create_if_missing(false);
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(ctx)?;
                Ok(Self::Sqlite(pool))
            }
            DatabaseKind::Postgres => {
                let options = PgConnectOptions::from_str(url.expose())
                    .map_err(ctx)?
                    .application_name("pawd");
                // One direct connection first: a pool retries until its timeout and then reports
                // only "timed out", hiding "connection refused" or "password authentication failed".
                PgConnection::connect_with(&options)
                    .await
                    .map_err(ctx)?
                    .close()
                    .await
                    .map_err(ctx)?;
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(ctx)?;
                Ok(Self::Postgres(pool))
            }
        }
    }

    pub fn kind(&self) -> DatabaseKind {
        match self {
            Self::Sqlite(_) => DatabaseKind::Sqlite,
            Self::Postgres(_) => DatabaseKind::Postgres,
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self {
            Self::Sqlite(_) => &SQLITE_MIGRATIONS,
            Self::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    /// Applies pending migrations. Safe to run concurrently: sqlx takes an advisory lock.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Self::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Self::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Versions this build ships that the database has not applied successfully.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>> {
        const APPLIED: &str = "SELECT version FROM _sqlx_migrations WHERE success = TRUE";
        let applied: Vec<i64> = match self {
            Self::Sqlite(pool) => sqlx::query_scalar(APPLIED).fetch_all(pool).await,
            Self::Postgres(pool) => sqlx::query_scalar(APPLIED).fetch_all(pool).await,
        }
        // No bookkeeping table means nothing was ever applied.
        .unwrap_or_default();
        Ok(self
            .migrator()
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect())
    }

    /// One round trip to the database.
    pub async fn ping(&self) -> Result<()> {
        match self {
            Self::Sqlite(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            Self::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    pub async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        let value = match self {
            Self::Sqlite(pool) => {
                sqlx::query_scalar("SELECT value FROM broker_meta WHERE key = ?")
                    .bind(key)
                    .fetch_optional(pool)
                    .await?
            }
            Self::Postgres(pool) => {
                sqlx::query_scalar("SELECT value FROM broker_meta WHERE key = $1")
                    .bind(key)
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(value)
    }

    /// Inserts or replaces a value.
    pub async fn put_meta(&self, key: &str, value: &str) -> Result<()> {
        match self {
            Self::Sqlite(pool) => {
                sqlx::query(
                    "INSERT INTO broker_meta (key, value) VALUES (?, ?) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key)
                .bind(value)
                .execute(pool)
                .await?;
            }
            Self::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO broker_meta (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key)
                .bind(value)
                .execute(pool)
                .await?;
            }
        }
        Ok(())
    }

    /// Inserts `value` unless `key` exists, and returns whichever value is stored, plus
    /// whether it was ours. One statement, so two brokers starting together agree.
    pub async fn put_meta_if_absent(&self, key: &str, value: &str) -> Result<(String, bool)> {
        let inserted = match self {
            Self::Sqlite(pool) => sqlx::query(
                "INSERT INTO broker_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(value)
            .execute(pool)
            .await?
            .rows_affected(),
            Self::Postgres(pool) => sqlx::query(
                "INSERT INTO broker_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(value)
            .execute(pool)
            .await?
            .rows_affected(),
        };
        let stored = self.get_meta(key).await?.ok_or_else(|| {
            BrokerError::Internal(format!("broker_meta.{key} vanished after insert"))
        })?;
        Ok((stored, inserted == 1))
    }

    /// The instance id, created on first call. Random 16 bytes, hex.
    pub async fn ensure_instance_id(&self) -> Result<(String, bool)> {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes)
            .map_err(|e| BrokerError::Internal(format!("no randomness: {e}")))?;
        self.put_meta_if_absent(META_INSTANCE_ID, &hex::encode(bytes))
            .await
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// A transaction on either database. Code that must run several statements atomically takes
/// `&mut Tx` and uses [`with_tx!`] to run each statement on the concrete transaction.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs `$body` with `$t` bound to the concrete `&mut sqlx::Transaction` inside a [`Tx`];
/// statements execute on `&mut **$t`.
#[macro_export]
macro_rules! with_tx {
    ($tx:expr, $t:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite($t) => $body,
            $crate::store::Tx::Postgres($t) => $body,
        }
    };
}

impl Db {
    /// Starts a transaction.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Db::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }
}

/// The PostgreSQL channel that announces a change ending sessions (a revocation, a kill, a
/// grant's end), so the broker carrying the connection acts at once rather than at its next
/// poll. The row is the record; the notice only wakes the watcher, and a notice lost while a
/// listener reconnects is found by the poll.
pub const SESSION_ENDS: &str = "paw_session_ends";

impl Db {
    /// A listener on `channel` (PostgreSQL); `None` on SQLite, where one broker is all there
    /// is and the change was made in this process.
    pub async fn listen(&self, channel: &str) -> Result<Option<sqlx::postgres::PgListener>> {
        match self {
            Db::Sqlite(_) => Ok(None),
            Db::Postgres(pool) => {
                let mut l = sqlx::postgres::PgListener::connect_with(pool).await?;
                l.listen(channel).await?;
                Ok(Some(l))
            }
        }
    }
}

impl Tx {
    /// Announces on `channel` when this transaction commits (PostgreSQL `pg_notify`; nothing
    /// on SQLite).
    pub async fn notify(&mut self, channel: &str) -> Result<()> {
        if let Tx::Postgres(t) = self {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(channel)
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn temp_db(dir: &tempfile::TempDir) -> Db {
        let url = DatabaseUrl::new(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("t.db").display()
        ));
        Db::connect(&url, Create::IfMissing).await.unwrap()
    }

    #[tokio::test]
    async fn migrations_and_meta_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let db = temp_db(&dir).await;
        // Every migration is pending on a new database (counted, so a new one does not break this).
        let all = SQLITE_MIGRATIONS.iter().count();
        assert!(all >= 6);
        assert_eq!(db.pending_migrations().await.unwrap().len(), all);
        db.migrate().await.unwrap();
        assert!(db.pending_migrations().await.unwrap().is_empty());
        db.ping().await.unwrap();
        assert_eq!(db.get_meta("k").await.unwrap(), None);
        db.put_meta("k", "v1").await.unwrap();
        db.put_meta("k", "v2").await.unwrap();
        assert_eq!(db.get_meta("k").await.unwrap().as_deref(), Some("v2"));
        let (id, new) = db.ensure_instance_id().await.unwrap();
        assert!(new);
        assert_eq!(id.len(), 32);
        assert_eq!(db.ensure_instance_id().await.unwrap(), (id, false));
    }

    #[tokio::test]
    async fn dollar_placeholders_work_on_sqlite_including_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let db = temp_db(&dir).await;
        db.migrate().await.unwrap();
        let Db::Sqlite(pool) = &db else { panic!() };
        let v: (i64, String, i64) = sqlx::query_as("SELECT $1, $2, $1 + 1")
            .bind(5i64)
            .bind("x")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(v, (5, "x".into(), 6));
    }

    #[tokio::test]
    async fn sqlite_pragmas_are_applied() {
        let dir = tempfile::tempdir().unwrap();
        let Db::Sqlite(pool) = temp_db(&dir).await else {
            panic!("expected sqlite")
        };
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .unwrap();
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&pool)
            .await
            .unwrap();
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!((mode.as_str(), sync, fk), ("wal", 2, 1));
    }

    #[tokio::test]
    async fn connect_never_create_does_not_make_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.db");
        let url = DatabaseUrl::new(format!("sqlite://{}?mode=rwc", path.display()));
        assert!(Db::connect(&url, Create::Never).await.is_err());
        assert!(!path.exists());
    }
}
