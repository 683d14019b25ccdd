//! File transfer from the app (SFTP through the broker's front door): what the core and the UI
//! exchange about a file connection, its listings and its transfers.
//!
//! Rules: no secret in any of these (the one-time credential stays in the core, as for
//! terminals); sizes and offsets are plain numbers for the UI (a file over 2^53 bytes is not a
//! case); file contents cross IPC only as the upload's chunks, base64, the UI reading the file
//! the user picked. A download is written by the core, to a file name it chooses in the user's
//! download directory: the UI never names a local path.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// IPC: a file connection the core opened on a grant (one SFTP channel through the broker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct FilesView {
    pub session_id: String,
    pub grant_id: String,
    pub target: String,
    pub role: String,
    /// The remote directory the connection starts in (the login's home), absolute.
    pub home: String,
    #[ts(type = "number")]
    pub grant_ends_at_ms: i64,
}

/// What a remote directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum RemoteKind {
    File,
    Dir,
    Link,
    Other,
}

/// One entry of a remote directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RemoteEntry {
    pub name: String,
    pub kind: RemoteKind,
    #[ts(type = "number | null")]
    pub size: Option<u64>,
    #[ts(type = "number | null")]
    pub modified_ms: Option<i64>,
}

/// IPC: a remote directory, sorted (directories first, then by name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RemoteListing {
    /// The directory as the target resolved it (absolute).
    pub path: String,
    pub entries: Vec<RemoteEntry>,
    /// More entries than the core shows in one listing: the rest were left out.
    pub truncated: bool,
}

/// IPC: list a remote directory of an open file connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ListRemoteInput {
    pub session_id: String,
    pub path: String,
}

/// IPC: start an upload of `size` bytes to `remote_path` (absolute). The bytes follow in
/// [`UploadChunkInput`]s, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct StartUploadInput {
    pub session_id: String,
    pub remote_path: String,
    #[ts(type = "number")]
    pub size: u64,
}

/// IPC: start a download of `remote_path` (absolute) into the user's download directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct StartDownloadInput {
    pub session_id: String,
    pub remote_path: String,
}

/// IPC: a transfer the core started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TransferStart {
    pub transfer_id: String,
    /// Bytes to move (the upload's declared size; the remote file's size for a download).
    #[ts(type = "number")]
    pub total: u64,
    /// The largest upload chunk the core accepts (decoded bytes); 0 for a download.
    pub chunk_bytes: u32,
    /// Where a download is being written; `None` for an upload.
    pub local_path: Option<String>,
}

/// IPC: the next bytes of an upload. `offset` must be the number of bytes sent so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct UploadChunkInput {
    pub transfer_id: String,
    #[ts(type = "number")]
    pub offset: u64,
    /// The bytes, base64 (standard alphabet, padded).
    pub data: String,
}

/// IPC: a transfer by id (finish or cancel it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct TransferIdInput {
    pub transfer_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum TransferDirection {
    Upload,
    Download,
}

/// IPC: how a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TransferResult {
    pub transfer_id: String,
    pub direction: TransferDirection,
    pub remote_path: String,
    /// Where the download was saved; `None` for an upload, or a cancelled download (removed).
    pub local_path: Option<String>,
    /// Bytes moved.
    #[ts(type = "number")]
    pub bytes: u64,
    /// SHA-256 (hex) of exactly the bytes moved; empty when cancelled.
    pub sha256: String,
    pub cancelled: bool,
    /// What the user should know (a cancelled upload: the remote file may be partial).
    pub message: Option<String>,
}

/// IPC channel message from the core to a file connection's panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FilesEvent {
    /// Bytes of a transfer done so far.
    Progress {
        transfer_id: String,
        #[ts(type = "number")]
        done: u64,
        #[ts(type = "number")]
        total: u64,
    },
    /// Every byte of an upload is sent; the broker now closes the file, which may wait for a
    /// step-up or an approval when its rules hold the write.
    Closing { transfer_id: String },
    /// What the broker said about the connection in words (for example that it holds a write
    /// until the user's step-up or another person's approval).
    Notice { message: String },
    /// The connection is over; `reason` as in [`crate::session::SessionView::end_reason`].
    Ended { reason: String, message: String },
}

/// IPC: one file of a session's history (`n` as in [`crate::session::SessionFileView::n`]), to
/// save its captured copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct SessionFileInput {
    pub session_id: String,
    #[ts(type = "number")]
    pub n: i64,
}

/// IPC: a session file's captured copy, saved by the core as a new file in the user's download
/// directory after it checked the bytes against the broker's SHA-256. The contents stay in the
/// core: the UI gets where they went and their hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SavedSessionFile {
    pub session_id: String,
    #[ts(type = "number")]
    pub n: i64,
    /// The file's path on the target, as the session's history keeps it.
    pub remote_path: String,
    /// Where the copy was saved (a new file; nothing was overwritten).
    pub local_path: String,
    /// SHA-256 (hex) of the saved bytes, computed by the core; equal to the broker's.
    pub sha256: String,
    #[ts(type = "number")]
    pub bytes: u64,
    /// The copy holds the whole file; `false` when the broker cut it at its capture limit.
    pub complete: bool,
}
