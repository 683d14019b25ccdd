//! One module per command. Each takes the invocation's [`Ctx`] and its own arguments, talks to
//! the broker through paw-client, prints through [`Output`], and returns the exit status
//! (`exec` returns the target's).

mod exec;
mod join;
mod login;
mod logout;
mod machines;
pub(crate) mod request;
mod rotate;
mod user;

use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::{Cli, Command, MachineCommand};
use crate::conn::Conn;
use crate::error::Result;
use crate::exit::Exit;
use crate::output::Output;
use crate::store::{self, Store};

/// What every command gets: the deployment named on the command line, the store, the output.
pub struct Ctx {
    pub brokers: Vec<String>,
    pub ca: Option<PathBuf>,
    pub state_dir: PathBuf,
    /// Shared with a person's core, which keeps its entries in the same store.
    pub store: Arc<Store>,
    pub out: Output,
}

impl Ctx {
    pub fn new(cli: &Cli) -> Result<Self> {
        let dir = store::state_dir(cli.state_dir.as_deref())?;
        Ok(Self {
            brokers: cli.brokers.clone(),
            ca: cli.ca.clone(),
            store: Arc::new(Store::open(cli.store, &dir)?),
            state_dir: dir,
            out: Output { json: cli.json },
        })
    }

    /// The stored sign-in, ready to use.
    pub async fn conn(&self) -> Result<Conn<'_>> {
        Conn::open(&self.store, &self.brokers, self.ca.as_deref()).await
    }
}

/// Runs the parsed command; `Ok` carries the exit status. Every failure of `exec` ends with
/// 125, so that it cannot be taken for the target command's own status.
pub async fn run(cli: Cli) -> Result<u8> {
    let is_exec = matches!(cli.command, Command::Exec(_));
    let done = dispatch(cli).await;
    if is_exec {
        done.map_err(|e| e.with_exit(Exit::ExecFailed))
    } else {
        done
    }
}

async fn dispatch(cli: Cli) -> Result<u8> {
    let ctx = Ctx::new(&cli)?;
    let ok = Exit::Ok.code();
    match cli.command {
        Command::Machine(MachineCommand::Join(a)) => join::run(&ctx, a).await.map(|()| ok),
        Command::Login(a) => login::run(&ctx, a).await.map(|()| ok),
        Command::Request(a) => request::run(&ctx, a).await.map(|()| ok),
        Command::Grants => request::grants(&ctx).await.map(|()| ok),
        Command::Exec(a) => exec::run(&ctx, a).await,
        Command::Machines(a) => machines::run(&ctx, a).await.map(|()| ok),
        Command::Rotate => rotate::run(&ctx).await.map(|()| ok),
        Command::Logout => logout::run(&ctx).await.map(|()| ok),
        Command::User(u) => user::run(&ctx, u).await,
    }
}
