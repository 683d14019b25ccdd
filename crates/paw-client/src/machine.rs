//! A machine identity's side of paw (and `pawctl`'s): its key, its logins, and the same API a
//! person's app uses, with every step-up answered by the machine's key instead of a security
//! key.
//!
//! Rules:
//! - The private key never leaves this process except into the store the caller chose (the OS
//!   keyring or a 0600 file, `pawctl`'s choice); nothing here logs or returns it.
//! - A workload-token login makes a fresh key for that session alone; the token itself is
//!   sent once and not kept.
//! - Requests carry a device proof signed by the session's key, with the broker's time as
//!   estimated from its health answer (never the local wall clock).

use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey};
use paw_proto::action::Action;
use paw_proto::elevation::{GrantList, GrantView, RedeemResponse, SignedElevation};
use paw_proto::http::{
    ChallengeResponse, LoginFinishRequest, LoginStartRequest, StepUpFinishRequest,
    StepUpStartRequest, TokenResponse,
};
use paw_proto::machine::{
    join_message, rotate_message, stepup_message, workload_message, JoinMachineRequest,
    MachineList, MachineProof, RotateMachineKeyRequest, RotatedMachineKey, WorkloadLoginRequest,
};
use rand_core::{OsRng, RngCore};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::{local_wall_ms, BrokerClock};
use crate::error::ClientError;
use crate::secret::Secret;
use crate::BrokerClient;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The algorithm of a machine's key. The broker tells them apart by the public key's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAlg {
    /// Ed25519: the default, what `pawctl` makes.
    #[default]
    Ed25519,
    /// ECDSA P-256 with SHA-256: for hosts whose policy (or TPM, HSM, KMS) asks for NIST curves.
    P256,
}

impl KeyAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::P256 => "p256",
        }
    }
}

enum Signing {
    Ed25519(SigningKey),
    P256(p256::ecdsa::SigningKey),
}

/// A key of a machine (or of one workload-token session): Ed25519 or P-256.
pub struct MachineKey {
    signing: Signing,
}

impl MachineKey {
    /// A new Ed25519 key.
    pub fn generate() -> Result<Self, ClientError> {
        Self::generate_alg(KeyAlg::Ed25519)
    }

    /// A new key of `alg`.
    pub fn generate_alg(alg: KeyAlg) -> Result<Self, ClientError> {
        loop {
            let mut seed = Secret::new([0u8; 32]);
            OsRng
                .try_fill_bytes(seed.expose_mut())
                .map_err(|e| ClientError::Random(e.to_string()))?;
            // A P-256 scalar must be below the group order and non-zero: a random 32 bytes is
            // not one with probability about 2^-32, in which case another is drawn.
            if let Ok(key) = Self::from_stored(alg, seed.expose()) {
                return Ok(key);
            }
        }
    }

    /// An Ed25519 key from the 32-byte seed a store kept.
    pub fn from_seed(seed: &[u8]) -> Result<Self, ClientError> {
        Self::from_stored(KeyAlg::Ed25519, seed)
    }

    /// A key of `alg` from the 32 secret bytes a store kept ([`MachineKey::seed`]).
    pub fn from_stored(alg: KeyAlg, seed: &[u8]) -> Result<Self, ClientError> {
        let bad = |reason: &str| ClientError::InvalidInput {
            field: "machine key",
            reason: reason.into(),
        };
        let bytes: [u8; 32] = seed
            .try_into()
            .map_err(|_| bad("a machine key's secret is 32 bytes"))?;
        let signing = match alg {
            KeyAlg::Ed25519 => Signing::Ed25519(SigningKey::from_bytes(&bytes)),
            KeyAlg::P256 => Signing::P256(
                p256::ecdsa::SigningKey::from_slice(&bytes)
                    .map_err(|_| bad("not a P-256 private scalar"))?,
            ),
        };
        Ok(Self { signing })
    }

    pub fn alg(&self) -> KeyAlg {
        match self.signing {
            Signing::Ed25519(_) => KeyAlg::Ed25519,
            Signing::P256(_) => KeyAlg::P256,
        }
    }

    /// The 32 secret bytes (Ed25519 seed or P-256 scalar), for the caller's store only.
    pub fn seed(&self) -> Secret<[u8; 32]> {
        match &self.signing {
            Signing::Ed25519(k) => Secret::new(k.to_bytes()),
            Signing::P256(k) => Secret::new(k.to_bytes().into()),
        }
    }

    /// base64url of the public key, as the broker names it: Ed25519's 32 bytes, or P-256's
    /// compressed point (33 bytes).
    pub fn public(&self) -> String {
        match &self.signing {
            Signing::Ed25519(k) => URL_SAFE_NO_PAD.encode(k.verifying_key().to_bytes()),
            Signing::P256(k) => {
                URL_SAFE_NO_PAD.encode(k.verifying_key().to_encoded_point(true).as_bytes())
            }
        }
    }

