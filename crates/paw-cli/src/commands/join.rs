//! `pawctl machine join NAME`: make this host's key and register it with the single-use join
//! token an administrator got when creating the machine.
//!
//! The key is stored before the token is spent: if the store failed afterwards, the token would
//! be used up and the registered key lost with it. A refused join removes the stored key again
//! (or puts back the one `--replace` was replacing).

use paw_client::machine::{self, MachineKey};
use serde_json::json;

use super::Ctx;
use crate::cli::JoinArgs;
use crate::conn;
use crate::error::{CliError, Result};
use crate::secrets;
use crate::store::{KeyRecord, Slot};

pub async fn run(ctx: &Ctx, a: JoinArgs) -> Result<()> {
    let token = match &a.token_file {
        Some(f) => secrets::from_file(f, "join token")?,
        None if std::env::var_os(secrets::JOIN_TOKEN_ENV).is_none() => {
            return Err(CliError::usage(format!(
                "pass --token-file FILE or set {}: the join token is never an argument",
                secrets::JOIN_TOKEN_ENV
            )))
        }
        None => secrets::from_env(secrets::JOIN_TOKEN_ENV, "join token")?,
    };
    let previous: Option<KeyRecord> = ctx.store.load(Slot::MachineKey)?;
    if let Some(p) = &previous {
        if !a.replace {
            return Err(CliError::usage(format!(
                "this host already holds the key of machine {}; pass --replace to join again",
                p.machine
            )));
        }
    }
    let d = conn::deployment(&ctx.brokers, ctx.ca.as_deref(), None)?;
    let client = conn::client(&d)?;
    let key = MachineKey::generate_alg(a.key_type.into())?;
    ctx.store.save(
        Slot::MachineKey,
        &KeyRecord::new(&a.name, &key, &d.brokers, d.ca.clone()),
    )?;
    if let Err(e) = machine::join(&client, &a.name, token.expose(), &key).await {
        let undone = match &previous {
            Some(p) => ctx.store.save(Slot::MachineKey, p),
            None => ctx.store.delete(Slot::MachineKey),
        };
        let mut err = super::login::refused(e);
        if let Err(u) = undone {
            err.message.push_str(&format!(
                " (and the new key could not be removed: {})",
                u.message
            ));
        }
        return Err(err);
    }
    let public = key.public();
    let stored = ctx.store.describe(Slot::MachineKey);
    ctx.out.print(
        &json!({ "machine": a.name, "alg": key.alg().as_str(), "public_key": public, "store": stored }),
        || {
            format!(
                "joined as {}\npublic key ({}) {public}\nkey stored in {stored}",
                a.name,
                key.alg().as_str()
            )
        },
    );
    Ok(())
}
