//! Grants after approval: revocation, the break-glass review, redeeming a session ticket and
//! ending a session the grant carries.

use super::*;
#[allow(clippy::wildcard_imports)]
use crate::elevation::error::ElevationError;

/// Brings `row` up to the broker's clock before a transition and returns its state now: an
/// approved grant whose start has passed but that the ticker has not reached yet is written
/// `active` (so the state machine moves it from its true state); an expired one is left to
/// the ticker.
pub(super) async fn catch_up(tx: &mut Tx, row: &mut GrantRow, now: i64) -> Result<GrantState> {
    let current = effective(row, now)?;
    if current == GrantState::Active && row.state == GrantState::Approved.as_str() {
        with_tx!(tx, t => {
            sqlx::query("UPDATE grants SET state = 'active' WHERE id = $1 AND state = 'approved'")
                .bind(&row.id).execute(&mut **t).await?;
        });
        row.state = GrantState::Active.as_str().to_owned();
    }
    Ok(current)
}

pub(super) fn event_action(event: GrantEvent) -> &'static str {
    match event {
        GrantEvent::Approve => "request_approved",
        GrantEvent::Deny => "request_denied",
        GrantEvent::Cancel => "request_cancelled",
        GrantEvent::Activate => "grant_started",
        GrantEvent::Expire => "grant_expired",
        GrantEvent::Revoke => "grant_revoked",
        GrantEvent::Release => "grant_released",
    }
}

/// An approver of the entitlement or an admin ends someone's grant (or pending request).
pub async fn revoke(
    svc: &Elevation,
    auth: &AuthContext,
    id: &str,
    reason: &str,
) -> Result<GrantView> {
    check_comment(reason)?;
    if reason.trim().is_empty() {
        return Err(ElevationError::BadRequest(
            "say why the grant is revoked".into(),
        ));
    }
    let policy = svc.policy.get();
    let now = svc.clock.now_ms();
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    let mut row = load(&mut tx, id).await?;
    let allowed = auth.is_admin()
        || policy
            .entitlement(&row.entitlement)
            .is_some_and(|e| policy.is_approver_of(&auth.user_name, e));
    if !allowed {
        return Err(ElevationError::Forbidden(
            "only an approver of this entitlement or an admin can revoke".into(),
        ));
    }
    let current = catch_up(&mut tx, &mut row, now).await?;
    if current == GrantState::Pending {
        // Revoking a request that was never granted denies it.
        move_state(
            &mut tx,
            &row,
            GrantEvent::Deny,
            None,
            Some((now, &format!("revoked by {}: {reason}", auth.user_name))),
        )
        .await?;
    } else {
        move_state(
            &mut tx,
            &row,
            GrantEvent::Revoke,
            None,
            Some((now, &format!("revoked by {}: {reason}", auth.user_name))),
        )
        .await?;
    }
    end_tickets(&mut tx, id, now, "revoked").await?;
    audit::append(
        &mut tx,
        now,
        Entry::new(
            &auth.user_name,
            "grant_revoked",
            id,
            Outcome::Success,
            json!({"reason": reason}),
        ),
    )
    .await?;
    tx.commit().await?;
    let view = grant_view(svc, &policy, id).await?;
    svc.notifier.send(Notice {
        audience: Audience::user_and_approvers(&row.user_name, &row.entitlement),
        event: live(
            "grant_ended",
            &view,
            format!("revoked by {}: {reason}", auth.user_name),
            now,
        ),
    });
    Ok(view)
}

/// Ends a grant's sessions in the grant's transaction; the SSH front door sees `ended_at` and
/// closes the live connections (see [`crate::sessions::watch_ends`]).
pub(super) async fn end_tickets(tx: &mut Tx, grant_id: &str, now: i64, reason: &str) -> Result<()> {
    with_tx!(tx, t => {
        sqlx::query("UPDATE session_tickets SET ended_at = $1, end_reason = $3 WHERE grant_id = $2 AND ended_at IS NULL")
            .bind(now).bind(grant_id).bind(reason).execute(&mut **t).await?;
    });
    tx.notify(crate::store::SESSION_ENDS).await?;
    Ok(())
}

/// A reviewer (never the user who broke the glass) signs off a break-glass use. Two different
/// people close the review.
pub async fn close_review(
    svc: &Elevation,
    auth: &AuthContext,
    id: &str,
    comment: &str,
) -> Result<GrantView> {
    check_comment(comment)?;
    if comment.trim().is_empty() {
        return Err(ElevationError::BadRequest(
            "a review needs a comment".into(),
        ));
    }
    let policy = svc.policy.get();
    let now = svc.clock.now_ms();
    let me = policy.person_of(&auth.user_name);
    if !auth.is_admin() {
        return Err(ElevationError::Forbidden(
            "only admins review break-glass use".into(),
        ));
    }
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    let row = load(&mut tx, id).await?;
    if !row.break_glass {
        return Err(ElevationError::NotFound("no such break-glass use".into()));
    }
    may_review(&PersonId::new(&row.person), &me)?;
    let inserted = with_tx!(&mut tx, t => {
        sqlx::query("INSERT INTO reviews (grant_id, reviewer_id, reviewer, person, comment, at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING")
            .bind(id).bind(&auth.user_id).bind(&auth.user_name).bind(me.as_str()).bind(comment).bind(now)
            .execute(&mut **t).await?.rows_affected()
    });
    if inserted != 1 {
        return Err(ElevationError::Conflict(
            "you have already reviewed this use".into(),
        ));
    }
    let reviewers = reviewers_in(&mut tx, id).await?;
    let closed = review_closed(
        &PersonId::new(&row.person),
        &reviewers
            .iter()
            .map(|(_, p)| PersonId::new(p))
            .collect::<Vec<_>>(),
    );
    audit::append(
        &mut tx,
        now,
        Entry::new(
            &auth.user_name,
            if closed {
                "break_glass_review_closed"
            } else {
                "break_glass_reviewed"
            },
            id,
            Outcome::Success,
            json!({"comment": comment}),
        ),
    )
    .await?;
    tx.commit().await?;
    let view = grant_view(svc, &policy, id).await?;
    if closed {
        svc.notifier.send(Notice {
            audience: Audience::admins_and(&row.user_name),
            event: live(
                "review_closed",
                &view,
                "break-glass review closed".into(),
                now,
            ),
        });
    }
    Ok(view)
}

