//! Thin adapters from IPC to paw-client. Each one decodes its arguments (as raw JSON, through
//! [`crate::args::decode`], so bad input gets `{code, message}`: case F2), calls one use case
//! and maps the error to `{code, message}`.

use std::sync::atomic::{AtomicBool, Ordering};

use paw_client::Core;
use paw_proto::elevation::{EntitlementList, GrantList, GrantView, Inbox};
use paw_proto::files::{
    FilesEvent, FilesView, RemoteListing, SavedSessionFile, TransferResult, TransferStart,
};
use paw_proto::ipc::{
    AppStatus, AuditPage, AuditVerifyView, HeldCommands, KeyPromptView, LiveFeed, MachineCreated,
    MachineInventory, SecurityKeyView, SessionUser, SettingsView, SignOutReport, StepUpPrompt,
    WatchEvent,
};
use paw_proto::machine::MachineView;
use paw_proto::session::{
    CommandHoldView, ForwardView, SessionFiles, SessionHistory, SessionList, SessionMasks,
    SessionRecording, SessionView, TerminalEvent, TerminalView,
};
use paw_proto::vault::{RevealedSecret, VaultAccountList, VaultAccountView};
use paw_proto::ApiError;
use serde_json::Value;
use tauri::State;

use crate::args::{decode, decode_at_most, MAX_CHUNK_ARG_BYTES};

static FIRST_STATUS: AtomicBool = AtomicBool::new(true);

#[tauri::command]
pub async fn app_status(core: State<'_, Core>) -> Result<AppStatus, ApiError> {
    // The UI asks for status right after its first render, so this marks "first paint" for the
    // start-up benchmark.
    if FIRST_STATUS.swap(false, Ordering::Relaxed) {
        let ms = crate::STARTED
            .get()
            .map(|s| s.elapsed().as_millis())
            .unwrap_or(0);
        tracing::info!(since_start_ms = ms, "ui ready");
    }
    Ok(core.status().await)
}

#[tauri::command]
pub async fn get_settings(core: State<'_, Core>) -> Result<SettingsView, ApiError> {
    Ok(core.settings().await?)
}

