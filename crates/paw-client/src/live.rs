//! Live updates from the broker: a background task holds `GET /v1/events` open while the user
//! is signed in and keeps the latest events in a bounded ring that the UI polls
//! ([`Core::live_events`]).
//!
//! Rules:
//! - The stream belongs to one signed-in session. Signing out, the session ending, or a change
//!   of broker stops it and empties the ring, so one user's events never reach the next user.
//!   Each run of the task has a generation; a stopped run can no longer write to the ring.
//! - Sequence numbers only grow (also across sign-outs), so a `since` the UI kept stays
//!   meaningful; when events the UI had not seen were dropped, it is told to reload (`resync`).
//! - Reconnection backs off from 1 s to 30 s (with jitter, so a broker restart is not met by
//!   every workstation at the same instant) and starts over after a connection that held.
//! - A connection that stays silent for three keep-alive intervals is presumed dead.
//! - Authentication is the same as every other call (bearer + device proof); the task holds
//!   only a weak reference to the core, so dropping the core ends it.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use paw_proto::elevation::LiveEvent;
use paw_proto::ipc::LiveFeed;
use rand_core::{OsRng, RngCore};
use tokio::sync::watch;

use crate::sse::SseParser;
use crate::{BrokerClock, ClientError, Core, Inner};

/// Events kept for the UI.
pub(crate) const RING_CAPACITY: usize = 200;
/// The event kind that means "reload everything": sent by the broker when this subscriber fell
/// behind, and added by the core when events may have been missed.
pub(crate) const RESYNC: &str = "resync";
const EVENTS_PATH: &str = "/v1/events";
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A connection up at least this long counts as healthy: the next failure starts at 1 s again.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// The broker sends a keep-alive every 15 s.
const SILENCE_LIMIT: Duration = Duration::from_secs(45);

/// A synthetic "reload" event at broker time `at_ms` (0 when unknown).
pub(crate) fn resync_event(at_ms: i64) -> LiveEvent {
    LiveEvent {
        kind: RESYNC.into(),
        grant_id: String::new(),
        state: String::new(),
        message: "live updates may have been missed; reload".into(),
        at_ms,
    }
}

/// The last [`RING_CAPACITY`] events with their sequence numbers, and who may write.
#[derive(Debug, Default)]
pub(crate) struct Ring {
    events: VecDeque<(u64, LiveEvent)>,
    /// Newest sequence number handed out (0: none yet).
    seq: u64,
    /// The current run of the task; writes from another run are ignored.
    generation: u64,
    connected: bool,
}

impl Ring {
    /// Appends `ev` if `generation` is the current run.
    pub(crate) fn push(&mut self, generation: u64, ev: LiveEvent) {
        if generation != self.generation {
            return;
        }
        self.seq = self.seq.saturating_add(1);
        if self.events.len() >= RING_CAPACITY {
            self.events.pop_front();
        }
        self.events.push_back((self.seq, ev));
    }

    pub(crate) fn set_connected(&mut self, generation: u64, up: bool) {
        if generation == self.generation {
            self.connected = up;
        }
    }

    /// A new run begins: its generation. Earlier runs can no longer write.
    pub(crate) fn begin(&mut self) -> u64 {
        self.generation = self.generation.wrapping_add(1);
        self.connected = false;
        self.generation
    }

    /// The session ended: forget its events (the sequence goes on) and disown every run.
    pub(crate) fn end(&mut self) {
        self.events.clear();
        self.begin();
    }

    /// Events with a sequence number above `since`. When some of those were already dropped
    /// from the ring, a `resync` comes first so the UI reloads instead of missing them.
    pub(crate) fn since(&self, since: u64, resync_at_ms: i64) -> LiveFeed {
        let mut events = Vec::new();
        let oldest = self.events.front().map(|(s, _)| *s);
        if since > 0 && oldest.is_some_and(|o| o > since.saturating_add(1)) {
            events.push(resync_event(resync_at_ms));
        }
        events.extend(
            self.events
                .iter()
                .filter(|(s, _)| *s > since)
                .map(|(_, e)| e.clone()),
        );
        LiveFeed {
            seq: self.seq,
            events,
            connected: self.connected,
        }
    }