pub(super) async fn reviewers_in(tx: &mut Tx, id: &str) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = with_tx!(tx, t => {
        sqlx::query_as("SELECT reviewer, person FROM reviews WHERE grant_id = $1 ORDER BY at")
            .bind(id).fetch_all(&mut **t).await?
    });
    Ok(rows)
}

/// A one-time session ticket for an active grant, after a session-scoped step-up. Everything
/// the ticket depends on is checked in the transaction that issues it: the grant is active by
/// the broker's clock, the user is neither locked nor disabled, the approvals still form a
/// quorum with today's group membership (B5), and the grant has fewer open sessions than its
/// entitlement allows (B6).
pub async fn redeem(
    svc: &Elevation,
    auth: &AuthContext,
    proof: &StepUp<kind::Session>,
) -> Result<RedeemResponse> {
    let Some(Action::Session { grant_id, target }) = proof.action() else {
        return Err(wrong_action().into());
    };
    let now = svc.clock.now_ms();
    let session_id = new_id();
    let ticket = random_secret()?;
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    // Read under the lock: a policy change on record before this point is in force here.
    let policy = svc.policy.get();
    let refused = issue_checks(&mut tx, &policy, auth, grant_id, target, now)
        .await
        .err();
    if let Some(e) = refused {
        drop(tx);
        audit::record(
            &svc.db,
            now,
            Entry::new(
                &auth.user_name,
                "session_ticket",
                grant_id,
                Outcome::Denied,
                json!({"reason": e.to_string()}),
            ),
        )
        .await?;
        return Err(e);
    }
    let expires = now + TICKET_TTL_MS;
    with_tx!(&mut tx, t => {
        sqlx::query("INSERT INTO session_tickets (id, grant_id, ticket_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&session_id).bind(grant_id).bind(secret_hash(&ticket)).bind(now).bind(expires)
            .execute(&mut **t).await?;
    });
    audit::append(
        &mut tx,
        now,
        Entry::new(
            &auth.user_name,
            "session_ticket",
            grant_id,
            Outcome::Success,
            json!({"session_id": session_id, "target": target, "action_hash": proof.action_hash()}),
        ),
    )
    .await?;
    tx.commit().await?;
    let (ssh_addr, ssh_host_key) = match &svc.front_door {
        Some(f) => (Some(f.addr.clone()), f.host_key.clone()),
        None => (None, None),
    };
    let database = svc
        .front_door
        .as_ref()
        .and_then(|f| f.databases.get(target).cloned());
    Ok(RedeemResponse {
        session_id,
        ticket,
        expires_at_ms: expires,
        ssh_addr,
        ssh_host_key,
        database,
    })
}

pub(super) async fn issue_checks(
    tx: &mut Tx,
    policy: &Policy,
    auth: &AuthContext,
    grant_id: &str,
    target: &str,
    now: i64,
) -> Result<()> {
    live_user(tx, &auth.user_id).await?;
    let row = load(tx, grant_id).await?;
    if row.user_id != auth.user_id || row.target != target {
        return Err(ElevationError::NotFound("no such grant".into()));
    }
    if effective(&row, now)? != GrantState::Active {
        return Err(ElevationError::Forbidden("the grant is not active".into()));
    }
    let e = policy
        .entitlement(&row.entitlement)
        .ok_or_else(|| ElevationError::Forbidden("the entitlement no longer exists".into()))?;
    if !row.break_glass {
        if let ApprovalRule::Quorum(q) = e.approval() {
            let all = decisions_in(tx, grant_id).await?;
            if !q
                .evaluate(&PersonId::new(&row.person), &approvals(policy, &all))
                .is_met()
            {
                return Err(ElevationError::Forbidden(
                    "the approvals no longer hold (an approver left the approving group)".into(),
                ));
            }
        }
    }
    let open: i64 = with_tx!(tx, t => {
        sqlx::query_scalar("SELECT COUNT(*) FROM session_tickets WHERE grant_id = $1 AND ended_at IS NULL")
            .bind(grant_id).fetch_one(&mut **t).await?
    });
    if open >= i64::from(e.max_sessions()) {
        return Err(ElevationError::Conflict(format!(
            "the grant allows {} session(s) at a time",
            e.max_sessions()
        )));
    }
    Ok(())
}
