//! The WebAuthn relying party (webauthn-rs) and the broker-side challenge store.
//!
//! Rules:
//! - Ceremony state lives only in the `challenges` table, keyed by the challenge; the client
//!   never sends state back (case A2).
//! - A challenge row is taken out with `DELETE … RETURNING` before anything is verified, so it
//!   is consumed on first use, success or failure, however many requests race (case A1).
//! - Expiry is checked here with the broker's clock: webauthn-rs state does not expire (A3).
//! - Origins are matched exactly (no subdomains, no other ports) and user verification is
//!   required; attestation must chain to a configured CA for an allowed AAGUID.

use std::collections::BTreeMap;

use serde_json::Value;
use webauthn_rs::prelude::{
    AttestationCaList, AttestationCaListBuilder, AttestedPasskey, AttestedPasskeyAuthentication,
    AttestedPasskeyRegistration, AuthenticationResult, AuthenticatorAttachment, CredentialID,
    PublicKeyCredential, RegisterPublicKeyCredential, Uuid, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::base::error::BrokerError;
use crate::base::util::{b64, unb64};
use crate::config::WebauthnConfig;
use crate::identity::error::{IdentityError, Result};
use crate::store::Db;
use crate::with_pool;

/// Lifetime of every challenge (cases A3 and the "≤ 5 min").
pub const CHALLENGE_TTL_MS: i64 = paw_policy::limits::STEP_UP_TTL_SECS as i64 * 1000;

/// Purposes of registration ceremonies, stored in `challenges.purpose` next to the assertion
/// purposes of [`paw_proto::action::Purpose`].
pub const PURPOSE_ENROLL: &str = "enroll";
pub const PURPOSE_ADD_KEY: &str = "add_key";

pub struct RelyingParty {
    webauthn: Webauthn,
    cas: Option<AttestationCaList>,
    /// The configured origins serialised as browsers do (`https://host[:port]`, no slash).
    origins: Vec<String>,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty").finish_non_exhaustive()
    }
}

impl RelyingParty {
    /// Builds the relying party and reads the attestation CAs.
    pub fn new(config: &WebauthnConfig) -> Result<Self> {
        let origins = config.origin_urls()?;
        let webauthn = WebauthnBuilder::new(&config.rp_id, &origins[0])
            .map(|b| {
                origins[1..]
                    .iter()
                    .fold(b, |b, o| b.append_allowed_origin(o))
            })
            .and_then(|b| b.rp_name("paw").build())
            .map_err(|e| BrokerError::Config(format!("webauthn: {e}")))?;
        let aaguids = config.aaguids()?;
        let cas = if config.attestation_ca.is_empty() {
            None
        } else {
            let mut builder = AttestationCaListBuilder::new();
            for path in &config.attestation_ca {
                for der in read_pem_certs(path)? {
                    for aaguid in &aaguids {
                        builder
                            .insert_device_der(
                                &der,
                                *aaguid,
                                "configured authenticator".to_owned(),
                                BTreeMap::new(),
                            )
                            .map_err(|e| {
                                BrokerError::Config(format!(
                                    "webauthn.attestation_ca {}: {e:?}",
                                    path.display()
                                ))
                            })?;
                    }
                }
            }
            Some(builder.build())
        };
        Ok(Self {
            webauthn,
            cas,
            origins: origins
                .iter()
                .map(|o| o.origin().ascii_serialization())
                .collect(),
        })
    }

    /// Registration options for a new security key of `user_id`, and the state to store.
    pub fn start_registration(
        &self,
        user_id: Uuid,
        user_name: &str,
        exclude: Vec<CredentialID>,
    ) -> Result<(Value, String, String)> {
        let cas = self.cas.clone().ok_or_else(|| {
            IdentityError::WebauthnRejected(
                "this broker trusts no attestation CA; enrollment is disabled".into(),
            )
        })?;
        let exclude = (!exclude.is_empty()).then_some(exclude);
        let (ccr, state) = self
            .webauthn
            .start_attested_passkey_registration(
                user_id,
                user_name,
                user_name,
                exclude,
                cas,
                Some(AuthenticatorAttachment::CrossPlatform),
            )
            .map_err(|e| BrokerError::Internal(format!("webauthn start registration: {e}")))?;
        let challenge = b64(ccr.public_key.challenge.as_ref());
        Ok((to_value(&ccr)?, challenge, to_json(&state)?))
    }

