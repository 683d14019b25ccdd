//! Workload-token verification against a real issuer on loopback (paw-tests' `TestIssuer`):
//! each of case K2's forgeries is refused for the reason its check gives, and the key-set cache
//! picks up rotation without letting forged tokens hammer the issuer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine;
use jsonwebtoken::{Algorithm, Header};
use paw_tests::oidc::{github_claims, TestIssuer};
use serde_json::{json, Value};

use super::*;
use crate::base::clock::{Clock, SystemClock};

const AUD: &str = "pawd-test";
/// Written out rather than taken from the module, so a changed leeway or refetch interval
/// fails these tests: both are 30 s by decision.
const LEEWAY: i64 = 30_000;
const REFETCH: i64 = 30_000;

fn config(issuer: &TestIssuer) -> OidcIssuerConfig {
    OidcIssuerConfig {
        issuer: issuer.issuer(),
        jwks_url: issuer.jwks_url(),
        audience: AUD.into(),
        algorithm: issuer.algorithm().into(),
        jwks_cache_secs: default_jwks_cache_secs(),
    }
}

fn verifier(issuer: &TestIssuer) -> OidcVerifier {
    OidcVerifier::new(vec![config(issuer)]).unwrap()
}

fn claims() -> Value {
    github_claims(AUD, "acme/web", "refs/heads/main")
}

fn now() -> i64 {
    SystemClock.now_ms()
}

fn secs(s: i64) -> i64 {
    s * 1000
}