    /// The events after `since` with their numbers (for the core's own consumers).
    pub(crate) fn after(&self, since: u64) -> (u64, Vec<LiveEvent>) {
        let events = self
            .events
            .iter()
            .filter(|(s, _)| *s > since)
            .map(|(_, e)| e.clone())
            .collect();
        (self.seq, events)
    }

    /// Whether events after `since` were dropped before being read.
    pub(crate) fn lost_after(&self, since: u64) -> bool {
        self.events
            .front()
            .is_some_and(|(o, _)| *o > since.saturating_add(1))
    }
}

/// Reconnection delays: doubling from [`BACKOFF_MIN`] to [`BACKOFF_MAX`].
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// The delay before the next attempt, spread by `jitter` in [0, 1): up to a fifth shorter,
    /// so the cap still holds.
    pub(crate) fn next_delay(&mut self, jitter: f64) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        base.mul_f64(1.0 - 0.2 * jitter.clamp(0.0, 1.0))
    }

    pub(crate) fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

fn jitter() -> f64 {
    f64::from(OsRng.next_u32()) / (f64::from(u32::MAX) + 1.0)
}

/// The live side of the core: the ring and the running task, if any.
pub(crate) struct Live {
    ring: Arc<std::sync::Mutex<Ring>>,
    /// Dropping the sender stops the task at its next await.
    task: std::sync::Mutex<Option<Running>>,
}

struct Running {
    _stop: watch::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl Live {
    pub(crate) fn new() -> Self {
        Self {
            ring: Arc::new(std::sync::Mutex::new(Ring::default())),
            task: std::sync::Mutex::new(None),
        }
    }

    /// Runs `f` on the ring. A poisoned lock (a panic elsewhere while holding it) still holds
    /// consistent data: every change to the ring is a single step.
    pub(crate) fn with_ring<T>(&self, f: impl FnOnce(&mut Ring) -> T) -> T {
        with(&self.ring, f)
    }
}

fn with<T>(ring: &std::sync::Mutex<Ring>, f: impl FnOnce(&mut Ring) -> T) -> T {
    let mut g = ring
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut g)
}

impl Core {
    /// Live updates after `since` (the `seq` of the previous answer; 0 at first). Local: no
    /// broker call. Starts the stream if the user is signed in and none is running.
    pub async fn live_events(&self, since: u64) -> LiveFeed {
        let (signed_in, now) = {
            let st = self.inner.state.read().await;
            (st.user.is_some(), st.clock.now_ms())
        };
        if signed_in {
            self.ensure_live();
        }
        self.inner
            .live
            .with_ring(|r| r.since(since, now.unwrap_or(0)))
    }

    /// Starts the live task unless one is running. Needs a tokio runtime (the app's commands
    /// run on one); without one there is no stream, and the UI sees `connected: false`.
    pub(crate) fn ensure_live(&self) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut task = self
            .inner
            .live
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if task.as_ref().is_some_and(|t| !t.done.is_finished()) {
            return;
        }
        let generation = self.inner.live.with_ring(Ring::begin);
        let (stop, stopped) = watch::channel(());
        let weak = Arc::downgrade(&self.inner);
        let ring = self.inner.live.ring.clone();
        let done = rt.spawn(run(weak, ring, generation, stopped));
        *task = Some(Running { _stop: stop, done });
    }

    /// Stops the live task and every watch, forgets the session's events and the cached grants. Called when
    /// the session ends (sign-out, refused token), at sign-in and when the broker changes.
    pub(crate) fn stop_live(&self) {
        let running = self
            .inner
            .live
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        // Dropping the sender wakes the task, which returns at once; it is not aborted, so a
        // task that is itself signing out (a refused reconnection) finishes doing so.
        drop(running);
        self.inner.live.with_ring(Ring::end);
        self.clear_grant_cache();
        // Watching someone's session belongs to the sign-in too.
        self.stop_watches();
    }

    /// Opens the event stream; returns the response and the broker clock as of now.
    async fn open_events(&self) -> Result<(reqwest::Response, BrokerClock), ClientError> {
        let (_client, resp) = self.authed_stream(EVENTS_PATH).await?;
        let clock = self.inner.state.read().await.clock.clone();
        Ok((resp, clock))
    }
}

