//! Command checking for command control (issue 15): a line typed in a brokered shell, or the
//! command string of an exec request, is parsed with a maintained shell parser (brush-parser),
//! every simple command the shell would run is found, normalized and matched against the
//! entitlement's rules.
//!
//! Pure: no I/O, no clock, no global state of ours, so that the broker can call it on every
//! Enter and tests can call it on every spelling of `rm`.
//!
//! What it cannot promise is said where it is decided: a program name from a variable, `eval`
//! of a variable, a script file or an interpreter's code are *undecidable*; they are listed in
//! [`Checked::undecidable`] and, in strict mode, held as `step_up`.

mod rules;
mod walk;
mod words;

use serde::Serialize;

pub use rules::{Action, CommandRules, CommandsConfig, RuleConfig, RuleError};

/// The outcome of checking one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    /// The shell would ask for more (open quote, trailing backslash, unterminated here-document
    /// or compound command): nothing is sent until the line is complete.
    Incomplete,
    Checked(Checked),
}

/// A complete line, taken apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checked {
    /// The most severe action of the line's commands (and `step_up` in strict mode when
    /// something is undecidable).
    pub action: Action,
    /// Every command the shell would run, in the order they are found: a wrapper before what
    /// it wraps, a substitution before the command whose word holds it.
    pub commands: Vec<CheckedCommand>,
    /// Why part of the line cannot be decided, e.g. "program name comes from $x".
    pub undecidable: Vec<String>,
}

/// One simple command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckedCommand {
    /// Program basename and arguments, shell-quoted where needed: `rm -rf '/tmp/a b'`. An
    /// argument that holds an expansion is shown as written (`"$HOME/x"`). This is the text a
    /// step-up or an approval is bound to.
    pub normalized: String,
    /// The resolved basename (`/bin/rm`, `\rm`, `r''m` are `rm`), or the word as written when
    /// it cannot be known.
    pub program: String,
    /// The arguments after quote removal.
    pub args: Vec<String>,
    pub action: Action,
    /// The index of the rule that decided, `None` for the default.
    pub rule: Option<usize>,
    pub undecidable: Option<String>,
}

/// Checks one line (or several pasted lines) against the rules.
pub fn check(rules: &CommandRules, input: &str) -> Verdict {
    let mut walker = walk::Walker::new(rules);
    match walk::parse(input, &walk::parser_options()) {
        Err(e) if walk::is_incomplete(&e) => return Verdict::Incomplete,
        Err(e) => {
            // Nothing is known of a line the parser refuses, and bash may read it otherwise:
            // it gets the default (an allow-list denies it), and step_up at least when strict.
            let mut action = rules.default_action();
            if rules.strict() {
                action = action.max(Action::StepUp);
            }
            return Verdict::Checked(Checked {
                action,
                commands: vec![],
                undecidable: vec![format!("the line does not parse: {e}")],
            });
        }
        Ok(program) => walker.program(&program),
    }
    let mut action = walker
        .commands
        .iter()
        .map(|c| c.action)
        .max()
        .unwrap_or(Action::Allow);
    if rules.strict() && !walker.undecidable.is_empty() {
        action = action.max(Action::StepUp);
    }
    Verdict::Checked(Checked {
        action,
        commands: walker.commands,
        undecidable: walker.undecidable,
    })
}

#[cfg(test)]
mod tests;
