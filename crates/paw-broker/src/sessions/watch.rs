//! Live oversight (issue #15 item 5, case J6): an administrator, or someone who may approve the
//! session's entitlement for its user, watches a live SSH session as its user sees it.
//!
//! Rules:
//! - Read-only by construction. A watcher gets a receiver of the target's output and nothing
//!   else: nothing here holds the target's connection, the bridge's only answers to a watcher
//!   are a receiver and a recording offset, the only bytes a watch writes are its two fixed
//!   notices to the user's own terminal, and the HTTP route is a bodiless GET.
//! - The session never waits for a watcher. The bridge hands output to a bounded broadcast
//!   ([`CHUNKS`]) with a send that never blocks, and only while someone watches, so a session
//!   nobody watches pays one counter read per chunk. A watcher that falls behind skips, and is
//!   sent the current screen again, drawn from the recording.
//! - A watcher starts from what the user sees: the screen replayed from the recording up to
//!   the point where its receiver joined, which the bridge marks between two chunks. While the
//!   bridge is busy (a held command waits for its decision) the watcher joins without it after
//!   [`ATTACH_WAIT`]; a waiting bridge relays nothing, so nothing is lost or doubled (a bridge
//!   held up that long by the user's own slow connection could double one chunk on the
//!   watcher's screen).
//! - The user is told first: `paw: <watcher> is watching this session` goes to the user's
//!   terminal (through the client connection's handle, never to the target) before the
//!   watcher's first byte, and `paw: <watcher> stopped watching` when the watch ends; both are
//!   chapter markers in the recording.
//! - Every watch is audited: `session_watch_started` is committed before the first byte,
//!   `session_watch_ended` when the stream closes, for whatever reason.
//! - Who: administrators and the approvers of the session's entitlement
//!   ([`paw_policy::may_approve`] with the session's user as requester), never the session's
//!   own person, administrator or not; re-checked every [`RECHECK`] against the live policy.
//! - Where: the output passes through the memory of the broker that carries the session; any
//!   other broker answers `conflict` naming that broker.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use paw_audit::Outcome;
use paw_policy::PersonId;
use paw_proto::session::SessionWatchEvent;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::audit::{self, Entry};
use crate::base::auth::AuthContext;
use crate::sessions::error::{Result, SessionsError};
use crate::sessions::recording::Recorder;
use crate::sessions::{SessionInfo, Sessions};
use crate::with_pool;

/// Output chunks a watcher may fall behind by before it skips (and gets a fresh screen).
pub const CHUNKS: usize = 256;
/// Events buffered towards one watcher's HTTP stream.
const EVENTS: usize = 64;
/// How long a watcher waits for the bridge to mark where it joins before joining without.
pub const ATTACH_WAIT: Duration = Duration::from_millis(300);
/// How often a watch re-checks that its watcher may still watch (policy reloads).
pub const RECHECK: Duration = Duration::from_secs(5);
/// The most of a recording read to draw the current screen: its tail, for a long session.
const SCREEN_REPLAY_BYTES: u64 = 8 << 20;

/// What a watcher receives from the bridge.
#[derive(Debug, Clone)]
pub(crate) enum Chunk {
    Output(Arc<[u8]>),
    Resize(u32, u32),
    /// The session ended, with its end reason.
    End(String),
}

/// What a watcher asks of the bridge. Neither request carries a byte for the target.
#[derive(Debug)]
pub(crate) enum Control {
    /// Subscribe me, between two chunks.
    Attach { reply: oneshot::Sender<Attached> },
    /// A chapter marker in the recording (a watch started or ended).
    Mark(String),
}

/// The bridge's answer to [`Control::Attach`]: the receiver, subscribed between two chunks,
/// and the recording's length at that moment, so the screen drawn from the recording and the
/// output that follows neither overlap nor leave a gap.
#[derive(Debug)]
pub(crate) struct Attached {
    rx: broadcast::Receiver<Chunk>,
    recorded: u64,
    cols: u32,
    rows: u32,
}

/// A live SSH session as its watchers reach it (kept in the registry, [`super::Live::feed`]).
#[derive(Debug)]
pub struct Feed {
    out: broadcast::Sender<Chunk>,
    /// The user's terminal size now (cols, rows).
    size: Mutex<(u32, u32)>,
    control: mpsc::UnboundedSender<Control>,
    recording: PathBuf,
    /// The user's side of the connection, for the one-line notices: it writes to the
    /// client's channel only (the target is another connection).
    client: russh::server::Handle,
    channel: russh::ChannelId,
    /// The session's end reason, once the bridge stopped relaying: set before the last chunk,
    /// so a watcher that joins late still learns it.
    ended: Mutex<Option<String>>,
}

