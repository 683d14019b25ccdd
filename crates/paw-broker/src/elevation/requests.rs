//! Requests and decisions: asking (with step-up), break-glass, approving or denying, and the
//! requester cancelling or releasing their own grant.

use super::*;
#[allow(clippy::wildcard_imports)]
use crate::elevation::error::ElevationError;
use paw_policy::limits::MAX_COMMENT_CHARS;

/// A request signed by the requester's step-up. Auto-approved entitlements become active grants
/// at once (or at the requested start).
pub async fn request(
    svc: &Elevation,
    auth: &AuthContext,
    proof: &StepUp<kind::Request>,
) -> Result<GrantView> {
    let action = proof.action().ok_or_else(wrong_action)?;
    let Action::Request { start_at_ms, .. } = action else {
        return Err(wrong_action().into());
    };
    let policy = svc.policy.get();
    let (plan, e) = check_action(&policy, auth, action, svc.clock.now_ms())?;
    let now = svc.clock.now_ms();
    if start_at_ms.is_some_and(|t| t < now - 60_000 || t > now + 30 * 86_400_000) {
        return Err(ElevationError::BadRequest(
            "start time must be within the next 30 days".into(),
        ));
    }
    let row = new_row(auth, &policy, action, &e, now, proof.credential_id())?;
    let auto = matches!(plan.next, NextStep::AutoApprove);
    let id = row.id.clone();
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    live_user(&mut tx, &auth.user_id).await?;
    insert_grant(&mut tx, &row).await?;
    audit::append(
        &mut tx,
        now,
        Entry::new(
            &auth.user_name,
            "request_created",
            &id,
            Outcome::Success,
            grant_detail(&row, json!({"action_hash": proof.action_hash()})),
        ),
    )
    .await?;
    if auto {
        approve_now(&mut tx, &row, now, json!({"rule": "auto"})).await?;
    }
    let owner = if !auto && matches!(e.approval(), ApprovalRule::Owner) {
        machine_owners(&mut tx, &auth.user_id)
            .await?
            .and_then(|(o, _)| o)
    } else {
        None
    };
    tx.commit().await?;
    let view = grant_view(svc, &policy, &id).await?;
    svc.notifier.send(Notice {
        audience: match (auto, &owner) {
            (true, _) => Audience::user(&auth.user_name),
            (false, Some(owner)) => Audience::user(owner),
            (false, None) => Audience::approvers_of(&e),
        },
        event: live(
            if auto {
                "request_decided"
            } else {
                "request_new"
            },
            &view,
            format!(
                "{} asks for {} on {} for {} min",
                auth.user_name,
                row.role,
                row.target,
                row.duration_secs / 60
            ),
            now,
        ),
    });
    Ok(view)
}

/// Break-glass: no approval, but a step-up, a justification and a loud record first. The audit
/// event is written before the grant row in the same transaction, so the grant cannot exist
/// without it; every admin is told, and a two-person review opens.
pub async fn break_glass(
    svc: &Elevation,
    auth: &AuthContext,
    proof: &StepUp<kind::BreakGlass>,
) -> Result<GrantView> {
    auth.require_person("break-glass")?;
    let action = proof.action().ok_or_else(wrong_action)?;
    let policy = svc.policy.get();
    let (_plan, e) = check_action(&policy, auth, action, svc.clock.now_ms())?;
    let now = svc.clock.now_ms();
    let row = new_row(auth, &policy, action, &e, now, proof.credential_id())?;
    let id = row.id.clone();
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    live_user(&mut tx, &auth.user_id).await?;
    audit::append(
        &mut tx,
        now,
        Entry::new(
            &auth.user_name,
            "break_glass",
            &id,
            Outcome::Started,
            grant_detail(
                &row,
                json!({"severity": "critical", "action_hash": proof.action_hash()}),
            ),
        ),
    )
    .await?;
    insert_grant(&mut tx, &row).await?;
    let (starts, ends) = window(&row, now);
    move_state(
        &mut tx,
        &row,
        GrantEvent::Approve,
        Some((starts, ends)),
        None,
    )
    .await?;
    tx.commit().await?;
    tracing::error!(
        alert = true,
        event = "break_glass",
        user = %auth.user_name,
        grant = %id,
        target = %row.target,
        role = %row.role,
        "BREAK-GLASS access granted"
    );
    let view = grant_view(svc, &policy, &id).await?;
    svc.notifier.send(Notice {
        audience: Audience::admins_and(&auth.user_name),
        event: live(
            "break_glass",
            &view,
            format!(
                "BREAK-GLASS: {} took {} on {} for {} min: {}",
                auth.user_name,
                row.role,
                row.target,
                row.duration_secs / 60,
                row.justification
            ),
            now,
        ),
    });
    Ok(view)
}

