//! Just-in-time elevation: requests, approvals, grants, break-glass and its review, session
//! tickets, and the clock that starts and ends grants.
//!
//! Rules kept here:
//! - **The broker's clock decides.** Start, end and every check use `svc.clock`; a grant is
//!   never active past `ends_at` even if the ticker is late, because every read computes the
//!   effective state from the clock ([`effective`]).
//! - **The stored request is the request.** Requests, decisions and break-glass take the
//!   action from a verified step-up ([`StepUp`]); decisions name a request id and the broker
//!   uses its own copy of that request (case B3).
//! - **Check and change in one transaction, audited in it.** Every change takes the audit lock
//!   first ([`audit::lock`]), re-reads what it depends on, checks, writes and appends its
//!   audit record before committing; a refusal changes nothing. Approvals are re-counted with
//!   today's group membership when a ticket is issued (case B5).
//! - **Transitions come from paw-policy.** Every state change goes through
//!   [`paw_policy::transition`], so an edge the state machine does not list cannot happen.

pub mod keys;
pub mod notify;
pub mod policy;

use paw_audit::Outcome;
use paw_policy::{
    check_request, may_approve, may_review, review_closed, transition, Approval, ApprovalRule,
    Entitlement, GrantEvent, GrantState, NextStep, PersonId, RequestInput,
};
use paw_proto::action::Action;
use paw_proto::elevation::{
    DecisionView, EntitlementList, EntitlementView, GrantList, GrantView, Inbox, InboxItem,
    LiveEvent, RedeemResponse,
};
use paw_proto::ErrorCode;
use serde_json::json;

use crate::audit::Entry;
use crate::base::error::{BrokerError, Result};
use crate::base::util::{new_id, random_secret, refuse, secret_hash};
use crate::elevation::notify::{Audience, Notice};
use crate::elevation::policy::Policy;
use crate::identity::stepup::{kind, wrong_action, StepUp};
use crate::base::auth::AuthContext;
use crate::store::Tx;
use crate::{audit, with_pool, with_tx};

/// How long a session ticket is valid for opening its session.
pub const TICKET_TTL_MS: i64 = 60_000;
/// Warnings before a grant ends (ms before the end, and the bit recorded in `warned`).
pub const WARNINGS: [(i64, i64); 2] = [(5 * 60_000, 1), (60_000, 2)];
/// How many of the requester's recent grants an approver sees.
const RECENT: i64 = 5;
/// The most grants the oversight list holds (newest first).
const OVERSIGHT_LIMIT: i64 = 200;
pub use crate::base::auth::{ADMIN_ROLE, HELPDESK_ROLE};

/// Elevation as a service: the store, the broker's clock, the policy (reloaded on SIGHUP),
/// the notifier for live events and the webhook, and what a session ticket tells the client
/// about the front door.
#[derive(Clone)]
pub struct Elevation {
    pub db: crate::store::Db,
    pub clock: std::sync::Arc<dyn crate::base::clock::Clock>,
    pub policy: policy::SharedPolicy,
    pub notifier: notify::Notifier,
    pub front_door: Option<std::sync::Arc<FrontDoor>>,
}

