//! Vaulted credentials (issue #17) from the workstation: the accounts the user may see, a
//! reveal of one account's secret under a grant, and an administrator's rotation on demand.
//!
//! Rules:
//! - The UI names an account by id and says which grant and why; nothing else of it crosses
//!   IPC. The account's name (`target/account`), which the key signs, comes from the broker's
//!   own list, fetched at prepare time, so a compromised UI cannot make the user sign a reveal
//!   of another account than the one shown (the broker checks the binding again). An id the
//!   broker does not list for this user is refused before the key is touched.
//! - A reveal prompt is confirmed only by [`Core::confirm_reveal`], a rotation prompt only by
//!   [`Core::confirm_rotation`] (their own pending kinds); the endpoint follows from the core's
//!   copy of the prompt.
//! - The revealed secret passes through: it goes from the broker's answer to the caller and
//!   is kept nowhere here. Neither the local audit trail (its records hold the account, grant,
//!   reason and times, never the secret) nor a log line ever sees it; [`RevealedSecret`]'s
//!   `Debug` hides it.
//! - Reasons are checked, not cleaned: what the user typed is what the key signs and the
//!   audit keeps, so text that could make the prompt read differently is refused.

#[cfg(test)]
use paw_policy::limits::MAX_COMMENT_CHARS;
use paw_proto::action::Action;
use paw_proto::ipc::StepUpPrompt;
use paw_proto::vault::{
    RevealInput, RevealRequest, RevealedSecret, RotateInput, RotateRequest, VaultAccountList,
    VaultAccountView,
};
use reqwest::Method;
use serde_json::{json, Value};

use crate::audit::{Audit, Summary};
use crate::elevation::check_id;
use crate::pending::{PendingKind, PendingOp, PendingStepUp};
use crate::util::encode;
use crate::{ClientError, Core};

const ACCOUNTS: &str = "/v1/vault/accounts";

/// The end record of a reveal: which account and until when, never the secret.
impl Summary for RevealedSecret {
    fn summary(&self) -> Value {
        json!({"account": self.account, "show_until_ms": self.show_until_ms,
               "checkout_until_ms": self.checkout_until_ms})
    }
}

impl Summary for VaultAccountView {
    fn summary(&self) -> Value {
        json!({"account": self.name, "version": self.version,
               "rotation": self.rotation.state, "result": self.rotation.last_result})
    }
}

fn bad(field: &'static str, reason: impl Into<String>) -> ClientError {
    ClientError::InvalidInput {
        field,
        reason: reason.into(),
    }
}

/// A reason for a reveal or a rotation: required, one line of visible text, at most
/// paw-policy's `MAX_COMMENT_CHARS`, and not padded (it is signed and kept as typed, never trimmed).
fn check_reason(reason: &str) -> Result<(), ClientError> {
    crate::elevation::check_comment("reason", reason, true)?;
    if reason.starts_with(char::is_whitespace) || reason.ends_with(char::is_whitespace) {
        return Err(bad("reason", "a reason does not start or end with a space"));
    }
    Ok(())
}

/// Where a signed vault action goes, from the core's own copy of the prompt.
fn endpoint(p: &PendingStepUp) -> Result<String, ClientError> {
    let (account_id, verb) = match (&p.op, &p.action) {
        (PendingOp::Reveal { account_id }, Action::RevealSecret { .. }) => (account_id, "reveal"),
        (PendingOp::Rotate { account_id }, Action::RotateSecret { .. }) => (account_id, "rotate"),
        _ => {
            return Err(ClientError::Internal(
                "a vault prompt holds another action".into(),
            ))
        }
    };
    // Checked at prepare time; checked again because it becomes a URL path.
    check_id("account_id", account_id)?;
    Ok(format!("{ACCOUNTS}/{account_id}/{verb}"))
}

