//! Step-ups the user was shown and has not answered yet: key management and elevation alike.
//!
//! Rules:
//! - One map for every kind, so the bound and the expiry apply to all of them, and cancelling
//!   needs no kind.
//! - A prompt is confirmed only by the confirm call of its own kind: a key-management prompt
//!   cannot be spent by `confirm_elevation`, nor an elevation prompt by `confirm_step_up`. The
//!   UI is untrusted and the two calls post to different endpoints; a mix-up must fail here,
//!   not at the broker after the key was touched.
//! - Single use: a prompt leaves the map before anything is signed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use paw_proto::action::Action;
use paw_proto::http::ChallengeResponse;
use paw_proto::ipc::KeyAction;

use crate::ClientError;

/// Prompts kept at once; a UI that never confirms or cancels cannot grow this without bound.
pub(crate) const MAX_PENDING: usize = 16;

/// Which confirm call a prompt belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PendingKind {
    Key,
    Elevation,
    Session,
    KillSession,
    Hold,
    Reveal,
    Rotate,
}

/// What confirming a prompt does besides sending the signed action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PendingOp {
    /// Security-key management (`confirm_step_up`).
    Key(KeyAction),
    /// A request, decision or break-glass (`confirm_elevation`); the endpoint follows from the
    /// action itself.
    Elevation,
    /// Opening a brokered session (`open_terminal` / `open_forward`).
    Session,
    /// An admin ending someone's session (`confirm_kill_session`).
    KillSession,
    /// Running one's own held command, or deciding someone else's (`confirm_hold_decision`).
    /// The hold's id is kept here: the action of a release names the session, not the hold.
    Hold { hold_id: String },
    /// Revealing a vaulted account's secret (`confirm_reveal`). The account's id is kept here:
    /// the action names the account (`target/account`), the endpoint takes its id.
    Reveal { account_id: String },
    /// An administrator rotating a vaulted account's secret now (`confirm_rotation`).
    Rotate { account_id: String },
}

impl PendingOp {
    pub(crate) fn kind(&self) -> PendingKind {
        match self {
            Self::Key(_) => PendingKind::Key,
            Self::Elevation => PendingKind::Elevation,
            Self::Session => PendingKind::Session,
            Self::KillSession => PendingKind::KillSession,
            Self::Hold { .. } => PendingKind::Hold,
            Self::Reveal { .. } => PendingKind::Reveal,
            Self::Rotate { .. } => PendingKind::Rotate,
        }
    }
}

/// A step-up the user was shown and has not answered yet.
#[derive(Debug, Clone)]
pub(crate) struct PendingStepUp {
    /// The core's own copy of the action, which the broker's challenge was checked against.
    pub(crate) action: Action,
    pub(crate) op: PendingOp,
    pub(crate) challenge: ChallengeResponse,
    pub(crate) created: Instant,
}

/// The open prompts by id.
#[derive(Debug)]
pub(crate) struct PendingStepUps {
    map: HashMap<String, PendingStepUp>,
    ttl: Duration,
}

