//! Watching someone else's live SSH session, read-only (issue #15 item 5, case J6): the core
//! holds the broker's `GET /v1/sessions/{id}/watch` event stream open and passes what it says
//! to the UI's watch pane through a channel, as it does a terminal's output.
//!
//! Rules:
//! - Read-only by construction: a watch is a GET with no body, and nothing here sends anything
//!   towards the session; the UI's only calls are `watch_session` and `stop_watch`.
//! - Who may watch is the broker's decision (administrators and approvers of the session's
//!   entitlement, never the session's own person); its refusal (`forbidden`, `not_found`,
//!   `conflict` naming the broker that carries the session) is the answer to `watch_session`,
//!   with the broker's words.
//! - One watch per session id: watching it again replaces the earlier watch (its pane is told
//!   `stopped`). Every watch ends with exactly one `ended` event: the session's end, the
//!   broker's, the user's Stop, sign-out, or a lost connection (not retried: a new watch starts
//!   from the current screen anyway, and the broker audits each one).
//! - Bytes are checked before they reach the UI: base64 that does not decode ends the watch,
//!   sizes are clamped to what a terminal accepts, and events are bounded in size.
//! - Each watch the broker accepted is noted in the local audit trail (`session.watch`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use paw_audit::Outcome;
use paw_policy::limits::{
    MAX_TERMINAL_COLS, MAX_TERMINAL_ROWS, MIN_TERMINAL_COLS, MIN_TERMINAL_ROWS,
};
use paw_proto::ipc::WatchEvent;
use paw_proto::session::{SessionIdInput, SessionWatchEvent};
use serde_json::json;
use tokio::sync::oneshot;

use crate::audit::Audit;
use crate::elevation::check_id;
use crate::sse::SseParser;
use crate::{ClientError, Core, Inner};

/// The broker sends a keep-alive every 5 s on a watch: three missed and the connection is
/// presumed dead.
const SILENCE_LIMIT: Duration = Duration::from_secs(20);
/// Largest SSE line or event of a watch: a full screen redraw of a large terminal, or an output
/// chunk, base64 in JSON.
const MAX_WATCH_EVENT_BYTES: usize = 8 << 20;

/// Where one watch's events go (the UI's channel).
type Sink = Arc<dyn Fn(WatchEvent) + Send + Sync>;

/// Why a watch is stopped from this side: (reason, message) for its `ended` event.
type StopReason = (&'static str, &'static str);

const STOPPED: StopReason = ("stopped", "you stopped watching");
const SIGNED_OUT: StopReason = ("signed_out", "you signed out");

/// The watches this core runs, by session id.
#[derive(Default)]
pub(crate) struct Watches {
    running: Mutex<HashMap<String, Running>>,
    next: std::sync::atomic::AtomicU64,
}

struct Running {
    /// Which watch of this session id it is (a replaced one must not remove its successor).
    generation: u64,
    /// Sending stops the watch with that reason; dropping it stops it as `stopped`.
    stop: oneshot::Sender<StopReason>,
}

impl Watches {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        // Every change to the map is one insert or remove: a poisoned lock holds good data.
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a new watch of `id`, stopping any earlier one; its generation and stop signal.
    fn begin(&self, id: &str) -> (u64, oneshot::Receiver<StopReason>) {
        let generation = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (stop, stopped) = oneshot::channel();
        if let Some(old) = self
            .map()
            .insert(id.to_owned(), Running { generation, stop })
        {
            let _ = old.stop.send(STOPPED);
        }
        (generation, stopped)
    }

    /// Forgets watch `generation` of `id` once it is over (not a newer one).
    fn done(&self, id: &str, generation: u64) {
        let mut m = self.map();
        if m.get(id).is_some_and(|r| r.generation == generation) {
            m.remove(id);
        }
    }

    fn stop(&self, id: &str, why: StopReason) -> bool {
        match self.map().remove(id) {
            Some(r) => {
                let _ = r.stop.send(why);
                true
            }
            None => false,
        }
    }

    /// Stops every watch (sign-out, another broker).
    pub(crate) fn stop_all(&self) {
        let all: Vec<Running> = self.map().drain().map(|(_, r)| r).collect();
        for r in all {
            let _ = r.stop.send(SIGNED_OUT);
        }
    }

    /// Session ids watched now.
    #[cfg(test)]
    pub(crate) fn ids(&self) -> Vec<String> {
        self.map().keys().cloned().collect()
    }
}

