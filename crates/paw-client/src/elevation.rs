//! Just-in-time elevation: the workstation side of the broker's elevation API (entitlements,
//! requests, decisions, break-glass, grants, reviews), and the grant countdown of the status bar.
//!
//! Rules:
//! - Requests, decisions and break-glass are step-ups like key management: the core builds the
//!   exact [`Action`] from the user's input, the broker's challenge must match it, the prompt's
//!   words come from the core's copy, and the confirm call posts that copy. The endpoint (and
//!   the request id in it) also comes from the core's copy, never from the UI at confirm time.
//! - Input is checked before any network call and before the user is asked to touch the key,
//!   with errors that name the field. The broker checks everything again and decides; these
//!   checks mirror its hard limits so the user hears about a typo at once. Text is never
//!   trimmed or cleaned: what the user typed is what the key signs.
//! - Text that could make the prompt read differently from what is signed (control characters,
//!   line separators, bidirectional or invisible formatting) is refused.
//! - The countdown uses the broker's clock (`GrantList::now_ms` advanced by the monotonic
//!   clock), never the workstation's wall clock (case B8).
//! - The status poll must not keep an idle session alive (case A15), and `GET /v1/grants` counts
//!   as user activity at the broker: the status bar works from a cache that is refetched only
//!   when something changed (a live event about the user's grants, a missed-events resync, the
//!   user's own elevation calls), at most once per status call.

use std::time::Instant;

use paw_policy::limits::{
    MAX_BREAK_GLASS_DURATION_SECS, MAX_COMMENT_CHARS, MAX_ENTITLEMENT_DURATION_SECS,
    MAX_IDENTIFIER_CHARS, MAX_JUSTIFICATION_CHARS, MAX_TARGET_NAME_CHARS, MAX_TICKET_CHARS,
    MIN_JUSTIFICATION_CHARS,
};
use paw_proto::action::Action;
use paw_proto::elevation::{
    CloseReviewRequest, EntitlementList, GrantList, GrantView, Inbox, LiveEvent,
    RevokeGrantRequest, SignedElevation,
};
use paw_proto::http::StepUpFinishRequest;
use paw_proto::ipc::{
    CloseReviewInput, ElevationAction, GrantSummary, RevokeGrantInput, StepUpPrompt,
};
use reqwest::Method;
use serde_json::json;

use crate::audit::Audit;
use crate::live::RESYNC;
use crate::pending::{PendingKind, PendingOp, PendingStepUp};
use crate::util::encode;
use crate::{ClientError, Core};

/// Longest id (request, grant) accepted in a URL path; the broker's are UUIDs.
const MAX_ID_CHARS: usize = 128;

impl Core {
    /// The entitlements the signed-in user may request.
    pub async fn entitlements(&self) -> Result<EntitlementList, ClientError> {
        self.authed(Method::GET, "/v1/entitlements", None).await
    }

    /// The user's requests and grants, newest first, with the broker's time. Also refreshes
    /// the status bar's countdown.
    pub async fn grants(&self) -> Result<GrantList, ClientError> {
        let epoch = self.grant_cache(|c| c.epoch);
        let list: GrantList = self.authed(Method::GET, "/v1/grants", None).await?;
        let at = Instant::now();
        self.grant_cache(|c| c.store(epoch, list.clone(), at));
        Ok(list)
    }

    /// Requests the user may decide, and break-glass uses awaiting their review.
    pub async fn inbox(&self) -> Result<Inbox, ClientError> {
        self.authed(Method::GET, "/v1/approvals", None).await
    }

    /// Other people's approved or active grants the user may revoke (as an approver of their
    /// entitlement, or an admin), with the broker's time. Not the status bar's cache: none of
    /// these grants is the user's.
    pub async fn oversight(&self) -> Result<GrantList, ClientError> {
        self.authed(Method::GET, "/v1/oversight", None).await
    }

