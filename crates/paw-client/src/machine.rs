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

/// An Ed25519 key of a machine (or of one workload-token session).
pub struct MachineKey {
    signing: SigningKey,
}

impl MachineKey {
    pub fn generate() -> Result<Self, ClientError> {
        let mut seed = Secret::new([0u8; 32]);
        OsRng
            .try_fill_bytes(seed.expose_mut())
            .map_err(|e| ClientError::Random(e.to_string()))?;
        Ok(Self {
            signing: SigningKey::from_bytes(seed.expose()),
        })
    }

    /// From the 32-byte seed a store kept.
    pub fn from_seed(seed: &[u8]) -> Result<Self, ClientError> {
        let bytes: [u8; 32] = seed.try_into().map_err(|_| ClientError::InvalidInput {
            field: "machine key",
            reason: "a machine key seed is 32 bytes".into(),
        })?;
        Ok(Self {
            signing: SigningKey::from_bytes(&bytes),
        })
    }

    /// The seed, for the caller's store only.
    pub fn seed(&self) -> Secret<[u8; 32]> {
        Secret::new(self.signing.to_bytes())
    }

    /// base64url of the public key, as the broker names it.
    pub fn public(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.signing.verifying_key().to_bytes())
    }

    fn sign(&self, message: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.signing.sign(message).to_bytes())
    }
}

impl std::fmt::Debug for MachineKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineKey")
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
            &self.key.signing,
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
