//! The whole login round trip from the client's side, with criterion (BENCHMARKS.md, issue #3).
//!
//! A broker made by `pawd init` (trusting the INSECURE virtual key's attestation CA) serves
//! HTTPS on 127.0.0.1 in this process, SQLite in a temp dir. The workstation core
//! (`paw_client::Core`, a `MemoryKeyStore`, the virtual key) enrolls once; then each iteration
//! is one `Core::login`: `POST /v1/login/start`, the key's assertion (off the async workers, as
//! for a real key), `POST /v1/login/finish` with the device key, the tokens saved to the key
//! store. The core keeps its HTTPS client, so the TLS connection is reused between logins, as
//! in the running app. A local sign-out (no broker call) between logins is not timed.
//!
//! Criterion reports time per login; it does not report percentiles, so a timed loop of
//! `LOOP_LOGINS` logins afterwards prints mean, p50 and p99.
//!
//! Throttling: every login here succeeds, and a successful verification resets the user's
//! failure count, so any number of logins in a row stays clear of the throttle and the lock;
//! the end of the bench checks that the count is still 0.
//!
//! `cargo bench -p paw-tests --bench login_roundtrip` (criterion options after `--`).
//! Under `cargo test --benches` criterion runs the benchmark once and the loop is short.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use paw_broker::base::clock::SystemClock;
use paw_broker::init::{init_with, InitExtras, InitOptions};
use paw_broker::store::{Create, Db};
use paw_broker::{BoundServer, Config};
use paw_client::{Core, MemoryKeyStore};
use paw_fido::attestation::{attestation_ca_pem, VIRTUAL_KEY_AAGUID};
use paw_fido::VirtualAuthenticator;
use paw_proto::ipc::{BuildInfo, EnrollInput, LoginInput, SettingsInput};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// Logins in the percentile loop (`cargo bench`); 3 under `cargo test --benches`.
const LOOP_LOGINS: usize = 300;
const USER: &str = "alice";

struct Setup {
    _dir: tempfile::TempDir,
    db: Db,
    core: Core,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), paw_broker::BrokerError>>,
}

/// Broker on loopback, a core pointed at it, one enrolled user (signed in after enrollment).
async fn setup() -> Setup {
    paw_broker::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let port = paw_tests::free_port().unwrap();
    let report = init_with(
        &InitOptions {
            dir: dir.path().join("broker"),
            listen: format!("127.0.0.1:{port}").parse().unwrap(),
            database_url: None,
            hostname: "localhost".into(),
            force: false,
        },
        &InitExtras {
            attestation_ca: Some((
                attestation_ca_pem().unwrap(),
                vec![paw_tests::aaguid_string(VIRTUAL_KEY_AAGUID)],
            )),
        },
    )
    .await
    .unwrap();
    let config = Config::load_with_env(&report.config_path, Vec::new()).unwrap();
    let server = BoundServer::bind_with_clock(&config, Arc::new(SystemClock))
        .await
        .unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let db = Db::connect(&config.database_url, Create::Never)
        .await
        .unwrap();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let (invite, _) = paw_broker::identity::create_invite(&db, now, USER, &["admin".to_owned()])
        .await
        .unwrap();

    let core = Core::open(
        dir.path().join("ws"),
        BuildInfo {
            version: "bench".into(),
            debug: false,
            virtual_key: false,
        },
        Arc::new(MemoryKeyStore::new()),
        Some(Arc::new(VirtualAuthenticator::new())),
    )
    .unwrap();
    core.save_settings(SettingsInput {
        broker_url: format!("https://localhost:{port}"),
        fallback_urls: Vec::new(),
        ca_path: report.ca_cert_path.display().to_string(),
    })
    .await
    .unwrap();
    core.enroll(EnrollInput {
        code: invite,
        key_name: "primary".into(),
    })
    .await
    .unwrap();
    Setup {
        _dir: dir,
        db,
        core,
        stop,
        server,
    }
}

/// Signs out locally (untimed), then one timed `Core::login`.
async fn login(core: &Core) -> Duration {
    core.logout().await.unwrap();
    let t = Instant::now();
    let user = core.login(LoginInput { user: USER.into() }).await.unwrap();
    let d = t.elapsed();
    assert_eq!(user.name, USER);
    d
}

fn report(mut lat: Vec<Duration>) {
    lat.sort();
    let n = lat.len();
    let pct = |p: f64| lat[(((n - 1) as f64) * p).round() as usize];
    let mean = lat.iter().sum::<Duration>() / u32::try_from(n).unwrap();
    println!(
        "login/roundtrip: {n} logins: mean {:.2} ms, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, \
         1/mean {:.0}/s",
        mean.as_secs_f64() * 1e3,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat[n - 1].as_secs_f64() * 1e3,
        1.0 / mean.as_secs_f64(),
    );
}

fn bench(c: &mut Criterion, rt: &Runtime, core: &Core) {
    let mut g = c.benchmark_group("login");
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("roundtrip", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += login(core).await;
                }
                total
            })
        })
    });
    g.finish();
}

fn main() {
    // `cargo bench` passes `--bench`; without it (cargo test --benches) criterion runs the
    // benchmark once, and the loop below stays short.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(setup());

    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &rt, &s.core);
    c.final_summary();

    let n = if bench_mode { LOOP_LOGINS } else { 3 };
    let lat = rt.block_on(async {
        let mut lat = Vec::with_capacity(n);
        for _ in 0..n {
            lat.push(login(&s.core).await);
        }
        lat
    });
    report(lat);

    rt.block_on(async {
        // Every login succeeded, so none counted towards the throttle or the lock.
        let user = paw_broker::identity::user_by_name(&s.db, USER)
            .await
            .unwrap()
            .unwrap();
        assert!(!user.locked && user.failed_attempts == 0, "{user:?}");
        s.db.close().await;
        let _ = s.stop.send(());
        tokio::time::timeout(Duration::from_secs(15), s.server)
            .await
            .expect("server did not stop in time")
            .unwrap()
            .unwrap();
    });
}