/// The message of a refusal; anything else fails the test.
async fn refusal(v: &OidcVerifier, token: &str, now_ms: i64) -> String {
    match v.verify(token, now_ms).await {
        Err(IdentityError::Unauthenticated(m)) => m,
        Err(e) => panic!("refused with the wrong error: {e:?}"),
        Ok(w) => panic!("accepted a token that must be refused: sub {}", w.subject),
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

#[tokio::test]
async fn k2_valid_es256_token_is_accepted_with_its_claims() {
    let issuer = TestIssuer::start("ES256").await.unwrap();
    let v = verifier(&issuer);
    assert!(!v.is_empty());
    let token = issuer.mint(claims());
    let got = v.verify(&token, now()).await.unwrap();
    assert_eq!(got.issuer, issuer.issuer());
    assert_eq!(got.subject, "repo:acme/web:ref:refs/heads/main");
    assert_eq!(got.claims["repository"], json!("acme/web"));
    assert_eq!(got.claims["ref"], json!("refs/heads/main"));
    let exp = got.claims["exp"].as_i64().unwrap();
    assert_eq!(got.expires_at_ms, secs(exp));
    assert_eq!(
        got.jti.as_deref(),
        got.claims["jti"].as_str(),
        "the jti is handed back for single use"
    );
    assert!(got.jti.is_some());
    // Without a jti there is none to hand back, and the token is still valid.
    let no_jti = issuer.mint(json!({"aud": AUD, "sub": "x", "jti": null}));
    assert_eq!(v.verify(&no_jti, now()).await.unwrap().jti, None);
}

#[tokio::test]
async fn k2_other_pinned_algorithms_verify_too() {
    for alg in ["RS256", "PS256", "ES384", "EdDSA"] {
        let issuer = TestIssuer::start(alg).await.unwrap();
        let got = verifier(&issuer)
            .verify(&issuer.mint(claims()), now())
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e:?}"));
        assert_eq!(got.subject, "repo:acme/web:ref:refs/heads/main", "{alg}");
    }
}

#[tokio::test]
async fn k2_wrong_issuer_is_refused() {
    let trusted = TestIssuer::start("ES256").await.unwrap();
    let stranger = TestIssuer::start("ES256").await.unwrap();
    let v = verifier(&trusted);

    // An issuer that is not listed.
    let m = refusal(&v, &stranger.mint(claims()), now()).await;
    assert!(m.contains("not on the allow-list"), "{m}");
    // A listed issuer's key, claiming another issuer.
    let mut c = claims();
    c["iss"] = json!("https://token.actions.githubusercontent.com");
    let m = refusal(&v, &trusted.mint(c), now()).await;
    assert!(m.contains("not on the allow-list"), "{m}");
    // A stranger claiming to be the trusted issuer, naming its key: the signature tells.
    let mut c = claims();
    c["iss"] = json!(trusted.issuer());
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(trusted.current_kid());
    let m = refusal(&v, &stranger.mint_with(header, c), now()).await;
    assert!(m.contains("signature does not verify"), "{m}");
    assert_eq!(
        stranger.jwks_requests(),
        0,
        "an unlisted issuer is never asked"
    );
    // No issuer listed: nothing is trusted.
    let none = OidcVerifier::new(Vec::new()).unwrap();
    assert!(none.is_empty());
    let m = refusal(&none, &trusted.mint(claims()), now()).await;
    assert!(m.contains("not on the allow-list"), "{m}");
}

#[tokio::test]
async fn k2_wrong_or_missing_audience_is_refused() {
    let issuer = TestIssuer::start("ES256").await.unwrap();
    let v = verifier(&issuer);
    let m = refusal(
        &v,
        &issuer.mint(github_claims(
            "https://github.com/acme",
            "acme/web",
            "refs/heads/main",
        )),
        now(),
    )
    .await;
    assert!(m.contains("audience"), "{m}");
    let mut c = claims();
    c["aud"] = Value::Null;
    let m = refusal(&v, &issuer.mint(c), now()).await;
    assert!(m.contains("`aud`"), "{m}");
}

#[tokio::test]
async fn k2_expired_token_is_refused_after_the_leeway() {
    let issuer = TestIssuer::start("ES256").await.unwrap();
    let v = verifier(&issuer);
    let token = issuer.mint(claims());
    let exp = secs(
        v.verify(&token, now()).await.unwrap().claims["exp"]
            .as_i64()
            .unwrap(),
    );
    // The broker's clock decides, not the system's: 29 s past exp is inside the leeway.
    v.verify(&token, exp + LEEWAY - 1000).await.unwrap();
    let m = refusal(&v, &token, exp + LEEWAY).await;
    assert!(m.contains("expired"), "{m}");
    let m = refusal(&v, &token, exp + secs(3600)).await;
    assert!(m.contains("expired"), "{m}");
    // A token without exp never expires: refused.
    let mut c = claims();
    c["exp"] = Value::Null;
    let m = refusal(&v, &issuer.mint(c), now()).await;
    assert!(m.contains("`exp`"), "{m}");
    // A malformed exp is not read as "no expiry".
    let mut c = claims();
    c["exp"] = json!("never");
    let m = refusal(&v, &issuer.mint(c), now()).await;
    assert!(m.contains("`exp`"), "{m}");
}

#[tokio::test]
async fn k2_not_yet_valid_token_is_refused() {
    let issuer = TestIssuer::start("ES256").await.unwrap();
    let v = verifier(&issuer);
    let t = now() / 1000;
    let mut c = claims();
    c["nbf"] = json!(t + 120);
    c["exp"] = json!(t + 600);
    let token = issuer.mint(c);
    let m = refusal(&v, &token, secs(t)).await;
    assert!(m.contains("not valid yet"), "{m}");
    let m = refusal(&v, &token, secs(t + 120) - LEEWAY - 1).await;
    assert!(m.contains("not valid yet"), "{m}");
    v.verify(&token, secs(t + 120) - LEEWAY).await.unwrap();

    // Issued in the future (beyond the leeway), even without nbf.
    let mut c = claims();
    c["nbf"] = Value::Null;
    c["iat"] = json!(t + 120);
    c["exp"] = json!(t + 600);
    let token = issuer.mint(c);
    let m = refusal(&v, &token, secs(t)).await;
    assert!(m.contains("issued in the future"), "{m}");
    v.verify(&token, secs(t + 120) - LEEWAY).await.unwrap();
}

#[tokio::test]
async fn k2_alg_none_is_refused_without_fetching_keys() {
    let issuer = TestIssuer::start("ES256").await.unwrap();
    let v = verifier(&issuer);
    let token = issuer.unsigned(claims());
    let m = refusal(&v, &token, now()).await;
    assert!(m.contains("unsupported algorithm"), "{m}");
    // The same with a dummy signature, and with the other spellings of none.
    for alg in ["none", "None", "NONE"] {
        let header =
            b64(format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, issuer.current_kid()).as_bytes());
        let payload = token.split('.').nth(1).unwrap();
        let m = refusal(&v, &format!("{header}.{payload}.c2ln"), now()).await;
        assert!(m.contains("unsupported algorithm"), "{alg}: {m}");
    }
    assert_eq!(issuer.jwks_requests(), 0);
}

