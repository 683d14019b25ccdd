//! SFTP through the front door (issue #18, cases M1–M4).
//!
//! The broker speaks SFTP v3 on both sides with russh-sftp's packet codec: every request from
//! the client is decoded, checked against the entitlement's `[entitlement.files]` rules and
//! re-encoded for the target's own sftp-server with an id of the broker's; every answer is
//! matched to its request and given back its id. Nothing passes undecoded.
//!
//! - Paths (M1): read from the session's directory, normalized (`..`, `.`, `//`), then the
//!   directory part is resolved by the target's realpath, and for operations that follow a
//!   final symlink, that too; the rules see the result and the target is sent the result, so
//!   what was checked is what is opened.
//! - Operations and sizes (M2): each request is one rule operation; a write past `max_size`
//!   is refused; a write under a `step_up` or `approve` rule goes to a temporary name beside
//!   the file and is renamed over it only when a hold bound to the path and the SHA-256 of
//!   the bytes is released ([`held`]).
//! - Audit (M3): one record per file (path, direction, size, SHA-256) written before the
//!   client hears its close; one per other change; one per refusal.
//! - Bulk data is not held up: reads and writes on open handles are pipelined as the client
//!   sends them; only path operations wait for the broker's own realpath.
//!
//! Not covered: a process on the target swapping a directory for a symlink between the
//! broker's realpath and the operation (the target's own user could; the session's cannot,
//! as it may not create links); file names that are not UTF-8 (refused as unreadable).

pub mod captures;
mod files;
mod held;
mod ops;
mod pipe;
mod proxy;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use paw_audit::Outcome;
use paw_files::FileRules;
use russh::{Channel, ChannelId, ChannelReadHalf};
use russh_sftp::protocol::{Packet, Status, StatusCode};
use serde_json::{json, Value};
use tokio::sync::watch;

use self::files::OpenFile;
use self::pipe::{Pipe, Sink};
use crate::sessions::error::reason_words;
use crate::sessions::recording::Recorder;
use crate::sessions::{SessionInfo, Sessions};

/// Largest SFTP packet either side may send: OpenSSH's own limit (256 KiB) and a header.
const MAX_PACKET: usize = 256 * 1024 + 1024;
/// Files and directories open at once in one session.
const MAX_OPEN: usize = 64;
/// How long the broker waits for the target to answer one of its own questions.
const ASK_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes per read when a file is hashed again from the target.
const REHASH_CHUNK: u32 = 32 * 1024;
/// The extensions offered to clients (when the target has them), each checked as the
/// operation it is. Others (hardlink, copy-data, …) are not offered and refused.
const EXTENSIONS: &[&str] = &[
    "posix-rename@openssh.com",
    "statvfs@openssh.com",
    "fstatvfs@openssh.com",
    "fsync@openssh.com",
    "limits@openssh.com",
    "expand-path@openssh.com",
];

/// What `scp -O` (the old rcp protocol, which this broker does not decode) is told (M4).
pub(crate) const LEGACY_SCP: &str = "legacy scp (the rcp protocol of `scp -O`) is not brokered: \
     drop -O and scp uses SFTP, which paw checks and records";

/// `scp -t …` or `scp -f …`: what a legacy scp client runs on the far side.
pub(crate) fn legacy_scp(command: &[u8]) -> bool {
    let text = String::from_utf8_lossy(command);
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or_default();
    (first == "scp" || first.ends_with("/scp")) && words.any(|w| w == "-t" || w == "-f")
}

/// Refuses a legacy scp: audited, and the client told why.
pub(crate) async fn refuse_legacy_scp(
    svc: &Sessions,
    info: &SessionInfo,
    command: &[u8],
    handle: &russh::server::Handle,
    cid: ChannelId,
) {
    let detail = json!({
        "op": "scp_legacy",
        "command": crate::sessions::commands::for_audit(svc, &String::from_utf8_lossy(command)),
        "why": LEGACY_SCP,
    });
    if let Err(e) = files::record_op(svc, info, Outcome::Denied, detail).await {
        tracing::error!(session = %info.id, error = %e, "could not record a refused scp");
    }
    let _ = handle
        .extended_data(cid, 1, format!("\r\npaw: {LEGACY_SCP}\r\n").into_bytes())
        .await;
    let _ = handle.exit_status_request(cid, 1).await;
    let _ = handle.close(cid).await;
}

/// The file rules of the session's entitlement, if it has SFTP at all.
pub(crate) fn rules_of(svc: &Sessions, info: &SessionInfo) -> Option<Arc<FileRules>> {
    svc.policy
        .get()
        .entitlement(&info.entitlement)
        .and_then(|e| e.files())
        .cloned()
}

/// Why a session ends, as `front` reports it.
type End = String;

