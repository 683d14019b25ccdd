//! Enrollment, login, tokens, step-up and security keys, in-process with the INSECURE virtual
//! key as the authenticator. Tests carry the case ids of SECURITY-CASES.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::idp::{b64, code, proof, session_action, Broker, Client, Tweak, ORIGIN, T0};
use paw_fido::FailureKnobs;
use paw_proto::action::Action;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn enroll_login_whoami_stepup_happy_path() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    let (s, me) = c.call(&b, "GET", "/v1/me", None).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["user"], "ada");
    assert_eq!(me["roles"], json!(["admin"]));
    let action = session_action("g1");
    let body = c.stepup(&b, &action, &Tweak::default()).await;
    let (s, v) = c.stepup_finish(&b, &body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["purpose"], "session");
    assert_eq!(v["action_hash"], b64(&action.hash()));
    let (s, keys) = c.call(&b, "GET", "/v1/keys", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn invite_is_single_use_and_expires_in_24h() {
    let b = Broker::start().await;
    let code_ = b.invite("bob", &[]).await;
    assert!(code_.len() >= 43, "≥ 256 bits");
    let mut c = Client::new("bob");
    c.enroll(&b, &code_).await.unwrap();
    let mut c2 = Client::new("bob");
    let (s, v) = c2.enroll(&b, &code_).await.unwrap_err();
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "invite_invalid"));

    let code2 = b.invite("eve", &[]).await;
    b.advance(24 * 3600 * 1000 + 1);
    let (s, v) = Client::new("eve").enroll(&b, &code2).await.unwrap_err();
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "invite_invalid"));
    // Stored only as a hash.
    let paw_broker::store::Db::Sqlite(pool) = &b.db else {
        panic!()
    };
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM invites WHERE code_hash = $1")
        .bind(&code_)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a01_replayed_assertion_is_refused_in_sequence() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    let body = c.stepup(&b, &session_action("g"), &Tweak::default()).await;
    assert_eq!(c.stepup_finish(&b, &body).await.0, StatusCode::OK);
    for _ in 0..3 {
        let (s, v) = c.stepup_finish(&b, &body).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "challenge_invalid")
        );
    }
}

