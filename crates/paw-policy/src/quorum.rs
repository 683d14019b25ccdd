//! Approval quorum with separation of duties (case B1).

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::text::check_token;
use crate::PolicyError;

/// Identifies a *person*, not an account. The broker must resolve every account (including a
/// second account of the same human) to one `PersonId` before asking for a quorum; that is
/// what makes "distinct people" mean something.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonId(pub String);

impl PersonId {
    pub fn new(id: impl Into<String>) -> Self {
        PersonId(id.into())
    }

    /// Non-empty and free of control characters. An empty id would make every "unknown"
    /// person the same person, which is exactly what separation of duties must not assume.
    pub fn is_well_formed(&self) -> bool {
        !self.0.is_empty() && !self.0.chars().any(char::is_control)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What [`is_valid_group_name`] enforces, in words, for configuration errors.
pub(crate) const GROUP_NAME_RULE: &str =
    "group names must be non-empty, without whitespace, commas, control or invisible characters";

/// Group names are shown to approvers ("needs 2 approvers from dba-leads or sre-leads") and
/// compared exactly, so a name that renders as another name must not get in. Commas are refused
/// because lists of groups are written comma-separated in places (environment overrides).
pub(crate) fn is_valid_group_name(group: &str) -> bool {
    check_token(group).is_ok() && !group.contains(',')
}

/// One recorded approval: who approved, and the groups they belonged to *at evaluation time*
/// (the caller looks them up fresh, so a lost approver role stops counting; case B5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub person: PersonId,
    pub groups: Vec<String>,
}

/// "N distinct people from these groups, never the requester."
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quorum {
    required: u32,
    groups: Vec<String>,
}

/// Why an approval did not count. Kept so the decision can be explained and audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IgnoreReason {
    /// Separation of duties: nobody approves their own request.
    Requester,
    /// This person was already counted; a second approval (another session, a retry) adds nothing.
    AlreadyCounted,
    /// The approver is in none of the groups this quorum names.
    NotInAllowedGroup,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ignored {
    pub person: PersonId,
    pub reason: IgnoreReason,
}

/// The result of [`Quorum::evaluate`]: who counted, who did not and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumOutcome {
    pub required: u32,
    /// Distinct people whose approval counted, in the order they approved.
    pub counted: Vec<PersonId>,
    pub ignored: Vec<Ignored>,
}

impl QuorumOutcome {
    pub fn is_met(&self) -> bool {
        self.missing() == 0
    }

    /// How many more distinct approvers are needed.
    pub fn missing(&self) -> u32 {
        let counted = u32::try_from(self.counted.len()).unwrap_or(u32::MAX);
        self.required.saturating_sub(counted)
    }
}

impl Quorum {
    /// `required` must be at least 1: "no approval needed" is a separate, explicit policy
    /// (auto-approve after step-up), never a quorum of zero that is met by accident.
    pub fn new(required: u32, groups: Vec<String>) -> Result<Self, PolicyError> {
        let invalid = |reason| PolicyError::InvalidQuorum { reason };
        if required == 0 {
            return Err(invalid("required approvals must be at least 1"));
        }
        if groups.is_empty() {
            return Err(invalid("at least one approver group is required"));
        }
        let mut seen = HashSet::new();
        for group in &groups {
            if !is_valid_group_name(group) {
                return Err(invalid(GROUP_NAME_RULE));
            }
            if !seen.insert(group.as_str()) {
                return Err(invalid("a group is listed twice"));
            }
        }
        Ok(Quorum { required, groups })
    }

    pub fn required(&self) -> u32 {
        self.required
    }

    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// Counts distinct people in an allowed group, never the requester.
    ///
    /// The requester is excluded even if they sit in an allowed group: separation of duties
    /// does not bend for seniority. Duplicates are recognised by `PersonId`, so the caller's
    /// account-to-person mapping is what defeats a second account.
    pub fn evaluate(&self, requester: &PersonId, approvals: &[Approval]) -> QuorumOutcome {
        let mut counted: Vec<PersonId> = Vec::new();
        let mut ignored = Vec::new();
        for approval in approvals {
            let reason = if &approval.person == requester {
                Some(IgnoreReason::Requester)
            } else if counted.contains(&approval.person) {
                Some(IgnoreReason::AlreadyCounted)
            } else if !approval.groups.iter().any(|g| self.groups.contains(g)) {
                Some(IgnoreReason::NotInAllowedGroup)
            } else {
                None
            };
            match reason {
                Some(reason) => ignored.push(Ignored {
                    person: approval.person.clone(),
                    reason,
                }),
                None => counted.push(approval.person.clone()),
            }
        }
        QuorumOutcome {
            required: self.required,
            counted,
            ignored,
        }
    }

    /// The rule in plain words, for the approval screen and the audit trail.
    pub fn describe(&self) -> String {
        let groups = self.groups.join(" or ");
        let who = match self.required {
            1 => "1 approver".to_owned(),
            n => format!("{n} distinct approvers"),
        };
        format!("needs {who} from {groups}; the requester cannot approve")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str) -> PersonId {
        PersonId::new(id)
    }

