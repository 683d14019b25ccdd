//! [`TestIssuer`]: a real OIDC issuer for one test, on a free loopback port. It serves a
//! discovery document and its JWKS over HTTP, signs workload tokens the way GitHub Actions,
//! GitLab CI or Kubernetes would, rotates and retires keys, and makes the forgeries a broker
//! must refuse (`alg: none`, HS256 keyed with the public key, odd `kid`s and algorithms).
//!
//! Keys are made per issuer: P-256 and Ed25519 in process; RSA and P-384 by the `openssl`
//! command (a debug build of a Rust RSA key generator takes seconds per key, openssl a tenth
//! of one). Signing is `jsonwebtoken`'s, as on the broker side, except for the unsigned token,
//! which has no signature to make.
//!
//! The methods without a `Result` cannot fail once the issuer started (its keys signed a probe
//! when they were made); should one fail anyway, it says so on stderr and hands back a value
//! the broker refuses, so the test fails rather than the harness panicking.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{anyhow, bail, Context, Result};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, EncodingKey, Header};
use serde_json::{json, Map, Value};

/// How long a minted token is valid unless the claims say otherwise.
pub const TOKEN_LIFETIME_SECS: i64 = 300;

/// The algorithms [`TestIssuer::start`] can sign with.
pub const ALGORITHMS: &[&str] = &[
    "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
];

pub struct TestIssuer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Dropped (or sent on) when the issuer is dropped: the server stops.
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

struct Shared {
    issuer: String,
    alg: Algorithm,
    alg_name: String,
    ring: Mutex<KeyRing>,
    jwks_requests: AtomicUsize,
}

struct KeyRing {
    /// Published keys, oldest first; the last one signs.
    keys: Vec<TestKey>,
    /// Random per issuer, so two issuers in one test never share a `kid` by accident.
    kid_prefix: String,
    made: usize,
}

struct TestKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
    /// SubjectPublicKeyInfo PEM: what an attacker would feed HS256 as its secret.
    public_pem: String,
}

