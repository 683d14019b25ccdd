//! The canonical form of a privileged action, which a step-up signs.
//!
//! The broker's step-up challenge is bound to the SHA-256 of these bytes, so what the user
//! approves in the app's prompt ([`Action::describe`]) is exactly what the security key signs and
//! what the broker then performs: changing any field afterwards changes the hash (case A5).
//!
//! Encoding: a domain-separation tag, then each field as a one-byte tag plus a big-endian u32
//! length plus its bytes, in a fixed order per variant. No JSON: its key order and number
//! formatting are not canonical.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ts_rs::TS;

const DOMAIN: &[u8] = b"paw-action-v1\0";

/// What a step-up is for. A challenge issued for one purpose is refused for another (case A4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Login,
    Request,
    Approve,
    Session,
    BreakGlass,
    KeyManagement,
    KillSession,
    Command,
    ApproveCommand,
    ManageMachine,
    RevealSecret,
    RotateSecret,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Request => "request",
            Self::Approve => "approve",
            Self::Session => "session",
            Self::BreakGlass => "break_glass",
            Self::KeyManagement => "key_management",
            Self::KillSession => "kill_session",
            Self::Command => "command",
            Self::ApproveCommand => "approve_command",
            Self::ManageMachine => "manage_machine",
            Self::RevealSecret => "reveal_secret",
            Self::RotateSecret => "rotate_secret",
        }
    }
}

/// A privileged action as the user approves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[serde(deny_unknown_fields)]
pub enum Action {
    Login {
        user: String,
    },
    Request {
        entitlement: String,
        target: String,
        role: String,
        duration_secs: u32,
        justification: String,
        ticket: Option<String>,
        /// Unix ms; `None` means "as soon as approved".
        #[ts(type = "number | null")]
        start_at_ms: Option<i64>,
    },
    Approve {
        request_id: String,
        approve: bool,
        comment: String,
    },
    Session {
        grant_id: String,
        target: String,
    },
    /// An admin ends someone's brokered session.
    KillSession {
        session_id: String,
        reason: String,
    },
    BreakGlass {
        entitlement: String,
        target: String,
        role: String,
        duration_secs: u32,
        justification: String,
    },
    KeyManagement {
        operation: String,
        credential: String,
    },
    /// Run one command that the session's command rules hold for the user's own step-up:
    /// bound to the session, its target and the normalized command (case J3).
    Command {
        session_id: String,
        target: String,
        command: String,
    },
    /// Let (or refuse) a command that another person's session holds for approval (J4).
    ApproveCommand {
        hold_id: String,
        command: String,
        approve: bool,
    },
    /// An admin creates a machine identity (`operation = "create"`) or hands it to a new owner
    /// (`"transfer"`). The whole spec is bound through its hash (`MachineSpec::sha256`).
    ManageMachine {
        operation: String,
        machine: String,
        owner: String,
        spec_sha256: String,
    },
    /// Show a vaulted account's secret (`target/account`) once, under an active grant, for a
    /// stated reason; the secret is rotated when the grant's checkout ends (L4).
    RevealSecret {
        account: String,
        grant_id: String,
        reason: String,
    },
    /// An admin rotates a vaulted account's secret now.
    RotateSecret {
        account: String,
        reason: String,
    },
}

/// The OpenAPI schema of an action a step-up can authorise: every kind of [`Action`] but
/// `login`, which only the login ceremony signs (the step-up routes refuse it).
pub fn step_up_action_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::PartialSchema;
    let mut v = serde_json::to_value(Action::schema()).unwrap_or_default();
    if let Some(kinds) = v.get_mut("oneOf").and_then(serde_json::Value::as_array_mut) {
        kinds.retain(|k| k["properties"]["kind"]["enum"] != serde_json::json!(["login"]));
    }
    serde_json::from_value(v).unwrap_or_else(|_| Action::schema())
}

struct Enc(Vec<u8>);

impl Enc {
    fn field(&mut self, tag: u8, bytes: &[u8]) {
        self.0.push(tag);
        // Fields are bounded far below 4 GiB by the API's size limits; saturate rather than wrap
        // so an impossible length can never alias a shorter field.
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
    }
    fn str(&mut self, tag: u8, s: &str) {
        self.field(tag, s.as_bytes());
    }
    fn opt(&mut self, tag: u8, s: Option<&[u8]>) {
        match s {
            // Absent and present-but-empty must encode differently.
            None => self.field(tag, &[0]),
            Some(b) => {
                let mut v = Vec::with_capacity(b.len() + 1);
                v.push(1);
                v.extend_from_slice(b);
                self.field(tag, &v);
            }
        }
    }
}

