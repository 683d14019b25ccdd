//! All of the vault's SQL: accounts with their sealed secrets, the rotation journal's state and
//! log, and the checkout (a compare-and-set on the account's row, so two brokers cannot both
//! hand out an exclusive account).

use crate::audit::Entry;
use crate::store::{Db, Tx};
use crate::vault::error::Result;
use crate::{with_pool, with_tx};

/// An account's row. `secret` and `pending_secret` are sealed (never plaintext).
#[derive(Clone, sqlx::FromRow)]
pub struct AccountRow {
    pub id: String,
    pub target: String,
    pub account: String,
    pub kind: String,
    pub exclusive: bool,
    pub rules: String,
    pub change_command: Option<String>,
    pub authorized_keys: Option<String>,
    pub secret: String,
    pub version: i64,
    pub pending_secret: Option<String>,
    pub rotation_state: String,
    pub rotation_owner: Option<String>,
    pub rotation_lease_until: Option<i64>,
    pub last_rotated_at: Option<i64>,
    pub last_result: String,
    pub last_error: Option<String>,
    pub failing_since: Option<i64>,
    pub next_rotation_at: Option<i64>,
    pub rotate_after_checkout: bool,
    pub holder_grant: Option<String>,
    pub holder_user: Option<String>,
    pub holder_until: Option<i64>,
    pub created_at: i64,
}

impl std::fmt::Debug for AccountRow {
    /// Names only: the sealed columns stay out of every log line and panic message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRow")
            .field("id", &self.id)
            .field("name", &self.name())
            .field("version", &self.version)
            .field("rotation_state", &self.rotation_state)
            .finish_non_exhaustive()
    }
}

impl AccountRow {
    /// `target/account`: what a step-up binds and what people read.
    pub fn name(&self) -> String {
        format!("{}/{}", self.target, self.account)
    }
}

const COLUMNS: &str =
    "id, target, account, kind, exclusive, rules, change_command, authorized_keys, \
    secret, version, pending_secret, rotation_state, rotation_owner, rotation_lease_until, \
    last_rotated_at, last_result, last_error, failing_since, next_rotation_at, \
    rotate_after_checkout, holder_grant, holder_user, holder_until, created_at";

