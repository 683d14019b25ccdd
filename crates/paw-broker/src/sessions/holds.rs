//! Held commands (issue #15, J3/J4): a command the rules mark `step_up` or `approve` waits in
//! its session, its line end kept from the target, until
//! - `step_up`: the session's own user confirms it with a security key, the assertion bound
//!   to the session, its target and the normalized command ([`Action::Command`]);
//! - `approve`: someone who may approve the entitlement's requests — never the session's user,
//!   by person as for grants — lets it run or refuses it ([`Action::ApproveCommand`]);
//! - or the hold's time runs out, which refuses it.
//!
//! The hold is a row, so any broker on the database can decide it; the session's broker polls
//! it. Each state change is one conditional UPDATE with its audit record in one transaction:
//! a hold is decided once.

use paw_audit::Outcome;
use paw_policy::PersonId;
use paw_proto::action::Action;
use paw_proto::elevation::LiveEvent;
use paw_proto::session::{CommandHoldList, CommandHoldView};
use serde_json::json;

use crate::audit::{self, Entry};
use crate::base::auth::AuthContext;
use crate::elevation::error::ElevationError;
use crate::elevation::notify::{Audience, Notice};
use crate::identity::stepup::{kind, wrong_action, StepUp};
use crate::sessions::commands::for_audit;
use crate::sessions::error::{Result, SessionsError};
use crate::sessions::{SessionInfo, Sessions};
use crate::{with_pool, with_tx};

pub(crate) const PENDING: &str = "pending";
pub(crate) const RELEASED: &str = "released";
pub(crate) const REFUSED: &str = "refused";
pub(crate) const EXPIRED: &str = "expired";

#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    id: String,
    session_id: String,
    grant_id: String,
    user_name: String,
    person: String,
    entitlement: String,
    target: String,
    command: String,
    needs: String,
    state: String,
    created_at: i64,
    expires_at: i64,
    decided_by: Option<String>,
}

const SELECT: &str =
    "SELECT id, session_id, grant_id, user_name, person, entitlement, target, command, \
     needs, state, created_at, expires_at, decided_by FROM command_holds";

impl From<Row> for CommandHoldView {
    fn from(r: Row) -> Self {
        CommandHoldView {
            id: r.id,
            session_id: r.session_id,
            user: r.user_name,
            entitlement: r.entitlement,
            target: r.target,
            command: r.command,
            needs: r.needs,
            state: r.state,
            created_at: r.created_at,
            expires_at: r.expires_at,
            decided_by: r.decided_by,
        }
    }
}

/// A hold as the session's broker knows it.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub id: String,
    pub expires_at: i64,
}