impl Feed {
    /// The user's terminal size now: (cols, rows).
    pub fn size(&self) -> (u32, u32) {
        self.size.lock().map(|s| *s).unwrap_or((80, 24))
    }

    fn ended(&self) -> Option<String> {
        self.ended.lock().ok().and_then(|e| e.clone())
    }

    /// One line in the user's terminal, as the front door's own notices.
    async fn tell_user(&self, text: &str) {
        let line = format!("\r\npaw: {text}\r\n").into_bytes();
        let _ = self.client.extended_data(self.channel, 1, line).await;
    }
}

/// The bridge's end of the feed: it publishes output and answers watchers' requests between
/// chunks. Dropping it takes the feed out of the registry.
pub(crate) struct Tap {
    feed: Arc<Feed>,
    requests: mpsc::UnboundedReceiver<Control>,
    live: Arc<super::Live>,
    id: String,
}

impl Tap {
    /// Makes session `info` watchable: the recording the bridge writes in `recordings`, the
    /// user's terminal size and their side of the connection.
    pub(crate) fn open(
        svc: &Sessions,
        info: &SessionInfo,
        recordings: &Path,
        (cols, rows): (u32, u32),
        client: &russh::server::Handle,
        channel: russh::ChannelId,
    ) -> Self {
        let (out, _) = broadcast::channel(CHUNKS);
        let (control, requests) = mpsc::unbounded_channel();
        let feed = Arc::new(Feed {
            out,
            size: Mutex::new((cols, rows)),
            control,
            recording: recordings.join(format!("{}.cast", info.id)),
            client: client.clone(),
            channel,
            ended: Mutex::new(None),
        });
        svc.live_sessions.set_feed(&info.id, Some(feed.clone()));
        Self {
            feed,
            requests,
            live: svc.live_sessions.clone(),
            id: info.id.clone(),
        }
    }

    /// Output the user's terminal received: copied only when someone watches.
    pub(crate) fn output(&self, data: &[u8]) {
        if self.feed.out.receiver_count() > 0 {
            let _ = self.feed.out.send(Chunk::Output(data.into()));
        }
    }

    pub(crate) fn resize(&self, cols: u32, rows: u32) {
        if let Ok(mut s) = self.feed.size.lock() {
            *s = (cols, rows);
        }
        if self.feed.out.receiver_count() > 0 {
            let _ = self.feed.out.send(Chunk::Resize(cols, rows));
        }
    }

    /// The next watcher request (never ready when there is none).
    pub(crate) async fn request(&mut self) -> Control {
        match self.requests.recv().await {
            Some(c) => c,
            None => std::future::pending().await,
        }
    }

    /// Answers a watcher. An error is the recording's: the bridge ends the session on it, as
    /// for output.
    pub(crate) fn serve(&mut self, c: Control, rec: &mut Recorder) -> std::io::Result<()> {
        match c {
            // A watcher that stopped waiting has joined without this mark.
            Control::Attach { reply } if !reply.is_closed() => {
                // Every event up to here is on disk (the recorder flushes each one) and the
                // receiver gets every chunk after it.
                let recorded = std::fs::metadata(&self.feed.recording).map_or(0, |m| m.len());
                let (cols, rows) = self.feed.size();
                let _ = reply.send(Attached {
                    rx: self.feed.out.subscribe(),
                    recorded,
                    cols,
                    rows,
                });
            }
            Control::Attach { .. } => {}
            Control::Mark(label) => rec.marker(&label)?,
        }
        Ok(())
    }

    /// The session ended: its watchers are told why, and nobody new can attach.
    pub(crate) fn end(self, reason: &str) {
        self.end_with(reason);
    }

    fn end_with(&self, reason: &str) {
        if let Ok(mut e) = self.feed.ended.lock() {
            if e.is_some() {
                return;
            }
            *e = Some(reason.to_owned());
        }
        let _ = self.feed.out.send(Chunk::End(reason.to_owned()));
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.live.set_feed(&self.id, None);
        self.end_with("ended");
    }
}

/// Resolves when the watcher's sign-in ends or the broker stops (the HTTP layer knows both).
pub type Until = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    broker_id: Option<String>,
    ended_at: Option<i64>,
    user_name: String,
    person: String,
    entitlement: String,
    target_kind: String,
    target: String,
    role: String,
}

