//! The one error shape that crosses HTTP and IPC: `{code, message}`.

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use utoipa::ToSchema;

/// Stable, machine-readable error codes. The UI and API clients branch on these; the message is
/// for people. Adding a variant is compatible; renaming one is a breaking change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request was malformed: bad JSON, wrong types, unknown or missing fields.
    BadRequest,
    /// The request body or a field was larger than the endpoint accepts.
    PayloadTooLarge,
    /// The content type of the body is not JSON.
    UnsupportedMediaType,
    /// No such route or resource.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The server took too long; the request may be retried.
    Timeout,
    /// The store the broker depends on is not available.
    StorageUnavailable,
    /// A bug or an unexpected condition on the server; details are in the server's log only.
    Internal,
    /// A configuration value is invalid; the message names it.
    InvalidConfig,
    /// The workstation settings are invalid; the message names the field.
    InvalidSettings,
    /// No broker is configured yet.
    BrokerNotConfigured,
    /// The broker could not be reached (DNS, refused, timed out).
    BrokerUnreachable,
    /// The broker's certificate is not signed by the pinned CA, or TLS failed.
    BrokerUntrusted,
    /// The broker answered with something this client does not understand.
    BrokerProtocol,
    /// A URL is not one the app is willing to open.
    UrlRejected,
    /// No valid access or refresh token, or the device-key proof is missing, malformed, stale or replayed.
    Unauthenticated,
    /// The session passed its idle (15 min) or absolute (12 h) limit: log in with the security key again.
    ReauthenticationRequired,
    /// The WebAuthn challenge is unknown, consumed, expired, or was issued for another purpose or action.
    ChallengeInvalid,
    /// The security key's registration or assertion failed verification.
    WebauthnRejected,
    /// The enrollment code is unknown, used or expired.
    InviteInvalid,
    /// The account or the security key is locked; an administrator must unlock it.
    AccountLocked,
    /// Too many attempts in a short time; retry later.
    RateLimited,
    /// The request conflicts with the current state (for example the user exists already).
    Conflict,
    /// No security key is plugged in, or more than one is (paw never picks one silently).
    SecurityKeyMissing,
    /// The security key's PIN was wrong, three times in this operation.
    PinInvalid,
    /// The security key's PIN is blocked (reset the key), or it wants to be re-plugged first.
    PinBlocked,
    /// The security key has no PIN or built-in verification; paw requires user verification.
    PinNotSet,
    /// The user cancelled at the PIN prompt or on the key.
    KeyCancelled,
    /// The security key waited for a touch or a PIN that did not come.
    KeyTimeout,
    /// The OS keyring is absent, locked or refused access; the app keeps its secrets nowhere else.
    KeyringUnavailable,
    /// Policy does not allow this caller to do this (not a requester or approver of the
    /// entitlement, their own request, a target or role outside the entitlement).
    Forbidden,
    /// The workstation's local audit trail cannot durably record the action (disk full,
    /// read-only, locked, corrupt), so the privileged action was not started.
    AuditUnavailable,
    /// The session's target could not be reached or refused the broker's credential.
    TargetUnavailable,
    /// The broker, as witness of the workstation's audit trail, refused its checkpoint: the
    /// trail no longer continues the last checkpoint the broker cosigned (its tail was cut or
    /// rewritten), so the privileged action was not started (case D3).
    AuditDiverged,
    /// The broker cosigns the audit trail with another key than the one this workstation
    /// pinned: nothing is trusted from it until an administrator confirms the new key.
    AuditWitnessChanged,
    /// A session recording no longer matches the SHA-256 its audit record holds (changed or
    /// deleted after the session ended); the broker does not replay it.
    RecordingTampered,
    /// A vaulted account is checked out by someone else (exclusive); the message says who holds
    /// it and until when.
    CheckedOut,
    /// The vault cannot open a secret: its key-encryption key is missing or is not the one the
    /// secret was sealed with. Nothing falls back to anything weaker (case L5).
    VaultUnavailable,
}

