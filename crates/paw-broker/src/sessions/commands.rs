//! Command control (issue #15): what a session may run under its grant's entitlement.
//!
//! Exec sessions (`ssh host cmd`, what automation uses) are checked here before anything
//! reaches the target (J5); interactive shells are checked line by line at Enter by
//! [`crate::sessions::shell`], which asks [`decide`] the same question. One place decides and
//! one place writes the audit record, so an exec and a typed line under the same rules get the
//! same answer and the same record.

use paw_audit::Outcome;
use paw_commands::{Action, Verdict};
use paw_policy::CommandControl;
use serde_json::json;

use crate::audit::{self, Entry};
use crate::sessions::error::Result;
use crate::sessions::{SessionInfo, Sessions};

/// Longest command line kept in an audit record (the recording has all of it).
const MAX_LINE_IN_AUDIT: usize = 1000;

/// What the rules say about one command line.
#[derive(Debug, Clone)]
pub(crate) struct Decision {
    pub action: Action,
    /// The shell would read more before running anything (open quote, here-document…).
    pub incomplete: bool,
    /// The normalized command that decided, the text a step-up or approval is bound to.
    pub command: Option<String>,
    pub undecidable: Vec<String>,
    /// One line for the user, empty when the command runs.
    pub why: String,
}

impl Decision {
    /// Deny, step-up and approval all keep the command from the target for now.
    pub(crate) fn refused(&self) -> bool {
        matches!(self.action, Action::Deny | Action::StepUp | Action::Approve)
    }

    /// What the recording's chapter and the audit call this outcome.
    pub(crate) fn word(&self) -> &'static str {
        if !self.refused() && !self.undecidable.is_empty() {
            "flagged"
        } else {
            self.action.as_str()
        }
    }
}

/// The rules of the session's entitlement as the policy stands now. A grant whose entitlement
/// left the policy keeps no rules to enforce, so its commands run as any grant's do until the
/// grant ends; the reload that removed it is audited.
pub(crate) fn control_of(svc: &Sessions, info: &SessionInfo) -> Option<CommandControl> {
    svc.policy
        .get()
        .entitlement(&info.entitlement)
        .and_then(|e| e.commands())
        .cloned()
}

/// Checks `line`; `doubts` are reasons, found outside the parser, why the line may not be
/// what the shell runs (they count as undecidable: held in strict mode, flagged otherwise).
pub(crate) fn decide(control: &CommandControl, line: &str, doubts: Vec<String>) -> Decision {
    let strict = control.config().strict;
    match control.check(line) {
        Verdict::Incomplete => Decision {
            action: Action::Allow,
            incomplete: true,
            command: None,
            undecidable: doubts,
            why: "the command is incomplete (an open quote, a trailing backslash or an unfinished block)"
                .to_owned(),
        },
        Verdict::Checked(c) => {
            let mut action = c.action;
            let mut undecidable = c.undecidable;
            if !doubts.is_empty() && strict {
                action = action.max(Action::StepUp);
            }
            undecidable.extend(doubts);
            let decisive = c
                .commands
                .iter()
                .find(|cmd| cmd.action == action)
                .or_else(|| c.commands.first());
            let name = |d: Option<&paw_commands::CheckedCommand>| {
                d.map_or("the command".to_owned(), |d| format!("`{}`", d.normalized))
            };
            let why = match action {
                Action::Deny => match decisive.and_then(|d| d.rule.map(|r| (d, r))) {
                    Some((d, r)) => match control.config().rules.get(r).and_then(|r| r.reason.clone()) {
                        Some(reason) => format!("`{}` is denied: {reason}", d.normalized),
                        None => format!("`{}` is not allowed here", d.normalized),
                    },
                    None => format!("{} is not allowed here", name(decisive)),
                },
                Action::StepUp if decisive.is_some_and(|d| d.action == Action::StepUp) => format!(
                    "{} needs a security-key step-up",
                    name(decisive)
                ),
                Action::StepUp => format!(
                    "part of it cannot be checked ({}), which strict mode holds for a step-up",
                    undecidable.first().map_or("unknown", String::as_str)
                ),
                Action::Approve => format!("{} needs a second person's approval", name(decisive)),
                Action::Allow | Action::Warn => String::new(),
            };
            Decision {
                action,
                incomplete: false,
                // What a step-up or approval binds to: the command that decided, or, when the
                // line as a whole is held (undecidable in strict mode), the line itself.
                command: decisive
                    .filter(|d| d.action == action)
                    .map(|d| d.normalized.clone()),
                undecidable,
                why,
            }
        }
    }
}

