//! Enrollment, login, step-up and the security keys page: the workstation side of the broker's
//! identity API.
//!
//! Rules:
//! - The core builds clientDataJSON itself (WebAuthn does not run inside the Linux WebView):
//!   the origin is the broker URL's origin, which the broker pins as its relying-party origin,
//!   and the RP ID the broker asks for must cover the broker's host, so a broker answer cannot
//!   steer the key to sign for another site.
//! - The action a step-up signs is built here from the user's request, its hash is compared
//!   with the broker's, and the prompt's words come from [`Action::describe`] on the core's own
//!   copy: what the user reads is what the key signs.
//! - A step-up prompt is single use: `confirm_step_up` (or `confirm_elevation`) removes it
//!   before anything else, and only a prompt of its own kind ([`crate::pending`]).
//! - Authenticator calls block (touch, PIN): they run on a blocking thread, one at a time, and
//!   the virtual key's state goes back to the keyring after every call (its counter must never
//!   go back).
//! - Tokens are read and rotated under one lock, so two requests never spend the same refresh
//!   token (which the broker treats as theft and answers by ending the session, case B11).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use paw_fido::{Assertion, Authenticator, FidoError, KeyPrompt, Registration, UserEntity};
use paw_policy::limits::{MAX_NAME_CHARS, STEP_UP_TTL_SECS};
use paw_proto::action::Action;
use paw_proto::device_proof;
use paw_proto::http::{
    AddKeyFinishRequest, AddKeyStartResponse, ChallengeResponse, EnrollFinishRequest,
    EnrollFinishResponse, EnrollStartRequest, EnrollStartResponse, LoginFinishRequest,
    LoginStartRequest, RefreshRequest, RenameKeyRequest, RevokeKeyRequest, SecurityKeyList,
    SignedOut, StepUpFinishRequest, StepUpStartRequest, TokenResponse, WhoAmI,
};
use paw_proto::ipc::{
    EnrollInput, KeyAction, KeyPromptView, LoginInput, PinInput, RenameKeyInput, SecurityKeyView,
    SessionUser, SignOutReport, StepUpPrompt,
};
use paw_proto::{ApiError, ErrorCode};
use rand_core::{OsRng, RngCore};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::audit::Audit;
use crate::keystore::KeyStore;
use crate::pending::{PendingKind, PendingOp, PendingStepUp, PendingStepUps};
use crate::prompts::KeyPrompts;
use crate::secret::{AccessToken, Pin, RefreshToken};
use crate::util::{encode, hex};
use crate::{clock, BrokerClient, ClientError, Core, DeviceKey, Tokens};

/// Keyring entry of the INSECURE virtual key's state (its private keys and counters).
pub const VIRTUAL_KEY_ENTRY: &str = "virtual-key";

/// How long a step-up prompt stays confirmable: the broker's challenge lifetime.
pub const STEP_UP_TTL: Duration = Duration::from_secs(STEP_UP_TTL_SECS as u64);
/// The access token is refreshed this long before the broker would refuse it.
const REFRESH_MARGIN_MS: i64 = 30_000;

/// The identity half of the core's state.
pub(crate) struct Identity {
    pub(crate) keystore: Arc<dyn KeyStore>,
    pub(crate) authenticator: Option<Arc<dyn Authenticator>>,
    device: std::sync::Mutex<Option<Arc<DeviceKey>>>,
    pending: std::sync::Mutex<PendingStepUps>,
    /// Held while tokens are read and possibly rotated.
    token_lock: tokio::sync::Mutex<()>,
    /// Held while the authenticator is in use and its state is written back.
    key_lock: tokio::sync::Mutex<()>,
    /// PIN and touch prompts of the operation in progress.
    prompts: Arc<KeyPrompts>,
}

impl Identity {
    pub(crate) fn new(
        keystore: Arc<dyn KeyStore>,
        authenticator: Option<Arc<dyn Authenticator>>,
    ) -> Self {
        Self {
            keystore,
            authenticator,
            device: std::sync::Mutex::new(None),
            pending: std::sync::Mutex::new(PendingStepUps::new(STEP_UP_TTL)),
            token_lock: tokio::sync::Mutex::new(()),
            key_lock: tokio::sync::Mutex::new(()),
            prompts: Arc::new(KeyPrompts::default()),
        }
    }

    pub(crate) fn clear_pending(&self) {
        if let Ok(mut p) = self.pending.lock() {
            p.clear();
        }
    }
}

