//! The workstation's audit trail witnessed by a real broker (case D3, app side): every
//! privileged action is cosigned before it runs, a trail whose tail was cut and re-chained is
//! refused and the action does not run, and a broker whose witness key changed is refused.
//! Also measures what the checkpoint round adds to a privileged action.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paw_audit::{LocalTrail, NewEvent};
use paw_broker::init::{init_with, InitExtras, InitOptions};
use paw_broker::{BoundServer, Config};
use paw_client::{load_virtual_authenticator, ClientError, Core, MemoryKeyStore};
use paw_fido::attestation::{attestation_ca_pem, VIRTUAL_KEY_AAGUID};
use paw_fido::VirtualAuthenticator;
use paw_proto::ipc::{BuildInfo, EnrollInput, KeyAction, SecurityKeyView, SettingsInput};
use paw_proto::ErrorCode;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Broker {
    dir: tempfile::TempDir,
    config: Config,
    port: u16,
    ca: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), paw_broker::BrokerError>>>,
}

impl Broker {
    async fn start() -> Self {
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
        let mut b = Self {
            dir,
            config,
            port,
            ca: report.ca_cert_path,
            stop: None,
            task: None,
        };
        b.serve().await;
        b
    }

    async fn serve(&mut self) {
        let server = BoundServer::bind(&self.config).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        self.task = Some(tokio::spawn(server.run(async {
            let _ = stopped.await;
        })));
        self.stop = Some(stop);
    }

    async fn halt(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }

    async fn invite(&self, user: &str) -> String {
        let db = paw_broker::store::Db::connect(
            &self.config.database_url,
            paw_broker::store::Create::Never,
        )
        .await
        .unwrap();
        let code =
            paw_broker::identity::create_invite(&db, real_now_ms(), user, &["admin".to_owned()])
                .await
                .unwrap()
                .0;
        db.close().await;
        code
    }

