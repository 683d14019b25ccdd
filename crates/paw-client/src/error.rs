use paw_proto::ipc::BrokerState;
use paw_proto::{ApiError, ErrorCode};

/// Everything that can go wrong in the workstation core.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{field}: {reason}")]
    InvalidSettings { field: &'static str, reason: String },
    #[error("settings storage: {0}")]
    Storage(String),
    #[error("no broker is configured")]
    NotConfigured,
    #[error("broker unreachable: {0}")]
    Unreachable(String),
    #[error("broker certificate not trusted by the pinned CA: {0}")]
    Untrusted(String),
    #[error("unexpected broker answer: {0}")]
    Protocol(String),
    /// The broker answered with its own `{code, message}`.
    #[error("{0}")]
    Broker(ApiError),
    #[error("{0}")]
    UrlRejected(String),
    /// The OS keyring cannot be used (absent, locked, refused, or it lost a write). The app
    /// keeps its device key and tokens nowhere else, so this stops sign-in (case H2).
    #[error("OS keyring unavailable: {0}")]
    KeyringUnavailable(String),
    /// The operating system's random number generator failed; nothing is signed or created.
    #[error("system random number generator failed: {0}")]
    Random(String),
    /// This build has no security key support configured (no authenticator was given).
    #[error("no security key is available in this build; sign-in is not possible")]
    NoAuthenticator,
    /// The security key failed or refused (none plugged in, wrong PIN, no matching credential,
    /// cancelled, timed out, device error).
    #[error("security key: {0}")]
    Key(paw_fido::FidoError),
    /// Signed out, or the session is gone: sign in with the security key.
    #[error("not signed in")]
    NotSignedIn,
    /// The step-up prompt is unknown, used, cancelled or expired.
    #[error("this confirmation is no longer valid; start again")]
    StepUpUnknown,
    /// An input from the UI is invalid; the message names the field.
    #[error("{field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },
    /// The local audit trail cannot durably record a privileged action, so it was not started
    /// (case D1); the message says why (disk full, read-only, locked, corrupt, …).
    #[error("the local audit trail cannot record this action, so it was not started: {0}")]
    AuditUnavailable(paw_audit::AuditError),
    /// The broker, witness of the local trail, refused its checkpoint: the trail no longer
    /// continues the last checkpoint the broker cosigned (case D3). The action was not started.
    #[error(
        "the broker refused this workstation's audit trail, so the action was not started: {0}"
    )]
    AuditDiverged(String),
    /// The broker cosigns with another witness key than the one pinned for it. Nothing it
    /// cosigns is trusted until the pin is replaced on purpose.
    #[error(
        "the broker's audit witness key changed (pinned {pinned}, now {found}), so the action \
         was not started; if the broker's operator confirms the new key, remove its entry from {file}"
    )]
    WitnessChanged {
        pinned: String,
        found: String,
        file: String,
    },
    /// A bug or an unexpected condition in the core (for example a failed background task).
    #[error("session: {0}")]
    Session(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A file transfer failed or was refused, with the code and words the UI shows (a
    /// broker's refusal keeps its own `paw: ` message).
    #[error("{}", .0.message)]
    Transfer(ApiError),
}

impl From<paw_fido::FidoError> for ClientError {
    fn from(e: paw_fido::FidoError) -> Self {
        // FidoError's messages never carry key material, a PIN or saved state.
        Self::Key(e)
    }
}

impl ClientError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidSettings { .. } => ErrorCode::InvalidSettings,
            Self::Storage(_) => ErrorCode::StorageUnavailable,
            Self::NotConfigured => ErrorCode::BrokerNotConfigured,
            Self::Unreachable(_) => ErrorCode::BrokerUnreachable,
            Self::Untrusted(_) => ErrorCode::BrokerUntrusted,
            Self::Protocol(_) => ErrorCode::BrokerProtocol,
            Self::Broker(e) | Self::Transfer(e) => e.code,
            Self::UrlRejected(_) => ErrorCode::UrlRejected,
            Self::KeyringUnavailable(_) => ErrorCode::KeyringUnavailable,
            Self::Random(_) | Self::Internal(_) => ErrorCode::Internal,
            Self::Session(_) => ErrorCode::TargetUnavailable,
            Self::Key(e) => key_error_code(e),
            Self::NoAuthenticator => ErrorCode::SecurityKeyMissing,
            Self::NotSignedIn => ErrorCode::Unauthenticated,
            Self::StepUpUnknown => ErrorCode::ChallengeInvalid,
            Self::InvalidInput { .. } => ErrorCode::BadRequest,
            Self::AuditUnavailable(_) => ErrorCode::AuditUnavailable,
            Self::AuditDiverged(_) => ErrorCode::AuditDiverged,
            Self::WitnessChanged { .. } => ErrorCode::AuditWitnessChanged,
        }
    }

    pub fn to_api(&self) -> ApiError {
        ApiError::new(self.code(), self.to_string())
    }

    /// How the status bar should describe the broker after this error.
    pub fn broker_state(&self) -> BrokerState {
        match self {
            Self::Untrusted(_) => BrokerState::Untrusted,
            Self::Protocol(_) | Self::Broker(_) => BrokerState::Incompatible,
            Self::NotConfigured | Self::InvalidSettings { .. } => BrokerState::Unconfigured,
            _ => BrokerState::Unreachable,
        }
    }
}

/// The code the UI branches on for each security-key failure: each one needs a different
/// action from the user (plug a key in, retype the PIN, reset the key, try again).
fn key_error_code(e: &paw_fido::FidoError) -> ErrorCode {
    use paw_fido::FidoError as F;
    match e {
        F::NoDevice | F::SeveralDevices => ErrorCode::SecurityKeyMissing,
        F::PinInvalid { .. } => ErrorCode::PinInvalid,
        F::PinBlocked | F::PinAuthBlocked => ErrorCode::PinBlocked,
        F::PinNotSet => ErrorCode::PinNotSet,
        F::Cancelled => ErrorCode::KeyCancelled,
        F::Timeout => ErrorCode::KeyTimeout,
        F::Random
        | F::KeyGeneration
        | F::Signing
        | F::CoseEncoding(_)
        | F::CounterExhausted
        | F::Attestation(_)
        | F::NoCounterToRegress
        | F::NoCredential
        | F::State(_)
        | F::Unavailable(_)
        | F::Device(_) => ErrorCode::WebauthnRejected,
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        e.to_api()
    }
}