/// Loads the INSECURE virtual key from the keyring entry [`VIRTUAL_KEY_ENTRY`] (a new, empty
/// one when there is none), asking for `pin` before every operation when one is given (so demos
/// and tests exercise the PIN prompt). `Ok(None)` when this build does not contain the virtual
/// key. Blocking (keyring): call it at start-up or from a blocking thread.
pub fn load_virtual_authenticator(
    store: &dyn KeyStore,
    pin: Option<&str>,
) -> Result<Option<Arc<dyn Authenticator>>, ClientError> {
    if !paw_fido::VIRTUAL_KEY_COMPILED {
        return Ok(None);
    }
    let state = store.get(VIRTUAL_KEY_ENTRY)?;
    match paw_fido::virtual_authenticator_from_state(
        state.as_ref().map(|s| s.expose().as_slice()),
        pin,
    ) {
        None => Ok(None),
        Some(r) => Ok(Some(r?)),
    }
}

impl Core {
    /// Redeems an invite code: registers a new security key (with the authenticator) and this
    /// workstation's device key, then signs in right away with the new key, so the user ends
    /// signed in. If that sign-in fails, the enrollment stands and the error asks for a login.
    pub async fn enroll(&self, input: EnrollInput) -> Result<SessionUser, ClientError> {
        self.authenticator()?;
        check_key_name(&input.key_name)?;
        // Never the invite code: it is a credential until used.
        let what = Audit::new(
            "enroll",
            input.key_name.clone(),
            json!({"key_name": input.key_name}),
        )
        .before_session();
        self.audited(what, self.enroll_audited(input)).await
    }

    async fn enroll_audited(&self, input: EnrollInput) -> Result<SessionUser, ClientError> {
        let client = self.client().await?;
        let device = self.device().await?;
        let start: EnrollStartResponse = client
            .post_json(
                "/v1/enroll/start",
                &EnrollStartRequest {
                    code: input.code,
                    device_public_key: B64.encode(device.public_key()),
                },
            )
            .await?;
        let credential = self.register(&client, &start.options).await?;
        let done: EnrollFinishResponse = client
            .post_json(
                "/v1/enroll/finish",
                &EnrollFinishRequest {
                    ceremony_id: start.ceremony_id,
                    credential,
                    name: input.key_name,
                },
            )
            .await?;
        tracing::info!(user = %done.user, key_id = %done.key_id, "enrolled");
        self.login(LoginInput { user: done.user }).await
    }

    /// Signs in with the security key; the tokens go to the keyring.
    pub async fn login(&self, input: LoginInput) -> Result<SessionUser, ClientError> {
        self.authenticator()?;
        let what = Audit::for_action(
            "login",
            input.user.clone(),
            &Action::Login {
                user: input.user.clone(),
            },
        )
        .before_session();
        self.audited(what, self.login_audited(input)).await
    }

    async fn login_audited(&self, input: LoginInput) -> Result<SessionUser, ClientError> {
        let client = self.client().await?;
        let device = self.device().await?;
        let start: ChallengeResponse = client
            .post_json(
                "/v1/login/start",
                &LoginStartRequest {
                    user: input.user.clone(),
                },
            )
            .await?;
        check_challenge(&start, &Action::Login { user: input.user })?;
        let credential = self.assert(&client, &start).await?;
        let _tokens = self.inner.identity.token_lock.lock().await;
        let resp: TokenResponse = client
            .post_json(
                "/v1/login/finish",
                &LoginFinishRequest {
                    challenge: start.challenge,
                    credential,
                    device_public_key: B64.encode(device.public_key()),
                },
            )
            .await?;
        let user = self.store_tokens(resp).await?;
        self.inner.state.write().await.user = Some(user.clone());
        tracing::info!(user = %user.name, "signed in");
        // Another user may have been signed in before: their events and grants are gone
        // (signed_out), and this user's stream starts now.
        self.stop_live();
        self.ensure_live();
        Ok(user)
    }

    /// Signs out: asks the broker to revoke the sign-in (its whole token family, on every
    /// broker on its database), then forgets the tokens and the user here. Pending step-ups go
    /// too. Whatever the broker answers, or if it cannot be reached, the sign-in is forgotten
    /// on this computer; the report says which of the two happened at the broker.
    pub async fn logout(&self) -> Result<SignOutReport, ClientError> {
        // Sessions opened by this user end with the sign-out.
        self.close_sessions().await;
        let at_broker = self.sign_out_at_broker().await;
        let _tokens = self.inner.identity.token_lock.lock().await;
        self.signed_out().await?;
        Ok(match at_broker {
            None => SignOutReport {
                revoked: None,
                broker_error: None,
            },
            Some(Ok(revoked)) => {
                tracing::info!(
                    access_tokens = revoked.access_tokens,
                    refresh_tokens = revoked.refresh_tokens,
                    "signed out; the broker revoked the sign-in"
                );
                SignOutReport {
                    revoked: Some(revoked),
                    broker_error: None,
                }
            }
            Some(Err(e)) => {
                tracing::warn!(code = ?e.code(), "signed out here; the broker did not confirm: {e}");
                SignOutReport {
                    revoked: None,
                    broker_error: Some(e.to_api()),
                }
            }
        })
    }

