//! Entitlements: who may ask for which role on which targets, for how long, and who must agree.
//!
//! An entitlement is written in the broker's TOML config as an [`EntitlementConfig`] and only
//! becomes an [`Entitlement`] through [`Entitlement::new`], which checks every field. Deserializing
//! an `Entitlement` runs the same check, so holding one is proof the configuration was valid and
//! the request rules ([`crate::check_request`]) can rely on it (for example that break-glass is
//! never longer than the entitlement itself).
//!
//! ```toml
//! [[entitlement]]   # one table per entitlement; the surrounding layout is the broker's
//! id = "db-prod-readonly"
//! description = "Read-only access to the production databases"
//! target_kind = "postgres"
//! target = "db-prod-*"
//! role = "readonly"
//! max_duration_secs = 3600
//! requesters = ["dba", "sre"]
//! approval = { required = 2, groups = ["dba-leads", "sre-leads"] }
//! ticket = "INC-*"
//! break_glass = { max_duration_secs = 1800 }
//! ```
//!
//! `approval = "auto"` means approved automatically after the requester's step-up.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::limits::{
    MAX_BREAK_GLASS_DURATION_SECS, MAX_DESCRIPTION_CHARS, MAX_ENTITLEMENT_DURATION_SECS,
    MAX_IDENTIFIER_CHARS, MAX_SESSIONS_PER_GRANT,
};
use crate::quorum::{is_valid_group_name, GROUP_NAME_RULE};
use crate::text::check_free_text;
use crate::{Pattern, PolicyError, Quorum};

/// What kind of target an entitlement opens, so an SSH entitlement can never be used as a
/// PostgreSQL one on a target that happens to share a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Ssh,
    Postgres,
}

impl TargetKind {
    /// Stable lower-case name, as written in config and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Ssh => "ssh",
            TargetKind::Postgres => "postgres",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a request is approved, as written in config: `"auto"`, `"owner"` or
/// `{ required, groups }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalConfig {
    Auto,
    /// By the requesting machine identity's accountable owner or its backup owner.
    Owner,
    Quorum {
        required: u32,
        groups: Vec<String>,
    },
}

/// The table form of [`ApprovalConfig::Quorum`]; a separate struct so unknown keys are refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuorumTable {
    required: u32,
    groups: Vec<String>,
}

impl<'de> Deserialize<'de> for ApprovalConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ApprovalVisitor;

        impl<'de> Visitor<'de> for ApprovalVisitor {
            type Value = ApprovalConfig;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#""auto", "owner" or a table { required = N, groups = [...] }"#)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v == "auto" {
                    Ok(ApprovalConfig::Auto)
                } else if v == "owner" {
                    Ok(ApprovalConfig::Owner)
                } else {
                    // The value is not echoed: it is config text and may hold anything.
                    Err(E::custom(
                        r#"approval must be "auto", "owner" or a table { required = N, groups = [...] }"#,
                    ))
                }
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let table = QuorumTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ApprovalConfig::Quorum {
                    required: table.required,
                    groups: table.groups,
                })
            }
        }

        deserializer.deserialize_any(ApprovalVisitor)
    }
}

/// Break-glass settings as written in config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassConfig {
    pub max_duration_secs: i64,
}

/// One entitlement exactly as written in the broker's config. Unchecked: turn it into an
/// [`Entitlement`] with [`Entitlement::new`] (deserializing an `Entitlement` does that).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntitlementConfig {
    pub id: String,
    pub description: String,
    pub target_kind: TargetKind,
    pub target: Pattern,
    pub role: String,
    pub max_duration_secs: i64,
    pub requesters: Vec<String>,
    pub approval: ApprovalConfig,
    /// When set, a request must carry a ticket matching this pattern.
    #[serde(default)]
    pub ticket: Option<Pattern>,
    /// When set, this entitlement may be used without approval in an emergency.
    #[serde(default)]
    pub break_glass: Option<BreakGlassConfig>,
    /// Sessions one grant may have open at once (default 1, at most
    /// [`MAX_SESSIONS_PER_GRANT`]).
    #[serde(default = "default_max_sessions")]
    pub max_sessions: u32,
    /// Command control in its sessions (`[entitlement.commands]`); none: every command runs.
    #[serde(default)]
    pub commands: Option<paw_commands::CommandsConfig>,
    /// File transfer (SFTP) in its sessions (`[entitlement.files]`); none: no SFTP (case C1).
    #[serde(default)]
    pub files: Option<paw_files::FilesConfig>,
    /// Whether a machine identity's session under this entitlement may ask for a terminal
    /// (pty) or a shell. Off: machines run exec requests only (case K6).
    #[serde(default)]
    pub machine_pty: bool,
    /// With approvers: requests whose grant starts inside this window are approved after the
    /// requester's step-up; outside it the approvers decide ([`crate::AutoWindow`]).
    #[serde(default)]
    pub auto_window: Option<crate::AutoWindowConfig>,
    /// Vaulted credentials (`vault = ["inject"]`, `["reveal"]` or both): sessions under its
    /// grants log in to the target as `role` with the broker's vaulted secret of
    /// `target/role`, and/or the holder may reveal that secret with a step-up of its own.
    #[serde(default)]
    pub vault: Vec<VaultUse>,
}

