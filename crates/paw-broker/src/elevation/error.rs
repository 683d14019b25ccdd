//! What elevation (requests, approvals, grants, break-glass) refuses with.

use crate::base::error::{Forbidden, Invalid};
use crate::identity::error::IdentityError;

crate::service_error! {
    /// An elevation operation's refusal, one variant per code it answers with; a failed
    /// step-up passes on identity's refusal.
    pub enum ElevationError {
        AccountLocked,
        BadRequest,
        Conflict,
        Forbidden,
        NotFound,
    }
    wraps { Identity(IdentityError) }
}

impl From<Forbidden> for ElevationError {
    fn from(e: Forbidden) -> Self {
        Self::Forbidden(e.0)
    }
}

impl From<Invalid> for ElevationError {
    fn from(e: Invalid) -> Self {
        Self::BadRequest(e.0)
    }
}

pub type Result<T, E = ElevationError> = std::result::Result<T, E>;
