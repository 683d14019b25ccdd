//! Workload identity tokens: verifies an OIDC JWT from a CI system or a cluster (GitHub Actions,
//! GitLab CI, Kubernetes service accounts) against the issuers the broker trusts, and returns
//! its claims for the machine login to map to a principal.
//!
//! Rules:
//! - Every signature check and every key parse is the `jsonwebtoken` crate's; nothing here
//!   verifies a signature by hand.
//! - An issuer is trusted only when it is listed. The token's unverified `iss` only picks which
//!   listed issuer to check against; that issuer's pinned algorithm is then the only one
//!   accepted, so `alg: none`, HS256 keyed with the public key, or any other algorithm is
//!   refused before a key is looked up.
//! - The token must name its key (`kid`), and only a key of that issuer's JWKS whose type fits
//!   the pinned algorithm can verify it.
//! - `iss`, `aud`, `sub` and `exp` are required; `exp`, `nbf` and `iat` are checked against the
//!   broker's clock (passed in), with 30 s of leeway for skew.
//! - The JWKS is fetched over https (http only to a loopback host), with a 5 s timeout, no
//!   redirects and a size cap, and cached per issuer. An unknown `kid` refetches it at most once
//!   per issuer per 30 s, and a failed fetch is retried at most once per 30 s, so forged tokens
//!   cannot make the broker hammer an issuer. A stale key set is never used: when it cannot be
//!   refreshed, the issuer's tokens are refused (fail closed).
//! - A refusal says which check failed and never echoes the token.

use std::collections::{HashMap, HashSet};

use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse, RSAKeyParameters};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::identity::error::IdentityError;

#[cfg(test)]
#[path = "oidc_tests.rs"]
mod oidc_tests;

/// Larger tokens are refused before any parsing: real workload tokens are 1–3 KiB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_MS: i64 = 30_000;
/// The least time between two unknown-`kid` refetches (and between two retries after a failed
/// fetch) of one issuer's key set.
pub const REFETCH_INTERVAL_MS: i64 = 30_000;
/// The algorithms an issuer may be pinned to (one place: the config checks against it).
pub use crate::config::machines::ALGORITHMS;
/// Issuers are configuration; their checks live with it.
pub use crate::config::machines::{default_jwks_cache_secs, OidcIssuerConfig};

const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Real key sets are a few KiB; a larger answer is refused rather than buffered.
const MAX_JWKS_BYTES: usize = 256 * 1024;
const MAX_JWKS_KEYS: usize = 100;
/// RSA keys shorter than this are ignored: they are breakable.
const MIN_RSA_BITS: usize = 2048;
pub(crate) fn pinned_algorithm(name: &str) -> Result<Algorithm, String> {
    if !ALGORITHMS.contains(&name) {
        return Err(format!(
            "algorithm: {name:?} is not one of {}",
            ALGORITHMS.join(", ")
        ));
    }
    Algorithm::from_str(name).map_err(|e| format!("algorithm: {name}: {e}"))
}

/// A workload token that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedWorkload {
    /// The configured issuer it was verified against (equal to its `iss`).
    pub issuer: String,
    /// Its `sub`.
    pub subject: String,
    /// All its claims, for the caller's claim rules.
    pub claims: Map<String, Value>,
    /// Its `exp`, in Unix ms.
    pub expires_at_ms: i64,
    /// Its `jti`, when it has one: the caller makes it single use.
    pub jti: Option<String>,
}

/// Verifies workload tokens; cheap to clone, and clones share the key-set caches.
#[derive(Clone)]
pub struct OidcVerifier {
    issuers: Arc<[Issuer]>,
    http: reqwest::Client,
}

struct Issuer {
    config: OidcIssuerConfig,
    algorithm: Algorithm,
    cache: Mutex<JwksCache>,
    /// Held while this issuer's key set is fetched, so that verifications arriving meanwhile
    /// wait for that fetch instead of starting their own.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct JwksCache {
    keys: HashMap<String, DecodingKey>,
    /// Broker time of the last successful fetch.
    fetched_at_ms: Option<i64>,
    /// Broker time of the last refetch caused by an unknown `kid`.
    refetched_at_ms: Option<i64>,
    /// Broker time of the last failed fetch.
    failed_at_ms: Option<i64>,
}

