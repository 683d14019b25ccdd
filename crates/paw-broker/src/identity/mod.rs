//! Users, invites, security keys (credentials) and device keys, and enrollment.
//!
//! Rules:
//! - An invite code is 256 random bits shown once; only its SHA-256 is stored. It is single use
//!   (consumed by a conditional UPDATE inside the enrollment transaction) and expires in 24 h.
//! - Failed assertions that are evidence tied to the user's own key (see
//!   `stepup::verify`) are counted per user; the account locks at `auth.lock_after_failures`
//!   (≤ 100, case A14). Every failed attempt is throttled per source and per (user, source)
//!   ([`throttle`], case N1), which never locks anyone.

pub mod error;
pub mod keys;
pub mod machine_keys;
pub mod oidc;
pub mod stepup;
pub mod throttle;
pub mod tokens;
pub mod webauthn;

#[cfg(test)]
mod verify_tests;

use paw_proto::http::{
    EnrollFinishRequest, EnrollFinishResponse, EnrollStartRequest, EnrollStartResponse,
};
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{AttestedPasskey, Uuid};

use self::webauthn::{ChallengeRow, CHALLENGE_TTL_MS, PURPOSE_ENROLL};
use crate::base::error::BrokerError;
use crate::base::util::{new_id, random_secret, secret_hash};
use crate::config::AuthConfig;
use crate::identity::error::{IdentityError, Result};
use crate::store::Db;
use crate::{with_pool, with_tx};

use std::sync::Arc;

use crate::base::clock::Clock;

/// Identity as a service: enrolment, login, tokens, step-up and security keys. It owns what
/// they need and nothing else: the store, the broker's clock, the WebAuthn relying party and
/// the session lifetimes.
#[derive(Clone)]
pub struct Identity {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub rp: Arc<webauthn::RelyingParty>,
    pub auth: AuthConfig,
}

/// How long an invite code is valid.
pub const INVITE_TTL_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub name: String,
    pub roles: String,
    pub locked: bool,
    pub failed_attempts: i64,
    pub last_failure_at: Option<i64>,
    /// `human` or `machine` ([`machine_keys::MACHINE`]).
    pub kind: String,
}

impl User {
    pub fn is_machine(&self) -> bool {
        self.kind == machine_keys::MACHINE
    }

    pub fn roles(&self) -> Vec<String> {
        serde_json::from_str(&self.roles).unwrap_or_default()
    }

