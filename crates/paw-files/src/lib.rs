//! File-transfer rules (issue #18, cases M1–M2): what a session's SFTP may do, where, and how
//! big. Pure: the broker resolves paths on the target (realpath) and asks [`FileRules::decide`]
//! about the result; nothing here touches a filesystem.
//!
//! A rule is a glob on the absolute path, the operations it covers and an action. Every rule
//! that matches the path and covers the operation counts, and the strictest action wins
//! (deny > approve > step_up > allow): adding a rule can make a path stricter, never looser.
//! No matching rule: refused. An entitlement without `[entitlement.files]` has no SFTP at all.

mod path;

use globset::{GlobBuilder, GlobMatcher};
use paw_commands::Action;
use serde::{Deserialize, Serialize};

pub use path::{join_relative, normalize, PathError, MAX_PATH};

/// Largest per-file size a rule may set or default to: 64 GiB.
pub const MAX_SIZE_LIMIT: u64 = 64 << 30;
/// Per-file size when the section says none: 1 GiB.
pub const DEFAULT_MAX_SIZE: u64 = 1 << 30;
/// Capture (copies of transferred files in the recording store) per file when on: 16 MiB.
pub const DEFAULT_CAPTURE_MAX: u64 = 16 << 20;
/// How long a held write waits for its step-up or approval, by default and at most.
pub const DEFAULT_HOLD_SECS: u32 = 300;
pub const MIN_HOLD_SECS: u32 = 10;
pub const MAX_HOLD_SECS: u32 = 3600;
/// Rules per entitlement.
pub const MAX_RULES: usize = 200;

/// One operation, as rules name it.
#[derive(Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Open for reading (download), read a link, list a directory, stat.
    Read,
    /// Open for writing or creating (upload).
    Write,
    /// Remove a file or an empty directory.
    Delete,
    /// Rename: checked on both the old and the new path.
    Rename,
    Mkdir,
    /// Change mode, owner or times.
    Setstat,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
            Op::Delete => "delete",
            Op::Rename => "rename",
            Op::Mkdir => "mkdir",
            Op::Setstat => "setstat",
        }
    }
}

/// `[entitlement.files]` as written.
#[derive(Deserialize, Serialize, Clone, PartialEq, Eq, Debug)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    pub rules: Vec<RuleConfig>,
    /// Per file, either direction, bytes.
    #[serde(default)]
    pub max_size: Option<u64>,
    /// Keep a copy of each transferred file with the session's recording.
    #[serde(default)]
    pub capture: bool,
    /// Bytes kept per captured file; the rest is not kept (the audit has the whole hash).
    #[serde(default)]
    pub capture_max: Option<u64>,
    /// How long a held write waits for its decision.
    #[serde(default)]
    pub hold_secs: Option<u32>,
}

#[derive(Deserialize, Serialize, Clone, PartialEq, Eq, Debug)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Glob on the absolute, normalized, resolved path (`*` stays within one component, `**`
    /// crosses them).
    pub path: String,
    pub ops: Vec<Op>,
    #[serde(default)]
    pub action: Action,
    /// Said to the user when this rule refuses or holds.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A configuration that cannot be used, with the field that is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("files.{field}: {reason}")]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

fn bad(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        reason: reason.into(),
    }
}

#[derive(Clone, Debug)]
struct Rule {
    glob: GlobMatcher,
    /// The literal directory the glob starts in (`/srv/app` for `/srv/app/**`): its
    /// ancestors may be looked at, so a client can walk down to it.
    base: String,
    ops: Vec<Op>,
    action: Action,
    reason: Option<String>,
    pattern: String,
}

/// Compiled rules of one entitlement.
#[derive(Clone, Debug)]
pub struct FileRules {
    rules: Vec<Rule>,
    pub max_size: u64,
    pub capture: bool,
    pub capture_max: u64,
    pub hold_secs: u32,
    config: FilesConfig,
}

impl PartialEq for FileRules {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}
impl Eq for FileRules {}

/// What the rules say about one operation on one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    /// The rule that decided (its glob), none when no rule matched.
    pub rule: Option<String>,
    /// One line for the user.
    pub why: String,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self.action, Action::Allow | Action::Warn)
    }
}

