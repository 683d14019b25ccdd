//! [`VirtualUser`]: a workstation reduced to what the broker sees on the wire, for tests that
//! drive real `pawd` processes over HTTPS. INSECURE, TEST-ONLY: its security key is paw-fido's
//! software [`VirtualKey`] (private key in memory, trusted only by a broker configured with the
//! virtual key's attestation CA) and its device key is derived from the test's randomness.
//!
//! Adapted from the in-process client in `crates/paw-broker/tests/common/idp.rs` (same JSON,
//! same device proofs), but every call goes to a broker URL the test names, so a ceremony can
//! start on one replica and finish on another.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use paw_fido::attestation::VIRTUAL_KEY_AAGUID;
use paw_fido::VirtualKey;
use paw_proto::action::Action;
use paw_proto::device_proof::{self, ProofHeader};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A broker's answer: the status and the JSON body (`Null` when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The `code` of an `ApiError` body, or `""`.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// `Ok(body)` on 200, else an error naming the status and the body.
    pub fn ok(self) -> Result<Value> {
        if self.status == 200 {
            Ok(self.body)
        } else {
            bail!("HTTP {}: {}", self.status, self.body)
        }
    }
}

/// One user's workstation: a virtual security key, a device key and, once signed in, tokens.
pub struct VirtualUser {
    pub name: String,
    key: VirtualKey,
    device: SigningKey,
    /// The WebAuthn relying party every replica shares (`[webauthn]` of the common config).
    rp_id: String,
    origin: String,
    http: reqwest::Client,
    pub access: Option<String>,
    pub refresh: Option<String>,
}

