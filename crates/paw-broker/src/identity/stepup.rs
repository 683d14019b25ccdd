//! Step-up verification and the proof value privileged code takes.
//!
//! [`StepUp<K>`] has a private field and is constructed only by [`verify`], after the broker
//! consumed the challenge, checked its expiry, purpose, user and action hash, verified the
//! assertion (UP, UV, origin, RP ID, signature, allowCredentials) and advanced the credential's
//! counter with a compare-and-swap. A function that needs a step-up takes `&StepUp<Kind>`, so a
//! forgotten step-up does not compile, and a step-up for one purpose cannot stand in for
//! another (case A4): the purpose is part of the type.

use std::marker::PhantomData;

use hmac::{Hmac, Mac};
use paw_proto::action::{Action, Purpose};
use paw_proto::http::ChallengeResponse;
use paw_proto::ErrorCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{AttestedPasskey, AuthenticationResult, COSEKey, Uuid};

use crate::base::error::BrokerError;
use crate::base::util::{b64, random_secret, unb64};
use crate::identity::error::{IdentityError, Result};
use crate::identity::throttle;
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

/// Issues an assertion challenge for `action` by `user`, the caller (a step-up, or a
/// machine's login): purpose and action hash are stored with the challenge, which expires in
/// 5 minutes.
pub async fn start(svc: &Identity, user: &User, action: &Action) -> Result<ChallengeResponse> {
    let now = svc.clock.now_ms();
    identity::check_attempt_allowed(user)?;
    throttle::check(svc, Some(&user.name), now).await?;
    if user.is_machine() {
        return start_machine(svc, user, action, now).await;
    }
    let keys = usable_passkeys(svc, user).await?;
    if keys.is_empty() {
        return Err(IdentityError::WebauthnRejected(
            "the user has no usable security key".into(),
        ));
    }
    issue(svc, Some(&user.id), "{}".to_owned(), action, &keys, now).await
}

async fn usable_passkeys(svc: &Identity, user: &User) -> Result<Vec<AttestedPasskey>> {
    identity::usable_credentials(&svc.db, &user.id)
        .await?
        .iter()
        .map(identity::CredentialRow::passkey)
        .collect()
}

