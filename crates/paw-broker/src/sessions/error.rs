//! What sessions (opening, the SSH front door, PostgreSQL, recordings, history) refuse with.

use crate::base::error::{Forbidden, Invalid};
use crate::crypto::ssh_ca::IssueError;
use crate::elevation::error::ElevationError;
use crate::identity::error::IdentityError;
use crate::vault::error::VaultError;

crate::service_error! {
    /// A session operation's refusal, one variant per code it answers with; a failed step-up
    /// or grant check passes on the refusal of identity or elevation.
    pub enum SessionsError {
        BadRequest,
        Conflict,
        Forbidden,
        NotFound,
        PayloadTooLarge,
        RecordingTampered,
        TargetUnavailable,
        Unauthenticated,
    }
    wraps { Identity(IdentityError), Elevation(ElevationError), Vault(VaultError) }
}

impl From<IssueError> for SessionsError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::GrantEnded => Self::Forbidden(e.to_string()),
            IssueError::Broker(b) => Self::Broker(b),
        }
    }
}

/// A [`paw_pgproxy::Error`] as a refusal. Its messages hold no password or URL.
impl From<paw_pgproxy::Error> for SessionsError {
    fn from(e: paw_pgproxy::Error) -> Self {
        use paw_pgproxy::Error as E;
        let message = e.to_string();
        match e {
            E::Forbidden(_) => Self::Forbidden(message),
            E::BadRequest { .. } | E::WrongDatabase { .. } | E::Protocol(_) => {
                Self::BadRequest(message)
            }
            E::Conflict(_) => Self::Conflict(message),
            E::Unavailable(_)
            | E::UpstreamAuth(_)
            | E::UpstreamProtocol(_)
            | E::Timeout(_)
            | E::Database(_) => Self::TargetUnavailable(message),
        }
    }
}

impl From<Forbidden> for SessionsError {
    fn from(e: Forbidden) -> Self {
        Self::Forbidden(e.0)
    }
}

impl From<Invalid> for SessionsError {
    fn from(e: Invalid) -> Self {
        Self::BadRequest(e.0)
    }
}

pub type Result<T, E = SessionsError> = std::result::Result<T, E>;