    /// `POST /v1/auth/sign-out` with the current tokens; `None` when there are none (nobody is
    /// signed in). Signed like [`Core::authed`] (an access token due for rotation is refreshed
    /// first, so the family can still be revoked), but a refusal does not go through
    /// [`Core::after_authed`]: the caller forgets the tokens anyway, once.
    async fn sign_out_at_broker(&self) -> Option<Result<SignedOut, ClientError>> {
        let ts = self.token_store();
        match blocking(move || ts.load().map(|t| t.is_some())).await {
            Ok(false) => return None,
            Ok(true) => {}
            Err(e) => return Some(Err(e)),
        }
        Some(self.sign_out_request().await)
    }

    async fn sign_out_request(&self) -> Result<SignedOut, ClientError> {
        const PATH: &str = "/v1/auth/sign-out";
        let client = self.client().await?;
        let (bearer, proof) = self.credentials(&client, &Method::POST, PATH, &[]).await?;
        client
            .request_json(
                Method::POST,
                PATH,
                None,
                &[
                    ("authorization", bearer.as_str()),
                    (device_proof::HEADER, proof.as_str()),
                ],
            )
            .await
    }

    /// The user's security keys.
    pub async fn list_keys(&self) -> Result<Vec<SecurityKeyView>, ClientError> {
        let list: SecurityKeyList = self.authed(Method::GET, "/v1/keys", None).await?;
        Ok(views(list))
    }

    pub async fn rename_key(
        &self,
        input: RenameKeyInput,
    ) -> Result<Vec<SecurityKeyView>, ClientError> {
        check_key_id(&input.id)?;
        let body = encode(&RenameKeyRequest { name: input.name })?;
        let list: SecurityKeyList = self
            .authed(
                Method::POST,
                &format!("/v1/keys/{}/rename", input.id),
                Some(body),
            )
            .await?;
        Ok(views(list))
    }

    /// Asks the broker for a key-management step-up and returns what the user is about to
    /// approve. Nothing is signed yet; [`Core::confirm_step_up`] does that.
    pub async fn prepare_step_up(&self, action: KeyAction) -> Result<StepUpPrompt, ClientError> {
        self.authenticator()?;
        let canonical = match &action {
            KeyAction::Add { name } => {
                check_key_name(name)?;
                Action::KeyManagement {
                    operation: "add".into(),
                    credential: name.clone(),
                }
            }
            KeyAction::Revoke { id } => {
                check_key_id(id)?;
                Action::KeyManagement {
                    operation: "revoke".into(),
                    credential: id.clone(),
                }
            }
        };
        self.start_step_up(canonical, PendingOp::Key(action)).await
    }

    /// Starts a step-up for `canonical` at the broker, checks the challenge is for exactly that
    /// action, and keeps it as a prompt for the confirm call of `op`'s kind. The prompt's words
    /// come from the core's own copy of the action, never from the broker or the UI.
    pub(crate) async fn start_step_up(
        &self,
        canonical: Action,
        op: PendingOp,
    ) -> Result<StepUpPrompt, ClientError> {
        let body = encode(&StepUpStartRequest {
            action: canonical.clone(),
        })?;
        let challenge: ChallengeResponse = self
            .authed(Method::POST, "/v1/stepup/start", Some(body))
            .await?;
        check_challenge(&challenge, &canonical)?;
        let id = random_id()?;
        let prompt = StepUpPrompt {
            id: id.clone(),
            purpose: canonical.purpose(),
            description: canonical.describe(),
            action_hash: hex(&canonical.hash()),
            expires_in_secs: u32::try_from(STEP_UP_TTL.as_secs()).unwrap_or(u32::MAX),
        };
        self.pending()?.insert(
            id,
            PendingStepUp {
                action: canonical,
                op,
                challenge,
                created: Instant::now(),
            },
            Instant::now(),
        )?;
        Ok(prompt)
    }

    /// Removes the live prompt `id` of `kind` (single use); `StepUpUnknown` otherwise.
    pub(crate) fn take_pending(
        &self,
        id: &str,
        kind: PendingKind,
    ) -> Result<PendingStepUp, ClientError> {
        self.pending()?.take(id, kind, Instant::now())
    }

    /// Answers a prepared step-up with the security key and performs the action. The prompt
    /// is removed first, so it can never be confirmed twice.
    pub async fn confirm_step_up(&self, id: String) -> Result<Vec<SecurityKeyView>, ClientError> {
        let p = self.take_pending(&id, PendingKind::Key)?;
        let PendingOp::Key(op) = &p.op else {
            return Err(ClientError::StepUpUnknown);
        };
        let what = match op {
            KeyAction::Add { name } => Audit::for_action("key.add", name.clone(), &p.action),
            KeyAction::Revoke { id } => Audit::for_action("key.revoke", id.clone(), &p.action),
        };
        self.audited(what, self.key_step_up_audited(&p, op)).await
    }