#[tokio::test]
async fn k2_hs256_signed_with_the_public_key_is_refused() {
    for alg in ["ES256", "RS256"] {
        let issuer = TestIssuer::start(alg).await.unwrap();
        let v = verifier(&issuer);
        // The key set is in the cache, so the refusal cannot be a fetch failure.
        v.verify(&issuer.mint(claims()), now()).await.unwrap();
        let m = refusal(&v, &issuer.hs256_with_public_key(claims()), now()).await;
        assert!(m.contains("not the one pinned"), "{alg}: {m}");
    }
}

#[tokio::test]
async fn k2_another_algorithm_than_the_pinned_one_is_refused() {
    let issuer = TestIssuer::start("RS256").await.unwrap();
    let v = verifier(&issuer);
    for alg in [
        Algorithm::PS256,
        Algorithm::RS512,
        Algorithm::ES256,
        Algorithm::HS512,
    ] {
        let mut header = Header::new(alg);
        header.kid = Some(issuer.current_kid());
        let m = refusal(&v, &issuer.mint_with(header, claims()), now()).await;
        assert!(m.contains("not the one pinned"), "{alg:?}: {m}");
    }
    assert_eq!(issuer.jwks_requests(), 0, "a forged alg makes no fetch");
}

#[tokio::test]
async fn k2_unknown_or_missing_kid_is_refused() {
    let issuer = TestIssuer::start("ES256").await.unwrap();
    let v = verifier(&issuer);
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("not-a-published-key".into());
    let m = refusal(&v, &issuer.mint_with(header, claims()), now()).await;
    assert!(m.contains("kid"), "{m}");
    assert!(m.contains("not in its issuer's key set"), "{m}");
    let m = refusal(
        &v,
        &issuer.mint_with(Header::new(Algorithm::ES256), claims()),
        now(),
    )
    .await;
    assert!(m.contains("names no key id"), "{m}");
}

#[tokio::test]
async fn k2_tampered_payload_or_signature_is_refused() {
    let issuer = TestIssuer::start("ES256").await.unwrap();
    let v = verifier(&issuer);
    let token = issuer.mint(claims());
    v.verify(&token, now()).await.unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value = serde_json::from_slice(&unb64(parts[1])).unwrap();
    payload["repository"] = json!("acme/payroll");
    payload["sub"] = json!("repo:acme/payroll:ref:refs/heads/main");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(&serde_json::to_vec(&payload).unwrap()),
        parts[2]
    );
    let m = refusal(&v, &forged, now()).await;
    assert!(m.contains("signature does not verify"), "{m}");

    let mut sig = unb64(parts[2]);
    sig[10] ^= 1;
    let m = refusal(
        &v,
        &format!("{}.{}.{}", parts[0], parts[1], b64(&sig)),
        now(),
    )
    .await;
    assert!(m.contains("signature does not verify"), "{m}");
}

