//! What machine identities (creation, ownership, join, workload login, rotation) refuse with.

use crate::base::error::{Forbidden, Invalid};
use crate::identity::error::IdentityError;

crate::service_error! {
    /// A machine operation's refusal, one variant per code it answers with; a failed step-up
    /// or login passes on identity's refusal.
    pub enum MachinesError {
        BadRequest,
        ChallengeInvalid,
        Conflict,
        Forbidden,
        NotFound,
        Unauthenticated,
    }
    wraps { Identity(IdentityError) }
}

impl From<Forbidden> for MachinesError {
    fn from(e: Forbidden) -> Self {
        Self::Forbidden(e.0)
    }
}

impl From<Invalid> for MachinesError {
    fn from(e: Invalid) -> Self {
        Self::BadRequest(e.0)
    }
}

pub type Result<T, E = MachinesError> = std::result::Result<T, E>;
