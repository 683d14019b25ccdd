//! `pawctl rotate`: a key machine replaces its key. The new key is stored only after the broker
//! accepted it (a stored key the broker never registered would lock the machine out once the
//! old one retires), then the machine signs in with it, since the current sign-in is bound to
//! the old key and ends when that key retires (case K4).

use paw_client::machine::{MachineKey, MachineSession};
use serde_json::json;

use super::Ctx;
use crate::error::{CliError, Result};
use crate::output::when;
use crate::store::{KeyRecord, SessionKind, SessionRecord, Slot};

pub async fn run(ctx: &Ctx) -> Result<()> {
    let mut conn = ctx.conn().await?;
    if conn.record().kind != SessionKind::MachineKey {
        return Err(CliError::usage(
            "only a key machine rotates its key; a workload sign-in's key is made for that \
             sign-in and ends with it",
        ));
    }
    let machine = conn.record().user.clone();
    let old: KeyRecord = ctx
        .store
        .load(Slot::MachineKey)?
        .filter(|k: &KeyRecord| k.machine == machine)
        .ok_or_else(|| {
            CliError::not_signed_in(format!("the key of machine {machine} is not stored here"))
        })?;
    // The same algorithm as before: a host whose policy asked for P-256 keeps it.
    let new = MachineKey::generate_alg(old.alg)?;
    let rotated = conn.session().await?.rotate(&new).await?;
    let new_rec = KeyRecord::new(&machine, &new, &old.brokers, old.ca.clone());
    if let Err(e) = ctx.store.save(Slot::MachineKey, &new_rec) {
        return Err(CliError::store(format!(
            "the broker accepted the new key but it could not be stored ({}); the current key \
             works until {}: run `pawctl rotate` again before then",
            e.message,
            when(rotated.old_key_retires_at_ms)
        )));
    }
    let fresh = MachineSession::login(conn.client().clone(), &machine, new_rec.key()?).await?;
    let mut rec = SessionRecord::new(
        SessionKind::MachineKey,
        &fresh,
        &conn.record().brokers,
        conn.record().ca.clone(),
    );
    // The grants the old sign-in requested are still this host's to release at logout.
    rec.requested = conn.record().requested.clone();
    // Best effort: the old sign-in ends anyway when its key retires.
    if let Ok(s) = conn.session().await {
        let _ = s.sign_out().await;
    }
    if let Err(e) = ctx.store.save(Slot::MachineSession, &rec) {
        let _ = fresh.sign_out().await;
        return Err(e);
    }
    let public = new.public();
    ctx.out.print(
        &json!({
            "machine": machine,
            "public_key": public,
            "old_key_retires_at_ms": rotated.old_key_retires_at_ms,
        }),
        || {
            format!(
                "{machine} now uses key {public}; the previous key retires at {}",
                when(rotated.old_key_retires_at_ms)
            )
        },
    );
    Ok(())
}