    /// The origin in clientDataJSON must be a configured one byte for byte: webauthn-rs
    /// compares parsed URLs, which would let `https://host/` pass for `https://host` (A6).
    pub fn check_origin(&self, credential: &Value) -> Result<()> {
        let origin = client_data(credential)?["origin"]
            .as_str()
            .map(str::to_owned);
        if !origin.is_some_and(|o| self.origins.contains(&o)) {
            return Err(IdentityError::WebauthnRejected(
                "the client data origin is not this broker's origin".into(),
            ));
        }
        Ok(())
    }

    pub fn finish_registration(
        &self,
        credential: &Value,
        state_json: &str,
    ) -> Result<AttestedPasskey> {
        self.check_origin(credential)?;
        let credential: RegisterPublicKeyCredential = serde_json::from_value(credential.clone())
            .map_err(|e| IdentityError::BadRequest(format!("credential: {e}")))?;
        let state: AttestedPasskeyRegistration = from_json(state_json)?;
        self.webauthn
            .finish_attested_passkey_registration(&credential, &state)
            .map_err(|e| {
                tracing::info!(error = ?e, "registration refused");
                IdentityError::WebauthnRejected(format!(
                    "security key registration refused: {}",
                    reason(&e)
                ))
            })
    }

    /// Assertion options for `keys`, and the state to store.
    pub fn start_authentication(
        &self,
        keys: &[AttestedPasskey],
    ) -> Result<(Value, String, String)> {
        let (rcr, state) = self
            .webauthn
            .start_attested_passkey_authentication(keys)
            .map_err(|e| BrokerError::Internal(format!("webauthn start authentication: {e}")))?;
        let challenge = b64(rcr.public_key.challenge.as_ref());
        Ok((to_value(&rcr)?, challenge, to_json(&state)?))
    }

    pub fn finish_authentication(
        &self,
        credential: &PublicKeyCredential,
        state_json: &str,
    ) -> Result<AuthenticationResult, WebauthnFailure> {
        let state: AttestedPasskeyAuthentication =
            from_json(state_json).map_err(WebauthnFailure::Broker)?;
        self.webauthn
            .finish_attested_passkey_authentication(credential, &state)
            .map_err(|e| {
                if matches!(e, WebauthnError::CredentialPossibleCompromise) {
                    WebauthnFailure::CounterRegression
                } else {
                    WebauthnFailure::Rejected(reason(&e))
                }
            })
    }
}

/// Why an assertion failed, as far as the caller must distinguish.
#[derive(Debug)]
pub enum WebauthnFailure {
    /// The signature counter did not advance: the key may be cloned (case A11).
    CounterRegression,
    Rejected(String),
    Broker(BrokerError),
}

/// A short, secret-free reason for the client.
fn reason(e: &WebauthnError) -> String {
    let text = format!("{e:?}");
    text.chars().take(80).collect()
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, BrokerError> {
    serde_json::to_value(v).map_err(|e| BrokerError::Internal(format!("webauthn json: {e}")))
}

pub fn to_json<T: serde::Serialize>(v: &T) -> Result<String, BrokerError> {
    serde_json::to_string(v).map_err(|e| BrokerError::Internal(format!("webauthn json: {e}")))
}

pub fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, BrokerError> {
    serde_json::from_str(s).map_err(|e| BrokerError::Internal(format!("stored webauthn json: {e}")))
}

fn read_pem_certs(path: &std::path::Path) -> Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).map_err(|e| {
        BrokerError::Config(format!(
            "webauthn.attestation_ca: cannot read {}: {e}",
            path.display()
        ))
    })?;
    let certs: Vec<Vec<u8>> = rustls_pemfile::certs(&mut bytes.as_slice())
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| {
            BrokerError::Config(format!("webauthn.attestation_ca {}: {e}", path.display()))
        })?;
    if certs.is_empty() {
        return Err(BrokerError::Config(format!(
            "webauthn.attestation_ca {}: no certificate in the file",
            path.display()
        ))
        .into());
    }
    Ok(certs)
}

