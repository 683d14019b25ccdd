//! Step-up verification and the proof value privileged code takes.
//!
//! [`StepUp<K>`] has a private field and is constructed only by [`verify`], after the broker
//! consumed the challenge, checked its expiry, purpose, user and action hash, verified the
//! assertion (UP, UV, origin, RP ID, signature, allowCredentials) and advanced the credential's
//! counter with a compare-and-swap. A function that needs a step-up takes `&StepUp<Kind>`, so a
//! forgotten step-up does not compile, and a step-up for one purpose cannot stand in for
//! another (case A4): the purpose is part of the type.

use std::marker::PhantomData;

use paw_proto::action::{Action, Purpose};
use paw_proto::http::ChallengeResponse;
use paw_proto::ErrorCode;
use serde_json::Value;
use webauthn_rs::prelude::{AuthenticationResult, Uuid};

use crate::base::error::BrokerError;
use crate::base::util::b64;
use crate::identity::error::{IdentityError, Result};
use crate::identity::webauthn::{self, ChallengeRow, WebauthnFailure, CHALLENGE_TTL_MS};
use crate::identity::Identity;
use crate::identity::{self, machine_keys, User};
use crate::with_pool;

/// A step-up purpose as a type.
pub trait Kind: Send + Sync + 'static {
    const PURPOSE: Purpose;
}

/// Marker types, one per [`Purpose`].
pub mod kind {
    use super::{Kind, Purpose};
    macro_rules! kinds {
        ($($name:ident),*) => {$(
            #[derive(Debug)]
            pub struct $name;
            impl Kind for $name {
                const PURPOSE: Purpose = Purpose::$name;
            }
        )*};
    }
    kinds!(
        Login,
        Request,
        Approve,
        Session,
        BreakGlass,
        KeyManagement,
        KillSession,
        Command,
        ApproveCommand,
        ManageMachine,
        RevealSecret,
        RotateSecret
    );
}

/// Proof that the user just approved `action` with a security key. Only [`verify`] makes one.
#[derive(Debug)]
pub struct StepUp<K: Kind> {
    inner: Verified,
    _kind: PhantomData<K>,
}

#[derive(Debug)]
struct Verified {
    user: User,
    action_hash: String,
    action: Option<Action>,
    credential_id: String,
}

impl<K: Kind> StepUp<K> {
    pub fn user(&self) -> &User {
        &self.inner.user
    }
    /// The action the key signed; `None` for a login (the action is `Login { user }`).
    pub fn action(&self) -> Option<&Action> {
        self.inner.action.as_ref()
    }
    pub fn action_hash(&self) -> &str {
        &self.inner.action_hash
    }
    /// The credential (base64url WebAuthn id) that signed.
    pub fn credential_id(&self) -> &str {
        &self.inner.credential_id
    }
}

/// Issues an assertion challenge for `action` by `user`: purpose and action hash are stored
/// with the challenge, which expires in 5 minutes.
pub async fn start(svc: &Identity, user: &User, action: &Action) -> Result<ChallengeResponse> {
    let now = svc.clock.now_ms();
    identity::check_attempt_allowed(user, &svc.auth, now)?;
    if user.is_machine() {
        return start_machine(svc, user, action, now).await;
    }
    let keys = identity::usable_credentials(&svc.db, &user.id)
        .await?
        .iter()
        .map(identity::CredentialRow::passkey)
        .collect::<Result<Vec<_>>>()?;
    if keys.is_empty() {
        return Err(IdentityError::WebauthnRejected(
            "the user has no usable security key".into(),
        ));
    }
    let (options, challenge, state_json) = svc.rp.start_authentication(&keys)?;
    let action_hash = b64(&action.hash());
    webauthn::insert_challenge(
        &svc.db,
        &ChallengeRow {
            challenge: challenge.clone(),
            user_id: Some(user.id.clone()),
            purpose: action.purpose().as_str().to_owned(),
            action_hash: action_hash.clone(),
            state_json,
            context: "{}".to_owned(),
            expires_at: now + CHALLENGE_TTL_MS,
        },
    )
    .await?;
    Ok(ChallengeResponse {
        challenge,
        purpose: action.purpose(),
        action_hash,
        description: action.describe(),
        options,
    })
}