impl Core {
    /// The vaulted accounts the user may see (administrators and help-desk every one, others
    /// those their entitlements may use), metadata only, with the broker's time.
    pub async fn vault_accounts(&self) -> Result<VaultAccountList, ClientError> {
        self.authed(Method::GET, ACCOUNTS, None).await
    }

    /// The account `id` as the broker lists it for this user; refused (before any step-up)
    /// when it is not listed.
    async fn vault_account(&self, id: &str) -> Result<VaultAccountView, ClientError> {
        self.vault_accounts()
            .await?
            .accounts
            .into_iter()
            .find(|a| a.id == id)
            .ok_or_else(|| {
                bad(
                    "account_id",
                    "no vaulted account with this id is listed for you",
                )
            })
    }

    /// Asks for the step-up that reveals an account's secret under one of the user's active
    /// grants for it (the grant's target and role are the account's `target/account`), for a
    /// stated reason. The key signs the account's name from the broker's list; an account or
    /// grant that does not fit is refused before the key is touched. Whether the grant's
    /// entitlement allows a reveal is the broker's to decide.
    pub async fn prepare_reveal(&self, input: RevealInput) -> Result<StepUpPrompt, ClientError> {
        check_id("account_id", &input.account_id)?;
        check_id("grant_id", &input.grant_id)?;
        check_reason(&input.reason)?;
        self.authenticator()?;
        let account = self.vault_account(&input.account_id).await?;
        let grants = self.grants().await?;
        let grant = grants
            .grants
            .iter()
            .find(|g| g.id == input.grant_id && g.state == "active")
            .ok_or_else(|| bad("grant_id", "no active grant of yours with this id"))?;
        if grant.target != account.target || grant.role != account.account {
            return Err(bad(
                "grant_id",
                format!(
                    "this grant is for {} on {}, not for {}",
                    grant.role, grant.target, account.name
                ),
            ));
        }
        let action = Action::RevealSecret {
            account: account.name,
            grant_id: input.grant_id,
            reason: input.reason,
        };
        self.start_step_up(
            action,
            PendingOp::Reveal {
                account_id: account.id,
            },
        )
        .await
    }

    /// Answers a prepared reveal with the security key and returns the secret, once. The
    /// prompt is removed first (single use), and only a reveal prompt is accepted. Audited as
    /// `vault.reveal`: the records name the account, grant and reason, never the secret.
    pub async fn confirm_reveal(&self, id: String) -> Result<RevealedSecret, ClientError> {
        let p = self.take_pending(&id, PendingKind::Reveal)?;
        let Action::RevealSecret {
            account,
            grant_id,
            reason,
        } = &p.action
        else {
            return Err(ClientError::StepUpUnknown);
        };
        let path = endpoint(&p)?;
        let what = Audit::for_action("vault.reveal", account.clone(), &p.action);
        self.audited(what, async {
            let client = self.client().await?;
            let credential = self.assert(&client, &p.challenge).await?;
            let body = encode(&RevealRequest {
                grant_id: grant_id.clone(),
                reason: reason.clone(),
                challenge: p.challenge.challenge.clone(),
                credential,
            })?;
            let revealed: RevealedSecret = self.authed(Method::POST, &path, Some(body)).await?;
            // The user signed for this account: a secret of another one is not shown (and is
            // dropped here, unseen).
            if &revealed.account != account {
                return Err(ClientError::Protocol(
                    "the broker revealed another account than the one signed for".into(),
                ));
            }
            tracing::info!(account = %revealed.account, "vault secret revealed");
            Ok(revealed)
        })
        .await
    }

    /// Asks for an administrator's step-up that rotates an account's secret now, for a stated
    /// reason. The key signs the account's name from the broker's list.
    pub async fn prepare_rotation(&self, input: RotateInput) -> Result<StepUpPrompt, ClientError> {
        check_id("account_id", &input.account_id)?;
        check_reason(&input.reason)?;
        self.authenticator()?;
        let account = self.vault_account(&input.account_id).await?;
        let action = Action::RotateSecret {
            account: account.name,
            reason: input.reason,
        };
        self.start_step_up(
            action,
            PendingOp::Rotate {
                account_id: account.id,
            },
        )
        .await
    }

