//! Sessions, access and refresh tokens, and device-key proofs (cases A15 and B11).
//!
//! Rules:
//! - A session is created only from a login step-up (or, for a machine, a verified workload
//!   token) and is bound to one registered device key.
//!   Every authenticated request carries `Authorization: Bearer <access>` and a
//!   `paw-device-proof` signed by that key over the request and the token.
//! - Tokens are 256-bit random values; only their SHA-256 is stored.
//! - Access tokens live ≤ 15 min; the session (the refresh-token family) ends 12 h after login
//!   or 15 min after its last authenticated request, whichever is first, decided here with the
//!   broker's clock, not by any token lifetime.
//! - Refresh tokens rotate; presenting a used one revokes the whole family.

use crate::crypto::proof_keys::ProofKey;
use paw_proto::device_proof::{self, ProofHeader, MAX_SKEW_MS};
use paw_proto::http::{SignedOut, TokenResponse};

use crate::base::auth::AuthContext;
use crate::base::error::BrokerError;
use crate::base::util::{b64, new_id, random_secret, secret_hash};
use crate::identity;
use crate::identity::error::{IdentityError, Result};
use crate::identity::machine_keys;
use crate::identity::stepup::{kind, StepUp};
pub use crate::identity::Identity;
use crate::with_pool;

pub const ACCESS_TTL_MS: i64 = 15 * 60 * 1000;
pub const SESSION_ABSOLUTE_MS: i64 = 12 * 3600 * 1000;
pub const SESSION_IDLE_MS: i64 = 15 * 60 * 1000;

/// A request as the device proof covers it.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub method: String,
    pub path_and_query: String,
    pub body: Vec<u8>,
    pub proof: Option<String>,
    pub bearer: Option<String>,
}

/// A session looked up through one of its tokens.
#[derive(Debug, sqlx::FromRow)]
struct SessionRow {
    id: String,
    user_id: String,
    device_key: String,
    created_at: i64,
    last_seen_at: i64,
    revoked_at: Option<i64>,
    /// The access token's expiry (access lookups only).
    token_expires_at: Option<i64>,
    /// When the refresh token was used (refresh lookups only).
    token_used_at: Option<i64>,
}

/// Starts a session after a verified login and returns its first tokens.
pub async fn login(
    svc: &Identity,
    proof: &StepUp<kind::Login>,
    device_key: &str,
) -> Result<TokenResponse> {
    let user = proof.user();
    identity::validate_device_key(device_key)?;
    if !identity::device_key_registered(&svc.db, &user.id, device_key).await? {
        return Err(IdentityError::Unauthenticated(
            "this device key is not registered for the user".into(),
        ));
    }
    let now = svc.clock.now_ms();
    if user.is_machine() {
        // A machine's session is bound to the key that just signed, and only a current one.
        let signer = proof.credential_id().strip_prefix("machine-key:");
        if signer != Some(device_key) {
            return Err(IdentityError::Unauthenticated(
                "a machine's session is bound to the key that signed its login".into(),
            ));
        }
        machine_keys::require_usable(&svc.db, &user.id, device_key, now).await?;
    }
    open_session(svc, user, device_key, now).await
}

/// Starts a session for `user` bound to `device_key`, after the caller verified the login: a
/// person's or key machine's step-up ([`login`]) or a machine's workload token.
pub(crate) async fn open_session(
    svc: &Identity,
    user: &identity::User,
    device_key: &str,
    now: i64,
) -> Result<TokenResponse> {
    let session_id = new_id();
    with_pool!(&svc.db, pool => {
        sqlx::query("INSERT INTO sessions (id, user_id, device_key, created_at, last_seen_at) \
                     VALUES ($1, $2, $3, $4, $4)")
            .bind(&session_id).bind(&user.id).bind(device_key).bind(now)
            .execute(pool).await?;
    });
    tracing::info!(user = %user.name, session = %session_id, "login");
    issue(svc, &session_id, now, now, &user.name, user.roles()).await
}

