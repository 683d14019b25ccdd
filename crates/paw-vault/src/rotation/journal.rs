//! The rotation journal's states, events and transition table.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Result, VaultError};

/// Where an account's rotation is. Stored in the journal row in the same transaction as the
/// secrets it describes, so the state and the secrets never disagree after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationState {
    /// No rotation in flight: the vault holds the current secret, which opens the account.
    Idle,
    /// A new secret is generated and stored as pending; the target has not been told yet
    /// (or was being told when the broker stopped). Current and pending are both kept.
    Pending,
    /// The target's change command reported success. Both kept: a report is not a login.
    Applied,
    /// A login with the pending secret succeeded. Both kept until the promotion commits.
    Verified,
    /// The pending secret became the current one. Settled, like `Idle`: the next rotation
    /// starts from here. Kept apart from `Idle` so the journal shows that the last rotation
    /// went through rather than being rolled back.
    Promoted,
    /// The reconciler found that neither secret opens the account (target unreachable, or
    /// changed by someone else). Both kept; an alert is raised and stays until resolved.
    Failed,
    /// A step failed or its outcome is unknown: the reconciler is trying both secrets.
    Reconciling,
}

/// What can happen during a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationEvent {
    /// A new secret was generated and durably stored as pending (before the target is touched).
    Generate,
    /// The target's change command reported success.
    Apply,
    /// The target's change command failed or timed out; whether it took effect is unknown.
    ApplyFailed,
    /// A login with the pending secret succeeded.
    Verify,
    /// A login with the pending secret failed.
    VerifyFailed,
    /// The pending secret replaced the current one (after a verification or a reconciliation).
    Promote,
    /// The reconciler found that only the current secret opens: the pending one is dropped.
    Rollback,
    /// The reconciler found that neither secret opens.
    NeitherOpens,
    /// The broker restarted (or a step's deadline passed) with this rotation in flight.
    Crash,
    /// A failed rotation is retried (by schedule or by an administrator).
    Resume,
}

impl RotationState {
    pub const ALL: [RotationState; 7] = [
        RotationState::Idle,
        RotationState::Pending,
        RotationState::Applied,
        RotationState::Verified,
        RotationState::Promoted,
        RotationState::Failed,
        RotationState::Reconciling,
    ];

    /// No rotation in flight: a new one may start. Exactly one secret is held and it opens.
    pub fn is_settled(self) -> bool {
        matches!(self, RotationState::Idle | RotationState::Promoted)
    }

    /// A rotation that a broker restart must hand to the reconciler (it takes `Crash`).
    pub fn is_in_flight(self) -> bool {
        matches!(
            self,
            RotationState::Pending
                | RotationState::Applied
                | RotationState::Verified
                | RotationState::Reconciling
        )
    }

    /// Whether the vault must still hold the pending secret in this state. Every state
    /// between `Generate` and the reconciler's or the promotion's verdict keeps it, next to
    /// the current one, because until then either may be the one the target accepts.
    pub fn keeps_pending(self) -> bool {
        !self.is_settled()
    }

    /// Stable lower-case name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RotationState::Idle => "idle",
            RotationState::Pending => "pending",
            RotationState::Applied => "applied",
            RotationState::Verified => "verified",
            RotationState::Promoted => "promoted",
            RotationState::Failed => "failed",
            RotationState::Reconciling => "reconciling",
        }
    }
}

impl RotationEvent {
    pub const ALL: [RotationEvent; 10] = [
        RotationEvent::Generate,
        RotationEvent::Apply,
        RotationEvent::ApplyFailed,
        RotationEvent::Verify,
        RotationEvent::VerifyFailed,
        RotationEvent::Promote,
        RotationEvent::Rollback,
        RotationEvent::NeitherOpens,
        RotationEvent::Crash,
        RotationEvent::Resume,
    ];

    /// Stable snake_case name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RotationEvent::Generate => "generate",
            RotationEvent::Apply => "apply",
            RotationEvent::ApplyFailed => "apply_failed",
            RotationEvent::Verify => "verify",
            RotationEvent::VerifyFailed => "verify_failed",
            RotationEvent::Promote => "promote",
            RotationEvent::Rollback => "rollback",
            RotationEvent::NeitherOpens => "neither_opens",
            RotationEvent::Crash => "crash",
            RotationEvent::Resume => "resume",
        }
    }
}

impl fmt::Display for RotationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for RotationEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The whole journal. Every allowed edge is listed; everything else is refused.
///
/// Why these edges and no others:
/// - Only a settled rotation starts a new one (`Generate`): two rotations of one account at
///   once would leave two pending secrets and a target that holds at most one of them.
/// - `Generate` means the pending secret is already stored: write ahead, then touch the target.
/// - Any failure or unknown outcome goes to `Reconciling`, never straight back to `Idle`: a
///   change command that timed out may still have changed the password, and only a login
///   tells which secret the target now takes.
/// - Only a proven secret is promoted: from `Verified` (a login succeeded) or from
///   `Reconciling` (the reconciler's login succeeded). `Applied` cannot promote.
/// - `Failed` waits for `Resume`; it is not left by a restart alone, so the alert stays
///   until someone (or the schedule) tries again.
pub fn next(state: RotationState, event: RotationEvent) -> Result<RotationState> {
    use RotationEvent as E;
    use RotationState as S;
    let to = match (state, event) {
        (S::Idle | S::Promoted, E::Generate) => S::Pending,

        (S::Pending, E::Apply) => S::Applied,
        (S::Pending, E::ApplyFailed) => S::Reconciling,
        (S::Pending, E::Crash) => S::Reconciling,

        (S::Applied, E::Verify) => S::Verified,
        (S::Applied, E::VerifyFailed) => S::Reconciling,
        (S::Applied, E::Crash) => S::Reconciling,

        (S::Verified, E::Promote) => S::Promoted,
        (S::Verified, E::Crash) => S::Reconciling,

        (S::Reconciling, E::Promote) => S::Promoted,
        (S::Reconciling, E::Rollback) => S::Idle,
        (S::Reconciling, E::NeitherOpens) => S::Failed,
        (S::Reconciling, E::Crash) => S::Reconciling,

        (S::Failed, E::Resume) => S::Reconciling,

        _ => return Err(VaultError::InvalidTransition { from: state, event }),
    };
    Ok(to)
}