    /// The broker's own log: actions recorded for `action`.
    async fn logged(&self, action: &str) -> usize {
        let db = paw_broker::store::Db::connect(
            &self.config.database_url,
            paw_broker::store::Create::Never,
        )
        .await
        .unwrap();
        let n = paw_broker::audit::records(&db, 0, 100_000)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.event.action == action)
            .count();
        db.close().await;
        n
    }

    fn witness(&self) -> paw_broker::crypto::witness::Witness {
        paw_broker::crypto::witness::load(&self.config.audit.witness_key).unwrap()
    }

    fn core_dir(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    async fn core(&self, keystore: Arc<MemoryKeyStore>) -> Core {
        let authenticator = load_virtual_authenticator(keystore.as_ref(), None)
            .unwrap()
            .unwrap_or_else(|| Arc::new(VirtualAuthenticator::new()));
        let core = Core::open(
            self.core_dir(),
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
}

fn real_now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A privileged action that is cheap to repeat: add a security key with a step-up.
async fn add_key(core: &Core, name: &str) -> Result<Vec<SecurityKeyView>, ClientError> {
    let prompt = core
        .prepare_step_up(KeyAction::Add { name: name.into() })
        .await?;
    core.confirm_step_up(prompt.id).await
}

async fn enrolled() -> (Broker, Core, Arc<MemoryKeyStore>) {
    let broker = Broker::start().await;
    let keystore = Arc::new(MemoryKeyStore::new());
    let core = broker.core(keystore.clone()).await;
    let code = broker.invite("alice").await;
    // Enrolment (and its sign-in) is not witnessed: there is no session to upload with yet.
    core.enroll(EnrollInput {
        code,
        key_name: "primary".into(),
    })
    .await
    .unwrap();
    assert!(!broker.core_dir().join("witness.json").exists());
    (broker, core, keystore)
}

/// What an attacker with the files does: keep the records up to `keep`, drop the rest and the
/// checkpoints, and write the kept records into a fresh trail, which re-chains them to the
/// same hashes (so the cut trail verifies on its own).
async fn cut_tail(trail_path: &Path, keep: u64) {
    let old = LocalTrail::open(trail_path).await.unwrap();
    let kept = old.records(0, u32::try_from(keep).unwrap()).await.unwrap();
    old.close().await;
    let tmp = trail_path.with_file_name("cut.db");
    let cut = LocalTrail::open(&tmp).await.unwrap();
    let events = kept
        .iter()
        .map(|r| {
            let e = &r.event;
            NewEvent::new(
                e.actor.clone(),
                e.action.clone(),
                e.subject.clone(),
                e.outcome,
                e.detail.clone(),
                e.time_ms,
            )
        })
        .collect();
    let rechained = cut.append_batch(events).await.unwrap();
    assert_eq!(rechained.last().unwrap().hash, kept.last().unwrap().hash);
    cut.verify().await.unwrap();
    cut.close().await;
    for ext in ["db-wal", "db-shm"] {
        let _ = std::fs::remove_file(trail_path.with_extension(ext));
    }
    std::fs::rename(&tmp, trail_path).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn d3_app_actions_are_cosigned_and_a_cut_tail_stops_the_next_action() {
    let (broker, core, keystore) = enrolled().await;
    let trail_path = broker.core_dir().join("audit.db");

    // Each privileged action is cosigned before it runs; the cosignature is kept.
    assert_eq!(add_key(&core, "second").await.unwrap().len(), 2);
    assert_eq!(add_key(&core, "third").await.unwrap().len(), 3);
    let witness = broker.witness().public_key();
    let trail = LocalTrail::open(&trail_path).await.unwrap();
    let stored = trail.checkpoints().await.unwrap();
    assert_eq!(stored.len(), 2, "one checkpoint per privileged action");
    for s in &stored {
        assert_eq!(s.cosignatures.len(), 1);
        paw_audit::Cosignature::from_bytes(&s.cosignatures[0])
            .unwrap()
            .verify(&s.checkpoint, &witness)
            .unwrap();
    }
    let cosigned = trail.latest_cosigned(&witness).await.unwrap().unwrap();
    trail.verify_against(&cosigned).await.unwrap();
    trail.close().await;
    assert_eq!(broker.logged("audit_checkpoint_cosigned").await, 2);

    // What the round adds to a privileged action: one HTTPS request to the broker (the
    // connection is warm, as it is in the app).
    let mut took = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        core.audit_checkpoint().await.unwrap();
        took.push(t.elapsed());
    }
    took.sort();
    println!(
        "audit checkpoint round: median {:?}, p90 {:?}, max {:?} over {} rounds",
        took[took.len() / 2],
        took[took.len() * 9 / 10],
        took[took.len() - 1],
        took.len()
    );

    // Cut the tail below the cosigned head and re-chain what is left.
    drop(core);
    tokio::time::sleep(Duration::from_millis(300)).await;
    cut_tail(&trail_path, cosigned.head.seq - 2).await;
    let core = broker.core(keystore.clone()).await;
    let e = add_key(&core, "fourth").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuditDiverged, "{e}");
    assert_eq!(
        core.list_keys().await.unwrap().len(),
        3,
        "the action did not run"
    );
    assert_eq!(broker.logged("audit_checkpoint_refused").await, 1);
    // And it stays refused: the trail cannot catch up with the head the broker cosigned.
    let e = add_key(&core, "fifth").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuditDiverged, "{e}");
    assert_eq!(core.list_keys().await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn d3_app_a_broker_whose_witness_key_changed_is_refused() {
    let (mut broker, core, _keystore) = enrolled().await;
    assert_eq!(add_key(&core, "second").await.unwrap().len(), 2);
    let pins = std::fs::read_to_string(broker.core_dir().join("witness.json")).unwrap();
    assert!(
        pins.contains(&format!("https://localhost:{}", broker.port)),
        "{pins}"
    );

    // The broker comes back with a new witness key (same address, same database).
    broker.halt().await;
    std::fs::remove_file(&broker.config.audit.witness_key).unwrap();
    broker.serve().await;
    let e = add_key(&core, "third").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuditWitnessChanged, "{e}");
    assert_eq!(
        core.list_keys().await.unwrap().len(),
        2,
        "the action did not run"
    );
    // Not re-pinned behind the user's back: still refused, the pin file unchanged.
    let e = add_key(&core, "third").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuditWitnessChanged, "{e}");
    assert_eq!(
        std::fs::read_to_string(broker.core_dir().join("witness.json")).unwrap(),
        pins
    );
    broker.halt().await;
}
