//! File transfer from the app: a file connection is one SSH connection to the broker's front
//! door with a session's one-time credential, carrying one `sftp` subsystem channel, over
//! which the user lists remote directories, uploads and downloads.
//!
//! Rules:
//! - Opening is a session step-up like a terminal (the credential goes from the redeem answer
//!   into the login and is dropped; nothing of it reaches a log or the UI).
//! - The broker decides every operation (path rules, sizes, holds); its refusals come back as
//!   SFTP status errors whose message starts with `paw: `, and reach the UI as they are.
//! - Transfers stream: an upload arrives from the UI in chunks of at most [`CHUNK_BYTES`] and is
//!   written as it comes; a download is read and written locally in pieces. Neither is held in
//!   memory whole. The SHA-256 shown at the end is of exactly the bytes moved.
//! - Each transfer is one privileged use case in the local trail: its `started` record (path,
//!   size, direction) is durable before the remote file is opened, and its end record carries
//!   the bytes moved and their SHA-256, or why it failed or that it was cancelled.
//! - The UI never names a local path: an upload's bytes are those of the file the user picked
//!   in the WebView; a download is written by the core to a new file in the user's download
//!   directory (never over an existing one), and the UI is told where.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use base64::Engine;
use paw_audit::Outcome;
use paw_proto::action::Action;
use paw_proto::files::{
    FilesEvent, FilesView, ListRemoteInput, RemoteEntry, RemoteKind, RemoteListing,
    StartDownloadInput, StartUploadInput, TransferDirection, TransferIdInput, TransferResult,
    TransferStart, UploadChunkInput,
};
use paw_proto::session::SessionIdInput;
use paw_proto::{ApiError, ErrorCode};
use rand_core::{OsRng, RngCore};
use russh::client::Handle;
use russh::ChannelMsg;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::fs::File as RemoteFile;
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::{OpenFlags, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, oneshot, watch};

use crate::audit::{Audit, Summary};
use crate::terminal::{self, Credential, Pinned};
use crate::util::hex;
use crate::{ClientError, Core};

/// The largest upload chunk the core takes in one IPC call (decoded bytes): large enough that
/// a 100 MiB file is a few hundred calls, small enough that one call's JSON stays well under a
/// megabyte.
pub const CHUNK_BYTES: u32 = 256 * 1024;
/// A download is read and written locally in pieces of this size.
const READ_BYTES: usize = 256 * 1024;
/// A progress event at most every this many bytes (and at the end), so a fast transfer does
/// not flood the UI.
const PROGRESS_EVERY: u64 = 256 * 1024;
/// Entries shown of one remote directory.
pub const MAX_LIST_ENTRIES: usize = 2_000;
/// The longest remote path accepted (Linux's PATH_MAX).
pub const MAX_REMOTE_PATH_BYTES: usize = 4_096;
/// How long one SFTP request may wait for its answer. Long because the broker may hold an
/// upload's final close until the user's step-up or a second person's approval; a dead
/// connection is noticed sooner by the SSH keepalive, which ends every pending request.
const REQUEST_TIMEOUT_SECS: u64 = 60 * 60;
/// The buffer between the channel and the SFTP client (one maximal SFTP packet).
const PIPE_BYTES: usize = 256 * 1024;
/// How long a close waits for the broker to acknowledge the disconnect.
const GOODBYE: Duration = Duration::from_millis(500);

/// Where a file connection's events go (the UI's channel).
type EventSink = Arc<dyn Fn(FilesEvent) + Send + Sync>;

/// The file connections and transfers this core holds open.
#[derive(Default)]
pub(crate) struct Files {
    conns: Mutex<HashMap<String, Arc<Conn>>>,
    transfers: Mutex<HashMap<String, Arc<Transfer>>>,
}

/// One open file connection.
struct Conn {
    view: FilesView,
    sftp: Arc<SftpSession>,
    handle: Handle<Pinned>,
    send: EventSink,
    /// Set to end the connection (closed here); its watcher then disconnects.
    stop: watch::Sender<bool>,
}

/// A transfer in flight, as the IPC calls reach it.
struct Transfer {
    session_id: String,
    /// Upload chunks (and the finish) go to the transfer's task; `None` for a download.
    chunks: Option<mpsc::Sender<UploadMsg>>,
    cancel: watch::Sender<bool>,
    phase: watch::Receiver<Phase>,
}

enum UploadMsg {
    Chunk {
        offset: u64,
        data: Vec<u8>,
        ack: oneshot::Sender<()>,
    },
    Finish,
}

#[derive(Clone)]
enum Phase {
    Opening,
    Running(TransferStart),
    Done(Result<TransferResult, ApiError>),
}

impl Files {
    fn conn(&self, id: &str) -> Result<Arc<Conn>, ClientError> {
        self.conns
            .lock()
            .ok()
            .and_then(|m| m.get(id).cloned())
            .ok_or_else(|| ClientError::InvalidInput {
                field: "session_id",
                reason: "no such open file connection".into(),
            })
    }

    fn transfer(&self, id: &str) -> Result<Arc<Transfer>, ClientError> {
        self.transfers
            .lock()
            .ok()
            .and_then(|m| m.get(id).cloned())
            .ok_or_else(|| ClientError::InvalidInput {
                field: "transfer_id",
                reason: "no such transfer (it may have ended)".into(),
            })
    }

    fn forget_transfer(&self, id: &str) {
        if let Ok(mut m) = self.transfers.lock() {
            m.remove(id);
        }
    }

    fn remove(&self, id: &str) -> Option<Arc<Conn>> {
        let conn = self.conns.lock().ok().and_then(|mut m| m.remove(id));
        // Its transfers cannot go on without it.
        let transfers: Vec<Arc<Transfer>> = self
            .transfers
            .lock()
            .map(|m| m.values().filter(|t| t.session_id == id).cloned().collect())
            .unwrap_or_default();
        for t in transfers {
            t.cancel.send_replace(true);
        }
        conn
    }

    /// Ends every file connection (sign-out).
    pub(crate) fn close_all(&self) {
        let ids: Vec<String> = self
            .conns
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for id in ids {
            if let Some(c) = self.remove(&id) {
                c.stop.send_replace(true);
            }
        }
    }
}

impl Summary for FilesView {
    fn summary(&self) -> Value {
        json!({"session": self.session_id, "grant": self.grant_id, "target": self.target})
    }
}

