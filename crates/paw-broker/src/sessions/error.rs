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

/// The reasons a session ends, in words for the user's terminal.
pub(crate) fn reason_words(reason: &str) -> &'static str {
    match reason {
        "grant_ended" => "the grant ended",
        "revoked" => "the grant was revoked",
        "released" => "the grant was released",
        "killed" => "an administrator ended it",
        "locked" => "the account is locked",
        "recording_failed" => "the recording could not be written",
        "target_closed" => "the target closed it",
        "target_unreachable" => "the target could not be reached",
        "closed" => "you closed it",
        "broker_shutdown" => "the broker carrying it is shutting down",
        "broker_lost" => "the broker carrying it was taken for lost",
        "database_lost" => "the broker lost its database, so nothing could be recorded or revoked",
        "command_denied" => "its command is not allowed under this grant",
        "checked_out" => "the vaulted account is checked out by another grant",
        "vault_unavailable" => "the vault cannot open the account's secret",
        "audit_failed" => "an audit record could not be written, so nothing more is done",
        "scp_legacy" => "legacy scp (-O) is not brokered: drop -O and scp uses SFTP",
        "sftp_bad_packet" => "a file-transfer packet could not be read",
        _ => "the broker ended it",
    }
}
