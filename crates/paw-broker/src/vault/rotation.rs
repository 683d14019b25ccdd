//! Rotation that never loses a secret (case L2): a journaled two-phase change, driven by the
//! transition table of `paw_vault::rotation`, and a reconciler that settles any rotation a
//! crash, a failure or an unreachable target left unsettled.
//!
//! The steps, each committed before the next starts:
//! 1. **Generate**: the new secret is sealed and stored as *pending* (`idle → pending`). The
//!    target still has the current one.
//! 2. **Apply**: the adapter changes the secret on the target (`pending → applied`).
//! 3. **Verify**: a login with the pending secret (`applied → verified`).
//! 4. **Promote**: pending becomes current, version + 1 (`verified → promoted`), with an audit
//!    record; a key account's old key is then removed from the target.
//!
//! A failure, or a broker found dead mid-rotation, sends the row to `reconciling`: the
//! reconciler tries the pending and the current secret against the target and settles on the
//! one that opens (`paw_vault::reconcile`). If neither can be shown to open (target down,
//! changed outside paw), it keeps both, marks the account `failed` with an alert, and tries
//! again later; it drops a secret only when a login refused it.

use std::time::Duration;

use paw_audit::Outcome;
use paw_vault::{Decision, PasswordRules, RotationEvent as E, RotationState as S, SecretBytes};
use serde_json::json;

use crate::audit::Entry;
use crate::vault::adapters::{self, Unreachable};
use crate::vault::error::{Result, VaultError};
use crate::vault::store::{self, AccountRow, Set, Step, Val};
use crate::vault::Vault;

/// After a failed rotation, the next attempt waits this long (the alert stays meanwhile).
const RETRY_AFTER_MS: i64 = 60_000;

/// What one call of [`run`] ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    Rotated {
        version: i64,
    },
    KeptCurrent {
        why: String,
    },
    Failed {
        why: String,
    },
    /// Another broker holds the rotation, or there was nothing to do.
    Skipped,
    /// Still running when the caller stopped waiting (`rotate_now`).
    Running,
}

fn state_of(row: &AccountRow) -> S {
    S::ALL
        .into_iter()
        .find(|s| s.as_str() == row.rotation_state)
        .unwrap_or(S::Reconciling)
}

/// Moves the journal one step: `from --event--> to`, checked against the table, with `set`
/// and `audit` written in the same transaction. Refused if the row moved meanwhile.
async fn advance(
    v: &Vault,
    row: &AccountRow,
    from: S,
    event: E,
    detail: &str,
    set: Set<'_>,
    audit: Option<Entry>,
) -> Result<S> {
    let to = paw_vault::rotation::next(from, event).map_err(VaultError::from)?;
    let now = v.clock.now_ms();
    let moved = store::step(
        &v.db,
        &Step {
            id: &row.id,
            from: from.as_str(),
            event: event.as_str(),
            to: to.as_str(),
            detail,
            now,
        },
        // Every step renews this broker's lease on the rotation.
        set.with("rotation_lease_until", Val::Int(Some(now + v.lease_ms()))),
        audit,
    )
    .await?;
    if moved {
        Ok(to)
    } else {
        Err(VaultError::Conflict(format!(
            "the rotation of {} moved on elsewhere",
            row.name()
        )))
    }
}

/// Rotates (or settles) one account. `force`: rotate now even if not due (an admin's
/// request). Takes the account's rotation lease first; a rotation another broker holds is
/// skipped.
pub async fn run(v: &Vault, id: &str, force: bool) -> Result<Rotation> {
    let ring = v.ring()?;
    let now = v.clock.now_ms();
    v.reclaim_dead_owners().await?;
    if !store::take_lease(&v.db, id, v.owner(), now + v.lease_ms(), now).await? {
        return Ok(Rotation::Skipped);
    }
    let out = run_leased(v, &ring, id, force).await;
    store::drop_lease(&v.db, id, v.owner()).await?;
    out
}

