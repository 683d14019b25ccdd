//! `pawctl logout`: leave nothing open. The requests this sign-in made are cancelled (pending)
//! or released (approved, active, which ends their sessions), the sign-in's token family is
//! revoked at the broker, and the stored sign-in is deleted. A key machine's key stays: it is
//! the machine's identity on this host, not a sign-in.
//!
//! Only the grants this sign-in requested are ended: the machine may be signed in elsewhere
//! too (two pipeline jobs of one repository), and those jobs' grants are theirs.

use paw_proto::elevation::GrantView;
use reqwest::Method;
use serde::Serialize;
use serde_json::json;

use super::Ctx;
use crate::conn::Conn;
use crate::error::{CliError, Result};
use crate::exit::Exit;
use crate::store::{SessionRecord, Slot};

/// What ending a sign-in did.
#[derive(Debug, Default, Serialize)]
pub struct Ended {
    pub user: String,
    /// Grants released and requests cancelled.
    pub ended_grants: Vec<String>,
    /// True when the broker revoked the token family now; false when it had ended already.
    pub revoked: bool,
}

pub async fn run(ctx: &Ctx) -> Result<()> {
    let Some(stored) = ctx.store.load::<SessionRecord>(Slot::MachineSession)? else {
        ctx.out.print(
            &json!({ "signed_out": false, "message": "no sign-in is stored here" }),
            || "no sign-in is stored here".into(),
        );
        return Ok(());
    };
    let user = stored.user.clone();
    drop(stored);
    let ended = match ctx.conn().await {
        Ok(mut conn) => end(&mut conn).await,
        Err(e) => Err(e),
    };
    let ended = match ended {
        Ok(e) => e,
        // The broker no longer knows this sign-in (signed out, revoked, expired): nothing is
        // open there, so forgetting it here is all that is left.
        Err(e) if e.session_over() => Ended {
            user,
            ..Ended::default()
        },
        // Unreachable or refused: the sign-in may still be open, so it is kept for a retry.
        Err(e) => {
            let mut e = e;
            e.message
                .push_str("; the sign-in is kept here, run `pawctl logout` again");
            return Err(e);
        }
    };
    ctx.store.delete(Slot::MachineSession)?;
    ctx.out.print(
        &json!({
            "signed_out": true,
            "user": ended.user,
            "revoked": ended.revoked,
            "ended_grants": ended.ended_grants,
        }),
        || {
            let mut s = String::from(if ended.revoked {
                "signed out"
            } else {
                "the sign-in had already ended at the broker"
            });
            if !ended.ended_grants.is_empty() {
                s.push_str(&format!("; ended {}", ended.ended_grants.join(", ")));
            }
            s.push_str("; the sign-in is no longer stored here");
            s
        },
    );
    Ok(())
}

/// Ends the grants `conn`'s sign-in requested and signs it out at the broker.
pub async fn end(conn: &mut Conn<'_>) -> Result<Ended> {
    let requested = conn.record().requested.clone();
    let user = conn.record().user.clone();
    let session = conn.session().await?;
    let mut ended_grants = Vec::new();
    if !requested.is_empty() {
        let open = session.grants().await?;
        for g in open.grants.iter().filter(|g| requested.contains(&g.id)) {
            let path = match g.state.as_str() {
                "pending" => format!("/v1/requests/{}/cancel", g.id),
                "approved" | "active" => format!("/v1/grants/{}/release", g.id),
                _ => continue,
            };
            match session
                .call::<GrantView>(Method::POST, &path, None::<&()>)
                .await
            {
                Ok(_) => ended_grants.push(g.id.clone()),
                Err(e) => {
                    let e = CliError::from(e);
                    // Refused: it ended meanwhile (expired, revoked), which is what was wanted.
                    if e.exit != Exit::Refused {
                        return Err(e);
                    }
                }
            }
        }
    }
    session.sign_out().await?;
    Ok(Ended {
        user,
        ended_grants,
        revoked: true,
    })
}
