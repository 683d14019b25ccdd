//! The workstation core against a real broker over HTTPS: enroll with an invite code and the
//! INSECURE virtual key, sign in, add and revoke a security key with key-management step-ups,
//! sign out and back in. On SQLite and on a real PostgreSQL (which also runs the broker's
//! identity migration against a real server).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use paw_broker::config::DatabaseUrl;
use paw_broker::init::{init_with, InitExtras, InitOptions};
use paw_broker::store::{Create, Db};
use paw_broker::{BoundServer, Config};
use paw_client::{
    load_virtual_authenticator, ClientError, Core, KeyStore, MemoryKeyStore, TokenStore,
    VIRTUAL_KEY_ENTRY,
};
use paw_fido::attestation::{attestation_ca_pem, VIRTUAL_KEY_AAGUID};
use paw_fido::{Authenticator, VirtualAuthenticator};
use paw_proto::action::Purpose;
use paw_proto::ipc::{BuildInfo, EnrollInput, KeyAction, LoginInput, SettingsInput};
use paw_proto::ErrorCode;
use paw_tests::postgres::TempPostgres;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The real clock plus an offset the test moves, so token expiry is tested without sleeping.
#[derive(Default)]
struct OffsetClock(AtomicI64);

impl paw_broker::base::clock::Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        i64::try_from(real).unwrap() + self.0.load(Ordering::SeqCst)
    }
}

struct Broker {
    dir: tempfile::TempDir,
    clock: Arc<OffsetClock>,
    port: u16,
    ca: PathBuf,
    db: Db,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), paw_broker::BrokerError>>>,
}

impl Broker {
    /// `pawd init` trusting the virtual key's attestation CA, then serve on loopback.
    async fn start(database_url: Option<String>) -> Self {
        paw_broker::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let port = paw_tests::free_port().unwrap();
        let report = init_with(
            &InitOptions {
                dir: dir.path().join("broker"),
                listen: format!("127.0.0.1:{port}").parse().unwrap(),
                database_url: database_url.map(DatabaseUrl::new),
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
        assert_eq!(config.webauthn.origin, format!("https://localhost:{port}"));
        let clock = Arc::new(OffsetClock::default());
        let server = BoundServer::bind_with_clock(&config, clock.clone())
            .await
            .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        let db = Db::connect(&config.database_url, Create::Never)
            .await
            .unwrap();
        Self {
            dir,
            clock,
            port,
            ca: report.ca_cert_path,
            db,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `pawd invite USER --role admin`, through the library.
    async fn invite(&self, user: &str) -> String {
        use paw_broker::base::clock::Clock;
        let now = self.clock.now_ms();
        paw_broker::identity::create_invite(&self.db, now, user, &["admin".to_owned()])
            .await
            .unwrap()
            .0
    }

    /// A workstation core pointed at this broker.
    async fn core(
        &self,
        name: &str,
        keystore: Arc<MemoryKeyStore>,
        authenticator: Arc<dyn Authenticator>,
    ) -> Core {
        let core = Core::open(
            self.dir.path().join(name),
            BuildInfo {
                version: "test".into(),
                debug: true,
                virtual_key: false,
            },
            keystore,
            Some(authenticator),
        )
        .unwrap();
        core.save_settings(SettingsInput {
            broker_url: format!("https://localhost:{}", self.port),
            fallback_urls: Vec::new(),
            ca_path: self.ca.display().to_string(),
        })
        .await
        .unwrap();
        core
    }

    async fn stop(mut self) {
        self.db.close().await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("server did not stop in time")
                .unwrap()
                .unwrap();
        }
    }
}

fn code(e: &ClientError) -> ErrorCode {
    e.code()
}

async fn identity_flow(database_url: Option<String>) {
    let broker = Broker::start(database_url).await;
    let keystore = Arc::new(MemoryKeyStore::new());
    let authenticator = Arc::new(VirtualAuthenticator::new());
    let core = broker
        .core("ws", keystore.clone(), authenticator.clone())
        .await;

    // Nobody is signed in yet; identity calls say so.
    let status = core.status().await;
    assert!(status.user.is_none());
    assert!(status.build.virtual_key, "the core marks the INSECURE key");
    assert_eq!(
        code(&core.list_keys().await.unwrap_err()),
        ErrorCode::Unauthenticated
    );

    // Enroll: the user ends signed in.
    let invite = broker.invite("alice").await;
    let user = core
        .enroll(EnrollInput {
            code: invite.clone(),
            key_name: "primary".into(),
        })
        .await
        .unwrap();
    assert_eq!(user.name, "alice");
    assert_eq!(user.roles, vec!["admin".to_owned()]);
    let status = core.status().await;
    assert_eq!(status.user.as_ref().map(|u| u.name.as_str()), Some("alice"));

    // The invite is single use.
    let other = broker
        .core(
            "ws2",
            Arc::new(MemoryKeyStore::new()),
            Arc::new(VirtualAuthenticator::new()),
        )
        .await;
    let e = other
        .enroll(EnrollInput {
            code: invite,
            key_name: "again".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::InviteInvalid);

    // Secrets live in the keystore only: device key, tokens, the virtual key's state.
    let mut names = keystore.names();
    names.sort();
    assert_eq!(names, vec!["device-key", "tokens", VIRTUAL_KEY_ENTRY]);

    let keys = core.list_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].name, "primary");
    let first = keys[0].id.clone();

    let keys = core
        .rename_key(paw_proto::ipc::RenameKeyInput {
            id: first.clone(),
            name: "main key".into(),
        })
        .await
        .unwrap();
    assert_eq!(keys[0].name, "main key");

    // Add a second key with a key-management step-up.
    let prompt = core
        .prepare_step_up(KeyAction::Add {
            name: "backup key".into(),
        })
        .await
        .unwrap();
    assert_eq!(prompt.purpose, Purpose::KeyManagement);
    assert!(prompt.description.contains("backup key"), "{prompt:?}");
    assert_eq!(prompt.action_hash.len(), 64);
    assert!(prompt.expires_in_secs > 0 && prompt.expires_in_secs <= 300);
    let keys = core.confirm_step_up(prompt.id.clone()).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().any(|k| k.name == "backup key"));
    assert_eq!(authenticator.credential_count().unwrap(), 2);

    // A prompt is single use.
    let e = core.confirm_step_up(prompt.id).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::ChallengeInvalid);