    fn approval(id: &str, groups: &[&str]) -> Approval {
        Approval {
            person: person(id),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn dba_two() -> Quorum {
        Quorum::new(2, vec!["dba-leads".into()]).unwrap()
    }

    #[test]
    fn b1_requester_cannot_approve_own_request() {
        let q = Quorum::new(1, vec!["dba-leads".into()]).unwrap();
        let out = q.evaluate(&person("alice"), &[approval("alice", &["dba-leads"])]);
        assert!(!out.is_met());
        assert!(out.counted.is_empty());
        assert_eq!(
            out.ignored,
            [Ignored {
                person: person("alice"),
                reason: IgnoreReason::Requester
            }]
        );
    }

    #[test]
    fn b1_requester_does_not_count_toward_a_larger_quorum() {
        let out = dba_two().evaluate(
            &person("alice"),
            &[
                approval("alice", &["dba-leads"]),
                approval("bob", &["dba-leads"]),
            ],
        );
        assert!(!out.is_met());
        assert_eq!(out.missing(), 1);
        assert_eq!(out.counted, [person("bob")]);
    }

    #[test]
    fn b1_same_person_twice_counts_once() {
        // Two sessions, or a second account already resolved to the same person.
        let out = dba_two().evaluate(
            &person("alice"),
            &[
                approval("bob", &["dba-leads"]),
                approval("bob", &["dba-leads"]),
            ],
        );
        assert!(!out.is_met());
        assert_eq!(out.counted, [person("bob")]);
        assert_eq!(out.ignored[0].reason, IgnoreReason::AlreadyCounted);
    }

    #[test]
    fn b1_approver_outside_the_groups_does_not_count() {
        let out = dba_two().evaluate(
            &person("alice"),
            &[
                approval("bob", &["dba-leads"]),
                approval("mallory", &["helpdesk", "dba-leads-old", "DBA-LEADS"]),
                approval("eve", &[]),
            ],
        );
        assert!(!out.is_met());
        assert_eq!(out.counted, [person("bob")]);
        assert!(out
            .ignored
            .iter()
            .all(|i| i.reason == IgnoreReason::NotInAllowedGroup));
        assert_eq!(out.ignored.len(), 2);
    }

    #[test]
    fn b1_quorum_met_by_distinct_people_in_any_allowed_group() {
        let q = Quorum::new(2, vec!["dba-leads".into(), "sre-leads".into()]).unwrap();
        let out = q.evaluate(
            &person("alice"),
            &[
                approval("alice", &["sre-leads"]),
                approval("bob", &["dba-leads"]),
                approval("bob", &["sre-leads"]),
                approval("carol", &["sre-leads"]),
            ],
        );
        assert!(out.is_met());
        assert_eq!(out.counted, [person("bob"), person("carol")]);
        assert_eq!(out.ignored.len(), 2);
    }

    #[test]
    fn b1_no_approvals_is_not_met() {
        let out = dba_two().evaluate(&person("alice"), &[]);
        assert!(!out.is_met());
        assert_eq!(out.missing(), 2);
    }

    #[test]
    fn quorum_of_zero_or_without_groups_is_rejected() {
        assert!(Quorum::new(0, vec!["dba-leads".into()]).is_err());
        assert!(Quorum::new(1, vec![]).is_err());
        assert!(Quorum::new(1, vec!["".into()]).is_err());
        assert!(Quorum::new(1, vec!["dba leads".into()]).is_err());
        assert!(Quorum::new(1, vec!["a".into(), "a".into()]).is_err());
        assert!(Quorum::new(1, vec!["dba,sre".into()]).is_err());
        assert!(Quorum::new(1, vec!["dba\n".into()]).is_err());
        // Renders as "dba-leads" in the inbox while being another group.
        assert!(Quorum::new(1, vec!["dba-leads\u{200b}".into()]).is_err());
        assert!(Quorum::new(1, vec!["\u{202e}sdael-abd".into()]).is_err());
    }

    #[test]
    fn person_ids_must_be_well_formed() {
        assert!(person("alice").is_well_formed());
        assert!(person("7f3e9c1a-0b2d-4c5e-8f9a-1b2c3d4e5f60").is_well_formed());
        assert!(!person("").is_well_formed());
        assert!(!person("alice\n").is_well_formed());
        assert!(!person("\u{0}").is_well_formed());
    }

    #[test]
    fn describe_reads_plainly() {
        assert_eq!(
            dba_two().describe(),
            "needs 2 distinct approvers from dba-leads; the requester cannot approve"
        );
        let one = Quorum::new(1, vec!["dba-leads".into(), "sre-leads".into()]).unwrap();
        assert_eq!(
            one.describe(),
            "needs 1 approver from dba-leads or sre-leads; the requester cannot approve"
        );
    }
}