/// How an entitlement's grants use the vaulted account `target/role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VaultUse {
    /// The broker logs the session in with the secret; the user never sees it.
    Inject,
    /// The holder may see the secret once (its own step-up), and it is rotated afterwards.
    Reveal,
}

fn default_max_sessions() -> u32 {
    1
}

/// How a request for an entitlement is approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalRule {
    /// Approved as soon as the requester completes a security-key step-up for the request.
    Auto,
    /// N distinct people from the named groups, never the requester.
    Quorum(Quorum),
    /// One approval by the requesting machine identity's owner or backup owner, looked up by
    /// the broker at each decision. Only machines may request under it.
    Owner,
}

/// Break-glass is allowed, for at most this long. Checked against the entitlement it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BreakGlassRule {
    max_duration_secs: i64,
}

impl BreakGlassRule {
    pub fn max_duration_secs(self) -> i64 {
        self.max_duration_secs
    }
}

/// A checked entitlement. Only [`Entitlement::new`] builds one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "EntitlementConfig")]
pub struct Entitlement {
    id: String,
    description: String,
    target_kind: TargetKind,
    target: Pattern,
    role: String,
    max_duration_secs: i64,
    requesters: Vec<String>,
    approval: ApprovalRule,
    ticket: Option<Pattern>,
    break_glass: Option<BreakGlassRule>,
    max_sessions: u32,
    commands: Option<CommandControl>,
    files: Option<std::sync::Arc<paw_files::FileRules>>,
    machine_pty: bool,
    auto_window: Option<crate::AutoWindow>,
    vault: Vec<VaultUse>,
}

/// An entitlement's command rules: as written (what two policies are compared by, and what
/// the UI shows) and compiled once at load (what every command is checked against).
#[derive(Debug, Clone)]
pub struct CommandControl {
    // Shared, like the compiled rules: the broker takes a copy at every checked line end.
    config: std::sync::Arc<paw_commands::CommandsConfig>,
    hold_secs: u32,
    rules: std::sync::Arc<paw_commands::CommandRules>,
}

impl CommandControl {
    pub fn config(&self) -> &paw_commands::CommandsConfig {
        &self.config
    }

    /// How long a held command waits for its step-up or approval.
    pub fn hold_secs(&self) -> u32 {
        self.hold_secs
    }

    /// Checks a command line (an exec request's string, or a line typed at a shell).
    pub fn check(&self, line: &str) -> paw_commands::Verdict {
        paw_commands::check(&self.rules, line)
    }
}

impl PartialEq for CommandControl {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}

impl Eq for CommandControl {}

fn invalid(field: &'static str, reason: &'static str) -> PolicyError {
    PolicyError::InvalidEntitlement { field, reason }
}

/// `[a-z0-9][a-z0-9-]{0,62}`: ids appear in URLs, audit records and the signed action.
fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && id.len() <= MAX_IDENTIFIER_CHARS
}

/// `[a-z_][a-z0-9_-]{0,62}`: usable both as an SSH login and as a PostgreSQL role name. Never
/// starts with a digit or `-`, so it cannot be read as a number or a command-line option (C8).
/// `-` is common in logins; in SQL it needs a quoted identifier, which the broker always uses.
fn is_valid_role(role: &str) -> bool {
    let mut chars = role.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && role.len() <= MAX_IDENTIFIER_CHARS
}

/// `0 < secs <= ceiling`, as a configuration check (the request check is `validate_duration`).
fn check_max(
    field: &'static str,
    secs: i64,
    ceiling: i64,
    over_ceiling: &'static str,
) -> Result<(), PolicyError> {
    if secs <= 0 {
        return Err(invalid(field, "must be positive"));
    }
    if secs > ceiling {
        return Err(invalid(field, over_ceiling));
    }
    Ok(())
}