    /// A 64-byte signature over `message`: Ed25519, or P-256 `r || s` with the low `s` the
    /// broker insists on.
    pub(crate) fn sign_raw(&self, message: &[u8]) -> [u8; 64] {
        match &self.signing {
            Signing::Ed25519(k) => k.sign(message).to_bytes(),
            Signing::P256(k) => {
                let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(k, message);
                sig.normalize_s().unwrap_or(sig).to_bytes().into()
            }
        }
    }

    fn sign(&self, message: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.sign_raw(message))
    }
}

impl std::fmt::Debug for MachineKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineKey")
            .field("alg", &self.alg())
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

/// A machine signed in to a broker: its session key, tokens and the broker's clock.
pub struct MachineSession {
    broker: BrokerClient,
    key: MachineKey,
    tokens: TokenResponse,
    clock: BrokerClock,
}

impl std::fmt::Debug for MachineSession {
    /// The user and key only: the tokens are secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineSession")
            .field("user", &self.tokens.user)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Registers `key` as `machine`'s first key with the single-use join token.
pub async fn join(
    broker: &BrokerClient,
    machine: &str,
    join_token: &str,
    key: &MachineKey,
) -> Result<(), ClientError> {
    let public = key.public();
    let req = JoinMachineRequest {
        machine: machine.to_owned(),
        join_token: join_token.to_owned(),
        signature: key.sign(&join_message(machine, &public, join_token)),
        public_key: public,
    };
    let _: serde_json::Value = broker.post_json("/v1/machines/join", &req).await?;
    Ok(())
}

/// The machine's answer to a challenge: its key over the challenge and the action hash.
fn answer(key: &MachineKey, c: &ChallengeResponse) -> Result<serde_json::Value, ClientError> {
    serde_json::to_value(MachineProof {
        machine_key: key.public(),
        signature: key.sign(&stepup_message(&c.challenge, &c.action_hash)),
    })
    .map_err(|e| ClientError::Internal(e.to_string()))
}

async fn synced(broker: &BrokerClient) -> Result<BrokerClock, ClientError> {
    let sent = Instant::now();
    let health = broker.health().await?;
    let mut clock = BrokerClock::new();
    clock.record(health.time_ms, sent, Instant::now(), local_wall_ms());
    Ok(clock)
}

impl MachineSession {
    /// Key login: the broker's single-use challenge signed by `key`.
    pub async fn login(
        broker: BrokerClient,
        machine: &str,
        key: MachineKey,
    ) -> Result<Self, ClientError> {
        let clock = synced(&broker).await?;
        let c: ChallengeResponse = broker
            .post_json(
                "/v1/machines/login/start",
                &LoginStartRequest {
                    user: machine.to_owned(),
                },
            )
            .await?;
        let req = LoginFinishRequest {
            credential: answer(&key, &c)?,
            challenge: c.challenge,
            device_public_key: key.public(),
        };
        let tokens: TokenResponse = broker.post_json("/v1/machines/login/finish", &req).await?;
        Ok(Self {
            broker,
            key,
            tokens,
            clock,
        })
    }

    /// Workload-token login: a new key for this session, which signs the exchange.
    pub async fn workload_login(broker: BrokerClient, token: &str) -> Result<Self, ClientError> {
        let clock = synced(&broker).await?;
        let key = MachineKey::generate()?;
        let session_key = key.public();
        let req = WorkloadLoginRequest {
            token: token.to_owned(),
            signature: key.sign(&workload_message(token, &session_key)),
            session_key,
        };
        let tokens: TokenResponse = broker
            .post_json("/v1/machines/workload-login", &req)
            .await?;
        Ok(Self {
            broker,
            key,
            tokens,
            clock,
        })
    }

    /// A session saved by the caller (`pawctl` between invocations).
    pub async fn resume(
        broker: BrokerClient,
        key: MachineKey,
        tokens: TokenResponse,
    ) -> Result<Self, ClientError> {
        let clock = synced(&broker).await?;
        Ok(Self {
            broker,
            key,
            tokens,
            clock,
        })
    }

    pub fn user(&self) -> &str {
        &self.tokens.user
    }
    pub fn tokens(&self) -> &TokenResponse {
        &self.tokens
    }
    pub fn key(&self) -> &MachineKey {
        &self.key
    }
    pub fn broker(&self) -> &BrokerClient {
        &self.broker
    }