#[tokio::test]
async fn a01_failed_attempt_consumes_the_challenge() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    let (ch, hash) = c.stepup_start(&b, &session_action("g")).await;
    let bad = c.assert_json(
        &ch,
        &hash,
        &Tweak {
            origin: Some("https://evil.example".into()),
            ..Default::default()
        },
    );
    let body = json!({"challenge": ch, "action": session_action("g"), "credential": bad});
    assert_eq!(c.stepup_finish(&b, &body).await.0, StatusCode::UNAUTHORIZED);
    let good = c.assert_json(&ch, &hash, &Tweak::default());
    let body = json!({"challenge": ch, "action": session_action("g"), "credential": good});
    let (s, v) = c.stepup_finish(&b, &body).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "challenge_invalid")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a01_parallel_replays_accept_exactly_one_of_1000() {
    let b = std::sync::Arc::new(Broker::start().await);
    let mut c = b.enrolled("ada").await;
    let body = c.login_answer(&b, &Tweak::default()).await;
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let b = b.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            b.post("/v1/login/finish", &body).await.0
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let s = t.await.unwrap();
        assert!(s == StatusCode::OK || s == StatusCode::UNAUTHORIZED, "{s}");
        ok += usize::from(s == StatusCode::OK);
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn a02_forged_challenge_ids_are_refused() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    let (ch, hash) = c.stepup_start(&b, &session_action("g")).await;
    // An assertion over a challenge the broker never issued, posted under that id.
    let forged = b64(&[7u8; 32]);
    let cred = c.assert_json(&forged, &hash, &Tweak::default());
    for id in [forged.as_str(), "", "not base64!", &"A".repeat(5000)] {
        let body = json!({"challenge": id, "action": session_action("g"), "credential": cred});
        let (s, v) = c.stepup_finish(&b, &body).await;
        assert!(s.is_client_error(), "{id}: {s}");
        assert_ne!(s, StatusCode::OK, "{v}");
    }
    // The assertion for the forged challenge posted under the real id fails too.
    let body = json!({"challenge": ch, "action": session_action("g"), "credential": cred});
    assert_eq!(c.stepup_finish(&b, &body).await.0, StatusCode::UNAUTHORIZED);
    // There is no state field to send: extra fields are a 400.
    let body =
        json!({"challenge": ch, "action": session_action("g"), "credential": cred, "state": {}});
    assert_eq!(c.stepup_finish(&b, &body).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a03_answer_after_5_min_plus_1_s_is_refused() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    let body = c.stepup(&b, &session_action("g"), &Tweak::default()).await;
    b.advance(5 * 60 * 1000 + 1000);
    // Keep the session itself alive: only the challenge is stale.
    let (s, v) = c.stepup_finish(&b, &body).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "challenge_invalid"),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("expired"));
    // Just inside the lifetime works.
    let body = c.stepup(&b, &session_action("g"), &Tweak::default()).await;
    b.advance(5 * 60 * 1000 - 1000);
    assert_eq!(c.stepup_finish(&b, &body).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a04_assertion_for_one_purpose_is_refused_for_another() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    // A session step-up answered, then presented as a key-management (revoke) step-up.
    let keys = c.call(&b, "GET", "/v1/keys", None).await.1;
    let id = keys["keys"][0]["id"].as_str().unwrap().to_owned();
    let body = c.stepup(&b, &session_action("g"), &Tweak::default()).await;
    let mut forged = body.clone();
    forged["action"] = json!(Action::KeyManagement {
        operation: "revoke".into(),
        credential: id.clone()
    });
    let (s, v) = c
        .call(
            &b,
            "POST",
            &format!("/v1/keys/{id}/revoke"),
            Some(&json!({"stepup": forged})),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "challenge_invalid"),
        "{v}"
    );
    // A login challenge is not a step-up.
    let login = c.login_answer(&b, &Tweak::default()).await;
    let body = json!({"challenge": login["challenge"], "action": session_action("g"), "credential": login["credential"]});
    let (s, v) = c.stepup_finish(&b, &body).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "challenge_invalid"),
        "{v}"
    );
    // And a step-up challenge is not a login.
    let body = c.stepup(&b, &session_action("g"), &Tweak::default()).await;
    let login = json!({"challenge": body["challenge"], "credential": body["credential"], "device_public_key": c.device_public()});
    let (s, v) = b.post("/v1/login/finish", &login).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "challenge_invalid"),
        "{v}"
    );
    // Login is refused as a step-up action.
    let (s, _) = c
        .call(
            &b,
            "POST",
            "/v1/stepup/start",
            Some(&json!({"action": Action::Login { user: "ada".into() }})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

fn request(duration: u32) -> Action {
    Action::Request {
        entitlement: "prod-db".into(),
        target: "db-1".into(),
        role: "dba".into(),
        duration_secs: duration,
        justification: "INC-1 vacuum the orders table".into(),
        ticket: Some("INC-1".into()),
        start_at_ms: None,
    }
}

#[tokio::test]
async fn a05_action_binding_rejects_changed_duration() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    // The body's action changed after the step-up.
    let mut body = c.stepup(&b, &request(3600), &Tweak::default()).await;
    body["action"] = json!(request(7200));
    let (s, v) = c.stepup_finish(&b, &body).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "challenge_invalid"),
        "{v}"
    );
}

#[tokio::test]
async fn a05_action_binding_rejects_a_client_data_hash_for_another_action() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    for t in [
        Tweak {
            action_hash: Some(Some(b64(&request(7200).hash()))),
            ..Default::default()
        },
        Tweak {
            action_hash: Some(None),
            ..Default::default()
        },
    ] {
        let body = c.stepup(&b, &request(3600), &t).await;
        let (s, v) = c.stepup_finish(&b, &body).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "webauthn_rejected"),
            "{v}"
        );
    }
}

/// For tests that send many bad assertions in a row: a throttle that never delays them, so
/// each is refused for what it is (the throttle has its own tests, N1).
const MANY_FAILURES: &str =
    "[auth]\nthrottle_after_failures = 1000\nsource_throttle_after_failures = 1000\n";

async fn stepup_with(b: &Broker, c: &mut Client, t: Tweak) -> (StatusCode, serde_json::Value) {
    let body = c.stepup(b, &session_action("g"), &t).await;
    c.stepup_finish(b, &body).await
}