#[tokio::test]
async fn k2_oversized_or_subjectless_tokens_are_refused() {
    let issuer = TestIssuer::start("ES256").await.unwrap();
    let v = verifier(&issuer);
    let mut c = claims();
    c["padding"] = json!("x".repeat(MAX_TOKEN_BYTES));
    let m = refusal(&v, &issuer.mint(c), now()).await;
    assert!(m.contains("larger than"), "{m}");
    assert_eq!(issuer.jwks_requests(), 0);
    let mut c = claims();
    c["sub"] = Value::Null;
    let m = refusal(&v, &issuer.mint(c), now()).await;
    assert!(m.contains("`sub`"), "{m}");
    let m = refusal(&v, "not a token", now()).await;
    assert!(m.contains("malformed"), "{m}");
}

#[tokio::test]
async fn k2_critical_header_extensions_are_refused() {
    let issuer = TestIssuer::start("ES256").await.unwrap();
    let v = verifier(&issuer);
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(issuer.current_kid());
    header.crit = Some(vec!["exp".into()]);
    let m = refusal(&v, &issuer.mint_with(header, claims()), now()).await;
    assert!(m.contains("crit"), "{m}");
}

/// A key the issuer adds is picked up by the unknown-kid refetch; one it drops stops working
/// when the cached key set is refreshed, not before and not after.
#[tokio::test]
async fn k2_key_rotation_is_picked_up_and_dropped_keys_stop_working() {
    let issuer = TestIssuer::start("ES256").await.unwrap();
    let v = verifier(&issuer);
    let t0 = now();
    let long = |c: Value| {
        let mut c = c;
        c["exp"] = json!(t0 / 1000 + 7200);
        c
    };
    let old = issuer.mint(long(claims()));
    v.verify(&old, t0).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 1);

    issuer.rotate();
    let new = issuer.mint(long(claims()));
    v.verify(&new, t0 + 1000).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 2, "the new kid was fetched once");
    v.verify(&old, t0 + 2000).await.unwrap();
    v.verify(&new, t0 + 2000).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 2, "known keys come from the cache");

    issuer.drop_old_keys();
    let ttl = secs(i64::try_from(default_jwks_cache_secs()).unwrap());
    // Cached since t0 + 1 s: the dropped key still verifies until the cache time ends.
    v.verify(&old, t0 + 1000 + ttl - 1).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 2);
    let m = refusal(&v, &old, t0 + 1000 + ttl).await;
    assert!(m.contains("not in its issuer's key set"), "{m}");
    assert_eq!(issuer.jwks_requests(), 3, "the stale set was fetched again");
    v.verify(&new, t0 + 1000 + ttl + 1).await.unwrap();
}

/// Tokens naming random kids cause at most one refetch per issuer per 30 s.
#[tokio::test]
async fn k2_unknown_kids_refetch_at_most_once_per_30_seconds() {
    let issuer = TestIssuer::start("ES256").await.unwrap();
    let v = verifier(&issuer);
    let t0 = now();
    v.verify(&issuer.mint(claims()), t0).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 1);
    let forged = |n: usize| {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(format!("random-{n}"));
        issuer.mint_with(header, claims())
    };
    for n in 0..20 {
        let at = t0 + i64::try_from(n).unwrap() * 1000;
        let m = refusal(&v, &forged(n), at).await;
        assert!(m.contains("not in its issuer's key set"), "{m}");
    }
    assert_eq!(issuer.jwks_requests(), 2, "one refetch in the first 30 s");
    let m = refusal(&v, &forged(100), t0 + REFETCH - 1).await;
    assert!(m.contains("not in its issuer's key set"), "{m}");
    assert_eq!(issuer.jwks_requests(), 2);
    refusal(&v, &forged(101), t0 + REFETCH).await;
    assert_eq!(issuer.jwks_requests(), 3, "the next refetch after 30 s");
    refusal(&v, &forged(102), t0 + REFETCH + 1000).await;
    assert_eq!(issuer.jwks_requests(), 3);
    // The valid token never needed any of that.
    v.verify(&issuer.mint(claims()), t0 + REFETCH + 2000)
        .await
        .unwrap();
    assert_eq!(issuer.jwks_requests(), 3);
}