async fn run_leased(
    v: &Vault,
    ring: &paw_vault::KekRing,
    id: &str,
    force: bool,
) -> Result<Rotation> {
    let row = store::by_id(&v.db, id)
        .await?
        .ok_or_else(|| VaultError::NotFound(format!("no vaulted account {id}")))?;
    let target = v.target(&row.target)?;
    let state = state_of(&row);
    if state.is_in_flight() {
        // Left by a crash or a failure: settle it, do not start another.
        let s = advance(
            v,
            &row,
            state,
            E::Crash,
            "resumed by the reconciler",
            Set::default(),
            None,
        )
        .await?;
        return reconcile(v, ring, &target, id, s).await;
    }
    if state == S::Failed {
        let s = advance(
            v,
            &row,
            state,
            E::Resume,
            "retrying a failed rotation",
            Set::default(),
            None,
        )
        .await?;
        return reconcile(v, ring, &target, id, s).await;
    }
    let due = row.next_rotation_at.is_some_and(|t| t <= v.clock.now_ms());
    if !(force || due) {
        return Ok(Rotation::Skipped);
    }
    // 1. Generate, sealed under the next version's AAD, stored before the target is touched.
    let current = v.open_current(ring, &row)?;
    let new = generate(&row)?;
    let sealed =
        paw_vault::seal(ring, &new, &crate::vault::aad(&row.id, next_version(&row)))?.to_compact();
    let s = advance(
        v,
        &row,
        state,
        E::Generate,
        "new secret stored as pending",
        Set::default().with("pending_secret", Val::Text(Some(&sealed))),
        None,
    )
    .await?;
    // 2. Apply.
    let limit = v.step_timeout();
    if let Err(Unreachable(why)) = adapters::change(&target, &row, &current, &new, limit).await {
        let s = advance(
            v,
            &row,
            s,
            E::ApplyFailed,
            &why,
            Set::default().with("last_error", Val::Text(Some(&why))),
            None,
        )
        .await?;
        return reconcile(v, ring, &target, id, s).await;
    }
    let s = advance(
        v,
        &row,
        s,
        E::Apply,
        "changed on the target",
        Set::default(),
        None,
    )
    .await?;
    // 3. Verify with a fresh login.
    match adapters::opens(&target, &row, &new, limit).await {
        Ok(true) => {
            let s = advance(
                v,
                &row,
                s,
                E::Verify,
                "the new secret opens",
                Set::default(),
                None,
            )
            .await?;
            promote(v, &target, &row, s, &sealed, &current, &new).await
        }
        Ok(false) | Err(_) => {
            let s = advance(
                v,
                &row,
                s,
                E::VerifyFailed,
                "the new secret did not open",
                Set::default(),
                None,
            )
            .await?;
            reconcile(v, ring, &target, id, s).await
        }
    }
}

fn next_version(row: &AccountRow) -> i64 {
    row.version + 1
}

/// A new secret by the account's rules: a password, or an Ed25519 key.
fn generate(row: &AccountRow) -> Result<SecretBytes> {
    if row.kind == "ssh_key" {
        let (private, _) = paw_vault::generate_ssh_key(&format!("paw-vault {}", row.name()))?;
        Ok(private)
    } else {
        let rules: PasswordRules = serde_json::from_str(&row.rules).map_err(|_| {
            VaultError::BadRequest(format!(
                "{}: stored password rules do not parse",
                row.name()
            ))
        })?;
        Ok(paw_vault::generate_password(&rules)?)
    }
}

/// 4. The proven pending secret becomes current: one transaction with its audit record.
async fn promote(
    v: &Vault,
    target: &crate::config::sessions::TargetConfig,
    row: &AccountRow,
    from: S,
    sealed_pending: &str,
    old: &SecretBytes,
    new: &SecretBytes,
) -> Result<Rotation> {
    let now = v.clock.now_ms();
    let version = next_version(row);
    let next = now + v.rotate_every_ms();
    let audit = Entry::new(
        "pawd",
        "vault_rotated",
        row.name(),
        Outcome::Success,
        json!({ "account_id": row.id, "version": version, "kind": row.kind }),
    );
    advance(
        v,
        row,
        from,
        E::Promote,
        "the proven secret is current",
        Set::default()
            .with("secret", Val::Text(Some(sealed_pending)))
            .with("pending_secret", Val::Text(None))
            .with("version", Val::Int(Some(version)))
            .with("last_rotated_at", Val::Int(Some(now)))
            .with("last_result", Val::Text(Some("ok")))
            .with("last_error", Val::Text(None))
            .with("failing_since", Val::Int(None))
            .with("next_rotation_at", Val::Int(Some(next)))
            .with("rotate_after_checkout", Val::Bool(false)),
        Some(audit),
    )
    .await?;
    v.announce(
        "vault_rotated",
        &row.name(),
        format!("{} rotated (version {version})", row.name()),
    );
    // A key account still has its old key on the target: removed now, best effort (it only
    // matters as an extra way in, which the next rotation removes too).
    if let Err(Unreachable(why)) = adapters::cleanup(target, row, new, old, v.step_timeout()).await
    {
        tracing::warn!(account = %row.name(), %why, "the old key could not be removed from the target");
    }
    Ok(Rotation::Rotated { version })
}

