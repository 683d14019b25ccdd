//! `pawctl login`: sign in as a machine, with the key `machine join` stored (key login), or
//! with an OIDC workload token (GitHub Actions, GitLab CI, Kubernetes), which paw-client
//! exchanges for a sign-in bound to a key made for it alone. The token is read from a file or
//! a variable, sent once, and not kept.
//!
//! A sign-in already stored here is ended once the new one works: replacing it silently would
//! leave it open at the broker until it idles out.

use paw_client::machine::MachineSession;
use serde_json::json;

use super::{logout, Ctx};
use crate::cli::LoginArgs;
use crate::conn;
use crate::error::{CliError, Result};
use crate::exit::Exit;
use crate::output::when;
use crate::secrets;
use crate::store::{KeyRecord, SessionKind, SessionRecord, Slot};

pub async fn run(ctx: &Ctx, a: LoginArgs) -> Result<()> {
    let (session, kind, d) = match &a.machine {
        Some(name) => key_login(ctx, name).await?,
        None => workload_login(ctx, &a).await?,
    };
    if ctx
        .store
        .load::<SessionRecord>(Slot::MachineSession)?
        .is_some()
    {
        // Best effort: the previous sign-in may be over already, or of another deployment
        // that cannot be reached now; it ends by itself after its idle limit anyway.
        if let Ok(mut old) = ctx.conn().await {
            let _ = logout::end(&mut old).await;
        }
    }
    let rec = SessionRecord::new(kind, &session, &d.brokers, d.ca.clone());
    if let Err(e) = ctx.store.save(Slot::MachineSession, &rec) {
        // A sign-in nobody can use again must not stay open.
        let _ = session.sign_out().await;
        return Err(e);
    }
    let t = session.tokens();
    let stored = ctx.store.describe(Slot::MachineSession);
    ctx.out.print(
        &json!({
            "user": t.user,
            "kind": kind.as_str(),
            "roles": t.roles,
            "session_expires_at_ms": t.session_expires_at_ms,
            "store": stored,
        }),
        || {
            let how = match kind {
                SessionKind::MachineKey => "machine key",
                SessionKind::Workload => "workload token",
            };
            format!(
                "signed in as {} ({how}) until {}\nsession stored in {stored}",
                t.user,
                when(t.session_expires_at_ms)
            )
        },
    );
    Ok(())
}

/// A credential the broker refuses at login is a refusal (3): "not signed in" (5) would tell
/// the caller to log in, which is what just failed.
pub fn refused(e: paw_client::ClientError) -> CliError {
    let e = CliError::from(e);
    if e.exit == Exit::NotSignedIn {
        e.with_exit(Exit::Refused)
    } else {
        e
    }
}

async fn key_login(
    ctx: &Ctx,
    name: &str,
) -> Result<(MachineSession, SessionKind, conn::Deployment)> {
    let rec: KeyRecord = ctx.store.load(Slot::MachineKey)?.ok_or_else(|| {
        CliError::not_signed_in(format!(
            "no machine key is stored here; run `pawctl machine join {name}` first"
        ))
    })?;
    if rec.machine != name {
        return Err(CliError::not_signed_in(format!(
            "this host holds the key of machine {}, not {name}",
            rec.machine
        )));
    }
    let d = conn::deployment(
        &ctx.brokers,
        ctx.ca.as_deref(),
        Some((&rec.brokers, &rec.ca)),
    )?;
    let session = MachineSession::login(conn::client(&d)?, name, rec.key()?)
        .await
        .map_err(refused)?;
    Ok((session, SessionKind::MachineKey, d))
}

async fn workload_login(
    ctx: &Ctx,
    a: &LoginArgs,
) -> Result<(MachineSession, SessionKind, conn::Deployment)> {
    let token = match (&a.workload_token_file, &a.workload_token_env) {
        (Some(f), _) => secrets::from_file(f, "workload token")?,
        (None, Some(var)) => secrets::from_env(var, "workload token")?,
        (None, None) => {
            return Err(CliError::usage(
                "pass --machine, --workload-token-file or --workload-token-env",
            ))
        }
    };
    let d = conn::deployment(&ctx.brokers, ctx.ca.as_deref(), None)?;
    let session = MachineSession::workload_login(conn::client(&d)?, token.expose())
        .await
        .map_err(refused)?;
    Ok((session, SessionKind::Workload, d))
}