/// Errors after which reconnecting cannot help until the user acts.
fn is_final(e: &ClientError) -> bool {
    matches!(e, ClientError::NotSignedIn | ClientError::NotConfigured)
        || crate::identity::session_over(e)
}

/// How a connection ended.
enum End {
    Stopped,
    Lost(String),
}

async fn run(
    core: Weak<Inner>,
    ring: Arc<std::sync::Mutex<Ring>>,
    generation: u64,
    mut stop: watch::Receiver<()>,
) {
    let mut backoff = Backoff::default();
    loop {
        let opened = {
            let Some(inner) = core.upgrade() else { break };
            let core = Core { inner };
            tokio::select! {
                r = core.open_events() => r,
                _ = stop.changed() => break,
            }
            // The strong reference goes here: a dropped core is not kept alive by its stream.
        };
        match opened {
            Ok((resp, clock)) => {
                with(&ring, |r| {
                    r.set_connected(generation, true);
                    // Whatever happened while not connected was not seen.
                    r.push(generation, resync_event(clock.now_ms().unwrap_or(0)));
                });
                tracing::debug!("live events connected");
                let up = Instant::now();
                let end = read(resp, &ring, generation, &clock, &mut stop, &core).await;
                with(&ring, |r| r.set_connected(generation, false));
                match end {
                    End::Stopped => break,
                    End::Lost(why) => tracing::debug!(%why, "live events disconnected"),
                }
                if up.elapsed() >= HEALTHY_AFTER {
                    backoff.reset();
                }
            }
            Err(e) if is_final(&e) => {
                tracing::debug!(code = %e.code(), "live events stopped");
                break;
            }
            // The code only: a message could quote the broker.
            Err(e) => tracing::debug!(code = %e.code(), "live events unavailable"),
        }
        let wait = backoff.next_delay(jitter());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
    }
    with(&ring, |r| r.set_connected(generation, false));
}

/// Reads events into the ring until the stream ends, falls silent, misbehaves or is stopped.
async fn read(
    mut resp: reqwest::Response,
    ring: &std::sync::Mutex<Ring>,
    generation: u64,
    clock: &BrokerClock,
    stop: &mut watch::Receiver<()>,
    core: &Weak<Inner>,
) -> End {
    let mut parser = SseParser::new();
    loop {
        let chunk = tokio::select! {
            c = tokio::time::timeout(SILENCE_LIMIT, resp.chunk()) => c,
            _ = stop.changed() => return End::Stopped,
        };
        let bytes = match chunk {
            Err(_) => return End::Lost("silent for too long".into()),
            Ok(Err(e)) => return End::Lost(format!("read failed: {}", e.without_url())),
            Ok(Ok(None)) => return End::Lost("closed by the broker".into()),
            Ok(Ok(Some(b))) => b,
        };
        let events = match parser.push(&bytes) {
            Ok(e) => e,
            Err(e) => return End::Lost(e.to_string()),
        };
        for ev in events {
            if let Some(live) = decode(&ev.event, &ev.data, clock) {
                // A grant about to end warns its open terminals too, in the tab itself.
                if live.kind == "grant_warning" {
                    if let Some(inner) = core.upgrade() {
                        inner.sessions.warn(&live.grant_id, &live.message);
                    }
                }
                with(ring, |r| r.push(generation, live));
            }
        }
    }
}