impl VirtualUser {
    /// A user named `name` whose assertions claim `origin` (the replicas' common
    /// `webauthn.origin`, whichever replica they are sent to) and `rp_id`.
    pub fn new(name: &str, rp_id: &str, origin: &str, http: reqwest::Client) -> Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| anyhow!("no randomness: {e}"))?;
        Ok(Self {
            name: name.to_owned(),
            key: VirtualKey::generate().map_err(|e| anyhow!("virtual key: {e}"))?,
            device: SigningKey::from_bytes(&seed),
            rp_id: rp_id.to_owned(),
            origin: origin.to_owned(),
            http,
            access: None,
            refresh: None,
        })
    }

    /// The virtual key itself, for tests that make it misbehave (its failure knobs).
    pub fn key_mut(&mut self) -> &mut VirtualKey {
        &mut self.key
    }

    /// The device public key as the broker stores it (base64url, 32 bytes).
    pub fn device_public(&self) -> String {
        B64.encode(self.device.verifying_key().as_bytes())
    }

    /// Sends `body` (JSON when `Some`) to `base` + `path` with `headers`.
    pub async fn send(
        &self,
        base: &str,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(String, String)],
    ) -> Result<Reply> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self
            .http
            .request(method, format!("{base}{path}"))
            .timeout(Duration::from_secs(20));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_vec());
        }
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let res = req.send().await.with_context(|| format!("{base}{path}"))?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    /// An unauthenticated JSON POST.
    pub async fn post(&self, base: &str, path: &str, body: &Value) -> Result<Reply> {
        let bytes = serde_json::to_vec(body)?;
        self.send(base, "POST", path, Some(&bytes), &[]).await
    }

    /// Enrolls with an invite code (`pawd invite`): registers the virtual key and the device key.
    pub async fn enroll(&mut self, base: &str, code: &str) -> Result<Value> {
        let start = self
            .post(
                base,
                "/v1/enroll/start",
                &json!({"code": code, "device_public_key": self.device_public()}),
            )
            .await?
            .ok()
            .context("enroll start")?;
        let challenge = start["options"]["publicKey"]["challenge"]
            .as_str()
            .ok_or_else(|| anyhow!("no challenge in {start}"))?
            .to_owned();
        let cdj = client_data("webauthn.create", &challenge, &self.origin, None);
        let cdh: [u8; 32] = Sha256::digest(&cdj).into();
        let ao = self
            .key
            .make_credential(&self.rp_id, &cdh, VIRTUAL_KEY_AAGUID)
            .map_err(|e| anyhow!("make_credential: {e}"))?;
        let id = B64.encode(self.key.credential_id());
        let cred = json!({
            "id": id, "rawId": id, "type": "public-key", "extensions": {},
            "response": {
                "attestationObject": B64.encode(&ao),
                "clientDataJSON": B64.encode(&cdj),
                "transports": ["usb"]
            }
        });
        self.post(
            base,
            "/v1/enroll/finish",
            &json!({"ceremony_id": start["ceremony_id"], "credential": cred, "name": "virtual key"}),
        )
        .await?
        .ok()
        .context("enroll finish")
    }

    /// `POST /v1/login/start` on `base`: the challenge response.
    pub async fn login_start(&self, base: &str) -> Result<Reply> {
        self.post(base, "/v1/login/start", &json!({"user": self.name}))
            .await
    }

    /// The `LoginFinishRequest` answering a login start's `challenge` and `action_hash`.
    pub fn login_answer(&mut self, start: &Value) -> Result<Value> {
        let (challenge, hash) = challenge_of(start)?;
        let cred = self.assertion(&challenge, &hash)?;
        Ok(
            json!({"challenge": challenge, "credential": cred, "device_public_key": self.device_public()}),
        )
    }

    /// `POST /v1/login/finish` on `base`; on 200 the tokens are kept.
    pub async fn login_finish(&mut self, base: &str, answer: &Value) -> Result<Reply> {
        let reply = self.post(base, "/v1/login/finish", answer).await?;
        if reply.status == 200 {
            self.take_tokens(&reply.body);
        }
        Ok(reply)
    }

    /// Start and finish a login on `base`.
    pub async fn login(&mut self, base: &str) -> Result<()> {
        let start = self.login_start(base).await?.ok().context("login start")?;
        let answer = self.login_answer(&start)?;
        self.login_finish(base, &answer)
            .await?
            .ok()
            .context("login finish")?;
        Ok(())
    }

    fn take_tokens(&mut self, v: &Value) {
        self.access = v["access_token"].as_str().map(str::to_owned);
        self.refresh = v["refresh_token"].as_str().map(str::to_owned);
    }

    /// An authenticated request: bearer `token` and a fresh device proof for exactly it.
    pub async fn call_with(
        &self,
        base: &str,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply> {
        let bytes = body.map(serde_json::to_vec).transpose()?;
        let proof = self.proof(method, path, bytes.as_deref().unwrap_or(&[]), token)?;
        let headers = [
            ("authorization".to_owned(), format!("Bearer {token}")),
            (device_proof::HEADER.to_owned(), proof),
        ];
        self.send(base, method, path, bytes.as_deref(), &headers)
            .await
    }

    /// An authenticated GET whose answer is read as it comes (the server-sent events of
    /// `/v1/events`), with the current access token.
    pub async fn stream(&self, base: &str, path: &str) -> Result<reqwest::Response> {
        let token = self.access.clone().unwrap_or_default();
        let proof = self.proof("GET", path, &[], &token)?;
        self.http
            .get(format!("{base}{path}"))
            .header("authorization", format!("Bearer {token}"))
            .header(device_proof::HEADER, proof)
            .send()
            .await
            .with_context(|| format!("{base}{path}"))
    }

    /// [`VirtualUser::call_with`] the current access token.
    pub async fn call(
        &self,
        base: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply> {
        let token = self.access.clone().unwrap_or_default();
        self.call_with(base, &token, method, path, body).await
    }

    /// `POST /v1/token/refresh` with `token` (the device proof covers it); does not keep the
    /// answer's tokens.
    pub async fn refresh_with(&self, base: &str, token: &str) -> Result<Reply> {
        let body = serde_json::to_vec(&json!({"refresh_token": token}))?;
        let proof = self.proof("POST", "/v1/token/refresh", &body, token)?;
        self.send(
            base,
            "POST",
            "/v1/token/refresh",
            Some(&body),
            &[(device_proof::HEADER.to_owned(), proof)],
        )
        .await
    }

    /// `POST /v1/stepup/start` for `action` on `base`: its `ChallengeResponse`.
    pub async fn stepup_start(&self, base: &str, action: &Action) -> Result<Value> {
        self.call(
            base,
            "POST",
            "/v1/stepup/start",
            Some(&json!({"action": action})),
        )
        .await?
        .ok()
        .context("step-up start")
    }

    /// The `StepUpFinishRequest` answering a step-up start for `action`.
    pub fn stepup_answer(&mut self, start: &Value, action: &Action) -> Result<Value> {
        let (challenge, hash) = challenge_of(start)?;
        let cred = self.assertion(&challenge, &hash)?;
        Ok(json!({"challenge": challenge, "action": action, "credential": cred}))
    }

    /// Step-up for `action` and `POST path {"stepup": …}`, all on `base`.
    pub async fn signed(&mut self, base: &str, path: &str, action: &Action) -> Result<Reply> {
        let start = self.stepup_start(base, action).await?;
        let answer = self.stepup_answer(&start, action)?;
        self.call(base, "POST", path, Some(&json!({ "stepup": answer })))
            .await
    }

    /// A WebAuthn assertion (PublicKeyCredential JSON) over `challenge` and paw's action hash.
    fn assertion(&mut self, challenge: &str, action_hash: &str) -> Result<Value> {
        let cdj = client_data("webauthn.get", challenge, &self.origin, Some(action_hash));
        let cdh: [u8; 32] = Sha256::digest(&cdj).into();
        let a = self
            .key
            .get_assertion(&self.rp_id, &cdh)
            .map_err(|e| anyhow!("get_assertion: {e}"))?;
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

    fn proof(&self, method: &str, path: &str, body: &[u8], token: &str) -> Result<String> {
        let mut nonce = [0u8; 16];
        getrandom::getrandom(&mut nonce).map_err(|e| anyhow!("no randomness: {e}"))?;
        let time_ms = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis(),
        )?;
        let msg = device_proof::message(method, path, body, time_ms, &nonce, token);
        Ok(ProofHeader {
            time_ms,
            nonce,
            signature: self.device.sign(&msg).to_bytes(),
        }
        .encode())
    }
}

fn challenge_of(start: &Value) -> Result<(String, String)> {
    match (start["challenge"].as_str(), start["action_hash"].as_str()) {
        (Some(c), Some(h)) => Ok((c.to_owned(), h.to_owned())),
        _ => bail!("not a challenge response: {start}"),
    }
}

/// CollectedClientData JSON with paw's `pawActionHash` extension field.
fn client_data(typ: &str, challenge: &str, origin: &str, action_hash: Option<&str>) -> Vec<u8> {
    let mut m = serde_json::Map::new();
    m.insert("type".into(), json!(typ));
    m.insert("challenge".into(), json!(challenge));
    m.insert("origin".into(), json!(origin));
    m.insert("crossOrigin".into(), json!(false));
    if let Some(h) = action_hash {
        m.insert("pawActionHash".into(), json!(h));
    }
    Value::Object(m).to_string().into_bytes()
}