#[tokio::test]
async fn a06_origin_variants_are_refused_by_exact_match() {
    let b = Broker::start_with(MANY_FAILURES).await;
    let mut c = b.enrolled("ada").await;
    for origin in [
        "https://localhost.evil.example:8443",
        "https://sub.localhost:8443",
        "http://localhost:8443",
        "https://localhost:8443/",
        "https://localhost:8444",
        "https://localhost",
        "https://LOCALHOST:8443x",
        "null",
    ] {
        let (s, v) = stepup_with(
            &b,
            &mut c,
            Tweak {
                origin: Some(origin.into()),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "webauthn_rejected"),
            "{origin}: {v}"
        );
        b.advance(2000); // stay clear of the throttle
    }
    assert_eq!(
        stepup_with(&b, &mut c, Tweak::default()).await.0,
        StatusCode::OK
    );
    let _ = ORIGIN;
}

#[tokio::test]
async fn a07_rp_id_hash_of_another_rp_is_refused() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    c.knobs(FailureKnobs {
        wrong_rp_id: Some("evil.example".into()),
        ..Default::default()
    });
    let (s, v) = stepup_with(&b, &mut c, Tweak::default()).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "webauthn_rejected"),
        "{v}"
    );
    // And at enrollment.
    let mut d = Client::new("bob");
    d.knobs(FailureKnobs {
        wrong_rp_id: Some("evil.example".into()),
        ..Default::default()
    });
    let code_ = b.invite("bob", &[]).await;
    let (s, v) = d.enroll(&b, &code_).await.unwrap_err();
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "webauthn_rejected"),
        "{v}"
    );
}

#[tokio::test]
async fn a08_create_type_or_missing_type_in_assertion_is_refused() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    for typ in [
        Some("webauthn.create".to_owned()),
        None,
        Some("".to_owned()),
    ] {
        let (s, v) = stepup_with(
            &b,
            &mut c,
            Tweak {
                typ: Some(typ.clone()),
                ..Default::default()
            },
        )
        .await;
        assert!(
            s == StatusCode::UNAUTHORIZED || s == StatusCode::BAD_REQUEST,
            "{typ:?}: {s} {v}"
        );
        b.advance(2000);
    }
    // webauthn.get at registration is refused as well.
    let mut d = Client::new("bob");
    let code_ = b.invite("bob", &[]).await;
    let (s, _) = d
        .enroll_with(
            &b,
            &code_,
            &Tweak {
                typ: Some(Some("webauthn.get".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a09_missing_up_or_uv_is_refused_for_every_flag_combination() {
    let b = Broker::start_with(MANY_FAILURES).await;
    let mut c = b.enrolled("ada").await;
    for (no_up, no_uv) in [(true, false), (false, true), (true, true)] {
        for (be, bs) in [(false, false), (true, false), (false, true), (true, true)] {
            c.knobs(FailureKnobs {
                no_user_presence: no_up,
                no_user_verification: no_uv,
                backup_eligible: be,
                backed_up: bs,
                ..Default::default()
            });
            let (s, v) = stepup_with(&b, &mut c, Tweak::default()).await;
            assert_eq!(
                (s, code(&v)),
                (StatusCode::UNAUTHORIZED, "webauthn_rejected"),
                "up={} uv={} be={be} bs={bs}",
                !no_up,
                !no_uv
            );
            b.advance(2000);
        }
    }
    // UV missing at enrollment too.
    let mut d = Client::new("bob");
    d.knobs(FailureKnobs {
        no_user_verification: true,
        ..Default::default()
    });
    let code_ = b.invite("bob", &[]).await;
    assert_eq!(
        d.enroll(&b, &code_).await.unwrap_err().0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a10_backup_eligible_credential_is_refused_at_enrollment_and_step_up() {
    let b = Broker::start().await;
    for (be, bs) in [(true, false), (true, true), (false, true)] {
        let mut d = Client::new(&format!("u{be}{bs}"));
        d.knobs(FailureKnobs {
            backup_eligible: be,
            backed_up: bs,
            ..Default::default()
        });
        let code_ = b.invite(&d.user.clone(), &[]).await;
        let (s, v) = d.enroll(&b, &code_).await.unwrap_err();
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "webauthn_rejected"),
            "be={be} bs={bs}: {v}"
        );
    }
    let mut c = b.enrolled("ada").await;
    for (be, bs) in [(true, false), (true, true), (false, true)] {
        c.knobs(FailureKnobs {
            backup_eligible: be,
            backed_up: bs,
            ..Default::default()
        });
        let (s, v) = stepup_with(&b, &mut c, Tweak::default()).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "webauthn_rejected"),
            "be={be} bs={bs}: {v}"
        );
        b.advance(2000);
    }
}

#[tokio::test]
async fn a11_counter_regression_is_refused_and_locks_the_key() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    assert_eq!(
        stepup_with(&b, &mut c, Tweak::default()).await.0,
        StatusCode::OK
    );
    c.knobs(FailureKnobs {
        counter_regression: true,
        ..Default::default()
    });
    let (s, v) = stepup_with(&b, &mut c, Tweak::default()).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "webauthn_rejected"),
        "{v}"
    );
    let keys = c.call(&b, "GET", "/v1/keys", None).await.1;
    assert_eq!(keys["keys"][0]["locked"], true);
    // The locked key is refused afterwards, even with a good counter.
    c.knobs(FailureKnobs::default());
    let (s, v) = c
        .call(
            &b,
            "POST",
            "/v1/stepup/start",
            Some(&json!({"action": session_action("g")})),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "webauthn_rejected"),
        "{v}"
    );
    // An account unlock leaves the key locked; only naming the key unlocks it.
    let key_id = keys["keys"][0]["id"].as_str().unwrap().to_owned();
    let r = paw_broker::identity::unlock(&b.db, "ada", None)
        .await
        .unwrap();
    assert_eq!(r.keys_still_locked, std::slice::from_ref(&key_id));
    let r = paw_broker::identity::unlock(&b.db, "ada", Some(&key_id))
        .await
        .unwrap();
    assert_eq!(r.key_unlocked.as_deref(), Some(key_id.as_str()));
    assert!(r.keys_still_locked.is_empty());
    let keys = c.call(&b, "GET", "/v1/keys", None).await.1;
    assert_eq!(keys["keys"][0]["locked"], false);
}

