//! Issue #14: a broker's faults and what several brokers share, on real `pawd` processes, one
//! real PostgreSQL (or one SQLite file) and a real sshd.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use paw_tests::replicas::{Options, Replicas, Store};

/// ada may have root on web-1 at once (automatic approval), two sessions per grant.
const POLICY: &str = r#"
[groups]
sre = ["ada"]

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

/// I6. The second `pawd serve` on a SQLite config another running pawd holds exits
/// non-zero within 20 s, without serving, and says why on stderr: a message containing "lock"
/// and naming the database file (`pawd.db`, or a lock file next to it). The first keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i6_second_broker_on_the_same_sqlite_file_refuses_to_start() {
    let mut r = Replicas::start_with(Options {
        replicas: 1,
        store: Store::Sqlite,
        ..Options::default()
    })
    .await
    .unwrap();
    // Its own listen port: the refusal must come from the database, not from the socket.
    let second = r.add().unwrap();
    r.spawn(second).unwrap();
    let status = r.wait_exit(second, Duration::from_secs(20)).await.unwrap();
    let log = r.log(second);
    let status = status.unwrap_or_else(|| {
        panic!("a second pawd on the same SQLite file is still running:\n{log}")
    });
    assert!(!status.success(), "it exited with {status}:\n{log}");
    assert!(
        log.to_lowercase().contains("lock") && log.contains("pawd.db"),
        "the message must name the lock on the database file:\n{log}"
    );
    let health = r
        .client()
        .unwrap()
        .get(format!("{}/healthz", r.url(0)))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the first broker keeps serving");
}

/// I7. `POST /v1/auth/sign-out`, authenticated like every call (bearer access token and
/// device proof), no body; after it, every access and refresh token of that
/// sign-in (the token family, rotated ones included) is refused by every replica with 401
/// `unauthenticated`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i7_sign_out_revokes_the_token_family_on_every_broker() {
    let r = Replicas::start(2, POLICY).await.unwrap();
    let (a, b) = (r.url(0), r.url(1));
    let mut ada = r.enrolled("ada", &[], 0).await.unwrap();
    let first_access = ada.access.clone().unwrap();
    // Rotate once on B: the family now has an older access token and a current pair.
    let rotated = ada
        .refresh_with(&b, ada.refresh.as_deref().unwrap())
        .await
        .unwrap()
        .ok()
        .unwrap();
    let access = rotated["access_token"].as_str().unwrap().to_owned();
    let refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    ada.access = Some(access.clone());
    ada.refresh = Some(refresh.clone());
    for url in [&a, &b] {
        let me = ada.call(url, "GET", "/v1/me", None).await.unwrap();
        assert_eq!(me.status, 200, "{url} before sign-out: {:?}", me.body);
    }

    let out = ada
        .call(&a, "POST", "/v1/auth/sign-out", None)
        .await
        .unwrap();
    assert_eq!(out.status, 200, "sign-out on A: {:?}", out.body);
    // It says what it revoked: both access tokens of the family, the one unused refresh token.
    assert_eq!(out.body["access_tokens"], 2, "{:?}", out.body);
    assert_eq!(out.body["refresh_tokens"], 1, "{:?}", out.body);
    let audited = r
        .pg()
        .unwrap()
        .psql("SELECT COUNT(*) FROM audit_log WHERE action = 'sign_out'")
        .unwrap();
    assert_eq!(audited.trim(), "1", "one sign_out record");

    // Copies of the tokens, presented anywhere, are refused.
    for url in [&a, &b] {
        let refreshed = ada.refresh_with(url, &refresh).await.unwrap();
        assert_eq!(
            (refreshed.status, refreshed.code()),
            (401, "unauthenticated"),
            "{url}: the copied refresh token: {:?}",
            refreshed.body
        );
        for token in [&access, &first_access] {
            let me = ada
                .call_with(url, token, "GET", "/v1/me", None)
                .await
                .unwrap();
            assert_eq!(
                (me.status, me.code()),
                (401, "unauthenticated"),
                "{url}: a copied access token: {:?}",
                me.body
            );
        }
    }
}
