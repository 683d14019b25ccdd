use crate::entitlement::TargetKind;
use crate::grant::{GrantEvent, GrantState};
use crate::Pattern;

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

    /// An entitlement from configuration is not acceptable. Names the field, never its value.
    #[error("invalid entitlement: {field} {reason}")]
    InvalidEntitlement {
        field: &'static str,
        reason: &'static str,
    },

    /// An entitlement's `commands` rules are not acceptable (the message names the rule and
    /// field, e.g. `commands.rules[1].program is empty`).
    #[error("invalid entitlement: {0}")]
    InvalidCommands(String),

    /// An entitlement's `files` rules are not acceptable (the message names the field, e.g.
    /// `files.rules[0].path: must be absolute`).
    #[error("invalid entitlement: {0}")]
    InvalidFiles(String),

    /// A person id is empty or holds control characters; nobody is treated as "the same
    /// nobody" for separation of duties.
    #[error("a person id must be non-empty and free of control characters")]
    InvalidPersonId,

    /// The requester is in none of the groups the entitlement lets request it.
    #[error("the requester is in none of the groups allowed to request this entitlement")]
    NotARequester,

    /// An SSH entitlement used for a PostgreSQL target, or the other way round.
    #[error("this entitlement is for {expected} targets, not {got}")]
    TargetKindMismatch {
        expected: TargetKind,
        got: TargetKind,
    },

    /// The target name is not admitted by the entitlement's anchored pattern (case B4).
    /// The name is not echoed: it is request input.
    #[error("the target is not covered by this entitlement")]
    TargetNotAllowed,

    /// The requested role is not exactly the entitlement's role (case B4).
    #[error("the role is not the one this entitlement grants")]
    RoleNotAllowed,

    /// Break-glass was asked for on an entitlement that does not allow it.
    #[error("this entitlement does not allow break-glass")]
    BreakGlassNotAllowed,

    /// The justification's content is refused (empty, control or invisible characters,
    /// surrounding whitespace). Not echoed.
    #[error("justification {reason}")]
    InvalidJustification { reason: &'static str },

    #[error("justification has {chars} characters; at least {min} are required")]
    JustificationTooShort { chars: usize, min: usize },

    #[error("justification has {chars} characters; at most {max} are allowed")]
    JustificationTooLong { chars: usize, max: usize },

    /// The entitlement requires a ticket and none was given.
    #[error("this entitlement requires a ticket")]
    TicketRequired,

    /// The ticket is well-formed but not of the required form. The pattern is echoed (it is
    /// checked configuration, so it holds no control characters); the ticket is not.
    #[error("the ticket does not match the required form {expected}")]
    TicketMismatch { expected: Pattern },

    /// The ticket text itself is refused. Not echoed.
    #[error("invalid ticket: {reason}")]
    InvalidTicket { reason: &'static str },

    /// Auto-approved entitlements have no approvers, so nobody may approve (or pre-approve) one.
    #[error("this entitlement is approved automatically; nobody approves its requests")]
    NoApprovers,

    /// Separation of duties (case B1): nobody approves their own request.
    #[error("the requester cannot approve their own request")]
    SelfApproval,

    /// The approver is in none of the entitlement's approver groups.
    #[error("the approver is in none of the approver groups of this entitlement")]
    ApproverNotInGroup,

    /// Separation of duties (case B1): whoever broke the glass does not review that use.
    #[error("the person who used break-glass cannot review that use")]
    SelfReview,
}