    async fn key_step_up_audited(
        &self,
        p: &PendingStepUp,
        op: &KeyAction,
    ) -> Result<Vec<SecurityKeyView>, ClientError> {
        let client = self.client().await?;
        let list: SecurityKeyList = match op {
            KeyAction::Revoke { id } => {
                let credential = self.assert(&client, &p.challenge).await?;
                let body = encode(&RevokeKeyRequest {
                    stepup: StepUpFinishRequest {
                        challenge: p.challenge.challenge.clone(),
                        action: p.action.clone(),
                        credential,
                    },
                })?;
                self.authed(Method::POST, &format!("/v1/keys/{id}/revoke"), Some(body))
                    .await?
            }
            KeyAction::Add { name } => {
                let start: AddKeyStartResponse = self
                    .authed(Method::POST, "/v1/keys/register/start", None)
                    .await?;
                let new_key = self.register(&client, &start.options).await?;
                let credential = self.assert(&client, &p.challenge).await?;
                let body = encode(&AddKeyFinishRequest {
                    ceremony_id: start.ceremony_id,
                    credential: new_key,
                    name: name.clone(),
                    stepup: StepUpFinishRequest {
                        challenge: p.challenge.challenge.clone(),
                        action: p.action.clone(),
                        credential,
                    },
                })?;
                self.authed(Method::POST, "/v1/keys/register/finish", Some(body))
                    .await?
            }
        };
        Ok(views(list))
    }

    /// What the security key needs from the user right now (PIN, touch, nothing).
    pub fn key_prompt(&self) -> KeyPromptView {
        self.inner.identity.prompts.view()
    }

    /// The PIN the key asked for. Refused (`bad_request`) when no PIN is being asked for.
    pub fn submit_pin(&self, input: PinInput) -> Result<(), ClientError> {
        self.inner.identity.prompts.submit_pin(Pin::from(input.pin))
    }

    /// The user closed the PIN prompt: the operation ends as `key_cancelled`.
    pub fn cancel_key_prompt(&self) {
        self.inner.identity.prompts.cancel();
    }

    /// Drops a prepared step-up of any kind, key management or elevation (the user said no).
    /// Unknown ids are fine: the result is the same.
    pub async fn cancel_step_up(&self, id: String) -> Result<(), ClientError> {
        self.pending()?.cancel(&id);
        Ok(())
    }

    /// The signed-in user as the broker sees it now, for `status()`. `None` when signed out or
    /// when the broker ended the session; the last known user when the broker cannot be asked.
    pub(crate) async fn current_user(&self) -> Option<SessionUser> {
        match self.authed::<WhoAmI>(Method::GET, "/v1/me", None).await {
            Ok(me) => {
                let user = SessionUser {
                    name: me.user,
                    roles: me.roles,
                };
                self.inner.state.write().await.user = Some(user.clone());
                Some(user)
            }
            Err(ClientError::NotSignedIn) => None,
            Err(e) if session_over(&e) => None,
            Err(e) => {
                tracing::debug!(code = %e.code(), "could not confirm the session");
                self.inner.state.read().await.user.clone()
            }
        }
    }

    // ---- plumbing -------------------------------------------------------------------------

    pub(crate) fn authenticator(&self) -> Result<Arc<dyn Authenticator>, ClientError> {
        self.inner
            .identity
            .authenticator
            .clone()
            .ok_or(ClientError::NoAuthenticator)
    }

