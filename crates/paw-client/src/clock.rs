//! The broker's clock, as the workstation estimates it (cases B8, E4).
//!
//! The broker's clock decides every expiry, and device proofs carry the broker's time, so the
//! workstation must know it even when its own wall clock is wrong by hours or is stepped while
//! the app runs. The estimate is anchored to the broker's `/healthz` `time_ms` and advanced with
//! the monotonic clock (`Instant`), never with the local wall clock.
//!
//! The local wall clock is used for one thing only: noticing that it and the monotonic clock
//! disagree (a clock step, or a suspend during which the monotonic clock stood still on Linux),
//! which asks for a fresh sync. It never moves the estimate.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// After this long a sync is refreshed before it is relied on; drift of a quartz clock over it
/// is far below the broker's accepted skew.
pub const MAX_SYNC_AGE: Duration = Duration::from_secs(5 * 60);
/// Disagreement between wall-clock and monotonic elapsed time that means "resync".
pub const MAX_CLOCK_DISAGREEMENT_MS: i64 = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sync {
    broker_ms: i64,
    /// When (monotonic) the broker's time was `broker_ms`.
    at: Instant,
    /// The local wall clock at `at`; only for reporting skew and detecting steps.
    local_ms: i64,
}

/// Broker-time estimate from the last health check.
#[derive(Debug, Clone, Default)]
pub struct BrokerClock {
    sync: Option<Sync>,
}

impl BrokerClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a health answer: the broker stamped `broker_time_ms` somewhere between `sent`
    /// and `received`; the midpoint is the best guess, off by at most half the round trip.
    /// `local_wall_ms` is the local wall clock at `received`.
    pub fn record(
        &mut self,
        broker_time_ms: i64,
        sent: Instant,
        received: Instant,
        local_wall_ms: i64,
    ) {
        let half_rtt = received.saturating_duration_since(sent) / 2;
        let at = sent.checked_add(half_rtt).unwrap_or(received);
        let local_ms = local_wall_ms.saturating_sub(millis(half_rtt));
        self.sync = Some(Sync {
            broker_ms: broker_time_ms,
            at,
            local_ms,
        });
    }

    /// Forgets the sync (for example when the broker changes).
    pub fn reset(&mut self) {
        self.sync = None;
    }

    /// The broker's time now, or `None` before the first sync.
    pub fn now_ms(&self) -> Option<i64> {
        self.now_ms_at(Instant::now())
    }

    /// The broker's time at the monotonic instant `now`.
    pub fn now_ms_at(&self, now: Instant) -> Option<i64> {
        let s = self.sync?;
        // An instant before the anchor (a caller's stale Instant) counts as the anchor.
        let elapsed = now.saturating_duration_since(s.at);
        Some(s.broker_ms.saturating_add(millis(elapsed)))
    }

    /// How far the local wall clock was ahead of the broker at the last sync (negative when
    /// behind), for telling the user their clock is off. Not used for any decision.
    pub fn local_skew_ms(&self) -> Option<i64> {
        self.sync.map(|s| s.local_ms.saturating_sub(s.broker_ms))
    }

    /// True when the estimate should be refreshed before it is relied on: no sync yet, the
    /// sync is old, or the wall clock moved differently from the monotonic clock since (a step,
    /// or a suspend the monotonic clock did not count).
    pub fn needs_resync(&self, now: Instant, local_wall_ms: i64) -> bool {
        let Some(s) = self.sync else {
            return true;
        };
        let mono = now.saturating_duration_since(s.at);
        if mono > MAX_SYNC_AGE {
            return true;
        }
        let wall = local_wall_ms.saturating_sub(s.local_ms);
        (wall.saturating_sub(millis(mono))).abs() > MAX_CLOCK_DISAGREEMENT_MS
    }
}

/// The local wall clock in Unix milliseconds (0 if it is set before 1970).
pub fn local_wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(millis)
        .unwrap_or(0)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROKER: i64 = 1_764_000_000_000;
    const HOUR: i64 = 3_600_000;

    #[test]
    fn no_estimate_before_sync() {
        let c = BrokerClock::new();
        assert_eq!(c.now_ms(), None);
        assert!(c.needs_resync(Instant::now(), 0));
    }

    #[test]
    fn b8_local_clock_offset_does_not_change_broker_time() {
        let sent = Instant::now();
        let received = sent + Duration::from_millis(40);
        let later = received + Duration::from_secs(90);
        let expected = BROKER + 20 + 90_000;
        for offset in [0, HOUR, -HOUR, 24 * HOUR, -24 * HOUR] {
            let mut c = BrokerClock::new();
            c.record(BROKER, sent, received, BROKER + 20 + offset);
            assert_eq!(c.now_ms_at(later), Some(expected), "offset {offset}");
            assert_eq!(c.local_skew_ms(), Some(offset), "offset {offset}");
            // A wrong but steady clock does not even ask for a resync.
            assert!(!c.needs_resync(later, BROKER + 20 + 90_000 + offset));
        }
    }

    #[test]
    fn b8_e4_wall_clock_step_after_sync_does_not_move_estimate() {
        let sent = Instant::now();
        let mut c = BrokerClock::new();
        c.record(BROKER, sent, sent, BROKER);
        let later = sent + Duration::from_secs(60);
        for step in [HOUR, -HOUR, 24 * HOUR, -24 * HOUR] {
            // The estimate takes no wall time at all; the step only asks for a fresh sync.
            assert_eq!(c.now_ms_at(later), Some(BROKER + 60_000), "step {step}");
            assert!(c.needs_resync(later, BROKER + 60_000 + step), "step {step}");
        }
    }

    #[test]
    fn old_sync_asks_for_resync() {
        let t0 = Instant::now();
        let mut c = BrokerClock::new();
        c.record(BROKER, t0, t0, BROKER);
        let later = t0 + MAX_SYNC_AGE + Duration::from_secs(1);
        let wall = BROKER + millis(MAX_SYNC_AGE) + 1_000;
        assert!(c.needs_resync(later, wall));
        assert!(!c.needs_resync(t0 + Duration::from_secs(10), BROKER + 10_000));
        c.reset();
        assert_eq!(c.now_ms_at(later), None);
    }
}