#[tokio::test]
async fn a11_racing_assertions_with_the_same_counter_accept_one() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    // Two challenges, answered in order; then the second answer is re-signed with the first's
    // counter by rewinding the key: the compare-and-swap lets only one counter value land.
    let first = c.stepup(&b, &session_action("a"), &Tweak::default()).await;
    let (ch2, h2) = c.stepup_start(&b, &session_action("b")).await;
    let counter_before = c.key.sign_count();
    assert_eq!(c.stepup_finish(&b, &first).await.0, StatusCode::OK);
    // A cloned key reports the same counter as the one that just landed.
    c.knobs(FailureKnobs {
        counter_regression: true,
        ..Default::default()
    });
    let cred = c.assert_json(&ch2, &h2, &Tweak::default());
    let _ = counter_before;
    let body = json!({"challenge": ch2, "action": session_action("b"), "credential": cred});
    let (s, _) = c.stepup_finish(&b, &body).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let keys = c.call(&b, "GET", "/v1/keys", None).await.1;
    assert_eq!(keys["keys"][0]["locked"], true);
}

#[tokio::test]
async fn a12_another_users_credential_or_user_handle_is_refused() {
    let b = Broker::start().await;
    let mut ada = b.enrolled("ada").await;
    let mut bob = b.enrolled("bob").await;
    // Bob's key answers Ada's login challenge.
    let (_, start) = ada.login_start(&b).await;
    let ch = start["challenge"].as_str().unwrap();
    let cred = bob.assert_json(
        ch,
        start["action_hash"].as_str().unwrap(),
        &Tweak::default(),
    );
    let body =
        json!({"challenge": ch, "credential": cred, "device_public_key": ada.device_public()});
    let (s, v) = b.post("/v1/login/finish", &body).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "webauthn_rejected"),
        "{v}"
    );
    // Ada's assertion with a userHandle that is not Ada's.
    let body = ada
        .login_answer(
            &b,
            &Tweak {
                user_handle: Some(b64(&[1u8; 16])),
                ..Default::default()
            },
        )
        .await;
    let (s, v) = b.post("/v1/login/finish", &body).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "webauthn_rejected"),
        "{v}"
    );
    b.advance(2000);
    // A credential id outside allowCredentials.
    let body = ada
        .login_answer(
            &b,
            &Tweak {
                credential_id: Some(vec![9u8; 32]),
                ..Default::default()
            },
        )
        .await;
    let (s, _) = b.post("/v1/login/finish", &body).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Bob's device key cannot carry Ada's session.
    b.advance(2000);
    let mut body = ada.login_answer(&b, &Tweak::default()).await;
    body["device_public_key"] = json!(bob.device_public());
    let (s, v) = b.post("/v1/login/finish", &body).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "unauthenticated"),
        "{v}"
    );
    // Bob cannot finish a step-up Ada started.
    let (ch, hash) = ada.stepup_start(&b, &session_action("g")).await;
    let cred = bob.assert_json(&ch, &hash, &Tweak::default());
    let body = json!({"challenge": ch, "action": session_action("g"), "credential": cred});
    let (s, v) = bob.stepup_finish(&b, &body).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "challenge_invalid"),
        "{v}"
    );
}

