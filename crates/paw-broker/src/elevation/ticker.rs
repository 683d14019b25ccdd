//! The grant clock: start, warn and end grants at their time, exactly once, and void what a
//! disabled user or a revoked key still holds.

use super::*;
#[allow(clippy::wildcard_imports)]
use crate::elevation::error::ElevationError;

/// The clock's work, run every 200 ms by the server (and by tests with a moved clock):
/// approved grants whose start has come become active, active grants whose end has come
/// expire (and their sessions end), and warnings go out 5 min and 1 min before the end.
pub async fn tick(svc: &Elevation) -> Result<usize> {
    let now = svc.clock.now_ms();
    let policy = svc.policy.get();
    let q = format!(
        "SELECT {GRANT_COLUMNS} FROM grants WHERE state IN ('approved', 'active') \
         AND (starts_at <= $1 OR ends_at <= $2 OR (state = 'active' AND ends_at <= $3))"
    );
    let warn_horizon = now + WARNINGS[0].0;
    let due: Vec<GrantRow> = with_pool!(&svc.db, pool => {
        sqlx::query_as(&q).bind(now).bind(now).bind(warn_horizon).fetch_all(pool).await?
    });
    let mut changed = 0;
    for row in due {
        changed += advance(svc, &policy, row, now).await?;
    }
    Ok(changed)
}

pub(super) async fn advance(
    svc: &Elevation,
    policy: &Policy,
    row: GrantRow,
    now: i64,
) -> Result<usize> {
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    // Re-read under the lock: a release or revoke may have won the race.
    let mut row = load(&mut tx, &row.id).await?;
    let mut notices = Vec::new();
    let mut changed = 0;
    let stored = parse_state(&row.state)?;
    if stored == GrantState::Approved && row.starts_at.is_some_and(|t| t <= now) {
        move_state(&mut tx, &row, GrantEvent::Activate, None, None).await?;
        row.state = GrantState::Active.as_str().to_owned();
        audit::append(
            &mut tx,
            now,
            Entry::new(
                "pawd",
                "grant_started",
                &row.id,
                Outcome::Success,
                json!({"starts_at": row.starts_at, "ends_at": row.ends_at}),
            ),
        )
        .await?;
        notices.push((
            "grant_started",
            format!(
                "{}: {} on {} is active",
                row.user_name, row.role, row.target
            ),
        ));
        changed += 1;
    }
    if row.state == GrantState::Active.as_str() {
        if row.ends_at.is_some_and(|t| t <= now) {
            move_state(
                &mut tx,
                &row,
                GrantEvent::Expire,
                None,
                Some((now, "expired")),
            )
            .await?;
            end_tickets(&mut tx, &row.id, now, "grant_ended").await?;
            audit::append(
                &mut tx,
                now,
                Entry::new(
                    "pawd",
                    "grant_expired",
                    &row.id,
                    Outcome::Success,
                    json!({"ends_at": row.ends_at}),
                ),
            )
            .await?;
            notices.push((
                "grant_ended",
                format!(
                    "{}: {} on {} has expired",
                    row.user_name, row.role, row.target
                ),
            ));
            changed += 1;
        } else if let Some(end) = row.ends_at {
            // One warning per threshold crossed, but only the most urgent when a tick (or a
            // short grant) crosses several at once: "ends in 1 min" twice helps nobody.
            let due: Vec<i64> = WARNINGS
                .iter()
                .filter(|(before, bit)| end - now <= *before && row.warned & bit == 0)
                .map(|(_, bit)| *bit)
                .collect();
            if !due.is_empty() {
                row.warned |= due.iter().fold(0, |a, b| a | b);
                with_tx!(&mut tx, t => {
                    sqlx::query("UPDATE grants SET warned = $1 WHERE id = $2")
                        .bind(row.warned).bind(&row.id).execute(&mut **t).await?;
                });
                notices.push((
                    "grant_warning",
                    format!(
                        "{} on {} ends in {} min",
                        row.role,
                        row.target,
                        (end - now + 59_999) / 60_000
                    ),
                ));
                changed += 1;
            }
        }
    }
    tx.commit().await?;
    if !notices.is_empty() {
        let view = grant_view(svc, policy, &row.id).await?;
        for (kind, message) in notices {
            svc.notifier.send(Notice {
                audience: if kind == "grant_warning" {
                    Audience::user(&row.user_name)
                } else {
                    Audience::user_and_approvers(&row.user_name, &row.entitlement)
                },
                event: live(kind, &view, message, now),
            });
        }
    }
    Ok(changed)
}

/// Ends every open request or grant of `user_id` that the security key `credential_id` asked
/// for (case A16: revoking a key revokes what it activated). Runs in the caller's transaction,
/// which holds the audit lock. Returns the grant ids.
pub async fn void_activated_by(
    tx: &mut Tx,
    user_id: &str,
    credential_id: &str,
    now: i64,
    why: &str,
) -> Result<Vec<String>> {
    let q = format!(
        "SELECT {GRANT_COLUMNS} FROM grants WHERE user_id = $1 AND credential_id = $2 \
         AND state IN ('pending', 'approved', 'active')"
    );
    let open: Vec<GrantRow> = with_tx!(tx, t => {
        sqlx::query_as(&q).bind(user_id).bind(credential_id).fetch_all(&mut **t).await?
    });
    end_all(tx, &open, now, why).await
}

