//! Errors. [`BrokerError`] is what the infrastructure fails with (configuration, storage, I/O,
//! bugs); each domain service declares its own refusals with [`service_error!`], as one
//! variant per [`ErrorCode`] it can answer, wrapping `BrokerError` for the rest. The HTTP layer
//! has one table for all of them (`http::ApiFailure`), and the OpenAPI document lists each
//! service's [`ServiceError::codes`], so a new refusal is documented by being declared.

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
            Self::Io { .. } | Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// What the HTTP layer needs of any error it answers with.
pub trait ServiceError: std::error::Error {
    fn code(&self) -> ErrorCode;
    /// Every code this error type can carry.
    fn codes() -> Vec<ErrorCode>
    where
        Self: Sized;

    /// The error as a remote client may see it. Storage and internal failures get a generic
    /// message: their details (paths, SQL, driver text) belong in the server log.
    fn to_api_error(&self) -> ApiError {
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

impl ServiceError for BrokerError {
    fn code(&self) -> ErrorCode {
        BrokerError::code(self)
    }
    fn codes() -> Vec<ErrorCode> {
        vec![
            ErrorCode::InvalidConfig,
            ErrorCode::StorageUnavailable,
            ErrorCode::Internal,
        ]
    }
}

/// A caller without the role an operation needs (`AuthContext::require_admin`); each service
/// turns it into its own `Forbidden`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Forbidden(pub String);

/// Input that breaks a shared rule (`util::validate_name`); each service turns it into its
/// own `BadRequest`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Declares a service's error enum: one `Variant(message)` per [`ErrorCode`] it refuses with
/// (the variant is named as the code), `Broker` for infrastructure failures, and optionally
/// transparent wrappers of other services' errors it passes on (`Identity(IdentityError)`).
/// Implements [`ServiceError`]; with `BadRequest`/`Forbidden` variants, also `From` the shared
/// [`Invalid`]/[`Forbidden`].
#[macro_export]
macro_rules! service_error {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($variant:ident),* $(,)?
        }
        $(wraps { $($wrap:ident($inner:ty)),* $(,)? })?
        $(via_broker { $($via:ty),* $(,)? })?
    ) => {
        $(#[$meta])*
        #[derive(Debug, thiserror::Error)]
        pub enum $name {
            $(
                #[error("{0}")]
                $variant(String),
            )*
            $($(
                #[error(transparent)]
                $wrap(#[from] $inner),
            )*)?
            /// Storage, configuration, I/O or a bug.
            #[error(transparent)]
            Broker(#[from] $crate::base::error::BrokerError),
        }

        impl $crate::base::error::ServiceError for $name {
            fn code(&self) -> paw_proto::ErrorCode {
                match self {
                    $(Self::$variant(_) => paw_proto::ErrorCode::$variant,)*
                    $($(Self::$wrap(e) => $crate::base::error::ServiceError::code(e),)*)?
                    Self::Broker(e) => e.code(),
                }
            }
            fn codes() -> Vec<paw_proto::ErrorCode> {
                #[allow(unused_mut)]
                let mut out = vec![$(paw_proto::ErrorCode::$variant),*];
                $($(out.extend(<$inner as $crate::base::error::ServiceError>::codes());)*)?
                out.extend(<$crate::base::error::BrokerError as $crate::base::error::ServiceError>::codes());
                out.sort_by_key(|c| c.as_str());
                out.dedup();
                out
            }
        }

        // A statement failing is an infrastructure failure, as for `BrokerError`.
        impl From<sqlx::Error> for $name {
            fn from(e: sqlx::Error) -> Self {
                Self::Broker(e.into())
            }
        }

        // Only for wiring and the command line (`server.rs`, `init.rs`), where a refusal ends
        // start-up and its message is all that matters.
        impl From<$name> for $crate::base::error::BrokerError {
            fn from(e: $name) -> Self {
                $name::lossy(e)
            }
        }
        impl $name {
            #[allow(dead_code)]
            fn lossy(e: $name) -> $crate::base::error::BrokerError {
                match e {
                    $name::Broker(b) => b,
                    other => $crate::base::error::BrokerError::Internal(other.to_string()),
                }
            }
        }

        $($(
            impl From<$via> for $name {
                fn from(e: $via) -> Self {
                    Self::Broker(e.into())
                }
            }
        )*)?

        impl $name {
            /// The code this error answers with (see [`ServiceError`]).
            pub fn code(&self) -> paw_proto::ErrorCode {
                $crate::base::error::ServiceError::code(self)
            }
        }
    };
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
