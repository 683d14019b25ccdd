//! Brokered sessions (SSH and PostgreSQL): what the broker reports about them, and what the
//! core and the UI exchange about terminals and local forwards. None of these types carries a
//! secret: the one-time ticket travels in [`crate::elevation::RedeemResponse`], core-only, and
//! the credentials the broker mints for the target never leave the broker (case C4).

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use utoipa::{IntoParams, ToSchema};

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
    /// `broker_restart`, `broker_shutdown`, `broker_lost`, `database_lost`, `target_closed`, `command_denied`.
    pub end_reason: Option<String>,
    /// SHA-256 (hex) of the finished recording, also in the broker's audit log.
    pub recording_sha256: Option<String>,
    /// The caller may watch this live session read-only (`GET /v1/sessions/{id}/watch`): an
    /// SSH session of someone else, and the caller an administrator or an approver of its
    /// entitlement. Absent (false) from a broker before live oversight.
    #[serde(default)]
    pub may_watch: bool,
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

// ---- Help-desk: session history and replays ----------------------------------------------

/// `GET /v1/sessions/history` query, and the `session_history` IPC input. Unset fields match
/// everything; set fields must all match. Unknown parameters are rejected (case F1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams, TS)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SessionHistoryQuery {
    /// A part of the user's name, case-insensitive.
    #[param(max_length = 128, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub user: Option<String>,
    /// A part of the target's name, case-insensitive.
    #[param(max_length = 128, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub target: Option<String>,
    /// Why it ended, exactly (see [`SessionView::end_reason`]), or `live` for sessions that
    /// have not ended.
    #[param(max_length = 40, pattern = "^[a-z_]*$")]
    pub reason: Option<String>,
    /// Sessions that started at or after this time (Unix ms).
    #[ts(type = "number | null")]
    pub from_ms: Option<i64>,
    /// Sessions that started before this time (Unix ms, exclusive).
    #[ts(type = "number | null")]
    pub until_ms: Option<i64>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    #[ts(type = "number | null")]
    pub offset: Option<u64>,
}

/// One past or live session as the history shows it. Times are the broker's clock (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct SessionHistoryEntry {
    pub id: String,
    pub grant_id: String,
    pub user: String,
    /// `ssh` or `postgres`.
    pub target_kind: String,
    pub target: String,
    /// The login (SSH principal) or database role the grant gave.
    pub role: String,
    #[ts(type = "number")]
    pub started_at_ms: i64,
    #[ts(type = "number | null")]
    pub ended_at_ms: Option<i64>,
    /// As in [`SessionView::end_reason`]; `null` while the session is live.
    pub end_reason: Option<String>,
    /// SHA-256 (hex) of the finished recording, as the broker's audit log holds it.
    pub recording_sha256: Option<String>,
    /// A finished recording is on the broker's disk and can be replayed.
    pub has_recording: bool,
}

/// `GET /v1/sessions/history` answer: one page, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct SessionHistory {
    pub sessions: Vec<SessionHistoryEntry>,
    #[ts(type = "number")]
    pub offset: u64,
    /// More sessions match after this page.
    pub has_more: bool,
}

/// `GET /v1/sessions/masks`: what a replay hides. Any signed-in user may read it (the help
/// desk needs to know what it will not see); nobody who is not signed in, since the list says
/// what goes unmasked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct SessionMasks {
    /// The `[sessions] mask` patterns (Rust `regex` syntax), in config order; empty when
    /// masking is off.
    pub patterns: Vec<String>,
    /// The config says nothing, so these are the broker's defaults.
    pub default: bool,
    /// What each match is replaced with in a replay.
    pub replacement: String,
}

/// `GET /v1/sessions/{id}/recording`: an SSH session's recording as help-desk sees it, after
/// the broker checked it against its recorded SHA-256 and masked the configured patterns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct SessionRecording {
    pub session_id: String,
    /// The SHA-256 (hex) the file on disk matched, before masking.
    pub sha256: String,
    /// How many passages were replaced by `••••`.
    pub masked: u32,
    /// asciicast v2 text (a JSON header line, then one JSON event per line).
    pub cast: String,
}

