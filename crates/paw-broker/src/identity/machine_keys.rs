//! A machine's keys as identity checks them: the machine's answer to a step-up (login included)
//! and the per-request check that the session's key has not been retired.
//!
//! Rules:
//! - A machine has no security key. Where a person's key signs clientDataJSON bound to the
//!   action hash, a machine's key (Ed25519 or P-256, see [`ProofKey`]) signs [`paw_proto::machine::stepup_message`] over the
//!   same single-use challenge and the same action hash, so every privileged step a machine
//!   takes is bound to that exact action, as a person's is (case K3).
//! - Only a key listed for the machine in `machine_keys` and not past its `retire_at` signs or
//!   authenticates (K4): after a rotation the old key works until the overlap ends, then never.
//! - A machine past its expiry can neither log in nor use a session it already has.

use paw_proto::machine::{stepup_message, MachineProof};
use serde_json::Value;

use crate::base::util::unb64;
use crate::crypto::proof_keys::ProofKey;
use crate::identity::error::{IdentityError, Result};
use crate::identity::webauthn::ChallengeRow;
use crate::identity::{Identity, User};
use crate::store::Db;
use crate::with_pool;

/// `users.kind` of a machine principal.
pub const MACHINE: &str = "machine";

/// What a stored challenge of a machine holds in place of a WebAuthn ceremony state.
pub const MACHINE_CHALLENGE_STATE: &str = "machine";

/// A machine's public key from its base64url form (Ed25519 or compressed P-256).
pub fn parse_key(key: &str) -> Option<ProofKey> {
    ProofKey::parse(key)
}

/// Verifies `signature` (base64url) by `key` over `message`, strictly (no malleable forms).
pub fn verify_signature(key: &str, message: &[u8], signature: &str) -> Result<()> {
    let bad = || IdentityError::Unauthenticated("machine key: bad signature".into());
    let key = parse_key(key).ok_or_else(|| {
        IdentityError::BadRequest(
            "machine key: not an Ed25519 (32 bytes) or compressed P-256 (33 bytes) public key"
                .into(),
        )
    })?;
    let sig: [u8; 64] = unb64(signature)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad)?;
    if key.verify(message, &sig) {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Whether `key` may sign for `machine_id` at `now`: listed, not retired, machine not expired.
pub async fn key_usable(db: &Db, machine_id: &str, key: &str, now: i64) -> Result<bool> {
    let n: i64 = with_pool!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM machine_keys k JOIN machines m ON m.user_id = k.machine_id \
         WHERE k.machine_id = $1 AND k.public_key = $2 \
           AND (k.retire_at IS NULL OR k.retire_at > $3) \
           AND (m.expires_at IS NULL OR m.expires_at > $3)")
        .bind(machine_id).bind(key).bind(now).fetch_one(pool).await?);
    Ok(n > 0)
}

/// The check every authenticated request of a machine passes after its device proof: the key
/// the session is bound to is still usable.
pub async fn require_usable(db: &Db, machine_id: &str, key: &str, now: i64) -> Result<()> {
    if key_usable(db, machine_id, key, now).await? {
        touch(db, key, now).await
    } else {
        Err(IdentityError::Unauthenticated(
            "this machine key is retired or the machine has expired; log in again with a current key"
                .into(),
        ))
    }
}

async fn touch(db: &Db, key: &str, now: i64) -> Result<()> {
    with_pool!(db, pool => {
        // Throttled to once a minute: this runs on every request of a machine.
        sqlx::query("UPDATE machine_keys SET last_used_at = $1 WHERE public_key = $2 \
                     AND (last_used_at IS NULL OR last_used_at < $1 - 60000)")
            .bind(now).bind(key).execute(pool).await?;
    });
    Ok(())
}

/// A machine's answer to a step-up challenge: returns the key that signed, as the step-up's
/// credential id.
pub async fn check_proof(
    svc: &Identity,
    user: &User,
    row: &ChallengeRow,
    credential: &Value,
    now: i64,
) -> Result<String> {
    if row.state_json != MACHINE_CHALLENGE_STATE {
        return Err(IdentityError::ChallengeInvalid(
            "the challenge was not issued to a machine".into(),
        ));
    }
    let proof: MachineProof = serde_json::from_value(credential.clone()).map_err(|_| {
        IdentityError::WebauthnRejected("a machine answers with {machine_key, signature}".into())
    })?;
    if !key_usable(&svc.db, &user.id, &proof.machine_key, now).await? {
        return Err(IdentityError::Unauthenticated(
            "this key is not a current key of the machine".into(),
        ));
    }
    verify_signature(
        &proof.machine_key,
        &stepup_message(&row.challenge, &row.action_hash),
        &proof.signature,
    )?;
    touch(&svc.db, &proof.machine_key, now).await?;
    Ok(format!("machine-key:{}", proof.machine_key))
}

/// Registers `key` for a machine in both places a key is looked up: `device_keys` (every
/// request's device proof) and `machine_keys` (usability). Inside the caller's transaction.
pub async fn insert_key(
    tx: &mut crate::store::Tx,
    machine_id: &str,
    key: &str,
    source: &str,
    now: i64,
    retire_at: Option<i64>,
) -> Result<()> {
    if parse_key(key).is_none() {
        return Err(IdentityError::BadRequest(
            "public_key must be base64url: an Ed25519 key (32 bytes) or a compressed P-256 key (33 bytes)".into(),
        ));
    }
    let taken: i64 = crate::with_tx!(tx, t => sqlx::query_scalar(
        "SELECT COUNT(*) FROM machine_keys WHERE public_key = $1")
        .bind(key).fetch_one(&mut **t).await?);
    if taken > 0 {
        // One key, one machine: a key shared by two would make each answer for the other.
        return Err(IdentityError::Conflict(
            "this key is registered already; one key belongs to one machine".into(),
        ));
    }
    crate::with_tx!(tx, t => {
        sqlx::query("INSERT INTO device_keys (user_id, public_key, created_at) VALUES ($1, $2, $3)")
            .bind(machine_id).bind(key).bind(now).execute(&mut **t).await?;
        sqlx::query("INSERT INTO machine_keys (public_key, machine_id, source, created_at, retire_at) \
                     VALUES ($1, $2, $3, $4, $5)")
            .bind(key).bind(machine_id).bind(source).bind(now).bind(retire_at)
            .execute(&mut **t).await?;
    });
    Ok(())
}