#[tokio::test]
async fn a13_malformed_responses_are_4xx_never_5xx() {
    let b = Broker::start_with(MANY_FAILURES).await;
    let mut c = b.enrolled("ada").await;
    let good_ad = {
        let (ch, h) = c.stepup_start(&b, &session_action("x")).await;
        let v = c.assert_json(&ch, &h, &Tweak::default());
        common::idp::b64(&base64_decode(
            v["response"]["authenticatorData"].as_str().unwrap(),
        ))
    };
    let ad = base64_decode(&good_ad);
    let tweaks = vec![
        Tweak {
            auth_data: Some(ad[..20].to_vec()),
            ..Default::default()
        },
        Tweak {
            auth_data: Some(Vec::new()),
            ..Default::default()
        },
        Tweak {
            signature: Some(vec![0x30, 0x02, 0x01]),
            ..Default::default()
        },
        Tweak {
            signature: Some(vec![0u8; 70]),
            ..Default::default()
        },
        Tweak {
            client_data_raw: Some(b"{not json".to_vec()),
            ..Default::default()
        },
        Tweak {
            client_data_raw: Some(vec![0xff, 0xfe]),
            ..Default::default()
        },
    ];
    for t in tweaks {
        let (s, v) = stepup_with(&b, &mut c, t.clone()).await;
        assert!(s.is_client_error(), "{t:?}: {s} {v}");
        b.advance(2000);
    }
    // Structurally wrong credential JSON.
    for cred in [
        json!(null),
        json!({}),
        json!({"id": 1}),
        json!({"response": {"clientDataJSON": "!!"}}),
    ] {
        let (ch, _) = c.stepup_start(&b, &session_action("g")).await;
        let body = json!({"challenge": ch, "action": session_action("g"), "credential": cred});
        let (s, _) = c.stepup_finish(&b, &body).await;
        assert!(s.is_client_error(), "{cred}: {s}");
        b.advance(2000);
    }
    // Bad CBOR in a registration.
    let code_ = b.invite("bob", &[]).await;
    let mut d = Client::new("bob");
    let (_, start) = b
        .post(
            "/v1/enroll/start",
            &json!({"code": code_, "device_public_key": d.device_public()}),
        )
        .await;
    let mut cred = d.register_json(&start["options"], &Tweak::default());
    cred["response"]["attestationObject"] = json!(b64(&[0xa3, 0x63, 0x66, 0x6d]));
    let (s, _) = b
        .post(
            "/v1/enroll/finish",
            &json!({"ceremony_id": start["ceremony_id"], "credential": cred, "name": "k"}),
        )
        .await;
    assert!(s.is_client_error(), "{s}");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

#[tokio::test]
async fn a14_account_locks_after_the_configured_failures_of_her_own_key_and_throttles() {
    let b = Broker::start_with(
        "[auth]\nlock_after_failures = 5\nthrottle_after_failures = 2\nthrottle_ms = 1000\n",
    )
    .await;
    let mut c = b.enrolled("ada").await;
    // A bad signature is anyone's failure: throttled, never counted towards the lock (N1).
    let garbage = Tweak {
        signature: Some(vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]),
        ..Default::default()
    };
    let body = c.login_answer(&b, &garbage).await;
    assert_eq!(
        b.post("/v1/login/finish", &body).await.0,
        StatusCode::UNAUTHORIZED
    );
    let ada = paw_broker::identity::user_by_name(&b.db, "ada")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ada.failed_attempts, 0, "a bad signature is not counted");
    // Her own key signing for another origin is evidence tied to her key.
    let bad = Tweak {
        origin: Some("https://evil.example".into()),
        ..Default::default()
    };
    let body = c.login_answer(&b, &bad).await;
    assert_eq!(
        b.post("/v1/login/finish", &body).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Throttled right after the second failure (per user and source).
    let (s, v) = c.login_start(&b).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    // The delay doubles with each failure (1, 2, 4 s): wait each out.
    for _ in 0..4 {
        b.advance(10_000);
        let body = c.login_answer(&b, &bad).await;
        assert_eq!(
            b.post("/v1/login/finish", &body).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert!(b.user_locked("ada").await);
    b.advance(3600 * 1000);
    // Locked: a correct assertion is refused, and says so once her key signed.
    let body = c.login_answer(&b, &Tweak::default()).await;
    let (s, v) = b.post("/v1/login/finish", &body).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "account_locked"));
    // The live session is refused too.
    let (s, _) = c.call(&b, "GET", "/v1/me", None).await;
    assert!(s == StatusCode::FORBIDDEN || s == StatusCode::UNAUTHORIZED);

    // Only an administrator's unlock (`pawd unlock`) lets the user back in.
    let r = paw_broker::identity::unlock(&b.db, "ada", None)
        .await
        .unwrap();
    assert!(r.account_unlocked);
    assert!(!b.user_locked("ada").await);
    let body = c.login_answer(&b, &Tweak::default()).await;
    assert_eq!(b.post("/v1/login/finish", &body).await.0, StatusCode::OK);
    let e = paw_broker::identity::unlock(&b.db, "nobody", None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), paw_proto::ErrorCode::NotFound);
}