    // Revoke the first key.
    let prompt = core
        .prepare_step_up(KeyAction::Revoke { id: first.clone() })
        .await
        .unwrap();
    assert!(prompt.description.contains(&first), "{prompt:?}");
    let keys = core.confirm_step_up(prompt.id).await.unwrap();
    let revoked = keys.iter().find(|k| k.id == first).unwrap();
    assert!(revoked.revoked_at_ms.is_some());
    let second = keys.iter().find(|k| k.id != first).unwrap().id.clone();
    assert!(keys
        .iter()
        .find(|k| k.id == second)
        .unwrap()
        .revoked_at_ms
        .is_none());

    // Cancel removes a prompt.
    let prompt = core
        .prepare_step_up(KeyAction::Revoke { id: second.clone() })
        .await
        .unwrap();
    core.cancel_step_up(prompt.id.clone()).await.unwrap();
    let e = core.confirm_step_up(prompt.id).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::ChallengeInvalid);
    // An unknown id is refused before anything touches the key.
    let e = core.confirm_step_up("nope".into()).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::ChallengeInvalid);

    // Near the access token's end (15 min) the core rotates the pair with a device proof over
    // the refresh token, and carries on. `status()` resyncs the broker clock first.
    let before = TokenStore::new(keystore.clone()).load().unwrap().unwrap();
    broker
        .clock
        .0
        .fetch_add(14 * 60_000 + 45_000, Ordering::SeqCst);
    let status = core.status().await;
    assert_eq!(status.user.map(|u| u.name).as_deref(), Some("alice"));
    let after = TokenStore::new(keystore.clone()).load().unwrap().unwrap();
    assert_ne!(before.access.expose(), after.access.expose());
    assert_ne!(before.refresh.expose(), after.refresh.expose());
    assert!(after.access_expires_ms > before.access_expires_ms);
    assert_eq!(core.list_keys().await.unwrap().len(), 2);

    // Idle past 15 min: the broker ends the session, the core forgets user and tokens.
    broker.clock.0.fetch_add(16 * 60_000, Ordering::SeqCst);
    assert!(core.status().await.user.is_none());
    assert!(TokenStore::new(keystore.clone()).load().unwrap().is_none());
    core.login(LoginInput {
        user: "alice".into(),
    })
    .await
    .unwrap();
    assert!(core.status().await.user.is_some());

    // Sign out: tokens gone, no user.
    core.logout().await.unwrap();
    assert!(core.status().await.user.is_none());
    assert!(TokenStore::new(keystore.clone()).load().unwrap().is_none());
    assert_eq!(
        code(&core.list_keys().await.unwrap_err()),
        ErrorCode::Unauthenticated
    );

    // Sign in again with the remaining key.
    let user = core
        .login(LoginInput {
            user: "alice".into(),
        })
        .await
        .unwrap();
    assert_eq!(user.name, "alice");
    assert_eq!(core.list_keys().await.unwrap().len(), 2);

    // A restart: the virtual key comes back from the keyring with its counters, so the broker
    // (which refuses a counter that does not advance) accepts it.
    drop(core);
    let restored = load_virtual_authenticator(keystore.as_ref(), None)
        .unwrap()
        .unwrap();
    let core = Core::open(
        broker.dir.path().join("ws"),
        BuildInfo {
            version: "test".into(),
            debug: true,
            virtual_key: false,
        },
        keystore.clone(),
        Some(restored),
    )
    .unwrap();
    assert_eq!(
        core.status().await.user.map(|u| u.name).as_deref(),
        Some("alice"),
        "the stored tokens still sign in after a restart"
    );
    core.logout().await.unwrap();
    core.login(LoginInput {
        user: "alice".into(),
    })
    .await
    .unwrap();
    assert!(keystore.get(VIRTUAL_KEY_ENTRY).unwrap().is_some());

    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_flow_on_sqlite() {
    identity_flow(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_flow_on_postgres() {
    let pg = TempPostgres::start().unwrap();
    identity_flow(Some(pg.url())).await;
}

/// Without an authenticator the core opens, and identity calls fail with a clear code.
#[tokio::test(flavor = "multi_thread")]
async fn identity_without_authenticator_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let core = Core::open(
        dir.path().join("ws"),
        BuildInfo {
            version: "test".into(),
            debug: true,
            virtual_key: true,
        },
        Arc::new(MemoryKeyStore::new()),
        None,
    )
    .unwrap();
    assert!(!core.status().await.build.virtual_key);
    let e = core
        .login(LoginInput {
            user: "alice".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::SecurityKeyMissing);
    assert!(e.to_string().contains("no security key"), "{e}");
}
