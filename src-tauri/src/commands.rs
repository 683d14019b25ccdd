//! Thin adapters from IPC to paw-client. Each one converts arguments, calls one use case and maps
//! the error to `{code, message}`.

use std::sync::atomic::{AtomicBool, Ordering};

use paw_client::Core;
use paw_proto::ipc::{
    AppStatus, EnrollInput, KeyAction, LoginInput, RenameKeyInput, SecurityKeyView, SessionUser,
    SettingsInput, SettingsView, StepUpPrompt,
};
use paw_proto::ApiError;
use tauri::State;

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
    input: SettingsInput,
) -> Result<SettingsView, ApiError> {
    Ok(core.save_settings(input).await?)
}

#[tauri::command]
pub fn open_external(url: String) -> Result<(), ApiError> {
    let url = paw_client::validate_external_url(&url)?;
    crate::navigation::open_in_browser(&url)
}

#[tauri::command]
pub async fn enroll(core: State<'_, Core>, input: EnrollInput) -> Result<SessionUser, ApiError> {
    Ok(core.enroll(input).await?)
}

#[tauri::command]
pub async fn login(core: State<'_, Core>, input: LoginInput) -> Result<SessionUser, ApiError> {
    Ok(core.login(input).await?)
}

#[tauri::command]
pub async fn logout(core: State<'_, Core>) -> Result<(), ApiError> {
    Ok(core.logout().await?)
}

#[tauri::command]
pub async fn list_keys(core: State<'_, Core>) -> Result<Vec<SecurityKeyView>, ApiError> {
    Ok(core.list_keys().await?)
}

#[tauri::command]
pub async fn rename_key(
    core: State<'_, Core>,
    input: RenameKeyInput,
) -> Result<Vec<SecurityKeyView>, ApiError> {
    Ok(core.rename_key(input).await?)
}

#[tauri::command]
pub async fn prepare_step_up(
    core: State<'_, Core>,
    action: KeyAction,
) -> Result<StepUpPrompt, ApiError> {
    Ok(core.prepare_step_up(action).await?)
}

#[tauri::command]
pub async fn confirm_step_up(
    core: State<'_, Core>,
    id: String,
) -> Result<Vec<SecurityKeyView>, ApiError> {
    Ok(core.confirm_step_up(id).await?)
}

#[tauri::command]
pub async fn cancel_step_up(core: State<'_, Core>, id: String) -> Result<(), ApiError> {
    Ok(core.cancel_step_up(id).await?)
}