impl TestIssuer {
    /// Starts an issuer signing with `alg` (see [`ALGORITHMS`]) on 127.0.0.1.
    pub async fn start(alg: &str) -> Result<Self> {
        if !ALGORITHMS.contains(&alg) {
            bail!(
                "TestIssuer signs with one of {}, not {alg}",
                ALGORITHMS.join(", ")
            );
        }
        let algorithm = Algorithm::from_str(alg).map_err(|e| anyhow!("algorithm {alg}: {e}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the test issuer")?;
        let addr = listener.local_addr()?;
        let mut prefix = [0u8; 4];
        getrandom::getrandom(&mut prefix).map_err(|e| anyhow!("no randomness: {e}"))?;
        let mut ring = KeyRing {
            keys: Vec::new(),
            kid_prefix: hex::encode(prefix),
            made: 0,
        };
        let first = ring.next_key(algorithm)?;
        ring.keys.push(first);
        let shared = Arc::new(Shared {
            issuer: format!("http://{addr}"),
            alg: algorithm,
            alg_name: alg.to_owned(),
            ring: Mutex::new(ring),
            jwks_requests: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(shared.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let stopped = async {
                let _ = rx.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
            {
                eprintln!("test issuer on {addr}: {e}");
            }
        });
        Ok(Self {
            addr,
            shared,
            shutdown: Some(tx),
        })
    }

    /// The `iss` of its tokens: `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    pub fn jwks_url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    /// The algorithm it signs with, as pawd.toml names it.
    pub fn algorithm(&self) -> &str {
        &self.shared.alg_name
    }

    /// The `kid` of the key that signs now.
    pub fn current_kid(&self) -> String {
        self.shared
            .ring()
            .keys
            .last()
            .map(|k| k.kid.clone())
            .unwrap_or_default()
    }

    /// A token signed with the current key. `iss`, `iat`, `nbf`, `exp` (now + 300 s) and `jti`
    /// are filled in unless `claims` has them; a claim given as `null` is left out.
    pub fn mint(&self, claims: Value) -> String {
        let mut header = Header::new(self.shared.alg);
        header.kid = Some(self.current_kid());
        self.mint_with(header, claims)
    }

    /// A token under `header`, signed with the current key. A header naming another algorithm
    /// of the issuer's family or another family is still signed by the current key with the
    /// issuer's own algorithm (a mislabelled token); an HMAC algorithm is keyed with the public
    /// key, as in [`TestIssuer::hs256_with_public_key`].
    pub fn mint_with(&self, header: Header, claims: Value) -> String {
        let claims = self.fill(claims);
        let ring = self.shared.ring();
        let Some(key) = ring.keys.last() else {
            return failed("mint_with", "the issuer has no key");
        };
        let token = if header.alg == self.shared.alg {
            jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(anyhow::Error::from)
        } else if header.alg.family() == AlgorithmFamily::Hmac {
            let secret = EncodingKey::from_secret(key.public_pem.as_bytes());
            jsonwebtoken::encode(&header, &claims, &secret).map_err(anyhow::Error::from)
        } else {
            mislabelled(&header, &claims, &key.encoding, self.shared.alg)
        };
        token.unwrap_or_else(|e| failed("mint_with", &e.to_string()))
    }

    /// A new key signs from now on; the old ones stay in the JWKS (an issuer's rotation).
    pub fn rotate(&self) {
        let mut ring = self.shared.ring();
        match ring.next_key(self.shared.alg) {
            Ok(key) => ring.keys.push(key),
            // The old key keeps signing, so a test expecting the new one fails.
            Err(e) => eprintln!("TestIssuer::rotate failed, the old key stays: {e:#}"),
        }
    }

    /// The JWKS keeps only the current key (the issuer retired the others).
    pub fn drop_old_keys(&self) {
        let mut ring = self.shared.ring();
        let keep = ring.keys.len().saturating_sub(1);
        ring.keys.drain(..keep);
    }

    /// `alg: none`, no signature, naming the current key.
    pub fn unsigned(&self, claims: Value) -> String {
        let header = json!({"alg": "none", "typ": "JWT", "kid": self.current_kid()});
        let claims = self.fill(claims);
        match (serde_json::to_vec(&header), serde_json::to_vec(&claims)) {
            (Ok(h), Ok(c)) => format!("{}.{}.", b64url(&h), b64url(&c)),
            _ => failed("unsigned", "claims do not serialise"),
        }
    }

    /// HS256 with the current public key's PEM as the HMAC secret, naming the current key: the
    /// classic algorithm-confusion forgery.
    pub fn hs256_with_public_key(&self, claims: Value) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.current_kid());
        self.mint_with(header, claims)
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_requests(&self) -> usize {
        self.shared.jwks_requests.load(Ordering::SeqCst)
    }

    fn fill(&self, claims: Value) -> Value {
        // A non-object is signed as given: a malformed payload is what such a test wants.
        let Value::Object(mut map) = claims else {
            return claims;
        };
        let now = now_secs();
        let mut jti = [0u8; 16];
        let jti = match getrandom::getrandom(&mut jti) {
            Ok(()) => hex::encode(jti),
            Err(_) => format!("jti-{now}-{}", self.jwks_requests()),
        };
        let defaults = [
            ("iss", json!(self.issuer())),
            ("iat", json!(now)),
            ("nbf", json!(now)),
            ("exp", json!(now + TOKEN_LIFETIME_SECS)),
            ("jti", json!(jti)),
        ];
        for (k, v) in defaults {
            map.entry(k).or_insert(v);
        }
        map.retain(|_, v| !v.is_null());
        Value::Object(map)
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Shared {
    /// The ring only holds keys; a test that panicked while holding it left it consistent.
    fn ring(&self) -> MutexGuard<'_, KeyRing> {
        self.ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn discovery(State(s): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({
        "issuer": s.issuer,
        "jwks_uri": format!("{}/jwks", s.issuer),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": [s.alg_name],
        "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository"],
        "scopes_supported": ["openid"],
    }))
}

async fn jwks(State(s): State<Arc<Shared>>) -> Json<JwkSet> {
    s.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let keys = s.ring().keys.iter().map(|k| k.jwk.clone()).collect();
    Json(JwkSet { keys })
}

impl KeyRing {
    fn next_key(&mut self, alg: Algorithm) -> Result<TestKey> {
        self.made += 1;
        let kid = format!("{}-{}", self.kid_prefix, self.made);
        let (encoding, public_pem) = match alg {
            Algorithm::ES256 => p256_key()?,
            Algorithm::EdDSA => ed25519_key()?,
            Algorithm::ES384 => openssl_key(
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-384",
                ],
                EncodingKey::from_ec_pem,
            )?,
            a if a.family() == AlgorithmFamily::Rsa => openssl_key(
                &["genrsa", "-traditional", "2048"],
                EncodingKey::from_rsa_pem,
            )?,
            other => bail!("TestIssuer cannot make a key for {other:?}"),
        };
        // Proves the key signs, so that minting cannot fail later.
        jsonwebtoken::encode(&Header::new(alg), &json!({}), &encoding)
            .context("signing a probe with the new key")?;
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).context("the new key as a JWK")?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(TestKey {
            kid,
            encoding,
            jwk,
            public_pem,
        })
    }
}

fn p256_key() -> Result<(EncodingKey, String)> {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let mut secret = None;
    // A random 32-byte string is a valid scalar but with probability ~2^-32 per try.
    for _ in 0..8 {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|e| anyhow!("no randomness: {e}"))?;
        if let Ok(s) = p256::SecretKey::from_slice(&bytes) {
            secret = Some(s);
            break;
        }
    }
    let secret = secret.ok_or_else(|| anyhow!("no valid P-256 scalar in 8 tries"))?;
    let der = secret
        .to_pkcs8_der()
        .map_err(|e| anyhow!("P-256 key as PKCS#8: {e}"))?;
    let public_pem = secret
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| anyhow!("P-256 public key as PEM: {e}"))?;
    Ok((EncodingKey::from_ec_der(der.as_bytes()), public_pem))
}