impl Summary for TransferResult {
    fn summary(&self) -> Value {
        json!({
            "direction": self.direction,
            "remote": self.remote_path,
            "local": self.local_path,
            "bytes": self.bytes,
            "sha256": self.sha256,
        })
    }
}

impl Core {
    /// Signs the prepared session step-up for an SSH grant and opens a file connection (the
    /// broker's `sftp` subsystem) on it. Progress of its transfers and its end go to `on_event`.
    pub async fn open_files(
        &self,
        id: String,
        on_event: impl Fn(FilesEvent) + Send + Sync + 'static,
    ) -> Result<FilesView, ClientError> {
        let (p, grant) = self
            .session_step_up(
                &id,
                |g| g.target_kind == "ssh",
                "files move on an active SSH grant",
            )
            .await?;
        let Action::Session { grant_id, target } = p.action.clone() else {
            return Err(ClientError::StepUpUnknown);
        };
        let what = Audit::for_action("session.files", target.clone(), &p.action);
        let weak = Arc::downgrade(&self.inner);
        let send: EventSink = Arc::new(on_event);
        self.audited(what, async {
            let r = self.redeem(&p, &grant_id).await?;
            let session_id = r.session_id.clone();
            let cred = crate::sessions::credential(r)?;
            let (handle, sftp, disconnect) = connect(cred, send.clone()).await?;
            let home = sftp
                .canonicalize(".")
                .await
                .map_err(|e| sftp_error("reading the remote home directory", e))?;
            let view = FilesView {
                session_id,
                grant_id,
                target: target.clone(),
                role: grant.role,
                home,
                grant_ends_at_ms: grant.ends_at_ms.unwrap_or_default(),
            };
            Ok(self.keep(weak, handle, sftp, disconnect, view, send))
        })
        .await
    }

    /// Ends a file connection (its transfers are cancelled).
    pub async fn close_files(&self, input: SessionIdInput) -> Result<(), ClientError> {
        if let Some(c) = self.inner.files.remove(&input.session_id) {
            c.stop.send_replace(true);
        }
        Ok(())
    }

    /// One remote directory: its entries, directories first.
    pub async fn list_remote(&self, input: ListRemoteInput) -> Result<RemoteListing, ClientError> {
        check_remote_path("path", &input.path)?;
        let conn = self.inner.files.conn(&input.session_id)?;
        let path = conn
            .sftp
            .canonicalize(input.path.as_str())
            .await
            .map_err(|e| sftp_error("resolving the directory", e))?;
        let dir = conn
            .sftp
            .read_dir(path.as_str())
            .await
            .map_err(|e| sftp_error("listing the directory", e))?;
        let mut entries: Vec<RemoteEntry> = dir
            .map(|e| {
                let m = e.metadata();
                let t = e.file_type();
                RemoteEntry {
                    name: e.file_name(),
                    kind: if t.is_dir() {
                        RemoteKind::Dir
                    } else if t.is_symlink() {
                        RemoteKind::Link
                    } else if t.is_file() {
                        RemoteKind::File
                    } else {
                        RemoteKind::Other
                    },
                    size: m.size,
                    modified_ms: m.mtime.map(|s| i64::from(s) * 1000),
                }
            })
            .collect();
        entries.sort_by(|a, b| {
            (a.kind != RemoteKind::Dir, &a.name).cmp(&(b.kind != RemoteKind::Dir, &b.name))
        });
        let truncated = entries.len() > MAX_LIST_ENTRIES;
        entries.truncate(MAX_LIST_ENTRIES);
        Ok(RemoteListing {
            path,
            entries,
            truncated,
        })
    }

    /// Starts an upload of `size` bytes to `remote_path`: the remote file is created (or
    /// truncated) once the local trail holds the transfer's `started` record. The bytes follow
    /// in [`Core::upload_chunk`], then [`Core::finish_transfer`].
    pub async fn start_upload(
        &self,
        input: StartUploadInput,
    ) -> Result<TransferStart, ClientError> {
        check_remote_path("remote_path", &input.remote_path)?;
        let conn = self.inner.files.conn(&input.session_id)?;
        let (tx, rx) = mpsc::channel(1);
        let what = Audit::new(
            "files.upload",
            conn.view.target.clone(),
            json!({"session": conn.view.session_id, "remote": input.remote_path, "size": input.size}),
        );
        let job = Job {
            id: new_id()?,
            sftp: conn.sftp.clone(),
            send: conn.send.clone(),
            remote_path: input.remote_path,
            direction: TransferDirection::Upload,
        };
        let size = input.size;
        self.start_transfer(
            &conn.view.session_id,
            job,
            Some(tx),
            what,
            move |job, cancel, phase| upload(job, size, rx, cancel, phase),
        )
        .await
    }

    /// The next bytes of an upload, in order. Resolves once they are on their way to the
    /// target; a refusal by the broker (or the target) rejects with its words.
    pub async fn upload_chunk(&self, input: UploadChunkInput) -> Result<(), ClientError> {
        let t = self.inner.files.transfer(&input.transfer_id)?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(input.data.as_bytes())
            .map_err(|_| ClientError::InvalidInput {
                field: "data",
                reason: "not base64".into(),
            })?;
        if data.len() > CHUNK_BYTES as usize {
            return Err(ClientError::InvalidInput {
                field: "data",
                reason: format!("at most {CHUNK_BYTES} bytes at a time"),
            });
        }
        let chunks = t.chunks.as_ref().ok_or_else(|| ClientError::InvalidInput {
            field: "transfer_id",
            reason: "not an upload".into(),
        })?;
        let (ack, acked) = oneshot::channel();
        let sent = chunks
            .send(UploadMsg::Chunk {
                offset: input.offset,
                data,
                ack,
            })
            .await;
        if sent.is_ok() && acked.await.is_ok() {
            return Ok(());
        }
        // The transfer ended instead (refused, failed or cancelled): say how.
        match wait_done(&t).await {
            Err(e) => Err(ClientError::Transfer(e)),
            Ok(r) if r.cancelled => Err(ClientError::Transfer(ApiError::new(
                ErrorCode::Conflict,
                "the upload was cancelled",
            ))),
            Ok(_) => Err(ClientError::Internal("the upload ended early".into())),
        }
    }

