//! # paw-policy
//!
//! The rules an auditor reads: the grant state machine, anchored entitlement patterns,
//! duration bounds, and the approval quorum with separation of duties.
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

mod duration;
mod error;
mod grant;
mod pattern;
mod quorum;

pub use duration::{validate_duration, GrantDuration};
pub use error::PolicyError;
pub use grant::{transition, GrantEvent, GrantState};
pub use pattern::Pattern;
pub use quorum::{Approval, IgnoreReason, Ignored, PersonId, Quorum, QuorumOutcome};