    /// An authenticated call: bearer token and a device proof over exactly these bytes.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let bytes = match body {
            Some(b) => {
                Some(serde_json::to_vec(b).map_err(|e| ClientError::Internal(e.to_string()))?)
            }
            None => None,
        };
        let now = self
            .clock
            .now_ms()
            .ok_or_else(|| ClientError::Internal("the broker's clock is not synced".into()))?;
        let proof = crate::device::sign_with(
            |m| self.key.sign_raw(m),
            method.as_str(),
            path,
            bytes.as_deref().unwrap_or_default(),
            now,
            &self.tokens.access_token,
        )?;
        let bearer = format!("Bearer {}", self.tokens.access_token);
        self.broker
            .request_json(
                method,
                path,
                bytes,
                &[
                    ("authorization", bearer.as_str()),
                    ("paw-device-proof", proof.as_str()),
                ],
            )
            .await
    }

    /// A step-up for `action`, answered by this session's key.
    pub async fn step_up(&self, action: Action) -> Result<StepUpFinishRequest, ClientError> {
        let c: ChallengeResponse = self
            .call(
                Method::POST,
                "/v1/stepup/start",
                Some(&StepUpStartRequest {
                    action: action.clone(),
                }),
            )
            .await?;
        Ok(StepUpFinishRequest {
            credential: answer(&self.key, &c)?,
            challenge: c.challenge,
            action,
        })
    }

    /// Requests an entitlement (the machine's key signs the exact request).
    pub async fn request(&self, action: Action) -> Result<GrantView, ClientError> {
        let stepup = self.step_up(action).await?;
        self.call(
            Method::POST,
            "/v1/requests",
            Some(&SignedElevation { stepup }),
        )
        .await
    }

    pub async fn grants(&self) -> Result<GrantList, ClientError> {
        self.call(Method::GET, "/v1/grants", None::<&()>).await
    }

    pub async fn machines(&self) -> Result<MachineList, ClientError> {
        self.call(Method::GET, "/v1/machines", None::<&()>).await
    }

    /// A session ticket for an active grant (its own step-up, bound to grant and target).
    pub async fn redeem(&self, grant: &GrantView) -> Result<RedeemResponse, ClientError> {
        let stepup = self
            .step_up(Action::Session {
                grant_id: grant.id.clone(),
                target: grant.target.clone(),
            })
            .await?;
        self.call(
            Method::POST,
            &format!("/v1/grants/{}/redeem", grant.id),
            Some(&SignedElevation { stepup }),
        )
        .await
    }

    /// Adds `new_key`; the current one retires after the broker's overlap window.
    pub async fn rotate(&self, new_key: &MachineKey) -> Result<RotatedMachineKey, ClientError> {
        let machine = self.tokens.user.clone();
        let public = new_key.public();
        let req = RotateMachineKeyRequest {
            signature: new_key.sign(&rotate_message(&machine, &public)),
            new_key: public,
        };
        self.call(Method::POST, "/v1/machines/self/rotate", Some(&req))
            .await
    }

    /// Ends this sign-in at the broker.
    pub async fn sign_out(&self) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .call(Method::POST, "/v1/auth/sign-out", None::<&()>)
            .await?;
        Ok(())
    }
}

/// What an exec through the broker produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// The target's exit status; `None` when the session ended without one (refused, cut).
    pub exit_status: Option<u32>,
    /// The broker's disconnect message, when it said why it ended the session.
    pub broker_said: Option<String>,
}

/// Runs `command` through the broker's front door with a redeemed ticket: no terminal, exactly
/// as automation does (case K6), streaming the target's output to `out` and `err`.
pub async fn exec(
    redeemed: &RedeemResponse,
    command: &str,
    mut out: impl tokio::io::AsyncWrite + Unpin,
    mut err: impl tokio::io::AsyncWrite + Unpin,
) -> Result<ExecOutcome, ClientError> {
    use russh::ChannelMsg;
    use tokio::io::AsyncWriteExt;
    let cred = crate::terminal::Credential {
        addr: redeemed
            .ssh_addr
            .clone()
            .ok_or_else(|| ClientError::Session("this broker opens no sessions".into()))?,
        host_key: redeemed
            .ssh_host_key
            .clone()
            .ok_or_else(|| ClientError::Session("the broker did not send its host key".into()))?,
        session_id: redeemed.session_id.clone(),
        ticket: zeroize::Zeroizing::new(redeemed.ticket.clone()),
    };
    let (handle, disconnect) = crate::terminal::login(&cred).await?;
    drop(cred);
    let mut channel = handle
        .channel_open_session()
        .await
        .map_err(|e| ClientError::Session(format!("opening the session: {e}")))?;
    channel
        .exec(true, command.as_bytes().to_vec())
        .await
        .map_err(|e| ClientError::Session(format!("starting the command: {e}")))?;
    let mut exit_status = None;
    let io = |e: std::io::Error| ClientError::Session(format!("writing output: {e}"));
    while let Some(m) = channel.wait().await {
        match m {
            ChannelMsg::Data { data } => out.write_all(&data).await.map_err(io)?,
            ChannelMsg::ExtendedData { data, .. } => err.write_all(&data).await.map_err(io)?,
            ChannelMsg::ExitStatus { exit_status: s } => exit_status = Some(s),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    out.flush().await.map_err(io)?;
    err.flush().await.map_err(io)?;
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, "done", "")
        .await;
    let broker_said = tokio::time::timeout(std::time::Duration::from_millis(300), disconnect)
        .await
        .ok()
        .and_then(Result::ok);
    Ok(ExecOutcome {
        exit_status,
        broker_said,
    })
}