/// Verifications arriving together on a cold cache share one fetch.
#[tokio::test]
async fn concurrent_verifications_share_one_fetch() {
    let issuer = TestIssuer::start("ES256").await.unwrap();
    let v = verifier(&issuer);
    let t = now();
    let tokens: Vec<String> = (0..8).map(|_| issuer.mint(claims())).collect();
    let results = futures_util::future::join_all(tokens.iter().map(|tok| v.verify(tok, t))).await;
    for r in results {
        r.unwrap();
    }
    // Clones share the cache.
    v.clone().verify(&tokens[0], t).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 1);
}

/// An issuer whose JWKS endpoint answers 500 and counts the requests.
async fn broken_jwks() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/jwks"), hits)
}

/// A key set that cannot be fetched refuses the issuer's tokens, is retried at most every
/// 30 s, and a stale cached set is not used in its place.
#[tokio::test]
async fn unreachable_key_set_fails_closed_and_is_not_hammered() {
    let issuer = TestIssuer::start("ES256").await.unwrap();
    let (url, hits) = broken_jwks().await;
    let v = OidcVerifier::new(vec![OidcIssuerConfig {
        jwks_url: url,
        ..config(&issuer)
    }])
    .unwrap();
    let token = issuer.mint(claims());
    let t0 = now();
    let m = refusal(&v, &token, t0).await;
    assert!(m.contains("could not be fetched"), "{m}");
    assert!(!m.contains(&token), "a refusal never echoes the token");
    refusal(&v, &token, t0 + REFETCH - 1).await;
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    refusal(&v, &token, t0 + REFETCH).await;
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    // A working issuer that goes away: once the cache time ends its keys are not trusted.
    let v = verifier(&issuer);
    let mut c = claims();
    c["exp"] = json!(t0 / 1000 + 7200);
    let token = issuer.mint(c);
    v.verify(&token, t0).await.unwrap();
    drop(issuer);
    let ttl = secs(i64::try_from(default_jwks_cache_secs()).unwrap());
    v.verify(&token, t0 + ttl - 1).await.unwrap();
    let m = refusal(&v, &token, t0 + ttl).await;
    assert!(m.contains("could not be fetched"), "{m}");
}

