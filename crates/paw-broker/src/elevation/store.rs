//! The SQL of grants and decisions: one place for the statements the other elevation files
//! share, each run inside the caller's audited transaction.

use super::*;
#[allow(clippy::wildcard_imports)]
use crate::elevation::error::ElevationError;

/// Refuses a locked or disabled user inside the transaction (their row is read there, so a
/// lock committed before this transaction is seen: case B5/B9).
pub(crate) async fn live_user(tx: &mut Tx, user_id: &str) -> Result<()> {
    let row: Option<(bool, Option<i64>)> = with_tx!(tx, t => {
        sqlx::query_as("SELECT locked, disabled_at FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut **t)
            .await?
    });
    match row {
        Some((false, None)) => Ok(()),
        Some((true, _)) => Err(ElevationError::AccountLocked(
            "the account is locked; ask an administrator".into(),
        )),
        _ => Err(ElevationError::Forbidden("the account is disabled".into())),
    }
}

pub(super) async fn insert_grant(tx: &mut Tx, r: &GrantRow) -> Result<()> {
    with_tx!(tx, t => {
        sqlx::query(
            "INSERT INTO grants (id, user_id, user_name, person, entitlement, target_kind, target, \
             role, duration_secs, justification, ticket, start_at, break_glass, credential_id, state, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&r.id)
        .bind(&r.user_id)
        .bind(&r.user_name)
        .bind(&r.person)
        .bind(&r.entitlement)
        .bind(&r.target_kind)
        .bind(&r.target)
        .bind(&r.role)
        .bind(r.duration_secs)
        .bind(&r.justification)
        .bind(&r.ticket)
        .bind(r.start_at)
        .bind(r.break_glass)
        .bind(&r.credential_id)
        .bind(&r.state)
        .bind(r.created_at)
        .execute(&mut **t)
        .await?;
    });
    Ok(())
}

/// Moves `row` along `event` if the state machine allows it from its stored state, and only if
/// the stored state is still what was read (a concurrent change makes this a conflict).
/// `window`: start and end when approving; `end`: when it ended and why.
pub(super) async fn move_state(
    tx: &mut Tx,
    row: &GrantRow,
    event: GrantEvent,
    window: Option<(i64, i64)>,
    end: Option<(i64, &str)>,
) -> Result<GrantState> {
    let from = parse_state(&row.state)?;
    let to = transition(from, event)
        .map_err(|e| ElevationError::Conflict(format!("the request is {from}: {e}")))?;
    let (starts, ends) = match window {
        Some((s, e)) => (Some(s), Some(e)),
        None => (row.starts_at, row.ends_at),
    };
    let (ended_at, reason) = match end {
        Some((at, why)) => (Some(at), Some(why.to_owned())),
        None => (row.ended_at, row.end_reason.clone()),
    };
    let done = with_tx!(tx, t => {
        sqlx::query(
            "UPDATE grants SET state = $1, starts_at = $2, ends_at = $3, ended_at = $4, \
             end_reason = $5 WHERE id = $6 AND state = $7",
        )
        .bind(to.as_str())
        .bind(starts)
        .bind(ends)
        .bind(ended_at)
        .bind(reason)
        .bind(&row.id)
        .bind(from.as_str())
        .execute(&mut **t)
        .await?
        .rows_affected()
    });
    if done != 1 {
        return Err(ElevationError::Conflict(
            "the request changed meanwhile".into(),
        ));
    }
    Ok(to)
}

pub(crate) async fn load(tx: &mut Tx, id: &str) -> Result<GrantRow> {
    let q = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1");
    let row: Option<GrantRow> = with_tx!(tx, t => {
        sqlx::query_as(&q).bind(id).fetch_optional(&mut **t).await?
    });
    row.ok_or_else(|| ElevationError::NotFound("no such request or grant".into()))
}

pub(super) async fn decisions_in(tx: &mut Tx, id: &str) -> Result<Vec<DecisionRow>> {
    let rows: Vec<DecisionRow> = with_tx!(tx, t => {
        sqlx::query_as("SELECT approver, person, approve, comment, at FROM decisions WHERE grant_id = $1 ORDER BY at")
            .bind(id).fetch_all(&mut **t).await?
    });
    Ok(rows)
}

/// The owner's name and the backup owner (a user name or `group:NAME`) of `user_id` when it is
/// a machine identity; `None` for a person. Read inside the decision's transaction, so an owner
/// who was just replaced no longer decides.
pub(crate) async fn machine_owners(
    tx: &mut Tx,
    user_id: &str,
) -> Result<Option<(Option<String>, Option<String>)>> {
    Ok(with_tx!(tx, t => {
        sqlx::query_as("SELECT o.name, m.backup_owner FROM machines m \
                        LEFT JOIN users o ON o.id = m.owner_id WHERE m.user_id = $1")
            .bind(user_id)
            .fetch_optional(&mut **t)
            .await?
    }))
}

/// Whether `auth` may decide on `row` under `e`: the quorum's groups (paw-policy), or, under
/// the owner rule, the requesting machine's owner or backup owner, never the requester's
/// own person. The one check the decision and the inbox share.
pub(crate) async fn may_decide(
    tx: &mut Tx,
    policy: &Policy,
    e: &Entitlement,
    auth: &AuthContext,
    row: &GrantRow,
) -> Result<()> {
    let me = policy.person_of(&auth.user_name);
    if !matches!(e.approval(), ApprovalRule::Owner) {
        return Ok(paw_policy::may_approve(
            e,
            &me,
            &policy.groups_of(&auth.user_name),
            &PersonId::new(&row.person),
        )?);
    }
    if me.as_str() == row.person {
        return Err(ElevationError::Forbidden(
            "nobody approves their own request".into(),
        ));
    }
    let Some((owner, backup)) = machine_owners(tx, &row.user_id).await? else {
        return Err(ElevationError::Forbidden(
            "this entitlement is approved by a machine's owner, and the requester is no machine"
                .into(),
        ));
    };
    if owner.as_deref() == Some(auth.user_name.as_str())
        || policy.backs_up(backup.as_deref(), &auth.user_name)
    {
        Ok(())
    } else {
        Err(ElevationError::Forbidden(
            "only the requesting machine's owner or backup owner approves this request".into(),
        ))
    }
}
