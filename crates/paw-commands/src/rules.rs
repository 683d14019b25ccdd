//! The rules of one entitlement: the TOML the broker reads, validated once at load into matchers,
//! so that a typo is a start-up error naming the rule and not a rule that silently never matches.

use std::collections::BTreeSet;

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

/// What happens to a command. Ordered by severity: the most severe of a line's commands decides
/// the line, so `ls; rm x` is as denied as `rm x`.
#[derive(
    Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord, Hash, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Runs.
    #[default]
    Allow,
    /// Runs, and the audit says it matched a warning rule.
    Warn,
    /// Held until the user confirms this exact command with the security key.
    StepUp,
    /// Held until a second person approves this exact command.
    Approve,
    /// Never reaches the target.
    Deny,
}

impl Action {
    /// The name used in the TOML and the audit.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Warn => "warn",
            Action::StepUp => "step_up",
            Action::Approve => "approve",
            Action::Deny => "deny",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[entitlement.commands]` in the broker's TOML.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CommandsConfig {
    /// The action when no rule matches; `deny` makes the rules an allow-list.
    #[serde(default)]
    pub default: Action,
    /// What the parser cannot decide (a program name from a variable, `eval "$x"`, a script
    /// file) is held as `step_up` instead of being allowed and flagged.
    #[serde(default)]
    pub strict: bool,
    /// Ordered: the first rule that matches a command decides it.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Seconds a command held for a step-up or an approval waits before it is refused
    /// (bounded and defaulted by the policy crate's limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_secs: Option<u32>,
}

/// One `[[entitlement.commands.rules]]`. Every field that is present must match.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Glob on the resolved basename of the program (`rm` matches `/bin/rm`, `\rm`, `sudo rm`).
    pub program: String,
    /// Globs on the arguments by position from the first one; extra arguments are allowed
    /// unless `exact`.
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// With `args`: the command has exactly these arguments and no more.
    #[serde(default)]
    pub exact: bool,
    /// Matches if any argument matches this glob.
    #[serde(default)]
    pub any_arg: Option<String>,
    /// All of these flags are present (`-rf` counts as `-r -f`, `--name=value` as `--name`).
    #[serde(default)]
    pub flags: Option<Vec<String>>,
    pub action: Action,
    /// Shown to the user and in the audit when this rule decides.
    #[serde(default)]
    pub reason: Option<String>,
}

impl RuleConfig {
    /// The rule's match in words, as the app shows it beside the entitlement: the program,
    /// then its arguments (`…` when more may follow), flags and any-argument pattern.
    pub fn describe(&self) -> String {
        let mut out = self.program.clone();
        if let Some(args) = &self.args {
            for a in args {
                out.push(' ');
                out.push_str(a);
            }
            if !self.exact {
                out.push_str(" …");
            }
        }
        if let Some(flags) = &self.flags {
            out.push_str(" with ");
            out.push_str(&flags.join(" "));
        }
        if let Some(any) = &self.any_arg {
            out.push_str(&format!(" with an argument matching {any}"));
        }
        out
    }
}

/// Why a rule set was refused at load. Indexes count from 0, as in [`crate::CheckedCommand::rule`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("commands.rules[{index}].program is empty")]
    EmptyProgram { index: usize },
    #[error(
        "commands.rules[{index}].program {program:?} contains '/': rules match the program's \
         basename, write {basename:?}"
    )]
    ProgramWithSlash {
        index: usize,
        program: String,
        basename: String,
    },
    #[error("commands.rules[{index}].{field}: bad glob {pattern:?}: {message}")]
    BadGlob {
        index: usize,
        field: String,
        pattern: String,
        message: String,
    },
    #[error("commands.rules[{index}].flags: {flag:?} is not a flag (it must start with '-', as in \"-r\" or \"--force\")")]
    BadFlag { index: usize, flag: String },
    #[error("commands.rules[{index}].flags is empty: leave it out to match any flags")]
    EmptyFlags { index: usize },
    #[error(
        "commands.rules[{index}].exact is set without args: exact needs the list of arguments"
    )]
    ExactWithoutArgs { index: usize },
}

#[derive(Debug, Clone)]
struct Rule {
    program: GlobMatcher,
    args: Option<Vec<GlobMatcher>>,
    exact: bool,
    any_arg: Option<GlobMatcher>,
    flags: Option<BTreeSet<String>>,
    action: Action,
    reason: Option<String>,
}

/// A validated rule set. Built once per entitlement at load; [`crate::check`] only reads it.
#[derive(Debug, Clone)]
pub struct CommandRules {
    default: Action,
    strict: bool,
    rules: Vec<Rule>,
}

/// `*` and `?` match any character including `/`, as in a shell `case` pattern: an argument
/// glob like `/var/log/*` then also covers subdirectories, which is what a reader of the rule
/// expects from a shell-like pattern.
fn glob(index: usize, field: &str, pattern: &str) -> Result<GlobMatcher, RuleError> {
    GlobBuilder::new(pattern)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| RuleError::BadGlob {
            index,
            field: field.to_owned(),
            pattern: pattern.to_owned(),
            message: e.kind().to_string(),
        })
}

/// The flags of an argument list: `-rf` gives `-r` and `-f`, `--force=yes` gives `--force`;
/// nothing after `--` is a flag.
pub(crate) fn flag_set<'a>(args: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for a in args {
        if a == "--" {
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or(long);
            set.insert(format!("--{name}"));
        } else if let Some(short) = a.strip_prefix('-') {
            for c in short.chars() {
                set.insert(format!("-{c}"));
            }
        }
    }
    set
}

impl CommandRules {
    /// Validates the configuration; the error names the rule's index and field.
    pub fn new(config: CommandsConfig) -> Result<Self, RuleError> {
        let mut rules = Vec::with_capacity(config.rules.len());
        for (index, r) in config.rules.into_iter().enumerate() {
            if r.program.trim().is_empty() {
                return Err(RuleError::EmptyProgram { index });
            }
            if r.program.contains('/') {
                let basename = r.program.rsplit('/').next().unwrap_or_default().to_owned();
                return Err(RuleError::ProgramWithSlash {
                    index,
                    program: r.program,
                    basename,
                });
            }
            if r.exact && r.args.is_none() {
                return Err(RuleError::ExactWithoutArgs { index });
            }
            let program = glob(index, "program", &r.program)?;
            let args = match &r.args {
                None => None,
                Some(list) => Some(
                    list.iter()
                        .enumerate()
                        .map(|(i, p)| glob(index, &format!("args[{i}]"), p))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            let any_arg = match &r.any_arg {
                None => None,
                Some(p) => Some(glob(index, "any_arg", p)?),
            };
            let flags = match &r.flags {
                None => None,
                Some(list) if list.is_empty() => return Err(RuleError::EmptyFlags { index }),
                Some(list) => {
                    for f in list {
                        if !f.starts_with('-')
                            || f == "-"
                            || f == "--"
                            || f.contains(char::is_whitespace)
                        {
                            return Err(RuleError::BadFlag {
                                index,
                                flag: f.clone(),
                            });
                        }
                    }
                    Some(flag_set(list.iter().map(String::as_str)))
                }
            };
            rules.push(Rule {
                program,
                args,
                exact: r.exact,
                any_arg,
                flags,
                action: r.action,
                reason: r.reason,
            });
        }
        Ok(Self {
            default: config.default,
            strict: config.strict,
            rules,
        })
    }

    /// The action when no rule matches.
    pub fn default_action(&self) -> Action {
        self.default
    }

    /// Whether undecidable commands are held as `step_up`.
    pub fn strict(&self) -> bool {
        self.strict
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there is no rule (every command gets the default).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The `reason` of rule `index`, to show beside a held or denied command.
    pub fn reason(&self, index: usize) -> Option<&str> {
        self.rules.get(index).and_then(|r| r.reason.as_deref())
    }

    /// The first rule matching this command, with its action.
    pub(crate) fn find(&self, program: &str, args: &[String]) -> Option<(usize, Action)> {
        let mut flags: Option<BTreeSet<String>> = None;
        for (i, r) in self.rules.iter().enumerate() {
            if !r.program.is_match(program) {
                continue;
            }
            if let Some(globs) = &r.args {
                if args.len() < globs.len() || (r.exact && args.len() != globs.len()) {
                    continue;
                }
                if !globs.iter().zip(args).all(|(g, a)| g.is_match(a)) {
                    continue;
                }
            }
            if let Some(g) = &r.any_arg {
                if !args.iter().any(|a| g.is_match(a)) {
                    continue;
                }
            }
            if let Some(want) = &r.flags {
                let have = flags.get_or_insert_with(|| flag_set(args.iter().map(String::as_str)));
                if !want.is_subset(have) {
                    continue;
                }
            }
            return Some((i, r.action));
        }
        None
    }
}
