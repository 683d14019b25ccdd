//! Case A11 on a real broker process (issue #19 item 5): two WebAuthn assertions carrying the
//! same signature counter, sent at the same moment over two HTTPS connections to a real `pawd`,
//! many times over. The in-process test (`crates/paw-broker/tests/identity.rs::a11_*`) sends
//! them one after the other; here they race inside the broker, so only the compare-and-swap on
//! the stored counter can keep both from landing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use paw_fido::FailureKnobs;
use paw_tests::replicas::{Options, Replicas, Store};
use paw_tests::virtual_user::{Reply, VirtualUser};
use serde_json::Value;
use tokio::sync::Barrier;

/// A11 on PostgreSQL, where the broker's two requests run on two database connections at once.
/// Each round: a fresh user enrolls a fresh virtual key; it answers two login challenges with
/// the same counter (one above the stored one, so each alone would pass); the two answers leave
/// through two HTTPS clients (two connections) released by a barrier. Exactly one is accepted
/// and the other refused `webauthn_rejected`; then the key is locked: `GET /v1/keys` (with the
/// winner's tokens) shows it locked and a further, well-formed login with a higher counter is
/// refused. At the end every round's key has exactly one `credential_locked` audit record
/// (actor `pawd`, reason `counter_regression`, `alert: true`) and one alert line in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a11_same_counter_assertions_race_over_real_https_one_wins_key_locked_postgres() {
    race(
        Store::Postgres,
        "a11_same_counter_assertions_race_over_real_https_one_wins_key_locked_postgres",
    )
    .await;
}

/// The same on SQLite (one writer at a time in the file; the broker's pool still runs the two
/// requests concurrently up to the write).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a11_same_counter_assertions_race_over_real_https_one_wins_key_locked_sqlite() {
    race(
        Store::Sqlite,
        "a11_same_counter_assertions_race_over_real_https_one_wins_key_locked_sqlite",
    )
    .await;
}

async fn race(store: Store, test: &str) {
    // 200 rounds unless PAW_A11_ROUNDS lowers it for a quick local run (paw-counts; the suite
    // checks the full count ran).
    let rounds = paw_counts::A11_ROUNDS.get();
    let r = Replicas::start_with(Options {
        replicas: 1,
        store,
        ..Options::default()
    })
    .await
    .unwrap();
    let url = r.url(0);
    let mut double_accepts = 0;
    let mut locked_ids = Vec::new();
    for round in 0..rounds {
        // One client per side of the race, each with its own connection pool: the two answers
        // never share a connection (HTTP/2 would multiplex them on one otherwise). Each round
        // comes from its own loopback address, as another machine would: the sign-in throttle
        // counts failures per source (N1), and every round makes two on purpose.
        let source = std::net::IpAddr::from([127, 1, (round / 250) as u8, (round % 250 + 1) as u8]);
        let sides = [
            r.client_from(source).unwrap(),
            r.client_from(source).unwrap(),
        ];
        let mut user = r.enrolled(&format!("racer{round}"), &[], 0).await.unwrap();
        // A challenge for after the race, taken while the key is still usable.
        let spare = user.login_start(&url).await.unwrap().ok().unwrap();
        let [x, y] = same_counter_answers(&mut user, &url).await;
        let raced = counter(&x);
        // Which answer goes through which connection alternates, so neither side is favoured.
        let (a, b) = if round % 2 == 0 { (x, y) } else { (y, x) };
        let barrier = Arc::new(Barrier::new(2));
        let send = |client: reqwest::Client, body: Value| {
            let barrier = barrier.clone();
            let url = url.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                post(&client, &url, body).await
            })
        };
        let ta = send(sides[0].clone(), a);
        let tb = send(sides[1].clone(), b);
        let replies = [ta.await.unwrap(), tb.await.unwrap()];
        let accepted: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
        // Both accepted is the failure this test is for: counted over every round, so a
        // broken compare-and-swap shows how often it lets both through, then fails below.
        if accepted.len() == 2 {
            double_accepts += 1;
            continue;
        }
        assert_eq!(
            accepted.len(),
            1,
            "round {round}: one of two same-counter assertions is accepted: {replies:?}"
        );
        let refused = replies.iter().find(|r| r.status != 200).unwrap();
        assert_eq!(
            (refused.status, refused.code()),
            (401, "webauthn_rejected"),
            "round {round}: {refused:?}"
        );

        // Locked: the winner's session sees the key locked, and the next good answer (a higher
        // counter, knob off) is refused.
        user.access = accepted[0].body["access_token"].as_str().map(str::to_owned);
        let keys = user
            .call(&url, "GET", "/v1/keys", None)
            .await
            .unwrap()
            .ok()
            .unwrap();
        assert_eq!(keys["keys"][0]["locked"], true, "round {round}: {keys}");
        let answer = user.login_answer(&spare).unwrap();
        assert!(
            counter(&answer) > raced,
            "a good answer: its counter is higher"
        );
        let next = post(&sides[0], &url, answer).await;
        assert_eq!(
            (next.status, next.code()),
            (401, "webauthn_rejected"),
            "round {round}: a locked key signs nobody in: {next:?}"
        );
        locked_ids.push(B64.encode(user.key_mut().credential_id()));
    }
    println!("A11 ({store:?}): ran {rounds} rounds, {double_accepts} double accepts");
    assert_eq!(
        double_accepts, 0,
        "rounds in which both same-counter assertions were accepted, of {rounds}"
    );

    // One alert record per round, naming that round's key, and one alert line in the log.
    let records = locked_records(&r, store).await;
    assert_eq!(records.len(), rounds, "{records:?}");
    for id in &locked_ids {
        let mine: Vec<&Value> = records
            .iter()
            .filter(|d| d["credential_id"] == id.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "one credential_locked record for {id}");
        assert_eq!(mine[0]["reason"], "counter_regression", "{}", mine[0]);
        assert_eq!(mine[0]["alert"], true, "{}", mine[0]);
    }
    let log = r.log(0);
    assert_eq!(
        log.matches("credential_counter_regression").count(),
        rounds,
        "one alert line per round in pawd's log"
    );
    let verify = r.pawd(&["audit".to_owned(), "verify".to_owned()]).unwrap();
    assert!(verify.status.success(), "{verify:?}");
    paw_counts::A11_ROUNDS.ran(test, rounds);
}

