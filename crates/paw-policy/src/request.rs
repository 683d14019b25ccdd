//! The rules for one elevation request against one entitlement, and for who may approve it.
//!
//! [`check_request`] is the whole gate between "someone asked" and "a grant is pending": every
//! rule is checked, in a fixed order, and the first failure is the answer. Nothing is adjusted
//! to fit: an over-long duration, a justification with a trailing space or a ticket of the
//! wrong form is refused, so what approvers see is exactly what was asked for (case B3).
//!
//! The requester's groups are checked first, so someone who may not request an entitlement
//! learns nothing else about it from the error they get.

use serde::Serialize;

use crate::entitlement::{ApprovalRule, Entitlement, TargetKind};
use crate::limits::{
    MAX_BREAK_GLASS_DURATION_SECS, MAX_JUSTIFICATION_CHARS, MAX_TARGET_NAME_CHARS,
    MAX_TICKET_CHARS, MIN_JUSTIFICATION_CHARS,
};
use crate::text::{check_free_text, check_token};
use crate::{validate_duration, GrantDuration, PersonId, PolicyError, Quorum};

/// One elevation request, as the broker has stored it (never as the client re-sent it), with
/// the requester's groups looked up fresh at check time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInput {
    /// The person behind the requesting account (accounts already resolved to people).
    pub requester: PersonId,
    pub requester_groups: Vec<String>,
    /// The kind of the named target, from the broker's target inventory.
    pub target_kind: TargetKind,
    pub target: String,
    pub role: String,
    /// Signed so a negative value from a DTO reaches the check instead of wrapping.
    pub duration_secs: i64,
    pub justification: String,
    pub ticket: Option<String>,
    pub break_glass: bool,
    /// When the grant would start (the requested start, else now; Unix ms, the broker's
    /// clock): what an entitlement's `auto_window` is checked against.
    pub starts_at_ms: i64,
}

/// What happens to a request that passed [`check_request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NextStep {
    /// Approved once the requester completes the request's security-key step-up.
    AutoApprove,
    /// Pending until this quorum is met; the requester never counts.
    NeedsApproval(Quorum),
    /// Pending until the requesting machine's owner or backup owner approves.
    NeedsOwner,
    /// Active without approval after the requester's break-glass step-up. The broker writes a
    /// high-severity audit event before access, notifies every admin, and opens a review that
    /// two other people must close ([`crate::review_closed`]).
    BreakGlass { max_duration: GrantDuration },
}

/// The outcome of a request that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestPlan {
    pub next: NextStep,
    /// The requested duration, checked against the applicable maximum; never adjusted.
    pub duration: GrantDuration,
}

/// Checks a request against an entitlement; see the module doc for the order.
pub fn check_request(
    entitlement: &Entitlement,
    input: &RequestInput,
) -> Result<RequestPlan, PolicyError> {
    if !input.requester.is_well_formed() {
        return Err(PolicyError::InvalidPersonId);
    }
    if !entitlement.is_requester(&input.requester_groups) {
        return Err(PolicyError::NotARequester);
    }
    if input.target_kind != entitlement.target_kind() {
        return Err(PolicyError::TargetKindMismatch {
            expected: entitlement.target_kind(),
            got: input.target_kind,
        });
    }
    // Case B4: the pattern is anchored at both ends and `*` stays inside one label, so
    // `db-prod-*` admits `db-prod-1` but never `db-prod-1.evil.example` or `xdb-prod-1`.
    if input.target.chars().count() > MAX_TARGET_NAME_CHARS
        || !entitlement.target().matches(&input.target)
    {
        return Err(PolicyError::TargetNotAllowed);
    }
    // Exact, case-sensitive: a role is an identity on the target, not a pattern.
    if input.role != entitlement.role() {
        return Err(PolicyError::RoleNotAllowed);
    }

    let break_glass = if input.break_glass {
        Some(
            entitlement
                .break_glass()
                .ok_or(PolicyError::BreakGlassNotAllowed)?,
        )
    } else {
        None
    };
    let max_secs = match break_glass {
        Some(rule) => rule.max_duration_secs(),
        None => entitlement.max_duration_secs(),
    };
    let duration = validate_duration(input.duration_secs, max_secs)?;

    check_justification(&input.justification)?;
    // Break-glass is for when there is no time to open a ticket: a required ticket is waived
    // (a given one is still checked). The justification, the loud audit record and the
    // two-person review stand in for it.
    check_ticket(entitlement, input.ticket.as_deref(), break_glass.is_none())?;

    let next = match (break_glass, entitlement.approval()) {
        (Some(rule), _) => NextStep::BreakGlass {
            // Cannot fail for a checked entitlement; re-checked rather than assumed.
            max_duration: validate_duration(
                rule.max_duration_secs(),
                MAX_BREAK_GLASS_DURATION_SECS,
            )?,
        },
        (None, ApprovalRule::Auto) => NextStep::AutoApprove,
        (None, ApprovalRule::Quorum(_))
            if entitlement
                .auto_window()
                .is_some_and(|w| w.contains(input.starts_at_ms)) =>
        {
            NextStep::AutoApprove
        }
        (None, ApprovalRule::Quorum(quorum)) => NextStep::NeedsApproval(quorum.clone()),
        (None, ApprovalRule::Owner)
            if entitlement
                .auto_window()
                .is_some_and(|w| w.contains(input.starts_at_ms)) =>
        {
            NextStep::AutoApprove
        }
        (None, ApprovalRule::Owner) => NextStep::NeedsOwner,
    };
    Ok(RequestPlan { next, duration })
}