/// Why `auth` may watch a session of `row`'s user under its entitlement, by the policy now:
/// `admin` or `approver`.
fn may_watch(svc: &Sessions, auth: &AuthContext, row: &Row) -> Result<&'static str> {
    may_watch_session(svc, auth, &row.user_name, &row.person, &row.entitlement)
}

/// Why `auth` may watch a session of account `user_name` (recorded as `person` with its grant)
/// under `entitlement`, by the policy now: `admin` or `approver`. The live list marks the
/// sessions a caller may watch with the same rule.
pub(crate) fn may_watch_session(
    svc: &Sessions,
    auth: &AuthContext,
    user_name: &str,
    person: &str,
    entitlement: &str,
) -> Result<&'static str> {
    let policy = svc.policy.get();
    let me = policy.person_of(&auth.user_name);
    // The person recorded with the grant, and the one the policy names now: neither watches.
    if me == PersonId::new(person) || me == policy.person_of(user_name) {
        return Err(SessionsError::Forbidden(
            "nobody watches their own session".into(),
        ));
    }
    if auth.is_admin() {
        return Ok("admin");
    }
    let approver = policy.entitlement(entitlement).is_some_and(|e| {
        paw_policy::may_approve(
            e,
            &me,
            &policy.groups_of(&auth.user_name),
            &PersonId::new(person),
        )
        .is_ok()
    });
    if approver {
        Ok("approver")
    } else {
        Err(SessionsError::Forbidden(
            "only administrators and approvers of the session's entitlement watch it".into(),
        ))
    }
}

/// `GET /v1/sessions/{id}/watch`: checks who asks and where the session runs, audits the
/// watch, and returns its events. The stream ends with an `end` event when the session ends;
/// `until` ends it without one.
pub async fn open(
    svc: &Sessions,
    auth: &AuthContext,
    session_id: &str,
    until: Until,
) -> Result<mpsc::Receiver<SessionWatchEvent>> {
    let row: Option<Row> = with_pool!(&svc.db, p => {
        sqlx::query_as("SELECT s.broker_id, s.ended_at, g.user_name, g.person, g.entitlement, \
                        g.target_kind, g.target, g.role FROM session_tickets s \
                        JOIN grants g ON g.id = s.grant_id WHERE s.id = $1 AND s.used_at IS NOT NULL")
            .bind(session_id).fetch_optional(p).await?
    });
    let gone = || SessionsError::NotFound("no such live session".into());
    let row = row.ok_or_else(gone)?;
    let role = may_watch(svc, auth, &row)?;
    if row.ended_at.is_some() {
        return Err(gone());
    }
    if row.target_kind != "ssh" {
        return Err(SessionsError::Conflict(
            "only SSH sessions have a terminal to watch".into(),
        ));
    }
    if row.broker_id.as_deref() != Some(&*svc.broker_id) {
        return Err(elsewhere(svc, row.broker_id.as_deref()).await?);
    }
    // Not relaying yet (no shell or command started) or ending.
    let feed = svc.live_sessions.feed(session_id).ok_or_else(gone)?;

    let detail = json!({
        "target": row.target, "user": row.user_name, "role": row.role,
        "entitlement": row.entitlement, "as": role, "broker_id": &*svc.broker_id,
    });
    audit::record(
        &svc.db,
        svc.clock.now_ms(),
        Entry::new(
            &auth.user_name,
            "session_watch_started",
            session_id,
            Outcome::Success,
            detail,
        ),
    )
    .await?;

    let (tx, rx) = mpsc::channel(EVENTS);
    let w = Watch {
        svc: svc.clone(),
        auth: auth.clone(),
        id: session_id.to_owned(),
        row,
        feed,
    };
    tokio::spawn(w.run(tx, until));
    Ok(rx)
}

/// The refusal for a session another broker carries: only that broker has its output.
async fn elsewhere(svc: &Sessions, broker: Option<&str>) -> Result<SessionsError> {
    let Some(id) = broker else {
        return Ok(SessionsError::Conflict(
            "no broker carries this session's connection".into(),
        ));
    };
    let host: Option<String> = with_pool!(&svc.db, p => {
        sqlx::query_scalar("SELECT host FROM brokers WHERE id = $1").bind(id).fetch_optional(p).await?
    });
    let on = host.map(|h| format!(" on {h}")).unwrap_or_default();
    Ok(SessionsError::Conflict(format!(
        "this session is carried by broker {id}{on}: watch it through that broker"
    )))
}