impl Core {
    /// Starts watching live SSH session `input.session_id` read-only. Resolves once the broker
    /// accepted (or refused, with its `{code, message}`); the screen, the output, resizes and
    /// the end then arrive through `on_event`, the end always last.
    pub async fn watch_session(
        &self,
        input: SessionIdInput,
        on_event: impl Fn(WatchEvent) + Send + Sync + 'static,
    ) -> Result<(), ClientError> {
        let id = input.session_id;
        check_id("session_id", &id)?;
        let path = format!("/v1/sessions/{id}/watch");
        let (_client, resp) = self.authed_stream(&path).await?;
        let (generation, stopped) = self.inner.watches.begin(&id);
        self.audit_note(
            Audit::new("session.watch", id.clone(), json!({"session": id})),
            Outcome::Success,
        )
        .await;
        let sink: Sink = Arc::new(on_event);
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let end = follow(resp, &sink, stopped).await;
            sink(end);
            forget(&weak, &id, generation);
        });
        Ok(())
    }

    /// Stops watching session `input.session_id` (its pane gets `ended`, reason `stopped`).
    /// Stopping a watch that already ended is not an error.
    pub fn stop_watch(&self, input: SessionIdInput) -> Result<(), ClientError> {
        check_id("session_id", &input.session_id)?;
        self.inner.watches.stop(&input.session_id, STOPPED);
        Ok(())
    }

    /// Stops every watch: the user signed out (or the broker changed).
    pub(crate) fn stop_watches(&self) {
        self.inner.watches.stop_all();
    }
}

fn forget(core: &Weak<Inner>, id: &str, generation: u64) {
    if let Some(inner) = core.upgrade() {
        inner.watches.done(id, generation);
    }
}

/// Passes the stream's events to `sink` until it ends; returns the `ended` event to send last.
async fn follow(
    mut resp: reqwest::Response,
    sink: &Sink,
    mut stopped: oneshot::Receiver<StopReason>,
) -> WatchEvent {
    let mut parser = SseParser::with_limit(MAX_WATCH_EVENT_BYTES);
    loop {
        let chunk = tokio::select! {
            c = tokio::time::timeout(SILENCE_LIMIT, resp.chunk()) => c,
            why = &mut stopped => {
                let (reason, message) = why.unwrap_or(STOPPED);
                return ended(reason, message);
            }
        };
        let bytes = match chunk {
            Err(_) => return lost("the broker fell silent"),
            Ok(Err(e)) => return lost(&format!("reading failed: {}", e.without_url())),
            Ok(Ok(None)) => return lost("the broker closed the stream"),
            Ok(Ok(Some(b))) => b,
        };
        let events = match parser.push(&bytes) {
            Ok(e) => e,
            Err(e) => return ended("broker_protocol", &e.to_string()),
        };
        for ev in events {
            match decode(&ev.event, &ev.data) {
                Ok(Some(end @ WatchEvent::Ended { .. })) => return end,
                Ok(Some(e)) => sink(e),
                Ok(None) => {}
                Err(why) => return ended("broker_protocol", &why),
            }
        }
    }
}

fn ended(reason: &str, message: &str) -> WatchEvent {
    WatchEvent::Ended {
        reason: reason.to_owned(),
        message: message.to_owned(),
    }
}

fn lost(why: &str) -> WatchEvent {
    ended(
        "connection_lost",
        &format!("the connection to the broker was lost ({why}); watch again to go on"),
    )
}

/// One SSE event of a watch as the pane gets it: `Ok(None)` for a kind this core does not know
/// (a newer broker's; skipped), `Err` for a known one that is malformed (the watch ends: the
/// pane must not show bytes the broker did not send).
pub(crate) fn decode(event: &str, data: &str) -> Result<Option<WatchEvent>, String> {
    if !matches!(event, "start" | "output" | "resize" | "end") {
        return Ok(None);
    }
    let ev: SessionWatchEvent = serde_json::from_str(data).map_err(|e| {
        format!(
            "an unreadable `{event}` event ({:?} error at column {})",
            e.classify(),
            e.column()
        )
    })?;
    if ev.kind() != event {
        return Err(format!("a `{}` event sent as `{event}`", ev.kind()));
    }
    Ok(Some(match ev {
        SessionWatchEvent::Start {
            session_id,
            user,
            target,
            role,
            cols,
            rows,
            screen,
        } => WatchEvent::Start {
            session_id,
            user,
            target,
            role,
            cols: clamp(cols, MIN_TERMINAL_COLS, MAX_TERMINAL_COLS),
            rows: clamp(rows, MIN_TERMINAL_ROWS, MAX_TERMINAL_ROWS),
            screen: bytes("screen", &screen)?,
        },
        SessionWatchEvent::Output { data } => WatchEvent::Output {
            data: bytes("data", &data)?,
        },
        SessionWatchEvent::Resize { cols, rows } => WatchEvent::Resize {
            cols: clamp(cols, MIN_TERMINAL_COLS, MAX_TERMINAL_COLS),
            rows: clamp(rows, MIN_TERMINAL_ROWS, MAX_TERMINAL_ROWS),
        },
        SessionWatchEvent::End { reason, message } => WatchEvent::Ended { reason, message },
    }))
}