/// A command a live session holds until its user's step-up or another person's approval
/// (command control, cases J3 and J4). Times are the broker's clock (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct CommandHoldView {
    pub id: String,
    pub session_id: String,
    /// Whose session holds it.
    pub user: String,
    pub entitlement: String,
    pub target: String,
    /// The normalized command a step-up or approval is bound to.
    pub command: String,
    /// `step_up` (the session's user releases it) or `approve` (someone else decides).
    pub needs: String,
    /// `pending`, `released`, `refused` or `expired`.
    pub state: String,
    #[ts(type = "number")]
    pub created_at: i64,
    #[ts(type = "number")]
    pub expires_at: i64,
    pub decided_by: Option<String>,
}

/// The held commands the caller may act on: their own, and those they may approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct CommandHoldList {
    pub holds: Vec<CommandHoldView>,
}

/// One server-sent event of `GET /v1/sessions/{id}/watch`, the read-only view of a live SSH
/// session (case J6). The SSE `event` field is `kind`; the `data` field is this JSON, `kind`
/// included. Byte fields are standard base64 (with padding) of raw terminal bytes: decode
/// them to bytes and write those to a terminal emulator, not to text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SessionWatchEvent {
    /// First, and again whenever the watcher fell behind and skipped output: reset the
    /// terminal to `cols` × `rows` and write `screen`, which draws what the user sees now
    /// (contents, attributes, cursor). Output events continue from there.
    Start {
        session_id: String,
        /// Whose session it is.
        user: String,
        target: String,
        role: String,
        cols: u32,
        rows: u32,
        /// base64 of the escape sequences that redraw the current screen; empty when the
        /// broker could not read the session's recording.
        screen: String,
    },
    /// Bytes the target sent to the user's terminal (stdout and stderr), in order.
    Output { data: String },
    /// The user's terminal changed size.
    Resize { cols: u32, rows: u32 },
    /// Last: the watch is over. `reason` is the session's end reason (as in
    /// [`SessionView::end_reason`]) when the session ended, or `access_ended` when the
    /// watcher's sign-in ended, they may no longer watch this session, or the broker stops.
    End { reason: String, message: String },
}

impl SessionWatchEvent {
    /// The SSE event name: the `kind` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Start { .. } => "start",
            Self::Output { .. } => "output",
            Self::Resize { .. } => "resize",
            Self::End { .. } => "end",
        }
    }
}

/// One file moved through a session's SFTP (issue #18), as its history keeps it. Times are the
/// broker's clock (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct SessionFileView {
    /// Its place in the session, from 1: what `GET /v1/sessions/{id}/files/{n}` takes.
    #[ts(type = "number")]
    pub n: i64,
    /// As resolved on the target.
    pub path: String,
    /// `upload` or `download`.
    pub direction: String,
    #[ts(type = "number")]
    pub size: i64,
    /// SHA-256 (hex) of the bytes that passed; none when the broker could not tell.
    pub sha256: Option<String>,
    /// `success`, `failure` or `denied` (a held write nobody released).
    pub outcome: String,
    /// A copy was kept with the recording.
    pub captured: bool,
    /// The copy holds the whole file (not cut at `capture_max`).
    pub capture_complete: bool,
    #[ts(type = "number")]
    pub at_ms: i64,
}

/// `GET /v1/sessions/{id}/files`: the files of one session, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct SessionFiles {
    pub session_id: String,
    pub files: Vec<SessionFileView>,
}

/// `GET /v1/sessions/{id}/files/{n}`: a captured copy, checked against the SHA-256 taken when
/// it was kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct CapturedFile {
    pub file: SessionFileView,
    /// SHA-256 (hex) of the copy, which the file on disk matched.
    pub capture_sha256: String,
    /// The copy, base64 (standard alphabet).
    pub content_base64: String,
}