/// Writes the audit record of a checked command: every refusal, and of what runs, what a rule
/// warns about or the parser could not decide (flagged). A plain allowed command is in the
/// recording only.
pub(crate) async fn record(
    svc: &Sessions,
    info: &SessionInfo,
    kind: &str,
    d: &Decision,
    line: &str,
) -> Result<()> {
    let refused = d.refused();
    if !refused && d.action != Action::Warn && d.undecidable.is_empty() {
        return Ok(());
    }
    let kept = for_audit(svc, line);
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
                "kind": kind,
                "action": d.action.as_str(),
                "command": d.command.as_deref().map(|c| for_audit(svc, c)),
                "line": kept,
                "undecidable": d.undecidable,
            }),
        ),
    )
    .await?;
    Ok(())
}

/// A command line as the audit keeps it: what `[sessions] mask` matches hidden (a password
/// typed as an argument), cut at [`MAX_LINE_IN_AUDIT`] characters; the recording has the rest.
pub(crate) fn for_audit(svc: &Sessions, line: &str) -> String {
    let masked = match svc.ssh.as_ref() {
        Some(r) => r.front.masks().mask(line, crate::sessions::history::MASK),
        None => line.to_owned(),
    };
    let mut kept: String = masked.chars().take(MAX_LINE_IN_AUDIT).collect();
    if kept.len() < masked.len() {
        kept.push('…');
    }
    kept
}

/// Whether the exec request may go to the target; `Err(line)` is the one line the user is told.
pub(crate) async fn check_exec(
    svc: &Sessions,
    info: &SessionInfo,
    command: &[u8],
) -> Result<std::result::Result<(), String>> {
    let Some(control) = control_of(svc, info) else {
        return Ok(Ok(()));
    };
    let line = String::from_utf8_lossy(command);
    let mut d = match std::str::from_utf8(command) {
        Err(_) => Decision {
            action: Action::Deny,
            incomplete: false,
            command: None,
            undecidable: vec![],
            why: "the command is not UTF-8 text".to_owned(),
        },
        Ok(text) => decide(&control, text, vec![]),
    };
    // An exec has no next line: what is incomplete will never be complete.
    if d.incomplete {
        d.action = Action::Deny;
    }
    // An exec session has no terminal to ask for a step-up or to wait in.
    match d.action {
        Action::StepUp => d.why.push_str(", which an exec session cannot ask for"),
        Action::Approve => d.why.push_str(", which an exec session cannot wait for"),
        _ => {}
    }
    record(svc, info, "exec", &d, &line).await?;
    Ok(if d.refused() {
        Err(format!("command refused: {}", d.why))
    } else {
        Ok(())
    })
}

/// A machine's session asking for a terminal or a shell (K5, K6): refused unless its
/// entitlement sets `machine_pty`, and on record either way, since a person typing through a
/// machine's credential is what the inventory's `interactive_use` flag looks for. Exec
/// requests pass without a record here (their command check records them).
pub(crate) async fn check_machine_terminal(
    svc: &Sessions,
    info: &SessionInfo,
    interactive: bool,
) -> Result<std::result::Result<(), String>> {
    if !interactive {
        return Ok(Ok(()));
    }
    let allowed = svc
        .policy
        .get()
        .entitlement(&info.entitlement)
        .is_some_and(|e| e.machine_pty());
    let (action, outcome) = if allowed {
        ("machine_interactive", Outcome::Success)
    } else {
        ("machine_pty_refused", Outcome::Denied)
    };
    audit::record(
        &svc.db,
        svc.clock.now_ms(),
        Entry::new(
            &info.user,
            action,
            &info.user,
            outcome,
            json!({ "session": info.id, "target": info.target, "entitlement": info.entitlement }),
        ),
    )
    .await?;
    Ok(if allowed {
        Ok(())
    } else {
        Err(format!(
            "machine sessions are exec-only: {} allows no terminal for machines (run `ssh … <command>`)",
            info.entitlement
        ))
    })
}
