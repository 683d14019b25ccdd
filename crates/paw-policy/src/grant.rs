//! The grant lifecycle: pending → approved → active → expired | revoked | released,
//! or denied | cancelled.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::PolicyError;

/// Where a grant is in its life. Only [`GrantState::Active`] carries privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    /// Requested, waiting for approvals (or for the auto-approve step-up).
    Pending,
    /// Approved but not in use yet; no credential has been issued.
    Approved,
    /// In use: the only state in which the broker issues credentials.
    Active,
    /// Its time ran out.
    Expired,
    /// Ended early by someone else (an admin, a lost key, a locked user).
    Revoked,
    /// Ended early by the requester, who no longer needs it.
    Released,
    /// Refused by an approver or by policy.
    Denied,
    /// Withdrawn before it was ever used.
    Cancelled,
}

/// What can happen to a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantEvent {
    /// The quorum was met (or policy auto-approved after step-up).
    Approve,
    /// An approver or policy refused the request.
    Deny,
    /// The requester (or the system, e.g. a disabled user) withdrew it before use.
    Cancel,
    /// Its start time came and the requester began to use it.
    Activate,
    /// Its end time passed (judged by the broker's clock).
    Expire,
    /// Ended early by someone other than the requester.
    Revoke,
    /// Ended early by the requester.
    Release,
}

impl GrantState {
    pub const ALL: [GrantState; 8] = [
        GrantState::Pending,
        GrantState::Approved,
        GrantState::Active,
        GrantState::Expired,
        GrantState::Revoked,
        GrantState::Released,
        GrantState::Denied,
        GrantState::Cancelled,
    ];

    /// A terminal state accepts no event: a finished grant is never revived, only a new
    /// request starts a new grant, so the audit trail of the old one stays closed.
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            GrantState::Pending | GrantState::Approved | GrantState::Active
        )
    }

    /// Stable lower-case name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantState::Pending => "pending",
            GrantState::Approved => "approved",
            GrantState::Active => "active",
            GrantState::Expired => "expired",
            GrantState::Revoked => "revoked",
            GrantState::Released => "released",
            GrantState::Denied => "denied",
            GrantState::Cancelled => "cancelled",
        }
    }
}

impl GrantEvent {
    pub const ALL: [GrantEvent; 7] = [
        GrantEvent::Approve,
        GrantEvent::Deny,
        GrantEvent::Cancel,
        GrantEvent::Activate,
        GrantEvent::Expire,
        GrantEvent::Revoke,
        GrantEvent::Release,
    ];

    /// Stable lower-case verb, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantEvent::Approve => "approve",
            GrantEvent::Deny => "deny",
            GrantEvent::Cancel => "cancel",
            GrantEvent::Activate => "activate",
            GrantEvent::Expire => "expire",
            GrantEvent::Revoke => "revoke",
            GrantEvent::Release => "release",
        }
    }
}

impl fmt::Display for GrantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for GrantEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The whole state machine. Every allowed edge is listed; everything else is refused.
///
/// Why these edges and no others:
/// - Only `Approved` can become `Active`: nothing is used without approval.
/// - `Approved` can still be cancelled, revoked (B5: revocation between approval and use)
///   or expire unused; it cannot be denied, because the approval already happened.
/// - `Release` is the requester ending their own active grant; `Revoke` is anyone else.
/// - A pending request is refused (`Deny`) or withdrawn (`Cancel`); it has no privilege to
///   revoke, and it does not "expire" into a state that reads as if it had been granted.
pub fn transition(state: GrantState, event: GrantEvent) -> Result<GrantState, PolicyError> {
    use GrantEvent as E;
    use GrantState as S;
    let next = match (state, event) {
        (S::Pending, E::Approve) => S::Approved,
        (S::Pending, E::Deny) => S::Denied,
        (S::Pending, E::Cancel) => S::Cancelled,

        (S::Approved, E::Activate) => S::Active,
        (S::Approved, E::Cancel) => S::Cancelled,
        (S::Approved, E::Revoke) => S::Revoked,
        (S::Approved, E::Expire) => S::Expired,

        (S::Active, E::Expire) => S::Expired,
        (S::Active, E::Revoke) => S::Revoked,
        (S::Active, E::Release) => S::Released,

        _ => return Err(PolicyError::InvalidTransition { from: state, event }),
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use GrantEvent as E;
    use GrantState as S;

    /// The expected table, written out independently of `transition` so a change to one
    /// without the other fails this test.
    const ALLOWED: &[(S, E, S)] = &[
        (S::Pending, E::Approve, S::Approved),
        (S::Pending, E::Deny, S::Denied),
        (S::Pending, E::Cancel, S::Cancelled),
        (S::Approved, E::Activate, S::Active),
        (S::Approved, E::Cancel, S::Cancelled),
        (S::Approved, E::Revoke, S::Revoked),
        (S::Approved, E::Expire, S::Expired),
        (S::Active, E::Expire, S::Expired),
        (S::Active, E::Revoke, S::Revoked),
        (S::Active, E::Release, S::Released),
    ];

    #[test]
    fn every_state_event_pair_matches_the_table() {
        let mut checked = 0;
        for state in S::ALL {
            for event in E::ALL {
                let expected = ALLOWED
                    .iter()
                    .find(|(s, e, _)| *s == state && *e == event)
                    .map(|(_, _, to)| *to);
                let got = transition(state, event);
                match expected {
                    Some(to) => assert_eq!(got, Ok(to), "{state} + {event}"),
                    None => assert_eq!(
                        got,
                        Err(PolicyError::InvalidTransition { from: state, event }),
                        "{state} + {event} must be refused"
                    ),
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 8 * 7);
    }

    #[test]
    fn terminal_states_accept_nothing() {
        for state in S::ALL.into_iter().filter(|s| s.is_terminal()) {
            for event in E::ALL {
                assert!(transition(state, event).is_err(), "{state} + {event}");
            }
        }
        let terminal: Vec<_> = S::ALL.into_iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(
            terminal,
            [S::Expired, S::Revoked, S::Released, S::Denied, S::Cancelled]
        );
    }

    #[test]
    fn only_approved_becomes_active() {
        for state in S::ALL {
            if let Ok(S::Active) = transition(state, E::Activate) {
                assert_eq!(state, S::Approved);
            }
        }
    }

    #[test]
    fn names_are_stable_and_match_serde() {
        for state in S::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
        }
        for event in E::ALL {
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(json, format!("\"{}\"", event.as_str()));
        }
    }

    #[test]
    fn error_reads_plainly() {
        let err = transition(S::Denied, E::Activate).unwrap_err();
        assert_eq!(err.to_string(), "a denied grant cannot activate");
    }
}
