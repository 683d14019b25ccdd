//! In-process broker for the identity tests: the router driven with `oneshot`, a clock the test
//! moves, and a workstation client built from the INSECURE virtual key plus an ed25519 device
//! key, producing exactly the JSON a real client posts.

#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use paw_broker::base::clock::Clock;
use paw_broker::config::Config;
use paw_broker::store::Db;
use paw_fido::attestation::{attestation_ca_pem, VIRTUAL_KEY_AAGUID};
use paw_fido::{FailureKnobs, VirtualKey};
use paw_proto::action::Action;
use paw_proto::device_proof::{self, ProofHeader};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

pub const RP_ID: &str = "localhost";
pub const ORIGIN: &str = "https://localhost:8443";
pub const T0: i64 = 1_800_000_000_000;

pub struct TestClock(pub AtomicI64);

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub struct Broker {
    pub app: Router,
    pub db: Db,
    /// The state the router holds (policy, notifier, clock), for the grant clock and reloads.
    pub state: paw_broker::http::AppState,
    pub clock: Arc<TestClock>,
    pub config: Config,
    pub dir: tempfile::TempDir,
    /// The SSH front door and session watcher tasks, when `[sessions]` is configured.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub fn aaguid_string(b: [u8; 16]) -> String {
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn b64(b: &[u8]) -> String {
    B64.encode(b)
}

/// The elevation policy every test broker runs with: ada and eve may request; bob, carol, dan
/// and ada's second account `ada-admin` approve database access (two of them needed); web root
/// is automatic with two sessions per grant; admin-role users review break-glass.
pub const POLICY: &str = r#"
[groups]
dba = ["ada", "eve", "ada-admin"]
dba-leads = ["bob", "carol", "dan", "ada-admin"]
sre = ["ada", "eve"]

[people]
ada-admin = "ada"

[[entitlement]]
id = "prod-db"
description = "Administer the production databases"
target_kind = "postgres"
target = "db-*"
role = "dba"
max_duration_secs = 7200
requesters = ["dba"]
approval = { required = 2, groups = ["dba-leads"] }
ticket = "INC-*"
break_glass = { max_duration_secs = 900 }

[[entitlement]]
id = "web-root"
description = "Root on the web servers"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
max_sessions = 2
"#;

impl Broker {
    pub async fn start() -> Self {
        Self::start_with("").await
    }

    /// `extra`: TOML appended to the config (for example an `[auth]` table).
    pub async fn start_with(extra: &str) -> Self {
        Self::start_on(None, extra).await
    }

    /// [`Broker::start_with`] on the database at `url` (SQLite in a temporary file if `None`).
    pub async fn start_on(url: Option<String>, extra: &str) -> Self {
        Self::start_raw(url, &format!("{extra}\n{POLICY}")).await
    }

    /// A broker whose config ends with `extra` and nothing else (no [`POLICY`]).
    pub async fn start_raw(url: Option<String>, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("vk-ca.pem");
        std::fs::write(&ca, attestation_ca_pem().unwrap()).unwrap();
        let text = format!(
            "listen = \"127.0.0.1:0\"\n\
             database_url = \"{db}\"\n\
             [tls]\ncert = \"unused.pem\"\nkey = \"unused.key\"\n\
             [webauthn]\nrp_id = \"{RP_ID}\"\norigin = \"{ORIGIN}\"\n\
             attestation_ca = [\"{ca}\"]\nallowed_aaguids = [\"{aaguid}\"]\n{extra}",
            db = url.unwrap_or_else(|| format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("t.db").display()
            )),
            ca = ca.display(),
            aaguid = aaguid_string(VIRTUAL_KEY_AAGUID),
        );
        let config = Config::from_toml(&text, dir.path(), Vec::new()).unwrap();
        let clock = Arc::new(TestClock(AtomicI64::new(T0)));
        let built = paw_broker::server::app(&config, clock.clone())
            .await
            .unwrap();
        let (app, db, state, tasks) = (built.router, built.db, built.state, built.tasks);
        Self {
            app,
            db,
            state,
            clock,
            config,
            dir,
            tasks,
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn advance(&self, ms: i64) {
        self.clock.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sends raw bytes; returns the status and the JSON body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        headers: &[(String, String)],
    ) -> (StatusCode, Value) {
        let res = self.respond(method, path, body, headers).await;
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(
            !status.is_server_error(),
            "5xx for {method} {path}: {value}"
        );
        (status, value)
    }

    /// The raw response, body unread (for streams).
    pub async fn respond(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        headers: &[(String, String)],
    ) -> axum::response::Response {
        let mut req = Request::builder().method(method).uri(path);
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        self.app
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send("POST", path, serde_json::to_vec(body).unwrap(), &[])
            .await
    }

    pub async fn invite(&self, user: &str, roles: &[&str]) -> String {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        paw_broker::identity::create_invite(&self.db, self.now(), user, &roles)
            .await
            .unwrap()
            .0
    }

    /// Invite, register the virtual key and the device key, log in.
    pub async fn enrolled(&self, user: &str) -> Client {
        self.enrolled_as(user, &["admin"]).await
    }

    /// [`Broker::enrolled`] with these roles.
    pub async fn enrolled_as(&self, user: &str, roles: &[&str]) -> Client {
        let mut c = Client::new(user);
        let code = self.invite(user, roles).await;
        c.enroll(self, &code).await.unwrap();
        c.login(self).await.unwrap();
        c
    }

    pub async fn user_locked(&self, user: &str) -> bool {
        paw_broker::identity::user_by_name(&self.db, user)
            .await
            .unwrap()
            .unwrap()
            .locked
    }
}

/// Ways a test client bends what it sends.
#[derive(Debug, Clone, Default)]
pub struct Tweak {
    pub origin: Option<String>,
    /// `Some(None)`: omit `type`; `Some(Some(t))`: use `t`.
    pub typ: Option<Option<String>>,
    /// `Some(None)`: omit pawActionHash.
    pub action_hash: Option<Option<String>>,
    pub user_handle: Option<String>,
    pub credential_id: Option<Vec<u8>>,
    pub client_data_raw: Option<Vec<u8>>,
    pub auth_data: Option<Vec<u8>>,
    pub signature: Option<Vec<u8>>,
}

pub struct Client {
    pub user: String,
    pub key: VirtualKey,
    pub device: SigningKey,
    pub access: Option<String>,
    pub refresh: Option<String>,
    pub aaguid: [u8; 16],
}

/// A client's session without its security key: enough for authenticated calls.
#[derive(Clone)]
pub struct Caller {
    device: SigningKey,
    access: Option<String>,
}

impl Caller {
    /// Bearer token and a fresh device proof for this exact request.
    pub fn headers(
        &self,
        b: &Broker,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Vec<(String, String)> {
        let token = self.access.clone().unwrap_or_default();
        let proof = proof(
            &self.device,
            method,
            path,
            body,
            &token,
            b.now(),
            rand_nonce(),
        );
        vec![
            ("authorization".into(), format!("Bearer {token}")),
            (device_proof::HEADER.into(), proof),
        ]
    }

    /// An authenticated request with a fresh device proof.
    pub async fn call(
        &self,
        b: &Broker,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let bytes = body
            .map(|v| serde_json::to_vec(v).unwrap())
            .unwrap_or_default();
        let headers = self.headers(b, method, path, &bytes);
        b.send(method, path, bytes, &headers).await
    }
}

pub fn client_data(
    typ: Option<&str>,
    challenge: &str,
    origin: &str,
    action_hash: Option<&str>,
) -> Vec<u8> {
    let mut m = serde_json::Map::new();
    if let Some(t) = typ {
        m.insert("type".into(), json!(t));
    }
    m.insert("challenge".into(), json!(challenge));
    m.insert("origin".into(), json!(origin));
    m.insert("crossOrigin".into(), json!(false));
    if let Some(h) = action_hash {
        m.insert("pawActionHash".into(), json!(h));
    }
    serde_json::to_vec(&Value::Object(m)).unwrap()
}

impl Client {
    pub fn new(user: &str) -> Self {
        let seed: [u8; 32] = Sha256::digest(format!("device-{user}-{}", rand_u64())).into();
        Self {
            user: user.to_owned(),
            key: VirtualKey::generate().unwrap(),
            device: SigningKey::from_bytes(&seed),
            access: None,
            refresh: None,
            aaguid: VIRTUAL_KEY_AAGUID,
        }
    }

    pub fn device_public(&self) -> String {
        b64(self.device.verifying_key().as_bytes())
    }

    pub fn knobs(&mut self, knobs: FailureKnobs) {
        self.key.set_knobs(knobs);
    }

    /// RegisterPublicKeyCredential JSON for creation `options`.
    pub fn register_json(&mut self, options: &Value, t: &Tweak) -> Value {
        let challenge = options["publicKey"]["challenge"].as_str().unwrap();
        let typ = match &t.typ {
            Some(x) => x.clone(),
            None => Some("webauthn.create".to_owned()),
        };
        let cdj = t.client_data_raw.clone().unwrap_or_else(|| {
            client_data(
                typ.as_deref(),
                challenge,
                t.origin.as_deref().unwrap_or(ORIGIN),
                None,
            )
        });
        let cdh: [u8; 32] = Sha256::digest(&cdj).into();
        let ao = self.key.make_credential(RP_ID, &cdh, self.aaguid).unwrap();
        let id = b64(self.key.credential_id());
        json!({
            "id": id, "rawId": id, "type": "public-key", "extensions": {},
            "response": {
                "attestationObject": b64(&ao),
                "clientDataJSON": b64(&cdj),
                "transports": ["usb"]
            }
        })
    }

    /// PublicKeyCredential JSON answering `challenge` for `action_hash`.
    pub fn assert_json(&mut self, challenge: &str, action_hash: &str, t: &Tweak) -> Value {
        let typ = match &t.typ {
            Some(x) => x.clone(),
            None => Some("webauthn.get".to_owned()),
        };
        let hash = match &t.action_hash {
            Some(h) => h.clone(),
            None => Some(action_hash.to_owned()),
        };
        let cdj = t.client_data_raw.clone().unwrap_or_else(|| {
            client_data(
                typ.as_deref(),
                challenge,
                t.origin.as_deref().unwrap_or(ORIGIN),
                hash.as_deref(),
            )
        });
        let cdh: [u8; 32] = Sha256::digest(&cdj).into();
        let a = self.key.get_assertion(RP_ID, &cdh).unwrap();
        let id = b64(t.credential_id.as_deref().unwrap_or(&a.credential_id));
        json!({
            "id": id, "rawId": id, "type": "public-key", "extensions": {},
            "response": {
                "authenticatorData": b64(t.auth_data.as_deref().unwrap_or(&a.authenticator_data)),
                "clientDataJSON": b64(&cdj),
                "signature": b64(t.signature.as_deref().unwrap_or(&a.signature)),
                "userHandle": t.user_handle.clone().map_or(Value::Null, Value::String),
            }
        })
    }

    pub async fn enroll(&mut self, b: &Broker, code: &str) -> Result<Value, (StatusCode, Value)> {
        self.enroll_with(b, code, &Tweak::default()).await
    }

    pub async fn enroll_with(
        &mut self,
        b: &Broker,
        code: &str,
        t: &Tweak,
    ) -> Result<Value, (StatusCode, Value)> {
        let (s, start) = b
            .post(
                "/v1/enroll/start",
                &json!({"code": code, "device_public_key": self.device_public()}),
            )
            .await;
        if s != StatusCode::OK {
            return Err((s, start));
        }
        let cred = self.register_json(&start["options"], t);
        let (s, fin) = b
            .post(
                "/v1/enroll/finish",
                &json!({"ceremony_id": start["ceremony_id"], "credential": cred, "name": "virtual key"}),
            )
            .await;
        if s == StatusCode::OK {
            Ok(fin)
        } else {
            Err((s, fin))
        }
    }

    pub async fn login_start(&self, b: &Broker) -> (StatusCode, Value) {
        b.post("/v1/login/start", &json!({"user": self.user})).await
    }

    /// Login start + assertion (not sent).
    pub async fn login_answer(&mut self, b: &Broker, t: &Tweak) -> Value {
        let (s, start) = self.login_start(b).await;
        assert_eq!(s, StatusCode::OK, "{start}");
        let ch = start["challenge"].as_str().unwrap().to_owned();
        let cred = self.assert_json(&ch, start["action_hash"].as_str().unwrap(), t);
        json!({"challenge": ch, "credential": cred, "device_public_key": self.device_public()})
    }

    pub async fn login(&mut self, b: &Broker) -> Result<Value, (StatusCode, Value)> {
        let body = self.login_answer(b, &Tweak::default()).await;
        let (s, v) = b.post("/v1/login/finish", &body).await;
        if s != StatusCode::OK {
            return Err((s, v));
        }
        self.access = v["access_token"].as_str().map(str::to_owned);
        self.refresh = v["refresh_token"].as_str().map(str::to_owned);
        Ok(v)
    }

    /// An authenticated request with a fresh device proof.
    pub async fn call(
        &self,
        b: &Broker,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        self.caller().call(b, method, path, body).await
    }

    /// What authenticated calls need (device key and access token), to move into a task.
    pub fn caller(&self) -> Caller {
        Caller {
            device: self.device.clone(),
            access: self.access.clone(),
        }
    }

    pub async fn refresh(&mut self, b: &Broker) -> (StatusCode, Value) {
        let token = self.refresh.clone().unwrap_or_default();
        let (s, v) = self.refresh_with(b, &token).await;
        if s == StatusCode::OK {
            self.access = v["access_token"].as_str().map(str::to_owned);
            self.refresh = v["refresh_token"].as_str().map(str::to_owned);
        }
        (s, v)
    }

    pub async fn refresh_with(&self, b: &Broker, token: &str) -> (StatusCode, Value) {
        let body = serde_json::to_vec(&json!({"refresh_token": token})).unwrap();
        let proof = proof(
            &self.device,
            "POST",
            "/v1/token/refresh",
            &body,
            token,
            b.now(),
            rand_nonce(),
        );
        b.send(
            "POST",
            "/v1/token/refresh",
            body,
            &[(device_proof::HEADER.into(), proof)],
        )
        .await
    }

    /// Step-up start for `action`: (challenge, action_hash).
    pub async fn stepup_start(&self, b: &Broker, action: &Action) -> (String, String) {
        let (s, v) = self
            .call(
                b,
                "POST",
                "/v1/stepup/start",
                Some(&json!({"action": action})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        (
            v["challenge"].as_str().unwrap().to_owned(),
            v["action_hash"].as_str().unwrap().to_owned(),
        )
    }

    /// A complete step-up answer (`StepUpFinishRequest` JSON) for `action`.
    pub async fn stepup(&mut self, b: &Broker, action: &Action, t: &Tweak) -> Value {
        let (ch, hash) = self.stepup_start(b, action).await;
        let cred = self.assert_json(&ch, &hash, t);
        json!({"challenge": ch, "action": action, "credential": cred})
    }

    pub async fn stepup_finish(&self, b: &Broker, body: &Value) -> (StatusCode, Value) {
        self.call(b, "POST", "/v1/stepup/finish", Some(body)).await
    }
}

pub fn proof(
    signer: &SigningKey,
    method: &str,
    path: &str,
    body: &[u8],
    token: &str,
    time_ms: i64,
    nonce: [u8; 16],
) -> String {
    let msg = device_proof::message(method, path, body, time_ms, &nonce, token);
    ProofHeader {
        time_ms,
        nonce,
        signature: signer.sign(&msg).to_bytes(),
    }
    .encode()
}

pub fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom(&mut b);
    u64::from_le_bytes(b)
}

pub fn rand_nonce() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom(&mut b);
    b
}

fn getrandom(b: &mut [u8]) {
    use std::sync::atomic::AtomicU64;
    static CTR: AtomicU64 = AtomicU64::new(0);
    let n = CTR.fetch_add(1, Ordering::SeqCst);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = Sha256::digest(format!("{n}-{t}-{:p}", b));
    let len = b.len();
    b.copy_from_slice(&d[..len]);
}

pub fn session_action(grant: &str) -> Action {
    Action::Session {
        grant_id: grant.into(),
        target: "db-1".into(),
    }
}

pub fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}
