//! The broker's clock. Every expiry is decided by it, never by a client; services hold one as
//! `Arc<dyn Clock>` so tests move time instead of sleeping.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The broker's clock. Every expiry is decided by it; tests substitute a fixed one.
pub trait Clock: Send + Sync + 'static {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> i64;
}

/// The operating system's wall clock, except that it never goes back (case E4). A backward
/// step (NTP, `date -s`, a restored VM) would give every grant, ticket and sign-in back the
/// time it had already used, so the clock is carried across it by the monotonic clock until
/// the wall clock catches up. A forward step is followed at once: grants then end early, the
/// fail-safe side.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// The wall time this process's [`SystemClock`] last followed, and when (monotonic).
static FOLLOWED: Mutex<Option<(i64, Instant)>> = Mutex::new(None);

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        // Every change under the lock is one assignment: a poisoned lock still holds a time.
        let mut followed = FOLLOWED.lock().unwrap_or_else(PoisonError::into_inner);
        never_back(&mut followed, wall, Instant::now())
    }
}

/// `wall`, unless it is behind the last wall time followed plus the monotonic time since:
/// then that. Only a followed wall time becomes the anchor, so a clock read often while
/// stepped back does not lose the milliseconds each read rounds off.
fn never_back(followed: &mut Option<(i64, Instant)>, wall: i64, at: Instant) -> i64 {
    let carried =
        followed.map(|(ms, then)| ms.saturating_add(millis(at.saturating_duration_since(then))));
    match carried {
        Some(c) if c > wall => c,
        _ => {
            *followed = Some((wall, at));
            wall
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_800_000_000_000;
    const HOUR: i64 = 3_600_000;

    #[test]
    fn e4_a_backward_step_is_carried_by_the_monotonic_clock_a_forward_one_followed() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut f = None;
        assert_eq!(never_back(&mut f, T, at(0)), T);
        assert_eq!(never_back(&mut f, T + 1_000, at(1_000)), T + 1_000);
        // Stepped back an hour: time goes on from where it was, by the monotonic clock, read
        // after read.
        assert_eq!(never_back(&mut f, T + 2_000 - HOUR, at(2_000)), T + 2_000);
        for ms in 2_001..2_100 {
            let wall = T + i64::try_from(ms).unwrap() - HOUR;
            assert_eq!(
                never_back(&mut f, wall, at(ms)),
                T + i64::try_from(ms).unwrap()
            );
        }
        // The wall clock caught up (or stepped forward): followed again.
        assert_eq!(never_back(&mut f, T + 2 * HOUR, at(3_000)), T + 2 * HOUR);
        assert_eq!(
            never_back(&mut f, T + 2 * HOUR + 500, at(3_500)),
            T + 2 * HOUR + 500
        );
    }

    #[test]
    fn the_system_clock_is_the_wall_clock_when_nobody_steps_it() {
        let wall = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(millis)
                .unwrap()
        };
        let (before, now, after) = (wall(), SystemClock.now_ms(), wall());
        assert!(before <= now && now <= after + 1, "{before} {now} {after}");
    }
}