    /// Starts a download of `remote_path` into a new file in the user's download directory;
    /// progress goes to the connection's events, the end to [`Core::finish_transfer`].
    pub async fn start_download(
        &self,
        input: StartDownloadInput,
    ) -> Result<TransferStart, ClientError> {
        check_remote_path("remote_path", &input.remote_path)?;
        let conn = self.inner.files.conn(&input.session_id)?;
        let dir = download_dir()?;
        let what = Audit::new(
            "files.download",
            conn.view.target.clone(),
            json!({"session": conn.view.session_id, "remote": input.remote_path}),
        );
        let job = Job {
            id: new_id()?,
            sftp: conn.sftp.clone(),
            send: conn.send.clone(),
            remote_path: input.remote_path,
            direction: TransferDirection::Download,
        };
        self.start_transfer(
            &conn.view.session_id,
            job,
            None,
            what,
            move |job, cancel, phase| download(job, dir, cancel, phase),
        )
        .await
    }

    /// Ends an upload (every byte was sent) and waits until the broker has closed the file,
    /// which may wait for an approval; for a download, waits until it is written. Resolves
    /// with the bytes moved and their SHA-256, or, after a cancel, with what that left behind.
    pub async fn finish_transfer(
        &self,
        input: TransferIdInput,
    ) -> Result<TransferResult, ClientError> {
        let t = self.inner.files.transfer(&input.transfer_id)?;
        if let Some(chunks) = &t.chunks {
            // Closed already: the transfer ended on its own, and `wait_done` says how.
            let _ = chunks.send(UploadMsg::Finish).await;
        }
        let r = wait_done(&t).await;
        self.inner.files.forget_transfer(&input.transfer_id);
        r.map_err(ClientError::Transfer)
    }

    /// Stops a transfer: the remote file is closed (a cancelled upload may leave a partial
    /// file there) and a partial download is removed. [`Core::finish_transfer`] then says so.
    pub fn cancel_transfer(&self, input: TransferIdInput) -> Result<(), ClientError> {
        let t = self.inner.files.transfer(&input.transfer_id)?;
        t.cancel.send_replace(true);
        Ok(())
    }

    /// Runs one transfer on a task of its own, inside its audit records, and resolves once it
    /// is under way (or has failed to start).
    async fn start_transfer<F, Fut>(
        &self,
        session_id: &str,
        job: Job,
        chunks: Option<mpsc::Sender<UploadMsg>>,
        what: Audit,
        run: F,
    ) -> Result<TransferStart, ClientError>
    where
        F: FnOnce(Job, watch::Receiver<bool>, watch::Sender<Phase>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<TransferResult, Failed>> + Send,
    {
        let (cancel, cancel_rx) = watch::channel(false);
        let (phase_tx, mut phase) = watch::channel(Phase::Opening);
        let id = job.id.clone();
        let t = Arc::new(Transfer {
            session_id: session_id.to_owned(),
            chunks,
            cancel,
            phase: phase.clone(),
        });
        if let Ok(mut m) = self.inner.files.transfers.lock() {
            m.insert(id.clone(), t);
        }
        let core = Core {
            inner: self.inner.clone(),
        };
        let phase_out = phase_tx.clone();
        tokio::spawn(async move {
            let mut cancelled: Option<TransferResult> = None;
            let result = core
                .audited(what, async {
                    match run(job, cancel_rx, phase_tx).await {
                        Ok(r) => Ok(r),
                        Err(Failed::Error(e)) => Err(e),
                        Err(Failed::Cancelled(r)) => {
                            let message = r.message.clone().unwrap_or_default();
                            cancelled = Some(r);
                            Err(ClientError::Transfer(ApiError::new(
                                ErrorCode::Conflict,
                                format!("cancelled by the user: {message}"),
                            )))
                        }
                    }
                })
                .await;
            let done = match (result, cancelled) {
                (_, Some(r)) => Ok(r),
                (Ok(r), None) => Ok(r),
                (Err(e), None) => Err(transfer_api_error(e)),
            };
            phase_out.send_replace(Phase::Done(done));
        });
        let started = phase
            .wait_for(|p| !matches!(p, Phase::Opening))
            .await
            .map(|p| p.clone());
        match started {
            Ok(Phase::Running(s)) => Ok(s),
            Ok(Phase::Done(Err(e))) => {
                self.inner.files.forget_transfer(&id);
                Err(ClientError::Transfer(e))
            }
            _ => {
                self.inner.files.forget_transfer(&id);
                Err(ClientError::Internal("the transfer did not start".into()))
            }
        }
    }

    /// Holds an opened connection and watches for its end.
    fn keep(
        &self,
        weak: Weak<crate::Inner>,
        handle: Handle<Pinned>,
        sftp: SftpSession,
        disconnect: oneshot::Receiver<String>,
        view: FilesView,
        send: EventSink,
    ) -> FilesView {
        let (stop, stop_rx) = watch::channel(false);
        let conn = Arc::new(Conn {
            view: view.clone(),
            sftp: Arc::new(sftp),
            handle,
            send,
            stop,
        });
        if let Ok(mut m) = self.inner.files.conns.lock() {
            m.insert(view.session_id.clone(), conn.clone());
        }
        watch_conn(weak, conn, disconnect, stop_rx);
        view
    }
}

/// What a transfer's task needs.
struct Job {
    id: String,
    sftp: Arc<SftpSession>,
    send: EventSink,
    remote_path: String,
    direction: TransferDirection,
}

impl Job {
    fn progress(&self, done: u64, total: u64) {
        (self.send)(FilesEvent::Progress {
            transfer_id: self.id.clone(),
            done,
            total,
        });
    }

