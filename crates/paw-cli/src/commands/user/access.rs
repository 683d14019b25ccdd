//! Enrolment, sign-in and sign-out of a person.

use paw_client::Core;
use paw_proto::ipc::{EnrollInput, LoginInput};
use serde_json::json;

use crate::cli::{UserEnrollArgs, UserLoginArgs};
use crate::commands::Ctx;
use crate::error::{CliError, Result};
use crate::person;
use crate::secrets;

/// `pawctl user enroll`: redeems an invite (from a file or $PAWCTL_INVITE, never argv) with the
/// security key and this host's new device key, and ends signed in.
pub async fn enroll(ctx: &Ctx, core: &Core, a: UserEnrollArgs) -> Result<()> {
    let code = match &a.invite_file {
        Some(f) => secrets::from_file(f, "invite code")?,
        None if std::env::var_os(secrets::INVITE_ENV).is_some() => {
            secrets::from_env(secrets::INVITE_ENV, "invite code")?
        }
        None => {
            return Err(CliError::usage(format!(
                "pass --invite-file FILE or set {}: the invite code is never an argument",
                secrets::INVITE_ENV
            )))
        }
    };
    eprintln!("pawctl: registering your security key");
    let user = person::with_key(
        core,
        core.enroll(EnrollInput {
            code: code.expose().to_owned(),
            key_name: a.key_name,
        }),
    )
    .await??;
    ctx.out
        .print(&user, || format!("enrolled and signed in as {}", user.name));
    Ok(())
}

/// `pawctl user login NAME`: a security-key sign-in.
pub async fn login(ctx: &Ctx, core: &Core, a: UserLoginArgs) -> Result<()> {
    let user = person::with_key(core, core.login(LoginInput { user: a.name })).await??;
    ctx.out.print(&user, || {
        format!(
            "signed in as {} (roles: {})",
            user.name,
            user.roles.join(", ")
        )
    });
    Ok(())
}

/// `pawctl user logout`: signs out at the broker and forgets the tokens.
pub async fn logout(ctx: &Ctx, core: &Core) -> Result<()> {
    let report = core.logout().await?;
    let at_broker = report.revoked.is_some();
    ctx.out.print(
        &json!({ "signed_out": true, "at_broker": at_broker }),
        || {
            if at_broker {
                "signed out".into()
            } else {
                "signed out here; the broker could not be told (its sign-in ends with its tokens)"
                    .into()
            }
        },
    );
    Ok(())
}