/// The session an SFTP subsystem runs in; the target's subsystem is requested.
pub(crate) struct Serve<'a> {
    pub svc: &'a Sessions,
    pub info: &'a SessionInfo,
    pub rules: Arc<FileRules>,
    pub recordings: PathBuf,
    pub handle: &'a russh::server::Handle,
    pub cid: ChannelId,
    pub client_rx: ChannelReadHalf,
}

/// Runs the session to its end, then closes both sides and the recording.
pub(crate) async fn serve(
    s: Serve<'_>,
    target: (
        russh::client::Handle<crate::crypto::ssh_pin::PinnedHost>,
        Channel<russh::client::Msg>,
    ),
    mut rec: Recorder,
    ends: watch::Receiver<Option<String>>,
    deadline: tokio::time::Instant,
) -> crate::sessions::front::Outcome {
    let Serve {
        svc,
        info,
        rules,
        recordings,
        handle,
        cid,
        mut client_rx,
    } = s;
    let (conn, channel) = target;
    let (mut target_rx, target_tx) = channel.split();
    let wake = Arc::new(tokio::sync::Notify::new());
    let mut p = Proxy {
        svc,
        info,
        capture_dir: recordings.join(format!("{}.files", info.id)),
        rules,
        to_client: Pipe::new(Sink::Client(handle.clone(), cid), wake.clone()),
        to_target: Pipe::new(Sink::Target(target_tx), wake.clone()),
        wake,
        rec: &mut rec,
        ends,
        deadline,
        tbuf: BytesMut::new(),
        next: 1,
        waiting: HashMap::new(),
        files: HashMap::new(),
        dirs: HashSet::new(),
        cwd: "/".into(),
        extensions: HashMap::new(),
        opened: 0,
    };
    let mut cbuf = BytesMut::new();
    let reason = match p.start(&mut client_rx, &mut cbuf, &mut target_rx).await {
        Err(e) => e,
        Ok(()) => p.run(&mut client_rx, &mut cbuf, &mut target_rx).await,
    };
    let Proxy {
        to_client,
        to_target,
        ..
    } = p;
    // What is queued still goes out (the last answers, the exit status) before the close.
    if let Some(Sink::Target(t)) = to_target.finish(Duration::from_secs(1)).await {
        let _ = t.close().await;
    }
    let _ = to_client.finish(Duration::from_secs(5)).await;
    let _ = conn
        .disconnect(russh::Disconnect::ByApplication, "paw session ended", "")
        .await;
    if reason != "closed" && reason != "target_closed" {
        let words = format!("\r\npaw: session ended: {}\r\n", reason_words(&reason));
        let _ = handle.extended_data(cid, 1, words.into_bytes()).await;
    }
    let _ = handle.close(cid).await;
    // The subsystem ended by itself: let the client read its last answers and the exit
    // status and close its side before the connection goes (a disconnect can overtake them).
    if reason == "target_closed" {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(m) = client_rx.wait().await {
                if matches!(m, russh::ChannelMsg::Close) {
                    break;
                }
            }
        })
        .await;
    }
    match rec.finish() {
        Ok(f) => (reason, Some(f), None),
        Err(e) => ("recording_failed".into(), None, Some(e.to_string())),
    }
}

struct Proxy<'a> {
    svc: &'a Sessions,
    info: &'a SessionInfo,
    rules: Arc<FileRules>,
    capture_dir: PathBuf,
    /// Both directions are written by tasks of their own ([`pipe`]): the loop never waits
    /// for a peer's window, so it always reads the other side.
    to_client: Pipe,
    to_target: Pipe,
    /// Bytes left a queue (or a writer failed).
    wake: Arc<tokio::sync::Notify>,
    rec: &'a mut Recorder,
    ends: watch::Receiver<Option<String>>,
    deadline: tokio::time::Instant,
    /// Target bytes not yet a whole packet.
    tbuf: BytesMut,
    next: u32,
    waiting: HashMap<u32, Waiting>,
    /// The target's file handles this session has open.
    files: HashMap<String, OpenFile>,
    dirs: HashSet<String>,
    /// The session's directory on the target (its realpath of `.`).
    cwd: String,
    extensions: HashMap<String, String>,
    /// Files opened so far: each one's place in the session's history.
    opened: i64,
}

/// A request sent to the target, waiting for its answer.
enum Waiting {
    /// Given back to the client as it is.
    Pass { client: u32 },
    /// An open: the handle it answers is tracked (`None`: a directory).
    Open {
        client: u32,
        file: Option<Box<OpenFile>>,
    },
    Read {
        client: u32,
        handle: String,
        offset: u64,
    },
    /// A change, audited when its answer comes.
    Op { client: u32, detail: Value },
    /// The broker's own question.
    Mine,
}

