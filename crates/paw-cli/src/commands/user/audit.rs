//! `pawctl user audit`: this host's own audit trail of the person's privileged actions (the
//! same hash-chained `audit.db` the app keeps), newest first, and `--verify` to check the chain
//! and its checkpoints cosigned by the broker's witness.

use paw_client::Core;
use paw_proto::ipc::AuditQueryInput;

use crate::cli::UserAuditArgs;
use crate::commands::Ctx;
use crate::error::{CliError, Result};
use crate::exit::Exit;
use crate::output::when;

pub async fn run(ctx: &Ctx, core: &Core, a: UserAuditArgs) -> Result<u8> {
    if a.verify {
        let v = core.audit_verify().await?;
        ctx.out.print(&v, || {
            if v.ok {
                format!(
                    "the trail verifies: {} records, head {}",
                    v.records, v.head_hash
                )
            } else {
                format!(
                    "THE TRAIL DOES NOT VERIFY: {}",
                    v.problem.clone().unwrap_or_default()
                )
            }
        });
        return if v.ok {
            Ok(Exit::Ok.code())
        } else {
            Err(CliError::new(
                paw_proto::ErrorCode::AuditDiverged,
                Exit::Failed,
                "the local audit trail does not verify",
            ))
        };
    }
    let page = core
        .audit_query(AuditQueryInput {
            from_ms: None,
            until_ms: None,
            kind: a.kind,
            target: a.target,
            outcome: None,
            text: None,
            limit: a.limit,
            offset: 0,
        })
        .await?;
    ctx.out.print(&page, || {
        if page.records.is_empty() {
            return "no records".into();
        }
        page.records
            .iter()
            .map(|r| {
                format!(
                    "#{} {} {} {} {} {:?}",
                    r.seq,
                    when(r.time_ms),
                    r.kind,
                    r.target,
                    r.detail,
                    r.outcome
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(Exit::Ok.code())
}