/// A stored challenge with its ceremony state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChallengeRow {
    pub challenge: String,
    pub user_id: Option<String>,
    pub purpose: String,
    pub action_hash: String,
    pub state_json: String,
    pub context: String,
    pub expires_at: i64,
}

pub async fn insert_challenge(db: &Db, row: &ChallengeRow) -> Result<()> {
    with_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO challenges \
             (challenge, user_id, purpose, action_hash, state_json, context, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.challenge)
        .bind(&row.user_id)
        .bind(&row.purpose)
        .bind(&row.action_hash)
        .bind(&row.state_json)
        .bind(&row.context)
        .bind(row.expires_at)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Takes a challenge out of the store: whoever gets the row is the only one who ever will.
/// Also sweeps challenges that expired long ago.
pub async fn take_challenge(db: &Db, challenge: &str, now_ms: i64) -> Result<Option<ChallengeRow>> {
    if challenge.is_empty() || challenge.len() > 128 || unb64(challenge).is_none() {
        return Ok(None);
    }
    let row = with_pool!(db, pool => {
        sqlx::query("DELETE FROM challenges WHERE expires_at < $1")
            .bind(now_ms - CHALLENGE_TTL_MS)
            .execute(pool)
            .await?;
        sqlx::query_as::<_, ChallengeRow>(
            "DELETE FROM challenges WHERE challenge = $1 RETURNING \
             challenge, user_id, purpose, action_hash, state_json, context, expires_at",
        )
        .bind(challenge)
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

/// The expiry check, with the broker's clock (case A3).
pub fn check_not_expired(row: &ChallengeRow, now_ms: i64) -> Result<()> {
    if now_ms > row.expires_at {
        return Err(IdentityError::ChallengeInvalid(
            "the challenge has expired".into(),
        ));
    }
    Ok(())
}

/// The `pawActionHash` member the client put in clientDataJSON (signed by the key), and the
/// userHandle, read from the credential JSON as posted.
pub struct ClientBinding {
    pub action_hash: Option<String>,
    pub user_handle: Option<Vec<u8>>,
}

fn client_data(credential: &Value) -> Result<Value> {
    let cdj = credential["response"]["clientDataJSON"]
        .as_str()
        .and_then(unb64)
        .ok_or_else(|| {
            IdentityError::BadRequest("credential.response.clientDataJSON is not base64url".into())
        })?;
    serde_json::from_slice(&cdj)
        .map_err(|_| IdentityError::BadRequest("clientDataJSON is not JSON".into()))
}

pub fn client_binding(credential: &Value) -> Result<ClientBinding> {
    let response = &credential["response"];
    let client_data = client_data(credential)?;
    let action_hash = client_data["pawActionHash"].as_str().map(str::to_owned);
    let user_handle = match &response["userHandle"] {
        Value::Null => None,
        Value::String(s) => Some(
            unb64(s)
                .ok_or_else(|| IdentityError::BadRequest("userHandle is not base64url".into()))?,
        ),
        _ => {
            return Err(IdentityError::BadRequest(
                "userHandle must be a string or null".into(),
            ))
        }
    };
    Ok(ClientBinding {
        action_hash,
        user_handle,
    })
}

pub fn parse_assertion(credential: &Value) -> Result<PublicKeyCredential> {
    serde_json::from_value(credential.clone())
        .map_err(|e| IdentityError::BadRequest(format!("credential: {e}")))
}

pub fn cred_id_b64(key: &AttestedPasskey) -> String {
    b64(key.cred_id().as_ref())
}