    /// Asks the broker for a step-up for an elevation and returns what the user is about to
    /// sign. The broker refuses here a request or break-glass that its policy would refuse,
    /// so nobody touches their key for nothing; that error is passed on as it is.
    pub async fn prepare_elevation(
        &self,
        action: ElevationAction,
    ) -> Result<StepUpPrompt, ClientError> {
        self.authenticator()?;
        let canonical = canonical_action(&action)?;
        // A decision signs the request's id; the broker holds the request itself, unchangeable
        // (case B3). So that the approver reads what they approve, not an id, the prompt names
        // the stored request as the broker's inbox shows it — and a request that is not waiting
        // for this user is refused before the key is touched.
        let context = match &action {
            ElevationAction::Decide {
                request_id,
                approve,
                ..
            } => {
                let inbox = self.inbox().await?;
                let item = inbox
                    .requests
                    .iter()
                    .find(|i| &i.request.id == request_id)
                    .ok_or_else(|| ClientError::InvalidInput {
                        field: "request_id",
                        reason: "this request is not waiting for your decision".into(),
                    })?;
                Some(decision_words(*approve, &item.request))
            }
            _ => None,
        };
        let mut prompt = self.start_step_up(canonical, PendingOp::Elevation).await?;
        if let Some(words) = context {
            prompt.description = format!("{words} ({})", prompt.description);
        }
        Ok(prompt)
    }

    /// Answers a prepared elevation with the security key and sends it. The prompt is removed
    /// first (single use), and only an elevation prompt is accepted.
    pub async fn confirm_elevation(&self, id: String) -> Result<GrantView, ClientError> {
        let p = self.take_pending(&id, PendingKind::Elevation)?;
        let path = endpoint(&p.action)?;
        let what = match &p.action {
            Action::Request { target, .. } => {
                Audit::for_action("elevation.request", target.clone(), &p.action)
            }
            Action::Approve {
                request_id,
                approve,
                ..
            } => Audit::for_action(
                if *approve {
                    "elevation.approve"
                } else {
                    "elevation.deny"
                },
                request_id.clone(),
                &p.action,
            ),
            Action::BreakGlass { target, .. } => {
                Audit::for_action("break_glass", target.clone(), &p.action)
            }
            other => Audit::for_action("elevation", String::new(), other),
        };
        self.audited(what, self.elevation_audited(&p, &path)).await
    }

    async fn elevation_audited(
        &self,
        p: &PendingStepUp,
        path: &str,
    ) -> Result<GrantView, ClientError> {
        let client = self.client().await?;
        let credential = self.assert(&client, &p.challenge).await?;
        let body = encode(&SignedElevation {
            stepup: StepUpFinishRequest {
                challenge: p.challenge.challenge.clone(),
                action: p.action.clone(),
                credential,
            },
        })?;
        let view: GrantView = self.authed(Method::POST, path, Some(body)).await?;
        tracing::info!(
            purpose = p.action.purpose().as_str(),
            grant = %view.id,
            state = %view.state,
            "elevation sent"
        );
        if !matches!(p.action, Action::Approve { .. }) {
            self.grants_changed();
        }
        Ok(view)
    }

    /// Withdraws one of the user's own pending requests.
    pub async fn cancel_request(&self, id: String) -> Result<GrantView, ClientError> {
        check_id("id", &id)?;
        let what = Audit::new("request.cancel", id.clone(), json!({}));
        let view = self
            .audited(
                what,
                self.authed(Method::POST, &format!("/v1/requests/{id}/cancel"), None),
            )
            .await?;
        self.grants_changed();
        Ok(view)
    }

    /// Ends one of the user's own grants early; its sessions end.
    pub async fn release_grant(&self, id: String) -> Result<GrantView, ClientError> {
        check_id("id", &id)?;
        let what = Audit::new("grant.release", id.clone(), json!({}));
        let view = self
            .audited(
                what,
                self.authed(Method::POST, &format!("/v1/grants/{id}/release"), None),
            )
            .await?;
        self.grants_changed();
        Ok(view)
    }

    /// Ends someone's grant (an approver of its entitlement, or an admin), with a reason.
    pub async fn revoke_grant(&self, input: RevokeGrantInput) -> Result<GrantView, ClientError> {
        check_id("id", &input.id)?;
        check_comment("reason", &input.reason, true)?;
        let what = Audit::new(
            "grant.revoke",
            input.id.clone(),
            json!({"reason": input.reason}),
        );
        let body = encode(&RevokeGrantRequest {
            reason: input.reason,
        })?;
        let view = self
            .audited(
                what,
                self.authed(
                    Method::POST,
                    &format!("/v1/grants/{}/revoke", input.id),
                    Some(body),
                ),
            )
            .await?;
        // It may be the user's own grant.
        self.grants_changed();
        Ok(view)
    }

