//! # paw-policy
//!
//! The rules an auditor reads: entitlements and the checks on an elevation request, the grant
//! state machine, anchored entitlement patterns, duration bounds, the approval quorum with
//! separation of duties, and the review that follows a break-glass use. [`limits`] holds every
//! length, duration and count that the broker, the workstation core and the UI all enforce.
//!
//! Rules this crate keeps:
//! - **Pure.** No I/O, no clock, no randomness, no async. Time is an argument. Everything here
//!   is a function of its inputs, so every rule can be tested exhaustively and read in one place.
//!   It depends on no I/O crate (no tokio, sqlx, reqwest, axum, tauri).
//! - **Deny by default, never repair.** Invalid input is rejected with a [`PolicyError`], never
//!   clamped, trimmed or guessed at: a duration over the maximum is an error, not the maximum;
//!   a pattern with a stray space is an error, not a trimmed pattern.
//! - **Explicit tables.** The grant state machine is one `match` listing every allowed
//!   transition; anything not listed is refused, and terminal states accept nothing.
//! - **People, not accounts.** A quorum counts distinct [`PersonId`]s. Mapping accounts (and
//!   second accounts) to the one person behind them is the caller's job and must happen before
//!   [`Quorum::evaluate`] is called.
//! - **Nothing echoed.** Errors name the rule that failed, never the request text that failed
//!   it: that text may hold control characters meant for a log or a terminal.

mod duration;
mod entitlement;
mod error;
mod grant;
pub mod limits;
mod pattern;
mod quorum;
mod request;
mod review;
mod text;
mod window;

pub use duration::{validate_duration, GrantDuration};
pub use entitlement::{
    ApprovalConfig, ApprovalRule, BreakGlassConfig, BreakGlassRule, CommandControl, Entitlement,
    EntitlementConfig, TargetKind, VaultUse,
};
pub use error::PolicyError;
pub use grant::{transition, GrantEvent, GrantState};
// The limits are also re-exported at the root, where callers found them before `limits` existed.
pub use limits::{
    Limits, BREAK_GLASS_REVIEWERS, LIMITS, MAX_BREAK_GLASS_DURATION_SECS, MAX_DESCRIPTION_CHARS,
    MAX_ENTITLEMENT_DURATION_SECS, MAX_JUSTIFICATION_CHARS, MAX_SESSIONS_PER_GRANT,
    MAX_TARGET_NAME_CHARS, MAX_TICKET_CHARS, MIN_JUSTIFICATION_CHARS,
};
pub use pattern::Pattern;
pub use quorum::{Approval, IgnoreReason, Ignored, PersonId, Quorum, QuorumOutcome};
pub use request::{check_request, may_approve, NextStep, RequestInput, RequestPlan};
pub use review::{may_review, review_closed};
pub use window::{AutoWindow, AutoWindowConfig};