/// One watcher of one session.
struct Watch {
    svc: Sessions,
    auth: AuthContext,
    id: String,
    row: Row,
    feed: Arc<Feed>,
}

/// How a watch ended, as its audit record says.
enum Ended {
    /// The watcher closed the stream.
    Closed,
    /// The session ended, with its reason.
    Session(String),
    /// The watcher's sign-in ended, the broker stops, or the policy no longer lets them watch.
    Access,
}

impl Watch {
    async fn run(self, tx: mpsc::Sender<SessionWatchEvent>, until: Until) {
        let began = Instant::now();
        let me = self.auth.user_name.clone();
        // Before the first byte: the user's terminal, then the recording (when the bridge
        // next takes a request).
        self.feed
            .tell_user(&format!("{me} is watching this session"))
            .await;
        let _ = self
            .feed
            .control
            .send(Control::Mark(format!("watch: {me} started watching")));
        let revoked = async {
            loop {
                tokio::time::sleep(RECHECK).await;
                if may_watch(&self.svc, &self.auth, &self.row).is_err() {
                    break;
                }
            }
        };
        let ended = tokio::select! {
            e = self.follow(&tx) => e,
            () = tx.closed() => Ended::Closed,
            () = until => Ended::Access,
            () = revoked => Ended::Access,
        };
        if matches!(ended, Ended::Access) {
            let _ = tx.try_send(SessionWatchEvent::End {
                reason: "access_ended".into(),
                message:
                    "your sign-in ended, you may no longer watch this session, or the broker stops"
                        .into(),
            });
        }
        drop(tx);
        // The user saw the watch start, so they see it end (unless the session is over).
        if !matches!(ended, Ended::Session(_)) {
            self.feed.tell_user(&format!("{me} stopped watching")).await;
            let _ = self
                .feed
                .control
                .send(Control::Mark(format!("watch: {me} stopped watching")));
        }
        let (reason, session_reason) = match &ended {
            Ended::Closed => ("closed", None),
            Ended::Session(r) => ("session_ended", Some(r.clone())),
            Ended::Access => ("access_ended", None),
        };
        let detail = json!({
            "target": self.row.target, "user": self.row.user_name, "reason": reason,
            "session_end_reason": session_reason,
            "watched_ms": u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        self.audit_end(detail).await;
    }

    /// Where the watcher joins: marked by the bridge between two chunks, or, while the bridge
    /// is busy past [`ATTACH_WAIT`] (and so relays nothing), here. `None`: the session is over.
    async fn attach(&self) -> Option<Attached> {
        let (reply, answer) = oneshot::channel();
        self.feed.control.send(Control::Attach { reply }).ok()?;
        match tokio::time::timeout(ATTACH_WAIT, answer).await {
            Ok(Ok(a)) => Some(a),
            Ok(Err(_)) => None,
            Err(_) => {
                let rx = self.feed.out.subscribe();
                // Subscribed before this read: a later end reaches the receiver.
                if self.feed.ended().is_some() {
                    return None;
                }
                let recorded = std::fs::metadata(&self.feed.recording).map_or(0, |m| m.len());
                let (cols, rows) = self.feed.size();
                Some(Attached {
                    rx,
                    recorded,
                    cols,
                    rows,
                })
            }
        }
    }

    /// Sends the screen, then the output, until the session ends or the watcher goes; draws
    /// the screen again after falling behind or when the bridge asks.
    async fn follow(&self, tx: &mpsc::Sender<SessionWatchEvent>) -> Ended {
        loop {
            let Some(a) = self.attach().await else {
                let reason = self.feed.ended().unwrap_or_else(|| "ended".into());
                return self.session_ended(tx, &reason).await;
            };
            let screen = screen(self.feed.recording.clone(), a.recorded, a.cols, a.rows).await;
            let start = SessionWatchEvent::Start {
                session_id: self.id.clone(),
                user: self.row.user_name.clone(),
                target: self.row.target.clone(),
                role: self.row.role.clone(),
                cols: a.cols,
                rows: a.rows,
                screen: B64.encode(screen),
            };
            if tx.send(start).await.is_err() {
                return Ended::Closed;
            }
            let mut rx = a.rx;
            loop {
                let event = match rx.recv().await {
                    Ok(Chunk::Output(d)) => SessionWatchEvent::Output {
                        data: B64.encode(&d),
                    },
                    Ok(Chunk::Resize(cols, rows)) => SessionWatchEvent::Resize { cols, rows },
                    Ok(Chunk::End(reason)) => return self.session_ended(tx, &reason).await,
                    Err(broadcast::error::RecvError::Closed) => {
                        return self.session_ended(tx, "ended").await
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                };
                if tx.send(event).await.is_err() {
                    return Ended::Closed;
                }
            }
        }
    }

    async fn session_ended(&self, tx: &mpsc::Sender<SessionWatchEvent>, reason: &str) -> Ended {
        let _ = tx
            .send(SessionWatchEvent::End {
                reason: reason.to_owned(),
                message: format!("the session ended: {}", super::error::reason_words(reason)),
            })
            .await;
        Ended::Session(reason.to_owned())
    }

    /// The end goes on record even while the database is briefly away.
    async fn audit_end(&self, detail: Value) {
        let mut wait = Duration::from_millis(250);
        for _ in 0..8 {
            let entry = Entry::new(
                &self.auth.user_name,
                "session_watch_ended",
                &self.id,
                Outcome::Success,
                detail.clone(),
            );
            match audit::record(&self.svc.db, self.svc.clock.now_ms(), entry).await {
                Ok(_) => return,
                Err(e) => {
                    tracing::error!(session = %self.id, error = %e, "could not record the end of a watch; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

/// The escape sequences that draw the screen the user sees after the first `recorded` bytes
/// of the recording (its tail, for a long one), at `cols` × `rows`. Empty when it cannot be
/// read: the watcher then starts from a blank screen.
async fn screen(path: PathBuf, recorded: u64, cols: u32, rows: u32) -> Vec<u8> {
    let drawn = tokio::task::spawn_blocking(move || replay(&path, recorded, cols, rows)).await;
    match drawn {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not read a recording for a watcher's screen");
            Vec::new()
        }
        Err(_) => Vec::new(),
    }
}

fn clamp(n: u32) -> u16 {
    u16::try_from(n.clamp(1, 1000)).unwrap_or(1000)
}

fn replay(path: &Path, recorded: u64, cols: u32, rows: u32) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let from = recorded.saturating_sub(SCREEN_REPLAY_BYTES);
    f.seek(SeekFrom::Start(from))?;
    let mut text = Vec::new();
    f.take(recorded - from).read_to_end(&mut text)?;
    // From the middle: skip the partial first line.
    let text = if from > 0 {
        let cut = text
            .iter()
            .position(|b| *b == b'\n')
            .map_or(text.len(), |i| i + 1);
        &text[cut..]
    } else {
        &text[..]
    };
    let mut term = vt100::Parser::new(clamp(rows), clamp(cols), 0);
    for line in text.split(|b| *b == b'\n') {
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        if let (Some(w), Some(h)) = (v["width"].as_u64(), v["height"].as_u64()) {
            let w = u32::try_from(w).unwrap_or(80);
            let h = u32::try_from(h).unwrap_or(24);
            term.screen_mut().set_size(clamp(h), clamp(w));
            continue;
        }
        match (v[1].as_str(), v[2].as_str()) {
            (Some("o"), Some(data)) => term.process(data.as_bytes()),
            (Some("r"), Some(size)) => {
                if let Some((w, h)) = size.split_once('x') {
                    if let (Ok(w), Ok(h)) = (w.parse(), h.parse()) {
                        term.screen_mut().set_size(clamp(h), clamp(w));
                    }
                }
            }
            _ => {}
        }
    }
    term.screen_mut().set_size(clamp(rows), clamp(cols));
    Ok(term.screen().state_formatted())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_screen_is_drawn_from_the_recording_up_to_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.cast");
        let head = "{\"version\":2,\"width\":20,\"height\":5}\n[0.1,\"o\",\"hello\\r\\n\"]\n";
        let all = format!("{head}[0.2,\"o\",\"later\"]\n");
        std::fs::write(&path, &all).unwrap();
        let drawn = replay(&path, head.len() as u64, 20, 5).unwrap();
        let mut t = vt100::Parser::new(5, 20, 0);
        t.process(&drawn);
        assert!(t.screen().contents().contains("hello"));
        assert!(!t.screen().contents().contains("later"));
        let drawn = replay(&path, all.len() as u64, 20, 5).unwrap();
        let mut t = vt100::Parser::new(5, 20, 0);
        t.process(&drawn);
        assert!(t.screen().contents().contains("later"));
    }
}