impl FileRules {
    pub fn new(config: FilesConfig) -> Result<Self, ConfigError> {
        if config.rules.is_empty() {
            return Err(bad("rules", "at least one rule is needed"));
        }
        if config.rules.len() > MAX_RULES {
            return Err(bad("rules", format!("at most {MAX_RULES} rules")));
        }
        let mut rules = Vec::with_capacity(config.rules.len());
        for (i, r) in config.rules.iter().enumerate() {
            let field = |f: &str| format!("rules[{i}].{f}");
            if !r.path.starts_with('/') {
                return Err(bad(field("path"), "must be absolute"));
            }
            // The pattern is compared with normalized paths: a pattern that is not itself
            // normal (`/srv/../etc/**`) would never match what it seems to say.
            let literal = base_of(&r.path);
            if normalize(&literal).ok().as_deref() != Some(literal.as_str()) && literal != "/" {
                return Err(bad(
                    field("path"),
                    "must be normalized (no `.`, `..` or `//`)",
                ));
            }
            if r.ops.is_empty() {
                return Err(bad(field("ops"), "name at least one operation"));
            }
            if r.action == Action::Warn {
                return Err(bad(field("action"), "one of allow, step_up, approve, deny"));
            }
            // `*` stays within one path component; only `**` crosses `/`.
            let glob = GlobBuilder::new(&r.path)
                .literal_separator(true)
                .build()
                .map_err(|e| bad(field("path"), e.to_string()))?
                .compile_matcher();
            rules.push(Rule {
                glob,
                base: literal,
                ops: r.ops.clone(),
                action: r.action,
                reason: r.reason.clone(),
                pattern: r.path.clone(),
            });
        }
        let max_size = config.max_size.unwrap_or(DEFAULT_MAX_SIZE);
        if max_size == 0 || max_size > MAX_SIZE_LIMIT {
            return Err(bad(
                "max_size",
                format!("between 1 and {MAX_SIZE_LIMIT} bytes"),
            ));
        }
        let capture_max = config.capture_max.unwrap_or(DEFAULT_CAPTURE_MAX);
        if capture_max > MAX_SIZE_LIMIT {
            return Err(bad(
                "capture_max",
                format!("at most {MAX_SIZE_LIMIT} bytes"),
            ));
        }
        let hold_secs = config.hold_secs.unwrap_or(DEFAULT_HOLD_SECS);
        if !(MIN_HOLD_SECS..=MAX_HOLD_SECS).contains(&hold_secs) {
            return Err(bad(
                "hold_secs",
                format!("between {MIN_HOLD_SECS} and {MAX_HOLD_SECS}"),
            ));
        }
        Ok(Self {
            rules,
            max_size,
            capture: config.capture,
            capture_max,
            hold_secs,
            config,
        })
    }

    pub fn config(&self) -> &FilesConfig {
        &self.config
    }

    /// `path` must be what [`normalize`] returned, resolved on the target.
    pub fn decide(&self, op: Op, path: &str) -> Decision {
        let mut best: Option<&Rule> = None;
        for r in &self.rules {
            if r.ops.contains(&op)
                && r.glob.is_match(path)
                && best.is_none_or(|b| r.action > b.action)
            {
                best = Some(r);
            }
        }
        match best {
            None => Decision {
                action: Action::Deny,
                rule: None,
                why: format!(
                    "paw: {} {path} is outside the paths this grant allows",
                    op.as_str()
                ),
            },
            Some(r) => Decision {
                action: r.action,
                rule: Some(r.pattern.clone()),
                why: match (&r.reason, r.action) {
                    (Some(why), _) => format!("paw: {} {path}: {why}", op.as_str()),
                    (None, Action::Deny) => {
                        format!(
                            "paw: {} {path} is denied by the rule {}",
                            op.as_str(),
                            r.pattern
                        )
                    }
                    (None, Action::StepUp) => format!(
                        "paw: {} {path} waits for your security key in the paw app",
                        op.as_str()
                    ),
                    (None, Action::Approve) => format!(
                        "paw: {} {path} waits for a second person's approval",
                        op.as_str()
                    ),
                    (None, _) => String::new(),
                },
            },
        }
    }

    /// May `path` (a directory) be looked at (stat, listed) to reach an allowed path below it?
    /// True for a path some rule reads, and for the ancestors of a rule's base directory, so
    /// `cd /srv/app` works from `/` without making `/srv` readable files.
    pub fn may_look(&self, path: &str) -> bool {
        if self.decide(Op::Read, path).allowed() {
            return true;
        }
        self.rules
            .iter()
            .any(|r| r.action != Action::Deny && (r.base == path || is_ancestor(path, &r.base)))
    }
}

