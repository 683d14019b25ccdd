//! Brokered sessions (SSH and PostgreSQL): what the broker reports about them, and what the
//! core and the UI exchange about terminals and local forwards. None of these types carries a
//! secret: the one-time ticket travels in [`crate::elevation::RedeemResponse`], core-only, and
//! the credentials the broker mints for the target never leave the broker (case C4).

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use utoipa::ToSchema;

/// One brokered session, live or ended, as the live-sessions page and the history show it.
/// Times are the broker's clock (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct SessionView {
    pub id: String,
    pub grant_id: String,
    pub user: String,
    /// `ssh` or `postgres`.
    pub target_kind: String,
    pub target: String,
    /// The login (SSH principal) or database role the grant gives.
    pub role: String,
    #[ts(type = "number")]
    pub started_at_ms: i64,
    /// When the grant ends; the broker closes the session then at the latest.
    #[ts(type = "number")]
    pub grant_ends_at_ms: i64,
    #[ts(type = "number | null")]
    pub ended_at_ms: Option<i64>,
    /// Why it ended: `closed`, `grant_ended`, `revoked`, `killed`, `recording_failed`,
    /// `broker_restart`, `target_closed`.
    pub end_reason: Option<String>,
    /// SHA-256 (hex) of the finished recording, also in the broker's audit log.
    pub recording_sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// IPC: open a session on an active grant (a session-scoped step-up follows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct OpenSessionInput {
    pub grant_id: String,
}

/// IPC: an embedded terminal the core opened. Bytes flow over the channel given at open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TerminalView {
    pub session_id: String,
    pub grant_id: String,
    pub target: String,
    pub role: String,
    #[ts(type = "number")]
    pub grant_ends_at_ms: i64,
}

/// IPC channel message from the core to a terminal tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalEvent {
    /// Output bytes, base64 (terminal output need not be UTF-8 at chunk boundaries).
    Output { data: String },
    /// The session ends soon (the grant's warnings).
    Warning {
        message: String,
        #[ts(type = "number")]
        ends_at_ms: i64,
    },
    /// The session is over; `reason` as in [`SessionView::end_reason`], `message` in words.
    Ended { reason: String, message: String },
}

/// IPC: keystrokes (or pasted text) for a terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct TerminalInput {
    pub session_id: String,
    pub data: String,
}

/// IPC: the terminal's size changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct TerminalResize {
    pub session_id: String,
    pub cols: u16,
    pub rows: u16,
}

/// IPC: names one session (close my terminal, stop my forward).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct SessionIdInput {
    pub session_id: String,
}

/// IPC: an admin kills a session (a step-up follows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct KillSessionInput {
    pub session_id: String,
    pub reason: String,
}

/// IPC: a local PostgreSQL forward on loopback (case C9) for a database grant: `psql` or a GUI
/// client connects to `local_addr` with no password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ForwardView {
    pub session_id: String,
    pub grant_id: String,
    pub target: String,
    pub database: String,
    /// Always `127.0.0.1:PORT`.
    pub local_addr: String,
    #[ts(type = "number")]
    pub grant_ends_at_ms: i64,
}
