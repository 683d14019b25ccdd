//! The broker's one error type. Each variant maps to an [`ErrorCode`]; the HTTP layer turns it
//! into `{code, message}` and keeps internal details in the server log only.

use paw_proto::{ApiError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// A config value, file or environment variable is invalid; the message names it.
    #[error("{0}")]
    Config(String),
    /// `pawd init` would overwrite something that exists.
    #[error("{0}")]
    AlreadyInitialized(String),
    /// Certificate or key generation, parsing or matching failed.
    #[error("tls: {0}")]
    Tls(String),
    /// The database could not be reached or a statement failed.
    #[error("database: {0}")]
    Database(String),
    /// The database schema is not what this build expects.
    #[error("migrations: {0}")]
    Migration(String),
    /// Filesystem or socket failure, with what we were doing.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Bad client input, rejected before any work is done.
    #[error("{message}")]
    BadRequest { code: ErrorCode, message: String },
    /// A bug or an unexpected condition.
    #[error("internal: {0}")]
    Internal(String),
}

impl BrokerError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Config(_) | Self::AlreadyInitialized(_) | Self::Tls(_) => {
                ErrorCode::InvalidConfig
            }
            Self::Database(_) | Self::Migration(_) => ErrorCode::StorageUnavailable,
            Self::BadRequest { code, .. } => *code,
            Self::Io { .. } | Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The error as a remote client may see it. Storage and internal failures get a generic
    /// message: their details (paths, SQL, driver text) belong in the server log.
    pub fn to_api_error(&self) -> ApiError {
        let code = self.code();
        let message = match code {
            ErrorCode::StorageUnavailable => "the broker's database is unavailable".to_owned(),
            ErrorCode::Internal | ErrorCode::InvalidConfig => {
                "internal error; see the broker log".to_owned()
            }
            _ => self.to_string(),
        };
        ApiError::new(code, message)
    }
}

impl From<sqlx::Error> for BrokerError {
    fn from(e: sqlx::Error) -> Self {
        // sqlx error text never includes the connection URL, so it is safe to keep.
        Self::Database(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for BrokerError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Migration(e.to_string())
    }
}

pub type Result<T, E = BrokerError> = std::result::Result<T, E>;