    /// Signs off a break-glass review with a comment.
    pub async fn close_review(&self, input: CloseReviewInput) -> Result<GrantView, ClientError> {
        check_id("id", &input.id)?;
        check_comment("comment", &input.comment, true)?;
        let what = Audit::new(
            "review.close",
            input.id.clone(),
            json!({"comment": input.comment}),
        );
        let body = encode(&CloseReviewRequest {
            comment: input.comment,
        })?;
        self.audited(
            what,
            self.authed(
                Method::POST,
                &format!("/v1/reviews/{}/close", input.id),
                Some(body),
            ),
        )
        .await
    }

    /// The status bar's grant: the user's active grant with the least time left, by the
    /// broker's clock. Refetches `GET /v1/grants` (once at most) only when the cache is empty
    /// or a change was signalled since the last fetch; see the module doc for why.
    pub(crate) async fn grant_summary(&self) -> Option<GrantSummary> {
        let seen = self.grant_cache(|c| c.seen_seq);
        let (seq, events, lost) = self.inner.live.with_ring(|r| {
            let (seq, events) = r.after(seen);
            (seq, events, r.lost_after(seen))
        });
        let (fetch, epoch) = self.grant_cache(|c| {
            c.note_events(seq, &events, lost);
            (c.needs_fetch(), c.epoch)
        });
        if fetch {
            match self
                .authed::<GrantList>(Method::GET, "/v1/grants", None)
                .await
            {
                Ok(list) => {
                    let at = Instant::now();
                    self.grant_cache(|c| c.store(epoch, list, at));
                }
                // The code only: the countdown is a convenience, the grants page shows errors.
                Err(e) => tracing::debug!(code = %e.code(), "grants for the status bar"),
            }
        }
        self.grant_cache(|c| c.summary(Instant::now()))
    }

    /// Something changed the user's grants: refetch at the next status.
    fn grants_changed(&self) {
        self.grant_cache(|c| c.stale = true);
    }

    pub(crate) fn clear_grant_cache(&self) {
        self.grant_cache(GrantCache::clear);
    }

    fn grant_cache<T>(&self, f: impl FnOnce(&mut GrantCache) -> T) -> T {
        // Every change to the cache is a single step: a poisoned lock still holds usable data.
        let mut g = self
            .inner
            .grants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g)
    }
}

/// The user's grants as last fetched, for the status bar.
#[derive(Debug, Default)]
pub(crate) struct GrantCache {
    /// The list and the monotonic instant it arrived (its `now_ms` was the broker's time then).
    fetched: Option<(GrantList, Instant)>,
    /// A change was signalled since `fetched`.
    stale: bool,
    /// The live events up to this sequence number have been looked at.
    seen_seq: u64,
    /// Bumped when the session ends, so a fetch started before cannot fill the cache after.
    epoch: u64,
}

impl GrantCache {
    fn clear(&mut self) {
        self.fetched = None;
        self.stale = false;
        self.seen_seq = 0;
        self.epoch = self.epoch.wrapping_add(1);
    }

    fn needs_fetch(&self) -> bool {
        self.fetched.is_none() || self.stale
    }

    /// Keeps `list`, fetched at `at`, unless the session ended since the fetch began.
    fn store(&mut self, epoch: u64, list: GrantList, at: Instant) {
        if epoch == self.epoch {
            self.fetched = Some((list, at));
            self.stale = false;
        }
    }

    /// Looks at the live events up to `seq`; `lost` says some were dropped unseen.
    fn note_events(&mut self, seq: u64, events: &[LiveEvent], lost: bool) {
        let known = |id: &str| {
            self.fetched
                .as_ref()
                .is_some_and(|(l, _)| l.grants.iter().any(|g| g.id == id))
        };
        let changed = lost || events.iter().any(|e| concerns_own_grants(e, &known));
        if changed {
            self.stale = true;
        }
        self.seen_seq = seq;
    }

    fn summary(&self, now: Instant) -> Option<GrantSummary> {
        let (list, at) = self.fetched.as_ref()?;
        let elapsed = now.saturating_duration_since(*at).as_millis();
        let broker_now = list
            .now_ms
            .saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX));
        summarize(&list.grants, broker_now)
    }
}