impl ErrorCode {
    /// The HTTP status a broker response with this code carries.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest | Self::InvalidSettings | Self::UrlRejected => 400,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Timeout => 408,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::StorageUnavailable => 503,
            Self::BrokerUnreachable | Self::BrokerUntrusted | Self::BrokerProtocol => 502,
            Self::BrokerNotConfigured => 409,
            Self::Internal | Self::InvalidConfig => 500,
            Self::Unauthenticated
            | Self::ReauthenticationRequired
            | Self::ChallengeInvalid
            | Self::WebauthnRejected => 401,
            Self::InviteInvalid | Self::AccountLocked => 403,
            Self::RateLimited => 429,
            Self::Conflict => 409,
            Self::SecurityKeyMissing
            | Self::PinInvalid
            | Self::PinBlocked
            | Self::PinNotSet
            | Self::KeyCancelled => 400,
            Self::KeyTimeout => 408,
            Self::KeyringUnavailable => 503,
            Self::Forbidden => 403,
            Self::AuditUnavailable => 503,
            Self::TargetUnavailable => 502,
            Self::RecordingTampered => 409,
            Self::CheckedOut => 409,
            Self::VaultUnavailable => 503,
            Self::AuditDiverged => 409,
            Self::AuditWitnessChanged => 502,
        }
    }

    /// The wire name, as serialised (`bad_request`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Timeout => "timeout",
            Self::StorageUnavailable => "storage_unavailable",
            Self::Internal => "internal",
            Self::InvalidConfig => "invalid_config",
            Self::InvalidSettings => "invalid_settings",
            Self::BrokerNotConfigured => "broker_not_configured",
            Self::BrokerUnreachable => "broker_unreachable",
            Self::BrokerUntrusted => "broker_untrusted",
            Self::BrokerProtocol => "broker_protocol",
            Self::UrlRejected => "url_rejected",
            Self::Unauthenticated => "unauthenticated",
            Self::ReauthenticationRequired => "reauthentication_required",
            Self::ChallengeInvalid => "challenge_invalid",
            Self::WebauthnRejected => "webauthn_rejected",
            Self::InviteInvalid => "invite_invalid",
            Self::AccountLocked => "account_locked",
            Self::RateLimited => "rate_limited",
            Self::Conflict => "conflict",
            Self::SecurityKeyMissing => "security_key_missing",
            Self::PinInvalid => "pin_invalid",
            Self::PinBlocked => "pin_blocked",
            Self::PinNotSet => "pin_not_set",
            Self::KeyCancelled => "key_cancelled",
            Self::KeyTimeout => "key_timeout",
            Self::KeyringUnavailable => "keyring_unavailable",
            Self::Forbidden => "forbidden",
            Self::AuditUnavailable => "audit_unavailable",
            Self::TargetUnavailable => "target_unavailable",
            Self::RecordingTampered => "recording_tampered",
            Self::CheckedOut => "checked_out",
            Self::VaultUnavailable => "vault_unavailable",
            Self::AuditDiverged => "audit_diverged",
            Self::AuditWitnessChanged => "audit_witness_changed",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{code, message}`: the body of every error response and every rejected IPC command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, ToSchema, thiserror::Error)]
#[serde(deny_unknown_fields)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_matches_serde_name_for_every_code() {
        let all = [
            ErrorCode::BadRequest,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::Timeout,
            ErrorCode::StorageUnavailable,
            ErrorCode::Internal,
            ErrorCode::InvalidConfig,
            ErrorCode::InvalidSettings,
            ErrorCode::BrokerNotConfigured,
            ErrorCode::BrokerUnreachable,
            ErrorCode::BrokerUntrusted,
            ErrorCode::BrokerProtocol,
            ErrorCode::UrlRejected,
            ErrorCode::Unauthenticated,
            ErrorCode::ReauthenticationRequired,
            ErrorCode::ChallengeInvalid,
            ErrorCode::WebauthnRejected,
            ErrorCode::InviteInvalid,
            ErrorCode::AccountLocked,
            ErrorCode::RateLimited,
            ErrorCode::Conflict,
            ErrorCode::SecurityKeyMissing,
            ErrorCode::PinInvalid,
            ErrorCode::PinBlocked,
            ErrorCode::PinNotSet,
            ErrorCode::KeyCancelled,
            ErrorCode::KeyTimeout,
            ErrorCode::KeyringUnavailable,
            ErrorCode::Forbidden,
            ErrorCode::AuditUnavailable,
            ErrorCode::TargetUnavailable,
            ErrorCode::RecordingTampered,
            ErrorCode::CheckedOut,
            ErrorCode::VaultUnavailable,
            ErrorCode::AuditDiverged,
            ErrorCode::AuditWitnessChanged,
        ];
        for code in all {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!((400..600).contains(&code.http_status()));
        }
    }

    #[test]
    fn api_error_round_trips_and_rejects_extra_fields() {
        let e = ApiError::new(ErrorCode::NotFound, "no route");
        let s = serde_json::to_string(&e).unwrap();
        assert_eq!(s, r#"{"code":"not_found","message":"no route"}"#);
        assert_eq!(serde_json::from_str::<ApiError>(&s).unwrap(), e);
        assert!(
            serde_json::from_str::<ApiError>(r#"{"code":"not_found","message":"x","y":1}"#)
                .is_err()
        );
    }
}