fn ed25519_key() -> Result<(EncodingKey, String)> {
    // RFC 8410: the fixed DER around a 32-byte Ed25519 seed (PKCS#8) and public key (SPKI).
    const PKCS8_PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    const SPKI_PREFIX: [u8; 12] = [
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| anyhow!("no randomness: {e}"))?;
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let der = [PKCS8_PREFIX.as_slice(), seed.as_slice()].concat();
    let spki = [SPKI_PREFIX.as_slice(), public.as_slice()].concat();
    Ok((EncodingKey::from_ed_der(&der), pem("PUBLIC KEY", &spki)))
}

/// Runs `openssl ARGS` for a private key in PEM, then `openssl pkey -pubout` for its public half.
fn openssl_key(
    args: &[&str],
    parse: fn(&[u8]) -> jsonwebtoken::errors::Result<EncodingKey>,
) -> Result<(EncodingKey, String)> {
    let private = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running openssl (install the Debian `openssl` package)")?;
    if !private.status.success() {
        bail!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&private.stderr)
        );
    }
    let mut child = Command::new("openssl")
        .args(["pkey", "-pubout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running openssl pkey")?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin.write_all(&private.stdout)?;
    }
    let public = child.wait_with_output()?;
    if !public.status.success() {
        bail!(
            "openssl pkey -pubout: {}",
            String::from_utf8_lossy(&public.stderr)
        );
    }
    let key = parse(&private.stdout).context("reading openssl's private key")?;
    Ok((key, String::from_utf8(public.stdout)?))
}

/// Signs `header.claims` with `key` under `alg`, whatever `header.alg` says.
fn mislabelled(
    header: &Header,
    claims: &Value,
    key: &EncodingKey,
    alg: Algorithm,
) -> Result<String> {
    let message = format!(
        "{}.{}",
        b64url(&serde_json::to_vec(header)?),
        b64url(&serde_json::to_vec(claims)?)
    );
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg)?;
    Ok(format!("{message}.{signature}"))
}

