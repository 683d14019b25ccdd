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
            Self::Broker(e) => e.code,
            Self::UrlRejected(_) => ErrorCode::UrlRejected,
            Self::KeyringUnavailable(_) => ErrorCode::StorageUnavailable,
            Self::Random(_) => ErrorCode::Internal,
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

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        e.to_api()
    }
}