#[tauri::command]
pub async fn save_settings(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<SettingsView, ApiError> {
    Ok(core.save_settings(decode("input", input)?).await?)
}

#[tauri::command]
pub fn open_external(url: Option<Value>) -> Result<(), ApiError> {
    let url: String = decode("url", url)?;
    let url = paw_client::validate_external_url(&url)?;
    crate::navigation::open_in_browser(&url)
}

#[tauri::command]
pub async fn enroll(core: State<'_, Core>, input: Option<Value>) -> Result<SessionUser, ApiError> {
    Ok(core.enroll(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn login(core: State<'_, Core>, input: Option<Value>) -> Result<SessionUser, ApiError> {
    Ok(core.login(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn logout(core: State<'_, Core>) -> Result<SignOutReport, ApiError> {
    Ok(core.logout().await?)
}

#[tauri::command]
pub async fn list_keys(core: State<'_, Core>) -> Result<Vec<SecurityKeyView>, ApiError> {
    Ok(core.list_keys().await?)
}

#[tauri::command]
pub async fn rename_key(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<Vec<SecurityKeyView>, ApiError> {
    Ok(core.rename_key(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn prepare_step_up(
    core: State<'_, Core>,
    action: Option<Value>,
) -> Result<StepUpPrompt, ApiError> {
    Ok(core.prepare_step_up(decode("action", action)?).await?)
}

#[tauri::command]
pub async fn confirm_step_up(
    core: State<'_, Core>,
    id: Option<Value>,
) -> Result<Vec<SecurityKeyView>, ApiError> {
    Ok(core.confirm_step_up(decode("id", id)?).await?)
}

#[tauri::command]
pub async fn cancel_step_up(core: State<'_, Core>, id: Option<Value>) -> Result<(), ApiError> {
    Ok(core.cancel_step_up(decode("id", id)?).await?)
}

#[tauri::command]
pub fn key_prompt(core: State<'_, Core>) -> KeyPromptView {
    core.key_prompt()
}

#[tauri::command]
pub fn submit_pin(core: State<'_, Core>, input: Option<Value>) -> Result<(), ApiError> {
    Ok(core.submit_pin(decode("input", input)?)?)
}

#[tauri::command]
pub fn cancel_key_prompt(core: State<'_, Core>) {
    core.cancel_key_prompt();
}

#[tauri::command]
pub async fn list_entitlements(core: State<'_, Core>) -> Result<EntitlementList, ApiError> {
    Ok(core.entitlements().await?)
}

#[tauri::command]
pub async fn list_grants(core: State<'_, Core>) -> Result<GrantList, ApiError> {
    Ok(core.grants().await?)
}

#[tauri::command]
pub async fn approvals_inbox(core: State<'_, Core>) -> Result<Inbox, ApiError> {
    Ok(core.inbox().await?)
}

#[tauri::command]
pub async fn list_oversight(core: State<'_, Core>) -> Result<GrantList, ApiError> {
    Ok(core.oversight().await?)
}

#[tauri::command]
pub async fn prepare_elevation(
    core: State<'_, Core>,
    action: Option<Value>,
) -> Result<StepUpPrompt, ApiError> {
    Ok(core.prepare_elevation(decode("action", action)?).await?)
}

#[tauri::command]
pub async fn confirm_elevation(
    core: State<'_, Core>,
    id: Option<Value>,
) -> Result<GrantView, ApiError> {
    Ok(core.confirm_elevation(decode("id", id)?).await?)
}

#[tauri::command]
pub async fn cancel_request(
    core: State<'_, Core>,
    id: Option<Value>,
) -> Result<GrantView, ApiError> {
    Ok(core.cancel_request(decode("id", id)?).await?)
}

#[tauri::command]
pub async fn release_grant(
    core: State<'_, Core>,
    id: Option<Value>,
) -> Result<GrantView, ApiError> {
    Ok(core.release_grant(decode("id", id)?).await?)
}

#[tauri::command]
pub async fn revoke_grant(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<GrantView, ApiError> {
    Ok(core.revoke_grant(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn close_review(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<GrantView, ApiError> {
    Ok(core.close_review(decode("input", input)?).await?)
}

/// Local: reads what the core's live stream received; no broker call.
#[tauri::command]
pub async fn live_events(
    core: State<'_, Core>,
    since: Option<Value>,
) -> Result<LiveFeed, ApiError> {
    Ok(core.live_events(decode("since", since)?).await)
}

/// Local: one page of the workstation's audit trail.
#[tauri::command]
pub async fn audit_query(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<AuditPage, ApiError> {
    Ok(core.audit_query(decode("input", input)?).await?)
}

/// Local: verifies the whole audit chain and names the first bad record.
#[tauri::command]
pub async fn audit_verify(core: State<'_, Core>) -> Result<AuditVerifyView, ApiError> {
    Ok(core.audit_verify().await?)
}

/// Local: the records matching a filter as inert JSON lines. The text goes back to the UI,
/// which saves it as a download: no file path crosses IPC.
#[tauri::command]
pub async fn audit_export(core: State<'_, Core>, input: Option<Value>) -> Result<String, ApiError> {
    Ok(core.audit_export(decode("input", input)?).await?)
}

// Brokered sessions. Terminal bytes travel over a `Channel`, not JSON events, so bulk output
// stays fast; the one-time credential stays in the core.

#[tauri::command]
pub async fn prepare_session(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<StepUpPrompt, ApiError> {
    Ok(core.prepare_session(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn open_terminal(
    core: State<'_, Core>,
    webview: tauri::Webview,
    id: Option<Value>,
    channel: Option<Value>,
) -> Result<TerminalView, ApiError> {
    let id: String = decode("id", id)?;
    let channel = crate::args::channel::<TerminalEvent>("channel", channel, webview)?;
    Ok(core
        .open_terminal(id, move |e| {
            // A closed window drops the channel; the session ends with the terminal's close.
            let _ = channel.send(e);
        })
        .await?)
}

#[tauri::command]
pub async fn terminal_input(core: State<'_, Core>, input: Option<Value>) -> Result<(), ApiError> {
    Ok(core.terminal_input(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn terminal_resize(core: State<'_, Core>, input: Option<Value>) -> Result<(), ApiError> {
    Ok(core.terminal_resize(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn close_terminal(core: State<'_, Core>, input: Option<Value>) -> Result<(), ApiError> {
    Ok(core.close_terminal(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn list_live_sessions(core: State<'_, Core>) -> Result<SessionList, ApiError> {
    Ok(core.live_sessions().await?)
}

#[tauri::command]
pub async fn prepare_kill_session(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<StepUpPrompt, ApiError> {
    Ok(core.prepare_kill_session(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn confirm_kill_session(
    core: State<'_, Core>,
    id: Option<Value>,
) -> Result<SessionView, ApiError> {
    Ok(core.confirm_kill_session(decode("id", id)?).await?)
}

#[tauri::command]
pub async fn watch_session(
    core: State<'_, Core>,
    webview: tauri::Webview,
    input: Option<Value>,
    channel: Option<Value>,
) -> Result<(), ApiError> {
    let input = decode("input", input)?;
    let channel = crate::args::channel::<WatchEvent>("channel", channel, webview)?;
    // A closed window drops the channel; the watch runs on until stopped, signed out or over.
    Ok(core
        .watch_session(input, move |e| drop(channel.send(e)))
        .await?)
}

#[tauri::command]
pub fn stop_watch(core: State<'_, Core>, input: Option<Value>) -> Result<(), ApiError> {
    Ok(core.stop_watch(decode("input", input)?)?)
}

#[tauri::command]
pub async fn list_holds(core: State<'_, Core>) -> Result<HeldCommands, ApiError> {
    Ok(core.list_holds().await?)
}

#[tauri::command]
pub async fn prepare_hold_decision(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<StepUpPrompt, ApiError> {
    Ok(core.prepare_hold_decision(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn confirm_hold_decision(
    core: State<'_, Core>,
    id: Option<Value>,
) -> Result<CommandHoldView, ApiError> {
    Ok(core.confirm_hold_decision(decode("id", id)?).await?)
}

#[tauri::command]
pub async fn open_forward(
    core: State<'_, Core>,
    id: Option<Value>,
) -> Result<ForwardView, ApiError> {
    Ok(core.open_forward(decode("id", id)?).await?)
}

#[tauri::command]
pub async fn stop_forward(core: State<'_, Core>, input: Option<Value>) -> Result<(), ApiError> {
    Ok(core.stop_forward(decode("input", input)?).await?)
}

#[tauri::command]
pub fn list_forwards(core: State<'_, Core>) -> Vec<ForwardView> {
    core.list_forwards()
}

#[tauri::command]
pub async fn session_history(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<SessionHistory, ApiError> {
    Ok(core.session_history(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn session_recording(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<SessionRecording, ApiError> {
    Ok(core.session_recording(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn session_masks(core: State<'_, Core>) -> Result<SessionMasks, ApiError> {
    Ok(core.session_masks().await?)
}

// A session's files: the list, and a captured copy the core checks and writes into the user's
// download directory. Only the metadata and where it was saved come back; never the bytes.

#[tauri::command]
pub async fn session_files(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<SessionFiles, ApiError> {
    Ok(core.session_files(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn save_session_file(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<SavedSessionFile, ApiError> {
    Ok(core.save_session_file(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn open_in_terminal(
    core: State<'_, Core>,
    id: Option<Value>,
) -> Result<TerminalView, ApiError> {
    Ok(core.open_in_terminal(decode("id", id)?).await?)
}

// File transfer on a grant. Progress and the connection's end travel over a `Channel`; an
// upload's bytes come in as bounded base64 chunks of the file the user picked, and a download
// is written by the core into the user's download directory: the WebView names no local path.

#[tauri::command]
pub async fn open_files(
    core: State<'_, Core>,
    webview: tauri::Webview,
    id: Option<Value>,
    channel: Option<Value>,
) -> Result<FilesView, ApiError> {
    let id: String = decode("id", id)?;
    let channel = crate::args::channel::<FilesEvent>("channel", channel, webview)?;
    // A closed window drops the channel; the connection ends with its close or the grant.
    Ok(core.open_files(id, move |e| drop(channel.send(e))).await?)
}

#[tauri::command]
pub async fn close_files(core: State<'_, Core>, input: Option<Value>) -> Result<(), ApiError> {
    Ok(core.close_files(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn list_remote(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<RemoteListing, ApiError> {
    Ok(core.list_remote(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn start_upload(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<TransferStart, ApiError> {
    Ok(core.start_upload(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn upload_chunk(core: State<'_, Core>, input: Option<Value>) -> Result<(), ApiError> {
    let input = decode_at_most("input", input, MAX_CHUNK_ARG_BYTES)?;
    Ok(core.upload_chunk(input).await?)
}

#[tauri::command]
pub async fn start_download(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<TransferStart, ApiError> {
    Ok(core.start_download(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn finish_transfer(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<TransferResult, ApiError> {
    Ok(core.finish_transfer(decode("input", input)?).await?)
}

#[tauri::command]
pub fn cancel_transfer(core: State<'_, Core>, input: Option<Value>) -> Result<(), ApiError> {
    Ok(core.cancel_transfer(decode("input", input)?)?)
}

#[tauri::command]
pub async fn list_machines(core: State<'_, Core>) -> Result<MachineInventory, ApiError> {
    Ok(core.machines().await?)
}

#[tauri::command]
pub async fn prepare_create_machine(
    core: State<'_, Core>,
    spec: Option<Value>,
) -> Result<StepUpPrompt, ApiError> {
    Ok(core.prepare_create_machine(decode("spec", spec)?).await?)
}

#[tauri::command]
pub async fn confirm_create_machine(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<MachineCreated, ApiError> {
    Ok(core.confirm_create_machine(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn prepare_transfer_machine(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<StepUpPrompt, ApiError> {
    Ok(core
        .prepare_transfer_machine(decode("input", input)?)
        .await?)
}

#[tauri::command]
pub async fn confirm_transfer_machine(
    core: State<'_, Core>,
    id: Option<Value>,
) -> Result<MachineView, ApiError> {
    Ok(core.confirm_transfer_machine(decode("id", id)?).await?)
}

#[tauri::command]
pub async fn list_vault_accounts(core: State<'_, Core>) -> Result<VaultAccountList, ApiError> {
    Ok(core.vault_accounts().await?)
}

#[tauri::command]
pub async fn prepare_reveal(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<StepUpPrompt, ApiError> {
    Ok(core.prepare_reveal(decode("input", input)?).await?)
}

/// The one IPC answer that carries a target credential: the secret the user signed to see,
/// once. The shell keeps nothing of it (no log, no state).
#[tauri::command]
pub async fn confirm_reveal(
    core: State<'_, Core>,
    id: Option<Value>,
) -> Result<RevealedSecret, ApiError> {
    Ok(core.confirm_reveal(decode("id", id)?).await?)
}

#[tauri::command]
pub async fn prepare_rotation(
    core: State<'_, Core>,
    input: Option<Value>,
) -> Result<StepUpPrompt, ApiError> {
    Ok(core.prepare_rotation(decode("input", input)?).await?)
}

#[tauri::command]
pub async fn confirm_rotation(
    core: State<'_, Core>,
    id: Option<Value>,
) -> Result<VaultAccountView, ApiError> {
    Ok(core.confirm_rotation(decode("id", id)?).await?)
}