/// Cancels pending requests and revokes approved or active grants among `rows` (skipping any
/// the clock has already expired), ending their session tickets.
pub(super) async fn end_all(
    tx: &mut Tx,
    rows: &[GrantRow],
    now: i64,
    why: &str,
) -> Result<Vec<String>> {
    let mut ended = Vec::new();
    for row in rows {
        let mut r = row.clone();
        let current = catch_up(tx, &mut r, now).await?;
        if current == GrantState::Expired {
            continue;
        }
        let event = if current == GrantState::Pending {
            GrantEvent::Cancel
        } else {
            GrantEvent::Revoke
        };
        move_state(tx, &r, event, None, Some((now, why))).await?;
        end_tickets(tx, &r.id, now, "revoked").await?;
        ended.push(r.id);
    }
    Ok(ended)
}

/// Disables a user (case B12): their sessions and tokens end, pending requests are cancelled
/// and approved or active grants revoked, in one audited transaction.
pub async fn disable_user(svc: &Elevation, actor: &str, user_name: &str) -> Result<usize> {
    let now = svc.clock.now_ms();
    let user = crate::identity::user_by_name(&svc.db, user_name)
        .await?
        .ok_or_else(|| ElevationError::NotFound("no such user".into()))?;
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    let q = format!(
        "SELECT {GRANT_COLUMNS} FROM grants WHERE user_id = $1 AND state IN ('pending', 'approved', 'active')"
    );
    let open: Vec<GrantRow> = with_tx!(&mut tx, t => {
        // Locked too, so every lock check (login, step-up, tokens) refuses them from now on.
        sqlx::query("UPDATE users SET disabled_at = $1, locked = TRUE WHERE id = $2 AND disabled_at IS NULL")
            .bind(now).bind(&user.id).execute(&mut **t).await?;
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
            .bind(now).bind(&user.id).execute(&mut **t).await?;
        sqlx::query_as(&q).bind(&user.id).fetch_all(&mut **t).await?
    });
    let voided = end_all(&mut tx, &open, now, &format!("user disabled by {actor}")).await?;
    audit::append(
        &mut tx,
        now,
        Entry::new(
            actor,
            "user_disabled",
            user_name,
            Outcome::Success,
            json!({ "grants_voided": voided }),
        ),
    )
    .await?;
    // K1: the machines this person answered for stop with them, in the same transaction, so
    // there is no moment when an unowned machine still holds a grant.
    let owned: Vec<(String, String)> = with_tx!(&mut tx, t => {
        sqlx::query_as("SELECT u.id, u.name FROM machines m JOIN users u ON u.id = m.user_id \
                        WHERE m.owner_id = $1 ORDER BY u.name")
            .bind(&user.id).fetch_all(&mut **t).await?
    });
    for (machine_id, machine_name) in owned {
        let why = format!("owner {user_name} disabled by {actor}");
        let voided = suspend_machine_in(&mut tx, &machine_id, now, &why).await?;
        with_tx!(&mut tx, t => {
            sqlx::query("UPDATE machines SET owner_id = NULL WHERE user_id = $1")
                .bind(&machine_id).execute(&mut **t).await?;
        });
        audit::append(
            &mut tx,
            now,
            Entry::new(
                actor,
                "machine_suspended",
                &machine_name,
                Outcome::Success,
                json!({ "reason": why, "grants_voided": voided, "former_owner": user_name }),
            ),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(voided.len())
}

/// Suspends a machine inside the caller's audited transaction (case K1): locked, so every
/// login, step-up and token check refuses it; its sign-ins revoked; its requests cancelled and
/// its grants revoked, which ends their brokered sessions. Returns the grants voided. Lifted
/// only when the machine gets a new owner (`machines::Machines::transfer`).
pub(crate) async fn suspend_machine_in(
    tx: &mut Tx,
    machine_id: &str,
    now: i64,
    why: &str,
) -> Result<Vec<String>> {
    let q = format!(
        "SELECT {GRANT_COLUMNS} FROM grants WHERE user_id = $1 AND state IN ('pending', 'approved', 'active')"
    );
    let open: Vec<GrantRow> = with_tx!(tx, t => {
        sqlx::query("UPDATE users SET locked = TRUE WHERE id = $1")
            .bind(machine_id).execute(&mut **t).await?;
        sqlx::query("UPDATE machines SET suspended_at = $1, suspended_reason = $2 \
                     WHERE user_id = $3 AND suspended_at IS NULL")
            .bind(now).bind(why).bind(machine_id).execute(&mut **t).await?;
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
            .bind(now).bind(machine_id).execute(&mut **t).await?;
        sqlx::query_as(&q).bind(machine_id).fetch_all(&mut **t).await?
    });
    end_all(tx, &open, now, why).await
}

// ---- views ---------------------------------------------------------------------------------
