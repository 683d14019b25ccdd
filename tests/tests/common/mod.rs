//! Helpers the broker-process tests share beside `paw_tests` (which does not depend on
//! paw-broker, so that the harness stays a client of the broker's API).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod live;
pub mod scan;
pub mod sftp;
pub mod shell;

use std::time::{Duration, Instant};

use paw_client::terminal::{Credential, TermEvent};
use paw_tests::replicas::Replicas;
use serde_json::Value;
use tokio::sync::mpsc;

/// A session's terminal events, timestamped on arrival.
pub type Events = mpsc::UnboundedReceiver<(Instant, TermEvent)>;

/// The one-time credential of a redeem answer, for the front door it names.
pub fn credential(minted: &Value) -> Credential {
    Credential {
        addr: minted["ssh_addr"].as_str().unwrap().to_owned(),
        host_key: minted["ssh_host_key"].as_str().unwrap().to_owned(),
        session_id: minted["session_id"].as_str().unwrap().to_owned(),
        ticket: minted["ticket"].as_str().unwrap().to_owned().into(),
    }
}

/// [`credential`] presented at another broker's front door, `addr`.
pub fn credential_at(minted: &Value, addr: &str) -> Credential {
    Credential {
        addr: addr.to_owned(),
        ..credential(minted)
    }
}

/// One query against the replicas' PostgreSQL, its output trimmed.
pub fn psql(r: &Replicas, sql: &str) -> String {
    r.pg().unwrap().psql(sql).unwrap().trim().to_owned()
}

/// Output until it contains `want` (at most 10 s); fails if the session ends first.
pub async fn output_until(rx: &mut Events, want: &str) -> String {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((_, TermEvent::Output(d)))) => {
                out.extend(d);
                if String::from_utf8_lossy(&out).contains(want) {
                    return String::from_utf8_lossy(&out).into();
                }
            }
            Ok(Some((_, TermEvent::Ended { reason, message }))) => {
                panic!(
                    "the session ended early ({reason}: {message}): {}",
                    String::from_utf8_lossy(&out)
                )
            }
            Ok(None) | Err(_) => return String::from_utf8_lossy(&out).into(),
        }
    }
}

/// Every audit record in a SQLite broker's database file, as JSON (actor, action, subject,
/// outcome, detail), read beside the running broker: the API has no audit export.
pub async fn sqlite_audit(r: &Replicas) -> Vec<Value> {
    let url = format!("sqlite://{}/pawd.db", r.broker_dir().display());
    let db = paw_broker::store::Db::connect(
        &paw_broker::config::DatabaseUrl::new(url),
        paw_broker::store::Create::Never,
    )
    .await
    .unwrap();
    let records = paw_broker::audit::records(&db, 0, 100_000).await.unwrap();
    db.close().await;
    records
        .into_iter()
        .map(|rec| {
            serde_json::json!({
                "seq": rec.event.seq,
                "actor": rec.event.actor,
                "action": rec.event.action,
                "subject": rec.event.subject,
                "outcome": rec.event.outcome.as_str(),
                "detail": rec.event.detail,
            })
        })
        .collect()
}