/// What the cache can say about a `kid` without the network.
enum Lookup {
    Found(DecodingKey),
    Fetch,
    Refuse(&'static str),
}

const UNKNOWN_KID: &str = "the token's key id (kid) is not in its issuer's key set";
const JWKS_UNAVAILABLE: &str =
    "the issuer's key set could not be fetched, so its tokens cannot be checked; retry later";

impl JwksCache {
    fn lookup(&self, kid: &str, now_ms: i64, ttl_ms: i64) -> Lookup {
        // A clock that went back makes every timestamp here look unknown, so the cache is
        // refreshed rather than trusted.
        let within =
            |t: Option<i64>, span: i64| t.is_some_and(|t| now_ms >= t && now_ms - t < span);
        if within(self.fetched_at_ms, ttl_ms) {
            if let Some(key) = self.keys.get(kid) {
                return Lookup::Found(key.clone());
            }
            if within(self.refetched_at_ms, REFETCH_INTERVAL_MS) {
                return Lookup::Refuse(UNKNOWN_KID);
            }
            return Lookup::Fetch;
        }
        if within(self.failed_at_ms, REFETCH_INTERVAL_MS) {
            return Lookup::Refuse(JWKS_UNAVAILABLE);
        }
        Lookup::Fetch
    }
}

fn refuse(message: impl Into<String>) -> IdentityError {
    IdentityError::Unauthenticated(message.into())
}

impl OidcVerifier {
    /// Checks each issuer's configuration and builds the HTTP client for their key sets.
    pub fn new(issuers: Vec<OidcIssuerConfig>) -> Result<Self, String> {
        let mut seen = HashSet::new();
        let mut built = Vec::with_capacity(issuers.len());
        for config in issuers {
            config.validate()?;
            if !seen.insert(config.issuer.clone()) {
                return Err(format!("issuer {} is listed twice", config.issuer));
            }
            built.push(Issuer {
                algorithm: pinned_algorithm(&config.algorithm)?,
                config,
                cache: Mutex::new(JwksCache::default()),
                fetching: tokio::sync::Mutex::new(()),
            });
        }
        Ok(Self {
            issuers: built.into(),
            http: jwks_client()?,
        })
    }

    /// No issuer is trusted: every workload token is refused.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Verifies `token` and returns its claims. `now_ms` is the broker's clock (Unix ms):
    /// exp/nbf/iat are checked against it, not the system clock.
    pub async fn verify(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<VerifiedWorkload, IdentityError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(refuse(format!(
                "the token is larger than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        // An unknown `alg` (such as "none") does not parse as a header at all.
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            refuse("the token's header is malformed or names an unsupported algorithm")
        })?;
        // No extension is understood here, and RFC 7515 says a token naming one it does not
        // understand is invalid.
        if header.crit.is_some() {
            return Err(refuse("the token names critical header extensions (crit)"));
        }
        let issuer = self.pick_issuer(token)?;
        // Checked before any key is fetched, so a forged header cannot make the broker fetch.
        if header.alg != issuer.algorithm {
            return Err(refuse(format!(
                "the token's algorithm is not the one pinned for its issuer ({})",
                issuer.config.algorithm
            )));
        }
        let kid = header
            .kid
            .as_deref()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| refuse("the token names no key id (kid)"))?;
        let key = self.key_for(issuer, kid, now_ms).await?;

        let mut validation = Validation::new(issuer.algorithm);
        validation.algorithms = vec![issuer.algorithm];
        validation.set_issuer(&[&issuer.config.issuer]);
        validation.set_audience(&[&issuer.config.audience]);
        validation.validate_aud = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Time is checked below against the broker's clock, not the system clock the crate
        // would read.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| refuse(decode_refusal(e.kind())))?;
        let claims = data.claims;

        let expires_at_ms = time_claim_ms(&claims, "exp")?
            .ok_or_else(|| refuse("the token lacks the required `exp` claim"))?;
        if now_ms >= expires_at_ms.saturating_add(LEEWAY_MS) {
            return Err(refuse("the token has expired"));
        }
        if let Some(nbf) = time_claim_ms(&claims, "nbf")? {
            if now_ms.saturating_add(LEEWAY_MS) < nbf {
                return Err(refuse("the token is not valid yet (nbf)"));
            }
        }
        if let Some(iat) = time_claim_ms(&claims, "iat")? {
            if iat > now_ms.saturating_add(LEEWAY_MS) {
                return Err(refuse("the token was issued in the future (iat)"));
            }
        }
        let subject = match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(refuse("the token's `sub` claim is missing or not a string")),
        };
        let jti = match claims.get("jti") {
            None => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(_) => return Err(refuse("the token's `jti` claim is not a string")),
        };
        Ok(VerifiedWorkload {
            issuer: issuer.config.issuer.clone(),
            subject,
            claims,
            expires_at_ms,
            jti,
        })
    }