/// A live event from one SSE event: the broker's `resync` becomes the core's own; anything
/// else must be a `LiveEvent`, or it is skipped (an unknown shape from a newer broker must not
/// end the stream).
pub(crate) fn decode(event: &str, data: &str, clock: &BrokerClock) -> Option<LiveEvent> {
    if event == RESYNC {
        return Some(resync_event(clock.now_ms().unwrap_or(0)));
    }
    match serde_json::from_str::<LiveEvent>(data) {
        Ok(ev) => Some(ev),
        Err(e) => {
            tracing::debug!(kind = %event, error = ?e.classify(), "unreadable live event skipped");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: u64) -> LiveEvent {
        LiveEvent {
            kind: "grant_warning".into(),
            grant_id: format!("g{n}"),
            state: "active".into(),
            message: String::new(),
            at_ms: i64::try_from(n).unwrap(),
        }
    }

    fn ids(feed: &LiveFeed) -> Vec<String> {
        feed.events.iter().map(|e| e.grant_id.clone()).collect()
    }

    #[test]
    fn sequence_numbers_grow_and_since_filters() {
        let mut r = Ring::default();
        let g = r.begin();
        for n in 1..=3 {
            r.push(g, ev(n));
        }
        let all = r.since(0, 0);
        assert_eq!(all.seq, 3);
        assert_eq!(ids(&all), ["g1", "g2", "g3"]);
        let later = r.since(2, 0);
        assert_eq!(ids(&later), ["g3"]);
        assert_eq!(later.seq, 3);
        assert!(r.since(3, 0).events.is_empty());
        assert!(r.since(99, 0).events.is_empty());
    }

    #[test]
    fn the_ring_is_bounded_and_a_gap_asks_for_a_reload() {
        let mut r = Ring::default();
        let g = r.begin();
        for n in 1..=250 {
            r.push(g, ev(n));
        }
        let all = r.since(0, 0);
        assert_eq!(all.seq, 250);
        assert_eq!(all.events.len(), RING_CAPACITY);
        assert_eq!(all.events[0].grant_id, "g51");
        // The UI last saw 10: 11..=50 are gone, so it is told to reload first.
        let gap = r.since(10, 1234);
        assert_eq!(gap.events[0].kind, RESYNC);
        assert_eq!(gap.events[0].at_ms, 1234);
        assert_eq!(gap.events.len(), RING_CAPACITY + 1);
        assert!(r.lost_after(10));
        // The UI last saw 50: nothing is missing.
        let none_lost = r.since(50, 0);
        assert_eq!(none_lost.events.len(), RING_CAPACITY);
        assert_eq!(none_lost.events[0].grant_id, "g51");
        assert!(!r.lost_after(50));
    }

    #[test]
    fn a_stopped_run_cannot_write_and_the_session_end_empties_the_ring() {
        let mut r = Ring::default();
        let old = r.begin();
        r.push(old, ev(1));
        r.set_connected(old, true);
        assert!(r.since(0, 0).connected);
        r.end();
        let feed = r.since(0, 0);
        assert!(
            feed.events.is_empty(),
            "the previous user's events are gone"
        );
        assert!(!feed.connected);
        assert_eq!(feed.seq, 1, "the sequence never goes back");
        r.push(old, ev(2));
        r.set_connected(old, true);
        assert!(r.since(0, 0).events.is_empty(), "a stale run is ignored");
        assert!(!r.since(0, 0).connected);
        let new = r.begin();
        r.push(new, ev(3));
        let feed = r.since(1, 0);
        assert_eq!(feed.seq, 2);
        assert_eq!(ids(&feed), ["g3"]);
    }

    #[test]
    fn backoff_doubles_to_thirty_seconds_and_resets() {
        let mut b = Backoff::default();
        let got: Vec<u64> = (0..8).map(|_| b.next_delay(0.0).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 30, 30, 30]);
        b.reset();
        assert_eq!(b.next_delay(0.0), BACKOFF_MIN);
        // Jitter only ever shortens, by at most a fifth.
        let mut b = Backoff::default();
        for _ in 0..10 {
            let d = b.next_delay(0.999);
            assert!(d <= BACKOFF_MAX && d >= Duration::from_millis(800), "{d:?}");
        }
        let j = jitter();
        assert!((0.0..1.0).contains(&j));
    }

    #[test]
    fn events_decode_and_resync_is_synthetic() {
        let clock = BrokerClock::new();
        let data = serde_json::to_string(&ev(7)).unwrap();
        assert_eq!(decode("grant_warning", &data, &clock), Some(ev(7)));
        let r = decode(RESYNC, "{}", &clock).unwrap();
        assert_eq!(r.kind, RESYNC);
        assert!(r.grant_id.is_empty());
        assert_eq!(decode("grant_warning", "{not json", &clock), None);
        assert_eq!(decode("grant_warning", r#"{"kind":"x"}"#, &clock), None);
    }
}
