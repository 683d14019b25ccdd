use std::collections::HashSet;

use super::*;
use crate::error::VaultError;
use Decision as D;
use RotationEvent as E;
use RotationState as S;

/// The expected table, written out independently of `next` so a change to one without the
/// other fails the walk.
const ALLOWED: &[(S, E, S)] = &[
    (S::Idle, E::Generate, S::Pending),
    (S::Promoted, E::Generate, S::Pending),
    (S::Pending, E::Apply, S::Applied),
    (S::Pending, E::ApplyFailed, S::Reconciling),
    (S::Pending, E::Crash, S::Reconciling),
    (S::Applied, E::Verify, S::Verified),
    (S::Applied, E::VerifyFailed, S::Reconciling),
    (S::Applied, E::Crash, S::Reconciling),
    (S::Verified, E::Promote, S::Promoted),
    (S::Verified, E::Crash, S::Reconciling),
    (S::Reconciling, E::Promote, S::Promoted),
    (S::Reconciling, E::Rollback, S::Idle),
    (S::Reconciling, E::NeitherOpens, S::Failed),
    (S::Reconciling, E::Crash, S::Reconciling),
    (S::Failed, E::Resume, S::Reconciling),
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
            match (expected, next(state, event)) {
                (Some(to), Ok(got)) => assert_eq!(got, to, "{state} + {event}"),
                (None, Err(VaultError::InvalidTransition { from, event: ev })) => {
                    assert_eq!((from, ev), (state, event));
                }
                (expected, got) => panic!("{state} + {event}: want {expected:?}, got {got:?}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 7 * 10);
    assert_eq!(ALLOWED.len(), 15);
}

#[test]
fn crashes_in_flight_go_to_the_reconciler_and_nowhere_else() {
    for state in S::ALL {
        let after = next(state, E::Crash);
        if state.is_in_flight() {
            assert_eq!(after.unwrap(), S::Reconciling, "{state}");
        } else {
            assert!(after.is_err(), "{state}");
        }
    }
    let in_flight: Vec<_> = S::ALL.into_iter().filter(|s| s.is_in_flight()).collect();
    assert_eq!(
        in_flight,
        [S::Pending, S::Applied, S::Verified, S::Reconciling]
    );
}

#[test]
fn only_settled_rotations_start_and_only_proven_secrets_are_promoted() {
    for state in S::ALL {
        assert_eq!(
            next(state, E::Generate).is_ok(),
            state.is_settled(),
            "{state}"
        );
        if next(state, E::Promote).is_ok() {
            assert!(matches!(state, S::Verified | S::Reconciling), "{state}");
        }
        assert_eq!(state.keeps_pending(), !state.is_settled(), "{state}");
    }
    let settled: Vec<_> = S::ALL.into_iter().filter(|s| s.is_settled()).collect();
    assert_eq!(settled, [S::Idle, S::Promoted]);
}

#[test]
fn happy_path_walks_four_steps() {
    let mut s = S::Idle;
    for event in [E::Generate, E::Apply, E::Verify, E::Promote] {
        s = next(s, event).unwrap();
    }
    assert_eq!(s, S::Promoted);
    assert_eq!(next(s, E::Generate).unwrap(), S::Pending);
}

#[test]
fn reconcile_truth_table() {
    let table = [
        (Some(true), true, D::PromotePending),
        (Some(true), false, D::PromotePending),
        (Some(false), true, D::KeepCurrent),
        (Some(false), false, D::Alert),
        (None, true, D::KeepCurrent),
        (None, false, D::Alert),
    ];
    for (pending, current, want) in table {
        assert_eq!(reconcile(pending, current), want, "{pending:?} {current}");
    }
    let landing: Vec<_> = [D::PromotePending, D::KeepCurrent, D::Alert]
        .into_iter()
        .map(|d| next(S::Reconciling, d.event()).unwrap())
        .collect();
    assert_eq!(landing, [S::Promoted, S::Idle, S::Failed]);
    // An alert keeps both secrets: the state it leads to still keeps the pending one.
    assert!(S::Failed.keeps_pending());
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
    for d in [D::PromotePending, D::KeepCurrent, D::Alert] {
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{d}\""));
    }
    assert_eq!(E::ApplyFailed.as_str(), "apply_failed");
}

// ---- Model check of the invariant ---------------------------------------------------------

/// The vault, the target and the journal, with secrets named by small numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct World {
    state: S,
    current: u8,
    /// The pending secret as stored in the vault.
    pending: Option<u8>,
    /// A generated secret held only in memory (the no-journal variant keeps it here until the
    /// target has changed); lost by a crash.
    fresh: Option<u8>,
    /// The secret the target accepts.
    target: u8,
    next_secret: u8,
}