impl Entitlement {
    /// Checks every field of a configured entitlement. Rejects, never repairs: a description
    /// with a trailing space or a break-glass window longer than the entitlement is an error.
    pub fn new(config: EntitlementConfig) -> Result<Self, PolicyError> {
        let EntitlementConfig {
            id,
            description,
            target_kind,
            target,
            role,
            max_duration_secs,
            requesters,
            approval,
            ticket,
            break_glass,
            max_sessions,
            commands,
            files,
            machine_pty,
            auto_window,
            mut vault,
        } = config;
        vault.sort_by_key(|v| *v as u8);
        vault.dedup();
        if max_sessions == 0 || max_sessions > MAX_SESSIONS_PER_GRANT {
            return Err(invalid("max_sessions", "must be between 1 and 16"));
        }

        if !is_valid_id(&id) {
            return Err(invalid(
                "id",
                "must be a lowercase slug: a-z or 0-9 first, then a-z, 0-9 or '-', at most 63 characters",
            ));
        }
        check_free_text(&description).map_err(|reason| invalid("description", reason))?;
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(invalid("description", "is longer than 200 characters"));
        }
        if !is_valid_role(&role) {
            return Err(invalid(
                "role",
                "must be a-z or '_' first, then a-z, 0-9, '_' or '-', at most 63 characters",
            ));
        }
        check_max(
            "max_duration_secs",
            max_duration_secs,
            MAX_ENTITLEMENT_DURATION_SECS,
            "must not exceed 24 hours (86400 s)",
        )?;

        if requesters.is_empty() {
            // Nobody could ever request it: almost certainly a config mistake, and an
            // entitlement nobody can use should not sit in the config looking live.
            return Err(invalid("requesters", "must name at least one group"));
        }
        for (i, group) in requesters.iter().enumerate() {
            if !is_valid_group_name(group) {
                return Err(invalid("requesters", GROUP_NAME_RULE));
            }
            if requesters[..i].contains(group) {
                return Err(invalid("requesters", "lists a group twice"));
            }
        }

        let approval = match approval {
            ApprovalConfig::Auto => ApprovalRule::Auto,
            ApprovalConfig::Owner => ApprovalRule::Owner,
            ApprovalConfig::Quorum { required, groups } => {
                ApprovalRule::Quorum(Quorum::new(required, groups)?)
            }
        };

        let break_glass = match break_glass {
            None => None,
            Some(BreakGlassConfig {
                max_duration_secs: bg,
            }) => {
                check_max(
                    "break_glass.max_duration_secs",
                    bg,
                    MAX_BREAK_GLASS_DURATION_SECS,
                    "must not exceed 4 hours (14400 s)",
                )?;
                if bg > max_duration_secs {
                    // Break-glass has fewer checks than a normal request, so it must never
                    // reach further than one.
                    return Err(invalid(
                        "break_glass.max_duration_secs",
                        "must not exceed the entitlement's max_duration_secs",
                    ));
                }
                Some(BreakGlassRule {
                    max_duration_secs: bg,
                })
            }
        };

        // A command held for approval under an automatically approved entitlement could only
        // ever time out: nobody may approve its requests, so nobody may approve its commands.
        // Likewise under the owner rule: command approvers come from groups, and it has none.
        if let (Some(c), ApprovalRule::Auto | ApprovalRule::Owner) = (&commands, &approval) {
            let asks = c.default == paw_commands::Action::Approve
                || c.rules
                    .iter()
                    .any(|r| r.action == paw_commands::Action::Approve);
            if asks {
                return Err(PolicyError::InvalidCommands(
                    "an `approve` command rule needs approvers from groups, and this entitlement \
                     has none: use step_up, or give it approvers"
                        .into(),
                ));
            }
        }
        let commands = match commands {
            None => None,
            Some(config) => Some(CommandControl {
                hold_secs: match config.hold_secs {
                    None => crate::limits::DEFAULT_COMMAND_HOLD_SECS,
                    Some(s)
                        if (crate::limits::MIN_COMMAND_HOLD_SECS
                            ..=crate::limits::MAX_COMMAND_HOLD_SECS)
                            .contains(&s) =>
                    {
                        s
                    }
                    Some(s) => {
                        return Err(PolicyError::InvalidCommands(format!(
                            "commands.hold_secs = {s}: it must be between {} and {}",
                            crate::limits::MIN_COMMAND_HOLD_SECS,
                            crate::limits::MAX_COMMAND_HOLD_SECS
                        )))
                    }
                },
                rules: std::sync::Arc::new(
                    paw_commands::CommandRules::new(config.clone())
                        .map_err(|e| PolicyError::InvalidCommands(e.to_string()))?,
                ),
                config: std::sync::Arc::new(config),
            }),
        };

        let files = match files {
            None => None,
            Some(config) => {
                // As for commands: an `approve` hold needs someone who may approve.
                let asks = config
                    .rules
                    .iter()
                    .any(|r| r.action == paw_commands::Action::Approve);
                if asks && matches!(approval, ApprovalRule::Auto | ApprovalRule::Owner) {
                    return Err(PolicyError::InvalidFiles(
                        "an `approve` file rule needs approvers from groups, and this \
                         entitlement has none: use step_up, or give it approvers"
                            .into(),
                    ));
                }
                Some(std::sync::Arc::new(
                    paw_files::FileRules::new(config)
                        .map_err(|e| PolicyError::InvalidFiles(e.to_string()))?,
                ))
            }
        };