/// Why a request does not reach the target.
enum Refusal {
    /// The rules (or the broker's limits): audited, answered "permission denied".
    Denied {
        op: &'static str,
        path: String,
        why: String,
    },
    /// The target answered the broker's realpath with an error, which the client gets.
    Target(Status),
    End(End),
}

impl From<End> for Refusal {
    fn from(e: End) -> Self {
        Refusal::End(e)
    }
}

fn status(id: u32, code: StatusCode, message: impl Into<String>) -> Packet {
    Packet::Status(Status {
        id,
        status_code: code,
        error_message: message.into(),
        language_tag: "en".into(),
    })
}

/// The id of an answer, and the answer with another id.
fn with_id(p: Packet, id: u32) -> Packet {
    match p {
        Packet::Status(mut x) => {
            x.id = id;
            Packet::Status(x)
        }
        Packet::Handle(mut x) => {
            x.id = id;
            Packet::Handle(x)
        }
        Packet::Data(mut x) => {
            x.id = id;
            Packet::Data(x)
        }
        Packet::Name(mut x) => {
            x.id = id;
            Packet::Name(x)
        }
        Packet::Attrs(mut x) => {
            x.id = id;
            Packet::Attrs(x)
        }
        Packet::ExtendedReply(mut x) => {
            x.id = id;
            Packet::ExtendedReply(x)
        }
        other => other,
    }
}

fn answer_id(p: &Packet) -> Option<u32> {
    match p {
        Packet::Status(x) => Some(x.id),
        Packet::Handle(x) => Some(x.id),
        Packet::Data(x) => Some(x.id),
        Packet::Name(x) => Some(x.id),
        Packet::Attrs(x) => Some(x.id),
        Packet::ExtendedReply(x) => Some(x.id),
        _ => None,
    }
}

/// One whole packet (without its length) off the front of `buf`, if there is one.
// `pub` only for the fuzz target `sftp_packet` (fuzz/), which runs this exact cutter.
#[doc(hidden)]
pub fn take(buf: &mut BytesMut) -> Result<Option<Bytes>, End> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len == 0 || len > MAX_PACKET {
        return Err("sftp_bad_packet".into());
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len).freeze()))
}

fn encode(p: Packet) -> Result<Bytes, End> {
    Bytes::try_from(p).map_err(|_| End::from("sftp_bad_packet"))
}

/// SSH strings (u32 length, bytes) as an extension's data carries them.
// `pub` only for the fuzz target `sftp_packet` (fuzz/).
#[doc(hidden)]
pub fn ssh_strings(mut data: &[u8], n: usize) -> Option<Vec<String>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        if data.len() < 4 {
            return None;
        }
        let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let s = data.get(4..4 + len)?;
        out.push(String::from_utf8(s.to_vec()).ok()?);
        data = &data[4 + len..];
    }
    Some(out)
}

fn ssh_string_data(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&(p.len() as u32).to_be_bytes());
        out.extend_from_slice(p.as_bytes());
    }
    out
}

/// `p` (a request) under the broker's id.
fn with_request_id(p: Packet, id: u32) -> Packet {
    macro_rules! set {
        ($($v:ident),*) => {
            match p {
                $(Packet::$v(mut x) => { x.id = id; Packet::$v(x) })*
                other => other,
            }
        };
    }
    set!(
        Open, Close, Read, Write, Lstat, Fstat, SetStat, FSetStat, OpenDir, ReadDir, Remove, MkDir,
        RmDir, RealPath, Stat, Rename, ReadLink, Symlink, Extended
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m4_legacy_scp_is_recognised_and_modern_commands_are_not() {
        for c in [
            "scp -t /srv/x",
            "scp -v -r -t -- /srv",
            "/usr/bin/scp -f /etc/passwd",
        ] {
            assert!(legacy_scp(c.as_bytes()), "{c}");
        }
        for c in ["ls -t", "scpx -t", "echo scp -t", "scp"] {
            assert!(!legacy_scp(c.as_bytes()), "{c}");
        }
    }

    #[test]
    fn frames_are_cut_at_their_length_and_oversized_ones_refused() {
        let mut b = BytesMut::new();
        b.extend_from_slice(&[0, 0, 0, 3, 1, 2]);
        assert_eq!(take(&mut b).unwrap(), None);
        b.extend_from_slice(&[3, 0, 0]);
        assert_eq!(take(&mut b).unwrap().as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(b.len(), 2);
        let mut big = BytesMut::new();
        big.extend_from_slice(&((MAX_PACKET as u32) + 1).to_be_bytes());
        assert!(take(&mut big).is_err());
    }

    #[test]
    fn extension_strings_round_trip() {
        let d = ssh_string_data(&["/a b", "/c"]);
        assert_eq!(ssh_strings(&d, 2).unwrap(), vec!["/a b", "/c"]);
        assert_eq!(ssh_strings(&d[..5], 1), None);
    }
}
