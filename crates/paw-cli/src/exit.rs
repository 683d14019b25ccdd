//! pawctl's exit statuses: the one table that defines them, `--help` and the README describe
//! them from it (a test checks the README), and every error is mapped to one here.
//!
//! A pipeline branches on these numbers, so they never change meaning. The `code` printed with
//! an error (`paw_proto::ErrorCode`) says more; the status says what to do next: fix the
//! invocation (2), give up (3), retry later (4), log in (5), or wait for a person (6).

use paw_client::ClientError;
use paw_proto::ErrorCode;

/// How pawctl ended. `exec` is the exception: it ends with the target command's own status, and
/// with [`Exit::ExecFailed`] for every failure of paw itself, so that paw's statuses cannot be
/// mistaken for the command's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok,
    Failed,
    Usage,
    Refused,
    Unreachable,
    NotSignedIn,
    Denied,
    ExecFailed,
}

impl Exit {
    pub const ALL: [Exit; 8] = [
        Exit::Ok,
        Exit::Failed,
        Exit::Usage,
        Exit::Refused,
        Exit::Unreachable,
        Exit::NotSignedIn,
        Exit::Denied,
        Exit::ExecFailed,
    ];

    pub const fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::Refused => 3,
            Exit::Unreachable => 4,
            Exit::NotSignedIn => 5,
            Exit::Denied => 6,
            Exit::ExecFailed => 125,
        }
    }

    pub const fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "success",
            Exit::Failed => "local failure (credential store, state directory, I/O)",
            Exit::Usage => "usage: bad arguments, a missing --broker/--ca, an unusable CA file",
            Exit::Refused => {
                "the broker refused (forbidden, locked or suspended, bad request, conflict)"
            }
            Exit::Unreachable => "the broker is unreachable, untrusted (TLS) or unavailable",
            Exit::NotSignedIn => "not signed in: no stored session, or the broker ended it",
            Exit::Denied => "the request was denied, cancelled or expired, or --wait timed out",
            Exit::ExecFailed => {
                "exec only: paw itself failed (the target's own status is passed through otherwise)"
            }
        }
    }
}

/// The exit-status section of `pawctl --help`.
pub fn help_text() -> String {
    let mut s = String::from("Exit status:\n");
    for e in Exit::ALL {
        s.push_str(&format!("  {:>3}  {}\n", e.code(), e.meaning()));
    }
    s.push_str(
        "\nErrors go to stderr as `pawctl: <code>: <message>`, or as {\"code\",\"message\"} with --json.",
    );
    s
}

/// The status for a `{code, message}` the broker answered with.
pub fn for_code(code: ErrorCode) -> Exit {
    match code {
        ErrorCode::Unauthenticated | ErrorCode::ReauthenticationRequired => Exit::NotSignedIn,
        // A broker without its database, or one that gave up, may answer the same call later.
        ErrorCode::StorageUnavailable
        | ErrorCode::Timeout
        | ErrorCode::BrokerUnreachable
        | ErrorCode::BrokerUntrusted
        | ErrorCode::BrokerProtocol => Exit::Unreachable,
        _ => Exit::Refused,
    }
}

/// The status for a failure of the client library.
pub fn for_client(e: &ClientError) -> Exit {
    match e {
        // A refused or failed transfer carries the broker's (or the core's) code, as an answer does.
        ClientError::Broker(api) | ClientError::Transfer(api) => for_code(api.code),
        ClientError::Unreachable(_)
        | ClientError::Untrusted(_)
        | ClientError::Protocol(_)
        | ClientError::Session(_) => Exit::Unreachable,
        ClientError::NotConfigured
        | ClientError::InvalidSettings { .. }
        | ClientError::InvalidInput { .. }
        | ClientError::UrlRejected(_) => Exit::Usage,
        ClientError::NotSignedIn => Exit::NotSignedIn,
        ClientError::StepUpUnknown => Exit::Refused,
        ClientError::Storage(_)
        | ClientError::KeyringUnavailable(_)
        | ClientError::Random(_)
        | ClientError::Internal(_)
        | ClientError::NoAuthenticator
        | ClientError::Key(_)
        | ClientError::AuditUnavailable(_)
        | ClientError::AuditDiverged(_)
        | ClientError::WitnessChanged { .. } => Exit::Failed,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use paw_proto::ApiError;

    #[test]
    fn codes_are_distinct_and_documented_in_the_readme() {
        let readme = include_str!("../README.md");
        let mut seen = std::collections::HashSet::new();
        for e in Exit::ALL {
            assert!(seen.insert(e.code()), "{e:?} reuses {}", e.code());
            let row = format!("| {} |", e.code());
            assert!(readme.contains(&row), "README has no row {row:?}");
        }
        let help = help_text();
        for e in Exit::ALL {
            assert!(help.contains(e.meaning()), "{help}");
        }
    }

    #[test]
    fn broker_answers_map_to_what_the_caller_does_next() {
        let broker = |code| ClientError::Broker(ApiError::new(code, "x"));
        for (code, want) in [
            (ErrorCode::Unauthenticated, Exit::NotSignedIn),
            (ErrorCode::ReauthenticationRequired, Exit::NotSignedIn),
            (ErrorCode::AccountLocked, Exit::Refused),
            (ErrorCode::Forbidden, Exit::Refused),
            (ErrorCode::BadRequest, Exit::Refused),
            (ErrorCode::Conflict, Exit::Refused),
            (ErrorCode::StorageUnavailable, Exit::Unreachable),
        ] {
            assert_eq!(for_client(&broker(code)), want, "{code}");
        }
        assert_eq!(
            for_client(&ClientError::Unreachable("refused".into())),
            Exit::Unreachable
        );
        assert_eq!(
            for_client(&ClientError::Untrusted("other CA".into())),
            Exit::Unreachable
        );
        assert_eq!(
            for_client(&ClientError::InvalidSettings {
                field: "ca_path",
                reason: "x".into()
            }),
            Exit::Usage
        );
        assert_eq!(
            for_client(&ClientError::KeyringUnavailable("locked".into())),
            Exit::Failed
        );
        assert_eq!(for_client(&ClientError::NotSignedIn), Exit::NotSignedIn);
        let transfer = |code| ClientError::Transfer(ApiError::new(code, "paw: refused"));
        assert_eq!(for_client(&transfer(ErrorCode::Forbidden)), Exit::Refused);
        assert_eq!(
            for_client(&transfer(ErrorCode::RecordingTampered)),
            Exit::Refused
        );
        assert_eq!(for_client(&transfer(ErrorCode::Timeout)), Exit::Unreachable);
    }
}