pub(super) fn new_row(
    auth: &AuthContext,
    policy: &Policy,
    action: &Action,
    e: &Entitlement,
    now: i64,
    credential_id: &str,
) -> Result<GrantRow> {
    let break_glass = matches!(action, Action::BreakGlass { .. });
    let (target, role, duration, justification, ticket, start_at) = match action {
        Action::Request {
            target,
            role,
            duration_secs,
            justification,
            ticket,
            start_at_ms,
            ..
        } => (
            target,
            role,
            duration_secs,
            justification,
            ticket.clone(),
            *start_at_ms,
        ),
        Action::BreakGlass {
            target,
            role,
            duration_secs,
            justification,
            ..
        } => (target, role, duration_secs, justification, None, None),
        _ => return Err(wrong_action().into()),
    };
    Ok(GrantRow {
        id: new_id(),
        user_id: auth.user_id.clone(),
        user_name: auth.user_name.clone(),
        person: policy.person_of(&auth.user_name).as_str().to_owned(),
        entitlement: e.id().to_owned(),
        target_kind: e.target_kind().as_str().to_owned(),
        target: target.clone(),
        role: role.clone(),
        duration_secs: i64::from(*duration),
        justification: justification.clone(),
        ticket,
        start_at,
        break_glass,
        credential_id: credential_id.to_owned(),
        state: GrantState::Pending.as_str().to_owned(),
        created_at: now,
        starts_at: None,
        ends_at: None,
        ended_at: None,
        end_reason: None,
        warned: 0,
    })
}

/// When an approved grant runs: from the requested start (or now, if that is later) for its
/// duration. The duration counts from the real start, so a slow approval does not eat it.
pub(super) fn window(row: &GrantRow, now: i64) -> (i64, i64) {
    let starts = row.start_at.map_or(now, |s| s.max(now));
    (starts, starts.saturating_add(ms(row.duration_secs)))
}

pub(super) fn grant_detail(row: &GrantRow, extra: serde_json::Value) -> serde_json::Value {
    json!({
        "entitlement": row.entitlement,
        "target_kind": row.target_kind,
        "target": row.target,
        "role": row.role,
        "duration_secs": row.duration_secs,
        "justification": row.justification,
        "ticket": row.ticket,
        "start_at": row.start_at,
        "break_glass": row.break_glass,
        "extra": extra,
    })
}

/// The approvals that count, with each approver's groups as they are *now*.
pub(super) fn approvals(policy: &Policy, decisions: &[DecisionRow]) -> Vec<Approval> {
    decisions
        .iter()
        .filter(|d| d.approve)
        .map(|d| Approval {
            person: PersonId::new(&d.person),
            groups: policy.groups_of(&d.approver),
        })
        .collect()
}