pub async fn all(db: &Db) -> Result<Vec<AccountRow>> {
    let sql = format!("SELECT {COLUMNS} FROM vault_accounts ORDER BY target, account");
    Ok(with_pool!(db, pool => sqlx::query_as::<_, AccountRow>(&sql).fetch_all(pool).await?))
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<AccountRow>> {
    let sql = format!("SELECT {COLUMNS} FROM vault_accounts WHERE id = $1");
    Ok(
        with_pool!(db, pool => sqlx::query_as::<_, AccountRow>(&sql).bind(id).fetch_optional(pool).await?),
    )
}

pub async fn by_name(db: &Db, target: &str, account: &str) -> Result<Option<AccountRow>> {
    let sql = format!("SELECT {COLUMNS} FROM vault_accounts WHERE target = $1 AND account = $2");
    Ok(with_pool!(db, pool => sqlx::query_as::<_, AccountRow>(&sql)
        .bind(target).bind(account).fetch_optional(pool).await?))
}

/// A new account (import), inside the caller's transaction.
pub async fn insert(tx: &mut Tx, row: &AccountRow) -> Result<()> {
    with_tx!(tx, t => {
        sqlx::query("INSERT INTO vault_accounts (id, target, account, kind, exclusive, rules, \
                     change_command, authorized_keys, secret, version, rotation_state, \
                     last_result, next_rotation_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'idle', 'never', $11, $12)")
            .bind(&row.id).bind(&row.target).bind(&row.account).bind(&row.kind)
            .bind(row.exclusive).bind(&row.rules).bind(&row.change_command)
            .bind(&row.authorized_keys).bind(&row.secret).bind(row.version)
            .bind(row.next_rotation_at).bind(row.created_at)
            .execute(&mut **t).await?;
    });
    Ok(())
}

/// Claims the checkout of `id` for `grant` (by `user`, until `until`): succeeds when nobody
/// holds it, the same grant holds it, its holder's time is over, or the account is not
/// exclusive. One statement, so it is atomic on either database. `false`: someone else holds it.
pub async fn claim(
    db: &Db,
    id: &str,
    grant: &str,
    user: &str,
    until: i64,
    now: i64,
) -> Result<bool> {
    let n = with_pool!(db, pool => sqlx::query(
        "UPDATE vault_accounts SET holder_grant = $2, holder_user = $3, holder_until = $4 \
         WHERE id = $1 AND (NOT exclusive OR holder_grant IS NULL OR holder_grant = $2 \
                            OR holder_until <= $5)")
        .bind(id).bind(grant).bind(user).bind(until).bind(now)
        .execute(pool).await?.rows_affected());
    Ok(n == 1)
}

/// Marks the account for rotation when its checkout ends (after a reveal, L4).
pub async fn rotate_after_checkout(tx: &mut Tx, id: &str) -> Result<()> {
    with_tx!(tx, t => {
        sqlx::query("UPDATE vault_accounts SET rotate_after_checkout = TRUE WHERE id = $1")
            .bind(id).execute(&mut **t).await?;
    });
    Ok(())
}

/// Ends checkouts whose time is over or whose grant is no longer active; returns the accounts
/// released that were marked for rotation after their checkout.
pub async fn release_ended(db: &Db, now: i64) -> Result<Vec<String>> {
    let ended: Vec<(String, bool)> = with_pool!(db, pool => sqlx::query_as(
        "SELECT a.id, a.rotate_after_checkout FROM vault_accounts a \
         LEFT JOIN grants g ON g.id = a.holder_grant \
         WHERE a.holder_grant IS NOT NULL AND (a.holder_until <= $1 OR g.id IS NULL \
               OR g.state NOT IN ('approved', 'active') OR (g.ends_at IS NOT NULL AND g.ends_at <= $1))")
        .bind(now).fetch_all(pool).await?);
    let mut due = Vec::new();
    for (id, rotate) in ended {
        let n = with_pool!(db, pool => sqlx::query(
            "UPDATE vault_accounts SET holder_grant = NULL, holder_user = NULL, holder_until = NULL, \
             next_rotation_at = CASE WHEN rotate_after_checkout THEN $2 ELSE next_rotation_at END \
             WHERE id = $1 AND holder_grant IS NOT NULL")
            .bind(&id).bind(now).execute(pool).await?.rows_affected());
        if n == 1 && rotate {
            due.push(id);
        }
    }
    Ok(due)
}

/// Rotation owners recorded on this host (`host/pid/nonce`), for the check that their process
/// is gone ([`clear_lease_of`]).
pub async fn owners(db: &Db) -> Result<Vec<String>> {
    Ok(with_pool!(db, pool => sqlx::query_scalar(
        "SELECT DISTINCT rotation_owner FROM vault_accounts WHERE rotation_owner IS NOT NULL")
        .fetch_all(pool).await?))
}

/// Frees the leases of a rotation owner whose process is gone (it was killed mid-rotation):
/// the reconciler takes its rotations over at once instead of waiting for the lease to end.
pub async fn clear_lease_of(db: &Db, owner: &str) -> Result<()> {
    with_pool!(db, pool => {
        sqlx::query("UPDATE vault_accounts SET rotation_owner = NULL, rotation_lease_until = NULL \
                     WHERE rotation_owner = $1")
            .bind(owner).execute(pool).await?;
    });
    Ok(())
}

/// Takes the rotation lease of `id` for `owner` until `lease_until`, if no other broker holds
/// a live one. `false`: someone else is rotating it.
pub async fn take_lease(
    db: &Db,
    id: &str,
    owner: &str,
    lease_until: i64,
    now: i64,
) -> Result<bool> {
    let n = with_pool!(db, pool => sqlx::query(
        "UPDATE vault_accounts SET rotation_owner = $2, rotation_lease_until = $3 \
         WHERE id = $1 AND (rotation_owner IS NULL OR rotation_owner = $2 OR rotation_lease_until <= $4)")
        .bind(id).bind(owner).bind(lease_until).bind(now)
        .execute(pool).await?.rows_affected());
    Ok(n == 1)
}

pub async fn drop_lease(db: &Db, id: &str, owner: &str) -> Result<()> {
    with_pool!(db, pool => {
        sqlx::query("UPDATE vault_accounts SET rotation_owner = NULL, rotation_lease_until = NULL \
                     WHERE id = $1 AND rotation_owner = $2")
            .bind(id).bind(owner).execute(pool).await?;
    });
    Ok(())
}

/// Accounts a rotation is due for: unsettled ones (a crash, a failure) whose lease is free, and
/// settled ones whose schedule has come and that nobody holds.
pub async fn due(db: &Db, now: i64) -> Result<Vec<String>> {
    Ok(with_pool!(db, pool => sqlx::query_scalar(
        "SELECT id FROM vault_accounts WHERE (rotation_lease_until IS NULL OR rotation_lease_until <= $1) \
         AND kind <> 'generic' \
         AND (rotation_state IN ('pending', 'applied', 'verified', 'reconciling') \
              OR (next_rotation_at IS NOT NULL AND next_rotation_at <= $1 AND holder_grant IS NULL)) \
         ORDER BY next_rotation_at")
        .bind(now).fetch_all(pool).await?))
}

/// One journal step: the state moves from `from` to `to` (only if it still is `from`, so a
/// second broker's step is never overwritten), with the columns that step sets, and its log row.
pub struct Step<'a> {
    pub id: &'a str,
    pub from: &'a str,
    pub event: &'a str,
    pub to: &'a str,
    pub detail: &'a str,
    pub now: i64,
}