    fn pending(&self) -> Result<std::sync::MutexGuard<'_, PendingStepUps>, ClientError> {
        self.inner
            .identity
            .pending
            .lock()
            .map_err(|_| ClientError::Internal("step-up state poisoned".into()))
    }

    pub(crate) async fn client(&self) -> Result<BrokerClient, ClientError> {
        self.inner
            .state
            .read()
            .await
            .client
            .clone()
            .ok_or(ClientError::NotConfigured)
    }

    /// The device key, loaded from (or created in) the keyring once per run.
    pub(crate) async fn device(&self) -> Result<Arc<DeviceKey>, ClientError> {
        if let Some(d) = self.device_cached()? {
            return Ok(d);
        }
        let store = self.inner.identity.keystore.clone();
        let key = Arc::new(blocking(move || DeviceKey::load_or_create(store.as_ref())).await?);
        let mut slot = self
            .inner
            .identity
            .device
            .lock()
            .map_err(|_| ClientError::Internal("device key state poisoned".into()))?;
        Ok(slot.get_or_insert(key).clone())
    }

    fn device_cached(&self) -> Result<Option<Arc<DeviceKey>>, ClientError> {
        Ok(self
            .inner
            .identity
            .device
            .lock()
            .map_err(|_| ClientError::Internal("device key state poisoned".into()))?
            .clone())
    }

    /// The broker's time now, syncing the estimate first when it is missing or stale.
    pub(crate) async fn broker_now(&self, client: &BrokerClient) -> Result<i64, ClientError> {
        let stale = self
            .inner
            .state
            .read()
            .await
            .clock
            .needs_resync(Instant::now(), clock::local_wall_ms());
        if stale {
            let sent = Instant::now();
            let h = client.health().await?;
            self.sync_clock(client, h.time_ms, sent, Instant::now())
                .await;
        }
        self.inner
            .state
            .read()
            .await
            .clock
            .now_ms()
            .ok_or_else(|| ClientError::Unreachable("the broker's clock is unknown".into()))
    }

    /// Runs `f` on the authenticator off the async workers, then saves its state (the virtual
    /// key's keys and counters) to the keyring before anything is sent to the broker.
    async fn with_authenticator<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Authenticator, &dyn KeyPrompt) -> Result<T, FidoError> + Send + 'static,
    ) -> Result<T, ClientError> {
        let auth = self.authenticator()?;
        let store = self.inner.identity.keystore.clone();
        let prompts = self.inner.identity.prompts.clone();
        let _one_at_a_time = self.inner.identity.key_lock.lock().await;
        blocking(move || {
            let out = f(auth.as_ref(), prompts.as_ref())?;
            if let Some(state) = auth.persistent_state()? {
                store.set(VIRTUAL_KEY_ENTRY, &state)?;
            }
            Ok(out)
        })
        .await
    }

    /// Registers a new credential for creation `options`; returns the
    /// `RegisterPublicKeyCredential` JSON.
    async fn register(&self, client: &BrokerClient, options: &Value) -> Result<Value, ClientError> {
        let origin = client.origin()?;
        let pk = &options["publicKey"];
        let rp_id = str_field(&pk["rp"]["id"], "publicKey.rp.id")?;
        check_rp_id(&origin, &rp_id)?;
        let challenge = str_field(&pk["challenge"], "publicKey.challenge")?;
        let user = user_entity(&pk["user"])?;
        let cdj = client_data("webauthn.create", &challenge, &origin_text(&origin), None)?;
        let json = cdj.clone();
        let reg: Registration = self
            .with_authenticator(move |a, p| a.make_credential(&rp_id, &user, &json, p))
            .await?;
        let id = B64.encode(&reg.credential_id);
        Ok(json!({
            "id": id, "rawId": id, "type": "public-key", "extensions": {},
            "response": {
                "attestationObject": B64.encode(&reg.attestation_object),
                "clientDataJSON": B64.encode(&cdj),
                "transports": ["usb"],
            }
        }))
    }

    /// Answers an assertion challenge; returns the `PublicKeyCredential` JSON. The client data
    /// carries the action hash (`pawActionHash`), so the key's signature covers the action.
    pub(crate) async fn assert(
        &self,
        client: &BrokerClient,
        challenge: &ChallengeResponse,
    ) -> Result<Value, ClientError> {
        let origin = client.origin()?;
        let pk = &challenge.options["publicKey"];
        let rp_id = str_field(&pk["rpId"], "publicKey.rpId")?;
        check_rp_id(&origin, &rp_id)?;
        let signed_challenge = str_field(&pk["challenge"], "publicKey.challenge")?;
        if signed_challenge != challenge.challenge {
            return Err(ClientError::Protocol(
                "the assertion options are for another challenge".into(),
            ));
        }
        let allow = pk["allowCredentials"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|c| {
                        c["id"]
                            .as_str()
                            .and_then(|s| B64.decode(s).ok())
                            .ok_or_else(|| {
                                ClientError::Protocol("allowCredentials has a bad id".into())
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let cdj = client_data(
            "webauthn.get",
            &signed_challenge,
            &origin_text(&origin),
            Some(&challenge.action_hash),
        )?;
        let json = cdj.clone();
        let a: Assertion = self
            .with_authenticator(move |k, p| k.get_assertion(&rp_id, &json, &allow, p))
            .await?;
        let id = B64.encode(&a.credential_id);
        Ok(json!({
            "id": id, "rawId": id, "type": "public-key", "extensions": {},
            "response": {
                "authenticatorData": B64.encode(&a.authenticator_data),
                "clientDataJSON": B64.encode(&cdj),
                "signature": B64.encode(&a.signature),
                "userHandle": Value::Null,
            }
        }))
    }

    /// An authenticated request: bearer access token (refreshed first when due) and a device
    /// proof over exactly these bytes. A broker answer that the session is over signs out.
    pub(crate) async fn authed<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let client = self.client().await?;
        let (bearer, proof) = self
            .credentials(&client, &method, path, body.as_deref().unwrap_or_default())
            .await?;
        let result = client
            .request_json(
                method,
                path,
                body,
                &[
                    ("authorization", bearer.as_str()),
                    (device_proof::HEADER, proof.as_str()),
                ],
            )
            .await;
        self.after_authed(result).await
    }

    /// An authenticated GET whose answer is a stream (server-sent events), authenticated like
    /// [`Core::authed`] (bearer plus a device proof over the empty body). Returns the open
    /// response and the client it came through; the caller reads the body.
    pub(crate) async fn authed_stream(
        &self,
        path: &str,
    ) -> Result<(BrokerClient, reqwest::Response), ClientError> {
        let client = self.client().await?;
        let (bearer, proof) = self.credentials(&client, &Method::GET, path, &[]).await?;
        let result = client
            .open_stream(
                path,
                &[
                    ("authorization", bearer.as_str()),
                    (device_proof::HEADER, proof.as_str()),
                ],
            )
            .await;
        let resp = self.after_authed(result).await?;
        Ok((client, resp))
    }

    /// The bearer header value and the device proof for one request.
    async fn credentials(
        &self,
        client: &BrokerClient,
        method: &Method,
        path: &str,
        body: &[u8],
    ) -> Result<(Zeroizing<String>, String), ClientError> {
        let device = self.device().await?;
        let access = self.access_token(client, &device).await?;
        let now = self.broker_now(client).await?;
        let proof = device.sign_request(method.as_str(), path, body, now, access.expose())?;
        let bearer = Zeroizing::new(format!("Bearer {}", access.expose()));
        Ok((bearer, proof))
    }

    /// A broker answer that the session is over signs out.
    async fn after_authed<T>(&self, result: Result<T, ClientError>) -> Result<T, ClientError> {
        if let Err(e) = &result {
            if session_over(e) {
                let _tokens = self.inner.identity.token_lock.lock().await;
                self.signed_out().await?;
            }
        }
        result
    }

    /// The current access token, rotating the pair first when it is about to expire.
    async fn access_token(
        &self,
        client: &BrokerClient,
        device: &DeviceKey,
    ) -> Result<AccessToken, ClientError> {
        let _tokens = self.inner.identity.token_lock.lock().await;
        let ts = self.token_store();
        let tokens = blocking(move || ts.load())
            .await?
            .ok_or(ClientError::NotSignedIn)?;
        let now = self.broker_now(client).await?;
        if tokens.access_valid_at(now.saturating_add(REFRESH_MARGIN_MS)) {
            return Ok(tokens.access);
        }
        if !tokens.refresh_valid_at(now) {
            self.signed_out().await?;
            return Err(ClientError::Broker(ApiError::new(
                ErrorCode::ReauthenticationRequired,
                "the session has ended; sign in with your security key again",
            )));
        }
        let body = Zeroizing::new(
            serde_json::to_vec(&RefreshRequest {
                refresh_token: tokens.refresh.expose().to_owned(),
            })
            .map_err(|e| ClientError::Internal(format!("encode refresh: {e}")))?,
        );
        let path = "/v1/token/refresh";
        let proof = device.sign_request("POST", path, &body, now, tokens.refresh.expose())?;
        let resp = client
            .request_json::<TokenResponse>(
                Method::POST,
                path,
                Some(body.to_vec()),
                &[(device_proof::HEADER, proof.as_str())],
            )
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                if session_over(&e) {
                    self.signed_out().await?;
                }
                return Err(e);
            }
        };
        let user = self.store_tokens(resp).await?;
        self.inner.state.write().await.user = Some(user);
        let ts = self.token_store();
        blocking(move || ts.load())
            .await?
            .map(|t| t.access)
            .ok_or(ClientError::NotSignedIn)
    }

    /// Saves a token answer to the keyring (read back, so a store that drops writes fails
    /// here) and returns the user it names. Call with the token lock held.
    async fn store_tokens(&self, mut resp: TokenResponse) -> Result<SessionUser, ClientError> {
        let tokens = Tokens {
            access: AccessToken::new(std::mem::take(&mut resp.access_token)),
            access_expires_ms: resp.access_expires_at_ms,
            refresh: RefreshToken::new(std::mem::take(&mut resp.refresh_token)),
            refresh_expires_ms: resp.session_expires_at_ms,
        };
        let ts = self.token_store();
        blocking(move || ts.save(&tokens)).await?;
        Ok(SessionUser {
            name: resp.user,
            roles: resp.roles,
        })
    }

    /// Clears tokens, user, prompts, the live stream with its events, and the cached grants.
    /// Call with the token lock held.
    async fn signed_out(&self) -> Result<(), ClientError> {
        self.inner.state.write().await.user = None;
        self.inner.identity.clear_pending();
        self.stop_live();
        let ts = self.token_store();
        blocking(move || ts.clear()).await
    }

    fn token_store(&self) -> crate::TokenStore {
        crate::TokenStore::new(self.inner.identity.keystore.clone())
    }
}

