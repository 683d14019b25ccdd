//! # paw (desktop shell)
//!
//! The only crate that depends on Tauri. Its job is wiring: create the one window, hold the
//! [`paw_client::Core`], and adapt its use cases to IPC commands. No logic lives here that a
//! test without a desktop could not reach through paw-client.
//!
//! Security posture (cases G1–G4): the UI is embedded (no dev-server URL, no listening port),
//! behind a strict CSP and Tauri's isolation pattern; the window is in exactly one capability that
//! allows only paw's own commands; it never navigates to another origin — external https links are
//! handed to the system browser.

// Without this, a release build on Windows opens a console window next to the app.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod args;
mod commands;
mod navigation;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use paw_client::Core;
use paw_proto::ipc::BuildInfo;
use tauri::{Manager, WebviewUrl, WebviewWindowBuilder};

/// Process start, for the "UI ready" log line that the start-up benchmark reads.
pub(crate) static STARTED: OnceLock<Instant> = OnceLock::new();

/// The app's identifier (tauri.conf.json): its config directory is named after it.
const APP_IDENTIFIER: &str = "dev.paw.workstation";

fn main() {
    // `paw audit verify [--config-dir DIR]` checks the local audit trail from a shell, with no
    // window and no keyring; everything else starts the app.
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    // As `ssh`'s askpass helper for "open in my terminal": print the one-time secret `ssh`
    // was given in its environment, and nothing else.
    if let Some(secret) = paw_client::stock_ssh::askpass_answer(&args) {
        println!("{secret}");
        return;
    }
    if let Some(code) = paw_client::audit_cli(&args, APP_IDENTIFIER) {
        std::process::exit(code);
    }
    STARTED.get_or_init(Instant::now);
    init_logging();
    if let Err(e) = run() {
        tracing::error!("paw failed to start: {e}");
        eprintln!("paw: {e}");
        std::process::exit(1);
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PAW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = std::env::var_os("PAW_LOG_JSON").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn run() -> Result<(), String> {
    tauri::Builder::default()
        .setup(|app| {
            // Tests and `cargo xtask run` point this at a throwaway directory so that they never
            // touch a real user's settings.
            let dir = match std::env::var_os("PAW_CONFIG_DIR") {
                Some(d) => PathBuf::from(d),
                None => app.path().app_config_dir()?,
            };
            // The OS keyring, chosen explicitly; none usable means no start (fail closed).
            let keystore: std::sync::Arc<dyn paw_client::KeyStore> =
                std::sync::Arc::new(paw_client::OsKeyStore::open().map_err(|e| e.to_string())?);
            let authenticator =
                paw_client::authn::choose(keystore.as_ref(), cfg!(debug_assertions))
                    .map_err(|e| e.to_string())?;
            let core = Core::open(
                dir,
                BuildInfo {
                    version: env!("CARGO_PKG_VERSION").into(),
                    debug: cfg!(debug_assertions),
                    // Set by Core::open from the authenticator it is given.
                    virtual_key: false,
                },
                keystore,
                Some(authenticator),
            )
            .map_err(|e| e.to_string())?;
            app.manage(core);
            WebviewWindowBuilder::new(app, "main", WebviewUrl::App("index.html".into()))
                .title("paw")
                .inner_size(1200.0, 780.0)
                .min_inner_size(880.0, 560.0)
                .on_navigation(navigation::allow)
                .build()?;
            Ok(())
        })
        // Bytes for arguments get `{code, message}` like any other bad argument (case F2).
        .invoke_handler(args::refuse_byte_arguments(tauri::generate_handler![
            commands::app_status,
            commands::get_settings,
            commands::save_settings,
            commands::open_external,
            commands::enroll,
            commands::login,
            commands::logout,
            commands::list_keys,
            commands::rename_key,
            commands::prepare_step_up,
            commands::confirm_step_up,
            commands::cancel_step_up,
            commands::key_prompt,
            commands::submit_pin,
            commands::cancel_key_prompt,
            commands::list_entitlements,
            commands::list_grants,
            commands::approvals_inbox,
            commands::list_oversight,
            commands::prepare_elevation,
            commands::confirm_elevation,
            commands::cancel_request,
            commands::release_grant,
            commands::revoke_grant,
            commands::close_review,
            commands::live_events,
            commands::audit_query,
            commands::audit_verify,
            commands::audit_export,
            commands::prepare_session,
            commands::open_terminal,
            commands::terminal_input,
            commands::terminal_resize,
            commands::close_terminal,
            commands::list_live_sessions,
            commands::prepare_kill_session,
            commands::confirm_kill_session,
            commands::watch_session,
            commands::stop_watch,
            commands::list_holds,
            commands::prepare_hold_decision,
            commands::confirm_hold_decision,
            commands::open_forward,
            commands::stop_forward,
            commands::list_forwards,
            commands::session_history,
            commands::session_recording,
            commands::session_masks,
            commands::session_files,
            commands::save_session_file,
            commands::open_in_terminal,
            commands::open_files,
            commands::close_files,
            commands::list_remote,
            commands::start_upload,
            commands::upload_chunk,
            commands::start_download,
            commands::finish_transfer,
            commands::cancel_transfer,
            commands::list_machines,
            commands::prepare_create_machine,
            commands::confirm_create_machine,
            commands::prepare_transfer_machine,
            commands::confirm_transfer_machine,
            commands::list_vault_accounts,
            commands::prepare_reveal,
            commands::confirm_reveal,
            commands::prepare_rotation,
            commands::confirm_rotation,
        ]))
        .run(tauri::generate_context!())
        .map_err(|e| e.to_string())
}
