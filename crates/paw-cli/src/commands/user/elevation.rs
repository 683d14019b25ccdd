//! A person's requests and decisions: each a step-up of their key over the exact action,
//! announced before the touch.

use paw_client::Core;
use paw_proto::ipc::ElevationAction;

use crate::cli::{UserDecideArgs, UserRequestArgs};
use crate::commands::request::describe;
use crate::commands::Ctx;
use crate::error::Result;
use crate::person;

pub async fn request(ctx: &Ctx, core: &Core, a: UserRequestArgs) -> Result<()> {
    let action = ElevationAction::Request {
        entitlement: a.entitlement,
        target: a.target,
        role: a.role,
        duration_secs: a.duration,
        justification: a.reason,
        ticket: a.ticket,
        start_at_ms: None,
    };
    let grant = sign(core, action).await?;
    ctx.out.print(&grant, || describe(&grant));
    Ok(())
}

/// `pawctl user approve|deny ID`: the prompt names the stored request (the core reads it from
/// the broker's inbox), so the approver reads what they sign, not an id.
pub async fn decide(ctx: &Ctx, core: &Core, a: UserDecideArgs, approve: bool) -> Result<()> {
    let action = ElevationAction::Decide {
        request_id: a.id,
        approve,
        comment: a.comment.unwrap_or_default(),
    };
    let grant = sign(core, action).await?;
    ctx.out.print(&grant, || describe(&grant));
    Ok(())
}

async fn sign(core: &Core, action: ElevationAction) -> Result<paw_proto::elevation::GrantView> {
    let prompt = core.prepare_elevation(action).await?;
    person::announce(&prompt);
    let id = prompt.id.clone();
    Ok(person::with_key(core, core.confirm_elevation(id)).await??)
}

pub async fn grants(ctx: &Ctx, core: &Core) -> Result<()> {
    let list = core.grants().await?;
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

/// `pawctl user inbox`: the requests waiting for this person's decision.
pub async fn inbox(ctx: &Ctx, core: &Core) -> Result<()> {
    let inbox = core.inbox().await?;
    ctx.out.print(&inbox, || {
        if inbox.requests.is_empty() {
            return "nothing waits for your decision".into();
        }
        inbox
            .requests
            .iter()
            .map(|i| {
                format!(
                    "{} by {}: \"{}\" ({})",
                    describe(&i.request),
                    i.request.user,
                    i.request.justification,
                    i.rule
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}