/// Runs blocking work (keyring, authenticator) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ClientError> + Send + 'static,
) -> Result<T, ClientError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ClientError::Internal(format!("background task failed: {e}")))?
}

/// WebAuthn's `user` entity from creation options (a CTAP2 key stores it with the credential).
fn user_entity(user: &Value) -> Result<UserEntity, ClientError> {
    let id = str_field(&user["id"], "publicKey.user.id")?;
    Ok(UserEntity {
        id: B64
            .decode(id)
            .map_err(|_| ClientError::Protocol("publicKey.user.id is not base64url".into()))?,
        name: str_field(&user["name"], "publicKey.user.name")?,
        display_name: str_field(&user["displayName"], "publicKey.user.displayName")?,
    })
}

/// The broker says the session is gone: sign in again.
pub(crate) fn session_over(e: &ClientError) -> bool {
    matches!(e, ClientError::Broker(a)
        if matches!(a.code, ErrorCode::Unauthenticated | ErrorCode::ReauthenticationRequired))
}

/// The broker's challenge must be for the action the core asked for: same purpose, same hash.
fn check_challenge(c: &ChallengeResponse, action: &Action) -> Result<(), ClientError> {
    if c.purpose != action.purpose() || c.action_hash != B64.encode(action.hash()) {
        return Err(ClientError::Protocol(
            "the broker's challenge is for another action".into(),
        ));
    }
    Ok(())
}

