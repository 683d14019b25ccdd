//! The caller as identity established it, and the role names every domain checks against.
//! Identity builds an [`AuthContext`] from a verified token and device proof; every other layer
//! only reads it, so one role check ([`AuthContext::require_admin`]) serves every admin route.

use crate::base::error::Forbidden;

/// The role that may revoke any grant, kill any session and read every break-glass review.
pub const ADMIN_ROLE: &str = "admin";
/// The role that reads history but requests nothing (case: help-desk).
pub const HELPDESK_ROLE: &str = "helpdesk";

/// The authenticated caller.
/// An authenticated caller: who, with which roles, in which login session and device key.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub user_id: String,
    pub user_name: String,
    pub roles: Vec<String>,
    pub session_id: String,
    pub session_expires_at_ms: i64,
    /// The session's device key (base64url), the one this request's device proof verified
    /// under: what the workstation signs its audit checkpoints with.
    pub device_key: String,
    /// A machine identity, not a person: it may request, never approve or break glass (K1).
    pub is_machine: bool,
}

impl AuthContext {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn is_admin(&self) -> bool {
        self.has_role(ADMIN_ROLE)
    }

    /// The check for what only a person may do: approve, break glass.
    pub fn require_person(&self, what: &str) -> Result<(), Forbidden> {
        if self.is_machine {
            Err(Forbidden(format!(
                "{what} needs a person; machine identities cannot"
            )))
        } else {
            Ok(())
        }
    }

    /// The one admin check: `forbidden` for anyone without the admin role.
    pub fn require_admin(&self, what: &str) -> Result<(), Forbidden> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Forbidden(format!("{what} needs the admin role")))
        }
    }
}