/// Writes `step` and `set` (extra `column = value` assignments with their values bound from
/// $4 on), and `audit` when given, in one transaction. `false`: the state had moved (another
/// broker took over), and nothing was written.
pub async fn step(db: &Db, step: &Step<'_>, set: Set<'_>, audit: Option<Entry>) -> Result<bool> {
    let mut tx = db.begin().await?;
    if audit.is_some() {
        // First statement of the transaction, as everywhere the audit is written.
        crate::audit::lock(&mut tx).await?;
    }
    let moved = with_tx!(&mut tx, t => {
        let sql = format!(
            "UPDATE vault_accounts SET rotation_state = $3{} WHERE id = $1 AND rotation_state = $2",
            set.sql()
        );
        let mut q = sqlx::query(&sql).bind(step.id).bind(step.from).bind(step.to);
        for v in set.values() {
            q = match v {
                Val::Text(s) => q.bind(s.map(str::to_owned)),
                Val::Int(i) => q.bind(i),
                Val::Bool(b) => q.bind(b),
            };
        }
        q.execute(&mut **t).await?.rows_affected()
    });
    if moved != 1 {
        return Ok(false);
    }
    with_tx!(&mut tx, t => {
        sqlx::query("INSERT INTO vault_rotation_log (account_id, at, from_state, event, to_state, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(step.id).bind(step.now).bind(step.from).bind(step.event).bind(step.to)
            .bind(step.detail).execute(&mut **t).await?;
    });
    if let Some(entry) = audit {
        crate::audit::append(&mut tx, step.now, entry).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// A value bound into [`step`]'s extra assignments.
#[derive(Clone, Copy)]
pub enum Val<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Bool(bool),
}

/// Extra `column = value` assignments of one step. Column names are this module's constants,
/// never input.
#[derive(Default)]
pub struct Set<'a>(Vec<(&'static str, Val<'a>)>);

impl<'a> Set<'a> {
    pub fn with(mut self, column: &'static str, v: Val<'a>) -> Self {
        self.0.push((column, v));
        self
    }
    fn sql(&self) -> String {
        self.0
            .iter()
            .enumerate()
            .map(|(i, (c, _))| format!(", {c} = ${}", i + 4))
            .collect()
    }
    fn values(&self) -> impl Iterator<Item = Val<'a>> + '_ {
        self.0.iter().map(|(_, v)| *v)
    }
}