/// The broker's rule for key names, checked before the user is asked to touch the key.
fn check_key_name(name: &str) -> Result<(), ClientError> {
    if name.trim().is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ClientError::InvalidInput {
            field: "name",
            reason: format!("a key name is 1–{MAX_NAME_CHARS} printable characters"),
        });
    }
    Ok(())
}

/// Key ids go into a URL path: only the characters the broker's ids use.
fn check_key_id(id: &str) -> Result<(), ClientError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ClientError::InvalidInput {
            field: "id",
            reason: "not a security key id".into(),
        })
    }
}

/// The RP ID the broker asks for must be the broker's host or a parent domain of it, as a
/// browser would insist.
fn check_rp_id(origin: &url::Url, rp_id: &str) -> Result<(), ClientError> {
    let host = origin.host_str().unwrap_or_default();
    if rp_id.is_empty() || !(host == rp_id || host.ends_with(&format!(".{rp_id}"))) {
        return Err(ClientError::Protocol(format!(
            "the broker asked for RP ID {rp_id:?}, which does not cover {host:?}"
        )));
    }
    Ok(())
}

fn origin_text(origin: &url::Url) -> String {
    origin.origin().ascii_serialization()
}

/// clientDataJSON as a browser would make it, plus `pawActionHash` for assertions.
fn client_data(
    typ: &str,
    challenge: &str,
    origin: &str,
    action_hash: Option<&str>,
) -> Result<Vec<u8>, ClientError> {
    let mut m = serde_json::Map::new();
    m.insert("type".into(), json!(typ));
    m.insert("challenge".into(), json!(challenge));
    m.insert("origin".into(), json!(origin));
    m.insert("crossOrigin".into(), json!(false));
    if let Some(h) = action_hash {
        m.insert("pawActionHash".into(), json!(h));
    }
    serde_json::to_vec(&Value::Object(m))
        .map_err(|e| ClientError::Internal(format!("client data: {e}")))
}

fn str_field(v: &Value, name: &str) -> Result<String, ClientError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| ClientError::Protocol(format!("the broker's options lack {name}")))
}

fn views(list: SecurityKeyList) -> Vec<SecurityKeyView> {
    list.keys
        .into_iter()
        .map(|k| SecurityKeyView {
            id: k.id,
            name: k.name,
            created_at_ms: k.created_at_ms,
            revoked_at_ms: k.revoked_at_ms,
            locked: k.locked,
        })
        .collect()
}

fn random_id() -> Result<String, ClientError> {
    let mut b = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut b)
        .map_err(|e| ClientError::Random(e.to_string()))?;
    Ok(hex(&b))
}

#[cfg(test)]
mod tests {
    use paw_proto::action::Purpose;

    use super::*;

    #[test]
    fn rp_id_must_cover_the_broker_host() {
        let o = url::Url::parse("https://paw.example.com:8443").unwrap();
        check_rp_id(&o, "paw.example.com").unwrap();
        check_rp_id(&o, "example.com").unwrap();
        for bad in ["", "evil.com", "aw.example.com", "other.paw.example.com"] {
            assert!(check_rp_id(&o, bad).is_err(), "{bad}");
        }
        assert_eq!(origin_text(&o), "https://paw.example.com:8443");
        let o = url::Url::parse("https://paw.example.com:443").unwrap();
        assert_eq!(origin_text(&o), "https://paw.example.com");
    }

