//! `pawctl request` and `pawctl grants`: just-in-time access through the same elevation engine
//! as people's, the request signed by the sign-in's key over the exact action.
//!
//! `--wait` polls the broker (its grant list, once a second) until the grant is active or over.
//! When the wait runs out, the request is withdrawn: a pipeline that gave up must not leave a
//! request for someone to approve later, or a grant nobody will use.

use std::time::Duration;

use paw_proto::action::Action;
use paw_proto::elevation::GrantView;
use reqwest::Method;
use tokio::time::Instant;

use super::Ctx;
use crate::cli::RequestArgs;
use crate::conn::Conn;
use crate::error::{CliError, Result};
use crate::output::when;

const POLL: Duration = Duration::from_secs(1);

pub async fn run(ctx: &Ctx, a: RequestArgs) -> Result<()> {
    let mut conn = ctx.conn().await?;
    let action = Action::Request {
        entitlement: a.entitlement,
        target: a.target,
        role: a.role,
        duration_secs: a.duration,
        justification: a.reason,
        ticket: a.ticket,
        start_at_ms: None,
    };
    let grant = conn.session().await?.request(action).await?;
    conn.remember_grant(&grant.id)?;
    let grant = match a.wait {
        Some(secs) if is_open(&grant) && grant.state != "active" => {
            wait_active(&mut conn, grant, Duration::from_secs(secs)).await?
        }
        _ => grant,
    };
    if !is_open(&grant) {
        return Err(over(&grant));
    }
    ctx.out.print(&grant, || describe(&grant));
    Ok(())
}

pub async fn grants(ctx: &Ctx) -> Result<()> {
    let mut conn = ctx.conn().await?;
    let list = conn.session().await?.grants().await?;
    ctx.out.print(&list, || {
        if list.grants.is_empty() {
            return "no requests or grants".into();
        }
        list.grants
            .iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// Polls until `grant` is active (Ok), over (denied and the like), or `limit` passes
/// (withdrawn, then an error).
async fn wait_active(
    conn: &mut Conn<'_>,
    mut grant: GrantView,
    limit: Duration,
) -> Result<GrantView> {
    let deadline = Instant::now() + limit;
    loop {
        if grant.state == "active" || !is_open(&grant) {
            return Ok(grant);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(withdraw(conn, &grant, limit).await);
        }
        tokio::time::sleep(POLL.min(deadline - now)).await;
        let list = conn.session().await?.grants().await?;
        grant = list
            .grants
            .into_iter()
            .find(|g| g.id == grant.id)
            .ok_or_else(|| CliError::denied(format!("request {} is gone", grant.id)))?;
    }
}

/// Cancels (pending) or releases (approved, not started) a request the wait gave up on.
async fn withdraw(conn: &mut Conn<'_>, grant: &GrantView, limit: Duration) -> CliError {
    let path = match grant.state.as_str() {
        "pending" => format!("/v1/requests/{}/cancel", grant.id),
        _ => format!("/v1/grants/{}/release", grant.id),
    };
    let withdrawn = match conn.session().await {
        Ok(s) => s
            .call::<GrantView>(Method::POST, &path, None::<&()>)
            .await
            .map_err(CliError::from),
        Err(e) => Err(e),
    };
    let what = match withdrawn {
        Ok(_) => "withdrawn".to_owned(),
        Err(e) => format!("withdrawing it failed ({})", e.message),
    };
    CliError::wait_timed_out(format!(
        "request {} was still {} after {} s; {what}",
        grant.id,
        grant.state,
        limit.as_secs()
    ))
}

/// Pending, approved or active: not (yet) over.
fn is_open(g: &GrantView) -> bool {
    matches!(g.state.as_str(), "pending" | "approved" | "active")
}

fn over(g: &GrantView) -> CliError {
    let why = g.end_reason.as_deref().unwrap_or("no reason given");
    CliError::denied(format!("request {} was {}: {why}", g.id, g.state))
}

/// One line per grant, for people.
pub fn describe(g: &GrantView) -> String {
    let mut s = format!(
        "{}  {:<9} {} {}@{}",
        g.id, g.state, g.entitlement, g.role, g.target
    );
    match (g.state.as_str(), g.ends_at_ms, g.ended_at_ms) {
        ("active", Some(end), _) => s.push_str(&format!("  until {}", when(end))),
        ("pending", _, _) if g.approvals_missing > 0 => s.push_str(&format!(
            "  {} approval(s) missing: {}",
            g.approvals_missing, g.rule
        )),
        (_, _, Some(ended)) => {
            s.push_str(&format!("  ended {}", when(ended)));
            if let Some(r) = &g.end_reason {
                s.push_str(&format!(" ({r})"));
            }
        }
        _ => {}
    }
    s
}