/// Whether a live event may change the user's own grants. Grant events (`grant_started`,
/// `grant_ended`, `request_decided`) go only to the grant's owner, so they count even for a
/// grant the cache does not know (one requested from another workstation). A warning changes
/// nothing the countdown does not already know.
fn concerns_own_grants(e: &LiveEvent, known: &dyn Fn(&str) -> bool) -> bool {
    match e.kind.as_str() {
        "grant_warning" => false,
        RESYNC | "grant_started" | "grant_ended" | "request_decided" => true,
        _ => known(&e.grant_id),
    }
}

/// The active grant with the least time left at broker time `now_ms`. Only the broker's times
/// are compared; the workstation clock plays no part (case B8).
pub(crate) fn summarize(grants: &[GrantView], now_ms: i64) -> Option<GrantSummary> {
    grants
        .iter()
        .filter_map(|g| {
            if !matches!(g.state.as_str(), "active" | "approved") {
                return None;
            }
            // An approved grant becomes active at its start, whether or not the broker's
            // ticker has written that yet (the broker computes it the same way).
            let started = match g.starts_at_ms {
                Some(s) => s <= now_ms,
                None => g.state == "active",
            };
            let remaining = g.ends_at_ms?.saturating_sub(now_ms);
            (started && remaining > 0).then(|| GrantSummary {
                id: g.id.clone(),
                target: g.target.clone(),
                role: g.role.clone(),
                remaining_ms: remaining,
            })
        })
        .min_by_key(|s| s.remaining_ms)
}

/// The exact action the key will sign for `action`, after checking every field.
pub(crate) fn canonical_action(action: &ElevationAction) -> Result<Action, ClientError> {
    Ok(match action {
        ElevationAction::Request {
            entitlement,
            target,
            role,
            duration_secs,
            justification,
            ticket,
            start_at_ms,
        } => {
            check_ident("entitlement", entitlement)?;
            check_target(target)?;
            check_ident("role", role)?;
            check_duration(*duration_secs, MAX_ENTITLEMENT_DURATION_SECS)?;
            check_justification(justification)?;
            if let Some(t) = ticket {
                check_ticket(t)?;
            }
            if start_at_ms.is_some_and(|t| t <= 0) {
                return Err(bad("start_at_ms", "a start time is a positive broker time"));
            }
            Action::Request {
                entitlement: entitlement.clone(),
                target: target.clone(),
                role: role.clone(),
                duration_secs: *duration_secs,
                justification: justification.clone(),
                ticket: ticket.clone(),
                start_at_ms: *start_at_ms,
            }
        }
        ElevationAction::Decide {
            request_id,
            approve,
            comment,
        } => {
            check_id("request_id", request_id)?;
            check_comment("comment", comment, false)?;
            Action::Approve {
                request_id: request_id.clone(),
                approve: *approve,
                comment: comment.clone(),
            }
        }
        ElevationAction::BreakGlass {
            entitlement,
            target,
            role,
            duration_secs,
            justification,
        } => {
            check_ident("entitlement", entitlement)?;
            check_target(target)?;
            check_ident("role", role)?;
            check_duration(*duration_secs, MAX_BREAK_GLASS_DURATION_SECS)?;
            check_justification(justification)?;
            Action::BreakGlass {
                entitlement: entitlement.clone(),
                target: target.clone(),
                role: role.clone(),
                duration_secs: *duration_secs,
                justification: justification.clone(),
            }
        }
    })
}

/// Where a signed elevation goes, from the core's own copy of the action.
fn endpoint(action: &Action) -> Result<String, ClientError> {
    match action {
        Action::Request { .. } => Ok("/v1/requests".into()),
        Action::Approve { request_id, .. } => {
            // Checked at prepare time; checked again because it becomes a URL path.
            check_id("request_id", request_id)?;
            Ok(format!("/v1/requests/{request_id}/decide"))
        }
        Action::BreakGlass { .. } => Ok("/v1/breakglass".into()),
        _ => Err(ClientError::Internal(
            "an elevation prompt holds a non-elevation action".into(),
        )),
    }
}

fn bad(field: &'static str, reason: impl Into<String>) -> ClientError {
    ClientError::InvalidInput {
        field,
        reason: reason.into(),
    }
}

/// A request or grant id: it goes into a URL path, so only the characters ids are made of.
pub(crate) fn check_id(field: &'static str, id: &str) -> Result<(), ClientError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(bad(field, "not a valid id"))
    }
}

