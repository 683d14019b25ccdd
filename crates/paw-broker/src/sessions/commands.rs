//! Command control for exec sessions (issue #15, J5): the command string of `ssh host cmd` is
//! checked against the grant's entitlement's rules before anything reaches the target. An
//! interactive shell is not checked here yet: its lines need the terminal followed keystroke by
//! keystroke, which is the next part of the issue.

use paw_audit::Outcome;
use paw_commands::{Action, Verdict};
use serde_json::json;

use crate::audit::{self, Entry};
use crate::sessions::error::Result;
use crate::sessions::{SessionInfo, Sessions};

/// Longest command line kept in an audit record (the recording has all of it).
const MAX_LINE_IN_AUDIT: usize = 1000;

/// Whether the exec request may go to the target; `Err(line)` is the one line the user is told.
pub(crate) async fn check_exec(
    svc: &Sessions,
    info: &SessionInfo,
    command: &[u8],
) -> Result<std::result::Result<(), String>> {
    let policy = svc.policy.get();
    // A grant whose entitlement left the policy keeps no rules to enforce, so its exec runs
    // as any grant does until the grant ends; the reload that removed it is audited.
    let Some(control) = policy
        .entitlement(&info.entitlement)
        .and_then(|e| e.commands())
    else {
        return Ok(Ok(()));
    };
    let line = String::from_utf8_lossy(command);
    let verdict = if std::str::from_utf8(command).is_err() {
        None
    } else {
        Some(control.check(&line))
    };
    let (action, decisive, undecidable, why) = match &verdict {
        None => (Action::Deny, None, vec![], "the command is not UTF-8 text".to_owned()),
        Some(Verdict::Incomplete) => (
            Action::Deny,
            None,
            vec![],
            "the command is incomplete (an open quote, a trailing backslash or an unfinished block)"
                .to_owned(),
        ),
        Some(Verdict::Checked(c)) => {
            let decisive = c
                .commands
                .iter()
                .find(|cmd| cmd.action == c.action)
                .or_else(|| c.commands.first());
            let why = match (c.action, decisive) {
                (Action::Deny, Some(cmd)) => {
                    match cmd.rule.and_then(|r| control_reason(control, r)) {
                        Some(reason) => format!("`{}` is denied: {reason}", cmd.normalized),
                        None => format!("`{}` is not allowed here", cmd.normalized),
                    }
                }
                (Action::Deny, None) => "is denied".to_owned(),
                (Action::StepUp, _) => format!(
                    "{} needs a security-key step-up, which an exec session cannot ask for yet",
                    decisive.map_or("the command".to_owned(), |d| format!("`{}`", d.normalized))
                ),
                (Action::Approve, _) => format!(
                    "{} needs a second person's approval, which an exec session cannot wait for yet",
                    decisive.map_or("the command".to_owned(), |d| format!("`{}`", d.normalized))
                ),
                _ => String::new(),
            };
            (c.action, decisive.map(|d| d.normalized.clone()), c.undecidable.clone(), why)
        }
    };
    let refused = matches!(action, Action::Deny | Action::StepUp | Action::Approve);
    // Every refusal is on record; of what runs, what a rule warns about or the parser could
    // not decide (flagged); a plain allowed command is in the recording only.
    if refused || action == Action::Warn || !undecidable.is_empty() {
        let mut kept: String = line.chars().take(MAX_LINE_IN_AUDIT).collect();
        if kept.len() < line.len() {
            kept.push('…');
        }
        audit::record(
            &svc.db,
            svc.clock.now_ms(),
            Entry::new(
                &info.user,
                if refused {
                    "command_denied"
                } else {
                    "command_flagged"
                },
                &info.id,
                if refused {
                    Outcome::Denied
                } else {
                    Outcome::Success
                },
                json!({
                    "entitlement": info.entitlement,
                    "grant_id": info.grant_id,
                    "target": info.target,
                    "kind": "exec",
                    "action": action.as_str(),
                    "command": decisive,
                    "line": kept,
                    "undecidable": undecidable,
                }),
            ),
        )
        .await?;
    }
    Ok(if refused {
        Err(format!("command refused: {why}"))
    } else {
        Ok(())
    })
}

/// The reason the configuration gives for rule `rule`, if it gives one.
fn control_reason(control: &paw_policy::CommandControl, rule: usize) -> Option<String> {
    control.config().rules.get(rule)?.reason.clone()
}