#[tokio::test]
async fn a14_default_lock_threshold_is_at_most_100() {
    let b = Broker::start().await;
    assert!(b.config.auth.lock_after_failures <= 100);
}

#[tokio::test]
async fn a15_idle_15_min_requires_reauthentication() {
    let b = Broker::start().await;
    let c = b.enrolled("ada").await;
    b.advance(14 * 60 * 1000);
    assert_eq!(c.call(&b, "GET", "/v1/me", None).await.0, StatusCode::OK);
    b.advance(15 * 60 * 1000);
    let (s, v) = c.call(&b, "GET", "/v1/me", None).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "reauthentication_required"),
        "{v}"
    );
}

#[tokio::test]
async fn a15_background_status_probe_does_not_keep_an_idle_session_alive() {
    let b = Broker::start().await;
    let c = b.enrolled("ada").await;
    // The app polls /v1/me for its status bar; an unattended workstation must still time out.
    for _ in 0..2 {
        b.advance(5 * 60 * 1000);
        assert_eq!(c.call(&b, "GET", "/v1/me", None).await.0, StatusCode::OK);
    }
    b.advance(5 * 60 * 1000);
    let (s, v) = c.call(&b, "GET", "/v1/me", None).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "reauthentication_required"),
        "{v}"
    );
}