    /// Answers a prepared rotation with the security key and sends it; returns the account as
    /// it stands after the attempt (a failed rotation is in its rotation status, not an
    /// error). Only a rotation prompt is accepted. Audited as `vault.rotate`.
    pub async fn confirm_rotation(&self, id: String) -> Result<VaultAccountView, ClientError> {
        let p = self.take_pending(&id, PendingKind::Rotate)?;
        let Action::RotateSecret { account, reason } = &p.action else {
            return Err(ClientError::StepUpUnknown);
        };
        let path = endpoint(&p)?;
        let what = Audit::for_action("vault.rotate", account.clone(), &p.action);
        self.audited(what, async {
            let client = self.client().await?;
            let credential = self.assert(&client, &p.challenge).await?;
            let body = encode(&RotateRequest {
                reason: reason.clone(),
                challenge: p.challenge.challenge.clone(),
                credential,
            })?;
            self.authed(Method::POST, &path, Some(body)).await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use paw_proto::http::ChallengeResponse;

    use super::*;

    #[test]
    fn reasons_are_required_one_line_bounded_and_unpadded() {
        check_reason("INC-42: the appliance has no SSH").unwrap();
        check_reason(&"é".repeat(MAX_COMMENT_CHARS)).unwrap();
        for r in [
            String::new(),
            "   ".into(),
            "two\nlines".into(),
            "zero\u{200B}width".into(),
            "bidi \u{202E}txet".into(),
            " padded".into(),
            "padded ".into(),
            "x".repeat(MAX_COMMENT_CHARS + 1),
        ] {
            assert!(
                matches!(
                    check_reason(&r),
                    Err(ClientError::InvalidInput {
                        field: "reason",
                        ..
                    })
                ),
                "{r:?}"
            );
        }
    }

    fn pending(op: PendingOp, action: Action) -> PendingStepUp {
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
            created: Instant::now(),
        }
    }

    #[test]
    fn each_prompt_goes_to_its_own_endpoint_and_nowhere_else() {
        let reveal = Action::RevealSecret {
            account: "web-1/root".into(),
            grant_id: "g1".into(),
            reason: "r".into(),
        };
        let rotate = Action::RotateSecret {
            account: "web-1/root".into(),
            reason: "r".into(),
        };
        let op = |id: &str, rev: bool| {
            let account_id = id.to_owned();
            if rev {
                PendingOp::Reveal { account_id }
            } else {
                PendingOp::Rotate { account_id }
            }
        };
        assert_eq!(
            endpoint(&pending(op("a-1", true), reveal.clone())).unwrap(),
            "/v1/vault/accounts/a-1/reveal"
        );
        assert_eq!(
            endpoint(&pending(op("a-1", false), rotate.clone())).unwrap(),
            "/v1/vault/accounts/a-1/rotate"
        );
        // A kind that holds the other action, or an id that is no path segment: refused.
        for p in [
            pending(op("a-1", true), rotate.clone()),
            pending(op("a-1", false), reveal.clone()),
        ] {
            assert!(matches!(endpoint(&p), Err(ClientError::Internal(_))));
        }
        for id in ["", "../keys", "a/b", "a?x"] {
            assert!(
                endpoint(&pending(op(id, true), reveal.clone())).is_err(),
                "{id:?}"
            );
        }
    }

    #[test]
    fn the_end_record_of_a_reveal_has_no_secret() {
        let r = RevealedSecret {
            account: "web-1/root".into(),
            secret: "hunter2-Zq9".into(),
            now_ms: 0,
            show_until_ms: 1,
            checkout_until_ms: 2,
        };
        let s = r.summary().to_string();
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("web-1/root"), "{s}");
        assert!(!format!("{r:?}").contains("hunter2"));
    }
}
