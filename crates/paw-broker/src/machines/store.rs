//! All of machine identities' SQL except what identity and elevation own (keys as devices,
//! suspension inside a disable).

use paw_proto::machine::{MachineAuth, MachineSpec};

use crate::base::error::BrokerError;
use crate::machines::error::Result;
use crate::store::{Db, Tx};
use crate::{with_pool, with_tx};

/// A machine row joined with its user and owner names.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MachineRow {
    pub user_id: String,
    pub name: String,
    pub locked: bool,
    pub owner_name: Option<String>,
    pub owner_disabled_at: Option<i64>,
    pub backup_owner: Option<String>,
    pub purpose: String,
    pub environment: String,
    pub labels: String,
    pub auth_kind: String,
    pub oidc_issuer: Option<String>,
    pub oidc_claims: String,
    pub sources: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub suspended_at: Option<i64>,
    pub suspended_reason: Option<String>,
    pub last_used_at: Option<i64>,
    pub last_source: Option<String>,
}

impl MachineRow {
    pub fn claims(&self) -> std::collections::BTreeMap<String, String> {
        serde_json::from_str(&self.oidc_claims).unwrap_or_default()
    }
    pub fn sources(&self) -> Vec<String> {
        serde_json::from_str(&self.sources).unwrap_or_default()
    }
    pub fn labels(&self) -> std::collections::BTreeMap<String, String> {
        serde_json::from_str(&self.labels).unwrap_or_default()
    }
}

const COLS: &str = "m.user_id, u.name, u.locked, o.name AS owner_name, \
    o.disabled_at AS owner_disabled_at, m.backup_owner, m.purpose, m.environment, m.labels, \
    m.auth_kind, m.oidc_issuer, m.oidc_claims, m.sources, m.created_at, m.expires_at, \
    m.suspended_at, m.suspended_reason, m.last_used_at, m.last_source";
const FROM: &str = "FROM machines m JOIN users u ON u.id = m.user_id \
    LEFT JOIN users o ON o.id = m.owner_id";

fn json(v: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(|e| BrokerError::Internal(e.to_string()).into())
}

pub async fn insert(
    tx: &mut Tx,
    id: &str,
    owner_id: &str,
    spec: &MachineSpec,
    now: i64,
) -> Result<()> {
    let (auth_kind, issuer, claims) = match &spec.auth {
        MachineAuth::Key => ("key", None, json(&serde_json::Map::new())?),
        MachineAuth::Oidc { issuer, claims } => ("oidc", Some(issuer.clone()), json(claims)?),
    };
    with_tx!(tx, t => {
        sqlx::query("INSERT INTO users (id, name, roles, created_at, kind) VALUES ($1, $2, '[]', $3, 'machine')")
            .bind(id).bind(&spec.name).bind(now).execute(&mut **t).await?;
        sqlx::query("INSERT INTO machines (user_id, owner_id, backup_owner, purpose, environment, labels, \
                     auth_kind, oidc_issuer, oidc_claims, sources, spec_sha256, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
            .bind(id).bind(owner_id).bind(&spec.backup_owner).bind(&spec.purpose)
            .bind(&spec.environment).bind(json(&spec.labels)?).bind(auth_kind).bind(issuer)
            .bind(claims).bind(json(&spec.sources)?).bind(spec.sha256()).bind(now)
            .bind(spec.expires_at_ms)
            .execute(&mut **t).await?;
    });
    Ok(())
}

pub async fn by_name(db: &Db, name: &str) -> Result<Option<MachineRow>> {
    let q = format!("SELECT {COLS} {FROM} WHERE u.name = $1");
    Ok(
        with_pool!(db, pool => sqlx::query_as::<_, MachineRow>(&q).bind(name).fetch_optional(pool).await?),
    )
}

/// Every machine, or those `user` owns or backs up (by name or through a group of `policy`).
pub async fn list(
    db: &Db,
    visible_to: Option<(&str, &crate::elevation::policy::Policy)>,
) -> Result<Vec<MachineRow>> {
    let q = format!("SELECT {COLS} {FROM} ORDER BY u.name");
    let rows: Vec<MachineRow> =
        with_pool!(db, pool => sqlx::query_as::<_, MachineRow>(&q).fetch_all(pool).await?);
    Ok(match visible_to {
        None => rows,
        Some((user, policy)) => rows
            .into_iter()
            .filter(|r| {
                r.owner_name.as_deref() == Some(user)
                    || policy.backs_up(r.backup_owner.as_deref(), user)
            })
            .collect(),
    })
}

/// Machines whose workload tokens come from `issuer`.
pub async fn by_issuer(db: &Db, issuer: &str) -> Result<Vec<MachineRow>> {
    let q = format!(
        "SELECT {COLS} {FROM} WHERE m.auth_kind = 'oidc' AND m.oidc_issuer = $1 ORDER BY u.name"
    );
    Ok(
        with_pool!(db, pool => sqlx::query_as::<_, MachineRow>(&q).bind(issuer).fetch_all(pool).await?),
    )
}

pub async fn disabled(db: &Db, user_id: &str) -> Result<bool> {
    let at: Option<i64> = with_pool!(db, pool => sqlx::query_scalar(
        "SELECT disabled_at FROM users WHERE id = $1").bind(user_id).fetch_optional(pool).await?)
    .flatten();
    Ok(at.is_some())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub public_key: String,
    pub machine_id: String,
    pub source: String,
    pub created_at: i64,
    pub retire_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

pub async fn keys(db: &Db) -> Result<Vec<KeyRow>> {
    Ok(with_pool!(db, pool => sqlx::query_as::<_, KeyRow>(
        "SELECT public_key, machine_id, source, created_at, retire_at, last_used_at \
         FROM machine_keys ORDER BY created_at, public_key").fetch_all(pool).await?))
}

/// Open grants per machine, and the grant history the standing-privilege flag reads.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GrantSpan {
    pub user_id: String,
    pub state: String,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
}

pub async fn machine_grants(db: &Db, since: i64) -> Result<Vec<GrantSpan>> {
    Ok(with_pool!(db, pool => sqlx::query_as::<_, GrantSpan>(
        "SELECT g.user_id, g.state, g.starts_at, g.ends_at FROM grants g \
         JOIN machines m ON m.user_id = g.user_id \
         WHERE g.created_at >= $1 ORDER BY g.user_id, g.starts_at").bind(since).fetch_all(pool).await?))
}

/// The audit records that raise flags: the newest of each action per machine.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FlagRecord {
    pub subject: String,
    pub action: String,
    pub seq: i64,
    pub detail: String,
}