    /// The listed issuer named by the token's `iss`, read before the signature is checked.
    fn pick_issuer(&self, token: &str) -> Result<&Issuer, IdentityError> {
        #[derive(serde::Deserialize)]
        struct IssOnly {
            iss: Option<String>,
        }
        // Unverified on purpose: it only chooses which trusted issuer's pinned algorithm and
        // keys must then verify the token, and `decode` checks the same `iss` once verified.
        let iss = jsonwebtoken::dangerous::insecure_decode_claims::<IssOnly>(token)
            .map_err(|_| refuse("the token's payload is malformed"))?
            .iss
            .ok_or_else(|| refuse("the token lacks the required `iss` claim"))?;
        self.issuers
            .iter()
            .find(|i| i.config.issuer == iss)
            .ok_or_else(|| refuse("the token's issuer is not on the allow-list"))
    }

    /// The key `kid` of `issuer`, from the cache or, when the rules above allow, a fetch.
    async fn key_for(
        &self,
        issuer: &Issuer,
        kid: &str,
        now_ms: i64,
    ) -> Result<DecodingKey, IdentityError> {
        let ttl_ms = i64::try_from(issuer.config.jwks_cache_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        match lock(&issuer.cache).lookup(kid, now_ms, ttl_ms) {
            Lookup::Found(key) => return Ok(key),
            Lookup::Refuse(why) => return Err(refuse(why)),
            Lookup::Fetch => {}
        }
        let _one_fetch = issuer.fetching.lock().await;
        // Another verification may have fetched while this one waited: decide again.
        let refetch = {
            let cache = lock(&issuer.cache);
            match cache.lookup(kid, now_ms, ttl_ms) {
                Lookup::Found(key) => return Ok(key),
                Lookup::Refuse(why) => return Err(refuse(why)),
                Lookup::Fetch => cache
                    .fetched_at_ms
                    .is_some_and(|t| now_ms >= t && now_ms - t < ttl_ms),
            }
        };
        let fetched = self.fetch(issuer).await;
        let mut cache = lock(&issuer.cache);
        if refetch {
            cache.refetched_at_ms = Some(now_ms);
        }
        match fetched {
            Ok(keys) => {
                cache.keys = keys;
                cache.fetched_at_ms = Some(now_ms);
                cache.failed_at_ms = None;
            }
            Err(e) => {
                // Known keys stay usable until their cache time ends; only new ones wait.
                cache.failed_at_ms = Some(now_ms);
                tracing::warn!(
                    issuer = %issuer.config.issuer,
                    jwks_url = %issuer.config.jwks_url,
                    error = %e,
                    "fetching an OIDC issuer's key set failed"
                );
                return Err(refuse(JWKS_UNAVAILABLE));
            }
        }
        cache
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| refuse(UNKNOWN_KID))
    }