    fn result(&self, local: Option<String>, bytes: u64, sha256: String) -> TransferResult {
        TransferResult {
            transfer_id: self.id.clone(),
            direction: self.direction,
            remote_path: self.remote_path.clone(),
            local_path: local,
            bytes,
            sha256,
            cancelled: false,
            message: None,
        }
    }
}

/// Why a transfer's task stopped early.
enum Failed {
    Error(ClientError),
    /// The user cancelled; what is left behind, in words.
    Cancelled(TransferResult),
}

impl From<ClientError> for Failed {
    fn from(e: ClientError) -> Self {
        Self::Error(e)
    }
}

/// Resolves once a cancel is asked for (or the transfer's handle is gone).
async fn cancelled(rx: &mut watch::Receiver<bool>) {
    // The borrow `wait_for` returns is not `Send`: dropped here, before any other await.
    let _ = rx.wait_for(|c| *c).await;
}

async fn upload(
    job: Job,
    size: u64,
    mut chunks: mpsc::Receiver<UploadMsg>,
    mut cancel: watch::Receiver<bool>,
    phase: watch::Sender<Phase>,
) -> Result<TransferResult, Failed> {
    let mut file = job
        .sftp
        .open_with_flags(
            job.remote_path.as_str(),
            OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
        )
        .await
        .map_err(|e| sftp_error("opening the remote file", e))?;
    phase.send_replace(Phase::Running(TransferStart {
        transfer_id: job.id.clone(),
        total: size,
        chunk_bytes: CHUNK_BYTES,
        local_path: None,
    }));
    let mut hash = Sha256::new();
    let mut done: u64 = 0;
    let partial = |job: &Job, done: u64| {
        let mut r = job.result(None, done, String::new());
        r.cancelled = true;
        r.message = Some(format!(
            "The upload was cancelled after {done} of {size} bytes; {} may be left partial on the target.",
            job.remote_path
        ));
        Failed::Cancelled(r)
    };
    loop {
        let msg = tokio::select! {
            biased;
            () = cancelled(&mut cancel) => {
                // Dropping the file sends its close: the handle is not left open.
                drop(file);
                return Err(partial(&job, done));
            }
            m = chunks.recv() => m,
        };
        match msg {
            Some(UploadMsg::Chunk { offset, data, ack }) => {
                check_chunk(offset, data.len(), done, size)?;
                let wrote = tokio::select! {
                    biased;
                    () = cancelled(&mut cancel) => {
                        drop(file);
                        return Err(partial(&job, done));
                    }
                    w = file.write_all(&data) => w,
                };
                wrote.map_err(|e| io_error("writing to the remote file", &e))?;
                hash.update(&data);
                done += data.len() as u64;
                job.progress(done, size);
                let _ = ack.send(());
            }
            Some(UploadMsg::Finish) => break,
            // Every sender is gone: the connection was closed under the transfer.
            None => {
                drop(file);
                return Err(partial(&job, done));
            }
        }
    }
    if done != size {
        // The close would make a short file look complete.
        drop(file);
        return Err(ClientError::InvalidInput {
            field: "transfer_id",
            reason: format!(
                "only {done} of {size} bytes were sent; the remote file may be partial"
            ),
        }
        .into());
    }
    (job.send)(FilesEvent::Closing {
        transfer_id: job.id.clone(),
    });
    // Drains the pipelined writes, then closes: the broker's last word on the file (it may
    // hold the close for an approval, or refuse it).
    let closed = tokio::select! {
        biased;
        () = cancelled(&mut cancel) => return Err(partial(&job, done)),
        c = file.shutdown() => c,
    };
    closed.map_err(|e| io_error("closing the remote file", &e))?;
    Ok(job.result(None, done, hex(&hash.finalize())))
}

/// An upload's chunks come in order and never beyond the declared size.
fn check_chunk(offset: u64, len: usize, done: u64, size: u64) -> Result<(), ClientError> {
    if offset != done {
        return Err(ClientError::InvalidInput {
            field: "offset",
            reason: format!("expected the bytes from {done}, got {offset}"),
        });
    }
    if done.saturating_add(len as u64) > size {
        return Err(ClientError::InvalidInput {
            field: "data",
            reason: format!("more than the declared {size} bytes"),
        });
    }
    Ok(())
}

async fn download(
    job: Job,
    dir: PathBuf,
    mut cancel: watch::Receiver<bool>,
    phase: watch::Sender<Phase>,
) -> Result<TransferResult, Failed> {
    let mut remote = job
        .sftp
        .open(job.remote_path.as_str())
        .await
        .map_err(|e| sftp_error("opening the remote file", e))?;
    let meta = remote
        .metadata()
        .await
        .map_err(|e| sftp_error("reading the remote file's size", e))?;
    if meta.file_type().is_dir() {
        return Err(ClientError::InvalidInput {
            field: "remote_path",
            reason: "a directory; choose a file".into(),
        }
        .into());
    }
    let total = meta.size.unwrap_or(0);
    let (path, local) = create_unique(&dir, &local_name(&job.remote_path)).await?;
    let shown = path.display().to_string();
    phase.send_replace(Phase::Running(TransferStart {
        transfer_id: job.id.clone(),
        total,
        chunk_bytes: 0,
        local_path: Some(shown.clone()),
    }));
    let copied = copy_down(&job, &mut remote, local, total, &mut cancel).await;
    match copied {
        Ok((bytes, sha256)) => {
            // Best effort: the bytes are safely here whatever the close says.
            let _ = remote.shutdown().await;
            job.progress(bytes, total.max(bytes));
            Ok(job.result(Some(shown), bytes, sha256))
        }
        Err(e) => {
            drop(remote);
            // A partial download is not left for someone to take for the real file.
            let _ = tokio::fs::remove_file(&path).await;
            Err(match e {
                Failed::Cancelled(mut r) => {
                    r.message = Some(format!(
                        "The download was cancelled after {} bytes; the partial file was removed.",
                        r.bytes
                    ));
                    Failed::Cancelled(r)
                }
                other => other,
            })
        }
    }
}

/// Reads the remote file to its end into `local`, hashing and reporting progress.
async fn copy_down(
    job: &Job,
    remote: &mut RemoteFile,
    mut local: tokio::fs::File,
    total: u64,
    cancel: &mut watch::Receiver<bool>,
) -> Result<(u64, String), Failed> {
    let mut buf = vec![0u8; READ_BYTES];
    let mut hash = Sha256::new();
    let mut done: u64 = 0;
    let mut reported: u64 = 0;
    loop {
        let n = tokio::select! {
            biased;
            () = cancelled(cancel) => {
                let mut r = job.result(None, done, String::new());
                r.cancelled = true;
                return Err(Failed::Cancelled(r));
            }
            n = remote.read(&mut buf) => n.map_err(|e| io_error("reading the remote file", &e))?,
        };
        if n == 0 {
            break;
        }
        let piece = buf.get(..n).unwrap_or_default();
        local
            .write_all(piece)
            .await
            .map_err(|e| ClientError::Storage(format!("writing the downloaded file: {e}")))?;
        hash.update(piece);
        done += n as u64;
        if done - reported >= PROGRESS_EVERY {
            reported = done;
            job.progress(done, total.max(done));
        }
    }
    local
        .sync_all()
        .await
        .map_err(|e| ClientError::Storage(format!("saving the downloaded file: {e}")))?;
    Ok((done, hex(&hash.finalize())))
}

/// Logs in with the one-time credential and starts the `sftp` subsystem on the one channel
/// it allows. The broker refuses the subsystem when the grant has no file rules.
async fn connect(
    cred: Credential,
    send: EventSink,
) -> Result<(Handle<Pinned>, SftpSession, oneshot::Receiver<String>), ClientError> {
    let (handle, disconnect) = terminal::login(&cred).await?;
    drop(cred);
    let mut channel = handle
        .channel_open_session()
        .await
        .map_err(|e| ClientError::Session(format!("opening the session: {e}")))?;
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|e| ClientError::Session(format!("starting file transfer: {e}")))?;
    // The answer to the subsystem request comes on the channel, before any SFTP bytes.
    loop {
        match channel.wait().await {
            Some(ChannelMsg::Success) => break,
            Some(ChannelMsg::Failure) => {
                return Err(ClientError::Transfer(ApiError::new(
                    ErrorCode::Forbidden,
                    "the broker does not allow file transfer on this grant (its entitlement has no file rules)",
                )))
            }
            Some(ChannelMsg::Close | ChannelMsg::Eof) | None => {
                return Err(ClientError::Session(
                    "the broker closed the session before file transfer started".into(),
                ))
            }
            Some(_) => {}
        }
    }
    let config = russh_sftp::client::Config {
        request_timeout_secs: REQUEST_TIMEOUT_SECS,
        ..Default::default()
    };
    let (ours, theirs) = tokio::io::duplex(PIPE_BYTES);
    tokio::spawn(pump(channel, theirs, send));
    let sftp = SftpSession::new_with_config(ours, config)
        .await
        .map_err(|e| sftp_error("starting file transfer", e))?;
    Ok((handle, sftp, disconnect))
}

