//! The broker's side of the database: minting and dropping temporary login roles with the
//! admin credential.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgPool, PgPoolOptions};
use zeroize::Zeroizing;

use crate::names::{quoted, temp_role_name, utc_timestamp, validate_temp_role_name};
use crate::{validate_identifier, Error};

/// Every temporary role starts with this; nothing else is ever dropped or swept.
pub const TEMP_ROLE_PREFIX: &str = "paw_s_";
/// Concurrent connections one session's role may open (psql needs one, GUI tools a few).
pub const DEFAULT_CONNECTION_LIMIT: u32 = 4;
/// How long [`Admin::drop_temp_role`] keeps terminating backends before giving up.
const TERMINATE_BOUND: Duration = Duration::from_secs(10);
const TERMINATE_POLL: Duration = Duration::from_millis(50);
/// The admin pool stays small: it runs a handful of DDL statements per session.
const POOL_SIZE: u32 = 4;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// SQLSTATE undefined_object: the role vanished between two statements (a concurrent drop).
const UNDEFINED_OBJECT: &str = "42704";

/// The broker's database admin credential, as a connection pool.
#[derive(Clone)]
pub struct Admin {
    pool: PgPool,
    connection_limit: u32,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's options hold the admin password: print none of them.
        f.debug_struct("Admin")
            .field("connection_limit", &self.connection_limit)
            .finish_non_exhaustive()
    }
}

/// A temporary login role and its password. The password stays inside this crate: it is
/// used by [`crate::serve_client`] and zeroized on drop.
pub struct TempRole {
    pub(crate) name: String,
    pub(crate) password: Zeroizing<String>,
    valid_until_ms: i64,
}

impl TempRole {
    /// The role name, `paw_s_<session>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When the server stops accepting logins for it (Unix ms, the grant's end).
    pub fn valid_until_ms(&self) -> i64 {
        self.valid_until_ms
    }

    /// A vaulted login (the broker's vault holds its password) to log in as instead of a
    /// minted role. It is not temporary: nothing here drops it ([`Admin::drop_temp_role`]
    /// refuses a name without the `paw_s_` prefix), and the session's end closes its
    /// connections because the broker closes the spliced sockets.
    pub fn vaulted(
        name: &str,
        password: Zeroizing<String>,
        valid_until_ms: i64,
    ) -> Result<TempRole, Error> {
        crate::names::validate_identifier("role name", name)?;
        Ok(TempRole {
            name: name.to_owned(),
            password,
            valid_until_ms,
        })
    }
}

impl std::fmt::Debug for TempRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TempRole")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("valid_until_ms", &self.valid_until_ms)
            .finish()
    }
}

/// What [`Admin::drop_temp_role`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DropReport {
    /// Distinct backends of the role that were terminated.
    pub backends_terminated: usize,
}

impl Admin {
    /// Connects a small pool with the admin URL. The URL is never echoed in an error.
    pub async fn connect(admin_url: &str) -> Result<Admin, Error> {
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(admin_url)
            .await
            .map_err(|e| match e {
                // A malformed URL's message can quote the URL, password included.
                sqlx::Error::Configuration(_) => {
                    Error::bad_request("admin URL", "not a valid PostgreSQL URL")
                }
                other => Error::from(other),
            })?;
        Ok(Self::from_pool(pool))
    }

    /// Uses a pool the broker already has (it must be connected with the admin credential).
    pub fn from_pool(pool: PgPool) -> Admin {
        Admin {
            pool,
            connection_limit: DEFAULT_CONNECTION_LIMIT,
        }
    }

    /// Sets the `CONNECTION LIMIT` of roles created from now on (at least 1).
    pub fn with_connection_limit(mut self, limit: u32) -> Admin {
        self.connection_limit = limit.max(1);
        self
    }