    async fn fetch(&self, issuer: &Issuer) -> Result<HashMap<String, DecodingKey>, String> {
        let mut res = self
            .http
            .get(&issuer.config.jwks_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("request: {}", e.without_url()))?;
        if !res.status().is_success() {
            return Err(format!("the issuer answered {}", res.status()));
        }
        if res
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(format!("the key set is larger than {MAX_JWKS_BYTES} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| format!("reading the key set: {}", e.without_url()))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("the key set is larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        parse_jwks(&body, issuer.algorithm)
    }
}

/// The std mutex only guards map reads and swaps, never an await; a poisoned one still holds a
/// consistent cache.
fn lock(m: &Mutex<JwksCache>) -> MutexGuard<'_, JwksCache> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One client for every issuer: public roots for https (the issuers are public services such
/// as GitHub's), and no redirects, so the pinned URL is the only place keys come from.
fn jwks_client() -> Result<reqwest::Client, String> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("OIDC key-set client TLS: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("OIDC key-set client: {e}"))
}

/// The keys of a JWKS document that can verify `alg`, by `kid`. Keys of another type, curve or
/// use, keys without a `kid`, and a `kid` listed twice are left out rather than failing the set:
/// issuers publish keys for several algorithms side by side.
fn parse_jwks(body: &[u8], alg: Algorithm) -> Result<HashMap<String, DecodingKey>, String> {
    #[derive(serde::Deserialize)]
    struct RawSet {
        keys: Vec<Value>,
    }
    let set: RawSet =
        serde_json::from_slice(body).map_err(|e| format!("the key set is not a JWKS: {e}"))?;
    if set.keys.len() > MAX_JWKS_KEYS {
        return Err(format!("the key set has more than {MAX_JWKS_KEYS} keys"));
    }
    let mut keys = HashMap::new();
    let mut twice = HashSet::new();
    for raw in set.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw) else {
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone().filter(|k| !k.is_empty()) else {
            continue;
        };
        if !fits(&jwk, alg) {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        if key.family() != alg.family() {
            continue;
        }
        if keys.insert(kid.clone(), key).is_some() {
            twice.insert(kid);
        }
    }
    // Which of two keys a repeated kid means is anyone's guess: it means neither.
    for kid in twice {
        keys.remove(&kid);
    }
    Ok(keys)
}

/// Whether a JWK may verify tokens of `alg`: its use, declared algorithm, type and curve agree.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return false;
    }
    if let Some(declared) = jwk.common.key_algorithm {
        if Algorithm::try_from(declared).ok() != Some(alg) {
            return false;
        }
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            alg.family() == AlgorithmFamily::Rsa && rsa_bits(p) >= MIN_RSA_BITS
        }
        AlgorithmParameters::EllipticCurve(p) => matches!(
            (alg, &p.curve),
            (Algorithm::ES256, EllipticCurve::P256) | (Algorithm::ES384, EllipticCurve::P384)
        ),
        AlgorithmParameters::OctetKeyPair(p) => {
            alg == Algorithm::EdDSA && p.curve == EllipticCurve::Ed25519
        }
        // A symmetric key in a public key set is a mistake at best; never usable here.
        _ => false,
    }
}

fn rsa_bits(p: &RSAKeyParameters) -> usize {
    let Ok(n) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p.n.trim_end_matches('='))
    else {
        return 0;
    };
    let n = match n.iter().position(|b| *b != 0) {
        Some(first) => &n[first..],
        None => return 0,
    };
    let lead = n.first().map_or(0, |b| 8 - b.leading_zeros() as usize);
    (n.len() - 1) * 8 + lead
}

/// A NumericDate claim in Unix ms; `None` when absent.
fn time_claim_ms(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, IdentityError> {
    let Some(v) = claims.get(name) else {
        return Ok(None);
    };
    let secs = v
        .as_i64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 1e15)
                .map(|f| f.floor() as i64)
        })
        .ok_or_else(|| refuse(format!("the token's `{name}` claim is not a number")))?;
    secs.checked_mul(1000)
        .map(Some)
        .ok_or_else(|| refuse(format!("the token's `{name}` claim is out of range")))
}

/// Which check `decode` refused on, in words.
fn decode_refusal(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            "the token's algorithm is not the one pinned for its issuer".into()
        }
        ErrorKind::InvalidAudience => "the token's audience is not this broker's".into(),
        ErrorKind::InvalidIssuer => "the token's issuer is not on the allow-list".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("the token lacks the required `{c}` claim"),
        ErrorKind::InvalidClaimFormat(c) => format!("the token's `{c}` claim is malformed"),
        _ => "the token is malformed".into(),
    }
}