/// A machine's challenge: no WebAuthn ceremony, the same single-use, purpose- and
/// action-bound row, answered by the machine's key ([`machine_keys::check_proof`]).
async fn start_machine(
    svc: &Identity,
    user: &User,
    action: &Action,
    now: i64,
) -> Result<ChallengeResponse> {
    let challenge = crate::base::util::random_secret()?;
    let action_hash = b64(&action.hash());
    webauthn::insert_challenge(
        &svc.db,
        &ChallengeRow {
            challenge: challenge.clone(),
            user_id: Some(user.id.clone()),
            purpose: action.purpose().as_str().to_owned(),
            action_hash: action_hash.clone(),
            state_json: machine_keys::MACHINE_CHALLENGE_STATE.to_owned(),
            context: "{}".to_owned(),
            expires_at: now + CHALLENGE_TTL_MS,
        },
    )
    .await?;
    Ok(ChallengeResponse {
        challenge,
        purpose: action.purpose(),
        action_hash,
        description: action.describe(),
        options: serde_json::json!({ "machine": true }),
    })
}

/// Verifies a step-up answer for purpose `K`.
///
/// `expected_user`: the authenticated caller (`None` only for login, where the challenge names
/// the user). `action`: the action the client says it approved (`None` only for login; the
/// stored hash is then the reference).
pub async fn verify<K: Kind>(
    svc: &Identity,
    expected_user: Option<&str>,
    challenge: &str,
    action: Option<&Action>,
    credential: &Value,
) -> Result<StepUp<K>> {
    let now = svc.clock.now_ms();
    // Consumed before anything else, so a replay or a race finds nothing (A1).
    let row = webauthn::take_challenge(&svc.db, challenge, now)
        .await?
        .ok_or_else(|| {
            IdentityError::ChallengeInvalid("unknown or already used challenge".into())
        })?;
    webauthn::check_not_expired(&row, now)?;
    if row.purpose != K::PURPOSE.as_str() {
        return Err(IdentityError::ChallengeInvalid(format!(
            "the challenge was issued for {}, not {}",
            row.purpose,
            K::PURPOSE.as_str()
        )));
    }
    let user_id = row
        .user_id
        .clone()
        .ok_or_else(|| IdentityError::ChallengeInvalid("not an assertion challenge".into()))?;
    if expected_user.is_some_and(|u| u != user_id) {
        return Err(IdentityError::ChallengeInvalid(
            "the challenge belongs to another user".into(),
        ));
    }
    if let Some(action) = action {
        if action.purpose() != K::PURPOSE || b64(&action.hash()) != row.action_hash {
            return Err(IdentityError::ChallengeInvalid(
                "the action differs from the one the challenge was issued for".into(),
            ));
        }
    }
    let user = identity::user_by_id(&svc.db, &user_id)
        .await?
        .ok_or_else(|| IdentityError::ChallengeInvalid("unknown user".into()))?;
    if user.locked {
        return Err(IdentityError::AccountLocked(
            "the account is locked; ask an administrator".into(),
        ));
    }
    let checked = if user.is_machine() {
        machine_keys::check_proof(svc, &user, &row, credential, now).await
    } else if row.state_json == machine_keys::MACHINE_CHALLENGE_STATE {
        Err(IdentityError::ChallengeInvalid(
            "the challenge was issued to a machine".into(),
        ))
    } else {
        check_assertion(svc, &user, &row, credential, now).await
    };
    match checked {
        Ok(credential_id) => {
            identity::reset_failures(&svc.db, &user.id).await?;
            Ok(StepUp {
                inner: Verified {
                    user,
                    action_hash: row.action_hash,
                    action: action.cloned(),
                    credential_id,
                },
                _kind: PhantomData,
            })
        }
        Err(e) => {
            if e.code() != ErrorCode::StorageUnavailable && e.code() != ErrorCode::Internal {
                identity::record_failure(&svc.db, &svc.auth, &user.id, now).await?;
            }
            Err(e)
        }
    }
}