/// Required, one line, nothing invisible, never trimmed, 10 to 2000 characters (Unicode scalar
/// values, so a reason in any script gets the same room).
fn check_justification(justification: &str) -> Result<(), PolicyError> {
    check_free_text(justification)
        .map_err(|reason| PolicyError::InvalidJustification { reason })?;
    let chars = justification.chars().count();
    if chars < MIN_JUSTIFICATION_CHARS {
        return Err(PolicyError::JustificationTooShort {
            chars,
            min: MIN_JUSTIFICATION_CHARS,
        });
    }
    if chars > MAX_JUSTIFICATION_CHARS {
        return Err(PolicyError::JustificationTooLong {
            chars,
            max: MAX_JUSTIFICATION_CHARS,
        });
    }
    Ok(())
}

/// A given ticket is always checked as a token, required or not, because it is shown to
/// approvers either way. A required one must also match the entitlement's anchored pattern.
fn check_ticket(
    entitlement: &Entitlement,
    ticket: Option<&str>,
    required_if_configured: bool,
) -> Result<(), PolicyError> {
    let Some(ticket) = ticket else {
        return match entitlement.ticket() {
            Some(_) if required_if_configured => Err(PolicyError::TicketRequired),
            _ => Ok(()),
        };
    };
    check_token(ticket).map_err(|reason| PolicyError::InvalidTicket { reason })?;
    if ticket.chars().count() > MAX_TICKET_CHARS {
        return Err(PolicyError::InvalidTicket {
            reason: "is longer than 64 characters",
        });
    }
    match entitlement.ticket() {
        Some(pattern) if !pattern.matches(ticket) => Err(PolicyError::TicketMismatch {
            expected: pattern.clone(),
        }),
        _ => Ok(()),
    }
}