/// Entitlement ids and roles: short ASCII identifiers (the broker's grammar is stricter).
fn check_ident(field: &'static str, v: &str) -> Result<(), ClientError> {
    let ok = !v.is_empty()
        && v.len() <= MAX_IDENTIFIER_CHARS
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(bad(
            field,
            format!("1–{MAX_IDENTIFIER_CHARS} letters, digits, '-' or '_'"),
        ))
    }
}

fn check_target(target: &str) -> Result<(), ClientError> {
    if target.is_empty() || target.chars().count() > MAX_TARGET_NAME_CHARS {
        return Err(bad(
            "target",
            format!("a target name is 1–{MAX_TARGET_NAME_CHARS} characters"),
        ));
    }
    if target.chars().any(|c| c.is_whitespace() || misleading(c)) {
        return Err(bad(
            "target",
            "a target name has no spaces or invisible characters",
        ));
    }
    Ok(())
}

fn check_duration(secs: u32, max: i64) -> Result<(), ClientError> {
    if secs == 0 || i64::from(secs) > max {
        return Err(bad(
            "duration_secs",
            format!("a duration is 1 s to {} h", max / 3600),
        ));
    }
    Ok(())
}

fn check_justification(j: &str) -> Result<(), ClientError> {
    let n = j.chars().count();
    if j.trim().is_empty() || !(MIN_JUSTIFICATION_CHARS..=MAX_JUSTIFICATION_CHARS).contains(&n) {
        return Err(bad(
            "justification",
            format!(
                "a justification is {MIN_JUSTIFICATION_CHARS}–{MAX_JUSTIFICATION_CHARS} characters"
            ),
        ));
    }
    check_one_line("justification", j)?;
    // Never trimmed (the signed text must be the stored text), so refused instead.
    if j.starts_with(char::is_whitespace) || j.ends_with(char::is_whitespace) {
        return Err(bad(
            "justification",
            "a justification does not start or end with a space",
        ));
    }
    Ok(())
}

fn check_ticket(t: &str) -> Result<(), ClientError> {
    if t.is_empty()
        || t.chars().count() > MAX_TICKET_CHARS
        || t.chars().any(|c| c.is_whitespace() || misleading(c))
    {
        return Err(bad(
            "ticket",
            format!("a ticket is 1–{MAX_TICKET_CHARS} characters without spaces"),
        ));
    }
    Ok(())
}

/// Comments, reasons and review notes: one line, at most [`MAX_COMMENT_CHARS`]; `required`
/// ones must say something.
pub(crate) fn check_comment(
    field: &'static str,
    c: &str,
    required: bool,
) -> Result<(), ClientError> {
    if required && c.trim().is_empty() {
        return Err(bad(field, "required"));
    }
    if c.chars().count() > MAX_COMMENT_CHARS {
        return Err(bad(
            field,
            format!("at most {MAX_COMMENT_CHARS} characters"),
        ));
    }
    check_one_line(field, c)
}

fn check_one_line(field: &'static str, s: &str) -> Result<(), ClientError> {
    if s.chars().any(misleading) {
        return Err(bad(
            field,
            "one line of visible text: no line breaks, control or invisible formatting characters",
        ));
    }
    Ok(())
}

/// Characters that make text read differently from what it is: control characters (a newline
/// forging a second line), line separators, bidirectional overrides and zero-width characters.
pub(crate) fn misleading(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{2028}' | '\u{2029}'
            | '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}')
}