#[tokio::test]
async fn a15_absolute_12_h_requires_reauthentication_despite_activity() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    // Active every 10 minutes, refreshing the access token as a client would.
    for _ in 0..(12 * 6 - 1) {
        b.advance(10 * 60 * 1000);
        let (s, v) = c.refresh(&b).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(c.call(&b, "GET", "/v1/keys", None).await.0, StatusCode::OK);
    }
    b.advance(10 * 60 * 1000);
    let (s, v) = c.call(&b, "GET", "/v1/me", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, v) = c.refresh(&b).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    // A fresh login works.
    c.login(&b).await.unwrap();
    assert_eq!(c.call(&b, "GET", "/v1/me", None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a15_access_token_lives_at_most_15_min() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    let login = c.login(&b).await.unwrap();
    assert!(login["access_expires_at_ms"].as_i64().unwrap() - b.now() <= 15 * 60 * 1000);
    assert_eq!(
        login["session_expires_at_ms"].as_i64().unwrap(),
        b.now() + 12 * 3600 * 1000
    );
    let _ = T0;
}

#[tokio::test]
async fn a16_revoked_key_fails_the_next_assertion() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    let keys = c.call(&b, "GET", "/v1/keys", None).await.1;
    let id = keys["keys"][0]["id"].as_str().unwrap().to_owned();
    // A step-up started before the revocation.
    let pending = c.stepup(&b, &session_action("g"), &Tweak::default()).await;
    // Revoking requires a key-management step-up for exactly this key.
    let (s, _) = c
        .call(
            &b,
            "POST",
            &format!("/v1/keys/{id}/revoke"),
            Some(&json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let wrong = c
        .stepup(
            &b,
            &Action::KeyManagement {
                operation: "revoke".into(),
                credential: "other".into(),
            },
            &Tweak::default(),
        )
        .await;
    let (s, v) = c
        .call(
            &b,
            "POST",
            &format!("/v1/keys/{id}/revoke"),
            Some(&json!({"stepup": wrong})),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "challenge_invalid"),
        "{v}"
    );
    let stepup = c
        .stepup(
            &b,
            &Action::KeyManagement {
                operation: "revoke".into(),
                credential: id.clone(),
            },
            &Tweak::default(),
        )
        .await;
    let (s, v) = c
        .call(
            &b,
            "POST",
            &format!("/v1/keys/{id}/revoke"),
            Some(&json!({"stepup": stepup})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["keys"][0]["revoked_at_ms"].is_i64());
    // The assertion prepared before the revocation is refused.
    let (s, v) = c.stepup_finish(&b, &pending).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "webauthn_rejected"),
        "{v}"
    );
    // And it no longer signs her in: a login start answers as for any name (N2), but her
    // key's signature is refused.
    let body = c.login_answer(&b, &Tweak::default()).await;
    let (s, v) = b.post("/v1/login/finish", &body).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "webauthn_rejected"),
        "{v}"
    );
}