/// Holds `command` in `info`'s session; `needs` is `step_up` or `approve`.
pub(crate) async fn open(
    svc: &Sessions,
    info: &SessionInfo,
    needs: paw_commands::Action,
    command: &str,
    line: &str,
    undecidable: &[String],
    hold_secs: u32,
) -> Result<Held> {
    let now = svc.clock.now_ms();
    let id = crate::base::util::new_id();
    let expires_at = now + i64::from(hold_secs) * 1000;
    let person = svc.policy.get().person_of(&info.user);
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    with_tx!(&mut tx, t => {
        sqlx::query("INSERT INTO command_holds (id, session_id, grant_id, user_name, person, \
             entitlement, target, command, line, needs, state, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
            .bind(&id).bind(&info.id).bind(&info.grant_id).bind(&info.user).bind(person.as_str())
            .bind(&info.entitlement).bind(&info.target).bind(command).bind(for_audit(svc, line))
            .bind(needs.as_str()).bind(PENDING).bind(now).bind(expires_at)
            .execute(&mut **t).await?;
    });
    audit::append(
        &mut tx,
        now,
        Entry::new(
            &info.user,
            "command_held",
            &info.id,
            Outcome::Success,
            json!({
                "hold_id": id, "needs": needs.as_str(), "command": for_audit(svc, command),
                "target": info.target, "entitlement": info.entitlement,
                "grant_id": info.grant_id, "expires_at": expires_at,
                "undecidable": undecidable,
            }),
        ),
    )
    .await?;
    tx.commit().await?;
    let who = if needs == paw_commands::Action::Approve {
        "waits for an approval"
    } else {
        "waits for its user's step-up"
    };
    notify(
        svc,
        "command_held",
        &info.user,
        &info.entitlement,
        &info.grant_id,
        PENDING,
        format!(
            "{}'s session on {} holds `{}`: it {who}",
            info.user,
            info.target,
            for_audit(svc, command)
        ),
    );
    Ok(Held { id, expires_at })
}

/// The hold's state and who decided it.
pub(crate) async fn state(svc: &Sessions, id: &str) -> Result<(String, Option<String>)> {
    let row = load(svc, id).await?;
    Ok((row.state, row.decided_by))
}

/// Refuses a hold whose time ran out (or whose session ended); `false` when it was decided
/// first, which then stands.
pub(crate) async fn expire(
    svc: &Sessions,
    info: &SessionInfo,
    id: &str,
    why: &str,
) -> Result<bool> {
    let done = settle(
        svc,
        id,
        EXPIRED,
        "paw",
        "command_expired",
        &info.user,
        &info.id,
        json!({"hold_id": id, "why": why}),
    )
    .await?;
    if done {
        notify(
            svc,
            "command_decided",
            &info.user,
            &info.entitlement,
            &info.grant_id,
            EXPIRED,
            format!(
                "a held command in {}'s session on {} was refused: {why}",
                info.user, info.target
            ),
        );
    }
    Ok(done)
}

/// Tells the hold's user and the entitlement's approvers (their inbox changes); best effort,
/// the audit record is written already.
fn notify(
    svc: &Sessions,
    kind: &str,
    user: &str,
    entitlement: &str,
    grant_id: &str,
    state: &str,
    message: String,
) {
    svc.notifier.send(Notice {
        audience: Audience::user_and_approvers(user, entitlement),
        event: LiveEvent {
            kind: kind.to_owned(),
            grant_id: grant_id.to_owned(),
            state: state.to_owned(),
            message,
            at_ms: svc.clock.now_ms(),
        },
    });
}

/// `POST /v1/holds/{id}/release`: the session's user confirms a `step_up` hold.
pub async fn release(
    svc: &Sessions,
    auth: &AuthContext,
    id: &str,
    proof: &StepUp<kind::Command>,
) -> Result<CommandHoldView> {
    let Some(Action::Command {
        session_id,
        target,
        command,
    }) = proof.action()
    else {
        return Err(wrong_action().into());
    };
    let row = load(svc, id).await?;
    if row.user_name != auth.user_name {
        return Err(SessionsError::Forbidden(
            "only the session's own user releases a command held for a step-up".into(),
        ));
    }
    if row.needs != paw_commands::Action::StepUp.as_str() {
        return Err(SessionsError::Conflict(
            "this command waits for another person's approval, not a step-up".into(),
        ));
    }
    // The assertion is bound to this session, target and command: one for another command
    // or session does not release this one (J3).
    if *session_id != row.session_id || *target != row.target || *command != row.command {
        return Err(wrong_action().into());
    }
    pending_now(svc, &row)?;
    let detail = json!({
        "hold_id": id, "command": for_audit(svc, &row.command), "target": row.target,
        "action_hash": proof.action_hash(),
    });
    if !settle(
        svc,
        id,
        RELEASED,
        &auth.user_name,
        "command_released",
        &auth.user_name,
        &row.session_id,
        detail,
    )
    .await?
    {
        return Err(SessionsError::Conflict(
            "the hold was decided meanwhile".into(),
        ));
    }
    notify(
        svc,
        "command_decided",
        &row.user_name,
        &row.entitlement,
        &row.grant_id,
        RELEASED,
        format!(
            "`{}` released by {}'s step-up",
            for_audit(svc, &row.command),
            auth.user_name
        ),
    );
    view(svc, id).await
}

/// `POST /v1/holds/{id}/decide`: an approver lets an `approve` hold run, or refuses it.
pub async fn decide(
    svc: &Sessions,
    auth: &AuthContext,
    id: &str,
    proof: &StepUp<kind::ApproveCommand>,
) -> Result<CommandHoldView> {
    let Some(Action::ApproveCommand {
        hold_id,
        command,
        approve,
    }) = proof.action()
    else {
        return Err(wrong_action().into());
    };
    auth.require_person("approving a command")?;
    let row = load(svc, id).await?;
    if hold_id != id || *command != row.command {
        return Err(wrong_action().into());
    }
    if row.needs != paw_commands::Action::Approve.as_str() {
        return Err(SessionsError::Conflict(
            "this command waits for its user's step-up, not an approval".into(),
        ));
    }
    let policy = svc.policy.get();
    let e = policy
        .entitlement(&row.entitlement)
        .ok_or_else(|| SessionsError::Conflict("the entitlement no longer exists".into()))?;
    // Separation of duties as for grants: by person, and only the entitlement's approvers.
    paw_policy::may_approve(
        e,
        &policy.person_of(&auth.user_name),
        &policy.groups_of(&auth.user_name),
        &PersonId::new(&row.person),
    )
    .map_err(ElevationError::from)?;
    pending_now(svc, &row)?;
    let (state, action) = if *approve {
        (RELEASED, "command_approved")
    } else {
        (REFUSED, "command_refused")
    };
    let detail = json!({
        "hold_id": id, "command": for_audit(svc, &row.command), "target": row.target, "user": row.user_name,
        "action_hash": proof.action_hash(),
    });
    if !settle(
        svc,
        id,
        state,
        &auth.user_name,
        action,
        &auth.user_name,
        &row.session_id,
        detail,
    )
    .await?
    {
        return Err(SessionsError::Conflict(
            "the hold was decided meanwhile".into(),
        ));
    }
    let verb = if *approve { "approved" } else { "refused" };
    notify(
        svc,
        "command_decided",
        &row.user_name,
        &row.entitlement,
        &row.grant_id,
        state,
        format!(
            "`{}` {verb} by {}",
            for_audit(svc, &row.command),
            auth.user_name
        ),
    );
    view(svc, id).await
}

/// `GET /v1/holds`: pending holds of the caller's own sessions and those the caller may approve.
pub async fn list(svc: &Sessions, auth: &AuthContext) -> Result<CommandHoldList> {
    let now = svc.clock.now_ms();
    let rows: Vec<Row> = with_pool!(&svc.db, p => {
        sqlx::query_as(&format!("{SELECT} WHERE state = $1 AND expires_at > $2 ORDER BY created_at"))
            .bind(PENDING).bind(now).fetch_all(p).await?
    });
    let policy = svc.policy.get();
    let me = policy.person_of(&auth.user_name);
    let groups = policy.groups_of(&auth.user_name);
    let holds = rows
        .into_iter()
        .filter(|r| {
            r.user_name == auth.user_name
                || (r.needs == paw_commands::Action::Approve.as_str()
                    && policy.entitlement(&r.entitlement).is_some_and(|e| {
                        paw_policy::may_approve(e, &me, &groups, &PersonId::new(&r.person)).is_ok()
                    }))
        })
        .map(CommandHoldView::from)
        .collect();
    Ok(CommandHoldList { holds })
}

fn pending_now(svc: &Sessions, row: &Row) -> Result<()> {
    if row.state != PENDING {
        return Err(SessionsError::Conflict(format!(
            "the hold is {}",
            row.state
        )));
    }
    if svc.clock.now_ms() >= row.expires_at {
        return Err(SessionsError::Conflict("the hold has timed out".into()));
    }
    Ok(())
}

/// Moves a pending hold to `state` with its audit record, in one transaction.
#[allow(clippy::too_many_arguments)]
async fn settle(
    svc: &Sessions,
    id: &str,
    state: &str,
    decided_by: &str,
    action: &'static str,
    actor: &str,
    session_id: &str,
    detail: serde_json::Value,
) -> Result<bool> {
    let now = svc.clock.now_ms();
    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    let n = with_tx!(&mut tx, t => {
        sqlx::query("UPDATE command_holds SET state = $1, decided_by = $2, decided_at = $3 \
             WHERE id = $4 AND state = $5")
            .bind(state).bind(decided_by).bind(now).bind(id).bind(PENDING)
            .execute(&mut **t).await?.rows_affected()
    });
    if n != 1 {
        return Ok(false);
    }
    let outcome = if state == RELEASED {
        Outcome::Success
    } else {
        Outcome::Denied
    };
    audit::append(
        &mut tx,
        now,
        Entry::new(actor, action, session_id, outcome, detail),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

async fn load(svc: &Sessions, id: &str) -> Result<Row> {
    let row: Option<Row> = with_pool!(&svc.db, p => {
        sqlx::query_as(&format!("{SELECT} WHERE id = $1")).bind(id).fetch_optional(p).await?
    });
    row.ok_or_else(|| SessionsError::NotFound("no such held command".into()))
}

async fn view(svc: &Sessions, id: &str) -> Result<CommandHoldView> {
    Ok(load(svc, id).await?.into())
}
