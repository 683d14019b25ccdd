//! Held commands (issue #15, J3/J4) from the workstation: the list of commands the broker holds
//! for this user, running one's own held command with a step-up, and an approver's decision on
//! someone else's.
//!
//! Rules:
//! - The UI names a hold by id and says yes or no; nothing else of it crosses IPC. The command,
//!   session and target the key signs come from the broker's own list of holds, fetched at
//!   prepare time, so a compromised UI cannot make the user sign another command than the one
//!   the broker holds (the broker checks the binding again).
//! - A hold prompt is confirmed only by [`Core::confirm_hold_decision`] (its own pending kind),
//!   and the endpoint follows from the core's copy of the action: a release for the user's own
//!   command, a decision for someone else's.
//! - The user's own held command is never refused from here: the broker's API refuses it by
//!   letting it time out, so a "no" for one's own hold is an input error, not a request.

use paw_proto::action::Action;
use paw_proto::elevation::SignedElevation;
use paw_proto::http::StepUpFinishRequest;
use paw_proto::ipc::{HeldCommands, HoldDecisionInput, StepUpPrompt};
use paw_proto::session::{CommandHoldList, CommandHoldView};
use reqwest::Method;
use serde_json::{json, Value};

use crate::audit::{Audit, Summary};
use crate::elevation::check_id;
use crate::pending::{PendingKind, PendingOp};
use crate::util::encode;
use crate::{ClientError, Core};

/// `needs` of a hold that its own user releases with a step-up.
const NEEDS_STEP_UP: &str = "step_up";
/// `needs` of a hold that another person approves or refuses.
const NEEDS_APPROVE: &str = "approve";

impl Summary for CommandHoldView {
    fn summary(&self) -> Value {
        json!({"hold": self.id, "session": self.session_id, "state": self.state,
               "target": self.target, "decided_by": self.decided_by})
    }
}

fn bad(reason: &str) -> ClientError {
    ClientError::InvalidInput {
        field: "hold_id",
        reason: reason.into(),
    }
}

/// What a step-up signs for an answer to `hold`, given who the user is: the user's own
/// step-up hold is run with [`Action::Command`], someone else's approval hold is decided
/// with [`Action::ApproveCommand`]; every other combination is refused before the broker.
fn hold_action(hold: &CommandHoldView, me: &str, approve: bool) -> Result<Action, ClientError> {
    let mine = hold.user == me;
    match (hold.needs.as_str(), mine, approve) {
        (NEEDS_STEP_UP, true, true) => Ok(Action::Command {
            session_id: hold.session_id.clone(),
            target: hold.target.clone(),
            command: hold.command.clone(),
        }),
        (NEEDS_STEP_UP, true, false) => Err(bad(
            "a held command of your own is refused by letting it time out or pressing nothing",
        )),
        (NEEDS_STEP_UP, false, _) => Err(bad(
            "only the session's own user runs a command held for a step-up",
        )),
        (NEEDS_APPROVE, true, _) => Err(bad(
            "your own held command waits for another person's approval",
        )),
        (NEEDS_APPROVE, false, approve) => Ok(Action::ApproveCommand {
            hold_id: hold.id.clone(),
            command: hold.command.clone(),
            approve,
        }),
        (other, _, _) => Err(ClientError::Protocol(format!(
            "the broker holds a command for an unknown reason ({other:?})"
        ))),
    }
}

/// Where a signed answer to hold `hold_id` goes, from the core's own copy of the action.
fn endpoint(action: &Action, hold_id: &str) -> Result<String, ClientError> {
    // Checked at prepare time; checked again because it becomes a URL path.
    check_id("hold_id", hold_id)?;
    match action {
        Action::Command { .. } => Ok(format!("/v1/holds/{hold_id}/release")),
        Action::ApproveCommand { hold_id: h, .. } if h == hold_id => {
            Ok(format!("/v1/holds/{hold_id}/decide"))
        }
        _ => Err(ClientError::Internal(
            "a hold prompt holds another action".into(),
        )),
    }
}

impl Core {
    /// The held commands the user may act on: their own, and those they may approve, with the
    /// broker's time (as estimated here) for the countdowns.
    pub async fn list_holds(&self) -> Result<HeldCommands, ClientError> {
        let list: CommandHoldList = self.authed(Method::GET, "/v1/holds", None).await?;
        Ok(HeldCommands {
            holds: list.holds,
            now_ms: self.broker_time_ms().await,
        })
    }