impl Action {
    pub fn purpose(&self) -> Purpose {
        match self {
            Self::Login { .. } => Purpose::Login,
            Self::Request { .. } => Purpose::Request,
            Self::Approve { .. } => Purpose::Approve,
            Self::Session { .. } => Purpose::Session,
            Self::KillSession { .. } => Purpose::KillSession,
            Self::BreakGlass { .. } => Purpose::BreakGlass,
            Self::KeyManagement { .. } => Purpose::KeyManagement,
            Self::Command { .. } => Purpose::Command,
            Self::ApproveCommand { .. } => Purpose::ApproveCommand,
            Self::ManageMachine { .. } => Purpose::ManageMachine,
            Self::RevealSecret { .. } => Purpose::RevealSecret,
            Self::RotateSecret { .. } => Purpose::RotateSecret,
        }
    }

    /// The canonical bytes; see the module doc for the layout.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut e = Enc(DOMAIN.to_vec());
        e.str(0, self.purpose().as_str());
        match self {
            Self::Login { user } => e.str(1, user),
            Self::Request {
                entitlement,
                target,
                role,
                duration_secs,
                justification,
                ticket,
                start_at_ms,
            } => {
                e.str(1, entitlement);
                e.str(2, target);
                e.str(3, role);
                e.field(4, &duration_secs.to_be_bytes());
                e.str(5, justification);
                e.opt(6, ticket.as_deref().map(str::as_bytes));
                e.opt(
                    7,
                    start_at_ms.map(i64::to_be_bytes).as_ref().map(|b| &b[..]),
                );
            }
            Self::Approve {
                request_id,
                approve,
                comment,
            } => {
                e.str(1, request_id);
                e.field(2, &[u8::from(*approve)]);
                e.str(3, comment);
            }
            Self::Session { grant_id, target } => {
                e.str(1, grant_id);
                e.str(2, target);
            }
            Self::KillSession { session_id, reason } => {
                e.str(1, session_id);
                e.str(2, reason);
            }
            Self::BreakGlass {
                entitlement,
                target,
                role,
                duration_secs,
                justification,
            } => {
                e.str(1, entitlement);
                e.str(2, target);
                e.str(3, role);
                e.field(4, &duration_secs.to_be_bytes());
                e.str(5, justification);
            }
            Self::KeyManagement {
                operation,
                credential,
            } => {
                e.str(1, operation);
                e.str(2, credential);
            }
            Self::Command {
                session_id,
                target,
                command,
            } => {
                e.str(1, session_id);
                e.str(2, target);
                e.str(3, command);
            }
            Self::ApproveCommand {
                hold_id,
                command,
                approve,
            } => {
                e.str(1, hold_id);
                e.str(2, command);
                e.field(3, &[u8::from(*approve)]);
            }
            Self::ManageMachine {
                operation,
                machine,
                owner,
                spec_sha256,
            } => {
                e.str(1, operation);
                e.str(2, machine);
                e.str(3, owner);
                e.str(4, spec_sha256);
            }
            Self::RevealSecret {
                account,
                grant_id,
                reason,
            } => {
                e.str(1, account);
                e.str(2, grant_id);
                e.str(3, reason);
            }
            Self::RotateSecret { account, reason } => {
                e.str(1, account);
                e.str(2, reason);
            }
        }
        e.0
    }

    /// SHA-256 of [`Action::canonical_bytes`].
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.canonical_bytes()).into()
    }

    /// The action in plain words, as the step-up prompt shows it before the user touches the key.
    pub fn describe(&self) -> String {
        fn dur(s: u32) -> String {
            match (s / 3600, (s % 3600) / 60) {
                (0, m) => format!("{m} min"),
                (h, 0) => format!("{h} h"),
                (h, m) => format!("{h} h {m} min"),
            }
        }
        match self {
            Self::Login { user } => format!("Sign in to paw as {user}"),
            Self::Request {
                target,
                role,
                duration_secs,
                justification,
                ticket,
                ..
            } => format!(
                "Request {role} on {target} for {}{}. Reason: {justification}",
                dur(*duration_secs),
                ticket
                    .as_deref()
                    .map(|t| format!(" (ticket {t})"))
                    .unwrap_or_default()
            ),
            Self::Approve {
                request_id,
                approve,
                ..
            } => format!(
                "{} request {request_id}",
                if *approve { "Approve" } else { "Deny" }
            ),
            Self::Session { target, grant_id } => {
                format!("Open a session to {target} under grant {grant_id}")
            }
            Self::KillSession { session_id, reason } => {
                format!("End session {session_id} now. Reason: {reason}")
            }
            Self::BreakGlass {
                target,
                role,
                duration_secs,
                justification,
                ..
            } => format!(
                "BREAK GLASS: {role} on {target} for {} without approval. Reason: {justification}",
                dur(*duration_secs)
            ),
            Self::KeyManagement {
                operation,
                credential,
            } => format!("Security key: {operation} {credential}"),
            Self::Command {
                session_id,
                target,
                command,
            } => format!("Run `{command}` on {target} in session {session_id}"),
            Self::ApproveCommand {
                hold_id,
                command,
                approve,
            } => format!(
                "{} `{command}` (held command {hold_id})",
                if *approve { "Let run" } else { "Refuse" }
            ),
            Self::ManageMachine {
                operation,
                machine,
                owner,
                spec_sha256,
            } => match operation.as_str() {
                "create" => format!(
                    "Create machine identity {machine} owned by {owner} (spec {})",
                    &spec_sha256[..spec_sha256.len().min(12)]
                ),
                "transfer" => format!("Make {owner} the owner of machine {machine}"),
                other => format!("Machine {machine}: {other} (owner {owner})"),
            },
            Self::RevealSecret {
                account,
                grant_id,
                reason,
            } => format!(
                "Reveal the secret of {account} under grant {grant_id}; it is rotated when the \
                 grant ends. Reason: {reason}"
            ),
            Self::RotateSecret { account, reason } => {
                format!("Rotate the secret of {account} now. Reason: {reason}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Action {
        Action::Request {
            entitlement: "prod-db-admin".into(),
            target: "prod-db-1".into(),
            role: "dba".into(),
            duration_secs: 3600,
            justification: "INC-42 vacuum".into(),
            ticket: Some("INC-42".into()),
            start_at_ms: None,
        }
    }

    #[test]
    fn a05_every_field_of_a_request_changes_the_hash() {
        let base = request().hash();
        let Action::Request { .. } = request() else {
            unreachable!()
        };
        type Edit = Box<dyn Fn(&mut Action)>;
        let edits: Vec<Edit> = vec![
            Box::new(|a| {
                if let Action::Request { entitlement, .. } = a {
                    entitlement.push('x')
                }
            }),
            Box::new(|a| {
                if let Action::Request { target, .. } = a {
                    *target = "prod-db-2".into()
                }
            }),
            Box::new(|a| {
                if let Action::Request { role, .. } = a {
                    *role = "superuser".into()
                }
            }),
            Box::new(|a| {
                if let Action::Request { duration_secs, .. } = a {
                    *duration_secs += 1
                }
            }),
            Box::new(|a| {
                if let Action::Request { justification, .. } = a {
                    justification.push(' ')
                }
            }),
            Box::new(|a| {
                if let Action::Request { ticket, .. } = a {
                    *ticket = None
                }
            }),
            Box::new(|a| {
                if let Action::Request { ticket, .. } = a {
                    *ticket = Some(String::new())
                }
            }),
            Box::new(|a| {
                if let Action::Request { start_at_ms, .. } = a {
                    *start_at_ms = Some(0)
                }
            }),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut a = request();
            edit(&mut a);
            assert_ne!(a.hash(), base, "edit {i} did not change the hash");
        }
        assert_eq!(request().hash(), base, "hash is deterministic");
    }

    #[test]
    fn a04_purposes_are_distinct_in_the_encoding() {
        let s = Action::Session {
            grant_id: "g".into(),
            target: "t".into(),
        };
        let k = Action::KeyManagement {
            operation: "g".into(),
            credential: "t".into(),
        };
        assert_ne!(s.hash(), k.hash());
        assert_eq!(s.purpose(), Purpose::Session);
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let a = Action::Session {
            grant_id: "ab".into(),
            target: "c".into(),
        };
        let b = Action::Session {
            grant_id: "a".into(),
            target: "bc".into(),
        };
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn describe_reads_plainly() {
        assert_eq!(
            request().describe(),
            "Request dba on prod-db-1 for 1 h (ticket INC-42). Reason: INC-42 vacuum"
        );
    }

    #[test]
    fn golden_hash_v1_is_stable() {
        // Pinned so an accidental change of the encoding (which would invalidate every
        // outstanding challenge and every audit reference to an action hash) fails loudly.
        let h = Action::Login { user: "ada".into() }.hash();
        let mut want = Vec::new();
        want.extend_from_slice(DOMAIN);
        want.extend_from_slice(&[0, 0, 0, 0, 5]);
        want.extend_from_slice(b"login");
        want.extend_from_slice(&[1, 0, 0, 0, 3]);
        want.extend_from_slice(b"ada");
        assert_eq!(h, <[u8; 32]>::from(Sha256::digest(&want)));
    }
}