#[test]
fn jwks_keeps_only_keys_that_fit_the_pinned_algorithm() {
    let p256 = json!({"kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
    let with = |extra: Value| {
        let mut k = p256.clone();
        k.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        k
    };
    let big_n = b64(&[&[0xc0u8][..], &[0x11; 255]].concat());
    let small_n = b64(&[&[0xc0u8][..], &[0x11; 127]].concat());
    let set = json!({"keys": [
        with(json!({"kid": "ok", "use": "sig", "alg": "ES256"})),
        with(json!({"kid": "no-alg"})),
        with(json!({"kid": "enc", "use": "enc"})),
        with(json!({"kid": "other-alg", "alg": "ES384"})),
        with(json!({"kid": "twice"})),
        with(json!({"kid": "twice"})),
        with(json!({})),
        {"kty": "EC", "crv": "P-384", "kid": "p384",
         "x": "AAAA", "y": "AAAA"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "RSA", "kid": "rsa", "n": big_n, "e": "AQAB"},
        {"kty": "unknown", "kid": "junk"},
    ]});
    let body = serde_json::to_vec(&set).unwrap();
    let mut kids: Vec<String> = parse_jwks(&body, Algorithm::ES256)
        .unwrap()
        .into_keys()
        .collect();
    kids.sort();
    assert_eq!(kids, ["no-alg", "ok"]);

    let rsa = json!({"keys": [
        {"kty": "RSA", "kid": "2048", "n": big_n, "e": "AQAB"},
        {"kty": "RSA", "kid": "1024", "n": small_n, "e": "AQAB"},
        p256,
    ]});
    let keys = parse_jwks(&serde_json::to_vec(&rsa).unwrap(), Algorithm::RS256).unwrap();
    assert_eq!(keys.into_keys().collect::<Vec<_>>(), ["2048"]);

    assert!(parse_jwks(b"{}", Algorithm::ES256).is_err());
    let many = json!({"keys": vec![p256.clone(); MAX_JWKS_KEYS + 1]});
    assert!(parse_jwks(&serde_json::to_vec(&many).unwrap(), Algorithm::ES256).is_err());
}

#[test]
fn issuer_config_is_validated() {
    let good = OidcIssuerConfig {
        issuer: "https://token.actions.githubusercontent.com".into(),
        jwks_url: "https://token.actions.githubusercontent.com/.well-known/jwks".into(),
        audience: "https://paw.example.com".into(),
        algorithm: "RS256".into(),
        jwks_cache_secs: 600,
    };
    good.validate().unwrap();
    for url in [
        "http://127.0.0.1:8080/jwks",
        "http://[::1]/jwks",
        "http://localhost:1/k",
    ] {
        OidcIssuerConfig {
            jwks_url: url.into(),
            ..good.clone()
        }
        .validate()
        .unwrap();
    }
    let bad: Vec<(OidcIssuerConfig, &str)> = vec![
        (
            OidcIssuerConfig {
                issuer: " ".into(),
                ..good.clone()
            },
            "issuer",
        ),
        (
            OidcIssuerConfig {
                issuer: "https://a b".into(),
                ..good.clone()
            },
            "issuer",
        ),
        (
            OidcIssuerConfig {
                jwks_url: "http://10.0.0.1/jwks".into(),
                ..good.clone()
            },
            "https",
        ),
        (
            OidcIssuerConfig {
                jwks_url: "http://localhost.evil.com/jwks".into(),
                ..good.clone()
            },
            "https",
        ),
        (
            OidcIssuerConfig {
                jwks_url: "ftp://x/jwks".into(),
                ..good.clone()
            },
            "jwks_url",
        ),
        (
            OidcIssuerConfig {
                jwks_url: "jwks.json".into(),
                ..good.clone()
            },
            "jwks_url",
        ),
        (
            OidcIssuerConfig {
                jwks_url: "https://u:p@x/jwks".into(),
                ..good.clone()
            },
            "password",
        ),
        (
            OidcIssuerConfig {
                audience: "".into(),
                ..good.clone()
            },
            "audience",
        ),
        (
            OidcIssuerConfig {
                algorithm: "HS256".into(),
                ..good.clone()
            },
            "algorithm",
        ),
        (
            OidcIssuerConfig {
                algorithm: "none".into(),
                ..good.clone()
            },
            "algorithm",
        ),
        (
            OidcIssuerConfig {
                algorithm: "rs256".into(),
                ..good.clone()
            },
            "algorithm",
        ),
        (
            OidcIssuerConfig {
                jwks_cache_secs: 9,
                ..good.clone()
            },
            "jwks_cache_secs",
        ),
        (
            OidcIssuerConfig {
                jwks_cache_secs: 86_401,
                ..good.clone()
            },
            "jwks_cache_secs",
        ),
    ];
    for (c, word) in bad {
        let e = c.validate().unwrap_err();
        assert!(e.contains(word), "{c:?}: {e}");
        assert!(OidcVerifier::new(vec![c]).is_err());
    }
    let e = OidcVerifier::new(vec![good.clone(), good.clone()])
        .err()
        .unwrap();
    assert!(e.contains("twice"), "{e}");

    // As pawd.toml writes it: the cache time has a default and unknown keys are refused.
    let parsed: OidcIssuerConfig = toml::from_str(
        r#"issuer = "https://gitlab.example.com"
           jwks_url = "https://gitlab.example.com/oauth/discovery/keys"
           audience = "paw"
           algorithm = "RS256""#,
    )
    .unwrap();
    assert_eq!(parsed.jwks_cache_secs, 600);
    assert!(toml::from_str::<OidcIssuerConfig>(
        r#"issuer = "i"
           jwks_url = "https://i/k"
           audience = "paw"
           algorithm = "RS256"
           algorithms = ["HS256"]"#,
    )
    .is_err());
}
