//! The reconciler's verdict, as a pure function of two login attempts.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::RotationEvent;

/// What the reconciler does with the account's secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The pending secret opens the account: it becomes current.
    PromotePending,
    /// Only the current secret opens: the pending one (if any) is dropped.
    KeepCurrent,
    /// Neither opens (target unreachable, or changed outside paw): keep both, delete nothing,
    /// raise an alert and try again later.
    Alert,
}

impl Decision {
    /// The journal event that records this decision (from `Reconciling`).
    pub fn event(self) -> RotationEvent {
        match self {
            Decision::PromotePending => RotationEvent::Promote,
            Decision::KeepCurrent => RotationEvent::Rollback,
            Decision::Alert => RotationEvent::NeitherOpens,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::PromotePending => "promote_pending",
            Decision::KeepCurrent => "keep_current",
            Decision::Alert => "alert",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Settles a rotation from what the logins showed.
///
/// `pending_opens` is `None` when there is no pending secret (the crash came before it was
/// stored, so the target cannot have been changed to it). An unreachable target counts as
/// "does not open" for both, which lands on [`Decision::Alert`] and deletes nothing.
///
/// The caller tries the pending secret first: after `Applied` it is the likely one, and on
/// targets that lock an account after failed logins one failure is better than two. When
/// both open (a key rotation that added the new key and had not yet removed the old one),
/// the pending secret wins: the rotation was meant to happen, and the adapter's next apply
/// removes the old key.
pub fn reconcile(pending_opens: Option<bool>, current_opens: bool) -> Decision {
    match (pending_opens, current_opens) {
        (Some(true), _) => Decision::PromotePending,
        (Some(false) | None, true) => Decision::KeepCurrent,
        (Some(false) | None, false) => Decision::Alert,
    }
}