/// Not a JWT: the broker refuses it as malformed, and the test's output shows why.
fn failed(what: &str, why: &str) -> String {
    eprintln!("TestIssuer::{what} failed: {why}");
    format!("{what}-failed")
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// GitHub Actions-like claims for a workflow run of `repository` ("owner/name") on `git_ref`
/// ("refs/heads/main", "refs/tags/v1", …), meant for `audience`.
pub fn github_claims(audience: &str, repository: &str, git_ref: &str) -> Value {
    let owner = repository.split('/').next().unwrap_or(repository);
    let ref_type = if git_ref.starts_with("refs/tags/") {
        "tag"
    } else {
        "branch"
    };
    let mut claims = Map::new();
    for (k, v) in [
        ("aud", json!(audience)),
        ("sub", json!(format!("repo:{repository}:ref:{git_ref}"))),
        ("repository", json!(repository)),
        ("repository_owner", json!(owner)),
        ("repository_id", json!("100001")),
        ("repository_owner_id", json!("200002")),
        ("repository_visibility", json!("private")),
        ("ref", json!(git_ref)),
        ("ref_type", json!(ref_type)),
        ("sha", json!("0123456789abcdef0123456789abcdef01234567")),
        ("workflow", json!("deploy")),
        (
            "job_workflow_ref",
            json!(format!(
                "{repository}/.github/workflows/deploy.yml@{git_ref}"
            )),
        ),
        ("event_name", json!("push")),
        ("actor", json!("octocat")),
        ("actor_id", json!("300003")),
        ("run_id", json!("4000000004")),
        ("run_number", json!("7")),
        ("run_attempt", json!("1")),
        ("runner_environment", json!("github-hosted")),
    ] {
        claims.insert(k.to_owned(), v);
    }
    Value::Object(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn http() -> reqwest::Client {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .build()
            .unwrap()
    }

    async fn verify(http: &reqwest::Client, issuer: &TestIssuer, token: &str) -> Result<Value> {
        let set: JwkSet = http
            .get(issuer.jwks_url())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let header = jsonwebtoken::decode_header(token)?;
        let kid = header.kid.ok_or_else(|| anyhow!("no kid"))?;
        let jwk = set
            .find(&kid)
            .ok_or_else(|| anyhow!("kid {kid} not published"))?;
        let alg = Algorithm::from_str(issuer.algorithm())?;
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[issuer.issuer()]);
        validation.set_audience(&["paw"]);
        let data = jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &validation)?;
        Ok(data.claims)
    }

    /// The issuer serves discovery and a JWKS that verifies what it mints, for each family;
    /// rotation keeps the old key published until it is dropped; forgeries do not verify.
    #[tokio::test]
    async fn issuer_serves_a_jwks_that_verifies_its_tokens() {
        let http = http();
        for alg in ["ES256", "RS256", "EdDSA"] {
            let issuer = TestIssuer::start(alg).await.unwrap();
            let discovery: Value = http
                .get(format!(
                    "{}/.well-known/openid-configuration",
                    issuer.issuer()
                ))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(discovery["issuer"], json!(issuer.issuer()));
            assert_eq!(discovery["jwks_uri"], json!(issuer.jwks_url()));

            let claims = github_claims("paw", "acme/web", "refs/heads/main");
            let old = issuer.mint(claims.clone());
            let got = verify(&http, &issuer, &old).await.unwrap();
            assert_eq!(got["sub"], json!("repo:acme/web:ref:refs/heads/main"));
            assert_eq!(got["iss"], json!(issuer.issuer()));
            assert!(got["jti"].as_str().is_some_and(|j| j.len() == 32), "{alg}");
            assert_eq!(
                got["exp"].as_i64().unwrap() - got["iat"].as_i64().unwrap(),
                TOKEN_LIFETIME_SECS
            );

            issuer.rotate();
            let new = issuer.mint(claims.clone());
            assert_ne!(
                jsonwebtoken::decode_header(&new).unwrap().kid,
                jsonwebtoken::decode_header(&old).unwrap().kid
            );
            verify(&http, &issuer, &new).await.unwrap();
            verify(&http, &issuer, &old).await.unwrap();
            issuer.drop_old_keys();
            verify(&http, &issuer, &new).await.unwrap();
            assert!(verify(&http, &issuer, &old).await.is_err(), "{alg}");

            assert!(verify(&http, &issuer, &issuer.unsigned(claims.clone()))
                .await
                .is_err());
            assert!(verify(
                &http,
                &issuer,
                &issuer.hs256_with_public_key(claims.clone())
            )
            .await
            .is_err());
            let no_exp = issuer.mint(json!({"aud": "paw", "sub": "x", "exp": null}));
            assert!(verify(&http, &issuer, &no_exp).await.is_err(), "{alg}");
            assert_eq!(issuer.jwks_requests(), 8, "{alg}");
        }
    }

    /// Dropping the issuer stops its server.
    #[tokio::test]
    async fn dropping_the_issuer_stops_it() {
        let issuer = TestIssuer::start("ES256").await.unwrap();
        let url = issuer.jwks_url();
        http()
            .get(&url)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
        drop(issuer);
        let mut stopped = false;
        for _ in 0..50 {
            if http().get(&url).send().await.is_err() {
                stopped = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(stopped, "the issuer still answers after being dropped");
    }
}
