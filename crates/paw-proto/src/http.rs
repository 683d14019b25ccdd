//! DTOs of the broker's HTTP API. The OpenAPI document is generated from these and the handlers.

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use utoipa::{IntoParams, ToSchema};

/// Which database backs the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// `GET /healthz`: liveness plus a database round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Always `"ok"` in a 200 response.
    pub status: String,
    /// The broker's version (`CARGO_PKG_VERSION`).
    pub version: String,
    pub database: DatabaseKind,
    /// Broker wall clock, Unix milliseconds. The broker's clock decides every expiry.
    pub time_ms: i64,
    /// Stable id of this broker instance, created by `pawd init`.
    pub instance_id: String,
}

/// Query parameters accepted by `GET /healthz`. Unknown parameters are rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HealthQuery {
    /// When true, the database round trip is skipped (cheap liveness probe).
    #[serde(default)]
    pub shallow: Option<bool>,
}

// ---- Identity: enrollment, login, tokens, step-up, security keys -------------------------
//
// WebAuthn options and credentials travel as JSON objects in the W3C shapes (base64url without
// padding for every binary field); the broker parses them with its relying-party library.
// Every request DTO denies unknown fields, so a typo is a 400, not a silently ignored field.

use crate::action::{Action, Purpose};

/// `POST /v1/enroll/start`: redeem-to-be an invite code and name the workstation's device key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollStartRequest {
    /// The one-time code `pawd invite` printed.
    pub code: String,
    /// The workstation's public key, base64url without padding: Ed25519 (32 bytes) or
    /// compressed P-256 (33 bytes), a point on its curve.
    #[schema(
        pattern = "^(?:[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]|[A-Za-z0-9_-]{44})$",
        example = "WGZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY"
    )]
    pub device_public_key: String,
}

/// Answer to `POST /v1/enroll/start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollStartResponse {
    /// Pass back to `/v1/enroll/finish`. Single use, expires in 5 min.
    pub ceremony_id: String,
    /// The user name the invite was made for.
    pub user: String,
    /// `CreationChallengeResponse` (`{"publicKey": {...}}`) for the authenticator.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

/// `POST /v1/enroll/finish`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollFinishRequest {
    pub ceremony_id: String,
    /// `RegisterPublicKeyCredential` JSON.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// A name for the security key, shown on the security keys page: printable, not blank.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
}

/// Answer to `POST /v1/enroll/finish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollFinishResponse {
    pub user: String,
    /// The broker's id of the registered security key.
    pub key_id: String,
}

/// `POST /v1/login/start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginStartRequest {
    #[schema(pattern = "^[A-Za-z0-9._@-]+$", min_length = 1, max_length = 64)]
    pub user: String,
}

/// An assertion challenge: answer to login, step-up and add-key starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeResponse {
    /// The challenge id (base64url of the challenge bytes); single use, expires in 5 min.
    pub challenge: String,
    /// What the key's answer must be for.
    #[schema(value_type = String)]
    pub purpose: Purpose,
    /// base64url SHA-256 of the canonical action; the client puts it in clientDataJSON as
    /// `pawActionHash`.
    pub action_hash: String,
    /// The action in plain words, for the prompt shown before the user touches the key.
    pub description: String,
    /// `RequestChallengeResponse` or `CreationChallengeResponse` JSON for the authenticator.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

/// `POST /v1/login/finish`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginFinishRequest {
    pub challenge: String,
    /// `PublicKeyCredential` JSON.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// The device key (registered at enrollment) the tokens are bound to; base64url.
    #[schema(
        pattern = "^(?:[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]|[A-Za-z0-9_-]{44})$",
        example = "WGZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY"
    )]
    pub device_public_key: String,
}

/// Answer to `GET /readyz`: what a load balancer's readiness check needs, this broker's
/// database and its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    pub database: DatabaseKind,
    /// This process as a broker; `None` when it carries no sessions (no `[sessions]`).
    pub broker_id: Option<String>,
    /// How long its lease still runs (ms); `None` when it holds none.
    pub lease_ms_left: Option<i64>,
}

/// Answer to `POST /v1/auth/sign-out`: the token family the broker revoked. Every broker on
/// the same database refuses its tokens from then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, TS)]
pub struct SignedOut {
    /// The sign-in (token family) that ended.
    pub session_id: String,
    /// Broker time of the revocation, Unix ms.
    #[ts(type = "number")]
    pub revoked_at_ms: i64,
    /// Access tokens of the family that were still valid.
    pub access_tokens: u32,
    /// Refresh tokens of the family that were still unused.
    pub refresh_tokens: u32,
}

/// Tokens issued at login and on refresh. Both are opaque; the broker stores only their hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenResponse {
    pub user: String,
    pub roles: Vec<String>,
    /// `Authorization: Bearer` value, with a device-key proof on every request.
    pub access_token: String,
    pub access_expires_at_ms: i64,
    /// Single use: each refresh returns a new one; reusing an old one ends the session.
    pub refresh_token: String,
    /// When the session ends regardless of activity (12 h after login).
    pub session_expires_at_ms: i64,
}

/// `POST /v1/token/refresh` (with a device-key proof over the refresh token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// `POST /v1/stepup/start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepUpStartRequest {
    /// The canonical action (paw-proto `Action`) the step-up will authorise; not `login`.
    #[schema(schema_with = crate::action::step_up_action_schema)]
    pub action: Action,
}

/// A finished step-up: the challenge, the action it was for, and the key's assertion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepUpFinishRequest {
    pub challenge: String,
    /// The action the step-up authorised; not `login`.
    #[schema(schema_with = crate::action::step_up_action_schema)]
    pub action: Action,
    /// `PublicKeyCredential` JSON.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// Answer to `POST /v1/stepup/finish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepUpVerified {
    #[schema(value_type = String)]
    pub purpose: Purpose,
    pub action_hash: String,
}

