//! pawctl's one error type: a `{code, message}` as everywhere in paw, plus the exit status it
//! ends the process with.
//!
//! Messages never hold a secret: they are written here from names, paths and the broker's own
//! messages, never from a token, a seed or a file's contents.

use paw_client::ClientError;
use paw_proto::{ApiError, ErrorCode};

use crate::exit::{self, Exit};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub code: ErrorCode,
    pub message: String,
    pub exit: Exit,
}

impl CliError {
    pub fn new(code: ErrorCode, exit: Exit, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            exit,
        }
    }

    /// The invocation is wrong (arguments, a missing setting).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, Exit::Usage, message)
    }

    /// Nothing to act as: no stored session or key, or one the broker no longer accepts.
    pub fn not_signed_in(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, Exit::NotSignedIn, message)
    }

    /// The state directory or the credential store failed.
    pub fn store(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::StorageUnavailable, Exit::Failed, message)
    }

    /// A request that ended without a grant (denied, cancelled, expired).
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, Exit::Denied, message)
    }

    /// `--wait` ran out with the request still open.
    pub fn wait_timed_out(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Timeout, Exit::Denied, message)
    }

    /// The same error ending with another status (`exec`'s 125).
    pub fn with_exit(mut self, exit: Exit) -> Self {
        self.exit = exit;
        self
    }

    /// Whether the broker said this sign-in is over (signed out, revoked, expired).
    pub fn session_over(&self) -> bool {
        matches!(
            self.code,
            ErrorCode::Unauthenticated | ErrorCode::ReauthenticationRequired
        )
    }

    pub fn to_api(&self) -> ApiError {
        ApiError::new(self.code, self.message.clone())
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        let exit = exit::for_client(&e);
        match e {
            // The broker's own message, without the code a second time (Display prefixes it).
            ClientError::Broker(api) => Self::new(api.code, exit, api.message),
            other => Self::new(other.code(), exit, other.to_string()),
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for CliError {}

pub type Result<T, E = CliError> = std::result::Result<T, E>;