        let auto_window =
            match auto_window {
                None => None,
                // "auto" approves at every hour already: a window would only read as a limit.
                Some(_) if approval == ApprovalRule::Auto => return Err(invalid(
                    "auto_window",
                    "needs approvers: with approval = \"auto\" every request is approved anyway",
                )),
                Some(c) => Some(crate::AutoWindow::new(&c)?),
            };
        Ok(Entitlement {
            id,
            description,
            target_kind,
            target,
            role,
            max_duration_secs,
            requesters,
            approval,
            ticket,
            break_glass,
            max_sessions,
            commands,
            files,
            machine_pty,
            auto_window,
            vault,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn target_kind(&self) -> TargetKind {
        self.target_kind
    }

    pub fn target(&self) -> &Pattern {
        &self.target
    }

    pub fn role(&self) -> &str {
        &self.role
    }

    pub fn max_duration_secs(&self) -> i64 {
        self.max_duration_secs
    }

    pub fn requesters(&self) -> &[String] {
        &self.requesters
    }

    pub fn approval(&self) -> &ApprovalRule {
        &self.approval
    }

    pub fn ticket(&self) -> Option<&Pattern> {
        self.ticket.as_ref()
    }

    /// Sessions one grant may have open at once (case B6).
    pub fn max_sessions(&self) -> u32 {
        self.max_sessions
    }

    /// The file-transfer rules of its sessions; none: no SFTP.
    pub fn files(&self) -> Option<&std::sync::Arc<paw_files::FileRules>> {
        self.files.as_ref()
    }

    /// The command rules its sessions run under, if it has any.
    pub fn commands(&self) -> Option<&CommandControl> {
        self.commands.as_ref()
    }

    /// When approval is automatic although the entitlement has approvers.
    pub fn auto_window(&self) -> Option<&crate::AutoWindow> {
        self.auto_window.as_ref()
    }

    /// Whether machines may have a terminal in its sessions (K6).
    pub fn machine_pty(&self) -> bool {
        self.machine_pty
    }

    /// Whether its sessions log in with the vaulted account `target/role`.
    pub fn vault_inject(&self) -> bool {
        self.vault.contains(&VaultUse::Inject)
    }

    /// Whether its holders may reveal the vaulted account `target/role`.
    pub fn vault_reveal(&self) -> bool {
        self.vault.contains(&VaultUse::Reveal)
    }

    pub fn break_glass(&self) -> Option<BreakGlassRule> {
        self.break_glass
    }

    /// Whether someone in these groups may request this entitlement (exact, case-sensitive
    /// group names). The caller looks the groups up fresh for each request.
    pub fn is_requester(&self, groups: &[String]) -> bool {
        groups.iter().any(|g| self.requesters.contains(g))
    }

    /// The rule in plain words, for the approvals inbox and the audit trail.
    ///
    /// Every piece of text it includes (group names, the ticket pattern) passed the config
    /// checks, so it holds no control or invisible characters.
    pub fn describe_rule(&self) -> String {
        let mut parts = vec![match &self.approval {
            ApprovalRule::Auto => {
                "approved automatically after the requester's security-key step-up".to_owned()
            }
            ApprovalRule::Quorum(quorum) => match &self.auto_window {
                Some(w) => format!(
                    "approved automatically after the requester's step-up within {}; otherwise {}",
                    w.describe(),
                    quorum.describe()
                ),
                None => quorum.describe(),
            },
            ApprovalRule::Owner => {
                let owner = "approved by the requesting machine's owner or backup owner";
                match &self.auto_window {
                    Some(w) => format!(
                        "approved automatically after the requester's step-up within {}; otherwise {owner}",
                        w.describe()
                    ),
                    None => owner.to_owned(),
                }
            }
        }];
        if let Some(ticket) = &self.ticket {
            parts.push(format!("a ticket matching {ticket} is required"));
        }
        if let Some(bg) = self.break_glass {
            parts.push(format!(
                "break-glass allowed for up to {}; two other people must review it",
                plain_duration(bg.max_duration_secs)
            ));
        }
        parts.join("; ")
    }
}

impl TryFrom<EntitlementConfig> for Entitlement {
    type Error = PolicyError;
    fn try_from(config: EntitlementConfig) -> Result<Self, Self::Error> {
        Entitlement::new(config)
    }
}

/// "30 min", "1 h", "1 h 30 min", "1 min 30 s": the same words the step-up prompt uses, with
/// seconds kept rather than rounded away so the text never claims a longer or shorter limit.
pub(crate) fn plain_duration(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h} h"));
    }
    if m > 0 {
        parts.push(format!("{m} min"));
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s} s"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
id = "db-prod-readonly"
description = "Read-only access to the production databases"
target_kind = "postgres"
target = "db-prod-*"
role = "readonly"
max_duration_secs = 3600
requesters = ["dba", "sre"]
approval = { required = 2, groups = ["dba-leads", "sre-leads"] }
ticket = "INC-*"
break_glass = { max_duration_secs = 1800 }
"#;