/// The assertion itself; any error counts as a failed attempt.
/// Why [`verify_assertion`] refused: a counter that went backwards locks the key (A11), so it
/// is told apart from every other refusal.
#[derive(Debug)]
pub enum AssertionError {
    CounterRegression,
    Refused(IdentityError),
}

impl From<IdentityError> for AssertionError {
    fn from(e: IdentityError) -> Self {
        Self::Refused(e)
    }
}

impl From<BrokerError> for AssertionError {
    fn from(e: BrokerError) -> Self {
        Self::Refused(e.into())
    }
}

/// Everything an assertion proves that needs no database: the credential's encoding, the exact
/// origin, the signed binding to `action_hash` (A5), the userHandle (A12), the signature and
/// counter against the ceremony state, UV and no syncable key (A9, A10). Login and step-up
/// run it before touching the stored credential; the fuzz targets in `fuzz/` call it as is.
pub fn verify_assertion(
    rp: &webauthn::RelyingParty,
    state_json: &str,
    user: Uuid,
    action_hash: &str,
    credential: &Value,
) -> Result<AuthenticationResult, AssertionError> {
    let parsed = webauthn::parse_assertion(credential)?;
    let binding = webauthn::client_binding(credential)?;
    rp.check_origin(credential)?;
    // The key signed clientDataJSON, so this member is the key's word on the action (A5).
    if binding.action_hash.as_deref() != Some(action_hash) {
        return Err(IdentityError::WebauthnRejected(
            "the signed client data is not bound to this action".into(),
        )
        .into());
    }
    if let Some(handle) = &binding.user_handle {
        if handle.as_slice() != user.as_bytes() {
            return Err(IdentityError::WebauthnRejected(
                "userHandle does not match the user".into(),
            )
            .into());
        }
    }
    let result = match rp.finish_authentication(&parsed, state_json) {
        Ok(r) => r,
        Err(WebauthnFailure::CounterRegression) => return Err(AssertionError::CounterRegression),
        Err(WebauthnFailure::Rejected(reason)) => {
            return Err(
                IdentityError::WebauthnRejected(format!("assertion refused: {reason}")).into(),
            );
        }
        Err(WebauthnFailure::Broker(e)) => return Err(e.into()),
    };
    // Belt and braces over the library's policy: UV required, syncable keys refused (A9, A10).
    if !result.user_verified() || result.backup_eligible() || result.backup_state() {
        return Err(IdentityError::WebauthnRejected(
            "assertion refused: user verification missing or a syncable credential".into(),
        )
        .into());
    }
    Ok(result)
}