/// The literal leading directory of a glob: everything up to the last `/` before the first
/// metacharacter (`/srv/app` for `/srv/app/**`, `/` for `/*.log`).
fn base_of(pattern: &str) -> String {
    let cut = pattern
        .find(['*', '?', '[', '{', '\\'])
        .unwrap_or(pattern.len());
    let head = &pattern[..cut];
    let dir = if cut == pattern.len() {
        head
    } else {
        head.rfind('/').map_or("/", |i| &head[..i.max(1)])
    };
    dir.trim_end_matches('/').to_owned().max("/".to_owned())
}

fn is_ancestor(path: &str, of: &str) -> bool {
    path == "/"
        || of
            .strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(toml_text: &str) -> Result<FileRules, ConfigError> {
        let c: FilesConfig = toml::from_str(toml_text).unwrap();
        FileRules::new(c)
    }

    const APP: &str = r#"
rules = [
  { path = "/srv/app/**", ops = ["read", "write", "mkdir", "rename", "delete"] },
  { path = "/srv/app/bin/**", ops = ["write"], action = "step_up" },
  { path = "/srv/app/secret/**", ops = ["read"], action = "deny", reason = "keys stay on the host" },
]
max_size = 1000
"#;

    #[test]
    fn m1_m2_the_strictest_matching_rule_decides_and_no_rule_refuses() {
        let r = rules(APP).unwrap();
        assert_eq!(
            r.decide(Op::Write, "/srv/app/conf.toml").action,
            Action::Allow
        );
        assert_eq!(
            r.decide(Op::Write, "/srv/app/bin/tool").action,
            Action::StepUp
        );
        assert_eq!(
            r.decide(Op::Read, "/srv/app/bin/tool").action,
            Action::Allow
        );
        let d = r.decide(Op::Read, "/srv/app/secret/key");
        assert_eq!(d.action, Action::Deny);
        assert!(d.why.contains("keys stay on the host"), "{}", d.why);
        for (op, p) in [
            (Op::Read, "/etc/shadow"),
            (Op::Write, "/srv/application/x"),
            (Op::Setstat, "/srv/app/conf.toml"),
            (Op::Read, "/srv/app"),
        ] {
            let d = r.decide(op, p);
            assert_eq!(d.action, Action::Deny, "{op:?} {p}");
            assert!(d.why.starts_with("paw: "), "{}", d.why);
        }
        assert_eq!(r.max_size, 1000);
        assert_eq!(r.hold_secs, DEFAULT_HOLD_SECS);
    }

    #[test]
    fn ancestors_of_a_rule_may_be_looked_at_and_nothing_else() {
        let r = rules(APP).unwrap();
        for p in ["/", "/srv", "/srv/app", "/srv/app/x"] {
            assert!(r.may_look(p), "{p}");
        }
        for p in ["/etc", "/srv/other", "/srv/ap", "/srv/app/secret/key"] {
            assert!(!r.may_look(p), "{p}");
        }
    }

    #[test]
    fn bad_rules_name_their_field() {
        for (text, field) in [
            ("rules = []", "files.rules"),
            (
                r#"rules = [{ path = "srv/**", ops = ["read"] }]"#,
                "files.rules[0].path",
            ),
            (
                r#"rules = [{ path = "/srv/../etc/**", ops = ["read"] }]"#,
                "files.rules[0].path",
            ),
            (
                r#"rules = [{ path = "/srv/**", ops = [] }]"#,
                "files.rules[0].ops",
            ),
            (
                r#"rules = [{ path = "/srv/**", ops = ["read"], action = "warn" }]"#,
                "files.rules[0].action",
            ),
            (
                "rules = [{ path = \"/srv/**\", ops = [\"read\"] }]\nmax_size = 0",
                "files.max_size",
            ),
            (
                "rules = [{ path = \"/srv/**\", ops = [\"read\"] }]\nhold_secs = 1",
                "files.hold_secs",
            ),
        ] {
            let e = rules(text).unwrap_err();
            assert!(e.to_string().starts_with(field), "{text}: {e}");
        }
        assert!(
            toml::from_str::<FilesConfig>(r#"rules = [{ path = "/x", ops = ["exec"] }]"#).is_err()
        );
    }

    #[test]
    fn bases_of_globs() {
        assert_eq!(base_of("/srv/app/**"), "/srv/app");
        assert_eq!(base_of("/srv/app/*.conf"), "/srv/app");
        assert_eq!(base_of("/*.log"), "/");
        assert_eq!(base_of("/srv/app/file"), "/srv/app/file");
        assert_eq!(base_of("/**"), "/");
    }
}