/// Settles a rotation in `reconciling`: tries the pending and the current secret against the
/// target and keeps the one that opens.
async fn reconcile(
    v: &Vault,
    ring: &paw_vault::KekRing,
    target: &crate::config::sessions::TargetConfig,
    id: &str,
    state: S,
) -> Result<Rotation> {
    let row = store::by_id(&v.db, id)
        .await?
        .ok_or_else(|| VaultError::NotFound(format!("no vaulted account {id}")))?;
    let limit = v.step_timeout();
    let current = v.open_current(ring, &row)?;
    let pending = match &row.pending_secret {
        Some(p) => Some(v.open_sealed(ring, &row, p, next_version(&row))?),
        None => None,
    };
    let mut why = Vec::new();
    let pending_opens = match &pending {
        Some(p) => Some(match adapters::opens(target, &row, p, limit).await {
            Ok(b) => b,
            Err(Unreachable(e)) => {
                why.push(format!("pending: {e}"));
                false
            }
        }),
        None => None,
    };
    let current_opens = if pending_opens == Some(true) {
        // Not asked: the pending secret is proven, and that settles it.
        false
    } else {
        match adapters::opens(target, &row, &current, limit).await {
            Ok(b) => b,
            Err(Unreachable(e)) => {
                why.push(format!("current: {e}"));
                false
            }
        }
    };
    let decision = paw_vault::reconcile(pending_opens, current_opens);
    match decision {
        Decision::PromotePending => {
            let (Some(p), Some(sealed)) = (&pending, &row.pending_secret) else {
                return Err(VaultError::Broker(
                    crate::base::error::BrokerError::Internal(
                        "promote without a pending secret".into(),
                    ),
                ));
            };
            promote(v, target, &row, state, sealed, &current, p).await
        }
        Decision::KeepCurrent => {
            let now = v.clock.now_ms();
            let reason = row
                .last_error
                .clone()
                .unwrap_or_else(|| "the target kept the current secret".into());
            advance(
                v,
                &row,
                state,
                decision.event(),
                "the current secret opens; the pending one is dropped",
                Set::default()
                    .with("pending_secret", Val::Text(None))
                    .with("last_result", Val::Text(Some("failed")))
                    .with("last_error", Val::Text(Some(&reason)))
                    .with(
                        "failing_since",
                        Val::Int(Some(row.failing_since.unwrap_or(now))),
                    )
                    .with("next_rotation_at", Val::Int(Some(now + RETRY_AFTER_MS))),
                None,
            )
            .await?;
            Ok(Rotation::KeptCurrent { why: reason })
        }
        Decision::Alert => {
            let now = v.clock.now_ms();
            let reason = if why.is_empty() {
                "neither the current nor the pending secret opens the account".to_owned()
            } else {
                why.join("; ")
            };
            let audit = Entry::new(
                "pawd",
                "vault_rotation_failed",
                row.name(),
                Outcome::Failure,
                json!({ "account_id": row.id, "reason": reason }),
            );
            advance(
                v,
                &row,
                state,
                decision.event(),
                &reason,
                Set::default()
                    .with("last_result", Val::Text(Some("failed")))
                    .with("last_error", Val::Text(Some(&reason)))
                    .with(
                        "failing_since",
                        Val::Int(Some(row.failing_since.unwrap_or(now))),
                    )
                    .with("next_rotation_at", Val::Int(Some(now + RETRY_AFTER_MS))),
                Some(audit),
            )
            .await?;
            v.announce(
                "vault_rotation_failed",
                &row.name(),
                format!("rotation of {} failed: {reason}", row.name()),
            );
            Ok(Rotation::Failed { why: reason })
        }
    }
}

/// The vault's background work, every `reconcile_secs`: end checkouts whose grant is over,
/// then settle or start every rotation that is due. Runs once at start first, so a rotation a
/// crash interrupted is settled as soon as the broker is back.
pub async fn ticker(v: Vault) {
    let every = Duration::from_secs(v.config.reconcile_secs);
    loop {
        if v.ring().is_ok() {
            if let Err(e) = tick(&v).await {
                tracing::warn!(code = %crate::base::error::ServiceError::code(&e), error = %e, "vault tick failed");
            }
        }
        tokio::time::sleep(every).await;
    }
}

async fn tick(v: &Vault) -> Result<()> {
    let now = v.clock.now_ms();
    store::release_ended(&v.db, now).await?;
    v.reclaim_dead_owners().await?;
    for id in store::due(&v.db, now).await? {
        match run(v, &id, false).await {
            Ok(o) => tracing::debug!(account = %id, outcome = ?o, "vault rotation"),
            Err(e) => tracing::warn!(account = %id, error = %e, "vault rotation step failed"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_stored_states_are_treated_as_unsettled() {
        let mut row = crate::vault::tests::row();
        row.rotation_state = "bogus".into();
        assert_eq!(state_of(&row), S::Reconciling);
        row.rotation_state = "promoted".into();
        assert_eq!(state_of(&row), S::Promoted);
    }
}