    const MINIMAL: &str = r#"
id = "web-1-root"
description = "Root on web-1"
target_kind = "ssh"
target = "web-1.corp.example"
role = "root"
max_duration_secs = 900
requesters = ["sre"]
approval = "auto"
"#;

    fn from_toml(text: &str) -> Result<Entitlement, toml::de::Error> {
        toml::from_str(text)
    }

    /// A valid config to mutate one field at a time.
    fn config() -> EntitlementConfig {
        EntitlementConfig {
            id: "db-prod-readonly".into(),
            description: "Read-only access to the production databases".into(),
            target_kind: TargetKind::Postgres,
            target: Pattern::parse("db-prod-*").unwrap(),
            role: "readonly".into(),
            max_duration_secs: 3600,
            requesters: vec!["dba".into(), "sre".into()],
            approval: ApprovalConfig::Quorum {
                required: 2,
                groups: vec!["dba-leads".into(), "sre-leads".into()],
            },
            ticket: Some(Pattern::parse("INC-*").unwrap()),
            break_glass: Some(BreakGlassConfig {
                max_duration_secs: 1800,
            }),
            max_sessions: 1,
            commands: None,
            files: None,
            machine_pty: false,
            auto_window: None,
            vault: vec![],
        }
    }

    fn rejected(config: EntitlementConfig, field: &'static str) -> &'static str {
        match Entitlement::new(config) {
            Err(PolicyError::InvalidEntitlement { field: f, reason }) => {
                assert_eq!(f, field);
                reason
            }
            other => panic!("expected an invalid {field}, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_documented_toml() {
        let e = from_toml(FULL).unwrap();
        assert_eq!(e.id(), "db-prod-readonly");
        assert_eq!(
            e.description(),
            "Read-only access to the production databases"
        );
        assert_eq!(e.target_kind(), TargetKind::Postgres);
        assert_eq!(e.target().as_str(), "db-prod-*");
        assert_eq!(e.role(), "readonly");
        assert_eq!(e.max_duration_secs(), 3600);
        assert_eq!(e.requesters(), ["dba", "sre"]);
        let ApprovalRule::Quorum(q) = e.approval() else {
            panic!("expected a quorum");
        };
        assert_eq!(q.required(), 2);
        assert_eq!(q.groups(), ["dba-leads", "sre-leads"]);
        assert_eq!(e.ticket().map(Pattern::as_str), Some("INC-*"));
        assert_eq!(
            e.break_glass().map(BreakGlassRule::max_duration_secs),
            Some(1800)
        );
        assert_eq!(e, Entitlement::new(config()).unwrap());
    }

    #[test]
    fn optional_fields_default_to_absent() {
        let e = from_toml(MINIMAL).unwrap();
        assert_eq!(e.approval(), &ApprovalRule::Auto);
        assert_eq!(e.ticket(), None);
        assert_eq!(e.break_glass(), None);
        assert_eq!(e.target_kind(), TargetKind::Ssh);
        assert!(e.target().is_exact());
    }

    #[test]
    fn parses_a_list_as_the_broker_config_writes_it() {
        #[derive(Deserialize)]
        struct Config {
            entitlement: Vec<Entitlement>,
        }
        let text = format!("[[entitlement]]\n{FULL}\n[[entitlement]]\n{MINIMAL}");
        let config: Config = toml::from_str(&text).unwrap();
        assert_eq!(config.entitlement.len(), 2);
        assert_eq!(config.entitlement[1].id(), "web-1-root");
    }

    #[test]
    fn toml_unknown_keys_are_rejected_at_every_level() {
        for (from, to) in [
            ("role = ", "roles = [\"x\"]\nrole = "),
            ("role = ", "approvers = [\"x\"]\nrole = "),
            ("required = 2", "required = 2, any_of = 1"),
            (
                "{ max_duration_secs = 1800 }",
                "{ max_duration_secs = 1800, notify = false }",
            ),
        ] {
            let text = FULL.replacen(from, to, 1);
            assert_ne!(text, FULL);
            let err = from_toml(&text).unwrap_err().to_string();
            assert!(err.contains("unknown field"), "{to}: {err}");
        }
    }

    #[test]
    fn toml_missing_required_fields_are_rejected() {
        for field in [
            "id",
            "description",
            "target_kind",
            "target",
            "role",
            "max_duration_secs",
            "requesters",
            "approval",
        ] {
            let text: String = FULL
                .lines()
                .filter(|l| !l.starts_with(&format!("{field} =")))
                .collect::<Vec<_>>()
                .join("\n");
            let err = from_toml(&text).unwrap_err().to_string();
            assert!(err.contains(&format!("missing field `{field}`")), "{err}");
        }
        let text = FULL.replace("required = 2, ", "");
        assert!(from_toml(&text)
            .unwrap_err()
            .to_string()
            .contains("missing field `required`"));
    }

    #[test]
    fn toml_approval_is_auto_or_a_quorum_table() {
        for approval in [
            r#""Auto""#,
            r#""none""#,
            r#""""#,
            r#""auto ""#,
            "true",
            "2",
            r#"["dba-leads"]"#,
            r#"{ required = 0, groups = ["dba-leads"] }"#,
            r#"{ required = -1, groups = ["dba-leads"] }"#,
            r#"{ required = 1, groups = [] }"#,
            r#"{ required = 1, groups = ["dba leads"] }"#,
            r#"{ required = 1, groups = ["a", "a"] }"#,
            r#"{ required = "2", groups = ["dba-leads"] }"#,
        ] {
            let text = MINIMAL.replace(r#"approval = "auto""#, &format!("approval = {approval}"));
            assert!(from_toml(&text).is_err(), "{approval}");
        }
        let text = MINIMAL.replace(
            r#"approval = "auto""#,
            "[approval]\nrequired = 1\ngroups = [\"sre-leads\"]",
        );
        let e = from_toml(&text).unwrap();
        assert_eq!(
            e.approval(),
            &ApprovalRule::Quorum(Quorum::new(1, vec!["sre-leads".into()]).unwrap())
        );
    }

    #[test]
    fn toml_wrong_types_and_unknown_kinds_are_rejected() {
        for (from, to) in [
            (r#""postgres""#, r#""mysql""#),
            (r#""postgres""#, r#""Postgres""#),
            (r#""postgres""#, r#""SSH""#),
            ("3600", "\"3600\""),
            ("3600", "3600.0"),
            (r#"["dba", "sre"]"#, r#""dba""#),
            (r#""db-prod-*""#, r#""*""#),
            (r#""db-prod-*""#, r#""db-prod-* ""#),
            (r#""INC-*""#, r#""**""#),
            (r#""INC-*""#, "\"\""),
            ("{ max_duration_secs = 1800 }", "1800"),
            ("{ max_duration_secs = 1800 }", "true"),
        ] {
            let text = FULL.replacen(from, to, 1);
            assert_ne!(text, FULL);
            assert!(from_toml(&text).is_err(), "{to}");
        }
    }

    #[test]
    fn toml_config_errors_do_not_echo_control_characters() {
        let text = FULL.replace("\"readonly\"", "\"readonly\\u001b[2K\\u202e\"");
        let err = from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("invalid entitlement: role"), "{err}");
        let approval = MINIMAL.replace(r#""auto""#, r#""auto\u001b[2K""#);
        let err = from_toml(&approval).unwrap_err().to_string();
        // toml quotes the offending line with escapes; the value itself is never repeated raw.
        assert!(
            !err.contains('\u{1b}') && !err.contains('\u{202e}'),
            "{err:?}"
        );
    }

    #[test]
    fn ids_are_lowercase_slugs() {
        for id in [
            "a",
            "0",
            "db-prod-readonly",
            "9-lives",
            "x-",
            &"a".repeat(63),
        ] {
            let mut c = config();
            c.id = id.into();
            assert!(Entitlement::new(c).is_ok(), "{id:?}");
        }
        for id in [
            "",
            "-db",
            "Db-prod",
            "db_prod",
            "db.prod",
            "db prod",
            " db",
            "db ",
            "db\n",
            "dé",
            "db\u{200b}",
            &"a".repeat(64),
        ] {
            let mut c = config();
            c.id = id.into();
            rejected(c, "id");
        }
    }

    #[test]
    fn roles_are_exact_identifiers() {
        for role in [
            "root",
            "_svc",
            "readonly",
            "db-admin",
            "app_rw2",
            &"r".repeat(63),
        ] {
            let mut c = config();
            c.role = role.into();
            assert!(Entitlement::new(c).is_ok(), "{role:?}");
        }
        for role in [
            "",
            "0day",
            "-oProxyCommand=x",
            "-",
            "Root",
            "ro*",
            "read*",
            "read.only",
            "read only",
            "root\n",
            "root;drop",
            "\"root\"",
            "röot",
            "root\u{202e}",
            &"r".repeat(64),
        ] {
            let mut c = config();
            c.role = role.into();
            rejected(c, "role");
        }
    }

    #[test]
    fn descriptions_are_one_clean_line() {
        let cases: &[(&str, &str)] = &[
            ("", "is empty or only whitespace"),
            ("   ", "is empty or only whitespace"),
            (" Read-only", "starts or ends with whitespace"),
            ("Read-only ", "starts or ends with whitespace"),
            ("Read-only\nApproved: yes", "contains a control character"),
            (
                "Read-only \u{202e}yrots",
                "contains an invisible or bidirectional formatting character",
            ),
            ("Read\u{2028}only", "contains a line or paragraph separator"),
        ];
        for (description, reason) in cases {
            let mut c = config();
            c.description = (*description).into();
            assert_eq!(rejected(c, "description"), *reason, "{description:?}");
        }
        let mut c = config();
        c.description = "é".repeat(MAX_DESCRIPTION_CHARS);
        assert!(
            Entitlement::new(c).is_ok(),
            "the limit counts characters, not bytes"
        );
        let mut c = config();
        c.description = "d".repeat(MAX_DESCRIPTION_CHARS + 1);
        assert_eq!(rejected(c, "description"), "is longer than 200 characters");
    }

    #[test]
    fn max_duration_is_positive_and_at_most_a_day() {
        for secs in [1, 3600, MAX_ENTITLEMENT_DURATION_SECS] {
            let mut c = config();
            c.max_duration_secs = secs;
            c.break_glass = None;
            assert!(Entitlement::new(c).is_ok(), "{secs}");
        }
        for (secs, reason) in [
            (0, "must be positive"),
            (-1, "must be positive"),
            (i64::MIN, "must be positive"),
            (
                MAX_ENTITLEMENT_DURATION_SECS + 1,
                "must not exceed 24 hours (86400 s)",
            ),
            (i64::MAX, "must not exceed 24 hours (86400 s)"),
        ] {
            let mut c = config();
            c.max_duration_secs = secs;
            c.break_glass = None;
            assert_eq!(rejected(c, "max_duration_secs"), reason, "{secs}");
        }
    }

    #[test]
    fn requesters_are_a_non_empty_set_of_clean_group_names() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "must name at least one group"),
            (&["dba", "dba"], "lists a group twice"),
            (&["dba", ""], GROUP_NAME_RULE),
            (&["db a"], GROUP_NAME_RULE),
            (&["dba,sre"], GROUP_NAME_RULE),
            (&["dba\n"], GROUP_NAME_RULE),
            (&["dba\u{200b}"], GROUP_NAME_RULE),
        ];
        for (groups, reason) in cases {
            let mut c = config();
            c.requesters = groups.iter().map(|g| g.to_string()).collect();
            assert_eq!(rejected(c, "requesters"), *reason, "{groups:?}");
        }
    }

    #[test]
    fn approval_quorum_is_checked_by_quorum_rules() {
        for (required, groups) in [
            (0, vec!["dba-leads".to_string()]),
            (1, vec![]),
            (1, vec!["dba-leads".into(), "dba-leads".into()]),
            (1, vec!["dba-leads\u{202e}".into()]),
        ] {
            let mut c = config();
            c.approval = ApprovalConfig::Quorum { required, groups };
            assert!(
                matches!(Entitlement::new(c), Err(PolicyError::InvalidQuorum { .. })),
                "{required}"
            );
        }
    }

    #[test]
    fn break_glass_is_short_and_never_longer_than_the_entitlement() {
        let field = "break_glass.max_duration_secs";
        let with = |entitlement_max, bg| {
            let mut c = config();
            c.max_duration_secs = entitlement_max;
            c.break_glass = Some(BreakGlassConfig {
                max_duration_secs: bg,
            });
            c
        };
        for (max, bg) in [(3600, 1), (3600, 1800), (3600, 3600), (86_400, 14_400)] {
            let e = Entitlement::new(with(max, bg)).unwrap();
            assert_eq!(e.break_glass().unwrap().max_duration_secs(), bg);
        }
        for (max, bg, reason) in [
            (3600, 0, "must be positive"),
            (3600, -60, "must be positive"),
            (86_400, 14_401, "must not exceed 4 hours (14400 s)"),
            (86_400, 86_400, "must not exceed 4 hours (14400 s)"),
            (86_400, i64::MAX, "must not exceed 4 hours (14400 s)"),
            (
                3600,
                3601,
                "must not exceed the entitlement's max_duration_secs",
            ),
            (
                600,
                14_400,
                "must not exceed the entitlement's max_duration_secs",
            ),
        ] {
            assert_eq!(rejected(with(max, bg), field), reason, "{max} {bg}");
        }
    }

    #[test]
    fn is_requester_needs_an_exact_group() {
        let e = Entitlement::new(config()).unwrap();
        let groups = |gs: &[&str]| gs.iter().map(|g| g.to_string()).collect::<Vec<_>>();
        assert!(e.is_requester(&groups(&["dba"])));
        assert!(e.is_requester(&groups(&["helpdesk", "sre"])));
        assert!(!e.is_requester(&groups(&[])));
        assert!(!e.is_requester(&groups(&["DBA", "dba ", "dbas", "dba-leads"])));
    }

    #[test]
    fn describe_rule_reads_plainly() {
        let e = Entitlement::new(config()).unwrap();
        assert_eq!(
            e.describe_rule(),
            "needs 2 distinct approvers from dba-leads or sre-leads; the requester cannot approve; \
             a ticket matching INC-* is required; \
             break-glass allowed for up to 30 min; two other people must review it"
        );
        let auto = from_toml(MINIMAL).unwrap();
        assert_eq!(
            auto.describe_rule(),
            "approved automatically after the requester's security-key step-up"
        );
        let mut c = config();
        c.approval = ApprovalConfig::Quorum {
            required: 1,
            groups: vec!["dba-leads".into()],
        };
        c.ticket = None;
        c.max_duration_secs = 7200;
        c.break_glass = Some(BreakGlassConfig {
            max_duration_secs: 5400,
        });
        assert_eq!(
            Entitlement::new(c).unwrap().describe_rule(),
            "needs 1 approver from dba-leads; the requester cannot approve; \
             break-glass allowed for up to 1 h 30 min; two other people must review it"
        );
    }

    #[test]
    fn plain_durations() {
        for (secs, words) in [
            (0, "0 s"),
            (1, "1 s"),
            (59, "59 s"),
            (60, "1 min"),
            (90, "1 min 30 s"),
            (1800, "30 min"),
            (3600, "1 h"),
            (3601, "1 h 1 s"),
            (5400, "1 h 30 min"),
            (14_400, "4 h"),
            (86_399, "23 h 59 min 59 s"),
        ] {
            assert_eq!(plain_duration(secs), words, "{secs}");
        }
    }

    #[test]
    fn target_kinds_have_stable_names() {
        for kind in [TargetKind::Ssh, TargetKind::Postgres] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<TargetKind>(&json).unwrap(), kind);
        }
    }

    #[test]
    fn command_rules_are_checked_at_load_and_named_in_the_error() {
        let ok = format!(
            "{MINIMAL}\n[commands]\ndefault = \"deny\"\nrules = [{{ program = \"ls\", action = \"allow\" }}]\n"
        );
        let e = from_toml(&ok).unwrap();
        let c = e.commands().unwrap();
        assert_eq!(c.config().rules.len(), 1);
        match c.check("rm -rf /") {
            paw_commands::Verdict::Checked(v) => assert_eq!(v.action, paw_commands::Action::Deny),
            other => panic!("{other:?}"),
        }
        let bad =
            format!("{MINIMAL}\n[commands]\nrules = [{{ program = \"\", action = \"deny\" }}]\n");
        let err = from_toml(&bad).unwrap_err().to_string();
        assert!(err.contains("commands.rules[0].program"), "{err}");
        let unknown = format!(
            "{MINIMAL}\n[commands]\nrules = [{{ program = \"rm\", action = \"forbid\" }}]\n"
        );
        assert!(from_toml(&unknown).is_err());
        // Two entitlements differing only in their rules are different policies.
        assert_ne!(from_toml(&ok).unwrap(), from_toml(MINIMAL).unwrap());
    }

    #[test]
    fn hold_secs_is_bounded_and_approve_rules_need_approvers() {
        let with = |extra: &str| format!("{MINIMAL}\n[commands]\n{extra}\n");
        let e = from_toml(&with("rules = []")).unwrap();
        assert_eq!(
            e.commands().unwrap().hold_secs(),
            crate::limits::DEFAULT_COMMAND_HOLD_SECS
        );
        let e = from_toml(&with("hold_secs = 30")).unwrap();
        assert_eq!(e.commands().unwrap().hold_secs(), 30);
        for bad in [0, 1, 901] {
            let err = from_toml(&with(&format!("hold_secs = {bad}")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("hold_secs"), "{err}");
        }
        // MINIMAL is approved automatically: nobody could approve a held command.
        let err = from_toml(&with(r#"rules = [{ program = "rm", action = "approve" }]"#))
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs approvers"), "{err}");
        let err = from_toml(&with(r#"default = "approve""#))
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs approvers"), "{err}");
        assert!(from_toml(&with(r#"rules = [{ program = "rm", action = "step_up" }]"#)).is_ok());
    }

    #[test]
    fn max_sessions_is_between_1_and_16() {
        for (n, ok) in [(0, false), (1, true), (16, true), (17, false)] {
            let mut c = config();
            c.max_sessions = n;
            assert_eq!(Entitlement::new(c).is_ok(), ok, "{n}");
        }
    }
}
