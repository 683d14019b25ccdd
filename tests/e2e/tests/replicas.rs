//! The desktop app with two brokers of one deployment (real `pawd` processes on one real
//! PostgreSQL, no load balancer): the app lists both, signs in through the first, and when that
//! broker stops it moves to the second without losing the sign-in. The user then asks for access
//! with a step-up (a privileged action bound to the origin of the broker now in use), and the
//! status bar says which broker it uses and that it is a fallback. Issue #14, item 6.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use paw_e2e::App;
use paw_tests::replicas::{Options, Replicas};

const POLICY: &str = r#"
[groups]
sre = ["ada"]

[[entitlement]]
id = "prod-db"
description = "Administer the production databases"
target_kind = "postgres"
target = "db-*"
role = "dba"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_moves_to_the_other_broker_when_its_broker_stops_and_the_user_keeps_working() {
    let mut r = Replicas::start_with(Options {
        replicas: 0,
        extra_config: POLICY.into(),
        ..Options::default()
    })
    .await
    .unwrap();
    for _ in 0..2 {
        r.add().unwrap();
    }
    r.allow_direct_origins().unwrap();
    for i in 0..2 {
        r.spawn(i).unwrap();
        r.wait_healthy(i).await.unwrap();
    }
    let (a, b) = (r.direct_url(0), r.direct_url(1));
    let app = App::launch_with_settings(
        Some(serde_json::json!({
            "broker_url": a,
            "fallback_urls": [b],
            "ca_path": r.ca_path(),
        })),
        &[],
    )
    .await
    .unwrap();
    app.enroll_with_code(&r.invite("ada", &["admin"]).unwrap(), "ada")
        .await
        .unwrap();
    app.wait_for_text("[data-testid=broker-url]", &a)
        .await
        .unwrap();
    assert!(app
        .text_of("[data-testid=broker-failed-over]")
        .await
        .unwrap()
        .is_none());

    // The broker in use is told to stop (SIGTERM, as an upgrade or a node drain would). It
    // refuses new connections at once, ends the app's event stream and exits.
    let pid = r.pid(0).unwrap().to_string();
    let stopped = Instant::now();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // The app's open event stream does not hold the shutdown for its 10 s grace.
    assert!(r
        .wait_exit(0, Duration::from_secs(3))
        .await
        .unwrap()
        .is_some());
    let exited = stopped.elapsed();

    // At once, a privileged action: it reaches the other broker, the security key signs for
    // that broker's origin, and the grant comes back.
    app.fill_request(
        "prod-db",
        "db-1",
        10,
        "vacuum the orders table after the failover drill",
    )
    .await
    .unwrap();
    app.submit_request("db-1").await.unwrap();
    app.wait_for("[data-testid=grant-row][data-state=active]")
        .await
        .unwrap();
    let granted = stopped.elapsed();

    // The status bar names the broker in use, marked as a fallback, and ada is still signed in.
    app.wait_for_text("[data-testid=broker-url]", &b)
        .await
        .unwrap();
    let shown = stopped.elapsed();
    app.wait_for("[data-testid=broker-failed-over]")
        .await
        .unwrap();
    assert_eq!(
        app.text_of("[data-testid=broker-state]")
            .await
            .unwrap()
            .map(|t| t.contains("Connected")),
        Some(true)
    );
    assert!(app
        .text_of("[data-testid=status-user]")
        .await
        .unwrap()
        .unwrap_or_default()
        .contains("ada"));
    assert!(app
        .text_of("[data-testid=signin-panel]")
        .await
        .unwrap()
        .is_none());
    app.screenshot("broker-failover").await.unwrap();

    eprintln!(
        "failover: the broker exited {:.2} s after SIGTERM; the grant was active {:.1} s after \
         SIGTERM (UI typing included); the status bar showed the fallback after {:.1} s (it \
         polls every 5 s)",
        exited.as_secs_f64(),
        granted.as_secs_f64(),
        shown.as_secs_f64(),
    );
    assert!(
        shown < Duration::from_secs(12),
        "the status bar took {shown:?} to show the fallback broker"
    );
    app.close().await.unwrap();
}
