//! Just-in-time elevation: what the broker and the app exchange about entitlements, requests,
//! approvals, grants, break-glass and their reviews. The same types serve HTTP (broker ↔ core)
//! and IPC (core ↔ UI): none of them carries a secret. The one secret of this area, the
//! one-time session ticket, has its own type ([`RedeemResponse`]) that never goes to the UI.
//!
//! Requests, decisions, break-glass and redemptions carry only a step-up answer: the broker
//! takes the action itself from the challenge it stored when the step-up started, so a request
//! changed in transit is a request the key did not sign (case B3).

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use utoipa::ToSchema;

use crate::http::StepUpFinishRequest;

/// An entitlement the caller may request, as the request form shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct EntitlementView {
    pub id: String,
    pub description: String,
    /// `ssh` or `postgres`.
    pub target_kind: String,
    /// The anchored target pattern (or exact name) a request must name a target within.
    pub target: String,
    pub role: String,
    pub max_duration_secs: u32,
    /// The approval rule in words ("needs 2 distinct approvers from dba-leads; …").
    pub rule: String,
    /// True when a step-up alone approves a request.
    pub auto_approve: bool,
    /// When set, a ticket matching this pattern is required.
    pub ticket_pattern: Option<String>,
    /// When set, break-glass is allowed for at most this long.
    pub break_glass_max_secs: Option<u32>,
    /// The command rules its sessions run under; `None`: every command runs.
    pub commands: Option<CommandRulesView>,
}

/// An entitlement's command rules as the request form shows them, so that a requester knows
/// before asking what the session will refuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct CommandRulesView {
    /// What happens to a command no rule matches: `allow`, `warn`, `step_up`, `approve`, `deny`.
    pub default: String,
    /// Whether what cannot be decided (a program from a variable, a script) is held.
    pub strict: bool,
    /// In order: the first that matches decides.
    pub rules: Vec<CommandRuleView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct CommandRuleView {
    /// The match in words: `rm`, `systemctl status *`, `rm with -r -f`.
    pub matches: String,
    pub action: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct EntitlementList {
    pub entitlements: Vec<EntitlementView>,
}

/// One approver's decision on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct DecisionView {
    pub approver: String,
    pub approve: bool,
    pub comment: String,
    #[ts(type = "number")]
    pub at_ms: i64,
}

/// A request and, once decided, the grant it became. `state` is one of paw-policy's grant
/// states: pending, approved, active, expired, revoked, released, denied, cancelled. Times are
/// the broker's clock (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct GrantView {
    pub id: String,
    pub user: String,
    pub entitlement: String,
    pub target_kind: String,
    pub target: String,
    pub role: String,
    pub duration_secs: u32,
    pub justification: String,
    pub ticket: Option<String>,
    pub break_glass: bool,
    pub state: String,
    #[ts(type = "number")]
    pub created_at_ms: i64,
    /// Requested start; `None` means as soon as approved.
    #[ts(type = "number | null")]
    pub start_at_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub starts_at_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub ends_at_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub ended_at_ms: Option<i64>,
    /// Why it ended or was refused, in words (expired, released, "revoked by bob: …").
    pub end_reason: Option<String>,
    pub decisions: Vec<DecisionView>,
    /// The approval rule in words, from the entitlement as it is now.
    pub rule: String,
    /// Approvals still missing while pending.
    pub approvals_missing: u32,
    /// Break-glass only: who closed the review so far, and whether it is closed.
    pub reviewers: Vec<String>,
    pub review_closed: bool,
}

/// A list of grants with the broker's time, so the app counts down from the broker's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct GrantList {
    pub grants: Vec<GrantView>,
    #[ts(type = "number")]
    pub now_ms: i64,
}

/// A pending request in an approver's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct InboxItem {
    pub request: GrantView,
    /// The requester's latest grants (newest first), for context.
    pub requester_recent: Vec<GrantView>,
    /// Separation of duties in words ("needs 2 of dba-leads; the requester cannot approve").
    pub rule: String,
}

/// The approvals inbox: requests the caller may decide, and break-glass uses awaiting review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct Inbox {
    pub requests: Vec<InboxItem>,
    pub reviews: Vec<GrantView>,
    #[ts(type = "number")]
    pub now_ms: i64,
}

/// Body of every step-up-protected elevation call (request, decision, break-glass, redeem).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedElevation {
    pub stepup: StepUpFinishRequest,
}

/// `POST /v1/grants/{id}/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct RevokeGrantRequest {
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub reason: String,
}

/// `POST /v1/reviews/{id}/close`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct CloseReviewRequest {
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub comment: String,
}

/// `POST /v1/grants/{id}/redeem`: a one-time session ticket for an active grant. The ticket is
/// a secret for the workstation core (which opens the session with it); it never reaches the UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RedeemResponse {
    pub session_id: String,
    pub ticket: String,
    pub expires_at_ms: i64,
    /// Where the broker's SSH front door listens (`host:port`); log in as `session_id` with
    /// `ticket` as the password, once. `None` when the broker opens no sessions.
    #[serde(default)]
    pub ssh_addr: Option<String>,
    /// The front door's host key (OpenSSH format), learnt over the broker's TLS: the client
    /// pins it instead of trusting on first use.
    #[serde(default)]
    pub ssh_host_key: Option<String>,
    /// For a database target: the database a local client connects to (not a secret; the
    /// role and password are the broker's).
    #[serde(default)]
    pub database: Option<String>,
}

/// A live update (server-sent event `data`), for the user it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct LiveEvent {
    /// `request_new`, `request_decided`, `grant_started`, `grant_warning`, `grant_ended`,
    /// `break_glass`, `review_closed`, and for held commands `command_held` and
    /// `command_decided` (`state` is the hold's: pending, released, refused, expired).
    pub kind: String,
    pub grant_id: String,
    pub state: String,
    pub message: String,
    #[ts(type = "number")]
    pub at_ms: i64,
}