/// "Approve bob's request: dba on db-7 for 10 min, because …" — what a decision is about.
fn decision_words(approve: bool, g: &paw_proto::elevation::GrantView) -> String {
    let minutes = g.duration_secs.div_ceil(60);
    let ticket = g
        .ticket
        .as_deref()
        .map(|t| format!(", ticket {t}"))
        .unwrap_or_default();
    format!(
        "{} {}'s request: {} on {} for {minutes} min{ticket}, because \u{201c}{}\u{201d}",
        if approve { "Approve" } else { "Deny" },
        g.user,
        g.role,
        g.target,
        g.justification
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use paw_proto::action::Purpose;

    use super::*;

    fn request() -> ElevationAction {
        ElevationAction::Request {
            entitlement: "prod-db-admin".into(),
            target: "db-prod-1".into(),
            role: "dba".into(),
            duration_secs: 3600,
            justification: "INC-42 vacuum the orders table".into(),
            ticket: Some("INC-42".into()),
            start_at_ms: None,
        }
    }

    fn break_glass() -> ElevationAction {
        ElevationAction::BreakGlass {
            entitlement: "prod-db-admin".into(),
            target: "db-prod-1".into(),
            role: "dba".into(),
            duration_secs: 1800,
            justification: "outage: primary is down".into(),
        }
    }

    fn decide(request_id: &str, comment: &str) -> ElevationAction {
        ElevationAction::Decide {
            request_id: request_id.into(),
            approve: false,
            comment: comment.into(),
        }
    }

    fn field_of(r: Result<Action, ClientError>) -> &'static str {
        match r {
            Err(ClientError::InvalidInput { field, .. }) => field,
            other => panic!("expected invalid input, got {other:?}"),
        }
    }

    #[test]
    fn each_elevation_becomes_its_exact_action() {
        let a = canonical_action(&request()).unwrap();
        assert_eq!(a.purpose(), Purpose::Request);
        assert_eq!(
            a,
            Action::Request {
                entitlement: "prod-db-admin".into(),
                target: "db-prod-1".into(),
                role: "dba".into(),
                duration_secs: 3600,
                justification: "INC-42 vacuum the orders table".into(),
                ticket: Some("INC-42".into()),
                start_at_ms: None,
            }
        );
        assert_eq!(endpoint(&a).unwrap(), "/v1/requests");

        let a = canonical_action(&decide("3f2a-77_b", "not during the freeze")).unwrap();
        assert_eq!(
            a,
            Action::Approve {
                request_id: "3f2a-77_b".into(),
                approve: false,
                comment: "not during the freeze".into(),
            }
        );
        assert_eq!(endpoint(&a).unwrap(), "/v1/requests/3f2a-77_b/decide");

        let a = canonical_action(&break_glass()).unwrap();
        assert_eq!(a.purpose(), Purpose::BreakGlass);
        assert_eq!(endpoint(&a).unwrap(), "/v1/breakglass");

        let key = Action::KeyManagement {
            operation: "add".into(),
            credential: "k".into(),
        };
        assert!(matches!(endpoint(&key), Err(ClientError::Internal(_))));
    }

    #[test]
    fn request_fields_are_checked_before_the_network() {
        type Edit = fn(&mut ElevationAction);
        let cases: Vec<(&str, Edit)> = vec![
            ("entitlement", |a| {
                if let ElevationAction::Request { entitlement, .. } = a {
                    entitlement.clear()
                }
            }),
            ("entitlement", |a| {
                if let ElevationAction::Request { entitlement, .. } = a {
                    *entitlement = "../admin".into()
                }
            }),
            ("target", |a| {
                if let ElevationAction::Request { target, .. } = a {
                    *target = "db prod".into()
                }
            }),
            ("target", |a| {
                if let ElevationAction::Request { target, .. } = a {
                    *target = "db-\u{202E}dorp".into()
                }
            }),
            ("target", |a| {
                if let ElevationAction::Request { target, .. } = a {
                    *target = "x".repeat(254)
                }
            }),
            ("role", |a| {
                if let ElevationAction::Request { role, .. } = a {
                    *role = "db a".into()
                }
            }),
            ("duration_secs", |a| {
                if let ElevationAction::Request { duration_secs, .. } = a {
                    *duration_secs = 0
                }
            }),
            ("duration_secs", |a| {
                if let ElevationAction::Request { duration_secs, .. } = a {
                    *duration_secs = 24 * 3600 + 1
                }
            }),
            ("justification", |a| {
                if let ElevationAction::Request { justification, .. } = a {
                    *justification = "too short".into()
                }
            }),
            ("justification", |a| {
                if let ElevationAction::Request { justification, .. } = a {
                    *justification = "x".repeat(2001)
                }
            }),
            ("justification", |a| {
                if let ElevationAction::Request { justification, .. } = a {
                    *justification = "first line\nApproved by the CISO".into()
                }
            }),
            ("justification", |a| {
                if let ElevationAction::Request { justification, .. } = a {
                    *justification = " padded justification".into()
                }
            }),
            ("justification", |a| {
                if let ElevationAction::Request { justification, .. } = a {
                    *justification = "          ".into()
                }
            }),
            ("ticket", |a| {
                if let ElevationAction::Request { ticket, .. } = a {
                    *ticket = Some(String::new())
                }
            }),
            ("ticket", |a| {
                if let ElevationAction::Request { ticket, .. } = a {
                    *ticket = Some("INC 42".into())
                }
            }),
            ("ticket", |a| {
                if let ElevationAction::Request { ticket, .. } = a {
                    *ticket = Some("T".repeat(65))
                }
            }),
            ("start_at_ms", |a| {
                if let ElevationAction::Request { start_at_ms, .. } = a {
                    *start_at_ms = Some(-1)
                }
            }),
        ];
        for (want, edit) in cases {
            let mut a = request();
            edit(&mut a);
            assert_eq!(field_of(canonical_action(&a)), want, "{a:?}");
        }
        // Limits themselves are fine, and an absent ticket is.
        let mut a = request();
        if let ElevationAction::Request {
            justification,
            ticket,
            duration_secs,
            start_at_ms,
            ..
        } = &mut a
        {
            *justification = "日".repeat(2000);
            *ticket = None;
            *duration_secs = 24 * 3600;
            *start_at_ms = Some(1_700_000_000_000);
        }
        canonical_action(&a).unwrap();
    }

    #[test]
    fn break_glass_is_capped_at_four_hours() {
        let mut a = break_glass();
        if let ElevationAction::BreakGlass { duration_secs, .. } = &mut a {
            *duration_secs = 4 * 3600;
        }
        canonical_action(&a).unwrap();
        if let ElevationAction::BreakGlass { duration_secs, .. } = &mut a {
            *duration_secs = 4 * 3600 + 1;
        }
        assert_eq!(field_of(canonical_action(&a)), "duration_secs");
        let mut a = break_glass();
        if let ElevationAction::BreakGlass { justification, .. } = &mut a {
            justification.clear();
        }
        assert_eq!(field_of(canonical_action(&a)), "justification");
    }

    #[test]
    fn decisions_need_a_path_safe_id_and_a_bounded_one_line_comment() {
        canonical_action(&decide("r1", "")).unwrap();
        canonical_action(&decide("r1", &"é".repeat(1000))).unwrap();
        for id in ["", "../r1", "r1/decide", "r1?x", "r 1", &"r".repeat(129)] {
            assert_eq!(
                field_of(canonical_action(&decide(id, ""))),
                "request_id",
                "{id:?}"
            );
        }
        for c in [
            "x".repeat(1001),
            "ok\r\nforged".into(),
            "zero\u{200B}width".into(),
        ] {
            assert_eq!(
                field_of(canonical_action(&decide("r1", &c))),
                "comment",
                "{c:?}"
            );
        }
    }

    #[test]
    fn ids_reasons_and_review_comments_are_checked() {
        check_id("id", "0b6c6a4e-3c2f-4d6b-9a56-1f0f2f6f9e11").unwrap();
        assert!(check_id("id", "a/b").is_err());
        assert!(check_id("id", "").is_err());
        check_comment("reason", "left the company", true).unwrap();
        for bad in ["", "   ", "two\nlines"] {
            let e = check_comment("reason", bad, true).unwrap_err();
            assert!(
                matches!(
                    e,
                    ClientError::InvalidInput {
                        field: "reason",
                        ..
                    }
                ),
                "{bad:?}"
            );
        }
        assert!(check_comment("comment", &"c".repeat(1001), true).is_err());
    }

    fn grant(id: &str, state: &str, starts: Option<i64>, ends: Option<i64>) -> GrantView {
        GrantView {
            id: id.into(),
            user: "alice".into(),
            entitlement: "e".into(),
            target_kind: "ssh".into(),
            target: format!("host-{id}"),
            role: "ops".into(),
            duration_secs: 3600,
            justification: "j".into(),
            ticket: None,
            break_glass: false,
            state: state.into(),
            created_at_ms: 0,
            start_at_ms: None,
            starts_at_ms: starts,
            ends_at_ms: ends,
            ended_at_ms: None,
            end_reason: None,
            decisions: vec![],
            rule: String::new(),
            approvals_missing: 0,
            reviewers: vec![],
            review_closed: false,
        }
    }

    fn local_wall_ms() -> i64 {
        crate::clock::local_wall_ms()
    }

    #[test]
    fn b8_grant_countdown_uses_the_broker_clock_whatever_the_workstation_says() {
        const DAY: i64 = 24 * 3600 * 1000;
        for skew in [-DAY, DAY] {
            // The broker's clock is a day away from this workstation's.
            let broker_now = local_wall_ms() + skew;
            let grants = vec![
                // By the workstation clock this one ended (or has not started) a day ago.
                grant(
                    "soon",
                    "active",
                    Some(broker_now - 60_000),
                    Some(broker_now + 120_000),
                ),
                grant(
                    "later",
                    "active",
                    Some(broker_now - 60_000),
                    Some(broker_now + 3_600_000),
                ),
                // Ended by the broker's clock though the stored state says active.
                grant(
                    "over",
                    "active",
                    Some(broker_now - 7_200_000),
                    Some(broker_now - 1),
                ),
                // Approved, starts in an hour by the broker's clock.
                grant(
                    "scheduled",
                    "approved",
                    Some(broker_now + 3_600_000),
                    Some(broker_now + 3_660_000),
                ),
                // Approved and its start passed: active for the broker.
                grant(
                    "started",
                    "approved",
                    Some(broker_now - 1_000),
                    Some(broker_now + 600_000),
                ),
                grant("pending", "pending", None, None),
                grant(
                    "revoked",
                    "revoked",
                    Some(broker_now - 1_000),
                    Some(broker_now + 10_000),
                ),
            ];
            let s = summarize(&grants, broker_now).unwrap();
            assert_eq!(s.id, "soon", "skew {skew}");
            assert_eq!(s.remaining_ms, 120_000);
            assert_eq!(s.target, "host-soon");

            // Through the cache: `now_ms` of the list plus monotonic time since it arrived.
            let mut c = GrantCache::default();
            let at = Instant::now();
            c.store(
                c.epoch,
                GrantList {
                    grants: grants.clone(),
                    now_ms: broker_now,
                },
                at,
            );
            let s = c.summary(at + Duration::from_secs(20)).unwrap();
            assert_eq!((s.id.as_str(), s.remaining_ms), ("soon", 100_000));
            // Past its end by the broker's clock: the next one takes over.
            let s = c.summary(at + Duration::from_secs(121)).unwrap();
            assert_eq!(s.id, "started");
            // The scheduled one started at its time by the broker's clock.
            let s = c.summary(at + Duration::from_secs(3_600)).unwrap();
            assert_eq!((s.id.as_str(), s.remaining_ms), ("scheduled", 60_000));
            assert!(c.summary(at + Duration::from_secs(3_660)).is_none());
        }
        assert!(summarize(&[], 0).is_none());
    }

    fn live(kind: &str, grant_id: &str) -> LiveEvent {
        LiveEvent {
            kind: kind.into(),
            grant_id: grant_id.into(),
            state: String::new(),
            message: String::new(),
            at_ms: 0,
        }
    }

    #[test]
    fn the_status_cache_refetches_only_when_something_changed() {
        let mut c = GrantCache::default();
        assert!(c.needs_fetch(), "nothing fetched yet");
        let epoch = c.epoch;
        c.store(
            epoch,
            GrantList {
                grants: vec![grant("g1", "pending", None, None)],
                now_ms: 0,
            },
            Instant::now(),
        );
        assert!(!c.needs_fetch());
        // Someone else's request in an approver's inbox, or a warning: no refetch.
        c.note_events(
            2,
            &[live("request_new", "other"), live("grant_warning", "g1")],
            false,
        );
        assert!(!c.needs_fetch());
        assert_eq!(c.seen_seq, 2);
        // About a known grant, an owner-only event, a resync, or lost events: refetch.
        for (ev, lost) in [
            (live("break_glass", "g1"), false),
            (live("grant_started", "elsewhere"), false),
            (live(RESYNC, ""), false),
            (live("request_new", "other"), true),
        ] {
            c.stale = false;
            c.note_events(3, std::slice::from_ref(&ev), lost);
            assert!(c.needs_fetch(), "{ev:?} lost={lost}");
        }
        // A fetch begun before the session ended does not fill the cache after it.
        c.clear();
        c.store(
            epoch,
            GrantList {
                grants: vec![],
                now_ms: 0,
            },
            Instant::now(),
        );
        assert!(c.fetched.is_none());
        assert_eq!(c.seen_seq, 0);
    }
}