    /// Creates `paw_s_<session>` as a login role that is a member of `granted_role`, with a
    /// fresh random password, valid until `valid_until_ms` (Unix ms, UTC).
    ///
    /// Refused before any SQL runs if a name is not a plain identifier (`bad_request`);
    /// refused if the granted role does not exist, is temporary itself, or is or can become a
    /// superuser through its own memberships (`forbidden`); `conflict` if the role exists.
    pub async fn create_temp_role(
        &self,
        session_id: &str,
        granted_role: &str,
        valid_until_ms: i64,
    ) -> Result<TempRole, Error> {
        let name = temp_role_name(session_id)?;
        validate_identifier("granted role", granted_role)?;
        if granted_role.starts_with(TEMP_ROLE_PREFIX) {
            return Err(Error::Forbidden(format!(
                "{granted_role:?} is a temporary role; grant a real role"
            )));
        }
        let valid_until = utc_timestamp(valid_until_ms)?;

        let mut raw = [0u8; 32];
        getrandom::getrandom(&mut raw)
            .map_err(|e| Error::Unavailable(format!("no randomness from the OS: {e}")))?;
        let password = Zeroizing::new(hex::encode(raw));
        zeroize::Zeroize::zeroize(&mut raw);
        // The server gets the SCRAM verifier, not the password, so log_statement and
        // pg_stat_statements can never record a usable secret.
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        if verifier.contains('\'') || verifier.contains('\\') {
            return Err(Error::Database(
                "password verifier has unexpected characters".into(),
            ));
        }

        let mut tx = self.pool.begin().await?;
        self.check_granted_role(&mut tx, granted_role).await?;
        let statement = format!(
            "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS \
             INHERIT CONNECTION LIMIT {} PASSWORD '{verifier}' VALID UNTIL '{valid_until}' \
             IN ROLE {}",
            quoted(&name),
            self.connection_limit,
            quoted(granted_role),
        );
        // Through the trait's boxed future: `RawSql::execute`'s own future cannot be proven
        // `Send` for every lifetime, so callers could not spawn this function.
        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(&statement)).await?;
        tx.commit().await?;
        tracing::info!(role = %name, granted = %granted_role, %valid_until, "temporary role created");
        Ok(TempRole {
            name,
            password,
            valid_until_ms,
        })
    }

    /// The granted role, and every role it can reach by membership (`SET ROLE` works along
    /// those edges whatever INHERIT says), must exist and not be superuser.
    async fn check_granted_role(
        &self,
        conn: &mut sqlx::PgConnection,
        granted_role: &str,
    ) -> Result<(), Error> {
        let rows: Vec<(String, bool)> = sqlx::query_as(
            "WITH RECURSIVE up(oid) AS ( \
                 SELECT oid FROM pg_roles WHERE rolname = $1 \
                 UNION \
                 SELECT m.roleid FROM pg_auth_members m JOIN up ON m.member = up.oid \
             ) \
             SELECT r.rolname::text, r.rolsuper FROM up JOIN pg_roles r ON r.oid = up.oid",
        )
        .bind(granted_role)
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            return Err(Error::Forbidden(format!(
                "granted role {granted_role:?} does not exist"
            )));
        }
        if let Some((superuser, _)) = rows.iter().find(|(_, is_super)| *is_super) {
            return Err(Error::Forbidden(if superuser == granted_role {
                format!("granted role {granted_role:?} is a superuser")
            } else {
                format!("granted role {granted_role:?} is a member of superuser {superuser:?}")
            }));
        }
        Ok(())
    }

    /// Ends the role's sessions and drops it. Blocks new logins first (NOLOGIN) so no session
    /// can slip in between terminating and dropping; then terminates backends until none is
    /// left (bounded by 10 s, else `timeout` and the role stays, NOLOGIN, for a later sweep);
    /// then reassigns what the role owns in this database to the admin (work done during a
    /// grant is kept) and drops its privileges and the role. A role already gone is `Ok`.
    pub async fn drop_temp_role(&self, role_name: &str) -> Result<DropReport, Error> {
        validate_temp_role_name(role_name)?;
        if !self.role_exists(role_name).await? {
            return Ok(DropReport::default());
        }
        let quoted_name = quoted(role_name);
        match sqlx::raw_sql(&format!("ALTER ROLE {quoted_name} NOLOGIN"))
            .execute(&self.pool)
            .await
        {
            Ok(_) => {}
            Err(e) if is_undefined_object(&e) => return Ok(DropReport::default()),
            Err(e) => return Err(e.into()),
        }

        let mut terminated = HashSet::new();
        let deadline = Instant::now() + TERMINATE_BOUND;
        loop {
            let rows: Vec<(i32, bool)> = sqlx::query_as(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE usename = $1 AND pid <> pg_backend_pid()",
            )
            .bind(role_name)
            .fetch_all(&self.pool)
            .await?;
            terminated.extend(rows.iter().filter(|(_, ok)| *ok).map(|(pid, _)| *pid));
            // pg_terminate_backend only signals: wait until the backends have really exited.
            tokio::time::sleep(TERMINATE_POLL).await;
            let left = self.backends_of(role_name).await?;
            if left == 0 {
                break;
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout(format!(
                    "{left} backend(s) of {role_name} still running after {TERMINATE_BOUND:?}"
                )));
            }
        }

        let mut tx = self.pool.begin().await?;
        for statement in [
            format!("REASSIGN OWNED BY {quoted_name} TO CURRENT_USER"),
            format!("DROP OWNED BY {quoted_name}"),
            format!("DROP ROLE IF EXISTS {quoted_name}"),
        ] {
            // Boxed through the trait, as in `create_temp_role`: keeps this future `Send`.
            match sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(&statement)).await {
                Ok(_) => {}
                // Dropped concurrently (another sweep): the goal is reached.
                Err(e) if is_undefined_object(&e) => {
                    return Ok(DropReport {
                        backends_terminated: terminated.len(),
                    })
                }
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        tracing::info!(role = %role_name, backends_terminated = terminated.len(), "temporary role dropped");
        Ok(DropReport {
            backends_terminated: terminated.len(),
        })
    }

    /// Temporary roles (prefix `paw_s_`) that exist now, sorted.
    pub async fn residual_roles(&self) -> Result<Vec<String>, Error> {
        let names: Vec<(String,)> = sqlx::query_as(
            "SELECT rolname::text FROM pg_roles WHERE left(rolname, $2) = $1 ORDER BY rolname",
        )
        .bind(TEMP_ROLE_PREFIX)
        .bind(i32::try_from(TEMP_ROLE_PREFIX.len()).unwrap_or(i32::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(names.into_iter().map(|(n,)| n).collect())
    }

    /// Drops every residual temporary role (start-up after a crash). Tries all of them and
    /// returns the first error, if any, after that.
    pub async fn sweep(&self) -> Result<usize, Error> {
        let mut dropped = 0;
        let mut first_error = None;
        for name in self.residual_roles().await? {
            if validate_temp_role_name(&name).is_err() {
                // Not one this crate could have minted: someone else's role, left alone.
                tracing::warn!(role = ?name, "role with the temporary prefix but a foreign name; not swept");
                continue;
            }
            match self.drop_temp_role(&name).await {
                Ok(_) => dropped += 1,
                Err(e) => {
                    tracing::warn!(role = %name, code = e.code(), error = %e, "sweep could not drop a temporary role");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(dropped),
        }
    }

    /// Server processes currently logged in as `role_name`, in any database.
    pub async fn backends_of(&self, role_name: &str) -> Result<usize, Error> {
        validate_identifier("role name", role_name)?;
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
        )
        .bind(role_name)
        .fetch_one(&self.pool)
        .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    async fn role_exists(&self, role_name: &str) -> Result<bool, Error> {
        let row: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_roles WHERE rolname = $1")
            .bind(role_name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }
}

fn is_undefined_object(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some(UNDEFINED_OBJECT))
}
