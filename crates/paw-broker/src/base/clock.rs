//! The broker's clock. Every expiry is decided by it, never by a client; services hold one as
//! `Arc<dyn Clock>` so tests move time instead of sleeping.

use std::time::{SystemTime, UNIX_EPOCH};

/// The broker's clock. Every expiry is decided by it; tests substitute a fixed one.
pub trait Clock: Send + Sync + 'static {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> i64;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}
