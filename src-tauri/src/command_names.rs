// Shared by build.rs (which declares the commands to Tauri's ACL) and the crate (whose tests check
// that the one capability allows exactly these). Keep in step with `generate_handler!` in main.rs.
pub const COMMANDS: &[&str] = &[
    "app_status",
    "get_settings",
    "save_settings",
    "open_external",
    "enroll",
    "login",
    "logout",
    "list_keys",
    "rename_key",
    "prepare_step_up",
    "confirm_step_up",
    "cancel_step_up",
    "key_prompt",
    "submit_pin",
    "cancel_key_prompt",
];