/// One security key of the calling user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityKeyInfo {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    /// Locked after a signature-counter regression (a possible clone).
    pub locked: bool,
}

/// `GET /v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityKeyList {
    pub keys: Vec<SecurityKeyInfo>,
}

/// `POST /v1/keys/{id}/rename`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameKeyRequest {
    /// Printable, not blank.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
}

/// `POST /v1/keys/{id}/revoke`: needs a key-management step-up for
/// `Action::KeyManagement { operation: "revoke", credential: <id> }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeKeyRequest {
    pub stepup: StepUpFinishRequest,
}

/// `POST /v1/keys/register/finish`: the new key's registration plus a key-management step-up
/// with an existing key for `Action::KeyManagement { operation: "add", credential: <name> }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddKeyFinishRequest {
    pub ceremony_id: String,
    /// `RegisterPublicKeyCredential` JSON of the new key.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// Printable, not blank.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    pub stepup: StepUpFinishRequest,
}

/// `POST /v1/keys/register/start`: answer with creation options for the new key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddKeyStartResponse {
    pub ceremony_id: String,
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

/// The caller, as the broker sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhoAmI {
    pub user: String,
    pub roles: Vec<String>,
    pub session_expires_at_ms: i64,
}

// ---- Audit witness: the broker cosigns each workstation's local-trail checkpoints ---------
//
// Binary fields: hashes are lowercase hex (as paw-audit prints them), keys and signatures
// base64url without padding (as every other key in this API).

/// Most records one `POST /v1/audit/checkpoint` may carry. A workstation further behind
/// uploads in steps, each ending with a checkpoint at the last record it carries.
pub const MAX_CHECKPOINT_RECORDS: usize = 10_000;
/// Longest accepted checkpoint origin, in bytes.
pub const MAX_CHECKPOINT_ORIGIN: usize = 128;

/// A signed checkpoint of a workstation's local trail (paw-audit's `Checkpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointDto {
    /// The trail's id: 1 to 128 characters of `A-Z a-z 0-9 . _ : -`. Bound to the user on the
    /// first cosigned checkpoint; a random id per trail (for example a UUID) is recommended.
    #[schema(pattern = "^[A-Za-z0-9._:-]+$", min_length = 1, max_length = 128)]
    pub origin: String,
    /// Seq of the head record (0: the empty trail).
    pub seq: u64,
    /// Hash of the head record (or the genesis value), 64 lowercase hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
    /// The workstation's clock, Unix milliseconds: at most `MAX_SKEW_MS` ahead of the broker's.
    #[schema(schema_with = checkpoint_time_schema)]
    pub time_ms: i64,
    /// The signing ed25519 public key, base64url (32 bytes): must be this session's device key.
    #[schema(pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")]
    pub key: String,
    /// ed25519 signature over the checkpoint body, base64url (64 bytes).
    #[schema(pattern = "^[A-Za-z0-9_-]{85}[AQgw]$")]
    pub signature: String,
}

/// The OpenAPI keyword for a time bound no static `maximum` can carry: the value, Unix ms, may
/// be at most this many milliseconds ahead of the broker's clock (`Health::time_ms`).
pub const MAX_AHEAD_OF_BROKER_MS: &str = "x-paw-max-ahead-of-broker-ms";

/// [`CheckpointDto::time_ms`] in the OpenAPI document, with its bound: a checkpoint dated
/// further ahead would make every honest later one look older than it.
fn checkpoint_time_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::extensions::ExtensionsBuilder;
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .description(Some(format!(
            "The workstation's clock, Unix milliseconds: at most {} ms ahead of the broker's \
             clock (`{MAX_AHEAD_OF_BROKER_MS}`), or `bad_request`.",
            crate::device_proof::MAX_SKEW_MS
        )))
        .extensions(Some(
            ExtensionsBuilder::new()
                .add(MAX_AHEAD_OF_BROKER_MS, crate::device_proof::MAX_SKEW_MS)
                .build(),
        ))
        .build()
}

/// One record of the local trail (paw-audit's `Record`, its event fields flattened).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditRecordDto {
    pub seq: u64,
    pub time_ms: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    /// `started`, `success`, `failure` or `denied`.
    #[schema(pattern = "^(?:started|success|failure|denied)$")]
    pub outcome: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// 64 lowercase hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub prev_hash: String,
    /// 64 lowercase hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
}

/// `POST /v1/audit/checkpoint`: a new checkpoint and every record after the last checkpoint
/// the broker cosigned for this origin, in order, up to the new head. For an origin's first
/// checkpoint the records are optional: when sent they must run from the genesis to the head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointUploadRequest {
    pub checkpoint: CheckpointDto,
    #[serde(default)]
    pub records: Vec<AuditRecordDto>,
}

/// The broker's cosignature of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointCosigned {
    /// paw-audit `Cosignature::to_bytes` (witness key, time, signature; 104 bytes), base64url.
    pub cosignature: String,
    /// The witness public key, base64url (32 bytes).
    pub witness_key: String,
    /// The broker's time of the cosignature, Unix milliseconds.
    pub cosigned_at_ms: i64,
    /// Seq of the previously cosigned checkpoint of this origin; absent for the first.
    pub previous_seq: Option<u64>,
}

/// `GET /v1/audit/witness`: the key the broker cosigns checkpoints with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WitnessKey {
    /// ed25519 public key, base64url (32 bytes).
    pub public_key: String,
    /// SHA-256 of the public key, `AB:CD:…`, as `pawd check` prints it.
    pub fingerprint: String,
}