    #[test]
    fn key_names_follow_the_broker_rule() {
        check_key_name("YubiKey 5 (desk)").unwrap();
        for bad in ["", "   ", "a\nb", &"x".repeat(65)] {
            assert!(check_key_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn key_ids_are_path_safe() {
        check_key_id("a1B2-c_3").unwrap();
        for bad in ["", "../x", "a/b", "a?b", "a b", &"x".repeat(129)] {
            assert!(check_key_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_data_binds_the_action_hash() {
        let cdj = client_data("webauthn.get", "Y2g", "https://h:1", Some("aGFzaA")).unwrap();
        let v: Value = serde_json::from_slice(&cdj).unwrap();
        assert_eq!(v["type"], "webauthn.get");
        assert_eq!(v["challenge"], "Y2g");
        assert_eq!(v["origin"], "https://h:1");
        assert_eq!(v["pawActionHash"], "aGFzaA");
        let cdj = client_data("webauthn.create", "Y2g", "https://h:1", None).unwrap();
        let v: Value = serde_json::from_slice(&cdj).unwrap();
        assert!(v.get("pawActionHash").is_none());
    }

    #[test]
    fn challenge_for_another_action_is_refused() {
        let a = Action::KeyManagement {
            operation: "revoke".into(),
            credential: "k1".into(),
        };
        let mut c = ChallengeResponse {
            challenge: "c".into(),
            purpose: Purpose::KeyManagement,
            action_hash: B64.encode(a.hash()),
            description: a.describe(),
            options: Value::Null,
        };
        check_challenge(&c, &a).unwrap();
        let other = Action::KeyManagement {
            operation: "revoke".into(),
            credential: "k2".into(),
        };
        assert!(check_challenge(&c, &other).is_err());
        c.purpose = Purpose::Login;
        assert!(check_challenge(&c, &a).is_err());
    }

    #[test]
    fn virtual_authenticator_loads_from_and_only_from_the_keystore() {
        let store = crate::MemoryKeyStore::new();
        let a = load_virtual_authenticator(&store, None).unwrap().unwrap();
        assert!(a.is_virtual());
        assert!(!a.persistent_state().unwrap().unwrap().is_empty());
        let np = &paw_fido::NoPrompt;
        let reg = a
            .make_credential("localhost", &UserEntity::default(), b"{}", np)
            .unwrap();
        store
            .set(VIRTUAL_KEY_ENTRY, &a.persistent_state().unwrap().unwrap())
            .unwrap();
        let b = load_virtual_authenticator(&store, None).unwrap().unwrap();
        b.get_assertion("localhost", b"{}", &[reg.credential_id], np)
            .unwrap();
        store.set(VIRTUAL_KEY_ENTRY, b"junk").unwrap();
        assert!(load_virtual_authenticator(&store, None).is_err());
    }

    /// The desktop shell runs these as Tauri commands, which need `Send` futures.
    #[test]
    fn identity_futures_are_send() {
        fn send<T: Send>(_: &T) {}
        let d = tempfile::tempdir().unwrap();
        let core = Core::open(
            d.path().join("cfg"),
            paw_proto::ipc::BuildInfo {
                version: "t".into(),
                debug: true,
                virtual_key: false,
            },
            Arc::new(crate::MemoryKeyStore::new()),
            None,
        )
        .unwrap();
        send(&core.status());
        send(&core.enroll(EnrollInput {
            code: String::new(),
            key_name: String::new(),
        }));
        send(&core.login(LoginInput {
            user: String::new(),
        }));
        send(&core.logout());
        send(&core.list_keys());
        send(&core.rename_key(RenameKeyInput {
            id: String::new(),
            name: String::new(),
        }));
        send(&core.prepare_step_up(KeyAction::Add {
            name: String::new(),
        }));
        send(&core.confirm_step_up(String::new()));
        send(&core.cancel_step_up(String::new()));
        send(&core.entitlements());
        send(&core.grants());
        send(&core.inbox());
        send(&core.oversight());
        send(
            &core.prepare_elevation(paw_proto::ipc::ElevationAction::Decide {
                request_id: String::new(),
                approve: true,
                comment: String::new(),
            }),
        );
        send(&core.confirm_elevation(String::new()));
        send(&core.cancel_request(String::new()));
        send(&core.release_grant(String::new()));
        send(&core.revoke_grant(paw_proto::ipc::RevokeGrantInput {
            id: String::new(),
            reason: String::new(),
        }));
        send(&core.close_review(paw_proto::ipc::CloseReviewInput {
            id: String::new(),
            comment: String::new(),
        }));
        send(&core.live_events(0));
    }
}