impl PendingStepUps {
    /// Prompts live for `ttl` (the broker's challenge lifetime).
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            map: HashMap::new(),
            ttl,
        }
    }

    fn alive(ttl: Duration, p: &PendingStepUp, now: Instant) -> bool {
        now.saturating_duration_since(p.created) < ttl
    }

    /// Keeps `p` under `id`, after dropping expired prompts; refused when too many are open.
    pub(crate) fn insert(
        &mut self,
        id: String,
        p: PendingStepUp,
        now: Instant,
    ) -> Result<(), ClientError> {
        let ttl = self.ttl;
        self.map.retain(|_, q| Self::alive(ttl, q, now));
        if self.map.len() >= MAX_PENDING {
            return Err(ClientError::InvalidInput {
                field: "step_up",
                reason: "too many confirmations are open; cancel some first".into(),
            });
        }
        self.map.insert(id, p);
        Ok(())
    }

    /// Removes and returns the live prompt `id` of `kind`. A prompt of the other kind stays
    /// where it is (its own confirm call may still spend it) and the answer is
    /// [`ClientError::StepUpUnknown`], as for an unknown, used or expired id.
    pub(crate) fn take(
        &mut self,
        id: &str,
        kind: PendingKind,
        now: Instant,
    ) -> Result<PendingStepUp, ClientError> {
        match self.map.get(id) {
            Some(p) if p.op.kind() == kind => {}
            _ => return Err(ClientError::StepUpUnknown),
        }
        let p = self.map.remove(id).ok_or(ClientError::StepUpUnknown)?;
        if Self::alive(self.ttl, &p, now) {
            Ok(p)
        } else {
            Err(ClientError::StepUpUnknown)
        }
    }

    /// Drops prompt `id` of any kind; an unknown id is fine (the result is the same).
    pub(crate) fn cancel(&mut self, id: &str) {
        self.map.remove(id);
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use paw_proto::action::Purpose;
    use serde_json::Value;

    use super::*;

    const TTL: Duration = Duration::from_secs(300);

    fn pending(op: PendingOp, created: Instant) -> PendingStepUp {
        let action = match &op {
            PendingOp::Key(_) => Action::KeyManagement {
                operation: "revoke".into(),
                credential: "k1".into(),
            },
            PendingOp::Elevation => Action::Approve {
                request_id: "r1".into(),
                approve: true,
                comment: String::new(),
            },
            PendingOp::Session => Action::Session {
                grant_id: "g1".into(),
                target: "web-1".into(),
            },
            PendingOp::KillSession => Action::KillSession {
                session_id: "s1".into(),
                reason: "left open".into(),
            },
            PendingOp::Hold { .. } => Action::Command {
                session_id: "s1".into(),
                target: "web-1".into(),
                command: "rm /x".into(),
            },
            PendingOp::Reveal { .. } => Action::RevealSecret {
                account: "web-1/root".into(),
                grant_id: "g1".into(),
                reason: "appliance console".into(),
            },
            PendingOp::Rotate { .. } => Action::RotateSecret {
                account: "web-1/root".into(),
                reason: "left the team".into(),
            },
        };
        PendingStepUp {
            challenge: ChallengeResponse {
                challenge: "c".into(),
                purpose: action.purpose(),
                action_hash: String::new(),
                description: action.describe(),
                options: Value::Null,
            },
            action,
            op,
            created,
        }
    }

    fn key_op() -> PendingOp {
        PendingOp::Key(KeyAction::Revoke { id: "k1".into() })
    }

    #[test]
    fn an_elevation_prompt_cannot_be_confirmed_as_a_key_prompt() {
        let now = Instant::now();
        let mut m = PendingStepUps::new(TTL);
        m.insert("e".into(), pending(PendingOp::Elevation, now), now)
            .unwrap();
        assert!(matches!(
            m.take("e", PendingKind::Key, now),
            Err(ClientError::StepUpUnknown)
        ));
        // Still there for its own confirm call, and then spent.
        let p = m.take("e", PendingKind::Elevation, now).unwrap();
        assert_eq!(p.action.purpose(), Purpose::Approve);
        assert!(matches!(
            m.take("e", PendingKind::Elevation, now),
            Err(ClientError::StepUpUnknown)
        ));
    }

    #[test]
    fn a_key_prompt_cannot_be_confirmed_as_an_elevation() {
        let now = Instant::now();
        let mut m = PendingStepUps::new(TTL);
        m.insert("k".into(), pending(key_op(), now), now).unwrap();
        assert!(matches!(
            m.take("k", PendingKind::Elevation, now),
            Err(ClientError::StepUpUnknown)
        ));
        let p = m.take("k", PendingKind::Key, now).unwrap();
        assert_eq!(p.op, key_op());
        assert!(m.take("k", PendingKind::Key, now).is_err(), "single use");
    }

    #[test]
    fn cancel_drops_either_kind_and_unknown_ids_are_fine() {
        let now = Instant::now();
        let mut m = PendingStepUps::new(TTL);
        m.insert("k".into(), pending(key_op(), now), now).unwrap();
        m.insert("e".into(), pending(PendingOp::Elevation, now), now)
            .unwrap();
        m.cancel("k");
        m.cancel("e");
        m.cancel("nope");
        assert_eq!(m.len(), 0);
        assert!(m.take("k", PendingKind::Key, now).is_err());
        assert!(m.take("e", PendingKind::Elevation, now).is_err());
    }

    #[test]
    fn expired_prompts_are_refused_and_pruned() {
        let then = Instant::now();
        let later = then + TTL;
        let mut m = PendingStepUps::new(TTL);
        m.insert("e".into(), pending(PendingOp::Elevation, then), then)
            .unwrap();
        assert!(matches!(
            m.take("e", PendingKind::Elevation, later),
            Err(ClientError::StepUpUnknown)
        ));
        assert_eq!(m.len(), 0, "an expired prompt is removed when tried");
        for i in 0..MAX_PENDING {
            m.insert(i.to_string(), pending(key_op(), then), then)
                .unwrap();
        }
        let e = m
            .insert("x".into(), pending(key_op(), then), then)
            .unwrap_err();
        assert!(matches!(e, ClientError::InvalidInput { .. }));
        // Once the old ones expired there is room again.
        m.insert("x".into(), pending(key_op(), later), later)
            .unwrap();
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn clear_forgets_everything() {
        let now = Instant::now();
        let mut m = PendingStepUps::new(TTL);
        m.insert("k".into(), pending(key_op(), now), now).unwrap();
        m.clear();
        assert!(m.take("k", PendingKind::Key, now).is_err());
    }

    #[test]
    fn a_session_prompt_is_not_a_kill_and_a_kill_is_not_a_session() {
        let now = Instant::now();
        let mut m = PendingStepUps::new(TTL);
        m.insert("s".into(), pending(PendingOp::Session, now), now)
            .unwrap();
        m.insert("k".into(), pending(PendingOp::KillSession, now), now)
            .unwrap();
        assert!(m.take("s", PendingKind::KillSession, now).is_err());
        assert!(m.take("k", PendingKind::Session, now).is_err());
        assert!(m.take("k", PendingKind::Elevation, now).is_err());
        assert!(matches!(
            m.take("s", PendingKind::Session, now).unwrap().action,
            Action::Session { .. }
        ));
        assert!(matches!(
            m.take("k", PendingKind::KillSession, now).unwrap().action,
            Action::KillSession { .. }
        ));
    }

    #[test]
    fn a_hold_prompt_is_confirmed_only_as_a_hold() {
        let now = Instant::now();
        let mut m = PendingStepUps::new(TTL);
        let hold = || PendingOp::Hold {
            hold_id: "h1".into(),
        };
        m.insert("h".into(), pending(hold(), now), now).unwrap();
        m.insert("k".into(), pending(PendingOp::KillSession, now), now)
            .unwrap();
        for other in [
            PendingKind::Key,
            PendingKind::Elevation,
            PendingKind::Session,
            PendingKind::KillSession,
        ] {
            assert!(m.take("h", other, now).is_err(), "{other:?}");
        }
        assert!(m.take("k", PendingKind::Hold, now).is_err());
        let p = m.take("h", PendingKind::Hold, now).unwrap();
        assert_eq!(p.op, hold());
        assert!(matches!(p.action, Action::Command { .. }));
        assert!(m.take("h", PendingKind::Hold, now).is_err(), "single use");
    }

    #[test]
    fn a_reveal_is_not_a_rotation_and_neither_is_anything_else() {
        let now = Instant::now();
        let mut m = PendingStepUps::new(TTL);
        let reveal = || PendingOp::Reveal {
            account_id: "a1".into(),
        };
        let rotate = || PendingOp::Rotate {
            account_id: "a1".into(),
        };
        m.insert("v".into(), pending(reveal(), now), now).unwrap();
        m.insert("r".into(), pending(rotate(), now), now).unwrap();
        m.insert("e".into(), pending(PendingOp::Elevation, now), now)
            .unwrap();
        for other in [
            PendingKind::Key,
            PendingKind::Elevation,
            PendingKind::Session,
            PendingKind::KillSession,
            PendingKind::Hold,
            PendingKind::Rotate,
        ] {
            assert!(m.take("v", other, now).is_err(), "{other:?}");
        }
        assert!(m.take("r", PendingKind::Reveal, now).is_err());
        assert!(m.take("e", PendingKind::Reveal, now).is_err());
        assert!(m.take("e", PendingKind::Rotate, now).is_err());
        let p = m.take("v", PendingKind::Reveal, now).unwrap();
        assert_eq!(p.op, reveal());
        assert_eq!(p.action.purpose(), Purpose::RevealSecret);
        assert!(m.take("v", PendingKind::Reveal, now).is_err(), "single use");
        let p = m.take("r", PendingKind::Rotate, now).unwrap();
        assert_eq!(p.op, rotate());
        assert_eq!(p.action.purpose(), Purpose::RotateSecret);
    }
}