/// Whether `approver` may approve `requester`'s request for `entitlement` (case B1).
///
/// Checked when an approval is submitted, so a refused approver is told at once; the quorum
/// evaluation ([`Quorum::evaluate`]) applies the same rules again when counting. Groups are
/// the approver's groups now, looked up fresh by the caller.
pub fn may_approve(
    entitlement: &Entitlement,
    approver: &PersonId,
    approver_groups: &[String],
    requester: &PersonId,
) -> Result<(), PolicyError> {
    let ApprovalRule::Quorum(quorum) = entitlement.approval() else {
        return Err(PolicyError::NoApprovers);
    };
    if !approver.is_well_formed() || !requester.is_well_formed() {
        return Err(PolicyError::InvalidPersonId);
    }
    // Before the group check: being an approver for everyone else does not make one an
    // approver for oneself.
    if approver == requester {
        return Err(PolicyError::SelfApproval);
    }
    if !approver_groups.iter().any(|g| quorum.groups().contains(g)) {
        return Err(PolicyError::ApproverNotInGroup);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Approval, ApprovalConfig, BreakGlassConfig, EntitlementConfig, Pattern, TargetKind,
    };

    fn groups(gs: &[&str]) -> Vec<String> {
        gs.iter().map(|g| g.to_string()).collect()
    }

    /// Postgres `db-prod-*` as `readonly`, 1 h, requested by dba or sre, two approvers from
    /// dba-leads or sre-leads, ticket `INC-*` required, break-glass up to 30 min.
    fn guarded_config() -> EntitlementConfig {
        EntitlementConfig {
            id: "db-prod-readonly".into(),
            description: "Read-only access to the production databases".into(),
            target_kind: TargetKind::Postgres,
            target: Pattern::parse("db-prod-*").unwrap(),
            role: "readonly".into(),
            max_duration_secs: 3600,
            requesters: groups(&["dba", "sre"]),
            approval: ApprovalConfig::Quorum {
                required: 2,
                groups: groups(&["dba-leads", "sre-leads"]),
            },
            ticket: Some(Pattern::parse("INC-*").unwrap()),
            break_glass: Some(BreakGlassConfig {
                max_duration_secs: 1800,
            }),
            max_sessions: 1,
            commands: None,
            files: None,
            machine_pty: false,
            auto_window: None,
            vault: vec![],
        }
    }

    fn guarded() -> Entitlement {
        Entitlement::new(guarded_config()).unwrap()
    }

    /// SSH `web-1.corp.example` as `root`, 15 min, requested by sre, auto-approved, no ticket,
    /// no break-glass.
    fn auto() -> Entitlement {
        Entitlement::new(EntitlementConfig {
            id: "web-1-root".into(),
            description: "Root on web-1".into(),
            target_kind: TargetKind::Ssh,
            target: Pattern::parse("web-1.corp.example").unwrap(),
            role: "root".into(),
            max_duration_secs: 900,
            requesters: groups(&["sre"]),
            approval: ApprovalConfig::Auto,
            ticket: None,
            break_glass: None,
            max_sessions: 1,
            commands: None,
            files: None,
            machine_pty: false,
            auto_window: None,
            vault: vec![],
        })
        .unwrap()
    }

    /// A request that passes [`guarded`].
    fn request() -> RequestInput {
        RequestInput {
            requester: PersonId::new("alice"),
            requester_groups: groups(&["dba"]),
            target_kind: TargetKind::Postgres,
            target: "db-prod-1".into(),
            role: "readonly".into(),
            duration_secs: 3600,
            justification: "INC-42 vacuum the orders table".into(),
            ticket: Some("INC-42".into()),
            break_glass: false,
            starts_at_ms: 0,
        }
    }

    /// A request that passes [`auto`].
    fn auto_request() -> RequestInput {
        RequestInput {
            requester: PersonId::new("alice"),
            requester_groups: groups(&["sre"]),
            target_kind: TargetKind::Ssh,
            target: "web-1.corp.example".into(),
            role: "root".into(),
            duration_secs: 900,
            justification: "restart the stuck nginx worker".into(),
            ticket: None,
            break_glass: false,
            starts_at_ms: 0,
        }
    }

    fn check(e: &Entitlement, edit: impl FnOnce(&mut RequestInput)) -> Result<u64, PolicyError> {
        let mut input = if e.approval() == &ApprovalRule::Auto {
            auto_request()
        } else {
            request()
        };
        edit(&mut input);
        check_request(e, &input).map(|plan| plan.duration.secs())
    }

    fn quorum() -> Quorum {
        Quorum::new(2, groups(&["dba-leads", "sre-leads"])).unwrap()
    }

    // ---- outcomes -------------------------------------------------------------------------

    #[test]
    fn inside_its_auto_window_a_request_is_approved_outside_the_approvers_decide() {
        let mut c = guarded_config();
        c.auto_window = Some(crate::AutoWindowConfig {
            days: vec!["mon".into()],
            from: "01:00".into(),
            to: "05:00".into(),
        });
        let e = Entitlement::new(c).unwrap();
        // 2026-12-07 was a Monday.
        let monday = 1_796_601_600_000_i64;
        let mut r = request();
        r.starts_at_ms = monday + 2 * 3_600_000;
        assert_eq!(check_request(&e, &r).unwrap().next, NextStep::AutoApprove);
        r.starts_at_ms = monday + 6 * 3_600_000;
        assert!(matches!(
            check_request(&e, &r).unwrap().next,
            NextStep::NeedsApproval(_)
        ));
        assert!(
            e.describe_rule().contains("within mon 01:00–05:00 UTC"),
            "{}",
            e.describe_rule()
        );
        // The window never widens who may ask.
        r.starts_at_ms = monday + 2 * 3_600_000;
        r.requester_groups = groups(&["web"]);
        assert_eq!(check_request(&e, &r), Err(PolicyError::NotARequester));
    }

    #[test]
    fn the_owner_rule_waits_for_the_owner_and_keeps_its_window() {
        let mut c = guarded_config();
        c.approval = ApprovalConfig::Owner;
        let e = Entitlement::new(c.clone()).unwrap();
        assert_eq!(
            check_request(&e, &request()).unwrap().next,
            NextStep::NeedsOwner
        );
        assert!(e
            .describe_rule()
            .contains("machine's owner or backup owner"));
        // Nobody approves by group under it: the broker decides per request.
        assert!(may_approve(
            &e,
            &PersonId::new("bob"),
            &groups(&["dba-leads"]),
            &PersonId::new("ada")
        )
        .is_err());
        c.auto_window = Some(crate::AutoWindowConfig {
            days: vec!["mon".into()],
            from: "01:00".into(),
            to: "05:00".into(),
        });
        let e = Entitlement::new(c).unwrap();
        let mut r = request();
        r.starts_at_ms = 1_796_601_600_000 + 2 * 3_600_000;
        assert_eq!(check_request(&e, &r).unwrap().next, NextStep::AutoApprove);
        // The config spelling.
        let a: ApprovalConfig = toml::from_str::<toml::Value>("a = \"owner\"").unwrap()["a"]
            .clone()
            .try_into()
            .unwrap();
        assert_eq!(a, ApprovalConfig::Owner);
    }

    #[test]
    fn an_auto_window_needs_approvers_to_stand_in_for() {
        let mut c = guarded_config();
        c.approval = ApprovalConfig::Auto;
        c.auto_window = Some(crate::AutoWindowConfig {
            days: vec!["mon".into()],
            from: "01:00".into(),
            to: "05:00".into(),
        });
        assert!(matches!(
            Entitlement::new(c),
            Err(PolicyError::InvalidEntitlement {
                field: "auto_window",
                ..
            })
        ));
    }

    #[test]
    fn quorum_entitlement_needs_approval() {
        let plan = check_request(&guarded(), &request()).unwrap();
        assert_eq!(plan.next, NextStep::NeedsApproval(quorum()));
        assert_eq!(plan.duration.secs(), 3600);
    }

    #[test]
    fn auto_entitlement_is_approved_automatically() {
        let plan = check_request(&auto(), &auto_request()).unwrap();
        assert_eq!(plan.next, NextStep::AutoApprove);
        assert_eq!(plan.duration.secs(), 900);
    }

    #[test]
    fn break_glass_skips_approval_within_its_own_maximum() {
        let mut input = request();
        input.break_glass = true;
        input.duration_secs = 1200;
        let plan = check_request(&guarded(), &input).unwrap();
        assert_eq!(
            plan.next,
            NextStep::BreakGlass {
                max_duration: validate_duration(1800, 1800).unwrap()
            }
        );
        assert_eq!(plan.duration.secs(), 1200);
    }

    #[test]
    fn break_glass_on_an_auto_entitlement_is_still_break_glass() {
        let mut c = guarded_config();
        c.approval = ApprovalConfig::Auto;
        let e = Entitlement::new(c).unwrap();
        let mut input = request();
        input.break_glass = true;
        input.duration_secs = 60;
        let plan = check_request(&e, &input).unwrap();
        // Break-glass is audited and reviewed differently even where approval is automatic.
        assert!(matches!(plan.next, NextStep::BreakGlass { .. }));
    }

    #[test]
    fn plan_serializes_for_the_audit_record() {
        let plan = check_request(&auto(), &auto_request()).unwrap();
        assert_eq!(
            serde_json::to_string(&plan).unwrap(),
            r#"{"next":"auto_approve","duration":900}"#
        );
        let mut input = request();
        input.break_glass = true;
        input.duration_secs = 60;
        let plan = check_request(&guarded(), &input).unwrap();
        assert_eq!(
            serde_json::to_string(&plan).unwrap(),
            r#"{"next":{"break_glass":{"max_duration":1800}},"duration":60}"#
        );
    }

    // ---- who may request ------------------------------------------------------------------

    #[test]
    fn requester_must_be_in_a_requester_group() {
        for gs in [
            &[][..],
            &["DBA"],
            &["dba "],
            &["dbas"],
            &["helpdesk"],
            // Approving for an entitlement is not the same as being allowed to request it.
            &["dba-leads", "sre-leads"],
        ] {
            assert_eq!(
                check(&guarded(), |r| r.requester_groups = groups(gs)),
                Err(PolicyError::NotARequester),
                "{gs:?}"
            );
        }
        assert!(check(&guarded(), |r| r.requester_groups = groups(&["x", "sre"])).is_ok());
    }

    #[test]
    fn requester_id_must_be_well_formed() {
        for id in ["", "alice\n", "\u{0}"] {
            assert_eq!(
                check(&guarded(), |r| r.requester = PersonId::new(id)),
                Err(PolicyError::InvalidPersonId),
                "{id:?}"
            );
        }
    }

    #[test]
    fn a_non_requester_learns_nothing_else() {
        // Every other field is wrong too; the answer is still only "not a requester".
        let got = check(&guarded(), |r| {
            r.requester_groups = groups(&["helpdesk"]);
            r.target_kind = TargetKind::Ssh;
            r.target = "db-prod-1.evil.example".into();
            r.role = "postgres".into();
            r.duration_secs = -1;
            r.justification = String::new();
            r.ticket = None;
            r.break_glass = true;
        });
        assert_eq!(got, Err(PolicyError::NotARequester));
    }

    // ---- target and role (case B4) --------------------------------------------------------

    #[test]
    fn target_kind_must_match() {
        assert_eq!(
            check(&guarded(), |r| r.target_kind = TargetKind::Ssh),
            Err(PolicyError::TargetKindMismatch {
                expected: TargetKind::Postgres,
                got: TargetKind::Ssh
            })
        );
        assert_eq!(
            check(&auto(), |r| r.target_kind = TargetKind::Postgres),
            Err(PolicyError::TargetKindMismatch {
                expected: TargetKind::Ssh,
                got: TargetKind::Postgres
            })
        );
    }

    #[test]
    fn b4_glob_target_admits_only_whole_single_label_names() {
        for (target, allowed) in [
            ("db-prod-1", true),
            ("db-prod-eu-2", true),
            ("db-prod-x", true),
            // Anchored at the end: no suffix, no extra label.
            ("db-prod-1.evil.com", false),
            ("db-prod-1.evil", false),
            ("db-prod-1.", false),
            // Anchored at the start: no prefix, no extra label.
            ("xdb-prod-1", false),
            ("a.db-prod-1", false),
            ("evil.com.db-prod-1", false),
            // `*` is one or more characters.
            ("db-prod-", false),
            ("db-prod", false),
            // Case-sensitive allow-list.
            ("DB-PROD-1", false),
            ("Db-prod-1", false),
            // Smuggled characters never match.
            ("db-prod-1\n", false),
            ("db-prod-1 ", false),
            (" db-prod-1", false),
            ("db-prod-\u{202e}1", false),
            ("db-prod-1\u{200b}", false),
            ("db-prod-1\u{0}", false),
            ("", false),
        ] {
            let got = check(&guarded(), |r| r.target = target.into());
            if allowed {
                assert_eq!(got, Ok(3600), "{target:?}");
            } else {
                assert_eq!(got, Err(PolicyError::TargetNotAllowed), "{target:?}");
            }
        }
    }

    #[test]
    fn b4_exact_target_admits_only_itself() {
        assert!(check(&auto(), |_| {}).is_ok());
        for target in [
            "web-1.corp.example.evil.com",
            "web-1.corp.example.",
            "xweb-1.corp.example",
            "a.web-1.corp.example",
            "web-1",
            "web-10.corp.example",
            "WEB-1.corp.example",
            "web-1.corp.example\n",
        ] {
            assert_eq!(
                check(&auto(), |r| r.target = target.into()),
                Err(PolicyError::TargetNotAllowed),
                "{target:?}"
            );
        }
    }

    #[test]
    fn b4_regex_style_pattern_is_a_glob_not_a_regex() {
        // Someone writing `db-prod-.*` means "db-prod- then anything". In the pattern syntax it
        // is two labels: the literal `db-prod-` and one `*` label. It therefore never admits
        // `db-prod-1` or `db-prod-1.evil.com`; it denies rather than over-reaches.
        let mut c = guarded_config();
        c.target = Pattern::parse("db-prod-.*").unwrap();
        let e = Entitlement::new(c).unwrap();
        for target in [
            "db-prod-1",
            "db-prod-1.evil.com",
            "db-prod-1.evil",
            "db-prod-.a.b",
            "xdb-prod-.a",
        ] {
            assert_eq!(
                check(&e, |r| r.target = target.into()),
                Err(PolicyError::TargetNotAllowed),
                "{target:?}"
            );
        }
        // What it does admit is exactly what the glob says: `db-prod-` `.` one label.
        assert!(check(&e, |r| r.target = "db-prod-.a".into()).is_ok());

        // Regex anchors and classes are literal characters: the pattern matches nothing real.
        let mut c = guarded_config();
        c.target = Pattern::parse("^db-prod-[0-9]+$").unwrap();
        let e = Entitlement::new(c).unwrap();
        for target in ["db-prod-1", "db-prod-12", "^db-prod-1$"] {
            assert_eq!(
                check(&e, |r| r.target = target.into()),
                Err(PolicyError::TargetNotAllowed),
                "{target:?}"
            );
        }
    }

    #[test]
    fn b4_star_label_does_not_reach_across_labels() {
        let mut c = guarded_config();
        c.target = Pattern::parse("*.db.corp.example").unwrap();
        let e = Entitlement::new(c).unwrap();
        assert!(check(&e, |r| r.target = "eu1.db.corp.example".into()).is_ok());
        for target in [
            "a.eu1.db.corp.example",
            "db.corp.example",
            "eu1.db.corp.example.evil.com",
            "eu1.db.corp.example.",
        ] {
            assert_eq!(
                check(&e, |r| r.target = target.into()),
                Err(PolicyError::TargetNotAllowed),
                "{target:?}"
            );
        }
    }

    #[test]
    fn b4_target_names_longer_than_a_dns_name_are_denied() {
        let at_limit = format!("db-prod-{}", "a".repeat(MAX_TARGET_NAME_CHARS - 8));
        assert_eq!(at_limit.len(), MAX_TARGET_NAME_CHARS);
        assert!(check(&guarded(), |r| r.target = at_limit.clone()).is_ok());
        let over = format!("{at_limit}a");
        assert_eq!(
            check(&guarded(), |r| r.target = over),
            Err(PolicyError::TargetNotAllowed)
        );
    }

    #[test]
    fn b4_role_must_be_exactly_the_entitlement_role() {
        for role in [
            "",
            "readonly2",
            "readonl",
            "Readonly",
            "READONLY",
            "readonly ",
            " readonly",
            "readonly\n",
            "readonly\u{200b}",
            "readonly,postgres",
            "read*",
            "*",
            "postgres",
            "root",
        ] {
            assert_eq!(
                check(&guarded(), |r| r.role = role.into()),
                Err(PolicyError::RoleNotAllowed),
                "{role:?}"
            );
        }
    }

    // ---- duration -------------------------------------------------------------------------

    #[test]
    fn duration_is_validated_against_the_entitlement_maximum() {
        for secs in [1, 60, 3599, 3600] {
            assert_eq!(
                check(&guarded(), |r| r.duration_secs = secs),
                Ok(secs as u64)
            );
        }
        for requested_secs in [0, -1, i64::MIN] {
            assert_eq!(
                check(&guarded(), |r| r.duration_secs = requested_secs),
                Err(PolicyError::DurationNotPositive { requested_secs })
            );
        }
        for requested_secs in [3601, 86_400, i64::MAX] {
            assert_eq!(
                check(&guarded(), |r| r.duration_secs = requested_secs),
                Err(PolicyError::DurationOverMax {
                    requested_secs,
                    max_secs: 3600
                })
            );
        }
    }

    #[test]
    fn break_glass_duration_is_validated_against_the_break_glass_maximum() {
        let bg = |secs| {
            check(&guarded(), |r| {
                r.break_glass = true;
                r.duration_secs = secs;
            })
        };
        assert_eq!(bg(1), Ok(1));
        assert_eq!(bg(1800), Ok(1800));
        // Within the entitlement's hour, but over break-glass's half hour: refused, not cut.
        for requested_secs in [1801, 3600] {
            assert_eq!(
                bg(requested_secs),
                Err(PolicyError::DurationOverMax {
                    requested_secs,
                    max_secs: 1800
                })
            );
        }
        assert_eq!(
            bg(0),
            Err(PolicyError::DurationNotPositive { requested_secs: 0 })
        );
    }

    // ---- break-glass ----------------------------------------------------------------------

    #[test]
    fn break_glass_only_where_the_entitlement_allows_it() {
        for secs in [60, 0, i64::MAX] {
            assert_eq!(
                check(&auto(), |r| {
                    r.break_glass = true;
                    r.duration_secs = secs;
                }),
                Err(PolicyError::BreakGlassNotAllowed),
                "{secs}"
            );
        }
    }

    #[test]
    fn break_glass_needs_a_justification_but_no_ticket() {
        let bg = |edit: fn(&mut RequestInput)| {
            check(&guarded(), |r| {
                r.break_glass = true;
                r.duration_secs = 600;
                edit(r);
            })
        };
        assert_eq!(
            bg(|r| r.justification = String::new()),
            Err(PolicyError::InvalidJustification {
                reason: "is empty or only whitespace"
            })
        );
        assert!(bg(|r| r.ticket = None).is_ok());
        // A ticket that is given must still be a clean token.
        assert!(matches!(
            bg(|r| r.ticket = Some("INC 1".into())),
            Err(PolicyError::InvalidTicket { .. })
        ));
        // Without break-glass the same entitlement requires it.
        assert_eq!(
            check(&guarded(), |r| r.ticket = None),
            Err(PolicyError::TicketRequired)
        );
    }

    // ---- justification --------------------------------------------------------------------

    #[test]
    fn justification_content_rules() {
        let cases: &[(&str, &str)] = &[
            ("", "is empty or only whitespace"),
            ("            ", "is empty or only whitespace"),
            ("\u{a0}\u{3000}\u{2003}", "is empty or only whitespace"),
            (" vacuum the orders table", "starts or ends with whitespace"),
            ("vacuum the orders table ", "starts or ends with whitespace"),
            (
                "vacuum the orders table\u{a0}",
                "starts or ends with whitespace",
            ),
            (
                "vacuum the table\nApproved-by: bob",
                "contains a control character",
            ),
            ("vacuum the\ttable", "contains a control character"),
            ("vacuum the table\r", "contains a control character"),
            ("vacuum \u{1b}[31mthe table", "contains a control character"),
            ("vacuum the table\u{0}", "contains a control character"),
            ("vacuum the\u{85}table", "contains a control character"),
            (
                "vacuum the\u{2028}table",
                "contains a line or paragraph separator",
            ),
            (
                "vacuum the \u{202e}elbat",
                "contains an invisible or bidirectional formatting character",
            ),
            (
                "vacuum\u{200b} the table",
                "contains an invisible or bidirectional formatting character",
            ),
        ];
        for (justification, reason) in cases {
            assert_eq!(
                check(&guarded(), |r| r.justification = (*justification).into()),
                Err(PolicyError::InvalidJustification { reason }),
                "{justification:?}"
            );
        }
    }

    #[test]
    fn justification_length_is_counted_in_characters() {
        let with = |j: String| check(&guarded(), |r| r.justification = j);
        assert_eq!(
            with("a".repeat(9)),
            Err(PolicyError::JustificationTooShort { chars: 9, min: 10 })
        );
        assert_eq!(
            with("fix it".into()),
            Err(PolicyError::JustificationTooShort { chars: 6, min: 10 })
        );
        assert!(with("a".repeat(10)).is_ok());
        // Spaces inside count; only the ends must not be whitespace.
        assert!(with("a b c d e f".into()).is_ok());
        // Ten two-byte characters are ten characters, not twenty.
        assert!(with("é".repeat(10)).is_ok());
        assert_eq!(
            with("é".repeat(9)),
            Err(PolicyError::JustificationTooShort { chars: 9, min: 10 })
        );
        assert!(with("a".repeat(MAX_JUSTIFICATION_CHARS)).is_ok());
        assert!(with("日".repeat(MAX_JUSTIFICATION_CHARS)).is_ok());
        assert_eq!(
            with("a".repeat(MAX_JUSTIFICATION_CHARS + 1)),
            Err(PolicyError::JustificationTooLong {
                chars: 2001,
                max: 2000
            })
        );
    }

    // ---- ticket ---------------------------------------------------------------------------

    #[test]
    fn required_ticket_must_be_present_and_match() {
        let with = |t: Option<&str>| check(&guarded(), |r| r.ticket = t.map(str::to_owned));
        let mismatch = Err(PolicyError::TicketMismatch {
            expected: Pattern::parse("INC-*").unwrap(),
        });
        assert_eq!(with(None), Err(PolicyError::TicketRequired));
        assert!(with(Some("INC-42")).is_ok());
        assert!(with(Some("INC-2024-0815")).is_ok());
        for ticket in [
            "inc-42",
            "INC-",
            "INC",
            "OPS-42",
            "XINC-42",
            "INC-42.evil",
            "a.INC-42",
        ] {
            assert_eq!(with(Some(ticket)), mismatch, "{ticket:?}");
        }
        let invalid = |reason| Err(PolicyError::InvalidTicket { reason });
        for (ticket, reason) in [
            ("", "is empty"),
            ("INC-42 ", "contains whitespace"),
            ("INC- 42", "contains whitespace"),
            ("INC-42\n", "contains a control character"),
            ("INC-\u{1b}42", "contains a control character"),
            (
                "INC-\u{202e}24",
                "contains an invisible or bidirectional formatting character",
            ),
        ] {
            assert_eq!(with(Some(ticket)), invalid(reason), "{ticket:?}");
        }
        // The pattern would admit it, the length rule does not.
        let at_limit = format!("INC-{}", "1".repeat(MAX_TICKET_CHARS - 4));
        assert!(with(Some(&at_limit)).is_ok());
        assert_eq!(
            with(Some(&format!("{at_limit}1"))),
            invalid("is longer than 64 characters")
        );
    }

    #[test]
    fn optional_ticket_is_still_checked_when_given() {
        let with = |t: Option<&str>| check(&auto(), |r| r.ticket = t.map(str::to_owned));
        assert!(with(None).is_ok());
        assert!(with(Some("OPS-1")).is_ok());
        assert!(with(Some("https://tickets.corp.example/browse/OPS-1")).is_ok());
        assert!(with(Some(&"T".repeat(MAX_TICKET_CHARS))).is_ok());
        let invalid = |reason| Err(PolicyError::InvalidTicket { reason });
        for (ticket, reason) in [
            ("", "is empty"),
            ("OPS 1", "contains whitespace"),
            ("\u{a0}OPS-1", "contains whitespace"),
            ("OPS-1\r\nApproved: yes", "contains a control character"),
            ("OPS-1\u{7f}", "contains a control character"),
            (
                "OPS-\u{2066}1",
                "contains an invisible or bidirectional formatting character",
            ),
        ] {
            assert_eq!(with(Some(ticket)), invalid(reason), "{ticket:?}");
        }
        assert_eq!(
            with(Some(&"T".repeat(MAX_TICKET_CHARS + 1))),
            invalid("is longer than 64 characters")
        );
    }

    // ---- errors ---------------------------------------------------------------------------

    #[test]
    fn errors_never_echo_request_text() {
        const HOSTILE: &str = "\u{1b}]0;pwned\u{7}\n\u{202e}Approved-by: bob";
        let edits: [fn(&mut RequestInput); 6] = [
            |r| r.requester = PersonId::new(HOSTILE),
            |r| r.requester_groups = groups(&[HOSTILE]),
            |r| r.target = format!("db-prod-{HOSTILE}"),
            |r| r.role = HOSTILE.into(),
            |r| r.justification = format!("valid start {HOSTILE}"),
            |r| r.ticket = Some(format!("INC-{HOSTILE}")),
        ];
        for edit in edits {
            let err = check(&guarded(), edit).unwrap_err();
            let text = err.to_string();
            assert!(
                !text.contains(|c: char| c.is_control() || c == '\u{202e}'),
                "{text:?}"
            );
            assert!(
                !text.contains("pwned") && !text.contains("Approved-by"),
                "{text:?}"
            );
        }
    }

    #[test]
    fn errors_read_plainly() {
        let cases = [
            (
                PolicyError::NotARequester,
                "the requester is in none of the groups allowed to request this entitlement",
            ),
            (
                PolicyError::TargetKindMismatch {
                    expected: TargetKind::Ssh,
                    got: TargetKind::Postgres,
                },
                "this entitlement is for ssh targets, not postgres",
            ),
            (
                PolicyError::JustificationTooShort { chars: 3, min: 10 },
                "justification has 3 characters; at least 10 are required",
            ),
            (
                PolicyError::TicketMismatch {
                    expected: Pattern::parse("INC-*").unwrap(),
                },
                "the ticket does not match the required form INC-*",
            ),
            (
                PolicyError::InvalidEntitlement {
                    field: "role",
                    reason: "must be positive",
                },
                "invalid entitlement: role must be positive",
            ),
            (
                PolicyError::SelfApproval,
                "the requester cannot approve their own request",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
    }

    // ---- may_approve (case B1) ------------------------------------------------------------

    fn approve(
        approver: &str,
        approver_groups: &[&str],
        requester: &str,
    ) -> Result<(), PolicyError> {
        may_approve(
            &guarded(),
            &PersonId::new(approver),
            &groups(approver_groups),
            &PersonId::new(requester),
        )
    }

    #[test]
    fn b1_requester_cannot_approve_own_request_even_as_an_approver() {
        for gs in [
            &["dba-leads"][..],
            &["dba-leads", "sre-leads"],
            &[],
            &["dba"],
        ] {
            assert_eq!(
                approve("alice", gs, "alice"),
                Err(PolicyError::SelfApproval),
                "{gs:?}"
            );
        }
    }

    #[test]
    fn b1_approver_must_be_in_a_quorum_group() {
        assert_eq!(approve("bob", &["dba-leads"], "alice"), Ok(()));
        assert_eq!(approve("bob", &["helpdesk", "sre-leads"], "alice"), Ok(()));
        for gs in [
            &[][..],
            // Being allowed to request does not make one an approver.
            &["dba"],
            &["sre"],
            &["DBA-LEADS"],
            &["dba-leads "],
            &["dba-leads-old"],
        ] {
            assert_eq!(
                approve("bob", gs, "alice"),
                Err(PolicyError::ApproverNotInGroup),
                "{gs:?}"
            );
        }
    }

    #[test]
    fn b1_auto_entitlements_have_no_approvers() {
        let e = auto();
        for (approver, gs) in [("bob", &["sre"][..]), ("alice", &["sre"]), ("bob", &[])] {
            assert_eq!(
                may_approve(
                    &e,
                    &PersonId::new(approver),
                    &groups(gs),
                    &PersonId::new("alice")
                ),
                Err(PolicyError::NoApprovers)
            );
        }
    }

    #[test]
    fn b1_malformed_ids_are_refused_not_compared() {
        assert_eq!(
            approve("", &["dba-leads"], "alice"),
            Err(PolicyError::InvalidPersonId)
        );
        assert_eq!(
            approve("bob", &["dba-leads"], ""),
            Err(PolicyError::InvalidPersonId)
        );
        // Two empty ids are not two different people, nor a provable self-approval.
        assert_eq!(
            approve("", &["dba-leads"], ""),
            Err(PolicyError::InvalidPersonId)
        );
        assert_eq!(
            approve("bob\n", &["dba-leads"], "alice"),
            Err(PolicyError::InvalidPersonId)
        );
    }

    #[test]
    fn b1_may_approve_agrees_with_the_quorum_count() {
        // Whoever may approve is counted by the quorum, and whoever may not is ignored by it,
        // so the early answer to an approver and the final count never disagree.
        let q = quorum();
        let requester = PersonId::new("alice");
        for (approver, gs) in [
            ("bob", &["dba-leads"][..]),
            ("bob", &["sre-leads", "x"]),
            ("bob", &["dba"]),
            ("bob", &[]),
            ("alice", &["dba-leads"]),
            ("alice", &[]),
        ] {
            let allowed = approve(approver, gs, "alice").is_ok();
            let outcome = q.evaluate(
                &requester,
                &[Approval {
                    person: PersonId::new(approver),
                    groups: groups(gs),
                }],
            );
            assert_eq!(allowed, outcome.counted.len() == 1, "{approver} {gs:?}");
        }
    }
}
