//! What identity (enrolment, login, tokens, step-up, security keys) refuses with.

use crate::base::error::Invalid;

crate::service_error! {
    /// An identity operation's refusal, one variant per code it answers with.
    pub enum IdentityError {
        AccountLocked,
        BadRequest,
        ChallengeInvalid,
        Conflict,
        InviteInvalid,
        NotFound,
        RateLimited,
        ReauthenticationRequired,
        Unauthenticated,
        WebauthnRejected,
    }
}

impl From<Invalid> for IdentityError {
    fn from(e: Invalid) -> Self {
        Self::BadRequest(e.0)
    }
}

pub type Result<T, E = IdentityError> = std::result::Result<T, E>;