#[tokio::test]
async fn keys_rename_and_add_a_second_key_with_step_up() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    let keys = c.call(&b, "GET", "/v1/keys", None).await.1;
    let id = keys["keys"][0]["id"].as_str().unwrap().to_owned();
    let (s, v) = c
        .call(
            &b,
            "POST",
            &format!("/v1/keys/{id}/rename"),
            Some(&json!({"name": "blue key"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["keys"][0]["name"], "blue key");
    let (s, v) = c
        .call(
            &b,
            "POST",
            "/v1/keys/nope/rename",
            Some(&json!({"name": "x"})),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"));

    // Second key: registration ceremony + key-management step-up with the first key.
    let (s, start) = c.call(&b, "POST", "/v1/keys/register/start", None).await;
    assert_eq!(s, StatusCode::OK, "{start}");
    let mut second = Client::new("ada");
    let cred = second.register_json(&start["options"], &Tweak::default());
    let stepup = c
        .stepup(
            &b,
            &Action::KeyManagement {
                operation: "add".into(),
                credential: "spare".into(),
            },
            &Tweak::default(),
        )
        .await;
    let body = json!({"ceremony_id": start["ceremony_id"], "credential": cred, "name": "spare", "stepup": stepup});
    let (s, v) = c
        .call(&b, "POST", "/v1/keys/register/finish", Some(&body))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["keys"].as_array().unwrap().len(), 2);
    // The second key can step up.
    std::mem::swap(&mut c.key, &mut second.key);
    assert_eq!(
        stepup_with(&b, &mut c, Tweak::default()).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn b11_refresh_rotates_and_reuse_revokes_the_family() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    let old = c.refresh.clone().unwrap();
    let (s, v) = c.refresh(&b).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_ne!(c.refresh.as_deref(), Some(old.as_str()));
    assert_eq!(c.call(&b, "GET", "/v1/me", None).await.0, StatusCode::OK);
    // Replaying the rotated-out token revokes the whole session: new tokens die too.
    let (s, v) = c.refresh_with(&b, &old).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "unauthenticated"),
        "{v}"
    );
    assert_eq!(
        c.call(&b, "GET", "/v1/me", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(c.refresh(&b).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn b11_refresh_past_the_absolute_lifetime_is_refused() {
    let b = Broker::start().await;
    let mut c = b.enrolled("ada").await;
    b.advance(12 * 3600 * 1000);
    let (s, v) = c.refresh(&b).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "reauthentication_required"),
        "{v}"
    );
}

#[tokio::test]
async fn b11_device_proof_missing_wrong_key_stale_or_replayed_is_refused() {
    let b = Broker::start().await;
    let c = b.enrolled("ada").await;
    let token = c.access.clone().unwrap();
    let auth = ("authorization".to_owned(), format!("Bearer {token}"));
    let hdr = paw_proto::device_proof::HEADER.to_owned();
    // GET /v1/me with the bearer token and the given proof header value.
    let me = |p: String| {
        let headers = [auth.clone(), (hdr.clone(), p)];
        let b = &b;
        async move { b.send("GET", "/v1/me", Vec::new(), &headers).await }
    };
    // Missing.
    let (s, v) = b
        .send("GET", "/v1/me", Vec::new(), std::slice::from_ref(&auth))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "unauthenticated"));
    // Another key.
    let other = ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]);
    let p = proof(&other, "GET", "/v1/me", b"", &token, b.now(), [1; 16]);
    assert_eq!(me(p).await.0, StatusCode::UNAUTHORIZED);
    // Over another path, or another token.
    let p = proof(&c.device, "GET", "/v1/keys", b"", &token, b.now(), [2; 16]);
    assert_eq!(me(p).await.0, StatusCode::UNAUTHORIZED);
    let p = proof(
        &c.device,
        "GET",
        "/v1/me",
        b"",
        "other-token",
        b.now(),
        [3; 16],
    );
    assert_eq!(me(p).await.0, StatusCode::UNAUTHORIZED);
    // Outside the skew window.
    for dt in [-61_000, 61_000] {
        let p = proof(
            &c.device,
            "GET",
            "/v1/me",
            b"",
            &token,
            b.now() + dt,
            [4; 16],
        );
        assert_eq!(me(p).await.0, StatusCode::UNAUTHORIZED);
    }
    // Replayed nonce.
    let p = proof(&c.device, "GET", "/v1/me", b"", &token, b.now(), [6; 16]);
    assert_eq!(me(p.clone()).await.0, StatusCode::OK);
    let (s, v) = me(p).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "unauthenticated"));
    assert!(v["message"].as_str().unwrap().contains("replay"));
    // A stolen refresh token without the device key is useless.
    let rt = c.refresh.clone().unwrap();
    let body = serde_json::to_vec(&json!({"refresh_token": rt})).unwrap();
    let p = proof(
        &other,
        "POST",
        "/v1/token/refresh",
        &body,
        &rt,
        b.now(),
        [7; 16],
    );
    assert_eq!(
        b.send("POST", "/v1/token/refresh", body, &[(hdr.clone(), p)])
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn f1_identity_endpoints_reject_extra_missing_and_wrong_typed_fields() {
    let b = Broker::start().await;
    let c = b.enrolled("ada").await;
    for (path, body) in [
        ("/v1/enroll/start", json!({"code": "x"})),
        (
            "/v1/enroll/start",
            json!({"code": "x", "device_public_key": "AAAA", "x": 1}),
        ),
        (
            "/v1/enroll/start",
            json!({"code": 1, "device_public_key": "AAAA"}),
        ),
        (
            "/v1/enroll/finish",
            json!({"ceremony_id": "x", "name": "k"}),
        ),
        ("/v1/login/start", json!({"user": ["ada"]})),
        ("/v1/login/start", json!({})),
        (
            "/v1/login/finish",
            json!({"challenge": "x", "credential": {}}),
        ),
        ("/v1/token/refresh", json!({"refresh_token": 5})),
    ] {
        let (s, v) = b.post(path, &body).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{path} {body}"
        );
    }
    for (path, body) in [
        ("/v1/stepup/start", json!({"action": {"kind": "session"}})),
        ("/v1/stepup/start", json!({"action": {"kind": "nope"}})),
        ("/v1/stepup/finish", json!({"challenge": "x"})),
        ("/v1/keys/k/rename", json!({"name": "x", "extra": 1})),
        ("/v1/keys/k/revoke", json!({"stepup": 1})),
    ] {
        let (s, v) = c.call(&b, "POST", path, Some(&body)).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{path} {body}"
        );
    }
    // A device key that is not 32 bytes.
    let code_ = b.invite("bob", &[]).await;
    let (s, _) = b
        .post(
            "/v1/enroll/start",
            &json!({"code": code_, "device_public_key": b64(&[1u8; 31])}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
