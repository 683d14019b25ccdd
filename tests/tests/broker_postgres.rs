//! pawd against a real PostgreSQL, and the same assertions against SQLite, so both backends
//! stay equivalent.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use paw_broker::config::DatabaseUrl;
use paw_broker::init::{check_config, init, InitOptions};
use paw_broker::store::{Create, Db};
use paw_broker::{BoundServer, Config};
use paw_proto::http::{DatabaseKind, Health};
use paw_proto::{ApiError, ErrorCode};
use paw_tests::postgres::TempPostgres;

fn client_trusting(ca_pem: &std::path::Path) -> reqwest::Client {
    let pem = std::fs::read(ca_pem).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// init → check → serve → healthz → restart, on whichever backend `database_url` selects.
async fn broker_lifecycle(database_url: Option<String>, expected: DatabaseKind) {
    paw_broker::install_crypto_provider();
    let tmp = tempfile::tempdir().unwrap();
    let report = init(&InitOptions {
        dir: tmp.path().join("broker"),
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.clone().map(DatabaseUrl::new),
        hostname: "localhost".into(),
        force: false,
    })
    .await
    .unwrap();
    assert_eq!(report.database_kind, expected);
    assert!(report.instance_id_created);
    assert_eq!(report.instance_id.len(), 32);
    if let Some(url) = &database_url {
        // The report prints the URL; its password must not be in it.
        let password = url.split(':').nth(2).unwrap().split('@').next().unwrap();
        assert!(!report.to_string().contains(password));
    }

    // Migrations were applied: `pawd check` (the library half of it) passes.
    let config = Config::load_with_env(&report.config_path, Vec::new()).unwrap();
    let check = check_config(&report.config_path, &config).await.unwrap();
    assert_eq!(check.database_kind, expected);
    assert_eq!(
        check.instance_id.as_deref(),
        Some(report.instance_id.as_str())
    );
    let db = Db::connect(&config.database_url, Create::Never)
        .await
        .unwrap();
    assert!(db.pending_migrations().await.unwrap().is_empty());
    assert_eq!(db.kind(), expected);
    db.close().await;

    // Serve over HTTPS.
    let server = BoundServer::bind(&config).await.unwrap();
    assert_eq!(server.database_kind(), expected);
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let client = client_trusting(&report.ca_cert_path);
    let base = format!("https://127.0.0.1:{}", addr.port());
    let res = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let health: Health = res.json().await.unwrap();
    assert_eq!(health.status, "ok");
    assert_eq!(health.database, expected);
    assert_eq!(health.instance_id, report.instance_id);
    // F1 holds whatever the backend.
    let res = client
        .get(format!("{base}/healthz?shallow=yes"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<ApiError>().await.unwrap().code,
        ErrorCode::BadRequest
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    // A restart re-runs migrations (a no-op) and keeps the instance id.
    let again = BoundServer::bind(&config).await.unwrap();
    assert_eq!(again.instance_id(), report.instance_id);
    drop(again);

    // Re-init with --force over the same database keeps the instance's identity.
    let report2 = init(&InitOptions {
        dir: tmp.path().join("broker"),
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.map(DatabaseUrl::new),
        hostname: "localhost".into(),
        force: true,
    })
    .await
    .unwrap();
    assert_eq!(report2.instance_id, report.instance_id);
    assert!(!report2.instance_id_created);
    assert_ne!(report2.ca_fingerprint, report.ca_fingerprint);
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_lifecycle_on_postgres() {
    let pg = TempPostgres::start().unwrap();
    broker_lifecycle(Some(pg.url()), DatabaseKind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_lifecycle_on_sqlite() {
    broker_lifecycle(None, DatabaseKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_an_unmigrated_postgres_database() {
    paw_broker::install_crypto_provider();
    let pg = TempPostgres::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let report = init(&InitOptions {
        dir: tmp.path().join("broker"),
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: Some(DatabaseUrl::new(pg.url())),
        hostname: "localhost".into(),
        force: false,
    })
    .await
    .unwrap();
    let fresh = pg.create_database("paw_fresh").unwrap();
    let config = Config::load_with_env(
        &report.config_path,
        vec![("PAWD_DATABASE_URL".to_owned(), fresh)],
    )
    .unwrap();
    let err = check_config(&report.config_path, &config)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StorageUnavailable);
    assert!(err.to_string().contains("not applied"), "{err}");
    assert!(!err.to_string().contains(&pg.url()), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_is_503_when_postgres_goes_away() {
    paw_broker::install_crypto_provider();
    let pg = TempPostgres::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let report = init(&InitOptions {
        dir: tmp.path().join("broker"),
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: Some(DatabaseUrl::new(pg.url())),
        hostname: "localhost".into(),
        force: false,
    })
    .await
    .unwrap();
    let config = Config::load_with_env(&report.config_path, Vec::new()).unwrap();
    let server = BoundServer::bind(&config).await.unwrap();
    let base = format!("https://127.0.0.1:{}", server.local_addr().port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let client = client_trusting(&report.ca_cert_path);
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    drop(pg);
    let res = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let err: ApiError = res.json().await.unwrap();
    assert_eq!(err.code, ErrorCode::StorageUnavailable);
    // The cheap probe still answers: the process is alive even if its store is not.
    let res = client
        .get(format!("{base}/healthz?shallow=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[test]
fn temp_postgres_cleans_up_after_itself() {
    let pg = TempPostgres::start().unwrap();
    let dir = pg.dir().unwrap().to_path_buf();
    let port = pg.port();
    assert!(dir.join("data/PG_VERSION").exists());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert!(!format!("{pg:?}").contains(&pg.url()));
    drop(pg);
    assert!(!dir.exists(), "temp dir removed");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "server stopped"
    );
}