/// The challenge row and the answer, for a real user (`user_id`) or a decoy (`None`).
async fn issue(
    svc: &Identity,
    user_id: Option<&str>,
    context: String,
    action: &Action,
    keys: &[AttestedPasskey],
    now: i64,
) -> Result<ChallengeResponse> {
    let (options, challenge, state_json) = svc.rp.start_authentication(keys)?;
    let action_hash = b64(&action.hash());
    webauthn::insert_challenge(
        &svc.db,
        &ChallengeRow {
            challenge: challenge.clone(),
            user_id: user_id.map(str::to_owned),
            purpose: action.purpose().as_str().to_owned(),
            action_hash: action_hash.clone(),
            state_json,
            context,
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
///
/// A refused guess (an unknown challenge, an answer that fails its check) counts against the
/// source and the (user, source) throttle keys; only a refusal that is evidence tied to the user's own key counts towards locking the account
/// (case N1): a signature that verifies against one of their registered keys over this very
/// challenge, yet fails a rule, or a counter that went backwards.
pub async fn verify<K: Kind>(
    svc: &Identity,
    expected_user: Option<&str>,
    challenge: &str,
    action: Option<&Action>,
    credential: &Value,
) -> Result<StepUp<K>> {
    let now = svc.clock.now_ms();
    // A source inside its delay is refused before the challenge is taken or anything checked.
    throttle::check(svc, None, now).await?;
    let mut seen = Seen::default();
    let result = attempt::<K>(
        svc,
        expected_user,
        challenge,
        action,
        credential,
        now,
        &mut seen,
    )
    .await;
    match &result {
        Ok(proof) => throttle::record_success(svc, &proof.user().name).await?,
        Err(e) if seen.guess && counts(e) => {
            throttle::record_failure(svc, seen.name.as_deref(), now).await?;
            if let Some(user_id) = &seen.evidence_against {
                identity::record_failure(&svc.db, &svc.auth, user_id, now).await?;
            }
        }
        Err(_) => {}
    }
    result
}

/// Whether a refusal is a failed attempt: not the broker's own failure, not the throttle's
/// refusal (an attempt it refused was never made), and not a locked account's correct
/// signature (the user, not a guess).
fn counts(e: &IdentityError) -> bool {
    !matches!(
        e.code(),
        ErrorCode::StorageUnavailable
            | ErrorCode::Internal
            | ErrorCode::RateLimited
            | ErrorCode::AccountLocked
    )
}

/// What an attempt revealed on its way, for the throttle and the lock.
#[derive(Default)]
struct Seen {
    /// The user name the challenge was issued for (a real user's, or a decoy's).
    name: Option<String>,
    /// The user whose own key produced the refused assertion.
    evidence_against: Option<String>,
    /// The refusal is of a guess: an unknown challenge, or an answer that was checked and
    /// failed. A challenge used for the wrong purpose or action is the client's mistake and
    /// refused as before, without counting.
    guess: bool,
}

async fn attempt<K: Kind>(
    svc: &Identity,
    expected_user: Option<&str>,
    challenge: &str,
    action: Option<&Action>,
    credential: &Value,
    now: i64,
    seen: &mut Seen,
) -> Result<StepUp<K>> {
    // Consumed before anything else, so a replay or a race finds nothing (A1).
    let Some(row) = webauthn::take_challenge(&svc.db, challenge, now).await? else {
        seen.guess = true;
        return Err(IdentityError::ChallengeInvalid(
            "unknown or already used challenge".into(),
        ));
    };
    let user = match &row.user_id {
        Some(id) => identity::user_by_id(&svc.db, id).await?,
        None => None,
    };
    seen.name = user
        .as_ref()
        .map(|u| u.name.clone())
        .or_else(|| decoy_name(&row));
    throttle::check(svc, seen.name.as_deref(), now).await?;
    webauthn::check_not_expired(&row, now)?;
    if row.purpose != K::PURPOSE.as_str() {
        return Err(IdentityError::ChallengeInvalid(format!(
            "the challenge was issued for {}, not {}",
            row.purpose,
            K::PURPOSE.as_str()
        )));
    }
    let Some(user) = user else {
        seen.guess = decoy_name(&row).is_some();
        return Err(if seen.guess {
            // What a wrong key answers for a real user (N2).
            IdentityError::WebauthnRejected("assertion refused: AuthenticationFailure".into())
        } else if row.user_id.is_none() {
            IdentityError::ChallengeInvalid("not an assertion challenge".into())
        } else {
            IdentityError::ChallengeInvalid("unknown user".into())
        });
    };
    if expected_user.is_some_and(|u| u != user.id) {
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
    let checked = if user.is_machine() {
        machine_keys::check_proof(svc, &user, &row, credential, now)
            .await
            .map_err(Refusal::other)
    } else if row.state_json == machine_keys::MACHINE_CHALLENGE_STATE {
        Err(Refusal::other(IdentityError::ChallengeInvalid(
            "the challenge was issued to a machine".into(),
        )))
    } else {
        check_assertion(svc, &user, &row, credential, now).await
    };
    let credential_id = match checked {
        Ok(id) => id,
        Err(refusal) => {
            seen.guess = true;
            if refusal.evidence {
                seen.evidence_against = Some(user.id.clone());
            }
            return Err(refusal.error);
        }
    };
    // Told only after the key signed, so that only the user learns the account is locked
    // (a login start answers a locked account like any other, N2).
    if user.locked {
        return Err(IdentityError::AccountLocked(
            "the account is locked; ask an administrator".into(),
        ));
    }
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

/// A refused assertion, and whether it is evidence tied to the user's own key.
struct Refusal {
    error: IdentityError,
    evidence: bool,
}

impl Refusal {
    fn other(error: IdentityError) -> Self {
        Self {
            error,
            evidence: false,
        }
    }
    fn evidence(error: IdentityError) -> Self {
        Self {
            error,
            evidence: true,
        }
    }
}

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
) -> Result<String, Refusal> {
    let claimed_id = credential["id"].as_str().unwrap_or_default().to_owned();
    let checked = verify_assertion(
        &svc.rp,
        &row.state_json,
        user.uuid().map_err(Refusal::other)?,
        &row.action_hash,
        credential,
    );
    let result = match checked {
        Ok(r) => r,
        Err(AssertionError::CounterRegression) => {
            // webauthn-rs reports it after the signature verified: the key's own word (A11).
            identity::lock_credential(&svc.db, &user.id, &claimed_id, now)
                .await
                .map_err(Refusal::other)?;
            return Err(Refusal::evidence(IdentityError::WebauthnRejected(
                "signature counter went backwards; the security key is locked".into(),
            )));
        }
        Err(AssertionError::Refused(e)) => {
            let evidence = signed_by_own_key(svc, user, row, credential)
                .await
                .map_err(Refusal::other)?;
            return Err(Refusal { error: e, evidence });
        }
    };
    let cred_id = b64(result.cred_id().as_ref());
    let stored = identity::usable_credentials(&svc.db, &user.id)
        .await
        .map_err(Refusal::other)?
        .into_iter()
        .find(|c| c.cred_id == cred_id)
        .ok_or_else(|| {
            // It signed, so it is the user's key, revoked or locked since the challenge.
            Refusal::evidence(IdentityError::WebauthnRejected(
                "the security key is revoked or locked".into(),
            ))
        })?;
    let new_counter = i64::from(result.counter());
    if new_counter > 0 || stored.counter > 0 {
        let mut passkey = stored.passkey().map_err(Refusal::other)?;
        passkey.update_credential(&result);
        let json = webauthn::to_json(&passkey).map_err(|e| Refusal::other(e.into()))?;
        // Compare-and-swap: only a strictly higher counter is stored, so of two racing
        // assertions with the same counter one loses, and a regression never lands (A11).
        let updated = with_pool!(&svc.db, pool => sqlx::query(
            "UPDATE credentials SET counter = $1, passkey_json = $2 \
             WHERE id = $3 AND counter < $1 AND revoked_at IS NULL AND locked_at IS NULL")
            .bind(new_counter).bind(&json).bind(&stored.id)
            .execute(pool).await.map_err(|e| Refusal::other(e.into()))?.rows_affected());
        if updated == 0 {
            identity::lock_credential(&svc.db, &user.id, &cred_id, now)
                .await
                .map_err(Refusal::other)?;
            return Err(Refusal::evidence(IdentityError::WebauthnRejected(
                "signature counter did not advance; the security key is locked".into(),
            )));
        }
    }
    Ok(cred_id)
}

/// Whether a refused assertion was nevertheless signed by one of `user`'s registered keys
/// (revoked and locked ones included) over client data carrying this very challenge: then
/// whoever sent it holds the key, and the refusal (UV missing, a syncable key, a revoked key,
/// a wrong action binding) is evidence against the account (N1). webauthn-rs checks its rules
/// before the signature, so its refusal alone does not tell. Anything else (garbage, an
/// unknown credential id, a bad signature, an old assertion replayed) is not evidence.
async fn signed_by_own_key(
    svc: &Identity,
    user: &User,
    row: &ChallengeRow,
    credential: &Value,
) -> Result<bool> {
    let Ok(parsed) = webauthn::parse_assertion(credential) else {
        return Ok(false);
    };
    let Ok(client_data) = serde_json::from_slice::<Value>(&parsed.response.client_data_json) else {
        return Ok(false);
    };
    let signed_challenge = client_data["challenge"].as_str().and_then(unb64);
    if signed_challenge.is_none() || signed_challenge != unb64(&row.challenge) {
        return Ok(false);
    }
    let claimed = b64(&parsed.raw_id);
    let Some(stored) = identity::credentials(&svc.db, &user.id)
        .await?
        .into_iter()
        .find(|c| c.cred_id == claimed)
    else {
        return Ok(false);
    };
    // The stored key's public part, as webauthn-rs keeps it (`{"cred": {"cred": COSEKey}}`).
    let stored_json: Value = webauthn::from_json(&stored.passkey_json)?;
    let Ok(key) = serde_json::from_value::<COSEKey>(stored_json["cred"]["cred"].clone()) else {
        return Ok(false);
    };
    let signed: Vec<u8> = parsed
        .response
        .authenticator_data
        .iter()
        .copied()
        .chain(Sha256::digest(&parsed.response.client_data_json))
        .collect();
    Ok(key
        .verify_signature(&parsed.response.signature, &signed)
        .unwrap_or(false))
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
///
/// Every name gets the same answer (N2): a person with a usable key gets a real challenge,
/// even when locked or disabled (the refusal comes after their key signs, so only they learn
/// it); any other name (unknown, a machine's, a person without a usable key) gets a decoy of
/// the same shape, doing the same work (a user lookup, one credentials query, a ceremony, a
/// challenge row), whose key list is derived from a broker secret and the name, so asking
/// twice shows the same list. A decoy's answer is refused like a wrong key's.
pub async fn login_start(svc: &Identity, user_name: &str) -> Result<ChallengeResponse> {
    identity::validate_name("user", user_name)?;
    let now = svc.clock.now_ms();
    throttle::check(svc, Some(user_name), now).await?;
    let action = Action::Login {
        user: user_name.to_owned(),
    };
    let user = identity::user_by_name(&svc.db, user_name)
        .await?
        .filter(|u| !u.is_machine());
    if let Some(user) = user {
        let keys = usable_passkeys(svc, &user).await?;
        if !keys.is_empty() {
            return issue(svc, Some(&user.id), "{}".to_owned(), &action, &keys, now).await;
        }
    }
    let key = decoy_passkey(svc, user_name).await?;
    let context = serde_json::json!({ DECOY: user_name }).to_string();
    issue(svc, None, context, &action, &[key], now).await
}

/// The context member naming the user a decoy challenge was issued for.
const DECOY: &str = "decoy_for";
/// `broker_meta` key of the secret decoy credential ids are derived from, shared by the
/// brokers on one database so that each answers a name with the same ids.
const DECOY_SECRET: &str = "signin_decoy_secret";

fn decoy_name(row: &ChallengeRow) -> Option<String> {
    if row.user_id.is_some() {
        return None;
    }
    serde_json::from_str::<Value>(&row.context).ok()?[DECOY]
        .as_str()
        .map(str::to_owned)
}

/// A security key that does not exist, for `name`: the oldest registered key with its
/// credential id replaced by one derived from the broker's decoy secret and the name, of the
/// same length. Only its id and transports reach the client.
async fn decoy_passkey(svc: &Identity, name: &str) -> Result<AttestedPasskey> {
    let read = || async {
        Ok::<_, IdentityError>(
            with_pool!(&svc.db, pool => sqlx::query_as::<_, (Option<String>, Option<String>)>(
            "SELECT (SELECT value FROM broker_meta WHERE key = $1), \
             (SELECT passkey_json FROM credentials ORDER BY created_at, id LIMIT 1)")
            .bind(DECOY_SECRET).fetch_one(pool).await?),
        )
    };
    let (mut secret, template) = read().await?;
    if secret.is_none() {
        with_pool!(&svc.db, pool => {
            sqlx::query("INSERT INTO broker_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                .bind(DECOY_SECRET).bind(random_secret()?).execute(pool).await?;
        });
        secret = read().await?.0;
    }
    let (Some(secret), Some(template)) = (secret, template) else {
        // No key is registered at all, so there is no real user to tell apart.
        return Err(IdentityError::WebauthnRejected(
            "unknown user or no usable security key".into(),
        ));
    };
    // The template as stored (`{"cred": {"cred_id": …}}`), its id swapped.
    let mut passkey: Value = webauthn::from_json(&template)?;
    let len = passkey["cred"]["cred_id"]
        .as_str()
        .and_then(unb64)
        .map_or(64, |id| id.len());
    let mut id = Vec::with_capacity(len + 32);
    let mut block = 0u32;
    while id.len() < len {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
            .map_err(|e| BrokerError::Internal(format!("decoy hmac: {e}")))?;
        mac.update(b"paw decoy credential id\0");
        mac.update(name.as_bytes());
        mac.update(&block.to_be_bytes());
        id.extend_from_slice(&mac.finalize().into_bytes());
        block += 1;
    }
    id.truncate(len);
    passkey["cred"]["cred_id"] = Value::String(b64(&id));
    Ok(serde_json::from_value(passkey)
        .map_err(|e| BrokerError::Internal(format!("decoy key: {e}")))?)
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
