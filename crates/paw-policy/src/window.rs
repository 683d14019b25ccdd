//! A schedule window for automatic approval: inside it a request is approved after the
//! requester's step-up, outside it the entitlement's approvers decide as usual.
//!
//! Made for machine identities (a nightly deploy inside its maintenance window needs nobody
//! awake; the same pipeline at noon asks a person), and usable by anyone. Times are UTC, so a
//! window means the same on every broker whatever its local zone; a window may cross midnight
//! (`from = "22:00"`, `to = "04:00"`: it belongs to the day it starts on).
//!
//! ```toml
//! approval = { required = 1, groups = ["release-leads"] }
//! auto_window = { days = ["mon", "tue", "wed", "thu", "fri"], from = "01:00", to = "05:00" }
//! ```

use serde::{Deserialize, Serialize};

use crate::PolicyError;

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// As written in config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoWindowConfig {
    pub days: Vec<String>,
    pub from: String,
    pub to: String,
}

/// A checked window: the days it starts on (bit 0 = Monday) and its minutes of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AutoWindow {
    days: u8,
    from_min: u16,
    to_min: u16,
}

fn invalid(reason: &'static str) -> PolicyError {
    PolicyError::InvalidEntitlement {
        field: "auto_window",
        reason,
    }
}

/// `HH:MM`, 00:00 to 23:59, as minutes of the day.
fn minutes(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

impl AutoWindow {
    pub fn new(c: &AutoWindowConfig) -> Result<Self, PolicyError> {
        if c.days.is_empty() {
            return Err(invalid("days must name at least one day"));
        }
        let mut days = 0u8;
        for d in &c.days {
            let i = DAY_NAMES
                .iter()
                .position(|n| n == d)
                .ok_or_else(|| invalid("days are mon, tue, wed, thu, fri, sat, sun"))?;
            if days & (1 << i) != 0 {
                return Err(invalid("a day is listed twice"));
            }
            days |= 1 << i;
        }
        let from_min = minutes(&c.from).ok_or_else(|| invalid("from must be HH:MM (UTC)"))?;
        let to_min = minutes(&c.to).ok_or_else(|| invalid("to must be HH:MM (UTC)"))?;
        if from_min == to_min {
            return Err(invalid("from and to must differ"));
        }
        Ok(Self {
            days,
            from_min,
            to_min,
        })
    }

    fn starts_on(&self, weekday: i64) -> bool {
        self.days & (1 << weekday.rem_euclid(7)) != 0
    }

    /// Whether the instant `unix_ms` (UTC) falls inside the window.
    pub fn contains(&self, unix_ms: i64) -> bool {
        let day = unix_ms.div_euclid(DAY_MS);
        // 1970-01-01 was a Thursday (Monday = 0).
        let weekday = day + 3;
        let minute = unix_ms.rem_euclid(DAY_MS) / MINUTE_MS;
        let (from, to) = (i64::from(self.from_min), i64::from(self.to_min));
        if from < to {
            self.starts_on(weekday) && (from..to).contains(&minute)
        } else {
            // Crosses midnight: the evening part is today's window, the morning part
            // yesterday's.
            (self.starts_on(weekday) && minute >= from)
                || (self.starts_on(weekday - 1) && minute < to)
        }
    }

    /// The window in words, for the approval rule shown to requesters and approvers.
    pub fn describe(&self) -> String {
        let days: Vec<&str> = DAY_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.days & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect();
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        format!(
            "{} {}–{} UTC",
            days.join(", "),
            hm(self.from_min),
            hm(self.to_min)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(days: &[&str], from: &str, to: &str) -> Result<AutoWindow, PolicyError> {
        AutoWindow::new(&AutoWindowConfig {
            days: days.iter().map(|d| (*d).to_owned()).collect(),
            from: from.into(),
            to: to.into(),
        })
    }

    /// 2026-12-07 was a Monday.
    fn at(day_offset: i64, h: i64, m: i64) -> i64 {
        let monday = 1_796_601_600_000; // 2026-12-07T00:00:00Z
        monday + day_offset * DAY_MS + h * 3_600_000 + m * MINUTE_MS
    }

    #[test]
    fn a_day_window_holds_from_inclusive_to_exclusive_on_its_days() {
        let win = w(&["mon", "tue", "wed", "thu", "fri"], "01:00", "05:00").unwrap();
        assert!(win.contains(at(0, 1, 0)));
        assert!(win.contains(at(0, 4, 59)));
        assert!(!win.contains(at(0, 5, 0)));
        assert!(!win.contains(at(0, 0, 59)));
        assert!(win.contains(at(4, 2, 0)), "friday");
        assert!(!win.contains(at(5, 2, 0)), "saturday");
        assert!(!win.contains(at(6, 2, 0)), "sunday");
        assert_eq!(win.describe(), "mon, tue, wed, thu, fri 01:00–05:00 UTC");
    }

    #[test]
    fn a_window_across_midnight_belongs_to_the_day_it_starts() {
        let win = w(&["sat"], "22:00", "04:00").unwrap();
        assert!(win.contains(at(5, 23, 0)), "saturday night");
        assert!(win.contains(at(6, 3, 59)), "sunday early morning");
        assert!(!win.contains(at(6, 4, 0)));
        assert!(
            !win.contains(at(5, 3, 0)),
            "saturday early morning is friday's"
        );
        assert!(!win.contains(at(6, 23, 0)), "sunday night");
    }

    #[test]
    fn bad_windows_are_refused() {
        assert!(w(&[], "01:00", "02:00").is_err());
        assert!(w(&["monday"], "01:00", "02:00").is_err());
        assert!(w(&["mon", "mon"], "01:00", "02:00").is_err());
        assert!(w(&["mon"], "1:00", "02:00").is_err());
        assert!(w(&["mon"], "24:00", "02:00").is_err());
        assert!(w(&["mon"], "02:00", "02:00").is_err());
    }
}