pub async fn flag_records(db: &Db) -> Result<Vec<FlagRecord>> {
    Ok(with_pool!(db, pool => sqlx::query_as::<_, FlagRecord>(
        "SELECT subject, action, MAX(seq) AS seq, MIN(detail) AS detail FROM audit_log \
         WHERE action IN ('machine_new_source', 'machine_source_refused', 'machine_interactive', \
                          'machine_pty_refused', 'machine_cross_environment') \
         GROUP BY subject, action").fetch_all(pool).await?))
}

/// Records that `machine_id` (of `environment`) logged in with `credential` (a public name:
/// `oidc:ISSUER#SUBJECT` or `key:PUBLIC_KEY`). Returns the other environments and machines that
/// credential was seen for, when this is the first time it is seen for this machine: the same
/// credential opening machines of different environments is reuse (NHI9), raised once.
pub async fn credential_seen(
    tx: &mut Tx,
    credential: &str,
    machine_id: &str,
    environment: &str,
    now: i64,
) -> Result<Vec<(String, String)>> {
    let updated = with_tx!(tx, t => sqlx::query(
        "UPDATE machine_credentials_seen SET last_seen = $3 WHERE credential = $1 AND machine_id = $2")
        .bind(credential).bind(machine_id).bind(now).execute(&mut **t).await?.rows_affected());
    if updated > 0 {
        return Ok(Vec::new());
    }
    let others: Vec<(String, String)> = with_tx!(tx, t => {
        sqlx::query("INSERT INTO machine_credentials_seen (credential, machine_id, environment, first_seen, last_seen) \
                     VALUES ($1, $2, $3, $4, $4)")
            .bind(credential).bind(machine_id).bind(environment).bind(now).execute(&mut **t).await?;
        sqlx::query_as("SELECT c.environment, u.name FROM machine_credentials_seen c \
                        JOIN users u ON u.id = c.machine_id \
                        WHERE c.credential = $1 AND c.environment <> $2 ORDER BY u.name")
            .bind(credential).bind(environment).fetch_all(&mut **t).await?
    });
    Ok(others)
}

/// Records a login from `source`; returns whether the machine had been seen elsewhere but
/// never from here (a new source, K5).
pub async fn sighting(tx: &mut Tx, machine_id: &str, source: &str, now: i64) -> Result<bool> {
    let (here, anywhere): (i64, i64) = with_tx!(tx, t => {
        sqlx::query_as("SELECT \
            (SELECT COUNT(*) FROM machine_sightings WHERE machine_id = $1 AND source = $2), \
            (SELECT COUNT(*) FROM machine_sightings WHERE machine_id = $1)")
            .bind(machine_id).bind(source).fetch_one(&mut **t).await?
    });
    with_tx!(tx, t => {
        if here == 0 {
            sqlx::query("INSERT INTO machine_sightings (machine_id, source, first_seen, last_seen) VALUES ($1, $2, $3, $3)")
                .bind(machine_id).bind(source).bind(now).execute(&mut **t).await?;
        } else {
            sqlx::query("UPDATE machine_sightings SET last_seen = $3 WHERE machine_id = $1 AND source = $2")
                .bind(machine_id).bind(source).bind(now).execute(&mut **t).await?;
        }
        sqlx::query("UPDATE machines SET last_used_at = $1, last_source = $2 WHERE user_id = $3")
            .bind(now).bind(source).bind(machine_id).execute(&mut **t).await?;
    });
    Ok(here == 0 && anywhere > 0)
}