/// Carries the SFTP bytes between the channel and the SFTP client, and hands what the broker
/// says on the channel's stderr (`paw: … waits: confirm it with your security key`, when its
/// rules hold a write) to the UI. A plain `into_stream` would drop those words.
async fn pump(channel: russh::Channel<russh::client::Msg>, theirs: DuplexStream, send: EventSink) {
    let (mut read, write) = channel.split();
    let (mut from_client, mut to_client) = tokio::io::split(theirs);
    let mut buf = vec![0u8; PIPE_BYTES];
    loop {
        tokio::select! {
            m = read.wait() => match m {
                Some(ChannelMsg::Data { data }) => {
                    if to_client.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    for line in notices(&data) {
                        send(FilesEvent::Notice { message: line });
                    }
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => break,
                Some(_) => {}
            },
            n = from_client.read(&mut buf) => match n {
                Ok(0) | Err(_) => {
                    let _ = write.eof().await;
                    break;
                }
                Ok(n) => {
                    if write.data(buf.get(..n).unwrap_or_default()).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    // Ends the SFTP client's reads: every pending request fails instead of waiting.
    let _ = to_client.shutdown().await;
}

/// The broker's own lines on the channel's stderr (they start with `paw: `), printable and
/// trimmed. Anything else there (a target's stderr, terminal escapes) is not the broker's to
/// vouch for, so it is not shown as if it were.
fn notices(data: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(data)
        .lines()
        .map(|l| l.chars().filter(|c| !c.is_control()).collect::<String>())
        .map(|l| l.trim().to_owned())
        .filter(|l| l.starts_with("paw: "))
        .collect()
}

/// Waits for the connection's end (the broker's, or a close here), forgets it, tells the UI
/// and notes it in the local trail.
fn watch_conn(
    core: Weak<crate::Inner>,
    conn: Arc<Conn>,
    mut disconnect: oneshot::Receiver<String>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let said: Option<String> = tokio::select! {
            r = &mut disconnect => r.ok(),
            () = cancelled(&mut stop) => {
                let _ = conn.sftp.close().await;
                let _ = conn
                    .handle
                    .disconnect(russh::Disconnect::ByApplication, "closed", "")
                    .await;
                tokio::time::timeout(GOODBYE, disconnect).await.ok().and_then(Result::ok)
            }
        };
        let (reason, message) = match terminal::ended(said.as_deref(), None, false) {
            terminal::TermEvent::Ended { reason, message } => (reason, message),
            terminal::TermEvent::Output(_) => ("closed".into(), "the session closed".into()),
        };
        (conn.send)(FilesEvent::Ended {
            reason: reason.clone(),
            message: message.clone(),
        });
        let sid = conn.view.session_id.clone();
        let target = conn.view.target.clone();
        drop(conn);
        let Some(inner) = core.upgrade() else { return };
        inner.files.remove(&sid);
        let core = Core { inner };
        core.audit_note(
            Audit::new(
                "session.end",
                target,
                json!({"session": sid, "reason": reason, "message": message}),
            ),
            Outcome::Success,
        )
        .await;
    });
}

async fn wait_done(t: &Transfer) -> Result<TransferResult, ApiError> {
    let mut phase = t.phase.clone();
    let done = phase
        .wait_for(|p| matches!(p, Phase::Done(_)))
        .await
        .map(|p| p.clone());
    match done {
        Ok(Phase::Done(r)) => r,
        _ => Err(ApiError::new(
            ErrorCode::Internal,
            "the transfer stopped without an answer",
        )),
    }
}

/// The error a transfer ends with, as the UI shows it: the broker's own words when it refused.
fn transfer_api_error(e: ClientError) -> ApiError {
    match e {
        ClientError::Transfer(api) => api,
        other => other.to_api(),
    }
}

/// An SFTP failure as the UI should see it. The broker's refusals start with `paw: ` and are
/// shown as they are; the target's own errors say what was being done.
fn sftp_error(doing: &str, e: SftpError) -> ClientError {
    match e {
        SftpError::Status(s) => status_error(doing, s.status_code, &s.error_message),
        SftpError::Timeout => ClientError::Transfer(ApiError::new(
            ErrorCode::Timeout,
            format!("{doing}: the target did not answer in time"),
        )),
        other => ClientError::Transfer(ApiError::new(
            ErrorCode::TargetUnavailable,
            format!("{doing}: {other}"),
        )),
    }
}

fn status_error(doing: &str, code: StatusCode, message: &str) -> ClientError {
    let broker = message.starts_with("paw: ");
    let code = match code {
        StatusCode::PermissionDenied => ErrorCode::Forbidden,
        StatusCode::NoSuchFile => ErrorCode::NotFound,
        _ if broker => ErrorCode::Forbidden,
        _ => ErrorCode::TargetUnavailable,
    };
    let message = if broker {
        message.to_owned()
    } else if message.is_empty() {
        format!("{doing}: {code}")
    } else {
        format!("{doing}: {message}")
    };
    ClientError::Transfer(ApiError::new(code, message))
}

/// An error from the file's reader or writer: russh-sftp keeps only the status's words.
fn io_error(doing: &str, e: &std::io::Error) -> ClientError {
    let text = e.to_string();
    if text.starts_with("paw: ") {
        return ClientError::Transfer(ApiError::new(ErrorCode::Forbidden, text));
    }
    let code = match e.kind() {
        std::io::ErrorKind::TimedOut => ErrorCode::Timeout,
        std::io::ErrorKind::PermissionDenied => ErrorCode::Forbidden,
        _ => ErrorCode::TargetUnavailable,
    };
    ClientError::Transfer(ApiError::new(code, format!("{doing}: {text}")))
}

/// A remote path: absolute, printable, bounded. The broker normalizes and decides; this only
/// keeps nonsense from reaching it.
fn check_remote_path(field: &'static str, path: &str) -> Result<(), ClientError> {
    let bad = |reason: &str| ClientError::InvalidInput {
        field,
        reason: reason.into(),
    };
    if !path.starts_with('/') {
        return Err(bad("an absolute path (starting with /)"));
    }
    if path.len() > MAX_REMOTE_PATH_BYTES {
        return Err(bad("too long"));
    }
    if path.chars().any(char::is_control) {
        return Err(bad("no control characters"));
    }
    Ok(())
}

/// The local name for a download: the remote file's last component, with nothing that could
/// climb out of the download directory or hide the file.
pub(crate) fn local_name(remote: &str) -> String {
    let last = remote.rsplit('/').find(|s| !s.is_empty()).unwrap_or("");
    let clean: String = last
        .chars()
        .map(|c| {
            if c.is_control() || c == '/' || c == '\\' {
                '_'
            } else {
                c
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.').trim();
    if clean.is_empty() {
        "download".into()
    } else {
        clean.chars().take(200).collect()
    }
}

/// Creates `name` in `dir`, or `name (2)`, `name (3)`, …: never an existing file, and never
/// through a symlink planted at the name (`create_new` refuses both).
pub(crate) async fn create_unique(
    dir: &Path,
    name: &str,
) -> Result<(PathBuf, tokio::fs::File), ClientError> {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
        _ => (name.to_owned(), String::new()),
    };
    for n in 1..=999u32 {
        let candidate = if n == 1 {
            name.to_owned()
        } else {
            format!("{stem} ({n}){ext}")
        };
        let path = dir.join(&candidate);
        match tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(ClientError::Storage(format!(
                    "creating {}: {e}",
                    path.display()
                )))
            }
        }
    }
    Err(ClientError::Storage(format!(
        "too many files named {name} in {}",
        dir.display()
    )))
}

/// The user's download directory: `$XDG_DOWNLOAD_DIR`, else `~/Downloads` (created if
/// missing).
pub(crate) fn download_dir() -> Result<PathBuf, ClientError> {
    let dir = match std::env::var_os("XDG_DOWNLOAD_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join("Downloads"))
            .ok_or_else(|| ClientError::Storage("no home directory to download into".into()))?,
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| ClientError::Storage(format!("creating {}: {e}", dir.display())))?;
    Ok(dir)
}

fn new_id() -> Result<String, ClientError> {
    let mut b = [0u8; 12];
    OsRng
        .try_fill_bytes(&mut b)
        .map_err(|e| ClientError::Random(e.to_string()))?;
    Ok(hex(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths_are_absolute_printable_and_bounded() {
        assert!(check_remote_path("p", "/tmp/a b.txt").is_ok());
        assert!(check_remote_path("p", "tmp/a").is_err());
        assert!(check_remote_path("p", "").is_err());
        assert!(check_remote_path("p", "/tmp/a\nb").is_err());
        assert!(
            check_remote_path("p", &format!("/{}", "a".repeat(MAX_REMOTE_PATH_BYTES))).is_err()
        );
    }

    #[test]
    fn a_download_name_cannot_climb_or_hide() {
        assert_eq!(local_name("/var/log/syslog"), "syslog");
        assert_eq!(local_name("/etc/"), "etc");
        assert_eq!(local_name("/"), "download");
        assert_eq!(local_name("/tmp/.bashrc"), "bashrc");
        assert_eq!(local_name("/tmp/.."), "download");
        assert_eq!(local_name("/tmp/a\\..\\b"), "a_.._b");
        assert_eq!(local_name("/tmp/x\u{7}y"), "x_y");
    }

    #[tokio::test]
    async fn a_download_never_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("report.txt"), b"mine").unwrap();
        let (p, _) = create_unique(dir.path(), "report.txt").await.unwrap();
        assert_eq!(p, dir.path().join("report (2).txt"));
        let (p, _) = create_unique(dir.path(), "report.txt").await.unwrap();
        assert_eq!(p, dir.path().join("report (3).txt"));
        assert_eq!(
            std::fs::read(dir.path().join("report.txt")).unwrap(),
            b"mine"
        );
        // A symlink planted at the name is not followed.
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, dir.path().join("plain")).unwrap();
        let (p, _) = create_unique(dir.path(), "plain").await.unwrap();
        assert_eq!(p, dir.path().join("plain (2)"));
        assert!(!target.exists());
    }

    #[test]
    fn the_brokers_stderr_words_become_clean_notices() {
        assert_eq!(
            notices(
                b"\r\npaw: /etc/app.conf waits: confirm it\x07 with your key\r\n\x1b[0mnoise\n"
            ),
            vec!["paw: /etc/app.conf waits: confirm it with your key".to_owned()]
        );
        assert!(notices(b"\r\n \r\nsftp-server: debug\r\n").is_empty());
    }

    #[test]
    fn upload_chunks_come_in_order_and_within_the_declared_size() {
        assert!(check_chunk(0, 10, 0, 10).is_ok());
        assert!(check_chunk(5, 5, 5, 10).is_ok());
        assert!(check_chunk(4, 5, 5, 10).is_err(), "a gap or a replay");
        assert!(check_chunk(5, 6, 5, 10).is_err(), "past the declared size");
    }

    #[test]
    fn the_brokers_refusal_reaches_the_ui_in_its_own_words() {
        let e = status_error(
            "opening the remote file",
            StatusCode::PermissionDenied,
            "paw: /etc/shadow is not allowed by the grant's file rules",
        );
        let api = e.to_api();
        assert_eq!(api.code, ErrorCode::Forbidden);
        assert_eq!(
            api.message,
            "paw: /etc/shadow is not allowed by the grant's file rules"
        );
        // A failure the broker words is a refusal too.
        let e = status_error(
            "closing",
            StatusCode::Failure,
            "paw: the file is larger than 10 MiB",
        );
        assert_eq!(e.code(), ErrorCode::Forbidden);
        // The target's own errors say what was being done.
        let e = status_error(
            "opening the remote file",
            StatusCode::NoSuchFile,
            "No such file",
        );
        assert_eq!(e.code(), ErrorCode::NotFound);
        assert_eq!(e.to_api().message, "opening the remote file: No such file");
        let e = io_error(
            "writing",
            &std::io::Error::other("paw: writes under /etc are held"),
        );
        assert_eq!(e.to_api().message, "paw: writes under /etc are held");
    }

    #[test]
    fn the_audit_summary_carries_path_size_hash_and_direction() {
        let r = TransferResult {
            transfer_id: "t".into(),
            direction: TransferDirection::Upload,
            remote_path: "/tmp/x".into(),
            local_path: None,
            bytes: 3,
            sha256: "ab".into(),
            cancelled: false,
            message: None,
        };
        let s = r.summary();
        assert_eq!(s["direction"], "upload");
        assert_eq!(s["remote"], "/tmp/x");
        assert_eq!(s["bytes"], 3);
        assert_eq!(s["sha256"], "ab");
    }

    /// A remote file system in memory, served over SFTP on a pipe: the transfers run against
    /// russh-sftp's own server side, as they would against the broker. Paths under `/etc`
    /// are refused the way the broker refuses them.
    mod memfs {
        use std::collections::HashMap;
        use std::sync::{Arc, Mutex};

        use russh_sftp::protocol::{
            Attrs, Data, FileAttributes, Handle, OpenFlags, Status, StatusCode, Version,
        };
        use russh_sftp::server::{Handler, StatusReply};

        pub type Files = Arc<Mutex<HashMap<String, Vec<u8>>>>;

        pub struct MemFs {
            pub files: Files,
            handles: HashMap<String, String>,
            next: u32,
        }

        impl MemFs {
            pub fn new(files: Files) -> Self {
                Self {
                    files,
                    handles: HashMap::new(),
                    next: 0,
                }
            }

            fn path(&self, handle: &str) -> Result<String, StatusReply> {
                self.handles
                    .get(handle)
                    .cloned()
                    .ok_or_else(|| StatusReply::new(StatusCode::Failure))
            }
        }

        fn ok(id: u32) -> Status {
            Status {
                id,
                status_code: StatusCode::Ok,
                error_message: "Ok".into(),
                language_tag: "en-US".into(),
            }
        }

        impl Handler for MemFs {
            type Error = StatusReply;

            fn unimplemented(&self) -> Self::Error {
                StatusReply::new(StatusCode::OpUnsupported)
            }

            async fn init(
                &mut self,
                _version: u32,
                _extensions: HashMap<String, String>,
            ) -> Result<Version, Self::Error> {
                Ok(Version::new())
            }

            async fn open(
                &mut self,
                id: u32,
                filename: String,
                pflags: OpenFlags,
                _attrs: FileAttributes,
            ) -> Result<Handle, Self::Error> {
                if filename.starts_with("/etc/") {
                    return Err(StatusReply::new(StatusCode::PermissionDenied).with_message(
                        format!("paw: {filename} is not allowed by the grant's file rules"),
                    ));
                }
                let mut files = self.files.lock().unwrap();
                if pflags.contains(OpenFlags::TRUNCATE) {
                    files.insert(filename.clone(), Vec::new());
                } else if !files.contains_key(&filename) {
                    return Err(
                        StatusReply::new(StatusCode::NoSuchFile).with_message("No such file")
                    );
                }
                self.next += 1;
                let handle = format!("h{}", self.next);
                self.handles.insert(handle.clone(), filename);
                Ok(Handle { id, handle })
            }

            async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
                self.handles.remove(&handle);
                Ok(ok(id))
            }

            async fn read(
                &mut self,
                id: u32,
                handle: String,
                offset: u64,
                len: u32,
            ) -> Result<Data, Self::Error> {
                let path = self.path(&handle)?;
                let files = self.files.lock().unwrap();
                let data = files.get(&path).cloned().unwrap_or_default();
                let from = usize::try_from(offset).unwrap();
                if from >= data.len() {
                    return Err(StatusReply::new(StatusCode::Eof));
                }
                let to = data.len().min(from + len as usize);
                Ok(Data {
                    id,
                    data: data[from..to].to_vec(),
                })
            }

            async fn write(
                &mut self,
                id: u32,
                handle: String,
                offset: u64,
                data: Vec<u8>,
            ) -> Result<Status, Self::Error> {
                let path = self.path(&handle)?;
                let mut files = self.files.lock().unwrap();
                let file = files.entry(path).or_default();
                let at = usize::try_from(offset).unwrap();
                if file.len() < at + data.len() {
                    file.resize(at + data.len(), 0);
                }
                file[at..at + data.len()].copy_from_slice(&data);
                Ok(ok(id))
            }

            async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
                let path = self.path(&handle)?;
                let size = self.files.lock().unwrap().get(&path).map(Vec::len);
                let mut attrs = FileAttributes::empty();
                attrs.size = size.map(|n| n as u64);
                Ok(Attrs { id, attrs })
            }
        }
    }

    /// A job on a fresh in-memory target, and every event it reports.
    async fn job(
        files: &memfs::Files,
        remote: &str,
        direction: TransferDirection,
    ) -> (Job, Arc<Mutex<Vec<FilesEvent>>>) {
        let (client, server) = tokio::io::duplex(PIPE_BYTES);
        russh_sftp::server::run(server, memfs::MemFs::new(files.clone())).await;
        let sftp = SftpSession::new(client).await.unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let job = Job {
            id: "t1".into(),
            sftp: Arc::new(sftp),
            send: Arc::new(move |e| seen.lock().unwrap().push(e)),
            remote_path: remote.into(),
            direction,
        };
        (job, events)
    }

    fn progress(events: &Mutex<Vec<FilesEvent>>) -> Vec<u64> {
        events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                FilesEvent::Progress { done, .. } => Some(*done),
                _ => None,
            })
            .collect()
    }

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[tokio::test]
    async fn an_upload_streams_in_order_and_hashes_exactly_what_was_sent() {
        let files = memfs::Files::default();
        let (job, events) = job(&files, "/srv/app.tar", TransferDirection::Upload).await;
        let data = bytes(CHUNK_BYTES as usize * 2 + 1000);
        let size = data.len() as u64;
        let (tx, rx) = mpsc::channel(1);
        let (_cancel, cancel_rx) = watch::channel(false);
        let (phase, _phase_rx) = watch::channel(Phase::Opening);
        let task = tokio::spawn(upload(job, size, rx, cancel_rx, phase));
        for (i, chunk) in data.chunks(CHUNK_BYTES as usize).enumerate() {
            let (ack, acked) = oneshot::channel();
            tx.send(UploadMsg::Chunk {
                offset: (i * CHUNK_BYTES as usize) as u64,
                data: chunk.to_vec(),
                ack,
            })
            .await
            .unwrap();
            acked.await.unwrap();
        }
        tx.send(UploadMsg::Finish).await.unwrap();
        let Ok(r) = task.await.unwrap() else {
            panic!("the upload failed")
        };
        assert_eq!(r.sha256, hex(&Sha256::digest(&data)));
        assert_eq!(r.bytes, size);
        assert!(!r.cancelled);
        assert_eq!(files.lock().unwrap().get("/srv/app.tar"), Some(&data));
        assert_eq!(
            progress(&events),
            vec![CHUNK_BYTES as u64, 2 * CHUNK_BYTES as u64, size]
        );
        assert!(events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, FilesEvent::Closing { .. })));
    }

    #[tokio::test]
    async fn a_cancelled_upload_says_the_remote_file_may_be_partial() {
        let files = memfs::Files::default();
        let (job, _) = job(&files, "/srv/big.iso", TransferDirection::Upload).await;
        let (tx, rx) = mpsc::channel(1);
        let (cancel, cancel_rx) = watch::channel(false);
        let (phase, _phase_rx) = watch::channel(Phase::Opening);
        let task = tokio::spawn(upload(job, 100, rx, cancel_rx, phase));
        let (ack, acked) = oneshot::channel();
        tx.send(UploadMsg::Chunk {
            offset: 0,
            data: vec![1; 10],
            ack,
        })
        .await
        .unwrap();
        acked.await.unwrap();
        cancel.send_replace(true);
        match task.await.unwrap() {
            Err(Failed::Cancelled(r)) => {
                assert!(r.cancelled);
                assert_eq!(r.bytes, 10);
                let m = r.message.unwrap();
                assert!(m.contains("10 of 100") && m.contains("partial"), "{m}");
            }
            _ => panic!("not cancelled"),
        }
    }

    #[tokio::test]
    async fn an_upload_the_broker_refuses_fails_with_its_words() {
        let files = memfs::Files::default();
        let (job, _) = job(&files, "/etc/shadow", TransferDirection::Upload).await;
        let (_tx, rx) = mpsc::channel(1);
        let (_cancel, cancel_rx) = watch::channel(false);
        let (phase, _phase_rx) = watch::channel(Phase::Opening);
        match upload(job, 1, rx, cancel_rx, phase).await {
            Err(Failed::Error(e)) => {
                assert_eq!(e.code(), ErrorCode::Forbidden);
                assert_eq!(
                    e.to_api().message,
                    "paw: /etc/shadow is not allowed by the grant's file rules"
                );
            }
            _ => panic!("not refused"),
        }
    }

    #[tokio::test]
    async fn a_download_is_saved_whole_with_its_hash_and_progress() {
        let files = memfs::Files::default();
        let data = bytes(READ_BYTES * 3 + 5);
        files
            .lock()
            .unwrap()
            .insert("/var/log/app.log".into(), data.clone());
        let (job, events) = job(&files, "/var/log/app.log", TransferDirection::Download).await;
        let dir = tempfile::tempdir().unwrap();
        let (_cancel, cancel_rx) = watch::channel(false);
        let (phase, phase_rx) = watch::channel(Phase::Opening);
        let Ok(r) = download(job, dir.path().to_owned(), cancel_rx, phase).await else {
            panic!("the download failed")
        };
        let saved = dir.path().join("app.log");
        assert_eq!(r.local_path.as_deref(), Some(saved.to_str().unwrap()));
        assert_eq!(std::fs::read(&saved).unwrap(), data);
        assert_eq!(r.sha256, hex(&Sha256::digest(&data)));
        assert!(matches!(&*phase_rx.borrow(), Phase::Running(s) if s.total == data.len() as u64));
        let seen = progress(&events);
        assert!(seen.len() >= 2, "{seen:?}");
        assert_eq!(seen.last(), Some(&(data.len() as u64)));
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    }

    #[tokio::test]
    async fn a_cancelled_download_leaves_no_partial_file() {
        let files = memfs::Files::default();
        files
            .lock()
            .unwrap()
            .insert("/data/dump.sql".into(), bytes(READ_BYTES * 4));
        let (job, _) = job(&files, "/data/dump.sql", TransferDirection::Download).await;
        let dir = tempfile::tempdir().unwrap();
        let (_cancel, cancel_rx) = watch::channel(true);
        let (phase, _phase_rx) = watch::channel(Phase::Opening);
        match download(job, dir.path().to_owned(), cancel_rx, phase).await {
            Err(Failed::Cancelled(r)) => {
                assert!(r.message.unwrap().contains("removed"));
            }
            _ => panic!("not cancelled"),
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_missing_remote_file_is_not_found_and_nothing_is_created() {
        let files = memfs::Files::default();
        let (job, _) = job(&files, "/nope", TransferDirection::Download).await;
        let dir = tempfile::tempdir().unwrap();
        let (_cancel, cancel_rx) = watch::channel(false);
        let (phase, _phase_rx) = watch::channel(Phase::Opening);
        match download(job, dir.path().to_owned(), cancel_rx, phase).await {
            Err(Failed::Error(e)) => assert_eq!(e.code(), ErrorCode::NotFound),
            _ => panic!("found"),
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