async fn issue(
    svc: &Identity,
    session_id: &str,
    created_at: i64,
    now: i64,
    user: &str,
    roles: Vec<String>,
) -> Result<TokenResponse> {
    let access = random_secret()?;
    let refresh = random_secret()?;
    let session_end = created_at + SESSION_ABSOLUTE_MS;
    let access_exp = (now + ACCESS_TTL_MS).min(session_end);
    with_pool!(&svc.db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("INSERT INTO access_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)")
            .bind(secret_hash(&access)).bind(session_id).bind(access_exp)
            .execute(&mut *tx).await?;
        sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)")
            .bind(secret_hash(&refresh)).bind(session_id).bind(now)
            .execute(&mut *tx).await?;
        tx.commit().await?;
    });
    Ok(TokenResponse {
        user: user.to_owned(),
        roles,
        access_token: access,
        access_expires_at_ms: access_exp,
        refresh_token: refresh,
        session_expires_at_ms: session_end,
    })
}

async fn revoke_session(svc: &Identity, session_id: &str, now: i64) -> Result<()> {
    with_pool!(&svc.db, pool => {
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now).bind(session_id).execute(pool).await?;
    });
    Ok(())
}

/// `POST /v1/auth/sign-out`: ends the caller's sign-in at the broker. The whole token family
/// (every access and refresh token of the session) stops working at once, on every broker on
/// this database, and the revocation is audited in the same transaction (case I7).
pub async fn sign_out(svc: &Identity, auth: &AuthContext) -> Result<SignedOut> {
    let now = svc.clock.now_ms();
    let mut tx = svc.db.begin().await?;
    crate::audit::lock(&mut tx).await?;
    let (access, refresh): (i64, i64) = crate::with_tx!(&mut tx, t => {
        sqlx::query_as("SELECT \
            (SELECT COUNT(*) FROM access_tokens WHERE session_id = $1 AND expires_at > $2), \
            (SELECT COUNT(*) FROM refresh_tokens WHERE session_id = $1 AND used_at IS NULL)")
            .bind(&auth.session_id).bind(now).fetch_one(&mut **t).await?
    });
    let revoked = crate::with_tx!(&mut tx, t => {
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now).bind(&auth.session_id).execute(&mut **t).await?.rows_affected()
    });
    if revoked == 0 {
        // Another request of the same sign-in got there first.
        return Err(IdentityError::Unauthenticated(
            "the session has ended".into(),
        ));
    }
    let out = SignedOut {
        session_id: auth.session_id.clone(),
        revoked_at_ms: now,
        access_tokens: u32::try_from(access).unwrap_or(u32::MAX),
        refresh_tokens: u32::try_from(refresh).unwrap_or(u32::MAX),
    };
    crate::audit::append(
        &mut tx,
        now,
        crate::audit::Entry::new(
            &auth.user_name,
            "sign_out",
            &auth.session_id,
            paw_audit::Outcome::Success,
            serde_json::json!({
                "access_tokens": out.access_tokens,
                "refresh_tokens": out.refresh_tokens,
            }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(out)
}

/// Idle and absolute limits (A15). A session past either is revoked for good.
async fn check_session_alive(svc: &Identity, s: &SessionRow, now: i64) -> Result<()> {
    if s.revoked_at.is_some() {
        return Err(IdentityError::Unauthenticated(
            "the session has ended".into(),
        ));
    }
    if now >= s.created_at + SESSION_ABSOLUTE_MS || now >= s.last_seen_at + SESSION_IDLE_MS {
        revoke_session(svc, &s.id, now).await?;
        return Err(IdentityError::ReauthenticationRequired(
            "the session is past its idle or absolute limit; log in again".into(),
        ));
    }
    Ok(())
}

/// Whether a session can still be used and its user is neither locked nor disabled: checked
/// again and again by long-lived responses (the event stream), which authenticate only once.
pub async fn session_alive(svc: &Identity, session_id: &str) -> Result<bool> {
    let now = svc.clock.now_ms();
    let row = with_pool!(&svc.db, pool => sqlx::query_as::<_, SessionRow>(
        "SELECT s.id, s.user_id, s.device_key, s.created_at, s.last_seen_at, s.revoked_at, \
         CAST(NULL AS BIGINT) AS token_expires_at, CAST(NULL AS BIGINT) AS token_used_at \
         FROM sessions s WHERE s.id = $1")
        .bind(session_id).fetch_optional(pool).await?);
    let Some(row) = row else { return Ok(false) };
    if check_session_alive(svc, &row, now).await.is_err() {
        return Ok(false);
    }
    Ok(identity::user_by_id(&svc.db, &row.user_id)
        .await?
        .is_some_and(|u| !u.locked))
}

async fn session_by_access(svc: &Identity, token: &str) -> Result<Option<SessionRow>> {
    Ok(with_pool!(&svc.db, pool => sqlx::query_as::<_, SessionRow>(
        "SELECT s.id, s.user_id, s.device_key, s.created_at, s.last_seen_at, s.revoked_at, \
         a.expires_at AS token_expires_at, CAST(NULL AS BIGINT) AS token_used_at \
         FROM access_tokens a JOIN sessions s ON s.id = a.session_id WHERE a.token_hash = $1")
        .bind(secret_hash(token)).fetch_optional(pool).await?))
}

/// Whether an authenticated request counts as the user being active (case A15). The app polls
/// its status in the background; if that poll kept the session alive, the idle limit would never
/// fire on an unattended workstation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Something the user did: resets the idle timer.
    User,
    /// A background status probe: checked like any request, but leaves the idle timer alone.
    Probe,
}

/// Authenticates a request: bearer token, live session, device-key proof; then marks the
/// session active.
pub async fn authenticate(svc: &Identity, req: &SignedRequest) -> Result<AuthContext> {
    authenticate_as(svc, req, Activity::User).await
}

/// [`authenticate`], saying whether the request is user activity.
pub async fn authenticate_as(
    svc: &Identity,
    req: &SignedRequest,
    activity: Activity,
) -> Result<AuthContext> {
    let token = req
        .bearer
        .as_deref()
        .ok_or_else(|| IdentityError::Unauthenticated("missing bearer token".into()))?;
    let now = svc.clock.now_ms();
    let session = session_by_access(svc, token)
        .await?
        .ok_or_else(|| IdentityError::Unauthenticated("unknown access token".into()))?;
    check_session_alive(svc, &session, now).await?;
    if session.token_expires_at.is_none_or(|exp| now >= exp) {
        return Err(IdentityError::Unauthenticated(
            "the access token has expired; refresh it".into(),
        ));
    }
    verify_device_proof(svc, req, &session.device_key, token, now).await?;
    let user = identity::user_by_id(&svc.db, &session.user_id)
        .await?
        .ok_or_else(|| IdentityError::Unauthenticated("unknown user".into()))?;
    if user.locked {
        return Err(IdentityError::AccountLocked(
            "the account is locked; ask an administrator".into(),
        ));
    }
    if user.is_machine() {
        // K4: a rotated-out key stops at the end of its overlap, sessions included.
        machine_keys::require_usable(&svc.db, &user.id, &session.device_key, now).await?;
    }
    if activity == Activity::User {
        with_pool!(&svc.db, pool => {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1")
                .bind(now).bind(&session.id).execute(pool).await?;
        });
    }
    Ok(AuthContext {
        user_id: user.id.clone(),
        user_name: user.name.clone(),
        roles: user.roles(),
        session_id: session.id,
        session_expires_at_ms: session.created_at + SESSION_ABSOLUTE_MS,
        device_key: session.device_key,
        is_machine: user.is_machine(),
    })
}

/// `POST /v1/token/refresh`: rotates the refresh token. A used token revokes the family (B11).
pub async fn refresh(
    svc: &Identity,
    req: &SignedRequest,
    refresh_token: &str,
) -> Result<TokenResponse> {
    let now = svc.clock.now_ms();
    let hash = secret_hash(refresh_token);
    let session = with_pool!(&svc.db, pool => sqlx::query_as::<_, SessionRow>(
        "SELECT s.id, s.user_id, s.device_key, s.created_at, s.last_seen_at, s.revoked_at, \
         CAST(NULL AS BIGINT) AS token_expires_at, r.used_at AS token_used_at \
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = $1")
        .bind(&hash).fetch_optional(pool).await?)
    .ok_or_else(|| IdentityError::Unauthenticated("unknown refresh token".into()))?;
    // The proof first: a stolen token without the device key must not be able to end the
    // victim's session by replaying it.
    verify_device_proof(svc, req, &session.device_key, refresh_token, now).await?;
    if session.token_used_at.is_some() {
        revoke_session(svc, &session.id, now).await?;
        tracing::warn!(alert = true, session = %session.id, "refresh token reused; token family revoked");
        return Err(IdentityError::Unauthenticated(
            "refresh token reused; the session is revoked".into(),
        ));
    }
    check_session_alive(svc, &session, now).await?;
    let won = with_pool!(&svc.db, pool => sqlx::query(
        "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL")
        .bind(now).bind(&hash).execute(pool).await?.rows_affected());
    if won == 0 {
        revoke_session(svc, &session.id, now).await?;
        return Err(IdentityError::Unauthenticated(
            "refresh token reused; the session is revoked".into(),
        ));
    }
    let user = identity::user_by_id(&svc.db, &session.user_id)
        .await?
        .ok_or_else(|| IdentityError::Unauthenticated("unknown user".into()))?;
    if user.locked {
        return Err(IdentityError::AccountLocked(
            "the account is locked; ask an administrator".into(),
        ));
    }
    if user.is_machine() {
        machine_keys::require_usable(&svc.db, &user.id, &session.device_key, now).await?;
    }
    issue(
        svc,
        &session.id,
        session.created_at,
        now,
        &user.name,
        user.roles(),
    )
    .await
}

/// Checks the `paw-device-proof` header: signature by `device_key` over the request and
/// `token`, time within the skew of the broker's clock, nonce never seen within the window.
async fn verify_device_proof(
    svc: &Identity,
    req: &SignedRequest,
    device_key: &str,
    token: &str,
    now: i64,
) -> Result<()> {
    let bad = |m: &str| IdentityError::Unauthenticated(format!("device proof: {m}"));
    let header = req.proof.as_deref().ok_or_else(|| bad("missing"))?;
    let proof = ProofHeader::parse(header).ok_or_else(|| bad("malformed"))?;
    if (proof.time_ms - now).abs() > MAX_SKEW_MS {
        return Err(bad("time outside the accepted window"));
    }
    let key = ProofKey::parse(device_key)
        .ok_or_else(|| BrokerError::Internal("stored device key is invalid".into()))?;
    let message = device_proof::message(
        &req.method,
        &req.path_and_query,
        &req.body,
        proof.time_ms,
        &proof.nonce,
        token,
    );
    if !key.verify(&message, &proof.signature) {
        return Err(bad("bad signature"));
    }
    // Only after the signature holds, so nobody can fill the nonce table for free.
    let nonce = b64(&proof.nonce);
    let fresh = with_pool!(&svc.db, pool => {
        sqlx::query("DELETE FROM proof_nonces WHERE seen_at < $1")
            .bind(now - 2 * MAX_SKEW_MS).execute(pool).await?;
        sqlx::query("INSERT INTO proof_nonces (nonce, seen_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING")
            .bind(&nonce).bind(now).execute(pool).await?.rows_affected()
    });
    if fresh == 0 {
        return Err(bad("replayed nonce"));
    }
    Ok(())
}