async fn check_assertion(
    svc: &Identity,
    user: &User,
    row: &ChallengeRow,
    credential: &Value,
    now: i64,
) -> Result<String> {
    let claimed_id = credential["id"].as_str().unwrap_or_default().to_owned();
    let checked = verify_assertion(
        &svc.rp,
        &row.state_json,
        user.uuid()?,
        &row.action_hash,
        credential,
    );
    let result = match checked {
        Ok(r) => r,
        Err(AssertionError::CounterRegression) => {
            identity::lock_credential(&svc.db, &user.id, &claimed_id, now).await?;
            return Err(IdentityError::WebauthnRejected(
                "signature counter went backwards; the security key is locked".into(),
            ));
        }
        Err(AssertionError::Refused(e)) => return Err(e),
    };
    let cred_id = b64(result.cred_id().as_ref());
    let stored = identity::usable_credentials(&svc.db, &user.id)
        .await?
        .into_iter()
        .find(|c| c.cred_id == cred_id)
        .ok_or_else(|| {
            IdentityError::WebauthnRejected("the security key is revoked or locked".into())
        })?;
    let new_counter = i64::from(result.counter());
    if new_counter > 0 || stored.counter > 0 {
        let mut passkey = stored.passkey()?;
        passkey.update_credential(&result);
        let json = webauthn::to_json(&passkey)?;
        // Compare-and-swap: only a strictly higher counter is stored, so of two racing
        // assertions with the same counter one loses, and a regression never lands (A11).
        let updated = with_pool!(&svc.db, pool => sqlx::query(
            "UPDATE credentials SET counter = $1, passkey_json = $2 \
             WHERE id = $3 AND counter < $1 AND revoked_at IS NULL AND locked_at IS NULL")
            .bind(new_counter).bind(&json).bind(&stored.id)
            .execute(pool).await?.rows_affected());
        if updated == 0 {
            identity::lock_credential(&svc.db, &user.id, &cred_id, now).await?;
            return Err(IdentityError::WebauthnRejected(
                "signature counter did not advance; the security key is locked".into(),
            ));
        }
    }
    Ok(cred_id)
}

/// Verifies a step-up for the purpose named by the action at run time, for the generic
/// `POST /v1/stepup/finish`. Login is not a step-up.
pub async fn verify_any(
    svc: &Identity,
    user_id: &str,
    challenge: &str,
    action: &Action,
    credential: &Value,
) -> Result<String> {
    macro_rules! go {
        ($k:ty) => {
            verify::<$k>(svc, Some(user_id), challenge, Some(action), credential)
                .await
                .map(|p| p.action_hash().to_owned())
        };
    }
    match action.purpose() {
        Purpose::Login => Err(IdentityError::BadRequest(
            "login is not a step-up; use /v1/login".into(),
        )),
        Purpose::Request => go!(kind::Request),
        Purpose::Approve => go!(kind::Approve),
        Purpose::Session => go!(kind::Session),
        Purpose::BreakGlass => go!(kind::BreakGlass),
        Purpose::KeyManagement => go!(kind::KeyManagement),
        Purpose::KillSession => go!(kind::KillSession),
        Purpose::Command => go!(kind::Command),
        Purpose::ApproveCommand => go!(kind::ApproveCommand),
        Purpose::ManageMachine => go!(kind::ManageMachine),
        Purpose::RevealSecret => go!(kind::RevealSecret),
        Purpose::RotateSecret => go!(kind::RotateSecret),
    }
}

/// `POST /v1/login/start`: a login challenge for the named user.
pub async fn login_start(svc: &Identity, user_name: &str) -> Result<ChallengeResponse> {
    let user = identity::user_by_name(&svc.db, user_name)
        .await?
        .ok_or_else(|| {
            IdentityError::WebauthnRejected("unknown user or no usable security key".into())
        })?;
    if user.is_machine() {
        return Err(IdentityError::WebauthnRejected(
            "unknown user or no usable security key".into(),
        ));
    }
    start(
        svc,
        &user,
        &Action::Login {
            user: user.name.clone(),
        },
    )
    .await
}

/// `POST /v1/stepup/start` for the authenticated user. Login is not a step-up.
pub async fn start_for(
    svc: &Identity,
    user_id: &str,
    action: &Action,
) -> Result<ChallengeResponse> {
    if action.purpose() == Purpose::Login {
        return Err(IdentityError::BadRequest(
            "login is not a step-up; use /v1/login".into(),
        ));
    }
    let user = identity::user_by_id(&svc.db, user_id)
        .await?
        .ok_or_else(|| IdentityError::Unauthenticated("unknown user".into()))?;
    start(svc, &user, action).await
}

/// The refusal of a step-up whose action is not the one a privileged function performs.
pub fn wrong_action() -> IdentityError {
    IdentityError::ChallengeInvalid("the step-up was for a different action".into())
}