/// An approver's decision, signed by their own step-up over exactly (request id, approve,
/// comment). Denial by one eligible approver denies; approval counts toward the quorum.
pub async fn decide(
    svc: &Elevation,
    auth: &AuthContext,
    proof: &StepUp<kind::Approve>,
) -> Result<GrantView> {
    let Some(Action::Approve {
        request_id,
        approve,
        comment,
    }) = proof.action()
    else {
        return Err(wrong_action().into());
    };
    auth.require_person("approving a request")?;
    check_comment(comment)?;
    let now = svc.clock.now_ms();
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    let policy = svc.policy.get();
    let me = policy.person_of(&auth.user_name);
    live_user(&mut tx, &auth.user_id).await?;
    let row = load(&mut tx, request_id).await?;
    let e = policy
        .entitlement(&row.entitlement)
        .ok_or_else(|| ElevationError::Conflict("the entitlement no longer exists".into()))?;
    may_decide(&mut tx, &policy, e, auth, &row).await?;
    if parse_state(&row.state)? != GrantState::Pending {
        return Err(ElevationError::Conflict(format!(
            "the request is {}, not pending",
            row.state
        )));
    }
    let inserted = with_tx!(&mut tx, t => {
        sqlx::query(
            "INSERT INTO decisions (grant_id, approver_id, approver, person, approve, comment, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&row.id).bind(&auth.user_id).bind(&auth.user_name).bind(me.as_str())
        .bind(*approve).bind(comment).bind(now)
        .execute(&mut **t).await?.rows_affected()
    });
    if inserted != 1 {
        return Err(ElevationError::Conflict(
            "you have already decided on this request (with this or another of your accounts)"
                .into(),
        ));
    }
    audit::append(
        &mut tx,
        now,
        Entry::new(
            &auth.user_name,
            if *approve {
                "request_approval"
            } else {
                "request_denial"
            },
            &row.id,
            Outcome::Success,
            json!({"comment": comment, "action_hash": proof.action_hash()}),
        ),
    )
    .await?;
    let mut decided = false;
    if !*approve {
        move_state(
            &mut tx,
            &row,
            GrantEvent::Deny,
            None,
            Some((now, &format!("denied by {}: {comment}", auth.user_name))),
        )
        .await?;
        decided = true;
    } else if matches!(e.approval(), ApprovalRule::Owner) {
        // One approval by the owner (checked above) is the rule.
        approve_now(
            &mut tx,
            &row,
            now,
            json!({"rule": "owner", "owner": auth.user_name}),
        )
        .await?;
        decided = true;
    } else if let ApprovalRule::Quorum(q) = e.approval() {
        let all = decisions_in(&mut tx, &row.id).await?;
        let outcome = q.evaluate(&PersonId::new(&row.person), &approvals(&policy, &all));
        if outcome.is_met() {
            approve_now(&mut tx, &row, now, json!({"rule": q.describe()})).await?;
            decided = true;
        }
    }
    tx.commit().await?;
    let view = grant_view(svc, &policy, &row.id).await?;
    if decided {
        svc.notifier.send(Notice {
            audience: Audience::user(&row.user_name),
            event: live(
                "request_decided",
                &view,
                format!(
                    "{} {} your request for {} on {}",
                    auth.user_name,
                    if *approve { "approved" } else { "denied" },
                    row.role,
                    row.target
                ),
                now,
            ),
        });
    }
    Ok(view)
}

/// Approves `row` now, inside the caller's audited transaction: its window from the broker's
/// clock, and one `request_approved` record saying by which rule (`detail`) and the window.
async fn approve_now(
    tx: &mut Tx,
    row: &GrantRow,
    now: i64,
    mut detail: serde_json::Value,
) -> Result<()> {
    let (starts, ends) = window(row, now);
    move_state(tx, row, GrantEvent::Approve, Some((starts, ends)), None).await?;
    detail["starts_at"] = json!(starts);
    detail["ends_at"] = json!(ends);
    audit::append(
        tx,
        now,
        Entry::new(
            "pawd",
            "request_approved",
            &row.id,
            Outcome::Success,
            detail,
        ),
    )
    .await?;
    Ok(())
}

pub(super) fn check_comment(comment: &str) -> Result<()> {
    if comment.chars().count() > MAX_COMMENT_CHARS || comment.chars().any(char::is_control) {
        return Err(ElevationError::BadRequest(format!(
            "a comment is at most {MAX_COMMENT_CHARS} characters on one line"
        )));
    }
    Ok(())
}

/// The requester withdraws a pending request.
pub async fn cancel(svc: &Elevation, auth: &AuthContext, id: &str) -> Result<GrantView> {
    end_own(
        svc,
        auth,
        id,
        GrantEvent::Cancel,
        "cancelled by the requester",
    )
    .await
}

/// The user gives a grant back early.
pub async fn release(svc: &Elevation, auth: &AuthContext, id: &str) -> Result<GrantView> {
    end_own(svc, auth, id, GrantEvent::Release, "released by the user").await
}

pub(super) async fn end_own(
    svc: &Elevation,
    auth: &AuthContext,
    id: &str,
    event: GrantEvent,
    why: &str,
) -> Result<GrantView> {
    let policy = svc.policy.get();
    let now = svc.clock.now_ms();
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    let mut row = load(&mut tx, id).await?;
    if row.user_id != auth.user_id {
        // Another user's id is indistinguishable from an unknown one (case B3).
        return Err(ElevationError::NotFound("no such request or grant".into()));
    }
    catch_up(&mut tx, &mut row, now).await?;
    move_state(&mut tx, &row, event, None, Some((now, why))).await?;
    end_tickets(&mut tx, id, now, "released").await?;
    audit::append(
        &mut tx,
        now,
        Entry::new(
            &auth.user_name,
            event_action(event),
            id,
            Outcome::Success,
            json!({"reason": why}),
        ),
    )
    .await?;
    tx.commit().await?;
    let view = grant_view(svc, &policy, id).await?;
    svc.notifier.send(Notice {
        audience: Audience::user_and_approvers(&row.user_name, &row.entitlement),
        event: live("grant_ended", &view, why.to_owned(), now),
    });
    Ok(view)
}
