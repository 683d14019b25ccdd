use crate::grant::{GrantEvent, GrantState};

/// Every way a policy rule can refuse. One enum for the crate; callers map it to an `ErrorCode`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The grant state machine has no edge for this (state, event) pair.
    #[error("a {from} grant cannot {event}")]
    InvalidTransition { from: GrantState, event: GrantEvent },

    /// A target or role pattern from configuration is not acceptable.
    /// The pattern text is deliberately not echoed: it may hold control characters.
    #[error("invalid pattern: {reason}")]
    InvalidPattern { reason: &'static str },

    /// Requested duration is zero or negative.
    #[error("duration must be positive, got {requested_secs} s")]
    DurationNotPositive { requested_secs: i64 },

    /// Requested duration exceeds the policy maximum. Never silently clamped.
    #[error("duration {requested_secs} s exceeds the maximum of {max_secs} s")]
    DurationOverMax { requested_secs: i64, max_secs: i64 },

    /// The policy's own maximum is not a positive number (a configuration error).
    #[error("maximum duration must be positive, got {max_secs} s")]
    InvalidMaxDuration { max_secs: i64 },

    /// A quorum rule from configuration is not acceptable.
    #[error("invalid quorum: {reason}")]
    InvalidQuorum { reason: &'static str },
}