impl World {
    fn holds_opening_secret(&self) -> bool {
        self.current == self.target || self.pending == Some(self.target)
    }
}

/// Every outcome the broker can meet in `w`: success, failure, a lying target, a crash before
/// or after the target changed, an unreachable target. `write_ahead` is the journal's rule.
fn moves(w: World, write_ahead: bool) -> Vec<(E, World)> {
    let mut out = Vec::new();
    let new = w.pending.or(w.fresh);
    let crash = World { fresh: None, ..w };
    match w.state {
        S::Idle | S::Promoted if w.next_secret < 3 => {
            let n = w.next_secret;
            let (pending, fresh) = if write_ahead {
                (Some(n), None)
            } else {
                (None, Some(n))
            };
            out.push((
                E::Generate,
                World {
                    pending,
                    fresh,
                    next_secret: n + 1,
                    ..w
                },
            ));
        }
        S::Pending => {
            let Some(new) = new else { return out };
            let changed = World { target: new, ..w };
            let stored = |x: World| World {
                pending: Some(new),
                fresh: None,
                ..x
            };
            out.push((E::Apply, stored(changed)));
            out.push((E::Apply, stored(w))); // the target said yes and did nothing
            out.push((E::ApplyFailed, w));
            out.push((E::ApplyFailed, changed)); // changed, then the connection dropped
            out.push((E::Crash, crash));
            out.push((
                E::Crash,
                World {
                    fresh: None,
                    ..changed
                },
            ));
        }
        S::Applied => {
            let opens = w.pending == Some(w.target);
            out.push((if opens { E::Verify } else { E::VerifyFailed }, w));
            out.push((E::Crash, crash));
        }
        S::Verified => {
            if let Some(p) = w.pending {
                out.push((
                    E::Promote,
                    World {
                        current: p,
                        pending: None,
                        ..w
                    },
                ));
            }
            out.push((E::Crash, crash));
        }
        S::Reconciling => {
            let reachable = reconcile(w.pending.map(|p| p == w.target), w.current == w.target);
            let unreachable = reconcile(w.pending.map(|_| false), false);
            for decision in [reachable, unreachable] {
                let after = match (decision, w.pending) {
                    (D::PromotePending, Some(p)) => World {
                        current: p,
                        pending: None,
                        ..w
                    },
                    (D::KeepCurrent, _) => World { pending: None, ..w },
                    _ => w,
                };
                out.push((decision.event(), after));
            }
            out.push((E::Crash, crash));
        }
        S::Failed => out.push((E::Resume, w)),
        _ => {}
    }
    out
}

/// Explores every reachable world; returns (worlds seen, worlds that lost the account).
fn explore(write_ahead: bool) -> (HashSet<World>, Vec<World>) {
    let start = World {
        state: S::Idle,
        current: 0,
        pending: None,
        fresh: None,
        target: 0,
        next_secret: 1,
    };
    let mut seen = HashSet::from([start]);
    let mut todo = vec![start];
    let mut lost = Vec::new();
    while let Some(w) = todo.pop() {
        if !w.holds_opening_secret() {
            lost.push(w);
        }
        for (event, after) in moves(w, write_ahead) {
            let state = next(w.state, event).unwrap_or_else(|e| panic!("{w:?}: {e}"));
            let after = World { state, ..after };
            if seen.insert(after) {
                todo.push(after);
            }
        }
    }
    (seen, lost)
}

#[test]
fn l2_every_reachable_world_holds_a_secret_that_opens() {
    let (seen, lost) = explore(true);
    assert!(lost.is_empty(), "{lost:?}");
    // Settled means exactly one secret, and it opens.
    for w in seen.iter().filter(|w| w.state.is_settled()) {
        assert_eq!(w.pending, None, "{w:?}");
        assert_eq!(w.current, w.target, "{w:?}");
    }
    // The walk reached every state, two full rotations, and the failure paths.
    for state in S::ALL {
        assert!(seen.iter().any(|w| w.state == state), "{state} unreached");
    }
    assert!(seen
        .iter()
        .any(|w| w.state == S::Promoted && w.current == 2));
    assert!(seen
        .iter()
        .any(|w| w.state == S::Idle && w.current == 1 && w.next_secret == 3));
    // The size of the model: a change to the moves or the table shows up here first.
    assert_eq!(seen.len(), 30);
}

#[test]
fn l2_negative_control_without_the_journal_loses_the_account() {
    let (_, lost) = explore(false);
    // A crash after the target changed, before the new secret was stored.
    assert!(lost
        .iter()
        .any(|w| w.state == S::Reconciling && w.pending.is_none() && w.target != w.current));
}