    /// Asks for the step-up that answers held command `hold_id`: run it (the user's own), or
    /// let it run / refuse it (an approver). The command, session and target come from the
    /// broker's list, never from the UI; a hold that is not waiting for this user is refused
    /// before the key is touched.
    pub async fn prepare_hold_decision(
        &self,
        input: HoldDecisionInput,
    ) -> Result<StepUpPrompt, ClientError> {
        check_id("hold_id", &input.hold_id)?;
        self.authenticator()?;
        let me = self.signed_in_name().await?;
        let list: CommandHoldList = self.authed(Method::GET, "/v1/holds", None).await?;
        let hold = list
            .holds
            .into_iter()
            .find(|h| h.id == input.hold_id)
            .ok_or_else(|| {
                bad("this held command is not waiting for you (decided, timed out, or not yours)")
            })?;
        let action = hold_action(&hold, &me, input.approve)?;
        let approving = matches!(action, Action::ApproveCommand { .. });
        let mut prompt = self
            .start_step_up(
                action,
                PendingOp::Hold {
                    hold_id: hold.id.clone(),
                },
            )
            .await?;
        // The approval signs the hold's id and command; so that the approver reads whose
        // session and which target it runs on, the prompt names them as the broker holds them.
        if approving {
            prompt.description = format!(
                "In {}'s session {} on {}: {}",
                hold.user, hold.session_id, hold.target, prompt.description
            );
        }
        Ok(prompt)
    }

    /// Answers a prepared hold step-up with the security key and sends it: a release for the
    /// user's own command, a decision for someone else's. The prompt is removed first (single
    /// use), and only a hold prompt is accepted.
    pub async fn confirm_hold_decision(&self, id: String) -> Result<CommandHoldView, ClientError> {
        let p = self.take_pending(&id, PendingKind::Hold)?;
        let PendingOp::Hold { hold_id } = &p.op else {
            return Err(ClientError::StepUpUnknown);
        };
        let path = endpoint(&p.action, hold_id)?;
        let decision = match &p.action {
            Action::ApproveCommand { approve, .. } => Some(*approve),
            _ => None,
        };
        // The kinds are literals in the call, where the UI's label test finds them.
        let what = Audit::for_action(
            if decision == Some(true) {
                "command.approve"
            } else if decision == Some(false) {
                "command.refuse"
            } else {
                "command.release"
            },
            hold_id.clone(),
            &p.action,
        );
        self.audited(what, async {
            let client = self.client().await?;
            let credential = self.assert(&client, &p.challenge).await?;
            let body = encode(&SignedElevation {
                stepup: StepUpFinishRequest {
                    challenge: p.challenge.challenge.clone(),
                    action: p.action.clone(),
                    credential,
                },
            })?;
            self.authed(Method::POST, &path, Some(body)).await
        })
        .await
    }

    /// The signed-in user's name as last confirmed, asking the broker when it is not known yet.
    async fn signed_in_name(&self) -> Result<String, ClientError> {
        let known = self.inner.state.read().await.user.clone();
        let user = match known {
            Some(u) => Some(u),
            None => self.current_user().await,
        };
        user.map(|u| u.name).ok_or(ClientError::NotSignedIn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(user: &str, needs: &str) -> CommandHoldView {
        CommandHoldView {
            id: "h1".into(),
            session_id: "s1".into(),
            user: user.into(),
            entitlement: "web-root".into(),
            target: "web-1".into(),
            command: "rm /x".into(),
            needs: needs.into(),
            state: "pending".into(),
            created_at: 1,
            expires_at: 120_001,
            decided_by: None,
        }
    }

    #[test]
    fn the_action_comes_from_the_broker_s_hold_and_who_the_user_is() {
        assert_eq!(
            hold_action(&hold("ada", "step_up"), "ada", true).unwrap(),
            Action::Command {
                session_id: "s1".into(),
                target: "web-1".into(),
                command: "rm /x".into(),
            }
        );
        for approve in [true, false] {
            assert_eq!(
                hold_action(&hold("bob", "approve"), "ada", approve).unwrap(),
                Action::ApproveCommand {
                    hold_id: "h1".into(),
                    command: "rm /x".into(),
                    approve,
                }
            );
        }
        for (user, needs, approve) in [
            ("ada", "step_up", false),
            ("bob", "step_up", true),
            ("ada", "approve", true),
            ("ada", "approve", false),
        ] {
            let e = hold_action(&hold(user, needs), "ada", approve).unwrap_err();
            assert!(
                matches!(
                    e,
                    ClientError::InvalidInput {
                        field: "hold_id",
                        ..
                    }
                ),
                "{user} {needs} {approve}: {e:?}"
            );
        }
        let e = hold_action(&hold("ada", "pray"), "ada", true).unwrap_err();
        assert!(matches!(e, ClientError::Protocol(_)), "{e:?}");
    }

    #[test]
    fn the_endpoint_follows_the_action_and_never_another_hold() {
        let run = hold_action(&hold("ada", "step_up"), "ada", true).unwrap();
        assert_eq!(endpoint(&run, "h1").unwrap(), "/v1/holds/h1/release");
        let decide = hold_action(&hold("bob", "approve"), "ada", false).unwrap();
        assert_eq!(endpoint(&decide, "h1").unwrap(), "/v1/holds/h1/decide");
        assert!(endpoint(&decide, "h2").is_err());
        assert!(endpoint(&run, "../h1").is_err());
        let other = Action::KillSession {
            session_id: "s1".into(),
            reason: "x".into(),
        };
        assert!(endpoint(&other, "h1").is_err());
    }
}
