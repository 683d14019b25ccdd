//! A lost key ends what it asked for (case A16): revoking a security key and voiding every
//! grant it activated happen in one audited transaction, so this use case lives with the grants
//! rather than with the keys.

use super::Elevation;
use crate::elevation::error::{ElevationError, Result};
use crate::identity::keys::revoke_action;
use crate::identity::stepup::{self, kind, StepUp};

/// Revokes one of the step-up user's keys. Privileged: takes the proof.
pub async fn revoke_key(
    svc: &Elevation,
    proof: &StepUp<kind::KeyManagement>,
    id: &str,
) -> Result<()> {
    if proof.action() != Some(&revoke_action(id)) {
        return Err(stepup::wrong_action().into());
    }
    let now = svc.clock.now_ms();
    let user = proof.user();
    // One audited transaction: the key stops working and everything it asked for ends with it
    // (case A16), or nothing changes.
    let mut tx = svc.db.begin().await?;
    crate::audit::lock(&mut tx).await?;
    let cred: Option<String> = crate::with_tx!(&mut tx, t => sqlx::query_scalar(
        "UPDATE credentials SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL \
         RETURNING cred_id")
        .bind(now).bind(id).bind(&user.id).fetch_optional(&mut **t).await?);
    let Some(cred) = cred else {
        return Err(ElevationError::NotFound(
            "no such active security key".into(),
        ));
    };
    let voided = super::void_activated_by(
        &mut tx,
        &user.id,
        &cred,
        now,
        "the security key that asked for it was revoked",
    )
    .await?;
    crate::audit::append(
        &mut tx,
        now,
        crate::audit::Entry::new(
            &user.name,
            "security_key_revoked",
            id,
            paw_audit::Outcome::Success,
            serde_json::json!({ "grants_revoked": voided }),
        ),
    )
    .await?;
    tx.commit().await?;
    tracing::warn!(user = %user.name, key_id = %id, grants = voided.len(), "security key revoked");
    Ok(())
}
