//! The crate's one error type. Messages are safe to show a user and to log: no variant ever
//! carries a password or a statement that contains one.

/// Everything that can go wrong minting, dropping or proxying a temporary role.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name (session id, role, database) is not a plain identifier.
    #[error("invalid {what}: {reason}")]
    BadRequest { what: &'static str, reason: String },
    /// The granted role is unknown, is a superuser, can become one, or is itself temporary.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The client asked for another database than the one the grant covers.
    #[error("the grant covers database {expected:?}, the client asked for {requested:?}")]
    WrongDatabase { expected: String, requested: String },
    /// The temporary role exists already (a session id was reused).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database server could not be reached, or the connection to it broke.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The server refused to log in as the temporary role.
    #[error("the database server refused the login: {0}")]
    UpstreamAuth(String),
    /// The client sent something that is not a valid PostgreSQL v3 startup sequence.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server said something during login that this proxy does not understand.
    #[error("unexpected message from the database server: {0}")]
    UpstreamProtocol(String),
    /// Backends of a role were still running when the time bound ran out.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A statement failed for a reason not covered above; the server's message is kept.
    #[error("database error: {0}")]
    Database(String),
}

impl Error {
    /// A stable, snake_case code that callers branch on (never on the message text).
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { .. } => "bad_request",
            Error::Forbidden(_) => "forbidden",
            Error::WrongDatabase { .. } => "wrong_database",
            Error::Conflict(_) => "conflict",
            Error::Unavailable(_) => "unavailable",
            Error::UpstreamAuth(_) => "upstream_auth_failed",
            Error::Protocol(_) => "protocol",
            Error::UpstreamProtocol(_) => "upstream_protocol",
            Error::Timeout(_) => "timeout",
            Error::Database(_) => "database",
        }
    }

    pub(crate) fn bad_request(what: &'static str, reason: impl Into<String>) -> Self {
        Error::BadRequest {
            what,
            reason: reason.into(),
        }
    }
}

/// SQLSTATEs mapped to their own variants; the rest keep the server's message.
const DUPLICATE_OBJECT: &str = "42710";

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) => {
                if db.code().as_deref() == Some(DUPLICATE_OBJECT) {
                    Error::Conflict(db.message().to_owned())
                } else {
                    // Only the server's primary message: never the statement text.
                    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                    Error::Database(format!("{} ({code})", db.message()))
                }
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => Error::Unavailable(e.to_string()),
            _ => Error::Database(e.to_string()),
        }
    }
}
