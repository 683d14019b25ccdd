//! A person's side of pawctl: the same workstation core the desktop app runs (paw-client's
//! `Core`), with the security key reached over USB HID and its prompts (PIN, touch) answered on
//! the terminal instead of in a window.
//!
//! Rules:
//! - Everything a person does goes through `Core`, exactly as in the app: the same step-up
//!   bound to the action the key signs, the same local audit trail (`audit.db` in
//!   `<state dir>/person`), the same device key and tokens, kept in pawctl's store under names
//!   of their own (`PersonKeys`).
//! - What the key is about to sign is printed (stderr) before the key is touched: the words
//!   and the action's SHA-256, as the app's step-up dialog shows them.
//! - The INSECURE virtual key (test and demo builds only, `paw_client::authn`) is announced
//!   on stderr every time it is used.

pub mod tty;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use paw_client::Core;
use paw_proto::ipc::{BuildInfo, KeyPromptView, PinInput, SettingsInput, StepUpPrompt};

use crate::commands::Ctx;
use crate::conn;
use crate::error::{CliError, Result};
use crate::store::PersonKeys;

/// How often the key's prompt state is looked at while a key operation runs.
const PROMPT_POLL: Duration = Duration::from_millis(50);

/// The core for this state directory, pointed at the command line's brokers when given.
pub async fn open(ctx: &Ctx) -> Result<Core> {
    let keys: Arc<dyn paw_client::KeyStore> = Arc::new(PersonKeys(ctx.store.clone()));
    let authenticator = paw_client::authn::choose(keys.as_ref(), cfg!(debug_assertions))?;
    if authenticator.is_virtual() {
        eprintln!("pawctl: warning: {}", paw_fido::VIRTUAL_KEY_LABEL);
    }
    let core = Core::open(
        ctx.state_dir.join("person"),
        BuildInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            debug: cfg!(debug_assertions),
            virtual_key: false,
        },
        keys,
        Some(authenticator),
    )?;
    if !ctx.brokers.is_empty() || ctx.ca.is_some() {
        let d = conn::deployment(&ctx.brokers, ctx.ca.as_deref(), None)?;
        let (first, rest) = d
            .brokers
            .split_first()
            .ok_or_else(|| CliError::usage("pass --broker URL or set PAW_BROKER"))?;
        core.save_settings(SettingsInput {
            broker_url: first.clone(),
            fallback_urls: rest.to_vec(),
            ca_path: d.ca.display().to_string(),
        })
        .await?;
    }
    // Who is signed in, as the broker says (the app learns it at start the same way): the local
    // trail names that person as the actor of what this invocation does.
    let _ = core.status().await;
    Ok(core)
}

/// Says what the key is about to sign, before the touch.
pub fn announce(prompt: &StepUpPrompt) {
    eprintln!(
        "pawctl: your security key signs: {}\npawctl: action sha256 {}",
        prompt.description, prompt.action_hash
    );
}

/// Runs a key operation of `core`, answering its PIN request on the terminal and saying when
/// the key waits for a touch.
pub async fn with_key<T>(core: &Core, op: impl Future<Output = T>) -> Result<T> {
    tokio::pin!(op);
    let mut touch_said = false;
    loop {
        tokio::select! {
            done = &mut op => return Ok(done),
            () = tokio::time::sleep(PROMPT_POLL) => match core.key_prompt() {
                KeyPromptView::Idle => {}
                KeyPromptView::Touch => {
                    if !touch_said {
                        eprintln!("pawctl: touch your security key");
                        touch_said = true;
                    }
                }
                KeyPromptView::Pin { retries, wrong } => {
                    let mut ask = String::from("security key PIN");
                    if wrong {
                        ask.push_str(" (the last one was wrong)");
                    }
                    if let Some(n) = retries {
                        ask.push_str(&format!(", {n} tries left"));
                    }
                    ask.push_str(": ");
                    let pin = tokio::task::spawn_blocking(move || tty::read_secret(&ask))
                        .await
                        .map_err(|e| CliError::store(format!("asking for the PIN: {e}")))?;
                    match pin {
                        Ok(pin) => core.submit_pin(PinInput { pin: pin.to_string() })?,
                        Err(e) => {
                            core.cancel_key_prompt();
                            // Let the operation end as cancelled, then say why.
                            let _ = (&mut op).await;
                            return Err(e);
                        }
                    }
                }
            }
        }
    }
}
