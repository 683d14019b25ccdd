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

pub mod error;
mod grants;
pub mod keys;
pub mod notify;
pub mod policy;
mod requests;
mod store;
mod ticker;
mod views;

use paw_audit::Outcome;
use paw_policy::{
    check_request, may_review, review_closed, transition, Approval, ApprovalRule, Entitlement,
    GrantEvent, GrantState, NextStep, PersonId, RequestInput,
};
use paw_proto::action::Action;
use paw_proto::elevation::{
    DecisionView, EntitlementList, EntitlementView, GrantList, GrantView, Inbox, InboxItem,
    LiveEvent, RedeemResponse,
};
use serde_json::json;

use crate::audit::Entry;
use crate::base::auth::AuthContext;
use crate::base::error::BrokerError;
use crate::base::util::{new_id, random_secret, secret_hash};
use crate::elevation::error::{ElevationError, Result};
use crate::elevation::notify::{Audience, Notice};
use crate::elevation::policy::Policy;
use crate::identity::stepup::{kind, wrong_action, StepUp};
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
        .map_err(Into::into)
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

/// What the request form lists: the entitlements `auth` may request.
pub fn entitlements(svc: &Elevation, auth: &AuthContext) -> EntitlementList {
    let policy = svc.policy.get();
    let mine = policy.groups_of(&auth.user_name);
    let entitlements = if auth.has_role(HELPDESK_ROLE) {
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
        commands: e.commands().map(|c| {
            let c = c.config();
            paw_proto::elevation::CommandRulesView {
                default: c.default.as_str().to_owned(),
                strict: c.strict,
                rules: c
                    .rules
                    .iter()
                    .map(|r| paw_proto::elevation::CommandRuleView {
                        matches: r.describe(),
                        action: r.action.as_str().to_owned(),
                        reason: r.reason.clone(),
                    })
                    .collect(),
            }
        }),
    }
}

/// Checks a request or break-glass action against the policy for `auth`; used both before
/// the step-up starts (so nobody signs a request that cannot succeed) and after it.
pub fn check_action(
    policy: &Policy,
    auth: &AuthContext,
    action: &Action,
    now_ms: i64,
) -> Result<(paw_policy::RequestPlan, Entitlement)> {
    if auth.has_role(HELPDESK_ROLE) {
        return Err(ElevationError::Forbidden(
            "the help-desk role cannot request elevation".into(),
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
        _ => return Err(wrong_action().into()),
    };
    let e = policy
        .entitlement(entitlement)
        .ok_or_else(|| ElevationError::NotFound("no such entitlement".into()))?;
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
            starts_at_ms: match action {
                Action::Request {
                    start_at_ms: Some(t),
                    ..
                } => *t,
                _ => now_ms,
            },
        },
    )?;
    // The owner rule names no approver for a person: nobody could ever decide.
    if matches!(e.approval(), ApprovalRule::Owner) && !auth.is_machine {
        return Err(ElevationError::Forbidden(format!(
            "{} is approved by a machine identity's owner: only machine identities request it",
            e.id()
        )));
    }
    Ok((plan, e.clone()))
}

pub use self::grants::*;
pub use self::requests::*;
pub(crate) use self::store::*;
pub use self::ticker::*;
pub use self::views::*;
