//! In-process broker for the integration tests: `init` into a temp dir, bind 127.0.0.1:0,
//! serve in a task, and a reqwest client that trusts only the broker's generated CA.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use paw_broker::init::{init, InitOptions, InitReport};
use paw_broker::{BoundServer, Config};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestBroker {
    pub dir: tempfile::TempDir,
    pub report: InitReport,
    pub config: Config,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), paw_broker::BrokerError>>>,
}

impl TestBroker {
    pub async fn start() -> Self {
        paw_broker::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let report = init(&InitOptions {
            dir: dir.path().join("broker"),
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: None,
            hostname: "localhost".into(),
            force: false,
        })
        .await
        .unwrap();
        let config = Config::load_with_env(&report.config_path, Vec::new()).unwrap();
        let server = BoundServer::bind(&config).await.unwrap();
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        let client = client_trusting(&report.ca_cert_path);
        Self {
            dir,
            report,
            config,
            addr,
            client,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("https://127.0.0.1:{}{path_and_query}", self.addr.port())
    }

    /// Stops the server and asserts it shut down cleanly.
    pub async fn stop(mut self) {
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

/// A client that trusts exactly one CA: no built-in roots, so a pass proves the pinning.
pub fn client_trusting(ca_pem_path: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca_pem_path).unwrap();
    client_trusting_pem(&pem)
}

pub fn client_trusting_pem(pem: &[u8]) -> reqwest::Client {
    paw_broker::install_crypto_provider();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}
pub mod idp;
pub mod ssh;
