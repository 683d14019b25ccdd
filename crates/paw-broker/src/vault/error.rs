//! What the vault (accounts, checkout, reveal, rotation) refuses with.

use crate::base::error::{Forbidden, Invalid};
use crate::identity::error::IdentityError;

crate::service_error! {
    /// A vault operation's refusal, one variant per code it answers with.
    pub enum VaultError {
        BadRequest,
        ChallengeInvalid,
        CheckedOut,
        Conflict,
        Forbidden,
        NotFound,
        TargetUnavailable,
        VaultUnavailable,
    }
    wraps { Identity(IdentityError) }
}

impl From<Forbidden> for VaultError {
    fn from(e: Forbidden) -> Self {
        Self::Forbidden(e.0)
    }
}

impl From<Invalid> for VaultError {
    fn from(e: Invalid) -> Self {
        Self::BadRequest(e.0)
    }
}

/// The crypto layer's failure, as the caller sees it: a wrong or missing KEK, or a sealed
/// secret that does not open, is `vault_unavailable` (fail closed, L5); the message names the
/// key id or the check that failed, never a byte of a key or a secret.
impl From<paw_vault::VaultError> for VaultError {
    fn from(e: paw_vault::VaultError) -> Self {
        Self::VaultUnavailable(format!("{} ({})", e, e.code()))
    }
}

pub type Result<T, E = VaultError> = std::result::Result<T, E>;