/// Where clients dial a redeemed ticket, as the sessions layer configured it. Plain data, so
/// elevation needs nothing from the layer above it.
#[derive(Debug, Clone, Default)]
pub struct FrontDoor {
    /// What clients dial: `ssh_public`, else the bound address.
    pub addr: String,
    /// The front door's host key, OpenSSH format, for the client to pin.
    pub host_key: Option<String>,
    /// Database name per PostgreSQL target.
    pub databases: std::collections::HashMap<String, String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GrantRow {
    pub id: String,
    pub user_id: String,
    pub user_name: String,
    pub person: String,
    pub entitlement: String,
    pub target_kind: String,
    pub target: String,
    pub role: String,
    pub duration_secs: i64,
    pub justification: String,
    pub ticket: Option<String>,
    pub start_at: Option<i64>,
    pub break_glass: bool,
    /// The security key (base64url credential id) whose step-up asked for it (case A16).
    pub credential_id: String,
    pub state: String,
    pub created_at: i64,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
    pub warned: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct DecisionRow {
    approver: String,
    person: String,
    approve: bool,
    comment: String,
    at: i64,
}

const GRANT_COLUMNS: &str = "id, user_id, user_name, person, entitlement, target_kind, target, \
    role, duration_secs, justification, ticket, start_at, break_glass, credential_id, state, \
    created_at, starts_at, ends_at, ended_at, end_reason, warned";

fn parse_state(s: &str) -> Result<GrantState> {
    GrantState::ALL
        .into_iter()
        .find(|g| g.as_str() == s)
        .ok_or_else(|| BrokerError::Internal(format!("unknown grant state {s:?}")))
}

/// The state at `now` by the broker's clock, whatever the ticker has written so far.
pub fn effective(row: &GrantRow, now: i64) -> Result<GrantState> {
    let stored = parse_state(&row.state)?;
    let started = row.starts_at.is_some_and(|t| t <= now);
    let over = row.ends_at.is_some_and(|t| t <= now);
    Ok(match stored {
        GrantState::Approved if started && over => GrantState::Expired,
        GrantState::Approved if started => GrantState::Active,
        GrantState::Active if over => GrantState::Expired,
        s => s,
    })
}

fn ms(secs: i64) -> i64 {
    secs.saturating_mul(1000)
}

fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn is_admin(roles: &[String]) -> bool {
    roles.iter().any(|r| r == ADMIN_ROLE)
}

/// What the request form lists: the entitlements `auth` may request.
pub fn entitlements(svc: &Elevation, auth: &AuthContext) -> EntitlementList {
    let policy = svc.policy.get();
    let mine = policy.groups_of(&auth.user_name);
    let entitlements = if auth.roles.iter().any(|r| r == HELPDESK_ROLE) {
        Vec::new()
    } else {
        policy
            .entitlements
            .iter()
            .filter(|e| e.is_requester(&mine))
            .map(view_entitlement)
            .collect()
    };
    EntitlementList { entitlements }
}

fn view_entitlement(e: &Entitlement) -> EntitlementView {
    EntitlementView {
        id: e.id().to_owned(),
        description: e.description().to_owned(),
        target_kind: e.target_kind().as_str().to_owned(),
        target: e.target().as_str().to_owned(),
        role: e.role().to_owned(),
        max_duration_secs: u32_of(e.max_duration_secs()),
        rule: e.describe_rule(),
        auto_approve: matches!(e.approval(), ApprovalRule::Auto),
        ticket_pattern: e.ticket().map(|p| p.as_str().to_owned()),
        break_glass_max_secs: e.break_glass().map(|b| u32_of(b.max_duration_secs())),
    }
}

/// Checks a request or break-glass action against the policy for `auth`; used both before
/// the step-up starts (so nobody signs a request that cannot succeed) and after it.
pub fn check_action(
    policy: &Policy,
    auth: &AuthContext,
    action: &Action,
) -> Result<(paw_policy::RequestPlan, Entitlement)> {
    if auth.roles.iter().any(|r| r == HELPDESK_ROLE) {
        return Err(refuse(
            ErrorCode::Forbidden,
            "the help-desk role cannot request elevation",
        ));
    }
    let (entitlement, target, role, duration, justification, ticket, break_glass) = match action {
        Action::Request {
            entitlement,
            target,
            role,
            duration_secs,
            justification,
            ticket,
            ..
        } => (
            entitlement,
            target,
            role,
            duration_secs,
            justification,
            ticket.clone(),
            false,
        ),
        Action::BreakGlass {
            entitlement,
            target,
            role,
            duration_secs,
            justification,
        } => (
            entitlement,
            target,
            role,
            duration_secs,
            justification,
            None,
            true,
        ),
        _ => return Err(wrong_action()),
    };
    let e = policy
        .entitlement(entitlement)
        .ok_or_else(|| refuse(ErrorCode::NotFound, "no such entitlement"))?;
    let plan = check_request(
        e,
        &RequestInput {
            requester: policy.person_of(&auth.user_name),
            requester_groups: policy.groups_of(&auth.user_name),
            target_kind: e.target_kind(),
            target: target.clone(),
            role: role.clone(),
            duration_secs: i64::from(*duration),
            justification: justification.clone(),
            ticket,
            break_glass,
        },
    )?;
    Ok((plan, e.clone()))
}

/// A request signed by the requester's step-up. Auto-approved entitlements become active grants
/// at once (or at the requested start).
pub async fn request(
    svc: &Elevation,
    auth: &AuthContext,
    proof: &StepUp<kind::Request>,
) -> Result<GrantView> {
    let action = proof.action().ok_or_else(wrong_action)?;
    let Action::Request { start_at_ms, .. } = action else {
        return Err(wrong_action());
    };
    let policy = svc.policy.get();
    let (plan, e) = check_action(&policy, auth, action)?;
    let now = svc.clock.now_ms();
    if start_at_ms.is_some_and(|t| t < now - 60_000 || t > now + 30 * 86_400_000) {
        return Err(refuse(
            ErrorCode::BadRequest,
            "start time must be within the next 30 days",
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
        let (starts, ends) = window(&row, now);
        move_state(
            &mut tx,
            &row,
            GrantEvent::Approve,
            Some((starts, ends)),
            None,
        )
        .await?;
        audit::append(
            &mut tx,
            now,
            Entry::new(
                "pawd",
                "request_approved",
                &id,
                Outcome::Success,
                json!({"rule": "auto", "starts_at": starts, "ends_at": ends}),
            ),
        )
        .await?;
    }
    tx.commit().await?;
    let view = grant_view(svc, &policy, &id).await?;
    svc.notifier.send(Notice {
        audience: if auto {
            Audience::user(&auth.user_name)
        } else {
            Audience::approvers_of(&e)
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
    let action = proof.action().ok_or_else(wrong_action)?;
    let policy = svc.policy.get();
    let (_plan, e) = check_action(&policy, auth, action)?;
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

fn new_row(
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
        _ => return Err(wrong_action()),
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
fn window(row: &GrantRow, now: i64) -> (i64, i64) {
    let starts = row.start_at.map_or(now, |s| s.max(now));
    (starts, starts.saturating_add(ms(row.duration_secs)))
}

fn grant_detail(row: &GrantRow, extra: serde_json::Value) -> serde_json::Value {
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
        Some((true, _)) => Err(refuse(
            ErrorCode::AccountLocked,
            "the account is locked; ask an administrator",
        )),
        _ => Err(refuse(ErrorCode::Forbidden, "the account is disabled")),
    }
}

async fn insert_grant(tx: &mut Tx, r: &GrantRow) -> Result<()> {
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
async fn move_state(
    tx: &mut Tx,
    row: &GrantRow,
    event: GrantEvent,
    window: Option<(i64, i64)>,
    end: Option<(i64, &str)>,
) -> Result<GrantState> {
    let from = parse_state(&row.state)?;
    let to = transition(from, event)
        .map_err(|e| refuse(ErrorCode::Conflict, format!("the request is {from}: {e}")))?;
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
        return Err(refuse(ErrorCode::Conflict, "the request changed meanwhile"));
    }
    Ok(to)
}

pub(crate) async fn load(tx: &mut Tx, id: &str) -> Result<GrantRow> {
    let q = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1");
    let row: Option<GrantRow> = with_tx!(tx, t => {
        sqlx::query_as(&q).bind(id).fetch_optional(&mut **t).await?
    });
    row.ok_or_else(|| refuse(ErrorCode::NotFound, "no such request or grant"))
}

async fn decisions_in(tx: &mut Tx, id: &str) -> Result<Vec<DecisionRow>> {
    let rows: Vec<DecisionRow> = with_tx!(tx, t => {
        sqlx::query_as("SELECT approver, person, approve, comment, at FROM decisions WHERE grant_id = $1 ORDER BY at")
            .bind(id).fetch_all(&mut **t).await?
    });
    Ok(rows)
}

/// The approvals that count, with each approver's groups as they are *now*.
fn approvals(policy: &Policy, decisions: &[DecisionRow]) -> Vec<Approval> {
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
        return Err(wrong_action());
    };
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
        .ok_or_else(|| refuse(ErrorCode::Conflict, "the entitlement no longer exists"))?;
    may_approve(
        e,
        &me,
        &policy.groups_of(&auth.user_name),
        &PersonId::new(&row.person),
    )?;
    if parse_state(&row.state)? != GrantState::Pending {
        return Err(refuse(
            ErrorCode::Conflict,
            format!("the request is {}, not pending", row.state),
        ));
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
        return Err(refuse(
            ErrorCode::Conflict,
            "you have already decided on this request (with this or another of your accounts)",
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
    } else if let ApprovalRule::Quorum(q) = e.approval() {
        let all = decisions_in(&mut tx, &row.id).await?;
        let outcome = q.evaluate(&PersonId::new(&row.person), &approvals(&policy, &all));
        if outcome.is_met() {
            let (starts, ends) = window(&row, now);
            move_state(
                &mut tx,
                &row,
                GrantEvent::Approve,
                Some((starts, ends)),
                None,
            )
            .await?;
            audit::append(
                &mut tx,
                now,
                Entry::new(
                    "pawd",
                    "request_approved",
                    &row.id,
                    Outcome::Success,
                    json!({"rule": q.describe(), "starts_at": starts, "ends_at": ends}),
                ),
            )
            .await?;
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

fn check_comment(comment: &str) -> Result<()> {
    if comment.chars().count() > 1000 || comment.chars().any(char::is_control) {
        return Err(refuse(
            ErrorCode::BadRequest,
            "a comment is at most 1000 characters on one line",
        ));
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

async fn end_own(
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
        return Err(refuse(ErrorCode::NotFound, "no such request or grant"));
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

/// Brings `row` up to the broker's clock before a transition and returns its state now: an
/// approved grant whose start has passed but that the ticker has not reached yet is written
/// `active` (so the state machine moves it from its true state); an expired one is left to
/// the ticker.
async fn catch_up(tx: &mut Tx, row: &mut GrantRow, now: i64) -> Result<GrantState> {
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

fn event_action(event: GrantEvent) -> &'static str {
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
        return Err(refuse(
            ErrorCode::BadRequest,
            "say why the grant is revoked",
        ));
    }
    let policy = svc.policy.get();
    let now = svc.clock.now_ms();
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    let mut row = load(&mut tx, id).await?;
    let allowed = is_admin(&auth.roles)
        || policy
            .entitlement(&row.entitlement)
            .is_some_and(|e| policy.is_approver_of(&auth.user_name, e));
    if !allowed {
        return Err(refuse(
            ErrorCode::Forbidden,
            "only an approver of this entitlement or an admin can revoke",
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
async fn end_tickets(tx: &mut Tx, grant_id: &str, now: i64, reason: &str) -> Result<()> {
    with_tx!(tx, t => {
        sqlx::query("UPDATE session_tickets SET ended_at = $1, end_reason = $3 WHERE grant_id = $2 AND ended_at IS NULL")
            .bind(now).bind(grant_id).bind(reason).execute(&mut **t).await?;
    });
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
        return Err(refuse(ErrorCode::BadRequest, "a review needs a comment"));
    }
    let policy = svc.policy.get();
    let now = svc.clock.now_ms();
    let me = policy.person_of(&auth.user_name);
    if !is_admin(&auth.roles) {
        return Err(refuse(
            ErrorCode::Forbidden,
            "only admins review break-glass use",
        ));
    }
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    let row = load(&mut tx, id).await?;
    if !row.break_glass {
        return Err(refuse(ErrorCode::NotFound, "no such break-glass use"));
    }
    may_review(&PersonId::new(&row.person), &me)?;
    let inserted = with_tx!(&mut tx, t => {
        sqlx::query("INSERT INTO reviews (grant_id, reviewer_id, reviewer, person, comment, at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING")
            .bind(id).bind(&auth.user_id).bind(&auth.user_name).bind(me.as_str()).bind(comment).bind(now)
            .execute(&mut **t).await?.rows_affected()
    });
    if inserted != 1 {
        return Err(refuse(
            ErrorCode::Conflict,
            "you have already reviewed this use",
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

async fn reviewers_in(tx: &mut Tx, id: &str) -> Result<Vec<(String, String)>> {
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
        return Err(wrong_action());
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

async fn issue_checks(
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
        return Err(refuse(ErrorCode::NotFound, "no such grant"));
    }
    if effective(&row, now)? != GrantState::Active {
        return Err(refuse(ErrorCode::Forbidden, "the grant is not active"));
    }
    let e = policy
        .entitlement(&row.entitlement)
        .ok_or_else(|| refuse(ErrorCode::Forbidden, "the entitlement no longer exists"))?;
    if !row.break_glass {
        if let ApprovalRule::Quorum(q) = e.approval() {
            let all = decisions_in(tx, grant_id).await?;
            if !q
                .evaluate(&PersonId::new(&row.person), &approvals(policy, &all))
                .is_met()
            {
                return Err(refuse(
                    ErrorCode::Forbidden,
                    "the approvals no longer hold (an approver left the approving group)",
                ));
            }
        }
    }
    let open: i64 = with_tx!(tx, t => {
        sqlx::query_scalar("SELECT COUNT(*) FROM session_tickets WHERE grant_id = $1 AND ended_at IS NULL")
            .bind(grant_id).fetch_one(&mut **t).await?
    });
    if open >= i64::from(e.max_sessions()) {
        return Err(refuse(
            ErrorCode::Conflict,
            format!("the grant allows {} session(s) at a time", e.max_sessions()),
        ));
    }
    Ok(())
}

/// Ends a session ticket (the session closed).
pub async fn end_session(svc: &Elevation, auth: &AuthContext, session_id: &str) -> Result<()> {
    let now = svc.clock.now_ms();
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    let done = with_tx!(&mut tx, t => {
        sqlx::query("UPDATE session_tickets SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL \
                     AND grant_id IN (SELECT id FROM grants WHERE user_id = $3)")
            .bind(now).bind(session_id).bind(&auth.user_id).execute(&mut **t).await?.rows_affected()
    });
    if done != 1 {
        return Err(refuse(ErrorCode::NotFound, "no such open session"));
    }
    audit::append(
        &mut tx,
        now,
        Entry::new(
            &auth.user_name,
            "session_ended",
            session_id,
            Outcome::Success,
            json!({}),
        ),
    )
    .await?;
    tx.commit().await
}

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

async fn advance(svc: &Elevation, policy: &Policy, row: GrantRow, now: i64) -> Result<usize> {
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
async fn end_all(tx: &mut Tx, rows: &[GrantRow], now: i64, why: &str) -> Result<Vec<String>> {
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
        .ok_or_else(|| refuse(ErrorCode::NotFound, "no such user"))?;
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
    tx.commit().await?;
    Ok(voided.len())
}

// ---- views ---------------------------------------------------------------------------------

fn live(kind: &str, view: &GrantView, message: String, now: i64) -> LiveEvent {
    LiveEvent {
        kind: kind.to_owned(),
        grant_id: view.id.clone(),
        state: view.state.clone(),
        message,
        at_ms: now,
    }
}

async fn grant_view(svc: &Elevation, policy: &Policy, id: &str) -> Result<GrantView> {
    let now = svc.clock.now_ms();
    let mut tx = svc.db.begin().await?;
    let row = load(&mut tx, id).await?;
    let view = view_of(&mut tx, policy, row, now).await?;
    tx.commit().await?;
    Ok(view)
}

async fn view_of(tx: &mut Tx, policy: &Policy, row: GrantRow, now: i64) -> Result<GrantView> {
    let decisions = decisions_in(tx, &row.id).await?;
    let entitlement = policy.entitlement(&row.entitlement);
    let current = effective(&row, now)?;
    let (rule, missing) = match entitlement.map(Entitlement::approval) {
        Some(ApprovalRule::Quorum(q)) => (
            entitlement
                .map(Entitlement::describe_rule)
                .unwrap_or_default(),
            if current == GrantState::Pending {
                q.evaluate(&PersonId::new(&row.person), &approvals(policy, &decisions))
                    .missing()
            } else {
                0
            },
        ),
        Some(ApprovalRule::Auto) => (
            entitlement
                .map(Entitlement::describe_rule)
                .unwrap_or_default(),
            0,
        ),
        None => ("the entitlement no longer exists".to_owned(), 0),
    };
    let reviewers = if row.break_glass {
        reviewers_in(tx, &row.id).await?
    } else {
        Vec::new()
    };
    let closed = row.break_glass
        && review_closed(
            &PersonId::new(&row.person),
            &reviewers
                .iter()
                .map(|(_, p)| PersonId::new(p))
                .collect::<Vec<_>>(),
        );
    let end_reason = match (current, &row.end_reason) {
        (GrantState::Expired, None) => Some("expired".to_owned()),
        (_, r) => r.clone(),
    };
    Ok(GrantView {
        id: row.id,
        user: row.user_name,
        entitlement: row.entitlement,
        target_kind: row.target_kind,
        target: row.target,
        role: row.role,
        duration_secs: u32_of(row.duration_secs),
        justification: row.justification,
        ticket: row.ticket,
        break_glass: row.break_glass,
        state: current.as_str().to_owned(),
        created_at_ms: row.created_at,
        start_at_ms: row.start_at,
        starts_at_ms: row.starts_at,
        ends_at_ms: row.ends_at,
        ended_at_ms: if current == GrantState::Expired {
            row.ended_at.or(row.ends_at)
        } else {
            row.ended_at
        },
        end_reason,
        decisions: decisions
            .into_iter()
            .map(|d| DecisionView {
                approver: d.approver,
                approve: d.approve,
                comment: d.comment,
                at_ms: d.at,
            })
            .collect(),
        rule,
        approvals_missing: missing,
        reviewers: reviewers.into_iter().map(|(r, _)| r).collect(),
        review_closed: closed,
    })
}

/// The caller's own requests and grants, newest first.
pub async fn mine(svc: &Elevation, auth: &AuthContext) -> Result<GrantList> {
    let policy = svc.policy.get();
    let now = svc.clock.now_ms();
    let q = format!(
        "SELECT {GRANT_COLUMNS} FROM grants WHERE user_id = $1 ORDER BY created_at DESC LIMIT 50"
    );
    let mut tx = svc.db.begin().await?;
    let rows: Vec<GrantRow> = with_tx!(&mut tx, t => {
        sqlx::query_as(&q).bind(&auth.user_id).fetch_all(&mut **t).await?
    });
    let mut grants = Vec::with_capacity(rows.len());
    for row in rows {
        grants.push(view_of(&mut tx, &policy, row, now).await?);
    }
    tx.commit().await?;
    Ok(GrantList {
        grants,
        now_ms: now,
    })
}

/// The approvals inbox: pending requests the caller may decide (never their own), with the
/// requester's recent grants; and, for admins, break-glass uses whose review is open.
pub async fn inbox(svc: &Elevation, auth: &AuthContext) -> Result<Inbox> {
    let policy = svc.policy.get();
    let now = svc.clock.now_ms();
    let me = policy.person_of(&auth.user_name);
    let my_groups = policy.groups_of(&auth.user_name);
    let q = format!(
        "SELECT {GRANT_COLUMNS} FROM grants WHERE state = 'pending' ORDER BY created_at LIMIT 200"
    );
    let qb = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE break_glass = $1 ORDER BY created_at DESC LIMIT 200");
    let qr = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE user_id = $1 AND id <> $2 ORDER BY created_at DESC LIMIT {RECENT}");
    let mut tx = svc.db.begin().await?;
    let pending: Vec<GrantRow> = with_tx!(&mut tx, t => {
        sqlx::query_as(&q).fetch_all(&mut **t).await?
    });
    let mut requests = Vec::new();
    for row in pending {
        let Some(e) = policy.entitlement(&row.entitlement) else {
            continue;
        };
        if may_approve(e, &me, &my_groups, &PersonId::new(&row.person)).is_err() {
            continue;
        }
        let recent: Vec<GrantRow> = with_tx!(&mut tx, t => {
            sqlx::query_as(&qr).bind(&row.user_id).bind(&row.id).fetch_all(&mut **t).await?
        });
        let mut requester_recent = Vec::new();
        for r in recent {
            requester_recent.push(view_of(&mut tx, &policy, r, now).await?);
        }
        let rule = e.describe_rule();
        requests.push(InboxItem {
            request: view_of(&mut tx, &policy, row, now).await?,
            requester_recent,
            rule,
        });
    }
    let mut reviews = Vec::new();
    if is_admin(&auth.roles) {
        let uses: Vec<GrantRow> = with_tx!(&mut tx, t => {
            sqlx::query_as(&qb).bind(true).fetch_all(&mut **t).await?
        });
        for row in uses {
            if row.person == me.as_str() {
                continue;
            }
            let v = view_of(&mut tx, &policy, row, now).await?;
            if !v.review_closed && !v.reviewers.contains(&auth.user_name) {
                reviews.push(v);
            }
        }
    }
    tx.commit().await?;
    Ok(Inbox {
        requests,
        reviews,
        now_ms: now,
    })
}

/// The oversight list: other people's grants that are approved or active by the broker's clock,
/// for entitlements the caller approves for (every entitlement for an admin), newest first. It
/// applies the same rule as [`revoke`], so what it shows is what the caller may end, and it
/// never shows the caller's own grants (nor those of their other accounts): ending your own
/// access is a release, not an act of oversight.
pub async fn oversight(svc: &Elevation, auth: &AuthContext) -> Result<GrantList> {
    let policy = svc.policy.get();
    let now = svc.clock.now_ms();
    let me = policy.person_of(&auth.user_name);
    // The filter is in SQL, before the limit, so grants the caller cannot act on never crowd
    // out the ones they can.
    let scope: Option<Vec<&str>> = if is_admin(&auth.roles) {
        None
    } else {
        Some(
            policy
                .entitlements
                .iter()
                .filter(|e| policy.is_approver_of(&auth.user_name, e))
                .map(Entitlement::id)
                .collect(),
        )
    };
    if scope.as_ref().is_some_and(Vec::is_empty) {
        return Ok(GrantList {
            grants: Vec::new(),
            now_ms: now,
        });
    }
    let within = scope.as_ref().map_or_else(String::new, |ids| {
        let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 4)).collect();
        format!(" AND entitlement IN ({})", marks.join(", "))
    });
    // `ends_at > now` drops grants the ticker has not expired yet; `effective` below is the
    // rule, this only keeps them from taking places under the limit.
    let q = format!(
        "SELECT {GRANT_COLUMNS} FROM grants WHERE state IN ('approved', 'active') \
         AND user_id <> $1 AND person <> $2 AND (ends_at IS NULL OR ends_at > $3){within} \
         ORDER BY created_at DESC, id LIMIT {OVERSIGHT_LIMIT}"
    );
    let ids = scope.unwrap_or_default();
    let mut tx = svc.db.begin().await?;
    let rows: Vec<GrantRow> = with_tx!(&mut tx, t => {
        let mut query = sqlx::query_as(&q).bind(&auth.user_id).bind(me.as_str()).bind(now);
        for id in &ids {
            query = query.bind(*id);
        }
        query.fetch_all(&mut **t).await?
    });
    let mut grants = Vec::with_capacity(rows.len());
    for row in rows {
        if matches!(
            effective(&row, now)?,
            GrantState::Approved | GrantState::Active
        ) {
            grants.push(view_of(&mut tx, &policy, row, now).await?);
        }
    }
    tx.commit().await?;
    Ok(GrantList {
        grants,
        now_ms: now,
    })
}