    pub fn uuid(&self) -> Result<Uuid> {
        Uuid::parse_str(&self.id)
            .map_err(|e| BrokerError::Internal(format!("user id: {e}")))
            .map_err(Into::into)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CredentialRow {
    pub id: String,
    pub user_id: String,
    pub cred_id: String,
    pub name: String,
    pub passkey_json: String,
    pub counter: i64,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub locked_at: Option<i64>,
}

impl CredentialRow {
    pub fn passkey(&self) -> Result<AttestedPasskey> {
        webauthn::from_json(&self.passkey_json).map_err(Into::into)
    }
}

pub use crate::base::util::{validate_name, MAX_NAME};

/// A display name for a security key: printable, bounded.
pub fn validate_key_name(name: &str) -> Result<()> {
    if name.trim().is_empty()
        || name.chars().count() > MAX_NAME
        || name.chars().any(char::is_control)
    {
        return Err(IdentityError::BadRequest(format!(
            "name must be 1–{MAX_NAME} printable characters"
        )));
    }
    Ok(())
}

const USER_COLS: &str = "id, name, roles, locked, failed_attempts, last_failure_at, kind";
const CRED_COLS: &str =
    "id, user_id, cred_id, name, passkey_json, counter, created_at, revoked_at, locked_at";

pub async fn user_by_name(db: &Db, name: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {USER_COLS} FROM users WHERE name = $1");
    Ok(
        with_pool!(db, pool => sqlx::query_as::<_, User>(&sql).bind(name).fetch_optional(pool).await?),
    )
}

pub async fn user_by_id(db: &Db, id: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
    Ok(with_pool!(db, pool => sqlx::query_as::<_, User>(&sql).bind(id).fetch_optional(pool).await?))
}

pub async fn credentials(db: &Db, user_id: &str) -> Result<Vec<CredentialRow>> {
    let sql =
        format!("SELECT {CRED_COLS} FROM credentials WHERE user_id = $1 ORDER BY created_at, id");
    Ok(
        with_pool!(db, pool => sqlx::query_as::<_, CredentialRow>(&sql).bind(user_id).fetch_all(pool).await?),
    )
}

/// Credentials that may sign: neither revoked nor locked.
pub async fn usable_credentials(db: &Db, user_id: &str) -> Result<Vec<CredentialRow>> {
    Ok(credentials(db, user_id)
        .await?
        .into_iter()
        .filter(|c| c.revoked_at.is_none() && c.locked_at.is_none())
        .collect())
}

pub async fn device_key_registered(db: &Db, user_id: &str, key: &str) -> Result<bool> {
    let n: i64 = with_pool!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM device_keys WHERE user_id = $1 AND public_key = $2")
        .bind(user_id).bind(key).fetch_one(pool).await?);
    Ok(n > 0)
}

/// `pawd invite`: makes a one-time enrollment code for a new user. Returns the code; only its
/// hash is stored.
pub async fn create_invite(
    db: &Db,
    now_ms: i64,
    user: &str,
    roles: &[String],
) -> Result<(String, i64)> {
    validate_name("user", user)?;
    for r in roles {
        validate_name("role", r)?;
    }
    if user_by_name(db, user).await?.is_some() {
        return Err(IdentityError::Conflict(format!(
            "user {user} exists already"
        )));
    }
    let code = random_secret()?;
    let expires_at = now_ms + INVITE_TTL_MS;
    let roles_json =
        serde_json::to_string(roles).map_err(|e| BrokerError::Internal(e.to_string()))?;
    // Roles decide who may revoke, review and request: granting them is audited with the
    // invite, in the same transaction.
    let mut tx = db.begin().await?;
    crate::audit::lock(&mut tx).await?;
    crate::with_tx!(&mut tx, t => {
        sqlx::query("INSERT INTO invites (code_hash, user_name, roles, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)")
            .bind(secret_hash(&code)).bind(user).bind(&roles_json).bind(now_ms).bind(expires_at)
            .execute(&mut **t).await?;
    });
    crate::audit::append(
        &mut tx,
        now_ms,
        crate::audit::Entry::new(
            "pawd (cli)",
            "invite_created",
            user,
            paw_audit::Outcome::Success,
            serde_json::json!({ "roles": roles, "expires_at": expires_at }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((code, expires_at))
}

#[derive(Debug, sqlx::FromRow)]
struct Invite {
    user_name: String,
}

/// What the enrollment's finish step needs besides the webauthn state.
#[derive(Debug, Serialize, Deserialize)]
struct EnrollContext {
    code_hash: String,
    user_id: String,
    device_public_key: String,
}

pub fn validate_device_key(key: &str) -> Result<()> {
    if crate::crypto::proof_keys::ProofKey::parse(key).is_some() {
        Ok(())
    } else {
        Err(IdentityError::BadRequest(
            "device_public_key must be base64url: an Ed25519 key (32 bytes) or a compressed P-256 key (33 bytes)".into(),
        ))
    }
}

/// `POST /v1/enroll/start`.
pub async fn enroll_start(svc: &Identity, req: &EnrollStartRequest) -> Result<EnrollStartResponse> {
    validate_device_key(&req.device_public_key)?;
    let now = svc.clock.now_ms();
    let code_hash = secret_hash(&req.code);
    let invite = with_pool!(&svc.db, pool => sqlx::query_as::<_, Invite>(
        "SELECT user_name FROM invites WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2")
        .bind(&code_hash).bind(now).fetch_optional(pool).await?)
    .ok_or_else(|| IdentityError::InviteInvalid("the enrollment code is unknown, used or expired".into()))?;
    let user_id = Uuid::new_v4();
    let (options, challenge, state_json) =
        svc.rp
            .start_registration(user_id, &invite.user_name, Vec::new())?;
    let context = serde_json::to_string(&EnrollContext {
        code_hash,
        user_id: user_id.to_string(),
        device_public_key: req.device_public_key.clone(),
    })
    .map_err(|e| BrokerError::Internal(e.to_string()))?;
    webauthn::insert_challenge(
        &svc.db,
        &ChallengeRow {
            challenge: challenge.clone(),
            user_id: None,
            purpose: PURPOSE_ENROLL.to_owned(),
            action_hash: String::new(),
            state_json,
            context,
            expires_at: now + CHALLENGE_TTL_MS,
        },
    )
    .await?;
    Ok(EnrollStartResponse {
        ceremony_id: challenge,
        user: invite.user_name,
        options,
    })
}

/// `POST /v1/enroll/finish`: verifies the registration, then in one transaction consumes the
/// invite and creates the user, the security key and the device key.
pub async fn enroll_finish(
    svc: &Identity,
    req: &EnrollFinishRequest,
) -> Result<EnrollFinishResponse> {
    validate_key_name(&req.name)?;
    let now = svc.clock.now_ms();
    let row = webauthn::take_challenge(&svc.db, &req.ceremony_id, now)
        .await?
        .filter(|r| r.purpose == PURPOSE_ENROLL)
        .ok_or_else(|| {
            IdentityError::ChallengeInvalid("unknown or used enrollment ceremony".into())
        })?;
    webauthn::check_not_expired(&row, now)?;
    let ctx: EnrollContext = webauthn::from_json(&row.context)?;
    let passkey = svc
        .rp
        .finish_registration(&req.credential, &row.state_json)?;
    let key_id = new_id();
    let cred_id = webauthn::cred_id_b64(&passkey);
    let passkey_json = webauthn::to_json(&passkey)?;
    // One audited transaction: the account and its roles exist only with their record.
    let mut tx = svc.db.begin().await?;
    crate::audit::lock(&mut tx).await?;
    let (user, roles) = crate::with_tx!(&mut tx, t => {
        let invite = sqlx::query_as::<_, (String, String)>(
            "UPDATE invites SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL \
             AND expires_at > $1 RETURNING user_name, roles")
            .bind(now).bind(&ctx.code_hash).fetch_optional(&mut **t).await?;
        let Some((user_name, roles)) = invite else {
            return Err(IdentityError::InviteInvalid("the enrollment code is unknown, used or expired".into()));
        };
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE name = $1")
            .bind(&user_name).fetch_one(&mut **t).await?;
        if exists > 0 {
            return Err(IdentityError::Conflict(format!("user {user_name} exists already")));
        }
        let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM credentials WHERE cred_id = $1")
            .bind(&cred_id).fetch_one(&mut **t).await?;
        if taken > 0 {
            return Err(IdentityError::Conflict("this security key is registered already".into()));
        }
        sqlx::query("INSERT INTO users (id, name, roles, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&ctx.user_id).bind(&user_name).bind(&roles).bind(now)
            .execute(&mut **t).await?;
        sqlx::query("INSERT INTO credentials (id, user_id, cred_id, name, passkey_json, counter, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&key_id).bind(&ctx.user_id).bind(&cred_id).bind(&req.name).bind(&passkey_json)
            .bind(0i64).bind(now).execute(&mut **t).await?;
        sqlx::query("INSERT INTO device_keys (user_id, public_key, created_at) VALUES ($1, $2, $3)")
            .bind(&ctx.user_id).bind(&ctx.device_public_key).bind(now)
            .execute(&mut **t).await?;
        (user_name, roles)
    });
    crate::audit::append(
        &mut tx,
        now,
        crate::audit::Entry::new(
            &user,
            "user_enrolled",
            &user,
            paw_audit::Outcome::Success,
            serde_json::json!({ "roles": serde_json::from_str::<serde_json::Value>(&roles).unwrap_or_default(), "key_id": key_id }),
        ),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user = %user, key_id = %key_id, "user enrolled");
    Ok(EnrollFinishResponse { user, key_id })
}

/// Adds a security key to an existing user (after registration and step-up were verified).
pub async fn insert_credential(
    db: &Db,
    now: i64,
    user_id: &str,
    name: &str,
    passkey: &AttestedPasskey,
) -> Result<String> {
    let key_id = new_id();
    let cred_id = webauthn::cred_id_b64(passkey);
    let passkey_json = webauthn::to_json(passkey)?;
    let inserted = with_pool!(db, pool => sqlx::query(
        "INSERT INTO credentials (id, user_id, cred_id, name, passkey_json, counter, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (cred_id) DO NOTHING")
        .bind(&key_id).bind(user_id).bind(&cred_id).bind(name).bind(&passkey_json)
        .bind(0i64).bind(now).execute(pool).await?.rows_affected());
    if inserted == 0 {
        return Err(IdentityError::Conflict(
            "this security key is registered already".into(),
        ));
    }
    Ok(key_id)
}

/// Refuses a step-up start while the user is locked. The caller is that user, signed in, so
/// this tells nobody else anything; a login start does not ask (N2).
pub fn check_attempt_allowed(user: &User) -> Result<()> {
    if user.locked {
        return Err(IdentityError::AccountLocked(
            "the account is locked; ask an administrator".into(),
        ));
    }
    Ok(())
}

/// Counts a failed assertion that is evidence tied to the user's own key, and locks the
/// account at the threshold. Returns whether it is
/// now locked. A locked account's sessions end with it (case B9), in the same transaction:
/// the front doors see `ended_at` and close them (`sessions::watch_ends`).
pub async fn record_failure(db: &Db, cfg: &AuthConfig, user_id: &str, now: i64) -> Result<bool> {
    let mut tx = db.begin().await?;
    let row: Option<(i64, bool)> = with_tx!(&mut tx, t => sqlx::query_as(
        "UPDATE users SET failed_attempts = failed_attempts + 1, last_failure_at = $1, \
         locked = (locked OR failed_attempts + 1 >= $2) WHERE id = $3 \
         RETURNING failed_attempts, locked")
        .bind(now).bind(i64::from(cfg.lock_after_failures)).bind(user_id)
        .fetch_optional(&mut **t).await?);
    let locked = row.is_some_and(|(_, l)| l);
    if locked {
        with_tx!(&mut tx, t => {
            sqlx::query(
                "UPDATE session_tickets SET ended_at = $1, end_reason = 'locked' \
                 WHERE ended_at IS NULL AND grant_id IN (SELECT id FROM grants WHERE user_id = $2)")
                .bind(now).bind(user_id).execute(&mut **t).await?;
        });
        tx.notify(crate::store::SESSION_ENDS).await?;
    }
    tx.commit().await?;
    if let Some((n, true)) = row {
        if n == i64::from(cfg.lock_after_failures) {
            tracing::warn!(
                alert = true,
                user_id,
                failures = n,
                "account locked after repeated failures"
            );
        }
    }
    Ok(locked)
}

pub async fn reset_failures(db: &Db, user_id: &str) -> Result<()> {
    with_pool!(db, pool => {
        sqlx::query("UPDATE users SET failed_attempts = 0, last_failure_at = NULL WHERE id = $1")
            .bind(user_id).execute(pool).await?;
    });
    Ok(())
}

/// What `pawd unlock` changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockReport {
    /// The account was locked (or had failures counted) and is now clear.
    pub account_unlocked: bool,
    /// The security key that was unlocked, when one was named.
    pub key_unlocked: Option<String>,
    /// Security keys of the user that stay locked (ids), for the administrator to decide on.
    pub keys_still_locked: Vec<String>,
}

/// An administrator's unlock: clears the account's lock and failure count, and, when `key`
/// names one of the user's security keys (by id), that key's counter-regression lock. A key
/// locked for a counter that went backwards may be a clone; unlocking it is a deliberate,
/// separate decision, so it happens only when named.
pub async fn unlock(db: &Db, user_name: &str, key: Option<&str>) -> Result<UnlockReport> {
    let user = user_by_name(db, user_name)
        .await?
        .ok_or_else(|| IdentityError::NotFound("no such user".into()))?;
    let disabled: Option<i64> = with_pool!(db, pool => sqlx::query_scalar(
        "SELECT disabled_at FROM users WHERE id = $1").bind(&user.id).fetch_one(pool).await?);
    if disabled.is_some() {
        return Err(IdentityError::Conflict(
            "the user is disabled; unlocking does not re-enable them".into(),
        ));
    }
    let account_unlocked = user.locked || user.failed_attempts > 0;
    let key_unlocked = with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE users SET locked = FALSE, failed_attempts = 0, last_failure_at = NULL WHERE id = $1")
            .bind(&user.id).execute(&mut *tx).await?;
        let key_unlocked = match key {
            None => None,
            Some(k) => {
                let done = sqlx::query(
                    "UPDATE credentials SET locked_at = NULL WHERE user_id = $1 AND id = $2 AND revoked_at IS NULL")
                    .bind(&user.id).bind(k).execute(&mut *tx).await?.rows_affected();
                if done == 0 {
                    return Err(IdentityError::NotFound("the user has no such active security key".into()));
                }
                Some(k.to_owned())
            }
        };
        tx.commit().await?;
        key_unlocked
    });
    let keys_still_locked = credentials(db, &user.id)
        .await?
        .into_iter()
        .filter(|c| c.locked_at.is_some() && c.revoked_at.is_none())
        .map(|c| c.id)
        .collect();
    tracing::warn!(
        alert = true,
        event = "admin_unlock",
        user = user_name,
        key = key.unwrap_or("-"),
        "an administrator unlocked the account"
    );
    Ok(UnlockReport {
        account_unlocked,
        key_unlocked,
        keys_still_locked,
    })
}

/// Locks a credential whose counter went backwards: it may have been cloned (case A11).
/// The lock and its audit record share a transaction, so a key locked as a possible clone is on
/// the tamper-evident record and not only in the log; only the call that locks it writes one.
pub async fn lock_credential(db: &Db, user_id: &str, cred_id: &str, now: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    crate::audit::lock(&mut tx).await?;
    let locked = crate::with_tx!(&mut tx, t => {
        sqlx::query("UPDATE credentials SET locked_at = $1 WHERE user_id = $2 AND cred_id = $3 AND locked_at IS NULL")
            .bind(now).bind(user_id).bind(cred_id).execute(&mut **t).await?.rows_affected()
    });
    if locked > 0 {
        crate::audit::append(
            &mut tx,
            now,
            crate::audit::Entry::new(
                "pawd",
                "credential_locked",
                user_id,
                paw_audit::Outcome::Denied,
                serde_json::json!({
                    "credential_id": cred_id,
                    "reason": "counter_regression",
                    "alert": true,
                }),
            ),
        )
        .await?;
    }
    tx.commit().await?;
    tracing::error!(
        alert = true,
        event = "credential_counter_regression",
        user_id,
        "security key signature counter went backwards: possible clone; key locked"
    );
    Ok(())
}
