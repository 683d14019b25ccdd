//! What the audit service (checkpoints, co-signing, the stream) refuses with.

use crate::base::error::Forbidden;

crate::service_error! {
    /// An audit operation's refusal, one variant per code it answers with.
    pub enum AuditError {
        BadRequest,
        Conflict,
        Forbidden,
        PayloadTooLarge,
    }
}

impl From<Forbidden> for AuditError {
    fn from(e: Forbidden) -> Self {
        Self::Forbidden(e.0)
    }
}

pub type Result<T, E = AuditError> = std::result::Result<T, E>;