/// Decodes the broker's base64 and encodes the bytes again for the channel: only bytes that
/// decode reach the pane, in one canonical form.
fn bytes(field: &str, b64: &str) -> Result<String, String> {
    let raw = B64
        .decode(b64)
        .map_err(|_| format!("`{field}` is not base64"))?;
    Ok(B64.encode(raw))
}

fn clamp(n: u32, min: u16, max: u16) -> u16 {
    u16::try_from(n.clamp(u32::from(min), u32::from(max))).unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(stream: &[u8]) -> Vec<Result<Option<WatchEvent>, String>> {
        let mut p = SseParser::with_limit(MAX_WATCH_EVENT_BYTES);
        p.push(stream)
            .unwrap()
            .into_iter()
            .map(|e| decode(&e.event, &e.data))
            .collect()
    }

    /// A watch stream as the broker's axum `Sse` writes it (`event:` then `data:` lines).
    fn sse(e: &SessionWatchEvent) -> String {
        format!(
            "event: {}\ndata: {}\n\n",
            e.kind(),
            serde_json::to_string(e).unwrap()
        )
    }

    #[test]
    fn the_broker_s_events_become_the_pane_s() {
        let start = SessionWatchEvent::Start {
            session_id: "s1".into(),
            user: "bob".into(),
            target: "web-1".into(),
            role: "root".into(),
            cols: 120,
            rows: 40,
            screen: B64.encode(b"\x1b[H\x1b[2Jbob@web-1:~$ "),
        };
        let out = SessionWatchEvent::Output {
            data: B64.encode([0xff, b'w', 0x00]),
        };
        let resize = SessionWatchEvent::Resize {
            cols: 0,
            rows: 5000,
        };
        let end = SessionWatchEvent::End {
            reason: "closed".into(),
            message: "the session ended: the user closed it".into(),
        };
        let stream = format!(
            ":\n\n{}{}{}{}",
            sse(&start),
            sse(&out),
            sse(&resize),
            sse(&end)
        );
        let got = all(stream.as_bytes());
        assert_eq!(
            got,
            vec![
                Ok(Some(WatchEvent::Start {
                    session_id: "s1".into(),
                    user: "bob".into(),
                    target: "web-1".into(),
                    role: "root".into(),
                    cols: 120,
                    rows: 40,
                    screen: B64.encode(b"\x1b[H\x1b[2Jbob@web-1:~$ "),
                })),
                // Raw bytes, not text: not UTF-8 and a NUL survive.
                Ok(Some(WatchEvent::Output {
                    data: B64.encode([0xff, b'w', 0x00]),
                })),
                // Sizes a terminal cannot take are clamped.
                Ok(Some(WatchEvent::Resize {
                    cols: MIN_TERMINAL_COLS,
                    rows: MAX_TERMINAL_ROWS,
                })),
                Ok(Some(WatchEvent::Ended {
                    reason: "closed".into(),
                    message: "the session ended: the user closed it".into(),
                })),
            ]
        );
    }

    #[test]
    fn a_large_screen_fits_and_an_empty_one_is_fine() {
        let big = vec![b'x'; 1 << 20];
        let start = SessionWatchEvent::Start {
            session_id: "s1".into(),
            user: "bob".into(),
            target: "web-1".into(),
            role: "root".into(),
            cols: 80,
            rows: 24,
            screen: B64.encode(&big),
        };
        let got = all(sse(&start).as_bytes());
        assert!(
            matches!(&got[0], Ok(Some(WatchEvent::Start { screen, .. })) if B64.decode(screen).unwrap() == big)
        );
        let empty = SessionWatchEvent::Start {
            session_id: "s1".into(),
            user: "bob".into(),
            target: "web-1".into(),
            role: "root".into(),
            cols: 80,
            rows: 24,
            screen: String::new(),
        };
        assert!(
            matches!(&all(sse(&empty).as_bytes())[0], Ok(Some(WatchEvent::Start { screen, .. })) if screen.is_empty())
        );
    }

    #[test]
    fn unknown_kinds_are_skipped_and_malformed_known_ones_refused() {
        assert_eq!(decode("typing", r#"{"kind":"typing"}"#), Ok(None));
        assert_eq!(decode("message", "{}"), Ok(None));
        assert!(decode("output", r#"{"kind":"output","data":"not base64!"}"#).is_err());
        assert!(decode("output", r#"{"kind":"output"}"#).is_err());
        assert!(decode("output", "{not json").is_err());
        // The event name and the JSON's kind must agree.
        assert!(decode("end", r#"{"kind":"output","data":""}"#).is_err());
        // The error never quotes the data.
        let e = decode("output", r#"{"kind":"output","data":"s3cr3t!"}"#).unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
    }
}
