//! `pawctl user …`: a person on a server, with a security key — enrol this host, sign in,
//! request and approve just-in-time access, open a shell through the broker, read the local
//! audit trail. Every privileged step is a step-up of the person's key over the exact action,
//! through the same core as the desktop app (`crate::person`).

mod access;
mod audit;
mod elevation;
mod shell;

use super::Ctx;
use crate::cli::UserCommand;
use crate::error::Result;
use crate::exit::Exit;
use crate::person;

pub async fn run(ctx: &Ctx, cmd: UserCommand) -> Result<u8> {
    let core = person::open(ctx).await?;
    let ok = Exit::Ok.code();
    match cmd {
        UserCommand::Enroll(a) => access::enroll(ctx, &core, a).await.map(|()| ok),
        UserCommand::Login(a) => access::login(ctx, &core, a).await.map(|()| ok),
        UserCommand::Logout => access::logout(ctx, &core).await.map(|()| ok),
        UserCommand::Request(a) => elevation::request(ctx, &core, a).await.map(|()| ok),
        UserCommand::Grants => elevation::grants(ctx, &core).await.map(|()| ok),
        UserCommand::Inbox => elevation::inbox(ctx, &core).await.map(|()| ok),
        UserCommand::Approve(a) => elevation::decide(ctx, &core, a, true).await.map(|()| ok),
        UserCommand::Deny(a) => elevation::decide(ctx, &core, a, false).await.map(|()| ok),
        UserCommand::Shell(a) => shell::run(ctx, &core, a).await,
        UserCommand::Audit(a) => audit::run(ctx, &core, a).await,
    }
}