/// `POST /v1/login/finish` with `body` through `client`.
async fn post(client: &reqwest::Client, url: &str, body: Value) -> Reply {
    let res = client
        .post(format!("{url}/v1/login/finish"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    Reply { status, body }
}

/// Two login answers whose authenticator data carry the same counter, one above the stored one.
/// The key signs the first (counter n+1), then one more that is never sent (n+2), then, told
/// to report one less than its last (as a clone that fell behind would), the second: n+1 again.
async fn same_counter_answers(user: &mut VirtualUser, url: &str) -> [Value; 2] {
    let s1 = user.login_start(url).await.unwrap().ok().unwrap();
    let s2 = user.login_start(url).await.unwrap().ok().unwrap();
    let s3 = user.login_start(url).await.unwrap().ok().unwrap();
    let x = user.login_answer(&s1).unwrap();
    let _unsent = user.login_answer(&s3).unwrap();
    user.key_mut().set_knobs(FailureKnobs {
        counter_regression: true,
        ..FailureKnobs::default()
    });
    let y = user.login_answer(&s2).unwrap();
    user.key_mut().set_knobs(FailureKnobs::default());
    assert_eq!(counter(&x), counter(&y), "the two answers share a counter");
    assert!(counter(&x) > 0);
    [x, y]
}

/// The signature counter in a login answer's authenticator data (bytes 33..37, big-endian).
fn counter(answer: &Value) -> u32 {
    let ad = B64
        .decode(
            answer["credential"]["response"]["authenticatorData"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    u32::from_be_bytes(ad[33..37].try_into().unwrap())
}

/// The details of every `credential_locked` audit record, checking each is by `pawd`.
async fn locked_records(r: &Replicas, store: Store) -> Vec<Value> {
    let rows: Vec<(String, Value)> = match store {
        Store::Sqlite => common::sqlite_audit(r)
            .await
            .into_iter()
            .filter(|e| e["action"] == "credential_locked")
            .map(|e| (e["actor"].as_str().unwrap().to_owned(), e["detail"].clone()))
            .collect(),
        Store::Postgres => common::psql(
            r,
            "SELECT actor || ' ' || detail FROM audit_log \
             WHERE action = 'credential_locked' ORDER BY seq",
        )
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (actor, detail) = l.split_once(' ').unwrap();
            (actor.to_owned(), serde_json::from_str(detail).unwrap())
        })
        .collect(),
    };
    for (actor, detail) in &rows {
        assert_eq!(actor, "pawd", "{detail}");
    }
    rows.into_iter().map(|(_, d)| d).collect()
}

mod common;
